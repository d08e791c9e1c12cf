//! What a failover (or failback) did and what it cost, as plain data: the `--json` schema
//! (README) and the table a person reads. No I/O.

use serde::{Deserialize, Serialize};

use super::active::ActiveRegion;
use crate::text::table;

/// Declares a closed set whose JSON and text form is one lowercase word (or words with `-`).
macro_rules! closed_set {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }

        impl $name {
            /// The word used in the JSON and the table.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set! {
    /// How a step ended.
    Outcome {
        /// Done as intended.
        Ok = "ok",
        /// Not run (a dry run's switch).
        Skipped = "skipped",
        /// Done, with something the operator should read.
        Warning = "warning",
        /// Not done, or done for only some of what it covers (e.g. a group not moved).
        Failed = "failed",
    }
}

closed_set! {
    /// What was done with a consumer group.
    GroupAction {
        /// Its translated offsets were committed on the new region.
        Committed = "committed",
        /// A dry run: it would have been committed.
        WouldCommit = "would-commit",
        /// Consumers are in the group where its offsets would be set.
        Refused = "refused",
        /// Its offsets could not be translated or committed; `reason` says why.
        Failed = "failed",
    }
}

closed_set! {
    /// Which procedure.
    Procedure {
        /// `strait failover`: away from the region consumers used.
        Failover = "failover",
        /// `strait failback`: back to the original region once it answers again.
        Failback = "failback",
    }
}

closed_set! {
    /// Whether the old region answered.
    Mode {
        /// It answered: strait waits for writes to stop and replication to catch up (unless a
        /// dry run), and translates exactly.
        Planned = "planned",
        /// It did not answer within the probe timeout: strait works from the new region alone.
        Unplanned = "unplanned",
    }
}

/// One step of the procedure, timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `probe`, `quiesce`, `catch-up`, `drain`, `rpo`, `translate`, `switch`, ...
    pub name: String,
    /// When the step started (ms since the epoch).
    pub started_at_ms: i64,
    /// How long it took (ms).
    pub duration_ms: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// One sentence: what happened.
    pub detail: String,
}

/// Records on the old region that the new one does not have, for one partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionLoss {
    /// The topic, by its name on the old region.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    /// End offset of the partition on the old region (for an unplanned failover: as last seen,
    /// or extrapolated from the last seen rate for the upper bound).
    pub source_end: i64,
    /// One past the last upstream offset with a copy on the new region.
    pub replicated_end: i64,
    /// Records missing on the new region (`source_end - replicated_end`).
    pub records: i64,
    /// Age of the oldest of those records when the figure was taken.
    pub seconds: f64,
}

/// The recovery point: what was written on the old region and is not on the new one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rpo {
    /// `None` when nothing says (an unplanned failover with no lag snapshot).
    pub records: Option<i64>,
    /// Age of the oldest missing record, in seconds, over all partitions; `None` when unknown.
    pub seconds: Option<f64>,
    /// `true` when both clusters were read at the switch (planned failover); `false` when the
    /// figure is reconstructed from strait's last view of a region that no longer answers.
    pub exact: bool,
    /// Where the figure came from, in one sentence.
    pub source: String,
    /// For an estimate: the records certainly lost (seen unreplicated in the last view of the
    /// source and not on the target), when `records` is an upper bound above it.
    #[serde(default)]
    pub records_at_least: Option<i64>,
    /// Only the partitions with something missing.
    pub partitions: Vec<PartitionLoss>,
}

impl Rpo {
    /// Sum `losses` (partitions with nothing missing are dropped).
    pub fn from_losses(losses: Vec<PartitionLoss>, exact: bool, source: String) -> Self {
        let partitions: Vec<PartitionLoss> = losses.into_iter().filter(|l| l.records > 0).collect();
        Self {
            records: Some(partitions.iter().map(|l| l.records).sum()),
            seconds: Some(partitions.iter().map(|l| l.seconds).fold(0.0, f64::max)),
            exact,
            source,
            records_at_least: None,
            partitions,
        }
    }

    /// No figure (`records` and `seconds` are `None`); `source` says why.
    pub fn unknown(source: String) -> Self {
        Self {
            records: None,
            seconds: None,
            exact: false,
            source,
            records_at_least: None,
            partitions: Vec::new(),
        }
    }
}

