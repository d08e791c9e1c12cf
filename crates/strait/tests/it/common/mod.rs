//! Helpers shared by the integration tests: clients for sandbox clusters, producing and reading
//! back whole topics. Every test starts its own clusters on free ports.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use strait::kafka::{Admin, Endpoint, TopicSpec};
use strait_sandbox::Cluster;

pub(crate) mod stored;

/// A client of `c` (as its super user on a secure Apache Kafka cluster).
pub(crate) fn endpoint(c: &Cluster) -> Endpoint {
    endpoint_as(c, strait_sandbox::kafka::ADMIN)
}

/// A client of `c` logged in as `user` (no login on a plaintext cluster).
pub(crate) fn endpoint_as(c: &Cluster, user: &str) -> Endpoint {
    c.access().librdkafka(user).into_iter().fold(
        Endpoint::new(c.name(), c.bootstrap_servers()),
        |e, (k, v)| e.with(k, v),
    )
}

pub(crate) fn admin(c: &Cluster) -> Admin {
    Admin::new(&endpoint(c), Duration::from_secs(10)).expect("admin client")
}

/// Every topic name on `c`.
pub(crate) async fn topic_names(c: &Cluster) -> std::collections::BTreeSet<String> {
    admin(c)
        .topics(None)
        .await
        .expect("list topics")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

pub(crate) fn producer(c: &Cluster) -> FutureProducer {
    endpoint(c).producer_config().create().expect("producer")
}

pub(crate) async fn create_topic(c: &Cluster, name: &str, partitions: i32) {
    admin(c)
        .create_topics(&[TopicSpec::new(name, partitions, 1)])
        .await
        .expect("create topic");
}

/// One record as read back, every field owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Read {
    fn from(m: &BorrowedMessage<'_>) -> Self {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }

    pub(crate) fn header(&self, k: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(hk, _)| hk == k)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Read every partition of `topic` from the beginning until `expected` records arrived (or the
/// deadline passed), without a consumer group (assign, not subscribe).
pub(crate) async fn read_all(
    c: &Cluster,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<Read> {
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep
            .consumer_config("strait-test-reader")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::with_capacity(expected);
        while out.len() < expected && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push(Read::from(&m)),
                Some(Err(e)) => panic!("consume error: {e}"),
                None => {}
            }
        }
        // Anything beyond `expected` would be a duplicate: give it a moment to show up.
        let settle = Instant::now() + Duration::from_millis(500);
        while Instant::now() < settle {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(Read::from(&m));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Group records by partition, in offset order.
pub(crate) fn by_partition(records: &[Read]) -> BTreeMap<i32, Vec<&Read>> {
    let mut m: BTreeMap<i32, Vec<&Read>> = BTreeMap::new();
    for r in records {
        m.entry(r.partition).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.offset);
    }
    m
}

/// Wait until `topic` on `c` holds `expected` records (by watermarks), or panic after `within`.
///
/// A client that asked about a topic before it existed keeps answering "unknown partition" from
/// its metadata cache, so after an error the next attempt uses a new client.
pub(crate) async fn wait_for_count(
    c: &Cluster,
    topic: &str,
    partitions: i32,
    expected: i64,
    within: Duration,
) -> i64 {
    let mut a = admin(c);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut total = 0;
        let mut error = None;
        for p in 0..partitions {
            match a.watermarks(topic, p).await {
                Ok((lo, hi)) => total += hi - lo,
                Err(e) => error = Some(e),
            }
        }
        if error.is_some() {
            a = admin(c);
        }
        if total >= expected {
            return total;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {topic}: {total} of {expected} records after {within:?} (last error: {error:?})",
            c.name()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The configs set on `topic` itself (`DYNAMIC_TOPIC_CONFIG`): what a test compares. Apache Kafka
/// also lists every default; Tansu lists only what was set, without a source.
pub(crate) async fn topic_overrides(c: &Cluster, topic: &str) -> BTreeMap<String, String> {
    admin(c)
        .topic_config_entries(topic)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !c.is_kafka() || e.source == strait::kafka::ConfigSource::DynamicTopic)
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect()
}

/// Records in `topic` on `c` now (sum over partitions of high - low watermark).
pub(crate) async fn record_count(c: &Cluster, topic: &str, partitions: i32) -> i64 {
    let a = admin(c);
    let mut n = 0;
    for p in 0..partitions {
        n += a
            .watermarks(topic, p)
            .await
            .map(|(lo, hi)| hi - lo)
            .unwrap_or(0);
    }
    n
}

/// Time a blocking metadata request on an already-connected client.
pub(crate) async fn time_metadata(admin: &Admin) -> Duration {
    let t = Instant::now();
    admin.topics(None).await.expect("metadata");
    t.elapsed()
}

/// The test process's logs: warnings by default. Tansu's storage logs an error each time a new
/// group has no stored state yet, which is normal; those lines filled failed tests' output and
/// pushed the panic message out of CI's excerpt.
pub(crate) fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("STRAIT_LOG")
                .unwrap_or_else(|_| "warn,tansu_storage::dynostore=off".into()),
        ))
        .with_test_writer()
        .try_init();
}

/// MM2's default replication factor `want`, within what the cluster has (a one-node Apache Kafka
/// refuses more; Tansu ignores it).
pub(crate) fn rf(c: &Cluster, want: i32) -> i32 {
    want.min(c.nodes() as i32)
}

pub(crate) fn flow_spec(
    source: &Cluster,
    target: &Cluster,
    topics: &'static [&'static str],
) -> strait::replicate::FlowSpec {
    use std::sync::Arc;
    use strait::policy::ReplicationPolicy;
    use strait::replicate::{FlowSpec, OffsetSyncTarget};
    init_logs();
    let policy = ReplicationPolicy::default_policy().for_source(source.name());
    FlowSpec {
        source: match std::env::var("STRAIT_RDKAFKA_DEBUG") {
            Ok(d) => endpoint(source).with("debug", d).with("log_level", "7"),
            Err(_) => endpoint(source),
        },
        target: match std::env::var("STRAIT_RDKAFKA_DEBUG") {
            Ok(d) => endpoint(target).with("debug", d).with("log_level", "7"),
            Err(_) => endpoint(target),
        },
        offset_syncs: Some(OffsetSyncTarget {
            cluster: endpoint(source),
            topic: policy.offset_syncs_topic(target.name()),
            replication_factor: rf(source, 3),
        }),
        source_admin: endpoint(source),
        target_admin: endpoint(target),
        target_reader: endpoint(target),
        mm2_positions: Some(strait::replicate::Mm2Positions {
            topic: format!("mm2-offsets.{}.internal", source.name()),
            partitions: 5,
            replication_factor: rf(target, 3),
        }),
        policy,
        topic_filter: Arc::new(move |t: &str| topics.is_empty() || topics.contains(&t)),
        config_exclude: Arc::new(|k: &str| k == "min.insync.replicas"),
        heartbeats_replication: true,
        replication_factor: rf(target, 2),
        refresh_topics: Some(Duration::from_secs(2)),
        offset_lag_max: 100,
        offset_flush_interval: Duration::from_secs(2),
        commit_interval: Duration::from_millis(500),
        admin_timeout: Duration::from_secs(5),
        index_topic: strait::translate::index_topic(source.name()),
        index_replication_factor: rf(source, 3),
        use_defaults_from: strait::config::Side::Target,
        sync_topic_configs: Some(Duration::from_secs(2)),
        sync_topic_acls: Some(Duration::from_secs(2)),
        group: None,
        receipts: None,
        authority: None,
        exactly_once: None,
        records_path: None,
    }
}

