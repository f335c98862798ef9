//! The run summary: one value that the JSON file, the console text and (later) the service's
//! store are made from. JSON keys are a contract (issue 2, `hu-red analyze`).

use super::{finite, time::utc_timestamp};
use crate::analysis::{
    AbsoluteChecks, AssignmentMethod, Candidate, Curve, Detection, MaterialResult, MaterialStatus,
    Measurement, Plan, Pose, SlicesUsed, ToleranceEvaluation, UnassignedHole,
};
use crate::dicom::{Acquisition, FieldValue};
use serde::Serialize;
use std::time::SystemTime;

/// Wall time of each stage of one analysis, milliseconds (`timings_ms` in the summary JSON;
/// `pipeline::analyze` fills it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub load: f64,
    pub overview: f64,
    pub plan: f64,
    pub slab: f64,
    pub measure: f64,
    pub constancy: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

/// Acquisition metadata: the script's 11 DICOM fields under the script's names (the
/// acquisition's, flattened, then `PixelSpacing`), the script's `selected_slice_index`,
/// `phantom` and `dicom_path`, then hu-red's additions. The acquisition's `DeviceSerialNumber`
/// comes with it, before `PixelSpacing`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    /// Who scanned, how and when, under the script's names (`KVP`, `ReconstructionKernel`, …).
    #[serde(flatten)]
    pub acquisition: Acquisition,
    /// Row and column spacing joined by "," (the script's form).
    #[serde(rename = "PixelSpacing")]
    pub pixel_spacing: Option<String>,
    /// Series index of the centre slice of the measured slab.
    pub selected_slice_index: Option<usize>,
    pub phantom: String,
    pub dicom_path: String,
    #[serde(rename = "SeriesInstanceUID")]
    pub series_instance_uid: Option<String>,
    #[serde(rename = "StudyInstanceUID")]
    pub study_instance_uid: Option<String>,
    #[serde(rename = "SOPClassUID")]
    pub sop_class_uid: Option<String>,
    #[serde(rename = "Modality")]
    pub modality: Option<String>,
    #[serde(rename = "SeriesNumber")]
    pub series_number: Option<i64>,
    #[serde(rename = "Rows")]
    pub rows: Option<usize>,
    #[serde(rename = "Columns")]
    pub columns: Option<usize>,
    #[serde(rename = "TransferSyntaxUID")]
    pub transfer_syntax_uid: Option<String>,
    /// Number of slices in the series.
    pub n_slices: Option<usize>,
    /// `[row, column]` spacing, mm.
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

impl Metadata {
    /// Metadata of a loaded series (the caller sets `phantom`, `dicom_path` and
    /// `selected_slice_index`).
    pub fn from_series(meta: &crate::dicom::SeriesMeta) -> Self {
        let ps = meta.pixel_spacing;
        let ps_ok = ps.iter().all(|v| v.is_finite() && *v > 0.0);
        Metadata {
            acquisition: meta.acquisition.clone(),
            pixel_spacing: ps_ok.then(|| format!("{},{}", ps[0], ps[1])),
            selected_slice_index: None,
            phantom: String::new(),
            dicom_path: String::new(),
            series_instance_uid: Some(meta.series_instance_uid.clone()),
            study_instance_uid: Some(meta.study_instance_uid.clone()),
            sop_class_uid: Some(meta.sop_class_uid.clone()),
            modality: Some(meta.modality.clone()),
            series_number: meta.series_number,
            rows: Some(meta.rows),
            columns: Some(meta.columns),
            transfer_syntax_uid: Some(meta.transfer_syntax.clone()),
            n_slices: Some(meta.n_slices),
            pixel_spacing_mm: ps_ok.then_some(ps),
        }
    }

