//! The passthrough's coordinator: which broker fetches each source partition and which takes
//! its batches on the target, and what happens when either moves or fails.
//!
//! One task per source leader fetches ([`super::fetch`]), one per target leader produces
//! ([`super::produce`]); this task sits between them. Every batch passes through it on its way,
//! so it alone knows where each partition stands: the position fetched up to, the batches the
//! target has not acknowledged, and where they are. A fetcher or producer that meets a moved
//! leader or a broken connection hands its partitions back here; they are placed again once
//! the cluster's metadata says where, after a backoff. Nothing is dropped on the way: a batch
//! leaves only acknowledged (or with its partition given up or stopped).
//!
//! The flow's bookkeeping (progress, offset index, offset syncs, statistics) stays the record
//! path's: the engine reports to a [`Ledger`], which the flow implements with the same state the
//! record path's delivery reports update.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{debug, info};

use super::fetch::{self, FetchCmd, FetchConfig};
use super::produce::{self, PartProducer, SinkCmd};
use crate::backoff::Backoff;
use crate::kafka::raw::{error_name, Conn, Error as RawError, ErrorKind};
use crate::kafka::Endpoint;
use crate::replicate::health::ErrorClass;
use crate::replicate::progress::{Owner, Tp};
use crate::stop::CancellationToken;

/// A remote partition on the target: the remote topic's name and the partition.
pub(crate) type RTp = (Arc<str>, i32);

/// A batch on its way from a source partition to its remote partition.
#[derive(Debug)]
pub(crate) struct Item {
    /// The source partition.
    pub(crate) tp: Tp,
    /// The ownership it was fetched under (see `progress`).
    pub(crate) owner: Owner,
    /// The engine's incarnation of the partition it was fetched under: a batch of an earlier
    /// one (the partition was given up, or started again) counts for nothing.
    pub(crate) gen: u64,
    /// Its first record's source offset.
    pub(crate) first: i64,
    /// The source position after it.
    pub(crate) next: i64,
    /// Records in it.
    pub(crate) count: i32,
    /// The source offset of each record, when the batch was rewritten (`rebatch`); `None`:
    /// `first..first + count`, contiguous.
    pub(crate) offsets: Option<Vec<i64>>,
    /// The batch as fetched or rewritten; stamped by the producer when sent.
    pub(crate) bytes: Bytes,
    /// Its latest record timestamp (ms).
    pub(crate) max_timestamp: i64,
    /// Its base sequence once sent under the partition's producer id (kept on a resend, so
    /// that the broker recognises a batch it already has).
    pub(crate) seq: Option<i32>,
}

/// What the engine tells the flow. Calls come from the engine's task: they must not block.
pub(crate) trait Ledger: Send + Sync + 'static {
    /// Batch `first..next` of `tp` is on its way: the ownership it carries. `log_start` is the
    /// source's log start offset as the fetch answer gave it (a gap below it is retention's).
    fn sent(&self, tp: &Tp, first: i64, next: i64, log_start: i64) -> Owner;
    /// The target acknowledged `item` at `base_offset` (`None`: the broker said it already had
    /// the batch, without saying where).
    fn acked(&self, item: &Item, base_offset: Option<i64>);
    /// The source's end of `tp`, from a fetch answer.
    fn source_end(&self, tp: &Tp, end: i64);
    /// `tp` stops at `offset` for good: the target refuses the batch there.
    fn stopped(&self, tp: &Tp, offset: i64, reason: String);
    /// A problem met on the source or the target, for health and the log (retried).
    fn trouble(&self, class: ErrorClass, on_target: bool, message: String);
}

