//! The offline pipeline: load a series, plan, load the slab, measure, evaluate constancy.
//!
//! Order: `dicom::load_series` → `Series::overview` (2 mm pixels) → `analysis::plan` →
//! `Series::full_resolution(plan.slab_indices)` → `analysis::measure` →
//! `analysis::constancy::evaluate`. Only the overview and the slab are ever decoded into memory.
//!
//! No printing, no process exit, no CLI types: the CLI and (later) the service's worker call
//! [`analyze`] (from a blocking thread: it is CPU and disk work) and write reports from the
//! outcome. A failure carries whatever was learnt before it (metadata, plan, warnings) so that
//! the error summary can still say which series and phantom it was about.

use crate::analysis::{
    self, AnalysisError, AnalysisOptions, Baseline, HuStack, Measurement, Plan, ToleranceEvaluation,
};
use crate::baseline::BaselineProtocol;
use crate::dicom::{self, DicomError, SeriesMeta};
use crate::identity::ProtocolField;
use crate::phantom::{PhantomDef, PhantomError, PhantomSet};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Pixel size of the overview the planner works on, mm.
pub const OVERVIEW_PIXEL_MM: f64 = 2.0;

/// Wall time of each stage (the report's `timings_ms`, which owns the type).
pub use crate::report::Timings;

/// Where the series comes from.
pub enum SeriesSource {
    /// A folder (searched recursively) or a single file.
    Path(PathBuf),
    /// Objects already in memory, each with a label for messages (file name, SOP Instance UID).
    Objects(Vec<(String, dicom_object::DefaultDicomObject)>),
}

impl SeriesSource {
    /// How the source is named in logs and reports.
    pub fn describe(&self) -> String {
        match self {
            SeriesSource::Path(p) => p.display().to_string(),
            SeriesSource::Objects(o) => format!("{} object(s) in memory", o.len()),
        }
    }
}

/// One analysis to run. Taken by value: in-memory objects are handed to the loader without a
/// copy.
pub struct AnalyzeRequest {
    pub source: SeriesSource,
    /// Analyse this series; `None` = the axial CT series with the most slices.
    pub series_uid: Option<String>,
    /// The phantom definitions in force (built-ins with the site file applied).
    pub phantoms: PhantomSet,
    pub options: AnalysisOptions,
    pub baseline: Option<Baseline>,
    /// The baseline file's acquisition metadata, to warn when the protocol differs.
    pub baseline_protocol: Option<BaselineProtocol>,
}

/// The result of a successful analysis.
#[derive(Debug, Clone)]
pub struct AnalyzeOutcome {
    pub meta: SeriesMeta,
    /// Loader, planner, measurement and protocol warnings, in that order, without repeats.
    pub warnings: Vec<String>,
    pub plan: Plan,
    pub measurement: Measurement,
    pub evaluation: ToleranceEvaluation,
    /// The definition the measurement used.
    pub phantom: PhantomDef,
    /// The slab measured at full resolution (for the overlay).
    pub slab: HuStack,
    pub timings: Timings,
}

/// The stage at which an analysis failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Setup,
    Load,
    Overview,
    Plan,
    Slab,
    Measure,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineErrorKind {
    #[error(transparent)]
    Dicom(#[from] DicomError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error(transparent)]
    Phantom(#[from] PhantomError),
}

/// Why an analysis failed, with what was known by then.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct PipelineError {
    /// Boxed: the loader's errors are large and this travels through `Result`.
    pub kind: Box<PipelineErrorKind>,
    pub stage: Stage,
    /// The series' metadata, when loading got that far.
    pub meta: Option<Box<SeriesMeta>>,
    /// The plan, when planning succeeded (the failure was later).
    pub plan: Option<Box<Plan>>,
    pub warnings: Vec<String>,
    pub timings: Timings,
    /// One slice of what was seen (the overview's middle slice, or the slab's centre slice
    /// when the failure came after it was decoded), for the ERROR report.
    pub preview: Option<Box<HuStack>>,
}

/// Milliseconds since `t`, to 0.01 ms.
fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 100_000.0).round() / 100.0
}

fn push_unique(into: &mut Vec<String>, from: &[String]) {
    for w in from {
        if !into.contains(w) {
            into.push(w.clone());
        }
    }
}

