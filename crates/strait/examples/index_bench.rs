//! The offset index under a source with a hole after every record (issue 15, item 5): what a
//! transactional producer writing single-record transactions leaves (record, commit marker,
//! record, ...). Two Apache Kafka brokers; `strait run` replicates one partition of N such
//! records while its resident memory (the copy loop and the checkpoint job, which reads the
//! whole index every round) is sampled; then `strait translate` is timed on groups at records
//! and at holes, each answer checked (the copy of the first source record at or after the
//! group's offset).
//!
//! ```sh
//! cargo build --release && cargo run --release -p strait --example index_bench -- --records 1000000
//! ```
//!
//! Options:
//! - `--records N` (default 1,000,000);
//! - `--layout compacted` (default): the holes are made by compaction: records `2i` have keys of
//!   their own, records `2i+1` share one key, and the source is compacted before strait starts,
//!   which leaves the same offsets as N single-record transactions (the consumer sees a hole
//!   where a marker or a compacted record was, alike). Writing is quick;
//! - `--layout transactions --producers P`: real single-record transactions from P producers
//!   (each commit takes ~110 ms on these brokers, so about 200 transactions a second here;
//!   with P > 1 the markers interleave and the layout is irregular);
//! - `--strait PATH`: the binary to measure (default: the release build beside this example;
//!   an older build to compare);
//! - `--compare PATH`: a second binary whose `strait translate` is timed too, alternating with
//!   the first on the same positions (fairer than two runs when the machine's load varies);
//! - `--rounds R` (default 1): time every position R times per binary;
//! - `--hold SECS`: keep the brokers and `strait run` up for SECS after timing, printing the
//!   configuration files, to time `strait translate` by hand;
//! - `--syncs full` (default) or `--syncs compacted`: MM2's offset-syncs topic (compacted, one
//!   sync per hole, so a million here) as a broker with Kafka's default 1 GiB segments keeps it:
//!   every sync in the active segment, which compaction never touches, so `strait translate`
//!   reads them all; or as the test bed's brokers leave it (16 MiB segments compacted within a
//!   second: about 65,000 syncs left).
//!
//! Apache Kafka only: the embedded sandbox has no transactions, and the compacted layout needs
//! Kafka's log cleaner.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use strait::kafka::{Admin, Endpoint, TopicSpec};

struct Args {
    records: u64,
    transactions: bool,
    producers: u64,
    strait: Option<std::path::PathBuf>,
    compare: Option<std::path::PathBuf>,
    rounds: usize,
    hold: u64,
    full_syncs: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        records: 1_000_000,
        transactions: false,
        producers: 1,
        strait: None,
        compare: None,
        rounds: 1,
        hold: 0,
        full_syncs: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--records" => a.records = v()?.parse().map_err(|e| format!("{e}"))?,
            "--producers" => a.producers = v()?.parse().map_err(|e| format!("{e}"))?,
            "--layout" => {
                a.transactions = match v()?.as_str() {
                    "compacted" => false,
                    "transactions" => true,
                    other => return Err(format!("unknown layout {other}")),
                }
            }
            "--strait" => a.strait = Some(v()?.into()),
            "--compare" => a.compare = Some(v()?.into()),
            "--rounds" => a.rounds = v()?.parse().map_err(|e| format!("{e}"))?,
            "--hold" => a.hold = v()?.parse().map_err(|e| format!("{e}"))?,
            "--syncs" => {
                a.full_syncs = match v()?.as_str() {
                    "full" => true,
                    "compacted" => false,
                    other => return Err(format!("unknown --syncs {other}")),
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// (VmRSS, VmHWM) of `pid`, in MB.
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("index_bench: {e}");
            std::process::exit(2);
        }
    };
    tokio::runtime::Runtime::new().unwrap().block_on(run(args));
}

async fn watermarks(admin: &Admin, topic: &str) -> (i64, i64) {
    admin.watermarks(topic, 0).await.unwrap_or((0, 0))
}