    /// The 11 script columns as CSV cells (missing = empty), in the script's order: the
    /// acquisition's ([`Acquisition::SCRIPT_COLUMNS`]), then `PixelSpacing`.
    pub fn script_cells(&self) -> [String; 11] {
        let [a, b, c, d, e, f, g, h, i, j] = self.acquisition.script_values().map(|v| match v {
            FieldValue::Text(t) => t.unwrap_or_default().to_string(),
            FieldValue::Number(n) => super::format::cell_shortest(n),
        });
        [
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            i,
            j,
            self.pixel_spacing.clone().unwrap_or_default(),
        ]
    }
}

/// Which phantom, and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct PhantomSummary {
    /// The id used in the file names (`unknown` when auto-detection did not get that far).
    pub id: String,
    pub name: Option<String>,
    pub detection: Detection,
    pub confidence: Option<f64>,
    pub candidates: Vec<Candidate>,
    /// The family the phantom belongs to (e.g. `catphan_ctp404` for every Catphan variant).
    pub family: Option<String>,
}

/// Paths of the files written (`null` = not written).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub csv: Option<String>,
    pub summary_json: Option<String>,
    pub curve_png: Option<String>,
    pub overlay_png: Option<String>,
}

/// The run summary (`hu_red_PHANTOM_summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub status: Status,
    pub error: Option<String>,
    /// The run's verdict (see [`verdict`]): `PASS`, `FAIL`, `NO BASELINE` or `ERROR`.
    pub verdict: RunVerdict,
    pub hu_red_version: String,
    pub started_at: String,
    pub finished_at: String,
    pub dicom_path: String,
    pub phantom: PhantomSummary,
    pub metadata: Metadata,
    pub pose: Option<Pose>,
    pub slices: Option<SlicesUsed>,
    pub assignment: Option<AssignmentMethod>,
    /// Every absolute check passed (`null` when not analysed): the engine's `checks.pass`, and
    /// no material, window or curve failure visible in the values themselves (see
    /// [`absolute_failures`]).
    pub absolute_pass: Option<bool>,
    /// The absolute checks as the engine made them: what was checked, what failed, what is
    /// information only (`null` when not analysed).
    pub checks: Option<AbsoluteChecks>,
    /// One entry per material of the definition, measured or not (`status`, `reason`).
    pub inserts: Vec<MaterialResult>,
    /// Holes whose content fits no material of the definition: information, never pooled.
    pub unassigned: Vec<UnassignedHole>,
    pub curve: Option<Curve>,
    pub tolerance_evaluation: ToleranceEvaluation,
    pub outputs: Outputs,
    pub warnings: Vec<String>,
    /// How to read the result (the script's summary has a `note` too).
    pub note: String,
    pub timings_ms: Option<Timings>,
}

/// The `note` of every summary.
pub const NOTE: &str = "HU values are ROI means averaged over the slab of slices listed under \
'slices'; constancy: delta_hu = hu_mean - baseline_hu per insert, pass = every insert within its \
tolerance (a missing value fails); delta_red_percent = the RED error a planning system still \
using the baseline curve makes on today's HU.";

/// What a summary of a successful analysis is made of.
pub struct OkParts<'a> {
    pub dicom_path: &'a str,
    pub metadata: Metadata,
    pub measurement: &'a Measurement,
    pub evaluation: &'a ToleranceEvaluation,
    pub warnings: Vec<String>,
    pub timings: Option<Timings>,
    pub started_at: SystemTime,
}

