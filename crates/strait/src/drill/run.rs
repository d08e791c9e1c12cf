//! `strait drill`: a complete DR drill, run against two regions, measured from sequence numbers.
//!
//! 1. **Set up.** With [`Environment::Sandbox`], two sandbox regions are started and an
//!    active-passive MM2 file is written for them (saved as `mm2.properties` in the report
//!    directory, so the drill can be reproduced). With [`Environment::Config`], the clusters and the
//!    `primary->secondary` flow settings of the user's file are used, restricted to the drill's
//!    own topic and group, so that the drill never copies, translates or moves anything else.
//!    A drill topic (`strait-drill-<id>`, 3 partitions) is created on the primary, and the topic the
//!    producer will use after the failover on the secondary.
//! 2. **Replicate.** Sandbox: [`Service`], exactly as `strait run` (copy flow, heartbeats,
//!    checkpoints with group offset sync, lag snapshots). Config: the copy flow and checkpoint job
//!    only, the copy flow in a replication group of its own (`strait.drill-<id>.A->B`, never the
//!    `strait.A->B` group a production `strait run` may be in), and no lag snapshots (they would
//!    replace the production replicator's snapshot of the same flow).
//! 3. **Traffic.** A producer writes sequence-numbered records to the primary at `rate`; a
//!    consumer group (`strait-drill-<id>`) reads them there and commits every 200 ms. A sample of
//!    the timeline is taken every 500 ms.
//! 4. **Failure** at `fail_after`. Sandbox: the primary's fault proxy cuts every connection (the
//!    drill's own producer and consumer there stop with it). Config: a *simulation*: the drill
//!    stops its replication of the primary and its producer and consumer there; the cluster itself
//!    is not touched.
//! 5. **Detection.** Sandbox: the newest heartbeat that crossed the flow (`A.heartbeats` on B) is
//!    older than `3 × emit.heartbeats.interval + 10 s`, the rule `strait status` uses. Config: the
//!    drill topic's copies on the secondary stopped growing for as long as that.
//! 6. **Failover**, unplanned. Sandbox: `strait failover` in full (probe, drain, RPO from the last
//!    lag snapshot, groups moved from checkpoints, active region recorded). Config: the drill's
//!    group only is moved from its checkpoints; the active-region record is not switched.
//!    Replication of the failed primary is then stopped (sandbox: in the background, while the
//!    drill goes on; there is nothing left to copy from a region that is gone).
//! 7. **Recovery.** The producer moves to the secondary (the drill topic's local name there,
//!    sequence numbers continuing), the group to the secondary (the remote and the local topic).
//!    The drill runs until `duration`, and at least [`MIN_ON_SECONDARY`] on the secondary; then the
//!    producer stops and the consumer reads what is left.
//! 8. **Verdict.** [`verify`] and [`DrillReport`]: report.json, report.md and report.html.
//! 9. **Clean up.** Sandbox: the sandbox stops (its memory storage goes with it). Config: the drill
//!    topics and groups are deleted on both clusters (what cannot be deleted is said).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::report::{DrillReport, DrillSettings, DrillTimes, Mark, MarkKind, RpoEstimate, Sample};
use super::traffic::{self, ClientThread, ConsumerSpec, DrillLog, ProducerSpec};
use super::verify::{verify, Side};
use crate::checkpoint::{self, CheckpointSpec, RunningCheckpoints};
use crate::config::{Config, Flow, NameFilter};
use crate::failover::execute::{flow_for, Run};
use crate::failover::{self, FailoverError, FailoverReport};
use crate::heartbeat::now_ms;
use crate::kafka::groups::{Groups, OffsetAndMetadata};
use crate::kafka::{Admin, Created, Endpoint, TopicSpec};
use crate::monitor::collect::heartbeat_source;
use crate::monitor::model::heartbeat_stale_after;
use crate::replicate::{self, FlowSpec, RunningFlow};
use crate::service::{Service, STOP_GRACE};

/// What `strait sandbox`, `strait demo` and `strait drill --sandbox` say in a binary built
/// without the embedded sandbox.
pub const NO_SANDBOX: &str = "this strait was built without the embedded sandbox (cargo build --no-default-features): `strait sandbox`, `strait demo` and `strait drill --sandbox` need the default `sandbox` feature; drills against your own clusters (`strait drill CONFIG`) work without it";

/// The two regions of a sandbox drill: the embedded sandbox, when strait is built with it.
#[cfg(feature = "sandbox")]
mod regions {
    pub(super) struct Regions(strait_sandbox::Sandbox);

    impl Regions {
        pub(super) async fn start(names: &[&str]) -> Result<Self, String> {
            strait_sandbox::Sandbox::start(names)
                .await
                .map(Self)
                .map_err(|e| e.to_string())
        }

        /// (name, bootstrap servers) of each region.
        pub(super) fn bootstrap_servers(&self) -> Vec<(String, String)> {
            self.0
                .clusters()
                .iter()
                .map(|c| (c.name().to_string(), c.bootstrap_servers()))
                .collect()
        }

        /// Fail region `name`: its fault proxy resets every connection and refuses new ones.
        pub(super) fn cut(&self, name: &str) {
            if let Some(c) = self.0.cluster(name) {
                c.cut();
            }
        }

        pub(super) async fn shutdown(self) {
            self.0.shutdown().await;
        }
    }
}

/// Without the embedded sandbox there are no sandbox regions: starting them says so.
#[cfg(not(feature = "sandbox"))]
mod regions {
    pub(super) enum Regions {}

    impl Regions {
        pub(super) async fn start(_: &[&str]) -> Result<Self, String> {
            Err(super::NO_SANDBOX.to_string())
        }

        pub(super) fn bootstrap_servers(&self) -> Vec<(String, String)> {
            match *self {}
        }

        pub(super) fn cut(&self, _: &str) {
            match *self {}
        }

        pub(super) async fn shutdown(self) {
            match self {}
        }
    }
}

/// Partitions of a drill topic the drill creates.
pub const PARTITIONS: i32 = 3;
/// The least time the drill keeps producing and consuming on the secondary after the failover,
/// however short `duration` is, so that recovery is shown by records and not assumed.
pub const MIN_ON_SECONDARY: Duration = Duration::from_secs(5);
/// How often a timeline sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// How long replication may take to start before the drill gives up (before any traffic).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After the producer stopped: the consumer is done when nothing new arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_secs(10);
/// ... or, once it has every record acknowledged on the secondary, for this long.
const DRAIN_SETTLE: Duration = Duration::from_secs(1);
/// How long each cluster request may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the failover may take to decide the primary is gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long detection may run past the staleness bound before the drill fails over anyway.
const DETECT_SLACK: Duration = Duration::from_secs(30);

