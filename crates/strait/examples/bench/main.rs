//! Replication benchmark (README: "Benchmark").
//!
//! `cargo run --release -p strait --example bench -- [--mb 1024] [--partitions 6]
//!  [--engine tansu|kafka] [--probe-secs 20] [--skip b,d,e,f,g,h,r]`
//! `cargo run --release -p strait --example bench -- --conflicts [--keys 1000000] [--partitions 6]
//!  [--engine tansu|kafka] [--write-delay-ms N] [--rate R]`: the conflict-topic run instead (see `run_conflicts`): last-writer-wins
//!  views of N keys in two regions, against the same records replicated with no rule, and a restart.
//!
//! Starts two clusters, A and B (the Tansu sandbox in this process, or Apache Kafka brokers from
//! the test bed's jars), writes about `--mb` MB of ~1 KB JSON-like records with random fields
//! (they compress about 2:1, like real data; constant bytes would flatter every replicator) to
//! `bench` on A, then, in the same run, measures:
//! - (a) the raw produce rate of the same records straight into B: the ceiling;
//! - (b) a bare rdkafka consume -> produce loop with no bookkeeping, in a child process;
//! - (h) the passthrough prototype (`raw_loop.rs`): record batches fetched and produced as bytes,
//!   never decompressed, in a child process;
//! - (c) `strait run` replicating `bench` A -> B, in a child process: record batches copied as
//!   they are (passthrough, the default); (r) the same, record by record (`strait.data.path =
//!   records`, the path of exactly-once flows and conflict rules);
//! - with `--engine kafka`: (d) MirrorMaker 2 in dedicated mode on the same file with its
//!   defaults, and (e) with `tasks.max` = partitions; (f) and (g) `strait run` exactly once
//!   (`exactly.once.support = required`), with a transaction every 100 ms (the default) and
//!   every second. Their copies are counted by the remote topic's end, which transaction markers
//!   also move (one a partition a transaction): their window ends up to a few tenths of a per
//!   cent early.
//!
//! For (b)-(e): time from launch to the first copy on B, then from the first copy to the last;
//! MB/s and records/s over that window; the process's CPU-seconds per GB in the window (a JVM's
//! every thread included) and peak RSS (from /proc). Brokers are not counted against any of them.
//! Target producers use zstd, linger 20 ms and 1 MB batches in all. Then each replicator, still
//! running, copies a probe: records written at half of strait's rate for `--probe-secs`, stamped
//! when written; a reader on B takes arrival minus stamp, reported as p50 and p99.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strait::kafka::{Admin, Endpoint, TopicSpec};
use strait_sandbox::Sandbox;

mod raw_loop;
#[path = "../../tests/it/common/stored.rs"]
mod stored;

struct Args {
    mb: u64,
    partitions: i32,
    engine: Engine,
    probe_secs: u64,
    /// `--conflicts`: the conflict-topic run instead of the replication runs.
    conflicts: bool,
    keys: u64,
    /// `--write-delay-ms`: `strait.conflicts.write.delay.max.ms` of the rule's run (default: unset).
    write_delay_ms: Option<u64>,
    /// `--rate`: the conflict run's writes a second (both regions together), written while
    /// strait runs, instead of all before it starts.
    rate: Option<u64>,
    /// `--skip d,e`: replication runs left out (any but (a) and (c), which sets the probes' rate).
    skip: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        mb: 1024,
        partitions: 6,
        engine: Engine::Tansu,
        probe_secs: 20,
        conflicts: false,
        keys: 1_000_000,
        write_delay_ms: None,
        rate: None,
        skip: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--conflicts" {
            a.conflicts = true;
            continue;
        }
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--mb" => a.mb = v.parse().map_err(|_| format!("--mb {v}: not a number"))?,
            "--partitions" => {
                a.partitions = v
                    .parse()
                    .map_err(|_| format!("--partitions {v}: not a number"))?
            }
            "--engine" => {
                a.engine = match v.as_str() {
                    "tansu" => Engine::Tansu,
                    "kafka" => Engine::Kafka,
                    _ => return Err(format!("--engine {v}: tansu or kafka")),
                }
            }
            "--probe-secs" => {
                a.probe_secs = v
                    .parse()
                    .map_err(|_| format!("--probe-secs {v}: not a number"))?
            }
            "--keys" => a.keys = v.parse().map_err(|_| format!("--keys {v}: not a number"))?,
            "--rate" => {
                a.rate = Some(
                    v.parse()
                        .ok()
                        .filter(|r| *r > 0)
                        .ok_or(format!("--rate {v}: a number of writes a second"))?,
                )
            }
            "--write-delay-ms" => {
                a.write_delay_ms = Some(
                    v.parse()
                        .map_err(|_| format!("--write-delay-ms {v}: not a number"))?,
                )
            }
            "--skip" => {
                a.skip = v.split(',').map(|r| r.trim().to_string()).collect();
                if let Some(r) = a
                    .skip
                    .iter()
                    .find(|r| !matches!(r.as_str(), "b" | "d" | "e" | "f" | "g" | "h" | "r"))
                {
                    return Err(format!("--skip {r}: one of b, d, e, f, g, h, r"));
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// Deterministic xorshift, so every run writes the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + (self.next() % 26) as u8) as char)
            .collect()
    }
}

/// About 1 KB of JSON with random fields.
fn record(rng: &mut Rng, i: u64) -> Vec<u8> {
    let items: Vec<String> = (0..16)
        .map(|_| {
            format!(
                "{{\"sku\":{},\"qty\":{},\"price\":{}.{:02}}}",
                rng.next() % 1_000_000,
                1 + rng.next() % 9,
                rng.next() % 500,
                rng.next() % 100
            )
        })
        .collect();
    format!(
        "{{\"id\":{i},\"user\":\"{}\",\"region\":\"{}\",\"items\":[{}],\"note\":\"{} {} {} {}\"}}",
        rng.word(12),
        ["us-east", "us-west", "eu-west"][(rng.next() % 3) as usize],
        items.join(","),
        rng.word(60),
        rng.word(60),
        rng.word(60),
        rng.word(60)
    )
    .into_bytes()
}

fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    let mut cfg = Endpoint::new("bench", bootstrap).producer_config();
    cfg.set("compression.type", "zstd")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "500000");
    cfg.create().expect("producer")
}

fn send(
    p: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
    key: &[u8],
    v: &[u8],
) {
    let mut rec = BaseRecord::to(topic)
        .partition(partition)
        .key(key)
        .payload(v);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Produce `n` records to `topic`; returns (bytes, seconds).
fn produce(bootstrap: &str, topic: &str, partitions: i32, n: u64) -> (u64, f64) {
    let p = producer(bootstrap);
    let mut rng = Rng(0x5eed);
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let v = record(&mut rng, i);
        bytes += v.len() as u64;
        send(
            &p,
            topic,
            (i % partitions as u64) as i32,
            (i % 1000).to_string().as_bytes(),
            &v,
        );
    }
    p.flush(Duration::from_secs(300)).expect("flush");
    (bytes, t.elapsed().as_secs_f64())
}

/// (b): consume everything from `topics` on `src`, produce each record to `loop.<topic>` on
/// `dst` with the same partition; exit when `n` records were copied. Runs as a child process:
/// `bench --loop SRC DST TOPIC[,TOPIC] PARTITIONS N`.
fn bare_loop(src: &str, dst: &str, topics: &str, partitions: i32, n: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", src)
        .set("group.id", "bench-loop")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for topic in topics.split(',') {
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let p = producer(dst);
    let mut copied = 0;
    while copied < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let out = format!("loop.{}", m.topic());
            let mut rec = BaseRecord::to(&out)
                .partition(m.partition())
                .key(m.key().unwrap_or(b""))
                .payload(m.payload().unwrap_or(b""));
            if let Some(ts) = m.timestamp().to_millis() {
                rec = rec.timestamp(ts);
            }
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            copied += 1;
        }
    }
    p.flush(Duration::from_secs(300)).expect("flush");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What one latency probe saw.
struct Probe {
    /// Arrival on the target minus the stamp, ms, sorted; copies that did not arrive within a
    /// minute of the last write are missing.
    arrival: Vec<i64>,
    /// The writer's own acknowledgement from the source minus the stamp, ms, sorted: what the
    /// source broker and the client add before any replicator sees the record.
    ack: Vec<i64>,
    written: u64,
    /// Wall-clock window of the writes, for the GC pauses that fell in it.
    window: (std::time::SystemTime, std::time::SystemTime),
}

/// Records each delivery's acknowledgement latency (now minus the record's stamp).
struct AckTimes(std::sync::Mutex<Vec<i64>>);

impl rdkafka::ClientContext for AckTimes {}

impl rdkafka::producer::ProducerContext for AckTimes {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            if let Some(ts) = m.timestamp().to_millis() {
                self.0.lock().unwrap().push(now_ms() - ts);
            }
        }
    }
}

/// The latency probe: write `count` records at `rate` a second to `topic` on `src`, stamped with
/// the time of writing, and read their copies from `remote` on `dst`. The writer and the reader
/// are connected before the first stamp, so that neither one's start-up counts as latency.
#[allow(clippy::too_many_arguments)]
fn probe(
    key: &'static str,
    src: &str,
    dst: &str,
    topic: &str,
    remote: &str,
    partitions: i32,
    rate: f64,
    count: u64,
) -> Probe {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", dst)
        .set("group.id", "bench-probe")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(remote, p, Offset::End).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    // Connected to every leader, and fetching, before anything is written.
    for p in 0..partitions {
        consumer
            .fetch_watermarks(remote, p, Duration::from_secs(30))
            .expect("probe reader: watermarks");
    }
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    let mut cfg = Endpoint::new("probe", src).producer_config();
    // A few ms of batching: at tens of thousands of records a second, one request per record
    // would measure the source broker's request rate instead of the replicator.
    cfg.set("compression.type", "zstd").set("linger.ms", "2");
    let p: ThreadedProducer<AckTimes> = cfg
        .create_with_context(AckTimes(Default::default()))
        .expect("producer");
    p.client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("probe writer: metadata");
    let topic = topic.to_string();
    let began = std::time::SystemTime::now();
    let writer = std::thread::spawn(move || {
        let mut rng = Rng(0x9e37);
        let start = Instant::now();
        for i in 0..count {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let v = record(&mut rng, i);
            let mut rec = BaseRecord::to(&topic)
                .partition((i % partitions as u64) as i32)
                .key(key.as_bytes())
                .payload(&v)
                .timestamp(now_ms());
            while let Err((_, r)) = p.send(rec) {
                rec = r;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        p.flush(Duration::from_secs(60)).expect("flush");
        let ended = std::time::SystemTime::now();
        let mut ack = std::mem::take(&mut *p.context().0.lock().unwrap());
        ack.sort_unstable();
        (ack, ended)
    });
    let mut lat = Vec::with_capacity(count as usize);
    let mut deadline = None;
    while (lat.len() as u64) < count {
        if writer.is_finished() && deadline.is_none() {
            deadline = Some(Instant::now() + Duration::from_secs(60));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            if m.key() != Some(key.as_bytes()) {
                continue;
            }
            if let Some(ts) = m.timestamp().to_millis() {
                lat.push(now_ms() - ts);
            }
        }
    }
    let (ack, ended) = writer.join().unwrap();
    lat.sort_unstable();
    Probe {
        arrival: lat,
        ack,
        written: count,
        window: (began, ended),
    }
}

/// Stop-the-world pauses in `logs` (`-Xlog:gc*` with `utctime,tags`) that began within `window`:
/// how many, the longest and their sum, in ms.
fn gc_pauses(
    logs: &[std::path::PathBuf],
    window: (std::time::SystemTime, std::time::SystemTime),
) -> (usize, f64, f64) {
    let (mut n, mut max, mut sum) = (0, 0.0f64, 0.0);
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            // [2026-11-26T08:11:21.301+0000][gc          ] GC(0) Pause Young (...) 6M->3M(64M) 7.889ms
            let Some(rest) = line.strip_prefix('[') else {
                continue;
            };
            let Some((when, rest)) = rest.split_once("][") else {
                continue;
            };
            let Some((tags, msg)) = rest.split_once(']') else {
                continue;
            };
            if tags.trim() != "gc" || !msg.contains(" Pause ") {
                continue;
            }
            let Some(ms) = msg
                .rsplit(' ')
                .next()
                .and_then(|t| t.strip_suffix("ms"))
                .and_then(|t| t.parse::<f64>().ok())
            else {
                continue;
            };
            let Ok(t) = humantime::parse_rfc3339(&format!("{}Z", when.get(..23).unwrap_or("")))
            else {
                continue;
            };
            if t >= window.0 && t <= window.1 {
                n += 1;
                max = max.max(ms);
                sum += ms;
            }
        }
    }
    (n, max, sum)
}