/// Produce `n` records to `topic` round-robin over `partitions`, value = "<topic>:<seq>", with a
/// header and a timestamp; waits for every acknowledgement.
pub(crate) async fn produce_seq(c: &Cluster, topic: &str, partitions: i32, n: usize) {
    use futures::stream::{FuturesUnordered, StreamExt};
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    let p = producer(c);
    let mut pending = FuturesUnordered::new();
    for i in 0..n {
        let value = format!("{topic}:{i}");
        let key = format!("k{}", i % 101);
        let rec = FutureRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition((i % partitions as usize) as i32)
            .timestamp(1_700_000_000_000 + i as i64)
            .headers(OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(i.to_string().as_bytes()),
            }));
        pending.push(p.send_result(rec).map_err(|(e, _)| e).expect("enqueue"));
        if pending.len() >= 5000 {
            while let Some(r) = pending.next().await {
                r.unwrap().expect("delivered");
                if pending.len() < 1000 {
                    break;
                }
            }
        }
    }
    while let Some(r) = pending.next().await {
        r.unwrap().expect("delivered");
    }
}

// ---- `strait` as a child process ----

use std::process::{Child, Command, Stdio};

pub(crate) fn strait() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strait"))
}

/// A `strait run` child that is killed when dropped, so a failing test leaves no process behind.
pub(crate) struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Start `strait run CONFIG`. Its log goes nowhere unless `STRAIT_TEST_CHILD_LOG` is set (to a
/// log filter such as `info`), then to the test's stderr.
pub(crate) fn spawn_run(config: &Path) -> Running {
    let log = std::env::var("STRAIT_TEST_CHILD_LOG").ok();
    Running(
        strait()
            .arg("run")
            .arg(config)
            .env("STRAIT_LOG", log.clone().unwrap_or_else(|| "warn".into()))
            .stdout(Stdio::null())
            .stderr(if log.is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap(),
    )
}

pub(crate) fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

// ---- MM2 configs, groups and time, shared by the process tests ----

/// An MM2 file for the sandbox: us-east -> us-west enabled for `orders`, every replication factor
/// 1 (one broker per region), then `extra` (intervals and the like, one `key = value` a line).
pub(crate) fn mm2_config(
    dir: &tempfile::TempDir,
    east: &str,
    west: &str,
    extra: &str,
) -> std::path::PathBuf {
    mm2_config_named(dir.path(), "mm2.properties", east, west, extra)
}

/// [`mm2_config`] in `dir/name`.
pub(crate) fn mm2_config_named(
    dir: &Path,
    name: &str,
    east: &str,
    west: &str,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "clusters = us-east, us-west\n\
             us-east.bootstrap.servers = {east}\n\
             us-west.bootstrap.servers = {west}\n\
             us-east->us-west.enabled = true\n\
             us-east->us-west.topics = orders\n\
             replication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\n\
             checkpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             {extra}\n"
        ),
    )
    .unwrap();
    path
}

