//! `strait drill`: a complete DR drill, run against two regions, measured from sequence numbers.
//!
//! This file is the drill's timeline; what depends on where the drill runs is behind
//! [`Regions`] (a sandbox started for the drill, or the user's clusters with a simulated
//! failure: see `regions/`), and what the drill says is typed in `narration.rs`.
//!
//! 1. **Set up.** The environment is made ready (sandbox: two regions and an active-passive MM2
//!    file for them, saved as `mm2.properties` in the report directory; config: the file's
//!    `primary->secondary` settings, narrowed to the drill's own topic and group). A drill topic
//!    (`strait-drill-<id>`, 3 partitions) is created on the primary, and the topic the producer
//!    will use after the failover on the secondary.
//! 2. **Replicate**, until the remote topic exists (sandbox: and a heartbeat crossed the flow).
//! 3. **Traffic.** A producer writes sequence-numbered records to the primary at `rate`; a
//!    consumer group (`strait-drill-<id>`) reads them there and commits every 200 ms. A sample of
//!    the timeline is taken every 500 ms.
//! 4. **Failure** at `fail_after`: the primary fails (sandbox: its fault proxy cuts every
//!    connection; config: the drill stops its replication of it), and the drill's producer and
//!    consumer there stop with it.
//! 5. **Detection**, the way monitoring would see it: the newest heartbeat that crossed the flow
//!    older than `3 × emit.heartbeats.interval + 10 s` (the rule `strait status` uses), or, in a
//!    simulation, the drill topic's copies on the secondary not growing for as long.
//! 6. **Failover**, unplanned (sandbox: `strait failover` in full; config: the drill's group only,
//!    from its checkpoints, the active-region record left alone).
//! 7. **Recovery.** The producer moves to the secondary (the drill topic's local name there,
//!    sequence numbers continuing), the group to the secondary (the remote and the local topic).
//!    The drill runs until `duration`, and at least [`MIN_ON_SECONDARY`] on the secondary; then the
//!    producer stops and the consumer reads what is left.
//! 8. **Verdict.** [`verify`] and [`DrillReport`]: report.json, report.md and report.html.
//! 9. **Clean up** (sandbox: the regions stop and their memory storage goes with them; config:
//!    the drill topics and groups are deleted on both clusters, and what cannot be is said).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::narration::{Narrator, Note, Problem, Say};
use super::regions::sandbox::SandboxRegions;
use super::regions::simulated::SimulatedRegions;
use super::regions::{
    end_offsets, exact, newest_heartbeat, Created, Detection, Names, Plan, Regions, TIMEOUT,
};
use super::report::{DrillReport, DrillSettings, DrillTimes, Mark, MarkKind, RpoEstimate, Sample};
use super::sampler::{LagSource, Sampler};
use super::traffic::{self, ClientThread, ConsumerSpec, DrillLog, ProducerSpec};
use super::verify::{verify, Side};
use super::{check, DrillError, DrillOptions, DrillOutcome, Environment, Halt, NotReady, Progress};
use crate::failover::{self, FailoverReport};
use crate::heartbeat::now_ms;
use crate::kafka::groups::{Groups, OffsetAndMetadata};
use crate::kafka::{Admin, Created as TopicCreated, Endpoint, TopicSpec};
use crate::stop::CancellationToken;

/// What `strait sandbox`, `strait demo` and `strait drill --sandbox` say in a binary built
/// without the embedded sandbox.
pub const NO_SANDBOX: &str = "this strait was built without the embedded sandbox (cargo build --no-default-features): `strait sandbox`, `strait demo` and `strait drill --sandbox` need the default `sandbox` feature; drills against your own clusters (`strait drill CONFIG`) work without it";

