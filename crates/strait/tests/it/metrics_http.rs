//! `strait run --http` as a process against sandbox clusters: `/metrics` read with a Prometheus
//! text-format parser holds every metric strait documents, with its labels; every `strait_*`
//! name used by examples/prometheus-alerts.yml and examples/grafana-dashboard.json is exported;
//! `/api/status` is the `strait status --json` document; `/healthz`, `/readyz`. A bad or busy
//! `--http` address fails at once, before any flow starts.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use prometheus_parse::{Sample, Scrape, Value};
use strait::http::metrics::{CONFLICTS_ONLY, NAMES};
use strait::monitor::{Status, Verdict};
use strait_sandbox::Sandbox;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 3;
/// Records produced to `orders` (200 per partition).
const RECORDS: usize = 600;
/// Where group `billing` commits on each partition of `orders` on us-east.
const BILLING_AT: i64 = 50;

/// Every interval short: topics every 2 s, groups, checkpoints and group offset sync every second.
fn write_config(dir: &tempfile::TempDir, east: &str, west: &str) -> PathBuf {
    mm2_config(
        dir,
        east,
        west,
        "refresh.topics.interval.seconds = 2\n\
         refresh.groups.interval.seconds = 1\n\
         emit.checkpoints.interval.seconds = 1\n\
         sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = 1",
    )
}

/// The last lines of the child's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn parse_metrics(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

fn value(s: &Sample) -> f64 {
    match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{}: not a single value: {other:?}", s.metric),
    }
}

fn samples<'a>(scrape: &'a Scrape, name: &str) -> Vec<&'a Sample> {
    scrape.samples.iter().filter(|s| s.metric == name).collect()
}

/// The samples of `name` for the flow us-east->us-west (plus `extra` label values).
fn flow_samples<'a>(scrape: &'a Scrape, name: &str, extra: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples(scrape, name)
        .into_iter()
        .filter(|s| {
            s.labels.get("source") == Some("us-east")
                && s.labels.get("target") == Some("us-west")
                && extra.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .collect()
}

fn flow_value(scrape: &Scrape, name: &str, extra: &[(&str, &str)]) -> Option<f64> {
    let found = flow_samples(scrape, name, extra);
    assert!(found.len() <= 1, "{name} {extra:?}: {found:?}");
    found.first().map(|s| value(s))
}

/// What is still missing before the scrape shows a caught-up flow with everything set.
fn not_yet(scrape: &Scrape) -> Vec<String> {
    let mut missing: Vec<String> = NAMES
        .iter()
        .filter(|(n, _)| !CONFLICTS_ONLY.contains(n) && samples(scrape, n).is_empty())
        .map(|(n, _)| format!("{n} absent"))
        .collect();
    let orders = flow_samples(scrape, "strait_lag_records", &[("topic", TOPIC)]);
    let lag: f64 = orders.iter().map(|s| value(s)).sum();
    if orders.len() != PARTITIONS as usize || lag != 0.0 {
        missing.push(format!("orders lag {lag} over {} partitions", orders.len()));
    }
    let replicated = flow_value(scrape, "strait_replicated_records_total", &[]).unwrap_or(0.0);
    if replicated < RECORDS as f64 {
        missing.push(format!("{replicated} records replicated"));
    }
    for side in ["source", "target"] {
        let g = &[("group", "billing"), ("side", side)];
        if flow_value(scrape, "strait_group_lag_records", g).is_none() {
            missing.push(format!("group billing: no lag on the {side}"));
        }
    }
    for name in [
        "strait_heartbeat_age_seconds",
        "strait_checkpoint_age_seconds",
    ] {
        if flow_value(scrape, name, &[]).is_none() {
            missing.push(format!("{name} absent for us-east->us-west"));
        }
    }
    missing
}

/// The label names each metric carries.
fn expected_labels(name: &str) -> &'static [&'static str] {
    match name {
        "strait_lag_records" | "strait_lag_seconds" => &["partition", "source", "target", "topic"],
        "strait_group_lag_records" => &["group", "side", "source", "target"],
        "strait_status_collection_seconds" => &[],
        "strait_flow_errors_total" => &["class", "source", "target"],
        "strait_records_skipped_total" => &["reason", "source", "target"],
        "strait_cluster_up" => &["cluster"],
        _ => &["source", "target"],
    }
}

