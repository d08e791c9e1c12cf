//! DR drills (`strait drill`): the sequence check and report (no I/O), the orchestration and the drill's traffic.
//!
//! A drill writes sequence-numbered records to a topic on the primary region, consumes them
//! there, fails the primary, lets strait fail over, moves producer and consumer to the secondary
//! and keeps going. Whether that worked is decided afterwards from sequence numbers alone:
//! [`verify`] compares what the producer had acknowledged with what the consumer received, and
//! [`report`] turns that and the drill's timings into the report a human files (JSON, Markdown,
//! HTML with a timeline chart). [`run`] is the orchestration that talks to Kafka (regions,
//! replication, failure, failover) and [`traffic`] the drill's producer and consumer; they hand
//! their observations to the two pure modules.

pub mod report;
pub mod run;
pub mod traffic;
pub mod verify;

pub use report::{
    budgets, BudgetResult, BudgetUnit, DrillCounts, DrillDurations, DrillReport, DrillSettings,
    DrillTimes, Mark, MarkKind, RpoEstimate, Sample,
};
pub use run::{DrillError, DrillOptions, DrillOutcome, Environment, NO_SANDBOX};
pub use verify::{
    verify, Ack, Delivery, FirstOnSecondary, LostRecord, SeqRange, Side, Verification,
};
