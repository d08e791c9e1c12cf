//! Reading an MM2 dedicated-mode file into a [`Config`]. The construction follows MM2's own
//! (MM2-SPEC §1.3–1.5) step by step: cluster props with client-key propagation, then one flat
//! connector map per flow (global connector keys, then `source.*`/`target.*` from the clusters,
//! then the flow's own keys), and only then typed values are read from that map. Doing it the
//! same way, rather than looking keys up level by level, is what makes precedence agree with MM2
//! in the odd cases (flow-level `source.consumer.*`, global security defaults, the `enabled`
//! quirk).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::kafka::Endpoint;
use crate::policy::{PolicyKind, ReplicationPolicy, HEARTBEATS_TOPIC};

use super::client_props::{to_librdkafka, MapError};
use super::conflicts;
use super::error::{ConfigError, KeyRef, Problem, Warning};
use super::filter::{parse_list, NameFilter};
use super::keys::{self, KeyClass, Mm2Ignores};
use super::model::{
    Clients, Cluster, Config, ExactlyOnce, Flow, InternalTopic, InternalTopics, Intervals, Origin,
    PolicySettings, Side, Sourced,
};
use super::properties::{decode_latin1, Properties};
use super::providers::{Providers, Resolver as ProviderResolver};
use super::stores_io::{io_reason, StoreCache};

/// strait's own connector property: `batches` (the default) or `records`.
const DATA_PATH: &str = "strait.data.path";

/// Keys (prefix stripped) to values with their origin.
type Map = BTreeMap<String, Sourced>;

const DEFAULT_TOPICS_EXCLUDE: &str = r".*[\-\.]internal, .*\.replica, __.*";
const DEFAULT_GROUPS_EXCLUDE: &str = "console-consumer-.*, connect-.*, __.*";
const DEFAULT_CONFIG_PROPERTIES_EXCLUDE: &str = r"follower\.replication\.throttled\.replicas, leader\.replication\.throttled\.replicas, message\.timestamp\.difference\.max\.ms, message\.timestamp\.type, unclean\.leader\.election\.enable, min\.insync\.replicas";

/// What to do about files a config names that are not on this machine: key and trust stores,
/// config-provider files and directories, provider environment variables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocalFiles {
    /// Every one must be there: strait is about to connect.
    #[default]
    Required,
    /// `strait check` away from the deployment (a laptop, CI): a missing one is a warning and
    /// the value is shown as written. A store that is there but wrong is an error all the same.
    MayBeMissing,
}

impl Config {
    /// Read and validate an MM2 properties file; every file it names must be readable.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Self::load_with(path, LocalFiles::Required)
    }

    /// Read and validate an MM2 properties file, bytes as ISO-8859-1 like `Properties.load`.
    pub fn load_with(path: impl AsRef<Path>, local: LocalFiles) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Unreadable {
            path: shown.clone(),
            reason: io_reason(&e),
        })?;
        let mut config = Self::parse_with(&decode_latin1(&bytes), &shown, local)?;
        let lines = non_ascii_lines(&bytes);
        if !lines.is_empty() {
            let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
            config.warnings.push(Warning::general(format!(
                "line(s) {} hold bytes beyond ASCII; MirrorMaker 2 reads a properties file as ISO-8859-1 \
                 (a UTF-8 `é` is two characters to it), and so does strait; write `\\uXXXX` escapes instead",
                lines.join(", ")
            )));
        }
        Ok(config)
    }

    /// Parse and validate the text of an MM2 properties file; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Self::parse_with(text, file, LocalFiles::Required)
    }

    /// [`Config::parse`], with `local` saying whether files the config names may be missing.
    pub fn parse_with(text: &str, file: &str, local: LocalFiles) -> Result<Config, ConfigError> {
        Loader {
            file,
            local,
            warnings: Vec::new(),
            stores: StoreCache::new(local),
        }
        .run(text)
    }
}

struct Loader<'a> {
    file: &'a str,
    local: LocalFiles,
    warnings: Vec<Warning>,
    stores: StoreCache,
}

/// Keys sorted into MM2's three namespaces.
#[derive(Default)]
struct Split {
    global: Map,
    clusters: BTreeMap<String, Map>,
    flows: BTreeMap<(String, String), Map>,
    /// strait's own keys (`strait.`), full keys as written.
    strait: Map,
}