on_both_engines! {
async fn metrics_status_and_health_over_http(engine) {
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, TOPIC, PARTITIONS).await;
    produce_range(east, TOPIC, PARTITIONS, 0..RECORDS, TOPIC, None).await;
    let billing: Vec<(&str, i32, i64)> = (0..PARTITIONS).map(|p| (TOPIC, p, BILLING_AT)).collect();
    commit_group(east, "billing", &billing).await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &east.bootstrap_servers(), &west.bootstrap_servers());
    let log = dir.path().join("strait.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = spawn_run_http(&cfg, &addr, &log);

    // Ready, caught up, with heartbeats, checkpoints and the group on both sides.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (text, scrape) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("strait run exited: {status}\n{}", log_tail(&log));
        }
        let ready = http_get(&addr, "/readyz").await;
        let metrics = http_get(&addr, "/metrics").await;
        let why = match (&ready, &metrics) {
            (Ok((200, _)), Ok((200, text))) => {
                let scrape = parse_metrics(text);
                let missing = not_yet(&scrape);
                if missing.is_empty() {
                    break (text.clone(), scrape);
                }
                missing.join("; ")
            }
            _ => format!(
                "/readyz: {ready:?}; /metrics: {:?}",
                metrics.as_ref().map(|m| m.0)
            ),
        };
        assert!(
            Instant::now() < deadline,
            "not ready within 120 s: {why}\n/metrics:\n{}\nlog:\n{}",
            metrics.map(|m| m.1).unwrap_or_default(),
            log_tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Every documented metric, with its help, type and labels.
    let clusters = ["us-east", "us-west"];
    for (name, help) in NAMES.iter().filter(|(n, _)| !CONFLICTS_ONLY.contains(n)) {
        let found = samples(&scrape, name);
        assert!(!found.is_empty(), "{name} absent:\n{text}");
        assert_eq!(
            scrape.docs.get(*name).map(String::as_str),
            Some(*help),
            "{name}: HELP"
        );
        for s in &found {
            let want_counter = name.ends_with("_total");
            assert!(
                matches!(
                    (&s.value, want_counter),
                    (Value::Counter(_), true) | (Value::Gauge(_), false)
                ),
                "{name}: {:?} (counters end in _total, everything else is a gauge)",
                s.value
            );
            let labels: BTreeSet<&str> = s.labels.keys().map(String::as_str).collect();
            let want: BTreeSet<&str> = expected_labels(name).iter().copied().collect();
            assert_eq!(labels, want, "{name}: labels of {s:?}");
            if let (Some(src), Some(tgt)) = (s.labels.get("source"), s.labels.get("target")) {
                assert!(
                    clusters.contains(&src) && clusters.contains(&tgt) && src != tgt,
                    "{name}: flow {src}->{tgt}"
                );
            }
            let v = value(s);
            assert!(v.is_finite() && v >= 0.0, "{name}: {v}");
        }
        if expected_labels(name).contains(&"source") {
            assert!(
                !flow_samples(&scrape, name, &[]).is_empty(),
                "{name}: nothing for us-east->us-west:\n{text}"
            );
        }
    }
    // Both clusters answer their probes; a healthy flow met no error and skipped nothing.
    for c in clusters {
        let up: Vec<f64> = samples(&scrape, "strait_cluster_up")
            .into_iter()
            .filter(|s| s.labels.get("cluster") == Some(c))
            .map(value)
            .collect();
        assert_eq!(up, [1.0], "strait_cluster_up of {c}");
    }
    let classes = flow_samples(&scrape, "strait_flow_errors_total", &[]);
    assert_eq!(classes.len(), strait::replicate::ErrorClass::ALL.len(), "every class exported");
    assert_eq!(
        flow_value(&scrape, "strait_records_skipped_total", &[("reason", "retention")]),
        Some(0.0)
    );
    let flow = |name: &str| flow_value(&scrape, name, &[]).unwrap();
    assert!(
        flow("strait_replicated_records_total") >= RECORDS as f64,
        "{text}"
    );
    // Key "k" and values "orders:<i>": at least 8 bytes each.
    assert!(
        flow("strait_replicated_bytes_total") >= 8.0 * RECORDS as f64,
        "{text}"
    );
    for name in [
        "strait_offset_syncs_total",
        "strait_heartbeats_total",
        "strait_checkpoints_total",
        "strait_group_offsets_synced_total",
    ] {
        assert!(flow(name) >= 1.0, "{name}:\n{text}");
    }
    assert!(flow("strait_assigned_partitions") >= PARTITIONS as f64);
    assert!(flow("strait_replication_latency_seconds") < 600.0, "{text}");
    assert_eq!(flow("strait_flow_up"), 1.0);
    assert_eq!(flow("strait_flow_verdict"), 0.0);
    // Not 0: the flow also replicates `heartbeats` (written every second on us-east by the
    // us-west->us-east pair), always a moment behind; but under the LAGGING threshold.
    assert!(flow("strait_flow_lag_seconds") < 30.0, "{text}");
    assert!(flow("strait_heartbeat_age_seconds") < 13.0, "{text}");
    let orders = flow_samples(&scrape, "strait_lag_records", &[("topic", TOPIC)]);
    let parts: BTreeSet<&str> = orders
        .iter()
        .filter_map(|s| s.labels.get("partition"))
        .collect();
    assert_eq!(parts, BTreeSet::from(["0", "1", "2"]));
    assert_eq!(orders.iter().map(|s| value(s)).sum::<f64>(), 0.0);
    for s in flow_samples(&scrape, "strait_lag_seconds", &[("topic", TOPIC)]) {
        assert_eq!(value(s), 0.0, "{s:?}");
    }
    // billing stopped at 50 of 200 on each partition: 450 unread on us-east, and exactly the
    // same on us-west where its offsets were synced.
    let unread = (RECORDS as i64 - PARTITIONS as i64 * BILLING_AT) as f64;
    for side in ["source", "target"] {
        let g = [("group", "billing"), ("side", side)];
        assert_eq!(
            flow_value(&scrape, "strait_group_lag_records", &g),
            Some(unread),
            "billing on the {side}:\n{text}"
        );
    }

    // The examples use only names strait exports.
    let exported: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for (file, names) in [
        ("prometheus-alerts.yml", alert_metric_names()),
        ("grafana-dashboard.json", dashboard_metric_names()),
    ] {
        assert!(names.len() >= 5, "{file}: only {names:?}");
        for n in &names {
            assert!(
                exported.contains(n.as_str()) || CONFLICTS_ONLY.contains(&n.as_str()),
                "examples/{file} uses {n}, which strait does not export (exported: {exported:?})"
            );
        }
    }

    // The dashboard shows every metric.
    let shown = dashboard_metric_names();
    for (name, _) in NAMES {
        assert!(shown.contains(*name), "no panel shows {name}");
    }

    // /api/status is the `strait status --json` document.
    let (code, body) = http_get(&addr, "/api/status").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let mut cmd = strait();
    cmd.arg("status").arg(&cfg).arg("--json");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let what = format!("status --json (stderr: {})", String::from_utf8_lossy(&out.stderr));
    let api: Status = typed("/api/status", &body);
    let cli: Status = typed(&what, &stdout);
    assert_eq!(out.status.code(), Some(0), "{cli:?}");
    // The one untyped comparison of the status document, on purpose: the endpoint and the
    // command give the same JSON shape, key for key (the bytes are
    // `src/monitor/testdata/status.json`; the rest reads `Status`).
    // The endpoint adds what only the running process knows: each flow's own view. Both
    // probe the clusters.
    let mut doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    for f in doc["flows"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("process");
    }
    assert_same_shape(&doc, &serde_json::from_str(&stdout).unwrap(), "$");
    let reach = |d: &Status| -> Vec<(String, strait::reach::Reach)> {
        d.clusters.iter().map(|c| (c.cluster.clone(), c.reach)).collect()
    };
    let up = vec![
        ("us-east".to_string(), strait::reach::Reach::Up),
        ("us-west".to_string(), strait::reach::Reach::Up),
    ];
    assert_eq!(reach(&api), up);
    assert_eq!(reach(&cli), up);
    let process = api.flows[0].process.as_ref().expect("the flow's own view");
    assert_eq!(process.condition, strait::replicate::Condition::Replicating, "{process:?}");
    assert_eq!(process.assigned_partitions, PARTITIONS as u64 + 1, "orders and heartbeats");
    assert!(cli.flows[0].process.is_none());
    assert_eq!(api.verdict, Verdict::Ok, "{api:?}");
    assert_eq!(api.verdict, cli.verdict);
    let flows = |d: &Status| -> Vec<(String, String, Verdict)> {
        d.flows
            .iter()
            .map(|f| (f.source.clone(), f.target.clone(), f.verdict))
            .collect()
    };
    assert_eq!(
        flows(&api),
        vec![("us-east".into(), "us-west".into(), Verdict::Ok)]
    );
    assert_eq!(flows(&api), flows(&cli));
    let groups = |d: &Status| -> Vec<String> { d.groups.iter().map(|g| g.group.clone()).collect() };
    assert_eq!(groups(&api), vec!["billing".to_string()]);
    assert_eq!(groups(&api), groups(&cli));

    // /healthz and /readyz.
    assert_eq!(
        http_get(&addr, "/healthz").await.unwrap(),
        (200, "ok\n".to_string())
    );
    let (code, body) = http_get(&addr, "/readyz").await.unwrap();
    assert_eq!((code, body.trim()), (200, "ready"));

    assert!(
        child.try_wait().unwrap().is_none(),
        "strait run exited early:\n{}",
        log_tail(&log)
    );
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}\n{}", log_tail(&log));
}
}

