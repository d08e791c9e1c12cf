//! Which writes to one key in two regions were concurrent.
//!
//! **The rule.** Region r1 writes w1 at t1 and region r2 writes w2 at t2, to the same topic and
//! key. strait copies w1 into r2, where the copy becomes readable at V(w1→r2), and w2 into r1 at
//! V(w2→r1). The two conflict when neither writer could have read the other's write:
//!
//! ```text
//!     t2 <= V(w1→r2)   and   t1 <= V(w2→r1)
//! ```
//!
//! When t2 > V(w1→r2), w2 was written after w1 was readable in r2: w2 may rest on w1, an ordinary
//! update, not a conflict. The four instants come from different clocks (producers' timestamps,
//! strait's delivery acknowledgements); the caller moves them onto one reference clock as
//! [`Span`]s as wide as its knowledge of the skew, and a pair the bounds cannot settle is a
//! conflict marked uncertain, never dropped.
//!
//! **When.** A pair is judged when both deliveries are known. A write that is not delivered yet
//! (a cut between the regions) has V = +∞: it is judged after the heal, with everything written
//! on the other side meanwhile.
//!
//! **Memory.** A delivery of w (from r, into q) is needed only while a write of q still to come
//! could be concurrent with it, that is one stamped no later than V(w→q). The caller reports
//! [`Detector::progress`] per partition: every write of q to partition p stamped before M has
//! been delivered into r. Past `M > V(w→q)` a delivery of partition p is let go (a key is in the
//! same partition number in every region: the default partitioner, equal partition counts), so
//! what is kept is the writes of the last replication lag (all of a cut's, until the heal), and
//! at most `per_key` deliveries of one key.
//!
//! **Copies made again.** Replication is at-least-once: after a crash a write is copied again,
//! later than its first copy. A delivery stamped before its own direction's progress is such a
//! copy (progress says the first was delivered already): it is counted as late and not judged,
//! since its later V could make an ordinary update look concurrent.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::span::{Span, Tri};
use crate::Rank;

/// A write to a conflict topic in the region that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Write {
    /// The region written in.
    pub origin: Rank,
    /// Where in that region's topic.
    pub partition: i32,
    /// Where in that region's topic.
    pub offset: i64,
    /// Its timestamp on the reference clock.
    pub timestamp: Span,
    /// A digest of its value, to tell two versions apart in a report.
    pub digest: u64,
}

/// A write's copy into another region, and when it became readable there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Delivery {
    /// The write copied.
    pub write: Write,
    /// The region it was copied into.
    pub into: Rank,
    /// When the copy became readable there, on the reference clock.
    pub visible: Span,
}

impl Delivery {
    /// The same write copied into the same region (a copy delivered twice is one delivery).
    fn same(&self, other: &Delivery) -> bool {
        let (a, b) = (&self.write, &other.write);
        a.origin == b.origin
            && a.partition == b.partition
            && a.offset == b.offset
            && self.into == other.into
    }
}

/// How two writes to one key relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relation {
    /// Neither writer could have read the other's write: a conflict. `certain` is false when
    /// the clocks' error bounds leave it open (or contradict themselves), and the conflict may
    /// be an ordinary update.
    Concurrent {
        /// Whether the bounds prove it.
        certain: bool,
    },
    /// One was written after the other was readable in its region.
    After {
        /// The later write.
        later: Side,
    },
}

/// One of a [`Pair`]'s two writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// `a`.
    A,
    /// `b`.
    B,
}

/// How deliveries `a` and `b` relate, if they are the two halves of a pair: writes of two
/// regions, each copied into the other's region. `None` for any other two deliveries.
pub fn relate(a: &Delivery, b: &Delivery) -> Option<Relation> {
    let (wa, wb) = (&a.write, &b.write);
    if wa.origin == wb.origin || a.into != wb.origin || b.into != wa.origin {
        return None;
    }
    // Written before the other's copy was readable where it was written?
    let a_blind = wa.timestamp.at_or_before(b.visible);
    let b_blind = wb.timestamp.at_or_before(a.visible);
    Some(match (a_blind, b_blind) {
        (Tri::Yes, Tri::Yes) => Relation::Concurrent { certain: true },
        // Each after the other: the bounds are wrong somewhere; say so as uncertain.
        (Tri::No, Tri::No) => Relation::Concurrent { certain: false },
        (Tri::No, _) => Relation::After { later: Side::A },
        (_, Tri::No) => Relation::After { later: Side::B },
        _ => Relation::Concurrent { certain: false },
    })
}