/// Offsets of every record of partition 0 of `topic` (read committed).
fn source_offsets(servers: &str, topic: &str) -> Vec<i64> {
    let c: BaseConsumer = Endpoint::new("a", servers)
        .consumer_config("index-bench-reader")
        .create()
        .unwrap();
    let (_, end) = c
        .fetch_watermarks(topic, 0, Duration::from_secs(30))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    loop {
        let at = match c
            .position()
            .ok()
            .and_then(|p| p.find_partition(topic, 0).map(|e| e.offset()))
        {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        };
        if at >= end {
            return out;
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            use rdkafka::message::Message;
            out.push(m.offset());
        }
    }
}

/// Records `2i` keyed `k<i>`, records `2i+1` keyed `filler`, then wait until compaction has
/// removed the fillers (all but those in the active segment).
async fn write_compacted(admin: &Admin, servers: &str, n: u64) {
    admin
        .create_topics(&[TopicSpec::new("orders", 1, 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "1048576")
            .config("min.cleanable.dirty.ratio", "0.01")
            .config("min.compaction.lag.ms", "0")])
        .await
        .unwrap();
    let s = servers.to_string();
    tokio::task::spawn_blocking(move || {
        let mut cfg = Endpoint::new("a", &s).producer_config();
        cfg.set("linger.ms", "20");
        let p: BaseProducer = cfg.create().unwrap();
        for i in 0..n {
            for (k, v) in [
                (format!("k{i}"), i.to_string()),
                ("filler".into(), String::new()),
            ] {
                let mut rec = BaseRecord::<str, str>::to("orders")
                    .partition(0)
                    .key(&k)
                    .payload(&v);
                loop {
                    match p.send(rec) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            rec = r;
                            p.poll(Duration::from_millis(5));
                        }
                    }
                }
            }
            p.poll(Duration::ZERO);
        }
        p.flush(Duration::from_secs(120)).unwrap();
    })
    .await
    .unwrap();
    let t = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let s = servers.to_string();
        let offsets = tokio::task::spawn_blocking(move || source_offsets(&s, "orders"))
            .await
            .unwrap();
        let holes = offsets.windows(2).filter(|w| w[1] != w[0] + 1).count() as u64;
        eprintln!(
            "compaction: {} records left, {holes} holes, after {:.0} s",
            offsets.len(),
            t.elapsed().as_secs_f64()
        );
        if holes * 100 >= n * 95 {
            return;
        }
    }
}

