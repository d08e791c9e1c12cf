//! The drill report: what was measured, whether it met the budgets, and the evidence, as JSON
//! (for machines and later comparison), Markdown (to paste into a DR-test or incident ticket) and
//! one self-contained HTML file with a timeline chart (no scripts, no network: it has to open on
//! the machine the drill ran on and as a ticket attachment).
//!
//! The orchestrator fills in [`DrillSettings`], [`DrillTimes`] and the [`Verification`], calls
//! [`DrillReport::new`], then adds the timeline samples, strait's own RPO estimate and notes, and
//! calls [`DrillReport::write`]. Everything derived (durations, marks, budgets, verdict) is
//! computed here so that every report judges the same way.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::verify::Verification;

mod chart;
mod html;
mod markdown;
mod sections;

use sections::fmt_amount;

/// What the drill was asked to do; budgets are the pass/fail criteria.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillSettings {
    /// The region that was failed.
    pub primary: String,
    /// The region that took over.
    pub secondary: String,
    /// The drill topic on the primary (its copies on the secondary are named by the flow's
    /// replication policy: `<primary>.<topic>` with the default one).
    pub topic: String,
    /// Records per second the drill producer was asked to write.
    pub rate: u64,
    /// How long the drill was asked to run (`--duration`), from the first record.
    pub duration_ms: u64,
    /// Time from the start to failing the primary.
    pub fail_after_ms: u64,
    /// The most records the drill may lose and still pass.
    pub rpo_budget_records: Option<u64>,
    /// The longest outage (failure to first record consumed on the secondary) that passes.
    pub rto_budget_ms: Option<u64>,
}

/// When things happened, in ms since the epoch. `None` for a step the drill never reached: the
/// report is still written, and says what is missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillTimes {
    /// When the drill producer started: the zero of every `t_ms` on the timeline.
    pub started_at_ms: i64,
    /// When the primary was cut off.
    pub failure_at_ms: Option<i64>,
    /// When the drill saw the primary was gone (heartbeats stale; in a simulated drill, the
    /// copies stopped growing).
    pub detected_at_ms: Option<i64>,
    /// When the drill started the unplanned failover.
    pub failover_started_at_ms: Option<i64>,
    /// When the failover returned successfully; `None` when it failed or never started.
    pub failover_done_at_ms: Option<i64>,
    /// The first record the consumer received on the secondary after the failure.
    /// [`DrillReport::new`] takes it from the verification when left `None`.
    pub first_consumed_on_secondary_at_ms: Option<i64>,
    /// When the drill's producer and consumer had stopped and the last sample was taken.
    pub finished_at_ms: i64,
}

/// Durations derived from [`DrillTimes`] (ms). `None` when a step is missing; negative values
/// are kept as measured, since they can only come from a clock or orchestration bug worth seeing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillDurations {
    /// Failure to detection.
    pub detection_ms: Option<i64>,
    /// Failover start to failover done.
    pub failover_ms: Option<i64>,
    /// Failure to the first record consumed on the secondary: the outage applications saw.
    pub rto_ms: Option<i64>,
}

/// What strait itself predicted it would lose, from its failover report, so the drill shows
/// whether strait's figure can be trusted in a real incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpoEstimate {
    /// `None` when strait could not estimate. An upper bound when `at_least` is set.
    pub records: Option<u64>,
    /// The records strait knew for certain were lost (its lower bound), when it gave one.
    #[serde(default)]
    pub at_least: Option<u64>,
    /// Where the figure came from, e.g. "lag snapshot of us-east->us-west taken 1.4 s before the
    /// failure".
    pub source: String,
}

/// How strait's RPO estimate compares with the loss the drill measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EstimateCheck {
    /// The measured loss is within the estimate's bounds, and the upper bound is at most twice
    /// the loss: a figure to act on.
    #[serde(rename = "within-2x")]
    Within2x,
    /// The upper bound is more than twice the measured loss: safe, but too cautious to act on.
    #[serde(rename = "over-2x")]
    Over2x,
    /// strait promised less loss than happened (its upper bound below the loss, or its lower
    /// bound above it): the dangerous direction.
    #[serde(rename = "under")]
    Under,
}

