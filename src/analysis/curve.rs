//! The HU → RED table and its piecewise-linear interpolant (what planning systems use).

use super::{Curve, CurvePoint, MaterialResult};

impl Curve {
    /// The table from measured materials: every material with a RED and a finite mean, sorted by
    /// HU (ties broken by RED).
    pub fn from_materials(materials: &[MaterialResult]) -> Curve {
        Self::from_points(
            materials
                .iter()
                .filter_map(|m| {
                    let red = m.red?;
                    (m.hu_mean.is_finite() && red.is_finite()).then(|| CurvePoint {
                        insert: m.insert.clone(),
                        hu: m.hu_mean,
                        red,
                    })
                })
                .collect(),
        )
    }

    pub fn from_points(mut points: Vec<CurvePoint>) -> Curve {
        points.sort_by(|a, b| a.hu.total_cmp(&b.hu).then(a.red.total_cmp(&b.red)));
        Curve { points }
    }

    /// RED at `hu`: linear between neighbouring points, extended linearly beyond the ends with
    /// the end segments. `None` with fewer than two points of distinct HU.
    pub fn red_at(&self, hu: f64) -> Option<f64> {
        let p = &self.points;
        if p.len() < 2 || !hu.is_finite() {
            return None;
        }
        let seg = |a: &CurvePoint, b: &CurvePoint| -> Option<f64> {
            let d = b.hu - a.hu;
            if d.abs() < 1e-9 {
                return Some(0.5 * (a.red + b.red));
            }
            Some(a.red + (hu - a.hu) * (b.red - a.red) / d)
        };
        if hu <= p[0].hu {
            return seg(&p[0], &p[1]);
        }
        for w in p.windows(2) {
            if hu <= w[1].hu {
                return seg(&w[0], &w[1]);
            }
        }
        seg(&p[p.len() - 2], &p[p.len() - 1])
    }

    /// RED does not decrease as HU increases.
    pub fn is_monotonic(&self) -> bool {
        self.points.windows(2).all(|w| w[1].red >= w[0].red - 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(hu: f64, red: f64) -> CurvePoint {
        CurvePoint {
            insert: format!("{hu}"),
            hu,
            red,
        }
    }

    #[test]
    fn interpolates_and_extrapolates() {
        let c = Curve::from_points(vec![pt(0.0, 1.0), pt(-1000.0, 0.0), pt(1000.0, 1.5)]);
        assert_eq!(c.points[0].hu, -1000.0);
        assert!((c.red_at(-500.0).unwrap() - 0.5).abs() < 1e-12);
        assert!((c.red_at(500.0).unwrap() - 1.25).abs() < 1e-12);
        assert!((c.red_at(2000.0).unwrap() - 2.0).abs() < 1e-12);
        assert!((c.red_at(-1100.0).unwrap() + 0.1).abs() < 1e-12);
        assert!(c.is_monotonic());
        assert!(Curve::from_points(vec![pt(0.0, 1.0)]).red_at(0.0).is_none());
        assert!(!Curve::from_points(vec![pt(0.0, 1.0), pt(10.0, 0.9)]).is_monotonic());
    }
}
