//! Tests of [`Config::parse`]: MM2's precedence, defaults, list semantics and quirks, and the
//! one-sentence errors.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::policy::PolicyKind;

const BASE: &str = "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n";

fn parse(extra: &str) -> Config {
    Config::parse(&format!("{BASE}{extra}"), "mm2.properties").unwrap()
}

fn error(text: &str) -> ConfigError {
    Config::parse(text, "mm2.properties").unwrap_err()
}

fn ab(c: &Config) -> &Flow {
    c.flow("A", "B").unwrap()
}

fn warned(c: &Config, needle: &str) -> bool {
    c.warnings.iter().any(|w| w.message.contains(needle))
}

#[test]
fn defaults_of_mm2() {
    let c = parse("");
    assert_eq!(c.flows.len(), 2);
    let f = ab(&c);
    assert!(!f.enabled, "flows are disabled unless enabled");
    assert!(f.runs(), "heartbeats still run");
    assert!(f.topics.matches("orders"));
    assert!(!f.topic_filter_matches("__consumer_offsets"));
    assert!(!f.topic_filter_matches("mm2-offsets.A.internal"));
    assert!(f.should_replicate_group("app"));
    assert!(!f.should_replicate_group("console-consumer-123"));
    assert!(!f.should_replicate_group("connect-x"));
    assert_eq!(f.replication_factor, 2);
    assert_eq!(f.offset_syncs_topic_replication_factor, 3);
    assert_eq!(f.checkpoints_topic_replication_factor, 3);
    assert_eq!(f.heartbeats_topic_replication_factor, 3);
    assert_eq!(f.offset_lag_max, 100);
    assert_eq!(f.tasks_max, 1);
    assert_eq!(f.offset_syncs_topic_location, Side::Source);
    assert_eq!(f.use_defaults_from, Side::Target);
    assert!(f.emit_offset_syncs && f.heartbeats_replication);
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
    assert_eq!(secs(f.intervals.refresh_topics), Some(600));
    assert_eq!(secs(f.intervals.sync_topic_configs), Some(600));
    assert_eq!(secs(f.intervals.sync_topic_acls), Some(600));
    assert_eq!(secs(f.intervals.refresh_groups), Some(600));
    assert_eq!(secs(f.intervals.emit_checkpoints), Some(60));
    assert_eq!(secs(f.intervals.sync_group_offsets), None, "off by default");
    assert_eq!(secs(f.intervals.emit_heartbeats), Some(1));
    assert_eq!(f.offset_flush_interval, Duration::from_secs(60));
    assert_eq!(f.consumer_poll_timeout, Duration::from_secs(1));
    assert_eq!(f.admin_timeout, Duration::from_secs(60));
    assert!(!f.should_replicate_config_property("min.insync.replicas"));
    assert!(f.should_replicate_config_property("retention.ms"));
    assert_eq!(f.policy.kind(), PolicyKind::Default);
    assert_eq!(f.policy.format_remote_topic("A", "orders"), "A.orders");
    assert_eq!(
        f.internal_topics.offset_syncs.name,
        "mm2-offset-syncs.B.internal"
    );
    assert_eq!(f.internal_topics.offset_syncs.cluster, "A");
    assert_eq!(f.internal_topics.checkpoints.name, "A.checkpoints.internal");
    assert_eq!(f.internal_topics.checkpoints.cluster, "B");
    assert_eq!(f.internal_topics.heartbeats.name, "heartbeats");
    assert_eq!(f.internal_topics.heartbeats.cluster, "B");
    assert!(warned(&c, "no flow is enabled"));
}

#[test]
fn flow_level_wins_over_global() {
    let c = parse("A->B.enabled = true\ntopics = x.*\nA->B.topics = orders\nreplication.factor = 1\nB->A.replication.factor = 3\n");
    let f = ab(&c);
    assert!(f.enabled);
    assert!(f.topics.matches("orders") && !f.topics.matches("x1"));
    assert_eq!(f.replication_factor, 1);
    let r = c.flow("B", "A").unwrap();
    assert!(!r.enabled);
    assert!(r.topics.matches("x1") && !r.topics.matches("orders"));
    assert_eq!(r.replication_factor, 3);
}

#[test]
fn global_enabled_quirk_enables_every_flow() {
    let c = parse("enabled = true\n");
    assert!(c.flows.iter().all(|f| f.enabled));
    assert!(warned(&c, "enables every flow"));
    let c = parse("enabled = true\nB->A.enabled = false\n");
    assert!(ab(&c).enabled);
    assert!(!c.flow("B", "A").unwrap().enabled);
}

#[test]
fn feature_switches_and_negative_intervals_disable() {
    let c = parse(
        "sync.topic.acls.enabled = false\nrefresh.groups.interval.seconds = -1\n\
         sync.group.offsets.enabled = true\nA->B.emit.checkpoints.interval.seconds = 5\n\
         emit.heartbeats.enabled = false\nB->A.enabled = true\n",
    );
    let f = ab(&c);
    assert_eq!(f.intervals.sync_topic_acls, None);
    assert_eq!(f.intervals.refresh_groups, None);
    assert_eq!(
        f.intervals.sync_group_offsets,
        Some(Duration::from_secs(60))
    );
    assert_eq!(f.intervals.emit_checkpoints, Some(Duration::from_secs(5)));
    assert_eq!(f.intervals.emit_heartbeats, None);
    assert!(
        !f.runs(),
        "neither enabled nor heartbeats: MM2 creates no herder"
    );
}

