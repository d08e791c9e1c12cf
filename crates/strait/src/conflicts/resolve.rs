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
//! **Several processes.** The group shares partitions with the range assignor, which gives
//! partition p of every input to the same member when the inputs have the same partition count.
//! So a key must be in the same partition number in every input: the same partition count
//! everywhere and the default partitioner (flows keep partition numbers, so that holds for the
//! remote copies whenever it holds for the local topics). Different counts are logged as errors
//! naming the topics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use strait_conflicts::lww::{Offer, Version, View};
use strait_conflicts::Rank;
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::conflicts::{view_topic, Conflicts, Strategy};
use crate::config::{Config, Flow};
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, Created, Endpoint, TopicInfo, TopicSpec};
use crate::policy::{PolicyKind, ReplicationPolicy};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{or_cancel, pause, CancellationToken};

/// The header naming the region a view record's version was written in.
pub(crate) const ORIGIN_HEADER: &str = "strait.origin";
/// The header holding the partition the version was read from in this region.
pub(crate) const PARTITION_HEADER: &str = "strait.partition";
/// The header holding the offset the version was read at in this region.
pub(crate) const OFFSET_HEADER: &str = "strait.offset";

/// How often the topics are listed again while an input is still missing (a remote copy the
/// flow has not created yet), or no input exists at all.
const INCOMPLETE_REFRESH: Duration = Duration::from_secs(2);
/// At most this many records are taken in before what they produced is awaited and committed.
const BATCH_MAX: usize = 5_000;
/// ... or what arrived within this time.
const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// How long a stop waits for records already handed to the producer.
const STOP_FLUSH: Duration = Duration::from_secs(2);

/// A digest of a value, the same in every process and release (FNV-1a, 64 bits; a tombstone
/// and an empty value differ).
pub(crate) fn digest(value: Option<&[u8]>) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(PRIME);
    match value {
        None => step(OFFSET_BASIS, 0),
        Some(v) => v.iter().fold(step(OFFSET_BASIS, 1), |h, &b| step(h, b)),
    }
}

/// Whether a header is one of those strait writes on view records (an input's own are dropped,
/// so that each view record has one of each).
fn is_view_header(key: &str) -> bool {
    matches!(key, ORIGIN_HEADER | PARTITION_HEADER | OFFSET_HEADER)
}

