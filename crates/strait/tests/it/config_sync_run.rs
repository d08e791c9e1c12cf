//! Periodic topic config sync end to end, with `strait run` as a process (MM2-SPEC §5 "Config
//! sync"): a remote topic is created with its source's configs minus the excluded ones, follows
//! later source changes, has manual edits reverted every cycle, and keeps excluded properties
//! that were set on it by hand. `config.properties.exclude` replaces MM2's default list (§1.6)
//! rather than adding to it.
//!
//! The sandbox broker describes only the configs a topic was created or altered with, so a config
//! that is absent from a description was never set on the topic.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use strait::kafka::{AlterOp, TopicSpec};
use strait_sandbox::Cluster;

const TOPIC: &str = "orders";
const REMOTE: &str = "us-east.orders";
/// How long strait gets for anything that one sync cycle (1 s here) should do.
const WITHIN: Duration = Duration::from_secs(20);

/// The sandbox config with topics and configs re-synced every second, then `extra`.
fn write_config(
    dir: &tempfile::TempDir,
    east: &str,
    west: &str,
    extra: &str,
) -> std::path::PathBuf {
    mm2_config(
        dir,
        east,
        west,
        &format!(
            "refresh.topics.interval.seconds = 1\n\
             sync.topic.configs.interval.seconds = 1\n{extra}"
        ),
    )
}

fn get<'a>(cfg: &'a BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    cfg.get(k).map(String::as_str)
}

/// The configs set on `topic` on `c` now (an error when the topic does not exist).
async fn configs(c: &Cluster, topic: &str) -> Result<BTreeMap<String, String>, String> {
    let entries = admin(c)
        .topic_config_entries(topic)
        .await
        .map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .filter(|e| !c.is_kafka() || e.source == strait::kafka::ConfigSource::DynamicTopic)
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect())
}

