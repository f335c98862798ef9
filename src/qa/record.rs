//! Recording a run: its row (result or failure, identity, protocol, baseline used, and with
//! `qa.auto_baseline` a provisional baseline), stored in one transaction with its report in
//! the outbox; then its outputs moved into `results/<id>/`, the sender woken and the run
//! logged.

use super::baseline::protocol_note;
use super::outcome::{RunOutcome, RunResult};
use super::report::{Addressing, ReportDraft};
use super::results::{discard, place_outputs, temp_rel_path};
use super::Context;
use crate::config::ScannerConfig;
use crate::identity::{Protocol, ProtocolField, ScannerIdentity};
use crate::report::{format, RunVerdict, Summary};
use crate::store::{
    now_ms, Fingerprint, NewBaseline, NewBaselineEntry, NewRun, RunIdentity, RunStatus, SeriesRow,
    StoreError, Verdict,
};
use std::path::Path;
use tracing::{info, warn};

/// How a run started: its series, scanner entry, instance set and start time.
pub(super) struct RunStart<'a> {
    pub(super) series: &'a SeriesRow,
    pub(super) scanner: Option<&'a ScannerConfig>,
    pub(super) fingerprint: Fingerprint,
    pub(super) started_ms: i64,
    /// The run's temporary result folder.
    pub(super) tmp: &'a Path,
}

/// Store the run of `outcome` with its report, then move its outputs into place.
pub(super) async fn store_run(
    ctx: &Context,
    start: RunStart<'_>,
    outcome: RunOutcome,
) -> Result<(), StoreError> {
    let RunStart {
        series, scanner, ..
    } = start;
    let finished_ms = now_ms();
    let (identity, protocol) = outcome
        .identity
        .clone()
        .unwrap_or_else(|| super::baseline::identity_of(None, series, scanner));
    let acquisition = outcome.summary.as_ref().map(|s| &s.metadata.acquisition);
    let study_date = acquisition
        .and_then(|a| a.study_date.as_deref())
        .and_then(format::iso_date);
    let acquired_at = acquisition.and_then(|a| a.acquired_at_ms());
    let fields = &ctx.settings.protocol_fields;
    let mut run = run_row(&start, &outcome, finished_ms);
    run.scanner = Some(identity.label.clone());
    run.identity = RunIdentity::of(
        &identity,
        &protocol,
        fields,
        study_date.clone(),
        acquired_at,
    );
    if let (Some(r), true) = (&outcome.result, outcome.auto_baseline) {
        run.provisional_baseline = Some(provisional_baseline(&identity, &protocol, fields, r));
    }
    let draft = ReportDraft::new(
        Addressing {
            mail: &ctx.settings.mail,
            scanner,
            installation: &ctx.installation,
            domain: &ctx.mail_domain,
        },
        &outcome,
        run.verdict,
        &identity,
        &protocol,
        study_date,
        finished_ms,
        series.amended,
    );
    let id = match ctx.store.insert_run_with(&run, |id| draft.render(id)).await {
        Ok(id) => id,
        Err(e) => {
            discard(start.tmp);
            return Err(e);
        }
    };
    if outcome.wrote_outputs {
        place_outputs(&ctx.store, &ctx.settings.data_dir, id, start.tmp).await;
    } else {
        discard(start.tmp);
    }
    ctx.wake_sender.notify_one();
    log_run(id, series, &run, &outcome, finished_ms - start.started_ms);
    Ok(())
}