#[test]
fn empty_include_list_matches_nothing_and_empty_exclude_nothing() {
    let c = parse("A->B.topics =\nA->B.topics.exclude =\n");
    let f = ab(&c);
    assert!(!f.topic_filter_matches("orders"));
    assert!(f.topics_exclude.is_empty());
    let c = parse("A->B.topics.exclude =\n");
    assert!(ab(&c).topic_filter_matches("__consumer_offsets"));
    // Still never replicated: internal topics are excluded whatever the filter says.
    assert!(!ab(&c).should_replicate_topic("__consumer_offsets"));
}

#[test]
fn heartbeats_replicate_despite_the_filter_and_cycles_do_not() {
    let c = parse("A->B.topics = orders\n");
    let f = ab(&c);
    assert!(f.should_replicate_topic("orders"));
    assert!(!f.should_replicate_topic("payments"));
    assert!(f.should_replicate_topic("heartbeats"));
    assert!(f.should_replicate_topic("C.heartbeats"));
    assert!(!f.should_replicate_topic("B.heartbeats"), "cycle back to B");
    let c = parse("A->B.topics = orders\nheartbeats.replication.enabled = false\n");
    assert!(!ab(&c).should_replicate_topic("heartbeats"));
}

#[test]
fn policy_and_internal_topic_names() {
    let c = parse("replication.policy.separator = _\nA->B.offset-syncs.topic.location = target\n");
    let f = ab(&c);
    assert_eq!(f.policy.format_remote_topic("A", "t"), "A_t");
    assert!(f.policy_settings.separator_explicit);
    assert_eq!(
        f.internal_topics.offset_syncs.name,
        "mm2-offset-syncs_A_internal"
    );
    assert_eq!(f.internal_topics.offset_syncs.cluster, "B");
    assert_eq!(f.internal_topics.checkpoints.name, "A_checkpoints_internal");
    let c = parse("replication.policy.separator = _\nreplication.policy.internal.topic.separator.enabled = false\nreplication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n");
    let f = ab(&c);
    assert_eq!(f.policy.kind(), PolicyKind::Identity);
    assert_eq!(f.policy.format_remote_topic("A", "t"), "t");
    assert_eq!(
        f.policy.topic_source("t"),
        Some("A"),
        "for_source(S) applied"
    );
    assert_eq!(f.internal_topics.checkpoints.name, "A.checkpoints.internal");
}

#[test]
fn client_precedence_of_mm2() {
    let c = parse(
        "security.protocol = SASL_SSL\nsasl.mechanism = PLAIN\n\
         A.security.protocol = SSL\n\
         A.consumer.fetch.min.bytes = 10\n\
         A->B.consumer.fetch.min.bytes = 20\n\
         A->B.source.consumer.fetch.min.bytes = 30\n\
         consumer.max.partition.fetch.bytes = 5\n\
         B.producer.linger.ms = 7\n\
         A->B.producer.override.linger.ms = 9\n\
         A->B.producer.batch.size = 100\n\
         A.admin.request.timeout.ms = 1234\n",
    );
    let cl = &ab(&c).clients;
    let sc = &cl.source_consumer.props;
    assert_eq!(cl.source_consumer.alias, "A");
    assert_eq!(sc["bootstrap.servers"], "a:9092");
    assert_eq!(sc["security.protocol"], "SSL", "cluster beats global");
    assert_eq!(
        sc["sasl.mechanisms"], "PLAIN",
        "global default, mapped name"
    );
    assert_eq!(sc["fetch.min.bytes"], "30", "flow source.consumer wins");
    assert!(
        !sc.contains_key("max.partition.fetch.bytes"),
        "global consumer.* dropped"
    );
    assert_eq!(sc["enable.auto.commit"], "false");
    assert_eq!(sc["auto.offset.reset"], "earliest");
    let tp = &cl.target_producer.props;
    assert_eq!(cl.target_producer.alias, "B");
    assert_eq!(tp["bootstrap.servers"], "b:9092");
    assert_eq!(tp["security.protocol"], "SASL_SSL", "global default on B");
    assert_eq!(
        tp["linger.ms"], "9",
        "producer.override wins over B.producer"
    );
    assert!(
        !tp.contains_key("batch.size"),
        "flow producer.* is for MM2's own producers"
    );
    assert_eq!(cl.offset_syncs_producer.alias, "A");
    assert_eq!(cl.offset_syncs_producer.props["batch.size"], "100");
    assert_eq!(cl.source_admin.props["request.timeout.ms"], "1234");
    assert!(!cl.target_admin.props.contains_key("request.timeout.ms"));
    assert_eq!(
        cl.target_consumer.props["fetch.min.bytes"], "20",
        "flow consumer.* on both sides"
    );
    // The reverse flow: A is the target, so A's producer settings do not leak into B's consumer.
    let rev = &c.flow("B", "A").unwrap().clients;
    assert_eq!(rev.target_admin.props["request.timeout.ms"], "1234");
    assert_eq!(rev.source_consumer.props["security.protocol"], "SASL_SSL");
    assert!(warned(&c, "consumer.max.partition.fetch.bytes"));
}