/// Partitions of a drill topic the drill creates.
pub const PARTITIONS: i32 = 3;
/// The least time the drill keeps producing and consuming on the secondary after the failover,
/// however short `duration` is, so that recovery is shown by records and not assumed.
pub const MIN_ON_SECONDARY: Duration = Duration::from_secs(5);
/// How long replication may take to start before the drill gives up (before any traffic).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After the producer stopped: the consumer is done when nothing new arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_secs(10);
/// ... or, once it has every record acknowledged on the secondary, for this long.
const DRAIN_SETTLE: Duration = Duration::from_secs(1);
/// How long the failover may take to decide the primary is gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long detection may run past the staleness bound before the drill fails over anyway.
const DETECT_SLACK: Duration = Duration::from_secs(30);

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
    let (topic, group) = Plan::names(&id, opts.topic.as_deref());
    let (primary, secondary) = (opts.primary.clone(), opts.secondary.clone());
    let names = Names {
        id: &id,
        primary: &primary,
        secondary: &secondary,
        topic: &topic,
        group: &group,
    };
    let narrator = Narrator::new(progress);
    match env {
        Environment::Sandbox => {
            let regions = SandboxRegions::start(&names, &opts.report_dir, &narrator).await?;
            Drill::new(regions, &names, opts, narrator).run().await
        }
        Environment::Config(config) => {
            let regions = SimulatedRegions::new(*config, &names, &narrator)?;
            Drill::new(regions, &names, opts, narrator).run().await
        }
    }
}

/// A short random id for the drill's topic and group names (6 hex digits).
fn short_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// The drill as it goes.
struct Drill<R> {
    opts: DrillOptions,
    narrator: Narrator,
    /// Cancelled by Ctrl-C.
    interrupted: CancellationToken,
    /// Cancelled when the primary fails (the timeline stops reading its lag).
    primary_lost: CancellationToken,
    plan: Plan,
    regions: R,
    created: Created,
    log: Arc<DrillLog>,
    times: DrillTimes,
    started: Option<Instant>,
    producer: Option<ClientThread>,
    consumer: Option<ClientThread>,
    sampler: Option<Sampler>,
    samples: Vec<Sample>,
    estimate: Option<RpoEstimate>,
    marks: Vec<Mark>,
    /// Why the primary is down, when the probes found it so (the failover does not ask again).
    source_down: Option<String>,
}

impl<R: Regions> Drill<R> {
    fn new(regions: R, names: &Names<'_>, opts: DrillOptions, narrator: Narrator) -> Self {
        let plan = Plan {
            id: names.id.into(),
            primary: names.primary.into(),
            secondary: names.secondary.into(),
            topic: names.topic.into(),
            group: names.group.into(),
            remote_topic: regions.flow().policy.remote_topic(names.topic),
            partitions: PARTITIONS,
        };
        Self {
            opts,
            narrator,
            interrupted: CancellationToken::new(),
            primary_lost: CancellationToken::new(),
            plan,
            regions,
            created: Created::default(),
            log: Arc::new(DrillLog::default()),
            times: DrillTimes::default(),
            started: None,
            producer: None,
            consumer: None,
            sampler: None,
            samples: Vec::new(),
            estimate: None,
            source_down: None,
            marks: Vec::new(),
        }
    }