/// What the drill is asked to do.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// The region that is failed.
    pub primary: String,
    /// The region that takes over.
    pub secondary: String,
    /// From the first record written to stopping the producer (the drill may run longer: see
    /// [`MIN_ON_SECONDARY`]).
    pub duration: Duration,
    /// Records per second.
    pub rate: u64,
    /// From the first record written to failing the primary.
    pub fail_after: Duration,
    pub rpo_budget_records: Option<u64>,
    pub rto_budget: Option<Duration>,
    /// Where report.json, report.md and report.html go (created when missing).
    pub report_dir: PathBuf,
    /// Use this topic on the primary instead of a new `strait-drill-<id>` (created when missing;
    /// deleted afterwards only when the drill created it).
    pub topic: Option<String>,
}

/// Where the drill runs.
pub enum Environment {
    /// Two sandbox regions started for the drill, named after `primary` and `secondary`.
    Sandbox,
    /// The clusters and flow settings of a configuration; the failure is simulated.
    Config(Box<Config>),
}

/// One line of progress for a person watching.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// A drill that ran to its report.
#[derive(Debug)]
pub struct DrillOutcome {
    pub report: DrillReport,
    /// The directory the report was written to.
    pub report_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Asked for something that cannot work; nothing was started.
    #[error("{0}")]
    Usage(String),
    /// The drill could not get as far as failing the primary (no report was written).
    #[error("{0}")]
    Failed(String),
}

/// Check what can be checked before anything starts.
pub fn check(env: &Environment, opts: &DrillOptions) -> Result<(), DrillError> {
    let usage = |m: String| Err(DrillError::Usage(m));
    if opts.primary == opts.secondary {
        return usage(format!(
            "--primary and --secondary are both {}; name two different regions",
            opts.primary
        ));
    }
    if opts.rate == 0 {
        return usage("--rate must be at least 1 record per second".into());
    }
    if opts.duration.is_zero() {
        return usage("--duration must be longer than 0 s".into());
    }
    if opts.fail_after.is_zero() || opts.fail_after >= opts.duration {
        return usage(format!(
            "--fail-after ({}) must be longer than 0 s and shorter than --duration ({})",
            humantime::format_duration(opts.fail_after),
            humantime::format_duration(opts.duration)
        ));
    }
    if let Some(t) = &opts.topic {
        if !valid_topic_name(t) {
            return usage(format!(
                "--topic {t:?} is not a Kafka topic name (1 to 249 letters, digits, '.', '_' or '-')"
            ));
        }
    }
    match env {
        Environment::Sandbox => {
            for name in [&opts.primary, &opts.secondary] {
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return usage(format!(
                        "{name:?} cannot name a sandbox region: use 1 to 64 letters, digits, '-' or '_'"
                    ));
                }
            }
        }
        Environment::Config(config) => {
            flow_for(config, &opts.primary, &opts.secondary).map_err(|e| match e {
                FailoverError::Usage(m) | FailoverError::Aborted(m) => DrillError::Usage(format!(
                    "{}: {}",
                    config.file,
                    m.replace("--from and --to", "--primary and --secondary")
                )),
            })?;
        }
    }
    Ok(())
}

fn valid_topic_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Run the drill (see the module doc). Errors before the primary is failed end the drill
/// without a report; anything that goes wrong after that is written into the report, which then
/// fails.
pub async fn run(
    env: Environment,
    opts: DrillOptions,
    progress: Progress,
) -> Result<DrillOutcome, DrillError> {
    check(&env, &opts)?;
    std::fs::create_dir_all(&opts.report_dir).map_err(|e| {
        DrillError::Usage(format!(
            "cannot create the report directory {}: {e}",
            opts.report_dir.display()
        ))
    })?;
    let id = short_id();
    let mut drill = match env {
        Environment::Sandbox => Drill::sandbox(opts, id, progress).await?,
        Environment::Config(config) => Drill::config(*config, opts, id, progress)?,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let ctrl_c = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
            }
        })
    };
    drill.interrupted = interrupted;

    let set_up = drill.set_up().await;
    if set_up.is_ok() {
        drill.exercise().await;
        drill.wind_down().await;
    }
    drill.clean_up().await;
    ctrl_c.abort();
    set_up.map_err(DrillError::Failed)?;
    let report = drill.report();
    report.write(&drill.opts.report_dir).map_err(|e| {
        DrillError::Failed(format!(
            "cannot write the report to {}: {e}",
            drill.opts.report_dir.display()
        ))
    })?;
    Ok(DrillOutcome {
        report,
        report_dir: drill.opts.report_dir.clone(),
    })
}

/// A short random id for the drill's topic and group names (6 hex digits).
fn short_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// A regex matching exactly `name` (MM2 filters and `--groups` match whole names; the escape
/// is for the dots a topic name may have).
fn exact(name: &str) -> String {
    fancy_regex::escape(name).into_owned()
}

/// The active-passive MM2 file `strait drill --sandbox` writes for its two regions.
pub fn sandbox_properties(
    clusters: &[(String, String)],
    primary: &str,
    secondary: &str,
    topic: &str,
    group: &str,
) -> String {
    // A properties file reads `\\` as `\`.
    let topic_re = exact(topic).replace('\\', "\\\\");
    let group_re = exact(group).replace('\\', "\\\\");
    let names: Vec<&str> = clusters.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = format!(
        "# strait drill --sandbox: two sandbox regions, {primary} replicated to {secondary} (active-passive).\n\
         # The sandbox and its data are gone when the drill ends; this file is kept to show what ran.\n\
         clusters = {}\n",
        names.join(", ")
    );
    for (name, bootstrap) in clusters {
        out.push_str(&format!("{name}.bootstrap.servers = {bootstrap}\n"));
    }
    out.push_str(&format!(
        "{primary}->{secondary}.enabled = true\n\
         {primary}->{secondary}.topics = {topic_re}\n\
         {primary}->{secondary}.groups = {group_re}\n\
         \n\
         # Short intervals, so that a drill of a minute shows everything.\n\
         emit.heartbeats.interval.seconds = 1\n\
         emit.checkpoints.interval.seconds = 1\n\
         refresh.topics.interval.seconds = 1\n\
         refresh.groups.interval.seconds = 1\n\
         sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = 1\n\
         # The sandbox answers in milliseconds: a region that does not answer in 5 s is gone.\n\
         admin.timeout.ms = 5000\n\
         \n\
         # One broker per sandbox region.\n\
         replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n"
    ));
    out
}

/// The `primary->secondary` flow of a configuration, narrowed to the drill: only the drill topic
/// is replicated, only the drill group checkpointed and synced, heartbeats are not copied (the
/// production replicator does that) and ACLs are not synced.
pub fn drill_flow(base: &Flow, topic: &str, group: &str) -> Flow {
    let only = |name: &str| NameFilter::new(vec![exact(name)]).expect("an escaped name is a regex");
    let none = NameFilter::new(Vec::new()).expect("an empty filter");
    let mut f = base.clone();
    f.enabled = true;
    f.topics = only(topic);
    f.topics_exclude = none.clone();
    f.groups = only(group);
    f.groups_exclude = none;
    f.heartbeats_replication = false;
    f.intervals.sync_topic_acls = None;
    f
}

/// The drill's replication in config mode: the copy flow in its own group and the checkpoint job.
struct DrillReplication {
    flow: RunningFlow,
    checkpoints: Option<RunningCheckpoints>,
    cancel: crate::stop::CancellationToken,
}

