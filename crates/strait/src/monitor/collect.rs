//! Compute the lag model from the clusters themselves, so it works whether or not a
//! `strait run` is alive. Async; librdkafka's blocking reads run on the blocking pool.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka::diagnose::Diagnosed;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::model::*;
use crate::config::{Config, Flow};
use crate::failover::active::{self, ActiveRegion};
use crate::heartbeat::now_ms;
use crate::kafka::groups::{Groups, TopicPartition};
use crate::kafka::{Admin, ClientError, Endpoint};
use crate::translate::Translator;
use crate::wire::Heartbeat;

/// What to collect and how long to wait for each cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// LAGGING above this.
    pub lag_threshold: Duration,
    /// How long a cluster may take to answer before it counts as unreachable.
    pub timeout: Duration,
    /// Also collect consumer groups (slower: one request per group).
    pub groups: bool,
    /// For the flows this process runs, by name (`S->T`): the positions it knows the target
    /// holds, for the partitions it owns, asked when the source's ends are read (fresher than
    /// the commits, see [`Delivered`]). Otherwise a flow's lag snapshot of the last few seconds
    /// serves, else its commits.
    pub delivered: Option<DeliveredBy>,
}

/// The running process's view of a flow, by its name (`None`: not a flow it runs).
pub type DeliveredOf = dyn Fn(&str) -> Option<Delivered> + Send + Sync;

/// [`Options::delivered`]: the running process's view, by flow name.
#[derive(Clone)]
pub struct DeliveredBy(pub std::sync::Arc<DeliveredOf>);

impl std::fmt::Debug for DeliveredBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveredBy(..)")
    }
}

/// What the process running a flow knows the target holds: per source partition it owns, the
/// offset up to which the target holds every record, as of `at_ms`.
#[derive(Clone, Debug, Default)]
pub struct Delivered {
    /// When these positions were true (ms since the epoch).
    pub at_ms: i64,
    /// The positions, by source partition.
    pub positions: BTreeMap<TopicPartition, i64>,
}

/// How old a lag snapshot may be for its positions to count as the flow's: a few of its
/// intervals, so that a stopped `strait run`'s last view is not taken for the present.
const SNAPSHOT_FRESH: Duration = Duration::from_secs(3);

impl Default for Options {
    fn default() -> Self {
        Self {
            lag_threshold: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            groups: true,
            delivered: None,
        }
    }
}

/// The status of every enabled flow of `config` (and its groups).
pub async fn collect(config: &Config, opts: &Options) -> Status {
    // Flows are read concurrently: each waits on its own clusters (up to `timeout` when one is
    // down), and a slow or dead cluster must not delay the others.
    let (per_flow, active_regions, clock_skews) = tokio::join!(
        futures::future::join_all(
            config
                .enabled_flows()
                .map(|flow| collect_flow(config, flow, opts))
        ),
        active_regions(config, opts.timeout),
        async {
            if config.conflicts.rules.is_empty() {
                Vec::new()
            } else {
                crate::conflicts::clock::read_skews(config, opts.timeout).await
            }
        }
    );
    let mut flows = Vec::new();
    let mut groups = Vec::new();
    for (f, g) in per_flow {
        flows.push(f);
        groups.extend(g);
    }
    Status {
        generated_at_ms: now_ms(),
        verdict: Status::worst(&flows),
        lag_threshold_seconds: opts.lag_threshold.as_secs_f64(),
        flows,
        groups,
        active_regions,
        clusters: Vec::new(),
        clock_skews,
    }
}

