//! The copy loop of a flow on the passthrough data path (`replicate::passthrough`): record
//! batches copied as bytes by the engine, with everything else the record path's.
//!
//! What stays the same, and why it can: membership is librdkafka's group `strait.S->T` on the
//! source (its partitions paused, so it never fetches), so scale-out, rebalances and the
//! commits' place are the record path's; commits, the offset index, offset syncs, MM2's
//! positions and statistics are kept by the same [`Shared`] state, updated per batch rather than
//! per record. A batch acknowledged at target offset `b` maps its `n` records to `b..b + n`
//! (offsets are contiguous in a produced batch), so the index and the syncs stay exact.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::TopicPartitionList;
use tracing::{error, info, warn};

use super::{
    commit, finish, last_commit, new_shared, subscribe, FlowError, FlowSpec, FlowStats,
    RebalanceContext, Rounds, Shared, ToCopy, Told, STOP_BUDGET,
};
use crate::replicate::health::{ErrorClass, StoppedPartition};
use crate::replicate::mm2_offsets::PositionLog;
use crate::replicate::passthrough::engine::{Engine, EngineSpec, Item, Ledger};
use crate::replicate::passthrough::fetch::FetchConfig;
use crate::replicate::progress::{Jump, Owner, Tp};
use crate::stop::CancellationToken;

/// How the engine's reports reach the flow's state. Weak: `Shared` owns the engine.
struct FlowLedger {
    shared: Weak<Shared>,
}

impl Ledger for FlowLedger {
    fn sent(&self, tp: &Tp, first: i64, next: i64, log_start: i64) -> Owner {
        let Some(shared) = self.shared.upgrade() else {
            return 0;
        };
        let sent = shared.progress.lock().unwrap().sent_span(tp, first, next);
        let partition = format!("{}-{}", tp.0, tp.1);
        match sent.jump {
            Jump::Gap { from, to } if log_start > from => {
                let end = log_start.min(to);
                let n = (end - from) as u64;
                shared.stats.health.skipped_by_retention(n);
                warn!(flow = %shared.flow, partition = %partition, skipped = n, "source {} deleted records {from}..{end} of {partition} (retention) before they were copied: they are not on the target", shared.source);
            }
            Jump::Back { from, to } => {
                warn!(flow = %shared.flow, partition = %partition, "source partition {partition} went back from offset {from} to {to} (the topic was re-created, or truncated): copying it from {to}, and committing from there");
            }
            _ => {}
        }
        sent.owner
    }

    fn acked(&self, item: &Item, base_offset: Option<i64>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if !shared.progress.lock().unwrap().owns(&item.tp, item.owner) {
            // Fetched before the partition was given up: its next owner copies it again.
            return;
        }
        let n = i64::from(item.count);
        // The index and the syncs learn of the batch before it counts as acknowledged, so that
        // no commit passes a pair they lack.
        match (base_offset, &item.offsets) {
            (Some(base), None) => {
                shared
                    .runs
                    .lock()
                    .unwrap()
                    .observe_run(&item.tp, item.first, base, n);
                let mut syncs = shared.syncs.lock().unwrap();
                syncs.record_run(&item.tp.0, item.tp.1, (item.first, base, n), |w| {
                    shared.fire_syncs(w)
                });
            }
            (Some(base), Some(offsets)) => {
                let mut runs = shared.runs.lock().unwrap();
                let mut syncs = shared.syncs.lock().unwrap();
                for (i, up) in offsets.iter().enumerate() {
                    runs.observe(&item.tp, *up, base + i as i64);
                    if syncs.record(&item.tp.0, item.tp.1, *up, base + i as i64) {
                        shared.fire_syncs(&mut syncs);
                    }
                }
            }
            // Written before (a resend the broker recognised without saying where): nothing
            // to index, but commits may pass it.
            (None, _) => {
                let last = item.next - 1;
                shared.runs.lock().unwrap().skipped(&item.tp, last);
            }
        }
        shared
            .progress
            .lock()
            .unwrap()
            .acked(&item.tp, item.owner, item.first);
        shared.stats.records.fetch_add(n as u64, Ordering::Relaxed);
        shared
            .stats
            .bytes
            .fetch_add(item.bytes.len() as u64, Ordering::Relaxed);
        if item.max_timestamp >= 0 {
            let latency = crate::heartbeat::now_ms()
                .saturating_sub(item.max_timestamp)
                .max(0);
            shared
                .stats
                .last_latency_ms
                .store(latency as u64, Ordering::Relaxed);
        }
    }

    fn source_end(&self, tp: &Tp, end: i64) {
        if let Some(shared) = self.shared.upgrade() {
            shared.source_ends.lock().unwrap().insert(tp.clone(), end);
        }
    }

