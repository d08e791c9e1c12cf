//! What `strait check --json` prints: a configuration as MM2 reads it (every flow with its
//! effective settings, where the internal topics live, the clients with secrets redacted, the
//! stores and the warnings), and with `--positions` where a first run resumes each partition.
//!
//! The field names are the documented contract (README, `### strait check`). The document is
//! printed by [`CheckReport::to_json`], whose keys are in alphabetical order at every level, as
//! they have been since the command was written with `serde_json::Value`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, Flow, NameFilter, Origin, StoreSummary};
use crate::kafka::Endpoint;
use crate::replicate::resume::{Resume, ResumeFrom};

/// The whole `strait check --json` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The file as given.
    pub config: String,
    /// Always `true`: an invalid file gives no document.
    pub valid: bool,
    /// In `clusters` order.
    pub clusters: Vec<ClusterEntry>,
    /// Every ordered pair of clusters.
    pub flows: Vec<FlowEntry>,
    /// Every key and trust store the clients use.
    pub stores: Vec<StoreEntry>,
    /// What strait accepted but the user should know (ignored keys, reproduced MM2 quirks,
    /// stores not on this machine); empty when there is nothing to say.
    pub warnings: Vec<WarningEntry>,
    /// With `--positions` only: where a first `strait run` resumes each partition of each
    /// enabled flow; `None` (key absent) without it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub positions: Option<Vec<Position>>,
    /// The `strait.conflicts.` rules; key absent when the file has none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conflicts: Option<ConflictsEntry>,
    /// How `strait run` watches each region (`strait.region.*`, defaults included).
    pub region_watch: RegionWatchEntry,
}

/// `strait.region.*`: when a region is declared down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionWatchEntry {
    /// `strait.region.probe.interval.ms`.
    pub probe_interval_ms: u64,
    /// `strait.region.probe.timeout.ms`.
    pub probe_timeout_ms: u64,
    /// `strait.region.down.after.ms`.
    pub down_after_ms: u64,
}

/// The file's active-active conflict rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictsEntry {
    /// Region aliases in tie-break order (first wins ties).
    pub regions: Vec<String>,
    /// In the order listed.
    pub rules: Vec<ConflictRuleEntry>,
    /// `strait.conflicts.clock.tolerance.ms`: how far apart clocks are taken to be.
    pub clock_tolerance_ms: u64,
    /// `strait.conflicts.write.delay.max.ms`: how late after its timestamp a write may be
    /// appended; detection keeps deliveries that much past the replication lag.
    pub write_delay_max_ms: u64,
}

/// One conflict rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRuleEntry {
    /// As listed in `strait.conflicts.rules`.
    pub name: String,
    /// The topic patterns it covers.
    pub topics: Vec<String>,
    /// `authority`, `last-writer-wins` or `events`.
    pub strategy: String,
    /// Authority only: region alias -> key pattern.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub owners: Option<BTreeMap<String, String>>,
    /// Authority only: `report` or `quarantine`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub violations: Option<String>,
    /// Events only: the header holding event ids (null: none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event_id_header: Option<String>,
    /// Events only: the allowed lateness, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lateness_ms: Option<u64>,
    /// Authority with `violations = quarantine` only: where each flow into an owner writes the
    /// violations it keeps out of the remote topic.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quarantine_topics: Option<Vec<QuarantineEntry>>,
}

/// A quarantine topic a flow writes violations to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The flow (`us-west->us-east`).
    pub flow: String,
    /// The topic beside the remote topic (`us-west.orders.quarantine`); a rule's topic pattern
    /// that is not a plain name gives a pattern (`us-west.orders-.*.quarantine`).
    pub topic: String,
    /// The cluster holding it (the owner's).
    pub target: String,
}

