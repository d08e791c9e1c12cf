//! A merger at work: which partitions this process merges (the group), reading every region's
//! events and marks from its own cluster, feeding one [`Merger`] per partition, and writing
//! what it releases.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use strait_conflicts::events::{place, Event, Merger, Output as Released, Stream};
use tracing::{debug, error, info, warn};

use super::marks::{ensure_topic, Mark};
use super::output::{header, read_tail, Merged, Output, Tail};
use super::resume::{ResumeState, StreamState};
use super::spec::MergeSpec;
use super::{DEDUPE_WINDOW, MARKS_TOPIC, WAIT_LOG};
use crate::backoff::Backoff;
use crate::config::conflicts::merged_topic;
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, Created, TopicInfo, TopicSpec};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{or_cancel, pause, CancellationToken};

/// How often topics are looked at again while some cannot be merged yet.
const RETRY_PROBLEMS: Duration = Duration::from_secs(30);
/// At most this many records are taken from one region's reader per turn.
const TURN_MAX: usize = 2_000;
/// A partition's merge holding more events than this (waiting for a region that is behind,
/// during a cut) stops reading the regions ahead until it holds half as many: memory stays
/// bounded, and the region behind, which is what it waits for, is always read.
const PENDING_MAX: usize = 50_000;

/// What a merger counts, and what it says only once.
#[derive(Debug, Default)]
struct MergeStats {
    read: AtomicU64,
    written: AtomicU64,
    duplicates: AtomicU64,
    said: Mutex<BTreeSet<String>>,
}

impl MergeStats {
    /// Log `problem` as an error the first time only.
    fn once(&self, spec: &MergeSpec, problem: String) {
        if self.said.lock().unwrap().insert(problem.clone()) {
            error!(rule = %spec.rule, region = %spec.region, "{problem}");
        }
    }
}

/// How a session ended other than by failing.
enum Ended {
    Stopped,
    TopicsChanged,
}

/// Keep the merged streams of `spec` until `cancel` fires.
pub(super) async fn job(spec: MergeSpec, cancel: CancellationToken) {
    if let Some(problem) = spec.merge_problem(&spec.topics.conflicts.regions) {
        error!(rule = %spec.rule, region = %spec.region, "no merged stream is kept: {problem}");
        return;
    }
    let stats = Arc::new(MergeStats::default());
    let mut backoff = Backoff::standard();
    loop {
        match session(&spec, &cancel, &stats).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::TopicsChanged) => backoff = Backoff::standard(),
            Err(e) => {
                warn!(rule = %spec.rule, region = %spec.region, error = %e, "the merged stream stopped; starting over from what it holds");
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
    info!(
        rule = %spec.rule,
        region = %spec.region,
        read = stats.read.load(Ordering::Relaxed),
        written = stats.written.load(Ordering::Relaxed),
        duplicates = stats.duplicates.load(Ordering::Relaxed),
        "merged stream stopped"
    );
}

/// The topics to merge: each with its partition count, the same in every region.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    /// The topics merged.
    topics: Vec<(String, i32)>,
    /// Every topic of the rule on R, merged or not (a change starts the session over).
    candidates: Vec<TopicInfo>,
}

/// Why `topic` (with `n` partitions on R) cannot be merged given each other region's topics,
/// if so.
fn partition_problem(
    spec: &MergeSpec,
    topic: &str,
    n: i32,
    others: &[(String, Vec<TopicInfo>)],
    merged_partitions: Option<i32>,
) -> Option<String> {
    let mut counts = vec![format!("{} in {}", n, spec.region)];
    let mut differ = false;
    for (alias, listed) in others {
        match listed.iter().find(|t| t.name == topic) {
            None => {
                return Some(format!(
                    "topic {topic} is not on {alias}'s cluster yet: its events cannot be merged until it is"
                ))
            }
            Some(t) => {
                differ |= t.partitions != n;
                counts.push(format!("{} in {alias}", t.partitions));
            }
        }
    }
    if let Some(m) = merged_partitions {
        differ |= m != n;
        counts.push(format!("{m} in {}", merged_topic(topic)));
    }
    differ.then(|| {
        format!(
            "topic {topic} is not merged: its partition counts differ ({}); partition p of the merged stream holds partition p of every region, so give them the same count",
            counts.join(", ")
        )
    })
}

