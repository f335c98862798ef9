//! `/` the runs (filtered, newest first, paginated), `/runs/{id}` one run (its table, images,
//! downloads, report email, series and instances), its files, and the two actions on a run:
//! make it the baseline, send its report again.

use super::auth::{act_access, client_address, read_access, CsrfForm, Reading, SessionUser};
use super::{html, Shared, WebError};
use crate::actions::{self, Actor, Mailing};
use crate::notify::{self, Resent};
use crate::store::{OutboxKind, Role, RunFilter, RunRow, Verdict};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use std::net::SocketAddr;

/// Runs per page of `/`.
pub const PAGE_SIZE: u32 = 50;

/// The query of `/` and `/api/runs`.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    pub scanner: Option<String>,
    pub phantom: Option<String>,
    /// PASS, FAIL, NONE (or "NO BASELINE"), ERROR.
    pub verdict: Option<String>,
    /// YYYY-MM-DD, acquired (else finished) on or after.
    pub from: Option<String>,
    /// YYYY-MM-DD, acquired (else finished) on or before.
    pub to: Option<String>,
    pub page: Option<u64>,
}

/// Unix ms of the start of a `YYYY-MM-DD` day (UTC).
pub(super) fn day_start_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let day = crate::dicom::days_from_civil(
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    )?;
    Some(day * 86_400_000)
}

impl RunsQuery {
    /// The store's filter; a malformed value is a 400 naming it.
    pub fn filter(&self) -> Result<RunFilter, WebError> {
        let some = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let verdict = match some(&self.verdict) {
            None => None,
            Some(v) => Some(
                Verdict::ALL
                    .iter()
                    .copied()
                    .find(|x| x.as_str() == v || x.label() == v)
                    .ok_or_else(|| {
                        WebError::BadRequest(format!(
                            "verdict {v:?}: use PASS, FAIL, NONE or ERROR"
                        ))
                    })?,
            ),
        };
        let day = |key: &str, v: Option<String>| -> Result<Option<i64>, WebError> {
            v.map(|s| {
                day_start_ms(&s)
                    .ok_or_else(|| WebError::BadRequest(format!("{key} {s:?}: use YYYY-MM-DD")))
            })
            .transpose()
        };
        Ok(RunFilter {
            scanner: some(&self.scanner),
            phantom_id: some(&self.phantom),
            verdict,
            from_ms: day("from", some(&self.from))?,
            before_ms: day("to", some(&self.to))?.map(|t| t + 86_400_000),
        })
    }
}

/// GET /
pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<RunsQuery>,
) -> Result<Response, Response> {
    let user = read_access(&state, &headers, &uri, Reading::Page).await?;
    let r: Result<Markup, WebError> = async {
        let filter = q.filter()?;
        let page = q.page.unwrap_or(1).max(1);
        let (runs, total) = state
            .store
            .find_runs(&filter, (page - 1) * u64::from(PAGE_SIZE), PAGE_SIZE)
            .await?;
        let facets = state.store.run_facets().await?;
        let pages = total.div_ceil(u64::from(PAGE_SIZE)).max(1);
        let link = |p: u64| {
            let mut parts: Vec<String> = Vec::new();
            for (k, v) in [("scanner", &q.scanner), ("phantom", &q.phantom), ("verdict", &q.verdict), ("from", &q.from), ("to", &q.to)] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    parts.push(format!("{k}={}", html::url_encode(v)));
                }
            }
            parts.push(format!("page={p}"));
            format!("/?{}", parts.join("&"))
        };
        let selected = |cur: &Option<String>, v: &str| cur.as_deref() == Some(v);
        Ok(html! {
            h1 { "Runs" }
            form.filters method="get" action="/" {
                label { "Scanner" select name="scanner" {
                    option value="" { "any" }
                    @for s in &facets.scanners { option value=(s) selected[selected(&q.scanner, s)] { (s) } }
                } }
                label { "Phantom" select name="phantom" {
                    option value="" { "any" }
                    @for p in &facets.phantoms { option value=(p) selected[selected(&q.phantom, p)] { (p) } }
                } }
                label { "Verdict" select name="verdict" {
                    option value="" { "any" }
                    @for v in Verdict::ALL { option value=(v.as_str()) selected[selected(&q.verdict, v.as_str())] { (v.label()) } }
                } }
                label { "From" input type="date" name="from" value=[q.from.as_deref()]; }
                label { "To" input type="date" name="to" value=[q.to.as_deref()]; }
                button type="submit" { "Filter" }
            }
            p.muted { (total) " runs" @if pages > 1 { ", page " (page) " of " (pages) } }
            div.scroll { table #runs {
                thead { tr {
                    th.num { "Run" } th { "Verdict" } th { "Scanner" } th { "Phantom" }
                    th { "Acquired" } th { "Analysed" } th { "Series" }
                } }
                tbody {
                    @for r in &runs { (run_row(r)) }
                }
            } }
            @if pages > 1 {
                p.noprint {
                    @if page > 1 { a href=(link(page - 1)) { "\u{2190} newer" } " " }
                    @if page < pages { a href=(link(page + 1)) { "older \u{2192}" } }
                }
            }
        })
    }
    .await;
    match r {
        Ok(body) => Ok(html::page("Runs", user.as_ref(), body).into_response()),
        Err(e) => Err(e.into_response()),
    }
}

