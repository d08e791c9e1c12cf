//! The client switch: where a consumer group should connect now, so that an application, a
//! sidecar or a config-management job fetches one document (`strait clients`, or
//! `GET /api/clients/{group}` on `strait run --http`) instead of being edited by hand after a
//! failover.
//!
//! The answer is the active region of a pair of clusters (the newest [`ActiveRegion`] record on
//! either cluster, or a default when no switch was ever recorded), that region's bootstrap servers,
//! and the topics the group must subscribe to there: for each topic the group consumes (by its
//! upstream name), the replicated copy from the other region (`us-east.orders` on us-west) when
//! the active region has one, then the topic's own name (`orders`, where writers write).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::active::{self, ActiveRegion};
use crate::config::{Config, Flow};
use crate::kafka::groups::{Groups, TopicPartition};
use crate::kafka::{Admin, ClientError, Endpoint};

/// How long each cluster may take to answer before it counts as unreachable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the active region came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// An active-region record (a failover or failback was recorded).
    Record,
    /// No record yet: the source of the active-passive flow, or the pair's first cluster.
    Default,
}

/// What a consumer group should use now. Serialized as the documented JSON answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSettings {
    /// The consumer group asked about.
    pub group: String,
    /// The two clusters, in the config's `clusters` order.
    pub pair: [String; 2],
    /// The alias of the cluster the group should connect to.
    pub active_region: String,
    /// The active cluster's `bootstrap.servers`, from the config.
    pub bootstrap_servers: String,
    /// What to subscribe to on the active region, in order.
    pub topics: Vec<String>,
    /// The record's version (grows with every switch); 0 when no switch was recorded.
    pub version: u64,
    /// When the record was written; `None` without a record.
    pub changed_at_ms: Option<i64>,
    /// The record's reason (`failover from us-east`), or why the default applies.
    pub reason: String,
    /// `record` or `default`.
    #[serde(rename = "source")]
    pub decision: Decision,
    /// Clusters that did not answer, topics the active region lacks, ...: one sentence each.
    pub warnings: Vec<String>,
}

impl ClientSettings {
    /// An HTTP entity tag of what a client acts on (region, servers, topics, version): it changes
    /// exactly when a client must re-create its consumer.
    pub fn etag(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |s: &str| {
            for b in s.bytes().chain(std::iter::once(0)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(&self.active_region);
        feed(&self.bootstrap_servers);
        for t in &self.topics {
            feed(t);
        }
        format!("\"{}-{h:016x}\"", self.version)
    }
}

/// Why no answer could be given.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// A mistake in the request: the group, the pair, or a config without a single pair.
    #[error("{0}")]
    BadRequest(String),
    /// Neither cluster of the pair answered; each error names its cluster and address.
    #[error("neither cluster of the pair answered: {0}")]
    NoClusterAnswered(String),
}

impl ClientsError {
    /// Whether the asker is at fault (HTTP 400, exit code 2) rather than the clusters.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Self::BadRequest(_))
    }
}

/// Reject what cannot be an application's consumer group id.
pub fn check_group(group: &str) -> Result<(), ClientsError> {
    let bad = |why: String| Err(ClientsError::BadRequest(why));
    if group.trim().is_empty() {
        return bad("the group must be a consumer group id, not empty".into());
    }
    if group.chars().any(char::is_control) {
        return bad(format!(
            "group {group:?} contains control characters; a group id is plain text"
        ));
    }
    if group.trim() != group {
        return bad(format!(
            "group {group:?} begins or ends with spaces; give the id exactly"
        ));
    }
    if crate::replicate::is_strait_group(group) {
        return bad(format!(
            "{group} is strait's own replication group, not an application's consumer group"
        ));
    }
    Ok(())
}