/// Plan the topics R has now, create their merged topics and the marks topics, then merge
/// until stopped, failed, or the topics change.
async fn session(
    spec: &MergeSpec,
    cancel: &CancellationToken,
    stats: &Arc<MergeStats>,
) -> Result<Ended, String> {
    let admin = Admin::new(&spec.admin, spec.admin_timeout).map_err(|e| e.to_string())?;
    let others: Vec<(String, Admin)> = spec
        .origins
        .iter()
        .filter(|o| o.alias != spec.region)
        .map(|o| {
            Admin::new(&o.admin, spec.admin_timeout)
                .map(|a| (o.alias.clone(), a))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let plan = loop {
        let Some(listed) = or_cancel(cancel, admin.topics(None)).await else {
            return Ok(Ended::Stopped);
        };
        let listed = listed.map_err(|e| e.to_string())?;
        let candidates = spec.topics.pick(&listed, Some(&spec.rule));
        let mut theirs = Vec::new();
        if !candidates.is_empty() {
            for (alias, a) in &others {
                let Some(t) = or_cancel(cancel, a.topics(None)).await else {
                    return Ok(Ended::Stopped);
                };
                theirs.push((alias.clone(), t.map_err(|e| e.to_string())?));
            }
        }
        let mut topics = Vec::new();
        for t in &candidates {
            let merged = listed
                .iter()
                .find(|m| m.name == merged_topic(&t.name))
                .map(|m| m.partitions);
            match partition_problem(spec, &t.name, t.partitions, &theirs, merged) {
                Some(problem) => stats.once(spec, problem),
                None => topics.push((t.name.clone(), t.partitions)),
            }
        }
        if !topics.is_empty() {
            let create: Vec<TopicSpec> = topics
                .iter()
                .filter(|(t, _)| !listed.iter().any(|m| m.name == merged_topic(t)))
                .map(|(t, n)| (merged_topic(t), *n))
                .map(|(name, n)| {
                    TopicSpec::new(name, n, 1)
                        // The effective times, as each record's timestamp.
                        .config("message.timestamp.type", "CreateTime")
                })
                .collect();
            if !create.is_empty() {
                let Some(brokers) = or_cancel(cancel, admin.broker_count()).await else {
                    return Ok(Ended::Stopped);
                };
                let rf = effective_replication_factor(
                    spec.replication_factor,
                    brokers.map_err(|e| e.to_string())?,
                );
                let create: Vec<TopicSpec> = create
                    .into_iter()
                    .map(|mut s| {
                        s.replication_factor = rf;
                        s
                    })
                    .collect();
                let Some(created) = or_cancel(cancel, admin.create_topics(&create)).await else {
                    return Ok(Ended::Stopped);
                };
                for (name, outcome) in created.map_err(|e| e.to_string())? {
                    if outcome == Created::Created {
                        info!(rule = %spec.rule, region = %spec.region, topic = %name, "created the merged topic");
                    }
                }
            }
            // Every region's marks topic, in case its marks job has not made it yet.
            for a in std::iter::once(&admin).chain(others.iter().map(|(_, a)| a)) {
                let Some(made) = or_cancel(cancel, ensure_topic(a, spec.replication_factor)).await
                else {
                    return Ok(Ended::Stopped);
                };
                made?;
            }
            break Plan { topics, candidates };
        }
        let wait = if candidates.is_empty() {
            spec.refresh.min(Duration::from_secs(2))
        } else {
            RETRY_PROBLEMS.min(spec.refresh.max(Duration::from_secs(2)))
        };
        if !pause(cancel, wait).await {
            return Ok(Ended::Stopped);
        }
    };
    {
        let mut said = stats.said.lock().unwrap();
        let line = format!("plan {:?}", plan.topics);
        if said.insert(line) {
            let topics: Vec<&str> = plan.topics.iter().map(|(t, _)| t.as_str()).collect();
            let regions: Vec<&str> = spec.origins.iter().map(|o| o.alias.as_str()).collect();
            info!(rule = %spec.rule, region = %spec.region, topics = ?topics, regions = ?regions, group = %spec.group(), "keeping merged event streams");
        }
    }
    drop((admin, others));
    let (spec, cancel, stats) = (spec.clone(), cancel.clone(), stats.clone());
    crate::kafka::blocking(move || Session::new(spec, plan, cancel, stats)?.run()).await
}

/// Rebalances of the owning group: the records handed over are acknowledged before
/// partitions go, so their next owner reads where this one stopped.
struct GroupContext {
    diagnose: Diagnosed,
    name: String,
    output: Arc<Output>,
    changed: AtomicBool,
}

crate::kafka::diagnose::diagnosed_client_context!(GroupContext, diagnose);

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(_) => {
                self.changed.store(true, Ordering::SeqCst);
                if !self.output.flush(Duration::from_secs(10)) {
                    warn!(merger = %self.name, "merged records were not all acknowledged before partitions were given up; their next owner may write some again");
                }
            }
            Rebalance::Assign(_) => self.changed.store(true, Ordering::SeqCst),
            Rebalance::Error(e) => {
                warn!(merger = %self.name, error = %e, "rebalance of the merger's consumer group failed")
            }
        }
    }
}

