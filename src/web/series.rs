//! `/series`: what hu-red is doing now — series being received, waiting to be analysed and
//! being analysed — the most recent series, and the reports not delivered yet.

use super::auth::{read_access, Reading};
use super::{html, Shared, WebError};
use crate::store::{SeriesRow, SeriesState};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

/// Recent series and undelivered reports shown.
const RECENT: u32 = 50;

/// GET /series
pub async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    let user = read_access(&state, &headers, &uri, Reading::Page).await?;
    let r: Result<Markup, WebError> = async {
        let mut now = Vec::new();
        for s in [SeriesState::Receiving, SeriesState::Stable, SeriesState::Analysing] {
            now.extend(state.store.series_in_state(s).await?);
        }
        let recent = state.store.list_series(RECENT).await?;
        let outbox = state.store.undelivered(RECENT).await?;
        Ok(html! {
            h1 { "Series" }
            h2 { "Now" }
            @if now.is_empty() { p.muted { "nothing being received or analysed" } } @else { (table(&now, "series-now")) }
            h2 { "Recent" }
            (table(&recent, "series-recent"))
            h2 { "Reports not delivered" }
            @if outbox.is_empty() { p.muted { "none: every report was delivered" } } @else {
                div.scroll { table #outbox {
                    thead { tr { th.num { "Message" } th.num { "Run" } th { "State" } th.num { "Attempts" } th { "To" } th { "Next attempt" } th { "Last error" } } }
                    tbody { @for m in &outbox { tr {
                        td.num { (m.id) } td.num { a href=(format!("/runs/{}", m.run_id)) { (m.run_id) } }
                        td { (m.state) } td.num { (m.attempts) } td { (m.recipients.join(", ")) }
                        td { (html::when(m.next_attempt_at)) } td { (html::text(m.last_error.as_deref())) }
                    } } }
                } }
            }
        })
    }
    .await;
    match r {
        Ok(body) => Ok(html::page("Series", user.as_ref(), body).into_response()),
        Err(e) => Err(e.into_response()),
    }
}

fn table(rows: &[SeriesRow], id: &str) -> Markup {
    html! {
        div.scroll { table id=(id) {
            thead { tr {
                th { "Series" } th { "State" } th.num { "Instances" } th { "Station" } th { "From" }
                th { "Description" } th { "Last received" } th.num { "Last run" }
            } }
            tbody { @for s in rows { tr {
                td.muted { (s.series_instance_uid) }
                td { (s.state) @if s.amended { " (amended)" } @if s.instances_purged_at.is_some() { " (instances purged)" } }
                td.num { (s.n_instances) }
                td { (html::text(s.station_name.as_deref())) }
                td { (html::text(s.calling_ae.as_deref())) }
                td { (html::text(s.description.as_deref())) }
                td { (html::when(s.last_received_at)) }
                td.num { @if let Some(r) = s.last_run_id { a href=(format!("/runs/{r}")) { (r) } } }
            } } }
        } }
    }
}
