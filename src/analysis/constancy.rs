//! Constancy against a baseline: ΔHU per material against its tolerance, pass per insert and
//! overall, Pearson r, and ΔRED: the RED error (%) a planning system still using the baseline
//! curve makes on today's HU.

use super::{Baseline, Curve, CurvePoint, InsertConstancy, Measurement, ToleranceEvaluation};
use crate::phantom::{script_default_tolerance, PhantomDef};

/// Evaluate `m` against `baseline`. Tolerances come from the phantom definition (site-tunable);
/// a material the definition does not know gets the Python script's default.
pub fn evaluate(
    m: &Measurement,
    baseline: Option<&Baseline>,
    phantom: &PhantomDef,
) -> ToleranceEvaluation {
    let Some(base) = baseline else {
        return ToleranceEvaluation {
            has_baseline: false,
            pass: None,
            pearson_r: None,
            baseline_source: None,
            per_insert: vec![],
        };
    };
    let tol = |name: &str| {
        phantom
            .material(name)
            .map(|x| x.tolerance_hu)
            .unwrap_or_else(|| script_default_tolerance(name))
    };
    // The curve a planning system calibrated on the baseline would use.
    let base_curve = Curve::from_points(
        base.entries
            .iter()
            .filter_map(|e| {
                let hu = e.hu_mean.filter(|v| v.is_finite())?;
                let red = e.red.or_else(|| phantom.material(&e.insert)?.red)?;
                Some(CurvePoint {
                    insert: e.insert.clone(),
                    hu,
                    red,
                })
            })
            .collect(),
    );
    let mut per = Vec::new();
    for mat in &m.inserts {
        let entry = base.entries.iter().find(|e| e.insert == mat.insert);
        let now = Some(mat.hu_mean).filter(|v| v.is_finite());
        let b = entry.and_then(|e| e.hu_mean).filter(|v| v.is_finite());
        let t = tol(&mat.insert);
        let (delta, within, note) = match (now, b, entry) {
            (Some(n), Some(bv), _) => {
                let d = n - bv;
                (Some(d), d.abs() <= t, None)
            }
            (_, _, None) => (None, false, Some("not in the baseline".to_string())),
            (_, None, Some(_)) => (None, false, Some("the baseline has no value".to_string())),
            (None, _, _) => (None, false, Some("not measured".to_string())),
        };
        let delta_red_percent = match (now, b, mat.red) {
            (Some(n), Some(bv), Some(red)) if red.abs() > 1e-6 => base_curve
                .red_at(n)
                .zip(base_curve.red_at(bv))
                .map(|(rn, rb)| 100.0 * (rn - rb) / red),
            _ => None,
        };
        per.push(InsertConstancy {
            insert: mat.insert.clone(),
            baseline_hu: b,
            hu_mean: now,
            delta_hu: delta,
            tolerance_hu: t,
            within_tolerance: within,
            delta_red_percent,
            note,
        });
    }
    // Inserts in the baseline that this run did not measure fail too: a missing value fails.
    for e in &base.entries {
        if !m.inserts.iter().any(|x| x.insert == e.insert) {
            per.push(InsertConstancy {
                insert: e.insert.clone(),
                baseline_hu: e.hu_mean.filter(|v| v.is_finite()),
                hu_mean: None,
                delta_hu: None,
                tolerance_hu: tol(&e.insert),
                within_tolerance: false,
                delta_red_percent: None,
                note: Some("in the baseline but not measured in this run".into()),
            });
        }
    }
    let pairs: Vec<(f64, f64)> = per
        .iter()
        .filter_map(|p| Some((p.hu_mean?, p.baseline_hu?)))
        .collect();
    ToleranceEvaluation {
        has_baseline: true,
        pass: Some(!per.is_empty() && per.iter().all(|p| p.within_tolerance)),
        pearson_r: pearson(&pairs),
        baseline_source: Some(base.source.clone()),
        per_insert: per,
    }
}

/// Pearson correlation; `None` with fewer than 3 pairs or no variance.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / nf;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    let d = (sxx * syy).sqrt();
    (d > 0.0).then(|| sxy / d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::*;
    use crate::phantom::PhantomSet;

    fn material(name: &str, red: f64, hu: f64) -> MaterialResult {
        MaterialResult {
            insert: name.into(),
            red: Some(red),
            hu_mean: hu,
            hu_std: 5.0,
            hu_median: hu,
            n_rois: 1,
            n_pixels: 100,
            hu_expected: hu,
            hu_window: None,
            within_window: None,
            rois: vec![],
            check_pass: true,
            ..Default::default()
        }
    }

    fn measurement(inserts: Vec<MaterialResult>) -> Measurement {
        Measurement {
            phantom_id: "cirs062".into(),
            phantom_name: String::new(),
            detection: Detection::Forced,
            confidence: 1.0,
            candidates: vec![],
            pose: Pose {
                centre_x_mm: 0.0,
                centre_y_mm: 0.0,
                rotation_deg: 0.0,
            },
            slices: SlicesUsed {
                centre_index: 0,
                indices: vec![0],
                z_mm: vec![0.0],
                slab_mm: 5.0,
                thickness_mm: 1.0,
            },
            assignment: AssignmentMethod::Layout,
            curve: Curve::from_materials(&inserts),
            inserts,
            absolute_pass: true,
            warnings: vec![],
            family: None,
            kvp: None,
            unassigned: vec![],
            checks: Default::default(),
        }
    }

    fn entry(name: &str, hu: Option<f64>) -> BaselineEntry {
        BaselineEntry {
            insert: name.into(),
            hu_mean: hu,
            red: None,
        }
    }

    #[test]
    fn water_plus_35_fails_only_water() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let m = measurement(vec![
            material("lung_inhale", 0.190, -800.0),
            material("water", 1.0, 35.0),
            material("dense_bone", 1.456, 950.0),
        ]);
        let base = Baseline {
            source: "test".into(),
            entries: vec![
                entry("lung_inhale", Some(-805.0)),
                entry("water", Some(0.0)),
                entry("dense_bone", Some(940.0)),
            ],
        };
        let ev = evaluate(&m, Some(&base), def);
        assert_eq!(ev.pass, Some(false));
        let failed: Vec<_> = ev
            .per_insert
            .iter()
            .filter(|p| !p.within_tolerance)
            .map(|p| p.insert.as_str())
            .collect();
        assert_eq!(failed, ["water"]);
        let w = ev.per_insert.iter().find(|p| p.insert == "water").unwrap();
        assert_eq!(w.delta_hu, Some(35.0));
        assert_eq!(w.tolerance_hu, 30.0);
        // Baseline curve: water at 0 HU → 1.0; 35 HU lies on the water–bone segment.
        let expect = 100.0 * (35.0 * (1.456 - 1.0) / 940.0) / 1.0;
        assert!((w.delta_red_percent.unwrap() - expect).abs() < 1e-9);
        assert!(ev.pearson_r.unwrap() > 0.99);
    }

    #[test]
    fn missing_values_fail() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let m = measurement(vec![
            material("water", 1.0, 1.0),
            material("liver", 1.052, 55.0),
        ]);
        let base = Baseline {
            source: "test".into(),
            entries: vec![entry("water", None), entry("muscle", Some(40.0))],
        };
        let ev = evaluate(&m, Some(&base), def);
        assert_eq!(ev.pass, Some(false));
        assert_eq!(ev.per_insert.len(), 3);
        assert!(ev.per_insert.iter().all(|p| !p.within_tolerance));
        let none = evaluate(&m, None, def);
        assert!(!none.has_baseline && none.pass.is_none());
    }
}
