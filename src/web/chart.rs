//! The charts of `/trends` as inline SVG (drawn here, escaped by maud, no script): ΔHU per
//! material over acquisition time, one panel per material with its ± tolerance band
//! (`svg#trend-dhu`), and ΔRED % of every material in one panel (`svg#trend-dred`).
//!
//! Contract with the page's tests: inside each chart every material is one
//! `<g class="series" data-material="NAME">` holding its line and points; every point has a
//! `<title>` (run, acquisition date and time, value: the browser's own hover) and links to its
//! run; each baseline run is a point at ΔHU 0 (`rect.baseline-point`); each change of baseline
//! a vertical `line.baseline-change`. The time axis is `report::timeline`'s, as the email's
//! trend: runs placed by acquisition time, never by arrival.

use crate::report::timeline::{baseline_marks, BaselineMark, TimeAxis};
use crate::report::utc_minute_of_ms;
use crate::store::{RunTrend, TrendBaseline, TrendRow};
use maud::{html, Markup};

/// The viewBox width; the SVG scales to its container (width 100 %).
const W: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
/// Room at either end of the time axis (fraction of the plot width).
const PAD: f64 = 0.03;
/// One ΔHU panel: its title line, its plot, the gap under it.
const TITLE_H: f64 = 22.0;
const PANEL_H: f64 = 110.0;
const GAP: f64 = 12.0;
/// The ΔRED % panel's plot height.
const DRED_H: f64 = 260.0;
/// The time labels under the last panel.
const AXIS_H: f64 = 36.0;

/// Line colours of the ΔRED % chart's materials (and their legend).
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22",
];

/// One material of the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    pub name: String,
    /// The most recent run's tolerance (HU), when it is a positive number.
    pub tolerance: Option<f64>,
}

/// A trend ready to draw.
pub struct TrendChart<'a> {
    pub materials: Vec<Material>,
    /// Oldest first: by acquisition (else analysis) time, then run id.
    runs: Vec<&'a TrendRow>,
    baselines: &'a [TrendBaseline],
    axis: TimeAxis,
    marks: Vec<BaselineMark>,
}

