//! The outcome of one series, on the blocking pool: decode and measure it (no baseline yet),
//! then — once the baseline is chosen — constancy, the summary and every file (CSV, JSON,
//! curve, overlay, trend; for a series that could not be analysed the JSON, a preview and the
//! hints of what to check).

use super::baseline::{baseline_warnings, BaselineContext};
use super::outcome::{RunOutcome, RunResult};
use super::report::{hints_for, trend_of};
use crate::analysis::{AnalysisOptions, Detection};
use crate::phantom::PhantomSet;
use crate::pipeline::{self, AnalyzeRequest, SeriesSource};
use crate::report::{self, Metadata, OkParts, OutputOptions, Summary, UNKNOWN_PHANTOM};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::warn;

/// The part of a run that runs on the blocking pool: decode, analyse, write files.
pub(super) struct BlockingRun {
    /// The folder of the series' analysable instances (none: no CT image).
    pub(super) folder: Option<PathBuf>,
    pub(super) uid: String,
    /// The phantom set for this scanner or by `qa.phantom` (none: identified).
    pub(super) forced: Option<String>,
    pub(super) slab_mm: f64,
    pub(super) phantoms: Arc<PhantomSet>,
    /// The run's temporary result folder.
    pub(super) tmp: PathBuf,
    pub(super) started: SystemTime,
    /// Instances arrived after the series had been analysed.
    pub(super) amended: bool,
    /// `mail.error_preview`: a series with no phantom recognised gets a preview picture too.
    pub(super) error_preview: bool,
}

/// What the first blocking step found.
pub(super) enum Measured {
    Ok(Box<pipeline::AnalyzeOutcome>),
    /// The series could not be analysed (the data's fault).
    Failed(Box<Unanalysable>),
    /// hu-red's own fault (files).
    Internal(String),
}

/// Why and how far a series could not be analysed.
pub(super) struct Unanalysable {
    error: String,
    stage: Option<pipeline::Stage>,
    pub(super) metadata: Option<Metadata>,
    plan: Option<Box<crate::analysis::Plan>>,
    warnings: Vec<String>,
    preview: Option<Box<crate::analysis::HuStack>>,
}

pub(super) const AMENDED_NOTE: &str =
    "amended: instances arrived after this series had been analysed; this run replaces the earlier one";

const PROVISIONAL_NOW: &str = "this run is now the PROVISIONAL baseline of its scanner, phantom \
     and protocol (qa.auto_baseline); confirm it with `hu-red baseline set` on this run";

const NOT_PROVISIONAL: &str = "this run was not made the provisional baseline \
     (qa.auto_baseline): an absolute check failed; set a baseline with `hu-red baseline set \
     --run ID` once a run passes them, or on this run after review";

impl BlockingRun {
    /// Decode and measure (no baseline yet).
    pub(super) fn measure(&self) -> Measured {
        if let Err(e) = crate::durable::create_dir_all(&self.tmp) {
            return Measured::Internal(format!(
                "cannot create the result folder {}: {e}",
                self.tmp.display()
            ));
        }
        let Some(folder) = self.folder.clone() else {
            return Measured::Failed(Box::new(Unanalysable {
                error: "the series has no CT image to analyse".into(),
                stage: None,
                metadata: None,
                plan: None,
                warnings: vec![],
                preview: None,
            }));
        };
        let request = AnalyzeRequest {
            source: SeriesSource::Path(folder),
            series_uid: Some(self.uid.clone()),
            phantoms: (*self.phantoms).clone(),
            options: AnalysisOptions {
                phantom: self.forced.clone(),
                slab_mm: self.slab_mm,
                kvp: None,
            },
            baseline: None,
            baseline_protocol: None,
        };
        match pipeline::analyze(request) {
            Ok(o) => Measured::Ok(Box::new(o)),
            Err(e) => Measured::Failed(Box::new(Unanalysable {
                error: e.to_string(),
                stage: Some(e.stage),
                metadata: e.meta.as_deref().map(Metadata::from_series),
                plan: e.plan,
                warnings: e.warnings,
                preview: e.preview,
            })),
        }
    }