/// One region's partition within a lane.
#[derive(Debug)]
struct LaneStream {
    stream: Stream,
    /// Marks at earlier offsets of the region's marks topic were taken before a restart.
    mark_from: i64,
    /// The position of the last mark taken (the merger ignores marks behind it).
    last_mark: Option<i64>,
    /// For each mark position taken, the marks-topic offset of the record that first gave it.
    creators: BTreeMap<i64, i64>,
}

/// The merge of partition p of one topic.
struct Lane {
    topic: String,
    output: String,
    partition: i32,
    merger: Merger<Vec<u8>, OwnedMessage>,
    /// By origin, in the spec's order.
    streams: Vec<LaneStream>,
    /// By origin: whether its partition is paused (see [`PENDING_MAX`]).
    paused: Vec<bool>,
    /// The last time something was released (or the lane started), and the last time its
    /// waiting was said.
    progressed: Instant,
    said_waiting: Option<Instant>,
}

/// One session's clients and lanes, on a blocking thread.
struct Session {
    spec: MergeSpec,
    plan: Plan,
    cancel: CancellationToken,
    stats: Arc<MergeStats>,
    group: BaseConsumer<GroupContext>,
    output: Arc<Output>,
    /// By origin, in the spec's order: reads its events and marks.
    readers: Vec<BaseConsumer<Diagnosed>>,
    /// Reads merged partitions back.
    tail_reader: BaseConsumer<Diagnosed>,
    lanes: BTreeMap<(String, i32), Lane>,
    /// By origin: every marks record before this offset has been taken.
    marks_next: Vec<i64>,
    /// By origin: the offset its marks were assigned from, until the first one arrives.
    marks_expected: Vec<Option<i64>>,
}