/// Run one analysis.
pub fn analyze(req: AnalyzeRequest) -> Result<AnalyzeOutcome, PipelineError> {
    let AnalyzeRequest {
        source,
        series_uid,
        phantoms,
        options,
        baseline,
        baseline_protocol,
    } = req;
    let span = tracing::info_span!(
        "analyze",
        source = %source.describe(),
        series_uid = tracing::field::Empty
    );
    let _guard = span.enter();
    let mut run = Progress::start();

    // A forced phantom must exist before any decoding is spent. A family id (`catphan_ctp404`)
    // stands for its variants: the planner identifies the variant among them only.
    if let Some(id) = options.phantom.as_deref() {
        if let Err(e) = phantoms.resolve(id) {
            return Err(run.fail(Stage::Setup, e, None, None));
        }
    }
    let series = load_step(&mut run, source, series_uid.as_deref())?;
    span.record("series_uid", series.meta.series_instance_uid.as_str());
    let options = with_scan_kvp(options, &series.meta);
    let (plan, phantom) = plan_step(&mut run, &series, &phantoms, &options)?;
    let slab = slab_step(&mut run, &series, &plan)?;
    let measurement = measure_step(&mut run, &series, &plan, &phantom, &slab, &options)?;

    let mut outcome = AnalyzeOutcome {
        evaluation: analysis::constancy::evaluate(&measurement, None, &phantom),
        meta: series.meta.clone(),
        warnings: run.warnings,
        plan,
        measurement,
        phantom,
        slab,
        timings: run.timings,
    };
    if baseline.is_some() {
        apply_baseline(&mut outcome, baseline.as_ref(), baseline_protocol.as_ref());
    }
    outcome.timings.total = ms(run.t0);
    tracing::info!(
        phantom = %outcome.measurement.phantom_id,
        pass = ?outcome.evaluation.pass,
        total_ms = outcome.timings.total,
        "analysis done"
    );
    Ok(outcome)
}

/// What an analysis has learnt so far, carried by its error if a later stage fails.
struct Progress {
    t0: Instant,
    timings: Timings,
    /// Loader, planner and measurement warnings so far, without repeats.
    warnings: Vec<String>,
    /// The last slice seen (overview, then slab), for the ERROR report.
    preview: Option<Box<HuStack>>,
}

impl Progress {
    /// An analysis starting now.
    fn start() -> Self {
        Progress {
            t0: Instant::now(),
            timings: Timings::default(),
            warnings: Vec::new(),
            preview: None,
        }
    }

    /// The error of a failure at `stage`, with what was learnt by then (logged as a warning).
    fn fail(
        &mut self,
        stage: Stage,
        kind: impl Into<PipelineErrorKind>,
        meta: Option<&SeriesMeta>,
        plan: Option<&Plan>,
    ) -> PipelineError {
        self.timings.total = ms(self.t0);
        let e = PipelineError {
            kind: Box::new(kind.into()),
            stage,
            meta: meta.map(|m| Box::new(m.clone())),
            plan: plan.map(|p| Box::new(p.clone())),
            warnings: self.warnings.clone(),
            timings: self.timings,
            preview: self.preview.take(),
        };
        tracing::warn!(stage = ?e.stage, "analysis failed: {e}");
        e
    }
}

/// Load the series from `source` (timed; its warnings kept).
fn load_step(
    run: &mut Progress,
    source: SeriesSource,
    series_uid: Option<&str>,
) -> Result<dicom::Series, PipelineError> {
    let t = Instant::now();
    let loaded = match source {
        SeriesSource::Path(p) => dicom::load_series(&p, series_uid),
        SeriesSource::Objects(o) => dicom::load_series_from_objects(o, series_uid),
    };
    run.timings.load = ms(t);
    let series = loaded.map_err(|e| run.fail(Stage::Load, e, None, None))?;
    push_unique(&mut run.warnings, &series.warnings);
    tracing::info!(
        slices = series.meta.n_slices,
        rows = series.meta.rows,
        columns = series.meta.columns,
        "series loaded"
    );
    Ok(series)
}

