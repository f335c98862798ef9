//! `hu_red_PHANTOM_overlay.png`: the measured slice cropped to the phantom, with the fitted
//! outline and centre, every ROI and its insert drawn and labelled, and a side panel listing
//! the fit, the ROIs and the run's warnings.

use super::style::{
    bold, e2s, failing_materials, font, grey_pixels, overlaps, render_png, wrap, Rect, FAIL,
    OUTLINE, ROI,
};
use crate::analysis::{HuStack, Pose, RoiMeasurement};
use crate::phantom::{Outline, PhantomDef};
use crate::report::format::{fixed, plural, signed, tol};
use crate::report::{ReportError, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Height of the title band above the image (pixels).
const TOP: u32 = 64;
/// Width of the side panel right of the image (pixels).
const PANEL: u32 = 430;

/// `hu_red_PHANTOM_overlay.png`: the measured slab's centre slice (window −1000…+1000 HU, no
/// data black) with every ROI drawn and labelled with its insert and mean HU, the insert
/// outline, the fitted phantom outline and centre, and the pose; a side panel lists the ROIs.
pub fn write_overlay_png(
    summary: &Summary,
    slab: &HuStack,
    phantom: Option<&PhantomDef>,
    path: &Path,
) -> Result<(), ReportError> {
    let (n, rows, cols) = (slab.n_slices(), slab.rows(), slab.cols());
    if n == 0 || rows == 0 || cols == 0 {
        return Err(ReportError::other(path, "the measured slab has no image"));
    }
    let frame = Frame::new(summary, slab, phantom);
    let buf = frame.pixels();
    let (w, h) = (frame.w, frame.h);
    let (cw, ch) = (w + PANEL, (h + TOP).max(700));
    render_png(path, (cw, ch), |root| {
        root.fill(&RGBColor(0x20, 0x20, 0x20)).map_err(e2s)?;
        draw_overlay_title(root, summary, &frame)?;
        let image_area = root.margin(TOP, 0, 0, PANEL);
        let element = BitMapElement::with_owned_buffer((0, 0), (w, h), buf)
            .ok_or("image buffer size mismatch")?;
        image_area.draw(&element).map_err(e2s)?;
        draw_pose(&image_area, summary, phantom, &frame)?;
        let failing = failing_materials(summary);
        let marks = draw_rois(&image_area, summary, &frame, &failing)?;
        draw_roi_labels(&image_area, &marks, summary, &frame)?;
        let side = root.margin(TOP, 0, w as i32 + 16, 10);
        draw_side_panel(&side, summary, &failing, ch)
    })
}

/// What the image shows and where: the slice, the crop and the display scale.
struct Frame<'a> {
    slab: &'a HuStack,
    /// The slab's centre slice (the one the ROIs were measured around), else the middle one.
    k: usize,
    /// First (row, column) shown.
    origin: (usize, usize),
    scale: f64,
    /// Size of the displayed image (pixels).
    w: u32,
    h: u32,
}

impl<'a> Frame<'a> {
    /// Show the phantom, not the whole field of view: crop to the fitted outline and the ROIs
    /// with a margin (the full image when the pose is unknown). `slab` is not empty.
    fn new(summary: &Summary, slab: &'a HuStack, phantom: Option<&PhantomDef>) -> Self {
        let n = slab.n_slices();
        let centre_index = summary.slices.as_ref().map(|s| s.centre_index);
        let k = centre_index
            .and_then(|c| slab.series_index.iter().position(|&i| i == c))
            .unwrap_or(n / 2);
        let (crop_r, crop_c) = crop_region(summary, phantom, slab);
        let (crop_rows, crop_cols) = (crop_r.1 - crop_r.0 + 1, crop_c.1 - crop_c.0 + 1);
        // Display scale: the longer side at ~900 px, at least 1:1, at most 4×.
        let scale = (900.0 / crop_rows.max(crop_cols) as f64).clamp(1.0, 4.0);
        Frame {
            slab,
            k,
            origin: (crop_r.0, crop_c.0),
            scale,
            w: (crop_cols as f64 * scale).round() as u32,
            h: (crop_rows as f64 * scale).round() as u32,
        }
    }

    /// The displayed slice as RGB pixels.
    fn pixels(&self) -> Vec<u8> {
        let img = self.slab.hu.index_axis(ndarray::Axis(0), self.k);
        grey_pixels(img, self.origin, self.scale, (self.w, self.h))
    }