/// Two deliveries of one key judged together; `a` is the write of the region first in the
/// region order, so that every region names a pair the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair<K, P = ()> {
    /// The key written.
    pub key: K,
    /// The write of the region first in the order, and its copy.
    pub a: Delivery,
    /// The other write and its copy.
    pub b: Delivery,
    /// How they relate.
    pub relation: Relation,
    /// What the caller gave with `a` and with `b` (see [`Detector::deliver_with`]).
    pub carried: (P, P),
}

/// What the detector let go of before its time, for the caller's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Deliveries stamped before their direction's reported progress: pairs with deliveries
    /// already let go were not judged.
    pub late: u64,
    /// Deliveries pushed out by the per-key limit.
    pub evicted: u64,
}

/// No slot: the end of a key's chain.
const NIL: u32 = u32::MAX;
/// Slots are allocated this many at a time (590 KB): the slab grows by a chunk, never by
/// doubling (a doubling vector holds up to twice what it needs, three times while it moves).
/// Small, since a process has one detector per partition and conflict topic, most nearly empty.
const CHUNK: usize = 1 << 12;

/// A kept delivery, in [`Detector`]'s slab.
#[derive(Debug)]
struct Slot<K, P> {
    /// Its intake number; 0 when the slot is free (its other fields are then stale).
    seq: u64,
    key: K,
    delivery: Delivery,
    carried: P,
    /// The next newer kept delivery of the same key.
    next: u32,
}

/// A key's kept deliveries: a chain through the slab, oldest first.
#[derive(Clone, Copy, Debug)]
struct Chain {
    first: u32,
    last: u32,
    len: u32,
}

/// When a kept delivery can go: (V.hi, seq, slot), earliest on top. An entry whose slot no
/// longer holds that seq (pushed out by the per-key limit) is skipped when it comes up.
type Due = Reverse<(i64, u64, u32)>;

/// Judges pairs of deliveries as they come (see the module docs).
///
/// Held in few large allocations, since a burst or a cut makes it hold millions of deliveries:
/// a slab of slots (reused after release, grown a chunk at a time), a map from key to its chain
/// of slots, and per direction and partition a heap of when each can go. With a 128-bit key and
/// strait's 40-byte payload: a 144-byte slot, 33 bytes a key in the map (at a load between 7/16
/// and 7/8) and 24 in a heap (a vector, up to twice that), about 220-300 bytes a delivery, where
/// a map of vectors, a B-tree and the caller's own index took ~600 and fragmented.
#[derive(Debug)]
pub struct Detector<K, P = ()> {
    /// Chunks of [`CHUNK`] slots; slot `i` is `slots[i / CHUNK][i % CHUNK]`.
    slots: Vec<Vec<Slot<K, P>>>,
    free: Vec<u32>,
    chains: HashMap<K, Chain>,
    /// Per (origin, into, partition) of the kept deliveries, when each can go.
    due: HashMap<(Rank, Rank, i32), BinaryHeap<Due>>,
    /// Reported progress per direction and partition (from, into, partition).
    progress: HashMap<(Rank, Rank, i32), i64>,
    live: usize,
    per_key: usize,
    seq: u64,
    dropped: Dropped,
    /// Deliveries let go since the caller last took them, when it asked to be told.
    released: Option<Vec<(Delivery, P)>>,
}