/// What the fetchers and producers tell the coordinator.
pub(crate) enum Ev {
    /// Batches of `tp` fetched under `gen`, the position after them, the source's ends.
    Fetched {
        tp: Tp,
        gen: u64,
        batches: Vec<Fetched>,
        next: i64,
        end: i64,
        log_start: i64,
    },
    /// `tp` (under `gen`) is no longer fetched by that fetcher: its leader moved or the
    /// connection failed. It resumes at `position` (`None`: from `auto.offset.reset`).
    Unfetched {
        tp: Tp,
        gen: u64,
        position: Option<i64>,
        reason: String,
    },
    /// The target acknowledged `item`.
    Acked {
        item: Item,
        base_offset: Option<i64>,
    },
    /// A producer handed back `rtp`: its unacknowledged batches in order, and its producer
    /// state unless that must be new.
    Returned {
        rtp: RTp,
        state: Option<PartProducer>,
        items: Vec<Item>,
        why: Why,
    },
    /// The target refuses `item` for good.
    Refused { item: Item, reason: String },
    /// A problem worth saying (retried).
    Trouble {
        class: ErrorClass,
        on_target: bool,
        message: String,
    },
}

/// One fetched batch, not yet owned.
pub(crate) struct Fetched {
    pub(crate) first: i64,
    pub(crate) next: i64,
    pub(crate) count: i32,
    pub(crate) offsets: Option<Vec<i64>>,
    pub(crate) bytes: Bytes,
    pub(crate) max_timestamp: i64,
}

/// Why a producer handed a partition back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The leader moved (or the topic is unknown there): read the metadata again.
    Moved(String),
    /// The broker lost or refused the partition's producer state: a new producer id.
    Producer(String),
    /// A transient failure: try again after a backoff.
    Retry(String),
    /// Batches that reached the producer after it handed the partition back.
    Bounced,
    /// The target refused a batch for good: the partition stops.
    Refused,
}

/// What the copy loop asks of the engine.
enum Cmd {
    /// Copy `tp` from `position` (`None`: `auto.offset.reset`) to `remote`.
    Start {
        tp: Tp,
        remote: Arc<str>,
        position: Option<i64>,
    },
    /// Stop copying `tps`; reply once nothing of theirs is in flight, or at `deadline`.
    Stop {
        tps: Vec<Tp>,
        deadline: Instant,
        done: std::sync::mpsc::Sender<usize>,
    },
}

/// The engine's handle, for the copy loop. Dropping it ends the engine.
pub(crate) struct Engine {
    cmds: UnboundedSender<Cmd>,
    /// Batches fetched and not yet acknowledged.
    pub(crate) batches: Arc<AtomicI64>,
    cancel: CancellationToken,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// How the engine reaches both clusters.
pub(crate) struct EngineSpec {
    pub(crate) flow: String,
    pub(crate) source: Endpoint,
    pub(crate) target: Endpoint,
    pub(crate) fetch: FetchConfig,
    /// The produce request's timeout (`request.timeout.ms`).
    pub(crate) produce_timeout: Duration,
}

impl Engine {
    /// Start the engine on `runtime`. It runs until dropped: a flow's stop is a
    /// [`Engine::stop_partitions`] of everything first.
    pub(crate) fn start(
        spec: EngineSpec,
        ledger: Arc<dyn Ledger>,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (cmds, cmd_rx) = unbounded_channel();
        let outstanding = Arc::new(AtomicI64::new(0));
        let batches = Arc::new(AtomicI64::new(0));
        let cancel = CancellationToken::new();
        let (ev_tx, ev_rx) = unbounded_channel();
        let coordinator = Coordinator {
            spec: Arc::new(spec),
            ledger,
            parts: HashMap::new(),
            fetchers: HashMap::new(),
            sinks: HashMap::new(),
            ev_tx,
            outstanding,
            batches: batches.clone(),
            cancel: cancel.clone(),
            source_ctl: None,
            target_ctl: None,
            waiters: Vec::new(),
            next_gen: 0,
            place_at: Instant::now(),
            idempotence: None,
        };
        runtime.spawn(coordinator.run(cmd_rx, ev_rx));
        Engine {
            cmds,
            batches,
            cancel,
        }
    }

