//! `hu_red_PHANTOM_trend.png`: ΔHU of every material over the last runs of one scanner and
//! phantom, placed by acquisition time (dates increase left to right, whatever order the runs
//! arrived in), one small panel per material with its ± tolerance band, the baseline runs at
//! ΔHU 0 and each change of baseline marked (see [`crate::report::timeline`]).

use super::style::{
    bold, e2s, font, render_png, wrap, BAND, BAND_EDGE, BASELINE, FAIL, GRID, MEASURED, THIS_RUN,
};
use crate::report::email::{Trend, TrendRun};
use crate::report::format::{fixed, month_day, signed, tol};
use crate::report::timeline::{baseline_marks, BaselineMark, TimeAxis};
use crate::report::{utc_date_of_ms, utc_minute_of_ms, ReportError};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Width of the figure (pixels).
const WIDTH: u32 = 1200;
/// Height of the title band above the panels and of the run list below them (pixels).
const TOP: u32 = 86;
const BOTTOM: u32 = 78;
/// Room left and right of the time axis (which spans 0..1).
const PAD: f64 = 0.06;
/// Half the width of this run's column (axis units).
const COLUMN: f64 = 0.022;

/// A panel's coordinates: the position on the time axis on x, ΔHU on y.
type PanelCoord = Cartesian2d<RangedCoordf64, RangedCoordf64>;

/// `hu_red_PHANTOM_trend.png`: ΔHU of every material over the runs of the trend, placed by
/// acquisition time, one small panel per material with the ±tolerance band shaded and a zero
/// line; points inside the band blue, outside red, this run larger on a grey column; each
/// baseline run a square at ΔHU 0, each change of baseline a dashed line. Missing values are
/// skipped. Without any run or material (or no ΔHU at all) the PNG says "no runs with a
/// baseline yet".
pub fn write_trend_png(trend: &Trend, title: &str, path: &Path) -> Result<(), ReportError> {
    let view = TrendView::of(trend);
    let panels = trend_panels(trend, &view);
    if !panels.iter().any(|p| !p.pts.is_empty()) {
        return render_png(path, (WIDTH, 500), |root| draw_no_trend(root, title));
    }
    let (grid_rows, cols, height) = grid_layout(panels.len());
    let ticks = ticks(&view);
    render_png(path, (WIDTH, height), |root| {
        draw_trend_header(root, title, view.runs.len())?;
        let grid = root
            .margin(TOP, BOTTOM, 8, 8)
            .split_evenly((grid_rows, cols));
        for (panel, area) in panels.iter().zip(grid.iter()) {
            draw_trend_panel(root, area, panel, &view, &ticks)?;
        }
        draw_run_list(root, &run_list(&view), height)
    })
}

/// The trend as drawn: its runs in time order, the axis, the baselines.
struct TrendView<'a> {
    runs: Vec<&'a TrendRun>,
    axis: TimeAxis,
    marks: Vec<BaselineMark>,
}

