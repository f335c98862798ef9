//! The job loop: complete series from the assembler's queue, at most `workers` analyses at a
//! time, each in its own tracing span; a series is claimed (`stable` → `analysing`) before it
//! is analysed, so two workers never run the same series.

use super::Context;
use crate::series::SeriesJob;
use crate::store::SeriesState;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, Instrument};

/// The assembler's queue, shared by the successive runs of the worker pool (a pool started
/// again by the supervisor takes over the same queue).
pub type Queue = Arc<Mutex<mpsc::Receiver<SeriesJob>>>;

/// Run jobs from `queue` with at most `workers` analyses at once, until the queue closes or
/// `shutdown` fires; then wait for the runs in progress (queued series stay `stable` in the
/// database and are queued again at the next start).
///
/// A run that panics (a bug of hu-red's) is logged with its cause and stored as an ERROR run
/// of its series, so the physicist hears of it; the loop goes on.
pub async fn run_workers(
    ctx: Context,
    queue: Queue,
    workers: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // fault injection in test builds (`FAILPOINTS=qa::workers=...`; no-op in release builds)
    fail::fail_point!("qa::workers");
    let slots = Arc::new(Semaphore::new(workers.max(1)));
    let mut running = JoinSet::new();
    let mut uids: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        // a free slot, then a job (both cancel-safe: dropped unfinished, they take nothing)
        let next = async {
            let permit = slots.clone().acquire_owned().await.ok()?;
            let job = queue.lock().await.recv().await?;
            Some((permit, job))
        };
        tokio::select! {
            // a run that ended (or panicked) is dealt with at once, not when the next job comes
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                finished(&ctx, &mut uids, done).await;
            }
            next = next => {
                let Some((permit, job)) = next else { break };
                let uid = job.series_instance_uid;
                let task_ctx = ctx.clone();
                let span = tracing::info_span!("series", uid = %uid);
                let task_uid = uid.clone();
                let handle = running.spawn(
                    async move {
                        process(&task_ctx, &task_uid).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
                uids.insert(handle.id(), uid);
            }
            _ = shutdown.changed() => break,
        }
    }
    while let Some(done) = running.join_next_with_id().await {
        finished(&ctx, &mut uids, done).await;
    }
}

/// Forget a finished run; one that panicked is logged and stored as an ERROR run.
async fn finished(
    ctx: &Context,
    uids: &mut HashMap<tokio::task::Id, String>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let e = match done {
        Ok((id, ())) => {
            uids.remove(&id);
            return;
        }
        Err(e) => e,
    };
    let Some(uid) = uids.remove(&e.id()) else {
        return;
    };
    let cause = if e.is_panic() {
        crate::supervisor::panic_message(e.into_panic())
    } else {
        e.to_string()
    };
    error!(uid = %uid, "the analysis of the series panicked: {cause}");
    let reason = format!("hu-red failed while analysing this series (an internal error: {cause})");
    if let Err(e) = super::series::record_failure(ctx, &uid, reason).await {
        error!(uid = %uid, "the failure could not be stored: {e}; the series is analysed again at the next start");
    }
}

/// Analyse one series and store the run. Never panics on data; every failure ends as a run
/// with the reason, or (database trouble) puts the series back to be tried again.
pub async fn process(ctx: &Context, uid: &str) {
    let store = &ctx.store;
    match store
        .claim_series(uid, SeriesState::Stable, SeriesState::Analysing)
        .await
    {
        Ok(true) => fail::fail_point!("qa::series"),
        Ok(false) => return,
        Err(e) => {
            error!("cannot claim the series for analysis: {e}");
            return;
        }
    }
    if let Err(e) = super::series::run_series(ctx, uid).await {
        error!("the run could not be stored: {e}; the series will be analysed again");
        if let Err(e2) = store
            .claim_series(uid, SeriesState::Analysing, SeriesState::Receiving)
            .await
        {
            error!("cannot put the series back: {e2}");
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::qa::Settings;
    use crate::store::Store;

    /// A context on a real SQLite file in `dir` (no scanners, file mail transport).
    pub(in crate::qa) async fn context(dir: &std::path::Path) -> Context {
        let url = format!("sqlite://{}", dir.join("hu-red.db").display());
        let store = Store::connect(&url).await.expect("sqlite store");
        let config = crate::config::Config::from_toml_str("").expect("defaults");
        Context {
            store,
            settings: Arc::new(Settings {
                data_dir: dir.to_path_buf(),
                phantom: "auto".into(),
                slab_mm: config.qa.slab_mm,
                trend_runs: config.qa.trend_runs,
                auto_baseline: false,
                protocol_fields: Vec::new(),
                scanners: Vec::new(),
                mail: config.mail,
            }),
            phantoms: Arc::new(crate::phantom::PhantomSet::builtin()),
            installation: "test".into(),
            mail_domain: "localhost".into(),
            wake_sender: Arc::new(tokio::sync::Notify::new()),
        }
    }

    #[tokio::test]
    async fn the_loop_ends_when_the_queue_closes_and_when_shutdown_fires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = context(dir.path()).await;
        let (tx, rx) = mpsc::channel::<SeriesJob>(4);
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        drop(tx);
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            run_workers(ctx.clone(), Arc::new(Mutex::new(rx)), 2, stop_rx),
        )
        .await
        .expect("a closed queue ends the loop");

        let (_tx, rx) = mpsc::channel::<SeriesJob>(4);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(run_workers(ctx, Arc::new(Mutex::new(rx)), 2, stop_rx));
        stop_tx.send(true).expect("the loop listens");
        tokio::time::timeout(std::time::Duration::from_secs(10), running)
            .await
            .expect("shutdown ends the loop")
            .expect("the loop does not panic");
    }

    #[tokio::test]
    async fn a_run_that_panics_is_stored_as_an_error_run_of_its_series() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = context(dir.path()).await;
        let mut instance = crate::qa::record::tests::instance("7.7.7", "7.7.7.1");
        instance.analysable = true;
        ctx.store
            .record_instance(&instance)
            .await
            .expect("instance");
        for (from, to) in [
            (SeriesState::Receiving, SeriesState::Stable),
            (SeriesState::Stable, SeriesState::Analysing),
        ] {
            assert!(ctx
                .store
                .claim_series("7.7.7", from, to)
                .await
                .expect("claim"));
        }
        let mut set = JoinSet::new();
        let handle = set.spawn(async { panic!("injected fault") });
        let mut uids = HashMap::from([(handle.id(), "7.7.7".to_string())]);
        let done = set.join_next_with_id().await.expect("a task");
        finished(&ctx, &mut uids, done).await;
        assert!(uids.is_empty());
        let runs = ctx.store.list_runs(5).await.expect("runs");
        assert_eq!(runs.len(), 1);
        let error = runs[0].error.clone().unwrap_or_default();
        assert!(error.contains("injected fault"), "{error}");
        assert_eq!(runs[0].verdict, crate::store::Verdict::Error);
        let series = ctx
            .store
            .get_series("7.7.7")
            .await
            .expect("read")
            .expect("series");
        assert_ne!(series.state, SeriesState::Analysing, "not left analysing");
    }

    #[tokio::test]
    async fn a_series_that_is_not_stable_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = context(dir.path()).await;
        // unknown to the database: nothing to claim, no run
        process(&ctx, "1.2.3.4").await;
        assert!(ctx.store.list_runs(10).await.expect("runs").is_empty());
    }
}