impl EstimateCheck {
    /// Judge an estimate (`records`, with its lower bound `at_least` if any) against the
    /// `measured` loss.
    pub fn of(measured: u64, records: u64, at_least: Option<u64>) -> Self {
        if records < measured || at_least.is_some_and(|lo| lo > measured) {
            EstimateCheck::Under
        } else if records > measured.saturating_mul(2) {
            EstimateCheck::Over2x
        } else {
            EstimateCheck::Within2x
        }
    }

    /// For the report's tables and the command's summary.
    pub fn describe(self) -> &'static str {
        match self {
            EstimateCheck::Within2x => "within 2x of the loss",
            EstimateCheck::Over2x => "MORE THAN 2x the loss",
            EstimateCheck::Under => "UNDER the loss",
        }
    }
}

/// Record counts of the drill topic. Consumed counts are deliveries, duplicates included.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillCounts {
    /// Records the producer tried to write (acknowledged or not).
    pub produced: u64,
    /// Distinct records acknowledged to the producer, by either region.
    pub acked: u64,
    /// Deliveries to the drill consumer while it read the primary.
    pub consumed_on_primary: u64,
    /// Deliveries to the drill consumer after it moved to the secondary.
    pub consumed_on_secondary: u64,
}

/// One point of the timeline chart, taken every ~500 ms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Since the drill started.
    pub t_ms: i64,
    /// Records acknowledged to the producer so far, both regions together.
    pub acked_total: u64,
    /// Deliveries to the consumer so far, duplicates included.
    pub consumed_total: u64,
    /// Records the secondary lacks; `None` while it cannot be measured (the primary is down).
    pub replication_lag_records: Option<i64>,
    /// Acknowledged records per second over the last interval.
    pub produce_rate: f64,
}

/// What a mark on the timeline stands for; lets the chart colour marks and tools find them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// The primary was failed.
    Failure,
    /// The failure showed the way monitoring sees it.
    Detected,
    /// The drill started the failover.
    FailoverStarted,
    /// The failover finished without error.
    FailoverDone,
    /// The consumer received its first record on the secondary after the failure.
    FirstConsumedOnSecondary,
    /// Any other moment the orchestrator wants on the chart; its label says what.
    Other,
}

/// A moment on the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Since the drill started.
    pub t_ms: i64,
    /// What happened then, for colouring and for tools.
    pub kind: MarkKind,
    /// What happened then, in words (e.g. "us-east failed"), as the chart shows it.
    pub label: String,
}

/// What a budget limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    /// A time: the RTO budget.
    Milliseconds,
    /// A count of lost records: the RPO budget.
    Records,
}

/// One budget checked against what was measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetResult {
    /// "rto" or "rpo".
    pub name: String,
    /// What `limit` and `measured` count.
    pub unit: BudgetUnit,
    /// The budget as set (`--rto-budget` or `--rpo-budget`); at most this much passes.
    pub limit: u64,
    /// `None` when nothing could be measured, which fails the budget.
    pub measured: Option<u64>,
    /// The measurement was at most the limit.
    pub passed: bool,
    /// Why it failed, in a sentence; `None` when it passed.
    pub reason: Option<String>,
}

/// Checks the budgets that were set (an unset budget is not checked). A budget passes when the
/// measurement is at most the limit; a missing or impossible measurement fails it, since a drill
/// that could not show recovery has not shown it within any budget.
pub fn budgets(
    settings: &DrillSettings,
    times: &DrillTimes,
    rpo_records: u64,
) -> Vec<BudgetResult> {
    let mut out = Vec::new();
    if let Some(limit) = settings.rto_budget_ms {
        let (measured, missing) =
            match (times.failure_at_ms, times.first_consumed_on_secondary_at_ms) {
                (None, _) => (
                    None,
                    Some(format!(
                        "not measured: {} was never failed",
                        settings.primary
                    )),
                ),
                (Some(_), None) => (
                    None,
                    Some(format!(
                        "not measured: no record was consumed on {} after the failure",
                        settings.secondary
                    )),
                ),
                (Some(f), Some(c)) => match u64::try_from(c - f) {
                    Ok(rto) => (Some(rto), None),
                    Err(_) => (
                        None,
                        Some(format!(
                            "not measured: the first record on {} is stamped {} before the failure",
                            settings.secondary,
                            fmt_ms(f - c)
                        )),
                    ),
                },
            };
        out.push(judge(
            "rto",
            BudgetUnit::Milliseconds,
            limit,
            measured,
            missing,
        ));
    }
    if let Some(limit) = settings.rpo_budget_records {
        out.push(judge(
            "rpo",
            BudgetUnit::Records,
            limit,
            Some(rpo_records),
            None,
        ));
    }
    out
}