    /// Copy `tp` to `remote` from `position`.
    pub(crate) fn start_partition(&self, tp: Tp, remote: Arc<str>, position: Option<i64>) {
        let _ = self.cmds.send(Cmd::Start {
            tp,
            remote,
            position,
        });
    }

    /// Stop copying `tps` and wait (blocking) until the target acknowledged what was fetched of
    /// them, at most `timeout`: `Err(n)` with the batches still unacknowledged then (dropped:
    /// the next owner copies them again).
    pub(crate) fn stop_partitions(&self, tps: Vec<Tp>, timeout: Duration) -> Result<(), usize> {
        let (done, wait) = std::sync::mpsc::channel();
        let deadline = Instant::now() + timeout;
        if self
            .cmds
            .send(Cmd::Stop {
                tps,
                deadline,
                done,
            })
            .is_err()
        {
            return Ok(());
        }
        match wait.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(0) => Ok(()),
            Ok(n) => Err(n),
            Err(_) => Err(self.batches.load(Ordering::Relaxed).max(0) as usize),
        }
    }
}

/// Where a partition's batches are.
struct Part {
    remote: RTp,
    /// This incarnation of the partition: events and batches of an older one are stale.
    gen: u64,
    /// The fetcher (source node) that has it.
    fetcher: Option<i32>,
    /// Where fetching resumes when it is placed again (`None`: `auto.offset.reset`).
    position: Option<i64>,
    /// The producer (target node) that has it.
    sink: Option<i32>,
    /// Its producer state while no producer has it (`None`: a new id is needed).
    state: Option<PartProducer>,
    /// Batches waiting for a producer, in source order.
    held: VecDeque<Item>,
    /// Batches fetched and not acknowledged (with the producer or held).
    in_flight: usize,
    /// Bytes of those, shared with its fetcher (which pauses the partition above a limit).
    bytes: Arc<AtomicI64>,
    /// Nothing more is fetched: stopped for good at a refused batch, or being given up.
    stopped: bool,
    /// Not placed before this (a backoff after a failure).
    not_before: Instant,
    /// The waits between its placements after failures; new again once it moves.
    retry: Backoff,
}

struct Waiter {
    tps: Vec<Tp>,
    deadline: Instant,
    done: std::sync::mpsc::Sender<usize>,
}

struct Coordinator {
    spec: Arc<EngineSpec>,
    ledger: Arc<dyn Ledger>,
    parts: HashMap<Tp, Part>,
    fetchers: HashMap<i32, UnboundedSender<FetchCmd>>,
    sinks: HashMap<i32, UnboundedSender<SinkCmd>>,
    ev_tx: UnboundedSender<Ev>,
    outstanding: Arc<AtomicI64>,
    batches: Arc<AtomicI64>,
    cancel: CancellationToken,
    source_ctl: Option<Conn>,
    target_ctl: Option<Conn>,
    waiters: Vec<Waiter>,
    next_gen: u64,
    /// When unplaced partitions are next looked at.
    place_at: Instant,
    /// Whether the target gives idempotent producer ids (`None`: not asked yet).
    idempotence: Option<bool>,
}

/// How often unplaced partitions are looked at, at the least.
const PLACE_EVERY: Duration = Duration::from_millis(200);

fn fresh_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
}

