//! PNG plots with plotters' bitmap backend and the DejaVu font embedded in the binary (no
//! system fonts): the HU–RED curve and the ROI overlay.

use super::summary::{material_check, MaterialCheck};
use super::{ReportError, Summary};
use crate::analysis::{Baseline, HuStack, Pose};
use crate::phantom::{Outline, PhantomDef};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";
const MEASURED: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const BASELINE: RGBColor = RGBColor(0xe0, 0x7b, 0x00);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const ROI: RGBColor = RGBColor(0xff, 0xe0, 0x20);
const OUTLINE: RGBColor = RGBColor(0x30, 0xd0, 0xff);
const FAIL: RGBColor = RGBColor(0xff, 0x40, 0x40);

/// Register DejaVu Sans as plotters' "sans-serif" (once per process).
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font bytes are compiled in from the `dejavu` crate; failure would be a build defect.
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err()
            || plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_err()
        {
            tracing::error!("the embedded DejaVu font could not be registered");
        }
    });
}

/// Font sizes are rounded to even pixels: plotters' ab_glyph renderer places each glyph at
/// `(size / 2 + top) as i32`, which for odd sizes truncates glyphs above and below the
/// baseline in opposite directions and lifts '.', ',' and '_' by a pixel ("35·0").
fn even(size: f64) -> f64 {
    (size / 2.0).round().max(1.0) * 2.0
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, even(size)).into_font().into()
}

fn bold(size: f64) -> TextStyle<'static> {
    (FONT, even(size), FontStyle::Bold).into_font().into()
}

/// Render to a hidden temporary file next to `path`, then rename: a reader never sees a half
/// written PNG.
fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> Result<(), ReportError> {
    register_fonts();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ReportError::other(path, "not a file path"))?;
    let tmp = path.with_file_name(format!(".{file_name}.tmp.png"));
    let result = (|| {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReportError::other(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A label to place near a point (pixel coordinates).
struct Label {
    text: String,
    at: (i32, i32),
    color: RGBColor,
}

type Rect = (i32, i32, i32, i32);

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Place labels next to their points without overlapping each other or the points, inside
/// `bounds`; draws a leader line when a label had to move away from its point.
fn place_labels(
    area: &DrawingArea<BitMapBackend, Shift>,
    labels: &[Label],
    obstacles: &[(i32, i32)],
    lines: &[(i32, i32)],
    bounds: Rect,
    style: &TextStyle,
) -> Result<(), String> {
    let mut taken: Vec<Rect> = obstacles
        .iter()
        .map(|&(x, y)| (x - 6, y - 6, x + 6, y + 6))
        .collect();
    // samples along the curves: crossing a line is allowed but costs
    let soft: Vec<Rect> = lines
        .iter()
        .map(|&(x, y)| (x - 2, y - 2, x + 2, y + 2))
        .collect();
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| (labels[i].at.0, labels[i].at.1));
    for i in order {
        let l = &labels[i];
        let (w, h) = area.estimate_text_size(&l.text, style).map_err(e2s)?;
        let (w, h) = (w as i32 + 4, h as i32 + 2);
        let (px, py) = l.at;
        let mut best: Option<(i64, Rect)> = None;
        for dist in [10, 22, 38, 56, 80] {
            let cands = [
                (px + dist, py - h / 2),
                (px - dist - w, py - h / 2),
                (px - w / 2, py - dist - h),
                (px - w / 2, py + dist),
                (px + dist, py - dist - h),
                (px + dist, py + dist),
                (px - dist - w, py - dist - h),
                (px - dist - w, py + dist),
            ];
            for (x0, y0) in cands {
                let r = (x0, y0, x0 + w, y0 + h);
                let inside =
                    r.0 >= bounds.0 && r.1 >= bounds.1 && r.2 <= bounds.2 && r.3 <= bounds.3;
                if !inside {
                    continue;
                }
                let hits = taken.iter().filter(|t| overlaps(**t, r)).count() as i64;
                let crossings = soft.iter().filter(|t| overlaps(**t, r)).count() as i64;
                let cost = hits * 10_000 + crossings * 60 + dist as i64;
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, r));
                }
            }
            if best.is_some_and(|(c, _)| c < 60) {
                break;
            }
        }
        let Some((_, r)) = best else { continue };
        taken.push(r);
        let (cx, cy) = ((r.0 + r.2) / 2, (r.1 + r.3) / 2);
        let d2 = (cx - px).pow(2) + (cy - py).pow(2);
        if d2 > 30 * 30 {
            // leader from the point to the nearest edge of the label
            let lx = cx.clamp(r.0, r.2);
            let ly = if py < r.1 {
                r.1
            } else if py > r.3 {
                r.3
            } else {
                cy
            };
            area.draw(&PathElement::new(
                vec![(px, py), (lx, ly)],
                l.color.mix(0.5).stroke_width(1),
            ))
            .map_err(e2s)?;
        }
        area.draw(&Text::new(
            l.text.clone(),
            (r.0 + 2, r.1 + 1),
            style.color(&l.color),
        ))
        .map_err(e2s)?;
    }
    Ok(())
}

