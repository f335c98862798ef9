//! The QA worker: takes complete series from the assembler's bounded queue and, per series:
//! 1. decodes and measures it off the async reactor (spawn_blocking, at most `workers` at a
//!    time);
//! 2. files it under its scanner (DeviceSerialNumber / StationName, Manufacturer, model) and
//!    protocol, and looks up the baseline (same protocol, else the closest, saying so) and the
//!    trend of that scanner and phantom;
//! 3. evaluates constancy and writes the outputs (CSV, JSON, curve with the baseline, overlay,
//!    trend; for a failure the JSON and a preview) off the reactor;
//! 4. stores the run — result or failure — in one transaction with its rendered report in the
//!    outbox (and, with `qa.auto_baseline`, a provisional baseline), then moves the outputs to
//!    `data_dir/results/<run id>/` and wakes the report sender.

use crate::analysis::{AnalysisOptions, Detection};
use crate::config::{Config, ScannerConfig};
use crate::identity::{self, Protocol, ProtocolField, ScannerIdentity};
use crate::notify;
use crate::phantom::PhantomSet;
use crate::pipeline::{self, AnalyzeRequest, SeriesSource};
use crate::report::email::{
    self, BaselineInfo, ReportData, ReportKind, ScannerInfo, Trend, TrendRun,
};
use crate::report::{self, Metadata, OkParts, OutputOptions, RunVerdict, Summary, UNKNOWN_PHANTOM};
use crate::series::SeriesJob;
use crate::store::{
    now_ms, BaselineRow, Fingerprint, NewBaseline, NewBaselineEntry, NewOutboxMessage, NewRun,
    OutboxKind, RunIdentity, RunStatus, SeriesRow, SeriesState, Store, TrendRow, Verdict,
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
    /// This database's installation id and the sender's domain (the reports' Message-IDs).
    pub installation: String,
    pub mail_domain: String,
    /// Notified after each stored run (its report is queued).
    pub wake_sender: Arc<tokio::sync::Notify>,
    /// `qa.protocol_fields`, parsed.
    pub protocol_fields: Vec<ProtocolField>,
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
    let tmp_name = format!(
        "tmp-{}-{}-{}",
        started_ms,
        std::process::id(),
        TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let tmp = ctx.data_dir().join(RESULTS_DIR).join(&tmp_name);
    let fields = &ctx.protocol_fields;

    // 1. decode and measure, off the reactor
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
    let measured = tokio::task::spawn_blocking(move || {
        let m = job.measure();
        (job, m)
    })
    .await;
    let (job, measured) = match measured {
        Ok(x) => x,
        Err(e) => {
            let outcome = RunOutcome::error(format!("the analysis task failed: {e}"));
            return store_run(
                ctx,
                &series,
                scanner,
                fingerprint,
                started_ms,
                outcome,
                &tmp,
            )
            .await;
        }
    };

    // 2. who scanned and how; the baseline and the trend of that scanner and phantom
    let meta = match &measured {
        Measured::Ok(o) => Some(Metadata::from_series(&o.meta)),
        Measured::Failed(f) => f.metadata.clone(),
        _ => None,
    };
    let identity = ScannerIdentity::new(
        meta.as_ref()
            .and_then(|m| m.device_serial_number.as_deref()),
        meta.as_ref()
            .and_then(|m| m.station_name.as_deref())
            .or(series.station_name.as_deref()),
        meta.as_ref().and_then(|m| m.manufacturer.as_deref()),
        meta.as_ref()
            .and_then(|m| m.manufacturer_model_name.as_deref()),
        series.calling_ae.as_deref(),
        scanner.map(|s| s.name.as_str()),
    );
    let protocol = Protocol {
        kvp: meta.as_ref().and_then(|m| m.kvp),
        kernel: meta.as_ref().and_then(|m| m.reconstruction_kernel.clone()),
        slice_thickness_mm: meta.as_ref().and_then(|m| m.slice_thickness),
    };
    let mut context = BaselineContext::default();
    if let Measured::Ok(o) = &measured {
        let phantom_id = o.measurement.phantom_id.clone();
        // The run's own baselines, and those stored under its family id before hu-red told
        // the variants apart (`catphan_ctp404` for a `catphan_604` run): at an equal protocol
        // match the run's own id wins.
        let mut ids = vec![phantom_id.as_str()];
        ids.extend(o.measurement.family.as_deref().filter(|f| *f != phantom_id));
        let candidates: Vec<BaselineRow> = store
            .active_baselines_any(&identity.id, &ids)
            .await?
            .into_iter()
            .filter(|b| identity.same_make(b.manufacturer.as_deref(), b.model.as_deref()))
            .collect();
        if let Some((b, diffs)) = identity::choose_preferring(&candidates, &protocol, fields, |b| {
            b.phantom_id == phantom_id
        }) {
            context.baseline = Some((b.clone(), diffs));
        }
        context.exact = context.baseline.as_ref().is_some_and(|(_, d)| d.is_none());
        context.trend = store
            .trend(
                &identity.id,
                &ids,
                i64::MAX,
                ctx.config.qa.trend_runs.saturating_sub(1),
            )
            .await?;
    }
    context.auto_baseline = ctx.config.qa.auto_baseline && !context.exact;
    context.scanner_label = identity.label.clone();

    // 3. constancy, files, plots, off the reactor
    let outcome = tokio::task::spawn_blocking(move || job.finish(measured, context))
        .await
        .unwrap_or_else(|e| RunOutcome::error(format!("the analysis task failed: {e}")));

    let mut outcome = outcome;
    outcome.identity = Some((identity, protocol));
    store_run(
        ctx,
        &series,
        scanner,
        fingerprint,
        started_ms,
        outcome,
        &tmp,
    )
    .await
}

async fn store_run(
    ctx: &WorkerContext,
    series: &SeriesRow,
    scanner: Option<&ScannerConfig>,
    fingerprint: Fingerprint,
    started_ms: i64,
    outcome: RunOutcome,
    tmp: &Path,
) -> Result<(), crate::store::StoreError> {
    let store = &ctx.store;
    let tmp_name = tmp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let uid = series.series_instance_uid.as_str();
    let finished_ms = now_ms();
    let (status, verdict) = match &outcome.result {
        Some(r) => (RunStatus::Ok, verdict_of(r)),
        None if outcome.internal => (RunStatus::Error, Verdict::Error),
        None => (RunStatus::Failed, Verdict::Error),
    };
    let mut run = NewRun::new(uid, status, verdict, fingerprint, started_ms, finished_ms);
    if let Some(r) = &outcome.result {
        run.fill_from_measurement(&r.outcome.measurement, Some(&r.outcome.evaluation));
        // the summary's (the engine's checks and what the values show, see report::verdict)
        run.absolute_pass = r.summary.absolute_pass;
        run.warnings = r.summary.warnings.clone();
    } else if let Some(s) = &outcome.summary {
        run.warnings = s.warnings.clone();
    }
    run.error = outcome.error.clone();
    run.summary_json = outcome.summary.as_ref().map(Summary::to_json_string);
    // Until the folder is moved to results/<run id> (after the commit), the run points at its
    // temp folder: start-up recovery finishes the move if the service stops in between.
    run.outputs_dir = outcome
        .wrote_outputs
        .then(|| format!("{RESULTS_DIR}/{tmp_name}"));
    run.amended = series.amended;
    let (identity, protocol) = outcome.identity.clone().unwrap_or_else(|| {
        (
            ScannerIdentity::new(
                None,
                series.station_name.as_deref(),
                None,
                None,
                series.calling_ae.as_deref(),
                scanner.map(|s| s.name.as_str()),
            ),
            Protocol::default(),
        )
    });
    run.scanner = Some(identity.label.clone());
    let fields = &ctx.protocol_fields;
    let study_date = outcome
        .summary
        .as_ref()
        .and_then(|s| s.metadata.study_date.as_deref())
        .and_then(iso_date);
    run.identity = RunIdentity {
        scanner_id: Some(identity.id.clone()),
        manufacturer: identity.manufacturer.clone(),
        model: identity.model.clone(),
        station_name: identity.station_name.clone(),
        device_serial: identity.device_serial.clone(),
        calling_ae: identity.calling_ae.clone(),
        protocol_key: Some(protocol.key(fields)),
        kvp: protocol.kvp,
        kernel: protocol.kernel.clone(),
        slice_thickness_mm: protocol.slice_thickness_mm,
        study_date: study_date.clone(),
    };
    if let Some((b, diffs)) = &outcome.baseline {
        run.baseline_id = Some(b.id);
        run.baseline_provisional = Some(b.provisional);
        run.baseline_note = diffs.as_ref().map(|d| protocol_note(b, d));
    }
    if let (Some(r), true) = (&outcome.result, outcome.auto_baseline) {
        run.provisional_baseline = Some(NewBaseline {
            scanner_id: identity.id.clone(),
            scanner_label: Some(identity.label.clone()),
            manufacturer: identity.manufacturer.clone(),
            model: identity.model.clone(),
            phantom_id: r.outcome.measurement.phantom_id.clone(),
            protocol_key: protocol.key(fields),
            kvp: protocol.kvp,
            kernel: protocol.kernel.clone(),
            slice_thickness_mm: protocol.slice_thickness_mm,
            source: String::new(), // "run <id>", set with the id
            run_id: None,
            provisional: true,
            note: Some("set automatically (qa.auto_baseline)".into()),
            entries: baseline_entries_of(&r.outcome.measurement),
        });
    }

    // The report: rendered with the run id, queued in the run's transaction.
    let recipients = notify::recipients(&ctx.config, scanner);
    if recipients.is_empty() {
        warn!(
            scanner = %identity.label,
            "no recipients for this run's report (mail.to is empty and the scanner entry has \
             none): no email is sent"
        );
    }
    let kind = match verdict {
        Verdict::Pass => ReportKind::Pass,
        Verdict::None => ReportKind::NoBaseline,
        Verdict::Fail => ReportKind::Fail,
        Verdict::Error => ReportKind::Error,
    };
    let provisional_from_this_run = outcome.result.is_some() && outcome.auto_baseline;
    let date = study_date.unwrap_or_else(|| iso_date_of_ms(finished_ms));
    let run_phantom = outcome
        .result
        .as_ref()
        .map(|r| r.outcome.measurement.phantom_id.as_str());
    let baseline_info = outcome.baseline.as_ref().map(|(b, diffs)| BaselineInfo {
        id: b.id,
        // a legacy baseline of the family (see `family_baseline_note`) says so where the
        // report names the baseline
        source: match run_phantom {
            Some(p) if p != b.phantom_id => {
                format!("{} (stored under the family id {})", b.source, b.phantom_id)
            }
            _ => b.source.clone(),
        },
        created: iso_date_of_ms(b.created_at),
        provisional: b.provisional,
        protocol: baseline_protocol(b).describe(),
        protocol_differs: diffs.as_ref().map(|d| d.join(", ")),
    });
    let scanner_info = ScannerInfo {
        label: identity.label.clone(),
        id: identity.id.clone(),
        manufacturer: identity.manufacturer.clone(),
        model: identity.model.clone(),
        station_name: identity.station_name.clone(),
        device_serial: identity.device_serial.clone(),
        calling_ae: identity.calling_ae.clone(),
    };
    let protocol_text = if outcome.identity.is_some() {
        protocol.describe()
    } else {
        String::new()
    };
    let summary_for_mail = outcome.summary.clone();
    let attachments = outcome.attachments.clone();
    let hints = outcome.hints.clone();
    let (installation, domain) = (ctx.installation.clone(), ctx.mail_domain.clone());
    let amended = series.amended;
    let render = move |id: i64| -> Option<NewOutboxMessage> {
        if recipients.is_empty() {
            return None;
        }
        let summary = summary_for_mail.as_ref()?;
        let data = ReportData {
            run_id: id,
            kind,
            scanner: scanner_info,
            protocol: protocol_text,
            date,
            summary,
            baseline: baseline_info,
            provisional_from_this_run,
            amended,
            attachments,
            hints,
        };
        let r = email::render(&data);
        Some(NewOutboxMessage {
            kind: OutboxKind::Report,
            recipients,
            subject: r.subject,
            text_body: r.text,
            html_body: r.html,
            message_id: notify::message_id(id, None, &installation, &domain),
        })
    };
    let id = match store.insert_run_with(&run, render).await {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_dir_all(tmp);
            return Err(e);
        }
    };
    if !outcome.wrote_outputs {
        let _ = std::fs::remove_dir_all(tmp);
    } else {
        place_outputs(store, ctx.data_dir(), id, tmp).await;
    }
    ctx.wake_sender.notify_one();
    log_run(id, series, &run, &outcome, finished_ms - started_ms);
    Ok(())
}

