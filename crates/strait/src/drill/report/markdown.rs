//! The report as Markdown: a summary to paste into a DR-test or incident ticket.

use std::fmt::Write as _;

use super::sections::{one_line, Cell};
use super::DrillReport;

impl DrillReport {
    /// A summary to paste into a ticket: verdict, RTO and RPO against budgets, timeline of marks,
    /// sequence check, notes.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# DR drill {}: {}\n", self.verdict(), self.route());
        for f in &self.failures {
            let _ = writeln!(md, "- {}", one_line(f));
        }
        if !self.failures.is_empty() {
            md.push('\n');
        }
        let _ = writeln!(md, "{}\n", self.headline());

        md_table(
            &mut md,
            &["measure", "measured", "budget", "result"],
            &self.measure_rows(),
        );
        md.push_str("\n## Timeline\n\n");
        md_table(
            &mut md,
            &["t", "time (UTC)", "event"],
            &self.timeline_rows(),
        );
        md.push_str("\n## Sequence check\n\n");
        md_table(&mut md, &["check", "result"], &self.sequence_rows());
        if !self.notes.is_empty() {
            md.push_str("\n## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {}", one_line(n));
            }
        }
        md
    }
}

fn md_cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

fn md_table(md: &mut String, head: &[&str], rows: &[Vec<Cell>]) {
    let _ = writeln!(md, "| {} |", head.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(head.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c.text())).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
}
