//! DR drills (`strait drill`): the sequence check and report (no I/O), the timeline, the two
//! environments a drill runs in, and the drill's traffic.
//!
//! A drill writes sequence-numbered records to a topic on the primary region, consumes them
//! there, fails the primary, lets strait fail over, moves producer and consumer to the secondary
//! and keeps going. Whether that worked is decided afterwards from sequence numbers alone:
//! [`verify`] compares what the producer had acknowledged with what the consumer received, and
//! [`report`] turns that and the drill's timings into the report a human files (JSON, Markdown,
//! HTML with a timeline chart). `run` is the timeline, `regions` what differs between a sandbox
//! drill and a simulated one on the user's clusters, `narration` what the drill says (typed
//! events rendered to progress lines and report notes), `sampler` the timeline's samples and
//! [`traffic`] the drill's producer and consumer.

mod error;
mod narration;
mod options;
mod regions;
pub mod report;
mod run;
mod sampler;
pub mod traffic;
pub(crate) mod verify;

pub use error::{DrillError, Halt, NotReady};
pub use options::{check, DrillOptions, DrillOutcome, Environment, Progress};
pub use report::{
    budgets, BudgetResult, BudgetUnit, DrillCounts, DrillDurations, DrillReport, DrillSettings,
    DrillTimes, EstimateCheck, Mark, MarkKind, RpoEstimate, Sample,
};
pub use run::{run, MIN_ON_SECONDARY, NO_SANDBOX, PARTITIONS};
pub use sampler::SAMPLE_EVERY;
pub use verify::{
    verify, Ack, Delivery, FirstOnSecondary, LostRecord, SeqRange, Side, Verification,
};