/// The run's row from its outcome (identity and the provisional baseline apart).
fn run_row(start: &RunStart<'_>, outcome: &RunOutcome, finished_ms: i64) -> NewRun {
    let (status, verdict) = match &outcome.result {
        Some(r) => (RunStatus::Ok, verdict_of(r)),
        None if outcome.internal => (RunStatus::Error, Verdict::Error),
        None => (RunStatus::Failed, Verdict::Error),
    };
    let uid = start.series.series_instance_uid.as_str();
    let mut run = NewRun::new(
        uid,
        status,
        verdict,
        start.fingerprint.clone(),
        start.started_ms,
        finished_ms,
    );
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
    run.outputs_dir = outcome.wrote_outputs.then(|| temp_rel_path(start.tmp));
    run.amended = start.series.amended;
    run.phantom_recognised = outcome.phantom_recognised;
    if let Some((b, diffs)) = &outcome.baseline {
        run.baseline_id = Some(b.id);
        run.baseline_provisional = Some(b.provisional);
        run.baseline_note = diffs.as_ref().map(|d| protocol_note(b, d));
    }
    run
}

/// The provisional baseline an analysed run becomes (`qa.auto_baseline`).
fn provisional_baseline(
    identity: &ScannerIdentity,
    protocol: &Protocol,
    fields: &[ProtocolField],
    r: &RunResult,
) -> NewBaseline {
    NewBaseline {
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
        set_by: Some("auto".into()),
        entries: r
            .outcome
            .measurement
            .inserts
            .iter()
            .map(NewBaselineEntry::from_material)
            .collect(),
    }
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

/// The stored verdict of an analysed run: the summary's, decided by
/// [`crate::report::verdict`] (the rule `hu-red analyze` uses too): FAIL when constancy or an
/// absolute check fails, PASS against a baseline, NONE (shown as NO BASELINE) without one.
fn verdict_of(r: &RunResult) -> Verdict {
    store_verdict(r.summary.verdict)
}

/// A run verdict as stored.
fn store_verdict(v: RunVerdict) -> Verdict {
    match v {
        RunVerdict::Pass => Verdict::Pass,
        RunVerdict::Fail => Verdict::Fail,
        RunVerdict::NoBaseline => Verdict::None,
        RunVerdict::Error => Verdict::Error,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::report::email::ReportKind;

    /// A secondary-capture instance of series `series` sent by `CT1`.
    pub(in crate::qa) fn instance(series: &str, sop: &str) -> crate::store::NewInstance {
        crate::store::NewInstance {
            sop_instance_uid: sop.into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
            series_instance_uid: series.into(),
            study_instance_uid: "1.2".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            rel_path: format!("1.2/{series}/{sop}.dcm"),
            size_bytes: 1,
            calling_ae: "CT1".into(),
            called_ae: "HURED".into(),
            peer: "127.0.0.1".into(),
            modality: Some("OT".into()),
            station_name: None,
            series_description: None,
            analysable: false,
        }
    }

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
            assert_eq!(super::super::report::report_kind(stored), kind);
            assert_eq!(stored.label(), v.label());
        }
    }

    #[tokio::test]
    async fn a_failure_is_stored_with_its_reason_and_its_temp_folder_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = super::super::jobs::tests::context(dir.path()).await;
        ctx.store
            .record_instance(&instance("1.2.3", "1.2.3.1"))
            .await
            .expect("instance");
        let series = ctx
            .store
            .get_series("1.2.3")
            .await
            .expect("read")
            .expect("the series");
        let tmp = super::super::results::temp_folder(dir.path(), 1);
        crate::durable::create_dir_all(&tmp).expect("mkdir");
        let start = RunStart {
            series: &series,
            scanner: None,
            fingerprint: Fingerprint::of(&[]),
            started_ms: 1,
            tmp: &tmp,
        };
        let outcome = RunOutcome::error("the analysis task failed: test".into());
        store_run(&ctx, start, outcome).await.expect("stored");
        assert!(!tmp.exists(), "nothing written: the folder is removed");
        let runs = ctx.store.list_runs(5).await.expect("runs");
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.status, RunStatus::Error);
        assert_eq!(r.verdict, Verdict::Error);
        assert_eq!(r.error.as_deref(), Some("the analysis task failed: test"));
        assert_eq!(r.scanner.as_deref(), Some("CT1"), "named by its calling AE");
        assert!(r.outputs_dir.is_none());
    }
}
