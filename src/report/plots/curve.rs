//! `hu_red_PHANTOM_curve.png`: the HU–RED curve of this run and of its baseline, the points
//! labelled by insert, a soft-tissue zoom (or a table of the values) beside it.

use super::style::{
    bold, e2s, failing_materials, font, place_labels, render_png, Label, BASELINE, FAIL, GRID,
    MEASURED,
};
use crate::analysis::Baseline;
use crate::report::format::{dicom_date, fixed, signed, tol};
use crate::report::{material_check, MaterialCheck, ReportError, Summary};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;

/// A point of a curve: (insert, RED, mean HU).
type Point = (String, f64, f64);

/// A chart's coordinates: RED on x, HU on y.
type CurveCoord = Cartesian2d<RangedCoordf64, RangedCoordf64>;

/// `hu_red_PHANTOM_curve.png`: RED on x and mean HU on y (the script's axes), the measured
/// points labelled by insert with the piecewise-linear curve through them, and the baseline's
/// points and curve (orange, dashed) when a baseline is given. A zoom panel on the soft-tissue
/// region keeps the close materials (adipose … liver) readable.
pub fn write_curve_png(
    summary: &Summary,
    baseline: Option<&Baseline>,
    path: &Path,
) -> Result<(), ReportError> {
    let data = CurveData::of(summary, baseline);
    render_png(path, (1400, 820), |root| {
        draw_curve_title(root, summary)?;
        let body = root.margin(90, 10, 10, 10);
        let (left, right) = body.split_horizontally(900);

        let all: Vec<&Point> = data.measured.iter().chain(data.base.iter()).collect();
        if all.is_empty() {
            left.draw(&Text::new(
                "no material with a RED was measured",
                (300, 300),
                font(22.0),
            ))
            .map_err(e2s)?;
            return Ok(());
        }
        let zoom_box = soft_tissue_box(&all);
        let (x_range, y_range) = full_ranges(&all);
        let main = View {
            x_range,
            y_range,
            label_size: 20.0,
            caption: "",
            zoom_box: zoom_box.clone(),
        };
        draw_curve_chart(root, &left, &data, &main)?;
        match zoom_box {
            Some((x_range, y_range)) => {
                let zoom = View {
                    x_range,
                    y_range,
                    label_size: 17.0,
                    caption: "soft-tissue zoom",
                    zoom_box: None,
                };
                draw_curve_chart(root, &right, &data, &zoom)?
            }
            None => draw_values_table(&right, summary)?,
        }
        Ok(())
    })
}

/// What the curve plot draws, read from the summary and the baseline.
struct CurveData<'a> {
    /// This run's points with a finite RED and HU, in the curve's order.
    measured: Vec<Point>,
    /// The baseline's points (RED from the baseline, else from this run's material), by HU.
    base: Vec<Point>,
    failing: Vec<&'a str>,
    /// ΔHU of the materials out of tolerance: failing points say by how much.
    deltas: Vec<(String, f64)>,
}

impl<'a> CurveData<'a> {
    fn of(summary: &'a Summary, baseline: Option<&Baseline>) -> Self {
        let measured = summary
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
        let base = baseline
            .map(|b| baseline_points(summary, b))
            .unwrap_or_default();
        let deltas = summary
            .tolerance_evaluation
            .per_insert
            .iter()
            .filter(|c| !c.within_tolerance)
            .filter_map(|c| Some((c.insert.clone(), c.delta_hu.filter(|d| d.is_finite())?)))
            .collect();
        CurveData {
            measured,
            base,
            failing: failing_materials(summary),
            deltas,
        }
    }

    fn fails(&self, insert: &str) -> bool {
        self.failing.contains(&insert)
    }
}

/// The baseline's points with a finite RED and HU, sorted by HU.
fn baseline_points(summary: &Summary, b: &Baseline) -> Vec<Point> {
    let mut base: Vec<Point> = Vec::new();
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
    base
}

/// The title and the subtitle (series, station, date, kV, kernel, constancy).
fn draw_curve_title(
    root: &DrawingArea<BitMapBackend, Shift>,
    summary: &Summary,
) -> Result<(), String> {
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
    .map_err(e2s)
}