/// `hu_red_PHANTOM_curve.png`: RED on x and mean HU on y (the script's axes), the measured
/// points labelled by insert with the piecewise-linear curve through them, and the baseline's
/// points and curve (orange, dashed) when a baseline is given. A zoom panel on the soft-tissue
/// region keeps the close materials (adipose … liver) readable.
pub fn write_curve_png(
    summary: &Summary,
    baseline: Option<&Baseline>,
    path: &Path,
) -> Result<(), ReportError> {
    let measured: Vec<(String, f64, f64)> = summary
        .curve
        .as_ref()
        .map(|c| {
            c.points
                .iter()
                .filter(|p| p.red.is_finite() && p.hu.is_finite())
                .map(|p| (p.insert.clone(), p.red, p.hu))
                .collect()
        })
        .unwrap_or_default();
    let mut base: Vec<(String, f64, f64)> = Vec::new();
    if let Some(b) = baseline {
        for e in &b.entries {
            let red = e.red.or_else(|| {
                summary
                    .inserts
                    .iter()
                    .find(|m| m.insert == e.insert)
                    .and_then(|m| m.red)
            });
            if let (Some(red), Some(hu)) = (red, e.hu_mean) {
                if red.is_finite() && hu.is_finite() {
                    base.push((e.insert.clone(), red, hu));
                }
            }
        }
        base.sort_by(|a, b| a.2.total_cmp(&b.2));
    }
    let failing = failing_materials(summary);
    // failing points say by how much
    let deltas: Vec<(String, f64)> = summary
        .tolerance_evaluation
        .per_insert
        .iter()
        .filter(|c| !c.within_tolerance)
        .filter_map(|c| Some((c.insert.clone(), c.delta_hu.filter(|d| d.is_finite())?)))
        .collect();

    render_png(path, (1400, 820), |root| {
        let title = format!("HU–RED curve ({})", summary.phantom.id);
        root.draw(&Text::new(
            title,
            (700, 14),
            bold(30.0).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(
            subtitle(summary),
            (700, 54),
            font(17.0)
                .color(&RGBColor(0x44, 0x44, 0x44))
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e2s)?;
        let body = root.margin(90, 10, 10, 10);
        let (left, right) = body.split_horizontally(900);

        let all: Vec<&(String, f64, f64)> = measured.iter().chain(base.iter()).collect();
        if all.is_empty() {
            left.draw(&Text::new(
                "no material with a RED was measured",
                (300, 300),
                font(22.0),
            ))
            .map_err(e2s)?;
            return Ok(());
        }
        let (rmin, rmax) = span(all.iter().map(|p| p.1));
        let (hmin, hmax) = span(all.iter().map(|p| p.2));
        let x_range = (rmin.min(0.0) - 0.05)..(rmax + 0.12);
        let pad = ((hmax - hmin) * 0.08).max(50.0);
        let y_range = (hmin - pad)..(hmax + pad);
        // Soft-tissue zoom when 3 or more materials crowd RED 0.9–1.1 (CIRS: adipose … liver lie
        // within ~100 HU): the main chart marks the region and leaves its labels to the zoom;
        // otherwise the right panel lists the values.
        let zoom: Vec<&(String, f64, f64)> = all
            .iter()
            .copied()
            .filter(|p| (0.9..=1.1).contains(&p.1))
            .collect();
        let zoom_box = (zoom.len() >= 3).then(|| {
            let (zr0, zr1) = span(zoom.iter().map(|p| p.1));
            let (zh0, zh1) = span(zoom.iter().map(|p| p.2));
            let rpad = ((zr1 - zr0) * 0.15).max(0.01);
            let hpad = ((zh1 - zh0) * 0.15).max(10.0);
            ((zr0 - rpad)..(zr1 + rpad), (zh0 - hpad)..(zh1 + hpad))
        });
        draw_curve_chart(
            root,
            &left,
            &measured,
            &base,
            &failing,
            &deltas,
            x_range,
            y_range,
            20.0,
            "",
            zoom_box.clone(),
        )?;
        match zoom_box {
            Some((zx, zy)) => draw_curve_chart(
                root,
                &right,
                &measured,
                &base,
                &failing,
                &deltas,
                zx,
                zy,
                17.0,
                "soft-tissue zoom",
                None,
            )?,
            None => draw_values_table(&right, summary)?,
        }
        Ok(())
    })
}

/// The measured values as a small table (insert, RED, mean HU, and ΔHU with a baseline).
fn draw_values_table(
    area: &DrawingArea<BitMapBackend, Shift>,
    summary: &Summary,
) -> Result<(), String> {
    let ev = &summary.tolerance_evaluation;
    let cols: &[(&str, i32)] = if ev.has_baseline {
        &[("insert", 20), ("RED", 190), ("HU", 280), ("ΔHU", 380)]
    } else {
        &[("insert", 20), ("RED", 220), ("HU", 340)]
    };
    let mut y = 60;
    let head = bold(18.0);
    for (name, x) in cols {
        area.draw(&Text::new(*name, (*x, y), head.clone()))
            .map_err(e2s)?;
    }
    y += 12;
    area.draw(&PathElement::new(
        vec![(16, y + 14), (470, y + 14)],
        BLACK.stroke_width(1),
    ))
    .map_err(e2s)?;
    y += 26;
    let body = font(18.0);
    let mut rows: Vec<_> = summary.inserts.iter().collect();
    rows.sort_by(|a, b| a.hu_mean.total_cmp(&b.hu_mean));
    for m in rows {
        let c = ev.per_insert.iter().find(|c| c.insert == m.insert);
        let fail = c.is_some_and(|c| !c.within_tolerance)
            || matches!(material_check(m), MaterialCheck::Fail(_));
        let style = body.color(if fail { &FAIL } else { &BLACK });
        let mut cells = vec![
            m.insert.clone(),
            m.red
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "—".into()),
            if m.hu_mean.is_finite() {
                format!("{:.1}", m.hu_mean)
            } else {
                "—".into()
            },
        ];
        if ev.has_baseline {
            cells.push(
                c.and_then(|c| c.delta_hu)
                    .filter(|d| d.is_finite())
                    .map(|d| format!("{d:+.1}"))
                    .unwrap_or_else(|| "—".into()),
            );
        }
        for ((_, x), cell) in cols.iter().zip(cells) {
            area.draw(&Text::new(cell, (*x, y), style.clone()))
                .map_err(e2s)?;
        }
        y += 28;
    }
    Ok(())
}

/// Materials drawn as failing: out of constancy tolerance, or failing an absolute check (the
/// report's and the verdict's [`material_check`]).
fn failing_materials(summary: &Summary) -> Vec<&str> {
    let mut out: Vec<&str> = summary
        .tolerance_evaluation
        .per_insert
        .iter()
        .filter(|c| !c.within_tolerance)
        .map(|c| c.insert.as_str())
        .collect();
    for m in &summary.inserts {
        if matches!(material_check(m), MaterialCheck::Fail(_)) && !out.contains(&m.insert.as_str())
        {
            out.push(m.insert.as_str());
        }
    }
    out
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn subtitle(summary: &Summary) -> String {
    let md = &summary.metadata;
    let mut parts = Vec::new();
    if let Some(s) = md.series_description.as_deref().filter(|s| !s.is_empty()) {
        parts.push(s.to_string());
    }
    if let Some(s) = md.station_name.as_deref().filter(|s| !s.is_empty()) {
        parts.push(s.to_string());
    }
    if let Some(d) = md.study_date.as_deref().filter(|s| s.len() == 8) {
        parts.push(format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]));
    }
    if let Some(k) = md.kvp {
        parts.push(format!("{k} kV"));
    }
    if let Some(k) = md
        .reconstruction_kernel
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        parts.push(format!("kernel {k}"));
    }
    let ev = &summary.tolerance_evaluation;
    if ev.has_baseline {
        let verdict = match ev.pass {
            Some(true) => "constancy PASS",
            Some(false) => "constancy FAIL",
            None => "constancy not evaluated",
        };
        parts.push(verdict.to_string());
    }
    if parts.is_empty() {
        parts.push(summary.dicom_path.clone());
    }
    parts.join("  ·  ")
}