impl Coordinator {
    async fn run(mut self, mut cmds: UnboundedReceiver<Cmd>, mut evs: UnboundedReceiver<Ev>) {
        loop {
            let wait = self.place_at.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                c = cmds.recv() => match c {
                    Some(c) => self.command(c),
                    None => break,
                },
                Some(e) = evs.recv() => self.event(e),
                _ = tokio::time::sleep(wait) => {
                    self.place_at = Instant::now() + PLACE_EVERY;
                    self.place().await;
                }
            }
            self.check_waiters(false);
        }
        self.check_waiters(true);
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Start {
                tp,
                remote,
                position,
            } => {
                if let Some(old) = self.parts.remove(&tp) {
                    self.retire(&tp, old);
                }
                self.next_gen += 1;
                self.parts.insert(
                    tp.clone(),
                    Part {
                        remote: (remote, tp.1),
                        gen: self.next_gen,
                        fetcher: None,
                        position,
                        sink: None,
                        state: None,
                        held: VecDeque::new(),
                        in_flight: 0,
                        bytes: Arc::new(AtomicI64::new(0)),
                        stopped: false,
                        not_before: Instant::now(),
                        retry: fresh_backoff(),
                    },
                );
                self.place_at = Instant::now();
            }
            Cmd::Stop {
                tps,
                deadline,
                done,
            } => {
                for tp in &tps {
                    self.unfetch(tp);
                    let Some(p) = self.parts.get_mut(tp) else {
                        continue;
                    };
                    p.stopped = true;
                    // Never sent: the next owner copies them.
                    let held: Vec<Item> = p.held.drain(..).collect();
                    for h in &held {
                        self.settled(h);
                    }
                }
                self.waiters.push(Waiter {
                    tps,
                    deadline,
                    done,
                });
            }
        }
    }

    /// Take `tp` from its fetcher, if one has it.
    fn unfetch(&mut self, tp: &Tp) {
        if let Some(p) = self.parts.get_mut(tp) {
            if let Some(node) = p.fetcher.take() {
                if let Some(f) = self.fetchers.get(&node) {
                    let _ = f.send(FetchCmd::Remove(tp.clone()));
                }
            }
        }
    }

    /// `part` of `tp` is over (given up, or started again): its fetcher stops, its producer
    /// drops what it has not sent, and its batches stop counting. They are not acknowledged,
    /// so whoever owns `tp` next copies their records again.
    fn retire(&self, tp: &Tp, part: Part) {
        if let Some(node) = part.fetcher {
            if let Some(f) = self.fetchers.get(&node) {
                let _ = f.send(FetchCmd::Remove(tp.clone()));
            }
        }
        if let Some(node) = part.sink {
            if let Some(s) = self.sinks.get(&node) {
                let _ = s.send(SinkCmd::Forget(part.remote.clone()));
            }
        }
        self.outstanding
            .fetch_sub(part.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.batches
            .fetch_sub(part.in_flight as i64, Ordering::Relaxed);
        if part.in_flight > 0 {
            debug!(flow = %self.spec.flow, partition = %format!("{}-{}", tp.0, tp.1), batches = part.in_flight, "unacknowledged batches of a partition given up dropped");
        }
    }

    /// `item` no longer waits (acknowledged, refused or dropped): it stops counting, if it is
    /// of its partition's current incarnation.
    fn settled(&mut self, item: &Item) {
        let Some(p) = self.parts.get_mut(&item.tp) else {
            return;
        };
        if p.gen != item.gen {
            return;
        }
        let size = item.bytes.len() as i64;
        p.in_flight = p.in_flight.saturating_sub(1);
        p.bytes.fetch_sub(size, Ordering::Relaxed);
        self.outstanding.fetch_sub(size, Ordering::Relaxed);
        self.batches.fetch_sub(1, Ordering::Relaxed);
    }

    /// Answer the stops whose partitions have nothing in flight (or whose time is up, or all
    /// when `all`).
    fn check_waiters(&mut self, all: bool) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            let left: usize = w
                .tps
                .iter()
                .filter_map(|tp| self.parts.get(tp))
                .filter(|p| p.stopped)
                .map(|p| p.in_flight)
                .sum();
            if left == 0 || all || now >= w.deadline {
                let w = self.waiters.swap_remove(i);
                for tp in &w.tps {
                    // Unless started again meanwhile.
                    if self.parts.get(tp).is_some_and(|p| p.stopped) {
                        let p = self.parts.remove(tp).expect("just found");
                        self.retire(tp, p);
                    }
                }
                let _ = w.done.send(left);
            } else {
                i += 1;
            }
        }
    }

    fn event(&mut self, e: Ev) {
        match e {
            Ev::Fetched {
                tp,
                gen,
                batches,
                next,
                end,
                log_start,
            } => {
                let Some(p) = self.parts.get_mut(&tp) else {
                    return;
                };
                if p.gen != gen || p.stopped {
                    return;
                }
                self.ledger.source_end(&tp, end);
                p.position = Some(next);
                p.retry = fresh_backoff();
                for b in batches {
                    let owner = self.ledger.sent(&tp, b.first, b.next, log_start);
                    let size = b.bytes.len() as i64;
                    p.bytes.fetch_add(size, Ordering::Relaxed);
                    self.outstanding.fetch_add(size, Ordering::Relaxed);
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    p.in_flight += 1;
                    let item = Item {
                        tp: tp.clone(),
                        owner,
                        gen,
                        first: b.first,
                        next: b.next,
                        count: b.count,
                        offsets: b.offsets,
                        bytes: b.bytes,
                        max_timestamp: b.max_timestamp,
                        seq: None,
                    };
                    let item = match p.sink.and_then(|n| self.sinks.get(&n)) {
                        Some(s) => match s.send(SinkCmd::Item(p.remote.clone(), item)) {
                            Ok(()) => continue,
                            // That producer ended: it hands back what it had.
                            Err(e) => match e.0 {
                                SinkCmd::Item(_, item) => item,
                                _ => unreachable!("sent an item"),
                            },
                        },
                        None => item,
                    };
                    p.held.push_back(item);
                }
                if !p.held.is_empty() && p.sink.is_none() {
                    self.place_at = self.place_at.min(p.not_before);
                }
            }
            Ev::Unfetched {
                tp,
                gen,
                position,
                reason,
            } => {
                let Some(p) = self.parts.get_mut(&tp) else {
                    return;
                };
                if p.gen != gen {
                    return;
                }
                debug!(flow = %self.spec.flow, partition = %format!("{}-{}", tp.0, tp.1), "fetching again elsewhere: {reason}");
                p.fetcher = None;
                p.position = position;
                p.not_before = Instant::now() + p.retry.next_wait();
                self.place_at = self.place_at.min(p.not_before);
            }
            Ev::Acked { item, base_offset } => {
                self.settled(&item);
                if let Some(p) = self.parts.get_mut(&item.tp) {
                    p.retry = fresh_backoff();
                }
                self.ledger.acked(&item, base_offset);
            }
            Ev::Returned {
                rtp,
                state,
                items,
                why,
            } => self.returned(rtp, state, items, why),
            Ev::Refused { item, reason } => {
                self.settled(&item);
                let tp = item.tp.clone();
                let current = self.parts.get(&tp).is_some_and(|p| p.gen == item.gen);
                if !current {
                    return;
                }
                self.unfetch(&tp);
                let p = self.parts.get_mut(&tp).expect("current");
                if !p.stopped {
                    p.stopped = true;
                    let held: Vec<Item> = p.held.drain(..).collect();
                    for h in &held {
                        self.settled(h);
                    }
                    self.ledger.stopped(&tp, item.first, reason);
                }
            }
            Ev::Trouble {
                class,
                on_target,
                message,
            } => self.ledger.trouble(class, on_target, message),
        }
    }

    /// A producer handed back `rtp` (or batches that reached it after it had).
    fn returned(&mut self, rtp: RTp, state: Option<PartProducer>, items: Vec<Item>, why: Why) {
        let tp: Tp = match items.first() {
            Some(i) => i.tp.clone(),
            None => match self.parts.iter().find(|(_, p)| p.remote == rtp) {
                Some((tp, _)) => tp.clone(),
                None => return,
            },
        };
        let Some(p) = self.parts.get_mut(&tp) else {
            return;
        };
        let (current, stale): (Vec<Item>, Vec<Item>) =
            items.into_iter().partition(|i| i.gen == p.gen);
        drop(stale);
        if why != Why::Bounced {
            p.sink = None;
            p.state = match why {
                Why::Producer(_) => None,
                _ => state,
            };
            if let Why::Moved(r) | Why::Retry(r) | Why::Producer(r) = &why {
                debug!(flow = %self.spec.flow, partition = %format!("{}-{}", rtp.0, rtp.1), "handed back by its producer: {r}");
                p.not_before = Instant::now() + p.retry.next_wait();
            }
        }
        if p.stopped || why == Why::Refused {
            // Stopped for good, or being given up: these are not copied here any more.
            for i in &current {
                self.settled(i);
            }
            return;
        }
        for mut item in current {
            if matches!(why, Why::Producer(_)) {
                item.seq = None;
            }
            // In source order: batches bounced after the hand-back may arrive after newer
            // ones were held.
            let at = p
                .held
                .iter()
                .position(|h| h.first > item.first)
                .unwrap_or(p.held.len());
            p.held.insert(at, item);
        }
        if p.sink.is_none() {
            self.place_at = self.place_at.min(p.not_before);
        }
    }

    /// Place what has no fetcher or no producer: read where the leaders are, start what is
    /// missing, hand the partitions over.
    async fn place(&mut self) {
        let now = Instant::now();
        let unfetched: Vec<Tp> = self
            .parts
            .iter()
            .filter(|(_, p)| p.fetcher.is_none() && !p.stopped && p.not_before <= now)
            .map(|(tp, _)| tp.clone())
            .collect();
        let unsunk: Vec<Tp> = self
            .parts
            .iter()
            .filter(|(_, p)| {
                // Only once everything unacknowledged is back: batches still on their way
                // back from the last producer must not be overtaken.
                p.sink.is_none()
                    && !p.held.is_empty()
                    && p.held.len() == p.in_flight
                    && p.not_before <= now
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        if !unfetched.is_empty() {
            if let Err((class, e)) = self.place_fetches(&unfetched).await {
                self.ledger.trouble(class, false, e);
                self.source_ctl = None;
                self.delay(&unfetched);
            }
        }
        if !unsunk.is_empty() {
            if let Err((class, e)) = self.place_sinks(&unsunk).await {
                self.ledger.trouble(class, true, e);
                self.target_ctl = None;
                self.delay(&unsunk);
            }
        }
    }

    /// Place `tps` again only after a backoff (a cluster's metadata or a producer id could not
    /// be had).
    fn delay(&mut self, tps: &[Tp]) {
        for tp in tps {
            if let Some(p) = self.parts.get_mut(tp) {
                p.not_before = Instant::now() + p.retry.next_wait();
            }
        }
    }

    async fn place_fetches(&mut self, tps: &[Tp]) -> Result<(), (ErrorClass, String)> {
        let on_target = false;
        let conn = connected(&mut self.source_ctl, &self.spec.source, false).await?;
        let topics: Vec<&str> = tps.iter().map(|tp| &*tp.0).collect();
        let meta = metadata(conn, &topics).await.map_err(|e| {
            let class = class_of(&e, on_target);
            (class, e.to_string())
        })?;
        for tp in tps {
            let Some((node, addr)) = meta.leader(&tp.0, tp.1) else {
                debug!(flow = %self.spec.flow, partition = %format!("{}-{}", tp.0, tp.1), "no leader known on the source yet");
                self.delay(std::slice::from_ref(tp));
                continue;
            };
            let sender = self.fetchers.entry(node).or_insert_with(|| {
                let (tx, rx) = unbounded_channel();
                tokio::spawn(fetch::run(
                    fetch::Fetcher {
                        flow: self.spec.flow.clone(),
                        ep: self.spec.source.clone(),
                        addr: addr.clone(),
                        config: self.spec.fetch.clone(),
                        events: self.ev_tx.clone(),
                        outstanding: self.outstanding.clone(),
                        cancel: self.cancel.child_token(),
                    },
                    rx,
                ));
                tx
            });
            let p = self.parts.get_mut(tp).expect("listed above");
            let add = FetchCmd::Add {
                tp: tp.clone(),
                gen: p.gen,
                position: p.position,
                bytes: p.bytes.clone(),
            };
            if sender.send(add).is_err() {
                // That fetcher ended (its connection failed): a new one next time.
                self.fetchers.remove(&node);
                continue;
            }
            p.fetcher = Some(node);
        }
        Ok(())
    }

    async fn place_sinks(&mut self, tps: &[Tp]) -> Result<(), (ErrorClass, String)> {
        let on_target = true;
        let target = self.spec.target.clone();
        let conn = connected(&mut self.target_ctl, &target, true).await?;
        let topics: Vec<&str> = tps
            .iter()
            .filter_map(|tp| self.parts.get(tp))
            .map(|p| &*p.remote.0)
            .collect();
        let meta = metadata(conn, &topics).await.map_err(|e| {
            let class = class_of(&e, on_target);
            (class, e.to_string())
        })?;
        for tp in tps {
            let remote = self.parts[tp].remote.clone();
            let Some((node, addr)) = meta.leader(&remote.0, remote.1) else {
                debug!(flow = %self.spec.flow, partition = %format!("{}-{}", remote.0, remote.1), "no leader known on the target yet");
                self.delay(std::slice::from_ref(tp));
                continue;
            };
            if self.parts[tp].state.is_none() {
                let state = self.producer_id().await?;
                self.parts.get_mut(tp).expect("listed").state = Some(state);
            }
            let sender = self.sinks.entry(node).or_insert_with(|| {
                let (tx, rx) = unbounded_channel();
                tokio::spawn(produce::run(
                    produce::Sink {
                        ep: target.clone(),
                        addr: addr.clone(),
                        timeout: self.spec.produce_timeout,
                        events: self.ev_tx.clone(),
                        cancel: self.cancel.child_token(),
                    },
                    rx,
                ));
                tx
            });
            let p = self.parts.get_mut(tp).expect("listed");
            let add = SinkCmd::Add {
                rtp: remote.clone(),
                gen: p.gen,
                state: p.state.take().expect("set above"),
                items: std::mem::take(&mut p.held),
            };
            if let Err(e) = sender.send(add) {
                let SinkCmd::Add { state, items, .. } = e.0 else {
                    unreachable!()
                };
                p.state = Some(state);
                p.held = items;
                self.sinks.remove(&node);
                continue;
            }
            p.sink = Some(node);
        }
        Ok(())
    }

    /// A new idempotent producer id for one partition; without idempotence on the target
    /// (refused or not offered), none: one batch in flight at a time keeps the order then.
    async fn producer_id(&mut self) -> Result<PartProducer, (ErrorClass, String)> {
        if self.idempotence == Some(false) {
            return Ok(PartProducer::NONE);
        }
        let target = self.spec.target.clone();
        let conn = connected(&mut self.target_ctl, &target, true).await?;
        let Some(v) = conn.version(ApiKey::InitProducerId, 0..=5) else {
            self.no_idempotence("the target does not offer InitProducerId");
            return Ok(PartProducer::NONE);
        };
        // Not transactional: a null id (the crate's default is an empty one, which Kafka
        // refuses and Tansu takes for a transactional id).
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let resp = conn
            .call(&req, v)
            .await
            .map_err(|e| (class_of(&e, true), e.to_string()))?;
        match resp.error_code {
            0 => {
                self.idempotence = Some(true);
                Ok(PartProducer::new(resp.producer_id.0, resp.producer_epoch))
            }
            // No IDEMPOTENT_WRITE on the cluster (before Kafka 3.0 it is its own ACL).
            31 | 35 => {
                self.no_idempotence(&format!(
                    "the target refused a producer id ({})",
                    error_name(resp.error_code)
                ));
                Ok(PartProducer::NONE)
            }
            c => Err((
                class_of_code(c, true),
                format!(
                    "cluster {} refused a producer id: {}",
                    target.alias,
                    error_name(c)
                ),
            )),
        }
    }

    fn no_idempotence(&mut self, why: &str) {
        if self.idempotence.is_none() {
            info!(flow = %self.spec.flow, "{why}: batches are produced without idempotence, one at a time per partition");
        }
        self.idempotence = Some(false);
    }
}

/// A control connection to `ep`, opened when there is none.
async fn connected<'a>(
    conn: &'a mut Option<Conn>,
    ep: &Endpoint,
    on_target: bool,
) -> Result<&'a mut Conn, (ErrorClass, String)> {
    if conn.as_ref().is_some_and(|c| !c.is_usable()) {
        *conn = None;
    }
    if conn.is_none() {
        let c = Conn::bootstrap(ep)
            .await
            .map_err(|e| (class_of(&e, on_target), e.to_string()))?;
        *conn = Some(c);
    }
    Ok(conn.as_mut().expect("just set"))
}