impl<K: Clone + Eq + Hash, P: Clone> Detector<K, P> {
    /// A detector keeping at most `per_key` deliveries of one key (at least one).
    pub fn new(per_key: usize) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            chains: HashMap::new(),
            due: HashMap::new(),
            progress: HashMap::new(),
            live: 0,
            per_key: per_key.clamp(1, u32::MAX as usize),
            seq: 0,
            dropped: Dropped::default(),
            released: None,
        }
    }

    /// As [`Detector::new`], also keeping each delivery let go (by progress or the per-key
    /// limit) with what was carried with it, until [`Detector::take_released`]: for a caller
    /// that must know what is still kept (to restart from the earliest).
    pub fn telling_releases(per_key: usize) -> Self {
        Self {
            released: Some(Vec::new()),
            ..Self::new(per_key)
        }
    }

    /// The deliveries let go since the last call, with what was carried with each (none unless
    /// made by [`Detector::telling_releases`]).
    pub fn take_released(&mut self) -> Vec<(Delivery, P)> {
        self.released
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Deliveries kept now.
    pub fn kept(&self) -> usize {
        self.live
    }

    /// What was let go before its time so far.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Take in a delivery of `key` and judge it with every kept delivery it pairs with. A
    /// delivery already kept (copied twice) is ignored, and so is one stamped before its
    /// direction's reported progress (a copy made again, counted as late: see the module docs).
    /// `carried` is kept with it, and given back in its pairs and when it is let go.
    pub fn deliver_with(&mut self, key: K, d: Delivery, carried: P) -> Vec<Pair<K, P>> {
        let chain = self.chains.get(&key).copied();
        let mut at = chain.map_or(NIL, |c| c.first);
        let mut pairs = Vec::new();
        while at != NIL {
            let k = self.slot(at);
            if k.delivery.same(&d) {
                return Vec::new();
            }
            let ((a, ca), (b, cb)) = if k.delivery.write.origin < d.write.origin {
                ((k.delivery, &k.carried), (d, &carried))
            } else {
                ((d, &carried), (k.delivery, &k.carried))
            };
            if let Some(relation) = relate(&a, &b) {
                pairs.push(Pair {
                    key: key.clone(),
                    a,
                    b,
                    relation,
                    carried: (ca.clone(), cb.clone()),
                });
            }
            at = k.next;
        }
        let reported = self
            .progress
            .get(&(d.write.origin, d.into, d.write.partition))
            .copied();
        if reported.is_some_and(|m| d.write.timestamp.lo < m) {
            self.dropped.late += 1;
            return Vec::new();
        }
        self.seq += 1;
        let slot = Slot {
            seq: self.seq,
            key: key.clone(),
            delivery: d,
            carried,
            next: NIL,
        };
        let at = match self.free.pop() {
            Some(i) => {
                *self.slot_mut(i) = slot;
                i
            }
            None => {
                if self.slots.last().is_none_or(|c| c.len() == CHUNK) {
                    self.slots.push(Vec::with_capacity(CHUNK));
                }
                let n = self.slots.len() - 1;
                let chunk = &mut self.slots[n];
                chunk.push(slot);
                (n * CHUNK + chunk.len() - 1) as u32
            }
        };
        self.live += 1;
        self.due
            .entry((d.write.origin, d.into, d.write.partition))
            .or_default()
            .push(Reverse((d.visible.hi, self.seq, at)));
        let chain = match chain {
            Some(mut c) => {
                self.slot_mut(c.last).next = at;
                c.last = at;
                c.len += 1;
                c
            }
            None => Chain {
                first: at,
                last: at,
                len: 1,
            },
        };
        self.chains.insert(key, chain);
        if chain.len as usize > self.per_key {
            self.let_go(chain.first);
            self.dropped.evicted += 1;
        }
        pairs
    }

    /// Every write of region `from` to `partition` stamped before `through` has been delivered
    /// into `into` (and given to [`Detector::deliver_with`]): deliveries of `into`'s writes to
    /// that partition into `from` that became readable before then can pair with nothing more,
    /// and are let go.
    pub fn progress(&mut self, from: Rank, into: Rank, partition: i32, through: i64) {
        let m = self
            .progress
            .entry((from, into, partition))
            .or_insert(i64::MIN);
        *m = (*m).max(through);
        let through = *m;
        // Kept deliveries of `into`'s writes to `partition` into `from` with V.hi < through.
        let Some(heap) = self.due.get_mut(&(into, from, partition)) else {
            return;
        };
        let mut done = Vec::new();
        while let Some(&Reverse((hi, seq, at))) = heap.peek() {
            if hi >= through {
                break;
            }
            heap.pop();
            if slot(&self.slots, at).seq == seq {
                done.push(at);
            }
        }
        if heap.is_empty() {
            self.due.remove(&(into, from, partition));
        }
        for at in done {
            self.let_go(at);
        }
    }

    fn slot(&self, at: u32) -> &Slot<K, P> {
        slot(&self.slots, at)
    }

    fn slot_mut(&mut self, at: u32) -> &mut Slot<K, P> {
        slot_mut(&mut self.slots, at)
    }

    /// Unlink the delivery in slot `at` from its key's chain and free the slot.
    fn let_go(&mut self, at: u32) {
        let gone = slot_mut(&mut self.slots, at);
        gone.seq = 0;
        let (key, next) = (gone.key.clone(), gone.next);
        if let Some(r) = self.released.as_mut() {
            r.push((gone.delivery, gone.carried.clone()));
        }
        self.free.push(at);
        self.live -= 1;
        let Some(chain) = self.chains.get_mut(&key) else {
            return;
        };
        if chain.first == at {
            chain.first = next;
        } else {
            let mut prev = chain.first;
            while slot(&self.slots, prev).next != at {
                prev = slot(&self.slots, prev).next;
            }
            slot_mut(&mut self.slots, prev).next = next;
            if chain.last == at {
                chain.last = prev;
            }
        }
        chain.len -= 1;
        if chain.len == 0 {
            self.chains.remove(&key);
        }
    }
}