fn run_row(r: &RunRow) -> Markup {
    html! {
        tr {
            td.num { a href=(format!("/runs/{}", r.id)) { (r.id) } }
            td { (html::verdict(r.verdict)) @if r.amended { " amended" } }
            td { (html::text(r.scanner.as_deref())) }
            td { (html::text(r.phantom_id.as_deref())) }
            td { (html::acquired(&r.identity)) }
            td { (html::when(r.finished_at)) }
            td.muted { (r.series_instance_uid) }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// What the last action said (shown once).
    done: Option<String>,
}

/// GET /runs/{id}
pub async fn show(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, Response> {
    let user = read_access(&state, &headers, &uri, Reading::Page).await?;
    let body = run_page(&state, id, user.as_ref(), q.done.as_deref())
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(html::page(&format!("Run {id}"), user.as_ref(), body).into_response())
}

async fn run_page(
    state: &Shared,
    id: i64,
    user: Option<&SessionUser>,
    done: Option<&str>,
) -> Result<Markup, WebError> {
    let detail = state
        .store
        .get_run(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no run {id}")))?;
    let run = &detail.run;
    let series = state.store.get_series(&run.series_instance_uid).await?;
    let instances = state
        .store
        .series_instances(&run.series_instance_uid)
        .await?;
    let report = state
        .store
        .outbox_for_run(id)
        .await?
        .into_iter()
        .find(|m| m.kind == OutboxKind::Report);
    let files = notify::result_files(run, &state.data_dir);
    let physicist = user.filter(|u| u.role == Role::Physicist);
    Ok(html! {
        h1 { "Run " (id) " " (html::verdict(run.verdict)) }
        @if let Some(d) = done { p.ok { (d) } }
        div.scroll { table.meta {
            tr { th { "Scanner" } td { (html::text(run.scanner.as_deref())) " " span.muted { (html::text(run.identity.manufacturer.as_deref())) " " (html::text(run.identity.model.as_deref())) } } }
            tr { th { "Phantom" } td { (html::text(run.phantom_name.as_deref().or(run.phantom_id.as_deref()))) } }
            tr { th { "Protocol" } td { (html::text(run.identity.protocol_key.as_deref())) } }
            tr { th { "Acquired" } td { (html::acquired(&run.identity)) } }
            tr { th { "Analysed" } td { (html::when(run.finished_at)) @if run.amended { " (amended series)" } } }
            tr { th { "Baseline" } td {
                (html::text(run.baseline_source.as_deref()))
                @if run.baseline_provisional == Some(true) { " (provisional)" }
                @if let Some(n) = &run.baseline_note { " \u{2014} " (n) }
            } }
            @if let Some(e) = &run.error { tr.fail { th { "Error" } td { (e) } } }
        } }
        @for w in &run.warnings { p.notice { (w) } }
        h2 { "Materials" }
        (materials_table(&detail.materials))
        @if let Some(u) = physicist {
            div.noprint {
                h2 { "Actions" }
                form method="post" action=(format!("/runs/{id}/baseline")) {
                    (html::csrf_field(&u.csrf))
                    label { "Note " input name="note" placeholder="e.g. after tube replacement"; }
                    " "
                    button #set-baseline type="submit" { "Set as baseline" }
                }
                @if report.is_some() {
                    form method="post" action=(format!("/runs/{id}/resend")) {
                        (html::csrf_field(&u.csrf))
                        button #resend type="submit" { "Resend report" }
                    }
                }
            }
        }
        @let images: Vec<_> = files.iter().filter(|f| f.content_type == "image/png").collect();
        @if !images.is_empty() {
            h2 { "Images" }
            @for f in &images {
                figure {
                    img.result src=(format!("/runs/{id}/files/{}", html::url_encode(&f.name))) alt=(f.name);
                    figcaption.muted { (f.name) }
                }
            }
        }
        h2 { "Downloads" }
        ul {
            @for f in &files { li { a href=(format!("/runs/{id}/files/{}", html::url_encode(&f.name))) download=(f.name) { (f.name) } } }
            li { a href=(format!("/api/runs/{id}")) { "run " (id) " as JSON (API)" } }
        }
        @if let Some(m) = &report {
            h2 { "Report email" }
            p.muted { "To " (m.recipients.join(", ")) " \u{2014} " (m.state) }
            details { summary { (m.subject) } (PreEscaped(email_body(&m.html_body))) }
        }
        h2 { "Series" }
        @if let Some(s) = &series {
            p { (s.series_instance_uid) " \u{2014} " (s.state) ", " (s.n_instances) " instances"
                @if let Some(d) = &s.description { ", " (d) }
                @if let Some(t) = s.instances_purged_at { ", instances purged " (html::when(t)) } }
        }
        @if !instances.is_empty() {
            details {
                summary { (instances.len()) " instances" }
                div.scroll { table {
                    thead { tr { th { "SOP Instance UID" } th { "Transfer syntax" } th.num { "Bytes" } th { "From" } th { "Received" } } }
                    tbody { @for i in &instances { tr {
                        td { (i.sop_instance_uid) } td { (i.transfer_syntax) } td.num { (i.size_bytes) }
                        td { (i.calling_ae) " " span.muted { (i.peer) } } td { (html::when(i.received_at)) }
                    } } }
                } }
            }
        }
    })
}

/// The inside of the email's `<body>` (the report's HTML is hu-red's own, every value escaped
/// when it was rendered).
fn email_body(doc: &str) -> &str {
    let start = doc
        .find("<body")
        .and_then(|i| doc[i..].find('>').map(|j| i + j + 1))
        .unwrap_or(0);
    let end = doc
        .rfind("</body>")
        .filter(|&e| e >= start)
        .unwrap_or(doc.len());
    &doc[start..end]
}

fn materials_table(materials: &[crate::store::MaterialRow]) -> Markup {
    html! {
        div.scroll { table #materials {
            thead { tr {
                th { "Material" } th.num { "RED" } th.num { "HU mean" } th.num { "HU SD" }
                th.num { "Baseline HU" } th.num { "\u{0394}HU" } th.num { "Tolerance" } th.num { "\u{0394}RED %" } th { "Check" }
            } }
            tbody {
                @for m in materials {
                    @let v = &m.values;
                    @let failed = v.within_tolerance == Some(false) || v.within_window == Some(false);
                    tr class=[failed.then_some("fail")] {
                        td { (v.insert) }
                        td.num { (html::num(v.red, 3)) }
                        td.num { (html::num(Some(v.hu_mean), 1)) }
                        td.num { (html::num(Some(v.hu_std), 1)) }
                        td.num { (html::num(v.baseline_hu, 1)) }
                        td.num { (html::signed(v.delta_hu, 1)) }
                        td.num { (v.tolerance_hu.map(|t| format!("\u{00b1}{t:.0}")).unwrap_or_else(|| "\u{2014}".into())) }
                        td.num { (html::signed(v.delta_red_percent, 2)) }
                        td { @if failed { "out" } @else if v.within_tolerance == Some(true) { "ok" } @else { (html::text(v.note.as_deref())) } }
                    }
                }
            }
        } }
    }
}

/// GET /runs/{id}/files/{name}: one of the run's result files (only the names
/// `notify::result_files` lists).
pub async fn file(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, name)): Path<(i64, String)>,
) -> Result<Response, Response> {
    read_access(&state, &headers, &uri, Reading::Api).await?;
    let r: Result<Response, WebError> = async {
        let run = state
            .store
            .get_run_row(id)
            .await?
            .ok_or_else(|| WebError::NotFound(format!("no run {id}")))?;
        let f = notify::result_files(&run, &state.data_dir)
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| WebError::NotFound(format!("run {id} has no file {name}")))?;
        let bytes = tokio::fs::read(&f.path)
            .await
            .map_err(|e| WebError::NotFound(format!("{}: {e}", f.path.display())))?;
        Ok((
            [
                (header::CONTENT_TYPE, f.content_type.to_string()),
                (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
            ],
            bytes,
        )
            .into_response())
    }
    .await;
    r.map_err(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
pub struct BaselineForm {
    #[serde(default)]
    csrf: String,
    note: Option<String>,
}

/// POST /runs/{id}/baseline
pub async fn set_baseline(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<BaselineForm>,
) -> Result<Response, WebError> {
    let user = act_access(&state, &headers, &f.csrf).await?;
    let actor = actor_of(&user, peer, &headers);
    let note = f
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let set =
        actions::set_baseline_from_run(&state.store, id, note, &state.protocol_fields, &actor)
            .await
            .map_err(action_error)?;
    tracing::info!(user = %user.name, run = id, "web: {}", set.describe(id));
    Ok(Redirect::to(&format!(
        "/baselines?done={}",
        html::url_encode(&set.describe(id))
    ))
    .into_response())
}

/// POST /runs/{id}/resend
pub async fn resend(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let user = act_access(&state, &headers, &f.csrf).await?;
    let actor = actor_of(&user, peer, &headers);
    let mailing = Mailing {
        mail: &state.mail,
        data_dir: &state.data_dir,
        scanners: &state.scanners,
    };
    let said = match actions::resend_report(&state.store, &mailing, id, &actor)
        .await
        .map_err(action_error)?
    {
        Resent::Sent {
            recipients,
            transport,
        } => {
            format!(
                "report sent again to {} ({transport})",
                recipients.join(", ")
            )
        }
        Resent::Queued { why } => format!("report queued, not sent yet: {why}"),
        Resent::QueuedForService => "report queued for the report sender".to_string(),
    };
    Ok(Redirect::to(&format!("/runs/{id}?done={}", html::url_encode(&said))).into_response())
}

/// The logged-in user as the audit log records an action: name and client address.
fn actor_of(user: &SessionUser, peer: SocketAddr, headers: &HeaderMap) -> Actor {
    Actor {
        name: user.name.clone(),
        address: client_address(peer, headers),
    }
}

fn action_error(e: actions::ActionError) -> WebError {
    match e {
        actions::ActionError::NoRun(id) => WebError::NotFound(format!("no run {id}")),
        actions::ActionError::Store(s) => WebError::Store(s),
        other => WebError::Action(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-12-05"), Some(1_796_428_800_000));
        assert_eq!(day_start_ms("2024-02-29"), Some(1_709_164_800_000));
        for bad in ["2026-13-01", "2026-02-30", "2026-1-01", "yesterday", ""] {
            assert_eq!(day_start_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_email_body_is_cut_out() {
        let doc = "<!DOCTYPE html><html><head><title>x</title></head><body style=\"a\">\n<p>hi</p></body></html>";
        assert_eq!(email_body(doc), "\n<p>hi</p>");
        assert_eq!(email_body("<p>no body</p>"), "<p>no body</p>");
    }

    #[test]
    fn filters_are_checked() {
        let q = RunsQuery {
            verdict: Some("NO BASELINE".into()),
            from: Some("2026-01-01".into()),
            to: Some("2026-01-31".into()),
            scanner: Some(" ".into()),
            ..RunsQuery::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(f.verdict, Some(Verdict::None));
        assert_eq!(f.scanner, None);
        assert_eq!(f.before_ms.unwrap() - f.from_ms.unwrap(), 31 * 86_400_000);
        let bad = RunsQuery {
            verdict: Some("MAYBE".into()),
            ..RunsQuery::default()
        };
        assert!(matches!(bad.filter(), Err(WebError::BadRequest(_))));
    }
}
