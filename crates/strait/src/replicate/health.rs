//! What a running flow is doing and what stands in its way, for the operator.
//!
//! A flow retries what can heal (a cluster away, a leader moving) without end, which is right for
//! the data and wrong for the operator if nobody hears of it: a missing ACL looks like a flow that
//! is merely slow. Each error the flow meets is classified ([`ErrorClass`], the label of
//! `strait_flow_errors_total`), counted, logged at most every [`SAY_EVERY`] per class, and kept
//! as the flow's current problem while it recurs. `/api/status` shows the flow's [`Condition`]
//! and problem ([`FlowProcess`]) and makes the flow BROKEN for a class that will not heal by
//! itself ([`ErrorClass::heals`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode as C;
use serde::{Deserialize, Serialize};

use crate::kafka::ClientError;

/// How long a problem stays current after it was last met.
const CURRENT_FOR: Duration = Duration::from_secs(30);
/// At most one log line per class of error in this time (the counter counts every one).
pub(crate) const SAY_EVERY: Duration = Duration::from_secs(10);

/// What a flow is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Creating its topics and reading the source's before copying.
    Starting,
    /// Copying.
    Replicating,
    /// Running, but held up: a setup step retrying, or the target taking nothing (`reason`).
    Waiting,
    /// Ended on an error it cannot get past (`reason`); the process exits.
    Failed,
}

impl Condition {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Condition::Starting,
            1 => Condition::Replicating,
            2 => Condition::Waiting,
            _ => Condition::Failed,
        }
    }
}

/// How many [`ErrorClass`]es there are (the counters are indexed by class).
const CLASSES: usize = 8;

/// A class of error a flow meets: the `class` label of `strait_flow_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A cluster does not answer, or its connection dropped.
    Unreachable,
    /// The cluster refused the login (SASL).
    Authentication,
    /// The TLS handshake failed.
    Tls,
    /// An ACL does not allow what the flow does.
    Authorization,
    /// Another error reading the source.
    Source,
    /// Another error writing to the target.
    Target,
    /// An error the client cannot recover from.
    Fatal,
    /// A record the target will never take (larger than the remote topic allows).
    Record,
}

