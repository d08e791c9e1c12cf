//! Clock skew between regions, measured from heartbeats both ways (issue 16, item 4).
//!
//! **Whose clocks.** Every heartbeat written into region C carries the clock of the process that
//! wrote it: the strait (or MM2) process running the flows into C. That process's clock stands
//! for C's. A process that writes heartbeats into T and reads C's heartbeats topic sees each
//! heartbeat arrive `d = read - written` after its stamp: the delay from C to T plus T's clock
//! minus C's. With the smallest such `d` each way, [`strait_conflicts::skew`] gives T's clock
//! minus C's and a bound on its error (NTP's rule). One process running both directions measures
//! its own clock against itself: 0, within the time a heartbeat takes to be read.
//!
//! **Sharing.** A process sees one direction per region it writes into; the other direction is
//! seen by the process of the other region. So each process writes what it sees, the smallest
//! delay of its last [`WINDOW`] samples per direction, to `strait.clock` (compacted, keyed
//! `C->T`) on every cluster it reaches, every [`PUBLISH_EVERY`], and reads what the others
//! wrote. `strait status` reads the same topic, so it shows the skew without a running process.
//!
//! **Use.** Last-writer-wins compares timestamps of two regions' producers. When two versions'
//! timestamps are closer than the skew's reach, the winner by timestamp may not be the later
//! write: such a conflict is marked uncertain ([`RegionSkew::reach_ms`]).
//!
//! **Detection.** [`Clocks`] puts the instants of conflict detection side by side (see
//! `strait_conflicts::detect`): record timestamps, taken by each region's writers, and the
//! instants strait takes when it copies a record (sent, acknowledged). The rule compares a write's
//! timestamp only with the instant its rival's copy became readable in the writer's own region,
//! taken by the process copying into that region: one region's clocks. So the skew between
//! regions does not enter the rule; what does is how far a region's writers' clocks are from that
//! process's, taken to be at most `strait.conflicts.clock.tolerance.ms`. Progress marks compare a
//! region's timestamps with another's clock, and allow two minutes, far more than any skew.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strait_conflicts::skew::SkewEstimator;
use strait_conflicts::{Rank, Span};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::heartbeat::now_ms;
use crate::kafka::tail::TopicTail;
use crate::kafka::{Admin, ClientError, Endpoint, TopicSpec};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{pause, CancellationToken};
use crate::wire::Heartbeat;

/// The topic on every cluster holding what each process sees of heartbeat delays.
pub(crate) const CLOCK_TOPIC: &str = "strait.clock";
/// Samples kept per direction: two minutes of heartbeats at the default interval.
const WINDOW: usize = 120;
/// How often each heartbeats topic is read: an arrival is seen at most this late.
const READ_EVERY: Duration = Duration::from_millis(200);
/// How long one read of a topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often what this process sees is written to `strait.clock`.
const PUBLISH_EVERY: Duration = Duration::from_secs(5);
/// An observation older than this is not used (its process stopped, or the link is cut).
const FRESH_FOR_MS: i64 = 5 * 60_000;

/// What one process saw of heartbeats going one way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The region whose heartbeats were read (their stamps are its clock).
    pub from: String,
    /// The region whose clock read them (the process writes heartbeats into it).
    pub into: String,
    /// The smallest `read - stamp` of the samples, in ms.
    pub min_delay_ms: i64,
    /// How many samples that minimum is over.
    pub samples: u64,
    /// When this was written (the observer's clock, ms since the epoch).
    pub at_ms: i64,
}

impl Observation {
    /// The record key in `strait.clock`.
    fn key(&self) -> String {
        format!("{}->{}", self.from, self.into)
    }
}

/// The measured skew between two regions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionSkew {
    /// The first region (alphabetical).
    pub a: String,
    /// The second region.
    pub b: String,
    /// `b`'s clock minus `a`'s, in ms.
    pub offset_ms: i64,
    /// The most the true offset can differ from `offset_ms`, in ms.
    pub bound_ms: i64,
    /// When the older of the two observations used was made.
    pub measured_at_ms: i64,
}

