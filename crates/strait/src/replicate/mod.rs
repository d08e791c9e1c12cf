//! The data path of one flow: topic discovery and creation, record copy, offset syncs.

pub mod acls;
pub mod configs;
pub mod flow;
pub mod offset_syncs;
pub mod progress;
pub mod topics;

pub use flow::{start, FlowSpec, FlowStats, NameMatcher, OffsetSyncTarget, RunningFlow};

use crate::kafka::ClientError;

/// Why a flow stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("flow {flow}: {reason}")]
    Fatal { flow: String, reason: String },
}
