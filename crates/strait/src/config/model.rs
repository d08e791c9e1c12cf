//! The typed configuration: what an MM2 file means once MM2's precedence rules and defaults are
//! applied. Everything the replication engine needs for one flow is on [`Flow`], already
//! resolved, so no other module re-reads properties.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka::Endpoint;
use crate::policy::{PolicyKind, ReplicationPolicy};

use super::error::{KeyRef, Warning};
use super::filter::NameFilter;

/// A value from the file with the key and line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced {
    /// The value as read (untrimmed), with `${provider:path:key}` references resolved.
    pub value: String,
    /// The full key as written in the file, and its line.
    pub at: KeyRef,
    /// The config providers that supplied (part of) the value, if any.
    pub providers: Vec<String>,
}

/// Where a client setting came from, for `strait check`: the key and line of the file, the
/// config providers that supplied its value, or the store it was read out of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The key and line of the file that set it (for a store's contents, its location key).
    pub at: KeyRef,
    /// The config providers that supplied (part of) the value, if any.
    pub providers: Vec<String>,
    /// The key or trust store file the value was read from.
    pub store: Option<String>,
}

/// A key or trust store a client uses, as strait read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSummary {
    /// The store file's path, as the location key gives it (trimmed).
    pub path: String,
    /// `truststore` or `keystore`.
    pub role: &'static str,
    /// `JKS`, `PKCS12` or `PEM` (as declared; Java reads JKS and PKCS#12 files under either).
    pub store_type: String,
    /// The location key that named it first.
    pub at: KeyRef,
    /// False when the file is not on this machine (`strait check` only).
    pub read: bool,
    /// The certificates it holds, in store order; empty when it was not read.
    pub certificates: Vec<super::stores::CertInfo>,
}

/// A whole MM2 dedicated-mode configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from, as given (for messages).
    pub file: String,
    /// In the order of `clusters`.
    pub clusters: Vec<Cluster>,
    /// Every ordered pair S->T (S != T) of `clusters`, enabled or not, in `clusters` order.
    pub flows: Vec<Flow>,
    /// Every key and trust store the clients use, once each, with what it held.
    pub stores: Vec<StoreSummary>,
    /// Active-active conflict rules (`strait.conflicts.`); none unless the file sets them.
    pub conflicts: super::conflicts::Conflicts,
    /// How `strait run` watches each region (`strait.region.*`).
    pub region_watch: super::region::RegionWatch,
    /// Everything strait accepted but the user should know (ignored keys, reproduced quirks).
    pub warnings: Vec<Warning>,
}

impl Config {
    /// The cluster with this alias, if `clusters` lists it.
    pub fn cluster(&self, alias: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.alias == alias)
    }

    /// The flow `source->target`, enabled or not; None unless both are in `clusters` and differ.
    pub fn flow(&self, source: &str, target: &str) -> Option<&Flow> {
        self.flows
            .iter()
            .find(|f| f.source == source && f.target == target)
    }

    /// Flows with `enabled = true` (the ones that replicate records and checkpoints).
    pub fn enabled_flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.iter().filter(|f| f.enabled)
    }
}

/// One cluster of `clusters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The name in `clusters`, and the prefix of its keys (`<alias>.bootstrap.servers`).
    pub alias: String,
    /// `<alias>.bootstrap.servers` (or the global `bootstrap.servers`).
    pub bootstrap_servers: String,
}

/// Which end of a flow something lives on or comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The flow's source cluster S, where records are read.
    Source,
    /// The flow's target cluster T, where remote topics are written.
    Target,
}

impl Side {
    /// `source` or `target`, as the file's values and `strait check` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Target => "target",
        }
    }
}

/// The replication policy settings as configured (the `policy` itself is on [`Flow`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySettings {
    /// `replication.policy.class` (Default unless set).
    pub kind: PolicyKind,
    /// `replication.policy.separator`, `.` unless set.
    pub separator: String,
    /// Whether the separator was set explicitly (only then does it reach internal topic names).
    pub separator_explicit: bool,
    /// `replication.policy.internal.topic.separator.enabled` (default true).
    pub internal_topic_separator_enabled: bool,
}