impl Session {
    fn new(
        spec: MergeSpec,
        plan: Plan,
        cancel: CancellationToken,
        stats: Arc<MergeStats>,
    ) -> Result<Self, String> {
        let name = spec.name();
        let output = Arc::new(Output::new(&spec.producer, &spec.region)?);
        let mut cfg = spec.consumer.consumer_config(&spec.group());
        crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::Steady);
        cfg.set("client.id", format!("strait-{}-merger", spec.region));
        let group: BaseConsumer<GroupContext> = cfg
            .create_with_context(GroupContext {
                diagnose: spec.consumer.context(),
                name: name.clone(),
                output: output.clone(),
                changed: AtomicBool::new(false),
            })
            .map_err(|e| format!("cannot create the merger's consumer: {e}"))?;
        let mut readers = Vec::new();
        for o in &spec.origins {
            let mut cfg = o.consumer.consumer_config("strait-internal-reader");
            crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::Steady);
            cfg.set("client.id", format!("strait-{}-merge-reader", spec.region));
            readers.push(
                cfg.create_with_context(o.consumer.context())
                    .map_err(|e| format!("cannot create a reader of {}'s events: {e}", o.alias))?,
            );
        }
        let mut cfg = spec.consumer.consumer_config("strait-internal-reader");
        crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::ReadBack);
        cfg.set("client.id", format!("strait-{}-reader", spec.region));
        let tail_reader = cfg
            .create_with_context(spec.consumer.context())
            .map_err(|e| format!("cannot create a reader of the merged topics: {e}"))?;
        let topics: Vec<&str> = plan.topics.iter().map(|(t, _)| t.as_str()).collect();
        group
            .subscribe(&topics)
            .map_err(|e| format!("cannot subscribe to {topics:?}: {e}"))?;
        let n = spec.origins.len();
        Ok(Self {
            spec,
            plan,
            cancel,
            stats,
            group,
            output,
            readers,
            tail_reader,
            lanes: BTreeMap::new(),
            marks_next: vec![0; n],
            marks_expected: vec![None; n],
        })
    }

    fn name(&self) -> String {
        self.spec.name()
    }

    fn run(mut self) -> Result<Ended, String> {
        let problems = self.plan.candidates.len() > self.plan.topics.len();
        let refresh = if problems {
            self.spec.refresh.min(RETRY_PROBLEMS)
        } else {
            self.spec.refresh
        };
        let mut next_refresh = Instant::now() + refresh;
        let ended = loop {
            if self.cancel.is_cancelled() {
                break Ok(Ended::Stopped);
            }
            // Membership only: the local topic's records are not read through the group.
            for _ in 0..1_000 {
                match self.group.poll(Duration::ZERO) {
                    Some(Err(e)) => {
                        debug!(merger = %self.name(), error = %e, "group consumer error")
                    }
                    Some(Ok(_)) => {}
                    None => break,
                }
            }
            if self.group.context().changed.swap(false, Ordering::SeqCst) && !self.reassign()? {
                break Ok(Ended::Stopped);
            }
            if self.lanes.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            } else {
                self.read();
                self.advance();
                self.release()?;
            }
            if let Some(e) = self.output.failed() {
                return Err(e);
            }
            if Instant::now() >= next_refresh {
                next_refresh = Instant::now() + refresh;
                if self.topics_changed() || (problems && self.problems_gone()) {
                    break Ok(Ended::TopicsChanged);
                }
            }
        };
        self.output.settle(&self.cancel)?;
        ended
    }

    /// The partitions owned changed: wait for what was handed over, then read every owned
    /// partition's merged tail and start its lane there. False when stopped first.
    fn reassign(&mut self) -> Result<bool, String> {
        if !self.output.settle(&self.cancel)? {
            return Ok(false);
        }
        self.lanes.clear();
        let assigned = self
            .group
            .assignment()
            .map_err(|e| format!("cannot read the merger's assignment: {e}"))?;
        let _ = self.group.pause(&assigned);
        for e in assigned.elements() {
            let (topic, p) = (e.topic().to_string(), e.partition());
            let Some(lane) = self.lane(&topic, p)? else {
                return Ok(false);
            };
            self.lanes.insert((topic, p), lane);
        }
        for (i, reader) in self.readers.iter().enumerate() {
            let mut tpl = TopicPartitionList::new();
            let mut marks_from: Option<i64> = None;
            for lane in self.lanes.values() {
                let from = lane
                    .merger
                    .snapshot(lane.streams[i].stream)
                    .map_or(0, |r| r.from);
                tpl.add_partition_offset(&lane.topic, lane.partition, Offset::Offset(from))
                    .map_err(|e| e.to_string())?;
                let m = lane.streams[i].mark_from;
                marks_from = Some(marks_from.map_or(m, |x| x.min(m)));
            }
            if let Some(m) = marks_from {
                tpl.add_partition_offset(MARKS_TOPIC, 0, Offset::Offset(m))
                    .map_err(|e| e.to_string())?;
                self.marks_next[i] = m;
                self.marks_expected[i] = Some(m);
            }
            reader.assign(&tpl).map_err(|e| {
                format!("cannot assign {}'s reader: {e}", self.spec.origins[i].alias)
            })?;
            // Nothing paused for an earlier lane stays so.
            let _ = reader.resume(&tpl);
        }
        let owned: Vec<String> = self.lanes.keys().map(|(t, p)| format!("{t}-{p}")).collect();
        info!(merger = %self.name(), partitions = ?owned, "merging");
        Ok(true)
    }

    /// The lane of `topic`-`p`, from its merged partition's tail. `None` when stopped first.
    fn lane(&self, topic: &str, p: i32) -> Result<Option<Lane>, String> {
        let output = merged_topic(topic);
        let Some(tail) = read_tail(
            &self.tail_reader,
            &output,
            p,
            self.spec.id_header.as_deref(),
            DEDUPE_WINDOW.as_millis() as i64,
            self.spec.admin_timeout,
            &self.cancel,
        )?
        else {
            return Ok(None);
        };
        let streams: Vec<Stream> = self
            .spec
            .origins
            .iter()
            .map(|o| Stream {
                origin: o.rank,
                partition: p,
            })
            .collect();
        let mut merger = Merger::new(
            streams.iter().copied(),
            self.spec.lateness.as_millis() as i64,
            DEDUPE_WINDOW.as_millis() as i64,
        );
        let rank = |alias: &str| {
            self.spec
                .origins
                .iter()
                .find(|o| o.alias == alias)
                .map(|o| o.rank)
                .ok_or_else(|| {
                    format!("{output}-{p} holds an event of `{alias}`, which is not one of the regions merged")
                })
        };
        let mut lane_streams = Vec::new();
        let Tail { last, ids } = tail;
        match last {
            Some(last) => {
                let stream = Stream {
                    origin: rank(&last.origin)?,
                    partition: last.partition,
                };
                merger.skip_through(place(last.resume.at, stream, last.position));
                for (o, s) in self.spec.origins.iter().zip(&streams) {
                    let st = last.resume.stream(&o.alias).ok_or_else(|| {
                        format!("the last record of {output}-{p} does not say where {}'s events stood (were the regions changed?); strait cannot tell where to go on", o.alias)
                    })?;
                    merger.resume(*s, st.from, st.seed);
                    lane_streams.push(LaneStream {
                        stream: *s,
                        mark_from: st.marks,
                        last_mark: st.seed.map(|(pos, _)| pos),
                        creators: BTreeMap::new(),
                    });
                }
                for (id, at, origin, partition, position) in ids {
                    let stream = Stream {
                        origin: rank(&origin)?,
                        partition,
                    };
                    merger.remember(id, at, stream, position);
                }
                debug!(merger = %self.name(), topic, partition = p, at = last.resume.at, "resuming after the merged stream's last record");
            }
            None => {
                for ((o, s), reader) in self.spec.origins.iter().zip(&streams).zip(&self.readers) {
                    let (lo, _) = reader
                        .fetch_watermarks(topic, p, self.spec.admin_timeout)
                        .map_err(|e| {
                            format!("cannot read the start of {topic}-{p} in {}: {e}", o.alias)
                        })?;
                    merger.resume(*s, lo, None);
                    lane_streams.push(LaneStream {
                        stream: *s,
                        mark_from: 0,
                        last_mark: None,
                        creators: BTreeMap::new(),
                    });
                }
            }
        }
        Ok(Some(Lane {
            topic: topic.to_string(),
            output,
            partition: p,
            merger,
            paused: vec![false; lane_streams.len()],
            streams: lane_streams,
            progressed: Instant::now(),
            said_waiting: None,
        }))
    }

    /// Take what each region's reader has.
    fn read(&mut self) {
        let first_wait = Duration::from_millis(40 / self.readers.len().max(1) as u64);
        for i in 0..self.readers.len() {
            let mut wait = first_wait;
            for _ in 0..TURN_MAX {
                let m = match self.readers[i].poll(wait) {
                    Some(Ok(m)) => m.detach(),
                    Some(Err(e)) => {
                        debug!(merger = %self.name(), region = %self.spec.origins[i].alias, error = %e, "reader error");
                        break;
                    }
                    None => break,
                };
                wait = Duration::ZERO;
                if m.topic() == MARKS_TOPIC {
                    self.take_mark(i, &m);
                } else {
                    self.take_event(i, m);
                }
            }
        }
    }

    fn take_mark(&mut self, i: usize, m: &OwnedMessage) {
        let offset = m.offset();
        if let Some(expected) = self.marks_expected[i].take() {
            if offset > expected && expected > 0 {
                warn!(merger = %self.name(), region = %self.spec.origins[i].alias, expected, first = offset, "marks to resume from were deleted by the marks topic's retention: events written meanwhile may be placed differently than in another region");
            }
        }
        self.marks_next[i] = self.marks_next[i].max(offset + 1);
        let Some(mark) = m.payload().and_then(Mark::parse) else {
            return;
        };
        let Some(lane) = self.lanes.get_mut(&(mark.topic, mark.partition)) else {
            return;
        };
        let ls = &mut lane.streams[i];
        if offset < ls.mark_from {
            return;
        }
        // The merger's own rule: a mark behind the last is ignored, one at it raises it, one
        // beyond it is a new mark (whose record is where a snapshot re-reads marks from).
        if ls.last_mark.is_none_or(|l| mark.position > l) {
            ls.creators.insert(mark.position, offset);
            ls.last_mark = Some(mark.position);
        }
        lane.merger.mark(ls.stream, mark.position, mark.time);
    }

    fn take_event(&mut self, i: usize, m: OwnedMessage) {
        let Some(lane) = self.lanes.get_mut(&(m.topic().to_string(), m.partition())) else {
            return;
        };
        self.stats.read.fetch_add(1, Ordering::Relaxed);
        let id = self
            .spec
            .id_header
            .as_deref()
            .and_then(|h| header(&m, h))
            .map(<[u8]>::to_vec);
        lane.merger.event(Event {
            stream: lane.streams[i].stream,
            position: m.offset(),
            timestamp: m.timestamp().to_millis().unwrap_or(0).max(0),
            id,
            payload: m,
        });
    }

    /// Each reader's position: everything before it was given (records a reader skips, such
    /// as transaction markers, included).
    fn advance(&mut self) {
        for (i, reader) in self.readers.iter().enumerate() {
            let Ok(tpl) = reader.position() else {
                continue;
            };
            for e in tpl.elements() {
                if e.topic() == MARKS_TOPIC {
                    continue;
                }
                if let (Offset::Offset(o), Some(lane)) = (
                    e.offset(),
                    self.lanes.get_mut(&(e.topic().to_string(), e.partition())),
                ) {
                    lane.merger.read_to(lane.streams[i].stream, o);
                }
            }
        }
    }

    /// Write what every lane can release, each record with where its lane stands after it.
    fn release(&mut self) -> Result<(), String> {
        let now = Instant::now();
        for lane in self.lanes.values_mut() {
            while let Some(out) = lane.merger.release_next() {
                lane.progressed = now;
                match out {
                    Released::Event { event, at } => {
                        let resume = resume_state(lane, &self.spec, &self.marks_next, at);
                        let origin = &self.spec.origins[origin_index(lane, event.stream)].alias;
                        self.output.write(
                            &lane.output,
                            lane.partition,
                            Merged {
                                event: &event.payload,
                                origin,
                                at,
                                resume: &resume,
                            },
                        )?;
                        self.stats.written.fetch_add(1, Ordering::Relaxed);
                    }
                    Released::Duplicate { event, at, of } => {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                        debug!(merger = %self.spec.name(), topic = %lane.topic, partition = lane.partition, offset = event.position, at, first_offset = of.1, "an event repeating an id released within the window is dropped");
                    }
                }
            }
            let pending = lane.merger.pending();
            let behind = lane
                .streams
                .iter()
                .filter_map(|ls| lane.merger.watermark(ls.stream))
                .min();
            for (i, ls) in lane.streams.iter().enumerate() {
                let pause = if lane.paused[i] {
                    pending > PENDING_MAX / 2
                } else {
                    pending > PENDING_MAX
                } && lane.merger.watermark(ls.stream) > behind;
                if pause != lane.paused[i] {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&lane.topic, lane.partition);
                    let done = if pause {
                        self.readers[i].pause(&tpl)
                    } else {
                        self.readers[i].resume(&tpl)
                    };
                    match done {
                        Ok(()) => lane.paused[i] = pause,
                        Err(e) => {
                            debug!(merger = %self.spec.name(), error = %e, "pausing or resuming a region's partition failed; tried again")
                        }
                    }
                    debug!(merger = %self.spec.name(), topic = %lane.topic, partition = lane.partition, region = %self.spec.origins[i].alias, pending, paused = pause, "bounding the events held");
                }
            }
            for ls in &mut lane.streams {
                if ls.creators.len() > 256 {
                    if let Some((seed, _)) = lane.merger.snapshot(ls.stream).and_then(|r| r.seed) {
                        ls.creators = ls.creators.split_off(&seed);
                    }
                }
            }
            if lane.merger.pending() > 0
                && lane.progressed.elapsed() >= WAIT_LOG
                && lane.said_waiting.is_none_or(|t| t.elapsed() >= WAIT_LOG)
            {
                lane.said_waiting = Some(now);
                let behind = lane
                    .streams
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, ls)| lane.merger.watermark(ls.stream))
                    .map(|(i, _)| self.spec.origins[i].alias.as_str())
                    .unwrap_or_default();
                warn!(merger = %self.spec.name(), topic = %lane.topic, partition = lane.partition, pending = lane.merger.pending(), waiting_for = behind, "the merged stream waits: nothing can be released before {behind}'s marks pass it (a cut link to {behind}, or no marks job running for it)");
            }
        }
        Ok(())
    }

    /// Whether a topic left out for a problem (partition counts that differ, a region without
    /// it) could now be merged.
    fn problems_gone(&self) -> bool {
        let mut listed: Vec<BTreeMap<String, i32>> = Vec::new();
        for reader in &self.readers {
            match reader.fetch_metadata(None, self.spec.admin_timeout) {
                Ok(md) => listed.push(
                    md.topics()
                        .iter()
                        .filter(|t| t.error().is_none())
                        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
                        .collect(),
                ),
                Err(_) => return false,
            }
        }
        let here = self
            .spec
            .origins
            .iter()
            .position(|o| o.alias == self.spec.region);
        self.plan
            .candidates
            .iter()
            .filter(|c| !self.plan.topics.iter().any(|(t, _)| *t == c.name))
            .any(|c| {
                listed.iter().all(|l| l.get(&c.name) == Some(&c.partitions))
                    && here.is_none_or(|h| {
                        listed[h]
                            .get(&merged_topic(&c.name))
                            .is_none_or(|m| *m == c.partitions)
                    })
            })
    }

    /// Whether R's topics of the rule are not those planned any more.
    fn topics_changed(&self) -> bool {
        match self.group.fetch_metadata(None, self.spec.admin_timeout) {
            Ok(md) => {
                let listed: Vec<TopicInfo> = md
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| TopicInfo {
                        name: t.name().to_string(),
                        partitions: t.partitions().len() as i32,
                    })
                    .collect();
                self.spec.topics.pick(&listed, Some(&self.spec.rule)) != self.plan.candidates
            }
            Err(e) => {
                debug!(merger = %self.name(), error = %e, "topics not listed; tried again at the next refresh");
                false
            }
        }
    }
}