fn slot<K, P>(slots: &[Vec<Slot<K, P>>], at: u32) -> &Slot<K, P> {
    &slots[at as usize / CHUNK][at as usize % CHUNK]
}

fn slot_mut<K, P>(slots: &mut [Vec<Slot<K, P>>], at: u32) -> &mut Slot<K, P> {
    &mut slots[at as usize / CHUNK][at as usize % CHUNK]
}

impl<K: Clone + Eq + Hash, P: Clone + Default> Detector<K, P> {
    /// [`Detector::deliver_with`], carrying nothing.
    pub fn deliver(&mut self, key: K, d: Delivery) -> Vec<Pair<K, P>> {
        self.deliver_with(key, d, P::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn write(origin: Rank, offset: i64, t: Span) -> Write {
        Write {
            origin,
            partition: 0,
            offset,
            timestamp: t,
            digest: offset as u64,
        }
    }

    fn delivery(origin: Rank, offset: i64, t: Span, into: Rank, v: Span) -> Delivery {
        Delivery {
            write: write(origin, offset, t),
            into,
            visible: v,
        }
    }

    fn delivery_in(
        partition: i32,
        origin: Rank,
        offset: i64,
        t: Span,
        into: Rank,
        v: Span,
    ) -> Delivery {
        let mut d = delivery(origin, offset, t, into, v);
        d.write.partition = partition;
        d
    }

    /// The issue's example: us-east ships order-123 while us-west cancels it, each before the
    /// other's write arrived.
    #[test]
    fn writes_made_before_either_arrived_conflict() {
        let east = delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080));
        let west = delivery(1, 3, Span::exact(1_010), 0, Span::exact(1_095));
        assert_eq!(
            relate(&east, &west),
            Some(Relation::Concurrent { certain: true })
        );
    }

