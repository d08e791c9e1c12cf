//! Marks: how far each partition of a region's event topics has come, and what that promises.
//!
//! Each second, for every partition of every events-rule topic on its region's cluster, this
//! job reads the clock (`time`, strait's wall clock), then the partition's log end offset
//! (`position`), and appends `(topic, partition, position, time)` to [`MARKS_TOPIC`] on the same
//! cluster (one partition, so every reader sees every mark in one order).
//!
//! **What a mark promises.** Every record at `position` or later was appended after `time` (the
//! end was read after the clock). A producer stamps a record no more than the rule's
//! `lateness.ms` before it is appended, counting its clock's error against strait's. So: from
//! `position` on, nothing is stamped before `time - lateness`. That is the floor the merger
//! raises a late timestamp to (an event stamped earlier still gets a place, the same in every
//! region, just not its own timestamp's), and what lets it release events: once a partition's
//! reader is past a mark, that partition writes nothing earlier than its floor.
//!
//! So `lateness.ms` trades delay for fidelity: every merged event waits about `lateness` after
//! it was written (until every region's floor has passed it), and a producer whose timestamps
//! lag by more than that sees its events placed at the floor instead of at their timestamps.
//!
//! **Several writers.** Two processes marking one region interleave their marks. A mark behind
//! the last one read (a smaller position) is ignored and floors only rise, by every reader in
//! the one order of the marks topic, so every region still computes the same floors.
//!
//! **Retention.** The marks topic keeps a day ([`RETENTION`]): a merger stopped for longer
//! finds the marks it would resume from deleted, and may place the events written meanwhile
//! differently from a region whose merger ran (it says so).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::spec::MarksSpec;
use super::MARKS_TOPIC;
use crate::backoff::Backoff;
use crate::heartbeat::now_ms;
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, TopicInfo, TopicSpec};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{or_cancel, CancellationToken};

/// How often each partition is marked.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// How often the region's topics are listed again.
const LIST_EVERY: Duration = Duration::from_secs(5);
/// How long the marks topic keeps marks.
pub(crate) const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One mark, as written to the marks topic (JSON, keyed by the topic name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    pub topic: String,
    pub partition: i32,
    /// The partition's log end offset when it was read.
    pub position: i64,
    /// strait's clock (epoch milliseconds) just before it was read.
    pub time: i64,
}

impl Mark {
    /// The record value.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A mark from a record value; `None` for anything else.
    pub(crate) fn parse(value: &[u8]) -> Option<Mark> {
        serde_json::from_slice(value).ok()
    }
}

/// Create the marks topic on the region's cluster if it is not there (one partition, a day
/// kept).
pub(crate) async fn ensure_topic(admin: &Admin, replication_factor: i32) -> Result<(), String> {
    let brokers = admin.broker_count().await.map_err(|e| e.to_string())?;
    let rf = effective_replication_factor(replication_factor, brokers);
    let spec = TopicSpec::new(MARKS_TOPIC, 1, rf)
        .config("cleanup.policy", "delete")
        .config("retention.ms", RETENTION.as_millis().to_string());
    admin
        .create_topics(&[spec])
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Mark the region's event topics until `cancel` fires.
pub(crate) async fn job(spec: MarksSpec, cancel: CancellationToken) {
    let admin = match Admin::new(&spec.admin, spec.admin_timeout) {
        Ok(a) => a,
        Err(e) => {
            warn!(region = %spec.region, error = %e, "no marks are written for this region: its admin client cannot be made");
            return;
        }
    };
    let mut backoff = Backoff::standard();
    loop {
        match or_cancel(&cancel, ensure_topic(&admin, spec.replication_factor)).await {
            None => return,
            Some(Ok(())) => break,
            Some(Err(e)) => {
                warn!(region = %spec.region, error = %e, "cannot create the marks topic; retrying")
            }
        }
        if !backoff.wait(&cancel).await {
            return;
        }
    }
    let mut cfg = spec.producer.producer_config();
    // A mark that cannot be delivered soon is stale: the next one says more.
    cfg.set("message.timeout.ms", "10000");
    cfg.set("client.id", format!("strait-{}-marks", spec.region));
    let producer: ThreadedProducer<Diagnosed> = match cfg
        .create_with_context(spec.producer.context())
    {
        Ok(p) => p,
        Err(e) => {
            warn!(region = %spec.region, error = %e, "no marks are written for this region: its producer cannot be made");
            return;
        }
    };
    let mut topics: Vec<TopicInfo> = Vec::new();
    let mut announced: BTreeSet<String> = BTreeSet::new();
    let mut listed_at: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => break,
        }
        if listed_at.is_none_or(|t| t.elapsed() >= LIST_EVERY) {
            match or_cancel(&cancel, admin.topics(None)).await {
                None => break,
                Some(Ok(all)) => {
                    topics = spec.topics.pick(&all, None);
                    listed_at = Some(tokio::time::Instant::now());
                    for t in &topics {
                        if announced.insert(t.name.clone()) {
                            info!(region = %spec.region, topic = %t.name, partitions = t.partitions, marks = MARKS_TOPIC, "marking an event topic's progress");
                        }
                    }
                }
                Some(Err(e)) => {
                    debug!(region = %spec.region, error = %e, "topics not listed; marking those known");
                }
            }
        }
        for t in &topics {
            for p in 0..t.partitions {
                // The clock first: everything at the end read after it was appended after it.
                let time = now_ms();
                let Some(w) = or_cancel(&cancel, admin.watermarks(&t.name, p)).await else {
                    break;
                };
                let position = match w {
                    Ok((_, hi)) => hi,
                    Err(e) => {
                        debug!(region = %spec.region, topic = %t.name, partition = p, error = %e, "end offset not read; no mark this time");
                        continue;
                    }
                };
                let mark = Mark {
                    topic: t.name.clone(),
                    partition: p,
                    position,
                    time,
                };
                let value = mark.to_json();
                let rec = BaseRecord::to(MARKS_TOPIC)
                    .partition(0)
                    .key(t.name.as_bytes())
                    .payload(&value)
                    .timestamp(time);
                if let Err((e, _)) = producer.send(rec) {
                    debug!(region = %spec.region, error = %e, "mark not sent; the next one says more");
                }
            }
        }
    }
    let _ = crate::kafka::blocking(move || producer.flush(Duration::from_secs(2))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_back_as_written_and_nothing_else_is_one() {
        let m = Mark {
            topic: "order-events".into(),
            partition: 2,
            position: 41,
            time: 1_700_000_000_000,
        };
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            r#"{"topic":"order-events","partition":2,"position":41,"time":1700000000000}"#
        );
        assert_eq!(Mark::parse(&m.to_json()), Some(m));
        assert_eq!(Mark::parse(b"{\"topic\":\"x\"}"), None);
        assert_eq!(Mark::parse(b"not json"), None);
    }
}
