//! DR drills (`strait drill`): the parts with no I/O.
//!
//! A drill writes sequence-numbered records to a topic on the primary region, consumes them
//! there, fails the primary, lets strait fail over, moves producer and consumer to the secondary
//! and keeps going. Whether that worked is decided afterwards from sequence numbers alone:
//! [`verify`] compares what the producer had acknowledged with what the consumer received, and
//! [`report`] turns that and the drill's timings into the report a human files (JSON, Markdown,
//! HTML with a timeline chart). The orchestration that talks to Kafka lives elsewhere and hands
//! its observations to these two modules.

pub mod report;
pub mod verify;

pub use report::{
    budgets, BudgetResult, BudgetUnit, DrillCounts, DrillDurations, DrillReport, DrillSettings,
    DrillTimes, Mark, MarkKind, RpoEstimate, Sample,
};
pub use verify::{
    verify, Ack, Delivery, FirstOnSecondary, LostRecord, SeqRange, Side, Verification,
};
