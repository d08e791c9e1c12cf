//! What a drill tells the person watching it (progress lines) and the person reading its report
//! afterwards (notes and failures), as typed events rendered here.
//!
//! The orchestration says *what happened* (`Say::Failed { .. }`); only this file knows how that
//! reads. Keeping the prose out of the timeline keeps the timeline short enough to review, and
//! lets the two audiences get different wording for the same event: a progress line is terse and
//! in the present tense, a note is a sentence that stands on its own in a filed report.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::failover::report::{GroupAction, Mode};

/// Where the drill runs, as the narration needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Two sandbox regions started for the drill; the primary really fails.
    Sandbox,
    /// The user's clusters; the failure is simulated.
    Simulated,
}

/// One progress line.
#[derive(Debug)]
pub(crate) enum Say {
    StartingSandbox {
        a: String,
        b: String,
    },
    WaitingForReplication {
        a: String,
        b: String,
    },
    SetUp {
        topic: String,
        partitions: i32,
        a: String,
        b: String,
        group: String,
        remote_topic: String,
    },
    Writing {
        rate: u64,
        topic: String,
        a: String,
        group: String,
        fail_after: Duration,
    },
    Failed {
        kind: Kind,
        a: String,
        /// Since the first record was written.
        at: Option<Duration>,
    },
    WatchingHeartbeats {
        a: String,
        b: String,
        topic: String,
        bound: Duration,
    },
    WatchingCopies {
        b: String,
        bound: Duration,
    },
    WatchingProbes {
        a: String,
        how: crate::config::region::RegionWatch,
    },
    Detected {
        after_ms: i64,
    },
    FailingOver {
        kind: Kind,
        a: String,
        b: String,
    },
    /// A line of the failover's own progress.
    Failover(String),
    FailedOver {
        took_ms: i64,
        mode: Mode,
        b: String,
    },
    Recovering {
        topic: String,
        b: String,
        group: String,
        topics: Vec<String>,
        /// Until this long after the first record.
        until: Duration,
    },
    StoppedEarly(String),
    StoppingProducer,
    StoppingSandbox,
    Deleting,
    LeftBehind(Vec<String>),
}

impl fmt::Display for Say {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Say::StartingSandbox { a, b } => write!(f, "starting two sandbox regions, {a} and {b}"),
            Say::WaitingForReplication { a, b } => {
                write!(f, "waiting for replication {a}->{b} to start")
            }
            Say::SetUp {
                topic,
                partitions,
                a,
                b,
                group,
                remote_topic,
            } => write!(
                f,
                "drill topic {topic} ({partitions} partitions) on {a}, consumer group {group}; replicating {a}->{b} as {remote_topic}"
            ),
            Say::Writing {
                rate,
                topic,
                a,
                group,
                fail_after,
            } => write!(
                f,
                "writing {rate} records/s to {topic} on {a}, consumer group {group} reading there; {a} fails at +{}",
                humantime::format_duration(*fail_after)
            ),
            Say::Failed { kind, a, at } => {
                let at = match at {
                    Some(d) => format!("+{:.1} s", d.as_secs_f64()),
                    None => "before the start".into(),
                };
                match kind {
                    Kind::Sandbox => write!(
                        f,
                        "{a} failed at {at}: the sandbox fault proxy resets every connection to it and refuses new ones"
                    ),
                    Kind::Simulated => write!(
                        f,
                        "{a} failed at {at} (simulated: the drill stopped its replication of {a} and its producer and consumer there)"
                    ),
                }
            }
            Say::WatchingHeartbeats { a, b, topic, bound } => write!(
                f,
                "watching heartbeats of {a}->{b} ({topic} on {b}): stale after {} s",
                bound.as_secs()
            ),
            Say::WatchingCopies { b, bound } => write!(
                f,
                "watching the drill topic's copies on {b}: the failure shows when they stop growing for {} s",
                bound.as_secs()
            ),
            Say::WatchingProbes { a, how } => write!(
                f,
                "watching {a} with strait's probes: one every {} ms, down after {:.1} s unanswered",
                how.probe_every.as_millis(),
                how.down_after.as_secs_f64()
            ),
            Say::Detected { after_ms } => write!(
                f,
                "failure detected {:.1} s after it happened",
                *after_ms as f64 / 1000.0
            ),
            Say::FailingOver { kind, a, b } => write!(
                f,
                "unplanned failover {a} -> {b}{}",
                match kind {
                    Kind::Sandbox => " (strait failover)",
                    Kind::Simulated =>
                        ": the drill group only, from its checkpoints; the active region is not switched",
                }
            ),
            Say::Failover(line) => write!(f, "failover: {line}"),
            Say::FailedOver { took_ms, mode, b } => write!(
                f,
                "failover done in {:.1} s ({mode}); moving the producer and the consumer to {b}",
                *took_ms as f64 / 1000.0
            ),
            Say::Recovering {
                topic,
                b,
                group,
                topics,
                until,
            } => write!(
                f,
                "producer writing to {topic} on {b}, group {group} reading {}; running until +{:.0} s",
                topics.join(" and "),
                until.as_secs_f64()
            ),
            Say::StoppedEarly(e) => write!(f, "the drill stopped early: {e}"),
            Say::StoppingProducer => {
                f.write_str("stopping the producer; the consumer reads what is left")
            }
            Say::StoppingSandbox => f.write_str("stopping the sandbox (its data goes with it)"),
            Say::Deleting => f.write_str("deleting the drill's topics and groups"),
            Say::LeftBehind(left) => {
                write!(f, "left behind (delete them by hand): {}", left.join("; "))
            }
        }
    }
}

