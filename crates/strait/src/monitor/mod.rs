//! Monitoring: the lag model (`model`) and how it is read off the clusters (`collect`).

pub(crate) mod collect;
pub(crate) mod model;
pub mod snapshot;

pub use collect::{collect, Delivered, DeliveredBy, DeliveredOf, Options};
pub use model::{FlowStatus, GroupStatus, PartitionLag, ReplicatedFrom, Status, Verdict};
