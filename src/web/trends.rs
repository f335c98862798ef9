//! `/trends`: ΔHU of every material over acquisition time per scanner, phantom and protocol,
//! with its tolerance band, and ΔRED % (charts: `chart.rs`). A GET form chooses the scanner,
//! phantom and protocol (default: the one with the most recent run) and a period; every
//! scanner, phantom and protocol with runs is listed with a link. Two queries: the choices,
//! then the chosen trend (runs, materials and baselines at once).

use super::auth::{read_access, Reading};
use super::chart::{self, TrendChart, PALETTE};
use super::runs::day_start_ms;
use super::{html, Shared, WebError};
use crate::report::utc_minute_of_ms;
use crate::store::{TrendChoice, TrendQuery};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// The most recent runs (by acquisition) a trend shows; earlier ones by choosing a period.
pub const MAX_RUNS: u32 = 400;

/// The query of `/trends`.
#[derive(Debug, Default, Deserialize)]
pub struct TrendsQuery {
    /// Scanner id (DeviceSerialNumber, else StationName).
    pub scanner: Option<String>,
    pub phantom: Option<String>,
    /// The protocol key.
    pub protocol: Option<String>,
    /// YYYY-MM-DD, acquired (else analysed) on or after.
    pub from: Option<String>,
    /// YYYY-MM-DD, acquired (else analysed) on or before.
    pub to: Option<String>,
}

impl TrendsQuery {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// The choice asked for: the most recent one matching every given field, else matching
    /// the scanner and phantom, else the scanner; no field given: the most recent of all.
    /// `bool`: it matches everything asked.
    fn choose<'c>(&self, choices: &'c [TrendChoice]) -> Option<(&'c TrendChoice, bool)> {
        let (s, p, k) = (
            Self::given(&self.scanner),
            Self::given(&self.phantom),
            Self::given(&self.protocol),
        );
        let fits = |c: &TrendChoice, s: Option<&str>, p: Option<&str>, k: Option<&str>| {
            s.is_none_or(|s| c.key.scanner_id == s)
                && p.is_none_or(|p| c.key.phantom_id == p)
                && k.is_none_or(|k| c.key.protocol_key == k)
        };
        if let Some(c) = choices.iter().find(|c| fits(c, s, p, k)) {
            return Some((c, true));
        }
        choices
            .iter()
            .find(|c| fits(c, s, p, None))
            .or_else(|| choices.iter().find(|c| fits(c, s, None, None)))
            .or_else(|| choices.first())
            .map(|c| (c, false))
    }

    /// The period in unix ms (from, before); a malformed date is a 400 naming it.
    fn period(&self) -> Result<(Option<i64>, Option<i64>), WebError> {
        let day = |key: &str, v: Option<&str>| -> Result<Option<i64>, WebError> {
            v.map(|s| {
                day_start_ms(s)
                    .ok_or_else(|| WebError::BadRequest(format!("{key} {s:?}: use YYYY-MM-DD")))
            })
            .transpose()
        };
        Ok((
            day("from", Self::given(&self.from))?,
            day("to", Self::given(&self.to))?.map(|t| t + 86_400_000),
        ))
    }
}

/// GET /trends
pub async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<TrendsQuery>,
) -> Result<Response, Response> {
    let user = read_access(&state, &headers, &uri, Reading::Page).await?;
    let body = trends_body(&state, &q)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(html::page("Trends", user.as_ref(), body).into_response())
}

