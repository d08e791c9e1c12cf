//! The client switch against sandbox clusters: `strait clients` and `GET /api/clients/{group}` on
//! `strait run --http` answer the same document; it follows the active-region record through a
//! failover and a failback, keeps answering from the surviving cluster when one is cut, and
//! rejects bad input with exit code 2 / HTTP 400 and one sentence.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use strait::failover::active::{self, ActiveRegion};
use strait::failover::clients::{ClientSettings, Decision};
use strait_sandbox::Cluster;

/// The endpoint's answer to a bad request or when no cluster answers (it has no library type:
/// the HTTP layer writes it in place).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ApiError {
    error: String,
}

/// `strait clients CONFIG ARGS`: (exit code, stdout, stderr).
async fn clients(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = strait();
    cmd.arg("clients")
        .arg(cfg)
        .args(args)
        .env("STRAIT_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `strait clients CONFIG --group G --json`, which must succeed: the document as printed.
async fn clients_json_text(cfg: &Path, group: &str) -> String {
    let (code, out, err) = clients(cfg, &["--group", group, "--json"]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

/// `strait clients CONFIG --group G --json`, which must succeed.
async fn clients_json(cfg: &Path, group: &str) -> ClientSettings {
    typed("clients --json", &clients_json_text(cfg, group).await)
}

/// GET with extra request headers: (status, response headers lower-cased, body).
async fn get(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let a = http_request("GET", addr, path, headers).await.unwrap();
    (a.status, a.headers, a.body)
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> &'a str {
    hs.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {hs:?}"))
}

/// `GET /api/clients/{group}`, which must answer 200 with JSON; also returns the ETag.
async fn api(addr: &str, group: &str) -> (ClientSettings, String) {
    let (code, hs, body) = get(addr, &format!("/api/clients/{group}"), &[]).await;
    assert_eq!(code, 200, "{body}");
    (
        typed("/api/clients", &body),
        header(&hs, "etag").to_string(),
    )
}

/// The answer without its warnings (which name timings and errors), for comparing the two ways.
/// ([`typed`] checked that the typed answer is the whole document, so comparing typed answers
/// compares the documents.)
fn stable(mut s: ClientSettings) -> ClientSettings {
    s.warnings.clear();
    s
}

/// The answer for `billing` once a switch to `active` (servers `bootstrap`) is recorded.
fn recorded(active: &str, bootstrap: &str, topics: &[&str], r: &ActiveRegion) -> ClientSettings {
    ClientSettings {
        group: "billing".into(),
        pair: ["us-east".into(), "us-west".into()],
        active_region: active.into(),
        bootstrap_servers: bootstrap.into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        version: r.version,
        changed_at_ms: Some(r.changed_at_ms),
        reason: r.reason.clone(),
        decision: Decision::Record,
        warnings: vec![],
    }
}

async fn record(c: &Cluster, r: &ActiveRegion) {
    active::write(&admin(c), &endpoint(c), r, 1, Duration::from_secs(10))
        .await
        .unwrap();
}

on_both_engines! {
async fn clients_follow_failover_and_failback(engine) {
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let (east_bs, west_bs) = (east.bootstrap_servers(), west.bootstrap_servers());
    create_topic(east, "orders", 2).await;
    produce_range(east, "orders", 2, 0..20, "v", None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = mm2_config(
        &dir,
        &east_bs,
        &west_bs,
        "refresh.topics.interval.seconds = 2",
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("run.log");
    let mut run = spawn_run_http(&cfg, &addr, &log);
    wait_for_count(west, "us-east.orders", 2, 20, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&addr, "/healthz").await.is_err() {
        assert!(run.try_wait().unwrap().is_none(), "strait run exited");
        assert!(Instant::now() < deadline, "no HTTP server on {addr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // (1) No record: the source of the active-passive flow, version 0, the group's topic.
    commit_group(east, "billing", &[("orders", 0, 5), ("orders", 1, 5)]).await;
    // The one untyped reading of this document, on purpose: the exact JSON a client's script
    // parses, field names and all (the README's; the bytes are
    // `src/failover/testdata/clients.json`). The rest of the test reads `ClientSettings`.
    let text = clients_json_text(&cfg, "billing").await;
    let raw: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        raw,
        json!({
            "group": "billing", "pair": ["us-east", "us-west"], "active_region": "us-east",
            "bootstrap_servers": east_bs, "topics": ["orders"], "version": 0,
            "changed_at_ms": null, "source": "default",
            "reason": "no switch recorded; us-east is the source of us-east->us-west",
            "warnings": [],
        })
    );
    let doc: ClientSettings = typed("clients --json", &text);
    let (via_http, etag0) = api(&addr, "billing").await;
    assert_eq!(via_http, doc);
    // A group without commits: every topic the flows replicate.
    let fresh = clients_json(&cfg, "fresh").await;
    assert_eq!(fresh.topics, ["orders"], "{fresh:?}");
    // The table names the region, its servers and the topics.
    let (code, text, _) = clients(&cfg, &["--group", "billing"]).await;
    assert_eq!(code, 0);
    assert!(
        text.contains("us-east") && text.contains(&east_bs) && text.contains("orders"),
        "{text}"
    );

    // (2) Failover to us-west, recorded on both clusters; the group moved its offsets there.
    let failover = ActiveRegion::switch(
        None,
        "us-east",
        "us-west",
        "us-west",
        now_ms(),
        "failover from us-east",
    );
    record(east, &failover).await;
    record(west, &failover).await;
    commit_group(
        west,
        "billing",
        &[("us-east.orders", 0, 5), ("us-east.orders", 1, 5)],
    )
    .await;
    let doc = clients_json(&cfg, "billing").await;
    assert_eq!(
        stable(doc.clone()),
        recorded("us-west", &west_bs, &["us-east.orders", "orders"], &failover)
    );
    assert_eq!(doc.version, 1);
    assert_eq!(doc.reason, "failover from us-east");
    let (via_http, etag1) = api(&addr, "billing").await;
    assert_eq!(via_http, doc);
    assert_ne!(etag1, etag0, "the ETag changes with the switch");
    // A poller that has this version gets 304 Not Modified.
    let (code, hs, _) = get(
        &addr,
        "/api/clients/billing",
        &[("If-None-Match", etag1.as_str())],
    )
    .await;
    assert_eq!(code, 304);
    assert_eq!(header(&hs, "etag"), etag1);
    let (code, _, _) = get(
        &addr,
        "/api/clients/billing",
        &[("If-None-Match", etag0.as_str())],
    )
    .await;
    assert_eq!(code, 200, "an old ETag gets the new document");

    // (3) Failback: version 2, back to us-east and its own topic.
    let failback = ActiveRegion::switch(
        Some(&failover),
        "us-west",
        "us-east",
        "us-east",
        now_ms(),
        "failback to us-east",
    );
    record(east, &failback).await;
    record(west, &failback).await;
    let doc = clients_json(&cfg, "billing").await;
    assert_eq!(doc.active_region, "us-east", "{doc:?}");
    assert_eq!(doc.bootstrap_servers, east_bs);
    assert_eq!(doc.topics, ["orders"]);
    assert_eq!(doc.version, 2);
    assert_eq!(doc.reason, "failback to us-east");
    assert_eq!(stable(api(&addr, "billing").await.0), stable(doc));

    // (4) us-east cut: us-west's copy of the record still answers (with a warning naming us-east).
    east.cut();
    let t = Instant::now();
    let doc = clients_json(&cfg, "billing").await;
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(doc.active_region, "us-east", "{doc:?}");
    assert_eq!(doc.version, 2);
    assert_eq!(doc.decision, Decision::Record);
    assert!(
        doc.warnings.iter().any(|w| w.contains("us-east")),
        "the unreachable cluster is named: {doc:?}"
    );
    // A failover during the outage can only be recorded on us-west: that one wins.
    let during = ActiveRegion::switch(
        Some(&failback),
        "us-east",
        "us-west",
        "us-west",
        now_ms(),
        "failover from us-east (unreachable)",
    );
    record(west, &during).await;
    let doc = clients_json(&cfg, "billing").await;
    assert_eq!(
        stable(doc.clone()),
        recorded("us-west", &west_bs, &["us-east.orders", "orders"], &during)
    );
    assert_eq!(doc.version, 3);
    assert_eq!(doc.reason, "failover from us-east (unreachable)");
    assert_eq!(stable(api(&addr, "billing").await.0), stable(doc));

    // Both cut: exit 1 naming both addresses; HTTP 503 with a JSON error.
    west.cut();
    let (code, out, err) = clients(&cfg, &["--group", "billing", "--json"]).await;
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert_eq!(out, "");
    // librdkafka's own "all brokers down" log lines come first; the error is the last line.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("strait: ") && last.contains(&east_bs) && last.contains(&west_bs),
        "both addresses: {err}"
    );
    let (code, _, body) = get(&addr, "/api/clients/billing", &[]).await;
    assert_eq!(code, 503, "{body}");
    let e: ApiError = typed("/api/clients error", &body);
    assert!(e.error.contains(&west_bs), "{body}");
    east.heal();
    west.heal();

    // (5) Bad input over HTTP: 400 and one sentence.
    for path in [
        "/api/clients/billing?pair=us-east",
        "/api/clients/billing?pair=us-east,mars",
        "/api/clients/strait.us-east-%3Eus-west",
    ] {
        let (code, _, body) = get(&addr, path, &[]).await;
        assert_eq!(code, 400, "{path}: {body}");
        let e: ApiError = typed("/api/clients error", &body);
        let msg = e.error;
        assert!(!msg.is_empty() && !msg.contains('\n'), "{path}: {msg}");
    }
    let (code, _, body) = get(&addr, "/api/clients/billing?pair=us-west,us-east", &[]).await;
    assert_eq!(code, 200, "the pair in either order: {body}");
    assert!(run.try_wait().unwrap().is_none(), "strait run still runs");
}
}

#[tokio::test]
async fn bad_input_is_one_sentence_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: every mistake is reported before any cluster is asked.
    let cfg = mm2_config(&dir, "127.0.0.1:1", "127.0.0.1:2", "");
    let three = dir.path().join("three.properties");
    std::fs::write(
        &three,
        "clusters = us-east, us-west, eu\n\
         us-east.bootstrap.servers = 127.0.0.1:1\n\
         us-west.bootstrap.servers = 127.0.0.1:2\n\
         eu.bootstrap.servers = 127.0.0.1:3\n\
         us-east->us-west.enabled = true\n\
         us-east->eu.enabled = true\n",
    )
    .unwrap();
    let cases: [(&Path, &[&str], &str); 7] = [
        (&cfg, &["--group", ""], "empty"),
        (
            &cfg,
            &["--group", "strait.us-east->us-west"],
            "strait's own",
        ),
        (&cfg, &["--group", "g", "--pair", "us-east"], "two clusters"),
        (
            &cfg,
            &["--group", "g", "--pair", "us-east,mars"],
            "\"mars\"",
        ),
        (
            &cfg,
            &["--group", "g", "--pair", "us-west,us-west"],
            "twice",
        ),
        (&three, &["--group", "g"], "--pair"),
        (&three, &["--group", "g", "--pair", "us-west,eu"], "no flow"),
    ];
    for (file, args, needle) in cases {
        let t = Instant::now();
        let (code, out, err) = clients(file, args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("strait: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{args:?} waited");
    }
    // With three clusters, naming the pair works (and then the clusters are asked: none is up).
    let (code, _, err) = clients(&three, &["--group", "g", "--pair", "eu,us-east"]).await;
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("strait: ")
            && last.contains("127.0.0.1:3")
            && last.contains("127.0.0.1:1"),
        "{err}"
    );
}
