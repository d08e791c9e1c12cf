//! The dashboard in a real browser: `strait run --http` against sandbox regions, the page loaded
//! in headless Chromium (Debian's `chromium`, installed by `tests/browser/chromium.sh` when
//! missing), and what it shows compared with `/api/status`: the flows, their verdicts and lag
//! numbers, the consumer group, and the reasons once the target region is cut off. Screenshots
//! of both states land in `target/dashboard.png` and `target/dashboard-broken.png`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use strait::monitor::{Status, Verdict};

const FLOW: &str = "us-east->us-west";

// ---- a minimal HTTP client (GET, blocking: call through spawn_blocking) ----

/// `/api/status` once it answers 200.
async fn api_status(addr: &str) -> Option<Status> {
    match http_get(addr, "/api/status").await {
        Ok((200, body)) => Some(typed("/api/status", &body)),
        _ => None,
    }
}

/// Poll `/api/status` until `ok` holds, or panic after `within` with the last document.
async fn wait_status(
    addr: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&Status) -> bool,
) -> Status {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        if let Some(doc) = api_status(addr).await {
            if ok(&doc) {
                return doc;
            }
            last = Some(doc);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; last /api/status: {}",
            last.map_or_else(|| "none (503 or unreachable)".into(), |d| format!("{d:?}"))
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---- headless Chromium ----

fn chromium_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/chromium.sh")
}

/// Install Chromium if missing; one clear failure if that is impossible.
async fn ensure_chromium() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new("bash")
            .arg(chromium_script())
            .arg("install")
            .output()
            .expect("run tests/browser/chromium.sh")
    })
    .await
    .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        panic!(
            "the dashboard test needs headless Chromium and it could not be installed: {last}\n\
             (full output of tests/browser/chromium.sh install:)\n{err}"
        );
    }
}

/// Run `chromium.sh ARGS` (headless, fresh profile) with a time limit; its stdout.
async fn chromium(args: Vec<String>, scratch: &Path) -> String {
    let (out, err) = (scratch.join("chromium.out"), scratch.join("chromium.err"));
    let (o, e) = (out.clone(), err.clone());
    let status = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("bash")
            .arg(chromium_script())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .spawn()
            .expect("start chromium");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    match status {
        Some(s) if s.success() => std::fs::read_to_string(&out).unwrap(),
        Some(s) => panic!("chromium failed ({s}):\n{stderr}"),
        None => panic!("chromium did not finish within 90 s:\n{stderr}"),
    }
}

async fn dump_dom(url: &str, scratch: &Path) -> String {
    let dom = chromium(
        vec![
            "--virtual-time-budget=8000".into(),
            "--window-size=1440,900".into(),
            "--dump-dom".into(),
            url.into(),
        ],
        scratch,
    )
    .await;
    assert!(dom.contains("</html>"), "not a DOM dump: {dom}");
    dom
}

/// A screenshot under `target/` (the parent of CARGO_TARGET_TMPDIR).
async fn screenshot(url: &str, name: &str, scratch: &Path) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is under target/")
        .to_path_buf();
    let file = target.join(name);
    let _ = std::fs::remove_file(&file);
    chromium(
        vec![
            format!("--screenshot={}", file.display()),
            "--window-size=1440,900".into(),
            "--virtual-time-budget=8000".into(),
            url.into(),
        ],
        scratch,
    )
    .await;
    let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "{}: not a screenshot",
        file.display()
    );
    file
}