/// Same keys at every level (objects), same lengths of `flows` and `groups`, same JSON types
/// where both are set (a `null` age on one side and a number on the other is fine).
fn assert_same_shape(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            let kx: BTreeSet<&String> = x.keys().collect();
            let ky: BTreeSet<&String> = y.keys().collect();
            assert_eq!(kx, ky, "keys at {at}");
            for k in kx {
                assert_same_shape(&x[k], &y[k], &format!("{at}.{k}"));
            }
        }
        (J::Array(x), J::Array(y)) => {
            if at.ends_with(".flows") || at.ends_with(".groups") {
                assert_eq!(x.len(), y.len(), "length of {at}");
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_same_shape(u, v, &format!("{at}[{i}]"));
            }
        }
        (J::Null, _) | (_, J::Null) => {}
        (J::Number(_), J::Number(_)) | (J::String(_), J::String(_)) | (J::Bool(_), J::Bool(_)) => {}
        (x, y) => panic!("{at}: {x} vs {y}"),
    }
}

// ---- the metric names in the examples ----

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Words in PromQL (and Grafana's variable queries) that are not metric names: functions,
/// keywords, label names.
const NOT_METRICS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "irate",
    "increase",
    "delta",
    "changes",
    "absent",
    "absent_over_time",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "time",
    "timestamp",
    "vector",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "label_values",
    "source",
    "target",
    "topic",
    "partition",
    "group",
    "side",
    "class",
    "reason",
    "region",
    "cluster",
    "job",
    "instance",
    // Prometheus's own scrape health, not strait's.
    "up",
];

