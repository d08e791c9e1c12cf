//! Which keys mean what, at each level of an MM2 file (MM2-SPEC §1.2–1.6). Kept as tables in one
//! place so that "strait honours this", "MM2 has it but strait ignores it" and "nobody knows this
//! key" are decided the same way everywhere, and every ignored key is reported.

/// Connector properties strait reads (MM2-SPEC §1.6). Global keys with these names are defaults
/// for every flow; `<S>-><T>.<name>` overrides them for one flow.
pub(crate) const CONNECTOR_PROPERTIES: &[&str] = &[
    "enabled",
    "replication.policy.class",
    "replication.policy.separator",
    "replication.policy.internal.topic.separator.enabled",
    "admin.timeout.ms",
    "tasks.max",
    "topics",
    "topics.exclude",
    "groups",
    "groups.exclude",
    "offset-syncs.topic.location",
    "emit.offset-syncs.enabled",
    "replication.factor",
    "offset-syncs.topic.replication.factor",
    "checkpoints.topic.replication.factor",
    "heartbeats.topic.replication.factor",
    "offset.lag.max",
    "consumer.poll.timeout.ms",
    "refresh.topics.enabled",
    "refresh.topics.interval.seconds",
    "sync.topic.configs.enabled",
    "sync.topic.configs.interval.seconds",
    "sync.topic.acls.enabled",
    "sync.topic.acls.interval.seconds",
    "config.properties.exclude",
    "heartbeats.replication.enabled",
    // strait's own: `batches` (the default) or `records` (see `replicate::flow::records_because`).
    "strait.data.path",
    // Exactly-once (KIP-618): MM2 reads these per flow only; strait also takes them as defaults
    // for every flow at top level, as its other connector properties.
    "exactly.once.support",
    "transaction.boundary",
    "transaction.boundary.interval.ms",
    "refresh.groups.enabled",
    "refresh.groups.interval.seconds",
    "emit.checkpoints.enabled",
    "emit.checkpoints.interval.seconds",
    "sync.group.offsets.enabled",
    "sync.group.offsets.interval.seconds",
    "emit.heartbeats.enabled",
    "emit.heartbeats.interval.seconds",
    // Filled in with the flow's aliases unless set; an empty `source.cluster.alias` gives remote
    // topics without a prefix (with an empty separator), a trick older MM2 files use.
    "source.cluster.alias",
    "target.cluster.alias",
    // Kafka 3.x names of the `*.exclude` keys (removed in 4.0); read when `*.exclude` is absent.
    "topics.blacklist",
    "groups.blacklist",
    "config.properties.blacklist",
];

/// Kafka Connect worker keys strait reads, at top level or under the target cluster's alias
/// (MM2's `workerConfig`; the top-level value wins): where MM2 keeps its source positions, which
/// strait reads to take over from MM2 and keeps current so that MM2 can take over from it.
pub(crate) const WORKER_HONOURED: &[&str] = &[
    "offset.storage.topic",
    "offset.storage.partitions",
    "offset.storage.replication.factor",
    // Whether the target's worker runs source connectors exactly once (KIP-618).
    "exactly.once.source.support",
];

/// Connector (and Connect) properties MM2 knows and strait does not honour: exact names.
const CONNECTOR_IGNORED: &[&str] = &[
    "name",
    "connector.class",
    "key.converter",
    "value.converter",
    "header.converter",
    "transforms",
    "predicates",
    "config.action.reload",
    "topic.filter.class",
    "group.filter.class",
    "config.property.filter.class",
    "forwarding.admin.class",
    "metric.reporters",
    "offsets.storage.topic",
    "use.incremental.alter.configs",
    "add.source.alias.to.metrics",
    "checkpoints.topic.retention.ms",
];

/// ... and prefixes of such properties.
const CONNECTOR_IGNORED_PREFIXES: &[&str] = &[
    "transforms.",
    "predicates.",
    "errors.",
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "topic.creation.",
    "metrics.",
    "consumer.override.",
    "admin.override.",
];

/// Top-level keys of the MM2 process and its Connect workers that strait has no use for: it runs
/// no Connect runtime and keeps no Connect state.
const GLOBAL_IGNORED: &[&str] = &[
    "listeners",
    "admin.listeners",
    "plugin.path",
    "scheduled.rebalance.max.delay.ms",
    "connector.client.config.override.policy",
    "client.id",
    "group.id",
];

