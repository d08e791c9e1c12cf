//! What the human-readable reports (Markdown and HTML) show, computed once: the headline, the
//! tables of measurements, timeline and sequence check, each cell typed as text or a verdict.
//! The two renderers only lay these out.

use super::{fmt_ms, fmt_utc, BudgetResult, BudgetUnit, DrillReport, Mark};
use crate::drill::verify::SeqRange;

impl DrillReport {
    pub(super) fn route(&self) -> String {
        format!("{} -> {}", self.settings.primary, self.settings.secondary)
    }

    pub(super) fn headline(&self) -> String {
        let s = &self.settings;
        format!(
            "Topic {} at {} records/s for {}; {} was failed after {}. Started {}.",
            s.topic,
            s.rate,
            fmt_ms(s.duration_ms as i64),
            s.primary,
            fmt_ms(s.fail_after_ms as i64),
            fmt_utc(self.times.started_at_ms),
        )
    }

    pub(super) fn budget(&self, name: &str) -> Option<&BudgetResult> {
        self.budgets.iter().find(|b| b.name == name)
    }

    pub(super) fn measure_rows(&self) -> Vec<Vec<Cell>> {
        let opt_ms = |v: Option<i64>| v.map_or_else(|| "not measured".to_string(), fmt_ms);
        let budget_cells = |b: Option<&BudgetResult>| match b {
            None => (Cell::from("none"), Cell::from("-")),
            Some(b) => (
                Cell::from(fmt_amount(b.unit, b.limit)),
                Cell::Verdict(b.passed),
            ),
        };
        let (rto_budget, rto_result) = budget_cells(self.budget("rto"));
        let (rpo_budget, rpo_result) = budget_cells(self.budget("rpo"));
        let mut rows = vec![
            vec![
                format!(
                    "RTO (failure to first record consumed on {})",
                    self.settings.secondary
                )
                .into(),
                opt_ms(self.durations.rto_ms).into(),
                rto_budget,
                rto_result,
            ],
            vec![
                "RPO (records lost)".into(),
                self.rpo_records.to_string().into(),
                rpo_budget,
                rpo_result,
            ],
            vec![
                "RPO (time: failure minus oldest lost record)".into(),
                fmt_ms((self.rpo_seconds * 1000.0).round() as i64).into(),
                "-".into(),
                "-".into(),
            ],
        ];
        if let Some(e) = &self.strait_estimate {
            let (figure, verdict) = match (e.records, self.estimate_error(), self.estimate_check())
            {
                (Some(r), Some(d), Some(check)) => (
                    match e.at_least {
                        Some(lo) if lo < r => format!("{lo} to {r} records ({})", e.source),
                        _ => format!("{r} records ({})", e.source),
                    },
                    match d {
                        0 => "matched".to_string(),
                        d if d > 0 => format!("over by {d}: {}", check.describe()),
                        d => format!("under by {}: {}", -d, check.describe()),
                    },
                ),
                _ => (format!("no estimate ({})", e.source), "-".to_string()),
            };
            rows.push(vec![
                "strait's RPO estimate".into(),
                figure.into(),
                "-".into(),
                verdict.into(),
            ]);
        }
        rows.push(vec![
            "detection (failure to detected)".into(),
            opt_ms(self.durations.detection_ms).into(),
            "-".into(),
            "-".into(),
        ]);
        rows.push(vec![
            "failover (started to done)".into(),
            opt_ms(self.durations.failover_ms).into(),
            "-".into(),
            "-".into(),
        ]);
        rows
    }

    pub(super) fn timeline_rows(&self) -> Vec<Vec<Cell>> {
        let start = self.times.started_at_ms;
        let row = |t: i64, label: &str| {
            vec![
                format!("+{}", fmt_ms(t)).into(),
                fmt_utc(start + t).into(),
                label.into(),
            ]
        };
        let mut marks: Vec<&Mark> = self.marks.iter().collect();
        marks.sort_by_key(|m| m.t_ms);
        let mut rows = vec![row(0, "drill started")];
        rows.extend(marks.iter().map(|m| row(m.t_ms, &m.label)));
        rows.push(row(self.times.finished_at_ms - start, "drill finished"));
        rows
    }