    fn dicom_path(&self) -> String {
        self.folder
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default()
    }

    /// Constancy against the chosen baseline, the summary and every file (CSV, JSON, curve,
    /// overlay, trend; for a failure the JSON and a preview).
    pub(super) fn finish(self, measured: Measured, ctx: BaselineContext) -> RunOutcome {
        let mut outcome = match measured {
            Measured::Internal(e) => return RunOutcome::error(e),
            Measured::Failed(f) => return self.failed(*f),
            Measured::Ok(o) => *o,
        };
        let baseline = ctx.baseline.as_ref().map(|(b, _)| b.to_engine());
        pipeline::apply_baseline(&mut outcome, baseline.as_ref(), None);
        let mut warnings = outcome.warnings.clone();
        if self.amended {
            warnings.insert(0, AMENDED_NOTE.into());
        }
        warnings.extend(baseline_warnings(&ctx, &outcome.measurement.phantom_id));
        let mut summary = Summary::ok(OkParts {
            dicom_path: &self.dicom_path(),
            metadata: Metadata::from_series(&outcome.meta),
            measurement: &outcome.measurement,
            evaluation: &outcome.evaluation,
            warnings,
            timings: Some(outcome.timings),
            started_at: self.started,
        });
        // A run that failed an absolute check (a material not measured, implausible HU, ...)
        // does not become the reference of the next runs by itself. (Constancy against the
        // closest baseline of another protocol may fail: that does not stop it.)
        let auto_baseline = ctx.auto_baseline && summary.absolute_pass == Some(true);
        if auto_baseline {
            summary.warnings.push(PROVISIONAL_NOW.into());
        } else if ctx.auto_baseline {
            summary.warnings.push(NOT_PROVISIONAL.into());
        }
        let attachments = match self.write_files(&mut summary, &outcome, &ctx, baseline.as_ref()) {
            Ok(a) => a,
            Err(e) => {
                let mut o = RunOutcome::error(format!("the results could not be written: {e}"));
                o.summary = Some(summary);
                o.phantom_recognised = Some(true);
                return o;
            }
        };
        RunOutcome {
            summary: Some(summary.clone()),
            result: Some(RunResult { outcome, summary }),
            error: None,
            internal: false,
            wrote_outputs: true,
            identity: None,
            baseline: ctx.baseline,
            auto_baseline,
            attachments,
            hints: Vec::new(),
            phantom_recognised: Some(true),
        }
    }

