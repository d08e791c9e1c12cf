//! When to emit offset syncs (MM2-SPEC §4.2, MM2's `OffsetSyncWriter`): pure decisions, no I/O.
//!
//! Fed with every acknowledged (upstream, downstream) offset pair in delivery order; yields the
//! syncs to send now, and on `flush` the delayed ones (KAFKA-15906), so that idle partitions end
//! with an exact last sync.

use std::collections::BTreeMap;

use crate::wire::OffsetSync;

pub(crate) use crate::kafka::groups::TopicPartition;

#[derive(Clone, Copy, Debug)]
struct PartitionState {
    prev_upstream: i64,
    prev_downstream: i64,
    last_sync_downstream: i64,
}

impl Default for PartitionState {
    fn default() -> Self {
        Self {
            prev_upstream: -1,
            prev_downstream: -1,
            last_sync_downstream: -1,
        }
    }
}

/// The writer's state for one flow.
#[derive(Debug)]
pub(crate) struct OffsetSyncWriter {
    offset_lag_max: i64,
    state: BTreeMap<TopicPartition, PartitionState>,
    /// Due now; only the newest per partition, with the order it first became due in (MM2's
    /// `LinkedHashMap`: a newer sync keeps its partition's place, so no partition waits behind
    /// busier ones while few syncs may be in flight).
    pending: BTreeMap<TopicPartition, (u64, OffsetSync)>,
    /// The next place in that order.
    next_place: u64,
    /// Not due; only the newest per partition, promoted on flush.
    delayed: BTreeMap<TopicPartition, OffsetSync>,
}

impl OffsetSyncWriter {
    pub(crate) fn new(offset_lag_max: i64) -> Self {
        Self {
            offset_lag_max,
            state: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_place: 0,
            delayed: BTreeMap::new(),
        }
    }

    /// Make `sync` its partition's pending sync, in the partition's place if it had one.
    fn make_pending(&mut self, tp: TopicPartition, sync: OffsetSync) {
        match self.pending.get_mut(&tp) {
            Some((_, s)) => *s = sync,
            None => {
                self.next_place += 1;
                self.pending.insert(tp, (self.next_place, sync));
            }
        }
    }

    /// Record that upstream offset `u` of `topic`/`partition` was written downstream at `d`.
    /// True when that made a sync due (pending).
    pub(crate) fn record(&mut self, topic: &str, partition: i32, u: i64, d: i64) -> bool {
        let tp = (topic.to_string(), partition);
        let st = self.state.entry(tp.clone()).or_default();
        let due = st.last_sync_downstream == -1
            || d - (st.last_sync_downstream + 1) >= self.offset_lag_max
            || u - st.prev_upstream != 1
            || d < st.prev_downstream;
        let sync = OffsetSync {
            topic: topic.to_string(),
            partition,
            upstream_offset: u,
            downstream_offset: d,
        };
        if due {
            st.last_sync_downstream = d;
        }
        st.prev_upstream = u;
        st.prev_downstream = d;
        if due {
            self.delayed.remove(&tp);
            self.make_pending(tp, sync);
        } else {
            self.delayed.insert(tp, sync);
        }
        due
    }

    /// Record that `n` upstream offsets from `u` were written downstream at the `n` offsets
    /// from `d` (a batch copied whole): the same as `n` calls of [`OffsetSyncWriter::record`],
    /// in as many steps as syncs fall due in the run (every `offset.lag.max` records).
    /// `fire` runs after each sync that falls due, as a caller sends syncs after each record.
    pub(crate) fn record_run(
        &mut self,
        topic: &str,
        partition: i32,
        (u, d, n): (i64, i64, i64),
        mut fire: impl FnMut(&mut Self),
    ) {
        if n <= 0 {
            return;
        }
        if self.record(topic, partition, u, d) {
            fire(self);
        }
        let tp = (topic.to_string(), partition);
        let last = n - 1;
        let mut i = 1;
        while i <= last {
            let st = self.state.get_mut(&tp).expect("recorded above");
            // The first record of the rest that is due: `record` finds the others not due
            // (each follows its predecessor by one on both sides).
            let due = (st.last_sync_downstream + 1 + self.offset_lag_max - d).max(i);
            let j = due.min(last);
            st.prev_upstream = u + j - 1;
            st.prev_downstream = d + j - 1;
            if self.record(topic, partition, u + j, d + j) {
                fire(self);
            }
            i = j + 1;
        }
    }

