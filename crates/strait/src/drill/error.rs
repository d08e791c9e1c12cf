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
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A bug rather than a mistake: the file the drill wrote for itself is refused.
    #[error("the drill's own MM2 file does not load: {0}")]
    OwnFile(String),
    /// The drill stopped before it failed the primary (nothing was failed, no report written).
    #[error(transparent)]
    Halted(#[from] Halt),
    #[error("cannot write the report to {}: {source}", dir.display())]
    Report {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Why a drill stopped before its end. Before the failure this ends the drill without a report;
/// after it, the report says so and fails.
#[derive(Debug, thiserror::Error)]
pub enum Halt {
    #[error("the drill was interrupted (Ctrl-C)")]
    Interrupted,
    #[error("replication {0} stopped with an error (see the log)")]
    ReplicationFailed(String),
    #[error("replication {a}->{b} did not start within {} s ({missing}); nothing was failed", START_TIMEOUT.as_secs())]
    NotStarted {
        a: String,
        b: String,
        missing: NotReady,
    },
    #[error("cannot start a drill client thread: {0}")]
    ClientThread(#[source] std::io::Error),
    #[error("the failover failed: {0}")]
    Failover(#[source] FailoverError),
    #[error(transparent)]
    Cluster(#[from] ClientError),
}

/// What replication had not shown when the drill gave up waiting for it.
#[derive(Debug)]
pub enum NotReady {
    /// The drill topic's copies never appeared on the secondary.
    RemoteTopic { topic: String, secondary: String },
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
