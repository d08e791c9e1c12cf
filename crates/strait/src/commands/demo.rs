//! `strait demo`: strait's main job in one command. Two sandbox regions, us-east and us-west,
//! replicated both ways (active-active) from an MM2 file written for them, with the dashboard,
//! and a little traffic in each region (orders written, and read by a consumer group) so that
//! lag, heartbeats, checkpoints and groups move. Runs until Ctrl-C or SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use strait::config::Config;
use strait::kafka::{Admin, Endpoint, TopicSpec};
use strait::service::{Service, STOP_GRACE};
use strait_sandbox::Sandbox;
use tokio::signal::unix::SignalKind;
use tracing::{debug, error, info, warn};

use super::UsageError;
use crate::cli::DemoArgs;

const REGIONS: [&str; 2] = ["us-east", "us-west"];
const TOPIC: &str = "orders";
/// Order statuses, updated in both regions: a last-writer-wins conflict topic.
const STATUS_TOPIC: &str = "order-status";
const PARTITIONS: i32 = 3;
/// How often each region updates an order's status. Every other update goes to the order the
/// other region updates at the same moment: a concurrent write, a conflict by construction.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Orders written per second in each region.
const RATE: u32 = 25;
/// The consumer group reading `orders` in each region (one app homed in each region, so that
/// each group's offsets can be synced to the other region for failover).
const GROUPS: [&str; 2] = ["orders-app", "billing-app"];
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let control_port = match args.control_port {
        Some(p) => p,
        None => args.base_port.checked_add(100).ok_or_else(|| {
            UsageError(format!(
                "--base-port {} leaves no room for the control port (base + 100); give --control-port",
                args.base_port
            ))
        })?,
    };
    // Signals are caught from here on, so that a stop while starting up still cleans up.
    let signal =
        |kind| tokio::signal::unix::signal(kind).context("cannot listen for Ctrl-C or SIGTERM");
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // Every port is taken before anything starts, so a busy one fails at once.
    let listener = bind_dashboard(&args.http).await?;
    let dashboard = dashboard_url(&listener);
    let sandbox = Sandbox::start_on(&REGIONS, args.base_port).await?;
    let control = sandbox
        .serve_control(SocketAddr::from((Ipv4Addr::LOCALHOST, control_port)))
        .await?;

    let dir = DemoDir::create()?;
    let config_path = dir.path().join("mm2.properties");
    std::fs::write(&config_path, properties(&sandbox))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path).context("the demo's own MM2 file does not load")?;

    for c in sandbox.clusters() {
        let ep = Endpoint::new(c.name(), c.bootstrap_servers());
        Admin::new(&ep, Duration::from_secs(10))?
            .create_topics(&[
                TopicSpec::new(TOPIC, PARTITIONS, 1),
                TopicSpec::new(STATUS_TOPIC, PARTITIONS, 1),
            ])
            .await?;
    }

    let service = Service::start(&config, &[], Some(listener));
    let traffic = Traffic::start(&sandbox);
    println!(
        "{}",
        banner(&sandbox, &dashboard, &control.url(), &config_path)
    );

    let started = Instant::now();
    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let failed = loop {
        tokio::select! {
            _ = interrupt.recv() => break None,
            _ = term.recv() => break None,
            _ = progress.tick() => println!("{}", progress_line(started, &traffic, &service)),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(f) = service.failed_flow() {
                    break Some(f.to_string());
                }
            }
        }
    };
    eprintln!("strait demo: stopping; the sandbox's data is gone");
    traffic.stop();
    let (stopped, ()) = tokio::join!(service.shutdown(STOP_GRACE), traffic.join(STOP_GRACE));
    drop(control);
    sandbox.shutdown().await;
    drop(dir);
    match (failed, stopped) {
        (_, Err(e)) => Err(e.into()),
        (Some(flow), Ok(())) => {
            error!(flow = %flow, "flow stopped");
            Ok(ExitCode::from(1))
        }
        (None, Ok(())) => Ok(ExitCode::SUCCESS),
    }
}

/// Listen on `addr` for the dashboard. A malformed address is a usage error (exit 2); a busy
/// port is reported like the sandbox's own ports (exit 1).
async fn bind_dashboard(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    // `:8080` means every interface; names such as `localhost:8080` are resolved.
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    let sock: SocketAddr = tokio::net::lookup_host(full.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            UsageError(format!(
                "--http {addr:?} is not an address such as 127.0.0.1:8080"
            ))
        })?;
    tokio::net::TcpListener::bind(sock).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {} is already in use (wanted for the dashboard); choose another with --http",
                sock.port()
            )
        } else {
            anyhow::anyhow!("--http {addr}: cannot listen there: {e}")
        }
    })
}