impl DrillReplication {
    fn start(flow: &Flow, group: &str) -> Self {
        let mut spec = FlowSpec::from_config(flow);
        spec.group = Some(group.to_string());
        spec.mm2_positions = None;
        let cancel = crate::stop::CancellationToken::new();
        Self {
            flow: replicate::start(spec, cancel.child_token()),
            checkpoints: CheckpointSpec::from_config(flow)
                .map(|c| checkpoint::start(c, cancel.child_token())),
            cancel,
        }
    }

    fn stop(&self) {
        self.cancel.cancel();
    }

    async fn shutdown(self, grace: Duration) {
        self.stop();
        let DrillReplication {
            flow, checkpoints, ..
        } = self;
        let joined = async {
            if let Err(e) = flow.join().await {
                warn!(error = %e, "the drill's replication ended with an error");
            }
            if let Some(c) = checkpoints {
                c.join().await;
            }
        };
        if tokio::time::timeout(grace, joined).await.is_err() {
            warn!("the drill's replication did not stop in time; moving on");
        }
    }
}

/// How the drill fails the primary and what runs replication.
enum Mode {
    Sandbox {
        sandbox: Option<regions::Regions>,
        service: Option<Service>,
    },
    Config {
        replication: Option<DrillReplication>,
        /// The drill's own replication group on the primary.
        replication_group: String,
    },
}

/// The drill as it goes.
struct Drill {
    opts: DrillOptions,
    progress: Progress,
    interrupted: Arc<AtomicBool>,
    id: String,
    topic: String,
    group: String,
    /// The drill topic's copies on the secondary.
    remote_topic: String,
    partitions: i32,
    /// The configuration the drill's flow comes from (sandbox: the drill's own).
    config: Config,
    /// The drill's flow, primary->secondary.
    flow: Flow,
    mode: Mode,
    /// Producer and consumer endpoints on each side.
    primary_producer: Endpoint,
    primary_consumer: Endpoint,
    secondary_producer: Endpoint,
    secondary_consumer: Endpoint,
    created_topic: bool,
    created_local_on_secondary: bool,
    log: Arc<DrillLog>,
    times: DrillTimes,
    started: Option<Instant>,
    failed: Arc<AtomicBool>,
    producer: Option<ClientThread>,
    consumer: Option<ClientThread>,
    sampler: Option<(watch::Sender<bool>, tokio::task::JoinHandle<Vec<Sample>>)>,
    /// Replication being stopped in the background (sandbox, after the failover).
    stopping: Option<tokio::task::JoinHandle<()>>,
    samples: Vec<Sample>,
    estimate: Option<RpoEstimate>,
    marks: Vec<Mark>,
    notes: Vec<String>,
    problems: Vec<String>,
}

impl Drill {
    fn new(
        opts: DrillOptions,
        id: String,
        progress: Progress,
        config: Config,
        flow: Flow,
        mode: Mode,
    ) -> Self {
        let topic = opts
            .topic
            .clone()
            .unwrap_or_else(|| format!("strait-drill-{id}"));
        let remote_topic = flow.policy.remote_topic(&topic);
        let c = &flow.clients;
        Self {
            group: format!("strait-drill-{id}"),
            remote_topic,
            partitions: PARTITIONS,
            // The admin properties carry each cluster's connection and security settings.
            primary_producer: c.source_admin.clone(),
            primary_consumer: c.source_consumer.clone(),
            secondary_producer: c.target_admin.clone(),
            secondary_consumer: c.target_consumer.clone(),
            opts,
            progress,
            interrupted: Arc::new(AtomicBool::new(false)),
            id,
            topic,
            config,
            flow,
            mode,
            created_topic: false,
            created_local_on_secondary: false,
            log: Arc::new(DrillLog::default()),
            times: DrillTimes::default(),
            started: None,
            failed: Arc::new(AtomicBool::new(false)),
            producer: None,
            consumer: None,
            sampler: None,
            stopping: None,
            samples: Vec::new(),
            estimate: None,
            marks: Vec::new(),
            notes: Vec::new(),
            problems: Vec::new(),
        }
    }

    async fn sandbox(
        opts: DrillOptions,
        id: String,
        progress: Progress,
    ) -> Result<Self, DrillError> {
        let (a, b) = (opts.primary.clone(), opts.secondary.clone());
        progress(&format!("starting two sandbox regions, {a} and {b}"));
        let sandbox = regions::Regions::start(&[a.as_str(), b.as_str()])
            .await
            .map_err(DrillError::Failed)?;
        let topic = opts
            .topic
            .clone()
            .unwrap_or_else(|| format!("strait-drill-{id}"));
        let group = format!("strait-drill-{id}");
        let clusters = sandbox.bootstrap_servers();
        let text = sandbox_properties(&clusters, &a, &b, &topic, &group);
        let path = opts.report_dir.join("mm2.properties");
        std::fs::write(&path, &text)
            .map_err(|e| DrillError::Failed(format!("cannot write {}: {e}", path.display())))?;
        let config = Config::parse(&text, &path.display().to_string()).map_err(|e| {
            DrillError::Failed(format!("the drill's own MM2 file does not load: {e}"))
        })?;
        let flow = config
            .flow(&a, &b)
            .cloned()
            .ok_or_else(|| DrillError::Failed("the drill's own MM2 file has no flow".into()))?;
        let mut drill = Drill::new(
            opts,
            id,
            progress,
            config,
            flow,
            Mode::Sandbox {
                sandbox: Some(sandbox),
                service: None,
            },
        );
        drill.notes.push(format!(
            "Sandbox drill: two sandbox regions started for it, {a} replicated to {b} by strait in the drill's process \
             from {} (saved beside this report).",
            path.display()
        ));
        Ok(drill)
    }