fn percentile(sorted: &[i64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    Some(sorted[i] as f64)
}

/// CPU seconds (user + system) and peak RSS in MB of a live process.
fn proc_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // CLK_TCK on Linux
    let cpu = (f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0))
        / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm_kb / 1024.0)
}

async fn count(admin: &Admin, topic: &str, partitions: i32) -> u64 {
    let mut n = 0;
    for p in 0..partitions {
        n += admin
            .watermarks(topic, p)
            .await
            .map(|(lo, hi)| hi - lo)
            .unwrap_or(0);
    }
    n as u64
}

struct Row {
    name: String,
    /// Launch to the first copied record.
    start: Option<f64>,
    /// First copied record to the last (or the whole produce, for (a)).
    secs: f64,
    /// CPU seconds of the replicator over `secs`.
    cpu: Option<f64>,
    rss_mb: Option<f64>,
    /// The probes at half and at a tenth of strait's rate.
    latency: Vec<Probe>,
    /// GC logs of the brokers and of the replicator (MM2), to find pauses in a probe's window.
    gc_logs: Vec<std::path::PathBuf>,
    /// Where the run's copies are, on the target: the topic the stored bytes are read of.
    remote: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    Tansu,
    Kafka,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--loop") {
        let n = argv[6].parse().unwrap();
        bare_loop(&argv[2], &argv[3], &argv[4], argv[5].parse().unwrap(), n);
        return;
    }
    if argv.get(1).map(String::as_str) == Some("--raw-loop") {
        let n = argv[6].parse().unwrap();
        raw_loop::raw_loop(&argv[2], &argv[3], &argv[4], argv[5].parse().unwrap(), n);
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    if args.conflicts {
        rt.block_on(run_conflicts(args));
    } else {
        rt.block_on(run(args));
    }
}

/// A replicator under test, started: its pid, and how to stop it.
enum Child {
    Process(std::process::Child),
    Mm2(strait_sandbox::kafka::mm2::Mm2),
}

impl Child {
    fn pid(&self) -> u32 {
        match self {
            Child::Process(c) => c.id(),
            Child::Mm2(m) => m.pid(),
        }
    }

    fn stop(self) {
        match self {
            Child::Process(mut c) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let _ = c.wait();
            }
            Child::Mm2(mut m) => {
                m.terminate(Duration::from_secs(30));
            }
        }
    }
}

/// Panic, rather than wait forever, when the replicator under test has exited (its log, kept
/// with the run's files, says why).
fn still_running(child: &Child) {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid())).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.trim().chars().next());
    if matches!(state, None | Some('Z') | Some('X')) {
        panic!("the replicator under test (pid {}) exited before copying everything; its log is with the run's files", child.pid());
    }
}

