//! Lag snapshots: what each flow `S->T` last knew of its source, kept on the *target*, so that
//! an unplanned failover, run when S no longer answers, can still say what S had that T lacks.
//!
//! `strait run` records one per flow every [`INTERVAL`] while S answers, into
//! `strait-lag.internal` on T (compacted, key `S->T`, JSON value: the lag model's per-partition
//! figures and when they were read). Nothing is written while S is unreachable, so the newest
//! snapshot is the last view of S before it went away.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::diagnose::Diagnosed;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::collect::source_lag;
use super::PartitionLag;
use crate::config::Flow;
use crate::heartbeat::now_ms;
use crate::kafka::tail::TopicTail;
use crate::kafka::{Admin, ClientError, TopicSpec};
use crate::stop::{or_cancel, pause, CancellationToken};

/// The topic, on every target cluster.
pub const TOPIC: &str = "strait-lag.internal";

/// How often a snapshot is taken. Writes to S in the last interval before it fails are the
/// part of an unplanned failover's RPO that no snapshot can see.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One look at the source of a flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LagSnapshot {
    /// The flow's source cluster (S), the one read.
    pub source: String,
    /// The flow's target cluster (T), where the snapshot is kept.
    pub target: String,
    /// When the source was read (ms since the epoch).
    pub at_ms: i64,
    /// The lag of every replicated partition, as the source showed it then.
    pub partitions: Vec<PartitionLag>,
    /// Records written per second to each partition (`topic[partition]`) since the previous
    /// snapshot: what lets a failover estimate the writes made after this one.
    #[serde(default)]
    pub write_rates: BTreeMap<String, f64>,
    /// Set on a copy of the last snapshot when the source stopped answering: when the first
    /// attempt that failed gave up. The source failed between `at_ms` and this.
    #[serde(default)]
    pub unreachable_from_ms: Option<i64>,
}

impl LagSnapshot {
    /// The compaction key of flow `source->target`'s snapshots: the flow's name.
    pub fn key(source: &str, target: &str) -> String {
        crate::config::flow_name(source, target)
    }

    /// Key of a partition in [`LagSnapshot::write_rates`].
    pub fn rate_key(topic: &str, partition: i32) -> String {
        format!("{topic}[{partition}]")
    }

    /// Records per second written to a partition before this snapshot; 0 when not known.
    pub fn write_rate(&self, topic: &str, partition: i32) -> f64 {
        self.write_rates
            .get(&Self::rate_key(topic, partition))
            .copied()
            .unwrap_or(0.0)
    }

    /// Records not replicated yet, summed over every partition.
    pub fn lag_records(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag_records).sum()
    }
}

/// The newest snapshot of `flow` on its target (`None` when strait never recorded one).
pub async fn read_latest(
    flow: &Flow,
    timeout: Duration,
) -> Result<Option<LagSnapshot>, ClientError> {
    let key = LagSnapshot::key(&flow.source, &flow.target);
    TopicTail::new(&flow.clients.target_consumer, TOPIC)
        .fold(timeout, None, move |newest: &mut Option<LagSnapshot>, r| {
            if r.key != key.as_bytes() {
                return;
            }
            if let Ok(s) = serde_json::from_slice::<LagSnapshot>(r.value) {
                if newest.as_ref().is_none_or(|n| s.at_ms >= n.at_ms) {
                    *newest = Some(s);
                }
            }
        })
        .await
}