#[test]
fn offset_flush_interval_is_read_from_the_target_cluster() {
    let c = parse("B.offset.flush.interval.ms = 5000\noffset.flush.interval.ms = 1\n");
    assert_eq!(ab(&c).offset_flush_interval, Duration::from_secs(5));
    assert_eq!(
        c.flow("B", "A").unwrap().offset_flush_interval,
        Duration::from_secs(60)
    );
    assert!(warned(&c, "per target cluster"));
}

#[test]
fn mm2_source_positions_are_where_the_target_worker_keeps_them() {
    let c = parse("");
    let f = ab(&c);
    assert_eq!(
        f.internal_topics.source_offsets.name,
        "mm2-offsets.A.internal"
    );
    assert_eq!(f.internal_topics.source_offsets.cluster, "B");
    assert_eq!(f.source_offsets_topic_partitions, 25);
    assert_eq!(f.source_offsets_topic_replication_factor, 3);
    // MM2's workerConfig: the target's keys, then the top-level `offset.storage.*` over them.
    let c = parse(
        "B.offset.storage.topic = b-offsets\nB.offset.storage.partitions = 5\n\
         offset.storage.replication.factor = 1\n",
    );
    let f = ab(&c);
    assert_eq!(f.internal_topics.source_offsets.name, "b-offsets");
    assert_eq!(f.source_offsets_topic_partitions, 5);
    assert_eq!(f.source_offsets_topic_replication_factor, 1);
    assert_eq!(
        c.flow("B", "A")
            .unwrap()
            .internal_topics
            .source_offsets
            .name,
        "mm2-offsets.B.internal"
    );
    let c = parse("B.offset.storage.topic = b-offsets\noffset.storage.topic = all\n");
    assert_eq!(ab(&c).internal_topics.source_offsets.name, "all");
    let about_it = |w: &Warning| w.keys.iter().any(|k| k.key.contains("offset.storage"));
    assert!(!c.warnings.iter().any(about_it), "{:?}", c.warnings);
    let e = error(&format!("{BASE}offset.storage.partitions = none\n"));
    assert!(e.to_string().contains("offset.storage.partitions"), "{e}");
}