/// Commit `offsets` (topic, partition, offset) for `group` on `c`, as a client that is not a
/// member of the group (the broker stores them as for any client).
pub(crate) async fn commit_group(c: &Cluster, group: &str, offsets: &[(&str, i32, i64)]) {
    use rdkafka::consumer::CommitMode;
    let ep = endpoint(c);
    let group = group.to_string();
    let offsets: Vec<(String, i32, i64)> = offsets
        .iter()
        .map(|(t, p, o)| (t.to_string(), *p, *o))
        .collect();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep.consumer_config(&group).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in &offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o)).unwrap();
        }
        // Apache Kafka answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS while it creates
        // or loads __consumer_offsets: retried, as every Kafka client does.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            assert!(Instant::now() < deadline, "commit: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
}

/// The committed offsets of `group` for partitions 0..n of `topic` (absent: no commit).
pub(crate) async fn committed(c: &Cluster, group: &str, topic: &str, n: i32) -> BTreeMap<i32, i64> {
    let ep = endpoint(c);
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep.consumer_config(&group).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..n {
            tpl.add_partition(&topic, p);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let got = loop {
            match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
                Ok(got) => break got,
                Err(e) => assert!(Instant::now() < deadline, "committed offsets: {e}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    })
    .await
    .unwrap()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Produce `<prefix>:<i>` for each i in `range` to `topic` (key `k`), to partition
/// `i % partitions`, stamped `timestamp` (or now), on a blocking thread; waits for every
/// acknowledgement.
pub(crate) async fn produce_range(
    c: &Cluster,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
    prefix: &str,
    timestamp: Option<i64>,
) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let ep = endpoint(c);
    let (topic, prefix) = (topic.to_string(), prefix.to_string());
    tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ep.producer_config().create().unwrap();
        for i in range {
            let v = format!("{prefix}:{i}");
            let mut rec = BaseRecord::to(&topic)
                .key("k")
                .payload(&v)
                .partition(i as i32 % partitions)
                .timestamp(timestamp.unwrap_or_else(now_ms));
            while let Err((_, r)) = p.send(rec) {
                rec = r;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        p.flush(Duration::from_secs(60)).expect("flush");
    })
    .await
    .unwrap();
}

// ---- `strait run --http` and plain HTTP ----

use std::path::Path;

/// `strait run CONFIG --http ADDR`, killed when dropped. Its log (filter `STRAIT_TEST_CHILD_LOG`,
/// default `info`) goes to `log`, shown when an assertion fails.
pub(crate) fn spawn_run_http(config: &Path, addr: &str, log: &Path) -> Running {
    run_logged(config, &["--http", addr], log)
}

/// `strait run CONFIG` with its log (info, or `STRAIT_TEST_CHILD_LOG`) written afresh to `log`.
pub(crate) fn spawn_run_logged(config: &Path, log: &Path) -> Running {
    run_logged(config, &[], log)
}

fn run_logged(config: &Path, args: &[&str], log: &Path) -> Running {
    let filter = std::env::var("STRAIT_TEST_CHILD_LOG").unwrap_or_else(|_| "info".into());
    Running(
        strait()
            .arg("run")
            .arg(config)
            .args(args)
            .env("STRAIT_LOG", filter)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Prints the end of a `strait run` log if the test fails while it is alive.
pub(crate) struct ShowOnPanic(pub(crate) std::path::PathBuf);

impl Drop for ShowOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ---\n{}",
                self.0.display(),
                log_tail(&self.0, 60)
            );
        }
    }
}

/// The last `lines` lines of a log file (empty when it cannot be read).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Send `sig` and wait for the process to exit, failing the test after `within`: its exit
/// status and how long the stop took.
pub(crate) async fn signal_and_wait(
    child: &mut Running,
    sig: &str,
    within: Duration,
) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    signal(child, sig);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s, t.elapsed());
        }
        assert!(t.elapsed() < within, "still running {within:?} after {sig}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What an HTTP server answered.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request to `http://{addr}{path}` with extra request `headers`. Blocking. An error
/// status is an answer; only a failure to connect or read is an error.
pub(crate) fn http_request_blocking(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpAnswer> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout_read(Duration::from_secs(20))
        .build();
    let mut req = agent.request(method, &format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|k| Some((k.to_ascii_lowercase(), resp.header(&k)?.to_string())))
        .collect();
    Ok(HttpAnswer {
        status: resp.status(),
        headers,
        body: resp.into_string()?,
    })
}

/// One HTTP GET: (status code, body). Blocking.
pub(crate) fn http_get_blocking(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request_blocking("GET", addr, path, &[]).map(|a| (a.status, a.body))
}

/// [`http_request_blocking`] on a blocking thread (never on a tokio worker).
pub(crate) async fn http_request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpAnswer> {
    let (method, addr, path) = (method.to_string(), addr.to_string(), path.to_string());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http_request_blocking(&method, &addr, &path, &h)
    })
    .await
    .unwrap()
}

