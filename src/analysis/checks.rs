//! From measured holes to materials, and the absolute checks that hold without a baseline.
//!
//! Every material the definition expects is reported: measured (the mean of its ROIs), refused
//! (its holes have no core large enough to measure) or missing (no hole holds it) — a gap is
//! never silent. Absolute checks, judged at the scan's kVp:
//! - the HU–RED curve is monotone;
//! - every measured material lies within its plausibility band;
//! - a manufacturer window judges a material only at the kVp it is given for (otherwise it is
//!   shown as information);
//! - copies of one material agree within max(its tolerance, 5 standard errors);
//! - a refused or missing (non-optional) material fails.
//!
//! Unassigned holes and missing optional materials are information and fail nothing.

use super::assign::Mode;
use super::{
    AbsoluteChecks, Curve, MaterialResult, MaterialStatus, RoiMeasurement, UnassignedHole,
};
use crate::phantom::{Material, PhantomDef};

/// A hole the measurement could not use, with the layout's material for it (if any).
#[derive(Debug, Clone)]
pub struct RefusedHole {
    pub hole: String,
    pub layout_material: Option<String>,
    pub reason: String,
}

/// Copies of a material are "consistent" within max(tolerance, this many standard errors).
const COPY_SIGMAS: f64 = 5.0;
/// Neighbouring pixels of a CT image are correlated: the standard error of an ROI mean is taken
/// as std·√(this / N) (a conservative number of pixels per independent noise sample).
const NOISE_PIXELS_PER_SAMPLE: f64 = 4.0;

/// The materials of `def` the analysis must report even when no hole holds them: those the
/// layout names (template phantoms with a layout), every non-optional one for a detection
/// phantom, none for a template phantom without a layout (its plugs are the site's choice: what
/// is found is reported, and a hole that cannot be measured fails on its own).
pub fn expected(def: &PhantomDef) -> Vec<&Material> {
    match Mode::of(def) {
        Mode::Layout => def.expected_materials(),
        Mode::Detection => def.materials.iter().filter(|m| !m.optional).collect(),
        Mode::ByHu => Vec::new(),
    }
}