    /// The whole timeline, then the report.
    async fn run(mut self) -> Result<DrillOutcome, DrillError> {
        let ctrl_c = {
            let interrupted = self.interrupted.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    interrupted.cancel();
                }
            })
        };
        let set_up = self.set_up().await;
        if set_up.is_ok() {
            if let Err(e) = self.exercise().await {
                self.narrator.say(Say::StoppedEarly(e.to_string()));
                self.narrator.problem(Problem::StoppedEarly(e.to_string()));
            }
            self.wind_down().await;
        }
        self.clean_up().await;
        ctrl_c.abort();
        set_up?;
        let report = self.report();
        report
            .write(&self.opts.report_dir)
            .map_err(|source| DrillError::Report {
                dir: self.opts.report_dir.clone(),
                source,
            })?;
        Ok(DrillOutcome {
            report,
            report_dir: self.opts.report_dir.clone(),
        })
    }

    fn a_b(&self) -> (String, String) {
        (self.plan.primary.clone(), self.plan.secondary.clone())
    }

    fn client_endpoints(&self) -> &crate::config::Clients {
        &self.regions.flow().clients
    }

    // ---- 1-2: topics, replication, readiness ----

    async fn set_up(&mut self) -> Result<(), Halt> {
        let (a, b) = self.a_b();
        let clients = self.client_endpoints().clone();
        let admin_a = Admin::new(&clients.source_admin, TIMEOUT)?;
        let admin_b = Admin::new(&clients.target_admin, TIMEOUT)?;
        let rf = self.regions.replication_factor();
        let topic = self.plan.topic.clone();
        match admin_a.topics(Some(&topic)).await?.first() {
            Some(t) if t.name == topic => {
                self.plan.partitions = t.partitions.max(1);
                self.narrator.note(Note::ExistingTopic {
                    topic: topic.clone(),
                    a: a.clone(),
                    partitions: self.plan.partitions,
                });
            }
            _ => {
                let created = admin_a
                    .create_topics(&[TopicSpec::new(&topic, PARTITIONS, rf)])
                    .await?;
                self.created.topic = created
                    .iter()
                    .any(|(n, c)| n == &topic && *c == TopicCreated::Created);
            }
        }
        if self.plan.remote_topic != topic {
            let created = admin_b
                .create_topics(&[TopicSpec::new(&topic, self.plan.partitions, rf)])
                .await?;
            self.created.local_on_secondary = created
                .iter()
                .any(|(n, c)| n == &topic && *c == TopicCreated::Created);
        }
        // The group exists before replication starts, as an application's would: the checkpoint
        // job finds it at its first listing (it lists again only every refresh.groups.interval),
        // and it starts at the end of a topic that already held data.
        let mut offsets = std::collections::BTreeMap::new();
        for p in 0..self.plan.partitions {
            let hi = if self.created.topic {
                0
            } else {
                admin_a.watermarks(&topic, p).await?.1
            };
            offsets.insert((topic.clone(), p), OffsetAndMetadata::new(hi, ""));
        }
        Groups::new(&clients.source_consumer, TIMEOUT)
            .commit(&self.plan.group, &offsets)
            .await?;
        self.narrator.say(Say::SetUp {
            topic,
            partitions: self.plan.partitions,
            a,
            b,
            group: self.plan.group.clone(),
            remote_topic: self.plan.remote_topic.clone(),
        });
        self.regions.start_replication(&self.plan);
        self.wait_ready(admin_b).await
    }

    /// Until the remote topic exists on the secondary and (sandbox) a heartbeat crossed the flow.
    async fn wait_ready(&mut self, mut admin_b: Admin) -> Result<(), Halt> {
        let (a, b) = self.a_b();
        self.narrator.say(Say::WaitingForReplication {
            a: a.clone(),
            b: b.clone(),
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let heartbeats = self.regions.readiness();
        let clients = self.client_endpoints().clone();
        let remote = self.plan.remote_topic.clone();
        loop {
            self.check_running()?;
            let topic_ok = match admin_b.topics(Some(&remote)).await {
                Ok(t) => t.iter().any(|t| t.name == remote),
                Err(_) => {
                    // A client that asked before the topic existed may keep saying it does not.
                    if let Ok(fresh) = Admin::new(&clients.target_admin, TIMEOUT) {
                        admin_b = fresh;
                    }
                    false
                }
            };
            let heartbeat_ok = match &heartbeats {
                None => true,
                Some(hb) => newest_heartbeat(hb, &clients.target_consumer)
                    .await
                    .is_some(),
            };
            if topic_ok && heartbeat_ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let missing = if !topic_ok {
                    NotReady::RemoteTopic {
                        topic: remote,
                        secondary: b.clone(),
                    }
                } else {
                    NotReady::Heartbeat
                };
                return Err(Halt::NotStarted { a, b, missing });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// An error when the drill must stop: interrupted, or replication failed.
    fn check_running(&self) -> Result<(), Halt> {
        if self.interrupted.is_cancelled() {
            return Err(Halt::Interrupted);
        }
        match self.regions.replication_failed() {
            Some(flow) => Err(Halt::ReplicationFailed(flow)),
            None => Ok(()),
        }
    }

    /// Sleep until `until`, waking to check that the drill may go on.
    async fn wait_until(&self, until: Instant) -> Result<(), Halt> {
        loop {
            self.check_running()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let nap = (until - now).min(Duration::from_millis(200));
            let _ = crate::stop::or_cancel(&self.interrupted, tokio::time::sleep(nap)).await;
        }
    }

    // ---- 3-7: traffic, failure, detection, failover, recovery ----

    /// Everything from the first record to the producer stopping on the secondary.
    async fn exercise(&mut self) -> Result<(), Halt> {
        let (a, _) = self.a_b();
        let clients = self.client_endpoints().clone();
        self.consumer = Some(self.consumer_on(
            &clients.source_consumer,
            vec![self.plan.topic.clone()],
            Side::Primary,
        )?);
        let started = Instant::now();
        self.started = Some(started);
        self.times.started_at_ms = now_ms();
        // The admin properties carry each cluster's connection and security settings.
        self.producer = Some(self.producer_on(&clients.source_admin, Side::Primary)?);
        self.sampler = Some(Sampler::start(
            started,
            self.log.clone(),
            LagSource {
                primary: clients.source_admin.clone(),
                secondary: clients.target_admin.clone(),
                topic: self.plan.topic.clone(),
                remote_topic: self.plan.remote_topic.clone(),
                partitions: self.plan.partitions,
            },
            self.primary_lost.clone(),
        ));
        self.narrator.say(Say::Writing {
            rate: self.opts.rate,
            topic: self.plan.topic.clone(),
            a,
            group: self.plan.group.clone(),
            fail_after: self.opts.fail_after,
        });

        self.wait_until(started + self.opts.fail_after).await?;
        self.fail().await;
        self.times.detected_at_ms = self.detect().await?;
        self.fail_over().await?;
        self.recover(started).await
    }

    fn consumer_on(
        &self,
        endpoint: &Endpoint,
        topics: Vec<String>,
        side: Side,
    ) -> Result<ClientThread, Halt> {
        traffic::start_consumer(
            ConsumerSpec {
                endpoint: endpoint.clone(),
                group: self.plan.group.clone(),
                topics,
                side,
                drill_id: self.plan.id.clone(),
            },
            self.log.clone(),
        )
        .map_err(Halt::ClientThread)
    }

    /// A producer writing the drill topic (its local name on the secondary, after the failover).
    fn producer_on(&self, endpoint: &Endpoint, side: Side) -> Result<ClientThread, Halt> {
        traffic::start_producer(
            ProducerSpec {
                endpoint: endpoint.clone(),
                topic: self.plan.topic.clone(),
                partitions: self.plan.partitions,
                rate: self.opts.rate,
                side,
                drill_id: self.plan.id.clone(),
            },
            self.log.clone(),
        )
        .map_err(Halt::ClientThread)
    }

    /// Fail the primary; its clients stop with it, at the same instant.
    async fn fail(&mut self) {
        self.primary_lost.cancel();
        self.regions.fail_primary(&self.narrator);
        self.times.failure_at_ms = Some(now_ms());
        // Left to end on their own threads.
        for t in [self.producer.take(), self.consumer.take()]
            .into_iter()
            .flatten()
        {
            t.abandon();
        }
        self.narrator.say(Say::Failed {
            kind: self.regions.kind(),
            a: self.plan.primary.clone(),
            at: self.started.map(|s| s.elapsed()),
        });
        self.regions.failure_settled().await;
    }

    /// Wait until the failure shows the way monitoring would see it; returns when (ms since the
    /// epoch), or `None` when it did not show in time.
    async fn detect(&mut self) -> Result<Option<i64>, Halt> {
        let (a, b) = self.a_b();
        let failure_at = self.times.failure_at_ms.unwrap_or_else(now_ms);
        let detection = self.regions.detection();
        let bound = detection.bound();
        let give_up = Instant::now() + bound + DETECT_SLACK;
        match &detection {
            Detection::Heartbeats(hb) => {
                let (a, b, topic) = (a.clone(), b.clone(), hb.topic.clone());
                self.narrator.say(Say::WatchingHeartbeats {
                    a: a.clone(),
                    b: b.clone(),
                    topic: topic.clone(),
                    bound,
                });
                self.narrator
                    .note(Note::DetectionByHeartbeats { a, b, topic, bound });
            }
            Detection::CopiesStopGrowing { .. } => {
                self.narrator.say(Say::WatchingCopies {
                    b: b.clone(),
                    bound,
                });
                self.narrator.note(Note::DetectionByCopies {
                    b: b.clone(),
                    bound,
                });
            }
            Detection::Probes(_, how) => {
                self.narrator.say(Say::WatchingProbes {
                    a: a.clone(),
                    how: *how,
                });
                self.narrator.note(Note::DetectionByProbes {
                    a: a.clone(),
                    how: *how,
                });
            }
        }
        let bound_ms = bound.as_millis() as i64;
        let mut last_ends: Option<i64> = None;
        let mut last_growth_ms = failure_at;
        let clients = self.client_endpoints().clone();
        let admin_b = Admin::new(&clients.target_admin, TIMEOUT)?;
        loop {
            // After the failure only an interrupt stops the drill (replication errors are
            // expected).
            if self.interrupted.is_cancelled() {
                return Err(Halt::Interrupted);
            }
            let (detected, now) = match &detection {
                Detection::Heartbeats(hb) => {
                    let newest = newest_heartbeat(hb, &clients.target_consumer).await;
                    // The age as of the answer, not of the question.
                    let now = now_ms();
                    let detected = match newest {
                        Some(ts) => now - ts > bound_ms,
                        None => now - failure_at > bound_ms,
                    };
                    (detected, now)
                }
                Detection::Probes(watch, _) => {
                    let seen = watch.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let down = seen.reach == crate::reach::Reach::Down;
                    if down {
                        self.source_down = Some(seen.down_reason());
                    }
                    (down, now_ms())
                }
                Detection::CopiesStopGrowing { .. } => {
                    let ends =
                        end_offsets(&admin_b, &self.plan.remote_topic, self.plan.partitions).await;
                    let now = now_ms();
                    if let Some(ends) = ends {
                        if last_ends.is_some_and(|l| ends > l) {
                            last_growth_ms = now;
                        }
                        last_ends = Some(ends);
                    }
                    (now - last_growth_ms > bound_ms, now)
                }
            };
            if detected {
                self.narrator.say(Say::Detected {
                    after_ms: now - failure_at,
                });
                return Ok(Some(now));
            }
            if Instant::now() >= give_up {
                self.narrator.problem(Problem::NotDetected {
                    a,
                    within: bound + DETECT_SLACK,
                });
                return Ok(None);
            }
            let every = match &detection {
                Detection::Probes(..) => Duration::from_millis(50),
                _ => Duration::from_millis(500),
            };
            tokio::time::sleep(every).await;
        }
    }

    /// The unplanned failover, timed.
    async fn fail_over(&mut self) -> Result<(), Halt> {
        let (a, b) = self.a_b();
        let mut fo = failover::Options::new(&a, &b);
        fo.groups = Some(
            fancy_regex::Regex::new(&exact(&self.plan.group)).expect("an escaped name is a regex"),
        );
        fo.probe_timeout = PROBE_TIMEOUT;
        // Found down by the probes already: not asked again.
        fo.source_down = self.source_down.clone();
        fo.max_wait = Duration::from_secs(30);
        self.narrator.say(Say::FailingOver {
            kind: self.regions.kind(),
            a: a.clone(),
            b: b.clone(),
        });
        let started_at = now_ms();
        self.times.failover_started_at_ms = Some(started_at);
        let narrator = self.narrator.clone();
        let say = move |l: &str| narrator.say(Say::Failover(l.to_string()));
        let result = self.regions.fail_over(&fo, &say).await;
        let done = now_ms();
        let report = result.map_err(Halt::Failover)?;
        self.times.failover_done_at_ms = Some(done);
        self.marks.push(Mark {
            t_ms: started_at - self.times.started_at_ms,
            kind: MarkKind::FailoverStarted,
            label: "failover started".into(),
        });
        self.narrator.say(Say::FailedOver {
            took_ms: done - started_at,
            mode: report.mode,
            b,
        });
        self.take_failover_report(&report).await;
        self.regions.after_failover();
        Ok(())
    }

    /// What the drill keeps of the failover's own report: the RPO estimate, the group move, its
    /// warnings.
    async fn take_failover_report(&mut self, report: &FailoverReport) {
        let b = self.plan.secondary.clone();
        self.estimate = Some(
            self.regions
                .estimate_rpo(&self.plan, report, &self.narrator)
                .await,
        );
        let group = self.plan.group.clone();
        match report.groups.iter().find(|g| g.group == group) {
            Some(g) if g.moved() => {}
            Some(g) => self.narrator.note(Note::GroupNotMoved {
                group,
                action: g.action,
                reason: g.reason.clone(),
                b,
            }),
            None => self.narrator.note(Note::NoCheckpoint { group, b }),
        }
        for w in &report.warnings {
            self.narrator.note(Note::FailoverWarning(w.clone()));
        }
    }

    /// Producer and consumer on the secondary, until the end of the drill.
    async fn recover(&mut self, started: Instant) -> Result<(), Halt> {
        let b = self.plan.secondary.clone();
        let clients = self.client_endpoints().clone();
        let mut topics = vec![self.plan.remote_topic.clone()];
        if self.plan.topic != self.plan.remote_topic {
            topics.push(self.plan.topic.clone());
        }
        self.consumer =
            Some(self.consumer_on(&clients.target_consumer, topics.clone(), Side::Secondary)?);
        self.producer = Some(self.producer_on(&clients.target_admin, Side::Secondary)?);
        let end = (started + self.opts.duration).max(Instant::now() + MIN_ON_SECONDARY);
        self.narrator.say(Say::Recovering {
            topic: self.plan.topic.clone(),
            b,
            group: self.plan.group.clone(),
            topics,
            until: end - started,
        });
        self.wait_until(end).await
    }

    // ---- 7-8: wind down and report ----

    /// Stop the producer, let the consumer read what is left, stop everything still running.
    async fn wind_down(&mut self) {
        let on_secondary = self.times.failover_done_at_ms.is_some();
        if let Some(p) = self.producer.take() {
            self.narrator.say(Say::StoppingProducer);
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
        let samples = match self.sampler.take() {
            Some(s) => s.finish().await,
            None => Vec::new(),
        };
        self.times.finished_at_ms = now_ms();
        self.regions.stop_replication().await;
        self.samples = samples;
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
            if self.interrupted.is_cancelled() {
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
            topic: self.plan.topic.clone(),
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
        report.strait_estimate_check = report.estimate_check();
        report.marks.extend(self.marks.iter().cloned());
        report.marks.sort_by_key(|m| m.t_ms);
        let (notes, problems) = self.narrator.rendered();
        report.notes = notes;
        if !problems.is_empty() {
            report.failures.extend(problems);
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
        if let Some(s) = self.sampler.take() {
            s.finish().await;
        }
        self.regions
            .clean_up(&self.plan, self.created, &self.narrator)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_differ() {
        let (a, b) = (short_id(), short_id());
        assert_eq!(a.len(), 6);
        assert_ne!(a, b);
    }
}