    /// Image frame (mm) → display pixels.
    fn to_px(&self, x_mm: f64, y_mm: f64) -> (i32, i32) {
        (
            ((self.slab.col_of(x_mm) - self.origin.1 as f64 + 0.5) * self.scale).round() as i32,
            ((self.slab.row_of(y_mm) - self.origin.0 as f64 + 0.5) * self.scale).round() as i32,
        )
    }

    /// Display pixels per mm.
    fn mm_to_px(&self) -> f64 {
        self.scale / self.slab.pixel_mm[1]
    }
}

/// The title: phantom, slice index, z and window.
fn draw_overlay_title(
    root: &DrawingArea<BitMapBackend, Shift>,
    summary: &Summary,
    frame: &Frame,
) -> Result<(), String> {
    let (slab, k) = (frame.slab, frame.k);
    let z = slab
        .z_mm
        .get(k)
        .map(|z| format!(", z {} mm", fixed(Some(*z), 1)))
        .unwrap_or_default();
    let idx = slab.series_index.get(k).copied().unwrap_or(k);
    root.draw(&Text::new(
        format!(
            "ROI overlay ({}) — slice index {idx}{z}, window −1000…+1000 HU",
            summary.phantom.id
        ),
        (14, 18),
        bold(24.0).color(&WHITE),
    ))
    .map_err(e2s)
}

/// The fitted phantom outline (with a definition), its centre as a cross; nothing without a
/// pose.
fn draw_pose(
    image_area: &DrawingArea<BitMapBackend, Shift>,
    summary: &Summary,
    phantom: Option<&PhantomDef>,
    frame: &Frame,
) -> Result<(), String> {
    let Some(pose) = summary.pose else {
        return Ok(());
    };
    if let Some(def) = phantom {
        let pts: Vec<(i32, i32)> = outline_points(&def.outline, &pose)
            .into_iter()
            .map(|(x, y)| frame.to_px(x, y))
            .collect();
        image_area
            .draw(&PathElement::new(pts, OUTLINE.mix(0.8).stroke_width(2)))
            .map_err(e2s)?;
    }
    let c = frame.to_px(pose.centre_x_mm, pose.centre_y_mm);
    image_area
        .draw(&PathElement::new(
            vec![(c.0 - 10, c.1), (c.0 + 10, c.1)],
            OUTLINE.stroke_width(2),
        ))
        .map_err(e2s)?;
    image_area
        .draw(&PathElement::new(
            vec![(c.0, c.1 - 10), (c.0, c.1 + 10)],
            OUTLINE.stroke_width(2),
        ))
        .map_err(e2s)?;
    Ok(())
}

/// A drawn ROI waiting for its label.
struct Mark {
    p: (i32, i32),
    insert_r: i32,
    text: String,
    colour: RGBColor,
}

/// Every ROI with a finite centre: insert outline (thin) and ROI circle (thick), yellow or red
/// when its material fails. Returns the marks to label, in drawing order.
fn draw_rois(
    image_area: &DrawingArea<BitMapBackend, Shift>,
    summary: &Summary,
    frame: &Frame,
    failing: &[&str],
) -> Result<Vec<Mark>, String> {
    let mm_to_px = frame.mm_to_px();
    let mut marks: Vec<Mark> = Vec::new();
    for m in &summary.inserts {
        let colour = if failing.contains(&m.insert.as_str()) {
            FAIL
        } else {
            ROI
        };
        for r in &m.rois {
            if !(r.center_x_mm.is_finite() && r.center_y_mm.is_finite()) {
                continue;
            }
            let p = frame.to_px(r.center_x_mm, r.center_y_mm);
            let insert_r = (r.insert_radius_mm * mm_to_px).round().max(2.0) as i32;
            let roi_r = (r.roi_radius_mm * mm_to_px).round().max(2.0) as i32;
            image_area
                .draw(&Circle::new(p, insert_r, colour.mix(0.45).stroke_width(1)))
                .map_err(e2s)?;
            image_area
                .draw(&Circle::new(p, roi_r, colour.stroke_width(2)))
                .map_err(e2s)?;
            let text = format!("{} {}", r.insert, fixed(Some(r.hu_mean), 0));
            marks.push(Mark {
                p,
                insert_r,
                text,
                colour,
            });
        }
    }
    Ok(marks)
}