impl<'a> TrendView<'a> {
    fn of(trend: &'a Trend) -> TrendView<'a> {
        let mut runs: Vec<&TrendRun> = trend.runs.iter().collect();
        // by acquisition; at one time, this run last
        runs.sort_by_key(|r| (r.at_ms, r.this_run, r.run_id));
        let by_time: Vec<(i64, Option<i64>)> =
            runs.iter().map(|r| (r.at_ms, r.baseline_id)).collect();
        let baselines: Vec<(i64, Option<i64>, Option<i64>)> = trend
            .baselines
            .iter()
            .map(|b| (b.id, b.run_id, b.run_at_ms))
            .collect();
        let marks = baseline_marks(&by_time, &baselines);
        let times: Vec<i64> = runs.iter().map(|r| r.at_ms).collect();
        let extra: Vec<i64> = marks.iter().map(|m| m.at_ms).collect();
        TrendView {
            axis: TimeAxis::new(&times, &extra),
            runs,
            marks,
        }
    }

    fn x(&self, at_ms: i64) -> f64 {
        self.axis.position(at_ms)
    }

    fn this_x(&self) -> Option<f64> {
        self.runs
            .iter()
            .find(|r| r.this_run)
            .map(|r| self.x(r.at_ms))
    }

    /// The baseline runs drawn at ΔHU 0: their positions.
    fn baseline_points(&self) -> impl Iterator<Item = f64> + '_ {
        self.marks
            .iter()
            .filter(|m| m.point)
            .map(|m| self.x(m.at_ms))
    }
}
/// The figure without data: the title and "no runs with a baseline yet".
fn draw_no_trend(root: &DrawingArea<BitMapBackend, Shift>, title: &str) -> Result<(), String> {
    root.draw(&Text::new(
        title.to_string(),
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
}

/// The panel grid for `n_mat` materials: (rows, columns, figure height), at least 500 px high.
fn grid_layout(n_mat: usize) -> (usize, usize, u32) {
    let cols = match n_mat {
        0..=4 => n_mat.max(1),
        5..=9 => 3,
        _ => 4,
    };
    let grid_rows = n_mat.div_ceil(cols).max(1);
    let panel_h = if grid_rows <= 2 { 300 } else { 250 };
    let height = (TOP + grid_rows as u32 * panel_h + BOTTOM).max(500);
    (grid_rows, cols, height)
}

/// A run's label under its tick: `#id`, or "this run" for a run not stored yet (id 0).
fn run_label(r: &TrendRun) -> String {
    if r.run_id > 0 {
        format!("#{}", r.run_id)
    } else {
        "this run".to_string()
    }
}

/// Every run and baseline run with its acquisition date and time, in time order.
fn run_list(view: &TrendView) -> Vec<String> {
    let is_baseline =
        |id: i64| id > 0 && view.marks.iter().any(|m| m.point && m.run_id == Some(id));
    let mut items: Vec<(i64, String)> = view
        .runs
        .iter()
        .map(|r| {
            let mut s = format!("{} {}", run_label(r), utc_minute_of_ms(r.at_ms));
            if r.this_run && r.run_id > 0 {
                s += " (this run)";
            }
            if is_baseline(r.run_id) {
                s += " (baseline)";
            }
            (r.at_ms, s)
        })
        .collect();
    for m in view.marks.iter().filter(|m| m.point) {
        if let Some(id) = m
            .run_id
            .filter(|id| !view.runs.iter().any(|r| r.run_id == *id))
        {
            items.push((
                m.at_ms,
                format!("#{id} {} (baseline)", utc_minute_of_ms(m.at_ms)),
            ));
        }
    }
    items.sort_by_key(|i| i.0);
    items.into_iter().map(|i| i.1).collect()
}

/// The title and what the panels show.
fn draw_trend_header(
    root: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    n_runs: usize,
) -> Result<(), String> {
    root.draw(&Text::new(
        title.to_string(),
        (WIDTH as i32 / 2, 12),
        bold(26.0).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(e2s)?;
    let text = if n_runs == 1 {
        "ΔHU = HU − baseline HU per material, this run only (no earlier run with a baseline); \
         shaded: ± tolerance; red: outside"
            .to_string()
    } else {
        format!(
            "ΔHU = HU − baseline HU per material over the last {n_runs} runs, placed by \
             acquisition date; shaded: ± tolerance; red: outside; grey column: this run; \
             square: the baseline run (ΔHU 0); dashed line: a new baseline"
        )
    };
    let style = font(14.0).color(&RGBColor(0x44, 0x44, 0x44));
    let mut y = 44;
    for line in wrap(root, &text, &style, WIDTH as i32 - 60)?
        .into_iter()
        .take(2)
    {
        root.draw(&Text::new(
            line,
            (WIDTH as i32 / 2, y),
            style.pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e2s)?;
        y += 18;
    }
    Ok(())
}

/// Which run is which, with full dates, below the panels (at most three lines).
fn draw_run_list(
    root: &DrawingArea<BitMapBackend, Shift>,
    run_list: &[String],
    height: u32,
) -> Result<(), String> {
    let style = font(14.0).color(&RGBColor(0x44, 0x44, 0x44));
    let mut y = height as i32 - BOTTOM as i32 + 14;
    let text = format!("Runs by acquisition date: {}", run_list.join(",  "));
    for line in wrap(root, &text, &style, WIDTH as i32 - 40)?
        .into_iter()
        .take(3)
    {
        root.draw(&Text::new(line, (20, y), style.clone()))
            .map_err(e2s)?;
        y += 20;
    }
    Ok(())
}

/// One point of a panel.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    /// Position on the time axis.
    x: f64,
    dhu: f64,
    this_run: bool,
}

/// One material's panel of the trend plot.
struct TrendPanel {
    name: String,
    /// `None` when the tolerance is not a positive number (no band is drawn).
    tol: Option<f64>,
    /// The runs' finite values, in time order.
    pts: Vec<Point>,
}

impl TrendPanel {
    fn outside(&self, v: f64) -> bool {
        self.tol.is_some_and(|t| v.abs() > t)
    }

    /// This run's ΔHU.
    fn now(&self) -> Option<f64> {
        self.pts.iter().find(|p| p.this_run).map(|p| p.dhu)
    }

    /// The y range: the band, zero and every point, with a margin.
    fn y_range(&self) -> (f64, f64) {
        let t = self.tol.unwrap_or(0.0);
        let (lo, hi) = self
            .pts
            .iter()
            .map(|p| p.dhu)
            .fold((-t, t), |(a, b), v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.12).max(1.0);
        (lo - pad, hi + pad)
    }
}

/// The panels of the trend plot, in the trend's material order; `None` and non-finite values
/// are skipped, and values of materials the trend does not list are ignored.
fn trend_panels(trend: &Trend, view: &TrendView) -> Vec<TrendPanel> {
    trend
        .materials
        .iter()
        .map(|(name, tol)| {
            let pts = view
                .runs
                .iter()
                .filter_map(|run| {
                    let v = run
                        .delta_hu
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, v)| *v)
                        .filter(|v| v.is_finite())?;
                    Some(Point {
                        x: view.x(run.at_ms),
                        dhu: v,
                        this_run: run.this_run,
                    })
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

/// A label under the axis: the date over the run.
#[derive(Debug, Clone, PartialEq)]
struct Tick {
    x: f64,
    date: String,
    run: String,
    /// Lower first: this run, the baseline runs, then the others (right to left).
    priority: u8,
}

/// Every run's and baseline run's label, most important first.
fn ticks(view: &TrendView) -> Vec<Tick> {
    // month and day; before a break of the axis, year and month
    let before_break = |x: f64| view.axis.break_at().is_some_and(|b| x < b);
    let date = |ms: i64| {
        let d = utc_date_of_ms(ms);
        if before_break(view.x(ms)) {
            d[..7].to_string()
        } else {
            month_day(&d).to_string()
        }
    };
    let mut out: Vec<Tick> = view
        .runs
        .iter()
        .map(|r| Tick {
            x: view.x(r.at_ms),
            date: date(r.at_ms),
            run: run_label(r),
            priority: if r.this_run { 0 } else { 2 },
        })
        .collect();
    out.extend(view.marks.iter().filter(|m| m.point).map(|m| Tick {
        x: view.x(m.at_ms),
        date: date(m.at_ms),
        run: m.run_id.map(|id| format!("#{id}")).unwrap_or_default(),
        priority: 1,
    }));
    out.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.x.total_cmp(&a.x)));
    out
}

/// One material's panel: its caption, the band, this run's column, zero, the baseline changes,
/// the points, the baseline runs, and the run ticks under it.
fn draw_trend_panel(
    root: &DrawingArea<BitMapBackend, Shift>,
    area: &DrawingArea<BitMapBackend, Shift>,
    panel: &TrendPanel,
    view: &TrendView,
    ticks: &[Tick],
) -> Result<(), String> {
    let (y0, y1) = panel.y_range();
    let mut chart = panel_axes(area, panel, (y0, y1))?;
    draw_panel_background(&mut chart, panel, view, (y0, y1))?;
    draw_panel_series(&mut chart, panel, view)?;
    draw_run_ticks(root, chart.plotting_area(), ticks, view.axis.break_at(), y0)
}

/// The panel's caption: the material, its tolerance and this run's ΔHU (red when outside).
fn panel_caption(panel: &TrendPanel) -> (String, TextStyle<'static>) {
    let now = panel.now();
    let tol_text = panel
        .tol
        .map(|t| format!("±{} HU", tol(t)))
        .unwrap_or_else(|| "no tolerance".into());
    let caption = format!("{}  ({tol_text}; now {})", panel.name, signed(now, 1));
    let caption_style = if now.is_some_and(|v| panel.outside(v)) {
        bold(16.0).color(&FAIL)
    } else {
        bold(16.0)
    };
    (caption, caption_style)
}

/// The panel's chart with its caption and y mesh drawn (x ticks are drawn by
/// [`draw_run_ticks`]).
fn panel_axes<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    panel: &TrendPanel,
    (y0, y1): (f64, f64),
) -> Result<ChartContext<'a, BitMapBackend<'b>, PanelCoord>, String> {
    let (caption, caption_style) = panel_caption(panel);
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .caption(caption, caption_style)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(-PAD..1.0 + PAD, y0..y1)
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
        .y_label_formatter(&|v| fixed(Some(*v), if span < 10.0 { 1 } else { 0 }))
        .draw()
        .map_err(e2s)?;
    Ok(chart)
}

/// The band, this run's column (translucent, over the band), zero, a break of the axis, and
/// the changes of baseline (dashed).
fn draw_panel_background(
    chart: &mut ChartContext<BitMapBackend, PanelCoord>,
    panel: &TrendPanel,
    view: &TrendView,
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    let (x0, x1) = (-PAD, 1.0 + PAD);
    if let Some(t) = panel.tol {
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
    if let Some(c) = view.this_x() {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(c - COLUMN, y0), (c + COLUMN, y1)],
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
    if let Some(b) = view.axis.break_at() {
        chart
            .draw_series(DashedLineSeries::new(
                [(b, y0), (b, y1)],
                2,
                4,
                RGBColor(0x99, 0x99, 0x99).stroke_width(1),
            ))
            .map_err(e2s)?;
    }
    for m in view.marks.iter().filter(|m| m.change) {
        let x = view.x(m.at_ms);
        chart
            .draw_series(DashedLineSeries::new(
                [(x, y0), (x, y1)],
                6,
                4,
                BASELINE.stroke_width(2),
            ))
            .map_err(e2s)?;
    }
    Ok(())
}

/// The line through the points, the points (this run's larger; outside the band red) and the
/// baseline runs (white squares at ΔHU 0).
fn draw_panel_series(
    chart: &mut ChartContext<BitMapBackend, PanelCoord>,
    panel: &TrendPanel,
    view: &TrendView,
) -> Result<(), String> {
    let pts = &panel.pts;
    if pts.len() >= 2 {
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.x, p.dhu)),
                RGBColor(0x90, 0x90, 0x90).stroke_width(1),
            ))
            .map_err(e2s)?;
    }
    chart
        .draw_series(pts.iter().map(|p| {
            let colour = if panel.outside(p.dhu) { FAIL } else { MEASURED };
            let r = if p.this_run { 6 } else { 4 };
            Circle::new((p.x, p.dhu), r, colour.filled())
        }))
        .map_err(e2s)?;
    chart
        .draw_series(view.baseline_points().map(|x| {
            EmptyElement::at((x, 0.0))
                + Rectangle::new([(-5, -5), (5, 5)], WHITE.filled())
                + Rectangle::new([(-5, -5), (5, 5)], BASELINE.stroke_width(2))
        }))
        .map_err(e2s)?;
    Ok(())
}

/// The x tick labels (date over run id) under the points, most important first and none
/// overlapping another; a break of the axis marked `//`.
fn draw_run_ticks(
    root: &DrawingArea<BitMapBackend, Shift>,
    plot: &DrawingArea<BitMapBackend, PanelCoord>,
    ticks: &[Tick],
    break_at: Option<f64>,
    y0: f64,
) -> Result<(), String> {
    let (_, yr) = plot.get_pixel_range();
    let date_style = font(12.0).pos(Pos::new(HPos::Center, VPos::Top));
    let id_style = font(11.0)
        .color(&RGBColor(0x66, 0x66, 0x66))
        .pos(Pos::new(HPos::Center, VPos::Top));
    if let Some(b) = break_at {
        let (px, _) = plot.map_coordinate(&(b, y0));
        for dx in [-3, 3] {
            root.draw(&PathElement::new(
                vec![(px + dx - 3, yr.end + 5), (px + dx + 3, yr.end - 5)],
                BLACK.stroke_width(2),
            ))
            .map_err(e2s)?;
        }
    }
    let mut placed: Vec<i32> = Vec::new();
    for t in ticks {
        let (px, _) = plot.map_coordinate(&(t.x, y0));
        if placed.iter().any(|p| (p - px).abs() < 44) {
            continue;
        }
        placed.push(px);
        root.draw(&PathElement::new(
            vec![(px, yr.end), (px, yr.end + 4)],
            BLACK.stroke_width(1),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(
            t.date.clone(),
            (px, yr.end + 6),
            date_style.clone(),
        ))
        .map_err(e2s)?;
        root.draw(&Text::new(
            t.run.clone(),
            (px, yr.end + 21),
            id_style.clone(),
        ))
        .map_err(e2s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keep, only_file, png_size};
    use super::*;
    use crate::report::email::TrendBaseline;

    /// Unix ms of `YYYY-MM-DD` 09:00 (UTC).
    fn at(date: &str) -> i64 {
        crate::dicom::Acquisition {
            study_date: Some(date.replace('-', "")),
            study_time: Some("090000".into()),
            ..Default::default()
        }
        .acquired_at_ms()
        .expect(date)
    }

    /// `n_runs` monthly runs (run 100 + i on the 15th of month i + 1), given newest first,
    /// the last one "this run"; all evaluated against baseline 7 (from run 99, 2025-12-15).
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
                .rev()
                .map(|i| TrendRun {
                    run_id: 100 + i as i64,
                    this_run: i + 1 == n_runs,
                    at_ms: at(&format!("2026-{:02}-15", i % 12 + 1)),
                    baseline_id: Some(7),
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
            baselines: vec![TrendBaseline {
                id: 7,
                run_id: Some(99),
                run_at_ms: Some(at("2025-12-15")),
            }],
        }
    }

    #[test]
    fn trend_panels_skip_missing_values_and_include_the_band() {
        let t = trend(12);
        let view = TrendView::of(&t);
        let panels = trend_panels(&t, &view);
        assert_eq!(panels.len(), 9);
        let water = &panels[4];
        assert_eq!(water.name, "water");
        assert_eq!(water.tol, Some(4.0));
        assert_eq!(water.pts.len(), 12);
        // oldest first though given newest first; this run (the newest) at the right end
        assert_eq!((water.pts[11].x, water.pts[11].dhu), (1.0, 33.0));
        assert!(water.pts[11].this_run);
        assert_eq!(water.now(), Some(33.0));
        // out of band: |ΔHU| > 4 from the third run on
        let out: Vec<usize> = (0..12)
            .filter(|&i| water.outside(water.pts[i].dhu))
            .collect();
        assert_eq!(out, (2..12).collect::<Vec<_>>());
        let (y0, y1) = water.y_range();
        assert!(y0 < -4.0 && y1 > 33.0, "{y0} {y1}");
        // a missing value is skipped, not drawn at zero
        let breast = &panels[3];
        assert_eq!(breast.pts.len(), 11);
        assert!(breast.pts.iter().all(|p| p.x != water.pts[2].x));
        // NaN is skipped; the band alone sets the range
        let bone = &panels[8];
        assert!(bone.pts.is_empty());
        let (y0, y1) = bone.y_range();
        assert!(y0 < -30.0 && y1 > 30.0, "{y0} {y1}");
        // inside the band: nothing outside
        assert!(panels[0].pts.iter().all(|p| !panels[0].outside(p.dhu)));
        // no tolerance: no band, nothing is "outside"
        let t = Trend {
            materials: vec![("x".into(), f64::NAN)],
            runs: vec![TrendRun {
                run_id: 1,
                this_run: false,
                at_ms: at("2026-01-01"),
                baseline_id: None,
                delta_hu: vec![("x".into(), Some(50.0))],
            }],
            baselines: vec![],
        };
        let p = &trend_panels(&t, &TrendView::of(&t))[0];
        assert_eq!(p.tol, None);
        assert!(!p.outside(50.0));
        let (y0, y1) = p.y_range();
        assert!(y0 < 0.0 && y1 > 50.0);
    }

    #[test]
    fn runs_are_placed_by_acquisition_the_baseline_first_and_its_change_marked() {
        // the year: run #2 is 03-15, run #3 02-15 (the PACS sent February late); the
        // baseline is run #1 (01-15); from run #8 on (acquired 08-15) baseline 2, from run #7
        let months = [1, 3, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let runs: Vec<TrendRun> = months
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, m)| TrendRun {
                run_id: k as i64 + 1,
                this_run: false,
                at_ms: at(&format!("2026-{m:02}-15")),
                baseline_id: Some(if *m >= 8 { 2 } else { 1 }),
                delta_hu: vec![("water".into(), Some(f64::from(*m)))],
            })
            .collect();
        let t = Trend {
            materials: vec![("water".into(), 4.0)],
            runs,
            baselines: vec![
                TrendBaseline {
                    id: 1,
                    run_id: Some(1),
                    run_at_ms: Some(at("2026-01-15")),
                },
                TrendBaseline {
                    id: 2,
                    run_id: Some(7),
                    run_at_ms: Some(at("2026-07-15")),
                },
            ],
        };
        let view = TrendView::of(&t);
        let ids: Vec<i64> = view.runs.iter().map(|r| r.run_id).collect();
        assert_eq!(ids, [3, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        // dates increase left to right
        let ticks = ticks(&view);
        let mut by_x = ticks.clone();
        by_x.sort_by(|a, b| a.x.total_cmp(&b.x));
        let dates: Vec<&str> = by_x.iter().map(|t| t.date.as_str()).collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
        // the baseline run is the first point, at the left end; the change at run #7
        assert_eq!(by_x[0].run, "#1");
        assert_eq!(by_x[0].x, 0.0);
        let points: Vec<f64> = view.baseline_points().collect();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0], 0.0);
        let changes: Vec<&BaselineMark> = view.marks.iter().filter(|m| m.change).collect();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].run_id, Some(7));
        assert_eq!(view.x(changes[0].at_ms), view.x(at("2026-07-15")));
        let list = run_list(&view);
        assert_eq!(list[0], "#1 2026-01-15 09:00 (baseline)");
        assert_eq!(list[1], "#3 2026-02-15 09:00");
        assert_eq!(list[6], "#7 2026-07-15 09:00 (baseline)");
        assert_eq!(list.len(), 12);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hu_red_late_trend.png");
        write_trend_png(&t, "ΔHU trend — a late scan and a new baseline", &path).unwrap();
        keep(&path);
        assert_eq!(png_size(&path).0, 1200);
    }

    #[test]
    fn trend_png_several_materials_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::report::trend_png_name("cirs062"));
        write_trend_png(&trend(12), "ΔHU trend — CT-SIM-1 — cirs062", &path).unwrap();
        keep(&path);
        let (w, h) = png_size(&path);
        // 9 materials: a 3 × 3 grid
        assert_eq!(w, 1200);
        assert!((800..=1000).contains(&h), "{w}x{h}");
        assert_eq!(only_file(dir.path()), ["hu_red_cirs062_trend.png"]);
        // a baseline two years before the runs: drawn before a break of the axis
        let mut t = trend(12);
        t.baselines[0].run_at_ms = Some(at("2024-01-15"));
        assert!(TrendView::of(&t).axis.break_at().is_some());
        let broken = dir.path().join("hu_red_broken_trend.png");
        write_trend_png(&t, "ΔHU trend — old baseline", &broken).unwrap();
        keep(&broken);
        assert_eq!(png_size(&broken).0, 1200);
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
            ..trend(3)
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
}