impl Summary {
    /// The summary of a successful analysis. `outputs` starts empty: the writer fills it.
    pub fn ok(p: OkParts<'_>) -> Self {
        let m = p.measurement;
        let mut metadata = p.metadata;
        metadata.phantom = m.phantom_id.clone();
        metadata.dicom_path = p.dicom_path.to_string();
        metadata.selected_slice_index = Some(m.slices.centre_index);
        let absolute_ok = absolute_failures(&m.checks, m.absolute_pass, &m.inserts).is_empty();
        Summary {
            status: Status::Ok,
            error: None,
            verdict: verdict(Constancy::of(p.evaluation), absolute_ok),
            hu_red_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: utc_timestamp(p.started_at),
            finished_at: utc_timestamp(SystemTime::now()),
            dicom_path: p.dicom_path.to_string(),
            phantom: PhantomSummary {
                id: m.phantom_id.clone(),
                name: Some(m.phantom_name.clone()),
                detection: m.detection,
                confidence: finite(m.confidence),
                candidates: m.candidates.clone(),
                family: m.family.clone(),
            },
            metadata,
            pose: Some(m.pose),
            slices: Some(m.slices.clone()),
            assignment: Some(m.assignment),
            absolute_pass: Some(absolute_ok),
            checks: Some(m.checks.clone()),
            inserts: m.inserts.clone(),
            unassigned: m.unassigned.clone(),
            curve: Some(m.curve.clone()),
            tolerance_evaluation: p.evaluation.clone(),
            outputs: Outputs::default(),
            warnings: p.warnings,
            note: NOTE.to_string(),
            timings_ms: p.timings,
        }
    }