/// The current active-region record of every pair of the enabled flows' clusters, read from
/// every cluster that answers (concurrently: a dead cluster costs one timeout, not one each).
pub(crate) async fn active_regions(config: &Config, timeout: Duration) -> Vec<ActiveRegion> {
    let mut endpoints: BTreeMap<&str, &Endpoint> = BTreeMap::new();
    for f in config.enabled_flows() {
        endpoints.insert(&f.source, &f.clients.source_consumer);
        endpoints.insert(&f.target, &f.clients.target_consumer);
    }
    let records: Vec<ActiveRegion> = futures::future::join_all(
        endpoints
            .values()
            .map(|ep| async move { active::read(ep, timeout).await.unwrap_or_default() }),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    let mut out: Vec<ActiveRegion> = Vec::new();
    for r in &records {
        if out.iter().any(|o| o.key() == r.key()) {
            continue;
        }
        if let Some(current) = active::for_pair(&records, &r.pair[0], &r.pair[1]) {
            out.push(current.clone());
        }
    }
    out.sort_by_key(|r| r.key());
    out
}

/// Where heartbeats that crossed a flow `S->T` are found on T, and how often they are emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeartbeatSource {
    pub topic: String,
    pub interval: Duration,
    /// Only the heartbeats whose source is this alias (the pair's own emitter writes those of
    /// other pairs to the same topic); `None`: all of them.
    pub only_from: Option<String>,
}

impl HeartbeatSource {
    /// The newest heartbeat's timestamp (ms) in the topic on `ep`; `None` when there is none.
    pub(crate) async fn newest(
        &self,
        ep: &Endpoint,
        timeout: Duration,
    ) -> Result<Option<i64>, ClientError> {
        let recs = last_records(ep, &self.topic, 20, timeout).await?;
        Ok(recs
            .iter()
            .filter_map(|(k, v, _)| Heartbeat::decode(k, v).ok())
            .filter(|h| self.only_from.as_ref().is_none_or(|s| &h.source == s))
            .map(|h| h.timestamp)
            .max())
    }
}

/// Where heartbeats that crossed flow `S->T` are found on T: `S.heartbeats` when the reverse
/// pair emits heartbeats on S and this flow replicates them (end-to-end proof), else
/// `heartbeats` on T from this pair's own emitter.
pub(crate) fn heartbeat_source(config: &Config, flow: &Flow) -> Option<HeartbeatSource> {
    let reverse = config.flow(&flow.target, &flow.source)?;
    match (
        reverse.intervals.emit_heartbeats,
        flow.heartbeats_replication,
    ) {
        (Some(interval), true) => Some(HeartbeatSource {
            topic: flow
                .policy
                .format_remote_topic(&flow.source, &reverse.internal_topics.heartbeats.name),
            interval,
            only_from: None,
        }),
        _ => flow
            .intervals
            .emit_heartbeats
            .map(|interval| HeartbeatSource {
                topic: flow.internal_topics.heartbeats.name.clone(),
                interval,
                only_from: Some(flow.source.clone()),
            }),
    }
}

