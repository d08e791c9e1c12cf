//! Lag snapshots: what each flow `S->T` last knew of its source, kept on the *target*, so that
//! an unplanned failover, run when S no longer answers, can still say what S had that T lacks.
//!
//! `strait run` records one per flow every [`INTERVAL`] while S answers, into
//! `strait-lag.internal` on T (compacted, key `S->T`, JSON value: the lag model's per-partition
//! figures and when they were true). When S stops answering, one more is written at once: the
//! last view of S, dated by when its ends last moved, with `unreachable_from_ms` set to the
//! first sign of the loss. Nothing more is written until S answers again.
//!
//! Where the figures come from: when this process's flow owns every partition, from the flow's
//! own view of its source (`replicate::source_view`: the ends every fetch response brings, no
//! request to S), so a snapshot is never more than a fraction of a second behind and the last
//! one brackets the failure within about a tenth of a second when writes were flowing.
//! Otherwise (the partitions shared among processes, or before the flow has seen every
//! partition) S is read, as `strait status` does, which takes a round of requests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::diagnose::Diagnosed;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::collect::{source_lag_with, SourceClients};
use super::PartitionLag;
use crate::config::Flow;
use crate::heartbeat::now_ms;
use crate::kafka::tail::TopicTail;
use crate::kafka::{Admin, ClientError, TopicSpec};
use crate::reach::Watched;
use crate::replicate::{FlowStats, SourceView};
use crate::stop::{or_cancel, pause, CancellationToken};

/// The topic, on every target cluster.
pub const TOPIC: &str = "strait-lag.internal";

