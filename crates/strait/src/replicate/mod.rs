//! The data path of one flow: topic discovery and creation, record copy, offset syncs.

pub(crate) mod acls;
pub(crate) mod configs;
pub(crate) mod flow;
pub(crate) mod health;
pub mod mm2_offsets;
pub(crate) mod offset_syncs;
pub mod passthrough;
pub(crate) mod progress;
pub mod resume;
pub mod source_view;
pub(crate) mod topics;

pub use acls::sync_topic_acls;
pub use configs::{overrides_if_partial, sync_topic_configs};
pub use flow::{
    records_because, records_because_in, start, FlowSpec, FlowStats, Mm2Positions, NameMatcher,
    OffsetSyncTarget, RunningFlow,
};
pub use health::{
    Condition, ErrorClass, FlowHealth, FlowProcess, Problem, SkipReason, StoppedPartition,
};
pub use source_view::SourceView;
pub use topics::TopicSync;

use crate::kafka::ClientError;

/// Why a flow stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A client could not be created, or a cluster call the flow cannot do without failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The flow cannot go on: a record or index entry not written to the target, a refused
    /// subscription, a copy loop that panicked. Nothing unwritten was committed; a restart
    /// replicates it again.
    #[error("flow {flow}: {reason}")]
    Fatal {
        /// The flow, `S->T`.
        flow: String,
        /// What went wrong, in one sentence.
        reason: String,
    },
    /// The flow's transactional producer can go on no more (fenced: its transaction outlived
    /// `transaction.timeout.ms` while the target was away). Nothing of the failed transaction
    /// is visible; the copy loop starts again with a new producer. Never ends a flow.
    #[error("flow {flow}: {reason}")]
    Restart {
        /// The flow, `S->T`.
        flow: String,
        /// What ended the producer.
        reason: String,
    },
}

/// The consumer group through which every process running flow `S->T` shares its partitions
/// on the source, and whose committed offsets are the flow's replicated position.
pub fn replication_group(source: &str, target: &str) -> String {
    format!("strait.{}", crate::config::flow_name(source, target))
}

/// strait's own groups (`strait.*`): never checkpointed, synced or shown as consumer groups.
pub fn is_strait_group(group: &str) -> bool {
    group.starts_with("strait.")
}