/// An admin client that knows `topic`: a client asked about a topic before it exists keeps
/// answering "unknown" from its metadata cache, so new ones ask until the replicator created it.
/// Gives up when `child`, the replicator that creates the topic, exited.
async fn fresh_admin(b: &Endpoint, topic: &str, parts: i32, child: Option<&Child>) -> Admin {
    loop {
        let admin = Admin::new(b, Duration::from_secs(30)).unwrap();
        if admin.watermarks(topic, parts - 1).await.is_ok() {
            return admin;
        }
        if let Some(c) = child {
            still_running(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Time a replicator copying `n` records into `remote` on b: launch to the first copy, first copy
/// to the last, its CPU seconds in that window and its peak RSS.
async fn copy_window(
    b: &Endpoint,
    child: &Child,
    remote: &str,
    parts: i32,
    n: u64,
    launched: Instant,
) -> (f64, f64, f64, f64) {
    let admin_b = &fresh_admin(b, remote, parts, Some(child)).await;
    while count(admin_b, remote, parts).await == 0 {
        still_running(child);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = Instant::now();
    let (cpu0, _) = proc_usage(child.pid());
    while count(admin_b, remote, parts).await < n {
        still_running(child);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu1, rss) = proc_usage(child.pid());
    (
        first.duration_since(launched).as_secs_f64(),
        first.elapsed().as_secs_f64(),
        cpu1 - cpu0,
        rss,
    )
}

async fn run(args: Args) {
    let kafka_spec = strait_sandbox::KafkaSpec::new(strait_sandbox::Security::Plaintext);
    let sb = match args.engine {
        Engine::Tansu => Sandbox::start(&["a", "b"]).await.expect("sandbox"),
        Engine::Kafka => {
            let mut spec = kafka_spec.clone();
            spec.jvm = strait_sandbox::JvmProfile::Stock;
            Sandbox::start_kafka(&["a", "b"], &spec)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let (a, b) = (sb.cluster("a").unwrap(), sb.cluster("b").unwrap());
    let (sa, sb_) = (a.bootstrap_servers(), b.bootstrap_servers());
    let mut sample = Rng(0x5eed);
    let avg = (0..1000)
        .map(|i| record(&mut sample, i).len() as u64)
        .sum::<u64>()
        / 1000;
    let n = args.mb * 1_000_000 / avg;
    let parts = args.partitions;
    let admin_a = Admin::new(&Endpoint::new("a", &sa), Duration::from_secs(30)).unwrap();
    let admin_b = Admin::new(&Endpoint::new("b", &sb_), Duration::from_secs(30)).unwrap();
    let mut runs: Vec<(&str, &str)> = vec![
        ("(c) strait run (passthrough, the default)", "c"),
        ("(r) strait run, record by record", "r"),
    ];
    if args.engine == Engine::Kafka {
        runs.push((
            "(f) strait run, exactly once (a transaction every 100 ms)",
            "f",
        ));
        runs.push((
            "(g) strait run, exactly once (a transaction every 1 s)",
            "g",
        ));
        runs.push(("(d) MirrorMaker 2, defaults", "d"));
        runs.push(("(e) MirrorMaker 2, tasks.max = partitions", "e"));
    }
    let mut topics = vec![
        (&admin_a, "bench".to_string()),
        (&admin_b, "raw".to_string()),
        (&admin_b, "loop.bench".to_string()),
        (&admin_b, "loop.probe-b".to_string()),
        (&admin_b, "rawloop.bench".to_string()),
        (&admin_b, "rawloop.probe-h".to_string()),
        (&admin_b, "probe-a".to_string()),
    ];
    for id in ["b", "c", "d", "e", "f", "g", "h", "r"] {
        topics.push((&admin_a, format!("probe-{id}")));
    }
    for (ad, t) in &topics {
        ad.create_topics(&[TopicSpec::new(t, parts, 1)])
            .await
            .unwrap();
    }

    eprintln!("writing {n} records to a/bench ...");
    let (s1, s2) = (sa.clone(), sb_.clone());
    let (bytes, _) = tokio::task::spawn_blocking(move || produce(&s1, "bench", parts, n))
        .await
        .unwrap();
    let mb = bytes as f64 / 1e6;
    eprintln!("(a) raw produce into b ...");
    let (_, raw_secs) = tokio::task::spawn_blocking(move || produce(&s2, "raw", parts, n))
        .await
        .unwrap();
    let mut rows = vec![Row {
        name: "(a) raw produce into target".into(),
        start: None,
        secs: raw_secs,
        cpu: None,
        rss_mb: None,
        latency: Vec::new(),
        gc_logs: Vec::new(),
        remote: Some("raw".to_string()),
    }];
    let broker_gc: Vec<std::path::PathBuf> =
        a.gc_logs().iter().chain(b.gc_logs()).cloned().collect();

    // The latency probe runs at half of strait's rate; strait's run comes first for that reason,
    // the bare loop's probe after it.
    let probe_secs = args.probe_secs;
    let dir = std::env::temp_dir().join(format!("strait-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let strait = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("strait");
    let mut rate = 0.0;
    for (name, id) in runs
        .iter()
        .copied()
        .chain([
            ("(b) bare consume->produce loop", "b"),
            ("(h) raw batch loop (passthrough prototype)", "h"),
        ])
        .filter(|(_, id)| !args.skip.iter().any(|s| s == id))
    {
        eprintln!("{name} ...");
        // Each run replicates under its own source alias, so its copies land in a topic of their own.
        let alias = format!("s{id}");
        let probe_topic = format!("probe-{id}");
        // The loop exits after a set count: the bench, then both probes (half and a tenth of the rate).
        let probe_n = (rate * probe_secs as f64) as u64 + (rate / 5.0 * probe_secs as f64) as u64;
        let launched = Instant::now();
        let (child, remote, remote_probe) = match id {
            "b" | "h" => {
                let (flag, prefix) = if id == "b" {
                    ("--loop", "loop")
                } else {
                    ("--raw-loop", "rawloop")
                };
                let c = Command::new(&exe)
                    .args([
                        flag,
                        &sa,
                        &sb_,
                        &format!("bench,{probe_topic}"),
                        &parts.to_string(),
                        &(n + probe_n).to_string(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("loop child");
                (
                    Child::Process(c),
                    format!("{prefix}.bench"),
                    format!("{prefix}.{probe_topic}"),
                )
            }
            _ => {
                let cfg = dir.join(format!("{id}.properties"));
                let mut text = format!(
                    "clusters = {alias}, t{id}\n{alias}.bootstrap.servers = {sa}\nt{id}.bootstrap.servers = {sb_}\n\
                     {alias}->t{id}.enabled = true\n{alias}->t{id}.topics = bench|{probe_topic}\nreplication.factor = 1\n\
                     offset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
                     heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
                     status.storage.replication.factor = 1\nconfig.storage.replication.factor = 1\n\
                     t{id}.producer.compression.type = zstd\nt{id}.producer.linger.ms = 20\n\
                     t{id}.producer.batch.size = 1000000\n"
                );
                if id == "e" {
                    text.push_str(&format!("tasks.max = {parts}\n"));
                }
                if id == "r" {
                    text.push_str("strait.data.path = records\n");
                }
                if id == "f" || id == "g" {
                    text.push_str(&format!("{alias}->t{id}.exactly.once.support = required\n"));
                }
                if id == "g" {
                    text.push_str(&format!(
                        "{alias}->t{id}.transaction.boundary = interval\n\
                         {alias}->t{id}.transaction.boundary.interval.ms = 1000\n"
                    ));
                }
                std::fs::write(&cfg, text).unwrap();
                let child = if matches!(id, "c" | "f" | "g" | "r") {
                    Child::Process(
                        Command::new(&strait)
                            .arg("run")
                            .arg(&cfg)
                            // Kept with the run's files (removed at the end of a whole run).
                            .stderr(
                                std::fs::File::create(dir.join(format!("{id}.log")))
                                    .expect("strait's log"),
                            )
                            .spawn()
                            .unwrap_or_else(|e| {
                                panic!(
                                    "cannot start {}: {e} (build it with cargo build --release)",
                                    strait.display()
                                )
                            }),
                    )
                } else {
                    let log = dir.join(format!("{id}.log"));
                    Child::Mm2(
                        strait_sandbox::kafka::mm2::Mm2::start(
                            &kafka_spec.cache_dir,
                            &cfg,
                            &log,
                            strait_sandbox::JvmProfile::Stock,
                        )
                        .unwrap_or_else(|e| panic!("{e}")),
                    )
                };
                (
                    child,
                    format!("{alias}.bench"),
                    format!("{alias}.{probe_topic}"),
                )
            }
        };
        let b_ep = Endpoint::new("b", &sb_);
        let (start, secs, cpu, rss) = copy_window(&b_ep, &child, &remote, parts, n, launched).await;
        if id == "c" {
            rate = n as f64 / secs / 2.0;
        }
        let mut lat = Vec::new();
        for (key, r) in [("half", rate), ("tenth", rate / 5.0)] {
            let probe_n = (r * probe_secs as f64) as u64;
            if probe_n == 0 {
                continue;
            }
            fresh_admin(&b_ep, &remote_probe, parts, None).await;
            let (s1, s2, t, rt) = (
                sa.clone(),
                sb_.clone(),
                probe_topic.clone(),
                remote_probe.clone(),
            );
            let got = tokio::task::spawn_blocking(move || {
                probe(key, &s1, &s2, &t, &rt, parts, r, probe_n)
            })
            .await
            .unwrap();
            lat.push(got);
        }
        let mut gc_logs = broker_gc.clone();
        if let Child::Mm2(m) = &child {
            gc_logs.push(m.log().with_extension("gc.log"));
        }
        child.stop();
        rows.push(Row {
            name: name.to_string(),
            start: Some(start),
            secs,
            cpu: Some(cpu),
            rss_mb: Some(rss),
            latency: lat,
            gc_logs,
            remote: Some(remote.clone()),
        });
    }
    // The brokers' own latency, as a baseline for the probes above: the same probe written to B
    // and read back from B, no replicator between.
    for (key, r) in [("half", rate), ("tenth", rate / 5.0)] {
        let probe_n = (r * probe_secs as f64) as u64;
        if probe_n == 0 {
            continue;
        }
        let s2 = sb_.clone();
        let got = tokio::task::spawn_blocking(move || {
            probe(key, &s2, &s2, "probe-a", "probe-a", parts, r, probe_n)
        })
        .await
        .unwrap();
        rows[0].latency.push(got);
    }
    rows[0].gc_logs = broker_gc.clone();
    // Print (b) and (h) before (c), as in the earlier tables.
    rows.sort_by_key(|r| match &r.name[..3] {
        "(a)" => 0,
        "(b)" => 1,
        "(h)" => 2,
        _ => 3,
    });

    println!(
        "{n} records, {mb:.0} MB ({:.0} bytes each), {parts} partitions, zstd, on {}\n",
        bytes as f64 / n as f64,
        match args.engine {
            Engine::Tansu => "the Tansu sandbox".to_string(),
            Engine::Kafka => format!(
                "Apache Kafka {}",
                strait_sandbox::kafka::maven::kafka_version()
            ),
        }
    );
    println!(
        "latency probes: {probe_secs} s at {rate:.0} records/s (half of strait's rate), then at {:.0} (a tenth); \
         arrival on the target minus write time, p50 / p99 in ms\n",
        rate / 5.0
    );
    println!("| run | start s | seconds | MB/s | records/s | CPU-s per GB | peak RSS MB | latency at half rate | at a tenth |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let opt =
            |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
        let lat = |i: usize| match r.latency.get(i) {
            Some(p) if (p.arrival.len() as u64) < p.written => {
                format!("{} of {} arrived", p.arrival.len(), p.written)
            }
            Some(p) => format!(
                "{} / {}",
                opt(percentile(&p.arrival, 0.5), &|v| format!("{v:.0}")),
                opt(percentile(&p.arrival, 0.99), &|v| format!("{v:.0}"))
            ),
            None => "-".into(),
        };
        let (half, tenth) = (lat(0), lat(1));
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {} | {} | {half} | {tenth} |",
            r.name,
            opt(r.start, &|s| format!("{s:.1}")),
            r.secs,
            mb / r.secs,
            n as f64 / r.secs,
            opt(r.cpu, &|c| format!("{:.1}", c / (mb / 1000.0))),
            opt(r.rss_mb, &|m| format!("{m:.0}")),
        );
    }
    println!(
        "\nWhat the probes include: the writer's own acknowledgement from the source (p50 / p99 ms), \
         and the stop-the-world GC pauses of the brokers and of the replicator's JVM (MM2) while \
         they ran (count, longest, sum in ms; none without GC logs, that is on Tansu)\n"
    );
    println!(
        "| run | ack at half rate | GC pauses at half | ack at a tenth | GC pauses at a tenth |"
    );
    println!("|---|---|---|---|---|");
    for r in &rows {
        let cell = |i: usize| match r.latency.get(i) {
            Some(p) => {
                let ack = format!(
                    "{} / {}",
                    percentile(&p.ack, 0.5).map_or("-".into(), |v| format!("{v:.0}")),
                    percentile(&p.ack, 0.99).map_or("-".into(), |v| format!("{v:.0}"))
                );
                let (n, max, sum) = gc_pauses(&r.gc_logs, p.window);
                (ack, format!("{n}, {max:.0}, {sum:.0}"))
            }
            None => ("-".into(), "-".into()),
        };
        let ((ah, gh), (at, gt)) = (cell(0), cell(1));
        println!("| {} | {ah} | {gh} | {at} | {gt} |", r.name);
    }
    let secs = |name: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(name))
            .map(|r| r.secs)
    };
    let cpu = |name: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(name))
            .and_then(|r| r.cpu)
    };
    let c = secs("(c)").expect("strait's run");
    println!("\nstrait vs (a): {:.0} % of the rate", 100.0 * raw_secs / c);
    for other in ["(b)", "(h)"] {
        if let Some(o) = secs(other) {
            println!(
                "strait vs {other}: {:.0} % of the rate; {other} vs (a): {:.0} %",
                100.0 * o / c,
                100.0 * raw_secs / o
            );
        }
    }
    for m in ["(d)", "(e)"] {
        if let (Some(ms), Some(mc), Some(sc)) = (secs(m), cpu(m), cpu("(c)")) {
            println!(
                "strait vs {m}: {:.2}x the rate, {:.2}x the MB per CPU-second",
                ms / c,
                mc / sc
            );
        }
    }
    // What each copy takes on the target beside the source: a record path recompresses with its
    // own producer's settings (zstd here), a batch copy keeps the source's batches.
    let source_bytes = raw_loop::stored_bytes(&sa, "bench", parts).await;
    println!(
        "\nbytes stored: the source's `bench` {:.1} MB (record batches as stored)\n",
        source_bytes as f64 / 1e6
    );
    println!("| run | topic on the target | MB stored | against the source |");
    println!("|---|---|---|---|");
    for r in &rows {
        if let Some(topic) = &r.remote {
            let b = raw_loop::stored_bytes(&sb_, topic, parts).await;
            println!(
                "| {} | {topic} | {:.1} | {:+.1} % |",
                r.name,
                b as f64 / 1e6,
                100.0 * (b as f64 - source_bytes as f64) / source_bytes as f64
            );
        }
    }
    // Last: MM2's GC logs are in it.
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- `--conflicts`: last-writer-wins views ----

/// The conflict run's key `i`: the same bytes in both regions.
fn kv_key(i: u64) -> String {
    format!("key-{i:08}")
}

/// About 100 bytes of JSON: one key's state as one region writes it.
fn kv_value(rng: &mut Rng, i: u64, region: &str) -> Vec<u8> {
    format!(
        "{{\"id\":{i},\"region\":\"{region}\",\"status\":\"{}\",\"qty\":{},\"note\":\"{}\"}}",
        rng.word(10),
        rng.next() % 90 + 10,
        rng.word(40)
    )
    .into_bytes()
}

/// Write one version of each key of `keys` to `topic`, key `i` in partition `i % partitions`
/// (the same in both regions, as conflict handling needs), stamped now by the producer, at most
/// `rate` a second when given; returns the bytes written (keys and values).
fn produce_kv(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    keys: std::ops::Range<u64>,
    region: &str,
    seed: u64,
    rate: Option<u64>,
) -> u64 {
    let p = producer(bootstrap);
    let mut rng = Rng(seed);
    let mut bytes = 0;
    let start = Instant::now();
    for (n, i) in keys.enumerate() {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(n as f64 / r as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let k = kv_key(i);
        let v = kv_value(&mut rng, i, region);
        bytes += (k.len() + v.len()) as u64;
        send(&p, topic, (i % partitions as u64) as i32, k.as_bytes(), &v);
    }
    p.flush(Duration::from_secs(300)).expect("flush");
    bytes
}

/// Both regions' writes to `topic` (`keys.0` on a, `keys.1` on b) at once, each at half of
/// `rate` when given; the bytes written.
fn write_both(
    sa: &str,
    sb: &str,
    topic: &'static str,
    parts: i32,
    keys: (std::ops::Range<u64>, std::ops::Range<u64>),
    rate: Option<u64>,
) -> tokio::task::JoinHandle<u64> {
    let (s1, s2) = (sa.to_string(), sb.to_string());
    let half = rate.map(|r| (r / 2).max(1));
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let x = s.spawn(|| produce_kv(&s1, topic, parts, keys.0, "a", 0x5eed, half));
            let y = s.spawn(|| produce_kv(&s2, topic, parts, keys.1, "b", 0xbeef, half));
            x.join().unwrap() + y.join().unwrap()
        })
    })
}

/// Two regions `a` and `b` replicating `topic` both ways; with `rule`, a last-writer-wins rule
/// on it.
fn active_active_config(
    sa: &str,
    sb: &str,
    topic: &str,
    rule: bool,
    write_delay_ms: Option<u64>,
) -> String {
    let mut text = format!(
        "clusters = a, b\na.bootstrap.servers = {sa}\nb.bootstrap.servers = {sb}\n\
         a->b.enabled = true\nb->a.enabled = true\na->b.topics = {topic}\nb->a.topics = {topic}\n\
         replication.factor = 1\noffset-syncs.topic.replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\nheartbeats.topic.replication.factor = 1\n"
    );
    for c in ["a", "b"] {
        text.push_str(&format!(
            "{c}.producer.compression.type = zstd\n{c}.producer.linger.ms = 20\n\
             {c}.producer.batch.size = 1000000\n"
        ));
    }
    if rule {
        text.push_str(&format!(
            "strait.conflicts.rules = lww\nstrait.conflicts.regions = a, b\n\
             strait.conflicts.lww.topics = {topic}\nstrait.conflicts.lww.strategy = last-writer-wins\n"
        ));
        if let Some(ms) = write_delay_ms {
            text.push_str(&format!("strait.conflicts.write.delay.max.ms = {ms}\n"));
        }
    }
    text
}

/// Resident set size now, MB.
fn rss_now(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// One region as the conflict run watches it: its admin, a client of its view job's group (to
/// read the group's commits, never joining it), and its inputs with how many records each must
/// hold.
struct Region {
    admin: Admin,
    group: BaseConsumer,
    inputs: Vec<(String, u64)>,
}

impl Region {
    async fn new(bootstrap: &str, group: &str, inputs: Vec<(String, u64)>, parts: i32) -> Region {
        let ep = Endpoint::new("bench", bootstrap);
        // Fresh once every input exists (the remote copy is the replicator's to create).
        for (t, _) in &inputs {
            fresh_admin(&ep, t, parts, None).await;
        }
        let admin = Admin::new(&ep, Duration::from_secs(30)).unwrap();
        let group = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("group reader");
        Region {
            admin,
            group,
            inputs,
        }
    }

    /// Every input holds its records and, when `committed`, the group has committed every
    /// input partition to its end: the view job has written, and had acknowledged, the
    /// winners of everything.
    async fn done(&self, parts: i32, committed: bool) -> bool {
        for (topic, want) in &self.inputs {
            let mut ends = Vec::new();
            let mut total = 0;
            for p in 0..parts {
                let (lo, hi) = self.admin.watermarks(topic, p).await.unwrap_or((0, 0));
                total += hi - lo;
                ends.push(hi);
            }
            if (total as u64) < *want {
                return false;
            }
            if committed {
                let mut tpl = TopicPartitionList::new();
                for p in 0..parts {
                    tpl.add_partition(topic, p);
                }
                let got = tokio::task::block_in_place(|| {
                    self.group.committed_offsets(tpl, Duration::from_secs(10))
                });
                let Ok(got) = got else { return false };
                for e in got.elements() {
                    match e.offset() {
                        Offset::Offset(o) if o >= ends[e.partition() as usize] => {}
                        _ => return false,
                    }
                }
            }
        }
        true
    }
}

/// Wait until both regions are `done`.
async fn wait_done(regions: &[Region], parts: i32, committed: bool) {
    loop {
        let mut all = true;
        for r in regions {
            if !r.done(parts, committed).await {
                all = false;
                break;
            }
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Read a view topic to its end: each key's last value's digest, how many records, and their
/// bytes (keys, values, header names and values).
fn read_view(
    bootstrap: &str,
    topic: &str,
    parts: i32,
) -> (std::collections::HashMap<Vec<u8>, u64>, u64, u64) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-view-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("view reader");
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for p in 0..parts {
        let (lo, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .expect("view watermarks");
        if hi > lo {
            ends.insert(p, hi);
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    c.assign(&tpl).unwrap();
    let mut view = std::collections::HashMap::new();
    let (mut records, mut bytes) = (0, 0);
    while !ends.is_empty() {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
                if let Some(hs) = m.headers() {
                    bytes += hs
                        .iter()
                        .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                        .sum::<usize>();
                }
                if ends
                    .get(&m.partition())
                    .is_some_and(|e| m.offset() + 1 >= *e)
                {
                    ends.remove(&m.partition());
                }
                let d = m.payload().map_or(0, |v| {
                    v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
                    })
                });
                view.insert(m.key().unwrap_or_default().to_vec(), d);
            }
            _ => {
                // Compaction can leave the last offsets empty.
                if let Ok(pos) = c.position() {
                    for e in pos.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            if ends.get(&e.partition()).is_some_and(|end| o >= *end) {
                                ends.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
    }
    (view, records, bytes as u64)
}

/// A `strait run` of `cfg`, its stderr to `log`.
fn spawn_strait(
    strait: &std::path::Path,
    cfg: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    Command::new(strait)
        .arg("run")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with cargo build --release)",
                strait.display()
            )
        })
}

/// What one conflict-run phase measured.
struct Phase {
    name: &'static str,
    secs: f64,
    records: u64,
    bytes: u64,
    cpu: f64,
    peak_mb: f64,
    end_mb: f64,
}

/// The conflict-topic run (`--conflicts --keys N`): two regions writing the same topic, both
/// flows on; N distinct keys, a ~60 % of them written in a, ~60 % in b (a fifth in both).
/// Baseline: `plain`, replicated both ways with no rule, until both remote copies are complete.
/// Then `kv`, the same records, with a last-writer-wins rule on it, until both regions' view
/// jobs have committed every input (every winner written and acknowledged). Then a restart
/// (SIGTERM, one new version per partition in each region, start again) until the views are
/// current again: read back from the view topics, then the new versions taken in. Finally both
/// views are read: each must hold the N keys, with the same winners.
async fn run_conflicts(args: Args) {
    let sb = match args.engine {
        Engine::Tansu => Sandbox::start(&["a", "b"]).await.expect("sandbox"),
        Engine::Kafka => {
            let mut spec = strait_sandbox::KafkaSpec::new(strait_sandbox::Security::Plaintext);
            spec.jvm = strait_sandbox::JvmProfile::Stock;
            Sandbox::start_kafka(&["a", "b"], &spec)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let (ca, cb) = (sb.cluster("a").unwrap(), sb.cluster("b").unwrap());
    let (sa, sb_) = (ca.bootstrap_servers(), cb.bootstrap_servers());
    let (n, parts) = (args.keys, args.partitions);
    // a writes keys [0, 0.6 n), b writes [0.4 n, n): a fifth of the keys in both.
    let (a_keys, b_keys) = (0..n * 6 / 10, n * 4 / 10..n);
    let (na, nb) = (a_keys.end - a_keys.start, b_keys.end - b_keys.start);
    let admin_a = Admin::new(&Endpoint::new("a", &sa), Duration::from_secs(30)).unwrap();
    let admin_b = Admin::new(&Endpoint::new("b", &sb_), Duration::from_secs(30)).unwrap();
    for ad in [&admin_a, &admin_b] {
        ad.create_topics(&[
            TopicSpec::new("plain", parts, 1),
            TopicSpec::new("kv", parts, 1),
        ])
        .await
        .unwrap();
    }
    let write = |topic: &'static str, rate: Option<u64>| {
        write_both(
            &sa,
            &sb_,
            topic,
            parts,
            (a_keys.clone(), b_keys.clone()),
            rate,
        )
    };
    let mut bytes = 0;
    if args.rate.is_none() {
        eprintln!("writing {na} keys to a and {nb} to b, in plain and kv ...");
        for topic in ["plain", "kv"] {
            bytes = write(topic, None).await.unwrap();
        }
    }
    let dir = std::env::temp_dir().join(format!("strait-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let strait = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("strait");
    let mut phases = Vec::new();

    // Baseline: plain active-active replication.
    eprintln!("baseline: plain, both ways, no rule ...");
    let cfg = dir.join("plain.properties");
    std::fs::write(&cfg, active_active_config(&sa, &sb_, "plain", false, None)).unwrap();
    let launched = Instant::now();
    let child = spawn_strait(&strait, &cfg, &dir.join("plain.log"));
    let writing = args.rate.map(|r| {
        eprintln!("writing {na} keys to a and {nb} to b in plain, {r} a second ...");
        write("plain", Some(r))
    });
    let regions = [
        Region::new(&sa, "bench-none", vec![("b.plain".into(), nb)], parts).await,
        Region::new(&sb_, "bench-none", vec![("a.plain".into(), na)], parts).await,
    ];
    wait_done(&regions, parts, false).await;
    if let Some(w) = writing {
        bytes = w.await.unwrap();
    }
    let (cpu, peak) = proc_usage(child.id());
    phases.push(Phase {
        name: "plain active-active (no rule)",
        secs: launched.elapsed().as_secs_f64(),
        records: na + nb,
        bytes,
        cpu,
        peak_mb: peak,
        end_mb: rss_now(child.id()),
    });
    Child::Process(child).stop();

    // With the rule: the views built.
    eprintln!("kv, both ways, last-writer-wins ...");
    let cfg = dir.join("kv.properties");
    std::fs::write(
        &cfg,
        active_active_config(&sa, &sb_, "kv", true, args.write_delay_ms),
    )
    .unwrap();
    let launched = Instant::now();
    let child = spawn_strait(&strait, &cfg, &dir.join("kv.log"));
    let writing = args.rate.map(|r| {
        eprintln!("writing {na} keys to a and {nb} to b in kv, {r} a second ...");
        write("kv", Some(r))
    });
    let mut regions = [
        Region::new(
            &sa,
            "strait.resolve.lww.a",
            vec![("kv".into(), na), ("b.kv".into(), nb)],
            parts,
        )
        .await,
        Region::new(
            &sb_,
            "strait.resolve.lww.b",
            vec![("kv".into(), nb), ("a.kv".into(), na)],
            parts,
        )
        .await,
    ];
    wait_done(&regions, parts, true).await;
    if let Some(w) = writing {
        bytes = w.await.unwrap();
    }
    let (cpu, peak) = proc_usage(child.id());
    phases.push(Phase {
        name: "the same with a last-writer-wins rule (views built)",
        secs: launched.elapsed().as_secs_f64(),
        records: na + nb,
        bytes,
        cpu,
        peak_mb: peak,
        end_mb: rss_now(child.id()),
    });
    let stopping = Instant::now();
    Child::Process(child).stop();
    let stop_secs = stopping.elapsed().as_secs_f64();

    // A restart: one new version per partition in each region, so that every partition's view
    // is read back.
    eprintln!("restart ...");
    let (s1, s2) = (sa.clone(), sb_.clone());
    let (up_a, up_b) = (0..parts as u64, n - parts as u64..n);
    let (ua, ub) = (up_a.clone(), up_b.clone());
    tokio::task::spawn_blocking(move || {
        produce_kv(&s1, "kv", parts, ua, "a", 0xa11, None);
        produce_kv(&s2, "kv", parts, ub, "b", 0xb11, None);
    })
    .await
    .unwrap();
    let (pa, pb) = (up_a.end - up_a.start, up_b.end - up_b.start);
    regions[0].inputs = vec![("kv".into(), na + pa), ("b.kv".into(), nb + pb)];
    regions[1].inputs = vec![("kv".into(), nb + pb), ("a.kv".into(), na + pa)];
    let launched = Instant::now();
    let child = spawn_strait(&strait, &cfg, &dir.join("kv-restart.log"));
    wait_done(&regions, parts, true).await;
    let (cpu, peak) = proc_usage(child.id());
    phases.push(Phase {
        name: "restart: views read back, new versions taken in",
        secs: launched.elapsed().as_secs_f64(),
        records: pa + pb,
        bytes: 0,
        cpu,
        peak_mb: peak,
        end_mb: rss_now(child.id()),
    });
    Child::Process(child).stop();

    eprintln!("reading both views ...");
    let (s1, s2) = (sa.clone(), sb_.clone());
    let ((va, ra, ba), (vb, rb, bb)) = tokio::task::spawn_blocking(move || {
        (
            read_view(&s1, "kv.resolved", parts),
            read_view(&s2, "kv.resolved", parts),
        )
    })
    .await
    .unwrap();

    println!(
        "{n} keys, {} records ({na} written in a, {nb} in b, {} keys in both), {:.0} MB ({:.0} bytes a record), \
         {parts} partitions, zstd, {}, on {}\n",
        na + nb,
        na + nb - n,
        bytes as f64 / 1e6,
        bytes as f64 / (na + nb) as f64,
        match args.rate {
            Some(r) => format!("written while strait runs, {r} a second"),
            None => "all written before strait starts".to_string(),
        },
        match args.engine {
            Engine::Tansu => "the Tansu sandbox".to_string(),
            Engine::Kafka => format!(
                "Apache Kafka {}",
                strait_sandbox::kafka::maven::kafka_version()
            ),
        }
    );
    println!("| run | seconds | records/s | MB/s | CPU-s | peak RSS MB | RSS at the end MB |");
    println!("|---|---|---|---|---|---|---|");
    for p in &phases {
        println!(
            "| {} | {:.1} | {:.0} | {} | {:.1} | {:.0} | {:.0} |",
            p.name,
            p.secs,
            p.records as f64 / p.secs,
            if p.bytes > 0 {
                format!("{:.1}", p.bytes as f64 / 1e6 / p.secs)
            } else {
                "-".into()
            },
            p.cpu,
            p.peak_mb,
            p.end_mb
        );
    }
    let (base, views) = (&phases[0], &phases[1]);
    // Two views (one per region) of n keys each, in the one process.
    let per_key = |a: f64, b: f64| (b - a) * 1024.0 * 1024.0 / (2 * n) as f64;
    println!(
        "\nthe views' cost over the baseline, per key and region (2 x {n} entries in the process): \
         {:.0} bytes by peak RSS, {:.0} by RSS at the end; {:.1}x the time, {:.1}x the CPU-s; stop (SIGTERM) took {stop_secs:.1} s",
        per_key(base.peak_mb, views.peak_mb),
        per_key(base.end_mb, views.end_mb),
        views.secs / base.secs,
        views.cpu / base.cpu,
    );
    let same = va.len() == vb.len() && va.iter().all(|(k, d)| vb.get(k) == Some(d));
    println!(
        "views: a holds {} keys in {ra} records ({:.0} bytes a record: key, value, headers), b {} keys in {rb} records ({:.0}); \
         the same winners in both: {}",
        va.len(),
        ba as f64 / ra.max(1) as f64,
        vb.len(),
        bb as f64 / rb.max(1) as f64,
        if same { "yes" } else { "NO" }
    );
    if va.len() as u64 != n || vb.len() as u64 != n || !same {
        eprintln!("bench: the views are not what they should be");
        std::process::exit(1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
