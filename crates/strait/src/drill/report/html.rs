//! The report as one self-contained HTML page (no scripts, no network), with the timeline
//! chart from [`super::chart`].

use std::fmt::Write as _;

use super::sections::Cell;
use super::DrillReport;

impl DrillReport {
    /// The report as one self-contained HTML page: a timeline chart (inline SVG) and the same
    /// tables as the Markdown.
    pub fn to_html(&self) -> String {
        let mut body = String::new();
        if !self.failures.is_empty() {
            body.push_str("<ul class=\"failures\">\n");
            for f in &self.failures {
                let _ = writeln!(body, "<li>{}</li>", esc(f));
            }
            body.push_str("</ul>\n");
        }
        let _ = writeln!(body, "<p>{}</p>", esc(&self.headline()));
        html_table(
            &mut body,
            &["measure", "measured", "budget", "result"],
            &self.measure_rows(),
        );
        body.push_str("<h2>Timeline</h2>\n");
        body.push_str(&self.svg_chart());
        html_table(
            &mut body,
            &["t", "time (UTC)", "event"],
            &self.timeline_rows(),
        );
        body.push_str("<h2>Sequence check</h2>\n");
        html_table(&mut body, &["check", "result"], &self.sequence_rows());
        if !self.notes.is_empty() {
            body.push_str("<h2>Notes</h2>\n<ul>\n");
            for n in &self.notes {
                let _ = writeln!(body, "<li>{}</li>", esc(n));
            }
            body.push_str("</ul>\n");
        }
        fill(
            include_str!("report.html"),
            &[
                (
                    "title",
                    esc(&format!("DR drill {}: {}", self.verdict(), self.route())),
                ),
                ("verdict", self.verdict().to_string()),
                (
                    "verdict_class",
                    if self.passed { "pass" } else { "fail" }.to_string(),
                ),
                ("route", esc(&self.route())),
                ("body", body),
            ],
        )
    }
}

/// Escapes text for HTML element content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Substitutes `{{name}}` placeholders in one pass over the template, so substituted text is
/// never scanned again (a topic named `{{body}}` stays a topic name).
pub(super) fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}").and_then(|j| {
            let name = &after[..j];
            values.iter().find(|(k, _)| *k == name).map(|(_, v)| (v, j))
        }) {
            Some((v, j)) => {
                out.push_str(v);
                rest = &after[j + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn html_table(out: &mut String, head: &[&str], rows: &[Vec<Cell>]) {
    out.push_str("<table>\n<thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let class = c
                .class()
                .map_or_else(String::new, |k| format!(" class=\"{k}\""));
            let _ = write!(out, "<td{class}>{}</td>", esc(c.text()));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}