    /// The summary of a run that could not analyse. `phantom_id` is the forced phantom or
    /// [`super::UNKNOWN_PHANTOM`]; `plan`, when the planner got that far, adds its candidates and
    /// pose; `baseline_source` is the baseline that was given, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn error(
        dicom_path: &str,
        phantom_id: &str,
        detection: Detection,
        error: String,
        metadata: Option<Metadata>,
        plan: Option<&Plan>,
        baseline_source: Option<String>,
        warnings: Vec<String>,
        started_at: SystemTime,
    ) -> Self {
        let mut metadata = metadata.unwrap_or_default();
        metadata.phantom = phantom_id.to_string();
        metadata.dicom_path = dicom_path.to_string();
        metadata.selected_slice_index = plan.map(|p| p.centre_index);
        Summary {
            status: Status::Error,
            error: Some(error),
            verdict: RunVerdict::Error,
            hu_red_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: utc_timestamp(started_at),
            finished_at: utc_timestamp(SystemTime::now()),
            dicom_path: dicom_path.to_string(),
            phantom: PhantomSummary {
                id: phantom_id.to_string(),
                name: None,
                detection,
                confidence: plan
                    .filter(|p| p.phantom_id == phantom_id)
                    .and_then(|p| finite(p.confidence)),
                candidates: plan.map(|p| p.candidates.clone()).unwrap_or_default(),
                family: None,
            },
            metadata,
            pose: plan.map(|p| p.pose),
            slices: None,
            assignment: None,
            absolute_pass: None,
            checks: None,
            inserts: Vec::new(),
            unassigned: Vec::new(),
            curve: None,
            tolerance_evaluation: ToleranceEvaluation {
                has_baseline: baseline_source.is_some(),
                pass: None,
                pearson_r: None,
                baseline_source,
                per_insert: Vec::new(),
            },
            outputs: Outputs::default(),
            warnings,
            note: NOTE.to_string(),
            timings_ms: None,
        }
    }

    /// Strict, pretty JSON in the struct's key order: serde_json writes every non-finite
    /// float as `null` (checked by the tests), so no `NaN` token can appear.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(
                "{{\"status\": \"error\", \"error\": {}}}",
                serde_json::Value::String(format!("cannot serialise the summary: {e}"))
            )
        }) + "\n"
    }

    /// Constancy against the baseline: `Some(false)` when a baseline was compared and
    /// failed (or could not be evaluated), `None` without a baseline.
    pub fn constancy_pass(&self) -> Option<bool> {
        match Constancy::of(&self.tolerance_evaluation) {
            Constancy::NoBaseline => None,
            Constancy::Pass => Some(true),
            Constancy::Fail => Some(false),
        }
    }

    /// The absolute checks that failed, one line each (empty: none failed, or not analysed).
    pub fn absolute_failures(&self) -> Vec<String> {
        match (&self.checks, self.status) {
            (Some(c), Status::Ok) => {
                absolute_failures(c, self.absolute_pass.unwrap_or(false), &self.inserts)
            }
            (None, Status::Ok) => {
                let mut f = absolute_failures(
                    &AbsoluteChecks {
                        pass: true,
                        curve_monotonic: true,
                        ..Default::default()
                    },
                    self.absolute_pass.unwrap_or(false),
                    &self.inserts,
                );
                if f.is_empty() && self.absolute_pass != Some(true) {
                    f.push("the absolute checks were not recorded".to_string());
                }
                f
            }
            (_, Status::Error) => Vec::new(),
        }
    }

    /// The information lines of the absolute checks (they fail nothing), each naming its
    /// material: a line the engine also filed under one material's `check_notes` without
    /// naming it (e.g. "window 344 … 387 HU is given at 120 kV; …") gets the material's name
    /// in front. With `skip_unassigned`, the lines about holes listed in `unassigned` are left
    /// out (for a report that lists those holes in a section of their own).
    pub fn info_lines(&self, skip_unassigned: bool) -> Vec<String> {
        let Some(c) = &self.checks else {
            return Vec::new();
        };
        c.info
            .iter()
            .map(|i| i.trim())
            .filter(|i| !i.is_empty())
            .filter(|i| {
                !(skip_unassigned
                    && i.contains("not in the phantom definition")
                    && self.unassigned.iter().any(|u| mentions(i, &u.hole)))
            })
            .map(|i| {
                match self
                    .inserts
                    .iter()
                    .find(|m| m.check_notes.iter().any(|n| n.trim() == i))
                {
                    Some(m) if !mentions(i, &m.insert) => format!("{}: {i}", m.insert),
                    _ => i.to_string(),
                }
            })
            .collect()
    }

    /// The verdict of this summary, recomputed from its values with [`verdict`] (the same
    /// rule that filled [`Summary::verdict`]).
    pub fn decide(&self) -> RunVerdict {
        if self.status == Status::Error {
            return RunVerdict::Error;
        }
        verdict(
            Constancy::of(&self.tolerance_evaluation),
            self.absolute_failures().is_empty(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The verdict rule: the one place that decides PASS / FAIL / NO BASELINE. The service
// (`worker`: the run's stored verdict, the report's subject) and `hu-red analyze` (its exit
// code) both call it through [`Summary::decide`] / [`Summary::verdict`].

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunVerdict {
    /// Constancy against a baseline passed and every absolute check passed.
    #[serde(rename = "PASS")]
    Pass,
    /// Constancy failed (with a baseline), or an absolute check failed (with or without one).
    #[serde(rename = "FAIL")]
    Fail,
    /// No baseline to compare with, and no absolute check failed (stored as `NONE`).
    #[serde(rename = "NO BASELINE")]
    NoBaseline,
    /// The series could not be analysed.
    #[serde(rename = "ERROR")]
    Error,
}

impl RunVerdict {
    /// `PASS`, `FAIL`, `NO BASELINE`, `ERROR`: what users read.
    pub fn label(self) -> &'static str {
        match self {
            RunVerdict::Pass => "PASS",
            RunVerdict::Fail => "FAIL",
            RunVerdict::NoBaseline => "NO BASELINE",
            RunVerdict::Error => "ERROR",
        }
    }
}

/// Constancy against a baseline, as the verdict sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constancy {
    /// No baseline was given or found.
    NoBaseline,
    /// Every material within its tolerance of the baseline.
    Pass,
    /// A material outside its tolerance, missing, or constancy not evaluated although a
    /// baseline was given (only an explicit pass is a pass).
    Fail,
}

impl Constancy {
    pub fn of(ev: &ToleranceEvaluation) -> Constancy {
        match (ev.has_baseline, ev.pass) {
            (false, _) => Constancy::NoBaseline,
            (true, Some(true)) => Constancy::Pass,
            (true, _) => Constancy::Fail,
        }
    }
}

/// THE verdict rule of an analysed run: FAIL when constancy fails (with a baseline) or any
/// absolute check fails; PASS when a baseline was compared and both passed; NO BASELINE
/// otherwise (no baseline, no absolute failure). Never PASS without a baseline.
pub fn verdict(constancy: Constancy, absolute_pass: bool) -> RunVerdict {
    match (constancy, absolute_pass) {
        (_, false) | (Constancy::Fail, _) => RunVerdict::Fail,
        (Constancy::Pass, true) => RunVerdict::Pass,
        (Constancy::NoBaseline, true) => RunVerdict::NoBaseline,
    }
}

/// The absolute check of one material, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaterialCheck {
    /// Measured and every absolute check of it passed.
    Pass,
    /// An optional material (e.g. an empty vial) that is not there: fails nothing.
    NotPresent,
    /// Why it fails: refused or missing (with the reason), outside its plausibility band or
    /// its window at this kVp, copies that disagree.
    Fail(String),
}