/// `options` with the scan's kVp, which decides which manufacturer windows apply and how wide
/// the plausibility bands are (an explicit option, in tests, wins).
fn with_scan_kvp(mut options: AnalysisOptions, meta: &SeriesMeta) -> AnalysisOptions {
    if options.kvp.is_none() {
        options.kvp = meta.acquisition.kvp.filter(|k| k.is_finite() && *k > 0.0);
    }
    options
}

/// Plan on the overview (both timed): which phantom, pose and slab; with its definition.
fn plan_step(
    run: &mut Progress,
    series: &dicom::Series,
    phantoms: &PhantomSet,
    options: &AnalysisOptions,
) -> Result<(Plan, PhantomDef), PipelineError> {
    let meta = Some(&series.meta);
    let t = Instant::now();
    let overview = series.overview(OVERVIEW_PIXEL_MM);
    run.timings.overview = ms(t);
    let overview = overview.map_err(|e| run.fail(Stage::Overview, e, meta, None))?;

    run.preview = Some(Box::new(overview.single_slice(overview.n_slices() / 2)));
    let t = Instant::now();
    let planned = analysis::plan(&overview, &phantoms.phantoms, options);
    run.timings.plan = ms(t);
    drop(overview);
    let plan = planned.map_err(|e| run.fail(Stage::Plan, e, meta, None))?;
    push_unique(&mut run.warnings, &plan.warnings);
    tracing::info!(
        phantom = %plan.phantom_id,
        confidence = plan.confidence,
        slab = ?plan.slab_indices,
        "plan"
    );
    let phantom = match phantoms.get(&plan.phantom_id) {
        Ok(p) => p.clone(),
        Err(e) => return Err(run.fail(Stage::Plan, e, meta, Some(&plan))),
    };
    Ok((plan, phantom))
}

/// Decode the planned slab at full resolution (timed); its centre slice becomes the preview.
fn slab_step(
    run: &mut Progress,
    series: &dicom::Series,
    plan: &Plan,
) -> Result<HuStack, PipelineError> {
    let t = Instant::now();
    let slab = series.full_resolution(&plan.slab_indices);
    run.timings.slab = ms(t);
    let slab = slab.map_err(|e| run.fail(Stage::Slab, e, Some(&series.meta), Some(plan)))?;
    if slab.n_slices() > 0 {
        run.preview = Some(Box::new(slab.single_slice(slab.n_slices() / 2)));
    }
    Ok(slab)
}

/// Measure the materials in the slab (timed; the measurement's warnings kept).
fn measure_step(
    run: &mut Progress,
    series: &dicom::Series,
    plan: &Plan,
    phantom: &PhantomDef,
    slab: &HuStack,
    options: &AnalysisOptions,
) -> Result<Measurement, PipelineError> {
    let t = Instant::now();
    let measured = analysis::measure(plan, phantom, slab, options);
    run.timings.measure = ms(t);
    let measurement =
        measured.map_err(|e| run.fail(Stage::Measure, e, Some(&series.meta), Some(plan)))?;
    push_unique(&mut run.warnings, &measurement.warnings);
    Ok(measurement)
}