    fn config(
        config: Config,
        opts: DrillOptions,
        id: String,
        progress: Progress,
    ) -> Result<Self, DrillError> {
        let base = config
            .flow(&opts.primary, &opts.secondary)
            .cloned()
            .ok_or_else(|| DrillError::Usage("no such flow".into()))?;
        let topic = opts
            .topic
            .clone()
            .unwrap_or_else(|| format!("strait-drill-{id}"));
        let group = format!("strait-drill-{id}");
        let flow = drill_flow(&base, &topic, &group);
        let replication_group = format!("strait.drill-{id}.{}->{}", opts.primary, opts.secondary);
        let mut drill = Drill::new(
            opts,
            id,
            progress,
            config,
            flow,
            Mode::Config {
                replication: None,
                replication_group,
            },
        );
        let (a, b) = (drill.opts.primary.clone(), drill.opts.secondary.clone());
        drill.notes.push(format!(
            "Simulated failure: {a} itself was not touched. At the failure the drill stopped its own replication of {a} \
             and its producer and consumer there, as if {a} had become unreachable; other clients of {a} went on as before."
        ));
        drill.notes.push(format!(
            "Replication by strait in the drill's process with {}'s {a}->{b} settings, restricted to the drill topic and group, \
             in its own replication group ({}); production topics, groups and the active-region record were not touched.",
            drill.config.file,
            match &drill.mode {
                Mode::Config { replication_group, .. } => replication_group.as_str(),
                Mode::Sandbox { .. } => "",
            }
        ));
        drill.notes.push(format!(
            "Clean-up deletes the drill's topics and groups; a few records keyed by the drill topic or group stay in \
             strait's and MM2's compacted internal topics on {a} and {b} (offset syncs, offset index, checkpoints)."
        ));
        if base.topic_filter_matches(&topic) {
            drill.notes.push(format!(
                "{}'s {a}->{b} topic filter accepts the drill topic {topic}: a `strait run` (or MirrorMaker 2) replicating \
                 {a}->{b} with it copies the drill topic too, adding copies on {b} after the simulated failure (fewer losses, \
                 more re-deliveries than a real outage). Add `strait-drill-.*` to `{a}->{b}.topics.exclude` to keep drills apart.",
                drill.config.file
            ));
        }
        Ok(drill)
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn is_sandbox(&self) -> bool {
        matches!(self.mode, Mode::Sandbox { .. })
    }

    fn since_start(&self) -> String {
        match self.started {
            Some(s) => format!("+{:.1} s", s.elapsed().as_secs_f64()),
            None => "before the start".into(),
        }
    }

    // ---- 1-2: topics, replication, readiness ----

    async fn set_up(&mut self) -> Result<(), String> {
        let (a, b) = (self.opts.primary.clone(), self.opts.secondary.clone());
        let admin_a =
            Admin::new(&self.flow.clients.source_admin, TIMEOUT).map_err(|e| e.to_string())?;
        let admin_b =
            Admin::new(&self.flow.clients.target_admin, TIMEOUT).map_err(|e| e.to_string())?;
        let rf = if self.is_sandbox() { 1 } else { -1 };
        match admin_a
            .topics(Some(&self.topic))
            .await
            .map_err(|e| e.to_string())?
            .first()
        {
            Some(t) if t.name == self.topic => {
                self.partitions = t.partitions.max(1);
                self.notes.push(format!(
                    "The drill used the existing topic {} on {a} ({} partitions) and left it in place.",
                    self.topic, self.partitions
                ));
            }
            _ => {
                let created = admin_a
                    .create_topics(&[TopicSpec::new(&self.topic, PARTITIONS, rf)])
                    .await
                    .map_err(|e| e.to_string())?;
                self.created_topic = created
                    .iter()
                    .any(|(n, c)| n == &self.topic && *c == Created::Created);
            }
        }
        if self.remote_topic != self.topic {
            let created = admin_b
                .create_topics(&[TopicSpec::new(&self.topic, self.partitions, rf)])
                .await
                .map_err(|e| e.to_string())?;
            self.created_local_on_secondary = created
                .iter()
                .any(|(n, c)| n == &self.topic && *c == Created::Created);
        }
        // The group exists before replication starts, as an application's would: the checkpoint
        // job finds it at its first listing (it lists again only every refresh.groups.interval),
        // and it starts at the end of a topic that already held data.
        let mut offsets = std::collections::BTreeMap::new();
        for p in 0..self.partitions {
            let hi = if self.created_topic {
                0
            } else {
                admin_a
                    .watermarks(&self.topic, p)
                    .await
                    .map_err(|e| e.to_string())?
                    .1
            };
            offsets.insert((self.topic.clone(), p), OffsetAndMetadata::new(hi, ""));
        }
        Groups::new(&self.primary_consumer, TIMEOUT)
            .commit(&self.group, &offsets)
            .await
            .map_err(|e| e.to_string())?;
        self.say(&format!(
            "drill topic {} ({} partitions) on {a}, consumer group {}; replicating {a}->{b} as {}",
            self.topic, self.partitions, self.group, self.remote_topic
        ));

        match &mut self.mode {
            Mode::Sandbox { service, .. } => {
                *service = Some(Service::start(&self.config, &[], None));
            }
            Mode::Config {
                replication,
                replication_group,
            } => {
                *replication = Some(DrillReplication::start(&self.flow, replication_group));
            }
        }
        self.wait_ready(&admin_b).await
    }

    /// Until the remote topic exists on the secondary and (sandbox) a heartbeat crossed the flow.
    async fn wait_ready(&mut self, admin_b: &Admin) -> Result<(), String> {
        let (a, b) = (self.opts.primary.clone(), self.opts.secondary.clone());
        self.say(&format!("waiting for replication {a}->{b} to start"));
        let deadline = Instant::now() + START_TIMEOUT;
        let heartbeats = if self.is_sandbox() {
            heartbeat_source(&self.config, &self.flow)
        } else {
            None
        };
        let mut admin_b = admin_b.clone();
        loop {
            self.check_running()?;
            let topic_ok = match admin_b.topics(Some(&self.remote_topic)).await {
                Ok(t) => t.iter().any(|t| t.name == self.remote_topic),
                Err(_) => {
                    // A client that asked before the topic existed may keep saying it does not.
                    if let Ok(fresh) = Admin::new(&self.flow.clients.target_admin, TIMEOUT) {
                        admin_b = fresh;
                    }
                    false
                }
            };
            let heartbeat_ok = match &heartbeats {
                None => true,
                Some(hb) => newest_heartbeat(hb, &self.flow.clients.target_consumer)
                    .await
                    .is_some(),
            };
            if topic_ok && heartbeat_ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let missing = if !topic_ok {
                    format!("{} never appeared on {b}", self.remote_topic)
                } else {
                    "no heartbeat crossed it".to_string()
                };
                return Err(format!(
                    "replication {a}->{b} did not start within {} s ({missing}); nothing was failed",
                    START_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// An error when the drill must stop: interrupted, or (sandbox) replication failed.
    fn check_running(&self) -> Result<(), String> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err("the drill was interrupted (Ctrl-C)".into());
        }
        if let Mode::Sandbox {
            service: Some(s), ..
        } = &self.mode
        {
            if let Some(f) = s.failed_flow() {
                return Err(format!(
                    "replication {f} stopped with an error (see the log)"
                ));
            }
        }
        if let Mode::Config {
            replication: Some(r),
            ..
        } = &self.mode
        {
            if r.flow.is_finished() {
                return Err(format!(
                    "replication {} stopped with an error (see the log)",
                    r.flow.name
                ));
            }
        }
        Ok(())
    }

    /// Sleep until `until`, waking to check that the drill may go on.
    async fn wait_until(&self, until: Instant) -> Result<(), String> {
        loop {
            self.check_running()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            tokio::time::sleep((until - now).min(Duration::from_millis(200))).await;
        }
    }

    // ---- 3-7: traffic, failure, detection, failover, recovery ----

    /// Everything from the first record to the producer stopping on the secondary. What goes
    /// wrong is kept for the report.
    async fn exercise(&mut self) {
        if let Err(e) = self.exercise_inner().await {
            self.say(&format!("the drill stopped early: {e}"));
            self.problems.push(format!("The drill stopped early: {e}"));
        }
    }

    async fn exercise_inner(&mut self) -> Result<(), String> {
        let (a, b) = (self.opts.primary.clone(), self.opts.secondary.clone());
        let io = |e: std::io::Error| format!("cannot start a drill client thread: {e}");
        self.consumer = Some(
            traffic::start_consumer(
                ConsumerSpec {
                    endpoint: self.primary_consumer.clone(),
                    group: self.group.clone(),
                    topics: vec![self.topic.clone()],
                    side: Side::Primary,
                    drill_id: self.id.clone(),
                },
                self.log.clone(),
            )
            .map_err(io)?,
        );
        let started = Instant::now();
        self.started = Some(started);
        self.times.started_at_ms = now_ms();
        self.producer = Some(
            traffic::start_producer(
                self.producer_spec(&self.primary_producer, &self.topic, Side::Primary),
                self.log.clone(),
            )
            .map_err(io)?,
        );
        self.start_sampler(started);
        self.say(&format!(
            "writing {} records/s to {} on {a}, consumer group {} reading there; {a} fails at +{}",
            self.opts.rate,
            self.topic,
            self.group,
            humantime::format_duration(self.opts.fail_after)
        ));

        self.wait_until(started + self.opts.fail_after).await?;
        self.fail().await;

        let detected = self.detect().await?;
        self.times.detected_at_ms = detected;

        self.fail_over().await?;

        // Recovery: producer and consumer on the secondary.
        let mut topics = vec![self.remote_topic.clone()];
        if self.topic != self.remote_topic {
            topics.push(self.topic.clone());
        }
        self.consumer = Some(
            traffic::start_consumer(
                ConsumerSpec {
                    endpoint: self.secondary_consumer.clone(),
                    group: self.group.clone(),
                    topics: topics.clone(),
                    side: Side::Secondary,
                    drill_id: self.id.clone(),
                },
                self.log.clone(),
            )
            .map_err(io)?,
        );
        self.producer = Some(
            traffic::start_producer(
                self.producer_spec(&self.secondary_producer, &self.topic, Side::Secondary),
                self.log.clone(),
            )
            .map_err(io)?,
        );
        let end = (started + self.opts.duration).max(Instant::now() + MIN_ON_SECONDARY);
        self.say(&format!(
            "producer writing to {} on {b}, group {} reading {}; running until +{:.0} s",
            self.topic,
            self.group,
            topics.join(" and "),
            (end - started).as_secs_f64()
        ));
        self.wait_until(end).await
    }

    fn producer_spec(&self, endpoint: &Endpoint, topic: &str, side: Side) -> ProducerSpec {
        ProducerSpec {
            endpoint: endpoint.clone(),
            topic: topic.to_string(),
            partitions: self.partitions,
            rate: self.opts.rate,
            side,
            drill_id: self.id.clone(),
        }
    }

    fn start_sampler(&mut self, started: Instant) {
        let (stop, mut stopped) = watch::channel(false);
        let log = self.log.clone();
        let failed = self.failed.clone();
        let (ep_a, ep_b) = (
            self.flow.clients.source_admin.clone(),
            self.flow.clients.target_admin.clone(),
        );
        let (topic, remote, partitions) = (
            self.topic.clone(),
            self.remote_topic.clone(),
            self.partitions,
        );
        let task = tokio::spawn(async move {
            let mut samples: Vec<Sample> = Vec::new();
            let mut admins: Option<(Admin, Admin)> = None;
            let mut prev = (0.0f64, 0u64);
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let t = started.elapsed().as_secs_f64();
                let acked = log.acked();
                let lag = if failed.load(Ordering::SeqCst) {
                    None
                } else {
                    if admins.is_none() {
                        admins = Admin::new(&ep_a, Duration::from_secs(2))
                            .ok()
                            .zip(Admin::new(&ep_b, Duration::from_secs(2)).ok());
                    }
                    match &admins {
                        Some((aa, ab)) => {
                            let (ea, eb) = tokio::join!(
                                end_offsets(aa, &topic, partitions),
                                end_offsets(ab, &remote, partitions)
                            );
                            match (ea, eb) {
                                (Some(ea), Some(eb)) => Some((ea - eb).max(0)),
                                _ => {
                                    admins = None;
                                    None
                                }
                            }
                        }
                        None => None,
                    }
                };
                let dt = t - prev.0;
                let rate = if dt > 0.0 {
                    (acked.saturating_sub(prev.1)) as f64 / dt
                } else {
                    0.0
                };
                prev = (t, acked);
                samples.push(Sample {
                    t_ms: (t * 1000.0) as i64,
                    acked_total: acked,
                    consumed_total: log.consumed(),
                    replication_lag_records: lag,
                    produce_rate: (rate * 10.0).round() / 10.0,
                });
            }
            samples
        });
        self.sampler = Some((stop, task));
    }

    /// Fail the primary.
    async fn fail(&mut self) {
        let a = self.opts.primary.clone();
        let sandbox = self.is_sandbox();
        self.failed.store(true, Ordering::SeqCst);
        match &self.mode {
            Mode::Sandbox {
                sandbox: Some(sb), ..
            } => sb.cut(&a),
            // Everything at the same instant, as an outage would: replication stops fetching
            // from the primary while the producer may still have had records acknowledged.
            Mode::Config {
                replication: Some(r),
                ..
            } => r.stop(),
            _ => {}
        }
        self.times.failure_at_ms = Some(now_ms());
        // The primary's clients stop with it, and are left to end on their own threads.
        for t in [self.producer.take(), self.consumer.take()]
            .into_iter()
            .flatten()
        {
            t.abandon();
        }
        if sandbox {
            self.say(&format!(
                "{a} failed at {}: the sandbox fault proxy resets every connection to it and refuses new ones",
                self.since_start()
            ));
            self.notes.push(format!(
                "{a} was failed through the sandbox fault proxy: every connection to it was reset and new ones refused \
                 (the drill's producer and consumer there stopped with it)."
            ));
        } else {
            self.say(&format!(
                "{a} failed at {} (simulated: the drill stopped its replication of {a} and its producer and consumer there)",
                self.since_start()
            ));
            let replication = match &mut self.mode {
                Mode::Config { replication, .. } => replication.take(),
                Mode::Sandbox { .. } => None,
            };
            if let Some(r) = replication {
                r.shutdown(Duration::from_secs(10)).await;
            }
        }
    }

    /// Wait until the failure shows the way monitoring would see it; returns when (ms since the
    /// epoch), or `None` when it did not show in time.
    async fn detect(&mut self) -> Result<Option<i64>, String> {
        let (a, b) = (self.opts.primary.clone(), self.opts.secondary.clone());
        let failure_at = self.times.failure_at_ms.unwrap_or_else(now_ms);
        let hb = if self.is_sandbox() {
            heartbeat_source(&self.config, &self.flow)
        } else {
            None
        };
        let interval = hb
            .as_ref()
            .map(|h| h.interval)
            .or(self.flow.intervals.emit_heartbeats)
            .unwrap_or(Duration::from_secs(1));
        let bound = heartbeat_stale_after(interval);
        let give_up = Instant::now() + bound + DETECT_SLACK;
        match hb.as_ref().map(|h| &h.topic) {
            Some(topic) => {
                self.say(&format!(
                    "watching heartbeats of {a}->{b} ({topic} on {b}): stale after {} s",
                    bound.as_secs()
                ));
                self.notes.push(format!(
                    "Failure detection: the newest heartbeat that crossed {a}->{b} ({topic} on {b}) older than {} s \
                     (3 × emit.heartbeats.interval + 10 s, the rule `strait status` uses).",
                    bound.as_secs()
                ));
            }
            None => {
                self.say(&format!(
                    "watching the drill topic's copies on {b}: the failure shows when they stop growing for {} s",
                    bound.as_secs()
                ));
                self.notes.push(format!(
                    "Failure detection: the drill topic's copies on {b} stopped growing for {} s (the heartbeat staleness \
                     bound, 3 × emit.heartbeats.interval + 10 s): the primary's heartbeats keep flowing in a simulation.",
                    bound.as_secs()
                ));
            }
        }
        let bound_ms = bound.as_millis() as i64;
        let mut last_ends: Option<i64> = None;
        let mut last_growth_ms = failure_at;
        let admin_b =
            Admin::new(&self.flow.clients.target_admin, TIMEOUT).map_err(|e| e.to_string())?;
        let mut now;
        loop {
            self.check_running_after_failure()?;
            let detected = match &hb {
                Some(hb) => {
                    let newest = newest_heartbeat(hb, &self.flow.clients.target_consumer).await;
                    // The age as of the answer, not of the question.
                    now = now_ms();
                    match newest {
                        Some(ts) => now - ts > bound_ms,
                        None => now - failure_at > bound_ms,
                    }
                }
                None => {
                    let ends = end_offsets(&admin_b, &self.remote_topic, self.partitions).await;
                    now = now_ms();
                    if let Some(ends) = ends {
                        if last_ends.is_some_and(|l| ends > l) {
                            last_growth_ms = now;
                        }
                        last_ends = Some(ends);
                    }
                    now - last_growth_ms > bound_ms
                }
            };
            if detected {
                self.say(&format!(
                    "failure detected {:.1} s after it happened",
                    (now - failure_at) as f64 / 1000.0
                ));
                return Ok(Some(now));
            }
            if Instant::now() >= give_up {
                self.problems.push(format!(
                    "The failure of {a} was not detected within {} s; the drill failed over anyway.",
                    (bound + DETECT_SLACK).as_secs()
                ));
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// After the failure only an interrupt stops the drill (replication errors are expected).
    fn check_running_after_failure(&self) -> Result<(), String> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err("the drill was interrupted (Ctrl-C)".into());
        }
        Ok(())
    }

    /// The unplanned failover, timed.
    async fn fail_over(&mut self) -> Result<(), String> {
        let (a, b) = (self.opts.primary.clone(), self.opts.secondary.clone());
        let mut fo = failover::Options::new(&a, &b);
        fo.groups = Some(fancy_regex::Regex::new(&exact(&self.group)).map_err(|e| e.to_string())?);
        fo.probe_timeout = PROBE_TIMEOUT;
        fo.max_wait = Duration::from_secs(30);
        let progress = self.progress.clone();
        let sandbox = self.is_sandbox();
        self.say(&format!(
            "unplanned failover {a} -> {b}{}",
            if sandbox {
                " (strait failover)"
            } else {
                ": the drill group only, from its checkpoints; the active region is not switched"
            }
        ));
        self.times.failover_started_at_ms = Some(now_ms());
        let say = |l: &str| progress(&format!("failover: {l}"));
        let result: Result<FailoverReport, FailoverError> = if sandbox {
            failover::failover(&self.config, &fo, &say).await
        } else {
            let mut run = Run::new(failover::report::Procedure::Failover, &self.flow, &fo, &say);
            run.planned = false;
            match run.move_groups().await {
                Ok(()) => Ok(run.finish()),
                Err(e) => Err(e),
            }
        };
        let done = now_ms();
        let report = result.map_err(|e| format!("the failover failed: {e}"))?;
        self.times.failover_done_at_ms = Some(done);
        if let Some(s) = self.times.failover_started_at_ms {
            self.marks.push(Mark {
                t_ms: s - self.times.started_at_ms,
                kind: MarkKind::FailoverStarted,
                label: "failover started".into(),
            });
        }
        self.say(&format!(
            "failover done in {:.1} s ({}); moving the producer and the consumer to {b}",
            (done - self.times.failover_started_at_ms.unwrap_or(done)) as f64 / 1000.0,
            report.mode
        ));
        self.take_failover_report(&report).await;
        // Nothing is left to replicate from the failed primary: stop replication while the
        // drill goes on, so that waiting out its timeouts against the dead region overlaps the
        // run on the secondary.
        if let Mode::Sandbox { service, .. } = &mut self.mode {
            if let Some(s) = service.take() {
                self.stopping = Some(tokio::spawn(async move {
                    let _ = s.shutdown(STOP_GRACE).await;
                }));
            }
        }
        Ok(())
    }

    /// What the drill keeps of the failover's own report: its RPO estimate, the group move, its
    /// warnings.
    async fn take_failover_report(&mut self, report: &FailoverReport) {
        let b = self.opts.secondary.clone();
        if self.is_sandbox() {
            self.estimate = Some(RpoEstimate {
                records: report.rpo.records.map(|r| r.max(0) as u64),
                source: match (report.rpo.records_at_least, report.rpo.records) {
                    (Some(lo), Some(hi)) if lo < hi => format!(
                        "strait failover, an upper bound (at least {lo}): {}",
                        report.rpo.source
                    ),
                    _ => format!("strait failover: {}", report.rpo.source),
                },
            });
            self.notes.push(format!(
                "strait failover ran {} (steps: {}) and reported an RTO of {:.2} s (its own start to consumers ready).",
                report.mode,
                report
                    .steps
                    .iter()
                    .map(|s| format!("{} {} {:.1} s", s.name, s.outcome, s.duration_ms as f64 / 1000.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                report.rto_ms as f64 / 1000.0
            ));
        } else {
            // Both clusters answer in a simulation: read what the secondary lacks directly.
            let a = Admin::new(&self.flow.clients.source_admin, TIMEOUT).ok();
            let bb = Admin::new(&self.flow.clients.target_admin, TIMEOUT).ok();
            let records = match (a, bb) {
                (Some(a), Some(bb)) => {
                    match tokio::join!(
                        end_offsets(&a, &self.topic, self.partitions),
                        end_offsets(&bb, &self.remote_topic, self.partitions)
                    ) {
                        (Some(ea), Some(eb)) => Some((ea - eb).max(0) as u64),
                        _ => None,
                    }
                }
                _ => None,
            };
            self.estimate = Some(RpoEstimate {
                records,
                source: format!(
                    "the drill topic's end offsets on {} minus its copies' on {b}, read after the failover (a simulation \
                     leaves the primary readable; strait's lag snapshots are left to the production replicator)",
                    self.opts.primary
                ),
            });
        }
        match report.groups.iter().find(|g| g.group == self.group) {
            Some(g) if g.moved() => {}
            Some(g) => self.notes.push(format!(
                "The failover did not move group {}: {} ({}); it resumed on {b} from whatever it had there.",
                self.group,
                g.action,
                g.reason.as_deref().unwrap_or("no reason given")
            )),
            None => self.notes.push(format!(
                "The failover found no checkpoint of group {} on {b}; it resumed there from whatever it had (the earliest \
                 offset when nothing).",
                self.group
            )),
        }
        for w in &report.warnings {
            self.notes.push(format!("Failover warning: {w}"));
        }
    }

    // ---- 7-8: wind down and report ----

    /// Stop the producer, let the consumer read what is left, stop everything still running.
    async fn wind_down(&mut self) {
        let on_secondary = self.times.failover_done_at_ms.is_some();
        if let Some(p) = self.producer.take() {
            self.say("stopping the producer; the consumer reads what is left");
            if !p.join(Duration::from_secs(20)).await {
                warn!("the drill producer did not stop in time");
            }
        }
        if on_secondary && self.consumer.is_some() {
            self.drain().await;
        }
        if let Some(c) = self.consumer.take() {
            if !c.join(Duration::from_secs(15)).await {
                warn!("the drill consumer did not stop in time");
            }
        }
        if let Some((stop, task)) = self.sampler.take() {
            let _ = stop.send(true);
            self.samples = task.await.unwrap_or_default();
        }
        self.times.finished_at_ms = now_ms();
        if let Some(stopping) = self.stopping.take() {
            let _ = stopping.await;
        }
        match &mut self.mode {
            Mode::Sandbox { service, .. } => {
                if let Some(s) = service.take() {
                    let _ = s.shutdown(STOP_GRACE).await;
                }
            }
            Mode::Config { replication, .. } => {
                if let Some(r) = replication.take() {
                    r.shutdown(STOP_GRACE).await;
                }
            }
        }
    }

    /// Until the consumer has every record acknowledged on the secondary and a moment passed, or
    /// nothing new arrived for [`DRAIN_QUIET`].
    async fn drain(&self) {
        let mut last_count = self.log.consumed();
        let mut last_new = Instant::now();
        let hard_stop = Instant::now() + Duration::from_secs(60);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let count = self.log.consumed();
            if count != last_count {
                last_count = count;
                last_new = Instant::now();
            }
            let quiet = last_new.elapsed();
            if quiet >= DRAIN_QUIET || Instant::now() >= hard_stop {
                return;
            }
            if quiet >= DRAIN_SETTLE && self.has_everything_from_secondary() {
                return;
            }
            if self.interrupted.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn has_everything_from_secondary(&self) -> bool {
        let (acks, deliveries) = self.log.snapshot();
        let seen: BTreeSet<u64> = deliveries.iter().map(|d| d.seq).collect();
        acks.iter()
            .filter(|a| a.side == Side::Secondary)
            .all(|a| seen.contains(&a.seq))
    }

    fn report(&mut self) -> DrillReport {
        let (acks, deliveries) = self.log.snapshot();
        let failure = self
            .times
            .failure_at_ms
            .unwrap_or(self.times.finished_at_ms);
        let sequence = verify(&acks, &deliveries, failure);
        let settings = DrillSettings {
            primary: self.opts.primary.clone(),
            secondary: self.opts.secondary.clone(),
            topic: self.topic.clone(),
            rate: self.opts.rate,
            duration_ms: self.opts.duration.as_millis() as u64,
            fail_after_ms: self.opts.fail_after.as_millis() as u64,
            rpo_budget_records: self.opts.rpo_budget_records,
            rto_budget_ms: self.opts.rto_budget.map(|d| d.as_millis() as u64),
        };
        let mut report =
            DrillReport::new(settings, self.times.clone(), self.log.produced(), sequence);
        report.timeline = std::mem::take(&mut self.samples);
        report.strait_estimate = self.estimate.clone();
        report.marks.extend(self.marks.iter().cloned());
        report.marks.sort_by_key(|m| m.t_ms);
        report.notes = self.notes.clone();
        if !self.problems.is_empty() {
            report.failures.extend(self.problems.iter().cloned());
            report.passed = false;
        }
        report
    }

    // ---- 9: clean up ----

    async fn clean_up(&mut self) {
        // Anything still running (a drill that stopped before its end).
        for t in [self.producer.take(), self.consumer.take()]
            .into_iter()
            .flatten()
        {
            t.abandon();
        }
        if let Some((stop, task)) = self.sampler.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
        let (sandbox, service, replication, replication_group) = match &mut self.mode {
            Mode::Sandbox { sandbox, service } => (sandbox.take(), service.take(), None, None),
            Mode::Config {
                replication,
                replication_group,
            } => (
                None,
                None,
                replication.take(),
                Some(replication_group.clone()),
            ),
        };
        if let Some(stopping) = self.stopping.take() {
            let _ = stopping.await;
        }
        if let Some(s) = service {
            let _ = s.shutdown(STOP_GRACE).await;
        }
        if let Some(sb) = sandbox {
            self.say("stopping the sandbox (its data goes with it)");
            sb.shutdown().await;
        }
        if let Some(r) = replication {
            r.shutdown(Duration::from_secs(10)).await;
        }
        let Some(replication_group) = replication_group else {
            return;
        };
        self.say("deleting the drill's topics and groups");
        let (a, b) = (self.opts.primary.clone(), self.opts.secondary.clone());
        let a_topics: Vec<String> = if self.created_topic {
            vec![self.topic.clone()]
        } else {
            Vec::new()
        };
        let mut b_topics = Vec::new();
        // With an identity policy the copies are the topic itself, the drill's only if it
        // created the topic.
        if self.remote_topic != self.topic || self.created_topic {
            b_topics.push(self.remote_topic.clone());
        }
        if self.created_local_on_secondary {
            b_topics.push(self.topic.clone());
        }
        let mut left = delete(
            &self.flow.clients.source_admin,
            &a,
            &a_topics,
            &[self.group.clone(), replication_group],
        )
        .await;
        left.extend(
            delete(
                &self.flow.clients.target_admin,
                &b,
                &b_topics,
                std::slice::from_ref(&self.group),
            )
            .await,
        );
        if !left.is_empty() {
            let msg = format!("left behind (delete them by hand): {}", left.join("; "));
            self.say(&msg);
            self.notes.push(format!("Clean-up: {msg}."));
        }
    }
}

/// The newest heartbeat's timestamp, `None` when there is none or the cluster does not answer.
async fn newest_heartbeat(
    hb: &crate::monitor::collect::HeartbeatSource,
    ep: &Endpoint,
) -> Option<i64> {
    hb.newest(ep, TIMEOUT).await.ok().flatten()
}

/// The sum of the high watermarks of `partitions` partitions of `topic`; `None` when any fails.
async fn end_offsets(admin: &Admin, topic: &str, partitions: i32) -> Option<i64> {
    let calls = (0..partitions).map(|p| admin.watermarks(topic, p));
    let ends = futures::future::join_all(calls).await;
    ends.into_iter()
        .map(|r| r.ok().map(|(_, hi)| hi))
        .sum::<Option<i64>>()
}

/// Delete `topics` and `groups` on a cluster; returns what could not be deleted.
async fn delete(ep: &Endpoint, alias: &str, topics: &[String], groups: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let client: AdminClient<DefaultClientContext> = match ep.admin_config().create() {
        Ok(c) => c,
        Err(e) => {
            let all: Vec<&str> = topics.iter().chain(groups).map(String::as_str).collect();
            return vec![format!("{} on {alias} ({e})", all.join(", "))];
        }
    };
    let opts = AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT));
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        match tokio::time::timeout(TIMEOUT * 2, client.delete_topics(&names, &opts)).await {
            Ok(Ok(results)) => {
                for r in results {
                    match r {
                        Ok(_) => {}
                        // Never created (the drill stopped before replication started): fine.
                        Err((t, rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                            debug!(topic = %t, "no such topic to delete");
                        }
                        Err((t, e)) => left.push(format!("topic {t} on {alias} ({e})")),
                    }
                }
            }
            Ok(Err(e)) => left.push(format!("topics {} on {alias} ({e})", names.join(", "))),
            Err(_) => left.push(format!(
                "topics {} on {alias} (no answer)",
                names.join(", ")
            )),
        }
    }
    if !groups.is_empty() {
        let names: Vec<&str> = groups.iter().map(String::as_str).collect();
        match tokio::time::timeout(TIMEOUT * 2, client.delete_groups(&names, &opts)).await {
            Ok(Ok(results)) => {
                for r in results {
                    match r {
                        Ok(_) => {}
                        // A group that never committed anything there does not exist: fine.
                        Err((g, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound)) => {
                            debug!(group = %g, "no such group to delete");
                        }
                        Err((g, e)) => left.push(format!("group {g} on {alias} ({e})")),
                    }
                }
            }
            Ok(Err(e)) => left.push(format!("groups {} on {alias} ({e})", names.join(", "))),
            Err(_) => left.push(format!(
                "groups {} on {alias} (no answer)",
                names.join(", ")
            )),
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DrillOptions {
        DrillOptions {
            primary: "us-east".into(),
            secondary: "us-west".into(),
            duration: Duration::from_secs(60),
            rate: 200,
            fail_after: Duration::from_secs(20),
            rpo_budget_records: None,
            rto_budget: None,
            report_dir: PathBuf::from("x"),
            topic: None,
        }
    }

    #[test]
    fn the_sandbox_file_replicates_only_the_drill() {
        let clusters = vec![
            ("us-east".to_string(), "127.0.0.1:1".to_string()),
            ("us-west".to_string(), "127.0.0.1:2".to_string()),
        ];
        let text = sandbox_properties(
            &clusters,
            "us-east",
            "us-west",
            "drill.t-1",
            "strait-drill-abc",
        );
        let c = Config::parse(&text, "mm2.properties").unwrap();
        let f = c.flow("us-east", "us-west").unwrap();
        assert!(f.enabled);
        assert!(f.should_replicate_topic("drill.t-1"));
        assert!(!f.should_replicate_topic("drillxt-1"), "the dot is escaped");
        assert!(!f.should_replicate_topic("orders"));
        assert!(f.should_replicate_group("strait-drill-abc"));
        assert!(!f.should_replicate_group("billing"));
        assert_eq!(f.intervals.emit_checkpoints, Some(Duration::from_secs(1)));
        assert_eq!(f.intervals.sync_group_offsets, Some(Duration::from_secs(1)));
        assert!(!c.flow("us-west", "us-east").unwrap().enabled);
        // Detection looks at us-east.heartbeats on us-west, emitted every second.
        let hb = heartbeat_source(&c, f).unwrap();
        assert_eq!(hb.topic, "us-east.heartbeats");
        assert_eq!(hb.interval, Duration::from_secs(1));
        assert_eq!(hb.only_from, None);
    }

    #[test]
    fn the_drill_flow_keeps_settings_and_narrows_names() {
        let c = Config::parse(
            "clusters = a, b\na.bootstrap.servers = x:1\nb.bootstrap.servers = y:1\n\
             a->b.enabled = true\ntopics = .*\ngroups = .*\nemit.checkpoints.interval.seconds = 7\n\
             a->b.consumer.fetch.min.bytes = 10\n",
            "t.properties",
        )
        .unwrap();
        let base = c.flow("a", "b").unwrap();
        let f = drill_flow(base, "strait-drill-1", "strait-drill-1");
        assert!(f.should_replicate_topic("strait-drill-1"));
        assert!(!f.should_replicate_topic("orders"));
        assert!(
            !f.should_replicate_topic("heartbeats"),
            "heartbeats are production's"
        );
        assert!(!f.should_replicate_group("app"));
        assert!(f.should_replicate_group("strait-drill-1"));
        assert_eq!(f.intervals.emit_checkpoints, Some(Duration::from_secs(7)));
        assert_eq!(f.intervals.sync_topic_acls, None);
        assert_eq!(f.clients.source_consumer, base.clients.source_consumer);
        let mut spec = FlowSpec::from_config(&f);
        assert_eq!(spec.group_id(), "strait.a->b");
        spec.group = Some("strait.drill-1.a->b".into());
        assert_eq!(spec.group_id(), "strait.drill-1.a->b");
    }

    #[test]
    fn options_are_checked_before_anything_starts() {
        let env = Environment::Sandbox;
        assert!(check(&env, &opts()).is_ok());
        let mut o = opts();
        o.fail_after = o.duration;
        let e = check(&env, &o).unwrap_err().to_string();
        assert!(e.contains("shorter than --duration"), "{e}");
        let mut o = opts();
        o.secondary = o.primary.clone();
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("both us-east"));
        let mut o = opts();
        o.rate = 0;
        assert!(check(&env, &o).is_err());
        let mut o = opts();
        o.topic = Some("no spaces".into());
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("not a Kafka topic name"));
        let mut o = opts();
        o.primary = "us east".into();
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("sandbox region"));

        let c = Config::parse(
            "clusters = a, b\na.bootstrap.servers = x:1\nb.bootstrap.servers = y:1\na->b.enabled = true\n",
            "t.properties",
        )
        .unwrap();
        let env = Environment::Config(Box::new(c));
        let mut o = opts();
        (o.primary, o.secondary) = ("a".into(), "b".into());
        assert!(check(&env, &o).is_ok());
        (o.primary, o.secondary) = ("b".into(), "a".into());
        let e = check(&env, &o).unwrap_err().to_string();
        assert!(
            e.starts_with("t.properties: ") && e.contains("replicates nothing from b to a"),
            "{e}"
        );
        (o.primary, o.secondary) = ("a".into(), "c".into());
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("\"c\" is not a cluster"));
    }

    #[test]
    fn ids_are_short_and_differ() {
        let (a, b) = (short_id(), short_id());
        assert_eq!(a.len(), 6);
        assert_ne!(a, b);
    }
}