#[test]
fn unhonoured_keys_are_one_warning_listing_them_all() {
    let c = parse(
        "key.converter = x\ntransforms = t\nA->B.metric.reporters = r\n\
         dedicated.mode.enable.internal.rest = true\nA.config.storage.replication.factor = 1\n\
         listeners = http://:8083\n",
    );
    let w: Vec<&Warning> = c
        .warnings
        .iter()
        .filter(|w| w.message.contains("does not implement"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    for k in [
        "key.converter",
        "transforms",
        "A->B.metric.reporters",
        "dedicated.mode.enable.internal.rest",
        "A.config.storage.replication.factor",
        "listeners",
    ] {
        assert!(
            w[0].keys.iter().any(|r| r.key == k),
            "{k} missing: {}",
            w[0]
        );
    }
}

#[test]
fn unknown_and_misplaced_keys_warn() {
    let c =
        parse("topicz = x\nA.topics = y\neu.bootstrap.servers = e:1\nuse.defaults.from = source\n");
    assert!(warned(&c, "unknown keys"));
    assert!(warned(&c, "`topicz` (line 4)"));
    assert!(warned(&c, "connector settings under a cluster alias"));
    assert!(warned(&c, "not listed in `clusters`"));
    assert!(warned(&c, "top-level `use.defaults.from`"));
    assert_eq!(
        ab(&c).use_defaults_from,
        Side::Target,
        "global value dropped, as MM2"
    );
    let c = parse("A->B.use.defaults.from = source\n");
    assert_eq!(ab(&c).use_defaults_from, Side::Source);
}

#[test]
fn deprecated_blacklist_keys_are_read_when_exclude_is_absent() {
    let c = parse("topics.blacklist = secret.*\n");
    assert!(ab(&c).topics_exclude.matches("secret1"));
    let c = parse("topics.blacklist = secret.*\ntopics.exclude = other\n");
    assert!(!ab(&c).topics_exclude.matches("secret1"));
}

#[test]
fn java_only_client_keys_become_one_warning() {
    let c = parse("A.consumer.max.poll.records = 10\nB.producer.buffer.memory = 1\n");
    let w: Vec<&Warning> = c
        .warnings
        .iter()
        .filter(|w| w.message.contains("no librdkafka equivalent"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    assert_eq!(w[0].keys.len(), 2);
    assert!(!ab(&c)
        .clients
        .source_consumer
        .props
        .contains_key("max.poll.records"));
}

#[test]
fn secrets_are_mapped_but_never_shown() {
    let c = parse(
        "A.security.protocol = SASL_SSL\nA.sasl.mechanism = SCRAM-SHA-512\n\
         A.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"hunter2\";\n",
    );
    let sc = &ab(&c).clients.source_consumer;
    assert_eq!(sc.props["sasl.username"], "mm2");
    assert_eq!(sc.props["sasl.password"], "hunter2");
    assert_eq!(sc.redacted()["sasl.password"], "[redacted]");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!c.warnings.iter().any(|w| w.message.contains("hunter2")));
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            "clusters = A, B\nA.bootstrap.servers = a:1, h2\nB.bootstrap.servers = b:1\n".into(),
            2,
            "A.bootstrap.servers",
            "`h2` has no port",
        ),
        (
            format!("{BASE}emit.heartbeats.enabled = false\n"),
            1,
            "clusters",
            "No source->target replication flows",
        ),
        (
            format!("{BASE}config.providers = f\nconfig.providers.f.class = FileConfigProvider\nA.sasl.password = ${{f:/nonexistent/s.properties:pw}}\n"),
            6,
            "A.sasl.password",
            "provider `f`",
        ),
        (
            "clusters = A, B\nA.bootstrap.servers = a:1\n".into(),
            1,
            "clusters",
            "B.bootstrap.servers",
        ),
        (format!("{BASE}topics = ok, (bad\n"), 4, "topics", "(bad"),
        (
            format!("{BASE}A->B.refresh.topics.interval.seconds = soon\n"),
            4,
            "A->B.refresh.topics.interval.seconds",
            "soon",
        ),
        (
            format!("{BASE}replication.factor = two\n"),
            4,
            "replication.factor",
            "two",
        ),
        (
            format!("{BASE}replication.policy.class = com.example.MyPolicy\n"),
            4,
            "replication.policy.class",
            "MyPolicy",
        ),
        (
            format!("{BASE}offset-syncs.topic.location = middle\n"),
            4,
            "offset-syncs.topic.location",
            "middle",
        ),
        (
            format!("{BASE}A.ssl.keystore.location = /nonexistent/k.jks\n"),
            4,
            "A.ssl.keystore.location",
            "/nonexistent/k.jks: no such file",
        ),
        (format!("{BASE}x = \\u12\n"), 4, "x", "\\u"),
        (format!("{BASE}enabled = yes\n"), 4, "enabled", "yes"),
    ];
    for (text, line, key, needle) in cases {
        let e = error(&text);
        let msg = e.to_string();
        assert_eq!(e.line(), Some(line), "{msg}");
        assert_eq!(e.key(), Some(key), "{msg}");
        assert!(msg.starts_with("mm2.properties"), "{msg}");
        assert!(msg.contains(&format!("line {line}")), "{msg}");
        assert!(msg.contains(key), "{msg}");
        assert!(msg.contains(needle), "{needle}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    let e = error("A.bootstrap.servers = a:1\n");
    assert_eq!(
        e,
        ConfigError::MissingClusters {
            file: "mm2.properties".into()
        }
    );
    assert!(e.to_string().contains("`clusters`"));
}

#[test]
fn lookaround_regexes_are_accepted() {
    let c = parse("A->B.topics = (?!internal-).*\n");
    assert!(ab(&c).topics.matches("orders"));
    assert!(!ab(&c).topics.matches("internal-x"));
}

fn value() -> impl Strategy<Value = Option<u16>> {
    proptest::option::of(1u16..500)
}

proptest! {
    /// For any combination of global and flow settings, the flow value wins, else the global
    /// one, else MM2's default; the other flow sees only its own or the global value.
    #[test]
    fn precedence_flow_then_global_then_default(global in value(), flow in value(), other in value()) {
        let mut text = String::new();
        if let Some(g) = global { text.push_str(&format!("offset.lag.max = {g}\n")); }
        if let Some(f) = flow { text.push_str(&format!("A->B.offset.lag.max = {f}\n")); }
        if let Some(o) = other { text.push_str(&format!("B->A.offset.lag.max = {o}\n")); }
        let c = parse(&text);
        let expect = |own: Option<u16>| i64::from(own.or(global).unwrap_or(100));
        prop_assert_eq!(ab(&c).offset_lag_max, expect(flow));
        prop_assert_eq!(c.flow("B", "A").unwrap().offset_lag_max, expect(other));
    }

    /// `enabled`: the flow's own value, else a global one (the quirk), else false.
    #[test]
    fn enabled_resolution(global in proptest::option::of(any::<bool>()), flow in proptest::option::of(any::<bool>())) {
        let mut text = String::new();
        if let Some(g) = global { text.push_str(&format!("enabled = {g}\n")); }
        if let Some(f) = flow { text.push_str(&format!("A->B.enabled = {f}\n")); }
        let c = parse(&text);
        prop_assert_eq!(ab(&c).enabled, flow.or(global).unwrap_or(false));
        prop_assert_eq!(c.flow("B", "A").unwrap().enabled, global.unwrap_or(false));
    }

    /// Cluster client keys: the cluster's own value beats the global default for all its clients.
    #[test]
    fn cluster_client_keys_beat_global(global in proptest::option::of("(SSL|PLAINTEXT)"), own in proptest::option::of("(SASL_SSL|SASL_PLAINTEXT)")) {
        let mut text = String::new();
        if let Some(g) = &global { text.push_str(&format!("security.protocol = {g}\n")); }
        if let Some(o) = &own { text.push_str(&format!("A.security.protocol = {o}\n")); }
        let c = parse(&text);
        let f = ab(&c);
        let expect = own.clone().or(global.clone());
        for (_, ep) in f.clients.roles() {
            if ep.alias == "A" {
                prop_assert_eq!(ep.props.get("security.protocol"), expect.as_ref());
            } else {
                prop_assert_eq!(ep.props.get("security.protocol"), global.as_ref());
            }
        }
    }

    /// Nothing the user writes makes parsing panic: it is a Config or a one-line error.
    #[test]
    fn never_panics(extra in "[a-zA-Z.>=:\\- \n\\\\,*()?!]{0,80}") {
        match Config::parse(&format!("{BASE}{extra}"), "f") {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().contains('\n')),
        }
    }

    /// Secret values never reach Debug output or warnings.
    #[test]
    fn passwords_never_shown(pass in "[a-zA-Z0-9]{12,20}") {
        let c = parse(&format!(
            "A.ssl.key.password = {pass}\nA.sasl.password = {pass}\nB.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"{pass}\";\n"
        ));
        let shown = format!("{c:?}");
        prop_assert!(!shown.contains(&pass));
        for w in &c.warnings { prop_assert!(!w.message.contains(&pass)); }
        for f in &c.flows {
            for (_, ep) in f.clients.roles() {
                let shown = format!("{:?}", ep.redacted());
                prop_assert!(!shown.contains(&pass));
            }
        }
    }
}

#[test]
fn flow_keys_naming_unknown_clusters_warn_as_mm2_ignores_them() {
    let c = parse(
        "A->B.enabled = true\nkaynak->hedef.enabled = true\nA->A.topics = x\nA->eu.topics = y\n",
    );
    assert!(ab(&c).enabled);
    for key in ["kaynak->hedef.enabled", "A->A.topics", "A->eu.topics"] {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.message.contains("ignores them") && w.keys.iter().any(|k| k.key == key)),
            "{key}: {:?}",
            c.warnings
        );
    }
}