    pub(super) fn sequence_rows(&self) -> Vec<Vec<Cell>> {
        self.sequence_text()
            .into_iter()
            .map(|r| r.into_iter().map(Cell::from).collect())
            .collect()
    }

    pub(super) fn sequence_text(&self) -> Vec<Vec<String>> {
        let s = &self.sequence;
        let (p, q) = (&self.settings.primary, &self.settings.secondary);
        let with_ranges = |n: u64, ranges: &[SeqRange]| {
            if n == 0 {
                "0".to_string()
            } else {
                format!("{n}: {}", fmt_ranges(ranges))
            }
        };
        vec![
            vec!["produced".into(), self.counts.produced.to_string()],
            vec!["acknowledged".into(), self.counts.acked.to_string()],
            vec![
                format!("consumed on {p}"),
                format!("{} deliveries", self.counts.consumed_on_primary),
            ],
            vec![
                format!("consumed on {q}"),
                format!("{} deliveries", self.counts.consumed_on_secondary),
            ],
            vec![
                "lost (acknowledged, never consumed)".into(),
                with_ranges(s.lost_count, &s.lost),
            ],
            vec![
                "lost at the tail (after the last consumed)".into(),
                s.lost_at_tail.to_string(),
            ],
            vec![
                format!("lost although acknowledged by {q}"),
                s.lost_acked_on_secondary.to_string(),
            ],
            vec![
                "gaps between consumed records".into(),
                with_ranges(crate::drill::verify::count(&s.gaps), &s.gaps),
            ],
            vec![
                "redelivered".into(),
                format!(
                    "{} records, {} extra deliveries ({} after the failure){}",
                    s.redelivered_records,
                    s.redeliveries,
                    s.redeliveries_after_failover,
                    if s.redelivered.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", fmt_ranges(&s.redelivered))
                    }
                ),
            ],
            vec![
                "consumed but never acknowledged (acks lost at the cut; legal)".into(),
                with_ranges(s.unacked_consumed_count, &s.unacked_consumed),
            ],
        ]
    }
}

/// A cell of the report's tables: text, or a budget's verdict. A verdict is a type, so that the
/// HTML marks it by what it is (class `pass` or `fail`), never by what a cell happens to say.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Cell {
    Text(String),
    Verdict(bool),
}

impl Cell {
    pub(super) fn text(&self) -> &str {
        match self {
            Cell::Text(s) => s,
            Cell::Verdict(true) => "pass",
            Cell::Verdict(false) => "FAIL",
        }
    }

    /// The CSS class of a verdict.
    pub(super) fn class(&self) -> Option<&'static str> {
        match self {
            Cell::Text(_) => None,
            Cell::Verdict(true) => Some("pass"),
            Cell::Verdict(false) => Some("fail"),
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// At most this many ranges are listed in the Markdown and HTML (JSON has them all).
const MAX_RANGES_SHOWN: usize = 10;

pub(super) fn fmt_ranges(ranges: &[SeqRange]) -> String {
    let mut s: Vec<String> = ranges
        .iter()
        .take(MAX_RANGES_SHOWN)
        .map(ToString::to_string)
        .collect();
    if ranges.len() > MAX_RANGES_SHOWN {
        s.push(format!(
            "and {} more ranges",
            ranges.len() - MAX_RANGES_SHOWN
        ));
    }
    s.join(", ")
}

pub(super) fn fmt_amount(unit: BudgetUnit, v: u64) -> String {
    match unit {
        BudgetUnit::Milliseconds => fmt_ms(v as i64),
        BudgetUnit::Records => format!("{v} records"),
    }
}
