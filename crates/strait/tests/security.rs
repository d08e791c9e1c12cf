//! strait against secure Apache Kafka clusters (SASL_SSL with SCRAM-SHA-512, TLS with the run's
//! certificates, the StandardAuthorizer), configured only through the MM2 file, with the stores
//! MM2 users have (JKS, PKCS#12, PEM). Bad credentials are one line naming the cluster, its
//! address and the cause; no secret appears in anything strait prints or serves.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use strait_sandbox::kafka::pki::StoreForm;
use strait_sandbox::kafka::ADMIN;
use strait_sandbox::{Cluster, Sandbox, Security};

async fn secure_pair() -> Option<Sandbox> {
    let spec = kafka_spec(Security::SaslSslAcl)?;
    Some(
        Sandbox::start_kafka(&["us-east", "us-west"], &spec)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// `<alias>.<key> = <value>` lines logging `c` in as `user` with stores in `form`.
fn client_lines(c: &Cluster, user: &str, form: StoreForm, keystore: bool) -> String {
    c.access()
        .mm2(user, form, keystore)
        .into_iter()
        .map(|(k, v)| format!("{}.{k} = {v}\n", c.name()))
        .collect()
}

/// An MM2 file for us-east -> us-west (`orders`), each side with its own client lines.
fn config(dir: &Path, name: &str, sb: &Sandbox, east: &str, west: &str, extra: &str) -> PathBuf {
    let (e, w) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "clusters = us-east, us-west\n\
             us-east.bootstrap.servers = {}\n\
             us-west.bootstrap.servers = {}\n\
             {east}{west}\
             us-east->us-west.enabled = true\n\
             us-east->us-west.topics = orders\n\
             replication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\n\
             checkpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             emit.checkpoints.interval.seconds = 1\n\
             emit.heartbeats.interval.seconds = 1\n\
             refresh.topics.interval.seconds = 2\n\
             {extra}\n",
            e.bootstrap_servers(),
            w.bootstrap_servers()
        ),
    )
    .unwrap();
    path
}

/// Run a one-shot strait command: (exit code, stdout, stderr).
async fn run(args: Vec<String>) -> (Option<i32>, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        strait()
            .args(&args)
            .env("STRAIT_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(cmd: &str, cfg: &Path, rest: &[&str]) -> Vec<String> {
    let mut v = vec![cmd.to_string(), cfg.display().to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn assert_no_secret(sb: &Sandbox, what: &str, text: &str) {
    for c in sb.clusters() {
        for s in c.access().secrets() {
            assert!(
                !text.contains(&s),
                "{what} shows a secret of {}: {text}",
                c.name()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secure_regions_replicate_and_answer_every_command_with_jks_pkcs12_and_pem_stores() {
    let Some(sb) = secure_pair().await else {
        return;
    };
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 3).await;
    produce_range(east, "orders", 3, 0..300, "orders", None).await;
    let dir = tempfile::tempdir().unwrap();
    // us-east with JKS stores (MM2's default type), us-west with PKCS#12; a PEM copy for the
    // one-shot commands.
    let cfg = config(
        dir.path(),
        "stores.properties",
        &sb,
        &client_lines(east, ADMIN, StoreForm::Jks, true),
        &client_lines(west, ADMIN, StoreForm::Pkcs12, true),
        "",
    );
    let pem = config(
        dir.path(),
        "pem.properties",
        &sb,
        &client_lines(east, ADMIN, StoreForm::Pem, true),
        &client_lines(west, ADMIN, StoreForm::Pem, false),
        "",
    );
    let (code, out, err) = run(args("check", &cfg, &["--json"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert_no_secret(&sb, "check --json", &out);

    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("run.log");
    let _run = spawn_run_http(&cfg, &addr, &log);
    let shown = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while record_count(west, "us-east.orders", 3).await < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not replicated within 60 s: {}",
            shown()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    commit_group(east, "billing", &[("orders", 0, 50), ("orders", 1, 60)]).await;

    let (_, api, _) = (0, http_get(&addr, "/api/status").await.unwrap().1, 0);
    let metrics = http_get(&addr, "/metrics").await.unwrap().1;
    assert!(metrics.contains("strait_"), "{metrics}");
    for (cfg, name) in [(&cfg, "stores"), (&pem, "pem")] {
        let (code, out, err) = run(args("status", cfg, &["--json"])).await;
        assert_eq!(code, Some(0), "status ({name}): {out}{err}");
        assert_no_secret(&sb, "status", &format!("{out}{err}"));
    }
    // Checkpoints for `billing` arrive within a few intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let translated = loop {
        let (code, out, err) = run(args(
            "translate",
            &pem,
            &[
                "--group", "billing", "--source", "us-east", "--target", "us-west", "--json",
            ],
        ))
        .await;
        assert_no_secret(&sb, "translate", &format!("{out}{err}"));
        if code == Some(0) && out.contains("\"downstream_offset\": 50") {
            break out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "translate: {code:?} {out} {err}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(translated.contains("orders"), "{translated}");
    let (code, out, err) = run(args(
        "failover",
        &cfg,
        &[
            "--from",
            "us-east",
            "--to",
            "us-west",
            "--dry-run",
            "--json",
        ],
    ))
    .await;
    assert_eq!(code, Some(0), "failover --dry-run: {out}{err}");
    assert_no_secret(&sb, "failover --dry-run", &format!("{out}{err}"));
    assert_no_secret(&sb, "/api/status", &api);
    assert_no_secret(&sb, "/metrics", &metrics);
    assert_no_secret(&sb, "strait run's log", &shown());
}
