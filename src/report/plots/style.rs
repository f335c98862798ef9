//! The look every plot shares: colours, the embedded DejaVu font (registered once as plotters'
//! "sans-serif") and its even pixel sizes, [`render_png`] (the atomic PNG write every plot goes
//! through), label placement without overlaps, word wrap, the grey-level view of a CT slice and
//! which materials are drawn as failing.

use crate::report::{material_check, MaterialCheck, ReportError, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";
/// This run's points and curve; trend points inside their band.
pub(super) const MEASURED: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
pub(super) const BASELINE: RGBColor = RGBColor(0xe0, 0x7b, 0x00);
pub(super) const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
pub(super) const ROI: RGBColor = RGBColor(0xff, 0xe0, 0x20);
pub(super) const OUTLINE: RGBColor = RGBColor(0x30, 0xd0, 0xff);
pub(super) const FAIL: RGBColor = RGBColor(0xff, 0x40, 0x40);
/// The trend's ± tolerance band, its edges, and this run's column.
pub(super) const BAND: RGBColor = RGBColor(0xd6, 0xef, 0xd6);
pub(super) const BAND_EDGE: RGBColor = RGBColor(0x7c, 0xb8, 0x7c);
pub(super) const THIS_RUN: RGBColor = RGBColor(0x80, 0x80, 0x80);

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

pub(super) fn font(size: f64) -> TextStyle<'static> {
    (FONT, even(size)).into_font().into()
}

pub(super) fn bold(size: f64) -> TextStyle<'static> {
    (FONT, even(size), FontStyle::Bold).into_font().into()
}

/// Render to a hidden temporary file next to `path`, then make it durable there (see
/// [`crate::durable::persist`]): a reader never sees a half written PNG.
pub(super) fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> Result<(), ReportError> {
    register_fonts();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ReportError::other(path, "not a file path"))?;
    // plotters picks the image format by the extension
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
    crate::durable::persist(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

pub(super) fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A label to place near a point (pixel coordinates).
pub(super) struct Label {
    pub(super) text: String,
    pub(super) at: (i32, i32),
    pub(super) color: RGBColor,
}

pub(super) type Rect = (i32, i32, i32, i32);

pub(super) fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Place labels next to their points without overlapping each other or the points, inside
/// `bounds`; draws a leader line when a label had to move away from its point.
pub(super) fn place_labels(
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

/// Greedy word wrap of `text` to lines at most `max_w` pixels wide.
pub(super) fn wrap(
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

/// Materials drawn as failing: out of constancy tolerance, or failing an absolute check (the
/// report's and the verdict's [`material_check`]).
pub(super) fn failing_materials(summary: &Summary) -> Vec<&str> {
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

/// The RGB pixels of a `w`×`h` view of `img` (window −1000…+1000 HU, NaN black): display pixel
/// (u, v) samples the image bilinearly at `origin + (u, v) / scale` (row, column); the overlay
/// and the preview share it.
pub(super) fn grey_pixels(
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