/// A flow's exactly-once replication (issue 18; MM2's KIP-618 keys), when it is on: the
/// copies, their offset index records and the flow's source positions are committed in one
/// transaction on the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactlyOnce {
    /// How long one transaction takes in records before it is committed: MM2's
    /// `transaction.boundary` (`poll`: strait's 100 ms; `interval`:
    /// `transaction.boundary.interval.ms`, by default the target's `offset.flush.interval.ms`).
    pub transaction_interval: Duration,
    /// The key that turned it on, for `strait check` and the logs.
    pub because: KeyRef,
}

/// How often each periodic job runs; `None` means switched off (`<feature>.enabled = false` or a
/// negative interval, as in MM2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intervals {
    /// `refresh.topics.*` (600 s): discover new topics and partitions.
    pub refresh_topics: Option<Duration>,
    /// `sync.topic.configs.*` (600 s).
    pub sync_topic_configs: Option<Duration>,
    /// `sync.topic.acls.*` (600 s).
    pub sync_topic_acls: Option<Duration>,
    /// `refresh.groups.*` (600 s).
    pub refresh_groups: Option<Duration>,
    /// `emit.checkpoints.*` (60 s).
    pub emit_checkpoints: Option<Duration>,
    /// `sync.group.offsets.*` (off by default; 60 s when enabled).
    pub sync_group_offsets: Option<Duration>,
    /// `emit.heartbeats.*` (1 s).
    pub emit_heartbeats: Option<Duration>,
}

/// An internal topic and the cluster it lives on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalTopic {
    /// The topic name, with the policy's internal separator.
    pub name: String,
    /// Alias of the cluster it lives on.
    pub cluster: String,
}

/// MM2's internal topics for one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalTopics {
    /// `mm2-offset-syncs.<T>.internal` on S (or `mm2-offset-syncs.<S>.internal` on T when
    /// `offset-syncs.topic.location = target`).
    pub offset_syncs: InternalTopic,
    /// `<S>.checkpoints.internal` on T.
    pub checkpoints: InternalTopic,
    /// `heartbeats` on T.
    pub heartbeats: InternalTopic,
    /// MM2's source positions: Kafka Connect's offsets topic on T (`mm2-offsets.<S>.internal`
    /// unless `offset.storage.topic` is set), see `replicate::mm2_offsets`.
    pub source_offsets: InternalTopic,
}

/// Ready librdkafka client settings for every client of a flow (MM2-SPEC §1.4).
#[derive(Clone, Debug)]
pub struct Clients {
    /// Reads the records to replicate (`enable.auto.commit=false` forced,
    /// `auto.offset.reset=earliest` unless set).
    pub source_consumer: Endpoint,
    /// Admin client on the source: `source.cluster.*` client keys, `admin.*`, `source.admin.*`.
    pub source_admin: Endpoint,
    /// Writes offset syncs: a producer on the cluster where the offset-syncs topic lives (the
    /// source by default, MM2's `offset-syncs-source-producer`).
    pub offset_syncs_producer: Endpoint,
    /// Writes replicated records: `T.producer.*` overridden by `S->T.producer.override.*`.
    pub target_producer: Endpoint,
    /// Admin client on the target: `target.cluster.*` client keys, `admin.*`, `target.admin.*`.
    pub target_admin: Endpoint,
    /// Reads from the target (internal topics, group offsets): `target.cluster.*` client keys,
    /// `consumer.*`, `target.consumer.*`.
    pub target_consumer: Endpoint,
    /// For each role of [`Clients::roles`], where each librdkafka setting came from.
    pub origins: BTreeMap<&'static str, BTreeMap<String, Origin>>,
}

