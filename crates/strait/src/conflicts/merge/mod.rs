//! Merged event streams (issue 16, item 5): for every topic an `events` rule covers, each
//! region R keeps `<topic>.merged` on its own cluster, holding every region's events in one
//! order that is the same in every region, so that a consumer folding them (`ORDER_SHIPPED`,
//! `ORDER_CANCELLED`) reaches the same state everywhere.
//!
//! **The order** is [`strait_conflicts::events`]': by effective time (the event's timestamp,
//! raised to the floor its partition had promised), then the region's place in
//! `strait.conflicts.regions`, then partition and offset in the region it was written in. An
//! event is released once every region's partition is known to write nothing earlier, and
//! dropped when its id (the `event.id.header` header) was released within [`DEDUPE_WINDOW`]
//! before. Every region computes the same sequence from the same inputs, whatever it hears
//! first.
//!
//! **Inputs.** R's merger reads each region's events from that region's own cluster (the local
//! topic, `order-events` on us-west for us-west's events), never from remote copies: positions
//! are origin offsets, the same for every reader, so nothing needs translating. The promises
//! come from [`marks`]: a small job per region writes `(position, time)` for each partition of
//! its event topics to [`MARKS_TOPIC`] on its cluster each second.
//!
//! **Output.** Partition p of `<topic>.merged` on R holds the merge of partition p of `<topic>`
//! in every region (so the topic must have the same partition count in every region; a topic
//! whose counts differ is not merged and the difference is logged). Each record is the event
//! (key, value, headers) with the effective time as its timestamp (so the merged topic's
//! timestamps never go back) and strait's headers: where it was written (`strait.origin`,
//! `strait.partition`, `strait.offset`), its own timestamp (`strait.timestamp`) and where the
//! merge stood right after it (`strait.resume`).
//!
//! **Restarts.** The merged topic itself says where to go on: the last record's
//! `strait.resume` gives, per region, the offset to read again from, the mark in force there
//! and the offset in that region's marks topic to read marks again from; the records of the
//! last [`DEDUPE_WINDOW`] give the ids to drop repeats of. A merger started from these writes
//! exactly what the one stopped would have written next (see `strait_conflicts::events`' proof
//! `a_merger_resumed_from_a_snapshot_goes_on_as_if_never_stopped`): nothing twice, nothing in
//! another order, after a kill -9 too. Records handed to the producer are acknowledged before
//! a partition is given up or read again.
//!
//! **Several processes.** Partition p of a topic is merged by one member of the consumer group
//! `strait.merge.<rule>.<R>` on R (a `strait.` group, never checkpointed), which holds the local
//! topic's partitions only to own them (it reads nothing through them).
//!
//! **During a cut** between R and another region Q, R's merger hears nothing of Q's events or
//! marks, so nothing after Q's last mark can be released: the merged stream waits (logged every
//! [`WAIT_LOG`]) and catches up once the link is back, in the same order. This is the price of
//! one order everywhere: a region cannot know what the other wrote meanwhile.

pub(crate) mod marks;
mod output;
mod resume;
mod session;
mod spec;

use std::time::Duration;

pub(crate) use spec::{MarksSpec, MergeSpec};

use crate::config::conflicts::MARKS_TOPIC;
use crate::stop::CancellationToken;

/// How long after an event's id was released a repeat of it is dropped (by effective time).
pub(crate) const DEDUPE_WINDOW: Duration = Duration::from_secs(600);

/// How often a merged stream held back by a region says so.
const WAIT_LOG: Duration = Duration::from_secs(30);

/// A running merger or marks job.
pub(crate) struct Running {
    /// `events rule order-events in us-east`, or `marks of us-east`.
    pub name: String,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Wait for the job to end (after its token was cancelled).
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// Start a merger on the current runtime; it runs until `cancel` fires.
pub(crate) fn start(spec: MergeSpec, cancel: CancellationToken) -> Running {
    let name = format!("merged stream {}", spec.name());
    Running {
        name,
        task: tokio::spawn(session::job(spec, cancel)),
    }
}

/// Start a marks job on the current runtime; it runs until `cancel` fires.
pub(crate) fn start_marks(spec: MarksSpec, cancel: CancellationToken) -> Running {
    let name = format!("marks of {}", spec.region);
    Running {
        name,
        task: tokio::spawn(marks::job(spec, cancel)),
    }
}