/// Each ROI's label (insert and mean HU), outward from the phantom centre, where it covers no
/// other insert and no label already placed, tied to its insert by a short leader.
fn draw_roi_labels(
    image_area: &DrawingArea<BitMapBackend, Shift>,
    marks: &[Mark],
    summary: &Summary,
    frame: &Frame,
) -> Result<(), String> {
    let (w, h) = (frame.w, frame.h);
    let centre = summary
        .pose
        .map(|p| frame.to_px(p.centre_x_mm, p.centre_y_mm))
        .unwrap_or(((w / 2) as i32, (h / 2) as i32));
    let label_style = font(15.0);
    let circles: Vec<Rect> = marks
        .iter()
        .map(|m| {
            (
                m.p.0 - m.insert_r,
                m.p.1 - m.insert_r,
                m.p.0 + m.insert_r,
                m.p.1 + m.insert_r,
            )
        })
        .collect();
    let mut placed: Vec<Rect> = Vec::new();
    for (i, mk) in marks.iter().enumerate() {
        let (tw, th) = image_area
            .estimate_text_size(&mk.text, &label_style)
            .map_err(e2s)?;
        let size = (tw as i32, th as i32);
        let others = |r: Rect| {
            circles
                .iter()
                .enumerate()
                .filter(|(j, c)| *j != i && overlaps(**c, r))
                .count()
                + placed.iter().filter(|c| overlaps(**c, r)).count()
        };
        let Some(r) = label_box(mk, size, centre, (w, h), others) else {
            continue;
        };
        placed.push(r);
        draw_roi_label(image_area, mk, r, &label_style)?;
    }
    Ok(())
}

/// The box for a label of `size` next to `mk`: in the direction away from `centre` (down for
/// the centre hole), else turned by 45° steps, the first covering the fewest of the others
/// (`hits`), kept inside the `(w, h)` image.
fn label_box(
    mk: &Mark,
    (tw, th): (i32, i32),
    centre: (i32, i32),
    (w, h): (u32, u32),
    hits: impl Fn(Rect) -> usize,
) -> Option<Rect> {
    let (dx, dy) = ((mk.p.0 - centre.0) as f64, (mk.p.1 - centre.1) as f64);
    let d = (dx * dx + dy * dy).sqrt();
    let a0 = if d < 5.0 {
        std::f64::consts::FRAC_PI_2
    } else {
        dy.atan2(dx)
    };
    let mut best: Option<(f64, Rect)> = None;
    for (k, turn) in [0.0, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0]
        .iter()
        .enumerate()
    {
        let a = a0 + f64::to_radians(*turn);
        let (ux, uy) = (a.cos(), a.sin());
        let reach = mk.insert_r as f64 + 6.0;
        let ax = mk.p.0 as f64 + ux * reach;
        let ay = mk.p.1 as f64 + uy * reach;
        // anchor the box on the side facing the point
        let x0 = (ax - tw as f64 * (1.0 - ux) / 2.0).round() as i32;
        let y0 = (ay - th as f64 * (1.0 - uy) / 2.0).round() as i32;
        let x0 = x0.clamp(4, w as i32 - tw - 4);
        let y0 = y0.clamp(4, h as i32 - th - 4);
        let r = (x0 - 3, y0 - 2, x0 + tw + 3, y0 + th + 3);
        let cost = hits(r) as f64 * 100.0 + k as f64;
        if best.is_none_or(|(c, _)| cost < c) {
            best = Some((cost, r));
        }
    }
    best.map(|(_, r)| r)
}

/// A label in box `r` on a dark backing, with a leader from the insert's edge when the box
/// does not touch it.
fn draw_roi_label(
    image_area: &DrawingArea<BitMapBackend, Shift>,
    mk: &Mark,
    r: Rect,
    style: &TextStyle,
) -> Result<(), String> {
    let (bx, by) = (mk.p.0.clamp(r.0, r.2) as f64, mk.p.1.clamp(r.1, r.3) as f64);
    let (lx, ly) = (bx - mk.p.0 as f64, by - mk.p.1 as f64);
    let ld = (lx * lx + ly * ly).sqrt();
    if ld > mk.insert_r as f64 + 2.0 {
        let e = (
            (mk.p.0 as f64 + lx / ld * mk.insert_r as f64).round() as i32,
            (mk.p.1 as f64 + ly / ld * mk.insert_r as f64).round() as i32,
        );
        image_area
            .draw(&PathElement::new(
                vec![e, (bx as i32, by as i32)],
                mk.colour.mix(0.8).stroke_width(1),
            ))
            .map_err(e2s)?;
    }
    image_area
        .draw(&Rectangle::new(
            [(r.0, r.1), (r.2, r.3)],
            BLACK.mix(0.65).filled(),
        ))
        .map_err(e2s)?;
    image_area
        .draw(&Text::new(
            mk.text.clone(),
            (r.0 + 3, r.1 + 2),
            style.color(&mk.colour),
        ))
        .map_err(e2s)?;
    Ok(())
}