/// Per enabled flow into a region that owns keys of authority rule `r` with
/// `violations = quarantine`, the quarantine topic of each of the rule's topic patterns.
pub fn quarantine_topics(c: &Config, r: &super::conflicts::ConflictRule) -> Vec<QuarantineEntry> {
    use super::conflicts::{Strategy, Violations};
    let Strategy::Authority {
        owners,
        violations: Violations::Quarantine,
    } = &r.strategy
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in c.enabled_flows() {
        if !owners.iter().any(|(region, _)| *region == f.target) {
            continue;
        }
        for topic in r.topics.patterns() {
            out.push(QuarantineEntry {
                flow: f.name(),
                topic: super::conflicts::quarantine_topic(&f.policy.remote_topic(topic)),
                target: f.target.clone(),
            });
        }
    }
    out
}

impl ConflictsEntry {
    fn new(config: &Config) -> Option<Self> {
        use super::conflicts::{Strategy, Violations};
        let c = &config.conflicts;
        if c.rules.is_empty() {
            return None;
        }
        let rules = c
            .rules
            .iter()
            .map(|r| {
                let mut e = ConflictRuleEntry {
                    name: r.name.clone(),
                    topics: r.topics.patterns().to_vec(),
                    strategy: r.strategy.as_str().to_string(),
                    owners: None,
                    violations: None,
                    event_id_header: None,
                    lateness_ms: None,
                    quarantine_topics: None,
                };
                match &r.strategy {
                    Strategy::Authority { owners, violations } => {
                        e.owners = Some(owners.iter().cloned().collect());
                        e.violations = Some(
                            match violations {
                                Violations::Report => "report",
                                Violations::Quarantine => "quarantine",
                            }
                            .to_string(),
                        );
                        let q = quarantine_topics(config, r);
                        e.quarantine_topics = (!q.is_empty()).then_some(q);
                    }
                    Strategy::LastWriterWins => {}
                    Strategy::Events {
                        id_header,
                        lateness,
                    } => {
                        e.event_id_header = id_header.clone();
                        e.lateness_ms = Some(lateness.as_millis() as u64);
                    }
                }
                e
            })
            .collect();
        Some(Self {
            regions: c.regions.clone(),
            rules,
            clock_tolerance_ms: c.clock_tolerance.as_millis() as u64,
            write_delay_max_ms: c.write_delay_max.as_millis() as u64,
        })
    }
}

/// One cluster of the file's `clusters` list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEntry {
    /// The name in `clusters`, which prefixes its keys and names it in flows (`us-east`).
    pub alias: String,
    /// `<alias>.bootstrap.servers` (or the global `bootstrap.servers`), as written.
    pub bootstrap_servers: String,
}

/// A key of the file and its line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// As written, unescaped, with any cluster or flow prefix (`us-east.sasl.mechanism`).
    pub key: String,
    /// 1-based line where the key's logical line starts.
    pub line: usize,
}

/// Something strait accepts but the user should know about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningEntry {
    /// The whole warning for people, complete on its own (it names the keys too).
    pub message: String,
    /// The keys it is about, by line, for tools; empty for a warning about the file as a whole.
    pub keys: Vec<KeyEntry>,
}

/// A key or trust store a client uses, as strait read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEntry {
    /// The store file, as the location key gives it (trimmed).
    pub path: String,
    /// `truststore` or `keystore`.
    pub role: String,
    /// `JKS`, `PKCS12` or `PEM`, as declared.
    #[serde(rename = "type")]
    pub store_type: String,
    /// The location key that named it first, and its line.
    pub key: String,
    /// 1-based line of `key`.
    pub line: usize,
    /// False when the file is not on this machine.
    pub read: bool,
    /// What the store holds, in store order; empty when it was not read.
    pub certificates: Vec<CertificateEntry>,
}

/// One certificate in a store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEntry {
    /// Distinguished name, Java style, most specific first (`CN=broker, O=Acme`).
    pub subject: String,
    /// The issuer's distinguished name, in the same form.
    pub issuer: String,
    /// Expiry, UTC, RFC 3339 (`2027-11-25T10:00:00Z`); `check` warns within 30 days of it.
    pub not_after: String,
    /// The store entry's alias; `null` when the store names none (as in PEM).
    pub alias: Option<String>,
}

