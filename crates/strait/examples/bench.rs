//! Replication benchmark on sandbox clusters (README: "Benchmark").
//!
//! `cargo run --release -p strait --example bench -- [--mb 1024] [--partitions 6]`
//!
//! Writes about `--mb` MB of ~1 KB JSON-like records with random fields (they compress about 2:1,
//! like real data; constant bytes would flatter every replicator) to `bench` on region A, then, in
//! the same run, measures:
//! - (a) the raw produce rate of the same records straight into region B: the ceiling;
//! - (b) a bare rdkafka consume -> produce loop with no bookkeeping, in a child process;
//! - (c) `strait run` replicating `bench` A -> B, in a child process.
//!
//! For (b) and (c): wall time from process start to the last record on B, MB/s, records/s,
//! CPU-seconds per GB and peak RSS of that process (from /proc). Brokers run in this process, so
//! their CPU is not counted against either. Target producers use zstd in all three.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strait::kafka::{Admin, Endpoint, TopicSpec};
use strait_sandbox::Sandbox;

struct Args {
    mb: u64,
    partitions: i32,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        mb: 1024,
        partitions: 6,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--mb" => a.mb = v.parse().map_err(|_| format!("--mb {v}: not a number"))?,
            "--partitions" => {
                a.partitions = v
                    .parse()
                    .map_err(|_| format!("--partitions {v}: not a number"))?
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

/// (b): consume everything from `src`, produce to `dst` with the same partition; exit when `n`
/// records were copied. Runs as a child process: `bench --loop SRC DST TOPIC PARTITIONS N`.
fn bare_loop(src: &str, dst: &str, topic: &str, partitions: i32, n: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", src)
        .set("group.id", "bench-loop")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let p = producer(dst);
    let out = format!("loop.{topic}");
    let mut copied = 0;
    while copied < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            send(
                &p,
                &out,
                m.partition(),
                m.key().unwrap_or(b""),
                m.payload().unwrap_or(b""),
            );
            copied += 1;
        }
    }
    p.flush(Duration::from_secs(300)).expect("flush");
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
    name: &'static str,
    secs: f64,
    cpu: Option<f64>,
    rss_mb: Option<f64>,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--loop") {
        let n = argv[6].parse().unwrap();
        bare_loop(&argv[2], &argv[3], &argv[4], argv[5].parse().unwrap(), n);
        // Report own usage just before exit: the parent cannot read /proc after we are gone.
        let (cpu, rss) = proc_usage(std::process::id());
        println!("{cpu} {rss}");
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
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let sb = Sandbox::start(&["a", "b"]).await.expect("sandbox");
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
    for (ad, t) in [
        (&admin_a, "bench"),
        (&admin_b, "raw"),
        (&admin_b, "loop.bench"),
    ] {
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

    eprintln!("(b) bare consume->produce loop ...");
    let exe = std::env::current_exe().unwrap();
    let t = Instant::now();
    let out = Command::new(&exe)
        .args([
            "--loop",
            &sa,
            &sb_,
            "bench",
            &parts.to_string(),
            &n.to_string(),
        ])
        .stderr(Stdio::null())
        .output()
        .expect("loop child");
    let loop_secs = t.elapsed().as_secs_f64();
    let usage = String::from_utf8_lossy(&out.stdout);
    let mut it = usage
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap_or(0.0));
    let (loop_cpu, loop_rss) = (it.next(), it.next());

    eprintln!("(c) strait run ...");
    let strait = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("strait");
    let dir = std::env::temp_dir().join(format!("strait-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.properties");
    std::fs::write(
        &cfg,
        format!(
            "clusters = a, b\na.bootstrap.servers = {sa}\nb.bootstrap.servers = {sb_}\n\
             a->b.enabled = true\na->b.topics = bench\nreplication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\nb.producer.compression.type = zstd\n\
             b.producer.linger.ms = 20\nb.producer.batch.size = 1000000\n"
        ),
    )
    .unwrap();
    let t = Instant::now();
    let mut child = Command::new(&strait)
        .arg("run")
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with cargo build --release)",
                strait.display()
            )
        });
    while count(&admin_b, "a.bench", parts).await < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let strait_secs = t.elapsed().as_secs_f64();
    let (strait_cpu, strait_rss) = proc_usage(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let rows = [
        Row {
            name: "(a) raw produce into target",
            secs: raw_secs,
            cpu: None,
            rss_mb: None,
        },
        Row {
            name: "(b) bare consume->produce loop",
            secs: loop_secs,
            cpu: loop_cpu,
            rss_mb: loop_rss,
        },
        Row {
            name: "(c) strait run",
            secs: strait_secs,
            cpu: Some(strait_cpu),
            rss_mb: Some(strait_rss),
        },
    ];
    println!(
        "{n} records, {mb:.0} MB ({:.0} bytes each), {parts} partitions, zstd\n",
        bytes as f64 / n as f64
    );
    println!("| run | seconds | MB/s | records/s | CPU-s per GB | peak RSS MB |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let opt =
            |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
        println!(
            "| {} | {:.1} | {:.1} | {:.0} | {} | {} |",
            r.name,
            r.secs,
            mb / r.secs,
            n as f64 / r.secs,
            opt(r.cpu, &|c| format!("{:.1}", c / (mb / 1000.0))),
            opt(r.rss_mb, &|m| format!("{m:.0}")),
        );
    }
    println!(
        "\nstrait vs (a): {:.0} %   strait vs (b): {:.0} %",
        100.0 * raw_secs / strait_secs,
        100.0 * loop_secs / strait_secs
    );
}
