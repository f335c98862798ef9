//! `hu_red_PHANTOM_preview.png`, for ERROR reports: one slice of what was loaded, with the
//! reason and what was seen beside it.

use super::style::{bold, e2s, font, grey_pixels, render_png, wrap};
use crate::analysis::HuStack;
use crate::report::format::fixed;
use crate::report::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Height of the title band above the image (pixels).
const TOP: u32 = 72;
/// Width of the text panel right of the image (pixels).
const PANEL: u32 = 470;

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
        .map(|z| format!(", z {} mm", fixed(Some(*z), 1)))
        .unwrap_or_default();
    let subtitle = format!(
        "slice {} of {n} (series index {idx}{z}), {cols} × {rows} pixels, window −1000…+1000 HU, \
         black: no data",
        k + 1
    );
    let (cw, ch) = (w + PANEL, (h + TOP + 8).max(560));
    render_png(path, (cw, ch), |root| {
        root.fill(&RGBColor(0x20, 0x20, 0x20)).map_err(e2s)?;
        root.draw(&Text::new(
            title.to_string(),
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
        let image_area = root.margin(TOP, 0, 0, PANEL);
        let element = BitMapElement::with_owned_buffer((0, 0), (w, h), buf)
            .ok_or("image buffer size mismatch")?;
        image_area.draw(&element).map_err(e2s)?;

        let side = root.margin(TOP, 0, w as i32 + 16, 10);
        draw_lines(&side, lines, ch)
    })
}

/// `lines` down the side panel, each wrapped (continuation lines indented), as far as they fit
/// in a canvas `ch` pixels high ("…" when cut).
fn draw_lines(
    side: &DrawingArea<BitMapBackend, Shift>,
    lines: &[String],
    ch: u32,
) -> Result<(), String> {
    let style = font(16.0).color(&WHITE);
    let mut y = 8;
    for text in lines {
        for (i, part) in wrap(side, text, &style, PANEL as i32 - 40)?
            .into_iter()
            .enumerate()
        {
            if y > ch as i32 - TOP as i32 - 30 {
                side.draw(&Text::new("…", (0, y), style.clone()))
                    .map_err(e2s)?;
                return Ok(());
            }
            let part = if i == 0 { part } else { format!("  {part}") };
            side.draw(&Text::new(part, (0, y), style.clone()))
                .map_err(e2s)?;
            y += 22;
        }
        y += 6;
    }
    Ok(())
}

/// The slice a preview shows: `slice`, or the middle one when out of range.
fn preview_slice(n: usize, slice: usize) -> usize {
    if slice < n {
        slice
    } else {
        n / 2
    }
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
    use super::super::tests::{keep, only_file, png_size};
    use super::*;
    use ndarray::Array3;

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
        let path = dir.path().join(crate::report::preview_png_name("unknown"));
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
}