/// One note of the report: how the drill ran, for whoever reads the report later.
#[derive(Debug)]
pub(crate) enum Note {
    SandboxDrill {
        a: String,
        b: String,
        file: String,
    },
    SimulatedFailure {
        a: String,
    },
    SimulatedReplication {
        file: String,
        a: String,
        b: String,
        replication_group: String,
    },
    CleanUpLeavesInternalRecords {
        a: String,
        b: String,
    },
    FilterAcceptsDrillTopic {
        file: String,
        a: String,
        b: String,
        topic: String,
    },
    ExistingTopic {
        topic: String,
        a: String,
        partitions: i32,
    },
    CutByProxy {
        a: String,
    },
    DetectionByHeartbeats {
        a: String,
        b: String,
        topic: String,
        bound: Duration,
    },
    DetectionByCopies {
        b: String,
        bound: Duration,
    },
    DetectionByProbes {
        a: String,
        how: crate::config::region::RegionWatch,
    },
    FailoverRan {
        mode: Mode,
        /// Each step as `name outcome 1.2 s`.
        steps: Vec<String>,
        rto_ms: i64,
    },
    GroupNotMoved {
        group: String,
        action: GroupAction,
        reason: Option<String>,
        b: String,
    },
    NoCheckpoint {
        group: String,
        b: String,
    },
    FailoverWarning(String),
    LeftBehind(Vec<String>),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::SandboxDrill { a, b, file } => write!(
                f,
                "Sandbox drill: two sandbox regions started for it, {a} replicated to {b} by strait in the drill's process \
                 from {file} (saved beside this report)."
            ),
            Note::SimulatedFailure { a } => write!(
                f,
                "Simulated failure: {a} itself was not touched. At the failure the drill stopped its own replication of {a} \
                 and its producer and consumer there, as if {a} had become unreachable; other clients of {a} went on as before."
            ),
            Note::SimulatedReplication {
                file,
                a,
                b,
                replication_group,
            } => write!(
                f,
                "Replication by strait in the drill's process with {file}'s {a}->{b} settings, restricted to the drill topic and group, \
                 in its own replication group ({replication_group}); production topics, groups and the active-region record were not touched."
            ),
            Note::CleanUpLeavesInternalRecords { a, b } => write!(
                f,
                "Clean-up deletes the drill's topics and groups; a few records keyed by the drill topic or group stay in \
                 strait's and MM2's compacted internal topics on {a} and {b} (offset syncs, offset index, checkpoints)."
            ),
            Note::FilterAcceptsDrillTopic { file, a, b, topic } => write!(
                f,
                "{file}'s {a}->{b} topic filter accepts the drill topic {topic}: a `strait run` (or MirrorMaker 2) replicating \
                 {a}->{b} with it copies the drill topic too, adding copies on {b} after the simulated failure (fewer losses, \
                 more re-deliveries than a real outage). Add `strait-drill-.*` to `{a}->{b}.topics.exclude` to keep drills apart."
            ),
            Note::ExistingTopic {
                topic,
                a,
                partitions,
            } => write!(
                f,
                "The drill used the existing topic {topic} on {a} ({partitions} partitions) and left it in place."
            ),
            Note::CutByProxy { a } => write!(
                f,
                "{a} was failed through the sandbox fault proxy: every connection to it was reset and new ones refused \
                 (the drill's producer and consumer there stopped with it)."
            ),
            Note::DetectionByHeartbeats { a, b, topic, bound } => write!(
                f,
                "Failure detection: the newest heartbeat that crossed {a}->{b} ({topic} on {b}) older than {} s \
                 (3 × emit.heartbeats.interval + 10 s, the rule `strait status` uses).",
                bound.as_secs()
            ),
            Note::DetectionByCopies { b, bound } => write!(
                f,
                "Failure detection: the drill topic's copies on {b} stopped growing for {} s (the heartbeat staleness \
                 bound, 3 × emit.heartbeats.interval + 10 s): the primary's heartbeats keep flowing in a simulation.",
                bound.as_secs()
            ),
            Note::DetectionByProbes { a, how } => write!(
                f,
                "Failure detection: `strait run`'s probes of {a} (a metadata request on a kept-alive connection every {} ms, \
                 {} ms timeout) unanswered for {:.1} s in a row (strait.region.probe.interval.ms, strait.region.probe.timeout.ms, \
                 strait.region.down.after.ms). Heartbeat staleness (3 × emit.heartbeats.interval + 10 s) stays the \
                 slower second signal in `strait status`.",
                how.probe_every.as_millis(),
                how.probe_timeout.as_millis(),
                how.down_after.as_secs_f64()
            ),
            Note::FailoverRan {
                mode,
                steps,
                rto_ms,
            } => write!(
                f,
                "strait failover ran {mode} (steps: {}) and reported an RTO of {:.2} s (its own start to consumers ready).",
                steps.join(", "),
                *rto_ms as f64 / 1000.0
            ),
            Note::GroupNotMoved {
                group,
                action,
                reason,
                b,
            } => write!(
                f,
                "The failover did not move group {group}: {action} ({}); it resumed on {b} from whatever it had there.",
                reason.as_deref().unwrap_or("no reason given")
            ),
            Note::NoCheckpoint { group, b } => write!(
                f,
                "The failover found no checkpoint of group {group} on {b}; it resumed there from whatever it had (the earliest \
                 offset when nothing)."
            ),
            Note::FailoverWarning(w) => write!(f, "Failover warning: {w}"),
            Note::LeftBehind(left) => write!(
                f,
                "Clean-up: left behind (delete them by hand): {}.",
                left.join("; ")
            ),
        }
    }
}