/// The index in the spec's origins of the region `stream` belongs to.
fn origin_index(lane: &Lane, stream: Stream) -> usize {
    lane.streams
        .iter()
        .position(|ls| ls.stream == stream)
        .unwrap_or_default()
}

/// Where `lane` stands right after releasing an event at `at`.
fn resume_state(lane: &Lane, spec: &MergeSpec, marks_next: &[i64], at: i64) -> ResumeState {
    let streams = lane
        .streams
        .iter()
        .enumerate()
        .map(|(i, ls)| {
            let r = lane.merger.snapshot(ls.stream);
            let marks = r
                .and_then(|r| r.next_mark)
                .and_then(|p| ls.creators.get(&p).copied())
                .unwrap_or_else(|| ls.mark_from.max(marks_next[i]));
            StreamState {
                region: spec.origins[i].alias.clone(),
                from: r.map_or(0, |r| r.from),
                seed: r.and_then(|r| r.seed),
                marks,
            }
        })
        .collect();
    ResumeState { at, streams }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn spec() -> MergeSpec {
        let c = Config::parse(
            "clusters = east, west\n\
             east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
             east->west.enabled = true\nwest->east.enabled = true\n\
             strait.conflicts.rules = log\n\
             strait.conflicts.log.topics = order-events\n\
             strait.conflicts.log.strategy = events\n",
            "mm2.properties",
        )
        .unwrap();
        MergeSpec::from_config(&c, &|_| true).remove(0)
    }

    #[test]
    fn topics_whose_partition_counts_differ_are_named() {
        let s = spec();
        let ti = |name: &str, partitions| TopicInfo {
            name: name.into(),
            partitions,
        };
        let west = s.region.clone();
        assert_eq!(west, "east");
        let others = vec![("west".to_string(), vec![ti("order-events", 4)])];
        let p = partition_problem(&s, "order-events", 3, &others, None).unwrap();
        assert!(
            p.contains("its partition counts differ (3 in east, 4 in west)"),
            "{p}"
        );
        let same = vec![("west".to_string(), vec![ti("order-events", 3)])];
        assert!(partition_problem(&s, "order-events", 3, &same, Some(3)).is_none());
        let p = partition_problem(&s, "order-events", 3, &same, Some(6)).unwrap();
        assert!(p.contains("6 in order-events.merged"), "{p}");
        let p = partition_problem(&s, "order-events", 3, &[("west".into(), vec![])], None).unwrap();
        assert!(p.contains("is not on west's cluster yet"), "{p}");
    }
}