impl<'a> TrendChart<'a> {
    pub fn of(trend: &'a RunTrend) -> TrendChart<'a> {
        let mut runs: Vec<&TrendRow> = trend.runs.iter().collect();
        runs.sort_by_key(|r| (r.at(), r.run_id));
        let mut materials: Vec<Material> = Vec::new();
        // the newest run's order first, then what older runs had
        for r in runs.iter().rev() {
            for m in &r.materials {
                if !materials.iter().any(|x| x.name == m.insert) {
                    materials.push(Material {
                        name: m.insert.clone(),
                        tolerance: m.tolerance_hu.filter(|t| t.is_finite() && *t > 0.0),
                    });
                }
            }
        }
        let by_time: Vec<(i64, Option<i64>)> =
            runs.iter().map(|r| (r.at(), r.baseline_id)).collect();
        let b: Vec<(i64, Option<i64>, Option<i64>)> = trend
            .baselines
            .iter()
            .map(|b| (b.id, b.run_id, b.run_at))
            .collect();
        let marks = baseline_marks(&by_time, &b);
        let times: Vec<i64> = runs.iter().map(|r| r.at()).collect();
        let extra: Vec<i64> = marks.iter().map(|m| m.at_ms).collect();
        TrendChart {
            materials,
            runs,
            baselines: &trend.baselines,
            axis: TimeAxis::new(&times, &extra),
            marks,
        }
    }

    /// The x of a time in the viewBox.
    fn x(&self, at_ms: i64) -> f64 {
        let f = PAD + (1.0 - 2.0 * PAD) * self.axis.position(at_ms);
        LEFT + (W - LEFT - RIGHT) * f
    }

    /// A material's values (run, value) in time order, finite only.
    fn values(&self, name: &str, dred: bool) -> Vec<(&'a TrendRow, f64)> {
        self.runs
            .iter()
            .copied()
            .filter_map(|r| {
                let m = r.materials.iter().find(|m| m.insert == name)?;
                let v = if dred {
                    m.delta_red_percent
                } else {
                    m.delta_hu
                };
                Some((r, v.filter(|v| v.is_finite())?))
            })
            .collect()
    }

    fn baseline_title(&self, m: &BaselineMark) -> String {
        let source = self
            .baselines
            .iter()
            .find(|b| b.id == m.baseline_id)
            .map(|b| {
                format!(
                    " ({}{})",
                    b.source,
                    if b.provisional { ", provisional" } else { "" }
                )
            })
            .unwrap_or_default();
        let run = m
            .run_id
            .map(|r| format!(" from run {r}"))
            .unwrap_or_default();
        format!(
            "baseline #{}{source}{run}, {} {}",
            m.baseline_id,
            if m.point { "acquired" } else { "first used" },
            utc_minute_of_ms(m.at_ms)
        )
    }
}

/// "acquired 2026-03-15 09:00" (else "analysed … UTC").
fn when(r: &TrendRow) -> String {
    match r.acquired_at {
        Some(t) => format!("acquired {}", utc_minute_of_ms(t)),
        None => format!("analysed {} UTC", utc_minute_of_ms(r.finished_at)),
    }
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// A panel's value range: `must` (band, zero) and the values, with a margin.
fn y_range(values: impl Iterator<Item = f64>, must: (f64, f64), min_pad: f64) -> (f64, f64) {
    let (lo, hi) = values.fold(must, |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.1).max(min_pad);
    (lo - pad, hi + pad)
}

/// Round value steps for about `n` labels over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A panel's frame: the plot area, value grid lines with their labels (`y` maps a value to
/// the viewBox), and the time grid.
fn frame(
    c: &TrendChart,
    ticks: &[(i64, String)],
    (top, h): (f64, f64),
    (y0, y1): (f64, f64),
    unit: &str,
) -> Markup {
    let y = |v: f64| top + h * (1.0 - (v - y0) / (y1 - y0));
    let step = nice_step(y1 - y0, 4.0);
    let first = (y0 / step).ceil() as i64;
    let last = (y1 / step).floor() as i64;
    let decimals = if step < 1.0 { 1 } else { 0 };
    html! {
        rect.plot x=(f1(LEFT)) y=(f1(top)) width=(f1(W - LEFT - RIGHT)) height=(f1(h)) {}
        @for k in first..=last {
            @let v = k as f64 * step;
            line.grid x1=(f1(LEFT)) x2=(f1(W - RIGHT)) y1=(f1(y(v))) y2=(f1(y(v))) {}
            text.ylabel x=(f1(LEFT - 6.0)) y=(f1(y(v) + 4.0)) {
                @if k == 0 { "0" } @else { (format!("{v:+.decimals$}")) } (unit)
            }
        }
        @for (t, _) in ticks {
            line.grid x1=(f1(c.x(*t))) x2=(f1(c.x(*t))) y1=(f1(top)) y2=(f1(top + h)) {}
        }
        line.zero x1=(f1(LEFT)) x2=(f1(W - RIGHT)) y1=(f1(y(0.0))) y2=(f1(y(0.0))) {}
    }
}

/// The time labels under a chart (and the break of the axis, when it has one).
fn time_axis(c: &TrendChart, ticks: &[(i64, String)], (top, bottom): (f64, f64)) -> Markup {
    html! {
        @for (t, label) in ticks {
            text.xlabel x=(f1(c.x(*t))) y=(f1(bottom + 16.0)) { (label) }
        }
        @if let Some(b) = c.axis.break_at() {
            @let x = LEFT + (W - LEFT - RIGHT) * (PAD + (1.0 - 2.0 * PAD) * b);
            line.axis-break x1=(f1(x)) x2=(f1(x)) y1=(f1(top)) y2=(f1(bottom)) {
                title { "the time axis is broken here: the baseline run is older than the runs shown" }
            }
        }
    }
}

/// The changes of baseline: a vertical line each, over `top..bottom`.
fn baseline_changes(c: &TrendChart, (top, bottom): (f64, f64)) -> Markup {
    html! {
        g.baseline-changes {
            @for m in c.marks.iter().filter(|m| m.change) {
                line.baseline-change x1=(f1(c.x(m.at_ms))) x2=(f1(c.x(m.at_ms))) y1=(f1(top)) y2=(f1(bottom)) data-baseline=(m.baseline_id) {
                    title { "new " (c.baseline_title(m)) }
                }
            }
        }
    }
}

/// How a series is drawn: what its values are, its colour (the ΔRED % chart's), whether the
/// baseline runs are drawn at 0 (ΔHU), how a value reads, which values fail.
struct Look<'a> {
    what: &'a str,
    colour: Option<&'a str>,
    baseline_points: bool,
    label: &'a dyn Fn(f64) -> String,
    outside: &'a dyn Fn(f64) -> bool,
}

/// One material's series: the line through its values, a linked point with its title each,
/// and the baseline runs at 0 when `look` says so.
fn series(
    c: &TrendChart,
    name: &str,
    points: &[(&TrendRow, f64)],
    y: impl Fn(f64) -> f64,
    look: Look<'_>,
) -> Markup {
    let line: Vec<String> = points
        .iter()
        .map(|(r, v)| format!("{},{}", f1(c.x(r.at())), f1(y(*v))))
        .collect();
    html! {
        g.series data-material=(name) style=[look.colour.map(|c| format!("--c:{c}"))] {
            @if line.len() >= 2 { polyline.line points=(line.join(" ")) {} }
            @for (r, v) in points {
                a href=(format!("/runs/{}", r.run_id)) {
                    circle class=(if (look.outside)(*v) { "pt out" } else { "pt" }) cx=(f1(c.x(r.at()))) cy=(f1(y(*v))) r="3.5" {
                        title { "run " (r.run_id) ", " (when(r)) ": " (name) " " (look.what) " " ((look.label)(*v))
                            @if let Some(b) = r.baseline_id { " (baseline #" (b) ")" } }
                    }
                }
            }
            @if look.baseline_points {
                @for m in c.marks.iter().filter(|m| m.point) {
                    @let (x, y0) = (c.x(m.at_ms), y(0.0));
                    @let mark = html! {
                        rect.baseline-point x=(f1(x - 4.5)) y=(f1(y0 - 4.5)) width="9" height="9" {
                            title { (c.baseline_title(m)) ": " (name) " " (look.what) " 0 (the reference)" }
                        }
                    };
                    @if let Some(id) = m.run_id {
                        a href=(format!("/runs/{id}")) { (mark) }
                    } @else {
                        (mark)
                    }
                }
            }
        }
    }
}

/// `svg#trend-dhu`: ΔHU per material over acquisition time, one panel per material with its
/// ± tolerance band shaded.
pub fn dhu_svg(c: &TrendChart) -> Markup {
    let n = c.materials.len().max(1) as f64;
    let block = TITLE_H + PANEL_H + GAP;
    let height = 8.0 + n * block + AXIS_H;
    let ticks = time_ticks(c);
    let plots = (8.0 + TITLE_H, 8.0 + (n - 1.0) * block + TITLE_H + PANEL_H);
    html! {
        svg #trend-dhu .chart.trend-dhu xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {}", f1(height))) width="100%" role="img" aria-label="\u{0394}HU per material over acquisition time" {
            @for (i, m) in c.materials.iter().enumerate() {
                @let top = 8.0 + i as f64 * block + TITLE_H;
                @let pts = c.values(&m.name, false);
                @let t = m.tolerance.unwrap_or(0.0);
                @let (y0, y1) = y_range(pts.iter().map(|p| p.1), (-t, t), 1.0);
                @let y = |v: f64| top + PANEL_H * (1.0 - (v - y0) / (y1 - y0));
                @let last = pts.last().map(|p| p.1);
                g.panel data-material=(m.name) {
                    text.ptitle x=(f1(LEFT)) y=(f1(top - 6.0)) {
                        (m.name) "  "
                        @if let Some(t) = m.tolerance { "\u{00b1}" (t) " HU" } @else { "no tolerance" }
                        @if let Some(v) = last { "; latest " (format!("{v:+.1}")) }
                    }
                    (frame(c, &ticks, (top, PANEL_H), (y0, y1), ""))
                    @if let Some(t) = m.tolerance {
                        rect.band x=(f1(LEFT)) y=(f1(y(t))) width=(f1(W - LEFT - RIGHT)) height=(f1(y(-t) - y(t))) {
                            title { (m.name) ": tolerance \u{00b1}" (t) " HU" }
                        }
                    }
                    (series(c, &m.name, &pts, y, Look {
                        what: "\u{0394}HU",
                        colour: None,
                        baseline_points: true,
                        label: &|v| format!("{v:+.1} HU"),
                        outside: &|v| m.tolerance.is_some_and(|t| v.abs() > t),
                    }))
                }
            }
            (baseline_changes(c, plots))
            (time_axis(c, &ticks, plots))
        }
    }
}