const GLOBAL_IGNORED_PREFIXES: &[&str] = &[
    "dedicated.mode.",
    "rest.",
    "admin.listeners.",
    "offset.storage.",
    "config.storage.",
    "status.storage.",
    "task.",
    "worker.",
    "listeners.",
    "inter.worker.",
];

/// Per-cluster worker keys (`<alias>.<key>`) strait has no use for.
const CLUSTER_IGNORED: &[&str] = &[
    "group.id",
    "client.id",
    "key.converter",
    "value.converter",
    "header.converter",
    "listeners",
    "admin.listeners",
    "plugin.path",
    "scheduled.rebalance.max.delay.ms",
    "connector.client.config.override.policy",
    "heartbeat.interval.ms",
    "session.timeout.ms",
    "rebalance.timeout.ms",
    "metric.reporters",
];

const CLUSTER_IGNORED_PREFIXES: &[&str] = &[
    "offset.storage.",
    "config.storage.",
    "status.storage.",
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "rest.",
    "task.",
    "worker.",
    "config.providers",
    "inter.worker.",
    "metrics.",
];

/// Client prefixes of a connector config (flow level): `consumer.*` for every consumer of the
/// flow, `source.consumer.*` for the source cluster's only, and so on (MM2-SPEC §1.4).
const FLOW_CLIENT_PREFIXES: &[&str] = &[
    "consumer.",
    "producer.",
    "admin.",
    "source.consumer.",
    "source.producer.",
    "source.admin.",
    "target.consumer.",
    "target.producer.",
    "target.admin.",
    "source.cluster.",
    "target.cluster.",
    "producer.override.",
];

/// Keys every client of a cluster shares (MM2's cluster-level client keys).
pub(crate) fn is_client_key(key: &str) -> bool {
    key == "bootstrap.servers"
        || key == "security.protocol"
        || key.starts_with("ssl.")
        || key.starts_with("sasl.")
}

pub(crate) fn is_connector_property(key: &str) -> bool {
    CONNECTOR_PROPERTIES.contains(&key)
}

fn is_connector_ignored(key: &str) -> bool {
    CONNECTOR_IGNORED.contains(&key)
        || CONNECTOR_IGNORED_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
}

/// What strait does with one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyClass {
    /// Read by strait.
    Honoured,
    /// An MM2 / Kafka Connect setting strait does not implement.
    NotHonoured,
    /// A key that MM2 itself ignores at this level (a common mistake); strait ignores it too.
    IgnoredByMm2(Mm2Ignores),
    /// Nobody knows this key.
    Unknown,
}

/// Why MM2 ignores a key, for the warning text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mm2Ignores {
    /// `consumer.*`, `producer.*`, `admin.*` at top level: dropped by MM2 (§1.3 step 1).
    GlobalClientKey,
    /// `use.defaults.from` at top level: not in any ConfigDef, dropped (§1.6).
    GlobalUseDefaultsFrom,
    /// `offset.flush.interval.ms` at top level: the worker reads it per target cluster (§1.5).
    GlobalOffsetFlush,
    /// A connector property under `<alias>.`: MM2 only reads them globally or per flow.
    ConnectorPropertyOnCluster,
}

/// A top-level key (no alias or flow prefix).
pub(crate) fn classify_global(key: &str) -> KeyClass {
    if is_connector_property(key)
        || is_client_key(key)
        || key == "clusters"
        || WORKER_HONOURED.contains(&key)
        || key == "config.providers"
        || key.starts_with("config.providers.")
    {
        return KeyClass::Honoured;
    }
    if key == "use.defaults.from" {
        return KeyClass::IgnoredByMm2(Mm2Ignores::GlobalUseDefaultsFrom);
    }
    if key == "offset.flush.interval.ms" {
        return KeyClass::IgnoredByMm2(Mm2Ignores::GlobalOffsetFlush);
    }
    if is_connector_ignored(key)
        || GLOBAL_IGNORED.contains(&key)
        || GLOBAL_IGNORED_PREFIXES.iter().any(|p| key.starts_with(p))
    {
        return KeyClass::NotHonoured;
    }
    if FLOW_CLIENT_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return KeyClass::IgnoredByMm2(Mm2Ignores::GlobalClientKey);
    }
    KeyClass::Unknown
}