/// Build every material's result from the assigned ROIs (`rois[i].insert` already set) and the
/// refused holes.
pub fn materials(
    def: &PhantomDef,
    rois: &[RoiMeasurement],
    refused: &[RefusedHole],
    kvp: Option<f64>,
) -> Vec<MaterialResult> {
    let wanted = expected(def);
    let mut out = Vec::new();
    for mat in &def.materials {
        let mine: Vec<RoiMeasurement> = rois
            .iter()
            .filter(|r| r.insert == mat.name)
            .cloned()
            .collect();
        let expected_here = wanted.iter().any(|m| m.name == mat.name);
        if mine.is_empty() && !expected_here {
            continue;
        }
        let band = mat.plausible_band(kvp);
        let mut r = MaterialResult {
            insert: mat.name.clone(),
            red: mat.red,
            hu_mean: f64::NAN,
            hu_std: f64::NAN,
            hu_median: f64::NAN,
            n_rois: mine.len(),
            n_pixels: mine.iter().map(|r| r.n_pixels).sum(),
            hu_expected: mat.hu_expected,
            hu_window: mat.hu_window,
            within_window: None,
            rois: Vec::new(),
            status: MaterialStatus::Measured,
            reason: None,
            optional: mat.optional,
            window_kvp: mat.window_kvp(),
            hu_band: Some(band),
            plausible: None,
            copies_spread_hu: None,
            copies_consistent: None,
            check_pass: true,
            check_notes: Vec::new(),
        };
        if mine.is_empty() {
            let refusals: Vec<&RefusedHole> = refused
                .iter()
                .filter(|h| h.layout_material.as_deref() == Some(mat.name.as_str()))
                .collect();
            if refusals.is_empty() {
                r.status = MaterialStatus::Missing;
                r.reason = Some(if def.layout.values().any(|v| *v == mat.name) {
                    "no hole holds it: its holes read something else (see the holes not in the definition and the warnings)".into()
                } else {
                    "no insert of this material was found".into()
                });
            } else {
                r.status = MaterialStatus::Refused;
                r.reason = Some(
                    refusals
                        .iter()
                        .map(|h| format!("hole {}: {}", h.hole, h.reason))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
        } else {
            let k = mine.len() as f64;
            r.hu_mean = mine.iter().map(|x| x.hu_mean).sum::<f64>() / k;
            r.hu_std = (mine.iter().map(|x| x.hu_std * x.hu_std).sum::<f64>() / k).sqrt();
            r.hu_median = mine.iter().map(|x| x.hu_median).sum::<f64>() / k;
            r.within_window = mat
                .window_at(kvp)
                .map(|[lo, hi]| r.hu_mean >= lo && r.hu_mean <= hi);
            r.plausible = Some(r.hu_mean >= band[0] && r.hu_mean <= band[1]);
            if mine.len() > 1 {
                let (lo, hi) = mine.iter().fold((f64::MAX, f64::MIN), |(a, b), x| {
                    (a.min(x.hu_mean), b.max(x.hu_mean))
                });
                let spread = hi - lo;
                let se = mine
                    .iter()
                    .map(|x| x.hu_std * (NOISE_PIXELS_PER_SAMPLE / x.n_pixels.max(1) as f64).sqrt())
                    .fold(0.0, f64::max);
                let noise_limit = COPY_SIGMAS * se * std::f64::consts::SQRT_2;
                r.copies_spread_hu = Some(spread);
                r.copies_consistent = Some(spread <= mat.tolerance_hu.max(noise_limit));
                if spread > noise_limit && spread <= mat.tolerance_hu {
                    r.check_notes.push(format!(
                        "copies differ by {spread:.1} HU (more than their noise, within the ±{:.0} HU tolerance: beam hardening between inner and outer holes is expected)",
                        mat.tolerance_hu
                    ));
                }
            }
        }
        r.rois = mine;
        out.push(r);
    }
    out
}

/// The checks of one material at `kv` (the scan's kVp, for messages): what fails it and what is
/// information only; the manufacturer windows it was judged by (or only informed by) are added to
/// `windows_applied` (`windows_info`).
fn material_checks(
    m: &MaterialResult,
    kv: &str,
    windows_applied: &mut Vec<String>,
    windows_info: &mut Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut fails: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    match m.status {
        MaterialStatus::Refused => fails.push(format!(
            "{} not measured: {}",
            m.insert,
            m.reason.as_deref().unwrap_or("refused")
        )),
        MaterialStatus::Missing if m.optional => notes.push(format!(
            "{} not present (optional: {})",
            m.insert,
            m.reason.as_deref().unwrap_or("not found")
        )),
        MaterialStatus::Missing => fails.push(format!(
            "{} not measured: {}",
            m.insert,
            m.reason.as_deref().unwrap_or("not found")
        )),
        MaterialStatus::Measured => {
            if let (Some(false), Some([lo, hi])) = (m.plausible, m.hu_band) {
                fails.push(format!(
                    "{} reads {:.0} HU, outside its plausibility band {:.0} … {:.0} HU at {kv} (a different insert, a wrong layout or a badly miscalibrated scanner)",
                    m.insert, m.hu_mean, lo, hi
                ));
            }
            match (m.within_window, m.hu_window) {
                (Some(ok), Some([lo, hi])) => {
                    windows_applied.push(m.insert.clone());
                    if !ok {
                        fails.push(format!(
                            "{} reads {:.0} HU, outside the manufacturer's window {:.0} … {:.0} HU ({kv})",
                            m.insert, m.hu_mean, lo, hi
                        ));
                    }
                }
                (None, Some([lo, hi])) => {
                    let at = m.window_kvp.unwrap_or(120.0);
                    windows_info.push(m.insert.clone());
                    notes.push(format!(
                        "window {:.0} … {:.0} HU is given at {at:.0} kV; this scan is at {kv}: information only ({:.0} HU is {} it)",
                        lo,
                        hi,
                        m.hu_mean,
                        if m.hu_mean >= lo && m.hu_mean <= hi { "inside" } else { "outside" }
                    ));
                }
                _ => {}
            }
            if m.copies_consistent == Some(false) {
                let list = m
                    .rois
                    .iter()
                    .map(|r| format!("{} {:.0} HU", r.hole, r.hu_mean))
                    .collect::<Vec<_>>()
                    .join(", ");
                fails.push(format!(
                    "the copies of {} disagree by {:.0} HU ({list}): a different insert in one of its holes?",
                    m.insert,
                    m.copies_spread_hu.unwrap_or(f64::NAN)
                ));
            }
        }
    }
    (fails, notes)
}

/// What the absolute checks looked at, for the report.
fn checked(
    def: &PhantomDef,
    materials: &[MaterialResult],
    kv: &str,
    windows_applied: &[String],
    windows_info: &[String],
) -> Vec<String> {
    let measured = materials
        .iter()
        .filter(|m| m.status == MaterialStatus::Measured)
        .count();
    let mut checked = vec![
        "the HU–RED curve is monotone".to_string(),
        format!(
            "{measured} material(s) of {} measured, each within its plausibility band at {kv}",
            def.id
        ),
    ];
    if !windows_applied.is_empty() {
        checked.push(format!(
            "manufacturer windows at {kv}: {}",
            windows_applied.join(", ")
        ));
    }
    if !windows_info.is_empty() {
        checked.push(format!(
            "manufacturer windows given at another kVp (information only): {}",
            windows_info.join(", ")
        ));
    }
    if materials.iter().any(|m| m.copies_consistent.is_some()) {
        checked.push("copies of each duplicated material agree".into());
    }
    checked
}

/// Judge every material (fills `check_pass` and `check_notes`) and the curve.
pub fn judge(
    def: &PhantomDef,
    materials: &mut [MaterialResult],
    curve: &Curve,
    unassigned: &[UnassignedHole],
    refused: &[RefusedHole],
    kvp: Option<f64>,
) -> AbsoluteChecks {
    let kv = kvp
        .map(|k| format!("{k:.0} kV"))
        .unwrap_or_else(|| "an unknown kVp".into());
    let mut failures = Vec::new();
    let mut info = Vec::new();
    let mut windows_applied = Vec::new();
    let mut windows_info = Vec::new();
    for m in materials.iter_mut() {
        let (mut fails, notes) = material_checks(m, &kv, &mut windows_applied, &mut windows_info);
        m.check_pass = fails.is_empty();
        failures.extend(fails.iter().cloned());
        info.extend(notes.iter().cloned());
        fails.extend(notes);
        fails.append(&mut m.check_notes);
        m.check_notes = fails;
    }
    // A hole that could not be measured and that no material of the layout claims (a plug
    // of a layout-less phantom): its material is unknown, so the hole itself fails.
    for r in refused {
        let claimed = r
            .layout_material
            .as_deref()
            .is_some_and(|m| materials.iter().any(|x| x.insert == m));
        if !claimed {
            failures.push(format!(
                "hole {} could not be measured: {}",
                r.hole, r.reason
            ));
        }
    }
    let curve_monotonic = curve.is_monotonic();
    if !curve_monotonic {
        failures.push(
            "RED does not increase with HU along the curve: check the material assignment and the inserts".into(),
        );
    }
    for u in unassigned {
        info.push(format!(
            "hole {} at ({:.1}, {:.1}) mm reads {:.0} ± {:.0} HU: not in the phantom definition ({})",
            u.hole, u.center_x_mm, u.center_y_mm, u.hu_mean, u.hu_std, u.note
        ));
    }
    let checked = checked(def, materials, &kv, &windows_applied, &windows_info);
    AbsoluteChecks {
        pass: failures.is_empty(),
        curve_monotonic,
        checked,
        failures,
        info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::PhantomSet;

    fn roi(hole: &str, insert: &str, hu: f64) -> RoiMeasurement {
        RoiMeasurement {
            hole: hole.into(),
            insert: insert.into(),
            hu_mean: hu,
            hu_std: 10.0,
            hu_median: hu,
            n_pixels: 2000,
            n_slices: 2,
            ..Default::default()
        }
    }

    /// Every CIRS hole at its layout material's expected HU, except `change`.
    fn cirs_rois(def: &PhantomDef, change: &[(&str, Option<f64>)]) -> Vec<RoiMeasurement> {
        def.holes
            .iter()
            .filter_map(|h| {
                let m = def.layout.get(&h.id)?;
                let hu = match change.iter().find(|(id, _)| *id == h.id) {
                    Some((_, v)) => (*v)?,
                    None => def.material(m)?.hu_expected,
                };
                Some(roi(&h.id, m, hu))
            })
            .collect()
    }

    fn judged(
        def: &PhantomDef,
        rois: &[RoiMeasurement],
        refused: &[RefusedHole],
        kvp: Option<f64>,
    ) -> (Vec<MaterialResult>, AbsoluteChecks) {
        let mut m = materials(def, rois, refused, kvp);
        let curve = Curve::from_materials(&m);
        let c = judge(def, &mut m, &curve, &[], refused, kvp);
        (m, c)
    }

    #[test]
    fn nominal_cirs_passes_every_check() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let (m, c) = judged(def, &cirs_rois(def, &[]), &[], Some(120.0));
        assert!(c.pass, "{:?}", c.failures);
        assert!(c.curve_monotonic);
        assert_eq!(m.len(), 9);
        assert!(m.iter().all(|x| x.check_pass && x.plausible == Some(true)));
        assert!(c.checked.iter().any(|l| l.contains("9 material(s)")));
    }

    #[test]
    fn refused_and_missing_materials_fail_and_are_listed() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let bones: Vec<&str> = def
            .holes
            .iter()
            .filter(|h| def.layout[&h.id] == "dense_bone")
            .map(|h| h.id.as_str())
            .collect();
        let waters: Vec<&str> = def
            .holes
            .iter()
            .filter(|h| def.layout[&h.id] == "water")
            .map(|h| h.id.as_str())
            .collect();
        let mut change: Vec<(&str, Option<f64>)> = bones.iter().map(|b| (*b, None)).collect();
        change.extend(waters.iter().map(|w| (*w, None)));
        let refused: Vec<RefusedHole> = bones
            .iter()
            .map(|b| RefusedHole {
                hole: b.to_string(),
                layout_material: Some("dense_bone".into()),
                reason: "no homogeneous core".into(),
            })
            .collect();
        let (m, c) = judged(def, &cirs_rois(def, &change), &refused, Some(120.0));
        assert!(!c.pass);
        let bone = m.iter().find(|x| x.insert == "dense_bone").unwrap();
        assert_eq!(bone.status, MaterialStatus::Refused);
        assert!(bone.hu_mean.is_nan() && !bone.check_pass);
        let water = m.iter().find(|x| x.insert == "water").unwrap();
        assert_eq!(water.status, MaterialStatus::Missing);
        assert!(!water.check_pass);
        assert!(c
            .failures
            .iter()
            .any(|f| f.starts_with("dense_bone not measured")));
        assert!(c
            .failures
            .iter()
            .any(|f| f.starts_with("water not measured")));
    }

    #[test]
    fn implausible_reading_and_disagreeing_copies_fail() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let bone = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "dense_bone")
            .unwrap()
            .id
            .clone();
        let water = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "water")
            .unwrap()
            .id
            .clone();
        let rois = cirs_rois(def, &[(&bone, Some(1100.0)), (&water, Some(400.0))]);
        let (m, c) = judged(def, &rois, &[], Some(120.0));
        let b = m.iter().find(|x| x.insert == "dense_bone").unwrap();
        assert_eq!(b.copies_consistent, Some(false), "{b:?}");
        assert!(!b.check_pass);
        let w = m.iter().find(|x| x.insert == "water").unwrap();
        assert_eq!(w.plausible, Some(false));
        assert!(!w.check_pass);
        assert!(!c.pass);
        // Copies within tolerance but beyond their noise: information, no failure.
        let rois = cirs_rois(
            def,
            &[(
                &bone,
                def.material("dense_bone").map(|m| m.hu_expected + 20.0),
            )],
        );
        let (m, c) = judged(def, &rois, &[], Some(120.0));
        let b = m.iter().find(|x| x.insert == "dense_bone").unwrap();
        assert_eq!(b.copies_consistent, Some(true));
        assert!(b.check_pass && c.pass, "{:?}", c.failures);
        assert!(b.check_notes.iter().any(|n| n.contains("copies differ")));
    }

    #[test]
    fn windows_judge_only_at_their_kvp() {
        let set = PhantomSet::builtin();
        let def = set.get("catphan_504").unwrap();
        let rois: Vec<RoiMeasurement> = def
            .holes
            .iter()
            .map(|h| {
                let m = &def.layout[&h.id];
                // delrin at 340 HU: below the manual's 344 … 387 (given at 120 kV)
                let hu = if m == "delrin" {
                    340.0
                } else {
                    def.material(m).unwrap().hu_expected
                };
                roi(&h.id, m, hu)
            })
            .collect();
        let (m, c) = judged(def, &rois, &[], Some(100.0));
        assert!(c.pass, "{:?}", c.failures);
        let d = m.iter().find(|x| x.insert == "delrin").unwrap();
        assert_eq!(d.within_window, None);
        assert!(d.check_notes.iter().any(|n| n.contains("information only")));
        let (m, c) = judged(def, &rois, &[], Some(120.0));
        assert!(!c.pass);
        let d = m.iter().find(|x| x.insert == "delrin").unwrap();
        assert_eq!(d.within_window, Some(false));
        // Unknown kVp: information only.
        let (_, c) = judged(def, &rois, &[], None);
        assert!(c.pass, "{:?}", c.failures);
    }

    #[test]
    fn a_decreasing_curve_fails() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let lung = def
            .holes
            .iter()
            .filter(|h| def.layout[&h.id] == "lung_exhale")
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>();
        // lung_exhale reading −850 (below lung_inhale's −800): RED decreases with HU.
        let change: Vec<(&str, Option<f64>)> = lung.iter().map(|h| (*h, Some(-850.0))).collect();
        let (_, c) = judged(def, &cirs_rois(def, &change), &[], Some(120.0));
        assert!(!c.curve_monotonic);
        assert!(!c.pass);
    }
}