/// The pair to answer for, in the config's `clusters` order. `pair` is empty when not given
/// (then the config must have enabled flows between exactly two clusters), else the two aliases
/// as given (`--pair a,b` or `?pair=a,b`, split at the comma).
pub fn resolve_pair(config: &Config, pair: &[String]) -> Result<(String, String), ClientsError> {
    let file = &config.file;
    let bad = |why: String| Err(ClientsError::BadRequest(why));
    let in_a_flow = |alias: &str| {
        config
            .enabled_flows()
            .any(|f| f.source == alias || f.target == alias)
    };
    let (a, b) = match pair {
        [] => {
            let with_flows: Vec<&str> = config
                .clusters
                .iter()
                .map(|c| c.alias.as_str())
                .filter(|c| in_a_flow(c))
                .collect();
            match with_flows.as_slice() {
                [a, b] => (a.to_string(), b.to_string()),
                [] | [_] => {
                    return bad(format!(
                        "{file} enables no replication flow, so it has no pair of clusters to switch between"
                    ))
                }
                more => {
                    return bad(format!(
                        "{file} has flows between more than two clusters ({}): choose the pair with --pair A,B (HTTP: ?pair=A,B)",
                        more.join(", ")
                    ))
                }
            }
        }
        [x, y] => {
            for alias in [x, y] {
                if config.cluster(alias).is_none() {
                    let known: Vec<&str> =
                        config.clusters.iter().map(|c| c.alias.as_str()).collect();
                    return bad(format!(
                        "the pair names {alias:?}, which is not a cluster in {file} (clusters are {})",
                        known.join(", ")
                    ));
                }
            }
            if x == y {
                return bad(format!(
                    "the pair names {x} twice; give two different clusters, such as us-east,us-west"
                ));
            }
            let enabled = |s: &str, t: &str| config.flow(s, t).is_some_and(|f| f.enabled);
            if !enabled(x, y) && !enabled(y, x) {
                return bad(format!(
                    "{file} enables no flow between {x} and {y}, so they are not a pair to switch between"
                ));
            }
            let pos = |alias: &str| config.clusters.iter().position(|c| c.alias == alias);
            if pos(x) <= pos(y) {
                (x.clone(), y.clone())
            } else {
                (y.clone(), x.clone())
            }
        }
        other => {
            return bad(format!(
                "a pair is two clusters separated by a comma, such as us-east,us-west, not {:?}",
                other.join(",")
            ))
        }
    };
    Ok((a, b))
}

/// The active region when no switch was recorded, and why: the source of the active-passive flow,
/// or with flows both ways the pair's first cluster (`a`, first in `clusters`).
pub fn default_active(config: &Config, a: &str, b: &str) -> (String, String) {
    let enabled = |s: &str, t: &str| config.flow(s, t).is_some_and(|f| f.enabled);
    match (enabled(a, b), enabled(b, a)) {
        (false, true) => (
            b.to_string(),
            format!("no switch recorded; {b} is the source of {b}->{a}"),
        ),
        (true, true) => (
            a.to_string(),
            format!(
                "no switch recorded; {a} and {b} replicate both ways and {a} is listed first in clusters"
            ),
        ),
        _ => (
            a.to_string(),
            format!("no switch recorded; {a} is the source of {a}->{b}"),
        ),
    }
}

/// The name of `topic`, seen on cluster `on`, one hop upstream when it is a copy from `other`
/// (`us-east.orders` on us-west is `orders`); a local topic keeps its name.
pub fn upstream_name(config: &Config, on: &str, other: &str, topic: &str) -> String {
    let Some(flow) = config.flow(other, on) else {
        return topic.to_string();
    };
    match flow.policy.topic_source(topic) {
        Some(s) if s == other => flow
            .policy
            .upstream_topic(topic)
            .unwrap_or_else(|| topic.to_string()),
        _ => topic.to_string(),
    }
}

/// What the enabled flows of the pair replicate, by upstream name: the source's topics that pass
/// each flow's filter (or, when the source did not answer, the copies found on the target).
pub fn replicated_topics(
    config: &Config,
    (a, b): (&str, &str),
    topics_a: Option<&BTreeSet<String>>,
    topics_b: Option<&BTreeSet<String>>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (s, t, on_s, on_t) in [(a, b, topics_a, topics_b), (b, a, topics_b, topics_a)] {
        let Some(flow) = config.flow(s, t).filter(|f| f.enabled) else {
            continue;
        };
        let wanted =
            |u: &str| flow.should_replicate_topic(u) && !flow.policy.is_heartbeats_topic(u);
        match (on_s, on_t) {
            (Some(on_s), _) => out.extend(on_s.iter().filter(|u| wanted(u)).cloned()),
            (None, Some(on_t)) => out.extend(
                on_t.iter()
                    .filter(|r| flow.policy.topic_source(r) == Some(s))
                    .filter_map(|r| flow.policy.upstream_topic(r))
                    .filter(|u| wanted(u)),
            ),
            (None, None) => {}
        }
    }
    out
}

