//! Failover and failback: moving consumers between regions along a replication flow, the
//! durable record of which region is active, and the report of what it cost.

pub mod active;
pub mod clients;
pub(crate) mod execute;
pub(crate) mod failback;
pub mod report;

pub use execute::{failover, flow_for, move_groups_unplanned, FailoverError, Options, Progress};
pub use failback::{failback, FailbackOptions};
pub use report::FailoverReport;
