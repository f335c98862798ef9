//! The QA worker: takes complete series from the assembler's bounded queue, runs the engine off
//! the async reactor (spawn_blocking, at most `workers` at a time), writes the outputs under
//! `data_dir/results/<run id>/` and stores the run — result or failure — in one transaction.

use crate::analysis::{AnalysisOptions, Detection};
use crate::config::Config;
use crate::phantom::PhantomSet;
use crate::pipeline::{self, AnalyzeRequest, SeriesSource};
use crate::report::{self, Metadata, OkParts, OutputOptions, Summary, UNKNOWN_PHANTOM};
use crate::series::SeriesJob;
use crate::store::{
    now_ms, Fingerprint, NewRun, RunStatus, SeriesRow, SeriesState, Store, Verdict,
    RUN_ID_PLACEHOLDER,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn, Instrument};

/// Everything a run needs; cheap to clone.
#[derive(Clone)]
pub struct WorkerContext {
    pub store: Store,
    pub config: Arc<Config>,
    pub phantoms: Arc<PhantomSet>,
}

impl WorkerContext {
    fn data_dir(&self) -> &Path {
        &self.config.storage.data_dir
    }
}

/// Folder of the finished runs, under data_dir.
pub const RESULTS_DIR: &str = "results";

/// Numbers the temp result folders of this process.
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Remove half-written result folders of runs that were never stored (a crash mid-run).
pub fn clean_partial_results(data_dir: &Path) {
    let dir = data_dir.join(RESULTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("tmp-") {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                warn!(path = %e.path().display(), "cannot remove a partial result folder: {err}");
            }
        }
    }
}

/// Run jobs from `queue` with at most `workers` analyses at once, until the queue closes or
/// `shutdown` fires; then wait for the runs in progress (queued series stay `stable` in the
/// database and are queued again at the next start).
pub async fn run_workers(
    ctx: WorkerContext,
    mut queue: mpsc::Receiver<SeriesJob>,
    workers: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(workers.max(1)));
    let mut running = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let job = tokio::select! {
            j = queue.recv() => match j { Some(j) => j, None => break },
            _ = shutdown.changed() => break,
        };
        let ctx = ctx.clone();
        let span = tracing::info_span!("series", uid = %job.series_instance_uid);
        running.spawn(
            async move {
                process(&ctx, &job.series_instance_uid).await;
                drop(permit);
            }
            .instrument(span),
        );
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// Analyse one series and store the run. Never panics on data; every failure ends as a run
/// with the reason, or (database trouble) puts the series back to be tried again.
pub async fn process(ctx: &WorkerContext, uid: &str) {
    let store = &ctx.store;
    match store
        .claim_series(uid, SeriesState::Stable, SeriesState::Analysing)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            error!("cannot claim the series for analysis: {e}");
            return;
        }
    }
    if let Err(e) = run_series(ctx, uid).await {
        error!("the run could not be stored: {e}; the series will be analysed again");
        if let Err(e2) = store
            .claim_series(uid, SeriesState::Analysing, SeriesState::Receiving)
            .await
        {
            error!("cannot put the series back: {e2}");
        }
    }
}