/// A topic or group filter: whole-name regexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterEntry {
    /// A name must match one of these (`topics` / `groups`); empty matches nothing.
    pub include: Vec<String>,
    /// ...and none of these (`topics.exclude` / `groups.exclude`).
    pub exclude: Vec<String>,
}

/// The replication policy: how the flow names topics on the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyEntry {
    /// The Java class MM2 would load.
    pub class: String,
    /// `replication.policy.separator` (`.` unless set; empty: remote topics keep their names).
    pub separator: String,
    /// `replication.policy.internal.topic.separator.enabled`: whether internal topic names use
    /// `separator` (MM2 applies it only when the separator is set explicitly).
    pub internal_topic_separator_enabled: bool,
    /// What `orders` is called on the target.
    pub example_remote_topic: String,
}

/// Replication factors MM2's internal topics are created with; -1: the broker's default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationFactors {
    /// `offset-syncs.topic.replication.factor` (default 3); strait's offset index uses it too.
    pub offset_syncs: i16,
    /// `checkpoints.topic.replication.factor` (default 3); strait's active-region and
    /// lag-snapshot topics use it too.
    pub checkpoints: i16,
    /// `heartbeats.topic.replication.factor` (default 3).
    pub heartbeats: i16,
}

/// Seconds between runs of each periodic job; `None` when it is off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalsSeconds {
    /// `refresh.topics.*` (600): look for new source topics and partitions.
    pub refresh_topics: Option<u64>,
    /// `sync.topic.configs.*` (600): copy topic configs to the remote topics.
    pub sync_topic_configs: Option<u64>,
    /// `sync.topic.acls.*` (600): copy topic ACLs to the remote topics.
    pub sync_topic_acls: Option<u64>,
    /// `refresh.groups.*` (600): look for new source consumer groups to checkpoint.
    pub refresh_groups: Option<u64>,
    /// `emit.checkpoints.*` (60): write the groups' translated offsets to the checkpoints topic.
    pub emit_checkpoints: Option<u64>,
    /// `sync.group.offsets.*` (off unless enabled, then 60): commit the translated offsets to
    /// the groups on the target.
    pub sync_group_offsets: Option<u64>,
    /// `emit.heartbeats.*` (1): write a heartbeat to the target's heartbeats topic.
    pub emit_heartbeats: Option<u64>,
}

/// An internal topic and the cluster it lives on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicEntry {
    /// The topic's name, with the policy's internal separator.
    pub name: String,
    /// Alias of the cluster it is on.
    pub cluster: String,
}

/// MM2's offsets topic (its source positions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePositionsEntry {
    /// Kafka Connect's offsets topic: `mm2-offsets.<source>.internal` unless
    /// `offset.storage.topic` is set.
    pub name: String,
    /// Alias of the cluster it is on (the target).
    pub cluster: String,
    /// `offset.storage.partitions` (default 25), used if strait creates it.
    pub partitions: i32,
    /// `offset.storage.replication.factor` (default 3; -1: broker default), used if strait
    /// creates it.
    pub replication_factor: i16,
}

/// Where the flow's internal topics live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalTopicsEntry {
    /// MM2's offset syncs (source offset -> target offset): on the source unless
    /// `offset-syncs.topic.location = target`.
    pub offset_syncs: TopicEntry,
    /// `<source>.checkpoints.internal` on the target: the groups' translated offsets.
    pub checkpoints: TopicEntry,
    /// `heartbeats` on the target.
    pub heartbeats: TopicEntry,
    /// strait's own offset index for exact translation, on the target
    /// (`strait-offset-index.<source>.internal`).
    pub offset_index: TopicEntry,
    /// Where MM2 kept its source positions, read on a first run and kept equal to strait's
    /// commits.
    pub mm2_source_positions: SourcePositionsEntry,
}