fn dashboard_url(listener: &tokio::net::TcpListener) -> String {
    match listener.local_addr() {
        Ok(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}/", a.port()),
        Ok(SocketAddr::V6(a)) => format!("http://[{}]:{}/", a.ip(), a.port()),
        Ok(a) => format!("http://{a}/"),
        Err(_) => "(unknown address)".to_string(),
    }
}

/// A directory of the demo's own under the system's temporary directory (created new, so
/// nothing else's file is overwritten), removed when dropped.
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("strait-demo-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create the directory {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The active-active MM2 file for the sandbox (the same keys as examples/active-active.properties,
/// with intervals short enough to watch).
fn properties(sandbox: &Sandbox) -> String {
    format!(
        "# strait demo: two sandbox regions, each replicating `{TOPIC}` to the other (active-active).\n\
         # A MirrorMaker 2 properties file: strait and MM2 both read it.\n\
         {clusters}\
         us-east->us-west.enabled = true\n\
         us-west->us-east.enabled = true\n\
         topics = {TOPIC}, {STATUS_TOPIC}\n\
         \n\
         # Both regions update order statuses: the latest update of an order wins in every region\n\
         # ({STATUS_TOPIC}.resolved), and every concurrent update is recorded as a conflict.\n\
         strait.conflicts.rules = status\n\
         strait.conflicts.regions = us-east, us-west\n\
         strait.conflicts.status.topics = {STATUS_TOPIC}\n\
         strait.conflicts.status.strategy = last-writer-wins\n\
         \n\
         # Keep consumer groups' positions in the other region up to date, for failover.\n\
         sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = 5\n\
         emit.checkpoints.interval.seconds = 5\n\
         refresh.groups.interval.seconds = 5\n\
         refresh.topics.interval.seconds = 10\n\
         \n\
         # One broker per sandbox region: replication factor 1. Use 3 on real clusters.\n\
         replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n",
        clusters = sandbox.mm2_properties(),
    )
}

/// How to call this binary from another terminal: `strait` when it is the one on the PATH,
/// otherwise its path (relative to the current directory when it is below it).
fn self_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "strait".to_string();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::canonicalize(d.join("strait"))
                .is_ok_and(|found| std::fs::canonicalize(&exe).is_ok_and(|e| e == found))
        })
    });
    if on_path {
        return "strait".to_string();
    }
    match std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_path_buf))
    {
        Some(rel) => format!("./{}", rel.display()),
        None => exe.display().to_string(),
    }
}

fn banner(sandbox: &Sandbox, dashboard: &str, control: &str, config: &Path) -> String {
    let strait = self_command();
    let config = config.display();
    let (east, west) = (REGIONS[0], REGIONS[1]);
    let mut out = format!(
        "strait demo: {east} and {west} replicating to each other (in-memory storage: everything is lost when this stops)\n\n\
         \x20 Dashboard  {dashboard}\n"
    );
    for c in sandbox.clusters() {
        out.push_str(&format!(
            "  {:<9}  bootstrap.servers={}\n",
            c.name(),
            c.bootstrap_servers()
        ));
    }
    out.push_str(&format!(
        "  Config     {config}  (MM2 properties; removed when the demo stops)\n\n\
         Traffic: {RATE} orders/s into `{TOPIC}` in each region; consumer group {g0} reads them on {east}, {g1} on {west}.\n\
         strait copies {east}'s orders to {west} as `{east}.{TOPIC}` and {west}'s to {east} as `{west}.{TOPIC}`,\n\
         with heartbeats, checkpoints and group offset sync.\n\
         Both regions update order statuses in `{STATUS_TOPIC}`, some of the same orders at the same moment:\n\
         the latest update of each order wins in `{STATUS_TOPIC}.resolved` in both regions\n\
         (the dashboard shows the conflicts and both regions' views side by side).\n\n\
         Try in another terminal:\n\
         \x20 {strait} status {config}\n\
         \x20 {strait} conflicts {config}        # concurrent updates of one order, and who won\n\
         \x20 {strait} translate {config} --group {g0} --source {east} --target {west}\n\
         \x20 {strait} failover {config} --from {east} --to {west} --dry-run\n\
         \x20 {strait} check {config}\n\n\
         Break a region (fault control: {control}):\n\
         \x20 curl -s -X POST {control}/regions/{east}/cut           # {east} down: its flows turn BROKEN\n\
         \x20 curl -s -X POST '{control}/regions/{east}/delay?ms=200' # WAN latency, each way\n\
         \x20 curl -s -X POST {control}/regions/{east}/heal          # back to normal\n\
         \x20 curl -s {control}/regions\n\n\
         Ctrl-C or SIGTERM stops the demo.",
        g0 = GROUPS[0],
        g1 = GROUPS[1],
    ));
    out
}