impl Loader<'_> {
    fn invalid(&self, at: &KeyRef, problem: Problem) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: at.line,
            key: at.key.clone(),
            problem,
        }
    }

    fn run(mut self, text: &str) -> Result<Config, ConfigError> {
        let props = Properties::parse(text).map_err(|e| ConfigError::Malformed {
            file: self.file.to_string(),
            line: e.line,
            key: key_on_line(text, e.line),
            reason: e.message,
        })?;
        let mut entries = self.resolve_providers(&props)?;
        entries.sort_by(|a, b| (a.at.line, &a.at.key).cmp(&(b.at.line, &b.at.key)));
        if let Some(s) = entries.iter().find(|s| s.at.key.is_empty()) {
            return Err(ConfigError::Malformed {
                file: self.file.to_string(),
                line: s.at.line,
                key: String::new(),
                reason: "the line has a separator (`=` or `:`) but no key before it".into(),
            });
        }

        let clusters_at = entries
            .iter()
            .find(|s| s.at.key == "clusters")
            .cloned()
            .ok_or_else(|| ConfigError::MissingClusters {
                file: self.file.to_string(),
            })?;
        let aliases = self.aliases(&clusters_at)?;
        let split = self.split(&entries, &aliases)?;
        let herders = self.herders(&entries, &aliases, &clusters_at)?;

        let mut all_props = BTreeMap::new();
        let mut clusters = Vec::new();
        for alias in &aliases {
            let own = split.clusters.get(alias).cloned().unwrap_or_default();
            let cp = cluster_props(&own, &split.global);
            let bootstrap = cp
                .get("bootstrap.servers")
                .filter(|s| !s.value.trim().is_empty())
                .ok_or_else(|| {
                    // An empty `<alias>.bootstrap.servers =` is the line to point at.
                    let at = own
                        .get("bootstrap.servers")
                        .map(|s| s.at.clone())
                        .unwrap_or_else(|| clusters_at.at.clone());
                    self.invalid(&at, Problem::NoBootstrap(alias.clone()))
                })?;
            self.check_bootstrap(bootstrap)?;
            clusters.push(Cluster {
                alias: alias.clone(),
                bootstrap_servers: bootstrap.value.trim().to_string(),
            });
            all_props.insert(alias.clone(), cp);
        }

        let mut java_only = Vec::new();
        let mut flows = Vec::new();
        for s in &aliases {
            for t in &aliases {
                if s == t {
                    continue;
                }
                let empty = Map::new();
                let flow_keys = split.flows.get(&(s.clone(), t.clone())).unwrap_or(&empty);
                let map = connector_map(&split.global, &all_props[s], &all_props[t], flow_keys);
                let herder = herders.contains(&(s.clone(), t.clone()));
                let worker = worker_map(&all_props[t], &split.global);
                let flow = self.flow(s, t, herder, &map, &all_props[t], &worker, &mut java_only)?;
                flows.push(flow);
            }
        }

        let (region_keys, conflict_keys): (Map, Map) = split
            .strait
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| k.starts_with(super::region::PREFIX));
        let region_watch = super::region::parse(&region_keys)
            .map_err(|(at, problem)| self.invalid(&at, problem))?;
        let conflicts = conflicts::parse(&conflict_keys, &aliases)
            .map_err(|(at, problem)| self.invalid(&at, problem))?;
        conflicts::check_flows(&conflicts, &flows)
            .map_err(|(at, problem)| self.invalid(&at, problem))?;
        let authority_topics = conflicts.authority_topics();
        let derived = conflicts.derived();
        for f in &mut flows {
            f.derived = derived.clone();
            f.authority_topics = authority_topics.clone();
        }
        self.conflict_warnings(&conflicts, &flows);

        self.flow_warnings(&split, &aliases, &flows, &entries);
        if !java_only.is_empty() {
            self.warnings.push(Warning::about_keys(
                "these Java client properties have no librdkafka equivalent and are ignored",
                java_only,
            ));
        }
        let stores = self.stores.summaries();
        self.warnings.extend(self.stores.warnings());
        Ok(Config {
            file: self.file.to_string(),
            clusters,
            flows,
            stores,
            conflicts,
            region_watch,
            warnings: dedup(self.warnings),
        })
    }

    /// Every value with its `${provider:path:key}` references resolved, as MM2 resolves them
    /// before reading anything (`config.providers*` keys themselves stay as written).
    fn resolve_providers(&mut self, props: &Properties) -> Result<Vec<Sourced>, ConfigError> {
        let providers = Providers::declare(|k| props.get(k));
        if !providers.without_class.is_empty() {
            self.warnings.push(Warning::general(format!(
                "config providers listed in `config.providers` without a `config.providers.<name>.class` are skipped, as Kafka skips them: {}",
                providers.without_class.join(", ")
            )));
        }
        let mut resolver = ProviderResolver::new(&providers);
        let mut out = Vec::with_capacity(props.len());
        for (k, e) in props.iter() {
            let at = KeyRef {
                key: k.to_string(),
                line: e.line,
            };
            let mut src = Sourced {
                value: e.value.clone(),
                at,
                providers: Vec::new(),
            };
            if !k.starts_with("config.providers") && e.value.contains("${") {
                match resolver.resolve(&e.value) {
                    Ok(r) => {
                        src.value = r.value;
                        src.providers = r.providers;
                    }
                    Err(err) if err.is_missing() && self.local == LocalFiles::MayBeMissing => {
                        self.warnings.push(Warning::about_key(
                            format!(
                                "{}: {err}; shown as written here, and strait needs it where it runs",
                                src.at
                            ),
                            src.at.clone(),
                        ));
                    }
                    Err(err) => {
                        return Err(self.invalid(&src.at, Problem::Provider(err.to_string())))
                    }
                }
            }
            out.push(src);
        }
        Ok(out)
    }

    /// The pairs MM2 makes a herder for (MirrorMakerConfig.clusterPairs): `S->T.enabled` or
    /// heartbeats on, both read with `Boolean.parseBoolean`, untrimmed, so `true ` is false here
    /// while the same value enables the flow's connectors (ConfigDef trims). No pair at all is
    /// MM2's "No source->target replication flows." at start, so it is an error here too.
    fn herders(
        &mut self,
        entries: &[Sourced],
        aliases: &[String],
        clusters: &Sourced,
    ) -> Result<BTreeSet<(String, String)>, ConfigError> {
        let raw: BTreeMap<&str, &Sourced> =
            entries.iter().map(|s| (s.at.key.as_str(), s)).collect();
        let parse_boolean = |s: &Sourced| s.value.eq_ignore_ascii_case("true");
        let is_padded =
            |s: &Sourced| s.value.trim() != s.value && s.value.trim().eq_ignore_ascii_case("true");
        let mut padded: Vec<&Sourced> = Vec::new();
        let global_hb = raw.get("emit.heartbeats.enabled").copied();
        padded.extend(global_hb.filter(|s| is_padded(s)));
        let global_hb = global_hb.is_none_or(parse_boolean);
        let mut pairs = BTreeSet::new();
        for s in aliases {
            for t in aliases.iter().filter(|t| *t != s) {
                let enabled = raw.get(format!("{s}->{t}.enabled").as_str()).copied();
                let hb = raw
                    .get(format!("{s}->{t}.emit.heartbeats.enabled").as_str())
                    .copied();
                padded.extend(enabled.into_iter().chain(hb).filter(|s| is_padded(s)));
                if enabled.is_some_and(parse_boolean) || hb.map_or(global_hb, parse_boolean) {
                    pairs.insert((s.clone(), t.clone()));
                }
            }
        }
        for src in &padded {
            self.warnings.push(Warning::about_key(
                format!(
                    "{} = `{}` ends in whitespace: MirrorMaker 2 reads it as false when it decides which \
                     cluster pairs run (Boolean.parseBoolean) and as true inside a running pair (ConfigDef \
                     trims); strait reads it the same way; remove the whitespace",
                    src.at, src.value
                ),
                src.at.clone(),
            ));
        }
        if pairs.is_empty() {
            let at = padded.first().map_or(&clusters.at, |s| &s.at);
            return Err(self.invalid(
                at,
                Problem::NoFlows(if aliases.len() < 2 {
                    "`clusters` lists only one cluster".to_string()
                } else if padded.is_empty() {
                    "no `<source>-><target>.enabled` is true and heartbeats are off".to_string()
                } else {
                    "no `<source>-><target>.enabled` is true and heartbeats are off once values ending in \
                     whitespace are read as MM2 reads them (false)"
                        .to_string()
                }),
            ));
        }
        Ok(pairs)
    }

    /// Kafka's `ClientUtils.parseAndValidateAddresses`: every entry needs a host and a port.
    fn check_bootstrap(&self, src: &Sourced) -> Result<(), ConfigError> {
        for url in src
            .value
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            if !valid_bootstrap_url(url) {
                return Err(self.invalid(&src.at, Problem::BadBootstrap(url.to_string())));
            }
        }
        Ok(())
    }

    /// The aliases of `clusters`, in order, without repeats.
    fn aliases(&self, clusters: &Sourced) -> Result<Vec<String>, ConfigError> {
        let list = parse_list(&clusters.value);
        if list.is_empty() {
            return Err(self.invalid(&clusters.at, Problem::NoClusters));
        }
        let mut out: Vec<String> = Vec::new();
        for alias in list {
            if alias.is_empty() {
                return Err(self.invalid(&clusters.at, Problem::EmptyAlias));
            }
            if alias.contains("->") {
                return Err(self.invalid(&clusters.at, Problem::ArrowInAlias(alias)));
            }
            if !out.contains(&alias) {
                out.push(alias);
            }
        }
        Ok(out)
    }

    /// Sort every key into global, cluster and flow keys, and note the ones strait ignores.
    fn split(&mut self, entries: &[Sourced], aliases: &[String]) -> Result<Split, ConfigError> {
        let mut split = Split::default();
        let mut ignored_flow_keys = Vec::new();
        let mut not_honoured = Vec::new();
        let mut unknown = Vec::new();
        let mut mm2_ignores: BTreeMap<&'static str, Vec<KeyRef>> = BTreeMap::new();
        let mut note = |class: KeyClass, at: &KeyRef| match class {
            KeyClass::Honoured => {}
            KeyClass::NotHonoured => not_honoured.push(at.clone()),
            KeyClass::Unknown => unknown.push(at.clone()),
            KeyClass::IgnoredByMm2(why) => mm2_ignores
                .entry(mm2_reason(why))
                .or_default()
                .push(at.clone()),
        };
        for src in entries {
            let key = src.at.key.as_str();
            if key == "clusters" {
                continue;
            }
            // strait's own namespace, unless a cluster is called `strait` (then only the part
            // that cannot be one of its settings).
            // `strait.data.path` is read as a connector property (per flow, or for all).
            let own = key != DATA_PATH
                && if aliases.iter().any(|a| a == "strait") {
                    key.starts_with("strait.conflicts.") || key.starts_with(super::region::PREFIX)
                } else {
                    key.starts_with(conflicts::PREFIX)
                };
            if own {
                split.strait.insert(key.to_string(), src.clone());
                continue;
            }
            if key.contains("->") {
                let Some((s, t, rest)) = Self::split_flow(key, aliases) else {
                    ignored_flow_keys.push(src.at.clone());
                    continue;
                };
                note(keys::classify_flow(&rest), &src.at);
                split
                    .flows
                    .entry((s, t))
                    .or_default()
                    .insert(rest, src.clone());
            } else if let Some((alias, rest)) = split_cluster(key, aliases) {
                note(keys::classify_cluster(rest), &src.at);
                split
                    .clusters
                    .entry(alias.to_string())
                    .or_default()
                    .insert(rest.to_string(), src.clone());
            } else {
                note(keys::classify_global(key), &src.at);
                split.global.insert(key.to_string(), src.clone());
            }
        }
        if !ignored_flow_keys.is_empty() {
            self.warnings.push(Warning::about_keys(
                &format!(
                    "these keys name no pair of `clusters` ({}): a cluster not listed, a cluster to \
                     itself, or no setting after the pair; MirrorMaker 2 ignores them, and so does strait",
                    aliases.join(", ")
                ),
                ignored_flow_keys,
            ));
        }
        if !not_honoured.is_empty() {
            self.warnings.push(Warning::about_keys(
                "strait does not implement these MirrorMaker 2 / Kafka Connect settings and ignores them \
                 (it runs no Connect workers and keeps no Connect state)",
                not_honoured,
            ));
        }
        for (why, keys) in mm2_ignores {
            self.warnings.push(Warning::about_keys(why, keys));
        }
        let strays: Vec<KeyRef> = unknown
            .iter()
            .filter(|k| k.key.ends_with(".bootstrap.servers") && k.key != "bootstrap.servers")
            .cloned()
            .collect();
        if !unknown.is_empty() {
            self.warnings.push(Warning::about_keys(
                "unknown keys, ignored (check the spelling)",
                unknown,
            ));
        }
        if !strays.is_empty() {
            self.warnings.push(Warning::about_keys(
                "these keys name clusters that are not listed in `clusters`",
                strays,
            ));
        }
        Ok(split)
    }

    /// `<S>-><T>.<rest>` for two different aliases of `clusters` (the longest that match) and a
    /// non-empty setting; None for any other key with `->`, which MM2 ignores.
    fn split_flow(key: &str, aliases: &[String]) -> Option<(String, String, String)> {
        let mut best: Option<(&String, &String)> = None;
        for s in aliases {
            for t in aliases {
                let prefix = format!("{s}->{t}.");
                let longer = best.is_none_or(|(bs, bt)| s.len() + t.len() > bs.len() + bt.len());
                if key.starts_with(&prefix) && longer {
                    best = Some((s, t));
                }
            }
        }
        let (s, t) = best.filter(|(s, t)| s != t)?;
        let rest = &key[s.len() + 2 + t.len() + 1..];
        (!rest.is_empty()).then(|| (s.clone(), t.clone(), rest.to_string()))
    }

    /// Build one flow's typed settings from its connector map.
    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        s: &str,
        t: &str,
        herder: bool,
        map: &Map,
        target_props: &Map,
        worker_props: &Map,
        java_only: &mut Vec<KeyRef>,
    ) -> Result<Flow, ConfigError> {
        let r = Resolver { loader: self, map };
        // MM2 runs a pair's connectors only in a herder (see `herders`); inside it, `enabled` is
        // a ConfigDef boolean, trimmed.
        let enabled = r.bool("enabled", false)? && herder;
        let topics = r.filter("topics", None, ".*")?;
        let topics_exclude = r.filter(
            "topics.exclude",
            Some("topics.blacklist"),
            DEFAULT_TOPICS_EXCLUDE,
        )?;
        let groups = r.filter("groups", None, ".*")?;
        let groups_exclude = r.filter(
            "groups.exclude",
            Some("groups.blacklist"),
            DEFAULT_GROUPS_EXCLUDE,
        )?;
        let config_properties_exclude = r.filter(
            "config.properties.exclude",
            Some("config.properties.blacklist"),
            DEFAULT_CONFIG_PROPERTIES_EXCLUDE,
        )?;

        let kind = match map.get("replication.policy.class") {
            None => PolicyKind::Default,
            Some(src) => PolicyKind::from_class_name(src.value.trim())
                .ok_or_else(|| r.err(src, Problem::UnknownPolicy(src.value.trim().to_string())))?,
        };
        // The separator is read as written, untrimmed and possibly empty (DefaultReplicationPolicy
        // takes the raw string): `replication.policy.separator =` with `source.cluster.alias =`
        // names remote topics exactly as their source topics.
        let separator = map.get("replication.policy.separator");
        let internal_sep = r.bool("replication.policy.internal.topic.separator.enabled", true)?;
        // The connector's aliases: the flow's clusters unless the file sets them (MM2 fills them
        // in only where absent), and they name remote and internal topics.
        let source_alias = map
            .get("source.cluster.alias")
            .map_or(s, |v| v.value.as_str())
            .to_string();
        let target_alias = map
            .get("target.cluster.alias")
            .map_or(t, |v| v.value.as_str())
            .to_string();
        let policy = ReplicationPolicy::new(
            kind,
            separator.map(|s| s.value.as_str()),
            internal_sep,
            Some(&source_alias),
        )
        .with_target(&target_alias);
        let policy_settings = PolicySettings {
            kind,
            separator: policy.separator().to_string(),
            separator_explicit: separator.is_some(),
            internal_topic_separator_enabled: internal_sep,
        };

        let location = r.side("offset-syncs.topic.location", Side::Source)?;
        let use_defaults_from = r.side("use.defaults.from", Side::Target)?;
        let records_path = r.data_path()?;
        let intervals = Intervals {
            refresh_topics: r.interval("refresh.topics", true, 600)?,
            sync_topic_configs: r.interval("sync.topic.configs", true, 600)?,
            sync_topic_acls: r.interval("sync.topic.acls", true, 600)?,
            refresh_groups: r.interval("refresh.groups", true, 600)?,
            emit_checkpoints: r.interval("emit.checkpoints", true, 60)?,
            sync_group_offsets: r.interval("sync.group.offsets", false, 60)?,
            emit_heartbeats: r.interval("emit.heartbeats", true, 1)?.filter(|_| herder),
        };
        let tasks_max = r.number("tasks.max", 1, 1, "a positive whole number")?;
        let tasks_max = u32::try_from(tasks_max).unwrap_or(u32::MAX);
        let worker = Resolver {
            loader: r.loader,
            map: worker_props,
        };
        let offset_flush_ms = worker.number(
            "offset.flush.interval.ms",
            60_000,
            0,
            "a number of milliseconds",
        )?;

        let internal_topics = InternalTopics {
            offset_syncs: match location {
                Side::Source => InternalTopic {
                    name: policy.offset_syncs_topic(&target_alias),
                    cluster: s.to_string(),
                },
                Side::Target => InternalTopic {
                    name: policy.offset_syncs_topic(&source_alias),
                    cluster: t.to_string(),
                },
            },
            checkpoints: InternalTopic {
                name: policy.checkpoints_topic(&source_alias),
                cluster: t.to_string(),
            },
            heartbeats: InternalTopic {
                name: HEARTBEATS_TOPIC.to_string(),
                cluster: t.to_string(),
            },
            source_offsets: InternalTopic {
                name: worker_props
                    .get("offset.storage.topic")
                    .map(|v| v.value.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| crate::replicate::mm2_offsets::default_topic(s)),
                cluster: t.to_string(),
            },
        };
        let source_offsets_topic_partitions = worker.number(
            "offset.storage.partitions",
            i64::from(crate::replicate::mm2_offsets::DEFAULT_PARTITIONS),
            1,
            "a positive number of partitions",
        )?;
        let source_offsets_topic_partitions =
            i32::try_from(source_offsets_topic_partitions).unwrap_or(i32::MAX);
        let source_offsets_topic_replication_factor =
            worker.factor("offset.storage.replication.factor", 3)?;

        let replication_factor = r.factor("replication.factor", 2)?;
        let offset_syncs_topic_replication_factor =
            r.factor("offset-syncs.topic.replication.factor", 3)?;
        let checkpoints_topic_replication_factor =
            r.factor("checkpoints.topic.replication.factor", 3)?;
        let heartbeats_topic_replication_factor =
            r.factor("heartbeats.topic.replication.factor", 3)?;
        let offset_lag_max = r.number("offset.lag.max", 100, i64::MIN, "a whole number")?;
        let emit_offset_syncs = r.bool("emit.offset-syncs.enabled", true)?;
        let heartbeats_replication = r.bool("heartbeats.replication.enabled", true)?;
        let poll_ms = r.number(
            "consumer.poll.timeout.ms",
            1000,
            0,
            "a number of milliseconds",
        )?;
        let admin_ms = r.number(
            "admin.timeout.ms",
            60_000,
            1,
            "a positive number of milliseconds",
        )?;
        let clients = self.clients(s, t, map, target_props, location, java_only)?;
        let r = Resolver { loader: self, map };
        let worker = Resolver {
            loader: self,
            map: worker_props,
        };
        let exactly_once = exactly_once(&r, &worker, offset_flush_ms)?;
        if let Some(eo) = &exactly_once {
            let isolation = clients.source_consumer.props.get("isolation.level");
            if isolation.is_some_and(|v| v.trim().eq_ignore_ascii_case("read_uncommitted")) {
                let src = map
                    .get("exactly.once.support")
                    .or_else(|| worker_props.get("exactly.once.source.support"));
                let problem = Problem::ExactlyOnce(format!(
                    "exactly-once replication ({}) needs the source consumer's isolation.level = read_committed, \
                     or records of aborted source transactions are copied; it is read_uncommitted",
                    eo.because.key
                ));
                return Err(match src {
                    Some(src) => r.err(src, problem),
                    None => self.invalid(&eo.because, problem),
                });
            }
        }

        let flow = Flow {
            source: s.to_string(),
            target: t.to_string(),
            herder,
            enabled,
            topics,
            topics_exclude,
            groups,
            groups_exclude,
            policy,
            policy_settings,
            replication_factor,
            offset_syncs_topic_location: location,
            offset_syncs_topic_replication_factor,
            checkpoints_topic_replication_factor,
            heartbeats_topic_replication_factor,
            source_offsets_topic_partitions,
            source_offsets_topic_replication_factor,
            offset_lag_max,
            intervals,
            emit_offset_syncs,
            heartbeats_replication,
            config_properties_exclude,
            use_defaults_from,
            tasks_max,
            offset_flush_interval: Duration::from_millis(offset_flush_ms.unsigned_abs()),
            consumer_poll_timeout: Duration::from_millis(poll_ms.unsigned_abs()),
            admin_timeout: Duration::from_millis(admin_ms.unsigned_abs()),
            exactly_once,
            records_path,
            internal_topics,
            clients,
            // Set once the conflict rules are read.
            derived: Default::default(),
            authority_topics: NameFilter::default(),
        };
        Ok(flow)
    }

    /// The six clients of a flow, from the layers MM2 builds them from (MM2-SPEC §1.4).
    fn clients(
        &mut self,
        s: &str,
        t: &str,
        map: &Map,
        target_props: &Map,
        location: Side,
        java_only: &mut Vec<KeyRef>,
    ) -> Result<Clients, ConfigError> {
        let consumer = |side: &str| {
            merge(&[
                client_keys(map, &format!("{side}.cluster.")),
                layer(map, "consumer.", &["poll.timeout.ms"]),
                layer(map, &format!("{side}.consumer."), &[]),
            ])
        };
        let admin = |side: &str| {
            merge(&[
                client_keys(map, &format!("{side}.cluster.")),
                layer(map, "admin.", &[]),
                layer(map, &format!("{side}.admin."), &[]),
            ])
        };
        let producer = |side: &str| {
            merge(&[
                client_keys(map, &format!("{side}.cluster.")),
                layer(map, "producer.", &[]),
                layer(map, &format!("{side}.producer."), &[]),
            ])
        };
        let target_producer = merge(&[
            client_keys(target_props, ""),
            layer(target_props, "producer.", &[]),
            layer(map, "producer.override.", &[]),
        ]);
        let (sync_side, sync_alias) = match location {
            Side::Source => ("source", s),
            Side::Target => ("target", t),
        };

        let mut origins = BTreeMap::new();
        let mut ep = |this: &mut Self, role: &'static str, alias: &str, java: &Map| {
            let (ep, o) = this.endpoint(alias, java, java_only)?;
            origins.insert(role, o);
            Ok::<_, ConfigError>(ep)
        };
        let mut source_consumer = ep(self, "source_consumer", s, &consumer("source"))?;
        // MM2 forces manual commits on the replication consumer and starts from the beginning.
        source_consumer
            .props
            .insert("enable.auto.commit".into(), "false".into());
        source_consumer
            .props
            .entry("auto.offset.reset".into())
            .or_insert_with(|| "earliest".into());
        let source_admin = ep(self, "source_admin", s, &admin("source"))?;
        let offset_syncs_producer = ep(
            self,
            "offset_syncs_producer",
            sync_alias,
            &producer(sync_side),
        )?;
        let target_producer = ep(self, "target_producer", t, &target_producer)?;
        let target_admin = ep(self, "target_admin", t, &admin("target"))?;
        let target_consumer = ep(self, "target_consumer", t, &consumer("target"))?;
        Ok(Clients {
            source_consumer,
            source_admin,
            offset_syncs_producer,
            target_producer,
            target_admin,
            target_consumer,
            origins,
        })
    }

    fn endpoint(
        &mut self,
        alias: &str,
        java: &Map,
        java_only: &mut Vec<KeyRef>,
    ) -> Result<(Endpoint, BTreeMap<String, Origin>), ConfigError> {
        let mapped = to_librdkafka(java, &mut self.stores)
            .map_err(|MapError { at, problem }| self.invalid(&at, problem))?;
        java_only.extend(mapped.dropped);
        for (at, instead) in mapped.superseded {
            self.warnings.push(Warning::about_key(
                format!("{at} is ignored because `{instead}` is also set for the same client"),
                at,
            ));
        }
        Ok((
            Endpoint {
                alias: alias.to_string(),
                props: mapped.props,
            },
            mapped.origins,
        ))
    }

    /// What this version does with the conflict rules read, so that a rule that is only read
    /// does not look like protection: last-writer-wins rules keep resolved views, authority
    /// rules are applied by the flows, events rules keep merged streams.
    fn conflict_warnings(&mut self, conflicts: &conflicts::Conflicts, flows: &[Flow]) {
        let list = |rules: &[&conflicts::ConflictRule]| -> String {
            rules
                .iter()
                .map(|r| format!("`{}`", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let lww: Vec<&conflicts::ConflictRule> = conflicts
            .rules
            .iter()
            .filter(|r| r.strategy == conflicts::Strategy::LastWriterWins)
            .collect();
        if let Some(first) = lww.first() {
            self.warnings.push(Warning::about_key(
                format!(
                    "last-writer-wins rules ({}) keep a resolved view `<topic>{}` in each region; the versions that lose to a concurrent write are recorded in strait.conflicts; concurrency is judged taking each region's writers' clocks to be within strait.conflicts.clock.tolerance.ms of strait's",
                    list(&lww),
                    conflicts::VIEW_SUFFIX
                ),
                first.at.clone(),
            ));
            let identity = flows.iter().find(|f| {
                f.enabled
                    && f.policy.kind() == PolicyKind::Identity
                    && conflicts.rank(&f.source).is_some()
                    && conflicts.rank(&f.target).is_some()
            });
            if let Some(f) = identity {
                self.warnings.push(Warning::about_key(
                    format!(
                        "the flow {} names remote topics as their source (IdentityReplicationPolicy), so one region's writes cannot be told from another's: no last-writer-wins view is kept; use DefaultReplicationPolicy",
                        f.name()
                    ),
                    first.at.clone(),
                ));
            }
        }
        let events: Vec<&conflicts::ConflictRule> = conflicts
            .rules
            .iter()
            .filter(|r| matches!(r.strategy, conflicts::Strategy::Events { .. }))
            .collect();
        let identity = flows.iter().find(|f| {
            f.enabled
                && f.policy.kind() == PolicyKind::Identity
                && conflicts.rank(&f.source).is_some()
                && conflicts.rank(&f.target).is_some()
        });
        if let (Some(first), Some(f)) = (events.first(), identity) {
            self.warnings.push(Warning::about_key(
                format!(
                    "the flow {} names remote topics as their source (IdentityReplicationPolicy), so a region's event topic also holds the other regions' copies: no merged stream is kept for events rules ({}); use DefaultReplicationPolicy",
                    f.name(),
                    list(&events)
                ),
                first.at.clone(),
            ));
        }
    }

    /// Warnings about the flows as a whole: quirks reproduced and settings MM2 would refuse.
    fn flow_warnings(
        &mut self,
        split: &Split,
        aliases: &[String],
        flows: &[Flow],
        entries: &[Sourced],
    ) {
        if let Some(src) = split.global.get("enabled") {
            if src.value.trim().eq_ignore_ascii_case("true") && !flows.is_empty() {
                self.warnings.push(Warning::about_key(
                    format!(
                        "global {} enables every flow between the clusters ({} flows), as MirrorMaker 2 does; \
                         set `<source>-><target>.enabled` per flow if that is not what you want",
                        src.at,
                        flows.iter().filter(|f| f.enabled).count()
                    ),
                    src.at.clone(),
                ));
            }
        }
        if !flows.iter().any(|f| f.enabled) {
            self.warnings.push(Warning::general(format!(
                "no flow is enabled, so nothing is replicated; enable one with e.g. `{}->{}.enabled = true`",
                aliases[0], aliases[1]
            )));
        }
        for flow in flows.iter().filter(|f| f.enabled) {
            let reset = flow.clients.origins.get("source_consumer").and_then(|o| {
                let v = flow
                    .clients
                    .source_consumer
                    .props
                    .get("auto.offset.reset")?;
                ["latest", "largest", "end"]
                    .contains(&v.to_ascii_lowercase().as_str())
                    .then(|| o.get("auto.offset.reset"))?
            });
            if let Some(o) = reset {
                self.warnings.push(Warning::about_key(
                    format!(
                        "{} makes the enabled flow {} start a partition with no committed position at its end:                          records already in it (a new topic, a first start, a position older than the source's retention)                          are never copied; MirrorMaker 2 does the same with it, and starts from the beginning without it",
                        o.at,
                        flow.name()
                    ),
                    o.at.clone(),
                ));
            }
            let fk = split.flows.get(&(flow.source.clone(), flow.target.clone()));
            let explicit = |k: &str| fk.and_then(|m| m.get(k)).or_else(|| split.global.get(k));
            for key in ["emit.checkpoints.enabled", "emit.offset-syncs.enabled"] {
                if let Some(src) =
                    explicit(key).filter(|s| s.value.trim().eq_ignore_ascii_case("false"))
                {
                    self.warnings.push(Warning::about_key(
                        format!(
                            "{} switches off what checkpoints need for the enabled flow {}: MirrorMaker 2 \
                             refuses to configure its checkpoint connector then, and strait emits no checkpoints for it",
                            src.at,
                            flow.name()
                        ),
                        src.at.clone(),
                    ));
                }
            }
        }
        let interpolated: Vec<KeyRef> = entries
            .iter()
            .filter(|s| s.value.contains("${") && !s.at.key.starts_with("config.providers"))
            .map(|s| s.at.clone())
            .collect();
        if !interpolated.is_empty() {
            self.warnings.push(Warning::about_keys(
                "these values hold `${...}` that no declared config provider (`config.providers`) resolves; \
                 MirrorMaker 2 uses them as written, and so does strait (an envsubst template not yet filled in?)",
                interpolated,
            ));
        }
    }
}

/// Typed reads from one map, with errors naming the key and line the value came from.
struct Resolver<'l, 'a> {
    loader: &'l Loader<'a>,
    map: &'l Map,
}

impl Resolver<'_, '_> {
    fn err(&self, src: &Sourced, problem: Problem) -> ConfigError {
        self.loader.invalid(&src.at, problem)
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(src) = self.map.get(key) else {
            return Ok(default);
        };
        match src.value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.err(src, Problem::NotABoolean(src.value.clone()))),
        }
    }

    fn number(
        &self,
        key: &str,
        default: i64,
        min: i64,
        expected: &'static str,
    ) -> Result<i64, ConfigError> {
        let Some(src) = self.map.get(key) else {
            return Ok(default);
        };
        match src.value.trim().parse::<i64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(self.err(
                src,
                Problem::NotANumber {
                    value: src.value.clone(),
                    expected,
                },
            )),
        }
    }

    /// A replication factor: a positive number, or -1 for the broker's default.
    fn factor(&self, key: &str, default: i16) -> Result<i16, ConfigError> {
        let Some(src) = self.map.get(key) else {
            return Ok(default);
        };
        match src.value.trim().parse::<i16>() {
            Ok(n) if n >= 1 || n == -1 => Ok(n),
            _ => Err(self.err(
                src,
                Problem::NotANumber {
                    value: src.value.clone(),
                    expected:
                        "a replication factor (a positive number, or -1 for the broker default)",
                },
            )),
        }
    }

    /// `<feature>.enabled` and `<feature>.interval.seconds`: None when switched off.
    fn interval(
        &self,
        feature: &str,
        default_enabled: bool,
        default_secs: i64,
    ) -> Result<Option<Duration>, ConfigError> {
        let enabled = self.bool(&format!("{feature}.enabled"), default_enabled)?;
        let key = format!("{feature}.interval.seconds");
        let secs = self.number(&key, default_secs, i64::MIN, "a whole number of seconds")?;
        if secs == 0 {
            if let Some(src) = self.map.get(&key) {
                return Err(self.err(
                    src,
                    Problem::NotANumber {
                        value: src.value.clone(),
                        expected: "a positive number of seconds (or negative to switch it off)",
                    },
                ));
            }
        }
        Ok((enabled && secs > 0).then(|| Duration::from_secs(secs.unsigned_abs())))
    }

    fn side(&self, key: &str, default: Side) -> Result<Side, ConfigError> {
        let Some(src) = self.map.get(key) else {
            return Ok(default);
        };
        match src.value.trim().to_ascii_lowercase().as_str() {
            "source" => Ok(Side::Source),
            "target" => Ok(Side::Target),
            _ => Err(self.err(src, Problem::NotSourceOrTarget(src.value.clone()))),
        }
    }

    /// [`DATA_PATH`]: why the flow copies record by record when the user says so
    /// (`records`); `None` for `batches`, the default.
    fn data_path(&self) -> Result<Option<String>, ConfigError> {
        let Some(src) = self.map.get(DATA_PATH) else {
            return Ok(None);
        };
        match src.value.trim().to_ascii_lowercase().as_str() {
            "batches" => Ok(None),
            "records" => Ok(Some(format!("{} is `records`", src.at))),
            _ => Err(self.err(src, Problem::NotADataPath(src.value.clone()))),
        }
    }

    /// A name filter; `old` is the Kafka 3.x name read when `key` is absent.
    fn filter(
        &self,
        key: &str,
        old: Option<&str>,
        default: &str,
    ) -> Result<NameFilter, ConfigError> {
        let src = self
            .map
            .get(key)
            .or_else(|| old.and_then(|o| self.map.get(o)));
        match src {
            Some(src) => NameFilter::from_list(&src.value).map_err(|e| {
                self.err(
                    src,
                    Problem::InvalidRegex {
                        pattern: e.pattern,
                        reason: one_line(&e.reason),
                    },
                )
            }),
            None => Ok(NameFilter::from_list(default).expect("built-in default filters compile")),
        }
    }
}