/// What to subscribe to on the active region `x` (the other is `y`) for each upstream topic: the
/// copy from `y` when `x` has it, then the topic's own name when `x` has it or writers were
/// switched to `x` by a record. `topics_on_x` is `None` when `x` did not answer: then the copy is
/// listed when an enabled `y->x` flow replicates the topic, and the own name always. Also returns
/// the upstream topics that have neither on `x`.
pub fn subscriptions(
    config: &Config,
    (x, y): (&str, &str),
    upstream: &BTreeSet<String>,
    topics_on_x: Option<&BTreeSet<String>>,
    writers_moved: bool,
) -> (Vec<String>, Vec<String>) {
    let yx: Option<&Flow> = config.flow(y, x);
    let mut out: Vec<String> = Vec::new();
    let mut missing = Vec::new();
    for u in upstream {
        let before = out.len();
        if let Some(flow) = yx {
            let copy = flow.policy.format_remote_topic(y, u);
            let there = match topics_on_x {
                Some(t) => t.contains(&copy),
                None => flow.enabled && flow.should_replicate_topic(u),
            };
            if there && !out.contains(&copy) {
                out.push(copy);
            }
        }
        let local = writers_moved || topics_on_x.is_none_or(|t| t.contains(u));
        if local && !out.contains(u) {
            out.push(u.clone());
        }
        if out.len() == before && !out.contains(u) {
            missing.push(u.clone());
        }
    }
    (out, missing)
}

/// What one cluster said.
struct View {
    records: Vec<ActiveRegion>,
    /// Every topic name (None: metadata could not be read).
    topics: Option<BTreeSet<String>>,
    /// Topics the group has committed offsets on (None: could not be read).
    committed: Option<BTreeSet<String>>,
    warnings: Vec<String>,
}

/// The consumer and admin settings of cluster `x` (paired with `y`): those of an enabled flow
/// that touches it, as `strait run` uses them.
fn endpoints<'c>(config: &'c Config, x: &str, y: &str) -> Option<(&'c Endpoint, &'c Endpoint)> {
    let out = config.flow(x, y).filter(|f| f.enabled);
    let inn = config.flow(y, x).filter(|f| f.enabled);
    match (out, inn) {
        (Some(f), _) => Some((&f.clients.source_consumer, &f.clients.source_admin)),
        (None, Some(f)) => Some((&f.clients.target_consumer, &f.clients.target_admin)),
        (None, None) => config
            .flow(x, y)
            .map(|f| (&f.clients.source_consumer, &f.clients.source_admin)),
    }
}

async fn read_cluster(
    config: &Config,
    (x, y): (&str, &str),
    group: &str,
    timeout: Duration,
) -> Result<View, ClientError> {
    let (consumer, admin_ep) = endpoints(config, x, y).expect("both clusters are in the config");
    let records = active::read(consumer, timeout).await?;
    let mut view = View {
        records,
        topics: None,
        committed: None,
        warnings: Vec::new(),
    };
    let listed = match Admin::new(admin_ep, timeout) {
        Ok(a) => a.topics(None).await,
        Err(e) => Err(e),
    };
    let listed = match listed {
        Ok(l) => l,
        Err(e) => {
            view.warnings.push(format!("{x}: topics unknown: {e}"));
            return Ok(view);
        }
    };
    view.topics = Some(listed.iter().map(|t| t.name.clone()).collect());
    let policy = &config.flow(y, x).expect("pair flow").policy;
    let partitions: Vec<TopicPartition> = listed
        .iter()
        .filter(|t| !policy.is_internal_topic(&t.name) && !policy.is_heartbeats_topic(&t.name))
        .flat_map(|t| (0..t.partitions).map(|p| (t.name.clone(), p)))
        .collect();
    match Groups::new(consumer, timeout)
        .committed(group, &partitions)
        .await
    {
        Ok(c) => view.committed = Some(c.into_keys().map(|(t, _)| t).collect()),
        Err(e) => view
            .warnings
            .push(format!("{x}: the group's offsets are unknown: {e}")),
    }
    Ok(view)
}