/// `svg#trend-dred`: ΔRED % of every material over acquisition time, one panel, a colour each
/// (the legend is [`PALETTE`] in material order).
pub fn dred_svg(c: &TrendChart) -> Markup {
    let top = 12.0;
    let all: Vec<Vec<(&TrendRow, f64)>> = c
        .materials
        .iter()
        .map(|m| c.values(&m.name, true))
        .collect();
    let (y0, y1) = y_range(all.iter().flatten().map(|p| p.1), (0.0, 0.0), 0.5);
    let y = |v: f64| top + DRED_H * (1.0 - (v - y0) / (y1 - y0));
    let ticks = time_ticks(c);
    let height = top + DRED_H + AXIS_H;
    html! {
        svg #trend-dred .chart.trend-dred xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {}", f1(height))) width="100%" role="img" aria-label="\u{0394}RED % per material over acquisition time" {
            (frame(c, &ticks, (top, DRED_H), (y0, y1), "%"))
            @for (i, m) in c.materials.iter().enumerate() {
                (series(c, &m.name, &all[i], y, Look {
                    what: "\u{0394}RED",
                    colour: Some(PALETTE[i % PALETTE.len()]),
                    baseline_points: false,
                    label: &|v| format!("{v:+.2} %"),
                    outside: &|_| false,
                }))
            }
            (baseline_changes(c, (top, top + DRED_H)))
            (time_axis(c, &ticks, (top, top + DRED_H)))
        }
    }
}