fn progress_line(started: Instant, traffic: &Traffic, service: &Service) -> String {
    let mut parts: Vec<String> = traffic
        .regions
        .iter()
        .map(|r| {
            format!(
                "{}: {} written, {} read by {}",
                r.name,
                r.counters.written.load(Ordering::Relaxed),
                r.counters.read.load(Ordering::Relaxed),
                r.group
            )
        })
        .collect();
    let copied: Vec<String> = service
        .flows()
        .map(|(name, stats)| format!("{name} {}", stats.records.load(Ordering::Relaxed)))
        .collect();
    parts.push(format!("replicated: {}", copied.join(", ")));
    format!(
        "[{:>4}s] {}",
        started.elapsed().as_secs(),
        parts.join(" | ")
    )
}

// ---- traffic: a producer and a consumer group per region ----

#[derive(Default)]
struct Counters {
    /// Orders the region acknowledged.
    written: AtomicU64,
    /// Orders the region's consumer group read.
    read: AtomicU64,
}

struct RegionTraffic {
    name: String,
    group: &'static str,
    counters: Arc<Counters>,
}

struct Traffic {
    stop: Arc<AtomicBool>,
    regions: Vec<RegionTraffic>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// A producer and a consumer per region, each on a blocking thread of its own (librdkafka's
    /// calls block; tokio's workers never wait on them).
    fn start(sandbox: &Sandbox) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut regions = Vec::new();
        let mut tasks = Vec::new();
        for (c, group) in sandbox.clusters().iter().zip(GROUPS) {
            let ep = Endpoint::new(c.name(), c.bootstrap_servers());
            let counters = Arc::new(Counters::default());
            tasks.push(tokio::task::spawn_blocking({
                let (ep, stop, counters) = (ep.clone(), stop.clone(), counters.clone());
                move || produce(&ep, &stop, counters)
            }));
            tasks.push(tokio::task::spawn_blocking({
                let (stop, counters) = (stop.clone(), counters.clone());
                move || consume(&ep, group, &stop, &counters)
            }));
            regions.push(RegionTraffic {
                name: c.name().to_string(),
                group,
                counters,
            });
        }
        Self {
            stop,
            regions,
            tasks,
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Wait for the producers to flush and the consumers to commit and leave, at most `grace`.
    async fn join(self, grace: Duration) {
        self.stop();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            warn!(
                "the demo's traffic did not stop within {}s",
                grace.as_secs()
            );
        }
    }
}

/// Counts the orders a region acknowledged.
struct Acks(Arc<Counters>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.written.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => debug!(error = %e, "demo order not delivered"),
        }
    }
}

