//! Replication topologies on sandbox regions (MM2-SPEC §2): active-active, a three-region full
//! mesh, the identity policy, and topics created while a flow runs. Every test checks what
//! arrived record by record, and which topics exist (cycles never replicated back, internal
//! topics never replicated at all).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;
use strait::policy::{PolicyKind, ReplicationPolicy};
use strait::replicate;
use strait_sandbox::{Cluster, Sandbox};

/// The refresh interval `flow_spec` configures.
const REFRESH: Duration = Duration::from_secs(2);

/// Running flows, stopped when dropped: a failed assertion must not leave copy loops behind,
/// or the runtime's shutdown waits for them forever and the test hangs instead of failing.
struct Flows(Vec<replicate::RunningFlow>);

impl Flows {
    fn start(specs: impl IntoIterator<Item = replicate::FlowSpec>) -> Self {
        Self(
            specs
                .into_iter()
                .map(|s| replicate::start(s, strait::stop::CancellationToken::new()))
                .collect(),
        )
    }

    fn assert_running(&self) {
        for f in &self.0 {
            assert!(!f.is_finished(), "flow {} ended on its own", f.name);
        }
    }

    /// Stop every flow and expect each to end cleanly.
    async fn stop(mut self) {
        let flows = std::mem::take(&mut self.0);
        for f in &flows {
            f.stop();
        }
        for f in flows {
            let name = f.name.clone();
            f.join()
                .await
                .unwrap_or_else(|e| panic!("{name} stops cleanly: {e}"));
        }
    }
}