/// A flow's exactly-once replication, as MM2 decides it: the flow's `exactly.once.support`
/// (`requested` by default) and its target worker's `exactly.once.source.support` (`disabled`
/// by default). On when the flow requires it (`required`, or strait's `enabled`), or requests it
/// of a worker that has it `enabled`; `disabled` keeps it off whatever the worker says.
fn exactly_once(
    r: &Resolver<'_, '_>,
    worker: &Resolver<'_, '_>,
    flush_ms: i64,
) -> Result<Option<ExactlyOnce>, ConfigError> {
    let word = |s: &Sourced| s.value.trim().to_ascii_lowercase();
    let worker_support = worker.map.get("exactly.once.source.support");
    if let Some(w) = worker_support {
        if !matches!(word(w).as_str(), "enabled" | "preparing" | "disabled") {
            return Err(worker.err(
                w,
                Problem::ExactlyOnce(format!(
                    "`{}` must be enabled, preparing or disabled",
                    w.value.trim()
                )),
            ));
        }
    }
    let worker_enabled = || {
        worker_support
            .filter(|w| word(w) == "enabled")
            .map(|w| w.at.clone())
    };
    let because = match r.map.get("exactly.once.support") {
        None => worker_enabled(),
        Some(s) => match word(s).as_str() {
            "required" | "enabled" => Some(s.at.clone()),
            "requested" => worker_enabled(),
            "disabled" => None,
            _ => {
                return Err(r.err(
                    s,
                    Problem::ExactlyOnce(format!(
                        "`{}` must be requested, required, enabled or disabled",
                        s.value.trim()
                    )),
                ))
            }
        },
    };
    let Some(because) = because else {
        return Ok(None);
    };
    let boundary = r.map.get("transaction.boundary");
    let transaction_interval = match boundary.map(word).as_deref() {
        None | Some("poll") => Duration::from_millis(100),
        Some("interval") => Duration::from_millis(
            r.number(
                "transaction.boundary.interval.ms",
                flush_ms,
                1,
                "a positive number of milliseconds",
            )?
            .unsigned_abs(),
        ),
        Some(_) => {
            let b = boundary.expect("matched a value");
            return Err(r.err(
                b,
                Problem::ExactlyOnce(format!(
                    "`{}` must be poll or interval: MirrorMaker 2's source connector defines no \
                     transactions of its own",
                    b.value.trim()
                )),
            ));
        }
    };
    Ok(Some(ExactlyOnce {
        transaction_interval,
        because,
    }))
}