impl Clients {
    /// Each client with its role name, for display.
    pub fn roles(&self) -> [(&'static str, &Endpoint); 6] {
        [
            ("source_consumer", &self.source_consumer),
            ("source_admin", &self.source_admin),
            ("offset_syncs_producer", &self.offset_syncs_producer),
            ("target_producer", &self.target_producer),
            ("target_admin", &self.target_admin),
            ("target_consumer", &self.target_consumer),
        ]
    }
}

/// One replication flow S->T with every setting resolved.
#[derive(Clone, Debug)]
pub struct Flow {
    /// Alias of the source cluster S, where records are read.
    pub source: String,
    /// Alias of the target cluster T, where remote topics are written.
    pub target: String,
    /// Whether MM2 runs a herder for the pair: `S->T.enabled` or heartbeats on, read untrimmed
    /// with `Boolean.parseBoolean` (MirrorMakerConfig.clusterPairs). Nothing runs without one.
    pub herder: bool,
    /// `S->T.enabled` (MM2 forces false unless set; a global `enabled = true` enables every flow,
    /// a quirk strait reproduces and warns about).
    pub enabled: bool,
    /// `topics` (default `.*`): source topics to replicate.
    pub topics: NameFilter,
    /// `topics.exclude` (or the older `topics.blacklist`); by default `.*[\-\.]internal`,
    /// `.*\.replica` and `__.*`.
    pub topics_exclude: NameFilter,
    /// `groups` (default `.*`): source consumer groups to checkpoint.
    pub groups: NameFilter,
    /// `groups.exclude` (or the older `groups.blacklist`); by default `console-consumer-.*`,
    /// `connect-.*` and `__.*`.
    pub groups_exclude: NameFilter,
    /// The flow's policy, with Identity's source alias set to `source`.
    pub policy: ReplicationPolicy,
    /// The policy keys as configured, for `strait check`.
    pub policy_settings: PolicySettings,
    /// Replication factor of newly created remote topics (-1: broker default).
    pub replication_factor: i16,
    /// `offset-syncs.topic.location` (default source): the cluster the offset-syncs topic is on.
    pub offset_syncs_topic_location: Side,
    /// `offset-syncs.topic.replication.factor` (default 3; -1: broker default); strait's offset
    /// index topic is created with it too.
    pub offset_syncs_topic_replication_factor: i16,
    /// `checkpoints.topic.replication.factor` (default 3; -1: broker default); strait's
    /// active-region and lag-snapshot topics are created with it too.
    pub checkpoints_topic_replication_factor: i16,
    /// `heartbeats.topic.replication.factor` (default 3; -1: broker default).
    pub heartbeats_topic_replication_factor: i16,
    /// Connect's `offset.storage.partitions` and `offset.storage.replication.factor` (25, 3):
    /// used when strait creates MM2's offsets topic.
    pub source_offsets_topic_partitions: i32,
    /// See `source_offsets_topic_partitions`.
    pub source_offsets_topic_replication_factor: i16,
    /// `offset.lag.max`: how far downstream offsets may drift before a new offset sync.
    pub offset_lag_max: i64,
    /// How often each periodic job of the flow runs, or None when it is off.
    pub intervals: Intervals,
    /// `emit.offset-syncs.enabled` (default true).
    pub emit_offset_syncs: bool,
    /// `heartbeats.replication.enabled` (default true): replicate heartbeats topics even when the
    /// topic filter rejects them.
    pub heartbeats_replication: bool,
    /// Topic config properties never copied to remote topics.
    pub config_properties_exclude: NameFilter,
    /// `use.defaults.from` (default target): whose defaults a default-valued source config means.
    pub use_defaults_from: Side,
    /// `tasks.max` (default 1). strait scales through the consumer group, so this only bounds
    /// how many partitions' work one process runs concurrently.
    pub tasks_max: u32,
    /// `T.offset.flush.interval.ms` (default 60 s): also promotes delayed offset syncs.
    pub offset_flush_interval: Duration,
    /// `consumer.poll.timeout.ms` (default 1 s).
    pub consumer_poll_timeout: Duration,
    /// `admin.timeout.ms` (default 60 s).
    pub admin_timeout: Duration,
    /// Exactly-once replication, when on (`exactly.once.support`,
    /// `exactly.once.source.support`).
    pub exactly_once: Option<ExactlyOnce>,
    /// Why the flow copies record by record, when `strait.data.path = records` says so
    /// (`None`: record batches as they are wherever the flow allows, the default).
    pub records_path: Option<String>,
    /// Names and clusters of MM2's internal topics for this flow.
    pub internal_topics: InternalTopics,
    /// librdkafka settings for each of the flow's six clients.
    pub clients: Clients,
    /// The topics strait derives in each region from the file's conflict rules
    /// (`orders.resolved`, `order-events.merged`, the marks topic): never replicated.
    pub derived: super::conflicts::Derived,
    /// The topics of the file's authority rules: the quarantine topics beside their remote
    /// copies (`us-west.orders.quarantine`) are never replicated.
    pub authority_topics: NameFilter,
}

/// A flow's name, `S->T` as in the file: what logs, metric labels, the keys of strait's own
/// records (lag snapshots) and its replication group (`strait.S->T`) call it. The one place the
/// form is written.
pub fn flow_name(source: &str, target: &str) -> String {
    format!("{source}->{target}")
}

impl Flow {
    /// `S->T`, as in the file.
    pub fn name(&self) -> String {
        flow_name(&self.source, &self.target)
    }