/// The main chart's ranges: every point, RED from 0 at most, with margins.
fn full_ranges(all: &[&Point]) -> (Range<f64>, Range<f64>) {
    let (rmin, rmax) = span(all.iter().map(|p| p.1));
    let (hmin, hmax) = span(all.iter().map(|p| p.2));
    let x_range = (rmin.min(0.0) - 0.05)..(rmax + 0.12);
    let pad = ((hmax - hmin) * 0.08).max(50.0);
    let y_range = (hmin - pad)..(hmax + pad);
    (x_range, y_range)
}

/// The soft-tissue zoom when 3 or more materials crowd RED 0.9–1.1 (CIRS: adipose … liver lie
/// within ~100 HU): the main chart marks the region and leaves its labels to the zoom;
/// otherwise (`None`) the right panel lists the values.
fn soft_tissue_box(all: &[&Point]) -> Option<(Range<f64>, Range<f64>)> {
    let zoom: Vec<&Point> = all
        .iter()
        .copied()
        .filter(|p| (0.9..=1.1).contains(&p.1))
        .collect();
    (zoom.len() >= 3).then(|| {
        let (zr0, zr1) = span(zoom.iter().map(|p| p.1));
        let (zh0, zh1) = span(zoom.iter().map(|p| p.2));
        let rpad = ((zr1 - zr0) * 0.15).max(0.01);
        let hpad = ((zh1 - zh0) * 0.15).max(10.0);
        ((zr0 - rpad)..(zr1 + rpad), (zh0 - hpad)..(zh1 + hpad))
    })
}

/// One chart of the figure: its ranges, label size, caption, and the zoom region it marks.
struct View {
    x_range: Range<f64>,
    y_range: Range<f64>,
    label_size: f64,
    caption: &'static str,
    zoom_box: Option<(Range<f64>, Range<f64>)>,
}

impl View {
    fn shows(&self, p: &Point) -> bool {
        self.x_range.contains(&p.1) && self.y_range.contains(&p.2)
    }

    /// Inside the region marked for the zoom (its labels are left to the zoom).
    fn in_zoom(&self, p: &Point) -> bool {
        self.zoom_box
            .as_ref()
            .is_some_and(|(zx, zy)| zx.contains(&p.1) && zy.contains(&p.2))
    }
}

/// One chart: axes, curves and points, labels placed without overlaps, the legend.
fn draw_curve_chart(
    root: &DrawingArea<BitMapBackend, Shift>,
    area: &DrawingArea<BitMapBackend, Shift>,
    data: &CurveData,
    view: &View,
) -> Result<(), String> {
    let mut chart = curve_axes(area, view)?;
    draw_curve_series(&mut chart, data, view)?;
    let plot = chart.plotting_area();
    let (xr, yr) = plot.get_pixel_range();
    let bounds = (xr.start + 2, yr.start + 2, xr.end - 2, yr.end - 2);
    let labels = curve_labels(plot, data, view);
    let mut obstacles: Vec<(i32, i32)> = labels.iter().map(|l| l.at).collect();
    obstacles.extend(
        data.base
            .iter()
            .filter(|p| view.shows(p))
            .map(|p| plot.map_coordinate(&(p.1, p.2))),
    );
    let line_samples = line_samples(plot, [&data.measured, &data.base]);
    place_labels(
        root,
        &labels,
        &obstacles,
        &line_samples,
        bounds,
        &font(view.label_size),
    )?;
    draw_legend(root, (xr.start + 20, yr.start + 20), !data.base.is_empty())
}

/// The chart with its caption, mesh and axis descriptions drawn.
fn curve_axes<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    view: &View,
) -> Result<ChartContext<'a, BitMapBackend<'b>, CurveCoord>, String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(55)
        .y_label_area_size(80);
    if !view.caption.is_empty() {
        builder.caption(view.caption, font(19.0));
    }
    let mut chart = builder
        .build_cartesian_2d(view.x_range.clone(), view.y_range.clone())
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
        .y_label_formatter(&|v| fixed(Some(*v), 0))
        .draw()
        .map_err(e2s)?;
    Ok(chart)
}

