//! `strait failover`: move consumers from one region to the other along a replication flow and
//! measure what it cost.
//!
//! Planned (the old region answers): wait for writes to stop and for replication to catch up,
//! translate each group's final offsets exactly, commit them on the new region, record the new
//! active region. Unplanned (the old region does not answer): let in-flight copies land, take
//! the loss from strait's last lag snapshot, translate from the last checkpoints, commit,
//! record. Nothing is changed before the last precondition holds, and a dry run changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::active::{self, ActiveRegion};
use super::report::*;
use crate::config::{Config, Flow};
use crate::heartbeat::now_ms;
use crate::kafka::groups::{Groups, TopicPartition};
use crate::kafka::{Admin, ClientError};
use crate::monitor::collect::{lag_in_records, SourceClients};
use crate::monitor::snapshot::{self, LagSnapshot};
use crate::monitor::PartitionLag;
use crate::translate::group::GroupTranslator;
use crate::translate::Translator;

/// How the failover is to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The region consumers leave (`--from`): the source of the flow.
    pub from: String,
    /// The region consumers move to (`--to`): the target of the flow.
    pub to: String,
    /// Only groups whose whole name matches.
    pub groups: Option<fancy_regex::Regex>,
    /// How long to wait for producers to stop and replication to catch up.
    pub max_wait: Duration,
    /// Change nothing: report what a failover now would do and cost (`--dry-run`).
    pub dry_run: bool,
    /// How long the old region may take to answer before the failover is unplanned.
    pub probe_timeout: Duration,
    /// How long the new region may take to answer each request.
    pub timeout: Duration,
    /// The old region is known not to answer (why, in one sentence): a caller that watched it
    /// (`strait run`'s probes) says so, and the failover is unplanned without probing it again.
    pub source_down: Option<String>,
}

impl Options {
    /// The defaults of `strait failover --from from --to to`: every group, 60 s to wait, 5 s for
    /// the old region to answer, 10 s per request, not a dry run.
    pub fn new(from: &str, to: &str) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            groups: None,
            max_wait: Duration::from_secs(60),
            dry_run: false,
            probe_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            source_down: None,
        }
    }
}

/// Why a failover or failback did not finish; the message says what was done and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// The command was asked for something the configuration cannot do.
    #[error("{0}")]
    Usage(String),
    /// The procedure stopped: a precondition did not hold (nothing changed yet), or a later
    /// step failed (the message says what was already done, e.g. offsets committed).
    #[error("{0}")]
    Aborted(String),
}

/// Where a procedure tells a person waiting what it is waiting for, one line at a time.
pub type Progress<'a> = dyn Fn(&str) + Sync + 'a;

/// Writes quiet for this long count as stopped.
const QUIET: Duration = Duration::from_secs(1);
/// How often the clusters are sampled while waiting (a sample is a metadata request, the
/// partitions' watermarks and the flow's commits: a few requests).
const SAMPLE: Duration = Duration::from_millis(100);
/// An unplanned failover's drain: the target's copies still for this long...
const DRAIN_QUIET: Duration = Duration::from_millis(300);
/// ... sampled this often.
const DRAIN_SAMPLE: Duration = Duration::from_millis(100);

/// Run a failover from `opts.from` to `opts.to` (see the module doc). `progress` receives one
/// line whenever there is something a person waiting should know (what is being waited for).
pub async fn failover(
    config: &Config,
    opts: &Options,
    progress: &Progress<'_>,
) -> Result<FailoverReport, FailoverError> {
    let flow = flow_for(config, &opts.from, &opts.to)?;
    let mut run = Run::new(Procedure::Failover, flow, opts, progress);
    run.heartbeats = crate::monitor::collect::heartbeat_source(config, flow);
    run.probe().await?;
    run.open_writer();
    if run.planned && opts.dry_run {
        run.preview_planned().await?;
        run.move_groups().await?;
    } else if run.planned {
        // The groups are read (and their clients find their coordinators) while writes stop.
        let prepare = prepare_groups(flow, opts, true);
        let (stopped, prepared) = tokio::join!(
            async {
                let quiet = run.quiesce().await?;
                run.catch_up(quiet).await
            },
            prepare
        );
        stopped?;
        let prepared = match prepared {
            Ok(p) => also_new_groups(p, flow, opts).await,
            Err(e) => Err(e),
        };
        run.move_prepared_groups(prepared).await?;
        run.final_rpo().await;
    } else {
        // The groups are read (and their clients find their coordinators) while the copies land.
        let prepare = prepare_groups(flow, opts, false);
        let prepared = if opts.dry_run {
            prepare.await
        } else {
            tokio::join!(run.drain(), prepare).1
        };
        run.rpo_from_snapshot().await?;
        run.move_prepared_groups(prepared).await?;
    }
    run.switch(format!("failover from {}", opts.from)).await?;
    Ok(run.finish())
}

/// Whether `group` is one the procedure moves: replicated by the flow, not strait's own, and
/// selected by `--groups`.
fn selected(flow: &Flow, opts: &Options, group: &str) -> bool {
    flow.should_replicate_group(group)
        && !crate::replicate::is_strait_group(group)
        && opts.groups.as_ref().is_none_or(|re| whole_match(re, group))
}

/// The groups to move, and the translator that reads them (one for every group: the index and
/// checkpoints are read once).
pub(crate) type PreparedGroups<'a> = (GroupTranslator<'a>, Vec<String>);