/// Time labels at round times over the proportional part of the axis: hours, days or
/// months, at most about seven.
fn time_ticks(c: &TrendChart) -> Vec<(i64, String)> {
    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;
    let ((lo, hi), _) = c.axis.proportional();
    if hi <= lo {
        return vec![(lo, utc_minute_of_ms(lo)[..10].to_string())];
    }
    let span = hi - lo;
    for step in [H, 3 * H, 6 * H, 12 * H, D, 2 * D, 7 * D, 14 * D] {
        if span / step <= 7 {
            let label = |t: i64| {
                let s = utc_minute_of_ms(t);
                if step < D {
                    s[5..].to_string()
                } else {
                    s[..10].to_string()
                }
            };
            let mut first = lo.div_euclid(step) * step;
            if first < lo {
                first += step;
            }
            return (0..)
                .map(|k| first + k * step)
                .take_while(|t| *t <= hi)
                .map(|t| (t, label(t)))
                .collect();
        }
    }
    month_ticks(lo, hi)
}

/// The first days of months between `lo` and `hi`, every 1, 2, 3, 6 or 12 months.
fn month_ticks(lo: i64, hi: i64) -> Vec<(i64, String)> {
    let ym = |t: i64| -> (i64, i64) {
        let s = utc_minute_of_ms(t);
        (s[..4].parse().unwrap_or(1970), s[5..7].parse().unwrap_or(1))
    };
    let (y0, m0) = ym(lo);
    let (y1, m1) = ym(hi);
    let months = (y1 - y0) * 12 + (m1 - m0) + 1;
    let step = [1, 2, 3, 6, 12]
        .into_iter()
        .find(|s| months / s <= 7)
        .unwrap_or(12 * (months / 84 + 1));
    let mut out = Vec::new();
    // months counted from year 0, starting at a multiple of the step
    let mut k = (y0 * 12 + m0 - 1).div_euclid(step) * step;
    loop {
        let (y, m) = (k.div_euclid(12), k.rem_euclid(12) + 1);
        let Some(t) = super::runs::day_start_ms(&format!("{y:04}-{m:02}-01")) else {
            break;
        };
        if t > hi {
            break;
        }
        if t >= lo {
            let label = if step >= 12 {
                format!("{y:04}")
            } else {
                format!("{y:04}-{m:02}")
            };
            out.push((t, label));
        }
        k += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TrendMaterial;

    const D: i64 = 86_400_000;
    const EVIL: &str = "<script>alert(1)</script>";

    fn run(id: i64, day: i64, baseline: i64, water: f64) -> TrendRow {
        let m = |insert: &str, dhu: Option<f64>| TrendMaterial {
            insert: insert.into(),
            delta_hu: dhu,
            tolerance_hu: Some(if insert == "water" { 4.0 } else { 20.0 }),
            delta_red_percent: dhu.map(|v| v / 10.0),
        };
        TrendRow {
            run_id: id,
            finished_at: 1_000 * D + id,
            acquired_at: Some(20_000 * D + day * D + 9 * 3_600_000),
            study_date: None,
            baseline_id: Some(baseline),
            materials: vec![
                m("water", Some(water)),
                m("bone_200", Some(-2.0)),
                m(EVIL, if id == 3 { None } else { Some(1.0) }),
            ],
        }
    }

    /// Runs 2..=6 given out of order; run 4 (day 31) was sent late; baseline 1 is run 1
    /// (day 0), baseline 2 run 5 (day 120).
    fn trend() -> RunTrend {
        RunTrend {
            runs: vec![
                run(2, 60, 1, 1.0),
                run(3, 90, 1, 2.0),
                run(4, 31, 1, 0.5),
                run(5, 120, 1, 6.0),
                run(6, 150, 2, 0.2),
            ],
            baselines: vec![
                TrendBaseline {
                    id: 1,
                    run_id: Some(1),
                    run_at: Some(20_000 * D + 9 * 3_600_000),
                    created_at: 0,
                    source: "run 1".into(),
                    provisional: false,
                },
                TrendBaseline {
                    id: 2,
                    run_id: Some(5),
                    run_at: Some(20_000 * D + 120 * D + 9 * 3_600_000),
                    created_at: 0,
                    source: format!("run 5 {EVIL}"),
                    provisional: true,
                },
            ],
        }
    }

    /// The attribute `name`'s values in order of appearance.
    fn attrs<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        let key = format!(" {name}=\"");
        svg.match_indices(&key)
            .filter_map(|(i, _)| {
                let rest = &svg[i + key.len()..];
                rest.find('"').map(|e| &rest[..e])
            })
            .collect()
    }

    #[test]
    fn one_series_per_material_with_titles_in_time_order() {
        let t = trend();
        let c = TrendChart::of(&t);
        let svg = dhu_svg(&c).into_string();
        let head = &svg[..svg.find('>').unwrap()];
        assert!(
            head.starts_with("<svg") && head.contains(" id=\"trend-dhu\""),
            "{head}"
        );
        assert!(head.contains(" class=\"chart trend-dhu\"") && head.contains("width=\"100%\""));
        assert!(head.contains(" viewBox=\"0 0 960 "), "{head}");
        assert_eq!(svg.matches("class=\"series\"").count(), 3);
        let names = attrs(&svg, "data-material");
        // each material's panel and its series
        assert_eq!(
            names,
            [
                "water",
                "water",
                "bone_200",
                "bone_200",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
                "&lt;script&gt;alert(1)&lt;/script&gt;"
            ]
        );
        assert!(!svg.contains("<script"), "escaped");
        // every point has its title: 5 runs of water and bone, 4 of the third (run 3 has none)
        assert_eq!(svg.matches("<circle").count(), 14);
        assert_eq!(
            svg.matches("<circle").count(),
            svg.matches("</circle>").count()
        );
        assert!(svg.contains("<title>run 4, acquired 2024-11-04 09:00: water \u{0394}HU +0.5 HU (baseline #1)</title>"), "{svg}");
        // points linked to their runs, in acquisition order: run 4 (sent late) before run 2
        let links = attrs(&svg, "href");
        let water: Vec<&str> = links.iter().take(6).copied().collect();
        assert_eq!(
            water,
            ["/runs/4", "/runs/2", "/runs/3", "/runs/5", "/runs/6", "/runs/1"]
        );
        let cx: Vec<f64> = attrs(&svg, "cx")
            .iter()
            .take(5)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(cx.windows(2).all(|w| w[0] < w[1]), "{cx:?}");
        // the baseline runs at ΔHU 0 (one per baseline per material), the change at run 5
        assert_eq!(svg.matches("class=\"baseline-point\"").count(), 6);
        assert_eq!(svg.matches("class=\"baseline-change\"").count(), 1);
        assert!(svg.contains("data-baseline=\"2\""));
        assert!(svg.contains("run 5 &lt;script&gt;alert(1)&lt;/script&gt;, provisional"));
        // the band of each material
        assert_eq!(svg.matches("class=\"band\"").count(), 3);
        // the first baseline point is the leftmost thing drawn: x of run 1 < x of run 4
        let first_point: f64 = attrs(&svg, "x")
            .iter()
            .zip(svg.match_indices(" x=\"").map(|(i, _)| i))
            .find(|(_, i)| svg[..*i].ends_with("<rect class=\"baseline-point\""))
            .map(|(v, _)| v.parse::<f64>().unwrap() + 4.5)
            .unwrap();
        assert!(first_point < cx[0], "{first_point} {cx:?}");
    }

    #[test]
    fn the_dred_chart_has_a_series_per_material_and_no_baseline_points() {
        let t = trend();
        let c = TrendChart::of(&t);
        let svg = dred_svg(&c).into_string();
        assert!(svg[..svg.find('>').unwrap()].contains(" id=\"trend-dred\""));
        assert_eq!(svg.matches("class=\"series\"").count(), 3);
        assert!(svg.contains("style=\"--c:#1f77b4\""));
        assert_eq!(svg.matches("class=\"baseline-point\"").count(), 0);
        assert_eq!(svg.matches("class=\"baseline-change\"").count(), 1);
        assert!(svg.contains("\u{0394}RED +0.60 %"), "{svg}");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn time_labels_are_round_and_increasing() {
        let t = trend();
        let c = TrendChart::of(&t);
        let ticks = time_ticks(&c);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        // about five months: monthly labels
        assert_eq!(
            labels,
            ["2024-11", "2024-12", "2025-01", "2025-02", "2025-03"]
        );
        assert!(ticks.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(nice_step(10.0, 4.0), 2.5);
        assert_eq!(nice_step(0.9, 4.0), 0.25);
        assert_eq!(nice_step(100.0, 4.0), 25.0);
        // a single run: its day
        let one = RunTrend {
            runs: vec![run(9, 0, 1, 0.0)],
            baselines: vec![],
        };
        let c = TrendChart::of(&one);
        assert_eq!(
            time_ticks(&c),
            [(20_000 * D + 9 * 3_600_000, "2024-10-04".to_string())]
        );
    }
}
