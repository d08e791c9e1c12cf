//! Fault soak (README: "Delivery guarantees and the fault soak"; results in RELIABILITY.md).
//!
//! `cargo run --release -p strait --example soak -- [--engine tansu|kafka] [--scenario NAME|all]
//!  [--minutes N] [--rate 1000] [--partitions 6] [--value-bytes 1000] [--seed S]
//!  [--drain-minutes 5] [--json] [--keep-logs]`
//!
//! Each scenario starts two fresh clusters, a and b (the Tansu sandbox in this process, or one
//! Apache Kafka node each from the test bed's jars), and replicates the topic `soak` a -> b with
//! the release `strait run` binary (beside this example: build it first) while the drill's
//! producer (`strait::drill::traffic`) writes sequence-numbered, keyed records of `--value-bytes`
//! to `soak` on a at `--rate` records a second, record `n` to partition `n % partitions`. Then
//! the fault:
//!
//! - `target-down`: b cut for N minutes (10) while the producer keeps writing a backlog. Checked:
//!   the process's RSS stays flat once its queues are full, and it keeps its group membership
//!   (no "partitions revoked" in its log, `strait_assigned_partitions` never 0).
//! - `churn`: three `strait run` processes on the same file, one started or stopped (SIGTERM) at
//!   random every 3-20 s for N minutes (10). Checked: every stop exits 0 within 10 s.
//! - `kill9`: the process killed with SIGKILL every 30 s and started again, for N minutes (5).
//!   On Tansu the restart waits 12 s (the session timeout, 10 s, and a margin: README, *Limits of
//!   the sandbox*); on Apache Kafka it is at once.
//! - `sigterm-outage`: b cut; 20 s later SIGTERM (checked: exit 0 within 10 s); b healed 30 s
//!   after that and the process started again; N minutes (3) in all.
//! - `wan-delay`: 200 ms added each way on both clusters' proxies for N minutes (3).
//! - `broker-restart`: a third into N minutes (3) a's broker restarts, two thirds in b's (10 s
//!   down each; see `Cluster::restart_node` for what a restart is on each engine).
//! - `topic-recreate`: `soak` is deleted on a and created again with the same partitions twice:
//!   a quarter into N minutes (3) while strait runs, and half-way while it is stopped (SIGTERM);
//!   it starts again once the new topic holds more records per partition than the old one had,
//!   so that the old topic's committed offsets are valid offsets of the new one. Before each
//!   delete the producer pauses and every acknowledged record is waited for on b (up to 60 s);
//!   sequence numbers continue across topics, so every acknowledged record counts, whichever
//!   topic it was written to.
//!
//! Then the producer stops and the checker reads `a.soak` on b from the beginning until every
//! acknowledged sequence number has a copy (or `--drain-minutes` passed), the processes are
//! stopped (SIGTERM), and the rest of the topic is read to its end. **Lost**: acknowledged by a,
//! never copied (must be 0; the sequence check is the drill's, `strait::drill::verify`).
//! **Duplicated**: extra copies; each *replay* is a place in a remote partition where copies start
//! again from an earlier point (a restart or a rebalance resuming from the last committed offset).
//! One line per scenario on stdout (`--json`: one JSON document instead); exit 1 when anything
//! was lost or a check failed, and the processes' logs are kept (path printed).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use strait::drill::traffic::{self, ClientThread, DrillLog, ProducerSpec, RecordShape};
use strait::drill::{verify, Delivery, SeqRange, Side};
use strait::kafka::{Admin, Created, Endpoint, TopicSpec};
use strait_sandbox::{Cluster, KafkaSpec, Security};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Tansu,
    Kafka,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Tansu => "tansu",
            Engine::Kafka => "kafka",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    TargetDown,
    Churn,
    Kill9,
    SigtermOutage,
    WanDelay,
    BrokerRestart,
    TopicRecreate,
}

const ALL: [Scenario; 7] = [
    Scenario::TargetDown,
    Scenario::Churn,
    Scenario::Kill9,
    Scenario::SigtermOutage,
    Scenario::WanDelay,
    Scenario::BrokerRestart,
    Scenario::TopicRecreate,
];

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::TargetDown => "target-down",
            Scenario::Churn => "churn",
            Scenario::Kill9 => "kill9",
            Scenario::SigtermOutage => "sigterm-outage",
            Scenario::WanDelay => "wan-delay",
            Scenario::BrokerRestart => "broker-restart",
            Scenario::TopicRecreate => "topic-recreate",
        }
    }

    /// The durations: 10 minutes for the outage and the churn, 5 of kill -9, 3 others.
    fn default_minutes(self) -> f64 {
        match self {
            Scenario::TargetDown | Scenario::Churn => 10.0,
            Scenario::Kill9 => 5.0,
            _ => 3.0,
        }
    }
}

struct Args {
    engine: Engine,
    scenarios: Vec<Scenario>,
    minutes: Option<f64>,
    rate: u64,
    partitions: i32,
    value_bytes: usize,
    seed: u64,
    drain_minutes: f64,
    json: bool,
    keep_logs: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        engine: Engine::Tansu,
        scenarios: ALL.to_vec(),
        minutes: None,
        rate: 1000,
        partitions: 6,
        value_bytes: 1000,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 | 1)
            .unwrap_or(1),
        drain_minutes: 5.0,
        json: false,
        keep_logs: false,
    };
    let mut it = std::env::args().skip(1);
    fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("{k} {v}: not a number"))
    }
    while let Some(k) = it.next() {
        match k.as_str() {
            "--json" => {
                a.json = true;
                continue;
            }
            "--keep-logs" => {
                a.keep_logs = true;
                continue;
            }
            _ => {}
        }
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--engine" => {
                a.engine = match v.as_str() {
                    "tansu" => Engine::Tansu,
                    "kafka" => Engine::Kafka,
                    _ => return Err(format!("--engine {v}: tansu or kafka")),
                }
            }
            "--scenario" => {
                a.scenarios = if v == "all" {
                    ALL.to_vec()
                } else {
                    v.split(',')
                        .map(|n| {
                            ALL.iter().copied().find(|s| s.name() == n).ok_or(format!(
                                "--scenario {n}: one of all, {}",
                                ALL.map(Scenario::name).join(", ")
                            ))
                        })
                        .collect::<Result<_, _>>()?
                }
            }
            "--minutes" => a.minutes = Some(num(&k, &v)?),
            "--rate" => a.rate = num(&k, &v)?,
            "--partitions" => a.partitions = num(&k, &v)?,
            "--value-bytes" => a.value_bytes = num(&k, &v)?,
            "--seed" => a.seed = num::<u64>(&k, &v)?.max(1),
            "--drain-minutes" => a.drain_minutes = num(&k, &v)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// Deterministic xorshift: the same seed makes the same choices (which process, how long).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// A `strait run` process of the scenario.