/// GET on a blocking thread (never on a tokio worker): (status code, body).
pub(crate) async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request("GET", addr, path, &[])
        .await
        .map(|a| (a.status, a.body))
}

// ---- strait's JSON outputs ----

/// `text`, a `--json` output of strait (`what` names it in messages), as its report type `T`.
/// Reading it must succeed, and writing the value again must give the same document: the typed
/// value holds everything the output says, no field dropped, renamed or retyped. Tests then
/// assert on typed fields; a change of the format fails here first.
pub(crate) fn typed<T: serde::Serialize + serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> T {
    let doc: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text:?}"));
    let value: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what}: not a {} ({e}): {text}", std::any::type_name::<T>()));
    let again = serde_json::to_value(&value).expect("report types serialize");
    assert_eq!(
        again,
        doc,
        "{what}: the {} read from it writes another document",
        std::any::type_name::<T>()
    );
    value
}

// ---- the usual setup: two regions, `orders` on us-east, an MM2 file ----

/// Two sandbox regions, us-east and us-west, with `orders` (3 partitions) on us-east and an MM2
/// file for us-east -> us-west (see [`mm2_config`]) followed by `extra`.
pub(crate) struct Regions {
    pub sandbox: strait_sandbox::Sandbox,
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
}

impl Regions {
    pub(crate) async fn start(extra: &str) -> Self {
        Self::start_on(Engine::Tansu, extra).await
    }

    /// The same on `engine`.
    pub(crate) async fn start_on(engine: Engine, extra: &str) -> Self {
        let sandbox = engine.start(&["us-east", "us-west"]).await;
        let dir = tempfile::tempdir().unwrap();
        let (east, west) = (
            sandbox.cluster("us-east").unwrap(),
            sandbox.cluster("us-west").unwrap(),
        );
        create_topic(east, "orders", 3).await;
        let config = mm2_config(
            &dir,
            &east.bootstrap_servers(),
            &west.bootstrap_servers(),
            extra,
        );
        Self {
            sandbox,
            dir,
            config,
        }
    }

    pub(crate) fn east(&self) -> &Cluster {
        self.sandbox.cluster("us-east").unwrap()
    }

    pub(crate) fn west(&self) -> &Cluster {
        self.sandbox.cluster("us-west").unwrap()
    }
}

// ---- Apache Kafka ----