/// Where a first run resumes each partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstRunEntry {
    /// strait's replication group on the source (`strait.<source>-><target>`), whose commits are
    /// strait's positions.
    pub group: String,
    /// The rule, in words: the further of the group's commit and MM2's position.
    pub rule: String,
    /// The source consumer's `auto.offset.reset`.
    pub otherwise: String,
}

/// Where a client setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginFrom {
    /// Written in the file.
    File,
    /// Resolved through a config provider (`${file:...}`, `${env:...}`, `${dir:...}`).
    Provider,
    /// Read out of a key or trust store (PEM handed to librdkafka).
    Store,
}

/// Where one librdkafka property of a client came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginEntry {
    /// `store` if read out of a store, else `provider` if a provider supplied any of it.
    pub from: OriginFrom,
    /// The file's key that set it (the Java name: `us-east.sasl.mechanism`); for a store's
    /// contents, its location key.
    pub key: String,
    /// 1-based line of `key`.
    pub line: usize,
    /// The config providers that supplied (part of) the value; empty when none.
    pub providers: Vec<String>,
    /// The store file the value was read out of; `null` unless `from` is `store`.
    pub store: Option<String>,
}

/// One client of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEntry {
    /// Alias of the cluster it connects to.
    pub cluster: String,
    /// librdkafka name -> value; secrets `[redacted]`, PEM from a store `[PEM: N certificates]`.
    pub properties: BTreeMap<String, String>,
    /// librdkafka name -> where it came from; properties strait set itself (defaults such as
    /// `enable.auto.commit`) have no entry.
    pub origins: BTreeMap<String, OriginEntry>,
}

/// One ordered pair of clusters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEntry {
    /// `<source>-><target>`, as in the file's flow keys (`us-east->us-west`).
    pub name: String,
    /// Alias of the cluster records are read from.
    pub source: String,
    /// Alias of the cluster remote topics are written to.
    pub target: String,
    /// `<source>-><target>.enabled`: replicates records and checkpoints.
    pub enabled: bool,
    /// MM2 runs a herder for the pair and it replicates or emits heartbeats; false: nothing
    /// runs for it.
    pub runs: bool,
    /// Source topics to replicate.
    pub topics: FilterEntry,
    /// Source consumer groups to checkpoint.
    pub groups: FilterEntry,
    /// How remote topics are named.
    pub policy: PolicyEntry,
    /// For new remote topics (-1: broker default).
    pub replication_factor: i16,
    /// `source` or `target`.
    pub offset_syncs_topic_location: String,
    /// For the internal topics MM2 creates.
    pub internal_topic_replication_factors: ReplicationFactors,
    /// `offset.lag.max`, in offsets: how far the target may drift before a new offset sync.
    pub offset_lag_max: i64,
    /// How often each periodic job runs.
    pub intervals_seconds: IntervalsSeconds,
    /// `emit.offset-syncs.enabled`: whether offset syncs are written.
    pub emit_offset_syncs: bool,
    /// `heartbeats.replication.enabled`: replicate heartbeats topics even when `topics` rejects
    /// them.
    pub heartbeats_replication: bool,
    /// Regexes of topic config properties never copied to remote topics.
    pub config_properties_exclude: Vec<String>,
    /// `source` or `target`.
    pub use_defaults_from: String,
    /// `tasks.max`: bounds how many partitions' work one process runs at once.
    pub tasks_max: u32,
    /// `offset.flush.interval.ms`, in milliseconds: also how often delayed offset syncs go out.
    pub offset_flush_interval_ms: u64,
    /// `consumer.poll.timeout.ms`, in milliseconds.
    pub consumer_poll_timeout_ms: u64,
    /// `admin.timeout.ms`, in milliseconds.
    pub admin_timeout_ms: u64,
    /// Exactly-once replication, when on (null: at least once).
    pub exactly_once: Option<ExactlyOnceEntry>,
    /// How records are copied: `batches` (record batches as they are) or `records` (record by
    /// record, `because` says why).
    pub data_path: DataPathEntry,
    /// Names and clusters of the flow's internal topics.
    pub internal_topics: InternalTopicsEntry,
    /// Where a first `strait run` resumes each partition, as a rule (`--positions` applies it).
    pub first_run: FirstRunEntry,
    /// Role (`source_consumer`, ...) -> client.
    pub clients: BTreeMap<String, ClientEntry>,
}

