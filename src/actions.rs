//! What a person does to the results, shared by the command line and the dashboard: make a run
//! the baseline of its scanner, phantom and protocol (or confirm the provisional baseline made
//! from it), and send a run's report again. Each action is recorded in the audit log with who
//! did it and from where ([`Actor`]).

use crate::config::{MailConfig, ScannerConfig};
use crate::identity::{Protocol, ProtocolField};
use crate::notify::{self, NotifyError, Resent};
use crate::store::{
    now_ms, AuditEntry, NewBaseline, NewBaselineEntry, OutboxKind, RunStatus, Store, StoreError,
};
use std::path::Path;

/// Who acts, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A dashboard user's name, or "NAME (command line)".
    pub name: String,
    /// The client's address, or "command line".
    pub address: String,
}

impl Actor {
    /// The person at the command line (their login name, as the environment says it).
    pub fn command_line() -> Actor {
        let who = ["SUDO_USER", "USER", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "unknown".to_string());
        Actor {
            name: format!("{who} (command line)"),
            address: "command line".to_string(),
        }
    }

    /// The audit entry of an action of this actor, now.
    pub fn entry(&self, action: &str, target: String, detail: Option<String>) -> AuditEntry {
        AuditEntry {
            at: now_ms(),
            user_name: self.name.clone(),
            action: action.to_string(),
            target: Some(target),
            detail,
            address: Some(self.address.clone()),
        }
    }
}

/// Why an action could not be done; each message names the run and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no run {0} (see `hu-red runs`)")]
    NoRun(i64),
    #[error("run {run} did not analyse its series ({why}): only a measured run can be a baseline")]
    NotMeasured { run: i64, why: String },
    #[error("run {0} has no phantom")]
    NoPhantom(i64),
    #[error("run {0} was stored before scanners were recorded: send its series again")]
    NoScanner(i64),
    #[error("run {0} has no measured materials")]
    NoMaterials(i64),
    #[error("run {0} has no stored report (no recipients were configured when it ran, or it was stored by an hu-red without reports)")]
    NoReport(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// What [`set_baseline_from_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineChange {
    /// A new baseline, replacing the active one of the same protocol if any.
    Set { replaced: Option<i64> },
    /// The provisional baseline made from this run is now confirmed.
    Confirmed,
    /// The run already is the (confirmed) baseline.
    Unchanged,
}

/// The outcome of [`set_baseline_from_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineSet {
    pub baseline_id: i64,
    pub change: BaselineChange,
    /// The scanner's label (else its id), the phantom, the protocol in words.
    pub scanner: String,
    pub phantom: String,
    pub protocol: String,
}

impl BaselineSet {
    /// One line for the CLI and the dashboard.
    pub fn describe(&self, run_id: i64) -> String {
        let what = format!(
            "scanner {}, phantom {}, {}",
            self.scanner, self.phantom, self.protocol
        );
        match self.change {
            BaselineChange::Set { replaced } => format!(
                "baseline #{} set from run {run_id} for {what}{}",
                self.baseline_id,
                replaced
                    .map(|r| format!(" (replaces baseline #{r})"))
                    .unwrap_or_default()
            ),
            BaselineChange::Confirmed => format!(
                "baseline #{} (from run {run_id}) confirmed for {what}",
                self.baseline_id
            ),
            BaselineChange::Unchanged => format!(
                "run {run_id} is already the baseline #{} of {what}",
                self.baseline_id
            ),
        }
    }
}