/// The `strait_*` names in a PromQL expression. Label matchers (`{...}`), ranges (`[...]`),
/// strings, numbers and `$variables` are skipped; any other word must be a known function,
/// keyword or label name, so a metric strait does not export cannot hide behind another prefix.
fn promql_metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' | '\'' | '`' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    q => q,
                };
                let mut quote = None;
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    match quote {
                        Some(_) if d == '\\' => i += 1,
                        Some(q) if d == q => quote = None,
                        Some(_) => {}
                        None if d == close => break,
                        None if d == '"' || d == '\'' => quote = Some(d),
                        None => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (word(chars[i]) || chars[i] == '{' || chars[i] == '}') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (word(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len() && word(chars[i]) {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect();
                if w.starts_with("strait_") {
                    out.push(w);
                } else {
                    assert!(
                        NOT_METRICS.contains(&w.as_str()),
                        "{w:?} in {expr:?} is neither a strait metric nor a known PromQL word"
                    );
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Every `expr:` of the rule file (one line, or a `|`/`>` block), by a line scan.
fn alert_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if let Some(rest) = t.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let key_indent = indent(lines[i]);
                let mut block = Vec::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > key_indent)
                {
                    i += 1;
                    block.push(lines[i].trim());
                }
                out.push(block.join("\n"));
            } else {
                out.push(rest.trim_matches(|c| c == '\'' || c == '"').to_string());
            }
        }
        i += 1;
    }
    out
}

fn alert_metric_names() -> BTreeSet<String> {
    let yaml = example("prometheus-alerts.yml");
    let exprs = alert_exprs(&yaml);
    let alerts = yaml
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(alerts >= 6, "{alerts} alerts");
    assert_eq!(exprs.len(), alerts, "one expr per alert: {exprs:#?}");
    let mut names = BTreeSet::new();
    for e in &exprs {
        assert!(!e.trim().is_empty(), "an empty expr");
        names.extend(promql_metric_names(e));
    }
    for (alert, name) in [
        ("lag", "strait_flow_lag_seconds"),
        ("heartbeats", "strait_heartbeat_age_seconds"),
        ("checkpoints", "strait_checkpoint_age_seconds"),
        ("flow down", "strait_flow_up"),
    ] {
        assert!(names.contains(name), "no {alert} alert ({name})");
    }
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("up{") || e.contains("absent(")),
        "no alert for strait itself gone"
    );
    names
}