fn judge(
    name: &str,
    unit: BudgetUnit,
    limit: u64,
    measured: Option<u64>,
    missing: Option<String>,
) -> BudgetResult {
    let (passed, reason) = match measured {
        None => (false, missing.or_else(|| Some("not measured".to_string()))),
        Some(m) if m <= limit => (true, None),
        Some(m) => (
            false,
            Some(format!(
                "{} is over the budget of {}",
                fmt_amount(unit, m),
                fmt_amount(unit, limit)
            )),
        ),
    };
    BudgetResult {
        name: name.to_string(),
        unit,
        limit,
        measured,
        passed,
        reason,
    }
}

impl DrillTimes {
    /// Durations between the steps that were reached.
    pub fn durations(&self) -> DrillDurations {
        let between = |a: Option<i64>, b: Option<i64>| Some(b? - a?);
        DrillDurations {
            detection_ms: between(self.failure_at_ms, self.detected_at_ms),
            failover_ms: between(self.failover_started_at_ms, self.failover_done_at_ms),
            rto_ms: between(self.failure_at_ms, self.first_consumed_on_secondary_at_ms),
        }
    }

    /// The standard marks (failure, detection, failover done, first record on the secondary),
    /// relative to the start, for the steps that were reached.
    pub fn marks(&self, primary: &str, secondary: &str) -> Vec<Mark> {
        let steps = [
            (
                self.failure_at_ms,
                MarkKind::Failure,
                format!("{primary} failed"),
            ),
            (
                self.detected_at_ms,
                MarkKind::Detected,
                "failure detected".to_string(),
            ),
            (
                self.failover_done_at_ms,
                MarkKind::FailoverDone,
                "failover done".to_string(),
            ),
            (
                self.first_consumed_on_secondary_at_ms,
                MarkKind::FirstConsumedOnSecondary,
                format!("first record consumed on {secondary}"),
            ),
        ];
        steps
            .into_iter()
            .filter_map(|(at, kind, label)| {
                at.map(|at| Mark {
                    t_ms: at - self.started_at_ms,
                    kind,
                    label,
                })
            })
            .collect()
    }
}

/// The whole drill, judged. Fields are public so the orchestrator can add what it has; after
/// changing settings, times or the verification, call [`DrillReport::evaluate`] again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// What the drill was asked to do, budgets included.
    pub settings: DrillSettings,
    /// When each step happened.
    pub times: DrillTimes,
    /// Detection, failover and RTO, derived from `times`.
    pub durations: DrillDurations,
    /// Records lost (from the sequence check).
    pub rpo_records: u64,
    /// How far back before the failure data was lost, in seconds (see [`Verification::rpo_ms`]).
    pub rpo_seconds: f64,
    /// strait's own prediction, to compare with `rpo_records`.
    pub strait_estimate: Option<RpoEstimate>,
    /// `strait_estimate` against the measured loss (see [`DrillReport::estimate_check`]).
    #[serde(default)]
    pub strait_estimate_check: Option<EstimateCheck>,
    /// The sequence check in full.
    pub sequence: Verification,
    /// Records produced, acknowledged and consumed on each side.
    pub counts: DrillCounts,
    /// The chart's samples, oldest first.
    pub timeline: Vec<Sample>,
    /// The moments on the chart, in time order.
    pub marks: Vec<Mark>,
    /// One result per budget that was set; empty when none was.
    pub budgets: Vec<BudgetResult>,
    /// Every budget passed, the primary was failed, consumption resumed on the secondary and
    /// nothing written after the failover was lost.
    pub passed: bool,
    /// Why the drill failed, one sentence each; empty when it passed.
    pub failures: Vec<String>,
    /// How the drill was run, in words (e.g. "us-east was failed through the sandbox fault proxy").
    pub notes: Vec<String>,
}