async fn trends_body(state: &Shared, q: &TrendsQuery) -> Result<Markup, WebError> {
    let (from_ms, before_ms) = q.period()?;
    let choices = state.store.trend_choices().await?;
    let Some((choice, exact)) = q.choose(&choices) else {
        return Ok(html! {
            h1 { "Trends" }
            p.notice { "No analysed runs yet: a trend appears after the first run of a scanner and phantom." }
        });
    };
    let (trend, more) = state
        .store
        .protocol_trend(&TrendQuery {
            key: choice.key.clone(),
            from_ms,
            before_ms,
            limit: MAX_RUNS,
        })
        .await?;
    let c = TrendChart::of(&trend);
    let k = &choice.key;
    Ok(html! {
        h1 { "Trends" }
        (form(q, &choices, choice))
        @if !exact {
            p.notice { "No runs of exactly that scanner, phantom and protocol: showing the closest with runs." }
        }
        h2 #trend-title {
            (html::text(choice.scanner.as_deref().or(Some(k.scanner_id.as_str())))) " \u{2014} " (k.phantom_id)
            " \u{2014} " (html::text(Some(k.protocol_key.as_str())))
        }
        p.muted {
            (trend.runs.len()) " runs"
            @if more { " (the " (MAX_RUNS) " most recent; choose a period for earlier ones)" }
            @if let (Some(a), Some(b)) = (trend.runs.first(), trend.runs.last()) {
                ", acquired " (utc_minute_of_ms(a.at())[..10]) " to " (utc_minute_of_ms(b.at())[..10])
            }
            ". Placed by acquisition date and time (as the scanner wrote it), not by arrival. "
            "Hover a point for its run; a point opens its run. Square: the baseline run (\u{0394}HU 0); "
            "dashed line: a new baseline."
        }
        @if trend.runs.is_empty() {
            p.notice { "No runs in this period." }
        } @else {
            h2 { "\u{0394}HU per material" }
            p.muted { "\u{0394}HU = HU \u{2212} baseline HU; shaded: \u{00b1} tolerance; red: outside." }
            div.chart-wrap { (chart::dhu_svg(&c)) }
            h2 { "\u{0394}RED %" }
            div.chart-wrap { (chart::dred_svg(&c)) }
            p.legend {
                @for (i, m) in c.materials.iter().enumerate() {
                    span.key style=(format!("color:{}", PALETTE[i % PALETTE.len()])) { "\u{25a0}" }
                    " " (m.name) " "
                }
            }
        }
        h2 { "All trends" }
        (choices_table(&choices))
    })
}

/// The GET form: scanner, phantom, protocol (every value some run has) and a period.
fn form(q: &TrendsQuery, choices: &[TrendChoice], current: &TrendChoice) -> Markup {
    let mut scanners: Vec<(&str, Option<&str>)> = Vec::new();
    let mut phantoms: Vec<&str> = Vec::new();
    let mut protocols: Vec<&str> = Vec::new();
    for c in choices {
        if !scanners.iter().any(|s| s.0 == c.key.scanner_id) {
            scanners.push((&c.key.scanner_id, c.scanner.as_deref()));
        }
        if !phantoms.contains(&c.key.phantom_id.as_str()) {
            phantoms.push(&c.key.phantom_id);
        }
        if !protocols.contains(&c.key.protocol_key.as_str()) {
            protocols.push(&c.key.protocol_key);
        }
    }
    scanners.sort();
    phantoms.sort_unstable();
    protocols.sort_unstable();
    let k = &current.key;
    html! {
        form.filters #trend-form method="get" action="/trends" {
            label { "Scanner" select name="scanner" {
                @for (id, label) in &scanners {
                    option value=(id) selected[*id == k.scanner_id] {
                        @match label { Some(l) if l != id => { (l) " (" (id) ")" } _ => { (id) } }
                    }
                }
            } }
            label { "Phantom" select name="phantom" {
                @for p in &phantoms { option value=(p) selected[*p == k.phantom_id] { (p) } }
            } }
            label { "Protocol" select name="protocol" {
                @for p in &protocols { option value=(p) selected[*p == k.protocol_key] { (html::text(Some(p))) } }
            } }
            label { "From" input type="date" name="from" value=[q.from.as_deref()]; }
            label { "To" input type="date" name="to" value=[q.to.as_deref()]; }
            button type="submit" { "Show" }
        }
    }
}