/// Where a view record's version was read: (region alias, partition, offset), from its headers
/// (the last of each name). `None` for a record strait did not write.
fn parse_view_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Option<(String, i32, i64)> {
    let (mut origin, mut partition, mut offset) = (None, None, None);
    for (k, v) in headers {
        let text = || v.and_then(|v| std::str::from_utf8(v).ok());
        match k {
            ORIGIN_HEADER => origin = text().map(str::to_string),
            PARTITION_HEADER => partition = text().and_then(|s| s.parse().ok()),
            OFFSET_HEADER => offset = text().and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    Some((origin?, partition?, offset?))
}

/// The last-writer-wins view job of one rule in one region.
#[derive(Clone, Debug)]
pub(crate) struct ResolveSpec {
    /// The rule's name.
    pub rule: String,
    /// R: the region whose cluster holds the inputs and the views.
    pub region: String,
    /// Every rule of the file (a topic belongs to the first rule covering it), with the region
    /// order.
    pub conflicts: Arc<Conflicts>,
    /// Every cluster alias of the file, to tell remote topics from local ones.
    pub aliases: Vec<String>,
    /// R's policy (that of a flow into R): which topics are internal or heartbeats.
    pub policy: ReplicationPolicy,
    /// Each other region Q whose flow Q->R is enabled, with that flow's policy (which names
    /// Q's remote topics on R).
    pub remotes: Vec<(String, ReplicationPolicy)>,
    /// Consumer, producer and admin properties for R (those of the first flow into R).
    pub consumer: Endpoint,
    pub producer: Endpoint,
    pub admin: Endpoint,
    /// For view topics strait creates (lowered to R's broker count when it has fewer).
    pub replication_factor: i32,
    /// How often R's topics are listed again for new inputs (`refresh.topics.interval.seconds`).
    pub refresh: Duration,
    pub admin_timeout: Duration,
}

impl ResolveSpec {
    /// One job per last-writer-wins rule and region R of `strait.conflicts.regions` that is the
    /// target of an enabled flow `selected` accepts, with another region's flow into R.
    pub(crate) fn from_config(config: &Config, selected: &dyn Fn(&Flow) -> bool) -> Vec<Self> {
        let conflicts = Arc::new(config.conflicts.clone());
        let mut out = Vec::new();
        for rule in &conflicts.rules {
            if rule.strategy != Strategy::LastWriterWins {
                continue;
            }
            for region in &conflicts.regions {
                let into: Vec<&Flow> = conflicts
                    .regions
                    .iter()
                    .filter(|q| *q != region)
                    .filter_map(|q| config.flow(q, region))
                    .filter(|f| f.enabled)
                    .collect();
                let Some(first) = into.first() else {
                    continue;
                };
                if !into.iter().any(|f| selected(f)) {
                    continue;
                }
                out.push(Self {
                    rule: rule.name.clone(),
                    region: region.clone(),
                    conflicts: conflicts.clone(),
                    aliases: config.clusters.iter().map(|c| c.alias.clone()).collect(),
                    policy: first.policy.clone(),
                    remotes: into
                        .iter()
                        .map(|f| (f.source.clone(), f.policy.clone()))
                        .collect(),
                    consumer: first.clients.target_consumer.clone(),
                    producer: first.clients.target_producer.clone(),
                    admin: first.clients.target_admin.clone(),
                    replication_factor: i32::from(first.replication_factor),
                    refresh: into
                        .iter()
                        .filter_map(|f| f.intervals.refresh_topics)
                        .min()
                        .unwrap_or(Duration::from_secs(600)),
                    admin_timeout: first.admin_timeout,
                });
            }
        }
        out
    }

    /// The consumer group reading the inputs on R: a `strait.` group, never checkpointed.
    pub(crate) fn group(&self) -> String {
        format!("strait.resolve.{}.{}", self.rule, self.region)
    }

    /// The job's name in logs and on the stop list: `orders in us-east`.
    pub(crate) fn name(&self) -> String {
        format!("{} in {}", self.rule, self.region)
    }

    fn rank(&self, alias: &str) -> Option<Rank> {
        self.conflicts.rank(alias)
    }

    /// Why no view can be kept, if so: with a policy that names remote topics as their source
    /// (IdentityReplicationPolicy), another region's writes cannot be told from R's own.
    fn naming_problem(&self) -> Option<String> {
        let (q, _) = self
            .remotes
            .iter()
            .find(|(_, p)| p.kind() == PolicyKind::Identity)?;
        Some(format!(
            "the flow {q}->{} names remote topics as their source (IdentityReplicationPolicy), so {q}'s writes cannot be told from {}'s own; last-writer-wins needs remote topics named apart (DefaultReplicationPolicy)",
            self.region, self.region
        ))
    }

    /// Whether `topic` is a remote copy (named after a cluster of the file), at any depth.
    fn is_remote(&self, topic: &str) -> bool {
        self.remotes.iter().any(|(_, p)| {
            p.topic_source(topic)
                .is_some_and(|s| self.aliases.iter().any(|a| a == s))
        })
    }

    /// Whether `topic` is a local topic of this rule (the first rule covering it).
    fn covers(&self, topic: &str) -> bool {
        !self.policy.is_internal_topic(topic)
            && !self.policy.is_heartbeats_topic(topic)
            && !self.conflicts.derived().contains(topic)
            && !self.is_remote(topic)
            && self
                .conflicts
                .rule_for(topic)
                .is_some_and(|r| r.name == self.rule)
    }

    /// The views to keep given R's topics: one per local topic of the rule that has any input
    /// on R (the local topic itself, or a direct remote copy of it).
    fn plan(&self, topics: &[TopicInfo]) -> Vec<ViewPlan> {
        let have: BTreeMap<&str, i32> = topics
            .iter()
            .map(|t| (t.name.as_str(), t.partitions))
            .collect();
        let mut bases = BTreeSet::new();
        for t in have.keys() {
            if self.covers(t) {
                bases.insert(t.to_string());
                continue;
            }
            for (q, p) in &self.remotes {
                if p.topic_source(t) != Some(q.as_str()) {
                    continue;
                }
                if let Some(up) = p.upstream_topic(t) {
                    if self.covers(&up) {
                        bases.insert(up);
                    }
                }
            }
        }
        bases
            .into_iter()
            .map(|base| {
                let expected = std::iter::once((base.clone(), self.region.clone())).chain(
                    self.remotes
                        .iter()
                        .map(|(q, p)| (p.remote_topic(&base), q.clone())),
                );
                let (mut inputs, mut missing) = (Vec::new(), Vec::new());
                for (topic, origin) in expected {
                    match have.get(topic.as_str()) {
                        Some(&partitions) => inputs.push(Input {
                            topic,
                            origin,
                            partitions,
                        }),
                        None => missing.push(topic),
                    }
                }
                let output = view_topic(&base);
                ViewPlan {
                    output_partitions: have.get(output.as_str()).copied(),
                    topic: base,
                    output,
                    inputs,
                    missing,
                }
            })
            .filter(|v| !v.inputs.is_empty())
            .collect()
    }
}

/// One input topic of a view on R.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Input {
    topic: String,
    /// The region its records were written in.
    origin: String,
    partitions: i32,
}

/// One view on R: the local topic it is named after, its inputs on R, and its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ViewPlan {
    topic: String,
    output: String,
    inputs: Vec<Input>,
    /// Inputs expected but not on R yet (a flow has not created its remote copy).
    missing: Vec<String>,
    /// The view topic's partition count, when it exists.
    output_partitions: Option<i32>,
}