/// One partition of a group, as moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupPartitionMove {
    /// The topic on the new region the offset applies to (`us-east.orders` after a failover).
    pub remote_topic: String,
    /// The partition number.
    pub partition: i32,
    /// The group's offset on the old region (`None` when it did not answer).
    pub upstream_offset: Option<i64>,
    /// Where the group resumes on the new region (`None`: not translatable, see `method`).
    pub offset: Option<i64>,
    /// How `offset` was found (`exact`, `checkpoint`, ..., as `strait translate` names it).
    pub method: String,
    /// Records the group reads a second time there (`None`: unknown).
    pub reread: Option<i64>,
}

/// One consumer group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupMove {
    /// The consumer group, named the same on both regions.
    pub group: String,
    /// What was done with it.
    pub action: GroupAction,
    /// Why, for anything but `committed`.
    pub reason: Option<String>,
    /// Records the group reads twice on the new region, summed (`None`: unknown).
    pub reread: Option<i64>,
    /// Each partition the group has offsets for.
    pub partitions: Vec<GroupPartitionMove>,
}

impl GroupMove {
    /// Whether the group was (or, in a dry run, would be) committed on the new region.
    pub fn moved(&self) -> bool {
        matches!(
            self.action,
            GroupAction::Committed | GroupAction::WouldCommit
        )
    }
}

/// The whole procedure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailoverReport {
    /// Failover or failback.
    pub kind: Procedure,
    /// The region consumers left (`--from`).
    pub from: String,
    /// The region consumers moved to (`--to`).
    pub to: String,
    /// Whether `from` answered when the procedure started.
    pub mode: Mode,
    /// Nothing was changed (`--dry-run`): the report is a preview.
    pub dry_run: bool,
    /// When the procedure started (ms since the epoch).
    pub started_at_ms: i64,
    /// When the report was made (ms since the epoch).
    pub finished_at_ms: i64,
    /// Start to consumers ready on the new region (offsets committed, active region recorded).
    pub rto_ms: i64,
    /// Each step run, in order.
    pub steps: Vec<Step>,
    /// What was left behind on `from`.
    pub rpo: Rpo,
    /// Each selected group with offsets to move, and what was done with it.
    pub groups: Vec<GroupMove>,
    /// What consumers subscribe to on the new region: the replicated history and, for writes
    /// made after the switch, the local topics.
    pub topics_to_consume: Vec<String>,
    /// The active-region record written (or, for a dry run, the one that would be).
    pub active_region: Option<ActiveRegion>,
    /// Things the operator should know, one sentence each (e.g. a switch recorded on one side).
    pub warnings: Vec<String>,
    /// Set by failback: records that reached the old region and were never replicated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub salvage: Option<Salvage>,
}

/// Records on the region being returned to that never reached the other one (failback).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Salvage {
    /// The missing records, per partition.
    pub ranges: Vec<SalvageRange>,
    /// How many records the ranges hold in all.
    pub records: i64,
    /// Whether they were copied (`--salvage`).
    pub copied: bool,
    /// Records copied to the other region; 0 without `--salvage`.
    pub copied_records: i64,
}

/// The records of one partition that never left the region being returned to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SalvageRange {
    /// The topic, by its name on the region being returned to.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    /// Upstream offsets `[from, to)`.
    pub from: i64,
    /// One past the last missing offset: the partition's end offset when it was read.
    pub to: i64,
    /// How many records the range holds (`to - from`).
    pub records: i64,
}

impl FailoverReport {
    /// Everything went as asked: every group moved, no step failed.
    pub fn succeeded(&self) -> bool {
        self.groups.iter().all(GroupMove::moved)
            && self.steps.iter().all(|s| s.outcome != Outcome::Failed)
    }