    /// Move every delayed sync to pending (MM2 does this on each offset flush).
    pub(crate) fn promote_delayed(&mut self) {
        let delayed = std::mem::take(&mut self.delayed);
        for (tp, s) in delayed {
            self.make_pending(tp, s);
        }
    }

    /// Take up to `max` pending syncs to send, those due longest first.
    pub(crate) fn take_pending(&mut self, max: usize) -> Vec<OffsetSync> {
        // Called after every acknowledged record, mostly with no room in flight: no sort then.
        if max == 0 || self.pending.is_empty() {
            return Vec::new();
        }
        let mut due: Vec<(u64, TopicPartition)> = self
            .pending
            .iter()
            .map(|(tp, (place, _))| (*place, tp.clone()))
            .collect();
        due.sort_unstable();
        due.into_iter()
            .take(max)
            .filter_map(|(_, tp)| self.pending.remove(&tp).map(|(_, s)| s))
            .collect()
    }

    /// Whether a sync is due and not yet taken.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forget a partition (it was revoked): a new owner starts its own history, as an MM2 task does.
    pub(crate) fn forget(&mut self, topic: &str, partition: i32) {
        let tp = (topic.to_string(), partition);
        self.state.remove(&tp);
        self.pending.remove(&tp);
        self.delayed.remove(&tp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs_of(syncs: Vec<OffsetSync>) -> Vec<(i64, i64)> {
        syncs
            .into_iter()
            .map(|s| (s.upstream_offset, s.downstream_offset))
            .collect()
    }

    fn pairs(w: &mut OffsetSyncWriter) -> Vec<(i64, i64)> {
        w.take_pending(usize::MAX)
            .into_iter()
            .map(|s| (s.upstream_offset, s.downstream_offset))
            .collect()
    }

    #[test]
    fn first_record_is_synced_then_every_offset_lag_max() {
        let mut w = OffsetSyncWriter::new(100);
        w.record("t", 0, 0, 0);
        assert_eq!(pairs(&mut w), vec![(0, 0)]);
        for i in 1..100 {
            w.record("t", 0, i, i);
        }
        assert!(!w.has_pending(), "d - (0+1) < 100 for d < 101");
        w.record("t", 0, 100, 100);
        assert!(!w.has_pending());
        w.record("t", 0, 101, 101);
        assert_eq!(pairs(&mut w), vec![(101, 101)]);
    }

    #[test]
    fn upstream_gap_and_downstream_rewind_force_a_sync() {
        let mut w = OffsetSyncWriter::new(100);
        w.record("t", 0, 10, 0);
        pairs(&mut w);
        w.record("t", 0, 11, 1);
        assert!(!w.has_pending());
        w.record("t", 0, 15, 2); // compaction gap upstream
        assert_eq!(pairs(&mut w), vec![(15, 2)]);
        w.record("t", 0, 16, 0); // downstream went back (topic recreated)
        assert_eq!(pairs(&mut w), vec![(16, 0)]);
    }

    #[test]
    fn delayed_syncs_are_promoted_on_flush_and_superseded() {
        let mut w = OffsetSyncWriter::new(100);
        w.record("t", 0, 0, 0);
        pairs(&mut w);
        w.record("t", 0, 1, 1);
        w.record("t", 0, 2, 2);
        assert!(!w.has_pending());
        w.promote_delayed();
        assert_eq!(pairs(&mut w), vec![(2, 2)], "only the newest delayed sync");
        w.promote_delayed();
        assert!(!w.has_pending());
    }

    #[test]
    fn partitions_are_independent() {
        let mut w = OffsetSyncWriter::new(10);
        w.record("a", 0, 0, 0);
        w.record("a", 1, 0, 0);
        w.record("b", 0, 5, 7);
        assert_eq!(w.take_pending(2).len(), 2);
        assert_eq!(w.take_pending(10).len(), 1);
    }

    /// With few syncs allowed in flight, the partition due longest goes first, and a newer sync
    /// keeps its partition's place: a busy partition cannot keep a quiet one waiting.
    #[test]
    fn the_sync_due_longest_goes_first() {
        let mut w = OffsetSyncWriter::new(100);
        w.record("z", 0, 0, 0);
        w.record("a", 0, 0, 0);
        w.record("z", 0, 5, 1); // z again (a gap): newer sync, same place
        let first = w.take_pending(1);
        assert_eq!(
            (first[0].topic.as_str(), first[0].upstream_offset),
            ("z", 5)
        );
        w.record("z", 0, 9, 2);
        let next = w.take_pending(1);
        assert_eq!(next[0].topic, "a", "z came due again after a");
    }

    proptest! {
        /// With contiguous offsets, the gap between consecutive syncs never exceeds
        /// offset.lag.max + 1 and, after a flush, the last record is always synced exactly.
        #[test]
        fn syncs_bounded_by_lag_max(lag in 1i64..50, n in 1i64..500, shift in 0i64..1000) {
            let mut w = OffsetSyncWriter::new(lag);
            let mut synced = Vec::new();
            for i in 0..n {
                w.record("t", 0, i + shift, i);
                synced.extend(pairs(&mut w));
            }
            w.promote_delayed();
            synced.extend(pairs(&mut w));
            prop_assert_eq!(synced.first().copied(), Some((shift, 0)));
            prop_assert_eq!(synced.last().copied(), Some((n - 1 + shift, n - 1)));
            for win in synced.windows(2) {
                prop_assert!(win[1].1 - win[0].1 <= lag + 1);
                prop_assert_eq!(win[1].0 - win[0].0, win[1].1 - win[0].1);
            }
        }
    }

    proptest! {
        /// A batch recorded as a run leaves the same syncs, pending and delayed, as its records
        /// recorded one by one (issue 19's passthrough records whole batches).
        #[test]
        fn a_run_is_its_records_one_by_one(
            lag in 0i64..20,
            runs in proptest::collection::vec((0i64..3, 0i64..3, 1i64..60), 1..12),
            promote_at in 0usize..12,
        ) {
            let mut one = OffsetSyncWriter::new(lag);
            let mut run = OffsetSyncWriter::new(lag);
            // What a caller sends each time a sync falls due (one at a time: the tightest).
            let (mut sent_one, mut sent_run) = (Vec::new(), Vec::new());
            let (mut u, mut d) = (0i64, 0i64);
            for (k, (gu, gd, n)) in runs.into_iter().enumerate() {
                u += gu;
                d += gd;
                for i in 0..n {
                    if one.record("t", 0, u + i, d + i) {
                        sent_one.extend(pairs_of(one.take_pending(1)));
                    }
                }
                run.record_run("t", 0, (u, d, n), |w| sent_run.extend(pairs_of(w.take_pending(1))));
                prop_assert_eq!(&sent_one, &sent_run);
                if k == promote_at {
                    one.promote_delayed();
                    run.promote_delayed();
                    prop_assert_eq!(pairs(&mut one), pairs(&mut run));
                }
                u += n;
                d += n;
            }
            one.promote_delayed();
            run.promote_delayed();
            prop_assert_eq!(pairs(&mut one), pairs(&mut run));
        }
    }
}