/// How to start Apache Kafka clusters in tests: classpath cache and kept logs under `target/tmp`.
/// `None` only when the developer opted out with `STRAIT_TEST_KAFKA=0`, which is said on stderr
/// (a missing Java or Maven is a test failure that says what to install, never a skip).
pub(crate) fn kafka_spec(security: strait_sandbox::Security) -> Option<strait_sandbox::KafkaSpec> {
    init_logs();
    if std::env::var("STRAIT_TEST_KAFKA").as_deref() == Ok("0") {
        eprintln!("SKIPPED: Apache Kafka tests are turned off (STRAIT_TEST_KAFKA=0)");
        return None;
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut spec = strait_sandbox::KafkaSpec::new(security);
    spec.cache_dir = tmp.join("kafka-cache");
    spec.log_dir = Some(tmp.join("kafka-logs"));
    Some(spec)
}

/// Held by the tests that move tens of thousands of records, so that the two engines' variants of
/// one (and two such tests) never share the two cores of a CI machine: each alone finishes in
/// seconds, together with a JVM broker they could starve each other past their deadlines.
pub(crate) async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// Which broker a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    /// The embedded Tansu sandbox.
    Tansu,
    /// Apache Kafka (one node per cluster, PLAINTEXT) from the test bed.
    Kafka,
}

impl Engine {
    /// One cluster named `name` on this engine.
    pub(crate) async fn cluster(self, name: &str) -> Cluster {
        match self {
            Engine::Tansu => Cluster::start(name).await.unwrap(),
            Engine::Kafka => {
                let spec = kafka_spec(strait_sandbox::Security::Plaintext)
                    .expect("Apache Kafka tests are turned off");
                Cluster::start_kafka(name, &spec)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        }
    }

    /// One cluster per name on this engine.
    pub(crate) async fn start(self, names: &[&str]) -> strait_sandbox::Sandbox {
        match self {
            Engine::Tansu => strait_sandbox::Sandbox::start(names).await.unwrap(),
            Engine::Kafka => {
                let spec = kafka_spec(strait_sandbox::Security::Plaintext)
                    .expect("Apache Kafka tests are turned off");
                strait_sandbox::Sandbox::start_kafka(names, &spec)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        }
    }
}

/// Whether Apache Kafka tests run (says so on stderr when they do not).
pub(crate) fn kafka_enabled() -> bool {
    kafka_spec(strait_sandbox::Security::Plaintext).is_some()
}

/// One test body, run as two tests: `<name>::tansu` and `<name>::kafka`.
#[allow(unused_macros)]
macro_rules! on_both_engines {
    ($(#[$attr:meta])* async fn $name:ident($engine:ident) $body:block) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($engine: Engine) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn tansu() {
                body(Engine::Tansu).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn kafka() {
                if kafka_enabled() {
                    body(Engine::Kafka).await
                }
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_engines;

// ---- deleting what retention or an operator deletes ----

/// Delete the records of `topic`-`partition` below `before` on `c` (Kafka's DeleteRecords, as
/// `kafka-delete-records.sh`): its log start moves there, as retention would move it.
pub(crate) async fn delete_records(c: &Cluster, topic: &str, partition: i32, before: i64) {
    let client: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        endpoint(c).admin_config().create().expect("admin");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(before))
        .unwrap();
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let got = client
        .delete_records(&tpl, &opts)
        .await
        .expect("delete records");
    for e in got.elements() {
        assert!(e.error().is_ok(), "delete records: {:?}", e.error());
    }
    let (lo, _) = admin(c).watermarks(topic, partition).await.unwrap();
    assert_eq!(lo, before, "{}: log start of {topic}-{partition}", c.name());
}

/// Delete `topic` and wait until the cluster no longer lists it.
pub(crate) async fn delete_topic(c: &Cluster, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let a: AdminClient<DefaultClientContext> = endpoint(c).admin_config().create().unwrap();
    let done = a
        .delete_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("delete topic");
    for r in done {
        r.expect("topic deleted");
    }
    let t = Instant::now();
    // Listing every topic: asking for this one by name would create it again (auto-creation).
    while admin(c)
        .topics(None)
        .await
        .is_ok_and(|t| t.iter().any(|t| t.name == topic))
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{topic} still listed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An active-active MM2 file for the two test regions `east` and `west`: both flows on,
/// replication factor 1, topics looked for every second, consumer sessions of `session_ms` (so a
/// killed process's partitions move on in time), then `extra` (the conflict rules).
pub(crate) fn two_regions_config(
    east: &Cluster,
    west: &Cluster,
    session_ms: u32,
    extra: &str,
) -> String {
    format!(
        "clusters = east, west\n\
         east.bootstrap.servers = {}\n\
         west.bootstrap.servers = {}\n\
         east->west.enabled = true\n\
         west->east.enabled = true\n\
         replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         refresh.topics.interval.seconds = 1\n\
         east.consumer.session.timeout.ms = {session_ms}\n\
         west.consumer.session.timeout.ms = {session_ms}\n\
         {extra}",
        east.bootstrap_servers(),
        west.bootstrap_servers()
    )
}