    /// Whether anything runs for the pair: replication or heartbeats (needs a herder).
    pub fn runs(&self) -> bool {
        self.herder && (self.enabled || self.intervals.emit_heartbeats.is_some())
    }

    /// Whether `topic` on the source passes this flow's topic filter (include and not exclude),
    /// and is not one strait derives in each region (`orders.resolved`, `order-events.merged`):
    /// each region keeps its own from every region's writes, so a copy of another region's
    /// would only be a stale duplicate. Nor a quarantine topic (`us-west.orders.quarantine`:
    /// kept from the owner's readers, so from every other region's too), nor `strait.conflicts`
    /// (each region records its own).
    pub fn topic_filter_matches(&self, topic: &str) -> bool {
        self.topics.matches(topic)
            && !self.topics_exclude.matches(topic)
            && !self.derived.contains(topic)
            && !super::conflicts::is_quarantine(&self.authority_topics, &self.policy, topic)
            && topic != crate::conflicts::record::CONFLICTS_TOPIC
    }

    /// MM2's `shouldReplicateTopic`: filter (or a heartbeats topic when heartbeats replication is
    /// on), and never an internal topic or one that would go back where it came from.
    pub fn should_replicate_topic(&self, topic: &str) -> bool {
        let wanted = self.topic_filter_matches(topic)
            || (self.heartbeats_replication && self.policy.is_heartbeats_topic(topic));
        wanted
            && !self.policy.is_internal_topic(topic)
            && !self
                .policy
                .is_cycle(topic, self.policy.target_alias().unwrap_or(&self.target))
    }

    /// Whether `group` on the source passes this flow's group filter.
    pub fn should_replicate_group(&self, group: &str) -> bool {
        self.groups.matches(group) && !self.groups_exclude.matches(group)
    }

    /// Consumer properties for reading the offset-syncs topic, on whichever cluster it lives
    /// (`offset-syncs.topic.location`).
    pub fn offset_syncs_reader(&self) -> &Endpoint {
        if self.internal_topics.offset_syncs.cluster == self.source {
            &self.clients.source_consumer
        } else {
            &self.clients.target_consumer
        }
    }

    /// Whether topic config property `name` may be copied to remote topics.
    pub fn should_replicate_config_property(&self, name: &str) -> bool {
        !self.config_properties_exclude.matches(name)
    }
}