/// Evaluate a measured series against a baseline (or none) — the last step of
/// [`analyze`], for callers that choose the baseline once the scanner and phantom are known
/// (the service). Replaces `evaluation` and adds the protocol/phantom mismatch warnings of a
/// baseline file's metadata.
pub fn apply_baseline(
    outcome: &mut AnalyzeOutcome,
    baseline: Option<&Baseline>,
    baseline_protocol: Option<&BaselineProtocol>,
) {
    let t = Instant::now();
    outcome.evaluation =
        analysis::constancy::evaluate(&outcome.measurement, baseline, &outcome.phantom);
    outcome.timings.constancy = ms(t);
    let (Some(bp), Some(b)) = (baseline_protocol, baseline) else {
        return;
    };
    let mut warnings = Vec::new();
    let m = &outcome.measurement;
    if let Some(other) = bp.phantom.as_deref().filter(|p| *p != m.phantom_id) {
        if m.family.as_deref() == Some(other) {
            warnings.push(crate::baseline::family_baseline_note(
                &format!("the baseline ({})", b.source),
                other,
                &m.phantom_id,
                &format!(
                    "use a baseline measured as '{}' (e.g. this run's CSV)",
                    m.phantom_id
                ),
            ));
        } else {
            warnings.push(format!(
                "the baseline ({}) was measured on phantom '{other}', this series is '{}': compare with a baseline of the same phantom",
                b.source, m.phantom_id
            ));
        }
    }
    let (run, base) = (&outcome.meta.acquisition, &bp.acquisition);
    let diffs = run
        .protocol()
        .differences(&base.protocol(), &ProtocolField::ALL);
    if !diffs.is_empty() {
        warnings.push(format!(
            "the protocol differs from the baseline's, or the baseline does not record it ({}): {}; HU depend on the protocol, so compare with a baseline of the same protocol",
            b.source,
            diffs.join(", ")
        ));
    }
    let diffs = run
        .scanner(None, None)
        .differences(&base.scanner(None, None));
    if !diffs.is_empty() {
        warnings.push(format!(
            "the baseline ({}) was measured on another scanner: {}; HU differ between scanners, so compare with a baseline of this scanner",
            b.source,
            diffs.join(", ")
        ));
    }
    push_unique(&mut outcome.warnings, &warnings);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{render, render_to_dir, SimParams};

    fn params() -> SimParams {
        SimParams {
            rotation_deg: -8.0,
            shift_x_mm: 10.0,
            n_slices: 24,
            seed: 11,
            ..SimParams::default()
        }
    }

    fn request(source: SeriesSource) -> AnalyzeRequest {
        AnalyzeRequest {
            source,
            series_uid: None,
            phantoms: PhantomSet::builtin(),
            options: AnalysisOptions::default(),
            baseline: None,
            baseline_protocol: None,
        }
    }

    fn labelled(objects: Vec<dicom_object::DefaultDicomObject>) -> SeriesSource {
        SeriesSource::Objects(
            objects
                .into_iter()
                .enumerate()
                .map(|(i, o)| (format!("object {i}"), o))
                .collect(),
        )
    }

    #[test]
    fn in_memory_objects_give_the_same_result_as_files() {
        let set = PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let sim = render(&params(), def).unwrap();
        let mem = analyze(request(labelled(sim.objects))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        render_to_dir(&params(), def, dir.path()).unwrap();
        let files = analyze(request(SeriesSource::Path(dir.path().to_path_buf()))).unwrap();

        assert_eq!(mem.meta.series_instance_uid, files.meta.series_instance_uid);
        assert_eq!(mem.measurement.phantom_id, "cirs062");
        assert_eq!(mem.plan.slab_indices, files.plan.slab_indices);
        assert_eq!(mem.slab.n_slices(), mem.plan.slab_indices.len());
        assert_eq!(mem.slab.series_index, mem.plan.slab_indices);
        assert_eq!(mem.slab.factor, 1);
        assert_eq!(mem.phantom.id, "cirs062");
        let means = |o: &AnalyzeOutcome| -> Vec<(String, f64)> {
            o.measurement
                .inserts
                .iter()
                .map(|m| (m.insert.clone(), m.hu_mean))
                .collect()
        };
        assert_eq!(means(&mem), means(&files));
        assert!(!mem.evaluation.has_baseline);
        assert!(mem.timings.total > 0.0);
        assert!(mem.timings.total >= mem.timings.load + mem.timings.measure);
    }

    #[test]
    fn baseline_evaluation_and_protocol_warnings() {
        let set = PhantomSet::builtin();
        let sim = render(&params(), set.get("cirs062").unwrap()).unwrap();
        let first = analyze(request(labelled(sim.objects))).unwrap();
        let baseline = Baseline {
            source: "base.csv".into(),
            entries: first
                .measurement
                .inserts
                .iter()
                .map(|m| crate::analysis::BaselineEntry {
                    insert: m.insert.clone(),
                    hu_mean: Some(m.hu_mean),
                    red: m.red,
                })
                .collect(),
        };
        let protocol = BaselineProtocol {
            acquisition: dicom::Acquisition {
                kvp: Some(100.0),
                ..Default::default()
            },
            phantom: Some("catphan_ctp404".into()),
            ..Default::default()
        };
        let sim = render(&params(), set.get("cirs062").unwrap()).unwrap();
        let mut req = request(labelled(sim.objects));
        req.baseline = Some(baseline);
        req.baseline_protocol = Some(protocol);
        let out = analyze(req).unwrap();
        assert!(out.evaluation.has_baseline);
        assert_eq!(out.evaluation.pass, Some(true));
        let w = out.warnings.join("\n");
        assert!(w.contains("kVp 120 (baseline 100)"), "{w}");
        // the file records no kernel and no slice thickness: not silently the same protocol
        assert!(w.contains("kernel STANDARD (baseline unknown)"), "{w}");
        assert!(w.contains("slice thickness 2 (baseline unknown)"), "{w}");
        assert!(w.contains("measured on phantom 'catphan_ctp404'"), "{w}");
    }

    #[test]
    fn family_baseline_csv_is_said_not_refused() {
        // a CIRS outcome relabelled as a Catphan variant: only apply_baseline's wording is tested
        let set = PhantomSet::builtin();
        let sim = render(&params(), set.get("cirs062").unwrap()).unwrap();
        let mut req = request(labelled(sim.objects));
        req.options.phantom = Some("cirs062".into());
        let out = analyze(req).unwrap();
        // a baseline CSV of the family id (e.g. catphan_ctp404 for a catphan_604 series) is no
        // mismatch, but the report says a legacy baseline was used
        let mut variant = out.clone();
        variant.warnings.clear();
        variant.measurement.phantom_id = "catphan_604".into();
        variant.measurement.family = Some("catphan_ctp404".into());
        let legacy = BaselineProtocol {
            phantom: Some("catphan_ctp404".into()),
            ..Default::default()
        };
        let b = req_baseline(&out);
        apply_baseline(&mut variant, Some(&b), Some(&legacy));
        let w = variant.warnings.join("\n");
        assert!(
            !w.contains("compare with a baseline of the same phantom"),
            "{w}"
        );
        assert!(
            w.contains("stored under the family id 'catphan_ctp404'")
                && w.contains("this 'catphan_604' series")
                && w.contains("base.csv"),
            "{w}"
        );
        // another variant's baseline is a mismatch
        let other = BaselineProtocol {
            phantom: Some("catphan_504".into()),
            ..Default::default()
        };
        variant.warnings.clear();
        apply_baseline(&mut variant, Some(&b), Some(&other));
        assert!(variant
            .warnings
            .join("\n")
            .contains("measured on phantom 'catphan_504'"));
    }

    fn req_baseline(o: &AnalyzeOutcome) -> Baseline {
        Baseline {
            source: "base.csv".into(),
            entries: o
                .measurement
                .inserts
                .iter()
                .map(|m| crate::analysis::BaselineEntry {
                    insert: m.insert.clone(),
                    hu_mean: Some(m.hu_mean),
                    red: m.red,
                })
                .collect(),
        }
    }

    #[test]
    fn unknown_forced_phantom_fails_before_loading() {
        let mut req = request(SeriesSource::Path("/nonexistent".into()));
        req.options.phantom = Some("gammex467".into());
        let e = analyze(req).unwrap_err();
        assert_eq!(e.stage, Stage::Setup);
        assert!(e.meta.is_none());
        assert!(e.to_string().contains("gammex467"), "{e}");
        // the family id is accepted: the failure is the missing series, not the phantom
        let mut req = request(SeriesSource::Path("/nonexistent".into()));
        req.options.phantom = Some(crate::phantom::CATPHAN_FAMILY.into());
        assert_eq!(analyze(req).unwrap_err().stage, Stage::Load);
    }

    #[test]
    fn failures_keep_what_was_learnt() {
        // nothing to load
        let e = analyze(request(SeriesSource::Objects(vec![]))).unwrap_err();
        assert_eq!(e.stage, Stage::Load);
        assert!(matches!(*e.kind, PipelineErrorKind::Dicom(_)));
        // a uniform cylinder loads, then no phantom is recognised: the metadata is kept
        let set = PhantomSet::builtin();
        let p = SimParams {
            uniform: true,
            ..params()
        };
        let sim = render(&p, set.get("cirs062").unwrap()).unwrap();
        let e = analyze(request(labelled(sim.objects))).unwrap_err();
        assert!(matches!(e.stage, Stage::Plan | Stage::Measure), "{e}");
        assert!(matches!(*e.kind, PipelineErrorKind::Analysis(_)));
        let meta = e.meta.expect("metadata of the loaded series");
        assert_eq!(meta.modality, "CT");
        assert!(e.timings.total > 0.0);
    }
}
