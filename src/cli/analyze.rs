//! `hu-red analyze`: analyse one CT phantom series, write the reports, print a summary.
//!
//! Exit codes (a contract), from the run's verdict ([`report::verdict`], the rule the service
//! uses too): 0 analysed and nothing failed (PASS, or NO BASELINE: no baseline given and every
//! absolute check passed); 1 analysed and a check failed (constancy against the baseline, or an
//! absolute check: a material not measured, outside its plausibility band or its window at
//! this kVp, copies that disagree, a non-monotone curve); 2 could not analyse (one-line reason
//! on stderr; the summary JSON is still written, with status "error", when the output folder is
//! writable).

use crate::analysis::{AnalysisOptions, Detection};
use crate::baseline::{read_baseline, BaselineFile};
use crate::phantom::PhantomSet;
use crate::pipeline::{self, AnalyzeRequest, SeriesSource};
use crate::report::{self, Metadata, OkParts, OutputOptions, RunVerdict, Summary, UNKNOWN_PHANTOM};
use std::path::PathBuf;
use std::time::SystemTime;

/// Analysed, nothing failed (PASS or NO BASELINE).
pub const EXIT_OK: u8 = 0;
/// Analysed, a check failed (constancy or absolute).
pub const EXIT_CHECK_FAILED: u8 = 1;
pub const EXIT_NOT_ANALYSED: u8 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// The CT series: a folder (searched recursively) or a single DICOM file.
    #[arg(long, value_name = "PATH")]
    pub dicom: PathBuf,
    /// Folder for the CSV, JSON and PNG files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub outdir: PathBuf,
    /// Phantom: auto (identify), cirs062, cirs062_head, easycube, catphan_504, catphan_600,
    /// catphan_604, catphan_700, gammex_467, gammex_1467_body, gammex_1467_head, the family id
    /// catphan_ctp404 (a Catphan, variant identified from the images), or an id defined in the
    /// --config file.
    #[arg(long, value_name = "ID", default_value = "auto")]
    pub phantom: String,
    /// Site phantom file (the Python script's config JSON or hu-red's richer format).
    #[arg(long, value_name = "PHANTOMS.json")]
    pub config: Option<PathBuf>,
    /// Baseline CSV to compare with (any CSV with insert and hu_mean columns, e.g. an earlier
    /// hu_red_PHANTOM.csv or the Python script's CSV).
    #[arg(long, value_name = "BASELINE.csv")]
    pub baseline: Option<PathBuf>,
    /// Analyse this SeriesInstanceUID (default: the axial CT series with the most slices).
    #[arg(long, value_name = "UID")]
    pub series: Option<String>,
    /// Thickness of the slab of slices averaged per ROI, mm.
    #[arg(long, value_name = "MM", default_value_t = 5.0, value_parser = parse_slab_mm)]
    pub slab_mm: f64,
    /// Do not write the HU–RED curve PNG.
    #[arg(long)]
    pub no_plot: bool,
    /// Also write the ROI overlay PNG (the measured slice with every ROI drawn).
    #[arg(long)]
    pub debug_overlay: bool,
}

fn parse_slab_mm(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of millimetres"))?;
    if v.is_finite() && v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!("the slab must be > 0 and ≤ 100 mm, got {v}"))
    }
}

/// One line for stderr: the error chain joined, without line breaks.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .split('\n')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Context for writing an error summary.
struct Run<'a> {
    args: &'a AnalyzeArgs,
    started: SystemTime,
    forced: Option<String>,
}

impl Run<'_> {
    fn dicom_path(&self) -> String {
        self.args.dicom.display().to_string()
    }

    fn out(&self, name: String) -> PathBuf {
        self.args.outdir.join(name)
    }

    /// Report a run that could not analyse: error summary (best effort), one line on stderr.
    fn fail(
        &self,
        error: anyhow::Error,
        metadata: Option<Metadata>,
        plan: Option<&crate::analysis::Plan>,
        warnings: Vec<String>,
    ) -> u8 {
        let msg = one_line(&error);
        let id = self.forced.as_deref().unwrap_or(UNKNOWN_PHANTOM);
        let detection = if self.forced.is_some() {
            Detection::Forced
        } else {
            Detection::Auto
        };
        let mut summary = Summary::error(
            &self.dicom_path(),
            id,
            detection,
            msg.clone(),
            metadata,
            plan,
            self.args.baseline.as_ref().map(|p| p.display().to_string()),
            warnings,
            self.started,
        );
        let path = self.out(report::summary_file_name(id));
        summary.outputs.summary_json = Some(path.display().to_string());
        eprintln!("hu-red: error: {msg}");
        if self.args.outdir.is_dir() {
            // results of an earlier run under the same name must not sit next to this error
            remove_stale(&self.args.outdir, id, &summary.outputs);
            if let Err(e) = report::write_summary_json(&summary, &path) {
                eprintln!("hu-red: warning: the error summary was not written: {e}");
            }
        }
        EXIT_NOT_ANALYSED
    }
}