impl RegionSkew {
    /// How far apart two timestamps of `a` and `b` may be and still be in either order in
    /// truth: the offset's size plus its bound.
    pub fn reach_ms(&self) -> i64 {
        self.offset_ms.abs().saturating_add(self.bound_ms)
    }

    /// One line for `status`.
    pub fn describe(&self) -> String {
        let (ahead, behind) = if self.offset_ms >= 0 {
            (&self.b, &self.a)
        } else {
            (&self.a, &self.b)
        };
        format!(
            "{ahead} is {} ms ahead of {behind} (± {} ms)",
            self.offset_ms.abs(),
            self.bound_ms
        )
    }
}

/// What the measured skew says of a last-writer-wins verdict between a timestamp of region `a`
/// and one of region `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrderCheck {
    /// False when the two timestamps are within the skew's reach: in truth the write stamped
    /// earlier may have been the later one.
    pub certain: bool,
    /// The skew's reach between the two regions, ms ([`RegionSkew::reach_ms`]).
    pub reach_ms: i64,
}

/// Whether timestamps `ta` (of region `a`) and `tb` (of `b`) are far enough apart for their
/// order to be the order of the writes, by the skew between `a` and `b` in `skews`; None when
/// that skew is not measured (yet).
pub(crate) fn order_check(
    skews: &[RegionSkew],
    (a, ta): (&str, i64),
    (b, tb): (&str, i64),
) -> Option<OrderCheck> {
    let s = skews
        .iter()
        .find(|s| (s.a == a && s.b == b) || (s.a == b && s.b == a))?;
    let reach_ms = s.reach_ms();
    Some(OrderCheck {
        certain: ta.abs_diff(tb) > reach_ms.unsigned_abs(),
        reach_ms,
    })
}

/// The skew of every pair of regions with a fresh observation each way, from `observations` (in
/// any order, repeats allowed: the newest per direction counts).
pub fn skews(observations: &[Observation], now_ms: i64) -> Vec<RegionSkew> {
    let mut newest: BTreeMap<(&str, &str), &Observation> = BTreeMap::new();
    for o in observations {
        if now_ms.saturating_sub(o.at_ms) > FRESH_FOR_MS || o.from == o.into {
            continue;
        }
        let slot = newest.entry((&o.from, &o.into)).or_insert(o);
        if o.at_ms > slot.at_ms {
            *slot = o;
        }
    }
    let mut out = Vec::new();
    for (&(from, into), there) in &newest {
        if from >= into {
            continue;
        }
        let Some(back) = newest.get(&(into, from)) else {
            continue;
        };
        // from = a, into = b: `there` is a -> b, `back` is b -> a.
        let mut e = SkewEstimator::new(1);
        e.a_to_b(0, there.min_delay_ms);
        e.b_to_a(0, back.min_delay_ms);
        if let Some(s) = e.estimate() {
            out.push(RegionSkew {
                a: from.to_string(),
                b: into.to_string(),
                offset_ms: s.offset_ms,
                bound_ms: s.bound_ms,
                measured_at_ms: there.at_ms.min(back.at_ms),
            });
        }
    }
    out
}

/// What this process knows of heartbeat delays: its own samples and what other processes wrote
/// to `strait.clock`. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct ClockBoard {
    inner: Arc<Mutex<Board>>,
}

#[derive(Debug, Default)]
struct Board {
    /// This process's samples per (from, into), newest last.
    local: BTreeMap<(String, String), (VecDeque<i64>, u64)>,
    /// The newest observation read from `strait.clock` per key.
    heard: BTreeMap<String, Observation>,
}