/// Write [`RATE`] orders a second to `orders` until `stop`. While the region is down, orders
/// queue up to librdkafka's limit and then are skipped.
fn produce(ep: &Endpoint, stop: &AtomicBool, counters: Arc<Counters>) {
    let producer: ThreadedProducer<Acks> = match ep
        .producer_config()
        .set("message.timeout.ms", "30000")
        .create_with_context(Acks(counters))
    {
        Ok(p) => p,
        Err(e) => {
            warn!(region = %ep.alias, error = %e, "the demo producer did not start");
            return;
        }
    };
    let period = Duration::from_secs(1) / RATE;
    let mut next = Instant::now();
    let mut next_status = Instant::now();
    let mut seq: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let (key, value) = order(&ep.alias, seq);
        match producer.send(BaseRecord::to(TOPIC).key(&key).payload(&value)) {
            Ok(()) => seq += 1,
            Err((e, _)) => debug!(region = %ep.alias, error = %e, "demo order not queued"),
        }
        if Instant::now() >= next_status {
            next_status += STATUS_EVERY;
            let (key, value) = status_update(&ep.alias, strait::heartbeat::now_ms());
            let record = BaseRecord::to(STATUS_TOPIC).key(&key).payload(&value);
            if let Err((e, _)) = producer.send(record) {
                debug!(region = %ep.alias, error = %e, "demo status update not queued");
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    let _ = producer.flush(Duration::from_secs(2));
}

/// An order: key the customer, value a small JSON document that varies like real data.
fn order(region: &str, seq: u64) -> (String, String) {
    // A fixed-seed mix of the sequence number: varied enough to look like orders, no RNG needed.
    let h = seq
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17);
    let customer = format!("customer-{:03}", h % 200);
    let items = ["coffee", "tea", "bagel", "muffin", "juice", "sandwich"];
    let value = format!(
        "{{\"order_id\":\"{region}-{seq:07}\",\"region\":\"{region}\",\"customer\":\"{customer}\",\
         \"item\":\"{}\",\"quantity\":{},\"amount_cents\":{},\"at_ms\":{}}}",
        items[(h >> 8) as usize % items.len()],
        1 + (h >> 16) % 4,
        150 + (h >> 24) % 2000,
        strait::heartbeat::now_ms()
    );
    (customer, value)
}

/// A status update of an order at `now_ms`. In even slots of [`STATUS_EVERY`] both regions
/// update the same order (us-east ships it, us-west cancels it: `order-123` of the README); in
/// odd slots each region updates an order of its own choice, which the other region may update
/// later (an ordinary, sequential update).
fn status_update(region: &str, now_ms: i64) -> (String, String) {
    let slot = now_ms.max(0) as u64 / STATUS_EVERY.as_millis() as u64;
    let mix = |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    let (order, status) = if slot.is_multiple_of(2) {
        let status = if region == REGIONS[0] {
            "SHIPPED"
        } else {
            "CANCELLED"
        };
        (mix(slot) % 1000, status)
    } else {
        let statuses = ["PLACED", "PAID", "PACKED", "DELIVERED"];
        let salt = region
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let h = mix(slot ^ mix(salt));
        (h % 1000, statuses[(h >> 20) as usize % statuses.len()])
    };
    let key = format!("order-{order:03}");
    let value = format!(
        "{{\"order_id\":\"{key}\",\"status\":\"{status}\",\"region\":\"{region}\",\"at_ms\":{now_ms}}}"
    );
    (key, value)
}

/// Read `orders` as `group` and commit every second until `stop`.
fn consume(ep: &Endpoint, group: &str, stop: &AtomicBool, counters: &Counters) {
    let consumer: BaseConsumer = match ep.consumer_config(group).create() {
        Ok(c) => c,
        Err(e) => {
            warn!(region = %ep.alias, error = %e, "the demo consumer did not start");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[TOPIC]) {
        warn!(region = %ep.alias, error = %e, "the demo consumer cannot subscribe");
        return;
    }
    let mut last_commit = Instant::now();
    let mut uncommitted = false;
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                counters.read.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = consumer.store_offset(m.topic(), m.partition(), m.offset() + 1) {
                    debug!(region = %ep.alias, error = %e, "offset not stored");
                } else {
                    uncommitted = true;
                }
            }
            Some(Err(e)) => debug!(region = %ep.alias, error = %e, "demo consumer"),
            None => {}
        }
        if uncommitted && last_commit.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
                debug!(region = %ep.alias, error = %e, "demo commit failed");
            }
            uncommitted = false;
            last_commit = Instant::now();
        }
    }
    if uncommitted {
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
    }
    info!(region = %ep.alias, group, "demo consumer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_regions_update_the_same_order_in_even_slots_and_their_own_in_odd_ones() {
        let slot = STATUS_EVERY.as_millis() as i64;
        let t = 1_700_000_000_000 / (2 * slot) * (2 * slot);
        let (east, east_value) = status_update("us-east", t + 10);
        let (west, west_value) = status_update("us-west", t + 20);
        assert_eq!(east, west, "the same order, at the same moment");
        assert!(east_value.contains("SHIPPED") && west_value.contains("CANCELLED"));
        let odd: Vec<bool> = (0..20)
            .map(|i| {
                let at = t + (2 * i + 1) * slot;
                status_update("us-east", at).0 != status_update("us-west", at).0
            })
            .collect();
        assert!(
            odd.iter().filter(|d| **d).count() >= 18,
            "mostly different orders: {odd:?}"
        );
        assert!(east.starts_with("order-") && east.len() == 9, "{east}");
    }

    #[test]
    fn orders_are_json_with_the_region_and_a_customer_key() {
        let (key, value) = order("us-east", 42);
        let v: serde_json::Value = serde_json::from_str(&value).unwrap();
        assert_eq!(v["region"], "us-east");
        assert_eq!(v["order_id"], "us-east-0000042");
        assert_eq!(v["customer"], key.as_str());
        assert_ne!(order("us-east", 43).0, key, "customers vary");
    }

    #[test]
    fn a_busy_or_bad_dashboard_address_is_one_sentence() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let busy = rt
            .block_on(bind_dashboard(&format!("127.0.0.1:{port}")))
            .unwrap_err();
        assert!(busy
            .to_string()
            .contains(&format!("port {port} is already in use")));
        assert!(
            busy.downcast_ref::<UsageError>().is_none(),
            "exit 1, like the sandbox"
        );
        let bad = rt.block_on(bind_dashboard("nowhere")).unwrap_err();
        assert!(bad.downcast_ref::<UsageError>().is_some(), "exit 2");
    }
}