/// The groups to move: those with checkpoints on the target (read by the translator, which
/// keeps them) and, when planned, those with offsets on the source, that the filters select; each
/// group's client on the target is created at once, so that it has found the group's
/// coordinator when the group is committed. An unplanned failover does this while it drains.
pub(crate) async fn prepare_groups<'a>(
    flow: &'a Flow,
    opts: &'a Options,
    planned: bool,
) -> Result<PreparedGroups<'a>, ClientError> {
    let source_timeout = if planned {
        opts.timeout
    } else {
        Duration::from_millis(500)
    };
    let mut translator = GroupTranslator::new(flow, opts.timeout, source_timeout);
    if let Some(why) = opts.source_down.as_deref().filter(|_| !planned) {
        translator = translator.without_source(why);
    }
    let mut names: BTreeSet<String> = translator.checkpoint_groups().await?.into_iter().collect();
    if planned {
        // And every group on the source. A group whose last member just left can be missing
        // from one listing (seen on Apache Kafka), so the checkpoints' groups are kept too.
        names.extend(listed_on_source(flow, opts).await?);
    }
    let names: Vec<String> = names
        .into_iter()
        .filter(|g| selected(flow, opts, g))
        .collect();
    for g in &names {
        translator.prepare_target(g);
    }
    Ok((translator, names))
}

/// `prepared` with the source's groups that appeared since it was made (a planned failover
/// prepares while writes stop, and a group may commit for the first time meanwhile).
async fn also_new_groups<'a>(
    (translator, mut names): PreparedGroups<'a>,
    flow: &'a Flow,
    opts: &'a Options,
) -> Result<PreparedGroups<'a>, ClientError> {
    for g in listed_on_source(flow, opts).await? {
        if !names.contains(&g) && selected(flow, opts, &g) {
            translator.prepare_target(&g);
            names.push(g);
        }
    }
    Ok((translator, names))
}

/// The names of the groups on `flow`'s source.
async fn listed_on_source(flow: &Flow, opts: &Options) -> Result<Vec<String>, ClientError> {
    let listed = Groups::new(&flow.clients.source_consumer, opts.timeout)
        .list(None)
        .await?;
    Ok(listed.into_iter().map(|g| g.name).collect())
}

/// The active-region writer on `flow`'s target, or on its source (a planned procedure records
/// the switch on both): topic made sure of, producer created.
async fn open_writer(
    flow: &Flow,
    on_source: bool,
    timeout: Duration,
) -> Result<active::Writer, ClientError> {
    // The source's admin properties carry its connection and security settings.
    let (admin_ep, producer_ep) = if on_source {
        (&flow.clients.source_admin, &flow.clients.source_admin)
    } else {
        (&flow.clients.target_admin, &flow.clients.target_producer)
    };
    let admin = Admin::new(admin_ep, timeout)?;
    let rf = i32::from(flow.checkpoints_topic_replication_factor);
    active::Writer::open(&admin, producer_ep, rf, timeout).await
}

/// The writer a background task made ready, or its failure as the error of the cluster of `ep`.
async fn writer_of(
    task: tokio::task::JoinHandle<Result<active::Writer, ClientError>>,
    ep: &crate::kafka::Endpoint,
) -> Result<active::Writer, ClientError> {
    task.await.unwrap_or_else(|e| {
        Err(ClientError::Refused {
            alias: ep.alias.clone(),
            bootstrap: ep.bootstrap_servers().into(),
            op: "prepare the active-region record".into(),
            cause: e.to_string(),
        })
    })
}

/// Move the consumer groups `opts.groups` selects along `flow` from their checkpoints, as an
/// unplanned failover does, and nothing else: no probe, no drain, no RPO estimate, and the active
/// region is not switched. A drill that simulates the loss of a region which still answers needs
/// exactly this: its own group treated as if its region were gone, nothing production relies on
/// touched.
pub async fn move_groups_unplanned(
    flow: &Flow,
    opts: &Options,
    progress: &Progress<'_>,
) -> Result<FailoverReport, FailoverError> {
    let mut run = Run::new(Procedure::Failover, flow, opts, progress);
    run.move_groups().await?;
    Ok(run.finish())
}

/// The flow `from->to` of `config`, which must be enabled.
pub fn flow_for<'a>(config: &'a Config, from: &str, to: &str) -> Result<&'a Flow, FailoverError> {
    for alias in [from, to] {
        if config.cluster(alias).is_none() {
            let known: Vec<&str> = config.clusters.iter().map(|c| c.alias.as_str()).collect();
            return Err(FailoverError::Usage(format!(
                "{alias:?} is not a cluster in the configuration (clusters are {})",
                known.join(", ")
            )));
        }
    }
    if from == to {
        return Err(FailoverError::Usage(format!(
            "--from and --to are both {from}; name two different clusters"
        )));
    }
    match config.flow(from, to) {
        Some(f) if f.enabled => Ok(f),
        _ => Err(FailoverError::Usage(format!(
            "the configuration replicates nothing from {from} to {to} (no `{from}->{to}.enabled = true`); \
             consumers can only move along a replication flow"
        ))),
    }
}