    fn stopped(&self, tp: &Tp, offset: i64, reason: String) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        error!(flow = %shared.flow, partition = %format!("{}-{}", tp.0, tp.1), offset, "{reason}");
        shared.stats.health.met(ErrorClass::Record, reason.clone());
        shared.stats.health.stopped(StoppedPartition {
            topic: tp.0.to_string(),
            partition: tp.1,
            offset,
            reason,
        });
    }

    fn trouble(&self, class: ErrorClass, on_target: bool, message: String) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let cluster = if on_target {
            &shared.target
        } else {
            &shared.source
        };
        if matches!(
            class,
            ErrorClass::Authentication | ErrorClass::Tls | ErrorClass::Authorization
        ) {
            crate::kafka::diagnose::remember(&cluster.address, message.clone());
        }
        if !on_target && class == ErrorClass::Unreachable {
            shared
                .stats
                .source_view
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unreachable(crate::heartbeat::now_ms());
        }
        if shared.stats.health.met(class, message.clone()) {
            warn!(flow = %shared.flow, class = class.as_str(), "{message}");
        }
    }
}

/// After an assignment: the consumer must not fetch (the engine does), and the engine copies
/// each partition from where [`super::resume_points`] put it.
pub(super) fn assigned(
    shared: &Shared,
    consumer: &BaseConsumer<RebalanceContext>,
    tpl: &TopicPartitionList,
) {
    let Some(engine) = shared.engine.get() else {
        return;
    };
    if let Err(e) = consumer.pause(tpl) {
        warn!(flow = %shared.flow, error = %e, "cannot pause the membership consumer's partitions; what it fetches is dropped");
    }
    // Where `resume_points` put each partition (`None`: `auto.offset.reset`).
    let positions: HashMap<Tp, Option<i64>> = shared
        .progress
        .lock()
        .unwrap()
        .positions()
        .into_iter()
        .collect();
    let names = shared.remote_names.lock().unwrap();
    for e in tpl.elements() {
        let tp: Tp = (Arc::from(e.topic()), e.partition());
        let position = positions.get(&tp).copied().flatten();
        let Some(remote) = names.get(e.topic()) else {
            warn!(flow = %shared.flow, topic = e.topic(), "no remote topic known for an assigned topic; not copied until the next assignment");
            continue;
        };
        engine.start_partition(tp, Arc::from(remote.as_str()), position);
    }
}

/// Before partitions are given up: the engine stops fetching them and waits for the target to
/// acknowledge what it has of them (true), so that the commit after covers it.
pub(super) fn revoking(shared: &Shared, tpl: &TopicPartitionList, timeout: Duration) -> bool {
    let Some(engine) = shared.engine.get() else {
        return true;
    };
    let tps: Vec<Tp> = tpl
        .elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect();
    match engine.stop_partitions(tps, timeout) {
        Ok(()) => true,
        Err(n) => {
            warn!(flow = %shared.flow, batches = n, "batches not all acknowledged before giving up partitions; the next owner will copy them again");
            false
        }
    }
}