/// Every scanner, phantom and protocol with runs, the most recent first, each a link.
fn choices_table(choices: &[TrendChoice]) -> Markup {
    html! {
        div.scroll { table #trend-choices {
            thead { tr { th { "Scanner" } th { "Phantom" } th { "Protocol" } th.num { "Runs" } th { "Last acquired" } } }
            tbody {
                @for c in choices {
                    @let k = &c.key;
                    @let href = format!("/trends?scanner={}&phantom={}&protocol={}", html::url_encode(&k.scanner_id), html::url_encode(&k.phantom_id), html::url_encode(&k.protocol_key));
                    tr {
                        td { a href=(href) { (html::text(c.scanner.as_deref().or(Some(k.scanner_id.as_str())))) } }
                        td { (k.phantom_id) }
                        td { (html::text(Some(k.protocol_key.as_str()))) }
                        td.num { (c.runs) }
                        td { (utc_minute_of_ms(c.last_at)) }
                    }
                }
            }
        } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TrendKey;

    fn choice(s: &str, p: &str, k: &str) -> TrendChoice {
        TrendChoice {
            key: TrendKey {
                scanner_id: s.into(),
                phantom_id: p.into(),
                protocol_key: k.into(),
            },
            scanner: Some(format!("label {s}")),
            runs: 3,
            last_at: 0,
        }
    }

    #[test]
    fn the_choice_falls_back_to_the_most_recent() {
        // most recent first, as the store lists them
        let all = [
            choice("SN2", "cirs062", "kvp=120"),
            choice("SN1", "cirs062", "kvp=120"),
            choice("SN1", "cirs062", "kvp=80"),
        ];
        let q = TrendsQuery::default();
        assert_eq!(q.choose(&all), Some((&all[0], true)));
        let q = TrendsQuery {
            scanner: Some("SN1".into()),
            phantom: Some("cirs062".into()),
            protocol: Some("kvp=80".into()),
            ..TrendsQuery::default()
        };
        assert_eq!(q.choose(&all), Some((&all[2], true)));
        // a protocol this scanner never had: its most recent trend, said so
        let q = TrendsQuery {
            scanner: Some("SN1".into()),
            protocol: Some("kvp=140".into()),
            ..TrendsQuery::default()
        };
        assert_eq!(q.choose(&all), Some((&all[1], false)));
        assert_eq!(TrendsQuery::default().choose(&[]), None);
        let bad = TrendsQuery {
            from: Some("March".into()),
            ..TrendsQuery::default()
        };
        assert!(matches!(bad.period(), Err(WebError::BadRequest(_))));
        let q = TrendsQuery {
            from: Some("2026-01-01".into()),
            to: Some("2026-01-31".into()),
            ..TrendsQuery::default()
        };
        let (a, b) = q.period().unwrap();
        assert_eq!(b.unwrap() - a.unwrap(), 31 * 86_400_000);
    }

    #[test]
    fn scanner_names_from_headers_are_escaped() {
        let mut evil = choice("SN<1>", "cirs062", "kvp=120");
        evil.scanner = Some("<script>alert(1)</script>".into());
        let all = [evil, choice("SN2", "cirs062", "kvp=80")];
        let f = form(&TrendsQuery::default(), &all, &all[0]).into_string();
        assert!(f.contains("method=\"get\" action=\"/trends\""), "{f}");
        assert!(
            f.contains("&lt;script&gt;alert(1)&lt;/script&gt; (SN&lt;1&gt;)"),
            "{f}"
        );
        assert!(f.contains("<option value=\"SN&lt;1&gt;\" selected>"), "{f}");
        let t = choices_table(&all).into_string();
        assert!(
            t.contains("/trends?scanner=SN%3C1%3E&amp;phantom=cirs062&amp;protocol=kvp%3D120"),
            "{t}"
        );
        for html in [f, t] {
            assert!(!html.contains("<script"), "{html}");
        }
    }
}
