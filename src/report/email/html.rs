//! The HTML body: a complete, XML-well-formed document with inline styles, no links, no
//! external resources; the verdict in a coloured banner, notices highlighted, failing rows of
//! the materials table marked. Every value is escaped.

use super::model::{Body, Level, Model, Section, Table};
use super::ReportKind;

/// The body's font.
const FONT_CSS: &str = "font-family:Arial,Helvetica,sans-serif";
/// The style of a failing row of the materials table.
pub(super) const FAIL_ROW_CSS: &str = "background:#fde0e0;color:#8b0000;font-weight:bold";
/// A table cell.
const CELL_CSS: &str = "padding:4px 8px;border-bottom:1px solid #dddddd";

/// The HTML body: one complete, XML-well-formed document.
pub(super) fn render(m: &Model) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"/>");
    h.push_str(&format!("<title>{}</title>", esc(&m.subject)));
    h.push_str(
        "<style>table{border-collapse:collapse}td,th{padding:4px 8px}\
         code{font-family:Consolas,Menlo,monospace}</style></head>\n",
    );
    h.push_str(&format!(
        "<body style=\"margin:0;padding:16px;{FONT_CSS};font-size:14px;color:#222222;\
         background:#ffffff\">\n<div style=\"max-width:960px\">\n"
    ));
    let (bg, fg) = match m.kind {
        ReportKind::Pass => ("#2e7d32", "#ffffff"),
        ReportKind::Fail => ("#c62828", "#ffffff"),
        ReportKind::NoBaseline => ("#1f5f99", "#ffffff"),
        ReportKind::Error => ("#f0a000", "#222222"),
    };
    h.push_str(&format!(
        "<div style=\"background:{bg};color:{fg};padding:12px 16px;font-size:18px;\
         font-weight:bold;border-radius:4px\">{}</div>\n",
        esc(&m.verdict)
    ));
    h.push_str(&format!(
        "<p style=\"color:#555555;margin:6px 0 12px 0\">{}</p>\n",
        esc(&m.context)
    ));
    for n in &m.notices {
        let style = match n.level {
            Level::Warn => {
                "background:#fff3cd;border-left:6px solid #e0a000;padding:8px 12px;\
                 margin:8px 0;font-weight:bold"
            }
            Level::Info => {
                "background:#e8f0fe;border-left:6px solid #4a78c2;padding:8px 12px;margin:8px 0"
            }
        };
        h.push_str(&format!("<p style=\"{style}\">{}</p>\n", esc(&n.text)));
    }
    let (above, below) = m.sections_above_and_below();
    for s in above {
        html_section(&mut h, s);
    }
    if let Some(t) = &m.table {
        h.push_str(&heading("Materials"));
        html_table(&mut h, t);
    }
    if let Some(p) = &m.pearson {
        h.push_str(&format!("<p>{}</p>\n", esc(p)));
    }
    for s in below {
        html_section(&mut h, s);
    }
    h.push_str(&heading("How to re-run or re-baseline"));
    h.push_str("<ul style=\"margin:4px 0;padding-left:20px\">\n");
    for (what, cmd) in &m.footer {
        h.push_str(&format!(
            "<li>{}: <code style=\"background:#f2f2f2;padding:1px 4px\">{}</code></li>\n",
            esc(what),
            esc(cmd)
        ));
    }
    h.push_str("</ul>\n");
    h.push_str(&format!(
        "<p style=\"color:#777777;font-size:12px;margin-top:16px\">{}</p>\n",
        esc(&m.generated_by)
    ));
    h.push_str("</div>\n</body>\n</html>\n");
    h
}

fn heading(title: &str) -> String {
    format!(
        "<h2 style=\"font-size:16px;margin:20px 0 6px 0;border-bottom:1px solid #cccccc\">{}</h2>\n",
        esc(title)
    )
}

fn html_section(h: &mut String, s: &Section) {
    h.push_str(&heading(s.title));
    match &s.body {
        Body::Fields(fields) => {
            h.push_str("<table style=\"border-collapse:collapse\">\n");
            for (k, v) in fields {
                h.push_str(&format!(
                    "<tr><td style=\"padding:2px 12px 2px 0;color:#555555;vertical-align:top;\
                     white-space:nowrap\">{}</td><td style=\"padding:2px 0\">{}</td></tr>\n",
                    esc(k),
                    esc(v)
                ));
            }
            h.push_str("</table>\n");
        }
        Body::Bullets(items) => {
            h.push_str("<ul style=\"margin:4px 0;padding-left:20px\">\n");
            for item in items {
                h.push_str(&format!("<li>{}</li>\n", esc(item)));
            }
            h.push_str("</ul>\n");
        }
        Body::Paragraphs(ps) => {
            for p in ps {
                h.push_str(&format!("<p style=\"margin:4px 0\">{}</p>\n", esc(p)));
            }
        }
    }
}

fn html_table(h: &mut String, t: &Table) {
    h.push_str("<table style=\"border-collapse:collapse;font-size:13px\">\n<thead><tr>");
    for (i, head) in t.header.iter().enumerate() {
        let align = if t.right.get(i).copied().unwrap_or(false) {
            "right"
        } else {
            "left"
        };
        h.push_str(&format!(
            "<th style=\"{CELL_CSS};text-align:{align};background:#f2f2f2\">{}</th>",
            esc(head)
        ));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    if t.rows.is_empty() {
        h.push_str(&format!(
            "<tr><td style=\"{CELL_CSS}\" colspan=\"{}\">no material was measured</td></tr>\n",
            t.header.len()
        ));
    }
    for (fails, cells) in &t.rows {
        if *fails {
            h.push_str(&format!("<tr style=\"{FAIL_ROW_CSS}\">"));
        } else {
            h.push_str("<tr>");
        }
        for (i, cell) in cells.iter().enumerate() {
            let align = if t.right.get(i).copied().unwrap_or(false) {
                "right"
            } else {
                "left"
            };
            h.push_str(&format!(
                "<td style=\"{CELL_CSS};text-align:{align};white-space:nowrap\">{}</td>",
                esc(cell)
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    if t.rows.iter().any(|(f, _)| *f) {
        h.push_str(&format!(
            "<p style=\"font-size:12px;color:#555555;margin:4px 0\">{}</p>\n",
            esc(&t.legend)
        ));
    }
}

/// Escape text for HTML element content and quoted attribute values; control characters
/// (which XML forbids) become spaces.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::email::render;
    use crate::report::email::tests::{
        assert_clean, baseline, constancy, data, measurement, summary, MATERIALS,
    };

    #[test]
    fn html_escapes_and_text_keeps_raw_values() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let mut d = data(&s, ReportKind::Fail, Some(baseline()));
        d.scanner.label = "CT <1> & \"A\"".into();
        d.protocol = "it's <b>bold</b>".into();
        d.attachments.push("x</li><script>y</script>".into());
        let r = render(&d);
        assert_clean(&r);
        assert!(
            r.html.contains("CT &lt;1&gt; &amp; &quot;A&quot;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("CT <1>") && !r.html.contains("<script>"));
        assert!(r.html.contains("it&#39;s &lt;b&gt;bold&lt;/b&gt;"));
        assert!(!r.html.contains("<b>"));
        assert!(r.text.contains("CT <1> & \"A\""));
        assert!(r.text.contains("it's <b>bold</b>"));
        assert!(r.subject.contains("CT <1> & \"A\""));
        assert_eq!(esc("&<>\"'\u{7}x"), "&amp;&lt;&gt;&quot;&#39; x");
    }
}