async fn collect_flow(
    config: &Config,
    flow: &Flow,
    opts: &Options,
) -> (FlowStatus, Vec<GroupStatus>) {
    let mut evidence = Evidence::default();

    // Source side: partitions, ends and how far the flow got (what the target holds, when the
    // process running the flow said so recently; its commits otherwise).
    let name = flow.name();
    let by = opts.delivered.as_ref().filter(|by| by.0(&name).is_some());
    let snapshot = match by {
        Some(_) => None,
        None => recent_delivered(flow, opts.timeout).await,
    };
    let replicated_from = match (by, &snapshot) {
        (Some(_), _) => ReplicatedFrom::Process,
        (None, Some(_)) => ReplicatedFrom::Snapshot,
        (None, None) => ReplicatedFrom::Commits,
    };
    let used_at = std::sync::Mutex::new(None);
    let ask = || {
        let d = match (by, &snapshot) {
            (Some(by), _) => by.0(&name).unwrap_or_default(),
            (None, Some(s)) => s.clone(),
            (None, None) => Delivered::default(),
        };
        *used_at.lock().unwrap() = Some(d.at_ms);
        d
    };
    let source = source_lag(flow, opts.timeout, &ask).await;
    let replicated_age_seconds = match (replicated_from, *used_at.lock().unwrap()) {
        (ReplicatedFrom::Commits, _) | (_, None) => 0.0,
        (_, Some(at)) => ((now_ms() - at) as f64 / 1000.0).max(0.0),
    };
    let lag_known = source.is_ok();
    let SourceLag {
        topics,
        partitions: lags,
    } = match source {
        Ok(s) => s,
        Err(e) => {
            evidence.unreachable.push(e.to_string());
            SourceLag::default()
        }
    };
    let source_ends: BTreeMap<TopicPartition, i64> = lags
        .iter()
        .map(|l| ((l.topic.clone(), l.partition), l.source_end))
        .collect();
    let partitions: Vec<TopicPartition> = source_ends.keys().cloned().collect();

    // Target side: heartbeats and checkpoints.
    let hb = heartbeat_source(config, flow);
    let mut heartbeat_age = None;
    let mut checkpoint_age = None;
    let target = async {
        if let Some(hb) = &hb {
            let newest = hb
                .newest(&flow.clients.target_consumer, opts.timeout)
                .await?;
            heartbeat_age = newest.map(|t| Duration::from_millis((now_ms() - t).max(0) as u64));
        }
        if flow.intervals.emit_checkpoints.is_some() {
            let recs = last_records(
                &flow.clients.target_consumer,
                &flow.internal_topics.checkpoints.name,
                20,
                opts.timeout,
            )
            .await?;
            checkpoint_age = recs
                .iter()
                .filter_map(|(_, _, ts)| *ts)
                .max()
                .map(|t| Duration::from_millis((now_ms() - t).max(0) as u64));
        }
        Ok::<(), ClientError>(())
    }
    .await;
    if let Err(e) = target {
        evidence.unreachable.push(e.to_string());
    }
    evidence.heartbeat_age = heartbeat_age;
    evidence.heartbeat_interval = hb.as_ref().map(|h| h.interval);
    evidence.lag_seconds = lags.iter().map(|l| l.lag_seconds).fold(0.0, f64::max);
    let (verdict, reasons) = judge(&evidence, opts.lag_threshold);

    let groups = if opts.groups && evidence.unreachable.is_empty() {
        collect_groups(flow, &partitions, &source_ends, opts)
            .await
            .map_err(|e| {
                tracing::debug!(flow = %flow.name(), error = %e, "groups not collected");
            })
    } else {
        Err(())
    };
    let groups_known = groups.is_ok();
    let groups = groups.unwrap_or_default();

    let status = FlowStatus {
        source: flow.source.clone(),
        target: flow.target.clone(),
        verdict,
        reasons,
        topics,
        partitions: lags.len(),
        lag_known,
        lag_records: lags.iter().map(|l| l.lag_records).sum(),
        lag_seconds: evidence.lag_seconds,
        heartbeat_age_seconds: heartbeat_age.map(|d| d.as_secs_f64()),
        heartbeat_topic: hb.map(|h| h.topic),
        checkpoint_age_seconds: checkpoint_age.map(|d| d.as_secs_f64()),
        groups_known,
        partition_lags: lags,
        replicated_from,
        delivery: Delivery::of(flow),
        replicated_age_seconds,
        process: None,
    };
    (status, groups)
}

/// How far flow `S->T` got on the source, per replicated partition: the lag model's source half,
/// which needs only S (the lag snapshots strait records for unplanned failovers use it alone).
#[derive(Clone, Debug, Default)]
pub(crate) struct SourceLag {
    /// Replicated topics on the source.
    pub topics: usize,
    pub partitions: Vec<PartitionLag>,
}

/// The positions of the newest lag snapshot of `flow`, when it is fresh: the running process's
/// view of what the target holds, a second or so ahead of its commits.
async fn recent_delivered(flow: &Flow, timeout: Duration) -> Option<Delivered> {
    let snap = super::snapshot::read_latest(flow, timeout).await.ok()??;
    if now_ms() - snap.at_ms > SNAPSHOT_FRESH.as_millis() as i64
        || snap.unreachable_from_ms.is_some()
    {
        return None;
    }
    Some(Delivered {
        at_ms: snap.at_ms,
        positions: snap
            .partitions
            .into_iter()
            .map(|p| ((p.topic, p.partition), p.replicated))
            .collect(),
    })
}