struct Proc {
    slot: usize,
    child: Child,
    http: String,
    log: PathBuf,
}

/// One check besides loss, with what was seen.
#[derive(Clone, Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// A SIGTERM and what followed.
#[derive(Clone, Debug, Serialize)]
struct Stop {
    at_s: f64,
    exit_code: Option<i32>,
    secs: f64,
}

/// What one scenario measured.
#[derive(Debug, Serialize)]
struct Outcome {
    scenario: &'static str,
    engine: &'static str,
    minutes: f64,
    seed: u64,
    /// Records handed to the producer.
    produced: u64,
    /// Distinct sequence numbers the source acknowledged (the records lost is measured against).
    acked: u64,
    /// Copies read on the target (every copy, duplicates included).
    copies: u64,
    lost: u64,
    lost_ranges: Vec<String>,
    /// Extra copies: every copy of a sequence number after its first.
    duplicated: u64,
    /// Distinct sequence numbers copied more than once.
    duplicated_records: u64,
    /// Places where a remote partition's copies start again from an earlier point.
    replays: u64,
    largest_replay: u64,
    /// The replays (the first 50), with where they go back to.
    replay_list: Vec<Replay>,
    /// A sequence number copied for the first time after a later one of the same partition.
    order_violations: u64,
    /// Copied although the producer saw no acknowledgement (the write landed, the ack was lost).
    unacked_copied: u64,
    /// topic-recreate: the lost records by the topic they were written to (the first, the one
    /// created again while strait ran, the one created again while it was stopped).
    lost_by_topic: Option<Vec<u64>>,
    /// From the producer's stop to the last acknowledged record's first copy, seconds.
    drain_s: Option<f64>,
    starts: u64,
    kills: u64,
    stops: Vec<Stop>,
    rss_peak_mb: f64,
    rss_steady_mb: Option<f64>,
    checks: Vec<Check>,
    warn_lines: u64,
    error_lines: u64,
    log_dir: String,
    passed: bool,
}

/// One scenario's world: the clusters, the traffic, the processes' bookkeeping.
struct Bed {
    engine: Engine,
    scenario: Scenario,
    a: Cluster,
    b: Cluster,
    dir: PathBuf,
    cfg: PathBuf,
    strait: PathBuf,
    run_id: String,
    partitions: i32,
    rate: u64,
    value_bytes: usize,
    traffic: Arc<DrillLog>,
    producer: Option<ClientThread>,
    t0: Instant,
    /// `t0` in ms since the epoch, for record timestamps.
    t0_ms: i64,
    events: std::fs::File,
    live: Arc<Mutex<Vec<u32>>>,
    rss: Arc<Mutex<Vec<(f64, u32, f64)>>>,
    sampling: tokio::task::JoinHandle<()>,
    starts: u64,
    kills: u64,
    stops: Vec<Stop>,
    checks: Vec<Check>,
}

