//! How background work stops: one tree of [`CancellationToken`]s. The service holds the root;
//! each flow, heartbeat emitter, checkpoint job, lag recorder and the HTTP server gets a child,
//! and a flow hands children to its own parts (its copy loop among them). Cancelling a node stops
//! everything below it, and a token dropped with its owner stops nothing by accident: stopping is
//! always a call to `cancel`.
//!
//! Work waits in two ways only: `pause` between rounds, and `or_cancel` around a call that
//! may take a cluster's timeout, so that a stop is seen at once rather than after the call. The
//! copy loop's thread, the one blocking part, checks [`CancellationToken::is_cancelled`]
//! between polls.

use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// Sleep `d`, or less if `cancel` fires: false when cancelled.
pub(crate) async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => !cancel.is_cancelled(),
        _ = cancel.cancelled() => false,
    }
}

/// `f`'s output, or `None` as soon as `cancel` fires (`f` is dropped then).
pub(crate) async fn or_cancel<F: Future>(cancel: &CancellationToken, f: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        v = f => Some(v),
    }
}