/// How often a snapshot is written while S answers.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How often the recorder looks at the flow's view (for the snapshot of a loss, written at once).
const LOOK: Duration = Duration::from_millis(100);

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
        Self::rate_in(&self.write_rates, topic, partition)
    }

    /// [`LagSnapshot::write_rate`] in `rates`, a snapshot's `write_rates`.
    fn rate_in(rates: &BTreeMap<String, f64>, topic: &str, partition: i32) -> f64 {
        rates
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
            // The last written, not the latest `at_ms`: the snapshot of a loss is dated by when
            // the source's ends last moved, which can be before the regular one written
            // just before it.
            if let Ok(s) = serde_json::from_slice::<LagSnapshot>(r.value) {
                *newest = Some(s);
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
/// the flow's copy in this process, if any, give what the target holds (ahead of the commits)
/// and the flow's own view of S; `source`, S's reachability probe, tells when S stopped
/// answering.
pub fn start(
    flow: Flow,
    stats: Option<std::sync::Arc<FlowStats>>,
    source: Option<Watched>,
    cancel: CancellationToken,
) -> Recorder {
    Recorder {
        name: flow.name(),
        task: tokio::spawn(record(flow, stats, source, cancel)),
    }
}

/// The recorder's state between snapshots.
struct Recording {
    flow: Flow,
    producer: Option<ThreadedProducer<Diagnosed>>,
    warned: bool,
    /// The last snapshot written (rates are measured against it).
    previous: Option<LagSnapshot>,
    /// The last few snapshots written while S answered, newest last: the write rates of a loss's
    /// snapshot are measured against one from before its ends stopped moving (the snapshots
    /// between the failure and its first sign saw no writes).
    answered: std::collections::VecDeque<LagSnapshot>,
    written: Option<Instant>,
    /// The source's clients, kept from one reading to the next.
    source: Option<SourceClients>,
}

async fn record(
    flow: Flow,
    stats: Option<std::sync::Arc<FlowStats>>,
    source: Option<Watched>,
    cancel: CancellationToken,
) {
    // Partitions on the source the flow should replicate, counted now and then: a topic created
    // since the flow last refreshed its list is in no view, and its records are what a loss
    // takes first.
    let on_source = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    if stats.is_some() {
        tokio::spawn(count_partitions(
            flow.clone(),
            on_source.clone(),
            cancel.clone(),
        ));
    }
    let mut r = Recording {
        flow,
        producer: None,
        warned: false,
        previous: None,
        answered: std::collections::VecDeque::new(),
        written: None,
        source: None,
    };
    while !cancel.is_cancelled() {
        let due = r.written.is_none_or(|w| w.elapsed() >= INTERVAL);
        let view = stats.as_ref().map(|s| {
            s.source_view
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
        if due {
            if let Some(v) = view.as_ref().filter(|v| !v.complete()) {
                debug!(flow = %r.flow.name(), owned = v.owned.len(), partitions = v.partitions_total, "the flow's view of its source is not complete; reading the source");
            }
        }
        let counted = on_source.load(std::sync::atomic::Ordering::Relaxed);
        let view = view.filter(|v| v.complete() && v.owned.len() >= counted);
        let snap = match view {
            Some(view) => {
                let probe = source
                    .as_ref()
                    .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone());
                let lost = view.lost_by(
                    probe.as_ref().and_then(|p| p.answered_at_ms),
                    probe.as_ref().and_then(|p| p.failing_since_ms),
                );
                match lost {
                    // Once per loss, the last view of S, and again when an earlier sign of
                    // the loss comes in (a probe's failure is known only once it times out,
                    // after the flow's own errors).
                    Some(by) => r
                        .previous
                        .as_ref()
                        .is_none_or(|p| p.unreachable_from_ms.is_none_or(|was| by < was))
                        .then(|| {
                            let at = view.ends_since_ms.unwrap_or(view.at_ms).min(by);
                            let mut snap = of_view(&r.flow, &view, at, rate_base(&r.answered, at));
                            snap.unreachable_from_ms = Some(by);
                            snap
                        }),
                    None if due => {
                        // The ends were true within the last look.
                        let at = view.at_ms
                            - crate::replicate::source_view::LOOK_EVERY.as_millis() as i64;
                        Some(of_view(&r.flow, &view, at, rate_base(&r.answered, at)))
                    }
                    None => None,
                }
            }
            None if due => {
                let Some(snap) = or_cancel(&cancel, read_source(&mut r, stats.as_deref())).await
                else {
                    break;
                };
                // Read again an interval after this attempt, whatever it gave.
                r.written = Some(Instant::now());
                snap
            }
            None => None,
        };
        if let Some(snap) = snap {
            debug!(
                flow = %r.flow.name(),
                at_ms = snap.at_ms,
                lag = snap.lag_records(),
                unreachable_from_ms = ?snap.unreachable_from_ms,
                "lag snapshot"
            );
            if snap.unreachable_from_ms.is_none() {
                r.written = Some(Instant::now());
                if r.answered.len() >= 5 {
                    r.answered.pop_front();
                }
                r.answered.push_back(snap.clone());
            }
            r.previous = Some(snap.clone());
            if or_cancel(&cancel, r.write(&snap)).await.is_none() {
                break;
            }
        }
        pause(&cancel, LOOK).await;
    }
    if let Some(p) = r.producer {
        let _ = crate::kafka::blocking(move || p.flush(Duration::from_secs(2))).await;
    }
}

/// The shortest time write rates are measured over: shorter, a look's jitter would swing them.
const RATE_WINDOW_MS: i64 = 500;

/// What the rates of a snapshot dated `at_ms` are measured against: the newest of `answered`
/// at least [`RATE_WINDOW_MS`] older, else the oldest.
fn rate_base(
    answered: &std::collections::VecDeque<LagSnapshot>,
    at_ms: i64,
) -> Option<&LagSnapshot> {
    answered
        .iter()
        .rev()
        .find(|s| at_ms - s.at_ms >= RATE_WINDOW_MS)
        .or(answered.front())
}

/// How often [`count_partitions`] counts.
const COUNT_EVERY: Duration = Duration::from_secs(10);

/// Count, every [`COUNT_EVERY`], the partitions on `flow`'s source of the topics it should
/// replicate, into `into` (left as it was when the source does not answer).
async fn count_partitions(
    flow: Flow,
    into: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cancel: CancellationToken,
) {
    let Ok(admin) = Admin::new(&flow.clients.source_admin, Duration::from_secs(2)) else {
        return;
    };
    loop {
        if let Some(Ok(topics)) = or_cancel(&cancel, admin.topics(None)).await {
            let n: usize = topics
                .iter()
                .filter(|t| flow.should_replicate_topic(&t.name))
                .map(|t| t.partitions.max(0) as usize)
                .sum();
            into.store(n, std::sync::atomic::Ordering::Relaxed);
        }
        if !pause(&cancel, COUNT_EVERY).await {
            return;
        }
    }
}

/// A snapshot of the flow's own view, dated `at_ms`; rates against `previous` when it is at
/// least [`RATE_WINDOW_MS`] older, else carried over from it.
fn of_view(
    flow: &Flow,
    view: &SourceView,
    at_ms: i64,
    previous: Option<&LagSnapshot>,
) -> LagSnapshot {
    let partitions: Vec<PartitionLag> = view
        .owned
        .iter()
        .map(|((topic, partition), p)| {
            let end = p.end.unwrap_or(0);
            let replicated = p.delivered.unwrap_or(0).min(end);
            PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                remote_topic: flow.policy.remote_topic(topic),
                source_end: end,
                replicated,
                committed: replicated,
                lag_records: end - replicated,
                lag_seconds: 0.0,
            }
        })
        .collect();
    let mut snap = LagSnapshot {
        source: flow.source.clone(),
        target: flow.target.clone(),
        at_ms,
        partitions,
        write_rates: BTreeMap::new(),
        unreachable_from_ms: None,
    };
    snap.write_rates = match previous {
        Some(p) if at_ms - p.at_ms >= RATE_WINDOW_MS => write_rates(p, &snap),
        Some(p) => p.write_rates.clone(),
        None => BTreeMap::new(),
    };
    // The age of the oldest record the target lacks, from the rate it was written at.
    let LagSnapshot {
        partitions,
        write_rates,
        ..
    } = &mut snap;
    for l in partitions {
        let rate = LagSnapshot::rate_in(write_rates, &l.topic, l.partition);
        if l.lag_records > 0 && rate > 0.0 {
            l.lag_seconds = l.lag_records as f64 / rate;
        }
    }
    snap
}

/// A snapshot read off S, as `strait status` reads it (a round of requests): when the flow's
/// own view does not cover every partition. `None` when S did not answer and its last view was
/// already marked.
async fn read_source(r: &mut Recording, stats: Option<&FlowStats>) -> Option<LagSnapshot> {
    let timeout = Duration::from_secs(5);
    // The reads begin now: a snapshot is dated by its oldest figure.
    let attempt_ms = now_ms();
    let delivered = || super::Delivered {
        at_ms: now_ms(),
        positions: stats
            .map(|s| {
                s.delivered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            })
            .unwrap_or_default(),
    };
    if r.source.is_none() {
        r.source = SourceClients::new(&r.flow, timeout)
            .map_err(|e| debug!(flow = %r.flow.name(), error = %e, "no source clients"))
            .ok();
    }
    let read = match &r.source {
        Some(clients) => source_lag_with(clients, &r.flow, &delivered).await,
        None => return None,
    };
    match read {
        Ok(lag) => {
            let mut snap = LagSnapshot {
                source: r.flow.source.clone(),
                target: r.flow.target.clone(),
                at_ms: attempt_ms,
                partitions: lag.partitions,
                write_rates: BTreeMap::new(),
                unreachable_from_ms: None,
            };
            if let Some(prev) = &r.previous {
                snap.write_rates = write_rates(prev, &snap);
            }
            Some(snap)
        }
        Err(e) => {
            debug!(flow = %r.flow.name(), error = %e, "source not read; no lag snapshot");
            // Once per outage: the last view, marked with when the source went quiet (when
            // the failed attempt gave up, not when it began: an attempt under way when the
            // source failed began before the failure).
            let last = r.previous.as_ref()?;
            if last.unreachable_from_ms.is_some() {
                return None;
            }
            let mut last = last.clone();
            last.unreachable_from_ms = Some(now_ms());
            Some(last)
        }
    }
}

impl Recording {
    /// Queue `snap` on the target, creating the topic and the producer the first time.
    async fn write(&mut self, snap: &LagSnapshot) {
        let timeout = Duration::from_secs(5);
        if self.producer.is_none() {
            self.producer = open(&self.flow, timeout)
                .await
                .map_err(|e| {
                    if !self.warned {
                        warn!(flow = %self.flow.name(), error = %e, "cannot record lag snapshots yet");
                        self.warned = true;
                    }
                })
                .ok();
        }
        if let Some(p) = &self.producer {
            let key = LagSnapshot::key(&snap.source, &snap.target);
            let value = serde_json::to_vec(snap).expect("plain data serializes");
            if let Err((e, _)) =
                p.send(BaseRecord::to(TOPIC).partition(0).key(&key).payload(&value))
            {
                debug!(flow = %self.flow.name(), error = %e, "lag snapshot not queued");
            }
        }
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
    fn a_loss_is_rated_against_a_snapshot_from_before_its_ends_stopped() {
        let answered: std::collections::VecDeque<LagSnapshot> =
            [1_000, 2_000, 3_000, 4_000].map(|t| snap(t, &[])).into();
        // The snapshot of a loss dated 2_700 (its ends last moved then): against 2_000, not
        // against the snapshots taken after, which saw no writes.
        assert_eq!(rate_base(&answered, 2_700).map(|s| s.at_ms), Some(2_000));
        assert_eq!(rate_base(&answered, 4_900).map(|s| s.at_ms), Some(4_000));
        assert_eq!(
            rate_base(&answered, 1_200).map(|s| s.at_ms),
            Some(1_000),
            "the oldest"
        );
        assert!(rate_base(&Default::default(), 1_000).is_none());
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