impl DrillReport {
    /// A judged report with no timeline, estimate or notes yet. `produced` is the number of
    /// records the producer tried to write, which only the orchestrator knows.
    pub fn new(
        settings: DrillSettings,
        mut times: DrillTimes,
        produced: u64,
        sequence: Verification,
    ) -> Self {
        if times.first_consumed_on_secondary_at_ms.is_none() {
            times.first_consumed_on_secondary_at_ms =
                sequence.first_on_secondary.map(|f| f.received_at_ms);
        }
        let marks = times.marks(&settings.primary, &settings.secondary);
        let mut report = DrillReport {
            settings,
            times,
            durations: DrillDurations::default(),
            rpo_records: 0,
            rpo_seconds: 0.0,
            strait_estimate: None,
            strait_estimate_check: None,
            sequence,
            counts: DrillCounts {
                produced,
                ..DrillCounts::default()
            },
            timeline: Vec::new(),
            marks,
            budgets: Vec::new(),
            passed: false,
            failures: Vec::new(),
            notes: Vec::new(),
        };
        report.evaluate();
        report
    }

    /// Recomputes everything derived from settings, times and the verification: durations, RPO,
    /// counts (except `produced`), budgets, `passed` and `failures`. Leaves marks alone, so that
    /// marks the orchestrator added survive.
    pub fn evaluate(&mut self) {
        let s = &self.sequence;
        self.durations = self.times.durations();
        self.rpo_records = s.rpo_records;
        self.rpo_seconds = s.rpo_ms as f64 / 1000.0;
        self.counts.acked = s.acked;
        self.counts.consumed_on_primary = s.consumed_on_primary;
        self.counts.consumed_on_secondary = s.consumed_on_secondary;
        self.budgets = budgets(&self.settings, &self.times, self.rpo_records);

        let mut failures = Vec::new();
        if self.times.failure_at_ms.is_none() {
            failures.push(format!("{} was never failed", self.settings.primary));
        } else if self.times.first_consumed_on_secondary_at_ms.is_none() {
            failures.push(format!(
                "consumption never resumed on {} after the failure",
                self.settings.secondary
            ));
        }
        if s.lost_acked_on_secondary > 0 {
            failures.push(format!(
                "{} records acknowledged by {} after the failover were never consumed",
                s.lost_acked_on_secondary, self.settings.secondary
            ));
        }
        for b in self.budgets.iter().filter(|b| !b.passed) {
            let reason = b.reason.as_deref().unwrap_or("failed");
            failures.push(format!("{} budget: {reason}", b.name.to_uppercase()));
        }
        self.passed = failures.is_empty();
        self.failures = failures;
    }

    /// strait's estimate against the measured loss (`None` without a figure).
    pub fn estimate_check(&self) -> Option<EstimateCheck> {
        let e = self.strait_estimate.as_ref()?;
        Some(EstimateCheck::of(self.rpo_records, e.records?, e.at_least))
    }

    /// strait's estimate minus the measured loss: 0 when strait was right, negative when it
    /// promised less loss than happened (the dangerous direction).
    pub fn estimate_error(&self) -> Option<i64> {
        let e = self.strait_estimate.as_ref()?.records?;
        Some(e as i64 - self.rpo_records as i64)
    }

    /// "PASSED" or "FAILED".
    pub fn verdict(&self) -> &'static str {
        if self.passed {
            "PASSED"
        } else {
            "FAILED"
        }
    }

    /// Writes `report.json`, `report.md` and `report.html` into `dir`, creating it.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("report.json"), json + "\n")?;
        std::fs::write(dir.join("report.md"), self.to_markdown())?;
        std::fs::write(dir.join("report.html"), self.to_html())?;
        Ok(())
    }
}