/// Poll `topic`'s configs on `c` until `ok` holds, and return them; panic with `what` and the
/// last description (or error) after `within`.
async fn wait_for_configs(
    c: &Cluster,
    topic: &str,
    what: &str,
    within: Duration,
    ok: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = configs(c, topic).await;
        if let Ok(cfg) = &last {
            if ok(cfg) {
                return cfg.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {topic}: {what} not seen within {within:?}; last description: {last:?}",
            c.name()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn alter(c: &Cluster, topic: &str, ops: &[AlterOp]) {
    admin(c)
        .alter_topic_configs(topic, ops)
        .await
        .unwrap_or_else(|e| panic!("{}: alter configs of {topic} {ops:?}: {e}", c.name()));
}

/// Freeze `strait` (SIGSTOP) while `edit` runs and check the edit is visible before letting it
/// go on (SIGCONT), so that what strait does next starts from the edited state.
async fn edit_while_frozen(
    strait: &Running,
    c: &Cluster,
    topic: &str,
    ops: &[AlterOp],
    expect: &[(&str, &str)],
) {
    signal(strait, "-STOP");
    alter(c, topic, ops).await;
    // On Apache Kafka the controller applies the change and the brokers learn it from the
    // metadata log a moment later, so a describe right after the alter can still show the old value.
    wait_for_configs(
        c,
        topic,
        &format!("the manual edit {expect:?}"),
        Duration::from_secs(10),
        |cfg| expect.iter().all(|(k, v)| get(cfg, k) == Some(*v)),
    )
    .await;
    signal(strait, "-CONT");
}

on_both_engines! {
async fn config_sync_follows_the_source_and_reverts_manual_edits(engine) {
    init_logs();
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    admin(east)
        .create_topics(&[TopicSpec::new(TOPIC, 1, 1)
            .config("retention.ms", "3600000")
            .config("min.insync.replicas", "1")])
        .await
        .expect("create orders on us-east");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "config.properties.exclude = min\\.insync\\.replicas\n",
    );
    let strait = spawn_run(&cfg);

    // 1. The remote topic is created with the source's configs, minus the excluded one.
    let remote = wait_for_configs(west, REMOTE, "retention.ms=3600000", WITHIN, |c| {
        get(c, "retention.ms") == Some("3600000")
    })
    .await;
    assert_eq!(
        get(&remote, "min.insync.replicas"),
        None,
        "min.insync.replicas is excluded and must not be copied: {remote:?}"
    );

    // 2. A source change reaches the remote at the next sync.
    alter(east, TOPIC, &[AlterOp::set("retention.ms", "7200000")]).await;
    let remote = wait_for_configs(
        west,
        REMOTE,
        "the source's new retention.ms=7200000",
        WITHIN,
        |c| get(c, "retention.ms") == Some("7200000"),
    )
    .await;
    assert_eq!(
        get(&remote, "min.insync.replicas"),
        None,
        "config sync must not copy the excluded min.insync.replicas either: {remote:?}"
    );

    // 3. A manual edit of a synced property on the remote is reverted.
    edit_while_frozen(
        &strait,
        west,
        REMOTE,
        &[AlterOp::set("retention.ms", "86400000")],
        &[("retention.ms", "86400000")],
    )
    .await;
    wait_for_configs(
        west,
        REMOTE,
        "retention.ms reverted to the source's 7200000 after a manual edit",
        WITHIN,
        |c| get(c, "retention.ms") == Some("7200000"),
    )
    .await;

    // 4. An excluded property set by hand on the remote is left alone. It is edited together
    // with retention.ms: config sync sends all of a topic's operations in one request, so once
    // retention.ms is back, a sync that would have touched min.insync.replicas has happened.
    edit_while_frozen(
        &strait,
        west,
        REMOTE,
        &[
            AlterOp::set("min.insync.replicas", "2"),
            AlterOp::set("retention.ms", "86400000"),
        ],
        &[("min.insync.replicas", "2"), ("retention.ms", "86400000")],
    )
    .await;
    let remote = wait_for_configs(
        west,
        REMOTE,
        "retention.ms reverted to 7200000 (second manual edit)",
        WITHIN,
        |c| get(c, "retention.ms") == Some("7200000"),
    )
    .await;
    assert_eq!(
        get(&remote, "min.insync.replicas"),
        Some("2"),
        "the excluded min.insync.replicas set by hand on the remote must be left alone \
         (the source has 1): {remote:?}"
    );
    // ... and stays so over further cycles (each reverting another edit of retention.ms).
    for round in 0..2 {
        edit_while_frozen(
            &strait,
            west,
            REMOTE,
            &[AlterOp::set("retention.ms", "86400000")],
            &[("retention.ms", "86400000")],
        )
        .await;
        let remote = wait_for_configs(
            west,
            REMOTE,
            &format!("retention.ms reverted to 7200000 (round {round})"),
            WITHIN,
            |c| get(c, "retention.ms") == Some("7200000"),
        )
        .await;
        assert_eq!(
            get(&remote, "min.insync.replicas"),
            Some("2"),
            "round {round}: the hand-set excluded property was changed: {remote:?}"
        );
    }
    // The source was never touched by the sync.
    let source = configs(east, TOPIC).await.expect("describe source configs");
    assert_eq!(get(&source, "retention.ms"), Some("7200000"), "{source:?}");
    assert_eq!(get(&source, "min.insync.replicas"), Some("1"), "{source:?}");
}
}

on_both_engines! {
/// Without `config.properties.exclude`, MM2's default list applies (`min.insync.replicas`,
/// `unclean.leader.election.enable`, ...); a flow that sets its own list replaces the defaults,
/// so what they excluded is copied and what the list names is not.
async fn exclude_list_defaults_and_replacement(engine) {
    init_logs();
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let spec = |name: &str| {
        TopicSpec::new(name, 1, 1)
            .config("retention.ms", "3600000")
            .config("retention.bytes", "1048576")
            .config("min.insync.replicas", "1")
            .config("unclean.leader.election.enable", "true")
    };
    admin(east)
        .create_topics(&[spec(TOPIC)])
        .await
        .expect("create orders on us-east");
    admin(west)
        .create_topics(&[spec("payments")])
        .await
        .expect("create payments on us-west");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "us-west->us-east.enabled = true\n\
         us-west->us-east.topics = payments\n\
         us-west->us-east.config.properties.exclude = retention\\.bytes\n",
    );
    let strait = spawn_run(&cfg);

    // Default list (us-east -> us-west).
    let remote = wait_for_configs(west, REMOTE, "retention.ms=3600000", WITHIN, |c| {
        get(c, "retention.ms") == Some("3600000")
    })
    .await;
    assert_eq!(
        get(&remote, "retention.bytes"),
        Some("1048576"),
        "{remote:?}"
    );
    for k in ["min.insync.replicas", "unclean.leader.election.enable"] {
        assert_eq!(
            get(&remote, k),
            None,
            "{k} is in MM2's default exclude list and must not be copied: {remote:?}"
        );
    }

    // Own list (us-west -> us-east): the defaults no longer apply.
    let remote = wait_for_configs(
        east,
        "us-west.payments",
        "retention.ms=3600000",
        WITHIN,
        |c| get(c, "retention.ms") == Some("3600000"),
    )
    .await;
    assert_eq!(
        get(&remote, "retention.bytes"),
        None,
        "retention.bytes is excluded by the flow's own list: {remote:?}"
    );
    for (k, v) in [
        ("min.insync.replicas", "1"),
        ("unclean.leader.election.enable", "true"),
    ] {
        assert_eq!(
            get(&remote, k),
            Some(v),
            "a flow's own config.properties.exclude replaces the default list, so {k} is \
             copied: {remote:?}"
        );
    }

    // The same lists hold for the periodic sync: a hand edit of an excluded property survives
    // a cycle that reverts a synced one, on both flows.
    for (c, topic, excluded, synced) in [
        (west, REMOTE, "min.insync.replicas", "retention.bytes"),
        (
            east,
            "us-west.payments",
            "retention.bytes",
            "min.insync.replicas",
        ),
    ] {
        edit_while_frozen(
            &strait,
            c,
            topic,
            &[AlterOp::set(excluded, "2"), AlterOp::set(synced, "2")],
            &[(excluded, "2"), (synced, "2")],
        )
        .await;
        let want = if synced == "retention.bytes" {
            "1048576"
        } else {
            "1"
        };
        let remote = wait_for_configs(
            c,
            topic,
            &format!("{synced} reverted to the source's {want}"),
            WITHIN,
            |cfg| get(cfg, synced) == Some(want),
        )
        .await;
        assert_eq!(
            get(&remote, excluded),
            Some("2"),
            "{topic}: the excluded {excluded} set by hand must be left alone: {remote:?}"
        );
    }
}
}