/// Lines (1-based) other than comments with bytes beyond ASCII.
fn non_ascii_lines(bytes: &[u8]) -> Vec<usize> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| {
            let body = line.trim_ascii_start();
            !body.starts_with(b"#") && !body.starts_with(b"!") && !line.is_ascii()
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Java's `HOST_PORT_PATTERN`, `.*?\[?([0-9a-zA-Z\-%._:]*)\]?:([0-9]+)`, as a whole match: its
/// lazy prefix and possibly empty host accept anything that ends in `:<digits>`; then the port
/// must be one (`InetSocketAddress` refuses more than 65535).
fn valid_bootstrap_url(url: &str) -> bool {
    let Some((_, port)) = url.rsplit_once(':') else {
        return false;
    };
    !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65535)
}

/// `clusterProps(X)`: X's own keys, its client keys copied to `producer.`/`consumer.`/`admin.`,
/// then the global client keys where X sets none (MM2-SPEC §1.4).
fn cluster_props(own: &Map, global: &Map) -> Map {
    let mut m = own.clone();
    for (k, v) in own.iter().filter(|(k, _)| keys::is_client_key(k)) {
        for role in ["producer", "consumer", "admin"] {
            m.entry(format!("{role}.{k}")).or_insert_with(|| v.clone());
        }
    }
    for (k, v) in global.iter().filter(|(k, _)| keys::is_client_key(k)) {
        for role in ["producer", "consumer", "admin"] {
            m.entry(format!("{role}.{k}")).or_insert_with(|| v.clone());
        }
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    m
}

/// The worker config MM2 builds for flows into T (`workerConfig`): T's own keys, then the
/// top-level `offset.storage.*` keys over them.
fn worker_map(target: &Map, global: &Map) -> Map {
    let mut m = target.clone();
    for (k, v) in global
        .iter()
        .filter(|(k, _)| k.starts_with("offset.storage.") || *k == "exactly.once.source.support")
    {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// The connector config MM2 builds for flow S->T (MM2-SPEC §1.3), as one flat map.
fn connector_map(global: &Map, source: &Map, target: &Map, flow: &Map) -> Map {
    let mut m = Map::new();
    for (k, v) in global {
        if keys::is_connector_property(k) || k.starts_with("replication.policy") {
            m.insert(k.clone(), v.clone());
        }
    }
    for (side, props) in [("source", source), ("target", target)] {
        for (k, v) in props {
            let is_client = ["consumer.", "producer.", "admin."]
                .iter()
                .any(|p| k.starts_with(p));
            let key = if is_client {
                format!("{side}.{k}")
            } else {
                format!("{side}.cluster.{k}")
            };
            m.insert(key, v.clone());
        }
    }
    for (k, v) in flow {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// Client keys under `prefix`, prefix stripped.
fn client_keys(map: &Map, prefix: &str) -> Map {
    map.iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v)))
        .filter(|(rest, _)| keys::is_client_key(rest))
        .map(|(rest, v)| (rest.to_string(), v.clone()))
        .collect()
}

/// Every key under `prefix`, prefix stripped, except Connect's `override.*` and `skip`.
fn layer(map: &Map, prefix: &str, skip: &[&str]) -> Map {
    map.iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v)))
        .filter(|(rest, _)| {
            !rest.is_empty() && !rest.starts_with("override.") && !skip.contains(rest)
        })
        .map(|(rest, v)| (rest.to_string(), v.clone()))
        .collect()
}