/// The copy loop on the passthrough path: the membership consumer's loop (rebalances, commits,
/// topic changes), the engine doing the copying.
pub(super) fn copy_loop(
    spec: &FlowSpec,
    topics_rx: &std::sync::mpsc::Receiver<ToCopy>,
    stop: &CancellationToken,
    stats: Arc<FlowStats>,
    positions: Option<PositionLog>,
    told: &mut Told,
) -> Result<(), FlowError> {
    let mut again = told.again();
    let flow = spec.name();
    let fatal = |reason: String| FlowError::Fatal {
        flow: flow.clone(),
        reason,
    };
    let shared = new_shared(spec, stop, stats, positions)?;
    super::start_index_producer(spec, &shared)?;
    let runtime = tokio::runtime::Handle::current();
    let produce_timeout = spec
        .target
        .props
        .get("request.timeout.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(30), Duration::from_millis);
    let fetch = FetchConfig::of(&spec.source);
    let engine = Engine::start(
        EngineSpec {
            flow: flow.clone(),
            source: spec.source.clone(),
            target: spec.target.clone(),
            fetch: fetch.clone(),
            produce_timeout,
        },
        Arc::new(FlowLedger {
            shared: Arc::downgrade(&shared),
        }),
        &runtime,
    );
    let waiting = engine.batches.clone();
    let _ = shared.engine.set(engine);
    let consumer = super::membership_consumer(spec, &shared)?;

    let mut partitions_total = 0usize;
    let mut rounds = Rounds::new(
        &shared,
        "batches",
        spec.commit_interval,
        spec.offset_flush_interval,
    );
    let mut subscribed: Option<Vec<String>> = None;
    loop {
        shared.outcome()?;
        if stop.is_cancelled() {
            break;
        }
        let messages: Vec<ToCopy> = std::mem::take(&mut again)
            .into_iter()
            .chain(topics_rx.try_iter())
            .collect();
        for m in messages {
            told.keep(&m);
            match m {
                ToCopy::Topics(t) => {
                    partitions_total = t.iter().map(|t| t.partitions.max(0) as usize).sum();
                    {
                        let mut names = shared.remote_names.lock().unwrap();
                        for topic in &t {
                            names
                                .entry(topic.name.clone())
                                .or_insert_with(|| spec.policy.remote_topic(&topic.name));
                        }
                    }
                    subscribe(&consumer, &t, &mut subscribed, spec, &flow).map_err(&fatal)?;
                }
                // The target measures batches itself (one it refuses stops its partition);
                // merged batches stay well within every remote topic's limit.
                ToCopy::Limits(l) => fetch.limit_merges(l.into_values()),
                ToCopy::Ids { ids, recreated } => {
                    shared.topic_ids.lock().unwrap().extend(ids);
                    if !recreated.is_empty() {
                        restart_topics(&consumer, &shared, &recreated);
                    }
                }
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            // Fetched before its pause took hold: the engine copies it.
            Some(Ok(_)) => {}
            Some(Err(e)) => shared.client_error(false, &e, ""),
            None => {}
        }
        rounds.run(
            &shared,
            || waiting.load(Ordering::Relaxed).max(0) as u64,
            |t, p| {
                let ends = shared.source_ends.lock().unwrap();
                ends.get(&(Arc::from(t), p)).copied()
            },
            partitions_total,
            || {
                commit(&consumer, &shared, CommitMode::Async);
                shared.send_syncs();
            },
        );
    }

    // Graceful stop, as the record path's: what the engine has is acknowledged, indexed and
    // committed within the stop's budget (what is not is copied again on restart).
    let stop_by = Instant::now() + STOP_BUDGET;
    let left = || stop_by.saturating_duration_since(Instant::now());
    let owned = shared.progress.lock().unwrap().owned();
    if let Some(engine) = shared.engine.get() {
        if let Err(n) = engine.stop_partitions(owned, left().min(Duration::from_secs(5))) {
            warn!(flow = %flow, batches = n, "not every batch was acknowledged before stopping; their records will be copied again on restart");
        }
    }
    last_commit(&consumer, &shared, stop_by);
    finish(flow, shared, consumer, None, stop_by)
}

/// Source topics deleted and created again: their assigned partitions start over from 0 (see
/// [`super::restart_topics`]), the engine copying them again from there.
fn restart_topics(consumer: &BaseConsumer<RebalanceContext>, shared: &Shared, topics: &[String]) {
    let Some(engine) = shared.engine.get() else {
        return;
    };
    let again = super::restart_topics(consumer, shared, topics, |tps| {
        let _ = engine.stop_partitions(tps.to_vec(), Duration::from_secs(5));
    });
    let names = shared.remote_names.lock().unwrap();
    for tp in again {
        if let Some(remote) = names.get(&*tp.0) {
            info!(flow = %shared.flow, partition = %format!("{}-{}", tp.0, tp.1), "reading the topic created again from its start");
            engine.start_partition(tp.clone(), Arc::from(remote.as_str()), Some(0));
        }
    }
}

/// Whether a flow copies batches as they are, and if not, why: one sentence for the log and
/// `check`.
pub fn records_because(spec: &FlowSpec) -> Option<String> {
    if let Some(why) = &spec.records_path {
        return Some(why.clone());
    }
    if spec.exactly_once.is_some() {
        return Some(
            "the flow copies exactly once (transactions need librdkafka's producer)".into(),
        );
    }
    if spec.receipts.is_some() || spec.authority.is_some() {
        return Some("the flow has conflict rules, which read and rewrite each record".into());
    }
    for ep in [&spec.source, &spec.target] {
        if let Some(why) = crate::kafka::raw::unsupported(ep) {
            return Some(format!("cluster {}: {why}", ep.alias));
        }
    }
    None
}

/// [`records_because`] for a configured flow, as `strait run` would start it (with its conflict
/// rules): what `check` says.
pub fn records_because_in(
    config: &crate::config::Config,
    flow: &crate::config::Flow,
) -> Option<String> {
    let mut spec = FlowSpec::from_config(flow);
    spec.receipts = crate::conflicts::receipts::ReceiptSpec::for_flow(config, flow);
    records_because(&spec)
}