    #[test]
    fn a_write_made_after_the_other_arrived_is_an_update() {
        let east = delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080));
        let west = delivery(1, 3, Span::exact(1_200), 0, Span::exact(1_290));
        assert_eq!(
            relate(&east, &west),
            Some(Relation::After { later: Side::B })
        );
    }

    #[test]
    fn bounds_that_cannot_settle_it_make_an_uncertain_conflict() {
        let east = delivery(0, 7, Span::exact(1_000), 1, Span::around(1_080, 30));
        let west = delivery(1, 3, Span::around(1_090, 30), 0, Span::exact(1_300));
        assert_eq!(
            relate(&east, &west),
            Some(Relation::Concurrent { certain: false })
        );
    }

    #[test]
    fn deliveries_that_are_not_two_halves_do_not_pair() {
        let east = delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080));
        let east2 = delivery(0, 8, Span::exact(1_001), 1, Span::exact(1_081));
        let west_into_third = delivery(1, 3, Span::exact(1_010), 2, Span::exact(1_095));
        assert_eq!(relate(&east, &east2), None);
        assert_eq!(relate(&east, &west_into_third), None);
    }

    #[test]
    fn a_delivery_seen_twice_is_judged_once() {
        let mut d: Detector<_> = Detector::new(16);
        let east = delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080));
        let west = delivery(1, 3, Span::exact(1_010), 0, Span::exact(1_095));
        assert!(d.deliver("k", east).is_empty());
        assert_eq!(d.deliver("k", west).len(), 1);
        assert!(d.deliver("k", west).is_empty());
    }

    #[test]
    fn progress_lets_go_of_what_can_pair_with_nothing_more() {
        let mut d: Detector<_> = Detector::new(16);
        d.deliver(
            "k",
            delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080)),
        );
        d.progress(1, 0, 0, 1_080);
        assert_eq!(
            d.kept(),
            1,
            "a west write stamped 1080 could still conflict"
        );
        d.progress(1, 0, 1, 5_000);
        assert_eq!(d.kept(), 1, "progress of another partition lets nothing go");
        d.progress(1, 0, 0, 1_081);
        assert_eq!(d.kept(), 0);
        // A west write stamped before the reported progress is a copy made again: late, and
        // neither judged nor kept.
        let again = d.deliver(
            "k",
            delivery(1, 1, Span::exact(1_050), 0, Span::exact(1_100)),
        );
        assert!(again.is_empty());
        assert_eq!(d.dropped().late, 1);
        assert_eq!(d.kept(), 0);
    }

    #[test]
    fn releases_are_told_when_asked_for() {
        let mut d: Detector<_> = Detector::telling_releases(1);
        let first = delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080));
        let second = delivery(0, 8, Span::exact(1_001), 1, Span::exact(1_090));
        d.deliver("k", first);
        d.deliver("k", second);
        assert_eq!(
            d.take_released(),
            vec![(first, ())],
            "pushed out by the per-key limit"
        );
        d.progress(1, 0, 0, 2_000);
        assert_eq!(d.take_released(), vec![(second, ())]);
        assert!(d.take_released().is_empty());
        let mut quiet: Detector<_> = Detector::new(1);
        quiet.deliver("k", first);
        quiet.deliver("k", second);
        assert!(quiet.take_released().is_empty());
    }

    /// A write copied again after a crash, its first copy judged and let go, is not judged
    /// with the later V of its second copy.
    #[test]
    fn a_copy_made_again_after_progress_is_not_judged() {
        let mut d: Detector<_> = Detector::new(16);
        // East writes at 1000, readable in west at 1080; west writes at 1200 (an update).
        let east = delivery(0, 7, Span::exact(1_000), 1, Span::exact(1_080));
        let west = delivery(1, 3, Span::exact(1_200), 0, Span::exact(1_290));
        assert!(d.deliver("k", east).is_empty());
        // Every east write stamped before 1100 is in west.
        d.progress(0, 1, 0, 1_100);
        assert_eq!(
            d.deliver("k", west)[0].relation,
            Relation::After { later: Side::B }
        );
        // East's write copied again after a restart, readable at 5000: while its first copy
        // is kept, a copy delivered twice, judged once and not counted.
        let again = delivery(0, 7, Span::exact(1_000), 1, Span::exact(5_000));
        assert!(d.deliver("k", again).is_empty());
        assert_eq!(d.dropped().late, 0);
        // Once the first copy is let go, the second is late: not judged, counted.
        d.progress(1, 0, 0, 1_081);
        assert!(d.deliver("k", again).is_empty());
        assert_eq!(d.dropped().late, 1);
    }

    /// What a delivery costs (see [`Detector`]): a slot with a 128-bit key and a 40-byte payload.
    #[test]
    fn a_slot_is_144_bytes() {
        assert_eq!(size_of::<Slot<u128, [u64; 5]>>(), 144);
        assert_eq!(size_of::<Chain>(), 12);
        assert_eq!(size_of::<Due>(), 24);
    }

    /// Past a chunk of slots, and with slots freed and taken again, every delivery is found
    /// under its key with what it carries.
    #[test]
    fn slots_beyond_one_chunk_keep_their_deliveries() {
        let n = 2 * CHUNK as i64 + 7;
        let mut d: Detector<i64, i64> = Detector::telling_releases(4);
        for round in 0..2 {
            // The second round takes the slots the first let go.
            let t = round * 10_000;
            for k in 0..n {
                let east = delivery(0, k, Span::exact(t + 1_000), 1, Span::exact(t + 1_080));
                assert!(d.deliver_with(k, east, k).is_empty());
            }
            assert_eq!(d.kept(), n as usize);
            for k in 0..n {
                let west = delivery(1, k, Span::exact(t + 1_010), 0, Span::exact(t + 1_095));
                let pairs = d.deliver_with(k, west, -k);
                assert_eq!(pairs.len(), 1, "key {k}, round {round}");
                assert_eq!(pairs[0].carried, (k, -k));
                assert_eq!(pairs[0].a.write.offset, k);
            }
            d.progress(1, 0, 0, t + 2_000);
            d.progress(0, 1, 0, t + 2_000);
            assert_eq!(d.kept(), 0);
            assert_eq!(d.take_released().len(), 2 * n as usize);
        }
        // 2n deliveries at once: 4 chunks and a few slots, the second round in the same.
        assert_eq!(d.slots.len(), 5, "{} chunks", d.slots.len());
    }

    #[test]
    fn the_per_key_limit_is_counted() {
        let mut d: Detector<_> = Detector::new(2);
        for o in 0..3 {
            d.deliver("k", delivery(0, o, Span::exact(o), 1, Span::exact(o + 50)));
        }
        assert_eq!(d.kept(), 2);
        assert_eq!(d.dropped().evicted, 1);
    }

    /// Writes of three regions to a few keys (key k in partition k % 2, in every region), each
    /// copied into the others, with true times, and the order the detector hears of the copies
    /// in.
    fn scenario() -> impl Strategy<Value = (Vec<(u8, Delivery)>, Vec<usize>)> {
        let one = (0u8..3, 0u16..3, 0i64..2_000, 0i64..40, 1i64..400, 0i64..40);
        prop::collection::vec(one, 1..40).prop_flat_map(|ws| {
            let mut ds = Vec::new();
            for (i, (key, origin, t, terr, lag, verr)) in ws.into_iter().enumerate() {
                for into in 0..3u16 {
                    if into != origin {
                        let v = t + lag + i64::from(into) * 7;
                        ds.push((
                            key,
                            delivery_in(
                                i32::from(key % 2),
                                origin,
                                i as i64,
                                Span::around(t, terr),
                                into,
                                Span::around(v, verr),
                            ),
                        ));
                    }
                }
            }
            let n = ds.len();
            (Just(ds), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    }

    proptest! {
        /// In any arrival order, with progress reported as soon as it is true, the detector
        /// finds exactly the concurrent pairs that judging every pair finds, each once.
        #[test]
        fn finds_what_judging_every_pair_finds((ds, order) in scenario()) {
            let mut oracle = BTreeSet::new();
            for (i, (ki, a)) in ds.iter().enumerate() {
                for (kj, b) in &ds[i + 1..] {
                    if ki != kj { continue }
                    let (a, b) = if a.write.origin < b.write.origin { (a, b) } else { (b, a) };
                    if let Some(Relation::Concurrent { certain }) = relate(a, b) {
                        oracle.insert((*ki, a.write.offset, b.write.offset, a.into, b.into, certain));
                    }
                }
            }
            let mut det: Detector<_> = Detector::telling_releases(usize::MAX);
            let mut found = BTreeSet::new();
            let mut released = 0;
            for (n, &i) in order.iter().enumerate() {
                let (k, d) = ds[i];
                for p in det.deliver(k, d) {
                    if let Relation::Concurrent { certain } = p.relation {
                        let new = found.insert((p.key, p.a.write.offset, p.b.write.offset, p.a.into, p.b.into, certain));
                        prop_assert!(new, "a pair was judged twice");
                    }
                }
                // Progress as far as is true: for each direction and partition, the earliest
                // stamp still to come.
                for from in 0..3u16 {
                    for into in 0..3u16 {
                        if from == into { continue }
                        for partition in 0..2 {
                            let next = order[n + 1..]
                                .iter()
                                .map(|&j| ds[j].1)
                                .filter(|d| d.write.origin == from && d.into == into && d.write.partition == partition)
                                .map(|d| d.write.timestamp.lo)
                                .min()
                                .unwrap_or(i64::MAX);
                            det.progress(from, into, partition, next);
                        }
                    }
                }
            }
            released += det.take_released().len();
            prop_assert_eq!(found, oracle);
            prop_assert_eq!(det.dropped(), Dropped::default());
            // Every delivery is kept or was told as let go, once.
            prop_assert_eq!(det.kept() + released, ds.len());
        }

        /// With a small per-key limit (slots pushed out and reused), what is carried with each
        /// delivery comes back with it, in its pairs and when it is let go, once; and every
        /// delivery is kept, let go or refused as late.
        #[test]
        fn what_is_carried_comes_back_with_its_delivery((ds, order) in scenario(), per_key in 1usize..4) {
            let mut det: Detector<u8, usize> = Detector::telling_releases(per_key);
            let mut released = BTreeSet::new();
            for (n, &i) in order.iter().enumerate() {
                let (k, d) = ds[i];
                for p in det.deliver_with(k, d, i) {
                    prop_assert_eq!(ds[p.carried.0].1, p.a);
                    prop_assert_eq!(ds[p.carried.1].1, p.b);
                    prop_assert_eq!(ds[p.carried.0].0, k);
                    prop_assert_eq!(ds[p.carried.1].0, k);
                }
                if n % 3 == 2 {
                    det.progress(0, 1, 0, 1_000);
                    det.progress(1, 0, 1, 1_500);
                }
                for (d, c) in det.take_released() {
                    prop_assert_eq!(ds[c].1, d);
                    prop_assert!(released.insert(c), "let go twice");
                }
            }
            let dropped = det.dropped();
            prop_assert_eq!(det.kept() + released.len() + dropped.late as usize, ds.len());
        }
    }
}