/// Where the partitions of some topics lead: node and address.
pub(crate) struct Leaders {
    brokers: HashMap<i32, String>,
    leaders: HashMap<(String, i32), i32>,
}

impl Leaders {
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<(i32, String)> {
        let node = *self.leaders.get(&(topic.to_string(), partition))?;
        Some((node, self.brokers.get(&node)?.clone()))
    }
}

/// The leaders of `topics`' partitions, from one Metadata request.
pub(crate) async fn metadata(conn: &mut Conn, topics: &[&str]) -> Result<Leaders, RawError> {
    let v = conn.version(ApiKey::Metadata, 1..=12).unwrap_or(1);
    let mut names: Vec<&str> = topics.to_vec();
    names.sort_unstable();
    names.dedup();
    let req = MetadataRequest::default().with_topics(Some(
        names
            .iter()
            .map(|t| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
            })
            .collect(),
    ));
    let resp: MetadataResponse = conn.call(&req, v).await?;
    let brokers = resp
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let mut leaders = HashMap::new();
    for t in &resp.topics {
        let Some(name) = &t.name else { continue };
        if t.error_code != 0 {
            debug!(topic = name.0.as_str(), error = %error_name(t.error_code), "topic not in the metadata");
            continue;
        }
        for p in &t.partitions {
            if p.leader_id.0 >= 0 {
                leaders.insert((name.0.to_string(), p.partition_index), p.leader_id.0);
            }
        }
    }
    Ok(Leaders { brokers, leaders })
}

