//! `hu-red purge`: the retention purge by hand, the same one the service runs every 24 hours
//! (`--dry-run` lists what would go and changes nothing).

use crate::cli::{load_config, open_existing_store, runtime};
use crate::report::format::MISSING;
use crate::retention::{self, Policy, PurgeSummary};
use crate::store::{now_ms, PurgeCandidate, Store};
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct PurgeArgs {
    /// Configuration file (database URL, storage.data_dir, [retention]); env HURED__... also
    /// works.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// List the series whose instances would be purged (series UID, station, last received,
    /// reason, instances, bytes); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Purge the instances of unrecognised series (no CT image, no phantom recognised) whose
    /// last instance arrived longer ago than this, instead of after retention.unrecognised_days:
    /// a whole number and m, h, d or w (90m, 36h, 7d, 2w). Phantom series follow
    /// retention.instances_days only.
    #[arg(long, value_name = "DURATION", value_parser = retention::parse_duration)]
    pub older_than: Option<Duration>,
}

pub fn run(args: PurgeArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let mut policy = Policy::from_days(
        config.retention.unrecognised_days,
        config.retention.instances_days,
    );
    if let Some(age) = args.older_than {
        policy.unrecognised = Some(age);
    }
    println!("Retention: {}", policy.describe());
    runtime()?.block_on(async move {
        let store = open_existing_store(&config).await?;
        let now = now_ms();
        let r = if args.dry_run {
            dry_run(&store, &policy, now).await
        } else {
            purge(&store, &config.storage.data_dir, &policy, now).await
        };
        store.close().await;
        r
    })
}

async fn dry_run(store: &Store, policy: &Policy, now: i64) -> anyhow::Result<()> {
    let list = retention::candidates(store, policy, now).await?;
    if list.is_empty() {
        println!("Nothing to purge (dry run).");
        return Ok(());
    }
    println!("Would purge the instances of (dry run: nothing is changed):");
    print_table(&list);
    let instances: i64 = list.iter().map(|c| c.instances).sum();
    let bytes: i64 = list.iter().map(|c| c.bytes).sum();
    println!(
        "Would purge {} series: {instances} instances, {}.",
        list.len(),
        size(bytes)
    );
    Ok(())
}

fn print_table(list: &[PurgeCandidate]) {
    println!(
        "{:<64} {:<16} {:<24} {:<22} {:>9} {:>12}",
        "SeriesInstanceUID", "station", "last received", "reason", "instances", "bytes"
    );
    for c in list {
        println!(
            "{:<64} {:<16} {:<24} {:<22} {:>9} {:>12}",
            c.series_instance_uid,
            c.station_name.as_deref().unwrap_or(MISSING),
            crate::report::utc_timestamp_of_ms(c.last_received_at),
            c.reason.label(),
            c.instances,
            c.bytes
        );
    }
}

async fn purge(store: &Store, data_dir: &Path, policy: &Policy, now: i64) -> anyhow::Result<()> {
    let s: PurgeSummary = retention::purge(store, data_dir, policy, now).await?;
    println!(
        "Purged the instances of {} series: {} files removed, {}.",
        s.series,
        s.files,
        size(i64::try_from(s.bytes).unwrap_or(i64::MAX))
    );
    let mut notes = Vec::new();
    if s.missing > 0 {
        notes.push(format!("{} files were already gone", s.missing));
    }
    if s.kept > 0 {
        notes.push(format!(
            "{} files received again meanwhile were kept",
            s.kept
        ));
    }
    if s.skipped > 0 {
        notes.push(format!(
            "{} series received an instance meanwhile and were left alone",
            s.skipped
        ));
    }
    if s.leftovers > 0 {
        notes.push(format!(
            "{} files left by an interrupted purge were removed",
            s.leftovers
        ));
    }
    if !notes.is_empty() {
        println!("({}.)", notes.join("; "));
    }
    println!("The series, their runs, results and reports are kept (`hu-red runs`).");
    if s.refused > 0 {
        bail!(
            "{} files could not be removed (see the warnings above; run with -v for every series)",
            s.refused
        );
    }
    Ok(())
}

/// Bytes, with MiB for people.
fn size(bytes: i64) -> String {
    format!(
        "{bytes} bytes ({:.1} MiB)",
        bytes as f64 / (1024.0 * 1024.0)
    )
}