impl Bed {
    async fn start(
        engine: Engine,
        scenario: Scenario,
        args: &Args,
        root: &Path,
    ) -> Result<Bed, String> {
        let (a, b) = match engine {
            Engine::Tansu => (
                Cluster::start("a").await.map_err(|e| e.to_string())?,
                Cluster::start("b").await.map_err(|e| e.to_string())?,
            ),
            Engine::Kafka => {
                let spec = KafkaSpec::new(Security::Plaintext);
                let (a, b) = tokio::join!(
                    Cluster::start_kafka("a", &spec),
                    Cluster::start_kafka("b", &spec)
                );
                (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?)
            }
        };
        let dir = root.join(scenario.name());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let admin =
            Admin::new(&endpoint(&a), Duration::from_secs(30)).map_err(|e| e.to_string())?;
        admin
            .create_topics(&[TopicSpec::new("soak", args.partitions, 1)])
            .await
            .map_err(|e| e.to_string())?;
        let cfg = dir.join("soak.properties");
        // Short intervals where the default would make a scenario wait: a re-created topic is
        // seen within 10 s instead of 600; a killed member leaves the group after 10 s instead
        // of 45; a member that stopped polling would be evicted after 30 s instead of 300 (so
        // target-down's membership check is stricter than the default, not looser).
        let text = format!(
            "clusters = a, b\na.bootstrap.servers = {}\nb.bootstrap.servers = {}\n\
             a->b.enabled = true\na->b.topics = soak\nreplication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
             status.storage.replication.factor = 1\nconfig.storage.replication.factor = 1\n\
             refresh.topics.interval.seconds = 10\n\
             a.consumer.session.timeout.ms = 10000\na.consumer.max.poll.interval.ms = 30000\n",
            a.bootstrap_servers(),
            b.bootstrap_servers()
        );
        std::fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let strait = exe
            .parent()
            .and_then(|d| d.parent())
            .ok_or("no directory above the example")?
            .join("strait");
        if !strait.exists() {
            return Err(format!(
                "{} not found: build it first (cargo build --release -p strait)",
                strait.display()
            ));
        }
        let events = std::fs::File::create(dir.join("events.log")).map_err(|e| e.to_string())?;
        let live: Arc<Mutex<Vec<u32>>> = Default::default();
        let rss: Arc<Mutex<Vec<(f64, u32, f64)>>> = Default::default();
        let t0 = Instant::now();
        let t0_ms = strait::heartbeat::now_ms();
        let sampling = {
            let (live, rss) = (live.clone(), rss.clone());
            tokio::spawn(async move {
                loop {
                    let pids = live.lock().unwrap().clone();
                    for pid in pids {
                        if let Some(mb) = rss_mb(pid) {
                            rss.lock()
                                .unwrap()
                                .push((t0.elapsed().as_secs_f64(), pid, mb));
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        Ok(Bed {
            engine,
            scenario,
            a,
            b,
            dir,
            cfg,
            strait,
            run_id: format!("soak-{}-{}", scenario.name(), args.seed),
            partitions: args.partitions,
            rate: args.rate,
            value_bytes: args.value_bytes,
            traffic: Arc::new(DrillLog::default()),
            producer: None,
            t0,
            t0_ms,
            events,
            live,
            rss,
            sampling,
            starts: 0,
            kills: 0,
            stops: Vec::new(),
            checks: Vec::new(),
        })
    }

    fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn event(&mut self, what: &str) {
        let line = format!("{:8.1}s  {what}", self.secs());
        let _ = writeln!(self.events, "{line}");
        eprintln!("  [{}] {line}", self.scenario.name());
    }

    fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.event(&format!(
            "check {name}: {} ({detail})",
            if ok { "ok" } else { "FAILED" }
        ));
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }

    fn start_producer(&mut self) {
        let spec = ProducerSpec {
            endpoint: endpoint(&self.a),
            topic: "soak".into(),
            partitions: self.partitions,
            rate: self.rate,
            side: Side::Primary,
            drill_id: self.run_id.clone(),
        };
        let shape = RecordShape {
            keys: 1000,
            value_bytes: self.value_bytes,
        };
        self.producer = Some(
            traffic::start_producer_with(spec, shape, self.traffic.clone()).expect("producer"),
        );
        self.event("producer started");
    }

    async fn stop_producer(&mut self) {
        if let Some(p) = self.producer.take() {
            let joined = p.join(Duration::from_secs(60)).await;
            let (n, acked) = (self.traffic.produced(), self.traffic.acked());
            self.event(&format!(
                "producer stopped ({n} records written, {acked} acknowledged{})",
                if joined {
                    ""
                } else {
                    "; its thread did not end in 60 s"
                }
            ));
        }
    }

    /// Start `strait run` in `slot`, its log appended to `strait-SLOT.log`.
    fn spawn(&mut self, slot: usize) -> Proc {
        let log = self.dir.join(format!("strait-{slot}.log"));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("process log");
        let _ = writeln!(
            f,
            "=== soak: start #{} at {:.1}s",
            self.starts + 1,
            self.secs()
        );
        let http = format!("127.0.0.1:{}", free_port());
        let child = Command::new(&self.strait)
            .arg("run")
            .arg(&self.cfg)
            .args(["--http", &http])
            .env("STRAIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.strait.display()));
        self.starts += 1;
        self.live.lock().unwrap().push(child.id());
        self.event(&format!("strait {slot} started (pid {})", child.id()));
        Proc {
            slot,
            child,
            http,
            log,
        }
    }

    fn forget(&mut self, pid: u32) {
        self.live.lock().unwrap().retain(|p| *p != pid);
    }

    /// SIGTERM, then wait for the exit (SIGKILL after 60 s); the stop is checked by the caller.
    async fn term(&mut self, mut p: Proc) -> Stop {
        let pid = p.child.id();
        let at = self.secs();
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = loop {
            if let Ok(Some(s)) = p.child.try_wait() {
                break Some(s);
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = p.child.kill();
                let _ = p.child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let secs = t.elapsed().as_secs_f64();
        self.forget(pid);
        let code = status.and_then(|s| s.code());
        self.event(&format!(
            "strait {} stopped by SIGTERM: exit {code:?} after {secs:.1}s",
            p.slot
        ));
        let stop = Stop {
            at_s: at,
            exit_code: code,
            secs,
        };
        self.stops.push(stop.clone());
        stop
    }

    async fn kill9(&mut self, mut p: Proc) {
        let _ = p.child.kill();
        let _ = p.child.wait();
        self.kills += 1;
        self.forget(p.child.id());
        self.event(&format!("strait {} killed (SIGKILL)", p.slot));
    }

    /// Sleep, but notice a process that died by itself.
    async fn run_for(&mut self, d: Duration, procs: &mut [Option<Proc>]) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(500).min(end - Instant::now())).await;
            for slot in procs.iter_mut() {
                if let Some(p) = slot {
                    if let Ok(Some(s)) = p.child.try_wait() {
                        let (n, pid) = (p.slot, p.child.id());
                        *slot = None;
                        self.forget(pid);
                        self.check(
                            "no unexpected exit",
                            false,
                            format!("strait {n} exited by itself: {s}"),
                        );
                    }
                }
            }
        }
    }

    /// Wait up to `within` for every record acknowledged so far to have a copy on b, and say
    /// how many have none.
    async fn wait_copied(&mut self, within: Duration, procs: &mut [Option<Proc>]) {
        let (acks, _) = self.traffic.snapshot();
        let mut want = vec![false; self.traffic.produced() as usize];
        for a in &acks {
            if let Some(w) = want.get_mut(a.seq as usize) {
                *w = true;
            }
        }
        let (seen_all, finish) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let reader = {
            let (ep, id, p) = (endpoint(&self.b), self.run_id.clone(), self.partitions);
            let (s, f, w) = (seen_all.clone(), finish.clone(), want.clone());
            tokio::task::spawn_blocking(move || read_copies(ep, "a.soak".into(), p, id, w, s, f))
        };
        let t = Instant::now();
        while !seen_all.load(Ordering::SeqCst) && t.elapsed() < within {
            self.run_for(Duration::from_secs(1), procs).await;
        }
        finish.store(true, Ordering::SeqCst);
        let copies = reader.await.expect("checker thread");
        let got: HashSet<u64> = copies.seen.iter().map(|c| c.0).collect();
        let missing = want
            .iter()
            .enumerate()
            .filter(|(s, w)| **w && !got.contains(&(*s as u64)))
            .count();
        self.event(&if missing == 0 {
            format!(
                "every acknowledged record copied ({:.1}s wait)",
                t.elapsed().as_secs_f64()
            )
        } else {
            format!(
                "{missing} acknowledged records not copied after {:.0}s",
                within.as_secs_f64()
            )
        });
    }

    /// Delete `soak` on a and create it again with the same partitions.
    async fn recreate(&mut self) {
        let ep = endpoint(&self.a);
        let admin: AdminClient<DefaultClientContext> =
            ep.admin_config().create().expect("admin client");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        match admin.delete_topics(&["soak"], &opts).await {
            Ok(r) => self.event(&format!("soak deleted on a: {r:?}")),
            Err(e) => self.event(&format!("deleting soak on a failed: {e}")),
        }
        // Created again as soon as the broker takes it (Apache Kafka deletes in the background).
        let t = Instant::now();
        let created = loop {
            let fresh = Admin::new(&ep, Duration::from_secs(10)).expect("admin");
            match fresh
                .create_topics(&[TopicSpec::new("soak", self.partitions, 1)])
                .await
            {
                // The old one may still be there, being deleted.
                Ok(r) if r.iter().all(|(_, c)| *c == Created::Created) => break Ok(()),
                Ok(_) if t.elapsed() > Duration::from_secs(120) => {
                    break Err("still there 120 s after the delete".to_string())
                }
                Err(e) if t.elapsed() > Duration::from_secs(120) => break Err(e.to_string()),
                Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let detail = match &created {
            Ok(()) => format!(
                "created again {:.1}s after the delete; the producer resumes at {}",
                t.elapsed().as_secs_f64(),
                self.traffic.produced()
            ),
            Err(e) => e.clone(),
        };
        self.check("topic re-created", created.is_ok(), detail);
    }

    /// RSS samples of `pid` between `from` and `to` seconds.
    fn rss_between(&self, from: f64, to: f64) -> Vec<f64> {
        self.rss
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| *t >= from && *t <= to)
            .map(|(_, _, mb)| *mb)
            .collect()
    }
}

fn endpoint(c: &Cluster) -> Endpoint {
    Endpoint::new(c.name(), c.bootstrap_servers())
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// `strait_assigned_partitions` summed over the process's flows, if its /metrics answered.
async fn assigned_partitions(http: &str) -> Option<f64> {
    let url = format!("http://{http}/metrics");
    tokio::task::spawn_blocking(move || {
        let text = ureq::get(&url)
            .timeout(Duration::from_secs(3))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        let mut sum = None;
        for l in text.lines() {
            if l.starts_with("strait_assigned_partitions") {
                let v: f64 = l.rsplit(' ').next()?.parse().ok()?;
                *sum.get_or_insert(0.0) += v;
            }
        }
        sum
    })
    .await
    .ok()
    .flatten()
}

/// How often `needle` appears in `log` past its first `from` bytes.
fn count_in_log(log: &Path, from: u64, needle: &str) -> usize {
    std::fs::read(log)
        .ok()
        .and_then(|b| {
            b.get(from as usize..)
                .map(|t| String::from_utf8_lossy(t).matches(needle).count())
        })
        .unwrap_or(0)
}

fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

// ---- the scenarios: each leaves its processes running; `finish` drains and checks ----

async fn target_down(bed: &mut Bed, minutes: f64) -> Vec<Option<Proc>> {
    bed.start_producer();
    let p = bed.spawn(0);
    let mut procs = vec![Some(p)];
    bed.run_for(Duration::from_secs(60), &mut procs).await;
    let Some(p) = procs[0].as_ref() else {
        return procs;
    };
    let (log, http) = (p.log.clone(), p.http.clone());
    let before = assigned_partitions(&http).await;
    let steady = max(&bed.rss_between(bed.secs() - 30.0, bed.secs()));
    let from = log_len(&log);
    bed.b.cut();
    let cut_at = bed.secs();
    bed.event(&format!(
        "target b cut for {minutes} min (RSS {steady:.0} MB, assigned partitions {before:?})"
    ));
    let outage = Duration::from_secs_f64(minutes * 60.0);
    let end = Instant::now() + outage;
    let (mut min_assigned, mut unanswered, mut samples) = (f64::MAX, 0, 0);
    while Instant::now() < end {
        bed.run_for(Duration::from_secs(5).min(end - Instant::now()), &mut procs)
            .await;
        if procs[0].is_none() {
            break;
        }
        samples += 1;
        match assigned_partitions(&http).await {
            Some(v) => min_assigned = min_assigned.min(v),
            None => unanswered += 1,
        }
    }
    let healed_at = bed.secs();
    bed.b.heal();
    bed.event("target b healed");
    let revoked = count_in_log(&log, from, "partitions revoked");
    bed.check(
        "group membership kept",
        revoked == 0 && min_assigned > 0.0 && min_assigned != f64::MAX,
        format!(
            "{revoked} revocations in the log during the outage; strait_assigned_partitions \
             min {} over {samples} samples ({unanswered} unanswered), {before:?} before",
            if min_assigned == f64::MAX {
                "-".to_string()
            } else {
                format!("{min_assigned}")
            }
        ),
    );
    // Flat: once the queues have filled (the first fifth of the outage, at least 30 s), the
    // rest of the outage stays within 10 % + 16 MB of that.
    let filled = cut_at + (0.2 * (healed_at - cut_at)).max(30.0);
    let early = max(&bed.rss_between(cut_at, filled));
    let late = max(&bed.rss_between(filled, healed_at));
    bed.check(
        "memory flat",
        late <= early * 1.10 + 16.0,
        format!(
            "RSS {steady:.0} MB before the cut, peak {early:.0} MB in the outage's first \
             {:.0} s, peak {late:.0} MB in the rest",
            filled - cut_at
        ),
    );
    procs
}

async fn churn(bed: &mut Bed, minutes: f64, rng: &mut Rng) -> Vec<Option<Proc>> {
    bed.start_producer();
    let mut procs: Vec<Option<Proc>> = vec![Some(bed.spawn(0)), None, None];
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    while Instant::now() < end {
        let wait = Duration::from_millis(3_000 + rng.below(17_000));
        bed.run_for(wait.min(end - Instant::now()), &mut procs)
            .await;
        if Instant::now() >= end {
            break;
        }
        let slot = rng.below(3) as usize;
        match procs[slot].take() {
            Some(p) => {
                bed.term(p).await;
            }
            None => procs[slot] = Some(bed.spawn(slot)),
        }
    }
    if procs.iter().all(Option::is_none) {
        procs[0] = Some(bed.spawn(0));
    }
    procs
}

async fn kill9(bed: &mut Bed, minutes: f64) -> Vec<Option<Proc>> {
    bed.start_producer();
    let mut procs = vec![Some(bed.spawn(0))];
    // On Tansu a member that joins while the killed one is still listed gets no partitions
    // (README, Limits of the sandbox): wait out the 10 s session.
    let down = match bed.engine {
        Engine::Tansu => Duration::from_secs(12),
        Engine::Kafka => Duration::ZERO,
    };
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    while Instant::now() + Duration::from_secs(30) < end {
        bed.run_for(Duration::from_secs(30), &mut procs).await;
        if let Some(p) = procs[0].take() {
            bed.kill9(p).await;
        }
        tokio::time::sleep(down).await;
        procs[0] = Some(bed.spawn(0));
    }
    let rest = end.saturating_duration_since(Instant::now());
    bed.run_for(rest, &mut procs).await;
    procs
}

async fn sigterm_outage(bed: &mut Bed, minutes: f64) -> Vec<Option<Proc>> {
    bed.start_producer();
    let mut procs = vec![Some(bed.spawn(0))];
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    bed.run_for(Duration::from_secs(30), &mut procs).await;
    bed.b.cut();
    bed.event("target b cut");
    bed.run_for(Duration::from_secs(20), &mut procs).await;
    if let Some(p) = procs[0].take() {
        bed.term(p).await;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    bed.b.heal();
    bed.event("target b healed");
    procs[0] = Some(bed.spawn(0));
    let rest = end.saturating_duration_since(Instant::now());
    bed.run_for(rest, &mut procs).await;
    procs
}

async fn wan_delay(bed: &mut Bed, minutes: f64) -> Vec<Option<Proc>> {
    for c in [&bed.a, &bed.b] {
        c.delay(Duration::from_millis(200));
    }
    bed.event("200 ms each way on a's and b's proxies");
    bed.start_producer();
    let mut procs = vec![Some(bed.spawn(0))];
    bed.run_for(Duration::from_secs_f64(minutes * 60.0), &mut procs)
        .await;
    procs
}

async fn broker_restart(bed: &mut Bed, minutes: f64) -> Vec<Option<Proc>> {
    bed.start_producer();
    let mut procs = vec![Some(bed.spawn(0))];
    let third = Duration::from_secs_f64(minutes * 20.0);
    for which in ["a", "b"] {
        bed.run_for(third, &mut procs).await;
        bed.event(&format!("restarting {which}'s broker (10 s down)"));
        let c = if which == "a" { &mut bed.a } else { &mut bed.b };
        let r = c.restart_node(0, Duration::from_secs(10)).await;
        let ok = r.is_ok();
        let detail = match r {
            Ok(()) => format!("{which}'s broker is back"),
            Err(e) => e.to_string(),
        };
        bed.check(&format!("{which} restarted"), ok, detail);
    }
    bed.run_for(third, &mut procs).await;
    procs
}

async fn topic_recreate(bed: &mut Bed, minutes: f64) -> (Vec<Option<Proc>>, Vec<u64>) {
    bed.start_producer();
    let mut procs = vec![Some(bed.spawn(0))];
    let quarter = Duration::from_secs_f64(minutes * 15.0);
    let mut boundaries = Vec::new();
    bed.run_for(quarter, &mut procs).await;
    // 1: while strait runs. Before each delete the producer pauses and the old topic's records
    // are given time to be copied: every acknowledged record can be asked for.
    bed.stop_producer().await;
    bed.wait_copied(Duration::from_secs(60), &mut procs).await;
    boundaries.push(bed.traffic.produced());
    bed.recreate().await;
    bed.start_producer();
    let t = Instant::now();
    bed.run_for(quarter, &mut procs).await;
    let written = t.elapsed();
    // 2: while strait is stopped; it starts again once the new topic holds more records in each
    // partition than the old one did, so the old topic's committed offsets are valid offsets of
    // the new one.
    bed.stop_producer().await;
    bed.wait_copied(Duration::from_secs(60), &mut procs).await;
    if let Some(p) = procs[0].take() {
        bed.term(p).await;
    }
    boundaries.push(bed.traffic.produced());
    bed.recreate().await;
    bed.start_producer();
    tokio::time::sleep(written + Duration::from_secs(10)).await;
    procs[0] = Some(bed.spawn(0));
    bed.run_for(quarter, &mut procs).await;
    (procs, boundaries)
}

// ---- the checker ----

/// Every record of the run read from a topic: (sequence number, partition, offset).
#[derive(Default)]
struct Copies {
    seen: Vec<(u64, i32, i64)>,
    foreign: u64,
}

/// Read `topic` on `ep` from the beginning. Once every sequence number marked in `want` was
/// seen, `seen_all` is set; once `finish` is set, the read goes on to the partitions' current
/// ends and returns.
fn read_copies(
    ep: Endpoint,
    topic: String,
    partitions: i32,
    run_id: String,
    want: Vec<bool>,
    seen_all: Arc<AtomicBool>,
    finish: Arc<AtomicBool>,
) -> Copies {
    let consumer: BaseConsumer = ep
        .consumer_config("strait-soak-checker")
        .create()
        .expect("checker consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut next = vec![0i64; partitions as usize];
    let mut missing = want.iter().filter(|w| **w).count();
    let mut seen = vec![false; want.len()];
    if missing == 0 {
        seen_all.store(true, Ordering::SeqCst);
    }
    let mut copies = Copies::default();
    let mut ends: Option<Vec<i64>> = None;
    let mut finish_deadline = None;
    loop {
        if ends.is_none() && finish.load(Ordering::SeqCst) {
            let deadline =
                *finish_deadline.get_or_insert(Instant::now() + Duration::from_secs(600));
            let e: Option<Vec<i64>> = (0..partitions)
                .map(|p| {
                    consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))
                        .ok()
                        .map(|(_, hi)| hi)
                })
                .collect();
            if e.is_some() || Instant::now() > deadline {
                ends = Some(e.unwrap_or_default());
            }
        }
        if let Some(e) = &ends {
            if e.is_empty()
                || next.iter().zip(e).all(|(n, hi)| n >= hi)
                || finish_deadline.is_some_and(|d| Instant::now() > d)
            {
                break;
            }
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let p = m.partition();
            next[p as usize] = m.offset() + 1;
            match traffic::sequence_of(&m, &run_id) {
                Some(seq) => {
                    copies.seen.push((seq, p, m.offset()));
                    let i = seq as usize;
                    if i < want.len() && want[i] && !seen[i] {
                        seen[i] = true;
                        missing -= 1;
                        if missing == 0 {
                            seen_all.store(true, Ordering::SeqCst);
                        }
                    }
                }
                None => copies.foreign += 1,
            }
        }
    }
    copies
}

/// strait's offset index on the target: (topic, partition, target start, source start, length)
/// per run, the latest record of each key.
fn read_index(ep: Endpoint, topic: &str) -> Vec<(String, i32, i64, i64, i64)> {
    let Ok(consumer) = ep
        .consumer_config("strait-soak-checker")
        .create::<BaseConsumer>()
    else {
        return Vec::new();
    };
    let Ok((_, hi)) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) else {
        return Vec::new();
    };
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition_offset(topic, 0, Offset::Beginning)
        .is_err()
        || consumer.assign(&tpl).is_err()
    {
        return Vec::new();
    }
    let mut runs = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 0;
    while next < hi && Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        next = m.offset() + 1;
        let (Some(k), Some(v)) = (m.key(), m.payload()) else {
            continue;
        };
        let int = |b: &[u8], at: usize, n: usize| -> Option<i64> {
            let s = b.get(at..at + n)?;
            Some(s.iter().fold(0i64, |acc, x| (acc << 8) | i64::from(*x)))
        };
        let Some(len) = int(k, 0, 2) else { continue };
        let len = len as usize;
        let (Some(name), Some(part), Some(down), Some(up), Some(n)) = (
            k.get(2..2 + len)
                .map(|b| String::from_utf8_lossy(b).to_string()),
            int(k, 2 + len, 4),
            int(k, 6 + len, 8),
            int(v, 2, 8),
            int(v, 10, 8),
        ) else {
            continue;
        };
        runs.insert((name.clone(), part as i32, down), (up, n));
    }
    runs.into_iter()
        .map(|((t, p, down), (up, n))| (t, p, down, up, n))
        .collect()
}

/// One place where a remote partition's copies start again from an earlier point.
#[derive(Clone, Debug, Serialize)]
struct Replay {
    partition: i32,
    /// The first sequence number copied again, and how many copies the replay holds.
    first_seq: u64,
    copies: u64,
    /// When that record was written, seconds from the scenario's start (events.log has the
    /// same clock): the replay goes back to about there.
    written_at_s: Option<f64>,
}

/// Replays, and first copies out of their partition's order, from the copies in each
/// partition's order.
fn replays(copies: &Copies, partitions: i32) -> (Vec<Replay>, u64) {
    let mut by_part: Vec<Vec<(i64, u64)>> = vec![Vec::new(); partitions as usize];
    for &(seq, p, off) in &copies.seen {
        if let Some(v) = by_part.get_mut(p as usize) {
            v.push((off, seq));
        }
    }
    let (mut replays, mut disorder) = (Vec::new(), 0u64);
    for (p, mut v) in by_part.into_iter().enumerate() {
        v.sort_unstable();
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        let mut open = false;
        for (_, seq) in v {
            if seen.insert(seq) {
                open = false;
                if highest.is_some_and(|h| seq < h) {
                    disorder += 1;
                }
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
            } else if open {
                if let Some(r) = replays.last_mut() {
                    let r: &mut Replay = r;
                    r.copies += 1;
                }
            } else {
                open = true;
                replays.push(Replay {
                    partition: p as i32,
                    first_seq: seq,
                    copies: 1,
                    written_at_s: None,
                });
            }
        }
    }
    (replays, disorder)
}

/// Stop the producer, wait for every acknowledged record to be copied, stop the processes, read
/// the rest, and check.
async fn finish(
    mut bed: Bed,
    procs: Vec<Option<Proc>>,
    boundaries: Vec<u64>,
    minutes: f64,
    args: &Args,
) -> Outcome {
    bed.stop_producer().await;
    let stopped_at = Instant::now();
    let (acks, _) = bed.traffic.snapshot();
    let produced = bed.traffic.produced();
    let mut want = vec![false; produced as usize];
    for a in &acks {
        if let Some(w) = want.get_mut(a.seq as usize) {
            *w = true;
        }
    }
    let (seen_all, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let reader = {
        let (ep, id, p) = (endpoint(&bed.b), bed.run_id.clone(), bed.partitions);
        let (s, d) = (seen_all.clone(), done.clone());
        // Records of a topic deleted since cannot arrive any more (they were waited for before
        // the delete): only wait for those of the topic there now.
        let mut w = want.clone();
        if let Some(&b) = boundaries.last() {
            for x in w.iter_mut().take(b as usize) {
                *x = false;
            }
        }
        tokio::task::spawn_blocking(move || read_copies(ep, "a.soak".into(), p, id, w, s, d))
    };
    let drain_deadline = stopped_at + Duration::from_secs_f64(args.drain_minutes * 60.0);
    let mut procs = procs;
    while !seen_all.load(Ordering::SeqCst) && Instant::now() < drain_deadline {
        bed.run_for(Duration::from_secs(1), &mut procs).await;
    }
    let drain_s = seen_all
        .load(Ordering::SeqCst)
        .then(|| stopped_at.elapsed().as_secs_f64());
    bed.event(&match drain_s {
        Some(s) => format!("every acknowledged record copied {s:.1}s after the producer stopped"),
        None => format!(
            "not every acknowledged record copied {:.0} s after the producer stopped",
            args.drain_minutes * 60.0
        ),
    });
    // A few seconds more: what strait still has in flight lands before it is stopped.
    bed.run_for(Duration::from_secs(3), &mut procs).await;
    for p in procs.into_iter().flatten() {
        bed.term(p).await;
    }
    let bad: Vec<String> = bed
        .stops
        .iter()
        .filter(|s| s.exit_code != Some(0) || s.secs > 10.0)
        .map(|s| {
            format!(
                "at {:.0}s: exit {:?} after {:.1}s",
                s.at_s, s.exit_code, s.secs
            )
        })
        .collect();
    let slowest = bed.stops.iter().map(|s| s.secs).fold(0.0, f64::max);
    bed.check(
        "SIGTERM: exit 0 within 10 s",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} stops, slowest {slowest:.1}s", bed.stops.len())
        } else {
            bad.join("; ")
        },
    );
    done.store(true, Ordering::SeqCst);
    let copies = reader.await.expect("checker thread");
    bed.sampling.abort();

    let deliveries: Vec<Delivery> = copies
        .seen
        .iter()
        .map(|&(seq, _, _)| Delivery {
            seq,
            side: Side::Primary,
            received_at_ms: 0,
        })
        .collect();
    let v = verify(&acks, &deliveries, strait::heartbeat::now_ms());
    // topic-recreate: lost records by the topic they were written to (0: the first).
    let lost_by_topic = (!boundaries.is_empty()).then(|| {
        let mut n = vec![0u64; boundaries.len() + 1];
        for r in &v.lost {
            for s in r.first..=r.last {
                n[boundaries.iter().filter(|&&b| s >= b).count()] += 1;
            }
        }
        n
    });
    let (mut replay_list, order_violations) = replays(&copies, bed.partitions);
    {
        let written: std::collections::HashMap<u64, i64> =
            acks.iter().map(|a| (a.seq, a.record_ts_ms)).collect();
        for r in &mut replay_list {
            r.written_at_s = written
                .get(&r.first_seq)
                .map(|ts| (ts - bed.t0_ms) as f64 / 1000.0);
        }
    }
    for r in replay_list.iter().take(50) {
        let line = format!(
            "replay: partition {}, {} copies again from seq {} (written at {})",
            r.partition,
            r.copies,
            r.first_seq,
            r.written_at_s
                .map_or("?".to_string(), |t| format!("{t:.1}s"))
        );
        let _ = writeln!(bed.events, "{line}");
    }
    let replays = replay_list.len() as u64;
    let largest_replay = replay_list.iter().map(|r| r.copies).max().unwrap_or(0);
    replay_list.truncate(50);
    let mut lost_ranges: Vec<String> = v
        .lost
        .iter()
        .take(20)
        .map(|r| describe(r, bed.partitions))
        .collect();
    if v.lost.len() > 20 {
        lost_ranges.push(format!("... {} ranges in all", v.lost.len()));
    }
    if v.lost_count > 0 {
        // Where the lost records are on the source, for the reproduction.
        let (ep, id, p) = (endpoint(&bed.a), bed.run_id.clone(), bed.partitions);
        let src = tokio::task::spawn_blocking(move || {
            read_copies(
                ep,
                "soak".into(),
                p,
                id,
                Vec::new(),
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(true)),
            )
        })
        .await
        .expect("source reader");
        let lost: Vec<SeqRange> = v.lost.clone();
        let mut at: Vec<(u64, i32, i64)> = src
            .seen
            .iter()
            .copied()
            .filter(|(s, _, _)| lost.iter().any(|r| r.contains(*s)))
            .collect();
        at.sort_unstable();
        let mut f = std::fs::File::create(bed.dir.join("lost.txt")).expect("lost.txt");
        let _ = writeln!(
            f,
            "# seq partition source-offset (lost: acknowledged, never copied to b)"
        );
        for (s, p, o) in &at {
            let _ = writeln!(f, "{s} {p} {o}");
        }
        // Around the first few lost records: the target's copies of neighbouring sequence
        // numbers in the same partition, and strait's offset index runs (source -> target
        // offsets) there, to tell a record never sent from one the target acknowledged and
        // does not hold.
        let index = {
            let ep = endpoint(&bed.b);
            tokio::task::spawn_blocking(move || read_index(ep, "strait-offset-index.a.internal"))
                .await
                .unwrap_or_default()
        };
        let step = bed.partitions as u64;
        for &(seq, p, o) in at.iter().take(5) {
            let _ = writeln!(
                f,
                "\n# around seq {seq} (partition {p}, source offset {o}): target copies as seq -> target offset"
            );
            let mut near: Vec<(u64, i64)> = copies
                .seen
                .iter()
                .filter(|c| c.1 == p && c.0 + 10 * step >= seq && c.0 <= seq + 10 * step)
                .map(|c| (c.0, c.2))
                .collect();
            near.sort_unstable();
            for (s, t) in near {
                let _ = writeln!(f, "{s} -> {t}");
            }
            let _ = writeln!(
                f,
                "# offset index runs of soak[{p}] near source offset {o}: source start, target start, length"
            );
            for (up, down, len) in index
                .iter()
                .filter(|r| r.0 == "soak" && r.1 == p)
                .map(|r| (r.3, r.2, r.4))
                .filter(|(up, _, len)| *up <= o + 1000 && up + len + 1000 >= o)
            {
                let _ = writeln!(f, "{up} {down} {len}");
            }
        }
        let on_source = at.len();
        bed.event(&format!(
            "{} lost; {on_source} of them found on the source (seq, partition, offset in {})",
            v.lost_count,
            bed.dir.join("lost.txt").display()
        ));
    }
    let rss_all: Vec<f64> = bed.rss.lock().unwrap().iter().map(|x| x.2).collect();
    let rss_peak_mb = max(&rss_all);
    let rss_steady_mb = {
        let s = bed.rss_between(30.0, 60.0);
        (!s.is_empty()).then(|| max(&s))
    };
    let (mut warn_lines, mut error_lines) = (0, 0);
    for slot in 0..3 {
        let log = bed.dir.join(format!("strait-{slot}.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for l in text.lines() {
            // The level comes third, after the timestamp, maybe between colour codes.
            let plain: String = l
                .split('\x1b')
                .enumerate()
                .map(|(i, p)| match (i, p.split_once('m')) {
                    (0, _) | (_, None) => p,
                    (_, Some((_, rest))) => rest,
                })
                .collect();
            match plain.split_whitespace().nth(1) {
                Some("WARN") => warn_lines += 1,
                Some("ERROR") => error_lines += 1,
                _ => {}
            }
        }
    }
    let passed = v.lost_count == 0 && bed.checks.iter().all(|c| c.ok);
    let out = Outcome {
        scenario: bed.scenario.name(),
        engine: bed.engine.name(),
        minutes,
        seed: args.seed,
        produced,
        acked: v.acked,
        copies: copies.seen.len() as u64,
        lost: v.lost_count,
        lost_ranges,
        duplicated: v.redeliveries,
        duplicated_records: v.redelivered_records,
        replays,
        largest_replay,
        replay_list,
        order_violations,
        unacked_copied: v.unacked_consumed_count,
        lost_by_topic,
        drain_s,
        starts: bed.starts,
        kills: bed.kills,
        stops: bed.stops.clone(),
        rss_peak_mb,
        rss_steady_mb,
        checks: bed.checks.clone(),
        warn_lines,
        error_lines,
        log_dir: bed.dir.display().to_string(),
        passed,
    };
    bed.event(&format!("done: {}", if passed { "PASS" } else { "FAIL" }));
    let Bed { a, b, .. } = bed;
    a.shutdown().await;
    b.shutdown().await;
    out
}

/// A lost range, with the partitions its records were written to.
fn describe(r: &SeqRange, partitions: i32) -> String {
    let parts: std::collections::BTreeSet<u64> = (r.first
        ..=r.last.min(r.first + partitions as u64))
        .map(|s| s % partitions as u64)
        .collect();
    let parts: Vec<String> = parts.iter().map(u64::to_string).collect();
    format!("{r} (partitions {})", parts.join(","))
}

fn line(o: &Outcome) -> String {
    let rss = match o.rss_steady_mb {
        Some(s) => format!("RSS {s:.0} MB steady, {:.0} peak", o.rss_peak_mb),
        None => format!("RSS peak {:.0} MB", o.rss_peak_mb),
    };
    let failed: Vec<&str> = o
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    format!(
        "{:<15} {:<6} {:>4.1} min  produced {:>7}  acked {:>7}  lost {}  duplicated {} ({} replays, largest {})  \
         out of order {}  {rss}  drain {}  {}{}{}",
        o.scenario,
        o.engine,
        o.minutes,
        o.produced,
        o.acked,
        o.lost,
        o.duplicated,
        o.replays,
        o.largest_replay,
        o.order_violations,
        o.drain_s.map_or("-".into(), |s| format!("{s:.0}s")),
        if o.passed { "PASS" } else { "FAIL" },
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", failed.join(", "))
        },
        o.lost_by_topic
            .as_ref()
            .map_or(String::new(), |n| format!("  lost by topic generation: {n:?}")),
    )
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let code = rt.block_on(run(args));
    std::process::exit(code);
}

async fn run(args: Args) -> i32 {
    let root = std::env::temp_dir().join(format!(
        "strait-soak-{}-{}",
        args.engine.name(),
        std::process::id()
    ));
    eprintln!(
        "soak on {}: {} (seed {}), logs in {}",
        match args.engine {
            Engine::Tansu => "the Tansu sandbox".to_string(),
            Engine::Kafka => format!(
                "Apache Kafka {}",
                strait_sandbox::kafka::maven::kafka_version()
            ),
        },
        args.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        args.seed,
        root.display()
    );
    let mut rng = Rng(args.seed);
    let mut outcomes = Vec::new();
    for &s in &args.scenarios {
        let minutes = args.minutes.unwrap_or(s.default_minutes());
        let mut bed = match Bed::start(args.engine, s, &args, &root).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("soak: {}: cannot start: {e}", s.name());
                return 1;
            }
        };
        bed.event(&format!(
            "{} on {} for {minutes} min, {} records/s of {} bytes into {} partitions, seed {}",
            s.name(),
            args.engine.name(),
            args.rate,
            args.value_bytes,
            args.partitions,
            args.seed
        ));
        let (procs, boundaries) = match s {
            Scenario::TargetDown => (target_down(&mut bed, minutes).await, Vec::new()),
            Scenario::Churn => (churn(&mut bed, minutes, &mut rng).await, Vec::new()),
            Scenario::Kill9 => (kill9(&mut bed, minutes).await, Vec::new()),
            Scenario::SigtermOutage => (sigterm_outage(&mut bed, minutes).await, Vec::new()),
            Scenario::WanDelay => (wan_delay(&mut bed, minutes).await, Vec::new()),
            Scenario::BrokerRestart => (broker_restart(&mut bed, minutes).await, Vec::new()),
            Scenario::TopicRecreate => topic_recreate(&mut bed, minutes).await,
        };
        let o = finish(bed, procs, boundaries, minutes, &args).await;
        if !args.json {
            println!("{}", line(&o));
        }
        outcomes.push(o);
    }
    let passed = outcomes.iter().all(|o| o.passed);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "engine": args.engine.name(),
                "seed": args.seed,
                "rate": args.rate,
                "partitions": args.partitions,
                "value_bytes": args.value_bytes,
                "scenarios": outcomes,
                "passed": passed,
            }))
            .expect("json")
        );
    }
    if passed && !args.keep_logs {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        eprintln!("soak: logs and events in {}", root.display());
    }
    i32::from(!passed)
}