/// A flow's data path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPathEntry {
    /// `batches` or `records`.
    pub path: String,
    /// Why the flow copies record by record (null for `batches`).
    pub because: Option<String>,
}

/// A flow's exactly-once replication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactlyOnceEntry {
    /// How long one transaction takes in records, in milliseconds (`transaction.boundary`).
    pub transaction_interval_ms: u64,
    /// The key that turned it on, with its line (`us-east->us-west.exactly.once.support:7`).
    pub because: String,
}

/// Where a first run would resume one partition: strait's group, MM2's position, or
/// `auto.offset.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionFrom {
    /// strait's own commit in its replication group.
    Group,
    /// MirrorMaker 2's position: further than strait's commit, or strait has none.
    Mm2,
    /// Neither recorded one: the source consumer's `auto.offset.reset`.
    Reset,
}

/// Where a first `strait run` resumes one source partition of an enabled flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The flow's name (`us-east->us-west`).
    pub flow: String,
    /// The source topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    /// Whose position it is.
    pub from: PositionFrom,
    /// The source offset it resumes at (the next record copied); `None` for `reset`.
    pub offset: Option<i64>,
    /// An MM2 position not used because it lies past the partition's end (the topic was
    /// recreated?); `None` when there was none or it was usable.
    pub mm2_position_past_end: Option<i64>,
    /// A position not used because it was taken on an earlier topic of the same name (deleted
    /// and created again since); `None` when there was none.
    pub position_of_earlier_topic: Option<i64>,
}

impl Position {
    /// The decision for one partition of `flow`.
    pub fn new(flow: &str, r: &Resume) -> Self {
        Self {
            flow: flow.to_string(),
            topic: r.part.0.clone(),
            partition: r.part.1,
            from: match r.from {
                ResumeFrom::Group(_) => PositionFrom::Group,
                ResumeFrom::Mm2(_) => PositionFrom::Mm2,
                ResumeFrom::Reset => PositionFrom::Reset,
            },
            offset: r.from.offset(),
            mm2_position_past_end: r.mm2_past_end,
            position_of_earlier_topic: r.of_earlier_topic,
        }
    }
}

impl CheckReport {
    /// The document for `c` (without positions).
    pub fn new(c: &Config) -> Self {
        Self {
            config: c.file.clone(),
            valid: true,
            clusters: c
                .clusters
                .iter()
                .map(|cl| ClusterEntry {
                    alias: cl.alias.clone(),
                    bootstrap_servers: cl.bootstrap_servers.clone(),
                })
                .collect(),
            flows: c.flows.iter().map(|f| FlowEntry::new(c, f)).collect(),
            region_watch: RegionWatchEntry {
                probe_interval_ms: c.region_watch.probe_every.as_millis() as u64,
                probe_timeout_ms: c.region_watch.probe_timeout.as_millis() as u64,
                down_after_ms: c.region_watch.down_after.as_millis() as u64,
            },
            stores: c.stores.iter().map(StoreEntry::new).collect(),
            warnings: c
                .warnings
                .iter()
                .map(|w| WarningEntry {
                    message: w.message.clone(),
                    keys: w
                        .keys
                        .iter()
                        .map(|k| KeyEntry {
                            key: k.key.clone(),
                            line: k.line,
                        })
                        .collect(),
                })
                .collect(),
            positions: None,
            conflicts: ConflictsEntry::new(c),
        }
    }