/// Lines of text down the side panel.
struct Column<'a, 'b> {
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    y: i32,
}

impl Column<'_, '_> {
    /// Draw `text` at the current line, then move down by `dy`.
    fn line(&mut self, text: String, style: &TextStyle, dy: i32) -> Result<(), String> {
        self.area
            .draw(&Text::new(text, (0, self.y), style.clone()))
            .map_err(e2s)?;
        self.y += dy;
        Ok(())
    }
}

/// The side panel: the fit, the colour legend, the ROI table, and the run's warnings as far as
/// they fit in a canvas `ch` pixels high.
fn draw_side_panel(
    side: &DrawingArea<BitMapBackend, Shift>,
    summary: &Summary,
    failing: &[&str],
    ch: u32,
) -> Result<(), String> {
    let mut col = Column { area: side, y: 8 };
    describe_fit(&mut col, summary)?;
    colour_legend(&mut col, !failing.is_empty())?;
    roi_table(&mut col, summary, failing)?;
    if !summary.warnings.is_empty() {
        warnings(&mut col, &summary.warnings, ch)?;
    }
    Ok(())
}

/// Phantom name, pose, slab and ROI size.
fn describe_fit(col: &mut Column, summary: &Summary) -> Result<(), String> {
    let white = font(16.0).color(&WHITE);
    if let Some(name) = &summary.phantom.name {
        for part in wrap(col.area, name, &white, PANEL as i32 - 30)? {
            col.line(part, &white, 22)?;
        }
        col.line(String::new(), &white, 4)?;
    }
    if let Some(p) = summary.pose {
        col.line(
            format!(
                "centre x {} mm, y {} mm",
                signed(Some(p.centre_x_mm), 1),
                signed(Some(p.centre_y_mm), 1)
            ),
            &white,
            22,
        )?;
        col.line(
            format!(
                "rotation {}° (clockwise on screen)",
                signed(Some(p.rotation_deg), 1)
            ),
            &white,
            22,
        )?;
    }
    if let Some(s) = &summary.slices {
        col.line(
            format!(
                "ROIs averaged over {} slice{} ({} mm slab)",
                s.indices.len(),
                plural(s.indices.len()),
                tol(s.slab_mm)
            ),
            &white,
            22,
        )?;
    }
    if let Some(r) = summary
        .inserts
        .iter()
        .flat_map(|m| m.rois.iter())
        .find(|r| r.roi_radius_mm.is_finite())
    {
        col.line(
            format!(
                "ROI radius {} mm ({} px), insert radius {} mm",
                fixed(Some(r.roi_radius_mm), 1),
                fixed(Some(r.roi_radius_px), 1),
                fixed(Some(r.insert_radius_mm), 1)
            ),
            &white,
            22,
        )?;
    }
    Ok(())
}

/// What the colours mean (red only when something fails).
fn colour_legend(col: &mut Column, any_failing: bool) -> Result<(), String> {
    col.line(
        "yellow: ROI (thick) and insert (thin)".into(),
        &font(15.0).color(&ROI),
        20,
    )?;
    col.line(
        "cyan: fitted phantom outline and centre".into(),
        &font(15.0).color(&OUTLINE),
        20,
    )?;
    if any_failing {
        col.line(
            "red: out of tolerance or failing an absolute check".into(),
            &font(15.0).color(&FAIL),
            20,
        )?;
    }
    Ok(())
}

/// Every ROI by hole: insert, mean ± std HU (failing materials in red).
fn roi_table(col: &mut Column, summary: &Summary, failing: &[&str]) -> Result<(), String> {
    let grey = font(15.0).color(&RGBColor(0xbb, 0xbb, 0xbb));
    col.line(String::new(), &grey, 10)?;
    col.line(
        "ROI   insert   mean ± std HU".into(),
        &bold(15.0).color(&WHITE),
        22,
    )?;
    let mut rois: Vec<&RoiMeasurement> =
        summary.inserts.iter().flat_map(|m| m.rois.iter()).collect();
    rois.sort_by(|a, b| a.hole.cmp(&b.hole));
    let red_row = font(15.0).color(&FAIL);
    for r in rois {
        let style = if failing.contains(&r.insert.as_str()) {
            &red_row
        } else {
            &grey
        };
        col.line(
            format!(
                "{}  {}  {} ± {}",
                r.hole,
                r.insert,
                fixed(Some(r.hu_mean), 1),
                fixed(Some(r.hu_std), 1)
            ),
            style,
            20,
        )?;
    }
    Ok(())
}