#[test]
fn pairs_run_by_parse_boolean_and_flows_by_trimmed_booleans() {
    // File 09's shape: `enabled = true ` is false to clusterPairs, but heartbeats (default on)
    // make the herder, and inside it ConfigDef trims: the flow replicates.
    let c = parse("A->B.enabled = true \nB->A.enabled = true \n");
    assert!(ab(&c).enabled && ab(&c).runs());
    assert!(c.flow("B", "A").unwrap().enabled);
    assert!(warned(&c, "ends in whitespace"), "{:?}", c.warnings);
    // File 25's shape: heartbeats `true ` read as false too: no herder at all, MM2 exits.
    let e = error(&format!(
        "{BASE}A->B.enabled = true \nemit.heartbeats.enabled=true \n"
    ));
    let msg = e.to_string();
    assert!(msg.contains("No source->target replication flows"), "{msg}");
    assert_eq!(e.key(), Some("emit.heartbeats.enabled"), "{msg}");
    // Without padding nothing is said.
    let c = parse("A->B.enabled = true\n");
    assert!(!warned(&c, "whitespace"));
    // Per-pair heartbeats decide for that pair only.
    let c = parse("emit.heartbeats.enabled = false\nA->B.emit.heartbeats.enabled = true\n");
    assert!(ab(&c).runs() && !c.flow("B", "A").unwrap().runs());
    assert!(!ab(&c).enabled);
}

#[test]
fn empty_separator_and_aliases_name_topics_as_mm2_does() {
    // Files 05, 14, 24: prefixless remote topics the pre-Identity way.
    let c = parse(
        "A->B.enabled = true\nreplication.policy.separator =\nsource.cluster.alias =\ntarget.cluster.alias =\n",
    );
    let f = ab(&c);
    assert_eq!(f.policy.remote_topic("orders"), "orders");
    assert_eq!(f.policy_settings.separator, "");
    // DefaultReplicationPolicy with "" everywhere: the internal separator is "" too.
    assert_eq!(f.internal_topics.checkpoints.name, "checkpointsinternal");
    assert_eq!(
        f.internal_topics.offset_syncs.name,
        "mm2-offset-syncsinternal"
    );
    // Java splits on "" between characters: a topic's "source" is its first character, which is
    // never the (empty) target alias, so nothing is a cycle.
    assert_eq!(f.policy.topic_source("Borders"), Some("B"));
    assert!(f.should_replicate_topic("Borders"));
    // Heartbeats carry the connector's aliases, as MM2 writes them.
    let hb = crate::heartbeat::HeartbeatSpec::from_config(f).unwrap();
    assert_eq!(hb.record_aliases, (String::new(), String::new()));
    let plain = parse("A->B.enabled = true\n");
    let hb = crate::heartbeat::HeartbeatSpec::from_config(ab(&plain)).unwrap();
    assert_eq!(hb.record_aliases, ("A".to_string(), "B".to_string()));
    // File 22: an empty separator with the aliases kept.
    let c = parse("A->B.enabled = true\nreplication.policy.separator =\n");
    assert_eq!(ab(&c).policy.remote_topic("orders"), "Aorders");
    assert_eq!(
        ab(&c).internal_topics.checkpoints.name,
        "Acheckpointsinternal"
    );
}

#[test]
fn bootstrap_servers_need_ports_as_in_kafka() {
    for ok in [
        "a:1",
        "SASL_SSL://a.b:9093",
        "[::1]:9092",
        "a:1, b:2,",
        "${X}:9092",
    ] {
        let text = format!("clusters = A, B\nA.bootstrap.servers = {ok}\nB.bootstrap.servers = b:1\nA->B.enabled = true\n");
        assert!(Config::parse(&text, "f").is_ok(), "{ok}");
    }
    for bad in ["a", "a:", "a:port", "a:99999", "${SOURCE}"] {
        let text = format!("clusters = A, B\nA.bootstrap.servers = {bad}\nB.bootstrap.servers = b:1\nA->B.enabled = true\n");
        let e = Config::parse(&text, "f").unwrap_err();
        assert_eq!(e.key(), Some("A.bootstrap.servers"), "{bad}: {e}");
    }
}