    /// The files of an analysed run (CSV, JSON, curve, overlay, then the trend, which may be
    /// missing); returns the names written, the report's attachments.
    fn write_files(
        &self,
        summary: &mut Summary,
        outcome: &pipeline::AnalyzeOutcome,
        ctx: &BaselineContext,
        baseline: Option<&crate::analysis::Baseline>,
    ) -> Result<Vec<String>, report::ReportError> {
        let opts = OutputOptions {
            curve: true,
            overlay: true,
            relative_paths: true,
        };
        report::write_outputs(
            &self.tmp,
            summary,
            &outcome.slab,
            &outcome.phantom,
            baseline,
            opts,
        )?;
        let mut attachments: Vec<String> = [
            &summary.outputs.csv,
            &summary.outputs.summary_json,
            &summary.outputs.curve_png,
            &summary.outputs.overlay_png,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        let trend = trend_of(ctx, outcome);
        let trend_name = report::trend_png_name(&outcome.measurement.phantom_id);
        let title = format!(
            "ΔHU trend — {} — {}",
            ctx.scanner_label, outcome.measurement.phantom_id
        );
        match report::write_trend_png(&trend, &title, &self.tmp.join(&trend_name)) {
            Ok(()) => attachments.push(trend_name),
            Err(e) => warn!("the trend plot was not written: {e}"),
        }
        Ok(attachments)
    }

    /// The outcome of a series that could not be analysed: its summary (what was read before
    /// it stopped), the JSON, a preview of what hu-red saw and what to check.
    fn failed(&self, f: Unanalysable) -> RunOutcome {
        let Unanalysable {
            error,
            stage,
            metadata,
            plan,
            mut warnings,
            preview,
        } = f;
        if self.amended {
            warnings.insert(0, AMENDED_NOTE.into());
        }
        let (id, detection) = match &self.forced {
            Some(id) => (id.as_str(), Detection::Forced),
            None => (UNKNOWN_PHANTOM, Detection::Auto),
        };
        let hints = hints_for(stage, &error, self.forced.as_deref());
        let mut summary = Summary::error(
            &self.dicom_path(),
            id,
            detection,
            error.clone(),
            metadata,
            plan.as_deref(),
            None,
            warnings,
            self.started,
        );
        let mut attachments = Vec::new();
        // No phantom recognised: the series may be a patient's; no picture of it is kept or
        // sent unless the site asked for it.
        let phantom_recognised = plan.is_some();
        if let Some(p) = preview
            .as_deref()
            .filter(|_| phantom_recognised || self.error_preview)
        {
            attachments.extend(self.write_preview(p, id, &error, &summary));
        }
        let json = self.tmp.join(report::summary_file_name(id));
        summary.outputs.summary_json = Some(report::summary_file_name(id));
        let wrote = report::write_summary_json(&summary, &json).is_ok();
        if wrote {
            attachments.insert(0, report::summary_file_name(id));
        }
        RunOutcome {
            result: None,
            summary: Some(summary),
            error: Some(error),
            internal: false,
            wrote_outputs: wrote,
            identity: None,
            baseline: None,
            auto_baseline: false,
            attachments,
            hints,
            phantom_recognised: Some(phantom_recognised),
        }
    }

    /// The middle slice of what could not be analysed, captioned; its file name if written.
    fn write_preview(
        &self,
        p: &crate::analysis::HuStack,
        id: &str,
        error: &str,
        summary: &Summary,
    ) -> Option<String> {
        let name = report::preview_png_name(id);
        let mut lines = vec![format!("Could not analyse: {error}")];
        if let Some(d) = &summary.metadata.acquisition.series_description {
            lines.push(format!("Series: {d}"));
        }
        if let Some(n) = summary.metadata.n_slices {
            lines.push(format!("{n} slices"));
        }
        match report::write_preview_png(
            p,
            p.n_slices() / 2,
            "What hu-red saw (middle of the series)",
            &lines,
            &self.tmp.join(&name),
        ) {
            Ok(()) => Some(name),
            Err(e) => {
                warn!("the preview was not written: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &std::path::Path, folder: Option<PathBuf>, forced: Option<&str>) -> BlockingRun {
        BlockingRun {
            folder,
            uid: "1.2.3".into(),
            forced: forced.map(str::to_string),
            slab_mm: 10.0,
            phantoms: Arc::new(PhantomSet::builtin()),
            tmp: dir.join("results").join("tmp-test"),
            started: SystemTime::now(),
            amended: true,
            error_preview: false,
        }
    }

    /// What a series that was not recognised left: a uniform 3-slice stack, no plan.
    fn unrecognised() -> Unanalysable {
        Unanalysable {
            error: "no phantom recognised".into(),
            stage: Some(pipeline::Stage::Plan),
            metadata: None,
            plan: None,
            warnings: vec![],
            preview: Some(Box::new(crate::analysis::HuStack {
                hu: ndarray::Array3::from_elem((3, 16, 16), 40.0),
                pixel_mm: [1.0, 1.0],
                origin_mm: [0.0, 0.0],
                z_mm: vec![0.0, 1.0, 2.0],
                series_index: vec![0, 1, 2],
                thickness_mm: 1.0,
                factor: 1,
            })),
        }
    }

    #[test]
    fn no_picture_of_an_unrecognised_series_unless_the_site_asks_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = run(dir.path(), Some(dir.path().join("series")), None);
        crate::durable::create_dir_all(&job.tmp).expect("mkdir");
        let o = job.finish(
            Measured::Failed(Box::new(unrecognised())),
            BaselineContext::default(),
        );
        assert!(o.wrote_outputs);
        assert_eq!(o.phantom_recognised, Some(false), "retention: unrecognised");
        assert!(
            !o.attachments.iter().any(|a| a.ends_with(".png")),
            "{:?}",
            o.attachments
        );
        let pngs = std::fs::read_dir(dir.path().join("results").join("tmp-test"))
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".png"))
            })
            .count();
        assert_eq!(pngs, 0, "no picture kept either");