/// The absolute check of one material, from its values: a non-optional material that was
/// not measured fails (never a silent gap), as does any check the values show failed.
pub fn material_check(m: &MaterialResult) -> MaterialCheck {
    let measured = m.status == MaterialStatus::Measured && m.hu_mean.is_finite();
    if !measured {
        if m.optional {
            return MaterialCheck::NotPresent;
        }
        let what = match m.status {
            MaterialStatus::Missing => "not found",
            _ => "not measured",
        };
        return MaterialCheck::Fail(match m.reason.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => format!("{what}: {r}"),
            _ => what.to_string(),
        });
    }
    let mut why = Vec::new();
    if m.plausible == Some(false) {
        why.push(
            match m.hu_band.filter(|b| b.iter().all(|v| v.is_finite())) {
                Some([lo, hi]) => format!(
                    "{} HU outside the plausibility band {} … {} HU",
                    num(m.hu_mean, 1),
                    num(lo, 0),
                    num(hi, 0)
                ),
                None => format!("{} HU outside the plausibility band", num(m.hu_mean, 1)),
            },
        );
    }
    if m.within_window == Some(false) {
        let at = m
            .window_kvp
            .and_then(finite)
            .map(|k| format!(" (given at {} kV)", num(k, 0)))
            .unwrap_or_default();
        why.push(
            match m.hu_window.filter(|w| w.iter().all(|v| v.is_finite())) {
                Some([lo, hi]) => format!(
                    "{} HU outside the window {} … {} HU{at}",
                    num(m.hu_mean, 1),
                    num(lo, 0),
                    num(hi, 0)
                ),
                None => format!("{} HU outside its window", num(m.hu_mean, 1)),
            },
        );
    }
    if m.copies_consistent == Some(false) {
        let copies: Vec<String> = m
            .rois
            .iter()
            .filter(|r| r.hu_mean.is_finite())
            .map(|r| num(r.hu_mean, 0))
            .collect();
        why.push(if copies.len() >= 2 {
            format!("copies disagree: {} HU", copies.join(" vs "))
        } else {
            match m.copies_spread_hu.and_then(finite) {
                Some(d) => format!("copies disagree by {} HU", num(d, 0)),
                None => "copies disagree".to_string(),
            }
        });
    }
    if why.is_empty() && !m.check_pass {
        why.push(
            m.check_notes
                .first()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "an absolute check failed".to_string()),
        );
    }
    if why.is_empty() {
        MaterialCheck::Pass
    } else {
        MaterialCheck::Fail(why.join("; "))
    }
}