impl ViewPlan {
    /// The view's partition count: the local topic's, else its remote copies' (the largest).
    fn partitions(&self) -> i32 {
        self.inputs
            .iter()
            .find(|i| i.topic == self.topic)
            .map(|i| i.partitions)
            .or_else(|| self.inputs.iter().map(|i| i.partitions).max())
            .unwrap_or(1)
    }

    /// Why a key may not be in the same partition of every input and of the view, if so.
    fn partition_problem(&self) -> Option<String> {
        let n = self.partitions();
        let mut counts: Vec<String> = self
            .inputs
            .iter()
            .map(|i| format!("{} has {}", i.topic, i.partitions))
            .collect();
        if let Some(o) = self.output_partitions {
            counts.push(format!("{} has {o}", self.output));
        }
        let differ = self.inputs.iter().any(|i| i.partitions != n)
            || self.output_partitions.is_some_and(|o| o != n);
        differ.then(|| {
            format!(
                "the partition counts of {}'s inputs and view differ ({}): a key must be in the same partition of every input and of the view, or the view may keep a version that lost; give them the same number of partitions",
                self.topic,
                counts.join(", ")
            )
        })
    }
}

/// Each view with its inputs and their partition counts.
type Signature = Vec<(String, Vec<(String, i32)>)>;

/// Per input partition, the next offset to read: what a commit records.
type Positions = BTreeMap<(String, i32), i64>;

/// The inputs of every view, with their partition counts: when this changes, the job starts
/// over with the new inputs.
fn signature(plans: &[ViewPlan]) -> Signature {
    plans
        .iter()
        .map(|v| {
            (
                v.output.clone(),
                v.inputs
                    .iter()
                    .map(|i| (i.topic.clone(), i.partitions))
                    .collect(),
            )
        })
        .collect()
}

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
        match session(&spec, &cancel, &stats).await {
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

/// Set up the views for the inputs R has now, then keep them until stopped, failed, or the
/// inputs change.
async fn session(
    spec: &ResolveSpec,
    cancel: &CancellationToken,
    stats: &Arc<ResolveStats>,
) -> Result<Ended, String> {
    let admin = Admin::new(&spec.admin, spec.admin_timeout).map_err(|e| e.to_string())?;
    let plans = loop {
        let Some(topics) = or_cancel(cancel, admin.topics(None)).await else {
            return Ok(Ended::Stopped);
        };
        let plans = spec.plan(&topics.map_err(|e| e.to_string())?);
        if !plans.is_empty() {
            break plans;
        }
        if !pause(cancel, INCOMPLETE_REFRESH.min(spec.refresh)).await {
            return Ok(Ended::Stopped);
        }
    };
    {
        let mut said = stats.said.lock().unwrap();
        for problem in plans.iter().filter_map(ViewPlan::partition_problem) {
            if said.0.insert(problem.clone()) {
                error!(rule = %spec.rule, region = %spec.region, "{problem}");
            }
        }
    }
    let create: Vec<&ViewPlan> = plans
        .iter()
        .filter(|p| p.output_partitions.is_none())
        .collect();
    if !create.is_empty() {
        let Some(brokers) = or_cancel(cancel, admin.broker_count()).await else {
            return Ok(Ended::Stopped);
        };
        let rf = effective_replication_factor(
            spec.replication_factor,
            brokers.map_err(|e| e.to_string())?,
        );
        let specs: Vec<TopicSpec> = create
            .iter()
            .map(|p| {
                TopicSpec::new(&p.output, p.partitions(), rf)
                    .config("cleanup.policy", "compact")
                    // Versions are read back from the records' own timestamps.
                    .config("message.timestamp.type", "CreateTime")
            })
            .collect();
        let Some(created) = or_cancel(cancel, admin.create_topics(&specs)).await else {
            return Ok(Ended::Stopped);
        };
        for (name, outcome) in created.map_err(|e| e.to_string())? {
            if outcome == Created::Created {
                info!(rule = %spec.rule, region = %spec.region, topic = %name, "created the view topic");
            }
        }
    }
    {
        let mut said = stats.said.lock().unwrap();
        let sig = signature(&plans);
        if said.1 != sig {
            for p in &plans {
                let inputs: Vec<&str> = p.inputs.iter().map(|i| i.topic.as_str()).collect();
                info!(
                    rule = %spec.rule,
                    region = %spec.region,
                    inputs = ?inputs,
                    waiting_for = ?p.missing,
                    output = %p.output,
                    group = %spec.group(),
                    "keeping a last-writer-wins view"
                );
            }
            said.1 = sig;
        }
    }
    drop(admin);
    let (spec, cancel, stats) = (spec.clone(), cancel.clone(), stats.clone());
    crate::kafka::blocking(move || Session::new(spec, plans, cancel, stats)?.run()).await
}

/// Errors and rebalances of the input consumer, and what was taken in but not yet committed.
struct InputContext {
    diagnose: Diagnosed,
    name: String,
    state: Mutex<Rebalanced>,
}

#[derive(Default)]
struct Rebalanced {
    /// Partitions were given up or assigned since the loop last looked.
    changed: bool,
    /// The next input offset per partition whose views are written and acknowledged, not yet
    /// committed.
    pending: Positions,
}

crate::kafka::diagnose::diagnosed_client_context!(InputContext, diagnose);

impl ConsumerContext for InputContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut state = self.state.lock().unwrap();
        match rebalance {
            Rebalance::Revoke(tpl) => {
                state.changed = true;
                // Nothing is in flight between batches: commit what is acknowledged for the
                // partitions going away, so their next owner starts after it.
                let mut commit = TopicPartitionList::new();
                for e in tpl.elements() {
                    if let Some(o) = state
                        .pending
                        .remove(&(e.topic().to_string(), e.partition()))
                    {
                        let _ = commit.add_partition_offset(
                            e.topic(),
                            e.partition(),
                            Offset::Offset(o),
                        );
                    }
                }
                if commit.count() > 0 {
                    if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                        debug!(view = %self.name, error = %e, "commit before giving up partitions failed; their next owner reads some again");
                    }
                }
            }
            Rebalance::Assign(_) => state.changed = true,
            Rebalance::Error(e) => {
                warn!(view = %self.name, error = %e, "rebalance of the view's consumer group failed")
            }
        }
    }
}