async fn run_series(ctx: &WorkerContext, uid: &str) -> Result<(), crate::store::StoreError> {
    let store = &ctx.store;
    let series = store.get_series(uid).await?;
    let instances = store.series_instances(uid).await?;
    let fingerprint = Fingerprint::of(&instances);
    let started_ms = now_ms();
    let started = SystemTime::now();
    let Some(series) = series else {
        warn!("series vanished from the database");
        return Ok(());
    };
    let scanner = ctx
        .config
        .scanner_for(series.calling_ae.as_deref(), series.station_name.as_deref());
    let phantom = scanner
        .and_then(|s| s.phantom.clone())
        .unwrap_or_else(|| ctx.config.qa.phantom.clone());
    let forced = (phantom != "auto").then_some(phantom);
    let folder = instances
        .iter()
        .find(|i| i.analysable)
        .and_then(|i| Path::new(&i.rel_path).parent().map(Path::to_path_buf))
        .map(|rel| ctx.data_dir().join(rel));
    // Unique per run: runs started in the same millisecond must not share a folder.
    let tmp = ctx.data_dir().join(RESULTS_DIR).join(format!(
        "tmp-{}-{}-{}",
        started_ms,
        std::process::id(),
        TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));

    let job = BlockingRun {
        folder,
        uid: uid.to_string(),
        forced: forced.clone(),
        slab_mm: ctx.config.qa.slab_mm,
        phantoms: ctx.phantoms.clone(),
        tmp: tmp.clone(),
        started,
        amended: series.amended,
    };
    let outcome = tokio::task::spawn_blocking(move || job.run())
        .await
        .unwrap_or_else(|e| RunOutcome::error(format!("the analysis task failed: {e}")));

    let finished_ms = now_ms();
    let (status, verdict) = match &outcome.result {
        Some(r) => (RunStatus::Ok, verdict_of(r)),
        None if outcome.internal => (RunStatus::Error, Verdict::Error),
        None => (RunStatus::Failed, Verdict::Error),
    };
    let mut run = NewRun::new(uid, status, verdict, fingerprint, started_ms, finished_ms);
    if let Some(r) = &outcome.result {
        run.fill_from_measurement(&r.outcome.measurement, Some(&r.outcome.evaluation));
        run.warnings = r.summary.warnings.clone();
    }
    run.error = outcome.error.clone();
    run.summary_json = outcome.summary.as_ref().map(Summary::to_json_string);
    run.outputs_dir = outcome
        .wrote_outputs
        .then(|| format!("{RESULTS_DIR}/{RUN_ID_PLACEHOLDER}"));
    run.amended = series.amended;
    run.scanner = scanner
        .map(|s| s.name.clone())
        .or_else(|| series.station_name.clone());
    let id = match store.insert_run(&run).await {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if !outcome.wrote_outputs {
        let _ = std::fs::remove_dir_all(&tmp);
    } else {
        let dest = ctx.data_dir().join(RESULTS_DIR).join(id.to_string());
        if dest.exists() {
            // A run of another database with the same id (the database was replaced and
            // data_dir kept): keep its files aside rather than let them pass for this run's.
            let aside = ctx
                .data_dir()
                .join(RESULTS_DIR)
                .join(format!("{id}-superseded-{finished_ms}"));
            warn!(
                run = id,
                "{} already exists (a run of an earlier database?): moved to {}",
                dest.display(),
                aside.display()
            );
            if let Err(e) = std::fs::rename(&dest, &aside) {
                error!(run = id, "cannot move {} aside: {e}", dest.display());
            }
        }
        if let Err(e) = std::fs::rename(&tmp, &dest) {
            error!(
                run = id,
                "cannot move the run's outputs to {}: {e}",
                dest.display()
            );
        } else if let Err(e) = sync_dir(&ctx.data_dir().join(RESULTS_DIR)) {
            warn!(run = id, "cannot fsync the results folder: {e}");
        }
    }
    log_run(id, &series, &run, &outcome, finished_ms - started_ms);
    Ok(())
}

/// Make a rename inside `dir` durable (the files themselves were written before the run was
/// committed).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn log_run(id: i64, series: &SeriesRow, run: &NewRun, o: &RunOutcome, ms: i64) {
    match &o.result {
        Some(r) => info!(
            run = id,
            phantom = %r.outcome.measurement.phantom_id,
            verdict = run.verdict.as_str(),
            instances = series.n_instances,
            amended = series.amended,
            ms,
            "run finished"
        ),
        None => warn!(
            run = id,
            verdict = run.verdict.as_str(),
            instances = series.n_instances,
            ms,
            error = o.error.as_deref().unwrap_or(""),
            "run failed"
        ),
    }
}

/// PASS/FAIL against the baseline; without one, FAIL only when an absolute window failed.
fn verdict_of(r: &RunResult) -> Verdict {
    let ev = &r.outcome.evaluation;
    if ev.has_baseline {
        match ev.pass {
            Some(true) => Verdict::Pass,
            _ => Verdict::Fail,
        }
    } else if !r.outcome.measurement.absolute_pass {
        Verdict::Fail
    } else {
        Verdict::None
    }
}

