//! Why a drill ends without its report, or stops before its end.

use std::path::PathBuf;

use super::run::START_TIMEOUT;
use crate::failover::FailoverError;
use crate::kafka::ClientError;

/// A drill that did not get as far as its report.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Asked for something that cannot work; nothing was started.
    #[error("{0}")]
    Usage(String),
    /// The sandbox regions did not start.
    #[error("{0}")]
    Sandbox(String),
    /// The drill's sandbox MM2 file could not be written to the report directory.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// A bug rather than a mistake: the file the drill wrote for itself is refused.
    #[error("the drill's own MM2 file does not load: {0}")]
    OwnFile(String),
    /// The drill stopped before it failed the primary (nothing was failed, no report written).
    #[error(transparent)]
    Halted(#[from] Halt),
    /// The drill ran to its end but its report files could not be written.
    #[error("cannot write the report to {}: {source}", dir.display())]
    Report {
        /// The report directory (`--report-dir`).
        dir: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
}

/// Why a drill stopped before its end. Before the failure this ends the drill without a report;
/// after it, the report says so and fails.
#[derive(Debug, thiserror::Error)]
pub enum Halt {
    /// The operator pressed Ctrl-C.
    #[error("the drill was interrupted (Ctrl-C)")]
    Interrupted,
    /// The named replication flow ended with an error before the primary was failed.
    #[error("replication {0} stopped with an error (see the log)")]
    ReplicationFailed(String),
    /// Replication showed no sign of life within the start timeout, so the primary was not failed.
    #[error("replication {a}->{b} did not start within {} s ({missing}); nothing was failed", START_TIMEOUT.as_secs())]
    NotStarted {
        /// The primary region.
        a: String,
        /// The secondary region.
        b: String,
        /// What had not shown yet.
        missing: NotReady,
    },
    /// The OS refused a thread for the drill's producer or consumer.
    #[error("cannot start a drill client thread: {0}")]
    ClientThread(#[source] std::io::Error),
    /// The unplanned failover to the secondary returned an error.
    #[error("the failover failed: {0}")]
    Failover(#[source] FailoverError),
    /// A call to one of the regions' clusters failed.
    #[error(transparent)]
    Cluster(#[from] ClientError),
}

/// What replication had not shown when the drill gave up waiting for it.
#[derive(Debug)]
pub enum NotReady {
    /// The drill topic's copies never appeared on the secondary.
    RemoteTopic {
        /// The drill topic's name on the secondary, as the flow's replication policy names it.
        topic: String,
        /// The secondary region.
        secondary: String,
    },
    /// No heartbeat crossed the flow.
    Heartbeat,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::RemoteTopic { topic, secondary } => {
                write!(f, "{topic} never appeared on {secondary}")
            }
            NotReady::Heartbeat => f.write_str("no heartbeat crossed it"),
        }
    }
}
