//! `hu_red_PHANTOM_trend.png`: ΔHU of every material over the last runs of one scanner and
//! phantom, one small panel per material with its ± tolerance band.

use super::style::{
    bold, e2s, font, render_png, wrap, BAND, BAND_EDGE, FAIL, GRID, MEASURED, THIS_RUN,
};
use crate::report::email::{Trend, TrendRun};
use crate::report::format::{fixed, month_day, signed, tol};
use crate::report::ReportError;
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

/// A panel's coordinates: the run's position in the trend on x, ΔHU on y.
type PanelCoord = Cartesian2d<RangedCoordf64, RangedCoordf64>;

/// `hu_red_PHANTOM_trend.png`: ΔHU of every material over the runs of the trend (oldest
/// first, this run last), one small panel per material with the ±tolerance band shaded and a
/// zero line; points inside the band blue, outside red. Missing values are skipped. Without
/// any run or material (or no ΔHU at all) the PNG says "no runs with a baseline yet".
pub fn write_trend_png(trend: &Trend, title: &str, path: &Path) -> Result<(), ReportError> {
    let n_runs = trend.runs.len();
    let panels = trend_panels(trend);
    if !panels.iter().any(|p| !p.pts.is_empty()) {
        return render_png(path, (WIDTH, 500), |root| draw_no_trend(root, title));
    }
    let (grid_rows, cols, height) = grid_layout(panels.len());
    let ticks: Vec<(String, String)> = trend
        .runs
        .iter()
        .map(|r| (month_day(&r.date).to_string(), run_label(r)))
        .collect();
    render_png(path, (WIDTH, height), |root| {
        draw_trend_header(root, title, n_runs)?;
        let grid = root
            .margin(TOP, BOTTOM, 8, 8)
            .split_evenly((grid_rows, cols));
        for (panel, area) in panels.iter().zip(grid.iter()) {
            draw_trend_panel(root, area, panel, n_runs, &ticks)?;
        }
        draw_run_list(root, &run_list(trend), height)
    })
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

/// Every run with its full date, the last one marked "(this run)" when it is stored.
fn run_list(trend: &Trend) -> Vec<String> {
    let n_runs = trend.runs.len();
    trend
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let this = if i + 1 == n_runs && r.run_id > 0 {
                " (this run)"
            } else {
                ""
            };
            format!("{} {}{this}", run_label(r), r.date)
        })
        .collect()
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
        (WIDTH as i32 / 2, 50),
        font(16.0)
            .color(&RGBColor(0x44, 0x44, 0x44))
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(e2s)?;
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
    let text = format!("Runs, oldest first: {}", run_list.join(",  "));
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
fn trend_panels(trend: &Trend) -> Vec<TrendPanel> {
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

/// One material's panel: its caption, the band, this run's column, zero, the points, and the
/// run ticks under it.
fn draw_trend_panel(
    root: &DrawingArea<BitMapBackend, Shift>,
    area: &DrawingArea<BitMapBackend, Shift>,
    panel: &TrendPanel,
    n_runs: usize,
    ticks: &[(String, String)],
) -> Result<(), String> {
    let (y0, y1) = panel.y_range();
    // at least three runs' width, so that one or two runs do not fill the panel
    let side = 0.6 + 0.5 * 3usize.saturating_sub(n_runs) as f64;
    let (x0, x1) = (-side, n_runs.max(1) as f64 - 1.0 + side);
    let mut chart = panel_axes(area, panel, n_runs, (x0, x1), (y0, y1))?;
    draw_panel_series(&mut chart, panel, n_runs, (x0, x1), (y0, y1))?;
    draw_run_ticks(root, chart.plotting_area(), ticks, n_runs, y0)
}

/// The panel's caption: the material, its tolerance and this run's ΔHU (red when outside).
fn panel_caption(panel: &TrendPanel, n_runs: usize) -> (String, TextStyle<'static>) {
    let last = panel.pts.iter().find(|p| p.0 + 1 == n_runs).map(|p| p.1);
    let tol_text = panel
        .tol
        .map(|t| format!("±{} HU", tol(t)))
        .unwrap_or_else(|| "no tolerance".into());
    let now = format!("now {}", signed(last, 1));
    let caption = format!("{}  ({tol_text}; {now})", panel.name);
    let caption_style = if last.is_some_and(|v| panel.outside(v)) {
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
    n_runs: usize,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<ChartContext<'a, BitMapBackend<'b>, PanelCoord>, String> {
    let (caption, caption_style) = panel_caption(panel, n_runs);
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
        .y_label_formatter(&|v| fixed(Some(*v), if span < 10.0 { 1 } else { 0 }))
        .draw()
        .map_err(e2s)?;
    Ok(chart)
}

/// The band, this run's column (translucent, over the band), zero, the line through the
/// points and the points (this run's larger; outside the band red).
fn draw_panel_series(
    chart: &mut ChartContext<BitMapBackend, PanelCoord>,
    panel: &TrendPanel,
    n_runs: usize,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    let pts = &panel.pts;
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
            let colour = if panel.outside(v) { FAIL } else { MEASURED };
            let r = if i + 1 == n_runs { 6 } else { 4 };
            Circle::new((i as f64, v), r, colour.filled())
        }))
        .map_err(e2s)?;
    Ok(())
}

/// The x tick labels (date over run id), drawn here so that every k-th run (and always this
/// run) is labelled.
fn draw_run_ticks(
    root: &DrawingArea<BitMapBackend, Shift>,
    plot: &DrawingArea<BitMapBackend, PanelCoord>,
    ticks: &[(String, String)],
    n_runs: usize,
    y0: f64,
) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{keep, only_file, png_size};
    use super::*;

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
        let path = dir.path().join(crate::report::trend_png_name("cirs062"));
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
}