impl ClockBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A heartbeat stamped with `from`'s clock was read `delay_ms` later by `into`'s clock.
    pub(crate) fn sample(&self, from: &str, into: &str, delay_ms: i64) {
        let mut b = self.lock();
        let (q, n) = b
            .local
            .entry((from.to_string(), into.to_string()))
            .or_default();
        if q.len() == WINDOW {
            q.pop_front();
        }
        q.push_back(delay_ms);
        *n += 1;
    }

    /// An observation read from `strait.clock`.
    pub(crate) fn heard(&self, o: Observation) {
        let mut b = self.lock();
        let key = o.key();
        if b.heard.get(&key).is_none_or(|h| h.at_ms < o.at_ms) {
            b.heard.insert(key, o);
        }
    }

    /// What this process sees now, one observation per direction.
    pub(crate) fn own(&self, now_ms: i64) -> Vec<Observation> {
        self.lock()
            .local
            .iter()
            .filter_map(|((from, into), (q, _))| {
                Some(Observation {
                    from: from.clone(),
                    into: into.clone(),
                    min_delay_ms: *q.iter().min()?,
                    samples: q.len() as u64,
                    at_ms: now_ms,
                })
            })
            .collect()
    }

    /// The skews known now, from this process's samples and what others wrote.
    pub fn skews(&self) -> Vec<RegionSkew> {
        let now = now_ms();
        let mut all = self.own(now);
        all.extend(self.lock().heard.values().cloned());
        skews(&all, now)
    }
}

/// One cluster the clock job reads heartbeats from and writes observations to.
#[derive(Clone, Debug)]
pub(crate) struct ClockCluster {
    /// The cluster's alias.
    pub alias: String,
    /// Consumer properties (reads heartbeats and `strait.clock`).
    pub reader: Endpoint,
    /// Producer properties (writes `strait.clock`).
    pub producer: Endpoint,
    /// Admin properties (creates `strait.clock`).
    pub admin: Endpoint,
    /// The heartbeats topic on it.
    pub heartbeats: String,
}

/// The clock job of one process.
#[derive(Clone, Debug)]
pub(crate) struct ClockSpec {
    /// Every cluster the selected flows touch.
    pub clusters: Vec<ClockCluster>,
    /// The regions this process writes heartbeats into: its clock stands for theirs.
    pub writes_into: BTreeSet<String>,
    /// For `strait.clock` if strait creates it.
    pub replication_factor: i32,
    /// How long one request may take.
    pub timeout: Duration,
}

impl ClockSpec {
    /// The job for the flows `selected` picks, when conflict rules are set and this process
    /// writes heartbeats somewhere (else it would measure nothing of use).
    pub(crate) fn from_config(
        config: &Config,
        selected: &dyn Fn(&crate::config::Flow) -> bool,
    ) -> Option<Self> {
        if config.conflicts.rules.is_empty() {
            return None;
        }
        let flows: Vec<_> = config.flows.iter().filter(|f| selected(f)).collect();
        let writes_into: BTreeSet<String> = flows
            .iter()
            .filter(|f| f.intervals.emit_heartbeats.is_some())
            .map(|f| f.target.clone())
            .collect();
        if writes_into.is_empty() {
            return None;
        }
        let mut clusters: BTreeMap<String, ClockCluster> = BTreeMap::new();
        for f in config.enabled_flows().filter(|f| selected(f)) {
            let heartbeats = &f.internal_topics.heartbeats.name;
            clusters.entry(f.source.clone()).or_insert(ClockCluster {
                alias: f.source.clone(),
                reader: f.clients.source_consumer.clone(),
                producer: f.clients.offset_syncs_producer.clone(),
                admin: f.clients.source_admin.clone(),
                heartbeats: heartbeats.clone(),
            });
            clusters.entry(f.target.clone()).or_insert(ClockCluster {
                alias: f.target.clone(),
                reader: f.clients.target_consumer.clone(),
                producer: f.clients.target_producer.clone(),
                admin: f.clients.target_admin.clone(),
                heartbeats: heartbeats.clone(),
            });
        }
        let first = flows.first()?;
        Some(Self {
            clusters: clusters.into_values().collect(),
            writes_into,
            replication_factor: i32::from(first.heartbeats_topic_replication_factor),
            timeout: first.admin_timeout,
        })
    }
}