/// Remove hu-red's own files for phantom `id` in `dir` that this run did not write (a CSV or
/// PNG left by an earlier run would otherwise look like this run's result). Only the contract
/// file names are touched.
fn remove_stale(dir: &std::path::Path, id: &str, written: &report::Outputs) {
    let kept: Vec<&str> = [
        &written.csv,
        &written.summary_json,
        &written.curve_png,
        &written.overlay_png,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect();
    for name in [
        report::csv_file_name(id),
        report::summary_file_name(id),
        report::curve_png_name(id),
        report::overlay_png_name(id),
    ] {
        let path = dir.join(&name);
        let shown = path.display().to_string();
        if kept.contains(&shown.as_str()) || !path.is_file() {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed {shown} left by an earlier run"),
            Err(e) => tracing::warn!("cannot remove {shown} left by an earlier run: {e}"),
        }
    }
}

/// Run `hu-red analyze`; returns the process exit code.
pub fn run(args: &AnalyzeArgs) -> u8 {
    let forced = match args.phantom.trim() {
        id if id.is_empty() || id.eq_ignore_ascii_case("auto") => None,
        id => Some(id.to_string()),
    };
    let run = Run {
        args,
        started: SystemTime::now(),
        forced,
    };
    if let Err(e) = std::fs::create_dir_all(&args.outdir) {
        eprintln!(
            "hu-red: error: cannot create the output folder {}: {e}",
            args.outdir.display()
        );
        return EXIT_NOT_ANALYSED;
    }

    // Inputs that are checked before any DICOM is read: a typo there should not cost a load.
    let phantoms = match &args.config {
        Some(p) => match PhantomSet::with_site_file(p) {
            Ok(set) => set,
            Err(e) => {
                return run.fail(
                    anyhow::Error::new(e).context("the --config phantom file cannot be used"),
                    None,
                    None,
                    vec![],
                )
            }
        },
        None => PhantomSet::builtin(),
    };
    if let Some(id) = run.forced.as_deref() {
        if let Err(e) = phantoms.resolve(id) {
            return run.fail(anyhow::Error::new(e), None, None, vec![]);
        }
    }
    let baseline: Option<BaselineFile> = match &args.baseline {
        Some(p) => match read_baseline(p) {
            Ok(b) => Some(b),
            Err(e) => {
                return run.fail(
                    anyhow::Error::new(e).context("the --baseline file cannot be used"),
                    None,
                    None,
                    vec![],
                )
            }
        },
        None => None,
    };
    if !args.dicom.exists() {
        return run.fail(
            anyhow::anyhow!(
                "{}: no such file or folder; check the --dicom path",
                args.dicom.display()
            ),
            None,
            None,
            vec![],
        );
    }

    let request = AnalyzeRequest {
        source: SeriesSource::Path(args.dicom.clone()),
        series_uid: args.series.clone(),
        phantoms,
        options: AnalysisOptions {
            phantom: run.forced.clone(),
            slab_mm: args.slab_mm,
            kvp: None,
        },
        baseline: baseline.as_ref().map(|b| b.baseline.clone()),
        baseline_protocol: baseline.as_ref().map(|b| b.protocol.clone()),
    };
    let outcome = match pipeline::analyze(request) {
        Ok(o) => o,
        Err(e) => {
            let metadata = e.meta.as_deref().map(Metadata::from_series);
            let plan = e.plan.clone();
            let warnings = e.warnings.clone();
            return run.fail(anyhow::Error::new(e), metadata, plan.as_deref(), warnings);
        }
    };

    let mut summary = Summary::ok(OkParts {
        dicom_path: &run.dicom_path(),
        metadata: Metadata::from_series(&outcome.meta),
        measurement: &outcome.measurement,
        evaluation: &outcome.evaluation,
        warnings: outcome.warnings.clone(),
        timings: Some(outcome.timings),
        started_at: run.started,
    });
    let written = report::write_outputs(
        &args.outdir,
        &mut summary,
        &outcome.slab,
        &outcome.phantom,
        baseline.as_ref().map(|b| &b.baseline),
        OutputOptions {
            curve: !args.no_plot,
            overlay: args.debug_overlay,
            relative_paths: false,
        },
    );
    if let Err(e) = written {
        let metadata = Some(summary.metadata.clone());
        return run.fail(
            anyhow::Error::new(e).context("the results were not written"),
            metadata,
            Some(&outcome.plan),
            summary.warnings.clone(),
        );
    }
    remove_stale(&args.outdir, &summary.phantom.id, &summary.outputs);
    print!("{}", report::console_summary(&summary));
    exit_code(summary.verdict)
}

/// The exit code of an analysed run's verdict.
pub fn exit_code(v: RunVerdict) -> u8 {
    match v {
        RunVerdict::Pass | RunVerdict::NoBaseline => EXIT_OK,
        RunVerdict::Fail => EXIT_CHECK_FAILED,
        RunVerdict::Error => EXIT_NOT_ANALYSED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_verdict() {
        assert_eq!(exit_code(RunVerdict::Pass), 0);
        assert_eq!(exit_code(RunVerdict::NoBaseline), 0);
        assert_eq!(exit_code(RunVerdict::Fail), 1);
        assert_eq!(exit_code(RunVerdict::Error), 2);
        assert_eq!((EXIT_OK, EXIT_CHECK_FAILED, EXIT_NOT_ANALYSED), (0, 1, 2));
    }
}