/// The clients [`source_lag`] reads a flow's source with, kept by callers that read it round
/// after round (a failover's samples, the lag recorder): each new client costs a connection,
/// a metadata request and librdkafka's threads.
pub(crate) struct SourceClients {
    admin: Admin,
    groups: Groups,
    timeout: Duration,
}

impl SourceClients {
    /// Clients of `flow`'s source, each call waiting at most `timeout` (no I/O yet).
    pub(crate) fn new(flow: &Flow, timeout: Duration) -> Result<Self, ClientError> {
        Ok(Self {
            admin: Admin::new(&flow.clients.source_admin, timeout)?,
            groups: Groups::new(&flow.clients.source_consumer, timeout),
            timeout,
        })
    }
}

/// Read [`SourceLag`] off the source cluster of `flow` with new clients (see
/// [`source_lag_with`]).
pub(crate) async fn source_lag(
    flow: &Flow,
    timeout: Duration,
    delivered: &(dyn Fn() -> Delivered + Sync),
) -> Result<SourceLag, ClientError> {
    source_lag_with(&SourceClients::new(flow, timeout)?, flow, delivered).await
}

/// Read [`SourceLag`] off the source cluster of `flow`; a partition's `replicated` is the further
/// of its commit and what `delivered` says, asked once the source's ends are read (so that the
/// positions are no older than the ends).
pub(crate) async fn source_lag_with(
    clients: &SourceClients,
    flow: &Flow,
    delivered: &(dyn Fn() -> Delivered + Sync),
) -> Result<SourceLag, ClientError> {
    let (mut lag, as_of_ms) = lag_in_records(clients, flow, delivered).await?;
    date_lag(&mut lag.partitions, flow, clients.timeout, as_of_ms).await?;
    Ok(lag)
}

/// [`source_lag_with`] without the seconds (each lagging partition's oldest record, read by a
/// consumer made for it): what a failover samples several times a second needs records only.
/// Also returns when the positions were true (ms since the epoch).
pub(crate) async fn lag_in_records(
    clients: &SourceClients,
    flow: &Flow,
    delivered: &(dyn Fn() -> Delivered + Sync),
) -> Result<(SourceLag, i64), ClientError> {
    let admin = &clients.admin;
    let strait_group = crate::replicate::replication_group(&flow.source, &flow.target);
    let all = admin.topics(None).await?;
    let replicated: Vec<_> = all
        .into_iter()
        .filter(|t| flow.should_replicate_topic(&t.name))
        .collect();
    let partitions: Vec<TopicPartition> = replicated
        .iter()
        .flat_map(|t| (0..t.partitions).map(|p| (t.name.clone(), p)))
        .collect();
    let marks = crate::kafka::watermarks_of(admin, &partitions).await?;
    let mut starts = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for (tp, (lo, hi)) in partitions.iter().zip(marks) {
        starts.insert(tp.clone(), lo);
        ends.insert(tp.clone(), hi);
    }
    let done = clients.groups.committed(&strait_group, &partitions).await?;
    let delivered = delivered();
    let mut lags = Vec::new();
    for tp in &partitions {
        let end = ends[tp];
        let committed = done.get(tp).map_or(starts[tp], |c| c.offset).min(end);
        let replicated = delivered
            .positions
            .get(tp)
            .map_or(committed, |d| (*d).max(committed))
            .min(end);
        lags.push(PartitionLag {
            topic: tp.0.clone(),
            partition: tp.1,
            remote_topic: flow.policy.remote_topic(&tp.0),
            source_end: end,
            replicated,
            committed,
            lag_records: end - replicated,
            lag_seconds: 0.0,
        });
    }
    let as_of_ms = if delivered.positions.is_empty() {
        now_ms()
    } else {
        delivered.at_ms
    };
    let lag = SourceLag {
        topics: replicated.len(),
        partitions: lags,
    };
    Ok((lag, as_of_ms))
}