/// The class of a connection's failure, for the flow's health.
pub(crate) fn class_of(e: &RawError, on_target: bool) -> ErrorClass {
    match &e.kind {
        ErrorKind::Auth(_) | ErrorKind::MechanismRefused { .. } => ErrorClass::Authentication,
        ErrorKind::Tls(_) => ErrorClass::Tls,
        ErrorKind::Connect(_)
        | ErrorKind::Timeout { .. }
        | ErrorKind::Closed { .. }
        | ErrorKind::Broken(_) => ErrorClass::Unreachable,
        _ if on_target => ErrorClass::Target,
        _ => ErrorClass::Source,
    }
}

/// The class of a Kafka error code, for the flow's health.
pub(crate) fn class_of_code(code: i16, on_target: bool) -> ErrorClass {
    match code {
        // TOPIC_, GROUP_, CLUSTER_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
        29..=31 | 53 => ErrorClass::Authorization,
        _ if on_target => ErrorClass::Target,
        _ => ErrorClass::Source,
    }
}

/// The error codes after which a partition's leader must be looked up again.
pub(crate) fn means_moved(code: i16) -> bool {
    // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
    // KAFKA_STORAGE_ERROR, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFSET_NOT_AVAILABLE,
    // NOT_CONTROLLER.
    matches!(code, 3 | 5 | 6 | 56 | 74 | 75 | 78 | 41)
}