    /// The document as `strait check --json` prints it: pretty, keys in alphabetical order at
    /// every level (no trailing newline).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&serde_json::to_value(self)?)
    }

    /// The flow called `name` (`us-east->us-west`).
    pub fn flow(&self, name: &str) -> Option<&FlowEntry> {
        self.flows.iter().find(|f| f.name == name)
    }
}

impl StoreEntry {
    fn new(s: &StoreSummary) -> Self {
        Self {
            path: s.path.clone(),
            role: s.role.to_string(),
            store_type: s.store_type.clone(),
            key: s.at.key.clone(),
            line: s.at.line,
            read: s.read,
            certificates: s
                .certificates
                .iter()
                .map(|c| CertificateEntry {
                    subject: c.subject.clone(),
                    issuer: c.issuer.clone(),
                    not_after: c.not_after.clone(),
                    alias: c.alias.clone(),
                })
                .collect(),
        }
    }
}

fn patterns(f: &NameFilter) -> Vec<String> {
    f.patterns().to_vec()
}

fn secs(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_secs())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Properties as shown: secrets redacted, and PEM read out of a store summarised (the
/// certificates are listed under `stores`).
pub fn shown(ep: &Endpoint) -> BTreeMap<String, String> {
    let mut props = ep.redacted();
    for (k, v) in props.iter_mut() {
        if k.ends_with(".pem") && v != "[redacted]" {
            let n = v.matches("-----BEGIN CERTIFICATE-----").count();
            *v = format!("[PEM: {n} certificate{}]", if n == 1 { "" } else { "s" });
        }
    }
    props
}

/// Where a partition nobody recorded starts: the source consumer's `auto.offset.reset`.
pub fn reset(f: &Flow) -> &str {
    f.clients
        .source_consumer
        .props
        .get("auto.offset.reset")
        .map_or("earliest", String::as_str)
}

impl OriginEntry {
    fn new(o: &Origin) -> Self {
        let from = if o.store.is_some() {
            OriginFrom::Store
        } else if !o.providers.is_empty() {
            OriginFrom::Provider
        } else {
            OriginFrom::File
        };
        Self {
            from,
            key: o.at.key.clone(),
            line: o.at.line,
            providers: o.providers.clone(),
            store: o.store.clone(),
        }
    }
}

impl ClientEntry {
    fn new(f: &Flow, role: &str, ep: &Endpoint) -> Self {
        Self {
            cluster: ep.alias.clone(),
            properties: shown(ep),
            origins: f
                .clients
                .origins
                .get(role)
                .into_iter()
                .flatten()
                .map(|(k, o)| (k.clone(), OriginEntry::new(o)))
                .collect(),
        }
    }
}

impl FlowEntry {
    fn new(c: &Config, f: &Flow) -> Self {
        let records = crate::replicate::records_because_in(c, f);
        let it = &f.internal_topics;
        let iv = &f.intervals;
        let topic = |t: &super::InternalTopic| TopicEntry {
            name: t.name.clone(),
            cluster: t.cluster.clone(),
        };
        Self {
            name: f.name(),
            source: f.source.clone(),
            target: f.target.clone(),
            enabled: f.enabled,
            runs: f.runs(),
            topics: FilterEntry {
                include: patterns(&f.topics),
                exclude: patterns(&f.topics_exclude),
            },
            groups: FilterEntry {
                include: patterns(&f.groups),
                exclude: patterns(&f.groups_exclude),
            },
            policy: PolicyEntry {
                class: f.policy_settings.kind.java_class().to_string(),
                separator: f.policy_settings.separator.clone(),
                internal_topic_separator_enabled: f
                    .policy_settings
                    .internal_topic_separator_enabled,
                example_remote_topic: f.policy.remote_topic("orders"),
            },
            replication_factor: f.replication_factor,
            offset_syncs_topic_location: f.offset_syncs_topic_location.as_str().to_string(),
            internal_topic_replication_factors: ReplicationFactors {
                offset_syncs: f.offset_syncs_topic_replication_factor,
                checkpoints: f.checkpoints_topic_replication_factor,
                heartbeats: f.heartbeats_topic_replication_factor,
            },
            offset_lag_max: f.offset_lag_max,
            intervals_seconds: IntervalsSeconds {
                refresh_topics: secs(iv.refresh_topics),
                sync_topic_configs: secs(iv.sync_topic_configs),
                sync_topic_acls: secs(iv.sync_topic_acls),
                refresh_groups: secs(iv.refresh_groups),
                emit_checkpoints: secs(iv.emit_checkpoints),
                sync_group_offsets: secs(iv.sync_group_offsets),
                emit_heartbeats: secs(iv.emit_heartbeats),
            },
            emit_offset_syncs: f.emit_offset_syncs,
            heartbeats_replication: f.heartbeats_replication,
            config_properties_exclude: patterns(&f.config_properties_exclude),
            use_defaults_from: f.use_defaults_from.as_str().to_string(),
            tasks_max: f.tasks_max,
            offset_flush_interval_ms: millis(f.offset_flush_interval),
            consumer_poll_timeout_ms: millis(f.consumer_poll_timeout),
            admin_timeout_ms: millis(f.admin_timeout),
            exactly_once: f.exactly_once.as_ref().map(|e| ExactlyOnceEntry {
                transaction_interval_ms: millis(e.transaction_interval),
                because: format!("{}:{}", e.because.key, e.because.line),
            }),
            data_path: DataPathEntry {
                path: if records.is_some() {
                    "records"
                } else {
                    "batches"
                }
                .to_string(),
                because: records,
            },
            internal_topics: InternalTopicsEntry {
                offset_syncs: topic(&it.offset_syncs),
                checkpoints: topic(&it.checkpoints),
                heartbeats: topic(&it.heartbeats),
                offset_index: TopicEntry {
                    name: crate::translate::index_topic(&f.source),
                    cluster: f.target.clone(),
                },
                mm2_source_positions: SourcePositionsEntry {
                    name: it.source_offsets.name.clone(),
                    cluster: it.source_offsets.cluster.clone(),
                    partitions: f.source_offsets_topic_partitions,
                    replication_factor: f.source_offsets_topic_replication_factor,
                },
            },
            first_run: FirstRunEntry {
                group: crate::replicate::replication_group(&f.source, &f.target),
                rule: "the further of the group's commit and MirrorMaker 2's position".to_string(),
                otherwise: reset(f).to_string(),
            },
            clients: f
                .clients
                .roles()
                .iter()
                .map(|(role, ep)| (role.to_string(), ClientEntry::new(f, role, ep)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::stores::CertInfo;
    use crate::config::{KeyRef, LocalFiles, Origin, StoreSummary};

    /// A file with an enabled and a disabled flow, a secret, a store that is not on this machine,
    /// warnings, and (added by hand, as loading them needs files) a store read with its
    /// certificate, a value from a config provider and a first run's positions of every kind.
    fn report() -> CheckReport {
        let text = "\
clusters = us-east, us-west
us-east.bootstrap.servers = 127.0.0.1:19092
us-west.bootstrap.servers = 127.0.0.1:19093
us-east->us-west.enabled = true
us-east->us-west.topics = orders, pay.*
us-east->us-west.topics.exclude = .*-tmp
us-east->us-west.sync.group.offsets.enabled = true
us-east.security.protocol = SASL_SSL
us-east.sasl.mechanism = PLAIN
us-east.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"mm2\" password=\"hunter2\";
us-east.ssl.truststore.location = /etc/kafka/truststore.jks
us-east.ssl.truststore.password = changeit
key.converter = org.apache.kafka.connect.converters.ByteArrayConverter
";
        let mut c = Config::parse_with(text, "mm2.properties", LocalFiles::MayBeMissing).unwrap();
        c.stores.push(StoreSummary {
            path: "/etc/kafka/ca.p12".into(),
            role: "truststore",
            store_type: "PKCS12".into(),
            at: KeyRef {
                key: "us-west.ssl.truststore.location".into(),
                line: 20,
            },
            read: true,
            certificates: vec![CertInfo {
                subject: "CN=Test CA, O=Test".into(),
                issuer: "CN=Test CA, O=Test".into(),
                not_after: "2027-11-25T10:00:00Z".into(),
                not_after_unix: 1_827_136_800,
                alias: Some("ca".into()),
            }],
        });
        let f = &mut c.flows[0];
        f.clients.target_consumer.props.insert(
            "ssl.ca.pem".into(),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        );
        let at = |key: &str, line| KeyRef {
            key: key.into(),
            line,
        };
        f.clients
            .origins
            .entry("target_consumer")
            .or_default()
            .insert(
                "ssl.ca.pem".into(),
                Origin {
                    at: at("us-west.ssl.truststore.location", 20),
                    providers: vec![],
                    store: Some("/etc/kafka/ca.p12".into()),
                },
            );
        f.clients
            .origins
            .entry("source_consumer")
            .or_default()
            .insert(
                "sasl.username".into(),
                Origin {
                    at: at("us-east.sasl.jaas.config", 10),
                    providers: vec!["file".into()],
                    store: None,
                },
            );
        let mut r = CheckReport::new(&c);
        let resume = |p: i32, from, past| Resume {
            part: ("orders".into(), p),
            from,
            mm2_past_end: past,
            of_earlier_topic: None,
        };
        r.positions = Some(vec![
            Position::new(
                "us-east->us-west",
                &resume(0, ResumeFrom::Group(1139), None),
            ),
            Position::new("us-east->us-west", &resume(1, ResumeFrom::Mm2(1140), None)),
            Position::new(
                "us-east->us-west",
                &resume(2, ResumeFrom::Reset, Some(9000)),
            ),
        ]);
        r
    }

    #[test]
    fn every_closed_set_value_is_in_the_report() {
        let r = report();
        let f = r.flow("us-east->us-west").unwrap();
        let from: Vec<OriginFrom> = f
            .clients
            .values()
            .flat_map(|c| c.origins.values().map(|o| o.from))
            .collect();
        for want in [OriginFrom::File, OriginFrom::Provider, OriginFrom::Store] {
            assert!(from.contains(&want), "{want:?} in {from:?}");
        }
        assert_eq!(r.stores.len(), 2);
        assert!(!r.stores[0].read && r.stores[1].read);
        assert!(!r.warnings.is_empty());
        assert_eq!(
            f.clients["source_consumer"].properties["sasl.password"],
            "[redacted]"
        );
        assert_eq!(
            f.clients["target_consumer"].properties["ssl.ca.pem"],
            "[PEM: 1 certificate]"
        );
        assert!(!r.flow("us-west->us-east").unwrap().enabled);
    }

    /// `positions[].from` is what `ResumeFrom::name` calls each decision.
    #[test]
    fn position_names_are_resume_names() {
        for from in [ResumeFrom::Group(1), ResumeFrom::Mm2(2), ResumeFrom::Reset] {
            let r = Resume {
                part: ("t".into(), 0),
                from,
                mm2_past_end: None,
                of_earlier_topic: None,
            };
            let v = serde_json::to_value(Position::new("a->b", &r)).unwrap();
            assert_eq!(v["from"], from.name());
        }
    }

    /// The document is byte for byte what `strait check --json --positions` prints and scripts
    /// parse (`testdata/check.json`; regenerate with `STRAIT_UPDATE_GOLDEN=1` only for an
    /// intended change of the documented format), and it reads back as the same value.
    #[test]
    fn json_matches_the_golden_file() {
        let r = report();
        let json = r.to_json().unwrap() + "\n";
        crate::text::assert_golden("src/config/testdata/check.json", &json);
        let back: CheckReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let mut without = r.clone();
        without.positions = None;
        let json = without.to_json().unwrap();
        assert!(!json.contains("\"positions\""), "{json}");
        assert_eq!(serde_json::from_str::<CheckReport>(&json).unwrap(), without);
    }
}
