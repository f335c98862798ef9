//! The page shell (navigation, the one inline style sheet: screen, phone, print) and the small
//! pieces every page shows: times, verdicts, numbers, the CSRF field.

use super::auth::SessionUser;
use crate::report::{utc_minute_of_ms, utc_timestamp_of_ms};
use crate::store::{RunIdentity, Verdict};
use axum::http::StatusCode;
use maud::{html, Markup, PreEscaped, DOCTYPE};

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:Arial,Helvetica,sans-serif;font-size:15px;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;gap:8px 20px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:bold}
header .who{margin-left:auto;font-size:13px}
header form{display:inline}
main{padding:12px 16px;max-width:1200px}
h1{font-size:22px;margin:8px 0 12px}
h2{font-size:18px;margin:20px 0 8px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fde0e0;color:#8b0000;font-weight:bold}
.badge{display:inline-block;padding:2px 8px;border-radius:3px;font-weight:bold;font-size:13px}
.PASS{background:#2e7d32;color:#fff}.FAIL{background:#c62828;color:#fff}
.NONE{background:#1f5f99;color:#fff}.ERROR{background:#f0a000;color:#222}
.notice{background:#fff3cd;border-left:6px solid #e0a000;padding:8px 12px;margin:8px 0}
.ok{background:#e6f4ea;border-left:6px solid #2e7d32;padding:8px 12px;margin:8px 0}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:12px}
form.filters label{display:flex;flex-direction:column;font-size:13px}
input,select,button{font-size:15px;padding:4px 6px}
button{cursor:pointer}
img.result{max-width:100%;height:auto;border:1px solid #ccc;background:#fff}
.muted{color:#666;font-size:13px}
svg{max-width:100%;height:auto;background:#fff;border:1px solid #ccc}
.chart-wrap{overflow-x:auto;margin-bottom:8px}
.chart-wrap svg{min-width:560px;display:block}
.chart text{font-size:12px;fill:#333}
.chart .ptitle{font-weight:bold;font-size:13px}
.chart .ylabel{text-anchor:end;font-size:11px}
.chart .xlabel{text-anchor:middle}
.chart .plot{fill:#fff;stroke:#bbb}
.chart .grid{stroke:#eee}
.chart .zero{stroke:#777}
.chart .band{fill:#d6efd6;stroke:#7cb87c}
.chart .line{fill:none;stroke:#999;stroke-width:1}
.chart .pt{fill:#1f5fbf}
.chart .pt.out{fill:#d32f2f}
.trend-dred .line{stroke:var(--c);stroke-width:1.5}
.trend-dred .pt{fill:var(--c)}
.chart .baseline-point{fill:#fff;stroke:#e07b00;stroke-width:2}
.chart .baseline-change{stroke:#e07b00;stroke-width:2;stroke-dasharray:6 4}
.chart .axis-break{stroke:#999;stroke-dasharray:2 4}
.legend .key{font-size:18px}
@media (max-width:600px){body{font-size:14px}main{padding:8px}th,td{padding:3px 5px}.chart text,.chart .ptitle{font-size:20px}.chart .ylabel{font-size:17px}}
@media print{header,form,.noprint{display:none}body{background:#fff}main{max-width:none}.chart-wrap{overflow:visible}.chart-wrap svg{min-width:0}svg{break-inside:avoid;border:none}h2{break-after:avoid}}
"#;

/// A whole page: the navigation, who is logged in, `body`.
pub fn page(title: &str, user: Option<&SessionUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — hu-red" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { "hu-red" }
                    a href="/" { "Runs" }
                    a href="/trends" { "Trends" }
                    a href="/baselines" { "Baselines" }
                    a href="/series" { "Series" }
                    span.who {
                        @if let Some(u) = user {
                            (u.name) " (" (u.role) ") "
                            form method="post" action="/logout" {
                                (csrf_field(&u.csrf))
                                button type="submit" { "Log out" }
                            }
                        } @else {
                            a href="/login" { "Log in" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// An error page.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p { (message) }
            p { a href="/" { "Back to the runs" } }
        },
    )
}

/// Unix ms as `YYYY-MM-DD HH:MM UTC`.
pub fn when(ms: i64) -> String {
    let t = utc_timestamp_of_ms(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

/// When a run's series was acquired: `YYYY-MM-DD HH:MM` as the scanner wrote it (no zone),
/// else its study date, else an em dash.
pub fn acquired(id: &RunIdentity) -> String {
    match id.acquired_at {
        Some(ms) => utc_minute_of_ms(ms),
        None => text(id.study_date.as_deref()).to_string(),
    }
}

/// The verdict as a coloured badge (its label as the reports say it).
pub fn verdict(v: Verdict) -> Markup {
    html! { span class=(format!("badge {}", v.as_str())) { (v.label()) } }
}

/// A number with `decimals`, or an em dash.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "\u{2014}".to_string(),
    }
}

/// A signed number with `decimals`, or an em dash.
pub fn signed(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:+.decimals$}"),
        _ => "\u{2014}".to_string(),
    }
}

/// Text or an em dash.
pub fn text(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("\u{2014}")
}

/// Percent-encode `v` for a URL's path segment or query value ('/' kept: it means nothing
/// special there, and `next=/runs/3` stays readable).
pub fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_encoded() {
        assert_eq!(super::url_encode("/?a=b c"), "/%3Fa%3Db%20c");
        assert_eq!(super::url_encode("kvp=120|k"), "kvp%3D120%7Ck");
        assert_eq!(super::url_encode("é"), "%C3%A9");
    }
}
