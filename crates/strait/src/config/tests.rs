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
         emit.heartbeats.enabled = false\n",
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
fn unhonoured_keys_are_one_warning_listing_them_all() {
    let c = parse(
        "key.converter = x\ntransforms = t\nA->B.exactly.once.support = required\n\
         dedicated.mode.enable.internal.rest = true\nA.offset.storage.replication.factor = 1\n\
         listeners = http://:8083\nconfig.providers = file\n",
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
        "A->B.exactly.once.support",
        "dedicated.mode.enable.internal.rest",
        "A.offset.storage.replication.factor",
        "listeners",
        "config.providers",
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
            format!("{BASE}A->eu.enabled = true\n"),
            4,
            "A->eu.enabled",
            "`eu`",
        ),
        (
            format!("{BASE}A->A.enabled = true\n"),
            4,
            "A->A.enabled",
            "itself",
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
            format!("{BASE}A.ssl.keystore.location = /k.jks\n"),
            4,
            "A.ssl.keystore.location",
            "ssl.certificate.location",
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
