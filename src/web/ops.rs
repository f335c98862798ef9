//! For IT, without login: `/healthz` (200 `ok` when the database answers and every supervised
//! task runs, else 503 with the reason) and `/metrics` (Prometheus text format 0.0.4).

use super::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::time::Duration;

/// How long `/healthz` waits for the database.
const DB_TIMEOUT: Duration = Duration::from_secs(3);

/// GET /healthz
pub async fn healthz(State(state): State<Shared>) -> Response {
    let mut problems = Vec::new();
    match tokio::time::timeout(DB_TIMEOUT, state.store.probe_write()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("database: {e}")),
        Err(_) => problems.push(format!(
            "database: no answer within {} s",
            DB_TIMEOUT.as_secs()
        )),
    }
    if let Err(why) = state.tasks.all_running() {
        problems.push(format!("tasks: {why}"));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

/// A label value, escaped as the text format wants (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// GET /metrics
pub async fn metrics(State(state): State<Shared>) -> Response {
    let c = state.metrics.counts();
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "hured_instances_stored_total",
        "C-STORE requests answered success (file and row durable) since start.",
        c.instances_stored,
    );
    counter(
        "hured_instances_failed_total",
        "C-STORE requests answered with a failure status since start.",
        c.instances_failed,
    );
    counter(
        "hured_associations_total",
        "DICOM associations accepted since start.",
        c.associations,
    );
    let db_up = match tokio::time::timeout(DB_TIMEOUT, state.store.run_statistics()).await {
        Ok(Ok(s)) => {
            let _ = writeln!(
                out,
                "# HELP hured_runs_total Runs stored, by verdict (NONE = no baseline).\n\
                 # TYPE hured_runs_total counter"
            );
            for v in crate::store::Verdict::ALL {
                let n = s
                    .verdicts
                    .iter()
                    .find(|(k, _)| k == v.as_str())
                    .map_or(0, |(_, n)| *n);
                let _ = writeln!(out, "hured_runs_total{{verdict=\"{}\"}} {n}", v.as_str());
            }
            let _ = writeln!(
                out,
                "# HELP hured_outbox_pending Report emails waiting to be sent.\n\
                 # TYPE hured_outbox_pending gauge\nhured_outbox_pending {}",
                s.outbox_pending
            );
            let _ = writeln!(
                out,
                "# HELP hured_last_run_timestamp_seconds When the last run of a scanner finished.\n\
                 # TYPE hured_last_run_timestamp_seconds gauge"
            );
            for (scanner, ms) in &s.last_runs {
                let _ = writeln!(
                    out,
                    "hured_last_run_timestamp_seconds{{scanner=\"{}\"}} {:.3}",
                    label(scanner),
                    *ms as f64 / 1000.0
                );
            }
            1
        }
        _ => 0,
    };
    let _ = writeln!(
        out,
        "# HELP hured_database_up Whether the database answered this scrape.\n\
         # TYPE hured_database_up gauge\nhured_database_up {db_up}"
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
