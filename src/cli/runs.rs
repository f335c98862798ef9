//! `hu-red runs`: recent series and runs with their state and verdict.

use crate::cli::load_config;
use crate::report::format::MISSING;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct RunsArgs {
    /// Configuration file (for the database URL); env HURED__DATABASE__URL also works.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many series and runs to list.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    // Said first: the service's database watch may know what this command cannot open.
    let health = crate::health::read_status(&config.storage.data_dir);
    if !args.json {
        print_health(&health);
    }
    crate::cli::runtime()?.block_on(async move {
        let store = crate::cli::open_existing_store(&config).await?;
        let series = store.list_series(args.limit).await?;
        let runs = store.list_runs(args.limit).await?;
        let undelivered = store.undelivered(args.limit).await?;
        let purged = purged_of_runs(&store, &series, &runs).await?;
        store.close().await;
        if args.json {
            let doc = serde_json::json!({
                "database_unusable": health.as_ref().ok().cloned().flatten(),
                "series": series,
                "runs": runs,
                "undelivered_reports": undelivered,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        println!("Series (most recent first)");
        println!(
            "{:<64} {:<13} {:>5} {:<8} {:<16} {:>6} instances",
            "SeriesInstanceUID", "state", "inst", "amended", "station", "run"
        );
        for s in &series {
            println!(
                "{:<64} {:<13} {:>5} {:<8} {:<16} {:>6} {}",
                s.series_instance_uid,
                s.state.as_str(),
                s.n_instances,
                if s.amended { "yes" } else { "" },
                s.station_name.as_deref().unwrap_or(MISSING),
                s.last_run_id.map(|r| r.to_string()).unwrap_or_default(),
                s.instances_purged_at.map(purged_label).unwrap_or_default()
            );
        }
        println!();
        println!("Runs (most recent first)");
        println!(
            "{:>6} {:<8} {:<11} {:<15} {:<16} {:<8} series / error",
            "run", "status", "verdict", "phantom", "scanner", "amended"
        );
        for r in &runs {
            let series = match purged.get(&r.series_instance_uid) {
                Some(at) => format!("{} ({})", r.series_instance_uid, purged_label(*at)),
                None => r.series_instance_uid.clone(),
            };
            println!(
                "{:>6} {:<8} {:<11} {:<15} {:<16} {:<8} {}",
                r.id,
                r.status.as_str(),
                r.verdict.label(),
                r.phantom_id.as_deref().unwrap_or(MISSING),
                r.scanner.as_deref().unwrap_or(MISSING),
                if r.amended { "yes" } else { "" },
                r.error
                    .as_deref()
                    .map(|e| format!("{series}: {e}"))
                    .unwrap_or(series)
            );
        }
        if !undelivered.is_empty() {
            println!();
            println!("Reports not delivered (dead = given up: `hu-red report --run ID --resend`)");
            println!(
                "{:>6} {:>6} {:<8} {:>8} {:<32} last error",
                "msg", "run", "state", "attempts", "to"
            );
            for m in &undelivered {
                println!(
                    "{:>6} {:>6} {:<8} {:>8} {:<32} {}",
                    m.id,
                    m.run_id,
                    m.state.as_str(),
                    m.attempts,
                    m.recipients.join(", "),
                    m.last_error.as_deref().unwrap_or("")
                );
            }
        }
        anyhow::Ok(())
    })
}

/// "instances purged YYYY-MM-DD" (retention).
fn purged_label(at_ms: i64) -> String {
    format!("instances purged {}", crate::report::utc_date_of_ms(at_ms))
}

/// The series of the listed runs whose instances were purged → when.
async fn purged_of_runs(
    store: &crate::store::Store,
    series: &[crate::store::SeriesRow],
    runs: &[crate::store::RunRow],
) -> anyhow::Result<HashMap<String, i64>> {
    let mut out: HashMap<String, i64> = series
        .iter()
        .filter_map(|s| Some((s.series_instance_uid.clone(), s.instances_purged_at?)))
        .collect();
    let listed: HashSet<&str> = series
        .iter()
        .map(|s| s.series_instance_uid.as_str())
        .collect();
    let others: HashSet<&str> = runs
        .iter()
        .map(|r| r.series_instance_uid.as_str())
        .filter(|uid| !listed.contains(uid))
        .collect();
    for uid in others {
        if let Some(at) = store
            .get_series(uid)
            .await?
            .and_then(|s| s.instances_purged_at)
        {
            out.insert(uid.to_string(), at);
        }
    }
    Ok(out)
}

/// What the running service found about the database, when it is not well.
fn print_health(health: &Result<Option<crate::health::Unusable>, String>) {
    match health {
        Ok(None) => {}
        Ok(Some(u)) => {
            println!(
                "DATABASE UNUSABLE: the service has found the database refusing writes since {} \
                 (last checked {}): {}. Every instance sent meanwhile is refused (0xA700) and \
                 must be sent again once it is fixed.",
                crate::report::utc_timestamp_of_ms(u.since_ms),
                crate::report::utc_timestamp_of_ms(u.checked_ms),
                u.error
            );
            println!();
        }
        Err(e) => {
            println!("The service's database status cannot be read: {e}");
            println!();
        }
    }
}