/// A cluster key, `<alias>.<key>`, given without the alias.
pub(crate) fn classify_cluster(key: &str) -> KeyClass {
    if is_client_key(key)
        || key.starts_with("consumer.")
        || key.starts_with("producer.")
        || key.starts_with("admin.")
        || key == "offset.flush.interval.ms"
        || WORKER_HONOURED.contains(&key)
    {
        return KeyClass::Honoured;
    }
    if CLUSTER_IGNORED.contains(&key) || CLUSTER_IGNORED_PREFIXES.iter().any(|p| key.starts_with(p))
    {
        return KeyClass::NotHonoured;
    }
    if is_connector_property(key) || is_connector_ignored(key) || key == "use.defaults.from" {
        return KeyClass::IgnoredByMm2(Mm2Ignores::ConnectorPropertyOnCluster);
    }
    KeyClass::Unknown
}

/// A flow key, `<S>-><T>.<key>`, given without the flow.
pub(crate) fn classify_flow(key: &str) -> KeyClass {
    if is_connector_property(key) || key == "use.defaults.from" {
        return KeyClass::Honoured;
    }
    if is_connector_ignored(key) {
        return KeyClass::NotHonoured;
    }
    if FLOW_CLIENT_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return KeyClass::Honoured;
    }
    KeyClass::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_keys() {
        assert_eq!(classify_global("topics"), KeyClass::Honoured);
        assert_eq!(classify_global("enabled"), KeyClass::Honoured);
        assert_eq!(classify_global("security.protocol"), KeyClass::Honoured);
        assert_eq!(classify_global("sasl.jaas.config"), KeyClass::Honoured);
        assert_eq!(classify_global("tasks.max"), KeyClass::Honoured);
        assert_eq!(classify_global("key.converter"), KeyClass::NotHonoured);
        assert_eq!(classify_global("transforms.x.type"), KeyClass::NotHonoured);
        assert_eq!(
            classify_global("offset.storage.replication.factor"),
            KeyClass::Honoured
        );
        assert_eq!(
            classify_global("offset.storage.file.filename"),
            KeyClass::NotHonoured
        );
        assert_eq!(
            classify_global("dedicated.mode.enable.internal.rest"),
            KeyClass::NotHonoured
        );
        assert_eq!(classify_global("exactly.once.support"), KeyClass::Honoured);
        assert_eq!(
            classify_global("exactly.once.source.support"),
            KeyClass::Honoured
        );
        assert_eq!(
            classify_global("transaction.boundary.interval.ms"),
            KeyClass::Honoured
        );
        assert_eq!(
            classify_global("consumer.max.poll.records"),
            KeyClass::IgnoredByMm2(Mm2Ignores::GlobalClientKey)
        );
        assert_eq!(
            classify_global("use.defaults.from"),
            KeyClass::IgnoredByMm2(Mm2Ignores::GlobalUseDefaultsFrom)
        );
        assert_eq!(classify_global("topicz"), KeyClass::Unknown);
    }

    #[test]
    fn cluster_keys() {
        assert_eq!(classify_cluster("bootstrap.servers"), KeyClass::Honoured);
        assert_eq!(classify_cluster("producer.linger.ms"), KeyClass::Honoured);
        assert_eq!(
            classify_cluster("offset.flush.interval.ms"),
            KeyClass::Honoured
        );
        assert_eq!(classify_cluster("offset.storage.topic"), KeyClass::Honoured);
        assert_eq!(
            classify_cluster("exactly.once.source.support"),
            KeyClass::Honoured
        );
        assert_eq!(
            classify_cluster("config.storage.replication.factor"),
            KeyClass::NotHonoured
        );
        assert_eq!(
            classify_cluster("topics"),
            KeyClass::IgnoredByMm2(Mm2Ignores::ConnectorPropertyOnCluster)
        );
        assert_eq!(classify_cluster("bootstrap.server"), KeyClass::Unknown);
    }

    #[test]
    fn flow_keys() {
        assert_eq!(classify_flow("enabled"), KeyClass::Honoured);
        assert_eq!(classify_flow("use.defaults.from"), KeyClass::Honoured);
        assert_eq!(
            classify_flow("producer.override.batch.size"),
            KeyClass::Honoured
        );
        assert_eq!(
            classify_flow("source.consumer.fetch.min.bytes"),
            KeyClass::Honoured
        );
        assert_eq!(classify_flow("exactly.once.support"), KeyClass::Honoured);
        assert_eq!(classify_flow("transaction.boundary"), KeyClass::Honoured);
        assert_eq!(classify_flow("metric.reporters"), KeyClass::NotHonoured);
        assert_eq!(classify_flow("enable"), KeyClass::Unknown);
    }
}