impl ErrorClass {
    /// Every class, in label order.
    pub const ALL: [ErrorClass; CLASSES] = [
        ErrorClass::Unreachable,
        ErrorClass::Authentication,
        ErrorClass::Tls,
        ErrorClass::Authorization,
        ErrorClass::Source,
        ErrorClass::Target,
        ErrorClass::Fatal,
        ErrorClass::Record,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Authentication => "authentication",
            ErrorClass::Tls => "tls",
            ErrorClass::Authorization => "authorization",
            ErrorClass::Source => "source",
            ErrorClass::Target => "target",
            ErrorClass::Fatal => "fatal",
            ErrorClass::Record => "record",
        }
    }

    /// Whether errors of this class go away without an operator (a cluster coming back); a
    /// flow held up by one that does not is BROKEN.
    pub fn heals(self) -> bool {
        !matches!(
            self,
            ErrorClass::Authentication
                | ErrorClass::Tls
                | ErrorClass::Authorization
                | ErrorClass::Fatal
                | ErrorClass::Record
        )
    }

    /// The class of a librdkafka error met on the source (`on_target` false) or the target.
    pub fn of(error: &KafkaError, on_target: bool) -> Self {
        Self::of_code(error.rdkafka_error_code(), on_target)
    }

    /// The class of a failed call to a cluster of the flow.
    pub fn of_client(error: &ClientError, on_target: bool) -> Self {
        Self::of_code(error.code(), on_target)
    }

    fn of_code(code: Option<C>, on_target: bool) -> Self {
        match code {
            Some(C::Authentication | C::SaslAuthenticationFailed) => ErrorClass::Authentication,
            Some(C::SSL) => ErrorClass::Tls,
            Some(
                C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::TransactionalIdAuthorizationFailed,
            ) => ErrorClass::Authorization,
            Some(
                C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::Resolve
                | C::NetworkException
                | C::RequestTimedOut
                | C::OperationTimedOut,
            ) => ErrorClass::Unreachable,
            Some(C::Fatal) => ErrorClass::Fatal,
            Some(C::MessageSizeTooLarge | C::InvalidRecord) => ErrorClass::Record,
            _ if on_target => ErrorClass::Target,
            _ => ErrorClass::Source,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why records were skipped: the `reason` label of `strait_records_skipped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The source deleted them (retention) before the flow copied them.
    Retention,
}

/// The problem in the way of a flow now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Its class.
    pub class: ErrorClass,
    /// What an operator reads: which cluster, at which address, and what it said.
    pub message: String,
    /// Epoch milliseconds when it was first met (in this row of occurrences).
    pub since_ms: i64,
}

/// A source partition stopped at a record the target refuses for good (larger than the remote
/// topic allows): nothing after it is copied or committed, so order is kept, until the limit is
/// raised and the flow restarted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedPartition {
    /// The source topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the record that cannot be written.
    pub offset: i64,
    /// One sentence: the record, its size, the limit and where to raise it.
    pub reason: String,
}

/// What this process sees of a running flow: the `process` field of a flow in `/api/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowProcess {
    /// What the flow is doing.
    pub condition: Condition,
    /// Why it is waiting or failed.
    pub reason: Option<String>,
    /// The error met most recently, while it keeps being met (and for a failed flow).
    pub problem: Option<Problem>,
    /// Errors met since the flow started, by class (classes never met are left out).
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Records skipped since the flow started, by reason (none: empty).
    pub records_skipped: BTreeMap<SkipReason, u64>,
    /// Partitions stopped at a record the target will never take, with the reason; the rest of
    /// the flow goes on.
    #[serde(default)]
    pub stopped_partitions: Vec<StoppedPartition>,
    /// Source partitions this process replicates now.
    pub assigned_partitions: u64,
}

impl FlowProcess {
    /// Whether the flow cannot get on without an operator: failed, or held up by an error that
    /// does not heal by itself.
    pub fn is_broken(&self) -> bool {
        self.condition == Condition::Failed
            || !self.stopped_partitions.is_empty()
            || self.problem.as_ref().is_some_and(|p| !p.class.heals())
    }
}

/// A flow's health, updated by the flow and read by the HTTP server.
#[derive(Debug, Default)]
pub struct FlowHealth {
    condition: AtomicU8,
    errors: [AtomicU64; CLASSES],
    skipped_retention: AtomicU64,
    /// The current problem, when it was last met, and when each class was last logged.
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    reason: Option<String>,
    stopped: Vec<StoppedPartition>,
    problem: Option<(Problem, Instant)>,
    said: [Option<Instant>; CLASSES],
}

impl FlowHealth {
    /// The flow copies: what held it is over.
    pub(crate) fn replicating(&self) {
        let before = self
            .condition
            .swap(Condition::Replicating as u8, Ordering::Relaxed);
        if before != Condition::Replicating as u8 {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.reason = None;
            s.problem = None;
        }
    }

    /// The flow is held up, for `reason`.
    pub(crate) fn waiting(&self, reason: String) {
        self.condition
            .store(Condition::Waiting as u8, Ordering::Relaxed);
        self.state.lock().unwrap_or_else(|e| e.into_inner()).reason = Some(reason);
    }

    /// The flow ended on `reason`.
    pub(crate) fn failed(&self, reason: String) {
        self.condition
            .store(Condition::Failed as u8, Ordering::Relaxed);
        self.state.lock().unwrap_or_else(|e| e.into_inner()).reason = Some(reason);
    }

    /// What the flow is doing.
    pub fn condition(&self) -> Condition {
        Condition::from_u8(self.condition.load(Ordering::Relaxed))
    }

    /// Count an error of `class` and make it the current problem; true when it should be
    /// logged now (the first of its class in [`SAY_EVERY`]).
    pub(crate) fn met(&self, class: ErrorClass, message: String) -> bool {
        self.errors[class.index()].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let since_ms = match &s.problem {
            Some((p, last)) if p.class == class && last.elapsed() < CURRENT_FOR => p.since_ms,
            _ => crate::heartbeat::now_ms(),
        };
        s.problem = Some((
            Problem {
                class,
                message,
                since_ms,
            },
            now,
        ));
        let said = &mut s.said[class.index()];
        if said.is_none_or(|t| t.elapsed() >= SAY_EVERY) {
            *said = Some(now);
            true
        } else {
            false
        }
    }

    /// A partition stopped at a record the target refuses for good.
    pub(crate) fn stopped(&self, p: StoppedPartition) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.stopped
            .retain(|q| (q.topic.as_str(), q.partition) != (p.topic.as_str(), p.partition));
        s.stopped.push(p);
    }

    /// The partition went to another process (or away): it is not stopped here any more.
    pub(crate) fn released(&self, topic: &str, partition: i32) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.stopped
            .retain(|q| (q.topic.as_str(), q.partition) != (topic, partition));
    }

    /// Count records skipped because the source deleted them.
    pub(crate) fn skipped_by_retention(&self, n: u64) {
        self.skipped_retention.fetch_add(n, Ordering::Relaxed);
    }

    /// Errors of `class` met so far.
    pub fn errors(&self, class: ErrorClass) -> u64 {
        self.errors[class.index()].load(Ordering::Relaxed)
    }

    /// Records skipped because the source deleted them before they were copied.
    pub fn skipped_retention(&self) -> u64 {
        self.skipped_retention.load(Ordering::Relaxed)
    }

    /// The flow as this process sees it now.
    pub fn view(&self, assigned_partitions: u64) -> FlowProcess {
        let condition = self.condition();
        let (reason, problem, stopped_partitions) = {
            let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let problem = s
                .problem
                .as_ref()
                .filter(|(_, last)| {
                    // A failure stays; anything else while it keeps being met.
                    condition == Condition::Failed || last.elapsed() < CURRENT_FOR
                })
                .map(|(p, _)| p.clone());
            let reason = s
                .reason
                .clone()
                .filter(|_| matches!(condition, Condition::Waiting | Condition::Failed));
            (reason, problem, s.stopped.clone())
        };
        let errors = ErrorClass::ALL
            .iter()
            .map(|c| (*c, self.errors(*c)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let mut records_skipped = BTreeMap::new();
        if self.skipped_retention() > 0 {
            records_skipped.insert(SkipReason::Retention, self.skipped_retention());
        }
        FlowProcess {
            condition,
            reason,
            problem,
            errors,
            records_skipped,
            stopped_partitions,
            assigned_partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_librdkafka_codes() {
        let e = |c| KafkaError::MessageConsumption(c);
        assert_eq!(
            ErrorClass::of(&e(C::TopicAuthorizationFailed), false),
            ErrorClass::Authorization
        );
        assert_eq!(
            ErrorClass::of(&e(C::AllBrokersDown), true),
            ErrorClass::Unreachable
        );
        assert_eq!(
            ErrorClass::of(&e(C::UnknownTopicOrPartition), true),
            ErrorClass::Target
        );
        assert_eq!(
            ErrorClass::of(&e(C::UnknownTopicOrPartition), false),
            ErrorClass::Source
        );
        assert!(!ErrorClass::Authorization.heals());
        assert!(ErrorClass::Unreachable.heals());
        // The label order is the declaration order (the counters are indexed by it).
        for (i, c) in ErrorClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn a_problem_is_counted_every_time_and_said_once_per_interval() {
        let h = FlowHealth::default();
        assert!(h.met(ErrorClass::Authorization, "denied".into()));
        assert!(!h.met(ErrorClass::Authorization, "denied".into()));
        assert!(h.met(ErrorClass::Unreachable, "away".into()));
        assert_eq!(h.errors(ErrorClass::Authorization), 2);
        let v = h.view(3);
        assert_eq!(v.problem.unwrap().class, ErrorClass::Unreachable);
        assert_eq!(v.errors.len(), 2);
        assert!(!h.view(3).is_broken());
        h.met(ErrorClass::Authorization, "denied".into());
        assert!(h.view(3).is_broken());
    }

    #[test]
    fn copying_again_clears_what_held_the_flow() {
        let h = FlowHealth::default();
        assert_eq!(h.view(0).condition, Condition::Starting);
        h.waiting("creating the offset index topic failed".into());
        h.met(ErrorClass::Unreachable, "away".into());
        let v = h.view(0);
        assert!(v.problem.is_some() && v.reason.is_some());
        h.replicating();
        let v = h.view(0);
        assert!(v.problem.is_none() && v.reason.is_none());
        h.failed("record t-0@5 larger than the target accepts".into());
        let v = h.view(0);
        assert_eq!(v.condition, Condition::Failed);
        assert!(v.is_broken());
    }
}
