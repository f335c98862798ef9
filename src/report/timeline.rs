//! The time axis every trend chart shares (the email's PNG and the dashboard's SVG): where a
//! run stands in time, where its baseline run is drawn, and where a change of baseline is
//! marked. Pure: times in, positions out.
//!
//! Times are unix milliseconds of the acquisition's wall-clock time read as UTC (else of the
//! analysis): a trend is ordered by them, never by arrival, so a scan sent late lands at its
//! date.

/// A baseline the runs of a trend were evaluated against, as a chart draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineMark {
    pub baseline_id: i64,
    /// The run it was taken from.
    pub run_id: Option<i64>,
    /// Where it is drawn: its run's time, else the first run evaluated against it.
    pub at_ms: i64,
    /// Drawn as a point at ΔHU 0 (its run and that run's time are known).
    pub point: bool,
    /// Marked as a change of baseline (every baseline but the first one used).
    pub change: bool,
}

/// The baselines of a trend: `runs` are (time, baseline id) of its runs, `baselines` (id, run
/// id, run time) of the baselines they used. One mark per baseline used, in the order of first
/// use (runs taken in time order, ties in the given order): each drawn at its own run's time
/// as a point at ΔHU 0 when that time is known, else at the first run evaluated against it;
/// every one but the first used is a change of baseline.
pub fn baseline_marks(
    runs: &[(i64, Option<i64>)],
    baselines: &[(i64, Option<i64>, Option<i64>)],
) -> Vec<BaselineMark> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| runs[i].0);
    let mut out: Vec<BaselineMark> = Vec::new();
    for i in order {
        let (at, Some(id)) = runs[i] else {
            continue;
        };
        if out.iter().any(|m| m.baseline_id == id) {
            continue;
        }
        let (run_id, run_at) = baselines
            .iter()
            .find(|b| b.0 == id)
            .map(|b| (b.1, b.2))
            .unwrap_or((None, None));
        out.push(BaselineMark {
            baseline_id: id,
            run_id,
            at_ms: run_at.unwrap_or(at),
            point: run_at.is_some(),
            change: !out.is_empty(),
        });
    }
    out
}

/// Width of the part of the axis before a break (see [`TimeAxis`]).
const EARLY: f64 = 0.08;
/// Where the axis after a break starts.
const MAIN: f64 = 0.14;
const DAY_MS: i64 = 86_400_000;

/// A time axis mapped onto 0..1: proportional to time over the runs (and the baseline points
/// among or near them); a baseline point far before the runs — more than half their span and
/// more than a day — is drawn before a break in the axis instead of squeezing the runs.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeAxis {
    /// Proportional part: from, to (ms).
    lo: i64,
    hi: i64,
    /// The times drawn before the break, sorted, distinct.
    early: Vec<i64>,
}

impl TimeAxis {
    /// The axis of `runs` (times) with the `extra` times of baseline points.
    pub fn new(runs: &[i64], extra: &[i64]) -> TimeAxis {
        let all = || runs.iter().chain(extra);
        let (Some(&rlo), Some(&rhi)) = (runs.iter().min(), runs.iter().max()) else {
            let lo = all().min().copied().unwrap_or(0);
            let hi = all().max().copied().unwrap_or(0);
            return TimeAxis {
                lo,
                hi,
                early: Vec::new(),
            };
        };
        let gap = ((rhi - rlo) / 2).max(DAY_MS);
        let mut early: Vec<i64> = extra.iter().copied().filter(|&t| rlo - t > gap).collect();
        early.sort_unstable();
        early.dedup();
        let near = || all().copied().filter(|t| !early.contains(t));
        TimeAxis {
            lo: near().min().unwrap_or(rlo),
            hi: near().max().unwrap_or(rhi),
            early,
        }
    }

    /// Where `at` is drawn, 0 (left) to 1 (right); one time alone is drawn in the middle.
    pub fn position(&self, at: i64) -> f64 {
        if let Some(k) = self.early.iter().position(|&t| t == at) {
            return EARLY * (k as f64 + 0.5) / self.early.len() as f64;
        }
        let (from, width) = if self.early.is_empty() {
            (0.0, 1.0)
        } else {
            (MAIN, 1.0 - MAIN)
        };
        if self.hi <= self.lo {
            return from + width / 2.0;
        }
        let f = (at - self.lo) as f64 / (self.hi - self.lo) as f64;
        from + width * f.clamp(0.0, 1.0)
    }