impl Drop for Flows {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        for f in &self.0 {
            f.stop();
        }
        // Give the flow tasks (on the runtime's workers) time to pass the stop to their copy
        // loops before the runtime is torn down.
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The topics on `c` that are neither internal nor heartbeats: the data topics.
async fn data_topics(c: &Cluster) -> BTreeSet<String> {
    let p = ReplicationPolicy::default_policy();
    topic_names(c)
        .await
        .into_iter()
        .filter(|t| !p.is_internal_topic(t) && !p.is_heartbeats_topic(t))
        .collect()
}

fn set(names: &[String]) -> BTreeSet<String> {
    names.iter().cloned().collect()
}

/// No topic on `c` is a copy of an internal topic (`<alias>.mm2-offset-syncs...`,
/// `<alias>.__consumer_offsets`, ...), for any of the `aliases`, at any depth.
async fn assert_no_internal_copies(c: &Cluster, aliases: &[&str]) {
    let p = ReplicationPolicy::default_policy();
    for t in topic_names(c).await {
        let mut name = t.as_str();
        while let Some(rest) = aliases
            .iter()
            .find_map(|a| name.strip_prefix(a).and_then(|r| r.strip_prefix('.')))
        {
            assert!(
                !p.is_internal_topic(rest) && !rest.starts_with("__"),
                "{}: internal topic {rest:?} was replicated as {t:?}",
                c.name()
            );
            name = rest;
        }
    }
}

/// `remote` on `dst` holds exactly the records of `topic` on `src`: same partition, same order,
/// same key, value, headers and timestamp, each once (no faults here, so no duplicates either).
async fn assert_copied(
    src: &Cluster,
    topic: &str,
    dst: &Cluster,
    remote: &str,
    partitions: i32,
    n: usize,
) {
    let (source, copies) = tokio::join!(
        read_all(src, topic, partitions, n),
        read_all(dst, remote, partitions, n)
    );
    assert_eq!(source.len(), n, "{}: {topic} holds {n} records", src.name());
    assert_eq!(
        copies.len(),
        n,
        "{}: {remote} holds exactly the {n} records of {}: {topic}",
        dst.name(),
        src.name()
    );
    let src_parts = by_partition(&source);
    let dst_parts = by_partition(&copies);
    assert_eq!(
        src_parts.keys().collect::<Vec<_>>(),
        dst_parts.keys().collect::<Vec<_>>(),
        "{remote}: same partitions used"
    );
    for (p, recs) in &src_parts {
        let got = &dst_parts[p];
        assert_eq!(got.len(), recs.len(), "{remote}-{p}: record count");
        for (a, b) in recs.iter().zip(got.iter()) {
            assert_eq!(
                (&a.key, &a.value, &a.headers, a.timestamp),
                (&b.key, &b.value, &b.headers, b.timestamp),
                "{}: {remote}-{p} differs at upstream offset {}",
                dst.name(),
                a.offset
            );
        }
    }
}

on_both_engines! {
async fn active_active_copies_both_ways_without_cycles_or_internal_topics(engine) {
    // Different counts on each side, so a mix-up between the two directions shows.
    const N_EAST: usize = 2_000;
    const N_WEST: usize = 1_500;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 3).await;
    create_topic(west, "orders", 3).await;
    let flows = Flows::start([flow_spec(east, west, &[]), flow_spec(west, east, &[])]);
    produce_seq(east, "orders", 3, N_EAST).await;
    produce_seq(west, "orders", 3, N_WEST).await;
    wait_for_count(
        west,
        "us-east.orders",
        3,
        N_EAST as i64,
        Duration::from_secs(60),
    )
    .await;
    wait_for_count(
        east,
        "us-west.orders",
        3,
        N_WEST as i64,
        Duration::from_secs(60),
    )
    .await;
    // Two refreshes on both flows: each has seen the other's remote topic by now.
    tokio::time::sleep(REFRESH * 2 + Duration::from_millis(500)).await;
    flows.assert_running();
    flows.stop().await;

    assert_copied(east, "orders", west, "us-east.orders", 3, N_EAST).await;
    assert_copied(west, "orders", east, "us-west.orders", 3, N_WEST).await;
    // The local topics got nothing from the other side.
    assert_eq!(read_all(east, "orders", 3, N_EAST).await.len(), N_EAST);
    assert_eq!(read_all(west, "orders", 3, N_WEST).await.len(), N_WEST);

    let (east_topics, west_topics) = (topic_names(east).await, topic_names(west).await);
    for (c, topics) in [(east, &east_topics), (west, &west_topics)] {
        for t in topics {
            assert!(
                !t.starts_with("us-east.us-west.") && !t.starts_with("us-west.us-east."),
                "{}: cycle: {t} (all topics: {topics:?})",
                c.name()
            );
        }
        assert_no_internal_copies(c, &["us-east", "us-west"]).await;
    }
    assert_eq!(
        data_topics(east).await,
        set(&["orders".into(), "us-west.orders".into()]),
        "us-east: all topics {east_topics:?}"
    );
    assert_eq!(
        data_topics(west).await,
        set(&["orders".into(), "us-east.orders".into()]),
        "us-west: all topics {west_topics:?}"
    );
    // Each flow's offset syncs live on its source, and only there.
    assert!(east_topics.contains("mm2-offset-syncs.us-west.internal"));
    assert!(west_topics.contains("mm2-offset-syncs.us-east.internal"));
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_region_full_mesh_never_sends_a_topic_home() {
    const REGIONS: [&str; 3] = ["us-east", "us-west", "eu-west"];
    const N: [usize; 3] = [1_200, 900, 600];
    let sb = Sandbox::start(&REGIONS).await.unwrap();
    let cluster = |a: &str| sb.cluster(a).unwrap();
    for r in REGIONS {
        create_topic(cluster(r), "orders", 2).await;
    }
    let mut specs = Vec::new();
    for s in REGIONS {
        for t in REGIONS {
            if s != t {
                specs.push(flow_spec(cluster(s), cluster(t), &[]));
            }
        }
    }
    let flows = Flows::start(specs);
    for (r, n) in REGIONS.iter().zip(N) {
        produce_seq(cluster(r), "orders", 2, n).await;
    }
    // One hop: `<other>.orders` everywhere. Two hops (MM2 copies once per simple path, §2.3):
    // `<via>.<origin>.orders` on the third region, discovered at a later refresh.
    let policy = ReplicationPolicy::default_policy();
    let mut expected = Vec::new();
    for (oi, origin) in REGIONS.iter().enumerate() {
        for via in REGIONS.iter().filter(|v| *v != origin) {
            expected.push((oi, *via, policy.format_remote_topic(origin, "orders")));
            for dst in REGIONS.iter().filter(|d| *d != origin && *d != via) {
                let two_hops =
                    policy.format_remote_topic(via, &policy.format_remote_topic(origin, "orders"));
                expected.push((oi, *dst, two_hops));
            }
        }
    }
    for (oi, at, topic) in &expected {
        wait_for_count(
            cluster(at),
            topic,
            2,
            N[*oi] as i64,
            Duration::from_secs(60),
        )
        .await;
    }
    // Two more refreshes on every flow: anything that would cycle has had its chance.
    tokio::time::sleep(REFRESH * 2 + Duration::from_millis(500)).await;
    flows.assert_running();
    flows.stop().await;

    for alias in REGIONS {
        let c = cluster(alias);
        let topics = topic_names(c).await;
        for t in &topics {
            assert!(
                !policy.is_cycle(t, alias),
                "{alias}: {t} came back to its origin (all topics: {topics:?})"
            );
        }
        assert_no_internal_copies(c, &REGIONS).await;
        let mut want: BTreeSet<String> = expected
            .iter()
            .filter(|(_, at, _)| *at == alias)
            .map(|(_, _, t)| t.clone())
            .collect();
        want.insert("orders".into());
        assert_eq!(
            data_topics(c).await,
            want,
            "{alias}: exactly its own, the one-hop and the two-hop copies (all: {topics:?})"
        );
        for other in REGIONS.iter().filter(|o| **o != alias) {
            assert!(topics.contains(&format!("{other}.orders")), "{alias}");
        }
    }
    // Content: every copy, one hop or two, holds exactly the origin's records.
    futures::future::join_all(expected.iter().map(|(oi, at, topic)| {
        assert_copied(
            cluster(REGIONS[*oi]),
            "orders",
            cluster(at),
            topic,
            2,
            N[*oi],
        )
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identity_policy_keeps_topic_names() {
    const N: usize = 2_000;
    let sb = Sandbox::start(&["us-east", "us-west"]).await.unwrap();
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 3).await;
    let mut spec = flow_spec(east, west, &["orders"]);
    spec.policy = ReplicationPolicy::new(PolicyKind::Identity, None, true, Some("us-east"));
    let flow = Flows::start([spec]);
    produce_seq(east, "orders", 3, N).await;
    wait_for_count(west, "orders", 3, N as i64, Duration::from_secs(60)).await;
    tokio::time::sleep(REFRESH + Duration::from_millis(500)).await;
    flow.assert_running();
    flow.stop().await;

    assert_copied(east, "orders", west, "orders", 3, N).await;
    let topics = topic_names(west).await;
    assert!(
        !topics.contains("us-east.orders"),
        "identity: no prefixed copy: {topics:?}"
    );
    assert_eq!(
        data_topics(west).await,
        set(&["orders".into()]),
        "us-west: all topics {topics:?}"
    );
    let info = admin(west).topics(Some("orders")).await.unwrap();
    assert_eq!(info[0].partitions, 3, "same partition count");
    // The source's own data is untouched.
    assert_eq!(read_all(east, "orders", 3, N).await.len(), N);
}

on_both_engines! {
async fn topic_created_while_running_is_replicated_within_a_refresh(engine) {
    const N: usize = 1_500;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 2).await;
    let flow = Flows::start([flow_spec(east, west, &[])]);
    produce_seq(east, "orders", 2, N).await;
    wait_for_count(west, "us-east.orders", 2, N as i64, Duration::from_secs(60)).await;
    assert!(
        !topic_names(west).await.contains("us-east.invoices"),
        "not there before it exists"
    );

    let created = Instant::now();
    create_topic(east, "invoices", 3).await;
    produce_seq(east, "invoices", 3, N).await;
    let within = REFRESH * 2 + Duration::from_secs(10);
    wait_for_count(west, "us-east.invoices", 3, N as i64, within).await;
    let took = created.elapsed();
    assert!(took <= within, "invoices replicated after {took:?}");

    // The topic set changed under the running consumer: `orders` keeps flowing, nothing lost or
    // copied twice across the resubscription.
    produce_seq(east, "orders", 2, N).await;
    wait_for_count(
        west,
        "us-east.orders",
        2,
        2 * N as i64,
        Duration::from_secs(30),
    )
    .await;
    flow.assert_running();
    flow.stop().await;

    let info = admin(west).topics(Some("us-east.invoices")).await.unwrap();
    assert_eq!(info[0].partitions, 3, "same partition count");
    assert_copied(east, "invoices", west, "us-east.invoices", 3, N).await;
    assert_copied(east, "orders", west, "us-east.orders", 2, 2 * N).await;
    assert_eq!(
        data_topics(west).await,
        set(&["us-east.orders".into(), "us-east.invoices".into()])
    );
    assert_no_internal_copies(west, &["us-east", "us-west"]).await;
}
}