/// Lag in seconds as of `as_of_ms`, when the positions were true: the age then of the oldest
/// record the target lacked (the evidence's own age is reported beside it).
async fn date_lag(
    lags: &mut [PartitionLag],
    flow: &Flow,
    timeout: Duration,
    as_of_ms: i64,
) -> Result<(), ClientError> {
    let behind: Vec<(TopicPartition, i64)> = lags
        .iter()
        .filter(|l| l.lag_records > 0)
        .map(|l| ((l.topic.clone(), l.partition), l.replicated))
        .collect();
    let stamps = {
        let ep = flow.clients.source_consumer.clone();
        crate::kafka::blocking(move || first_timestamps(&ep, &behind, timeout)).await?
    };
    for l in lags {
        if let Some(ts) = stamps.get(&(l.topic.clone(), l.partition)) {
            l.lag_seconds = ((as_of_ms - ts) as f64 / 1000.0).max(0.0);
        }
    }
    Ok(())
}

async fn collect_groups(
    flow: &Flow,
    partitions: &[TopicPartition],
    source_ends: &BTreeMap<TopicPartition, i64>,
    opts: &Options,
) -> Result<Vec<GroupStatus>, ClientError> {
    let source_groups = Groups::new(&flow.clients.source_consumer, opts.timeout);
    let target_groups = Groups::new(&flow.clients.target_consumer, opts.timeout);
    let target_admin = Admin::new(&flow.clients.target_admin, opts.timeout)?;
    let mut translator = Translator::for_flow(flow);
    translator.refresh(opts.timeout).await?;
    let mut out = Vec::new();
    let mut target_ends: BTreeMap<TopicPartition, Option<i64>> = BTreeMap::new();
    for g in source_groups.list(None).await? {
        if !flow.should_replicate_group(&g.name) || crate::replicate::is_strait_group(&g.name) {
            continue;
        }
        let committed = source_groups.committed(&g.name, partitions).await?;
        if committed.is_empty() {
            continue;
        }
        let remote: Vec<TopicPartition> = committed
            .keys()
            .map(|(t, p)| (flow.policy.remote_topic(t), *p))
            .collect();
        let on_target = target_groups.committed(&g.name, &remote).await?;
        let mut parts = Vec::new();
        for ((topic, p), c) in &committed {
            let remote_topic = flow.policy.remote_topic(topic);
            let key = (remote_topic.clone(), *p);
            if !target_ends.contains_key(&key) {
                let end = target_admin
                    .watermarks(&remote_topic, *p)
                    .await
                    .ok()
                    .map(|(_, hi)| hi);
                target_ends.insert(key.clone(), end);
            }
            let target_end = target_ends[&key];
            let target_committed = on_target.get(&key).map(|c| c.offset);
            let end = source_ends
                .get(&(topic.clone(), *p))
                .copied()
                .unwrap_or(c.offset);
            parts.push(GroupPartition {
                topic: topic.clone(),
                partition: *p,
                remote_topic,
                source_committed: c.offset,
                source_end: end,
                source_lag: (end - c.offset).max(0),
                translated: translator.translate(topic, *p, c.offset).downstream,
                target_committed,
                target_end,
                target_lag: match (target_end, target_committed) {
                    (Some(e), Some(c)) => Some((e - c).max(0)),
                    _ => None,
                },
            });
        }
        out.push(GroupStatus {
            group: g.name.clone(),
            source: flow.source.clone(),
            target: flow.target.clone(),
            source_lag: parts.iter().map(|p| p.source_lag).sum(),
            target_lag: parts.iter().map(|p| p.target_lag).sum(),
            partitions: parts,
        });
    }
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

fn reader(ep: &Endpoint) -> Result<BaseConsumer<Diagnosed>, ClientError> {
    let mut cfg = ep.consumer_config("strait-status-reader");
    cfg.set("client.id", format!("strait-{}-status", ep.alias));
    // It reads a record or a few per partition, every second while `strait run` records lag
    // snapshots: small fetches and a small queue, or a lagging flow's reader would pull (and
    // decompress) megabytes each round to look at one timestamp. A broker still returns a whole
    // first batch when it is larger than these limits.
    cfg.set("fetch.max.bytes", "65536")
        .set("message.max.bytes", "65536")
        .set("max.partition.fetch.bytes", "16384")
        .set("queued.max.messages.kbytes", "256");
    cfg.create_with_context(ep.context())
        .map_err(|e| ClientError::from_kafka(ep, "create a status reader", e))
}

/// The timestamp of the first record at or after each (partition, offset).
fn first_timestamps(
    ep: &Endpoint,
    at: &[(TopicPartition, i64)],
    timeout: Duration,
) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
    let mut out = BTreeMap::new();
    if at.is_empty() {
        return Ok(out);
    }
    let c = reader(ep)?;
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in at {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| ClientError::from_kafka(ep, "assign", e))?;
    }
    c.assign(&tpl)
        .map_err(|e| ClientError::from_kafka(ep, "assign", e))?;
    let deadline = Instant::now() + timeout;
    while out.len() < at.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let key = (m.topic().to_string(), m.partition());
            if let Some(ts) = m.timestamp().to_millis() {
                out.entry(key).or_insert(ts);
            }
            // One record per partition is enough.
            let mut done = TopicPartitionList::new();
            let _ = done.add_partition(m.topic(), m.partition());
            let _ = c.pause(&done);
        }
    }
    Ok(out)
}