        let dir = tempfile::tempdir().expect("tempdir");
        let mut job = run(dir.path(), Some(dir.path().join("series")), None);
        job.error_preview = true;
        crate::durable::create_dir_all(&job.tmp).expect("mkdir");
        let o = job.finish(
            Measured::Failed(Box::new(unrecognised())),
            BaselineContext::default(),
        );
        let name = report::preview_png_name(UNKNOWN_PHANTOM);
        assert!(o.attachments.contains(&name), "{:?}", o.attachments);
        assert!(job_dir(dir.path()).join(&name).is_file());
    }

    fn job_dir(root: &std::path::Path) -> PathBuf {
        root.join("results").join("tmp-test")
    }

    #[test]
    fn a_series_without_a_ct_image_ends_as_an_error_summary_with_hints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = run(dir.path(), None, None);
        let measured = job.measure();
        assert!(matches!(measured, Measured::Failed(_)));
        assert!(job.tmp.is_dir(), "the result folder is created first");
        let o = job.finish(measured, BaselineContext::default());
        assert!(!o.internal && o.result.is_none());
        assert_eq!(o.phantom_recognised, Some(false));
        assert_eq!(
            o.error.as_deref(),
            Some("the series has no CT image to analyse")
        );
        let s = o.summary.expect("an error summary");
        assert_eq!(s.warnings.first().map(String::as_str), Some(AMENDED_NOTE));
        assert!(o.wrote_outputs);
        let json = report::summary_file_name(UNKNOWN_PHANTOM);
        assert_eq!(o.attachments, vec![json.clone()]);
        let dir = dir.path().join("results").join("tmp-test");
        assert!(dir.join(&json).is_file(), "the JSON is written");
        assert!(o.hints.iter().any(|h| h.contains("no CT image")));
    }

    #[test]
    fn an_unreadable_folder_is_the_datas_fault_and_a_forced_phantom_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("series");
        std::fs::create_dir(&empty).expect("mkdir");
        let job = run(dir.path(), Some(empty), Some("cirs062"));
        let measured = job.measure();
        let o = job.finish(measured, BaselineContext::default());
        assert!(!o.internal);
        let s = o.summary.expect("summary");
        assert_eq!(s.phantom.id, "cirs062");
        assert!(o.error.is_some());
    }

    #[test]
    fn a_result_folder_that_cannot_be_made_is_hu_reds_fault() {
        let dir = tempfile::tempdir().expect("tempdir");
        // a file where the results folder should be
        std::fs::write(dir.path().join("results"), b"x").expect("write");
        let job = run(dir.path(), None, None);
        let measured = job.measure();
        let o = job.finish(measured, BaselineContext::default());
        assert!(o.internal && !o.wrote_outputs);
        assert_eq!(o.phantom_recognised, None, "unknown: hu-red's own failure");
        assert!(o
            .error
            .unwrap_or_default()
            .contains("cannot create the result folder"));
    }
}