fn dashboard_metric_names() -> BTreeSet<String> {
    let dash: serde_json::Value =
        serde_json::from_str(&example("grafana-dashboard.json")).expect("dashboard JSON");
    assert!(
        dash["schemaVersion"].as_i64().unwrap() >= 36,
        "schemaVersion"
    );
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for v in ["source", "target"] {
        assert!(vars.contains(&v), "no ${v} variable: {vars:?}");
    }
    let mut exprs: Vec<String> = Vec::new();
    let mut panels = 0;
    walk_json(&dash, &mut |key, v| match (key, v) {
        ("expr", serde_json::Value::String(e)) => exprs.push(e.clone()),
        // A query variable: a string, or {"query": "..."}.
        ("query", serde_json::Value::String(q)) if q.contains("strait_") => exprs.push(q.clone()),
        ("targets", serde_json::Value::Array(t)) => {
            panels += 1;
            assert!(!t.is_empty(), "a panel without queries");
        }
        _ => {}
    });
    assert!(panels >= 10, "{panels} panels with queries");
    let mut names = BTreeSet::new();
    for e in &exprs {
        names.extend(promql_metric_names(e));
    }
    names
}

fn walk_json(v: &serde_json::Value, f: &mut dyn FnMut(&str, &serde_json::Value)) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                f(k, x);
                walk_json(x, f);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                walk_json(x, f);
            }
        }
        _ => {}
    }
}

#[test]
fn promql_words_are_read_as_metric_names_or_known_words() {
    assert_eq!(
        promql_metric_names(
            r#"sum by (source, target) (rate(strait_replicated_records_total{source=~"$source",target=~"a}b"}[1m])) > 1e3 and on (source) strait_flow_up == 0"#
        ),
        vec![
            "strait_replicated_records_total".to_string(),
            "strait_flow_up".to_string()
        ]
    );
    // A metric strait does not export is not mistaken for a PromQL word.
    assert!(std::panic::catch_unwind(|| promql_metric_names("kafka_consumer_lag > 1")).is_err());
    assert_eq!(
        alert_exprs("  - alert: A\n    expr: |\n      strait_a > 1\n      and strait_b\n    for: 5m\n  - alert: B\n    expr: up{job=\"strait\"} == 0\n"),
        vec!["strait_a > 1\nand strait_b".to_string(), "up{job=\"strait\"} == 0".to_string()]
    );
}

// ---- a bad --http ----

/// `strait run CONFIG --http ADDR`: (exit code, stderr), killed after 30 s.
async fn run_expecting_exit(cfg: &Path, addr: &str) -> (Option<i32>, String) {
    let mut child = Running(
        strait()
            .arg("run")
            .arg(cfg)
            .args(["--http", addr])
            .env_remove("STRAIT_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "strait run --http {:?} still running after 30 s",
                child.id()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (child.try_wait().unwrap().and_then(|s| s.code()), err)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_or_busy_http_address_fails_before_any_flow_starts() {
    let sb = Sandbox::start(&["us-east", "us-west"]).await.unwrap();
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, TOPIC, PARTITIONS).await;
    produce_range(east, TOPIC, PARTITIONS, 0..30, TOPIC, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &east.bootstrap_servers(), &west.bootstrap_servers());
    let before = (topic_names(east).await, topic_names(west).await);

    for bad in ["not-an-address", "127.0.0.1:99999", "127.0.0.1"] {
        let (code, err) = run_expecting_exit(&cfg, bad).await;
        assert_eq!(code, Some(2), "--http {bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "--http {bad}: {err}");
        assert!(err.contains(bad), "--http {bad}: {err}");
    }

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let (code, err) = run_expecting_exit(&cfg, &format!("127.0.0.1:{port}")).await;
    assert_eq!(code, Some(2), "busy port: {err}");
    assert_eq!(err.trim().lines().count(), 1, "busy port: {err}");
    assert!(err.contains(&port.to_string()), "busy port: {err}");
    drop(busy);

    // Nothing started: no remote topic, no internal topic, on either side.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = (topic_names(east).await, topic_names(west).await);
    assert!(!after.1.contains("us-east.orders"), "{after:?}");
    assert_eq!(after, before, "topics created by a strait run that failed");
    assert_eq!(record_count(east, TOPIC, PARTITIONS).await, 30);
}