/// A duration for people: "850 ms", "12.35 s".
pub fn fmt_ms(ms: i64) -> String {
    if ms.abs() < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

/// `2024-05-01 12:00:00.000 UTC` from ms since the epoch.
pub fn fmt_utc(ms: i64) -> String {
    let (y, m, d, in_day) = crate::text::utc_parts(ms);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::chart::{fmt_count, nice_ceil};
    use super::html::fill;
    use super::sections::fmt_ranges;
    use super::*;
    use crate::drill::verify::SeqRange;
    use crate::drill::verify::{verify, Ack, Delivery, Side};

    const T0: i64 = 1_714_564_800_000; // 2024-05-01 12:00:00 UTC

    fn settings() -> DrillSettings {
        DrillSettings {
            primary: "us-east".into(),
            secondary: "us-west".into(),
            topic: "drill".into(),
            rate: 100,
            duration_ms: 60_000,
            fail_after_ms: 20_000,
            rpo_budget_records: Some(500),
            rto_budget_ms: Some(30_000),
        }
    }

    fn times() -> DrillTimes {
        DrillTimes {
            started_at_ms: T0,
            failure_at_ms: Some(T0 + 20_000),
            detected_at_ms: Some(T0 + 26_000),
            failover_started_at_ms: Some(T0 + 26_100),
            failover_done_at_ms: Some(T0 + 28_000),
            first_consumed_on_secondary_at_ms: None,
            finished_at_ms: T0 + 60_000,
        }
    }

    /// 0..2000 written to the primary at 100/s; 1900..2000 never replicated; the consumer moves
    /// to the secondary at +30 s and re-reads 1800..1900; 2000..6000 written to the secondary.
    fn verification() -> Verification {
        let mut acked: Vec<Ack> = (0..2000)
            .map(|s| Ack {
                seq: s,
                side: Side::Primary,
                acked_at_ms: T0 + s as i64 * 10 + 3,
                record_ts_ms: T0 + s as i64 * 10,
            })
            .collect();
        acked.extend((2000..6000).map(|s| Ack {
            seq: s,
            side: Side::Secondary,
            acked_at_ms: T0 + 20_000 + s as i64 * 10,
            record_ts_ms: T0 + 20_000 + s as i64 * 10,
        }));
        let mut consumed: Vec<Delivery> = (0..1900)
            .map(|s| Delivery {
                seq: s,
                side: Side::Primary,
                received_at_ms: T0 + s as i64 * 10 + 5,
            })
            .collect();
        consumed.extend((1800..1900).chain(2000..6000).map(|s| Delivery {
            seq: s,
            side: Side::Secondary,
            received_at_ms: T0 + 30_000 + s as i64,
        }));
        verify(&acked, &consumed, T0 + 20_000)
    }

    fn report() -> DrillReport {
        let mut r = DrillReport::new(settings(), times(), 6010, verification());
        r.timeline = (0..=120)
            .map(|i| Sample {
                t_ms: i * 500,
                acked_total: (i as u64) * 50,
                consumed_total: (i as u64) * 45,
                replication_lag_records: Some(i * 2),
                produce_rate: 100.0,
            })
            .collect();
        r.strait_estimate = Some(RpoEstimate {
            records: Some(80),
            at_least: None,
            source: "lag snapshot 1.2 s before the failure".into(),
        });
        r.strait_estimate_check = r.estimate_check();
        r.notes
            .push("us-east was failed through the sandbox fault proxy".into());
        r
    }

    #[test]
    fn an_estimate_is_judged_against_the_loss() {
        use EstimateCheck::*;
        assert_eq!(EstimateCheck::of(58, 88, Some(40)), Within2x);
        assert_eq!(EstimateCheck::of(58, 116, None), Within2x);
        assert_eq!(EstimateCheck::of(58, 1150, None), Over2x);
        assert_eq!(
            EstimateCheck::of(58, 0, None),
            Under,
            "promised less than happened"
        );
        assert_eq!(
            EstimateCheck::of(58, 90, Some(60)),
            Under,
            "a lower bound above the loss"
        );
        assert_eq!(EstimateCheck::of(0, 0, Some(0)), Within2x);
        assert_eq!(EstimateCheck::of(0, 3, None), Over2x);
    }

    #[test]
    fn new_derives_everything() {
        let r = report();
        assert_eq!(
            r.times.first_consumed_on_secondary_at_ms,
            Some(T0 + 30_000 + 1800)
        );
        assert_eq!(
            r.durations,
            DrillDurations {
                detection_ms: Some(6000),
                failover_ms: Some(1900),
                rto_ms: Some(11_800),
            }
        );
        assert_eq!(r.rpo_records, 100);
        // The oldest lost record, 1900, was written at +19 s: one second before the failure.
        assert_eq!(r.rpo_seconds, 1.0);
        assert_eq!(
            r.counts,
            DrillCounts {
                produced: 6010,
                acked: 6000,
                consumed_on_primary: 1900,
                consumed_on_secondary: 4100,
            }
        );
        assert_eq!(r.marks.len(), 4);
        assert_eq!(r.marks[0].t_ms, 20_000);
        assert_eq!(r.marks[0].label, "us-east failed");
        assert_eq!(r.marks[3].kind, MarkKind::FirstConsumedOnSecondary);
        assert!(r.passed, "{:?}", r.failures);
        assert!(r.failures.is_empty());
        assert_eq!(r.estimate_error(), Some(-20));
    }

    #[test]
    fn markdown_has_the_verdict_and_figures() {
        let md = report().to_markdown();
        assert!(
            md.starts_with("# DR drill PASSED: us-east -> us-west"),
            "{md}"
        );
        assert!(
            md.contains(
                "| RTO (failure to first record consumed on us-west) | 11.80 s | 30.00 s | pass |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| RPO (records lost) | 100 | 500 records | pass |"),
            "{md}"
        );
        assert!(
            md.contains("| RPO (time: failure minus oldest lost record) | 1.00 s |"),
            "{md}"
        );
        assert!(md.contains("under by 20"), "{md}");
        assert!(
            md.contains("| +20.00 s | 2024-05-01 12:00:20.000 UTC | us-east failed |"),
            "{md}"
        );
        assert!(
            md.contains("| lost (acknowledged, never consumed) | 100: 1900-1999 |"),
            "{md}"
        );
        assert!(
            md.contains("100 records, 100 extra deliveries (100 after the failure): 1800-1899"),
            "{md}"
        );
        assert!(
            md.contains("- us-east was failed through the sandbox fault proxy"),
            "{md}"
        );
        let verdict = md.find("PASSED").unwrap();
        let rto = md.find("RTO").unwrap();
        let timeline = md.find("## Timeline").unwrap();
        let seq = md.find("## Sequence check").unwrap();
        assert!(verdict < rto && rto < timeline && timeline < seq);
    }

    #[test]
    fn a_failed_drill_says_why_first() {
        let mut s = settings();
        s.rto_budget_ms = Some(10_000);
        s.rpo_budget_records = Some(0);
        let r = DrillReport::new(s, times(), 6010, verification());
        assert!(!r.passed);
        let md = r.to_markdown();
        assert!(md.starts_with("# DR drill FAILED"), "{md}");
        assert!(
            md.contains("- RTO budget: 11.80 s is over the budget of 10.00 s"),
            "{md}"
        );
        assert!(
            md.contains("- RPO budget: 100 records is over the budget of 0 records"),
            "{md}"
        );
        assert!(md.find("RTO budget").unwrap() < md.find("## Timeline").unwrap());
    }

    #[test]
    fn budget_evaluation() {
        let mut s = settings();
        let mut t = times();
        t.first_consumed_on_secondary_at_ms = Some(T0 + 20_001);

        s.rto_budget_ms = Some(0);
        let b = budgets(&s, &t, 0);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].name.as_str(), b[0].measured, b[0].passed),
            ("rto", Some(1), false)
        );
        assert!(b[0].reason.as_deref().unwrap().contains("over the budget"));
        assert!(b[1].passed && b[1].reason.is_none());

        t.first_consumed_on_secondary_at_ms = Some(T0 + 20_000);
        assert!(budgets(&s, &t, 0)[0].passed, "equal to the limit passes");

        t.first_consumed_on_secondary_at_ms = None;
        let b = budgets(&s, &t, 0);
        assert!(!b[0].passed);
        assert_eq!(b[0].measured, None);
        assert_eq!(
            b[0].reason.as_deref(),
            Some("not measured: no record was consumed on us-west after the failure")
        );

        t.failure_at_ms = None;
        assert_eq!(
            budgets(&s, &t, 0)[0].reason.as_deref(),
            Some("not measured: us-east was never failed")
        );

        t.failure_at_ms = Some(T0 + 20_000);
        t.first_consumed_on_secondary_at_ms = Some(T0 + 19_000);
        let b = budgets(&s, &t, 0);
        assert!(
            !b[0].passed
                && b[0]
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("before the failure")
        );

        s.rpo_budget_records = Some(3);
        assert!(budgets(&s, &t, 3)[1].passed);
        assert!(!budgets(&s, &t, 4)[1].passed);

        s.rto_budget_ms = None;
        s.rpo_budget_records = None;
        assert!(
            budgets(&s, &t, 1_000_000).is_empty(),
            "unset budgets are not checked"
        );
    }

    #[test]
    fn no_recovery_fails_without_budgets() {
        let mut s = settings();
        s.rto_budget_ms = None;
        s.rpo_budget_records = None;
        let v = verify(&[], &[], T0 + 20_000);
        let r = DrillReport::new(s, times(), 0, v);
        assert!(!r.passed);
        assert_eq!(
            r.failures,
            vec!["consumption never resumed on us-west after the failure"]
        );
        assert_eq!(r.durations.rto_ms, None);
        assert!(r.to_markdown().contains("| not measured | none | - |"));
    }

    #[test]
    fn json_round_trips() {
        let r = report();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: DrillReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["settings"]["rto_budget_ms"], 30_000);
        assert_eq!(v["marks"][0]["kind"], "failure");
        assert_eq!(v["budgets"][0]["unit"], "milliseconds");
        assert_eq!(v["sequence"]["lost"][0]["first"], 1900);
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    /// A failed drill with every mark kind, both budget units (one passed, one failed), a
    /// timeline sample with the lag unknown, strait's estimate and a note.
    fn every_value() -> DrillReport {
        let mut s = settings();
        s.rto_budget_ms = Some(10_000);
        let mut r = DrillReport::new(s, times(), 6010, verification());
        r.timeline = vec![
            Sample {
                t_ms: 0,
                acked_total: 0,
                consumed_total: 0,
                replication_lag_records: Some(0),
                produce_rate: 0.0,
            },
            Sample {
                t_ms: 20_500,
                acked_total: 2000,
                consumed_total: 1900,
                replication_lag_records: None,
                produce_rate: 100.0,
            },
            Sample {
                t_ms: 60_000,
                acked_total: 6000,
                consumed_total: 6000,
                replication_lag_records: Some(0),
                produce_rate: 99.5,
            },
        ];
        r.marks.push(Mark {
            t_ms: 26_100,
            kind: MarkKind::FailoverStarted,
            label: "failover started".into(),
        });
        r.marks.push(Mark {
            t_ms: 30_000,
            kind: MarkKind::Other,
            label: "producer moved to us-west".into(),
        });
        r.strait_estimate = Some(RpoEstimate {
            records: Some(80),
            at_least: None,
            source: "lag snapshot 1.2 s before the failure".into(),
        });
        r.strait_estimate_check = r.estimate_check();
        r.notes
            .push("us-east was failed through the sandbox fault proxy".into());
        r
    }

    /// `report.json` as [`DrillReport::write`] writes it is byte for byte what scripts parse
    /// (`testdata/report.json`; regenerate with `STRAIT_UPDATE_GOLDEN=1` only for an intended
    /// change of the documented format), and it reads back as the same value.
    #[test]
    fn json_matches_the_golden_file() {
        let r = every_value();
        assert!(!r.passed);
        assert_eq!(
            r.budgets
                .iter()
                .map(|b| (b.unit, b.passed))
                .collect::<Vec<_>>(),
            [
                (BudgetUnit::Milliseconds, false),
                (BudgetUnit::Records, true)
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        r.write(dir.path()).unwrap();
        let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
        crate::text::assert_golden("src/drill/report/testdata/report.json", &json);
        assert_eq!(serde_json::from_str::<DrillReport>(&json).unwrap(), r);
    }

    #[test]
    fn html_is_self_contained_and_balanced() {
        let html = report().to_html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        for tag in ["html", "head", "body", "svg", "table", "style", "ul"] {
            assert_eq!(
                count(&html, &format!("<{tag}")),
                count(&html, &format!("</{tag}>")),
                "<{tag}> unbalanced"
            );
        }
        assert_eq!(count(&html, "<svg"), 1);
        assert_eq!(count(&html, "<table"), 3);
        assert_eq!(count(&html, "<tr>"), count(&html, "</tr>"));
        assert_eq!(count(&html, "<polyline class=\"acked\""), 1);
        assert_eq!(count(&html, "<polyline class=\"consumed\""), 1);
        assert_eq!(count(&html, "<polyline class=\"lag\""), 1);
        assert_eq!(
            count(&html, "<polyline class=\"rate\""),
            1,
            "the produce rate"
        );
        assert_eq!(count(&html, "<line class=\"mark "), 4);
        assert!(html.contains("<line class=\"mark failure\""));
        assert!(html.contains("us-east failed (+20.00 s)"));
        assert!(html.contains("first record consumed on us-west"));
        assert!(html.contains("<td class=\"pass\">pass</td>"));
        assert!(!html.contains("<script"), "no scripts");
        let without_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !without_ns.contains("http://") && !html.contains("https://"),
            "nothing fetched from the network"
        );
        assert!(!html.contains("{{"), "every placeholder filled");
    }

    #[test]
    fn lag_breaks_while_unknown() {
        let mut r = report();
        for s in &mut r.timeline[40..60] {
            s.replication_lag_records = None;
        }
        let html = r.to_html();
        assert_eq!(count(&html, "<polyline class=\"lag\""), 2);
        r.timeline.clear();
        let html = r.to_html();
        assert_eq!(count(&html, "<polyline"), 0);
        assert!(html.contains("no samples were taken"));
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = settings();
        s.topic = "<script>alert(\"x\")</script>&{{body}}".into();
        s.secondary = "west|'b'".into();
        let mut r = DrillReport::new(s, times(), 6010, verification());
        r.notes.push("a <b>bold</b> note\nwith | a pipe".into());
        r.marks.push(Mark {
            t_ms: 45_000,
            kind: MarkKind::Other,
            label: "<i>".into(),
        });

        let html = r.to_html();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;{{body}}"));
        assert!(html.contains("west|&#39;b&#39;"));
        assert!(html.contains("a &lt;b&gt;bold&lt;/b&gt; note"));
        assert!(html.contains("&lt;i&gt; (+45.00 s)"));
        assert!(!html.contains("<i>") && !html.contains("<b>"));
        assert_eq!(count(&html, "<line class=\"mark "), 5);

        let md = r.to_markdown();
        assert!(md.contains("| consumed on west\\|'b' |"), "{md}");
        assert!(md.contains("- a <b>bold</b> note with | a pipe"), "{md}");
    }

    #[test]
    fn write_puts_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("drill").join("report");
        let r = report();
        r.write(&out).unwrap();
        let json = std::fs::read_to_string(out.join("report.json")).unwrap();
        assert_eq!(serde_json::from_str::<DrillReport>(&json).unwrap(), r);
        assert_eq!(
            std::fs::read_to_string(out.join("report.md")).unwrap(),
            r.to_markdown()
        );
        assert_eq!(
            std::fs::read_to_string(out.join("report.html")).unwrap(),
            r.to_html()
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(fmt_utc(T0), "2024-05-01 12:00:00.000 UTC");
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(fmt_utc(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
        assert_eq!(fmt_utc(-1), "1969-12-31 23:59:59.999 UTC");
        assert_eq!(fmt_ms(850), "850 ms");
        assert_eq!(fmt_ms(12_345), "12.35 s");
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(nice_ceil(101.0), 200.0);
        assert_eq!(nice_ceil(5000.0), 5000.0);
        assert_eq!(fmt_count(1500.0), "1.5k");
        assert_eq!(fmt_count(2_000_000.0), "2M");
        assert_eq!(fmt_count(0.5), "0.5");
        assert_eq!(
            fill(
                "a {{x}} b {{y}} {{z}} {{",
                &[("x", "{{y}}".into()), ("y", "2".into())]
            ),
            "a {{y}} b 2 {{z}} {{"
        );
        let many: Vec<SeqRange> = (0..12)
            .map(|i| SeqRange {
                first: i * 3,
                last: i * 3,
            })
            .collect();
        assert!(fmt_ranges(&many).ends_with("27, and 2 more ranges"));
    }
}