fn draw_legend(
    area: &DrawingArea<BitMapBackend, Shift>,
    at: (i32, i32),
    with_baseline: bool,
) -> Result<(), String> {
    let (x, y) = at;
    area.draw(&PathElement::new(
        vec![(x, y), (x + 40, y)],
        MEASURED.stroke_width(3),
    ))
    .map_err(e2s)?;
    area.draw(&Circle::new((x + 20, y), 5, MEASURED.filled()))
        .map_err(e2s)?;
    area.draw(&Text::new(
        "this run",
        (x + 50, y),
        font(16.0).pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(e2s)?;
    if with_baseline {
        let y = y + 26;
        area.draw(&plotters::element::DashedPathElement::new(
            vec![(x, y), (x + 40, y)],
            7,
            5,
            BASELINE.stroke_width(2),
        ))
        .map_err(e2s)?;
        area.draw(&Circle::new((x + 20, y), 5, BASELINE.stroke_width(2)))
            .map_err(e2s)?;
        area.draw(&Text::new(
            "baseline",
            (x + 50, y),
            font(16.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(e2s)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn draw_curve_chart(
    root: &DrawingArea<BitMapBackend, Shift>,
    area: &DrawingArea<BitMapBackend, Shift>,
    measured: &[(String, f64, f64)],
    base: &[(String, f64, f64)],
    failing: &[&str],
    deltas: &[(String, f64)],
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
    label_size: f64,
    caption: &str,
    zoom_box: Option<(std::ops::Range<f64>, std::ops::Range<f64>)>,
) -> Result<(), String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(55)
        .y_label_area_size(80);
    if !caption.is_empty() {
        builder.caption(caption, font(19.0));
    }
    let mut chart = builder
        .build_cartesian_2d(x_range.clone(), y_range.clone())
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .x_desc("relative electron density (RED)")
        .y_desc("mean CT number (HU)")
        .axis_desc_style(font(18.0))
        .label_style(font(15.0))
        .light_line_style(GRID.mix(0.5))
        .bold_line_style(GRID)
        .x_labels(10)
        .y_labels(10)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e2s)?;
    let inside = |p: &&(String, f64, f64)| x_range.contains(&p.1) && y_range.contains(&p.2);
    if base.len() >= 2 {
        chart
            .draw_series(DashedLineSeries::new(
                base.iter().map(|p| (p.1, p.2)),
                9,
                6,
                BASELINE.stroke_width(2),
            ))
            .map_err(e2s)?;
    }
    chart
        .draw_series(
            base.iter()
                .filter(inside)
                .map(|p| Circle::new((p.1, p.2), 7, BASELINE.stroke_width(2))),
        )
        .map_err(e2s)?;
    if measured.len() >= 2 {
        chart
            .draw_series(LineSeries::new(
                measured.iter().map(|p| (p.1, p.2)),
                MEASURED.stroke_width(2),
            ))
            .map_err(e2s)?;
    }
    chart
        .draw_series(measured.iter().filter(inside).map(|p| {
            let c = if failing.contains(&p.0.as_str()) {
                FAIL
            } else {
                MEASURED
            };
            Circle::new((p.1, p.2), 5, c.filled())
        }))
        .map_err(e2s)?;

    if let Some((zx, zy)) = &zoom_box {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(zx.start, zy.start), (zx.end, zy.end)],
                RGBColor(0x70, 0x70, 0x70).stroke_width(1),
            )))
            .map_err(e2s)?;
    }
    let plot = chart.plotting_area();
    let (xr, yr) = plot.get_pixel_range();
    let bounds = (xr.start + 2, yr.start + 2, xr.end - 2, yr.end - 2);
    let in_zoom = |p: &&(String, f64, f64)| {
        zoom_box
            .as_ref()
            .is_some_and(|(zx, zy)| zx.contains(&p.1) && zy.contains(&p.2))
    };
    let labels: Vec<Label> = measured
        .iter()
        .filter(inside)
        .filter(|p| !in_zoom(p))
        .map(|p| Label {
            text: match deltas.iter().find(|d| d.0 == p.0) {
                Some((_, d)) => format!("{} ({d:+.0} HU)", p.0),
                None => p.0.clone(),
            },
            at: plot.map_coordinate(&(p.1, p.2)),
            color: if failing.contains(&p.0.as_str()) {
                FAIL
            } else {
                RGBColor(0x10, 0x10, 0x10)
            },
        })
        .collect();
    let mut obstacles: Vec<(i32, i32)> = labels.iter().map(|l| l.at).collect();
    obstacles.extend(
        base.iter()
            .filter(inside)
            .map(|p| plot.map_coordinate(&(p.1, p.2))),
    );
    let mut line_samples: Vec<(i32, i32)> = Vec::new();
    for series in [measured, base] {
        let px: Vec<(i32, i32)> = series
            .iter()
            .map(|p| plot.map_coordinate(&(p.1, p.2)))
            .collect();
        for w in px.windows(2) {
            let (a, b) = (w[0], w[1]);
            let len = (((b.0 - a.0).pow(2) + (b.1 - a.1).pow(2)) as f64).sqrt();
            let n = (len / 5.0).ceil().max(1.0) as i32;
            line_samples
                .extend((0..=n).map(|k| (a.0 + (b.0 - a.0) * k / n, a.1 + (b.1 - a.1) * k / n)));
        }
    }
    place_labels(
        root,
        &labels,
        &obstacles,
        &line_samples,
        bounds,
        &font(label_size),
    )?;
    let legend_at = (xr.start + 20, yr.start + 20);
    // the legend goes where the curve is not: top left (low RED, high HU) is always empty
    root.draw(&Rectangle::new(
        [
            (legend_at.0 - 10, legend_at.1 - 14),
            (
                legend_at.0 + 140,
                legend_at.1 + if base.is_empty() { 14 } else { 40 },
            ),
        ],
        WHITE.mix(0.85).filled(),
    ))
    .map_err(e2s)?;
    draw_legend(root, legend_at, !base.is_empty())
}

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
    let centre_index = summary.slices.as_ref().map(|s| s.centre_index);
    let k = centre_index
        .and_then(|c| slab.series_index.iter().position(|&i| i == c))
        .unwrap_or(n / 2);
    let img = slab.hu.index_axis(ndarray::Axis(0), k);

    // Show the phantom, not the whole field of view: crop to the fitted outline and the ROIs
    // with a margin (the full image when the pose is unknown).
    let (crop_r, crop_c) = crop_region(summary, phantom, slab);
    let (crop_rows, crop_cols) = (crop_r.1 - crop_r.0 + 1, crop_c.1 - crop_c.0 + 1);
    // Display scale: the longer side at ~900 px, at least 1:1, at most 4×.
    let scale = (900.0 / crop_rows.max(crop_cols) as f64).clamp(1.0, 4.0);
    let (w, h) = (
        (crop_cols as f64 * scale).round() as u32,
        (crop_rows as f64 * scale).round() as u32,
    );
    let buf = grey_pixels(img, (crop_r.0, crop_c.0), scale, (w, h));
    // image frame (mm) → display pixels
    let to_px = |x_mm: f64, y_mm: f64| -> (i32, i32) {
        (
            ((slab.col_of(x_mm) - crop_c.0 as f64 + 0.5) * scale).round() as i32,
            ((slab.row_of(y_mm) - crop_r.0 as f64 + 0.5) * scale).round() as i32,
        )
    };
    let mm_to_px = scale / slab.pixel_mm[1];

    let top = 64;
    let panel = 430;
    let (cw, ch) = (w + panel, (h + top).max(700));
    render_png(path, (cw, ch), |root| {
        root.fill(&RGBColor(0x20, 0x20, 0x20)).map_err(e2s)?;
        let z = slab
            .z_mm
            .get(k)
            .map(|z| format!(", z {z:.1} mm"))
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
        .map_err(e2s)?;
        let image_area = root.margin(top, 0, 0, panel);
        let element = BitMapElement::with_owned_buffer((0, 0), (w, h), buf)
            .ok_or("image buffer size mismatch")?;
        image_area.draw(&element).map_err(e2s)?;

        // phantom outline, centre and orientation
        if let Some(pose) = summary.pose {
            if let Some(def) = phantom {
                let pts: Vec<(i32, i32)> = outline_points(&def.outline, &pose)
                    .into_iter()
                    .map(|(x, y)| to_px(x, y))
                    .collect();
                image_area
                    .draw(&PathElement::new(pts, OUTLINE.mix(0.8).stroke_width(2)))
                    .map_err(e2s)?;
            }
            let c = to_px(pose.centre_x_mm, pose.centre_y_mm);
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
        }

        // ROIs: insert outline (thin), ROI circle (thick), label outward from the centre.
        let centre = summary
            .pose
            .map(|p| to_px(p.centre_x_mm, p.centre_y_mm))
            .unwrap_or(((w / 2) as i32, (h / 2) as i32));
        let failing = failing_materials(summary);
        let label_style = font(15.0);
        // circles first, then labels placed where they cover no other insert and no label
        struct Mark {
            p: (i32, i32),
            insert_r: i32,
            text: String,
            colour: RGBColor,
        }
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
                let p = to_px(r.center_x_mm, r.center_y_mm);
                let insert_r = (r.insert_radius_mm * mm_to_px).round().max(2.0) as i32;
                let roi_r = (r.roi_radius_mm * mm_to_px).round().max(2.0) as i32;
                image_area
                    .draw(&Circle::new(p, insert_r, colour.mix(0.45).stroke_width(1)))
                    .map_err(e2s)?;
                image_area
                    .draw(&Circle::new(p, roi_r, colour.stroke_width(2)))
                    .map_err(e2s)?;
                let text = if r.hu_mean.is_finite() {
                    format!("{} {:.0}", r.insert, r.hu_mean)
                } else {
                    format!("{} —", r.insert)
                };
                marks.push(Mark {
                    p,
                    insert_r,
                    text,
                    colour,
                });
            }
        }
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
            let (tw, th) = (tw as i32, th as i32);
            // preferred direction: away from the phantom centre (down for the centre hole)
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
                let hits = circles
                    .iter()
                    .enumerate()
                    .filter(|(j, c)| *j != i && overlaps(**c, r))
                    .count()
                    + placed.iter().filter(|c| overlaps(**c, r)).count();
                let cost = hits as f64 * 100.0 + k as f64;
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, r));
                }
            }
            let Some((_, r)) = best else { continue };
            placed.push(r);
            // a short leader from the insert's edge to the label ties each label to its insert
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
                    label_style.color(&mk.colour),
                ))
                .map_err(e2s)?;
        }

        // side panel
        let side = root.margin(top, 0, w as i32 + 16, 10);
        let y = std::cell::Cell::new(8);
        let white = font(16.0).color(&WHITE);
        let grey = font(15.0).color(&RGBColor(0xbb, 0xbb, 0xbb));
        let line = |text: String, style: &TextStyle, dy: i32| -> Result<(), String> {
            side.draw(&Text::new(text, (0, y.get()), style.clone()))
                .map_err(e2s)?;
            y.set(y.get() + dy);
            Ok(())
        };
        if let Some(name) = &summary.phantom.name {
            for part in wrap(&side, name, &white, panel as i32 - 30)? {
                line(part, &white, 22)?;
            }
            line(String::new(), &white, 4)?;
        }
        if let Some(p) = summary.pose {
            line(
                format!(
                    "centre x {:+.1} mm, y {:+.1} mm",
                    p.centre_x_mm, p.centre_y_mm
                ),
                &white,
                22,
            )?;
            line(
                format!("rotation {:+.1}° (clockwise on screen)", p.rotation_deg),
                &white,
                22,
            )?;
        }
        if let Some(s) = &summary.slices {
            line(
                format!(
                    "ROIs averaged over {} slice{} ({} mm slab)",
                    s.indices.len(),
                    if s.indices.len() == 1 { "" } else { "s" },
                    s.slab_mm
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
            line(
                format!(
                    "ROI radius {:.1} mm ({:.1} px), insert radius {:.1} mm",
                    r.roi_radius_mm, r.roi_radius_px, r.insert_radius_mm
                ),
                &white,
                22,
            )?;
        }
        line(
            "yellow: ROI (thick) and insert (thin)".into(),
            &font(15.0).color(&ROI),
            20,
        )?;
        line(
            "cyan: fitted phantom outline and centre".into(),
            &font(15.0).color(&OUTLINE),
            20,
        )?;
        if !failing.is_empty() {
            line(
                "red: out of tolerance or failing an absolute check".into(),
                &font(15.0).color(&FAIL),
                20,
            )?;
        }
        line(String::new(), &grey, 10)?;
        line(
            "ROI   insert   mean ± std HU".into(),
            &bold(15.0).color(&WHITE),
            22,
        )?;
        let mut rois: Vec<&crate::analysis::RoiMeasurement> =
            summary.inserts.iter().flat_map(|m| m.rois.iter()).collect();
        rois.sort_by(|a, b| a.hole.cmp(&b.hole));
        let red_row = font(15.0).color(&FAIL);
        for r in rois {
            let style = if failing.contains(&r.insert.as_str()) {
                &red_row
            } else {
                &grey
            };
            line(
                format!(
                    "{}  {}  {:.1} ± {:.1}",
                    r.hole, r.insert, r.hu_mean, r.hu_std
                ),
                style,
                20,
            )?;
        }
        // the run's warnings (e.g. a material that was not found), as far as they fit
        if !summary.warnings.is_empty() {
            let warn = font(14.0).color(&RGBColor(0xff, 0xa0, 0x40));
            line(String::new(), &grey, 8)?;
            line(
                "Warnings:".into(),
                &bold(16.0).color(&RGBColor(0xff, 0xa0, 0x40)),
                22,
            )?;
            'outer: for w in &summary.warnings {
                for (i, part) in wrap(&side, w, &warn, panel as i32 - 40)?
                    .into_iter()
                    .enumerate()
                {
                    if y.get() > ch as i32 - top as i32 - 30 {
                        line("…".into(), &warn, 18)?;
                        break 'outer;
                    }
                    let text = if i == 0 {
                        format!("• {part}")
                    } else {
                        format!("  {part}")
                    };
                    line(text, &warn, 18)?;
                }
            }
        }
        Ok(())
    })
}