/// Every absolute failure of a measurement, one line each: the engine's `checks.failures`
/// first (its wording), then what the values themselves show and those lines do not name
/// (a material failing, a non-monotone curve, `absolute_pass` false). Empty = no absolute
/// check failed. Both the verdict and the reports read this, so a failure the report names
/// always fails the run, and the other way round.
pub fn absolute_failures(
    checks: &AbsoluteChecks,
    absolute_pass: bool,
    inserts: &[MaterialResult],
) -> Vec<String> {
    let mut out: Vec<String> = checks
        .failures
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    for m in inserts {
        if let MaterialCheck::Fail(why) = material_check(m) {
            if !out.iter().any(|f| mentions(f, &m.insert)) {
                out.push(format!("{} {why}", m.insert));
            }
        }
    }
    // the engine words it "RED does not increase with HU along the curve: …"
    if !checks.curve_monotonic
        && !out
            .iter()
            .any(|f| f.contains("monoton") || f.contains("curve"))
    {
        out.push("HU–RED curve not monotone: RED decreases as HU increases".to_string());
    }
    if out.is_empty() && !(checks.pass && absolute_pass) {
        out.push("an absolute check failed (no detail recorded)".to_string());
    }
    out
}

/// `line` names `word` as a whole word (`water` is not named by `solid_water`).
fn mentions(line: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(start, _)| {
        let end = start + word.len();
        line[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word(c))
            && line[end..].chars().next().is_none_or(|c| !is_word(c))
    })
}

