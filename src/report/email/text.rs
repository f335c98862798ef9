//! The plain-text body: for a monospace client, lines wrapped at word boundaries to
//! `TEXT_WIDTH` (96) characters, the materials table in aligned columns with failures marked `!!`,
//! sections underlined.

use super::model::{Body, Level, Model, Section, Table};

/// Longest text line aimed at (wrapped at word boundaries where possible).
const TEXT_WIDTH: usize = 96;

/// The plain-text body: verdict, context, notices, table, sections, footer.
pub(super) fn render(m: &Model) -> String {
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    for l in wrap(&m.verdict, TEXT_WIDTH) {
        line(&l);
    }
    line(&"=".repeat(m.verdict.chars().count().min(TEXT_WIDTH)));
    for l in wrap(&m.context, TEXT_WIDTH) {
        line(&l);
    }
    if !m.notices.is_empty() {
        line("");
        for n in &m.notices {
            let mark = match n.level {
                Level::Warn => "!! ",
                Level::Info => "-- ",
            };
            for (i, l) in wrap(&n.text, TEXT_WIDTH - 3).into_iter().enumerate() {
                line(&format!("{}{l}", if i == 0 { mark } else { "   " }));
            }
        }
    }
    // ERROR reports lead with what went wrong; the others with the table
    let (above, below) = m.sections_above_and_below();
    for s in above {
        text_section(&mut line, s);
    }
    if let Some(t) = &m.table {
        line("");
        line("Materials");
        line("---------");
        text_table(&mut line, t);
    }
    if let Some(p) = &m.pearson {
        line("");
        line(p);
    }
    for s in below {
        text_section(&mut line, s);
    }
    line("");
    line("How to re-run or re-baseline");
    line("----------------------------");
    for (what, cmd) in &m.footer {
        for l in wrap(&format!("{what}:"), TEXT_WIDTH) {
            line(&l);
        }
        line(&format!("    {cmd}"));
    }
    line("");
    line(&m.generated_by);
    out
}

fn text_section(line: &mut impl FnMut(&str), s: &Section) {
    line("");
    line(s.title);
    line(&"-".repeat(s.title.chars().count()));
    match &s.body {
        Body::Fields(fields) => {
            let w = fields
                .iter()
                .map(|(k, _)| k.chars().count() + 1)
                .max()
                .unwrap_or(0);
            for (k, v) in fields {
                let key = pad(&format!("{k}:"), w, false);
                let indent = " ".repeat(w + 1);
                let width = TEXT_WIDTH.saturating_sub(w + 1).max(40);
                for (i, l) in wrap(v, width).into_iter().enumerate() {
                    if i == 0 {
                        line(&format!("{key} {l}"));
                    } else {
                        line(&format!("{indent}{l}"));
                    }
                }
            }
        }
        Body::Bullets(items) => {
            for item in items {
                for (i, l) in wrap(item, TEXT_WIDTH - 2).into_iter().enumerate() {
                    line(&format!("{}{l}", if i == 0 { "- " } else { "  " }));
                }
            }
        }
        Body::Paragraphs(ps) => {
            for p in ps {
                for l in wrap(p, TEXT_WIDTH) {
                    line(&l);
                }
            }
        }
    }
}

fn text_table(line: &mut impl FnMut(&str), t: &Table) {
    let mut widths: Vec<usize> = t.header.iter().map(|h| h.chars().count()).collect();
    for (_, cells) in &t.rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |mark: &str, cells: &[String]| -> String {
        let mut s = String::from(mark);
        for (i, w) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&pad(cell, *w, t.right.get(i).copied().unwrap_or(false)));
        }
        s.trim_end().to_string()
    };
    let header: Vec<String> = t.header.iter().map(|h| h.to_string()).collect();
    line(&fmt_row("   ", &header));
    if t.rows.is_empty() {
        line("   (no material was measured)");
        return;
    }
    for (fails, cells) in &t.rows {
        line(&fmt_row(if *fails { "!! " } else { "   " }, cells));
    }
    if t.rows.iter().any(|(f, _)| *f) {
        for (i, l) in wrap(&format!("!! = failure. {}", t.legend), TEXT_WIDTH)
            .into_iter()
            .enumerate()
        {
            line(&if i == 0 { l } else { format!("   {l}") });
        }
    }
}

/// Greedy word wrap to `width` characters (a longer word stays whole on its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Pad to `w` characters (by char count, so "Δ", "±" and "–" line up).
fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(s.chars().count()));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::email::tests::{baseline, constancy, data, measurement, summary, MATERIALS};
    use crate::report::email::{render, ReportKind};

    #[test]
    fn wrap_breaks_at_word_boundaries() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("", 4), [""]);
    }

    #[test]
    fn long_values_are_wrapped_in_the_text_part() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let mut s = summary(&m, &ev);
        s.warnings = vec!["word ".repeat(60)];
        let r = render(&data(&s, ReportKind::Fail, Some(baseline())));
        for l in r.text.lines() {
            assert!(l.chars().count() <= 100, "{l}");
        }
        assert_eq!(r.text.matches("word").count(), 60);
    }
}