/// The state of one procedure as it goes.
pub(crate) struct Run<'a> {
    pub(crate) flow: &'a Flow,
    pub(crate) opts: &'a Options,
    pub(crate) progress: &'a Progress<'a>,
    pub(crate) kind: Procedure,
    pub(crate) planned: bool,
    pub(crate) started_at_ms: i64,
    pub(crate) started: Instant,
    pub(crate) steps: Vec<Step>,
    pub(crate) rpo: Option<Rpo>,
    pub(crate) groups: Vec<GroupMove>,
    pub(crate) warnings: Vec<String>,
    /// Upstream names of the replicated topics (heartbeats left out).
    pub(crate) topics: BTreeSet<String>,
    pub(crate) active_region: Option<ActiveRegion>,
    pub(crate) switched_at: Option<Instant>,
    pub(crate) source_error: Option<String>,
    /// Where heartbeats that crossed the flow are on the target, and whose (see
    /// `monitor::collect::heartbeat_source`): the last sign of life of a lost source.
    pub(crate) heartbeats: Option<crate::monitor::collect::HeartbeatSource>,
    /// The target's active-region writer being made ready (see [`Run::open_writer`]).
    pub(crate) writer: Option<tokio::task::JoinHandle<Result<active::Writer, ClientError>>>,
    /// The same on the source, for a planned procedure.
    pub(crate) source_writer: Option<tokio::task::JoinHandle<Result<active::Writer, ClientError>>>,
    /// The source's clients, kept for every sample of it.
    pub(crate) source: std::sync::OnceLock<Result<SourceClients, ClientError>>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        kind: Procedure,
        flow: &'a Flow,
        opts: &'a Options,
        progress: &'a Progress<'a>,
    ) -> Self {
        Self {
            flow,
            opts,
            progress,
            kind,
            planned: false,
            started_at_ms: now_ms(),
            started: Instant::now(),
            steps: Vec::new(),
            rpo: None,
            groups: Vec::new(),
            warnings: Vec::new(),
            topics: BTreeSet::new(),
            active_region: None,
            switched_at: None,
            source_error: None,
            heartbeats: None,
            source: std::sync::OnceLock::new(),
            writer: None,
            source_writer: None,
        }
    }

    fn step(&mut self, name: &str, since: Instant, outcome: Outcome, detail: String) {
        let duration = since.elapsed();
        self.steps.push(Step {
            name: name.into(),
            started_at_ms: now_ms() - duration.as_millis() as i64,
            duration_ms: duration.as_millis() as i64,
            outcome,
            detail,
        });
    }

    fn deadline(&self) -> Instant {
        self.started + self.opts.max_wait
    }

    /// Start making the target's active-region writer ready (topic, producer) in the
    /// background, unless a dry run: [`Run::switch`] takes it.
    pub(crate) fn open_writer(&mut self) {
        let spawn = |on_source: bool| {
            let (flow, timeout) = (self.flow.clone(), self.opts.timeout);
            tokio::spawn(async move { open_writer(&flow, on_source, timeout).await })
        };
        if !self.opts.dry_run {
            self.writer = Some(spawn(false));
            self.source_writer = self.planned.then(|| spawn(true));
        }
    }

    /// The new region must answer; the old one decides planned or unplanned.
    pub(crate) async fn probe(&mut self) -> Result<(), FailoverError> {
        let t = Instant::now();
        let (from, to) = (&self.opts.from, &self.opts.to);
        // Both at once: the old region's answer (or its timeout) need not wait for the new one's.
        let target = async {
            Admin::new(&self.flow.clients.target_admin, self.opts.timeout)?
                .topics(None)
                .await
        };
        let source = async {
            match &self.opts.source_down {
                Some(why) => Err(why.clone()),
                None => async {
                    Admin::new(&self.flow.clients.source_admin, self.opts.probe_timeout)?
                        .topics(None)
                        .await
                }
                .await
                .map_err(|e| e.to_string()),
            }
        };
        let (target, source) = tokio::join!(target, source);
        if let Err(e) = target {
            return Err(FailoverError::Aborted(format!(
                "{to} does not answer, so there is nowhere to move consumers to ({e}); nothing was changed"
            )));
        }
        self.planned = source.is_ok();
        let detail = match &source {
            Ok(_) => format!("{from} and {to} answer: planned {}", self.kind),
            Err(e) if self.opts.source_down.is_some() => {
                self.source_error = Some(e.clone());
                format!(
                    "{from} found down before the {}: unplanned ({e})",
                    self.kind
                )
            }
            Err(e) => {
                self.source_error = Some(e.to_string());
                format!(
                    "{from} does not answer within {} s: unplanned {} ({e})",
                    self.opts.probe_timeout.as_secs(),
                    self.kind
                )
            }
        };
        (self.progress)(&detail);
        self.step("probe", t, Outcome::Ok, detail);
        Ok(())
    }

    /// The source's replicated partitions without heartbeats, read once.
    async fn sample(&self) -> Result<Vec<PartitionLag>, ClientError> {
        // Commits, not what the target acknowledged: translation needs the offset index, which
        // holds a record before its offset is committed.
        let clients = self
            .source
            .get_or_init(|| SourceClients::new(self.flow, self.opts.timeout))
            .as_ref()
            .map_err(Clone::clone)?;
        let (lag, _) = lag_in_records(clients, self.flow, &Default::default).await?;
        Ok(lag
            .partitions
            .into_iter()
            .filter(|p| !self.flow.policy.is_heartbeats_topic(&p.topic))
            .collect())
    }

    fn note_topics(&mut self, parts: &[PartitionLag]) {
        self.topics.extend(parts.iter().map(|p| p.topic.clone()));
    }

    /// Wait until no partition of a replicated topic has grown for [`QUIET`], and for the
    /// selected groups to stop or catch up (the latter with a warning at the deadline). Returns
    /// the last sample, taken once writes had stopped: [`Run::catch_up`]'s first.
    pub(crate) async fn quiesce(&mut self) -> Result<Vec<PartitionLag>, FailoverError> {
        let t = Instant::now();
        let from = self.opts.from.clone();
        let mut last: Option<BTreeMap<TopicPartition, i64>> = None;
        let mut quiet_since = Instant::now();
        let mut said = String::new();
        let mut growing: Vec<String>;
        let quiet: Vec<PartitionLag>;
        loop {
            let sample_started = Instant::now();
            let parts = self.sample().await.map_err(|e| self.lost_source(e))?;
            self.note_topics(&parts);
            // Quiet from the end of the sample that saw the last growth (its read may have
            // been at any time in it), until the start of the one that finds none since.
            let sampled_at = Instant::now();
            let ends: BTreeMap<TopicPartition, i64> = parts
                .iter()
                .map(|p| ((p.topic.clone(), p.partition), p.source_end))
                .collect();
            growing = match &last {
                Some(prev) => grown_topics(prev, &ends),
                None => Vec::new(),
            };
            if !growing.is_empty() || last.is_none() {
                quiet_since = sampled_at;
            }
            if !growing.is_empty() {
                // Said again only when the set of partitions changes, not their counts.
                let names: String = growing
                    .iter()
                    .map(|g| g.split(' ').next().unwrap_or(g))
                    .collect::<Vec<_>>()
                    .join(",");
                if names != said {
                    (self.progress)(&format!(
                        "writes still arriving on {from}: {}; stop the producers (strait does not stop them)",
                        growing.join(", ")
                    ));
                    said = names;
                }
            }
            last = Some(ends);
            if sample_started.saturating_duration_since(quiet_since) >= QUIET {
                quiet = parts;
                break;
            }
            if Instant::now() >= self.deadline() {
                return Err(FailoverError::Aborted(format!(
                    "writes were still arriving on {from} after {} s ({}): stop the producers and run the {} again; no group offsets or active region were changed",
                    self.opts.max_wait.as_secs(),
                    growing.join(", "),
                    self.kind
                )));
            }
            tokio::time::sleep(SAMPLE).await;
        }
        // Consumers: stopped, or caught up so their offsets no longer move.
        let mut busy = self.busy_groups(last.as_ref().expect("sampled")).await;
        let mut said = String::new();
        while !busy.is_empty() && Instant::now() < self.deadline() {
            let msg = format!(
                "consumer groups still reading on {from}: {}; stop them (or let them finish) for an exact hand-over",
                busy.join(", ")
            );
            if msg != said {
                (self.progress)(&msg);
                said = msg;
            }
            tokio::time::sleep(SAMPLE).await;
            busy = self.busy_groups(last.as_ref().expect("sampled")).await;
        }
        let mut detail = format!(
            "no writes on {from} for {} s ({} topics)",
            QUIET.as_secs(),
            self.topics.len()
        );
        let outcome = if busy.is_empty() {
            Outcome::Ok
        } else {
            for g in &busy {
                self.warnings.push(format!(
                    "group {g} was still consuming on {from} at the deadline; offsets it commits there from now on are not carried over"
                ));
            }
            detail += &format!("; still consuming: {}", busy.join(", "));
            Outcome::Warning
        };
        self.step("quiesce", t, outcome, detail);
        Ok(quiet)
    }

    /// Selected groups with members on the source that have not read up to `ends`.
    async fn busy_groups(&self, ends: &BTreeMap<TopicPartition, i64>) -> Vec<String> {
        let groups = Groups::new(&self.flow.clients.source_consumer, self.opts.timeout);
        let Ok(listed) = groups.list(None).await else {
            return Vec::new();
        };
        let parts: Vec<TopicPartition> = ends.keys().cloned().collect();
        let mut busy = Vec::new();
        for g in listed {
            if !(g.is_active() && self.selected(&g.name)) {
                continue;
            }
            let behind = match groups.committed(&g.name, &parts).await {
                Ok(c) => c.iter().any(|(tp, o)| o.offset < ends[tp]),
                Err(_) => true,
            };
            if behind {
                busy.push(g.name);
            }
        }
        busy
    }

    fn selected(&self, group: &str) -> bool {
        selected(self.flow, self.opts, group)
    }

    /// Wait until replication has every record of the source (lag 0 on every partition),
    /// starting from `quiet`, the quiesce's last sample.
    pub(crate) async fn catch_up(&mut self, quiet: Vec<PartitionLag>) -> Result<(), FailoverError> {
        let mut first = Some(quiet);
        let t = Instant::now();
        let (from, to) = (self.opts.from.clone(), self.opts.to.clone());
        let mut said = String::new();
        loop {
            let parts = match first.take() {
                Some(parts) => parts,
                None => self.sample().await.map_err(|e| self.lost_source(e))?,
            };
            self.note_topics(&parts);
            let behind: i64 = parts.iter().map(|p| p.lag_records).sum();
            if behind == 0 {
                break;
            }
            let msg = format!("waiting for replication {from}->{to}: {behind} records behind");
            if msg != said {
                (self.progress)(&msg);
                said = msg;
            }
            if Instant::now() >= self.deadline() {
                let worst: Vec<String> = parts
                    .iter()
                    .filter(|p| p.lag_records > 0)
                    .take(5)
                    .map(|p| format!("{}[{}] {} behind", p.topic, p.partition, p.lag_records))
                    .collect();
                return Err(FailoverError::Aborted(format!(
                    "replication {from}->{to} did not catch up within {} s ({behind} records behind: {}); \
                     is `strait run` replicating {from}->{to}? no group offsets or active region were changed",
                    self.opts.max_wait.as_secs(),
                    worst.join(", ")
                )));
            }
            tokio::time::sleep(SAMPLE).await;
        }
        self.step(
            "catch-up",
            t,
            Outcome::Ok,
            format!("every record on {from} is on {to} (replication lag 0)"),
        );
        Ok(())
    }

    /// Dry run of a planned failover: what is being written now and what a switch now would
    /// lose (the current lag), without waiting.
    pub(crate) async fn preview_planned(&mut self) -> Result<(), FailoverError> {
        let t = Instant::now();
        let from = self.opts.from.clone();
        let first = self.sample().await.map_err(|e| self.lost_source(e))?;
        tokio::time::sleep(QUIET).await;
        let second = self.sample().await.map_err(|e| self.lost_source(e))?;
        self.note_topics(&second);
        let ends = |v: &[PartitionLag]| -> BTreeMap<TopicPartition, i64> {
            v.iter()
                .map(|p| ((p.topic.clone(), p.partition), p.source_end))
                .collect()
        };
        let growing = grown_topics(&ends(&first), &ends(&second));
        let detail = if growing.is_empty() {
            format!("no writes on {from} in the last {} s", QUIET.as_secs())
        } else {
            format!(
                "writes arriving on {from}: {} (a failover waits for them to stop)",
                growing.join(", ")
            )
        };
        self.step("quiesce", t, Outcome::Ok, detail);
        self.rpo = Some(Rpo::from_losses(
            self.losses_now(&second).await,
            true,
            format!(
                "{}'s current replication lag: what a switch this moment would leave behind",
                self.flow.name()
            ),
        ));
        Ok(())
    }

    /// The flow's offset index, read from the target alone (MM2's offset syncs may live on a
    /// source that is gone).
    async fn index(&self) -> Result<Translator, ClientError> {
        target_index(self.flow, self.opts.timeout).await
    }

    /// What the target holds of each source partition: the end of the index's runs (ahead of
    /// the flow's committed position by up to a commit interval), at least the committed one.
    async fn losses_now(&self, parts: &[PartitionLag]) -> Vec<PartitionLoss> {
        let index = self.index().await.ok();
        losses(parts, |p| match &index {
            Some(t) => held_on_target(t.index(), p),
            None => p.replicated,
        })
    }

    /// After the switch, what is on the source and not (yet) on the target.
    pub(crate) async fn final_rpo(&mut self) {
        let (from, to) = (&self.opts.from, &self.opts.to);
        match self.sample().await {
            Ok(parts) => {
                self.rpo = Some(Rpo::from_losses(
                    self.losses_now(&parts).await,
                    true,
                    format!("both clusters read at the switch: records on {from} not yet replicated to {to}"),
                ))
            }
            Err(e) => {
                self.rpo = Some(Rpo::from_losses(
                    Vec::new(),
                    true,
                    format!("replication had caught up; {from} stopped answering after that ({e})"),
                ))
            }
        }
    }

    /// Unplanned: wait (briefly) until the target's copies stop growing, so records strait had
    /// already fetched from the source land before the loss is counted.
    pub(crate) async fn drain(&mut self) {
        let t = Instant::now();
        let limit = Instant::now() + self.opts.max_wait.min(Duration::from_secs(30));
        let admin = Admin::new(&self.flow.clients.target_admin, self.opts.timeout).ok();
        let mut last = self.target_ends(admin.as_ref()).await;
        let mut quiet_since = Instant::now();
        // What replication had fetched lands within a produce round trip (a few ms, or
        // `linger.ms`): copies still for DRAIN_QUIET mean nothing is in flight.
        while quiet_since.elapsed() < DRAIN_QUIET && Instant::now() < limit {
            tokio::time::sleep(DRAIN_SAMPLE).await;
            let now = self.target_ends(admin.as_ref()).await;
            if now != last {
                quiet_since = Instant::now();
                last = now;
            }
        }
        let records: i64 = last.values().sum();
        self.step(
            "drain",
            t,
            Outcome::Ok,
            format!(
                "copies already fetched from {} landed on {} ({} partitions, {records} records in all)",
                self.opts.from,
                self.opts.to,
                last.len()
            ),
        );
    }

    /// End offsets on the target of the topics replicated from the source, read all at once.
    async fn target_ends(&self, admin: Option<&Admin>) -> BTreeMap<TopicPartition, i64> {
        let Some(admin) = admin else {
            return BTreeMap::new();
        };
        let Ok(topics) = admin.topics(None).await else {
            return BTreeMap::new();
        };
        let parts: Vec<(String, i32)> = topics
            .into_iter()
            .filter(|t| {
                self.flow.policy.topic_source(&t.name) == Some(self.opts.from.as_str())
                    && !self.flow.policy.is_heartbeats_topic(&t.name)
            })
            .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
            .collect();
        match crate::kafka::watermarks_of(admin, &parts).await {
            Ok(marks) => parts
                .into_iter()
                .zip(marks)
                .map(|(tp, (_, hi))| (tp, hi))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Unplanned: the loss from strait's last lag snapshot of the source and what the target
    /// holds now (the offset index).
    pub(crate) async fn rpo_from_snapshot(&mut self) -> Result<(), FailoverError> {
        let t = Instant::now();
        let (from, to) = (self.opts.from.clone(), self.opts.to.clone());
        // Both at once; the index is needed unless there is no snapshot.
        let (snap, index) = tokio::join!(
            snapshot::read_latest(self.flow, self.opts.timeout),
            self.index()
        );
        let snap = snap.map_err(|e| self.lost_target(e))?;
        let Some(snap) = snap else {
            self.rpo = Some(Rpo::unknown(format!(
                "no lag snapshot of {} on {to}: `strait run` records one every {} s while {from} answers, and none was found",
                self.flow.name(),
                snapshot::INTERVAL.as_secs()
            )));
            self.step(
                "rpo",
                t,
                Outcome::Warning,
                "no lag snapshot: RPO unknown".into(),
            );
            return Ok(());
        };
        let translator = index.map_err(|e| self.lost_target(e))?;
        let parts: Vec<PartitionLag> = snap
            .partitions
            .iter()
            .filter(|p| !self.flow.policy.is_heartbeats_topic(&p.topic))
            .cloned()
            .collect();
        self.note_topics(&parts);
        let index = translator.index();
        let age = (now_ms() - snap.at_ms) as f64 / 1000.0;
        // Writes after the snapshot, at the rate it measured: until strait found the source
        // gone (an upper bound: it failed before that), else until its newest heartbeat here.
        let (until, why) = match snap.unreachable_from_ms {
            Some(t) => (Some(t), format!("until strait found {from} not answering")),
            None => (
                self.last_heartbeat_ms().await,
                format!("until {from}'s last heartbeat seen on {to}"),
            ),
        };
        let extra = until.map_or(0.0, |t| ((t - snap.at_ms) as f64 / 1000.0).max(0.0));
        let held = |p: &PartitionLag| held_on_target(index, p);
        let estimated = extrapolated_losses(&parts, &snap, extra, held);
        let after = match (until, snap.unreachable_from_ms) {
            (Some(_), Some(_)) => format!(
                "plus writes after it at the rate it measured, for the {extra:.1} s {why} (an upper bound)"
            ),
            (Some(_), None) if extra > 0.0 => format!(
                "plus writes after it at the rate it measured, for the {extra:.1} s {why}; later writes are not counted"
            ),
            _ => format!("writes to {from} after it are not counted"),
        };
        let certain: i64 = losses(&parts, held).iter().map(|l| l.records).sum();
        let mut rpo = Rpo::from_losses(
            estimated,
            false,
            format!(
                "strait's last view of {from} (lag snapshot on {to}, taken {age:.1} s before this step): \
                 records {from} had then that {to} does not have now, {after}"
            ),
        );
        // The lower bound is exact whether or not writes after the snapshot were extrapolated.
        rpo.records_at_least = Some(certain);
        let detail = match rpo.records_at_least.filter(|lo| Some(*lo) < rpo.records) {
            Some(lo) => format!(
                "{lo} to {} records on {from} never reached {to} (from {from}'s last lag snapshot, {age:.1} s old)",
                rpo.records.unwrap_or(0)
            ),
            None => format!(
                "{} records on {from} never reached {to} (from {from}'s last lag snapshot, {age:.1} s old)",
                rpo.records.unwrap_or(0)
            ),
        };
        self.rpo = Some(rpo);
        self.step("rpo", t, Outcome::Ok, detail);
        Ok(())
    }

    /// Timestamp of the newest heartbeat from the source on the target.
    async fn last_heartbeat_ms(&self) -> Option<i64> {
        let hb = self.heartbeats.as_ref()?;
        hb.newest(&self.flow.clients.target_consumer, self.opts.timeout)
            .await
            .ok()
            .flatten()
    }

    /// Translate every selected group and commit it on the target (not in a dry run), group by
    /// group; a group with consumers on the target is refused.
    pub(crate) async fn move_groups(&mut self) -> Result<(), FailoverError> {
        let prepared = prepare_groups(self.flow, self.opts, self.planned).await;
        self.move_prepared_groups(prepared).await
    }

    /// [`Run::move_groups`] with the groups and translator [`prepare_groups`] made ready.
    pub(crate) async fn move_prepared_groups(
        &mut self,
        prepared: Result<PreparedGroups<'a>, ClientError>,
    ) -> Result<(), FailoverError> {
        let t = Instant::now();
        let to = self.opts.to.clone();
        let (mut translator, names) = prepared.map_err(|e| {
            if self.planned {
                self.lost_source(e)
            } else {
                self.lost_target(e)
            }
        })?;
        for g in names {
            let tr = match translator.translate(&g).await {
                Ok(tr) => tr,
                Err(e) => {
                    self.groups.push(GroupMove {
                        group: g,
                        action: GroupAction::Failed,
                        reason: Some(e.to_string()),
                        reread: None,
                        partitions: Vec::new(),
                    });
                    continue;
                }
            };
            if tr.partitions.is_empty() {
                continue;
            }
            let partitions: Vec<GroupPartitionMove> = tr
                .partitions
                .iter()
                .map(|p| GroupPartitionMove {
                    remote_topic: p.remote_topic.clone(),
                    partition: p.partition,
                    upstream_offset: p.upstream_offset,
                    offset: p.downstream_offset,
                    method: p.method.clone(),
                    reread: p.reread,
                })
                .collect();
            let reread = partitions.iter().map(|p| p.reread).sum::<Option<i64>>();
            let untranslatable: Vec<String> = tr
                .partitions
                .iter()
                .filter(|p| p.downstream_offset.is_none())
                .map(|p| format!("{}[{}]", p.topic, p.partition))
                .collect();
            let (action, reason) = if tr.active_on_target() {
                (
                    GroupAction::Refused,
                    Some(format!(
                        "{} consumers are in the group on {to}; stop them so its offsets can be set",
                        tr.target_members
                    )),
                )
            } else if self.opts.dry_run {
                (GroupAction::WouldCommit, None)
            } else {
                // With the client that read the group: it knows the group's coordinator.
                match translator.apply(&tr).await {
                    Ok(()) => (GroupAction::Committed, None),
                    Err(e) => (GroupAction::Failed, Some(e.to_string())),
                }
            };
            let reason = match (reason, untranslatable.is_empty()) {
                (r, true) => r,
                (None, false) => Some(format!(
                    "no translation for {} (left as it is on {to})",
                    untranslatable.join(", ")
                )),
                (Some(r), false) => Some(r),
            };
            self.groups.push(GroupMove {
                group: g,
                action,
                reason,
                reread,
                partitions,
            });
        }
        let moved = self.groups.iter().filter(|g| g.moved()).count();
        let not = self.groups.len() - moved;
        let verb = if self.opts.dry_run {
            "would be committed"
        } else {
            "committed"
        };
        let how = if self.planned {
            "translated exactly from their final offsets"
        } else {
            "from the last checkpoints"
        };
        self.step(
            "translate",
            t,
            if not == 0 {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
            format!("{moved} groups {verb} on {to} ({how}), {not} not"),
        );
        Ok(())
    }

    /// Record the new active region on the target (required) and the source (when it answers).
    pub(crate) async fn switch(&mut self, reason: String) -> Result<(), FailoverError> {
        let t = Instant::now();
        let (from, to) = (self.opts.from.clone(), self.opts.to.clone());
        let mut records = Vec::new();
        // The writer on the target was made ready while the procedure ran (see `open_writer`).
        let opening = self.writer.take();
        // Both clusters' records (the source's when it answers) read at once.
        let (read, on_source, writer) = tokio::join!(
            active::read(&self.flow.clients.target_consumer, self.opts.timeout),
            async {
                if self.planned {
                    active::read(&self.flow.clients.source_consumer, self.opts.timeout)
                        .await
                        .unwrap_or_default()
                } else {
                    Vec::new()
                }
            },
            async {
                match opening {
                    Some(task) => Some(writer_of(task, &self.flow.clients.target_admin).await),
                    None if self.opts.dry_run => None,
                    None => Some(open_writer(self.flow, false, self.opts.timeout).await),
                }
            }
        );
        match read {
            Ok(r) => records.extend(r),
            Err(e) => return Err(self.lost_target(e)),
        }
        records.extend(on_source);
        let previous = active::for_pair(&records, &from, &to).cloned();
        let record = ActiveRegion::switch(previous.as_ref(), &from, &to, &to, now_ms(), reason);
        if self.opts.dry_run {
            self.step(
                "switch",
                t,
                Outcome::Skipped,
                format!(
                    "dry run: {to} would become the active region (version {})",
                    record.version
                ),
            );
            self.active_region = Some(record);
            return Ok(());
        }
        let on_target = match writer {
            Some(Ok(w)) => w.send(&record).await,
            Some(Err(e)) => Err(e),
            None => unreachable!("a dry run returned above"),
        };
        if let Err(e) = on_target {
            return Err(FailoverError::Aborted(format!(
                "the group offsets are committed on {to}, but recording {to} as the active region failed ({e}); run the {} again",
                self.kind
            )));
        }
        self.switched_at = Some(Instant::now());
        let on_source = if self.planned {
            let opening = self.source_writer.take();
            let write = async {
                let writer = match opening {
                    Some(task) => writer_of(task, &self.flow.clients.source_admin).await?,
                    None => open_writer(self.flow, true, self.opts.timeout).await?,
                };
                writer.send(&record).await
            };
            write.await.map_err(|e| e.to_string())
        } else {
            Err(format!("{from} does not answer"))
        };
        let detail = match &on_source {
            Ok(()) => format!(
                "{to} is the active region (version {}), recorded on both clusters",
                record.version
            ),
            Err(e) => {
                self.warnings.push(format!(
                    "the switch is recorded on {to} only ({e}); strait reads both and the newest wins, and failback records it on {from}"
                ));
                format!(
                    "{to} is the active region (version {}), recorded on {to}",
                    record.version
                )
            }
        };
        self.step("switch", t, Outcome::Ok, detail);
        self.active_region = Some(record);
        Ok(())
    }

    fn lost_source(&self, e: ClientError) -> FailoverError {
        FailoverError::Aborted(format!(
            "{} stopped answering during the {} ({e}); nothing was changed: run it again (it will be unplanned if {} stays down)",
            self.opts.from, self.kind, self.opts.from
        ))
    }

    fn lost_target(&self, e: ClientError) -> FailoverError {
        FailoverError::Aborted(format!(
            "{} stopped answering during the {} ({e}); run it again when it answers",
            self.opts.to, self.kind
        ))
    }

    /// The report.
    pub(crate) fn finish(self) -> FailoverReport {
        let finished_at_ms = now_ms();
        let rto_ms = self
            .switched_at
            .map_or(finished_at_ms - self.started_at_ms, |s| {
                (s - self.started).as_millis() as i64
            });
        let mut topics_to_consume: Vec<String> = self
            .topics
            .iter()
            .map(|t| self.flow.policy.remote_topic(t))
            .collect();
        for t in &self.topics {
            if !topics_to_consume.contains(t) {
                topics_to_consume.push(t.clone());
            }
        }
        FailoverReport {
            kind: self.kind,
            from: self.opts.from.clone(),
            to: self.opts.to.clone(),
            mode: if self.planned {
                Mode::Planned
            } else {
                Mode::Unplanned
            },
            dry_run: self.opts.dry_run,
            started_at_ms: self.started_at_ms,
            finished_at_ms,
            rto_ms,
            steps: self.steps,
            rpo: self
                .rpo
                .unwrap_or_else(|| Rpo::unknown("not measured".into())),
            groups: self.groups,
            topics_to_consume,
            active_region: self.active_region,
            warnings: self.warnings,
            salvage: None,
        }
    }
}

/// A flow's offset index read from its target alone (MM2's offset syncs may live on a source
/// that is gone, and failover needs only strait's own index).
pub(crate) async fn target_index(
    flow: &Flow,
    timeout: Duration,
) -> Result<Translator, ClientError> {
    let mut translator = Translator::new(
        &flow.clients.target_consumer,
        &crate::translate::index_topic(&flow.source),
        None,
    );
    translator.refresh(timeout).await?;
    Ok(translator)
}

/// One past the last source offset of `p` with a copy on the target: the index's runs (ahead of
/// the flow's committed position by up to a commit interval), at least the committed one.
pub(crate) fn held_on_target(
    index: &crate::translate::index::OffsetIndex,
    p: &PartitionLag,
) -> i64 {
    index
        .replicated_end(&p.topic, p.partition)
        .unwrap_or(p.replicated)
        .max(p.replicated)
}

/// `topic[partition] +n` for every partition that grew from `before` to `after`.
fn grown_topics(
    before: &BTreeMap<TopicPartition, i64>,
    after: &BTreeMap<TopicPartition, i64>,
) -> Vec<String> {
    after
        .iter()
        .filter_map(|(tp, end)| {
            let was = before.get(tp).copied().unwrap_or(0);
            (*end > was).then(|| format!("{}[{}] +{}", tp.0, tp.1, end - was))
        })
        .collect()
}

/// What each partition lacks on the target, given how far the target got.
fn losses(
    parts: &[PartitionLag],
    replicated_end: impl Fn(&PartitionLag) -> i64,
) -> Vec<PartitionLoss> {
    parts
        .iter()
        .map(|p| {
            let r = replicated_end(p);
            let records = (p.source_end - r).max(0);
            PartitionLoss {
                topic: p.topic.clone(),
                partition: p.partition,
                source_end: p.source_end,
                replicated_end: r,
                records,
                seconds: if records > 0 { p.lag_seconds } else { 0.0 },
            }
        })
        .collect()
}

/// What each partition lacks on the target when its source was last seen in `snap` and went
/// on being written at the snapshot's rate for `extra_secs` more. The age of the loss: for
/// records the snapshot already saw unreplicated, their age then plus `extra_secs`; for
/// extrapolated ones, how long the rate takes to write them.
fn extrapolated_losses(
    parts: &[PartitionLag],
    snap: &LagSnapshot,
    extra_secs: f64,
    replicated_end: impl Fn(&PartitionLag) -> i64,
) -> Vec<PartitionLoss> {
    parts
        .iter()
        .map(|p| {
            let rate = snap.write_rate(&p.topic, p.partition);
            let end = p.source_end + (rate * extra_secs).round() as i64;
            let r = replicated_end(p);
            let records = (end - r).max(0);
            let seconds = if records == 0 {
                0.0
            } else if p.source_end > r {
                p.lag_seconds + extra_secs
            } else if rate > 0.0 {
                records as f64 / rate
            } else {
                0.0
            };
            PartitionLoss {
                topic: p.topic.clone(),
                partition: p.partition,
                source_end: end,
                replicated_end: r,
                records,
                seconds,
            }
        })
        .collect()
}

/// `--groups` matches whole names, as MM2's group filters do.
pub(crate) fn whole_match(re: &fancy_regex::Regex, s: &str) -> bool {
    re.find(s)
        .ok()
        .flatten()
        .is_some_and(|m| m.start() == 0 && m.end() == s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(topic: &str, p: i32, end: i64, replicated: i64, secs: f64) -> PartitionLag {
        PartitionLag {
            topic: topic.into(),
            partition: p,
            remote_topic: format!("a.{topic}"),
            source_end: end,
            replicated,
            committed: replicated,
            lag_records: end - replicated,
            lag_seconds: secs,
        }
    }

    #[test]
    fn losses_use_what_the_target_holds() {
        let parts = [lag("o", 0, 100, 80, 4.0), lag("o", 1, 50, 50, 0.0)];
        // The target got further than the snapshot's committed position.
        let l = losses(&parts, |p| if p.partition == 0 { 90 } else { p.replicated });
        assert_eq!(l[0].records, 10);
        assert_eq!(l[0].seconds, 4.0);
        assert_eq!(l[1].records, 0);
        assert_eq!(l[1].seconds, 0.0);
    }

    #[test]
    fn losses_after_the_snapshot_are_extrapolated_at_its_rate() {
        let parts = [lag("o", 0, 1000, 1000, 0.0), lag("late", 0, 250, 0, 59.0)];
        let mut snap = LagSnapshot {
            source: "a".into(),
            target: "b".into(),
            at_ms: 0,
            partitions: parts.to_vec(),
            write_rates: BTreeMap::new(),
            unreachable_from_ms: None,
        };
        snap.write_rates
            .insert(LagSnapshot::rate_key("o", 0), 200.0);
        snap.write_rates
            .insert(LagSnapshot::rate_key("late", 0), 0.0);
        // 2.8 s of writes at 200/s after the snapshot; the target got all but the last 80.
        let l = extrapolated_losses(
            &parts,
            &snap,
            2.8,
            |p| if p.topic == "o" { 1480 } else { 0 },
        );
        assert_eq!((l[0].source_end, l[0].records), (1560, 80));
        assert!((l[0].seconds - 0.4).abs() < 1e-9);
        // A partition nobody writes to loses what the snapshot saw, aged by the extra time.
        assert_eq!(l[1].records, 250);
        assert!((l[1].seconds - 61.8).abs() < 1e-9);
        // Without a sign of life after the snapshot nothing is extrapolated.
        let l = extrapolated_losses(&parts, &snap, 0.0, |p| p.source_end - 5);
        assert_eq!(l[0].records, 5);
    }

    #[test]
    fn growth_is_named_per_partition() {
        let a: BTreeMap<TopicPartition, i64> = [(("o".into(), 0), 5), (("o".into(), 1), 7)].into();
        let b: BTreeMap<TopicPartition, i64> = [(("o".into(), 0), 9), (("o".into(), 1), 7)].into();
        assert_eq!(grown_topics(&a, &b), vec!["o[0] +4".to_string()]);
        assert!(grown_topics(&b, &b).is_empty());
    }

    #[test]
    fn group_filter_matches_whole_names() {
        let re = fancy_regex::Regex::new("app.*").unwrap();
        assert!(whole_match(&re, "app-1"));
        assert!(!whole_match(&re, "myapp"));
    }

    #[test]
    fn flows_are_checked_before_anything_runs() {
        let c = Config::parse(
            "clusters = a, b\na.bootstrap.servers = x:1\nb.bootstrap.servers = y:1\na->b.enabled = true\n",
            "t.properties",
        )
        .unwrap();
        assert!(flow_for(&c, "a", "b").is_ok());
        let e = flow_for(&c, "b", "a").unwrap_err().to_string();
        assert!(e.contains("replicates nothing from b to a"), "{e}");
        let e = flow_for(&c, "a", "c").unwrap_err().to_string();
        assert!(e.contains("\"c\" is not a cluster"), "{e}");
        assert!(flow_for(&c, "a", "a").is_err());
    }
}