/// A number with `decimals` decimals, without "-0", `–` when not finite.
fn num(v: f64, decimals: usize) -> String {
    super::format::fixed(Some(v), decimals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::RoiMeasurement;

    fn ev(has_baseline: bool, pass: Option<bool>) -> ToleranceEvaluation {
        ToleranceEvaluation {
            has_baseline,
            pass,
            pearson_r: None,
            baseline_source: has_baseline.then(|| "run 1".to_string()),
            per_insert: vec![],
        }
    }

    #[test]
    fn the_verdict_rule_for_every_combination() {
        use Constancy as C;
        use RunVerdict as V;
        let table = [
            // (constancy, absolute checks pass) → verdict
            ((C::NoBaseline, true), V::NoBaseline),
            ((C::NoBaseline, false), V::Fail),
            ((C::Pass, true), V::Pass),
            ((C::Pass, false), V::Fail),
            ((C::Fail, true), V::Fail),
            ((C::Fail, false), V::Fail),
        ];
        for ((c, a), want) in table {
            assert_eq!(verdict(c, a), want, "{c:?}, absolute pass {a}");
        }
        // never PASS without a baseline
        for a in [true, false] {
            assert_ne!(verdict(C::NoBaseline, a), V::Pass);
        }
        // what the constancy evaluation says: only an explicit pass is a pass
        for (has, pass, want) in [
            (false, None, C::NoBaseline),
            (false, Some(true), C::NoBaseline),
            (false, Some(false), C::NoBaseline),
            (true, Some(true), C::Pass),
            (true, Some(false), C::Fail),
            (true, None, C::Fail),
        ] {
            assert_eq!(Constancy::of(&ev(has, pass)), want, "{has} {pass:?}");
        }
        assert_eq!(V::NoBaseline.label(), "NO BASELINE");
        for v in [V::Pass, V::Fail, V::NoBaseline, V::Error] {
            assert_eq!(serde_json::to_value(v).unwrap_or_default(), v.label());
        }
    }

    fn material(name: &str, hu: f64) -> MaterialResult {
        MaterialResult {
            insert: name.into(),
            hu_mean: hu,
            check_pass: true,
            ..Default::default()
        }
    }

    fn passing_checks() -> AbsoluteChecks {
        AbsoluteChecks {
            pass: true,
            curve_monotonic: true,
            ..Default::default()
        }
    }

    #[test]
    fn material_checks_from_the_values() {
        assert_eq!(material_check(&material("water", 1.0)), MaterialCheck::Pass);
        let mut m = material("dense_bone", f64::NAN);
        m.status = MaterialStatus::Refused;
        m.reason = Some("no homogeneous core".into());
        assert_eq!(
            material_check(&m),
            MaterialCheck::Fail("not measured: no homogeneous core".into())
        );
        m.status = MaterialStatus::Missing;
        m.reason = None;
        assert_eq!(material_check(&m), MaterialCheck::Fail("not found".into()));
        m.optional = true;
        assert_eq!(material_check(&m), MaterialCheck::NotPresent);
        // a measured status with no value is not measured either
        let m = material("liver", f64::NAN);
        assert_eq!(
            material_check(&m),
            MaterialCheck::Fail("not measured".into())
        );

        let mut m = material("delrin", 340.4);
        m.hu_window = Some([344.0, 387.0]);
        m.window_kvp = Some(120.0);
        m.within_window = None; // a 100 kV scan: information only
        assert_eq!(material_check(&m), MaterialCheck::Pass);
        m.within_window = Some(false);
        assert_eq!(
            material_check(&m),
            MaterialCheck::Fail(
                "340.4 HU outside the window 344 … 387 HU (given at 120 kV)".into()
            )
        );
        let mut m = material("water", 160.0);
        m.hu_band = Some([-100.0, 100.0]);
        m.plausible = Some(false);
        assert_eq!(
            material_check(&m),
            MaterialCheck::Fail("160.0 HU outside the plausibility band -100 … 100 HU".into())
        );
        let mut m = material("dense_bone", 1225.0);
        m.copies_consistent = Some(false);
        m.rois = [1000.0, 1450.0]
            .iter()
            .map(|&hu_mean| RoiMeasurement {
                hu_mean,
                ..Default::default()
            })
            .collect();
        assert_eq!(
            material_check(&m),
            MaterialCheck::Fail("copies disagree: 1000 vs 1450 HU".into())
        );
        let mut m = material("x", 1.0);
        m.check_pass = false;
        m.check_notes = vec!["something the engine found".into()];
        assert_eq!(
            material_check(&m),
            MaterialCheck::Fail("something the engine found".into())
        );
    }

    #[test]
    fn absolute_failures_take_the_engines_lines_and_add_what_they_miss() {
        let ok = [material("water", 0.0), material("solid_water", 2.0)];
        assert!(absolute_failures(&passing_checks(), true, &ok).is_empty());
        // absolute_pass or checks.pass false without any detail still fails
        assert_eq!(
            absolute_failures(&passing_checks(), false, &ok),
            ["an absolute check failed (no detail recorded)"]
        );
        let mut c = passing_checks();
        c.pass = false;
        assert_eq!(absolute_failures(&c, true, &ok).len(), 1);
        // the curve
        let mut c = passing_checks();
        c.curve_monotonic = false;
        assert_eq!(
            absolute_failures(&c, true, &ok),
            ["HU–RED curve not monotone: RED decreases as HU increases"]
        );
        // the engine's wording
        c.failures = vec![
            "RED does not increase with HU along the curve: check the material assignment and \
             the inserts"
                .into(),
        ];
        assert_eq!(absolute_failures(&c, false, &ok).len(), 1);
        // a material failure the engine listed is not repeated; one it did not is added;
        // "solid_water" in a line does not name "water"
        let mut mats = ok.to_vec();
        mats[0].status = MaterialStatus::Missing;
        mats[0].hu_mean = f64::NAN;
        mats[1].plausible = Some(false);
        let mut c = passing_checks();
        c.pass = false;
        c.failures = vec!["solid_water 2 HU outside its band".into()];
        assert_eq!(
            absolute_failures(&c, false, &mats),
            ["solid_water 2 HU outside its band", "water not found"]
        );
        assert!(mentions("copies of dense_bone disagree", "dense_bone"));
        assert!(!mentions("solid_water", "water"));
        assert!(!mentions("waterfall", "water"));
        assert!(mentions("water: x", "water"));
        assert!(!mentions("anything", ""));
    }
}
