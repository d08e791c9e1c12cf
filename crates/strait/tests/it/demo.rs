//! `strait demo` as a process: it starts two sandbox regions replicating both ways with traffic,
//! and its dashboard's `/api/status` shows both flows OK, each region's consumer group, and
//! replication moving; the commands its banner suggests work on the config it wrote; SIGTERM
//! stops it with exit 0 and removes that config. A busy port is one line and exit 1, like
//! `strait sandbox`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use strait::monitor::{FlowStatus, Status, Verdict};

/// Two consecutive free ports (the demo's regions take base and base + 1).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

/// The replicated position of `flow`'s `orders` partitions, summed.
fn replicated(flow: &FlowStatus) -> i64 {
    flow.partition_lags
        .iter()
        .filter(|p| p.topic == "orders")
        .map(|p| p.replicated)
        .sum()
}

fn flow<'a>(status: &'a Status, source: &str, target: &str) -> Option<&'a FlowStatus> {
    status
        .flows
        .iter()
        .find(|f| f.source == source && f.target == target)
}

fn has_group(status: &Status, group: &str, source: &str, target: &str) -> bool {
    status
        .groups
        .iter()
        .any(|g| g.group == group && g.source == source && g.target == target)
}

/// The config path the banner names.
fn config_path(stdout: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Config"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(PathBuf::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_replicates_both_ways_with_traffic_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let http = format!("127.0.0.1:{}", free_port());
    let base = free_port_pair();
    let control = free_port();
    let filter = std::env::var("STRAIT_TEST_CHILD_LOG").unwrap_or_else(|_| "info".into());
    let mut child = Running(
        strait()
            .args(["demo", "--http", &http])
            .args(["--base-port", &base.to_string()])
            .args(["--control-port", &control.to_string()])
            .env("STRAIT_LOG", filter)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Both flows OK, both groups seen, and each flow's replicated position moving.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first: Option<(i64, i64)> = None;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("strait demo exited: {s}\n{}", log_tail(&log, 40));
        }
        let mut why = String::new();
        match http_get(&http, "/api/status").await {
            Ok((200, body)) => {
                let st: Status = typed("/api/status", &body);
                match (
                    flow(&st, "us-east", "us-west"),
                    flow(&st, "us-west", "us-east"),
                ) {
                    (Some(ew), Some(we)) => {
                        for f in [ew, we] {
                            if f.verdict != Verdict::Ok {
                                why +=
                                    &format!("{}->{} {}; ", f.source, f.target, f.verdict.as_str());
                            }
                        }
                        let now = (replicated(ew), replicated(we));
                        match first {
                            Some(f) if now.0 > f.0 && now.1 > f.1 => {}
                            Some(f) => why += &format!("replicated {now:?}, first {f:?}; "),
                            None if now.0 > 0 && now.1 > 0 => {
                                first = Some(now);
                                why += "first replicated positions; ";
                            }
                            None => why += &format!("replicated {now:?}; "),
                        }
                    }
                    _ => why += "flows missing; ",
                }
                for (g, s, t) in [
                    ("orders-app", "us-east", "us-west"),
                    ("billing-app", "us-west", "us-east"),
                ] {
                    if !has_group(&st, g, s, t) {
                        why += &format!("group {g} absent; ");
                    }
                }
                if why.is_empty() {
                    break st;
                }
            }
            other => why = format!("{other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "demo not showing replication after 120 s: {why}\n{}",
            log_tail(&log, 40)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // orders-app's position reached us-west through group offset sync.
    // (Reading it as `Status` checked that its `source_lag` is a number.)
    let synced = status
        .groups
        .iter()
        .find(|g| g.group == "orders-app" && g.target == "us-west");
    assert!(synced.is_some(), "{status:?}");

    // The banner: dashboard, both regions, the config, the fault controls.
    let banner = std::fs::read_to_string(&out).unwrap();
    assert!(banner.contains(&format!("http://{http}/")), "{banner}");
    for port in [base, base + 1, control] {
        assert!(banner.contains(&format!("127.0.0.1:{port}")), "{banner}");
    }
    let config = config_path(&banner).expect("the banner names the config");
    assert!(config.is_file(), "{}", config.display());

    // The commands the banner suggests work on that config.
    for args in [
        vec!["check"],
        vec![
            "translate",
            "--group",
            "orders-app",
            "--source",
            "us-east",
            "--target",
            "us-west",
        ],
    ] {
        let o = strait()
            .arg(args[0])
            .arg(&config)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "strait {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let t = Instant::now();
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || {
        let s = child.wait().unwrap();
        drop(child);
        s
    })
    .await
    .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?} to stop",
        t.elapsed()
    );
    assert!(status.success(), "{status:?}\n{}", log_tail(&log, 40));
    assert!(
        !config.exists(),
        "the demo's config is removed when it stops"
    );
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_busy_port_is_one_line_naming_it_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for args in [
        // The dashboard's port.
        vec![
            "--http".to_string(),
            format!("127.0.0.1:{port}"),
            "--base-port".into(),
            free_port_pair().to_string(),
        ],
        // A region's port.
        vec![
            "--http".to_string(),
            format!("127.0.0.1:{}", free_port()),
            "--base-port".into(),
            port.to_string(),
            "--control-port".into(),
            free_port().to_string(),
        ],
    ] {
        let o = strait().arg("demo").args(&args).output().unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.contains(&port.to_string()) && err.contains("in use"),
            "{args:?}: {err}"
        );
    }
    let o = strait()
        .args(["demo", "--http", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not-an-address"));
}