async fn write_transactions(admin: &Admin, servers: &str, n: u64, producers: u64) {
    admin
        .create_topics(&[TopicSpec::new("orders", 1, 1)])
        .await
        .unwrap();
    let t = Instant::now();
    let writers: Vec<_> = (0..producers)
        .map(|w| {
            let s = servers.to_string();
            tokio::task::spawn_blocking(move || {
                let mut cfg = Endpoint::new("a", &s).producer_config();
                cfg.set("transactional.id", format!("index-bench-{w}"));
                cfg.set("linger.ms", "0");
                let p: BaseProducer = cfg.create().unwrap();
                let t = Duration::from_secs(60);
                p.init_transactions(t).unwrap();
                for i in (w..n).step_by(producers as usize) {
                    p.begin_transaction().unwrap();
                    let v = i.to_string();
                    p.send(
                        BaseRecord::<str, str>::to("orders")
                            .partition(0)
                            .payload(&v),
                    )
                    .map_err(|(e, _)| e)
                    .unwrap();
                    p.commit_transaction(t).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    eprintln!(
        "{n} transactions written in {:.0} s",
        t.elapsed().as_secs_f64()
    );
}

async fn run(args: Args) {
    let exe = std::env::current_exe().unwrap();
    let strait = args.strait.clone().unwrap_or_else(|| {
        exe.parent()
            .and_then(|d| d.parent())
            .unwrap()
            .join("strait")
    });
    let mut spec = strait_sandbox::KafkaSpec::new(strait_sandbox::Security::Plaintext);
    spec.jvm = strait_sandbox::JvmProfile::Stock;
    let sb = strait_sandbox::Sandbox::start_kafka(&["a", "b"], &spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (sb.cluster("a").unwrap(), sb.cluster("b").unwrap());
    let (sa, sbs) = (a.bootstrap_servers(), b.bootstrap_servers());
    let admin_a = Admin::new(&Endpoint::new("a", &sa), Duration::from_secs(30)).unwrap();
    let admin_b = Admin::new(&Endpoint::new("b", &sbs), Duration::from_secs(30)).unwrap();
    let n = args.records;
    if args.transactions {
        write_transactions(&admin_a, &sa, n, args.producers).await;
    } else {
        write_compacted(&admin_a, &sa, n).await;
    }
    let s = sa.clone();
    let offsets = tokio::task::spawn_blocking(move || source_offsets(&s, "orders"))
        .await
        .unwrap();
    let runs = 1 + offsets.windows(2).filter(|w| w[1] != w[0] + 1).count();
    let src_end = watermarks(&admin_a, "orders").await.1;

    let dir = std::env::temp_dir().join(format!("strait-index-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("mm2.properties");
    std::fs::write(
        &cfg,
        format!(
            "clusters = a, b\na.bootstrap.servers = {sa}\nb.bootstrap.servers = {sbs}\n\
             a->b.enabled = true\na->b.topics = orders\nreplication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             emit.checkpoints.interval.seconds = 5\nrefresh.groups.interval.seconds = 5\n"
        ),
    )
    .unwrap();
    // Groups at records and at holes, committed before strait starts: every checkpoint round
    // translates them while the index grows.
    let at = |f: f64| offsets[((offsets.len() - 1) as f64 * f) as usize];
    let positions: Vec<i64> = [0.0, 0.1, 0.5, 0.9, 0.999]
        .iter()
        .flat_map(|&f| [at(f), at(f) + 1])
        .collect();
    let groups = strait::kafka::Groups::new(&Endpoint::new("a", &sa), Duration::from_secs(30));
    for (k, &g) in positions.iter().enumerate() {
        let mut o = BTreeMap::new();
        o.insert(
            ("orders".to_string(), 0),
            strait::kafka::OffsetAndMetadata::new(g, ""),
        );
        groups.commit(&format!("bench-{k}"), &o).await.unwrap();
    }

    if args.full_syncs {
        // Created before strait, which leaves an existing topic as it is.
        admin_a
            .create_topics(&[TopicSpec::new("mm2-offset-syncs.b.internal", 1, 1)
                .config("cleanup.policy", "compact")
                .config("segment.bytes", "1073741824")])
            .await
            .unwrap();
    }

    let log = std::fs::File::create(dir.join("strait.log")).unwrap();
    let started = Instant::now();
    let mut child = Command::new(&strait)
        .arg("run")
        .arg(&cfg)
        .env("STRAIT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", strait.display()));
    let pid = child.id();
    eprintln!("strait: {} (pid {pid})", strait.display());

    let index_topic = "strait-offset-index.a.internal";
    // (seconds since start, RSS MB, records copied)
    let mut samples: Vec<(f64, f64, i64)> = Vec::new();
    let mut copied_at = None;
    let mut last_print = Instant::now();
    while copied_at.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(60)) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let copied = watermarks(&admin_b, "a.orders").await.1;
        let (rss, _) = memory_mb(pid);
        let secs = started.elapsed().as_secs_f64();
        samples.push((secs, rss, copied));
        if copied_at.is_none() && copied as usize >= offsets.len() {
            copied_at = Some(Instant::now());
            eprintln!("every record copied after {secs:.0} s");
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let (lo, hi) = watermarks(&admin_b, index_topic).await;
            eprintln!(
                "{secs:>5.0} s  copied {copied:>8}  strait RSS {rss:>6.1} MB  index topic {} records",
                hi - lo
            );
        }
    }

    // The same flow without MM2's offset syncs, for `strait translate` only: what reading the
    // index costs, apart from reading the syncs (MM2 writes one per hole too, and translate
    // reads them all to show MM2's answer beside strait's).
    let index_only = dir.join("index-only.properties");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &index_only,
        format!("{text}emit.offset-syncs.enabled = false\n"),
    )
    .unwrap();
    let (slo, shi) = watermarks(&admin_a, "mm2-offset-syncs.b.internal").await;
    // Each binary measured, with its timings with and without the offset syncs.
    let mut bins: Vec<(std::path::PathBuf, Vec<f64>, Vec<f64>)> = std::iter::once(strait.clone())
        .chain(args.compare.clone())
        .map(|b| (b, Vec::new(), Vec::new()))
        .collect();
    let mut wrong = 0;
    let mut answers = 0;
    // (seconds, downstream offset, method) of one `strait translate --json`.
    let translate = |bin: &std::path::Path, config: &std::path::Path, k: usize| {
        let t = Instant::now();
        let out = Command::new(bin)
            .arg("translate")
            .arg(config)
            .args([
                "--group",
                &format!("bench-{k}"),
                "--source",
                "a",
                "--target",
                "b",
                "--json",
            ])
            .env("STRAIT_LOG", "error")
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("translate output {text:?}: {e}"));
        let p = &json["partitions"][0];
        (secs, p["downstream_offset"].as_i64(), p["method"].clone())
    };
    for round in 0..args.rounds {
        for (k, &g) in positions.iter().enumerate() {
            // The copy of the first record at or after g.
            let want = offsets.partition_point(|&o| o < g) as i64;
            for (bin, timings, index_timings) in &mut bins {
                let (secs, got, _) = translate(bin, &index_only, k);
                index_timings.push(secs);
                wrong += usize::from(got != Some(want));
                let (secs, got, method) = translate(bin, &cfg, k);
                let ok = got == Some(want);
                wrong += usize::from(!ok);
                answers += 2;
                eprintln!(
                    "round {round} translate bench-{k} (source offset {g}) by {}: {got:?}, want {want} {} in {secs:.3} s ({method})",
                    bin.display(),
                    if ok { "ok" } else { "WRONG" },
                );
                timings.push(secs);
            }
        }
    }
    if args.hold > 0 {
        eprintln!(
            "holding for {} s: configurations {} and {}",
            args.hold,
            cfg.display(),
            index_only.display()
        );
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
    }
    let (ilo, ihi) = watermarks(&admin_b, index_topic).await;
    let (_, peak) = memory_mb(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let rss_when = |f: f64| {
        let want = (offsets.len() as f64 * f) as i64;
        samples
            .iter()
            .find(|s| s.2 >= want)
            .map_or("-".to_string(), |s| format!("{:.1}", s.1))
    };
    let after: Vec<f64> = samples
        .iter()
        .filter(|s| s.2 as usize >= offsets.len())
        .map(|s| s.1)
        .collect();
    println!(
        "source: {} records in offsets 0..{src_end}, {runs} runs ({})",
        offsets.len(),
        if args.transactions {
            format!(
                "{n} single-record transactions, {} producers",
                args.producers
            )
        } else {
            "holes left by compaction".to_string()
        }
    );
    println!(
        "strait RSS (MB) when 25/50/75/100% copied: {} / {} / {} / {}; over the next 60 s: {:.1}..{:.1}; peak (VmHWM) {peak:.1}",
        rss_when(0.25),
        rss_when(0.5),
        rss_when(0.75),
        rss_when(1.0),
        after.iter().copied().fold(f64::MAX, f64::min),
        after.iter().copied().fold(0.0, f64::max),
    );
    println!("index topic: {} records (offsets {ilo}..{ihi})", ihi - ilo);
    println!(
        "MM2 offset syncs on the source: offsets {slo}..{shi} ({})",
        if args.full_syncs {
            "every sync kept: 1 GiB segments"
        } else {
            "compacted by the test bed's brokers: most syncs gone"
        }
    );
    for (bin, timings, index_timings) in &mut bins {
        timings.sort_by(f64::total_cmp);
        index_timings.sort_by(f64::total_cmp);
        println!(
            "strait translate by {} (wall, process start to answer): min {:.3} s, median {:.3} s, max {:.3} s; without MM2 offset syncs: min {:.3} s, median {:.3} s, max {:.3} s",
            bin.display(),
            timings[0],
            timings[timings.len() / 2],
            timings[timings.len() - 1],
            index_timings[0],
            index_timings[index_timings.len() / 2],
            index_timings[index_timings.len() - 1],
        );
    }
    println!("{wrong} wrong of {answers}");
    let _ = std::fs::remove_dir_all(&dir);
}