/// The run's warnings (e.g. a material that was not found), as far as they fit in a canvas
/// `ch` pixels high ("…" when cut).
fn warnings(col: &mut Column, warnings: &[String], ch: u32) -> Result<(), String> {
    let grey = font(15.0).color(&RGBColor(0xbb, 0xbb, 0xbb));
    let warn = font(14.0).color(&RGBColor(0xff, 0xa0, 0x40));
    col.line(String::new(), &grey, 8)?;
    col.line(
        "Warnings:".into(),
        &bold(16.0).color(&RGBColor(0xff, 0xa0, 0x40)),
        22,
    )?;
    for w in warnings {
        for (i, part) in wrap(col.area, w, &warn, PANEL as i32 - 40)?
            .into_iter()
            .enumerate()
        {
            if col.y > ch as i32 - TOP as i32 - 30 {
                return col.line("…".into(), &warn, 18);
            }
            let text = if i == 0 {
                format!("• {part}")
            } else {
                format!("  {part}")
            };
            col.line(text, &warn, 18)?;
        }
    }
    Ok(())
}

/// The part of the image to show, as inclusive (first, last) row and column ranges: the fitted
/// outline and every ROI with a 15 mm margin, or the whole image without a pose.
fn crop_region(
    summary: &Summary,
    phantom: Option<&PhantomDef>,
    slab: &HuStack,
) -> ((usize, usize), (usize, usize)) {
    let (rows, cols) = (slab.rows(), slab.cols());
    let full = ((0, rows - 1), (0, cols - 1));
    let mut pts: Vec<(f64, f64, f64)> = Vec::new();
    if let (Some(pose), Some(def)) = (summary.pose, phantom) {
        pts.extend(
            outline_points(&def.outline, &pose)
                .into_iter()
                .map(|(x, y)| (x, y, 0.0)),
        );
    }
    for r in summary.inserts.iter().flat_map(|m| m.rois.iter()) {
        pts.push((r.center_x_mm, r.center_y_mm, r.insert_radius_mm));
    }
    pts.retain(|p| p.0.is_finite() && p.1.is_finite() && p.2.is_finite());
    if pts.is_empty() {
        return full;
    }
    let margin = 15.0;
    let x0 = pts.iter().map(|p| p.0 - p.2).fold(f64::INFINITY, f64::min) - margin;
    let x1 = pts
        .iter()
        .map(|p| p.0 + p.2)
        .fold(f64::NEG_INFINITY, f64::max)
        + margin;
    let y0 = pts.iter().map(|p| p.1 - p.2).fold(f64::INFINITY, f64::min) - margin;
    let y1 = pts
        .iter()
        .map(|p| p.1 + p.2)
        .fold(f64::NEG_INFINITY, f64::max)
        + margin;
    let clamp_r = |v: f64| v.round().clamp(0.0, (rows - 1) as f64) as usize;
    let clamp_c = |v: f64| v.round().clamp(0.0, (cols - 1) as f64) as usize;
    let (r0, r1) = (clamp_r(slab.row_of(y0)), clamp_r(slab.row_of(y1)));
    let (c0, c1) = (clamp_c(slab.col_of(x0)), clamp_c(slab.col_of(x1)));
    if r1 < r0 + 16 || c1 < c0 + 16 {
        return full;
    }
    ((r0, r1), (c0, c1))
}

/// Points (mm, image frame) along the phantom outline at `pose`.
fn outline_points(outline: &Outline, pose: &Pose) -> Vec<(f64, f64)> {
    let (s, c) = pose.rotation_deg.to_radians().sin_cos();
    let place = |px: f64, py: f64| {
        (
            pose.centre_x_mm + px * c - py * s,
            pose.centre_y_mm + px * s + py * c,
        )
    };
    match *outline {
        Outline::Circle { diameter_mm } => ellipse(diameter_mm, diameter_mm, place),
        Outline::Ellipse {
            width_mm,
            height_mm,
        } => ellipse(width_mm, height_mm, place),
        Outline::Square { side_mm } => {
            let a = side_mm / 2.0;
            [(-a, -a), (a, -a), (a, a), (-a, a), (-a, -a)]
                .into_iter()
                .map(|(x, y)| place(x, y))
                .collect()
        }
    }
}

fn ellipse(w: f64, h: f64, place: impl Fn(f64, f64) -> (f64, f64)) -> Vec<(f64, f64)> {
    (0..=180)
        .map(|i| {
            let t = i as f64 / 180.0 * std::f64::consts::TAU;
            place(w / 2.0 * t.cos(), h / 2.0 * t.sin())
        })
        .collect()
}