/// Later layers override earlier ones.
fn merge(layers: &[Map]) -> Map {
    let mut m = Map::new();
    for l in layers {
        for (k, v) in l {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// `<alias>.<rest>` for the longest alias that prefixes `key`.
fn split_cluster<'k>(key: &'k str, aliases: &[String]) -> Option<(&'k str, &'k str)> {
    aliases
        .iter()
        .filter(|a| {
            key.len() > a.len() + 1
                && key.starts_with(a.as_str())
                && key.as_bytes()[a.len()] == b'.'
        })
        .max_by_key(|a| a.len())
        .map(|a| (&key[..a.len()], &key[a.len() + 1..]))
}

fn mm2_reason(why: Mm2Ignores) -> &'static str {
    match why {
        Mm2Ignores::GlobalClientKey => {
            "MirrorMaker 2 ignores client settings at top level, and so does strait; \
             set them per cluster (`<alias>.consumer.*`, `<alias>.producer.*`, `<alias>.admin.*`) or per flow"
        }
        Mm2Ignores::GlobalUseDefaultsFrom => {
            "MirrorMaker 2 ignores a top-level `use.defaults.from`, and so does strait; set it per flow \
             (`<source>-><target>.use.defaults.from`)"
        }
        Mm2Ignores::GlobalOffsetFlush => {
            "MirrorMaker 2 reads `offset.flush.interval.ms` per target cluster only, and so does strait; \
             set `<alias>.offset.flush.interval.ms`"
        }
        Mm2Ignores::ConnectorPropertyOnCluster => {
            "MirrorMaker 2 ignores connector settings under a cluster alias, and so does strait; \
             set them at top level or per flow (`<source>-><target>.<setting>`)"
        }
    }
}

/// The key as written on `line` of `text`, for errors on lines the parser could not read.
fn key_on_line(text: &str, line: usize) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let raw = normalized
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim_start();
    raw.split(|c: char| c == '=' || c == ':' || c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_string()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Warnings in first-seen order, each once (a global key is seen once per flow).
fn dedup(warnings: Vec<Warning>) -> Vec<Warning> {
    let mut seen = BTreeSet::new();
    warnings
        .into_iter()
        .filter(|w| seen.insert(w.message.clone()))
        .collect()
}