/// Where `group` should connect now, for the pair `pair` (empty: the config's only pair): read
/// the active-region records and the group's committed offsets from both clusters (in parallel,
/// each bounded by `timeout`; one answering is enough).
pub async fn settings(
    config: &Config,
    group: &str,
    pair: &[String],
    timeout: Duration,
) -> Result<ClientSettings, ClientsError> {
    check_group(group)?;
    let (a, b) = resolve_pair(config, pair)?;
    let (va, vb) = tokio::join!(
        read_cluster(config, (&a, &b), group, timeout),
        read_cluster(config, (&b, &a), group, timeout)
    );
    let mut warnings = Vec::new();
    let (va, vb) = match (va, vb) {
        (Err(ea), Err(eb)) => return Err(ClientsError::NoClusterAnswered(format!("{ea}; {eb}"))),
        (va, vb) => {
            let keep = |v: Result<View, ClientError>, w: &mut Vec<String>| match v {
                Ok(v) => {
                    w.extend(v.warnings.iter().cloned());
                    Some(v)
                }
                Err(e) => {
                    w.push(format!("did not answer: {e}"));
                    None
                }
            };
            (keep(va, &mut warnings), keep(vb, &mut warnings))
        }
    };

    let records: Vec<ActiveRegion> = va
        .iter()
        .chain(vb.iter())
        .flat_map(|v| v.records.iter().cloned())
        .collect();
    let recorded = active::for_pair(&records, &a, &b).filter(|r| r.active == a || r.active == b);
    let (active_region, version, changed_at_ms, reason, decision) = match recorded {
        Some(r) => (
            r.active.clone(),
            r.version,
            Some(r.changed_at_ms),
            r.reason.clone(),
            Decision::Record,
        ),
        None => {
            let (x, why) = default_active(config, &a, &b);
            (x, 0, None, why, Decision::Default)
        }
    };
    let other = if active_region == a { &b } else { &a };
    let (vx, vy) = if active_region == a {
        (&va, &vb)
    } else {
        (&vb, &va)
    };

    // The group's topics by upstream name, from its commits on either side.
    let mut upstream = BTreeSet::new();
    for (v, on, off) in [(vx, &active_region, other), (vy, other, &active_region)] {
        if let Some(committed) = v.as_ref().and_then(|v| v.committed.as_ref()) {
            upstream.extend(committed.iter().map(|t| upstream_name(config, on, off, t)));
        }
    }
    if upstream.is_empty() {
        let topics = |v: &Option<View>| v.as_ref().and_then(|v| v.topics.clone());
        upstream = replicated_topics(config, (&a, &b), topics(&va).as_ref(), topics(&vb).as_ref());
        warnings.push(format!(
            "group {group} has no committed offsets on the pair; listing every topic the flows replicate"
        ));
    }
    let topics_on_x = vx.as_ref().and_then(|v| v.topics.as_ref());
    let (topics, missing) = subscriptions(
        config,
        (&active_region, other),
        &upstream,
        topics_on_x,
        decision == Decision::Record,
    );
    if !missing.is_empty() {
        warnings.push(format!(
            "{active_region} has neither a copy nor its own topic for {} (consumed by the group elsewhere)",
            missing.join(", ")
        ));
    }
    let bootstrap_servers = config
        .cluster(&active_region)
        .map(|c| c.bootstrap_servers.clone())
        .unwrap_or_default();
    Ok(ClientSettings {
        group: group.to_string(),
        pair: [a, b],
        active_region,
        bootstrap_servers,
        topics,
        version,
        changed_at_ms,
        reason,
        decision,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "clusters = us-east, us-west, eu\n\
        us-east.bootstrap.servers = east:9092\n\
        us-west.bootstrap.servers = west:9092\n\
        eu.bootstrap.servers = eu:9092\n";

    fn config(extra: &str) -> Config {
        Config::parse(&format!("{BASE}{extra}"), "mm2.properties").unwrap()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn pair(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    fn bad(r: Result<(String, String), ClientsError>) -> String {
        match r {
            Err(ClientsError::BadRequest(m)) => m,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn the_pair_is_the_two_clusters_with_flows_in_config_order() {
        let c = config("us-west->us-east.enabled = true\n");
        let p = |s: &[String]| resolve_pair(&c, s).unwrap();
        assert_eq!(p(&[]), ("us-east".into(), "us-west".into()));
        assert_eq!(
            p(&pair("us-west,us-east")),
            ("us-east".into(), "us-west".into())
        );
        assert!(bad(resolve_pair(&c, &pair("us-east,eu"))).contains("no flow between"));
        assert!(bad(resolve_pair(&c, &pair("us-east,us-east"))).contains("twice"));
        assert!(bad(resolve_pair(&c, &pair("us-east"))).contains("two clusters"));
        assert!(bad(resolve_pair(&c, &pair("us-east,"))).contains("not a cluster"));
        assert!(bad(resolve_pair(&c, &pair("a,b,c"))).contains("two clusters"));
        assert!(bad(resolve_pair(&c, &pair("mars,us-east"))).contains("\"mars\""));

        let three = config("us-east->us-west.enabled = true\nus-east->eu.enabled = true\n");
        let m = bad(resolve_pair(&three, &[]));
        assert!(m.contains("--pair") && m.contains("?pair="), "{m}");
        assert!(resolve_pair(&three, &pair("eu,us-east")).is_ok());
        assert!(bad(resolve_pair(&config(""), &[])).contains("enables no replication flow"));
    }

    #[test]
    fn without_a_record_the_source_or_the_first_cluster_is_active() {
        let c = config("us-west->us-east.enabled = true\n");
        assert_eq!(default_active(&c, "us-east", "us-west").0, "us-west");
        let c = config("us-east->us-west.enabled = true\n");
        assert_eq!(default_active(&c, "us-east", "us-west").0, "us-east");
        let c = config("us-east->us-west.enabled = true\nus-west->us-east.enabled = true\n");
        let (x, why) = default_active(&c, "us-east", "us-west");
        assert_eq!(x, "us-east");
        assert!(why.contains("both ways"), "{why}");
    }

    #[test]
    fn groups_are_checked() {
        for g in ["", "  ", "a\nb", " billing", "strait.us-east->us-west"] {
            assert!(check_group(g).unwrap_err().is_bad_request(), "{g:?}");
        }
        check_group("billing-v2.eu").unwrap();
    }

    #[test]
    fn remote_names_map_back_upstream() {
        let c = config("us-east->us-west.enabled = true\n");
        assert_eq!(
            upstream_name(&c, "us-west", "us-east", "us-east.orders"),
            "orders"
        );
        assert_eq!(upstream_name(&c, "us-west", "us-east", "orders"), "orders");
        assert_eq!(
            upstream_name(&c, "us-west", "us-east", "eu.orders"),
            "eu.orders"
        );
        assert_eq!(upstream_name(&c, "us-east", "us-west", "orders"), "orders");
    }

    #[test]
    fn after_failover_the_copy_then_the_own_topic() {
        let c = config("us-east->us-west.enabled = true\n");
        let up = set(&["orders"]);
        // Before: on us-east, only orders.
        let (t, _) = subscriptions(
            &c,
            ("us-east", "us-west"),
            &up,
            Some(&set(&["orders", "heartbeats"])),
            false,
        );
        assert_eq!(t, ["orders"]);
        // After a failover to us-west: the replicated data, then new writes (not created yet).
        let on_west = set(&["us-east.orders", "heartbeats", "us-east.heartbeats"]);
        let (t, _) = subscriptions(&c, ("us-west", "us-east"), &up, Some(&on_west), true);
        assert_eq!(t, ["us-east.orders", "orders"]);
        // The same without a record: orders does not exist on us-west, so only the copy.
        let (t, _) = subscriptions(&c, ("us-west", "us-east"), &up, Some(&on_west), false);
        assert_eq!(t, ["us-east.orders"]);
        // us-west did not answer: the copy is known from the flow (none here: us-west->us-east
        // is not enabled), the own name always.
        let (t, _) = subscriptions(&c, ("us-east", "us-west"), &up, None, true);
        assert_eq!(t, ["orders"]);
        // A topic that the active region has in no form is reported.
        let (t, missing) = subscriptions(
            &c,
            ("us-east", "us-west"),
            &set(&["audit", "orders"]),
            Some(&set(&["orders"])),
            false,
        );
        assert_eq!(
            (t, missing),
            (vec!["orders".to_string()], vec!["audit".to_string()])
        );
    }

    #[test]
    fn identity_names_are_listed_once() {
        let c = config(
            "us-east->us-west.enabled = true\n\
             replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
        );
        let (t, _) = subscriptions(
            &c,
            ("us-west", "us-east"),
            &set(&["orders"]),
            Some(&set(&["orders"])),
            true,
        );
        assert_eq!(t, ["orders"]);
    }

    #[test]
    fn without_commits_every_replicated_topic() {
        let c =
            config("us-east->us-west.enabled = true\nus-east->us-west.topics = orders, pay.*\n");
        let east = set(&[
            "orders",
            "payments",
            "audit",
            "heartbeats",
            "__consumer_offsets",
        ]);
        let west = set(&["us-east.orders", "us-east.payments", "us-east.heartbeats"]);
        let all = set(&["orders", "payments"]);
        assert_eq!(
            replicated_topics(&c, ("us-east", "us-west"), Some(&east), Some(&west)),
            all
        );
        assert_eq!(
            replicated_topics(&c, ("us-east", "us-west"), None, Some(&west)),
            all
        );
    }

    /// The document is byte for byte what `strait clients --json` prints and
    /// `/api/clients/{group}` answers (compact there) and what clients parse
    /// (`testdata/clients.json`; regenerate with `STRAIT_UPDATE_GOLDEN=1` only for an intended
    /// change of the documented format), and it reads back as the same value.
    #[test]
    fn json_matches_the_golden_file() {
        let s = ClientSettings {
            group: "billing".into(),
            pair: ["us-east".into(), "us-west".into()],
            active_region: "us-west".into(),
            bootstrap_servers: "127.0.0.1:19093".into(),
            topics: vec!["us-east.orders".into(), "orders".into()],
            version: 1,
            changed_at_ms: Some(1_746_100_800_000),
            reason: "failover from us-east".into(),
            decision: Decision::Record,
            warnings: vec!["us-east did not answer within 5s".into()],
        };
        let json = serde_json::to_string_pretty(&s).unwrap() + "\n";
        crate::text::assert_golden("src/failover/testdata/clients.json", &json);
        assert_eq!(serde_json::from_str::<ClientSettings>(&json).unwrap(), s);
        let default = ClientSettings {
            decision: Decision::Default,
            changed_at_ms: None,
            version: 0,
            ..s
        };
        let json = serde_json::to_string(&default).unwrap();
        assert!(json.contains(r#""source":"default""#), "{json}");
        assert!(json.contains(r#""changed_at_ms":null"#), "{json}");
        assert_eq!(
            serde_json::from_str::<ClientSettings>(&json).unwrap(),
            default
        );
    }

    #[test]
    fn the_etag_follows_what_clients_use() {
        let s = ClientSettings {
            group: "g".into(),
            pair: ["us-east".into(), "us-west".into()],
            active_region: "us-west".into(),
            bootstrap_servers: "west:9092".into(),
            topics: vec!["us-east.orders".into(), "orders".into()],
            version: 1,
            changed_at_ms: Some(5),
            reason: "failover".into(),
            decision: Decision::Record,
            warnings: vec![],
        };
        let mut t = s.clone();
        t.warnings.push("us-east did not answer".into());
        assert_eq!(s.etag(), t.etag());
        assert!(s.etag().starts_with("\"1-"));
        t.topics.pop();
        assert_ne!(s.etag(), t.etag());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["source"], "record");
        assert_eq!(v["pair"], serde_json::json!(["us-east", "us-west"]));
    }
}