/// A reason the drill failed, beside what the sequence check finds.
#[derive(Debug)]
pub(crate) enum Problem {
    StoppedEarly(String),
    NotDetected { a: String, within: Duration },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::StoppedEarly(e) => write!(f, "The drill stopped early: {e}"),
            Problem::NotDetected { a, within } => write!(
                f,
                "The failure of {a} was not detected within {} s; the drill failed over anyway.",
                within.as_secs()
            ),
        }
    }
}

/// The drill's narrator: progress goes out at once, notes and problems are kept for the report.
/// Shared (`Clone`) by the timeline and the environment, which both have things to say.
#[derive(Clone)]
pub(crate) struct Narrator {
    progress: super::Progress,
    kept: Arc<Mutex<Kept>>,
}

#[derive(Default)]
struct Kept {
    notes: Vec<Note>,
    problems: Vec<Problem>,
}

impl Narrator {
    pub(crate) fn new(progress: super::Progress) -> Self {
        Self {
            progress,
            kept: Arc::default(),
        }
    }

    pub(crate) fn say(&self, line: Say) {
        (self.progress)(&line.to_string());
    }

    pub(crate) fn note(&self, note: Note) {
        self.kept().notes.push(note);
    }

    pub(crate) fn problem(&self, problem: Problem) {
        self.kept().problems.push(problem);
    }

    /// The notes and the problems, rendered for the report.
    pub(crate) fn rendered(&self) -> (Vec<String>, Vec<String>) {
        let kept = self.kept();
        (
            kept.notes.iter().map(Note::to_string).collect(),
            kept.problems.iter().map(Problem::to_string).collect(),
        )
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while pushing to a Vec leaves it whole: the notes are still good.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