/// Make run `run_id` the baseline of its scanner, phantom and protocol (the protocol key made
/// with `fields`, `qa.protocol_fields`); a provisional baseline made from this very run is
/// confirmed instead. Recorded in the audit log unless nothing changed.
pub async fn set_baseline_from_run(
    store: &Store,
    run_id: i64,
    note: Option<String>,
    fields: &[ProtocolField],
    actor: &Actor,
) -> Result<BaselineSet, ActionError> {
    let detail = store
        .get_run(run_id)
        .await?
        .ok_or(ActionError::NoRun(run_id))?;
    let run = detail.run;
    if run.status != RunStatus::Ok {
        return Err(ActionError::NotMeasured {
            run: run_id,
            why: run
                .error
                .clone()
                .unwrap_or_else(|| run.status.as_str().to_string()),
        });
    }
    let phantom = run
        .phantom_id
        .clone()
        .ok_or(ActionError::NoPhantom(run_id))?;
    let scanner_id = run
        .identity
        .scanner_id
        .clone()
        .ok_or(ActionError::NoScanner(run_id))?;
    let protocol = Protocol {
        kvp: run.identity.kvp,
        kernel: run.identity.kernel.clone(),
        slice_thickness_mm: run.identity.slice_thickness_mm,
    };
    let key = protocol.key(fields);
    let scanner = run.scanner.clone().unwrap_or_else(|| scanner_id.clone());
    let done = |baseline_id, change| BaselineSet {
        baseline_id,
        change,
        scanner: scanner.clone(),
        phantom: phantom.clone(),
        protocol: protocol.describe(),
    };
    let active = store.active_baselines(&scanner_id, &phantom).await?;
    if let Some(b) = active
        .iter()
        .find(|b| b.protocol_key == key && b.run_id == Some(run_id))
    {
        if !b.provisional {
            return Ok(done(b.id, BaselineChange::Unchanged));
        }
        store.confirm_baseline(b.id, &actor.name).await?;
        let set = done(b.id, BaselineChange::Confirmed);
        store
            .record_audit(&actor.entry(
                "baseline.confirm",
                format!("baseline {}", b.id),
                Some(set.describe(run_id)),
            ))
            .await?;
        return Ok(set);
    }
    let entries: Vec<NewBaselineEntry> = detail
        .materials
        .iter()
        .map(|m| NewBaselineEntry::from(&m.values))
        .collect();
    if entries.is_empty() {
        return Err(ActionError::NoMaterials(run_id));
    }
    let b = NewBaseline {
        scanner_id: scanner_id.clone(),
        scanner_label: run.scanner.clone(),
        manufacturer: run.identity.manufacturer.clone(),
        model: run.identity.model.clone(),
        phantom_id: phantom.clone(),
        protocol_key: key.clone(),
        kvp: protocol.kvp,
        kernel: protocol.kernel.clone(),
        slice_thickness_mm: protocol.slice_thickness_mm,
        source: format!("run {run_id}"),
        run_id: Some(run_id),
        provisional: false,
        note,
        set_by: Some(actor.name.clone()),
        entries,
    };
    let id = store.insert_baseline(&b).await?;
    let replaced = active.iter().find(|a| a.protocol_key == key).map(|a| a.id);
    let set = done(id, BaselineChange::Set { replaced });
    store
        .record_audit(&actor.entry(
            "baseline.set",
            format!("baseline {id}"),
            Some(set.describe(run_id)),
        ))
        .await?;
    Ok(set)
}

/// What the report sender needs to send a report again.
pub struct Mailing<'a> {
    pub mail: &'a MailConfig,
    pub data_dir: &'a Path,
    pub scanners: &'a [ScannerConfig],
}

/// Send run `run_id`'s report again (see [`notify::resend`]), recorded in the audit log.
pub async fn resend_report(
    store: &Store,
    mailing: &Mailing<'_>,
    run_id: i64,
    actor: &Actor,
) -> Result<Resent, ActionError> {
    let detail = store
        .get_run(run_id)
        .await?
        .ok_or(ActionError::NoRun(run_id))?;
    let rows = store.outbox_for_run(run_id).await?;
    let report = rows
        .iter()
        .find(|r| r.kind == OutboxKind::Report)
        .ok_or(ActionError::NoReport(run_id))?;
    store
        .record_audit(&actor.entry("report.resend", format!("run {run_id}"), None))
        .await?;
    Ok(notify::resend(
        store,
        mailing.mail,
        mailing.data_dir,
        mailing.scanners,
        &detail.run,
        report,
        &rows,
    )
    .await?)
}
