//! One series from claim to stored run: its scanner entry and phantom, the result folder, the
//! measurement off the reactor, who scanned it and how (identity, protocol), the baseline
//! context, constancy and files off the reactor, then the record.

use super::analyse::{BlockingRun, Measured};
use super::baseline::{baseline_context, identity_of};
use super::outcome::RunOutcome;
use super::record::{store_run, RunStart};
use super::results::temp_folder;
use super::Context;
use crate::report::Metadata;
use crate::store::{now_ms, Fingerprint, StoreError};
use std::path::Path;
use std::time::SystemTime;
use tracing::warn;

/// Analyse the claimed series `uid` and store its run.
pub(super) async fn run_series(ctx: &Context, uid: &str) -> Result<(), StoreError> {
    let store = &ctx.store;
    let settings = &ctx.settings;
    let series = store.get_series(uid).await?;
    let instances = store.series_instances(uid).await?;
    let fingerprint = Fingerprint::of(&instances);
    let started_ms = now_ms();
    let started = SystemTime::now();
    let Some(series) = series else {
        warn!("series vanished from the database");
        return Ok(());
    };
    let scanner =
        settings.scanner_for(series.calling_ae.as_deref(), series.station_name.as_deref());
    let phantom = scanner
        .and_then(|s| s.phantom.clone())
        .unwrap_or_else(|| settings.phantom.clone());
    let folder = instances
        .iter()
        .find(|i| i.analysable)
        .and_then(|i| Path::new(&i.rel_path).parent().map(Path::to_path_buf))
        .map(|rel| settings.data_dir.join(rel));
    let tmp = temp_folder(&settings.data_dir, started_ms);
    let start = RunStart {
        series: &series,
        scanner,
        fingerprint,
        started_ms,
        tmp: &tmp,
    };

    // 1. decode and measure, off the reactor
    let job = BlockingRun {
        folder,
        uid: uid.to_string(),
        forced: (phantom != "auto").then_some(phantom),
        slab_mm: settings.slab_mm,
        phantoms: ctx.phantoms.clone(),
        tmp: tmp.clone(),
        started,
        amended: series.amended,
        error_preview: settings.mail.error_preview,
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
            return store_run(ctx, start, outcome).await;
        }
    };

    // 2. who scanned and how; the baseline and the trend of that scanner and phantom
    let meta = match &measured {
        Measured::Ok(o) => Some(Metadata::from_series(&o.meta)),
        Measured::Failed(f) => f.metadata.clone(),
        Measured::Internal(_) => None,
    };
    let (identity, protocol) = identity_of(meta.as_ref(), &series, scanner);
    let phantom = match &measured {
        Measured::Ok(o) => Some((
            o.measurement.phantom_id.as_str(),
            o.measurement.family.as_deref(),
        )),
        _ => None,
    };
    let context = baseline_context(ctx, &identity, &protocol, phantom).await?;

    // 3. constancy, files, plots, off the reactor
    let mut outcome = tokio::task::spawn_blocking(move || job.finish(measured, context))
        .await
        .unwrap_or_else(|e| RunOutcome::error(format!("the analysis task failed: {e}")));
    outcome.identity = Some((identity, protocol));
    store_run(ctx, start, outcome).await
}

/// Store an ERROR run of the claimed series `uid` for a failure outside the analysis (a panic
/// of hu-red's own code): the physicist gets its report; the series is analysed again when
/// it is sent again.
pub(super) async fn record_failure(
    ctx: &Context,
    uid: &str,
    reason: String,
) -> Result<(), StoreError> {
    let store = &ctx.store;
    let Some(series) = store.get_series(uid).await? else {
        return Ok(());
    };
    let instances = store.series_instances(uid).await?;
    let started_ms = now_ms();
    let scanner = ctx
        .settings
        .scanner_for(series.calling_ae.as_deref(), series.station_name.as_deref());
    let tmp = temp_folder(&ctx.settings.data_dir, started_ms);
    let start = RunStart {
        series: &series,
        scanner,
        fingerprint: Fingerprint::of(&instances),
        started_ms,
        tmp: &tmp,
    };
    store_run(ctx, start, RunOutcome::error(reason)).await
}