/// The part of a run that runs on the blocking pool: decode, analyse, write files.
struct BlockingRun {
    folder: Option<PathBuf>,
    uid: String,
    forced: Option<String>,
    slab_mm: f64,
    phantoms: Arc<PhantomSet>,
    tmp: PathBuf,
    started: SystemTime,
    amended: bool,
}

struct RunResult {
    outcome: pipeline::AnalyzeOutcome,
    summary: Summary,
}

struct RunOutcome {
    result: Option<RunResult>,
    summary: Option<Summary>,
    error: Option<String>,
    /// hu-red itself failed (files), not the data.
    internal: bool,
    wrote_outputs: bool,
}

impl RunOutcome {
    fn error(e: String) -> Self {
        RunOutcome {
            result: None,
            summary: None,
            error: Some(e),
            internal: true,
            wrote_outputs: false,
        }
    }
}

const AMENDED_NOTE: &str =
    "amended: instances arrived after this series had been analysed; this run replaces the earlier one";

impl BlockingRun {
    fn run(self) -> RunOutcome {
        if let Err(e) = std::fs::create_dir_all(&self.tmp) {
            return RunOutcome::error(format!(
                "cannot create the result folder {}: {e}",
                self.tmp.display()
            ));
        }
        let dicom_path = self
            .folder
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let Some(folder) = self.folder.clone() else {
            return self.failed(
                &dicom_path,
                "the series has no CT image to analyse".into(),
                None,
                None,
                vec![],
            );
        };
        let request = AnalyzeRequest {
            source: SeriesSource::Path(folder),
            series_uid: Some(self.uid.clone()),
            phantoms: (*self.phantoms).clone(),
            options: AnalysisOptions {
                phantom: self.forced.clone(),
                slab_mm: self.slab_mm,
            },
            baseline: None,
            baseline_protocol: None,
        };
        let outcome = match pipeline::analyze(request) {
            Ok(o) => o,
            Err(e) => {
                let metadata = e.meta.as_deref().map(Metadata::from_series);
                let plan = e.plan.clone();
                let warnings = e.warnings.clone();
                return self.failed(
                    &dicom_path,
                    e.to_string(),
                    metadata,
                    plan.as_deref(),
                    warnings,
                );
            }
        };
        let mut warnings = outcome.warnings.clone();
        if self.amended {
            warnings.insert(0, AMENDED_NOTE.into());
        }
        let mut summary = Summary::ok(OkParts {
            dicom_path: &dicom_path,
            metadata: Metadata::from_series(&outcome.meta),
            measurement: &outcome.measurement,
            evaluation: &outcome.evaluation,
            warnings,
            timings: Some(outcome.timings),
            started_at: self.started,
        });
        let opts = OutputOptions {
            curve: true,
            overlay: true,
            relative_paths: true,
        };
        if let Err(e) = report::write_outputs(
            &self.tmp,
            &mut summary,
            &outcome.slab,
            &outcome.phantom,
            None,
            opts,
        ) {
            return RunOutcome {
                result: None,
                summary: Some(summary),
                error: Some(format!("the results could not be written: {e}")),
                internal: true,
                wrote_outputs: false,
            };
        }
        RunOutcome {
            summary: Some(summary.clone()),
            result: Some(RunResult { outcome, summary }),
            error: None,
            internal: false,
            wrote_outputs: true,
        }
    }

    fn failed(
        &self,
        dicom_path: &str,
        error: String,
        metadata: Option<Metadata>,
        plan: Option<&crate::analysis::Plan>,
        mut warnings: Vec<String>,
    ) -> RunOutcome {
        if self.amended {
            warnings.insert(0, AMENDED_NOTE.into());
        }
        let (id, detection) = match &self.forced {
            Some(id) => (id.as_str(), Detection::Forced),
            None => (UNKNOWN_PHANTOM, Detection::Auto),
        };
        let mut summary = Summary::error(
            dicom_path,
            id,
            detection,
            error.clone(),
            metadata,
            plan,
            None,
            warnings,
            self.started,
        );
        let json = self.tmp.join(report::summary_file_name(id));
        summary.outputs.summary_json = Some(report::summary_file_name(id));
        let wrote = report::write_summary_json(&summary, &json).is_ok();
        RunOutcome {
            result: None,
            summary: Some(summary),
            error: Some(error),
            internal: false,
            wrote_outputs: wrote,
        }
    }
}