// ---- reading the dumped DOM (the page's documented data-* hooks) ----

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the start tag `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let j = tag[i..].find('"')? + i;
    Some(decode(&tag[i..j]))
}

/// The text of an element's HTML, tags removed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode(&out)
}

/// Every `<tr>` that has attribute `key`: (its start tag, its whole HTML). Rows with hooks
/// hold no nested table.
fn rows<'a>(dom: &'a str, key: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = dom[at..].find("<tr") {
        let start = at + i;
        let tag_end = start + dom[start..].find('>').unwrap() + 1;
        let end = dom[start..].find("</tr>").map_or(dom.len(), |j| start + j);
        let tag = &dom[start..tag_end];
        if attr(tag, key).is_some() {
            out.push((tag, &dom[start..end]));
        }
        at = tag_end;
    }
    out
}

/// The `data-field` texts in a row.
fn fields(row: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut at = 0;
    while let Some(i) = row[at..].find(" data-field=\"") {
        let start = at + i;
        let tag_end = start + row[start..].find('>').unwrap() + 1;
        let name = attr(&row[start..tag_end], "data-field").unwrap();
        let close = tag_end + row[tag_end..].find('<').unwrap();
        out.insert(name, decode(&row[tag_end..close]));
        at = tag_end;
    }
    out
}

/// What the page shows.
#[derive(Debug)]
struct Shown {
    generated_at: i64,
    state: String,
    flows: BTreeMap<String, BTreeMap<String, String>>,
    groups: BTreeMap<(String, String), BTreeMap<String, String>>,
    reasons: BTreeMap<String, String>,
}

/// `dom` without comments, scripts and styles (the script builds rows from strings that look
/// like the hooks).
fn markup_only(dom: &str) -> String {
    let mut out = dom.to_string();
    for (open, close) in [
        ("<!--", "-->"),
        ("<script", "</script>"),
        ("<style", "</style>"),
    ] {
        while let Some(i) = out.find(open) {
            let j = out[i..]
                .find(close)
                .map_or(out.len(), |j| i + j + close.len());
            out.replace_range(i..j, "");
        }
    }
    out
}

fn shown(dom: &str) -> Shown {
    let dom = &markup_only(dom);
    let root = &dom[dom.find("<html").expect("<html>")..];
    let root = &root[..root.find('>').unwrap() + 1];
    let generated_at = attr(root, "data-generated-at")
        .unwrap_or_default()
        .parse()
        .unwrap_or(-1);
    let state = attr(root, "data-state").unwrap_or_default();
    let flows = rows(dom, "data-flow")
        .into_iter()
        .map(|(tag, row)| (attr(tag, "data-flow").unwrap(), fields(row)))
        .collect();
    let groups = rows(dom, "data-group")
        .into_iter()
        .map(|(tag, row)| {
            let key = (
                attr(tag, "data-group").unwrap(),
                attr(tag, "data-group-flow").unwrap_or_default(),
            );
            (key, fields(row))
        })
        .collect();
    let mut reasons = BTreeMap::new();
    let mut at = 0;
    while let Some(i) = dom[at..].find("<li data-reasons-for=\"") {
        let start = at + i;
        let tag_end = start + dom[start..].find('>').unwrap() + 1;
        let end = start + dom[start..].find("</li>").unwrap();
        let flow = attr(&dom[start..tag_end], "data-reasons-for").unwrap();
        reasons.insert(flow, text(&dom[tag_end..end]));
        at = end;
    }
    Shown {
        generated_at,
        state,
        flows,
        groups,
        reasons,
    }
}

/// Load the page and the snapshot of `/api/status` it shows. `/api/status` is polled while the
/// browser runs, so the snapshot the page fetched is at hand even when a collection lands before
/// the browser is done (under load a dump takes seconds, a collection every 5 s).
async fn snapshot(url: &str, addr: &str, scratch: &Path) -> (Shown, Status) {
    let mut seen = Vec::new();
    for _ in 0..4 {
        let docs = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<i64, Status>::new()));
        let poller = {
            let (docs, addr) = (docs.clone(), addr.to_string());
            tokio::spawn(async move {
                loop {
                    if let Some(doc) = api_status(&addr).await {
                        docs.lock().unwrap().insert(doc.generated_at_ms, doc);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let page = shown(&dump_dom(url, scratch).await);
        if let Some(doc) = api_status(addr).await {
            docs.lock().unwrap().insert(doc.generated_at_ms, doc);
        }
        poller.abort();
        let docs = std::mem::take(&mut *docs.lock().unwrap());
        if let Some(doc) = docs.get(&page.generated_at) {
            return (page, doc.clone());
        }
        seen.push((page.generated_at, docs.keys().copied().collect::<Vec<_>>()));
    }
    panic!("the page never showed a snapshot /api/status served (page, api): {seen:?}");
}

/// Seconds as the page renders them: one decimal, within rounding of the JSON value.
fn assert_seconds(what: &str, shown: Option<&String>, json: Option<f64>) {
    match json {
        None => assert_eq!(shown.map(String::as_str), Some("none"), "{what}: {json:?}"),
        Some(v) => {
            let s = shown.unwrap_or_else(|| panic!("{what}: not shown (JSON {v})"));
            let (_, decimals) = s.split_once('.').unwrap_or_else(|| panic!("{what}: {s:?}"));
            assert_eq!(decimals.len(), 1, "{what}: {s:?} has one decimal");
            let x: f64 = s.parse().unwrap();
            assert!(
                (x - v).abs() <= 0.05 + 1e-9,
                "{what}: page shows {s}, /api/status says {v}"
            );
        }
    }
}

/// Records of `orders` not replicated yet (the flow's total also counts the heartbeats topic,
/// which never stands still).
fn orders_lag(doc: &Status) -> i64 {
    doc.flows[0]
        .partition_lags
        .iter()
        .filter(|p| p.topic == "orders")
        .map(|p| p.lag_records)
        .sum()
}

/// The flows and their numbers on the page are those of `/api/status`.
fn assert_flows_match(page: &Shown, doc: &Status) {
    let flows = &doc.flows;
    let keys: Vec<String> = flows
        .iter()
        .map(|f| format!("{}->{}", f.source, f.target))
        .collect();
    assert_eq!(
        page.flows.keys().cloned().collect::<Vec<_>>(),
        {
            let mut k = keys.clone();
            k.sort();
            k
        },
        "flows shown vs /api/status"
    );
    for (key, f) in keys.iter().zip(flows) {
        let row = &page.flows[key];
        let get = |k: &str| row.get(k).cloned();
        assert_eq!(
            get("verdict").as_deref(),
            Some(f.verdict.as_str()),
            "{key} verdict"
        );
        if !f.lag_known {
            // The source could not be read: the lag is unknown, never shown as 0.
            assert_eq!(get("lag_records").as_deref(), Some("?"), "{key}: {row:?}");
            assert_eq!(get("lag_seconds").as_deref(), Some("?"), "{key}: {row:?}");
        } else {
            assert_eq!(
                get("lag_records"),
                Some(f.lag_records.to_string()),
                "{key} lag_records: {row:?} vs {f:?}"
            );
            assert_seconds(
                &format!("{key} lag_seconds"),
                row.get("lag_seconds"),
                Some(f.lag_seconds),
            );
        }
        for (k, n) in [("topics", f.topics), ("partitions", f.partitions)] {
            assert_eq!(get(k), Some(n.to_string()), "{key} {k}: {row:?} vs {f:?}");
        }
        for (k, age) in [
            ("heartbeat_age_seconds", f.heartbeat_age_seconds),
            ("checkpoint_age_seconds", f.checkpoint_age_seconds),
        ] {
            assert_seconds(&format!("{key} {k}"), row.get(k), age);
        }
    }
}

on_both_engines! {
async fn dashboard_shows_what_api_status_says(engine) {
    ensure_chromium().await;
    let regions = Regions::start_on(engine,
        "refresh.topics.interval.seconds = 2\n\
         refresh.groups.interval.seconds = 2\n\
         emit.checkpoints.interval.seconds = 1\n\
         sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = 1",
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    produce_range(east, "orders", 3, 0..300, "v", None).await;
    commit_group(
        east,
        "billing",
        &[("orders", 0, 40), ("orders", 1, 50), ("orders", 2, 60)],
    )
    .await;

    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/");
    let log = regions.dir.path().join("strait.log");
    let _run = spawn_run_http(&cfg, &addr, &log);
    let child_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The page itself is served at once; the data after the first collection.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http_get(&addr, "/").await {
            Ok((200, body)) => {
                assert!(body.contains("data-generated-at") || body.contains("<html"));
                break;
            }
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            r => panic!("GET / : {r:?}\n{}", child_log()),
        }
    }

    // Healthy and steady: everything replicated, nothing produced any more, the group's position
    // translated on all three partitions.
    let doc = wait_status(
        &addr,
        Duration::from_secs(120),
        "caught up, OK, group translated",
        |d| {
            let billing = d.groups.iter().find(|g| g.group == "billing");
            d.flows.len() == 1
                && d.flows[0].verdict == Verdict::Ok
                && orders_lag(d) == 0
                && billing.is_some_and(|g| {
                    g.partitions
                        .iter()
                        .filter(|p| p.translated.is_some())
                        .count()
                        == 3
                })
        },
    )
    .await;
    assert_eq!(doc.flows[0].source, "us-east");

    let scratch = regions.dir.path().join("chromium");
    std::fs::create_dir_all(&scratch).unwrap();
    let (page, doc) = snapshot(&url, &addr, &scratch).await;
    assert_eq!(page.state, "live", "{page:?}");
    assert_flows_match(&page, &doc);
    assert!(page.reasons.is_empty(), "no reason while OK: {page:?}");
    let billing = page
        .groups
        .get(&("billing".to_string(), FLOW.to_string()))
        .unwrap_or_else(|| panic!("the groups table shows billing on {FLOW}: {page:?}"));
    let g = doc.groups.iter().find(|g| g.group == "billing").unwrap();
    assert_eq!(billing["source_lag"], g.source_lag.to_string(), "{g:?}");
    assert_eq!(billing["source_lag"], "150", "300 produced, 150 committed");
    match g.target_lag {
        Some(n) => assert_eq!(billing["target_lag"], n.to_string()),
        None => assert_eq!(billing["target_lag"], "none"),
    }
    assert_eq!(billing["translated"], "3");
    assert_eq!(billing["partition_count"], "3");
    let png = screenshot(&url, "dashboard.png", &scratch).await;
    eprintln!("dashboard screenshot (OK): {}", png.display());

    // The target region cut off while records keep coming: BROKEN, with the reason, and the lag
    // that piles up on the source, exactly.
    west.cut();
    produce_range(east, "orders", 3, 0..120, "v", None).await;
    let doc = wait_status(
        &addr,
        Duration::from_secs(90),
        "BROKEN with 120 records behind",
        |d| d.flows[0].verdict == Verdict::Broken && orders_lag(d) == 120,
    )
    .await;
    assert!(
        doc.flows[0].reasons.iter().any(|r| r.contains("us-west")),
        "{doc:?}"
    );
    let (page, doc) = snapshot(&url, &addr, &scratch).await;
    assert_flows_match(&page, &doc);
    assert!(orders_lag(&doc) == 120, "{doc:?}");
    let reasons = page
        .reasons
        .get(FLOW)
        .unwrap_or_else(|| panic!("reasons shown for {FLOW}: {page:?}"));
    for r in &doc.flows[0].reasons {
        assert!(reasons.contains(r.as_str()), "{reasons:?} lacks {r}");
    }
    let png = screenshot(&url, "dashboard-broken.png", &scratch).await;
    eprintln!("dashboard screenshot (BROKEN): {}", png.display());
    west.heal();
}
}