/// A running recorder: cancel its token, then [`Recorder::join`].
pub struct Recorder {
    /// The flow, `S->T`.
    pub name: String,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Wait for the recorder to stop (after its token was cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Record snapshots of `flow` every [`INTERVAL`] until `cancel` fires; `stats`, the counters of
/// the flow's copy in this process, if any, give what the target holds (ahead of the commits).
pub fn start(
    flow: Flow,
    stats: Option<std::sync::Arc<crate::replicate::FlowStats>>,
    cancel: CancellationToken,
) -> Recorder {
    Recorder {
        name: flow.name(),
        task: tokio::spawn(record(flow, stats, cancel)),
    }
}

async fn record(
    flow: Flow,
    stats: Option<std::sync::Arc<crate::replicate::FlowStats>>,
    cancel: CancellationToken,
) {
    let timeout = Duration::from_secs(5);
    let mut producer: Option<ThreadedProducer<Diagnosed>> = None;
    let mut warned = false;
    let mut previous: Option<LagSnapshot> = None;
    while !cancel.is_cancelled() {
        let started = Instant::now();
        // The reads begin now: a snapshot is dated by its oldest figure.
        let attempt_ms = now_ms();
        let delivered = || super::Delivered {
            at_ms: now_ms(),
            positions: stats
                .as_ref()
                .map(|s| {
                    s.delivered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone()
                })
                .unwrap_or_default(),
        };
        let Some(lag) = or_cancel(&cancel, source_lag(&flow, timeout, &delivered)).await else {
            break;
        };
        let snap = match lag {
            Ok(lag) => {
                let mut snap = LagSnapshot {
                    source: flow.source.clone(),
                    target: flow.target.clone(),
                    at_ms: attempt_ms,
                    partitions: lag.partitions,
                    write_rates: BTreeMap::new(),
                    unreachable_from_ms: None,
                };
                if let Some(prev) = &previous {
                    snap.write_rates = write_rates(prev, &snap);
                }
                previous = Some(snap.clone());
                Some(snap)
            }
            Err(e) => {
                debug!(flow = %flow.name(), error = %e, "source not read; no lag snapshot");
                // Once per outage: the last view, marked with when the source went quiet.
                match previous.take() {
                    Some(mut last) if last.unreachable_from_ms.is_none() => {
                        // When the failed attempt gave up, not when it began: an attempt
                        // under way when the source failed began before the failure.
                        last.unreachable_from_ms = Some(now_ms());
                        previous = Some(last.clone());
                        Some(last)
                    }
                    other => {
                        previous = other;
                        None
                    }
                }
            }
        };
        if let Some(snap) = snap {
            if producer.is_none() {
                let Some(opened) = or_cancel(&cancel, open(&flow, timeout)).await else {
                    break;
                };
                producer = opened
                    .map_err(|e| {
                        if !warned {
                            warn!(flow = %flow.name(), error = %e, "cannot record lag snapshots yet");
                            warned = true;
                        }
                    })
                    .ok();
            }
            if let Some(p) = &producer {
                let key = LagSnapshot::key(&snap.source, &snap.target);
                let value = serde_json::to_vec(&snap).expect("plain data serializes");
                if let Err((e, _)) =
                    p.send(BaseRecord::to(TOPIC).partition(0).key(&key).payload(&value))
                {
                    debug!(flow = %flow.name(), error = %e, "lag snapshot not queued");
                }
            }
        }
        pause(&cancel, INTERVAL.saturating_sub(started.elapsed())).await;
    }
    if let Some(p) = producer {
        let _ = crate::kafka::blocking(move || p.flush(Duration::from_secs(2))).await;
    }
}

/// Create the topic on the target (compacted, one partition) and a producer for it.
async fn open(flow: &Flow, timeout: Duration) -> Result<ThreadedProducer<Diagnosed>, ClientError> {
    let admin = Admin::new(&flow.clients.target_admin, timeout)?;
    let brokers = admin.broker_count().await?;
    let rf = crate::replicate::topics::effective_replication_factor(
        i32::from(flow.checkpoints_topic_replication_factor),
        brokers,
    );
    admin
        .create_topics(&[TopicSpec::new(TOPIC, 1, rf).config("cleanup.policy", "compact")])
        .await?;
    let ep = &flow.clients.target_producer;
    ep.producer_config()
        .create_with_context(ep.context())
        .map_err(|e| ClientError::from_kafka(ep, "create the lag snapshot producer", e))
}

/// Records per second per partition between two snapshots (partitions new in `now` are left out).
pub fn write_rates(before: &LagSnapshot, now: &LagSnapshot) -> BTreeMap<String, f64> {
    let secs = (now.at_ms - before.at_ms) as f64 / 1000.0;
    if secs <= 0.0 {
        return BTreeMap::new();
    }
    now.partitions
        .iter()
        .filter_map(|p| {
            let b = before
                .partitions
                .iter()
                .find(|q| q.topic == p.topic && q.partition == p.partition)?;
            let rate = (p.source_end - b.source_end).max(0) as f64 / secs;
            Some((LagSnapshot::rate_key(&p.topic, p.partition), rate))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at_ms: i64, ends: &[(&str, i32, i64)]) -> LagSnapshot {
        LagSnapshot {
            source: "a".into(),
            target: "b".into(),
            at_ms,
            partitions: ends
                .iter()
                .map(|(t, p, e)| PartitionLag {
                    topic: t.to_string(),
                    partition: *p,
                    remote_topic: format!("a.{t}"),
                    source_end: *e,
                    replicated: *e,
                    committed: *e,
                    lag_records: 0,
                    lag_seconds: 0.0,
                })
                .collect(),
            write_rates: BTreeMap::new(),
            unreachable_from_ms: None,
        }
    }

    #[test]
    fn rates_are_per_partition_per_second() {
        let a = snap(1_000, &[("o", 0, 100), ("o", 1, 50)]);
        let b = snap(3_000, &[("o", 0, 500), ("o", 1, 50), ("new", 0, 10)]);
        let r = write_rates(&a, &b);
        assert_eq!(r.get("o[0]"), Some(&200.0));
        assert_eq!(r.get("o[1]"), Some(&0.0));
        assert_eq!(r.get("new[0]"), None);
        let mut b = b;
        b.write_rates = r;
        assert_eq!(b.write_rate("o", 0), 200.0);
        assert_eq!(b.write_rate("new", 0), 0.0);
        // Older snapshots (no rates) still decode.
        let old = r#"{"source":"a","target":"b","at_ms":1,"partitions":[]}"#;
        assert!(serde_json::from_str::<LagSnapshot>(old).is_ok());
    }
}