#[test]
fn the_file_is_iso_8859_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mm2.properties");
    // Byte 0xE9 ("é" in Latin-1, invalid UTF-8) in a comment, and UTF-8 "é" in a value.
    let mut bytes = b"# caf\xe9\n".to_vec();
    bytes.extend_from_slice(
        format!("{BASE}A->B.enabled = true\nA->B.topics = caf\u{e9}\n").as_bytes(),
    );
    std::fs::write(&path, bytes).unwrap();
    let c = Config::load(&path).unwrap();
    // MM2 sees the two UTF-8 bytes as two characters, and so does strait; it says so.
    assert_eq!(
        ab(&c).topics.patterns(),
        vec!["caf\u{c3}\u{a9}".to_string()]
    );
    assert!(warned(&c, "ISO-8859-1"), "{:?}", c.warnings);
    let c = parse("A->B.enabled = true\nA->B.topics = caf\\u00e9\n");
    assert_eq!(ab(&c).topics.patterns(), vec!["caf\u{e9}".to_string()]);
    assert!(!warned(&c, "ISO-8859-1"));
}

#[test]
fn jaas_logins_as_kafka_reads_them() {
    // Azure Event Hubs' tutorial: single quotes, `$ConnectionString`, `=` and `/` in the value.
    let c = parse(
        "A->B.enabled = true\nB.security.protocol = SASL_SSL\nB.sasl.mechanism = PLAIN\n\
         B.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username='$ConnectionString' password='Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=k3y=';\n",
    );
    let tp = &ab(&c).clients.target_producer.props;
    assert_eq!(tp["sasl.username"], "$ConnectionString");
    assert_eq!(
        tp["sasl.password"],
        "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=k3y="
    );
    // OAUTHBEARER with an OIDC token endpoint: librdkafka's client-credentials flow.
    let c = parse(
        "A->B.enabled = true\nA.security.protocol = SASL_SSL\nA.sasl.mechanism = OAUTHBEARER\n\
         A.sasl.oauthbearer.token.endpoint.url = https://idp.example/token\n\
         A.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"strait\" clientSecret=\"s3cret\" scope=\"kafka\";\n",
    );
    let sc = &ab(&c).clients.source_consumer.props;
    assert_eq!(sc["sasl.oauthbearer.method"], "oidc");
    assert_eq!(
        sc["sasl.oauthbearer.token.endpoint.url"],
        "https://idp.example/token"
    );
    assert_eq!(sc["sasl.oauthbearer.client.id"], "strait");
    assert_eq!(sc["sasl.oauthbearer.client.secret"], "s3cret");
    assert_eq!(sc["sasl.oauthbearer.scope"], "kafka");
    // Unsecured JWTs (test clusters) map to librdkafka's own token builder.
    let c = parse(
        "A->B.enabled = true\nA.security.protocol = SASL_PLAINTEXT\nA.sasl.mechanism = OAUTHBEARER\n\
         A.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";\n",
    );
    let sc = &ab(&c).clients.source_consumer;
    assert_eq!(sc.props["sasl.oauthbearer.config"], "principal=admin");
    assert_eq!(sc.props["enable.sasl.oauthbearer.unsecure.jwt"], "true");
    // AWS MSK IAM: one clear error naming what to use instead.
    let e = error(&format!(
        "{BASE}A->B.enabled = true\nA.sasl.mechanism = AWS_MSK_IAM\nA.sasl.jaas.config = software.amazon.msk.auth.iam.IAMLoginModule required;\n"
    ));
    let msg = e.to_string();
    assert_eq!(e.key(), Some("A.sasl.jaas.config"));
    assert!(
        msg.contains("AWS MSK IAM") && msg.contains("SCRAM"),
        "{msg}"
    );
}

