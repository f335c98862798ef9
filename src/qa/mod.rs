//! The QA room: takes complete series from the assembler's bounded queue and, per series:
//! 1. decodes and measures it off the async reactor (spawn_blocking, at most `workers` at a
//!    time) — `analyse.rs`;
//! 2. files it under its scanner (DeviceSerialNumber / StationName, Manufacturer, model) and
//!    protocol, and looks up the baseline (same protocol, else the closest, saying so) and the
//!    trend of that scanner and phantom — `series.rs`, `baseline.rs`;
//! 3. evaluates constancy and writes the outputs (CSV, JSON, curve with the baseline, overlay,
//!    trend; for a failure the JSON and a preview) off the reactor — `analyse.rs`;
//! 4. stores the run — result or failure — in one transaction with its rendered report in the
//!    outbox (and, with `qa.auto_baseline`, a provisional baseline) — `record.rs`, `report.rs` —
//!    then moves the outputs to `data_dir/results/<run id>/` and wakes the report sender —
//!    `results.rs`.
//!
//! The job loop is `jobs.rs`; what a series came to is `outcome.rs`. The room sees its [`Settings`], never the whole configuration.

mod analyse;
mod baseline;
mod jobs;
mod outcome;
mod record;
mod report;
mod results;
mod series;

pub use jobs::{process, run_workers, Queue};
pub use results::{clean_partial_results, recover_results, RESULTS_DIR};

use crate::config::{MailConfig, ScannerConfig};
use crate::identity::ProtocolField;
use crate::phantom::PhantomSet;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// What the QA room needs from the configuration, taken once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `storage.data_dir`: the received instances and the `results/` folder.
    pub data_dir: PathBuf,
    /// `qa.phantom`: `auto`, or the phantom every series is measured as.
    pub phantom: String,
    /// `qa.slab_mm`.
    pub slab_mm: f64,
    /// `qa.trend_runs`: runs in a report's trend (this one included).
    pub trend_runs: u32,
    /// `qa.auto_baseline`.
    pub auto_baseline: bool,
    /// `qa.protocol_fields`, parsed.
    pub protocol_fields: Vec<ProtocolField>,
    /// `[[scanners]]`: a series' scanner entry (its phantom, its recipients).
    pub scanners: Vec<ScannerConfig>,
    /// `[mail]`: the report's recipients, and whether an `[ERROR]` report of a series with no
    /// phantom recognised shows a slice (`mail.error_preview`).
    pub mail: MailConfig,
}

impl Settings {
    /// The scanner entry of a series (see [`crate::config::scanner_for`]).
    fn scanner_for(
        &self,
        calling_ae: Option<&str>,
        station_name: Option<&str>,
    ) -> Option<&ScannerConfig> {
        crate::config::scanner_for(&self.scanners, calling_ae, station_name)
    }
}

/// Everything a run needs; cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub phantoms: Arc<PhantomSet>,
    /// This database's installation id and the sender's domain (the reports' Message-IDs).
    pub installation: String,
    pub mail_domain: String,
    /// Notified after each stored run (its report is queued).
    pub wake_sender: Arc<tokio::sync::Notify>,
}
