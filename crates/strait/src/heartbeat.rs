//! Heartbeats (MM2-SPEC §6): every interval, `Heartbeat(S, T, now)` to the `heartbeats` topic on
//! T. Replicated onward as `S.heartbeats`, their presence and timestamps show that replication
//! is alive end to end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::diagnose::Diagnosed;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::kafka::{Admin, ClientError, Endpoint, TopicSpec};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{or_cancel, CancellationToken};
use crate::wire::Heartbeat;

/// One pair's heartbeat emitter.
#[derive(Clone, Debug)]
pub struct HeartbeatSpec {
    /// The pair's source cluster, as in `clusters` (names the pair in logs).
    pub source_alias: String,
    /// The aliases the records carry: the connector's `source.cluster.alias` and
    /// `target.cluster.alias`, which are the pair's unless the file sets them (MM2 writes those).
    pub record_aliases: (String, String),
    /// The target, producer properties.
    pub target: Endpoint,
    /// Admin client on the target, to create the heartbeats topic.
    pub target_admin: Endpoint,
    /// Topic written to on the target (`heartbeats`).
    pub topic: String,
    /// `emit.heartbeats.interval.seconds` (default 1 s): time between two heartbeats.
    pub interval: Duration,
    /// `heartbeats.topic.replication.factor`; [`run`] lowers it when the target has fewer brokers.
    pub replication_factor: i32,
    /// `admin.timeout.ms`: how long each admin request may take.
    pub admin_timeout: Duration,
}

impl HeartbeatSpec {
    /// The emitter MM2 runs for flow `S->T`, if heartbeats are on for it (whether or not the flow
    /// replicates).
    pub fn from_config(flow: &crate::config::Flow) -> Option<Self> {
        Some(Self {
            source_alias: flow.source.clone(),
            record_aliases: (
                flow.policy.source_alias().to_string(),
                flow.policy
                    .target_alias()
                    .unwrap_or(&flow.target)
                    .to_string(),
            ),
            target: flow.clients.target_producer.clone(),
            target_admin: flow.clients.target_admin.clone(),
            topic: flow.internal_topics.heartbeats.name.clone(),
            interval: flow.intervals.emit_heartbeats?,
            replication_factor: i32::from(flow.heartbeats_topic_replication_factor),
            admin_timeout: flow.admin_timeout,
        })
    }

    /// The pair's name, `S->T`, for logs.
    pub fn name(&self) -> String {
        crate::config::flow_name(&self.source_alias, &self.target.alias)
    }
}

/// The wall clock in epoch milliseconds, as heartbeat timestamps carry it (0 before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Emit heartbeats until `cancel` fires. Creating the topic and sending are retried: a target
/// that is away gets heartbeats again when it is back. `sent` counts heartbeats handed to the
/// producer.
pub async fn run(
    spec: HeartbeatSpec,
    cancel: CancellationToken,
    sent: Arc<AtomicU64>,
) -> Result<(), ClientError> {
    let admin = Admin::new(&spec.target_admin, spec.admin_timeout)?;
    let mut backoff = Backoff::standard();
    loop {
        let r = or_cancel(&cancel, async {
            let brokers = admin.broker_count().await?;
            let rf = effective_replication_factor(spec.replication_factor, brokers);
            admin
                .create_topics(&[
                    TopicSpec::new(&spec.topic, 1, rf).config("cleanup.policy", "compact")
                ])
                .await
        })
        .await;
        match r {
            None => return Ok(()),
            Some(Ok(_)) => break,
            Some(Err(e)) => {
                warn!(pair = %spec.name(), error = %e, "cannot create the heartbeats topic; retrying")
            }
        }
        if !backoff.wait(&cancel).await {
            return Ok(());
        }
    }
    let mut cfg = spec.target.producer_config();
    // A heartbeat that cannot be delivered within a few intervals is stale: drop it, the next
    // one says the same thing with a newer time.
    let timeout_ms = (spec.interval.as_millis() * 5).clamp(5_000, 300_000);
    cfg.set("message.timeout.ms", timeout_ms.to_string());
    let producer: ThreadedProducer<Diagnosed> = cfg
        .create_with_context(spec.target.context())
        .map_err(|e| ClientError::from_kafka(&spec.target, "create the heartbeat producer", e))?;
    info!(pair = %spec.name(), topic = %spec.topic, interval_ms = spec.interval.as_millis() as u64, "emitting heartbeats");
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => break,
        }
        let hb = Heartbeat {
            source: spec.record_aliases.0.clone(),
            target: spec.record_aliases.1.clone(),
            timestamp: now_ms(),
        };
        let (k, v) = (hb.key(), hb.value());
        let rec = BaseRecord::to(&spec.topic)
            .partition(0)
            .key(&k)
            .payload(&v)
            .timestamp(hb.timestamp);
        match producer.send(rec) {
            Ok(()) => {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => debug!(pair = %spec.name(), error = %e, "heartbeat not sent"),
        }
    }
    let _ = crate::kafka::blocking(move || producer.flush(Duration::from_secs(2))).await;
    Ok(())
}
