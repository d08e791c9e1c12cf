//! Detection of concurrent writes (issue 16, item 2): for each region R, a job finds the writes
//! to one key made in R and in another region Q without knowledge of each other, and records
//! each pair in `strait.conflicts` on R.
//!
//! **The rule** is `strait_conflicts::detect`'s: w_R and w_Q conflict when w_Q was stamped no
//! later than the instant R's write became readable in Q, and w_R no later than the instant
//! Q's became readable in R. The instants come from receipts (`conflicts::receipts`): the flow
//! that copied a write took `[sent, acked]` around the moment its copy became readable; record
//! timestamps are the writers'. All are moved onto strait's clock by `conflicts::clock::Clocks`
//! (for now: every clock within `strait.conflicts.clock.tolerance.ms`); a pair the bounds cannot
//! settle is recorded as uncertain, never dropped.
//!
//! **Inputs.** The receipts of copies into R (`strait.receipts` on R: Q's writes) and of copies
//! of R's writes into each Q (`strait.receipts` on Q). A key's receipts are in the same
//! partition number on every cluster, so partition p is read on R under the consumer group
//! `strait.detect.<R>` (shared by every process running the job) and partition p of each Q by
//! assignment, together. Progress marks in the same partitions let go of what can pair with
//! nothing more: what is kept is about the last replication lag's writes plus the writers'
//! delivery delay (`strait.conflicts.write.delay.max.ms`, two minutes by default), all of a cut's until its heal. During a cut R's
//! detector cannot read Q's receipts: it waits, and finds the cut's conflicts after the heal.
//!
//! **Output.** One `ConflictRecord` (kind `concurrent-writes`) per pair, keyed by its id, with
//! the outcome by the rule's strategy: last-writer-wins `overwritten` (the winner by
//! `strait_conflicts::lww`, as in every resolved view: the version that loses is recorded, not
//! silently dropped), authority `owner-wins` when one of the two regions owns the key (else
//! `reported`), events `merged`. Each is counted in `strait_conflicts_total`.
//!
//! **Restarts.** The group's commit on R's partition p holds the offset of the earliest receipt
//! still kept from R, and in its metadata that of each Q's: a restart reads again from there,
//! rebuilds the same state and finds the same conflicts again (same ids: the compacted topic
//! keeps one of each). Commits wait for the conflict records found before them.
//! [`session`] is the reading session, [`writer`] the records, [`spec`] the configuration.

mod session;
pub(crate) mod spec;
pub(crate) mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::stop::CancellationToken;

pub(crate) use spec::DetectSpec;

/// At most this many deliveries of one key are kept (a key written very often by both regions
/// during a long cut): beyond it the oldest are let go, counted.
pub(crate) const DELIVERIES_PER_KEY: usize = 64;

/// What the job counts.
#[derive(Debug, Default)]
pub struct DetectStats {
    /// Receipts read.
    pub receipts: AtomicU64,
    /// Conflict records written (again after a restart).
    pub written: AtomicU64,
    /// Copies made again after their direction's progress, not judged
    /// (`strait_conflict_writes_unjudged_total{reason="late"}`).
    pub late: AtomicU64,
    /// Deliveries pushed out by [`DELIVERIES_PER_KEY`] (`reason="evicted"`).
    pub evicted: AtomicU64,
    /// Deliveries kept now, in every detector of the session
    /// (`strait_conflict_deliveries_kept`).
    pub kept: AtomicU64,
    /// Records of `strait.receipts` that were not receipts.
    pub malformed: AtomicU64,
    /// Digests of the conflict ids counted in `strait_conflicts_total` by this job.
    pub counted: Arc<Mutex<HashSet<u64>>>,
}

/// A running detector job.
pub(crate) struct RunningDetector {
    /// The region, R.
    pub name: String,
    /// What it counts (for `/metrics`).
    pub stats: Arc<DetectStats>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningDetector {
    /// Wait for the job to end (after its token was cancelled).
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// Start the job on the current runtime; it runs until `cancel` fires.
pub(crate) fn start(spec: DetectSpec, cancel: CancellationToken) -> RunningDetector {
    let name = spec.region.clone();
    let stats = Arc::new(DetectStats::default());
    let task = tokio::spawn(job(spec, cancel, stats.clone()));
    RunningDetector { name, stats, task }
}

async fn job(spec: DetectSpec, cancel: CancellationToken, stats: Arc<DetectStats>) {
    let mut backoff = Backoff::standard();
    loop {
        match session::run(&spec, &cancel, &stats).await {
            Ok(()) => break,
            Err(e) => {
                warn!(region = %spec.region, error = %e, "conflict detection stopped; starting over (receipts not committed are read again)");
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
    info!(
        region = %spec.region,
        receipts = stats.receipts.load(Ordering::Relaxed),
        conflicts = stats.written.load(Ordering::Relaxed),
        late = stats.late.load(Ordering::Relaxed),
        evicted = stats.evicted.load(Ordering::Relaxed),
        "conflict detection stopped"
    );
}