/// A record as (key, value, timestamp in ms).
pub(crate) type RawRecord = (Vec<u8>, Vec<u8>, Option<i64>);

/// The last `n` records of partition 0 of `topic` as (key, value, timestamp). A topic that does
/// not exist reads as empty; a cluster that does not answer within `timeout` is an error.
pub(crate) async fn last_records(
    ep: &Endpoint,
    topic: &str,
    n: i64,
    timeout: Duration,
) -> Result<Vec<RawRecord>, ClientError> {
    let (ep, topic) = (ep.clone(), topic.to_string());
    crate::kafka::blocking(move || last_records_blocking(&ep, &topic, n, timeout)).await
}

fn last_records_blocking(
    ep: &Endpoint,
    topic: &str,
    n: i64,
    timeout: Duration,
) -> Result<Vec<RawRecord>, ClientError> {
    let c = reader(ep)?;
    let op = format!("read {topic}");
    let (lo, hi) = match c.fetch_watermarks(topic, 0, timeout) {
        Ok(w) => w,
        Err(e) if crate::kafka::tail::unknown_topic(&e) => {
            crate::kafka::tail::absent_or_denied(&c, ep, topic, timeout)?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(ClientError::from_blocking(ep, &op, e, timeout)),
    };
    if hi <= lo {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset((hi - n).max(lo)))
        .map_err(|e| ClientError::from_kafka(ep, "assign", e))?;
    c.assign(&tpl)
        .map_err(|e| ClientError::from_kafka(ep, "assign", e))?;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut next = (hi - n).max(lo);
    while next < hi && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            next = m.offset() + 1;
            out.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
                m.timestamp().to_millis(),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "clusters = a, b\na.bootstrap.servers = x:1\nb.bootstrap.servers = y:1\na->b.enabled = true\n{extra}"
            ),
            "t.properties",
        )
        .unwrap()
    }

    #[test]
    fn heartbeats_of_a_flow_are_the_reverse_pairs_replicated_ones() {
        let c = config("");
        let f = c.flow("a", "b").unwrap();
        let hb = heartbeat_source(&c, f).unwrap();
        assert_eq!(hb.topic, "a.heartbeats");
        assert_eq!(hb.interval, Duration::from_secs(1));
        assert_eq!(hb.only_from, None);
    }

    #[test]
    fn without_reverse_heartbeats_the_pairs_own_are_used() {
        let c = config("b->a.emit.heartbeats.enabled = false\n");
        let f = c.flow("a", "b").unwrap();
        let hb = heartbeat_source(&c, f).unwrap();
        assert_eq!(hb.topic, "heartbeats");
        assert_eq!(hb.only_from.as_deref(), Some("a"));
        let c = config("emit.heartbeats.enabled = false\n");
        assert!(heartbeat_source(&c, c.flow("a", "b").unwrap()).is_none());
    }
}