#[test]
fn config_providers_resolve_file_env_and_dir_values() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("kafka.properties");
    std::fs::write(&secrets, "password = pr0vided\n").unwrap();
    let mounted = dir.path().join("mounted");
    std::fs::create_dir(&mounted).unwrap();
    std::fs::write(mounted.join("username"), "mm2user").unwrap();
    std::env::set_var("STRAIT_CONFIG_TEST_BOOTSTRAP", "b.example:9093");
    let text = format!(
        "{BASE}A->B.enabled = true\nconfig.providers = file, env, dir\n\
         config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
         config.providers.env.class = org.apache.kafka.common.config.provider.EnvVarConfigProvider\n\
         config.providers.dir.class = org.apache.kafka.common.config.provider.DirectoryConfigProvider\n\
         config.providers.dir.param.allowed.paths = {dir}\n\
         B.bootstrap.servers = ${{env:STRAIT_CONFIG_TEST_BOOTSTRAP}}\n\
         A.sasl.mechanism = SCRAM-SHA-512\n\
         A.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"${{dir:{mounted}:username}}\" password=\"${{file:{secrets}:password}}\";\n\
         A.consumer.client.rack = ${{UNDECLARED}}\n",
        dir = dir.path().display(),
        mounted = mounted.display(),
        secrets = secrets.display(),
    );
    let c = Config::parse(&text, "mm2.properties").unwrap();
    assert_eq!(c.cluster("B").unwrap().bootstrap_servers, "b.example:9093");
    let f = ab(&c);
    let sc = &f.clients.source_consumer;
    assert_eq!(sc.props["sasl.username"], "mm2user");
    assert_eq!(sc.props["sasl.password"], "pr0vided");
    let origin = &f.clients.origins["source_consumer"]["sasl.password"];
    assert_eq!(origin.at.key, "A.sasl.jaas.config");
    assert_eq!(
        origin.providers,
        vec!["dir".to_string(), "file".to_string()]
    );
    // `${UNDECLARED}` names no provider: used as written, with a warning, as in MM2.
    assert!(
        warned(&c, "no declared config provider"),
        "{:?}",
        c.warnings
    );
    assert!(!format!("{c:?}").contains("pr0vided"));
    assert!(!c.warnings.iter().any(|w| w.message.contains("pr0vided")));
    // A missing key is one sentence naming the key and the provider, never a value.
    let e = error(&text.replace(":password}", ":nosuchkey}"));
    let msg = e.to_string();
    assert_eq!(e.key(), Some("A.sasl.jaas.config"));
    assert!(
        msg.contains("provider `file`") && msg.contains("nosuchkey"),
        "{msg}"
    );
    assert!(
        !msg.contains("pr0vided") && !msg.contains("mm2user"),
        "{msg}"
    );
    // A file that is not on this machine: an error for run, a warning for check.
    let away = text.replace(
        &secrets.display().to_string(),
        "/nonexistent/kafka.properties",
    );
    assert!(Config::parse(&away, "f").is_err());
    let c = Config::parse_with(&away, "f", LocalFiles::MayBeMissing).unwrap();
    assert!(
        warned(&c, "/nonexistent/kafka.properties does not exist"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn java_stores_become_pem_in_memory() {
    use super::stores::tests::{write_fixture, KP, SP};
    let dir = tempfile::tempdir().unwrap();
    let trust = write_fixture(dir.path(), "trust.jks");
    let keys = write_fixture(dir.path(), "client.jks");
    let p12 = write_fixture(dir.path(), "trust.p12");
    let text = format!(
        "{BASE}A->B.enabled = true\nA.security.protocol = SSL\n\
         A.ssl.truststore.location = {trust}\nA.ssl.truststore.password = {SP}\n\
         A.ssl.keystore.location = {keys}\nA.ssl.keystore.password = {SP}\nA.ssl.key.password = {KP}\n\
         B.security.protocol = SSL\nB.ssl.truststore.type = PKCS12\n\
         B.ssl.truststore.location = {p12}\nB.ssl.truststore.password = {SP}\n",
        trust = trust.display(),
        keys = keys.display(),
        p12 = p12.display(),
    );
    let c = Config::parse(&text, "mm2.properties").unwrap();
    let f = ab(&c);
    let sc = &f.clients.source_consumer.props;
    assert!(sc["ssl.ca.pem"].starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(sc["ssl.certificate.pem"].contains("-----BEGIN CERTIFICATE-----"));
    assert!(sc["ssl.key.pem"].starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!sc.contains_key("ssl.key.password") && !sc.contains_key("ssl.keystore.location"));
    assert!(f.clients.target_producer.props["ssl.ca.pem"].contains("BEGIN CERTIFICATE"));
    assert_eq!(
        f.clients.origins["source_consumer"]["ssl.key.pem"]
            .store
            .as_deref(),
        Some(keys.to_str().unwrap())
    );
    // Each store read once, and described.
    assert_eq!(c.stores.len(), 3, "{:?}", c.stores);
    let ks = c.stores.iter().find(|s| s.role == "keystore").unwrap();
    assert!(
        ks.read && ks.certificates[0].subject.contains("CN=client"),
        "{ks:?}"
    );
    assert!(!c
        .warnings
        .iter()
        .any(|w| w.message.contains("truststore.password")));
    // No secret anywhere a user could see it.
    let shown = format!("{c:?}");
    for secret in [SP, KP, "PRIVATE KEY-----\nMI"] {
        assert!(!shown.contains(secret), "{secret}");
    }
    // A wrong password: one sentence naming the key and the file, not the password.
    let e = error(&text.replace(
        &format!("A.ssl.key.password = {KP}"),
        "A.ssl.key.password = Wr0ng-Pass",
    ));
    let msg = e.to_string();
    assert_eq!(e.key(), Some("A.ssl.keystore.location"), "{msg}");
    assert!(
        msg.contains(keys.to_str().unwrap()) && msg.contains("password"),
        "{msg}"
    );
    assert!(!msg.contains("Wr0ng-Pass") && !msg.contains(SP), "{msg}");
    // A corrupt store.
    std::fs::write(&trust, b"not a keystore at all").unwrap();
    let e = error(&text);
    assert_eq!(e.key(), Some("A.ssl.truststore.location"), "{e}");
    // Not on this machine: an error for run, a warning for check.
    let away = text.replace(&keys.display().to_string(), "/nonexistent/client.jks");
    let away = away.replace(&trust.display().to_string(), &p12.display().to_string());
    let away = away.replace(
        "A.ssl.truststore.location",
        "A.ssl.truststore.type = PKCS12\nA.ssl.truststore.location",
    );
    assert!(Config::parse(&away, "f")
        .unwrap_err()
        .to_string()
        .contains("no such file"));
    let c = Config::parse_with(&away, "f", LocalFiles::MayBeMissing).unwrap();
    assert!(warned(&c, "not on this machine"), "{:?}", c.warnings);
    assert!(!ab(&c)
        .clients
        .source_consumer
        .props
        .contains_key("ssl.key.pem"));
}

#[test]
fn a_source_consumer_starting_at_the_end_is_warned_about() {
    let c = parse("A->B.enabled = true\nA.consumer.auto.offset.reset = latest\n");
    assert!(
        warned(
            &c,
            "`A.consumer.auto.offset.reset` (line 5) makes the enabled flow A->B start"
        ),
        "{:?}",
        c.warnings
    );
    assert!(!warned(
        &parse("A->B.enabled = true\n"),
        "auto.offset.reset"
    ));
    assert!(!warned(
        &parse("A->B.enabled = true\nA.consumer.auto.offset.reset = earliest\n"),
        "auto.offset.reset"
    ));
}

#[test]
fn region_watch_settings_are_read_and_checked() {
    let d = parse("").region_watch;
    assert_eq!(d.probe_every, Duration::from_millis(100));
    assert_eq!(d.down_after, Duration::from_secs(3));
    let c = parse(
        "strait.region.probe.interval.ms = 250\nstrait.region.probe.timeout.ms = 2000\nstrait.region.down.after.ms = 5000\n",
    )
    .region_watch;
    assert_eq!(c.probe_every, Duration::from_millis(250));
    assert_eq!(c.probe_timeout, Duration::from_secs(2));
    assert_eq!(c.down_after, Duration::from_secs(5));
    assert_eq!(c.verdict_within(), Duration::from_millis(7_250));
    let e = error(&format!("{BASE}strait.region.down.after.ms = soon\n")).to_string();
    assert!(
        e.contains("mm2.properties")
            && e.contains("strait.region.down.after.ms")
            && e.contains("`soon`"),
        "{e}"
    );
    let e = error(&format!("{BASE}strait.region.probes = 3\n")).to_string();
    assert!(e.contains("strait.region.probe.interval.ms"), "{e}");
}

#[test]
fn exactly_once_is_decided_as_mm2_decides_it() {
    let eo = |extra: &str, s: &str, t: &str| {
        parse(extra)
            .flow(s, t)
            .unwrap()
            .exactly_once
            .as_ref()
            .map(|e| (e.transaction_interval, e.because.key.clone()))
    };
    assert_eq!(eo("", "A", "B"), None, "off by default");
    assert_eq!(
        eo("A->B.exactly.once.support = required\n", "A", "B"),
        Some((
            Duration::from_millis(100),
            "A->B.exactly.once.support".into()
        ))
    );
    assert_eq!(eo("A->B.exactly.once.support = enabled\n", "B", "A"), None);
    // MM2's way: the target's worker has it, and flows request it by default.
    let worker = "B.exactly.once.source.support = enabled\n";
    assert_eq!(
        eo(worker, "A", "B").map(|e| e.1),
        Some("B.exactly.once.source.support".into())
    );
    assert_eq!(eo(worker, "B", "A"), None, "A's worker does not have it");
    assert!(eo("exactly.once.source.support = enabled\n", "B", "A").is_some());
    assert_eq!(
        eo(
            &format!("{worker}A->B.exactly.once.support = disabled\n"),
            "A",
            "B"
        ),
        None
    );
    assert_eq!(
        eo("B.exactly.once.source.support = preparing\n", "A", "B"),
        None
    );
    // Transaction boundaries: `poll` is strait's 100 ms; `interval` defaults to the worker's
    // offset flush interval.
    let interval = "exactly.once.support = required\ntransaction.boundary = interval\n";
    assert_eq!(
        eo(interval, "A", "B").map(|e| e.0),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        eo(
            &format!("{interval}A->B.transaction.boundary.interval.ms = 500\n"),
            "A",
            "B"
        )
        .map(|e| e.0),
        Some(Duration::from_millis(500))
    );
    let c = parse("A->B.exactly.once.support = required\n");
    assert!(!warned(&c, "exactly.once"), "{:?}", c.warnings);
}

#[test]
fn exactly_once_settings_that_cannot_work_are_errors_naming_their_key() {
    for (extra, key, needle) in [
        (
            "A->B.exactly.once.support = always\n",
            "A->B.exactly.once.support",
            "requested, required, enabled or disabled",
        ),
        (
            "B.exactly.once.source.support = on\n",
            "B.exactly.once.source.support",
            "enabled, preparing or disabled",
        ),
        (
            "A->B.exactly.once.support = required\nA->B.transaction.boundary = connector\n",
            "A->B.transaction.boundary",
            "poll or interval",
        ),
        (
            "A->B.exactly.once.support = required\nA->B.consumer.isolation.level = read_uncommitted\n",
            "A->B.exactly.once.support",
            "read_committed",
        ),
    ] {
        let e = error(&format!("{BASE}{extra}")).to_string();
        assert!(e.contains(key) && e.contains(needle), "{extra}: {e}");
    }
}

#[test]
fn the_data_path_is_batches_unless_a_flow_asks_for_records() {
    assert_eq!(ab(&parse("")).records_path, None);
    assert_eq!(
        ab(&parse("strait.data.path = batches\n")).records_path,
        None
    );
    let why = ab(&parse("A->B.strait.data.path = Records\n"))
        .records_path
        .clone()
        .expect("records");
    assert!(
        why.contains("A->B.strait.data.path") && why.contains("line"),
        "{why}"
    );
    let why = ab(&parse("strait.data.path = records\n"))
        .records_path
        .clone();
    assert!(why.is_some(), "a top-level value is every flow's default");
    let e = error(&format!("{BASE}A->B.strait.data.path = bytes\n")).to_string();
    assert!(
        e.contains("A->B.strait.data.path") && e.contains("`batches`") && e.contains("`records`"),
        "{e}"
    );
}
