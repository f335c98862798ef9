//! `/baselines`: the active baselines (with who set each and from what), their history, and
//! the audit log of every action.

use super::auth::{read_access, Reading};
use super::{html, Shared, WebError};
use crate::store::{BaselineFilter, BaselineRow};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// Audit entries shown.
const AUDIT_ROWS: u32 = 200;

#[derive(Debug, Default, Deserialize)]
pub struct BaselinesQuery {
    /// What the last action said (shown once).
    done: Option<String>,
}

/// GET /baselines
pub async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<BaselinesQuery>,
) -> Result<Response, Response> {
    let user = read_access(&state, &headers, &uri, Reading::Page).await?;
    let r: Result<Markup, WebError> = async {
        let all = state
            .store
            .list_baselines(&BaselineFilter {
                history: true,
                ..BaselineFilter::default()
            })
            .await?;
        let audit = state.store.audit_log(AUDIT_ROWS).await?;
        let (active, old): (Vec<&BaselineRow>, Vec<&BaselineRow>) =
            all.iter().partition(|b| b.is_active());
        Ok(html! {
            h1 { "Baselines" }
            @if let Some(d) = &q.done { p.ok { (d) } }
            h2 { "Active" }
            (table(&active, "active-baselines"))
            h2 { "History" }
            (table(&old, "baseline-history"))
            h2 { "Audit log" }
            div.scroll { table #audit {
                thead { tr { th { "When" } th { "Who" } th { "Action" } th { "What" } th { "From" } th { "Detail" } } }
                tbody { @for a in &audit { tr {
                    td { (html::when(a.entry.at)) } td { (a.entry.user_name) } td { (a.entry.action) }
                    td { (html::text(a.entry.target.as_deref())) } td { (html::text(a.entry.address.as_deref())) }
                    td { (html::text(a.entry.detail.as_deref())) }
                } } }
            } }
        })
    }
    .await;
    match r {
        Ok(body) => Ok(html::page("Baselines", user.as_ref(), body).into_response()),
        Err(e) => Err(e.into_response()),
    }
}

fn table(rows: &[&BaselineRow], id: &str) -> Markup {
    html! {
        @if rows.is_empty() { p.muted { "none" } } @else {
            div.scroll { table id=(id) {
                thead { tr {
                    th.num { "#" } th { "Scanner" } th { "Phantom" } th { "Protocol" } th { "Source" }
                    th { "Set by" } th { "Set" } th { "State" } th { "Materials" }
                } }
                tbody { @for b in rows { tr {
                    td.num { (b.id) }
                    td { (b.scanner_label.as_deref().unwrap_or(&b.scanner_id)) }
                    td { (b.phantom_id) }
                    td { (b.protocol_key) }
                    td { @if let Some(run) = b.run_id { a href=(format!("/runs/{run}")) { (b.source) } } @else { (b.source) } }
                    td.set-by { (html::text(b.set_by.as_deref())) }
                    td { (html::when(b.created_at)) }
                    td {
                        @if let Some(t) = b.superseded_at { "superseded " (html::when(t)) @if let Some(by) = b.superseded_by { " by #" (by) } }
                        @else if b.provisional { "provisional" } @else { "active" }
                    }
                    td.muted { (b.entries.iter().map(|e| e.insert.as_str()).collect::<Vec<_>>().join(", ")) }
                } } }
            } }
        }
    }
}