    /// The report as a person reads it.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let title = if self.dry_run {
            format!(
                "strait {} {} -> {}: PREVIEW (dry run, nothing changed; a {} {} now would do this)",
                self.kind, self.from, self.to, self.mode, self.kind
            )
        } else {
            format!(
                "strait {} {} -> {} ({}): {}",
                self.kind,
                self.from,
                self.to,
                self.mode,
                if self.succeeded() {
                    "done"
                } else {
                    "done with problems"
                }
            )
        };
        o.push_str(&title);
        o.push_str("\n\n");
        let rows: Vec<Vec<String>> = self
            .steps
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    secs(s.duration_ms),
                    s.outcome.to_string(),
                    s.detail.clone(),
                ]
            })
            .collect();
        o.push_str(&table(&["STEP", "TOOK", "RESULT", "WHAT HAPPENED"], &rows));
        o.push('\n');
        if !self.dry_run {
            o.push_str(&format!(
                "RTO  {} (start to consumers ready on {})\n",
                secs(self.rto_ms),
                self.to
            ));
        }
        let rpo_label = if self.dry_run { "RPO if now" } else { "RPO" };
        match (self.rpo.records, self.rpo.seconds) {
            (Some(r), Some(s)) if self.rpo.records_at_least.is_some_and(|lo| lo < r) => {
                o.push_str(&format!(
                    "{rpo_label}  between {} and {r} records, at most {s:.1} s ({})\n",
                    self.rpo.records_at_least.unwrap_or(0),
                    self.rpo.source
                ))
            }
            (Some(r), Some(s)) => o.push_str(&format!(
                "{rpo_label}  {r} records, {s:.1} s{} ({})\n",
                if self.rpo.exact { "" } else { " (estimate)" },
                self.rpo.source
            )),
            _ => o.push_str(&format!("{rpo_label}  unknown ({})\n", self.rpo.source)),
        }
        for l in &self.rpo.partitions {
            o.push_str(&format!(
                "     {}[{}]: offsets {}..{} ({} records, oldest {:.1} s old)\n",
                l.topic, l.partition, l.replicated_end, l.source_end, l.records, l.seconds
            ));
        }
        if !self.groups.is_empty() {
            o.push('\n');
            let rows: Vec<Vec<String>> = self
                .groups
                .iter()
                .map(|g| {
                    let offsets = g
                        .partitions
                        .iter()
                        .map(|p| {
                            format!(
                                "{}[{}]={}",
                                p.remote_topic,
                                p.partition,
                                p.offset.map_or("-".into(), |o| o.to_string())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    vec![
                        g.group.clone(),
                        g.action.to_string(),
                        g.reread.map_or("?".into(), |r| r.to_string()),
                        if offsets.is_empty() {
                            "-".into()
                        } else {
                            offsets
                        },
                        g.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            o.push_str(&table(
                &[
                    "GROUP",
                    "ACTION",
                    "RE-READ",
                    &format!("OFFSETS ON {}", self.to),
                    "NOTE",
                ],
                &rows,
            ));
        }
        if let Some(s) = &self.salvage {
            o.push('\n');
            o.push_str(&format!(
                "Salvage: {} records on {} never reached {}{}\n",
                s.records,
                self.to,
                self.from,
                if s.copied {
                    format!(" ({} copied now)", s.copied_records)
                } else if s.records > 0 {
                    " (run again with --salvage to copy them)".to_string()
                } else {
                    String::new()
                }
            ));
            for r in &s.ranges {
                o.push_str(&format!(
                    "  {}[{}]: offsets {}..{} ({} records)\n",
                    r.topic, r.partition, r.from, r.to, r.records
                ));
            }
        }
        if !self.topics_to_consume.is_empty() {
            o.push_str(&format!(
                "\nConsumers on {} subscribe to: {}\n",
                self.to,
                self.topics_to_consume.join(", ")
            ));
        }
        if let Some(a) = &self.active_region {
            o.push_str(&format!(
                "Active region of {}<->{}: {} (version {}){}\n",
                a.pair[0],
                a.pair[1],
                a.active,
                a.version,
                if self.dry_run { ", not recorded" } else { "" }
            ));
        }
        for w in &self.warnings {
            o.push_str(&format!("warning: {w}\n"));
        }
        o
    }
}

fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> FailoverReport {
        FailoverReport {
            kind: Procedure::Failover,
            from: "us-east".into(),
            to: "us-west".into(),
            mode: Mode::Planned,
            dry_run: false,
            started_at_ms: 0,
            finished_at_ms: 4200,
            rto_ms: 4200,
            steps: vec![Step {
                name: "catch-up".into(),
                started_at_ms: 0,
                duration_ms: 1100,
                outcome: Outcome::Ok,
                detail: "replication lag 0 records".into(),
            }],
            rpo: Rpo::from_losses(Vec::new(), true, "both clusters read".into()),
            groups: vec![GroupMove {
                group: "app".into(),
                action: GroupAction::Committed,
                reason: None,
                reread: Some(0),
                partitions: vec![GroupPartitionMove {
                    remote_topic: "us-east.orders".into(),
                    partition: 0,
                    upstream_offset: Some(10),
                    offset: Some(10),
                    method: "exact".into(),
                    reread: Some(0),
                }],
            }],
            topics_to_consume: vec!["us-east.orders".into(), "orders".into()],
            active_region: None,
            warnings: vec![],
            salvage: None,
        }
    }

    #[test]
    fn losses_sum_and_drop_empty_partitions() {
        let l = |p, r, s| PartitionLoss {
            topic: "t".into(),
            partition: p,
            source_end: 100,
            replicated_end: 100 - r,
            records: r,
            seconds: s,
        };
        let rpo = Rpo::from_losses(
            vec![l(0, 5, 2.0), l(1, 0, 0.0), l(2, 7, 9.5)],
            false,
            "x".into(),
        );
        assert_eq!(rpo.records, Some(12));
        assert_eq!(rpo.seconds, Some(9.5));
        assert_eq!(rpo.partitions.len(), 2);
    }

    #[test]
    fn text_has_rto_rpo_groups_and_topics() {
        let r = report();
        assert!(r.succeeded());
        let t = r.to_text();
        assert!(t.contains("RTO  4.2 s"), "{t}");
        assert!(t.contains("RPO  0 records, 0.0 s"), "{t}");
        assert!(t.contains("us-east.orders[0]=10"), "{t}");
        assert!(t.contains("subscribe to: us-east.orders, orders"), "{t}");
        let json = serde_json::to_string(&r).unwrap();
        let back: FailoverReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    /// A report with every closed set's every value: its JSON is the `--json` contract.
    fn every_value() -> FailoverReport {
        let mut r = report();
        r.kind = Procedure::Failback;
        r.mode = Mode::Unplanned;
        for (i, outcome) in [
            Outcome::Ok,
            Outcome::Skipped,
            Outcome::Warning,
            Outcome::Failed,
        ]
        .into_iter()
        .enumerate()
        {
            r.steps.push(Step {
                name: format!("step-{i}"),
                started_at_ms: i as i64,
                duration_ms: 10,
                outcome,
                detail: format!("{outcome} step"),
            });
        }
        for action in [
            GroupAction::WouldCommit,
            GroupAction::Refused,
            GroupAction::Failed,
        ] {
            let mut g = r.groups[0].clone();
            g.group = format!("g-{action}");
            g.action = action;
            g.reason = Some("because".into());
            r.groups.push(g);
        }
        r.rpo = Rpo::from_losses(
            vec![PartitionLoss {
                topic: "orders".into(),
                partition: 2,
                source_end: 120,
                replicated_end: 100,
                records: 20,
                seconds: 1.5,
            }],
            false,
            "the last lag snapshot".into(),
        );
        r.rpo.records_at_least = Some(12);
        r.active_region = Some(ActiveRegion {
            pair: ["us-east".into(), "us-west".into()],
            active: "us-west".into(),
            version: 3,
            changed_at_ms: 4100,
            reason: "failback to us-west".into(),
        });
        r.warnings = vec!["a warning".into()];
        r.salvage = Some(Salvage {
            ranges: vec![SalvageRange {
                topic: "orders".into(),
                partition: 1,
                from: 7,
                to: 9,
                records: 2,
            }],
            records: 2,
            copied: true,
            copied_records: 2,
        });
        r
    }

    /// The JSON is byte for byte what scripts parse (`testdata/report.json`; regenerate with
    /// `STRAIT_UPDATE_GOLDEN=1` only for an intended change of the documented format).
    #[test]
    fn json_matches_the_golden_file() {
        let json = serde_json::to_string_pretty(&every_value()).unwrap() + "\n";
        crate::text::assert_golden("src/failover/testdata/report.json", &json);
        let back: FailoverReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, every_value());
    }

    #[test]
    fn a_refused_group_is_not_success() {
        let mut r = report();
        r.groups[0].action = GroupAction::Refused;
        assert!(!r.succeeded());
        r.dry_run = true;
        r.groups[0].action = GroupAction::WouldCommit;
        assert!(r.succeeded());
        assert!(r.to_text().contains("PREVIEW"));
    }
}