/// Move a stored run's outputs from their temp folder to `results/<id>/` and record it; a
/// folder of the same name (a run of an earlier database with the same id) is moved aside.
async fn place_outputs(store: &Store, data_dir: &Path, id: i64, tmp: &Path) {
    let results = data_dir.join(RESULTS_DIR);
    let dest = results.join(id.to_string());
    if dest.exists() {
        let aside = results.join(format!("{id}-superseded-{}", now_ms()));
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
    if let Err(e) = std::fs::rename(tmp, &dest) {
        error!(
            run = id,
            "cannot move the run's outputs to {}: {e}",
            dest.display()
        );
        return;
    }
    if let Err(e) = sync_dir(&results) {
        warn!(run = id, "cannot fsync the results folder: {e}");
    }
    if let Err(e) = store
        .set_outputs_dir(id, Some(&format!("{RESULTS_DIR}/{id}")))
        .await
    {
        error!(
            run = id,
            "cannot record the run's results folder: {e}; it is recorded at the next start"
        );
    }
}

/// At start: runs stored while their outputs were still in a temp folder get them moved to
/// `results/<id>/` (the folder lost: the run keeps its database record and summary), then the
/// temp folders no run refers to (half-written by a stopped run) are removed.
pub async fn recover_results(
    store: &Store,
    data_dir: &Path,
) -> Result<(), crate::store::StoreError> {
    for (id, dir) in store.runs_with_temp_outputs().await? {
        let tmp = data_dir.join(&dir);
        if tmp.is_dir() {
            info!(
                run = id,
                "moving the results of a run stored before a stop into place"
            );
            place_outputs(store, data_dir, id, &tmp).await;
        } else {
            warn!(run = id, folder = %dir, "the results folder of this run was lost; its record and summary remain in the database");
            store.set_outputs_dir(id, None).await?;
        }
    }
    clean_partial_results(data_dir);
    Ok(())
}

/// "the protocol differs from the baseline's" note of a run.
fn protocol_note(b: &BaselineRow, diffs: &[String]) -> String {
    format!(
        "no baseline for this protocol: evaluated against the closest baseline #{} ({}); \
         differs: {}",
        b.id,
        baseline_protocol(b).describe(),
        diffs.join(", ")
    )
}

/// A run's materials as baseline entries.
pub fn baseline_entries_of(m: &crate::analysis::Measurement) -> Vec<NewBaselineEntry> {
    m.inserts
        .iter()
        .map(|i| NewBaselineEntry {
            insert: i.insert.clone(),
            hu_mean: Some(i.hu_mean).filter(|v| v.is_finite()),
            red: i.red,
        })
        .collect()
}

/// A stored baseline as the engine's [`crate::analysis::Baseline`].
pub fn engine_baseline(b: &BaselineRow) -> crate::analysis::Baseline {
    crate::analysis::Baseline {
        source: format!("baseline #{} ({})", b.id, b.source),
        entries: b
            .entries
            .iter()
            .map(|e| crate::analysis::BaselineEntry {
                insert: e.insert.clone(),
                hu_mean: e.hu_mean,
                red: e.red,
            })
            .collect(),
    }
}

/// The protocol a baseline was measured with.
pub fn baseline_protocol(b: &BaselineRow) -> Protocol {
    Protocol {
        kvp: b.kvp,
        kernel: b.kernel.clone(),
        slice_thickness_mm: b.slice_thickness_mm,
    }
}

impl identity::Candidate for BaselineRow {
    fn protocol(&self) -> Protocol {
        baseline_protocol(self)
    }
    fn protocol_key(&self) -> &str {
        &self.protocol_key
    }
    fn id(&self) -> i64 {
        self.id
    }
}

/// DICOM DA `YYYYMMDD` → `YYYY-MM-DD`.
fn iso_date(da: &str) -> Option<String> {
    let d = da.trim();
    (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

/// Unix ms → `YYYY-MM-DD` (UTC).
pub fn iso_date_of_ms(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    report::utc_timestamp(t).chars().take(10).collect()
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
            scanner = run.scanner.as_deref().unwrap_or(""),
            phantom = %r.outcome.measurement.phantom_id,
            verdict = run.verdict.as_str(),
            instances = series.n_instances,
            amended = series.amended,
            ms,
            "run finished"
        ),
        None => warn!(
            run = id,
            scanner = run.scanner.as_deref().unwrap_or(""),
            verdict = run.verdict.as_str(),
            instances = series.n_instances,
            ms,
            error = o.error.as_deref().unwrap_or(""),
            "run failed"
        ),
    }
}

/// The stored verdict of an analysed run: the summary's, decided by [`report::verdict`] (the
/// rule `hu-red analyze` uses too): FAIL when constancy or an absolute check fails, PASS
/// against a baseline, NONE (shown as NO BASELINE) without one.
fn verdict_of(r: &RunResult) -> Verdict {
    store_verdict(r.summary.verdict)
}

fn store_verdict(v: RunVerdict) -> Verdict {
    match v {
        RunVerdict::Pass => Verdict::Pass,
        RunVerdict::Fail => Verdict::Fail,
        RunVerdict::NoBaseline => Verdict::None,
        RunVerdict::Error => Verdict::Error,
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

/// What the first blocking step found.
enum Measured {
    Ok(Box<pipeline::AnalyzeOutcome>),
    /// The series could not be analysed (the data's fault).
    Failed(Box<Unanalysable>),
    /// hu-red's own fault (files).
    Internal(String),
}

/// Why and how far a series could not be analysed.
struct Unanalysable {
    error: String,
    stage: Option<pipeline::Stage>,
    metadata: Option<Metadata>,
    plan: Option<Box<crate::analysis::Plan>>,
    warnings: Vec<String>,
    preview: Option<Box<crate::analysis::HuStack>>,
}

/// What the second blocking step needs from the database.
#[derive(Default)]
struct BaselineContext {
    /// The chosen baseline and, when its protocol differs, what differs.
    baseline: Option<(BaselineRow, Option<Vec<String>>)>,
    /// The chosen baseline has the run's protocol.
    exact: bool,
    /// Earlier runs of the scanner and phantom, oldest first.
    trend: Vec<TrendRow>,
    /// This run becomes the provisional baseline of its scanner, phantom and protocol.
    auto_baseline: bool,
    scanner_label: String,
}

struct RunOutcome {
    result: Option<RunResult>,
    summary: Option<Summary>,
    error: Option<String>,
    /// hu-red itself failed (files), not the data.
    internal: bool,
    wrote_outputs: bool,
    identity: Option<(ScannerIdentity, Protocol)>,
    baseline: Option<(BaselineRow, Option<Vec<String>>)>,
    auto_baseline: bool,
    /// File names written (the report's attachments).
    attachments: Vec<String>,
    /// What to check, for an ERROR report.
    hints: Vec<String>,
}

impl RunOutcome {
    fn error(e: String) -> Self {
        RunOutcome {
            result: None,
            summary: None,
            error: Some(e),
            internal: true,
            wrote_outputs: false,
            identity: None,
            baseline: None,
            auto_baseline: false,
            attachments: Vec::new(),
            hints: Vec::new(),
        }
    }
}

const AMENDED_NOTE: &str =
    "amended: instances arrived after this series had been analysed; this run replaces the earlier one";

impl BlockingRun {
    /// Decode and measure (no baseline yet).
    fn measure(&self) -> Measured {
        if let Err(e) = std::fs::create_dir_all(&self.tmp) {
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
    fn finish(self, measured: Measured, ctx: BaselineContext) -> RunOutcome {
        let mut outcome = match measured {
            Measured::Internal(e) => return RunOutcome::error(e),
            Measured::Failed(f) => {
                let f = *f;
                return self.failed(
                    f.error,
                    f.stage,
                    f.metadata,
                    f.plan.as_deref(),
                    f.warnings,
                    f.preview,
                );
            }
            Measured::Ok(o) => *o,
        };
        let dicom_path = self.dicom_path();
        let baseline = ctx.baseline.as_ref().map(|(b, _)| engine_baseline(b));
        pipeline::apply_baseline(&mut outcome, baseline.as_ref(), None);
        let mut warnings = outcome.warnings.clone();
        if self.amended {
            warnings.insert(0, AMENDED_NOTE.into());
        }
        if let Some((b, diffs)) = &ctx.baseline {
            if b.phantom_id != outcome.measurement.phantom_id {
                warnings.push(crate::baseline::family_baseline_note(
                    &format!("the baseline #{}", b.id),
                    &b.phantom_id,
                    &outcome.measurement.phantom_id,
                    "make this variant's own with `hu-red baseline set --run` and this run's id \
                     (see `hu-red runs`)",
                ));
            }
            if let Some(d) = diffs {
                warnings.push(protocol_note(b, d));
            }
            if b.provisional {
                warnings.push(format!(
                    "the baseline #{} is PROVISIONAL (set automatically from {}): confirm it \
                     with `hu-red baseline set --run {}`",
                    b.id,
                    b.source,
                    b.run_id.map(|r| r.to_string()).unwrap_or("ID".into())
                ));
            }
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
        // A run that failed an absolute check (a material not measured, implausible HU, ...)
        // does not become the reference of the next runs by itself. (Constancy against the
        // closest baseline of another protocol may fail: that does not stop it.)
        let auto_baseline = ctx.auto_baseline && summary.absolute_pass == Some(true);
        if auto_baseline {
            summary.warnings.push(
                "this run is now the PROVISIONAL baseline of its scanner, phantom and protocol \
                 (qa.auto_baseline); confirm it with `hu-red baseline set` on this run"
                    .into(),
            );
        } else if ctx.auto_baseline {
            summary.warnings.push(
                "this run was not made the provisional baseline (qa.auto_baseline): an absolute \
                 check failed; set a baseline with `hu-red baseline set --run ID` once a run \
                 passes them, or on this run after review"
                    .into(),
            );
        }
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
            baseline.as_ref(),
            opts,
        ) {
            let mut o = RunOutcome::error(format!("the results could not be written: {e}"));
            o.summary = Some(summary);
            return o;
        }
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
        let trend = trend_of(&ctx, &outcome);
        let trend_name = report::trend_png_name(&outcome.measurement.phantom_id);
        let title = format!(
            "ΔHU trend — {} — {}",
            ctx.scanner_label, outcome.measurement.phantom_id
        );
        match report::write_trend_png(&trend, &title, &self.tmp.join(&trend_name)) {
            Ok(()) => attachments.push(trend_name),
            Err(e) => warn!("the trend plot was not written: {e}"),
        }
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
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn failed(
        &self,
        error: String,
        stage: Option<pipeline::Stage>,
        metadata: Option<Metadata>,
        plan: Option<&crate::analysis::Plan>,
        mut warnings: Vec<String>,
        preview: Option<Box<crate::analysis::HuStack>>,
    ) -> RunOutcome {
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
            plan,
            None,
            warnings,
            self.started,
        );
        let mut attachments = Vec::new();
        if let Some(p) = preview.as_deref() {
            let name = report::preview_png_name(id);
            let mut lines = vec![format!("Could not analyse: {error}")];
            if let Some(d) = &summary.metadata.series_description {
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
                Ok(()) => attachments.push(name),
                Err(e) => warn!("the preview was not written: {e}"),
            }
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
        }
    }
}

/// The trend of the report: the earlier runs (oldest first) and this one.
fn trend_of(ctx: &BaselineContext, o: &pipeline::AnalyzeOutcome) -> Trend {
    let tolerance = |name: &str| {
        o.evaluation
            .per_insert
            .iter()
            .find(|c| c.insert == name)
            .map(|c| c.tolerance_hu)
            .or_else(|| o.phantom.material(name).map(|m| m.tolerance_hu))
            .unwrap_or(f64::NAN)
    };
    let materials: Vec<(String, f64)> = o
        .measurement
        .inserts
        .iter()
        .map(|m| (m.insert.clone(), tolerance(&m.insert)))
        .collect();
    let mut runs: Vec<TrendRun> = ctx
        .trend
        .iter()
        .map(|t| TrendRun {
            run_id: t.run_id,
            date: t
                .study_date
                .clone()
                .unwrap_or_else(|| iso_date_of_ms(t.finished_at)),
            delta_hu: t
                .materials
                .iter()
                .map(|(n, d, _)| (n.clone(), *d))
                .collect(),
        })
        .collect();
    runs.push(TrendRun {
        run_id: 0,
        date: Metadata::from_series(&o.meta)
            .study_date
            .as_deref()
            .and_then(iso_date)
            .unwrap_or_else(|| iso_date_of_ms(now_ms())),
        delta_hu: o
            .measurement
            .inserts
            .iter()
            .map(|m| {
                let d = o
                    .evaluation
                    .per_insert
                    .iter()
                    .find(|c| c.insert == m.insert)
                    .and_then(|c| c.delta_hu);
                (m.insert.clone(), d)
            })
            .collect(),
    });
    Trend { materials, runs }
}

/// What to check when a series could not be analysed.
fn hints_for(stage: Option<pipeline::Stage>, error: &str, forced: Option<&str>) -> Vec<String> {
    use pipeline::Stage;
    let mut out = Vec::new();
    match stage {
        None => out.push(
            "The series holds no CT image: check that the phantom CT series itself was sent, \
             not only a dose report or screenshots."
                .to_string(),
        ),
        Some(Stage::Setup) => out.push(
            "The phantom named by qa.phantom or by the scanner's [[scanners]] entry is not \
             defined: fix the name (hu-red check-config lists the problems)."
                .to_string(),
        ),
        Some(Stage::Load) => out.push(
            "Check that the whole axial series was sent (all slices, one SeriesInstanceUID, \
             same image size and orientation) and that the files are readable CT images."
                .to_string(),
        ),
        Some(Stage::Overview | Stage::Plan) => {
            out.push(
                "Check that the phantom is in the field of view, roughly centred and level, \
                 and that the series covers its insert section."
                    .to_string(),
            );
            if forced.is_none() {
                out.push(
                    "If the phantom is not recognised automatically, set the phantom for this \
                     scanner (phantom = \"...\" in its [[scanners]] entry) or qa.phantom."
                        .to_string(),
                );
            } else {
                out.push(format!(
                    "The phantom was set to {:?} for this scanner: check that this is the \
                     phantom scanned.",
                    forced.unwrap_or_default()
                ));
            }
        }
        Some(Stage::Slab | Stage::Measure) => out.push(
            "The inserts could not be measured: check for artefacts, inserts missing or \
             swapped, air bubbles, and that the slices through the inserts were sent."
                .to_string(),
        ),
    }
    if error.contains("no phantom") || error.contains("not recognised") {
        out.push(
            "A series of a patient or of another phantom ends here too: it is not a QA scan."
                .into(),
        );
    }
    out.push(
        "After fixing, send the series again (hu-red send --to HOST:PORT --aet AE DIR, or from \
         the scanner): it is analysed as a new run."
            .to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_verdict_and_report_kind_follow_the_run_verdict() {
        for (v, stored, kind) in [
            (RunVerdict::Pass, Verdict::Pass, ReportKind::Pass),
            (RunVerdict::Fail, Verdict::Fail, ReportKind::Fail),
            (
                RunVerdict::NoBaseline,
                Verdict::None,
                ReportKind::NoBaseline,
            ),
            (RunVerdict::Error, Verdict::Error, ReportKind::Error),
        ] {
            assert_eq!(store_verdict(v), stored);
            assert_eq!(ReportKind::from(v), kind);
            assert_eq!(stored.label(), v.label());
        }
    }
}