/// Read heartbeats and `strait.clock` on every cluster, and write this process's observations,
/// until `cancel`. A cluster that does not answer is retried at the next round; it costs the
/// others nothing (each cluster has its own task).
pub(crate) async fn run(spec: ClockSpec, board: ClockBoard, cancel: CancellationToken) {
    info!(
        regions = ?spec.clusters.iter().map(|c| &c.alias).collect::<Vec<_>>(),
        "measuring the clock skew between regions from heartbeats"
    );
    let tasks: Vec<_> = spec
        .clusters
        .iter()
        .cloned()
        .map(|c| {
            tokio::spawn(watch_cluster(
                c,
                spec.clone(),
                board.clone(),
                cancel.clone(),
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn watch_cluster(
    cluster: ClockCluster,
    spec: ClockSpec,
    board: ClockBoard,
    cancel: CancellationToken,
) {
    let mut beats = TopicTail::from_end(&cluster.reader, &cluster.heartbeats);
    let mut observations = TopicTail::new(&cluster.reader, CLOCK_TOPIC);
    let mut writer: Option<rdkafka::producer::FutureProducer> = None;
    let mut next_publish = tokio::time::Instant::now();
    let mut warned = false;
    loop {
        let into: Vec<String> = spec
            .writes_into
            .iter()
            .filter(|t| **t != cluster.alias)
            .cloned()
            .collect();
        if !into.is_empty() {
            let from = cluster.alias.clone();
            let board = board.clone();
            let read = beats
                .fold(READ_TIMEOUT, (), move |_, r| {
                    let Ok(hb) = Heartbeat::decode(r.key, r.value) else {
                        return;
                    };
                    let delay = now_ms() - hb.timestamp;
                    for t in &into {
                        board.sample(&from, t, delay);
                    }
                })
                .await;
            if let Err(e) = read {
                if !warned {
                    warn!(cluster = %cluster.alias, "clock skew: cannot read heartbeats: {e}");
                    warned = true;
                }
            }
        }
        if tokio::time::Instant::now() >= next_publish {
            next_publish += PUBLISH_EVERY;
            // Written first: the write creates the topic, which a read of a missing topic could
            // otherwise wait on.
            match publish(&cluster, &spec, &board, &mut writer).await {
                Ok(_) => {}
                Err(e) => {
                    debug!(cluster = %cluster.alias, "clock skew: cannot write {CLOCK_TOPIC}: {e}")
                }
            }
            if writer.is_some() {
                let b = board.clone();
                let read = observations
                    .fold(READ_TIMEOUT, (), move |_, r| {
                        if let Ok(o) = serde_json::from_slice::<Observation>(r.value) {
                            b.heard(o);
                        }
                    })
                    .await;
                if let Err(e) = read {
                    debug!(cluster = %cluster.alias, "clock skew: cannot read {CLOCK_TOPIC}: {e}");
                }
            }
        }
        if !pause(&cancel, READ_EVERY).await {
            return;
        }
    }
}

/// Write this process's observations to `strait.clock` on `cluster` (creating the topic).
async fn publish(
    cluster: &ClockCluster,
    spec: &ClockSpec,
    board: &ClockBoard,
    writer: &mut Option<rdkafka::producer::FutureProducer>,
) -> Result<usize, ClientError> {
    use rdkafka::producer::FutureRecord;
    if writer.is_none() {
        let admin = Admin::new(&cluster.admin, spec.timeout)?;
        let brokers = admin.broker_count().await?;
        let rf = effective_replication_factor(spec.replication_factor, brokers);
        admin
            .create_topics(
                &[TopicSpec::new(CLOCK_TOPIC, 1, rf).config("cleanup.policy", "compact")],
            )
            .await?;
        *writer =
            Some(
                cluster.producer.producer_config().create().map_err(|e| {
                    ClientError::from_kafka(&cluster.producer, "create a producer", e)
                })?,
            );
    }
    let p = writer.as_ref().expect("just made");
    let own = board.own(now_ms());
    let n = own.len();
    for o in own {
        let (key, value) = (
            o.key(),
            serde_json::to_vec(&o).expect("plain data serializes"),
        );
        p.send(
            FutureRecord::to(CLOCK_TOPIC).key(&key).payload(&value),
            spec.timeout,
        )
        .await
        .map_err(|(e, _)| {
            ClientError::from_kafka(&cluster.producer, "write a clock observation", e)
        })?;
    }
    Ok(n)
}

/// The skews as `strait.clock` on the enabled flows' clusters tells them (for `strait status`;
/// a cluster that does not answer adds nothing).
pub async fn read_skews(config: &Config, timeout: Duration) -> Vec<RegionSkew> {
    let mut endpoints: BTreeMap<&str, &Endpoint> = BTreeMap::new();
    for f in config.enabled_flows() {
        endpoints.insert(&f.source, &f.clients.source_consumer);
        endpoints.insert(&f.target, &f.clients.target_consumer);
    }
    let read = futures::future::join_all(endpoints.values().map(|ep| async move {
        TopicTail::new(ep, CLOCK_TOPIC)
            .collect(timeout, |r| {
                serde_json::from_slice::<Observation>(r.value).ok()
            })
            .await
            .unwrap_or_default()
    }))
    .await;
    let all: Vec<Observation> = read.into_iter().flatten().collect();
    skews(&all, now_ms())
}

/// Moves instants onto strait's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clocks {
    /// How far any clock may be from strait's, in ms.
    tolerance_ms: i64,
    /// How long after its timestamp a record may be appended to its partition at most
    /// (`strait.conflicts.write.delay.max.ms`, a producer's delivery timeout). A record stamped
    /// earlier than that before an instant was appended before it; progress marks rely on it
    /// (see `receipts`).
    write_delay_max_ms: i64,
}

impl Clocks {
    /// Every clock within `tolerance_ms` of strait's, writes appended at most
    /// `write_delay_max_ms` after their timestamps.
    pub(crate) fn new(tolerance_ms: i64, write_delay_max_ms: i64) -> Self {
        Self {
            tolerance_ms: tolerance_ms.max(0),
            write_delay_max_ms: write_delay_max_ms.max(0),
        }
    }

    /// A record timestamp of `region`'s writers, on strait's clock.
    pub(crate) fn stamp(&self, _region: Rank, timestamp_ms: i64) -> Span {
        Span::around(timestamp_ms, self.tolerance_ms)
    }

    /// When a copy became readable: after it was handed to the producer (`sent`), before its
    /// acknowledgement came back (`acked`), both taken by the strait process that copied it.
    pub(crate) fn visible(&self, sent_ms: i64, acked_ms: i64) -> Span {
        Span::between(sent_ms, acked_ms).widen(self.tolerance_ms)
    }

    /// A progress mark of a flow out of `region`: every record appended to a partition before
    /// `appended_before_ms` (strait's clock, the copying process's) was delivered. What it says
    /// of timestamps, on strait's clock: every write stamped before the returned instant was
    /// delivered (a later append of an earlier stamp is at most the write delay late).
    pub(crate) fn progress(&self, _region: Rank, appended_before_ms: i64) -> i64 {
        appended_before_ms
            .saturating_sub(self.write_delay_max_ms)
            .saturating_sub(2 * self.tolerance_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seen(from: &str, into: &str, d: i64, at: i64) -> Observation {
        Observation {
            from: from.into(),
            into: into.into(),
            min_delay_ms: d,
            samples: 10,
            at_ms: at,
        }
    }

    #[test]
    fn timestamps_within_the_skew_reach_leave_the_order_uncertain() {
        let skew = RegionSkew {
            a: "east".into(),
            b: "west".into(),
            offset_ms: -10,
            bound_ms: 40,
            measured_at_ms: 0,
        };
        let skews = [skew];
        let check = |ta, tb| order_check(&skews, ("west", ta), ("east", tb));
        assert_eq!(
            check(1_000, 1_050),
            Some(OrderCheck {
                certain: false,
                reach_ms: 50
            }),
            "50 ms apart, reach 50"
        );
        assert_eq!(check(1_051, 1_000).map(|c| c.certain), Some(true));
        assert_eq!(
            order_check(&skews, ("west", 0), ("south", 900)),
            None,
            "no measure between west and south"
        );
    }

    #[test]
    fn west_ahead_by_300_ms_is_measured_within_the_delays() {
        // 20 ms east->west, 30 ms back; west's clock is 300 ms ahead.
        let obs = [
            seen("east", "west", 20 + 300, 1_000),
            seen("west", "east", 30 - 300, 1_000),
        ];
        let s = skews(&obs, 2_000);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!((s.a.as_str(), s.b.as_str()), ("east", "west"));
        assert!((s.offset_ms - 300).abs() <= s.bound_ms, "{s:?}");
        assert_eq!(s.bound_ms, 25);
        assert_eq!(s.describe(), "west is 295 ms ahead of east (± 25 ms)");
        assert_eq!(s.reach_ms(), 320);
    }

    #[test]
    fn one_way_only_or_stale_says_nothing_and_the_newest_observation_counts() {
        assert!(skews(&[seen("east", "west", 5, 0)], 1).is_empty());
        let stale = [seen("east", "west", 5, 0), seen("west", "east", 5, 0)];
        assert!(skews(&stale, FRESH_FOR_MS + 1).is_empty());
        let obs = [
            seen("east", "west", 500, 10),
            seen("east", "west", 10, 20),
            seen("west", "east", 10, 15),
        ];
        assert_eq!(skews(&obs, 30)[0].offset_ms, 0);
    }

    #[test]
    fn the_board_keeps_a_window_of_samples_and_merges_what_others_wrote() {
        let board = ClockBoard::default();
        board.sample("east", "west", 900);
        for _ in 0..WINDOW {
            board.sample("east", "west", 40);
        }
        let own = board.own(now_ms());
        assert_eq!(own.len(), 1);
        assert_eq!((own[0].min_delay_ms, own[0].samples), (40, WINDOW as u64));
        assert!(board.skews().is_empty(), "one way only");
        board.heard(seen("west", "east", 60, now_ms()));
        let s = board.skews();
        assert_eq!((s[0].offset_ms, s[0].bound_ms), (-10, 50));
    }

    proptest! {
        /// Whatever the processes' clocks and the delays, the true offset is within the bound.
        #[test]
        fn the_truth_is_within_the_bound(
            theta in -60_000i64..60_000,
            there in prop::collection::vec(0i64..5_000, 1..20),
            back in prop::collection::vec(0i64..5_000, 1..20),
        ) {
            let board = ClockBoard::default();
            for d in &there {
                board.sample("a", "b", d + theta);
            }
            for d in &back {
                board.sample("b", "a", d - theta);
            }
            let s = board.skews();
            prop_assert_eq!(s.len(), 1);
            prop_assert!((s[0].offset_ms - theta).abs() <= s[0].bound_ms);
        }
    }
}

#[cfg(test)]
mod clocks_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A write appended after a progress mark's instant, stamped at most the write delay
        /// before its append by a clock within the tolerance, is never before the mark's bound:
        /// so a delivery stamped before it is a copy made again.
        #[test]
        fn progress_never_passes_a_write_still_to_come(
            tolerance in 0i64..2_000,
            mark in 1_000_000i64..2_000_000,
            appended_after in 0i64..10_000,
            max_delay in 0i64..=300_000,
            delay in any::<prop::sample::Index>(),
            skew in -2_000i64..2_000,
        ) {
            let skew = skew.clamp(-tolerance, tolerance);
            let delay = delay.index(max_delay as usize + 1) as i64;
            let clocks = Clocks::new(tolerance, max_delay);
            let appended = mark + appended_after;
            // Its producer's clock reads `skew` off strait's.
            let stamped = appended - delay + skew;
            let on_strait = clocks.stamp(0, stamped);
            prop_assert!(on_strait.lo >= clocks.progress(0, mark));
            prop_assert!(on_strait.lo <= appended - delay && appended - delay <= on_strait.hi);
        }
    }

    #[test]
    fn visibility_is_the_copy_window_widened() {
        let c = Clocks::new(5, 0);
        assert_eq!(c.visible(100, 140), Span { lo: 95, hi: 145 });
        assert_eq!(Clocks::new(-3, 0).stamp(1, 7), Span::exact(7));
    }
}
