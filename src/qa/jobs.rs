//! The job loop: complete series from the assembler's queue, at most `workers` analyses at a
//! time, each in its own tracing span; a series is claimed (`stable` → `analysing`) before it
//! is analysed, so two workers never run the same series.

use super::Context;
use crate::series::SeriesJob;
use crate::store::SeriesState;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, Instrument};

/// Run jobs from `queue` with at most `workers` analyses at once, until the queue closes or
/// `shutdown` fires; then wait for the runs in progress (queued series stay `stable` in the
/// database and are queued again at the next start).
pub async fn run_workers(
    ctx: Context,
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
pub async fn process(ctx: &Context, uid: &str) {
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
            run_workers(ctx.clone(), rx, 2, stop_rx),
        )
        .await
        .expect("a closed queue ends the loop");

        let (_tx, rx) = mpsc::channel::<SeriesJob>(4);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(run_workers(ctx, rx, 2, stop_rx));
        stop_tx.send(true).expect("the loop listens");
        tokio::time::timeout(std::time::Duration::from_secs(10), running)
            .await
            .expect("shutdown ends the loop")
            .expect("the loop does not panic");
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