    /// Where the axis is broken (0..1), when it is.
    pub fn break_at(&self) -> Option<f64> {
        (!self.early.is_empty()).then_some((EARLY + MAIN) / 2.0)
    }

    /// The proportional part's span (ms) and its position range: what time ticks are placed
    /// on.
    pub fn proportional(&self) -> ((i64, i64), (f64, f64)) {
        let from = if self.early.is_empty() { 0.0 } else { MAIN };
        ((self.lo, self.hi), (from, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = DAY_MS;

    #[test]
    fn baselines_are_marked_in_the_order_of_first_use() {
        // runs given out of order (a late scan evaluated against baseline 2 lands in between)
        let runs = [
            (40 * D, Some(2)),
            (10 * D, Some(1)),
            (20 * D, None),
            (25 * D, Some(2)),
            (30 * D, Some(1)),
            (50 * D, Some(3)),
        ];
        // 1 from run 7 at day 5; 2 from run 9 at day 35; 3 imported (no run)
        let baselines = [
            (1, Some(7), Some(5 * D)),
            (2, Some(9), Some(35 * D)),
            (3, None, None),
        ];
        let m = baseline_marks(&runs, &baselines);
        assert_eq!(
            m.iter().map(|m| m.baseline_id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!((m[0].at_ms, m[0].point, m[0].change), (5 * D, true, false));
        assert_eq!((m[1].at_ms, m[1].point, m[1].change), (35 * D, true, true));
        assert_eq!(m[1].run_id, Some(9));
        // no run: at the first run evaluated against it, no point
        assert_eq!((m[2].at_ms, m[2].point, m[2].change), (50 * D, false, true));
        // a baseline not read back (deleted): at its first run
        let m = baseline_marks(&[(3 * D, Some(8))], &[]);
        assert_eq!((m[0].at_ms, m[0].point, m[0].change), (3 * D, false, false));
        assert!(baseline_marks(&[(1, None)], &[]).is_empty());
    }

    #[test]
    fn the_axis_is_proportional_to_time_and_breaks_before_an_old_baseline() {
        // a year of monthly runs, the baseline run among them
        let runs: Vec<i64> = (0..12).map(|m| m * 30 * D).collect();
        let a = TimeAxis::new(&runs, &[0]);
        assert_eq!(a.break_at(), None);
        assert_eq!(a.position(0), 0.0);
        assert_eq!(a.position(330 * D), 1.0);
        assert!((a.position(165 * D) - 0.5).abs() < 1e-12);
        // increasing with time, whatever order they came in
        let ps: Vec<f64> = runs.iter().map(|&t| a.position(t)).collect();
        assert!(ps.windows(2).all(|w| w[0] < w[1]), "{ps:?}");
        // a baseline a little before the runs widens the axis
        let a = TimeAxis::new(&runs, &[-30 * D]);
        assert_eq!((a.break_at(), a.position(-30 * D)), (None, 0.0));
        // a baseline two years before: drawn before a break, the runs keep the rest
        let a = TimeAxis::new(&runs, &[-700 * D, 100 * D]);
        let b = a.break_at().expect("a break");
        assert!(a.position(-700 * D) < b && b < a.position(0));
        assert_eq!(a.position(0), MAIN);
        assert_eq!(a.position(330 * D), 1.0);
        assert_eq!(a.proportional(), ((0, 330 * D), (MAIN, 1.0)));
        // one run alone: in the middle; an old baseline before it is broken off
        let a = TimeAxis::new(&[5 * D], &[]);
        assert_eq!(a.position(5 * D), 0.5);
        let a = TimeAxis::new(&[5 * D], &[2 * D]);
        assert!(a.break_at().is_some());
        assert!(a.position(2 * D) < a.position(5 * D));
        // nothing at all
        assert_eq!(TimeAxis::new(&[], &[]).position(0), 0.5);
    }
}