/// The baseline (dashed, open circles), this run (solid, filled; failing points red) and the
/// frame of the zoom region.
fn draw_curve_series(
    chart: &mut ChartContext<BitMapBackend, CurveCoord>,
    data: &CurveData,
    view: &View,
) -> Result<(), String> {
    let (measured, base) = (&data.measured, &data.base);
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
                .filter(|p| view.shows(p))
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
        .draw_series(measured.iter().filter(|p| view.shows(p)).map(|p| {
            let c = if data.fails(&p.0) { FAIL } else { MEASURED };
            Circle::new((p.1, p.2), 5, c.filled())
        }))
        .map_err(e2s)?;

    if let Some((zx, zy)) = &view.zoom_box {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(zx.start, zy.start), (zx.end, zy.end)],
                RGBColor(0x70, 0x70, 0x70).stroke_width(1),
            )))
            .map_err(e2s)?;
    }
    Ok(())
}

/// A label per measured point shown (not those left to the zoom): the insert, with ΔHU when
/// it fails constancy.
fn curve_labels(
    plot: &DrawingArea<BitMapBackend, CurveCoord>,
    data: &CurveData,
    view: &View,
) -> Vec<Label> {
    data.measured
        .iter()
        .filter(|p| view.shows(p))
        .filter(|p| !view.in_zoom(p))
        .map(|p| Label {
            text: match data.deltas.iter().find(|d| d.0 == p.0) {
                Some((_, d)) => format!("{} ({} HU)", p.0, signed(Some(*d), 0)),
                None => p.0.clone(),
            },
            at: plot.map_coordinate(&(p.1, p.2)),
            color: if data.fails(&p.0) {
                FAIL
            } else {
                RGBColor(0x10, 0x10, 0x10)
            },
        })
        .collect()
}

/// Pixel samples every ~5 px along the curves: labels may cross them, at a cost.
fn line_samples(
    plot: &DrawingArea<BitMapBackend, CurveCoord>,
    curves: [&[Point]; 2],
) -> Vec<(i32, i32)> {
    let mut samples: Vec<(i32, i32)> = Vec::new();
    for series in curves {
        let px: Vec<(i32, i32)> = series
            .iter()
            .map(|p| plot.map_coordinate(&(p.1, p.2)))
            .collect();
        for w in px.windows(2) {
            let (a, b) = (w[0], w[1]);
            let len = (((b.0 - a.0).pow(2) + (b.1 - a.1).pow(2)) as f64).sqrt();
            let n = (len / 5.0).ceil().max(1.0) as i32;
            samples.extend((0..=n).map(|k| (a.0 + (b.0 - a.0) * k / n, a.1 + (b.1 - a.1) * k / n)));
        }
    }
    samples
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
        let mut cells = vec![m.insert.clone(), fixed(m.red, 3), fixed(Some(m.hu_mean), 1)];
        if ev.has_baseline {
            cells.push(signed(c.and_then(|c| c.delta_hu), 1));
        }
        for ((_, x), cell) in cols.iter().zip(cells) {
            area.draw(&Text::new(cell, (*x, y), style.clone()))
                .map_err(e2s)?;
        }
        y += 28;
    }
    Ok(())
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn subtitle(summary: &Summary) -> String {
    let md = &summary.metadata;
    let mut parts = Vec::new();
    if let Some(s) = md
        .acquisition
        .series_description
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        parts.push(s.to_string());
    }
    if let Some(s) = md
        .acquisition
        .station_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        parts.push(s.to_string());
    }
    if let Some(d) = md
        .acquisition
        .study_date
        .as_deref()
        .filter(|s| s.len() == 8)
    {
        parts.push(dicom_date(d));
    }
    if let Some(k) = md.acquisition.kvp {
        parts.push(format!("{} kV", tol(k)));
    }
    if let Some(k) = md
        .acquisition
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

/// The legend on a white box at `at` (this run; the baseline when there is one).
fn draw_legend(
    area: &DrawingArea<BitMapBackend, Shift>,
    at: (i32, i32),
    with_baseline: bool,
) -> Result<(), String> {
    let (x, y) = at;
    // the legend goes where the curve is not: top left (low RED, high HU) is always empty
    area.draw(&Rectangle::new(
        [
            (x - 10, y - 14),
            (x + 140, y + if with_baseline { 40 } else { 14 }),
        ],
        WHITE.mix(0.85).filled(),
    ))
    .map_err(e2s)?;
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
