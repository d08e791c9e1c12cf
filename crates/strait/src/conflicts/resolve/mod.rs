//! Last-writer-wins resolved views (issue 16, item 4): for every topic a `last-writer-wins` rule
//! covers, each region R keeps `<topic>.resolved` on its own cluster, holding for each key the
//! version that wins among every region's writes (the rule of [`strait_conflicts::lww`]: the
//! later timestamp, then the region earlier in `strait.conflicts.regions`, then partition,
//! offset and a digest of the value).
//!
//! **Inputs.** R's writes are its local topic (`orders`); another region Q's writes reach R as
//! the direct remote copy the flow Q->R makes (`Q.orders`, named by that flow's replication
//! policy). Copies of copies (`W.E.orders` in a chain of three regions) are ignored: the writes
//! they hold arrive directly too. A version is the record's timestamp, the rank of the region it
//! was written in, and its partition and offset as read in R: a remote copy keeps the partition
//! and the order of its records, so the versions of one region compare the same way in every
//! region, and every region's view converges to the same winners whatever order the inputs are
//! read in. Records without a key are skipped (counted, said once).
//!
//! **Output.** When a version wins, it is written to `<topic>.resolved` (compacted, as many
//! partitions as the local topic) in the partition it was read from: key, value (a tombstone
//! stays a tombstone), the winner's timestamp, its headers, and `strait.origin` (the region's
//! alias), `strait.partition` and `strait.offset` (as read in R). A version that loses, or won
//! already, writes nothing. The view is never replicated (see `config::conflicts::Derived`).
//!
//! **Progress.** One consumer group per rule and region on R (`strait.resolve.<rule>.<R>`, a
//! `strait.` group: never checkpointed) reads the inputs; an input offset is committed only
//! once what it produced is acknowledged, so a crash re-reads, and a version read again is
//! `Again`: nothing is written twice for it. A partition's winners are read back from the view
//! topic whenever this process is given the partition (at start, after a rebalance), so a
//! restart resumes with the view as written.
//!
//! **Memory.** A process holds the winners of the partitions it was given, per key a 128-bit
//! digest of the key and its [`strait_conflicts::lww::Version`]: 48 bytes in a table whose
//! bucket count is a power of two, about 77 bytes a key with the buckets left free (measured
//! at 1M keys; BENCHMARKS.md, "Conflict topics"). The key bytes themselves stay in the view topic.
//!
//! **Several processes.** The group shares partitions with the range assignor, which gives
//! partition p of every input to the same member when the inputs have the same partition count.
//! So a key must be in the same partition number in every input: the same partition count
//! everywhere and the default partitioner (flows keep partition numbers, so that holds for the
//! remote copies whenever it holds for the local topics). Different counts are logged as errors
//! naming the topics.

mod headers;
mod session;
mod spec;

pub(crate) use headers::{digest, OFFSET_HEADER, ORIGIN_HEADER, PARTITION_HEADER};
pub(crate) use spec::ResolveSpec;
use spec::Signature;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::stop::CancellationToken;

/// What the job counts, and what it says only once.
#[derive(Debug, Default)]
pub(crate) struct ResolveStats {
    /// Input records taken in.
    pub read: AtomicU64,
    /// Winners written to the views (acknowledged or not).
    pub written: AtomicU64,
    /// Input records without a key, skipped.
    pub keyless: AtomicU64,
    /// Input records without a timestamp, skipped.
    pub untimed: AtomicU64,
    said_keyless: AtomicBool,
    said_untimed: AtomicBool,
    said_log_append: AtomicBool,
    said_foreign: AtomicBool,
    /// Partition problems already logged, and the last inputs announced.
    said: Mutex<(BTreeSet<String>, Signature)>,
}

/// A running view job.
pub(crate) struct RunningResolver {
    /// `rule in region`.
    pub name: String,
    task: tokio::task::JoinHandle<()>,
}

impl RunningResolver {
    /// Wait for the job to end (after its token was cancelled).
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// Start the job on the current runtime; it runs until `cancel` fires.
pub(crate) fn start(spec: ResolveSpec, cancel: CancellationToken) -> RunningResolver {
    let name = spec.name();
    let task = tokio::spawn(job(spec, cancel, Arc::new(ResolveStats::default())));
    RunningResolver { name, task }
}

/// How a session ended other than by failing.
enum Ended {
    /// Stopped by the service.
    Stopped,
    /// The inputs changed: start over with the new ones.
    TopicsChanged,
}

async fn job(spec: ResolveSpec, cancel: CancellationToken, stats: Arc<ResolveStats>) {
    if let Some(problem) = spec.naming_problem() {
        error!(rule = %spec.rule, region = %spec.region, "no last-writer-wins view is kept: {problem}");
        return;
    }
    let mut backoff = Backoff::standard();
    loop {
        match session::session(&spec, &cancel, &stats).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::TopicsChanged) => backoff = Backoff::standard(),
            Err(e) => {
                warn!(rule = %spec.rule, region = %spec.region, error = %e, "the last-writer-wins view stopped; starting over (what was not committed is read again)");
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
    info!(
        rule = %spec.rule,
        region = %spec.region,
        read = stats.read.load(Ordering::Relaxed),
        written = stats.written.load(Ordering::Relaxed),
        keyless = stats.keyless.load(Ordering::Relaxed),
        "last-writer-wins view stopped"
    );
}