/// Greedy word wrap of `text` to lines at most `max_w` pixels wide.
fn wrap(
    area: &DrawingArea<BitMapBackend, Shift>,
    text: &str,
    style: &TextStyle,
    max_w: i32,
) -> Result<Vec<String>, String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        let (w, _) = area.estimate_text_size(&candidate, style).map_err(e2s)?;
        if w as i32 > max_w && !cur.is_empty() {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    Ok(lines)
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

const BAND: RGBColor = RGBColor(0xd6, 0xef, 0xd6);
const BAND_EDGE: RGBColor = RGBColor(0x7c, 0xb8, 0x7c);
const THIS_RUN: RGBColor = RGBColor(0x80, 0x80, 0x80);

/// `YYYY-MM-DD` → `MM-DD` (anything else as given), for tick labels.
fn short_date(date: &str) -> &str {
    let b = date.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        &date[5..]
    } else {
        date
    }
}

/// `hu_red_PHANTOM_trend.png`: ΔHU of every material over the runs of the trend (oldest
/// first, this run last), one small panel per material with the ±tolerance band shaded and a
/// zero line; points inside the band blue, outside red. Missing values are skipped. Without
/// any run or material (or no ΔHU at all) the PNG says "no runs with a baseline yet".
pub fn write_trend_png(
    trend: &super::email::Trend,
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let n_runs = trend.runs.len();
    let panels = trend_panels(trend);
    let any = panels.iter().any(|p| !p.pts.is_empty());
    let title = title.to_string();

    if !any {
        return render_png(path, (1200, 500), |root| {
            root.draw(&Text::new(
                title.clone(),
                (600, 20),
                bold(26.0).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(e2s)?;
            root.draw(&Text::new(
                "no runs with a baseline yet",
                (600, 250),
                font(26.0)
                    .color(&RGBColor(0x55, 0x55, 0x55))
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(e2s)?;
            Ok(())
        });
    }

    let n_mat = panels.len();
    let cols = match n_mat {
        0..=4 => n_mat.max(1),
        5..=9 => 3,
        _ => 4,
    };
    let grid_rows = n_mat.div_ceil(cols).max(1);
    let (top, bottom) = (86u32, 78u32);
    let panel_h = if grid_rows <= 2 { 300 } else { 250 };
    let width = 1200u32;
    let height = (top + grid_rows as u32 * panel_h + bottom).max(500);

    // run labels: MM-DD over #id ("this run" for a run not stored yet: id 0)
    let label = |r: &super::email::TrendRun| {
        if r.run_id > 0 {
            format!("#{}", r.run_id)
        } else {
            "this run".to_string()
        }
    };
    let ticks: Vec<(String, String)> = trend
        .runs
        .iter()
        .map(|r| (short_date(&r.date).to_string(), label(r)))
        .collect();
    let run_list: Vec<String> = trend
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let this = if i + 1 == n_runs && r.run_id > 0 {
                " (this run)"
            } else {
                ""
            };
            format!("{} {}{this}", label(r), r.date)
        })
        .collect();

    render_png(path, (width, height), |root| {
        root.draw(&Text::new(
            title.clone(),
            (width as i32 / 2, 12),
            bold(26.0).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(
            if n_runs == 1 {
                "ΔHU = HU − baseline HU per material, this run only (no earlier run with a \
                 baseline); shaded: ± tolerance; red: outside"
                    .to_string()
            } else {
                format!(
                    "ΔHU = HU − baseline HU per material over the last {n_runs} runs \
                     (oldest first, grey column = this run); shaded: ± tolerance; red: outside"
                )
            },
            (width as i32 / 2, 50),
            font(16.0)
                .color(&RGBColor(0x44, 0x44, 0x44))
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e2s)?;
        let grid = root
            .margin(top, bottom, 8, 8)
            .split_evenly((grid_rows, cols));
        for (panel, area) in panels.iter().zip(grid.iter()) {
            draw_trend_panel(root, area, panel, n_runs, &ticks)?;
        }
        // which run is which, with full dates
        let style = font(14.0).color(&RGBColor(0x44, 0x44, 0x44));
        let mut y = height as i32 - bottom as i32 + 14;
        let text = format!("Runs, oldest first: {}", run_list.join(",  "));
        for line in wrap(root, &text, &style, width as i32 - 40)?
            .into_iter()
            .take(3)
        {
            root.draw(&Text::new(line, (20, y), style.clone()))
                .map_err(e2s)?;
            y += 20;
        }
        Ok(())
    })
}

/// One material's panel of the trend plot.
struct TrendPanel {
    name: String,
    /// `None` when the tolerance is not a positive number (no band is drawn).
    tol: Option<f64>,
    /// (position of the run in the trend, ΔHU), finite values only.
    pts: Vec<(usize, f64)>,
}

impl TrendPanel {
    fn outside(&self, v: f64) -> bool {
        self.tol.is_some_and(|t| v.abs() > t)
    }

    /// The y range: the band, zero and every point, with a margin.
    fn y_range(&self) -> (f64, f64) {
        let t = self.tol.unwrap_or(0.0);
        let (lo, hi) = self
            .pts
            .iter()
            .map(|p| p.1)
            .fold((-t, t), |(a, b), v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.12).max(1.0);
        (lo - pad, hi + pad)
    }
}

/// The panels of the trend plot, in the trend's material order; `None` and non-finite values
/// are skipped, and values of materials the trend does not list are ignored.
fn trend_panels(trend: &super::email::Trend) -> Vec<TrendPanel> {
    trend
        .materials
        .iter()
        .map(|(name, tol)| {
            let pts = trend
                .runs
                .iter()
                .enumerate()
                .filter_map(|(i, run)| {
                    let v = run
                        .delta_hu
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, v)| *v)
                        .filter(|v| v.is_finite())?;
                    Some((i, v))
                })
                .collect();
            TrendPanel {
                name: name.clone(),
                tol: Some(*tol).filter(|t| t.is_finite() && *t > 0.0),
                pts,
            }
        })
        .collect()
}

fn draw_trend_panel(
    root: &DrawingArea<BitMapBackend, Shift>,
    area: &DrawingArea<BitMapBackend, Shift>,
    panel: &TrendPanel,
    n_runs: usize,
    ticks: &[(String, String)],
) -> Result<(), String> {
    let (name, tol, pts) = (&panel.name, panel.tol, &panel.pts);
    let outside = |v: f64| panel.outside(v);
    let (y0, y1) = panel.y_range();
    // at least three runs' width, so that one or two runs do not fill the panel
    let side = 0.6 + 0.5 * 3usize.saturating_sub(n_runs) as f64;
    let (x0, x1) = (-side, n_runs.max(1) as f64 - 1.0 + side);

    let last = pts.iter().find(|p| p.0 + 1 == n_runs).map(|p| p.1);
    let tol_text = tol
        .map(|t| {
            if t.fract() == 0.0 {
                format!("±{t:.0} HU")
            } else {
                format!("±{t} HU")
            }
        })
        .unwrap_or_else(|| "no tolerance".into());
    let now = last
        .map(|v| format!("now {v:+.1}"))
        .unwrap_or_else(|| "now –".into());
    let caption = format!("{name}  ({tol_text}; {now})");
    let caption_style = if last.is_some_and(outside) {
        bold(16.0).color(&FAIL)
    } else {
        bold(16.0)
    };

    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .caption(caption, caption_style)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e2s)?;
    let span = y1 - y0;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(6)
        .light_line_style(GRID.mix(0.4))
        .bold_line_style(GRID)
        .label_style(font(12.0))
        .y_label_formatter(&|v| {
            if span < 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        })
        .draw()
        .map_err(e2s)?;
    // the band, this run's column (translucent, over the band), zero
    if let Some(t) = tol {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, -t), (x1, t)],
                BAND.mix(0.8).filled(),
            )))
            .map_err(e2s)?;
        for edge in [-t, t] {
            chart
                .draw_series(LineSeries::new(
                    [(x0, edge), (x1, edge)],
                    BAND_EDGE.stroke_width(1),
                ))
                .map_err(e2s)?;
        }
    }
    if n_runs > 0 {
        let c = (n_runs - 1) as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(c - 0.35, y0), (c + 0.35, y1)],
                THIS_RUN.mix(0.15).filled(),
            )))
            .map_err(e2s)?;
    }
    chart
        .draw_series(LineSeries::new(
            [(x0, 0.0), (x1, 0.0)],
            BLACK.mix(0.55).stroke_width(1),
        ))
        .map_err(e2s)?;
    if pts.len() >= 2 {
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|&(i, v)| (i as f64, v)),
                RGBColor(0x90, 0x90, 0x90).stroke_width(1),
            ))
            .map_err(e2s)?;
    }
    chart
        .draw_series(pts.iter().map(|&(i, v)| {
            let colour = if outside(v) { FAIL } else { MEASURED };
            let r = if i + 1 == n_runs { 6 } else { 4 };
            Circle::new((i as f64, v), r, colour.filled())
        }))
        .map_err(e2s)?;

    // x tick labels, drawn here so that every k-th run (and always this run) is labelled
    let plot = chart.plotting_area();
    let (xr, yr) = plot.get_pixel_range();
    let per_run = (xr.end - xr.start) as f64 / n_runs.max(1) as f64;
    let step = (42.0 / per_run.max(1.0)).ceil().max(1.0) as usize;
    let date_style = font(12.0).pos(Pos::new(HPos::Center, VPos::Top));
    let id_style = font(11.0)
        .color(&RGBColor(0x66, 0x66, 0x66))
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, (date, id)) in ticks.iter().enumerate() {
        let is_last = i + 1 == n_runs;
        // label this (the last) run, and every step-th run counted back from it
        if !is_last && (n_runs - 1 - i) % step != 0 {
            continue;
        }
        let (px, _) = plot.map_coordinate(&(i as f64, y0));
        root.draw(&PathElement::new(
            vec![(px, yr.end), (px, yr.end + 4)],
            BLACK.stroke_width(1),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(
            date.clone(),
            (px, yr.end + 6),
            date_style.clone(),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(id.clone(), (px, yr.end + 21), id_style.clone()))
            .map_err(e2s)?;
    }
    Ok(())
}

/// `hu_red_PHANTOM_preview.png`, for ERROR reports: what was seen. One slice of `stack`
/// (window −1000…+1000 HU, no data black; an out-of-range `slice` shows the middle one), the
/// title above and `lines` beside it.
pub fn write_preview_png(
    stack: &HuStack,
    slice: usize,
    title: &str,
    lines: &[String],
    path: &Path,
) -> Result<(), ReportError> {
    let (n, rows, cols) = (stack.n_slices(), stack.rows(), stack.cols());
    if n == 0 || rows == 0 || cols == 0 {
        return Err(ReportError::other(path, "the image stack is empty"));
    }
    let k = preview_slice(n, slice);
    let (w, h, buf) = grey_slice(stack, k, 720.0);
    let idx = stack.series_index.get(k).copied().unwrap_or(k);
    let z = stack
        .z_mm
        .get(k)
        .filter(|z| z.is_finite())
        .map(|z| format!(", z {z:.1} mm"))
        .unwrap_or_default();
    let subtitle = format!(
        "slice {} of {n} (series index {idx}{z}), {cols} × {rows} pixels, window −1000…+1000 HU, \
         black: no data",
        k + 1
    );
    let title = title.to_string();
    let top = 72u32;
    let panel = 470u32;
    let (cw, ch) = (w + panel, (h + top + 8).max(560));
    render_png(path, (cw, ch), |root| {
        root.fill(&RGBColor(0x20, 0x20, 0x20)).map_err(e2s)?;
        root.draw(&Text::new(
            title.clone(),
            (14, 12),
            bold(24.0).color(&WHITE),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(
            subtitle.clone(),
            (14, 44),
            font(15.0).color(&RGBColor(0xbb, 0xbb, 0xbb)),
        ))
        .map_err(e2s)?;
        let image_area = root.margin(top, 0, 0, panel);
        let element = BitMapElement::with_owned_buffer((0, 0), (w, h), buf)
            .ok_or("image buffer size mismatch")?;
        image_area.draw(&element).map_err(e2s)?;

        let side = root.margin(top, 0, w as i32 + 16, 10);
        let style = font(16.0).color(&WHITE);
        let mut y = 8;
        'outer: for text in lines {
            for (i, part) in wrap(&side, text, &style, panel as i32 - 40)?
                .into_iter()
                .enumerate()
            {
                if y > ch as i32 - top as i32 - 30 {
                    side.draw(&Text::new("…", (0, y), style.clone()))
                        .map_err(e2s)?;
                    break 'outer;
                }
                let part = if i == 0 { part } else { format!("  {part}") };
                side.draw(&Text::new(part, (0, y), style.clone()))
                    .map_err(e2s)?;
                y += 22;
            }
            y += 6;
        }
        Ok(())
    })
}

/// The slice a preview shows: `slice`, or the middle one when out of range.
fn preview_slice(n: usize, slice: usize) -> usize {
    if slice < n {
        slice
    } else {
        n / 2
    }
}

/// The RGB pixels of a `w`×`h` view of `img` (window −1000…+1000 HU, NaN black): display pixel
/// (u, v) samples the image bilinearly at `origin + (u, v) / scale` (row, column); the overlay
/// and the preview share it.
fn grey_pixels(
    img: ndarray::ArrayView2<'_, f32>,
    origin: (usize, usize),
    scale: f64,
    (w, h): (u32, u32),
) -> Vec<u8> {
    let (rows, cols) = img.dim();
    let grey = |r: usize, c: usize| -> f64 {
        let v = img[[r, c]];
        if v.is_finite() {
            ((v as f64 + 1000.0) / 2000.0).clamp(0.0, 1.0) * 255.0
        } else {
            0.0
        }
    };
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    for v in 0..h as usize {
        let sy = ((v as f64 + 0.5) / scale - 0.5 + origin.0 as f64).clamp(0.0, (rows - 1) as f64);
        let (r0, fy) = (sy.floor() as usize, sy.fract());
        let r1 = (r0 + 1).min(rows - 1);
        for u in 0..w as usize {
            let sx =
                ((u as f64 + 0.5) / scale - 0.5 + origin.1 as f64).clamp(0.0, (cols - 1) as f64);
            let (c0, fx) = (sx.floor() as usize, sx.fract());
            let c1 = (c0 + 1).min(cols - 1);
            let g = (grey(r0, c0) * (1.0 - fx) + grey(r0, c1) * fx) * (1.0 - fy)
                + (grey(r1, c0) * (1.0 - fx) + grey(r1, c1) * fx) * fy;
            let g = g.round().clamp(0.0, 255.0) as u8;
            let i = (v * w as usize + u) * 3;
            buf[i] = g;
            buf[i + 1] = g;
            buf[i + 2] = g;
        }
    }
    buf
}

/// Slice `k` of a non-empty `stack` as an RGB buffer (window −1000…+1000 HU, NaN black), scaled
/// so that the longer side is about `longer_side` pixels (at most 4×): (width, height, pixels).
fn grey_slice(stack: &HuStack, k: usize, longer_side: f64) -> (u32, u32, Vec<u8>) {
    let (rows, cols) = (stack.rows(), stack.cols());
    let img = stack.hu.index_axis(ndarray::Axis(0), k);
    let scale = (longer_side / rows.max(cols) as f64).clamp(0.05, 4.0);
    let w = ((cols as f64 * scale).round() as u32).max(1);
    let h = ((rows as f64 * scale).round() as u32).max(1);
    let buf = grey_pixels(img, (0, 0), scale, (w, h));
    (w, h, buf)
}

#[cfg(test)]
mod tests {
    use super::super::email::{Trend, TrendRun};
    use super::*;
    use ndarray::Array3;

    /// Check the PNG's chunk structure (signature, IHDR first, IDAT, IEND last, lengths
    /// consistent) and return its (width, height).
    fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        assert_eq!(
            &b[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            path.display()
        );
        let mut i = 8;
        let mut types: Vec<[u8; 4]> = Vec::new();
        while i + 12 <= b.len() {
            let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            types.push(b[i + 4..i + 8].try_into().unwrap());
            i += 12 + len;
        }
        assert_eq!(i, b.len(), "chunk lengths do not add up");
        assert_eq!(types.first(), Some(b"IHDR"));
        assert_eq!(types.last(), Some(b"IEND"));
        assert!(types.contains(b"IDAT"));
        // 8-bit RGB
        assert_eq!((b[24], b[25]), (8, 2));
        (
            u32::from_be_bytes(b[16..20].try_into().unwrap()),
            u32::from_be_bytes(b[20..24].try_into().unwrap()),
        )
    }

    /// Keep a copy for a look when HU_RED_KEEP_PLOTS names a folder (as the writer tests do).
    fn keep(path: &Path) {
        if let Ok(dir) = std::env::var("HU_RED_KEEP_PLOTS") {
            let _ = std::fs::create_dir_all(&dir);
            if let Some(name) = path.file_name() {
                let _ = std::fs::copy(path, Path::new(&dir).join(name));
            }
        }
    }

    fn only_file(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn trend(n_runs: usize) -> Trend {
        let names = [
            "lung_inhale",
            "lung_exhale",
            "adipose",
            "breast",
            "water",
            "muscle",
            "liver",
            "bone_200",
            "bone_800",
        ];
        Trend {
            materials: names
                .iter()
                .map(|n| (n.to_string(), if *n == "water" { 4.0 } else { 30.0 }))
                .collect(),
            runs: (0..n_runs)
                .map(|i| TrendRun {
                    run_id: 100 + i as i64,
                    date: format!("2026-{:02}-15", i % 12 + 1),
                    delta_hu: names
                        .iter()
                        .map(|n| {
                            let v = match *n {
                                // drifts out of its band in the last runs
                                "water" => Some(i as f64 * 3.0),
                                // one missing value
                                "breast" if i == 2 => None,
                                "bone_800" => Some(f64::NAN),
                                _ => Some((i as f64 - 5.0) * 1.5),
                            };
                            (n.to_string(), v)
                        })
                        .chain([("not_in_trend".to_string(), Some(999.0))])
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn trend_panels_skip_missing_values_and_include_the_band() {
        let t = trend(12);
        let panels = trend_panels(&t);
        assert_eq!(panels.len(), 9);
        let water = &panels[4];
        assert_eq!(water.name, "water");
        assert_eq!(water.tol, Some(4.0));
        assert_eq!(water.pts.len(), 12);
        assert_eq!(water.pts[11], (11, 33.0));
        // out of band: |ΔHU| > 4 from the third run on
        let out: Vec<usize> = water
            .pts
            .iter()
            .filter(|p| water.outside(p.1))
            .map(|p| p.0)
            .collect();
        assert_eq!(out, (2..12).collect::<Vec<_>>());
        let (y0, y1) = water.y_range();
        assert!(y0 < -4.0 && y1 > 33.0, "{y0} {y1}");
        // a missing value is skipped, not drawn at zero
        let breast = &panels[3];
        assert_eq!(breast.pts.len(), 11);
        assert!(breast.pts.iter().all(|p| p.0 != 2));
        // NaN is skipped; the band alone sets the range
        let bone = &panels[8];
        assert!(bone.pts.is_empty());
        let (y0, y1) = bone.y_range();
        assert!(y0 < -30.0 && y1 > 30.0, "{y0} {y1}");
        // inside the band: nothing outside
        assert!(panels[0].pts.iter().all(|p| !panels[0].outside(p.1)));
        // no tolerance: no band, nothing is "outside"
        let t = Trend {
            materials: vec![("x".into(), f64::NAN)],
            runs: vec![TrendRun {
                run_id: 1,
                date: "2026-01-01".into(),
                delta_hu: vec![("x".into(), Some(50.0))],
            }],
        };
        let p = &trend_panels(&t)[0];
        assert_eq!(p.tol, None);
        assert!(!p.outside(50.0));
        let (y0, y1) = p.y_range();
        assert!(y0 < 0.0 && y1 > 50.0);
    }

    #[test]
    fn trend_png_several_materials_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::trend_png_name("cirs062"));
        write_trend_png(&trend(12), "ΔHU trend — CT-SIM-1 — cirs062", &path).unwrap();
        keep(&path);
        let (w, h) = png_size(&path);
        // 9 materials: a 3 × 3 grid
        assert_eq!(w, 1200);
        assert!((800..=1000).contains(&h), "{w}x{h}");
        assert_eq!(only_file(dir.path()), ["hu_red_cirs062_trend.png"]);
    }

    #[test]
    fn trend_png_single_run_and_no_runs() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.png");
        write_trend_png(&trend(1), "one run", &one).unwrap();
        keep(&one);
        let (w, h) = png_size(&one);
        assert_eq!(w, 1200);
        assert!(h >= 500, "{w}x{h}");

        let none = dir.path().join("none.png");
        write_trend_png(&trend(0), "no runs", &none).unwrap();
        assert_eq!(png_size(&none), (1200, 500));

        let no_materials = dir.path().join("nomat.png");
        let t = Trend {
            materials: vec![],
            runs: trend(3).runs,
        };
        write_trend_png(&t, "no materials", &no_materials).unwrap();
        assert_eq!(png_size(&no_materials), (1200, 500));

        // a few materials: one row of panels (at least 500 px high)
        let few = dir.path().join("few.png");
        let mut t = trend(5);
        t.materials.truncate(2);
        write_trend_png(&t, "two materials", &few).unwrap();
        assert_eq!(png_size(&few), (1200, 500));
        let mut names = only_file(dir.path());
        names.sort();
        assert_eq!(names, ["few.png", "nomat.png", "none.png", "one.png"]);
    }

    fn stack(n: usize, rows: usize, cols: usize) -> HuStack {
        let mut hu = Array3::<f32>::from_elem((n, rows, cols), 0.0);
        for k in 0..n {
            for r in 0..rows {
                for c in 0..cols {
                    hu[[k, r, c]] = if r < rows / 4 {
                        f32::NAN
                    } else if c < cols / 2 {
                        -1000.0
                    } else {
                        1000.0 + k as f32
                    };
                }
            }
        }
        HuStack {
            hu,
            pixel_mm: [0.8, 0.8],
            origin_mm: [0.0, 0.0],
            z_mm: (0..n).map(|k| k as f64 * 2.0).collect(),
            series_index: (0..n).map(|k| 10 + k).collect(),
            thickness_mm: 2.0,
            factor: 1,
        }
    }

    #[test]
    fn preview_grey_levels_and_slice_choice() {
        assert_eq!(preview_slice(3, 0), 0);
        assert_eq!(preview_slice(3, 2), 2);
        assert_eq!(preview_slice(3, 3), 1);
        assert_eq!(preview_slice(5, usize::MAX), 2);
        let s = stack(3, 64, 80);
        let (w, h, buf) = grey_slice(&s, 1, 720.0);
        // longer side 80 px, at most 4×
        assert_eq!((w, h), (320, 256));
        assert_eq!(buf.len(), 320 * 256 * 3);
        let px = |u: usize, v: usize| buf[(v * w as usize + u) * 3];
        assert_eq!(px(300, 5), 0, "NaN is black");
        assert_eq!(px(10, 200), 0, "-1000 HU is black");
        assert_eq!(px(310, 200), 255, "+1000 HU is white");
        let (w, h, _) = grey_slice(&stack(1, 2000, 1000), 0, 720.0);
        assert_eq!((w, h), (360, 720));
    }

    #[test]
    fn preview_png_with_nan_and_an_out_of_range_slice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::preview_png_name("unknown"));
        let lines = vec![
            "Could not analyse: no known phantom matched".to_string(),
            "Series: QA HU-RED ".repeat(20),
            "120 slices".to_string(),
        ];
        write_preview_png(&stack(3, 64, 80), 99, "What hu-red saw", &lines, &path).unwrap();
        keep(&path);
        // the 320 × 256 image and the 470 px text panel; at least 560 high
        assert_eq!(png_size(&path), (790, 560));
        assert_eq!(only_file(dir.path()), ["hu_red_unknown_preview.png"]);

        let empty = HuStack {
            hu: Array3::<f32>::zeros((0, 0, 0)),
            z_mm: vec![],
            series_index: vec![],
            ..stack(1, 1, 1)
        };
        let bad = dir.path().join("empty.png");
        let err = write_preview_png(&empty, 0, "x", &[], &bad).unwrap_err();
        assert!(err.to_string().contains("empty.png"), "{err}");
        assert!(!bad.exists());
    }

    #[test]
    fn new_file_names_follow_the_contract() {
        assert_eq!(
            super::super::trend_png_name("cirs062"),
            "hu_red_cirs062_trend.png"
        );
        assert_eq!(
            super::super::preview_png_name(super::super::UNKNOWN_PHANTOM),
            "hu_red_unknown_preview.png"
        );
        assert_eq!(
            super::super::trend_png_name("a/b c"),
            "hu_red_a_b_c_trend.png"
        );
    }
}
