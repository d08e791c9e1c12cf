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
    pub warnings: Vec<WarningEntry>,
    /// With `--positions` only: where a first `strait run` resumes each partition.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub positions: Option<Vec<Position>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEntry {
    pub alias: String,
    pub bootstrap_servers: String,
}

/// A key of the file and its line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub key: String,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningEntry {
    pub message: String,
    pub keys: Vec<KeyEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEntry {
    pub path: String,
    /// `truststore` or `keystore`.
    pub role: String,
    /// `JKS`, `PKCS12` or `PEM`, as declared.
    #[serde(rename = "type")]
    pub store_type: String,
    /// The location key that named it first, and its line.
    pub key: String,
    pub line: usize,
    /// False when the file is not on this machine.
    pub read: bool,
    pub certificates: Vec<CertificateEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEntry {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub alias: Option<String>,
}

/// A topic or group filter: whole-name regexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterEntry {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyEntry {
    /// The Java class MM2 would load.
    pub class: String,
    pub separator: String,
    pub internal_topic_separator_enabled: bool,
    /// What `orders` is called on the target.
    pub example_remote_topic: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationFactors {
    pub offset_syncs: i16,
    pub checkpoints: i16,
    pub heartbeats: i16,
}

/// Seconds between runs of each periodic job; `None` when it is off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalsSeconds {
    pub refresh_topics: Option<u64>,
    pub sync_topic_configs: Option<u64>,
    pub sync_topic_acls: Option<u64>,
    pub refresh_groups: Option<u64>,
    pub emit_checkpoints: Option<u64>,
    pub sync_group_offsets: Option<u64>,
    pub emit_heartbeats: Option<u64>,
}

/// An internal topic and the cluster it lives on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicEntry {
    pub name: String,
    pub cluster: String,
}

/// MM2's offsets topic (its source positions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePositionsEntry {
    pub name: String,
    pub cluster: String,
    pub partitions: i32,
    pub replication_factor: i16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalTopicsEntry {
    pub offset_syncs: TopicEntry,
    pub checkpoints: TopicEntry,
    pub heartbeats: TopicEntry,
    /// strait's own offset index.
    pub offset_index: TopicEntry,
    pub mm2_source_positions: SourcePositionsEntry,
}

/// Where a first run resumes each partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstRunEntry {
    /// strait's replication group.
    pub group: String,
    pub rule: String,
    /// The source consumer's `auto.offset.reset`.
    pub otherwise: String,
}

/// Where a client setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginFrom {
    File,
    Provider,
    Store,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginEntry {
    pub from: OriginFrom,
    pub key: String,
    pub line: usize,
    pub providers: Vec<String>,
    /// The store file the value was read out of.
    pub store: Option<String>,
}

/// One client of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEntry {
    pub cluster: String,
    /// librdkafka name -> value; secrets `[redacted]`, PEM from a store `[PEM: N certificates]`.
    pub properties: BTreeMap<String, String>,
    /// librdkafka name -> where it came from.
    pub origins: BTreeMap<String, OriginEntry>,
}

/// One ordered pair of clusters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEntry {
    pub name: String,
    pub source: String,
    pub target: String,
    pub enabled: bool,
    pub runs: bool,
    pub topics: FilterEntry,
    pub groups: FilterEntry,
    pub policy: PolicyEntry,
    pub replication_factor: i16,
    /// `source` or `target`.
    pub offset_syncs_topic_location: String,
    pub internal_topic_replication_factors: ReplicationFactors,
    pub offset_lag_max: i64,
    pub intervals_seconds: IntervalsSeconds,
    pub emit_offset_syncs: bool,
    pub heartbeats_replication: bool,
    pub config_properties_exclude: Vec<String>,
    /// `source` or `target`.
    pub use_defaults_from: String,
    pub tasks_max: u32,
    pub offset_flush_interval_ms: u64,
    pub consumer_poll_timeout_ms: u64,
    pub admin_timeout_ms: u64,
    pub internal_topics: InternalTopicsEntry,
    pub first_run: FirstRunEntry,
    /// Role (`source_consumer`, ...) -> client.
    pub clients: BTreeMap<String, ClientEntry>,
}

/// Where a first run would resume one partition: strait's group, MM2's position, or
/// `auto.offset.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionFrom {
    Group,
    Mm2,
    Reset,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub flow: String,
    pub topic: String,
    pub partition: i32,
    pub from: PositionFrom,
    /// `None` for `reset`.
    pub offset: Option<i64>,
    /// An MM2 position not used because it lies past the partition's end.
    pub mm2_position_past_end: Option<i64>,
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
            flows: c.flows.iter().map(FlowEntry::new).collect(),
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
    fn new(f: &Flow) -> Self {
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