/// Delivery failures of view records: the session stops on the first and starts over.
struct OutputContext {
    diagnose: Diagnosed,
    failed: Mutex<Option<String>>,
}

crate::kafka::diagnose::diagnosed_client_context!(OutputContext, diagnose);

impl ProducerContext for OutputContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            self.failed
                .lock()
                .unwrap()
                .get_or_insert_with(|| format!("a record of {} was not written: {e}", m.topic()));
        }
    }
}

/// Why the blocking loop ended early.
type Stop = String;

/// One session's clients and views, on a blocking thread.
struct Session {
    spec: ResolveSpec,
    plans: Vec<ViewPlan>,
    cancel: CancellationToken,
    stats: Arc<ResolveStats>,
    /// Input topic -> (its view, the rank of the region it holds writes of).
    inputs: HashMap<String, (usize, Rank)>,
    /// View topic -> its view.
    outputs: HashMap<String, usize>,
    /// The winners of each (view, partition) this process holds.
    views: HashMap<(usize, i32), View<Vec<u8>>>,
    consumer: BaseConsumer<InputContext>,
    producer: ThreadedProducer<OutputContext>,
    /// Reads views back (no group: assigned partitions).
    reader: BaseConsumer<Diagnosed>,
}

impl Session {
    fn new(
        spec: ResolveSpec,
        plans: Vec<ViewPlan>,
        cancel: CancellationToken,
        stats: Arc<ResolveStats>,
    ) -> Result<Self, Stop> {
        let name = spec.name();
        let mut inputs = HashMap::new();
        for (i, p) in plans.iter().enumerate() {
            for input in &p.inputs {
                let rank = spec.rank(&input.origin).ok_or_else(|| {
                    format!("{} is not in strait.conflicts.regions", input.origin)
                })?;
                inputs.insert(input.topic.clone(), (i, rank));
            }
        }
        let outputs = plans
            .iter()
            .enumerate()
            .map(|(i, p)| (p.output.clone(), i))
            .collect();
        let mut cfg = spec.consumer.consumer_config(&spec.group());
        // Partition p of every input to one member (see the module's comment), from the
        // beginning where the group has no commit.
        cfg.set("partition.assignment.strategy", "range");
        cfg.set("auto.offset.reset", "earliest");
        cfg.set("client.id", format!("strait-{}-resolver", spec.region));
        let consumer: BaseConsumer<InputContext> = cfg
            .create_with_context(InputContext {
                diagnose: spec.consumer.context(),
                name: name.clone(),
                state: Mutex::new(Rebalanced::default()),
            })
            .map_err(|e| format!("cannot create the view's consumer: {e}"))?;
        let mut cfg = spec.producer.producer_config();
        cfg.set("client.id", format!("strait-{}-resolver", spec.region));
        let producer: ThreadedProducer<OutputContext> = cfg
            .create_with_context(OutputContext {
                diagnose: spec.producer.context(),
                failed: Mutex::new(None),
            })
            .map_err(|e| format!("cannot create the view's producer: {e}"))?;
        let mut cfg = spec.consumer.consumer_config("strait-internal-reader");
        cfg.set("client.id", format!("strait-{}-reader", spec.region));
        let reader: BaseConsumer<Diagnosed> = cfg
            .create_with_context(spec.consumer.context())
            .map_err(|e| format!("cannot create a reader of the views: {e}"))?;
        let topics: Vec<&str> = inputs.keys().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| format!("cannot subscribe to {topics:?}: {e}"))?;
        Ok(Self {
            spec,
            plans,
            cancel,
            stats,
            inputs,
            outputs,
            views: HashMap::new(),
            consumer,
            producer,
            reader,
        })
    }

    fn name(&self) -> String {
        self.spec.name()
    }

    /// Take in batches until stopped, failed, or the inputs change.
    fn run(mut self) -> Result<Ended, Stop> {
        let refresh = if self.plans.iter().any(|p| !p.missing.is_empty()) {
            INCOMPLETE_REFRESH.min(self.spec.refresh)
        } else {
            self.spec.refresh
        };
        let mut next_refresh = Instant::now() + refresh;
        let ended = loop {
            if self.cancel.is_cancelled() {
                break Ok(Ended::Stopped);
            }
            let batch = self.collect()?;
            if !batch.is_empty() {
                match self.take(&batch)? {
                    Some(done) => self.commit(done),
                    None => break Ok(Ended::Stopped),
                }
            }
            if Instant::now() >= next_refresh {
                next_refresh = Instant::now() + refresh;
                if self.inputs_changed() {
                    break Ok(Ended::TopicsChanged);
                }
            }
        };
        self.commit(Positions::new());
        ended
    }

    /// Poll for at most [`BATCH_WINDOW`] or [`BATCH_MAX`] records. A rebalance drops what was
    /// taken before it (each of those partitions resumes from its commit, here or elsewhere)
    /// and the winners held (read again from the views for the partitions assigned).
    fn collect(&mut self) -> Result<Vec<OwnedMessage>, Stop> {
        let until = Instant::now() + BATCH_WINDOW;
        let mut batch = Vec::new();
        while batch.len() < BATCH_MAX && !self.cancel.is_cancelled() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let got = self.consumer.poll(left);
            if std::mem::take(&mut self.consumer.context().state.lock().unwrap().changed) {
                batch.clear();
                self.views.clear();
            }
            match got {
                Some(Ok(m)) => batch.push(m.detach()),
                Some(Err(e)) => self.input_error(e)?,
                None => {}
            }
        }
        Ok(batch)
    }

    /// An error the input consumer returned: a topic not there (yet) is waited for, a refused
    /// authorization ends the session, others are librdkafka's transient errors.
    fn input_error(&self, e: KafkaError) -> Result<(), Stop> {
        use RDKafkaErrorCode as C;
        match e.rdkafka_error_code() {
            Some(C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition) => {
                debug!(view = %self.name(), error = %e, "an input is not there yet");
                Ok(())
            }
            Some(C::TopicAuthorizationFailed | C::GroupAuthorizationFailed) => {
                Err(format!("reading the inputs was refused: {e}"))
            }
            _ => {
                debug!(view = %self.name(), error = %e, "input consumer error");
                Ok(())
            }
        }
    }

    /// Offer every record of `batch` to its view, write the winners, and wait for them: the
    /// next input offset of each partition, to commit; `None` when stopped before every winner
    /// was acknowledged (nothing of the batch is committed then).
    fn take(&mut self, batch: &[OwnedMessage]) -> Result<Option<Positions>, Stop> {
        let need: BTreeSet<(usize, i32)> = batch
            .iter()
            .filter_map(|m| {
                let (view, _) = self.inputs.get(m.topic())?;
                Some((*view, m.partition()))
            })
            .filter(|k| !self.views.contains_key(k))
            .collect();
        if !need.is_empty() && !self.rebuild(&need)? {
            return Ok(None);
        }
        let mut done = BTreeMap::new();
        for m in batch {
            let Some(&(view, rank)) = self.inputs.get(m.topic()) else {
                continue;
            };
            done.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
            self.stats.read.fetch_add(1, Ordering::Relaxed);
            let Some(key) = m.key() else {
                self.stats.keyless.fetch_add(1, Ordering::Relaxed);
                if !self.stats.said_keyless.swap(true, Ordering::Relaxed) {
                    warn!(view = %self.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), "records without a key are skipped: last-writer-wins settles the versions of a key (said once; counted)");
                }
                continue;
            };
            let timestamp = match m.timestamp() {
                Timestamp::CreateTime(t) if t >= 0 => t,
                Timestamp::LogAppendTime(t) if t >= 0 => {
                    if !self.stats.said_log_append.swap(true, Ordering::Relaxed) {
                        warn!(view = %self.name(), topic = m.topic(), "an input's timestamps are the broker's append times (message.timestamp.type = LogAppendTime), which differ between regions for the same write: views may not converge; use CreateTime for conflict topics (said once)");
                    }
                    t
                }
                _ => {
                    self.stats.untimed.fetch_add(1, Ordering::Relaxed);
                    if !self.stats.said_untimed.swap(true, Ordering::Relaxed) {
                        warn!(view = %self.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), "records without a timestamp are skipped (said once; counted)");
                    }
                    continue;
                }
            };
            let version = Version {
                timestamp,
                origin: rank,
                partition: m.partition(),
                offset: m.offset(),
                digest: digest(m.payload()),
            };
            let Some(winners) = self.views.get_mut(&(view, m.partition())) else {
                continue; // read back above
            };
            if let Offer::Won { .. } = winners.offer(key.to_vec(), version) {
                self.write(view, m, key, timestamp)?;
            }
        }
        if !self.settle()? {
            return Ok(None);
        }
        Ok(Some(done))
    }

    /// Write `m`, a new winner, to its view.
    fn write(&self, view: usize, m: &OwnedMessage, key: &[u8], timestamp: i64) -> Result<(), Stop> {
        let origin = self.plans[view]
            .inputs
            .iter()
            .find(|i| i.topic == m.topic())
            .map(|i| i.origin.as_str())
            .unwrap_or_default();
        let mut headers = OwnedHeaders::new();
        if let Some(hs) = m.headers() {
            for h in hs.iter().filter(|h| !is_view_header(h.key)) {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let (partition, offset) = (m.partition().to_string(), m.offset().to_string());
        for (k, v) in [
            (ORIGIN_HEADER, origin),
            (PARTITION_HEADER, &partition),
            (OFFSET_HEADER, &offset),
        ] {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.plans[view].output)
            .partition(m.partition())
            .key(key)
            .timestamp(timestamp)
            .headers(headers);
        if let Some(v) = m.payload() {
            rec = rec.payload(v);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(format!(
                        "cannot hand a record to the producer of {}: {e}",
                        self.plans[view].output
                    ))
                }
            }
        }
        self.stats.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wait until every view record handed to the producer is acknowledged: true when they
    /// are, false when stopped first (given [`STOP_FLUSH`] more), an error when one failed.
    fn settle(&self) -> Result<bool, Stop> {
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(e) = self.producer.context().failed.lock().unwrap().take() {
                return Err(e);
            }
            if self.producer.in_flight_count() <= 0 {
                return Ok(true);
            }
            if self.cancel.is_cancelled() {
                let d = *deadline.get_or_insert_with(|| Instant::now() + STOP_FLUSH);
                if Instant::now() >= d {
                    return Ok(false);
                }
            }
            let _ = self.producer.flush(Duration::from_millis(100));
        }
    }

    /// Commit `done` with what an earlier commit could not.
    fn commit(&self, done: Positions) {
        let mut state = self.consumer.context().state.lock().unwrap();
        state.pending.extend(done);
        if state.pending.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &state.pending {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => state.pending.clear(),
            Err(e) => {
                debug!(view = %self.name(), error = %e, "input offsets not committed; tried again with the next batch")
            }
        }
    }

    /// Read back the winners of each (view, partition) in `need` from the view topic, from its
    /// start to its end as of now. False when stopped first.
    fn rebuild(&mut self, need: &BTreeSet<(usize, i32)>) -> Result<bool, Stop> {
        let timeout = self.spec.admin_timeout;
        let mut ends: HashMap<(String, i32), i64> = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for &(view, p) in need {
            self.views.insert((view, p), View::new());
            let out = &self.plans[view].output;
            // A view topic just created may have no leader known yet: asked again until it has.
            let asked = Instant::now();
            let (lo, hi) = loop {
                match self.reader.fetch_watermarks(out, p, timeout) {
                    Ok(w) => break w,
                    Err(e) if asked.elapsed() >= timeout => {
                        return Err(format!("cannot read the end of {out}-{p}: {e}"))
                    }
                    Err(e) => {
                        debug!(view = %self.name(), topic = %out, partition = p, error = %e, "view end not known yet; asking again");
                        if self.cancel.is_cancelled() {
                            return Ok(false);
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            };
            if hi > lo {
                ends.insert((out.clone(), p), hi);
                tpl.add_partition_offset(out, p, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
        }
        if ends.is_empty() {
            return Ok(true);
        }
        self.reader
            .assign(&tpl)
            .map_err(|e| format!("cannot read the views back: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut kept = 0u64;
        while !ends.is_empty() {
            if self.cancel.is_cancelled() {
                let _ = self.reader.unassign();
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the views were not read back within {}s",
                    timeout.as_secs()
                ));
            }
            match self.reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let tp = (m.topic().to_string(), m.partition());
                    if ends.get(&tp).is_some_and(|end| m.offset() + 1 >= *end) {
                        ends.remove(&tp);
                    }
                    let Some(&view) = self.outputs.get(m.topic()) else {
                        continue;
                    };
                    let origin = m
                        .headers()
                        .and_then(|hs| parse_view_headers(hs.iter().map(|h| (h.key, h.value))));
                    let version = match (origin, m.key(), m.timestamp().to_millis()) {
                        (Some((alias, partition, offset)), Some(key), Some(timestamp)) => {
                            self.spec.rank(&alias).map(|origin| {
                                (
                                    key,
                                    Version {
                                        timestamp,
                                        origin,
                                        partition,
                                        offset,
                                        digest: digest(m.payload()),
                                    },
                                )
                            })
                        }
                        _ => None,
                    };
                    match version {
                        Some((key, v)) => {
                            if let Some(w) = self.views.get_mut(&(view, m.partition())) {
                                w.offer(key.to_vec(), v);
                                kept += 1;
                            }
                        }
                        None => {
                            if !self.stats.said_foreign.swap(true, Ordering::Relaxed) {
                                warn!(view = %self.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), "a view record without strait's headers (strait.origin, strait.partition, strait.offset) or a known region was not written by strait; ignored (said once)");
                            }
                        }
                    }
                }
                // Compaction leaves the last offsets empty: a position at the end is the end.
                Some(Err(_)) | None => {
                    if let Ok(pos) = self.reader.position() {
                        for e in pos.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                let tp = (e.topic().to_string(), e.partition());
                                if ends.get(&tp).is_some_and(|end| o >= *end) {
                                    ends.remove(&tp);
                                }
                            }
                        }
                    }
                }
            }
        }
        let _ = self.reader.unassign();
        debug!(view = %self.name(), partitions = need.len(), records = kept, "winners read back from the views");
        Ok(true)
    }

    /// Whether R's topics now give other inputs (or partition counts) than this session's.
    fn inputs_changed(&self) -> bool {
        let md = match self.consumer.fetch_metadata(None, self.spec.admin_timeout) {
            Ok(md) => md,
            Err(e) => {
                debug!(view = %self.name(), error = %e, "topics not listed; tried again at the next refresh");
                return false;
            }
        };
        let topics: Vec<TopicInfo> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicInfo {
                name: t.name().to_string(),
                partitions: t.partitions().len() as i32,
            })
            .collect();
        let now = self.spec.plan(&topics);
        signature(&now) != signature(&self.plans)
            || now
                .iter()
                .map(|p| &p.missing)
                .ne(self.plans.iter().map(|p| &p.missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "clusters = east, west, south\n\
                 east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\nsouth.bootstrap.servers = s:9092\n\
                 east->west.enabled = true\nwest->east.enabled = true\n\
                 strait.conflicts.regions = west, east\n{extra}"
            ),
            "mm2.properties",
        )
        .unwrap()
    }

    fn ti(name: &str, partitions: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            partitions,
        }
    }

    const RULES: &str = "strait.conflicts.rules = orders, owned\n\
                         strait.conflicts.orders.topics = orders, ledger-.*\n\
                         strait.conflicts.orders.strategy = last-writer-wins\n\
                         strait.conflicts.owned.topics = accounts\n\
                         strait.conflicts.owned.strategy = authority\n\
                         strait.conflicts.owned.authority.east = E-.*\n";

    #[test]
    fn one_job_per_rule_and_region_with_its_remote_flows() {
        let c = config(RULES);
        let all = ResolveSpec::from_config(&c, &|_| true);
        let names: Vec<String> = all.iter().map(ResolveSpec::name).collect();
        assert_eq!(names, ["orders in west", "orders in east"]);
        let east = &all[1];
        assert_eq!(east.group(), "strait.resolve.orders.east");
        assert!(crate::replicate::is_strait_group(&east.group()));
        assert_eq!(
            east.remotes
                .iter()
                .map(|(q, _)| q.as_str())
                .collect::<Vec<_>>(),
            ["west"]
        );
        assert_eq!(east.consumer.alias, "east");
        assert_eq!(east.rank("west"), Some(0));
        // `--clusters west`: only the job on west.
        let west_only = ResolveSpec::from_config(&c, &|f| f.target == "west");
        assert_eq!(west_only.len(), 1);
        assert_eq!(west_only[0].region, "west");
        assert!(west_only[0].naming_problem().is_none());
    }

    #[test]
    fn views_take_the_local_topic_and_direct_remote_copies() {
        let c = config(RULES);
        let east = ResolveSpec::from_config(&c, &|_| true).remove(1);
        let plans = east.plan(&[
            ti("orders", 3),
            ti("west.orders", 3),
            ti("orders.resolved", 3),
            ti("west.south.orders", 3), // a copy of a copy: ignored
            ti("west.ledger-eu", 2),    // only the remote copy so far
            ti("accounts", 1),          // another rule's
            ti("west.accounts", 1),
            ti("payments", 1), // no rule
            ti("heartbeats", 1),
            ti("west.heartbeats", 1),
        ]);
        assert_eq!(
            plans,
            vec![
                ViewPlan {
                    topic: "ledger-eu".into(),
                    output: "ledger-eu.resolved".into(),
                    inputs: vec![Input {
                        topic: "west.ledger-eu".into(),
                        origin: "west".into(),
                        partitions: 2
                    }],
                    missing: vec!["ledger-eu".into()],
                    output_partitions: None,
                },
                ViewPlan {
                    topic: "orders".into(),
                    output: "orders.resolved".into(),
                    inputs: vec![
                        Input {
                            topic: "orders".into(),
                            origin: "east".into(),
                            partitions: 3
                        },
                        Input {
                            topic: "west.orders".into(),
                            origin: "west".into(),
                            partitions: 3
                        },
                    ],
                    missing: vec![],
                    output_partitions: Some(3),
                },
            ]
        );
        assert_eq!(plans[0].partitions(), 2);
        assert!(plans.iter().all(|p| p.partition_problem().is_none()));
    }

    #[test]
    fn different_partition_counts_are_named() {
        let c = config(RULES);
        let east = ResolveSpec::from_config(&c, &|_| true).remove(1);
        let plans = east.plan(&[ti("orders", 3), ti("west.orders", 4)]);
        let problem = plans[0].partition_problem().unwrap();
        assert!(
            problem.contains("(orders has 3, west.orders has 4)"),
            "{problem}"
        );
        assert_eq!(plans[0].partitions(), 3, "the local topic's count");
        let plans = east.plan(&[
            ti("orders", 3),
            ti("west.orders", 3),
            ti("orders.resolved", 6),
        ]);
        let problem = plans[0].partition_problem().unwrap();
        assert!(problem.contains("orders.resolved has 6"), "{problem}");
    }

    #[test]
    fn the_identity_policy_keeps_no_view() {
        let c = config(&format!(
            "{RULES}replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n"
        ));
        let east = ResolveSpec::from_config(&c, &|_| true).remove(1);
        let problem = east.naming_problem().unwrap();
        assert!(
            problem.contains("the flow west->east names remote topics as their source"),
            "{problem}"
        );
        assert!(
            c.warnings.iter().any(|w| w
                .message
                .contains("no last-writer-wins view is kept; use DefaultReplicationPolicy")),
            "strait check says so too: {:?}",
            c.warnings
        );
    }

    #[test]
    fn digests_are_fixed_and_tell_a_tombstone_from_an_empty_value() {
        // FNV-1a of [1, b'a'] and of [0]: the same in every process and release.
        assert_eq!(digest(Some(b"a")), digest_reference(&[1, b'a']));
        assert_eq!(digest(None), digest_reference(&[0]));
        assert_eq!(digest(Some(b"shipped")), 0xbeac73fff1f8d063);
        assert_ne!(digest(None), digest(Some(b"")));
        assert_ne!(digest(Some(b"ab")), digest(Some(b"ba")));
    }

    /// FNV-1a as published (http://www.isthe.com/chongo/tech/comp/fnv/).
    fn digest_reference(bytes: &[u8]) -> u64 {
        let mut h: u64 = 14_695_981_039_346_656_037;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(1_099_511_628_211);
        }
        h
    }

    #[test]
    fn view_headers_are_read_back_last_one_winning() {
        let h = |k: &'static str, v: &'static str| (k, Some(v.as_bytes()));
        assert_eq!(
            parse_view_headers([
                h("trace", "x"),
                h(ORIGIN_HEADER, "east"),
                h(PARTITION_HEADER, "2"),
                h(OFFSET_HEADER, "41"),
                h(OFFSET_HEADER, "42"),
            ]),
            Some(("east".into(), 2, 42))
        );
        assert_eq!(
            parse_view_headers([h(ORIGIN_HEADER, "east"), h(PARTITION_HEADER, "2")]),
            None
        );
        assert_eq!(
            parse_view_headers([
                h(ORIGIN_HEADER, "east"),
                h(PARTITION_HEADER, "x"),
                h(OFFSET_HEADER, "1")
            ]),
            None
        );
        assert!(is_view_header(ORIGIN_HEADER) && !is_view_header("trace"));
    }
}
