//! MM2's `OffsetSyncStore` (MM2-SPEC §4.3; KAFKA-14666, KAFKA-15202, KAFKA-15905): the offset
//! syncs read from `mm2-offset-syncs.<cluster>.internal`, kept per upstream partition in 64
//! exponentially spaced slots, and the translation of an upstream group offset to a downstream one.
//!
//! Pure state, no I/O: the caller feeds syncs in log order with [`OffsetSyncStore::apply`], calls
//! [`OffsetSyncStore::finish_initial_load`] once the initial read-to-end is done, and asks
//! [`OffsetSyncStore::translate`]. The slot update is a line-by-line port of MM2's
//! `updateSyncArray` so that strait translates exactly as MM2 does for the same syncs topic.

use std::collections::HashMap;

#[cfg(test)]
use crate::wire::OffsetSync;

/// Slots per upstream partition: one per bit of an offset, as in MM2 (`Long.SIZE`).
pub(crate) const SYNCS_PER_PARTITION: usize = 64;

/// One offset sync as held by the store.
///
/// MM2 compares syncs by *instance* (`==` on references), not by value: two syncs with equal
/// offsets read at different times are different entries. `id` (the order in which the store read
/// the sync, unique per store) gives strait the same identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StoredSync {
    /// Read order; unique within one store, so equal ids mean "the same sync".
    pub id: u64,
    /// Upstream (source) offset of the replicated record.
    pub upstream: i64,
    /// Downstream (target) offset the record was written at.
    pub downstream: i64,
}

/// The slots of one upstream partition: `[0]` is the newest sync, `[63]` the oldest usable one.
pub(crate) type SyncSlots = [StoredSync; SYNCS_PER_PARTITION];

/// Result of translating an upstream group offset (MM2's `translateDownstream`).
///
/// Kept richer than MM2's `OptionalLong` so that callers such as `strait translate` can say why
/// nothing was translated and which sync a translation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Translation {
    /// The initial read of the syncs topic has not finished; MM2 returns no result so that it
    /// never emits a checkpoint from a half-read (possibly stale) history.
    NotLoaded,
    /// No sync was ever read for this upstream partition: no result.
    NoSyncs,
    /// The group is older than every retained sync (`sync.upstream > g`); MM2 returns `-1`,
    /// "cannot translate", and emits no checkpoint.
    TooOld {
        /// The sync that was chosen (the oldest retained one, `syncs[63]`).
        sync: StoredSync,
    },
    /// Translated downstream offset: `sync.downstream` when `g == sync.upstream`, otherwise
    /// `sync.downstream + 1` (the "+1 rule": never guess past a record known to be replicated).
    Offset {
        /// The downstream offset a consumer on the target should resume from.
        offset: i64,
        /// The sync the translation is based on.
        sync: StoredSync,
    },
}

impl Translation {
    /// The translated offset, only for [`Translation::Offset`].
    #[cfg(test)]
    pub(crate) fn offset(&self) -> Option<i64> {
        match self {
            Translation::Offset { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// The value MM2's `translateDownstream` returns: empty before loading or without syncs,
    /// `-1` when too old, else the offset. Useful to compare with MM2 directly.
    pub(crate) fn mm2_value(&self) -> Option<i64> {
        match self {
            Translation::NotLoaded | Translation::NoSyncs => None,
            Translation::TooOld { .. } => Some(-1),
            Translation::Offset { offset, .. } => Some(*offset),
        }
    }
}

/// MM2's offset sync store for one flow (one syncs topic).
#[derive(Clone, Debug)]
pub(crate) struct OffsetSyncStore {
    /// Clear on every sync until the initial load is done (KAFKA-15905 "pessimistic" loading,
    /// used when the checkpoints topic could not be read, so checkpoints stay monotonic).
    must_read_to_end: bool,
    read_to_end: bool,
    next_id: u64,
    /// Upstream topic → partition → slots. Nested so that lookups by `&str` need no allocation;
    /// boxed because a slot array is 1.5 KiB.
    partitions: HashMap<String, HashMap<i32, Box<SyncSlots>>>,
}

impl OffsetSyncStore {
    /// An empty store that has not finished its initial load.
    ///
    /// `must_read_to_end` is MM2's `initializationMustReadToEnd` (`!checkpointLoadOk`): while the
    /// initial load runs, each sync replaces all earlier ones of its partition, so that no sync
    /// older than one possibly used before a restart is ever used again.
    pub(crate) fn new(must_read_to_end: bool) -> Self {
        Self {
            must_read_to_end,
            read_to_end: false,
            next_id: 0,
            partitions: HashMap::new(),
        }
    }

    /// Apply one sync read from the syncs topic. Syncs must be applied in log order.
    pub(crate) fn apply(&mut self, topic: &str, partition: i32, upstream: i64, downstream: i64) {
        let sync = StoredSync {
            id: self.next_id,
            upstream,
            downstream,
        };
        self.next_id = self.next_id.wrapping_add(1);
        let clear = !self.read_to_end && self.must_read_to_end;
        // The first sync for a partition fills all slots (this satisfies B and C trivially).
        let first = || Box::new([sync; SYNCS_PER_PARTITION]);
        if let Some(by_partition) = self.partitions.get_mut(topic) {
            match by_partition.get_mut(&partition) {
                Some(slots) => update_slots(slots, sync, clear),
                None => {
                    by_partition.insert(partition, first());
                }
            }
        } else {
            self.partitions
                .insert(topic.to_string(), HashMap::from([(partition, first())]));
        }
    }

    /// Apply a decoded record from the syncs topic (see [`OffsetSyncStore::apply`]; readers of
    /// the topic apply the fields as they decode them, without an [`OffsetSync`]).
    #[cfg(test)]
    pub(crate) fn apply_record(&mut self, record: &OffsetSync) {
        self.apply(
            &record.topic,
            record.partition,
            record.upstream_offset,
            record.downstream_offset,
        );
    }

    /// Mark the initial read-to-end of the syncs topic as done; translation starts now.
    pub(crate) fn finish_initial_load(&mut self) {
        self.read_to_end = true;
    }

    /// Whether the initial load has finished (translation is available).
    #[cfg(test)]
    pub(crate) fn is_loaded(&self) -> bool {
        self.read_to_end
    }

    /// The slots of one upstream partition, `None` if no sync was read for it; for inspection
    /// (for example to show the retained history).
    pub(crate) fn slots(&self, topic: &str, partition: i32) -> Option<&SyncSlots> {
        self.partitions
            .get(topic)
            .and_then(|p| p.get(&partition))
            .map(|b| &**b)
    }

    /// The distinct retained syncs of one upstream partition, newest first.
    #[cfg(test)]
    pub(crate) fn distinct_syncs(&self, topic: &str, partition: i32) -> Vec<StoredSync> {
        let mut out: Vec<StoredSync> = Vec::new();
        if let Some(slots) = self.slots(topic, partition) {
            for s in slots.iter() {
                if out.last().map(|l| l.id) != Some(s.id) {
                    out.push(*s);
                }
            }
        }
        out
    }

    /// Upstream partitions with at least one sync, in no particular order.
    #[cfg(test)]
    pub(crate) fn partitions(&self) -> impl Iterator<Item = (&str, i32)> + '_ {
        self.partitions
            .iter()
            .flat_map(|(t, ps)| ps.keys().map(move |p| (t.as_str(), *p)))
    }

    /// Translate upstream group offset `g` of `topic`/`partition` as MM2's `translateDownstream`.
    ///
    /// For a fixed store state the result is monotonic in `g`; over time it is not (the caller
    /// enforces monotonic checkpoints, MM2-SPEC §4.4).
    pub(crate) fn translate(&self, topic: &str, partition: i32, g: i64) -> Translation {
        if !self.read_to_end {
            return Translation::NotLoaded;
        }
        let Some(slots) = self.slots(topic, partition) else {
            return Translation::NoSyncs;
        };
        let sync = lookup(slots, g);
        if sync.upstream > g {
            Translation::TooOld { sync }
        } else if sync.upstream == g {
            Translation::Offset {
                offset: sync.downstream,
                sync,
            }
        } else {
            // Saturating: only differs from MM2 (which wraps) at i64::MAX, which no topic reaches.
            Translation::Offset {
                offset: sync.downstream.saturating_add(1),
                sync,
            }
        }
    }
}

/// MM2's `lookupLatestSync`: the newest sync with `upstream <= g`, else the oldest (`[63]`).
fn lookup(slots: &SyncSlots, g: i64) -> StoredSync {
    slots
        .iter()
        .find(|s| s.upstream <= g)
        .copied()
        .unwrap_or(slots[SYNCS_PER_PARTITION - 1])
}

/// MM2's `updateSyncArray`, including its choice of which old syncs to keep.
fn update_slots(slots: &mut SyncSlots, sync: StoredSync, clear: bool) {
    // Pessimistic initial load, or an upstream rewind (e.g. the topic was recreated): every
    // earlier sync is invalid.
    if clear || sync.upstream < slots[0].upstream {
        *slots = [sync; SYNCS_PER_PARTITION];
        return;
    }
    let original = *slots;
    let mut replacement = sync;
    // Index into `original` of the next candidate to promote into `replacement`.
    let mut replacement_index = 0usize;
    // Invariant A: the newest sync is always at [0].
    slots[0] = sync;
    for current in 1..SYNCS_PER_PARTITION {
        let previous = current - 1;
        // Try to keep an old value rather than the new sync, so more distinct syncs survive.
        // `replacement_index <= previous` here (it only advances while below `current`), so
        // the index is in bounds.
        loop {
            let old = original[replacement_index];
            // Recent enough for this slot (B against the new previous slot)?
            let is_recent = invariant_b(&slots[previous], &old, previous, current);
            // Far enough from the previous slot (C)? If not, it never fits later either.
            let separated_from_previous = invariant_c(&slots[previous], &old, previous);
            // Far enough from the next slot, which is still the old one (C)?
            let next = current + 1;
            let separated_from_next =
                next >= SYNCS_PER_PARTITION || invariant_c(&old, &slots[next], current);
            let next_replacement = replacement_index + 1;
            let duplicate =
                next_replacement < SYNCS_PER_PARTITION && old.id == original[next_replacement].id;
            let promote = is_recent && separated_from_previous && separated_from_next;
            if promote {
                replacement = old;
            }
            let skip = duplicate || !separated_from_previous;
            if promote || skip {
                replacement_index += 1;
            }
            if !(replacement_index < current && skip) {
                break;
            }
        }
        if invariant_b(&slots[previous], &slots[current], previous, current) {
            // B holds here, so it holds for every later slot too.
            break;
        }
        slots[current] = replacement;
    }
}

/// MM2's `invariantB` with Java's wrapping `long` arithmetic (an overflowed bound counts as met).
fn invariant_b(i_sync: &StoredSync, j_sync: &StoredSync, i: usize, j: usize) -> bool {
    let bound = j_sync.upstream.wrapping_add(pow2(j)).wrapping_sub(pow2(i));
    i_sync.id == j_sync.id || bound < 0 || i_sync.upstream <= bound
}

/// MM2's `invariantC` with Java's wrapping `long` arithmetic (an overflowed bound counts as unmet).
fn invariant_c(i_sync: &StoredSync, j_sync: &StoredSync, i: usize) -> bool {
    let bound = j_sync.upstream.wrapping_add(pow2(i.saturating_sub(2)));
    i_sync.id == j_sync.id || (bound >= 0 && i_sync.upstream >= bound)
}

/// Java's `1L << n` for `n < 64` (`1 << 63` is `i64::MIN`, as in Java).
fn pow2(n: usize) -> i64 {
    1i64.wrapping_shl(n as u32)
}

/// A broken store invariant, as found by [`check_invariants`].
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("offset sync store invariant {invariant} broken at slots {i}, {j}: {detail}")]
pub(crate) struct InvariantViolation {
    /// "A", "B", "C" or "D" (MM2-SPEC §4.3).
    pub invariant: &'static str,
    /// First slot involved.
    pub i: usize,
    /// Second slot involved.
    pub j: usize,
    /// What was found.
    pub detail: String,
}

/// Check invariants A–D of MM2-SPEC §4.3 over all pairs of slots, with exact (non-wrapping)
/// arithmetic; meaningful for non-negative upstream offsets below 2^62, i.e. any real topic.
///
/// `latest` is the id of the last sync applied to this partition (A); `oldest_usable` the id of
/// the first sync applied since the partition was last cleared (D). Used by tests and debugging.
///
/// One exception to C is accepted because MM2's own update produces it: a new sync with the same
/// upstream offset as the previous newest one sits in slot 0 next to it (C needs a gap of 1).
#[cfg(test)]
pub(crate) fn check_invariants(
    slots: &SyncSlots,
    latest: u64,
    oldest_usable: u64,
) -> Result<(), InvariantViolation> {
    let violation = |invariant, i, j, detail: String| InvariantViolation {
        invariant,
        i,
        j,
        detail,
    };
    if slots[0].id != latest {
        return Err(violation(
            "A",
            0,
            0,
            format!("slot 0 holds sync {}, latest is {latest}", slots[0].id),
        ));
    }
    let last = SYNCS_PER_PARTITION - 1;
    if slots[last].id != oldest_usable {
        return Err(violation(
            "D",
            last,
            last,
            format!(
                "slot {last} holds sync {}, oldest usable is {oldest_usable}",
                slots[last].id
            ),
        ));
    }
    for i in 0..SYNCS_PER_PARTITION {
        for j in (i + 1)..SYNCS_PER_PARTITION {
            let (si, sj) = (slots[i], slots[j]);
            if si.id == sj.id {
                continue;
            }
            let (ui, uj) = (i128::from(si.upstream), i128::from(sj.upstream));
            let b_bound = uj + (1i128 << j) - (1i128 << i);
            if ui > b_bound {
                return Err(violation("B", i, j, format!("{ui} > {uj} + 2^{j} - 2^{i}")));
            }
            let k = i.saturating_sub(2);
            // MM2 itself keeps a new head whose upstream offset equals the previous head's
            // (same record replicated again, e.g. after a task restart): slot 0 then repeats
            // slot 1's upstream offset until the next sync. Lookup still picks the newer one.
            let repeated_head = i == 0 && ui == uj;
            if ui < uj + (1i128 << k) && !repeated_head {
                return Err(violation("C", i, j, format!("{ui} < {uj} + 2^{k}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn loaded() -> OffsetSyncStore {
        let mut s = OffsetSyncStore::new(false);
        s.finish_initial_load();
        s
    }

    fn slots(s: &OffsetSyncStore) -> SyncSlots {
        *s.slots("t", 0).expect("syncs for t-0")
    }

    #[test]
    fn not_loaded_and_no_syncs_give_no_result() {
        let mut s = OffsetSyncStore::new(false);
        s.apply("t", 0, 100, 90);
        assert_eq!(s.translate("t", 0, 150), Translation::NotLoaded);
        assert_eq!(s.translate("t", 0, 150).mm2_value(), None);
        s.finish_initial_load();
        assert!(s.is_loaded());
        assert_eq!(s.translate("t", 1, 150), Translation::NoSyncs);
        assert_eq!(s.translate("u", 0, 150), Translation::NoSyncs);
        assert_eq!(s.translate("t", 0, 150).offset(), Some(91));
    }

    #[test]
    fn plus_one_rule() {
        let mut s = loaded();
        s.apply("t", 0, 1000, 990);
        // Exactly at the sync: exact.
        assert_eq!(s.translate("t", 0, 1000).offset(), Some(990));
        // Past the sync (spec §4.6 example): sync.down + 1, never further.
        assert_eq!(s.translate("t", 0, 1001).offset(), Some(991));
        assert_eq!(s.translate("t", 0, 1050).offset(), Some(991));
        assert_eq!(s.translate("t", 0, i64::MAX).offset(), Some(991));
        // Before every sync: MM2's -1.
        let t = s.translate("t", 0, 999);
        assert!(matches!(t, Translation::TooOld { sync } if sync.upstream == 1000));
        assert_eq!(t.mm2_value(), Some(-1));
        assert_eq!(t.offset(), None);
    }

    #[test]
    fn first_sync_fills_all_slots() {
        let mut s = loaded();
        s.apply("t", 0, 5, 7);
        let sl = slots(&s);
        assert!(sl.iter().all(|x| *x == sl[0]));
        assert_eq!((sl[0].upstream, sl[0].downstream), (5, 7));
        check_invariants(&sl, sl[0].id, sl[0].id).expect("invariants");
    }

    #[test]
    fn rewind_clears_everything() {
        let mut s = loaded();
        for u in (0..1000).step_by(10) {
            s.apply("t", 0, u, u + 5);
        }
        assert!(s.distinct_syncs("t", 0).len() > 1);
        s.apply("t", 0, 3, 2000);
        let sl = slots(&s);
        assert!(sl.iter().all(|x| *x == sl[0]));
        assert_eq!(s.distinct_syncs("t", 0).len(), 1);
        // Offsets of the old generation cannot be translated any more.
        assert_eq!(s.translate("t", 0, 2).mm2_value(), Some(-1));
        assert_eq!(s.translate("t", 0, 500).offset(), Some(2001));
        // Other partitions are untouched.
        s.apply("t", 1, 10, 10);
        assert_eq!(s.translate("t", 0, 3).offset(), Some(2000));
    }

    #[test]
    fn equal_upstream_is_not_a_rewind() {
        let mut s = loaded();
        s.apply("t", 0, 0, 0);
        s.apply("t", 0, 100, 100);
        s.apply("t", 0, 100, 100);
        let sl = slots(&s);
        assert_eq!(sl[63].upstream, 0, "the first sync survives");
    }

    #[test]
    fn must_read_to_end_keeps_only_last_sync_of_initial_load() {
        let mut s = OffsetSyncStore::new(true);
        for u in 0..100 {
            s.apply("t", 0, u * 10, u * 10);
        }
        assert_eq!(s.distinct_syncs("t", 0).len(), 1);
        s.finish_initial_load();
        assert_eq!(s.translate("t", 0, 500).mm2_value(), Some(-1));
        assert_eq!(s.translate("t", 0, 990).offset(), Some(990));
        // After the load, history accumulates again.
        s.apply("t", 0, 1000, 1000);
        assert_eq!(s.distinct_syncs("t", 0).len(), 2);

        // Without must_read_to_end the whole history is kept during the load.
        let mut s = OffsetSyncStore::new(false);
        for u in 0..100 {
            s.apply("t", 0, u * 10, u * 10);
        }
        s.finish_initial_load();
        assert!(s.distinct_syncs("t", 0).len() > 1);
        assert_eq!(s.translate("t", 0, 0).offset(), Some(0));
    }

    #[test]
    fn lookup_returns_last_slot_when_none_qualifies() {
        let mut s = loaded();
        s.apply("t", 0, 100, 100);
        s.apply("t", 0, 200, 200);
        s.apply("t", 0, 300, 300);
        let sl = slots(&s);
        assert_eq!(lookup(&sl, 50), sl[63]);
        assert_eq!(sl[63].upstream, 100);
        assert_eq!(lookup(&sl, 250).upstream, 200);
        assert_eq!(lookup(&sl, 300).upstream, 300);
        assert_eq!(
            s.translate("t", 0, 50),
            Translation::TooOld { sync: sl[63] }
        );
    }

    #[test]
    fn history_is_exponentially_spaced() {
        // One sync per offset for a long stretch: the retained syncs thin out with age.
        let mut s = loaded();
        for u in 0..100_000 {
            s.apply("t", 0, u, u);
        }
        let d = s.distinct_syncs("t", 0);
        assert!(d.len() > 10 && d.len() <= 64, "{} distinct", d.len());
        assert_eq!(d.last().map(|x| x.upstream), Some(0));
        // A group lagging by L translates to within a small multiple of L.
        for lag in [1i64, 10, 100, 1000, 10_000] {
            let g = 99_999 - lag;
            let t = s.translate("t", 0, g).offset().expect("translated");
            assert!(t <= g + 1 && g - t <= 4 * lag, "lag {lag}: {t}");
        }
    }

    /// MM2's `OffsetSyncStoreTest.testOffsetTranslation`.
    #[test]
    fn mm2_offset_translation() {
        let mut s = loaded();
        s.apply("t", 2, 100, 200);
        assert_eq!(s.translate("t", 2, 150).mm2_value(), Some(201));
        s.apply("t", 2, 150, 251);
        assert_eq!(s.translate("t", 2, 150).mm2_value(), Some(251));
        assert_eq!(s.translate("t", 2, 5).mm2_value(), Some(-1));
        // Downstream offsets reset.
        s.apply("t", 2, 200, 10);
        assert_eq!(s.translate("t", 2, 200).mm2_value(), Some(10));
        // Upstream offsets reset.
        s.apply("t", 2, 20, 20);
        assert_eq!(s.translate("t", 2, 20).mm2_value(), Some(20));
    }

    /// MM2's `OffsetSyncStoreTest.testPastOffsetTranslation` (a pessimistic initial load), with
    /// its exact expected syncs: a port that kept different syncs would fail here.
    #[test]
    fn mm2_past_offset_translation() {
        let mut s = OffsetSyncStore::new(true);
        let sparse = |s: &OffsetSyncStore, sync: i64, previous: i64| {
            let before = if previous == -1 { -1 } else { previous + 1 };
            assert_eq!(
                s.translate("t", 2, sync - 1).mm2_value(),
                Some(before),
                "{sync}"
            );
            assert_eq!(s.translate("t", 2, sync).mm2_value(), Some(sync));
            assert_eq!(s.translate("t", 2, sync + 1).mm2_value(), Some(sync + 1));
            assert_eq!(s.translate("t", 2, sync + 2).mm2_value(), Some(sync + 1));
        };
        let mut offset = 0;
        while offset <= 1000 {
            s.apply("t", 2, offset, offset);
            offset += 10;
        }
        s.finish_initial_load();
        sparse(&s, 1000, -1);
        while offset <= 10_000 {
            s.apply("t", 2, offset, offset);
            let sl = s.slots("t", 2).expect("slots");
            check_invariants(sl, sl[0].id, sl[63].id).expect("invariants");
            offset += 10;
        }
        sparse(&s, 1000, -1);
        for (sync, previous) in [
            (4840, 1000),
            (6760, 4840),
            (8680, 6760),
            (9160, 8680),
            (9640, 9160),
            (9880, 9640),
            (9940, 9880),
            (9970, 9940),
            (9990, 9970),
            (10_000, 9990),
        ] {
            sparse(&s, sync, previous);
        }
        s.apply("t", 2, 1500, 11_000);
        assert_eq!(s.translate("t", 2, 1499).mm2_value(), Some(-1));
        assert_eq!(s.translate("t", 2, 1500).mm2_value(), Some(11_000));
        assert_eq!(s.translate("t", 2, 2000).mm2_value(), Some(11_001));
    }

    /// MM2's `OffsetSyncStoreTest.testKeepMostDistinctSyncs` (fewer iterations): each new sync
    /// expires at most one more old sync than it adds.
    #[test]
    fn mm2_keep_most_distinct_syncs() {
        let iterations: i64 = 20_000;
        let max_step = i64::MAX / iterations;
        let mut step: i64 = 1;
        while step < max_step {
            let mut s = loaded();
            let mut last_count = 1i64;
            let mut offset: i64 = 0;
            while offset <= iterations {
                s.apply("t", 2, offset, offset);
                let sl = s.slots("t", 2).expect("slots");
                assert_eq!(sl[0].upstream, offset);
                assert_eq!(sl[63].upstream, 0);
                let count = s.distinct_syncs("t", 2).len() as i64;
                assert!(count - last_count >= -1, "step {step} offset {offset}");
                last_count = count;
                offset = match offset.checked_add(step) {
                    Some(o) => o,
                    None => break,
                };
            }
            step = (step << 1) + 1;
        }
    }

    #[test]
    fn apply_record_matches_apply() {
        let mut a = loaded();
        let mut b = loaded();
        a.apply("orders", 3, 1000, 990);
        b.apply_record(&OffsetSync {
            topic: "orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 990,
        });
        assert_eq!(a.slots("orders", 3), b.slots("orders", 3));
        assert_eq!(b.partitions().collect::<Vec<_>>(), vec![("orders", 3)]);
    }

    #[test]
    fn extreme_offsets_do_not_panic() {
        let mut s = loaded();
        for (u, d) in [
            (i64::MAX, i64::MAX),
            (0, -1),
            (i64::MIN, i64::MIN),
            (-5, 3),
            (i64::MAX - 1, 0),
            (i64::MAX, i64::MAX),
        ] {
            s.apply("t", 0, u, d);
            for g in [i64::MIN, -1, 0, 1, i64::MAX] {
                let _ = s.translate("t", 0, g);
            }
        }
    }

    /// One step of a random syncs topic for a single partition.
    #[derive(Clone, Debug)]
    enum Step {
        /// Upstream and downstream both advance (by at least one record each).
        Advance(i64, i64),
        /// The same sync again (for example a producer retry).
        Repeat,
        /// Upstream goes back (recreated topic, task re-reading); downstream keeps growing.
        Rewind(i64, i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            20 => (1i64..4, 1i64..4).prop_map(|(u, d)| Step::Advance(u, d)),
            20 => (1i64..200, 1i64..200).prop_map(|(u, d)| Step::Advance(u, d)),
            8 => (1i64..100_000, 1i64..100_000).prop_map(|(u, d)| Step::Advance(u, d)),
            2 => Just(Step::Repeat),
            1 => (1i64..10_000, 1i64..100).prop_map(|(u, d)| Step::Rewind(u, d)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn invariants_and_translation_hold(
            start in 0i64..1_000_000,
            steps in proptest::collection::vec(step(), 1..400),
            must_read_to_end in any::<bool>(),
            load_after in 0usize..50,
            probes in proptest::collection::vec(0i64..3_000_000, 8),
        ) {
            let mut s = OffsetSyncStore::new(must_read_to_end);
            let (mut u, mut d) = (start, start / 2);
            // The syncs of the current generation (since the last clear), as the model.
            let mut generation: Vec<StoredSync> = Vec::new();
            for (n, st) in steps.iter().enumerate() {
                if n == load_after {
                    s.finish_initial_load();
                }
                match *st {
                    Step::Advance(du, dd) => { u += du; d += dd; }
                    Step::Repeat => {}
                    // At 0 there is nothing to rewind to: advance instead.
                    Step::Rewind(_, dd) if u == 0 => { u += 1; d += dd; }
                    Step::Rewind(du, dd) => { u = (u - du).max(0); d += dd; }
                }
                let cleared = generation.last().is_none_or(|l| u < l.upstream)
                    || (must_read_to_end && !s.is_loaded());
                s.apply("t", 0, u, d);
                let sl = *s.slots("t", 0).expect("slots");
                if cleared {
                    generation.clear();
                }
                generation.push(sl[0]);
                prop_assert_eq!((sl[0].upstream, sl[0].downstream), (u, d));
                let oldest = generation[0].id;
                if let Err(e) = check_invariants(&sl, sl[0].id, oldest) {
                    return Err(TestCaseError::fail(format!("after step {n}: {e}; slots {sl:?}")));
                }
                // Every retained sync belongs to the current generation.
                for x in sl.iter() {
                    prop_assert!(generation.iter().any(|g| g == x));
                }
            }
            s.finish_initial_load();
            let sl = *s.slots("t", 0).expect("slots");
            let mut gs: Vec<i64> = probes.clone();
            gs.extend(generation.iter().flat_map(|x| [x.upstream - 1, x.upstream, x.upstream + 1]));
            gs.sort_unstable();
            gs.dedup();
            let mut prev: Option<i64> = None;
            for &g in &gs {
                let t = s.translate("t", 0, g);
                let v = t.mm2_value().expect("loaded and has syncs");
                // Monotonic in g for a fixed state.
                if let Some(p) = prev {
                    prop_assert!(v >= p, "g={} gave {} after {}", g, v, p);
                }
                prev = Some(v);
                match t {
                    Translation::Offset { offset, sync } => {
                        prop_assert!(sync.upstream <= g);
                        prop_assert!(offset == sync.downstream || offset == sync.downstream + 1);
                        prop_assert_eq!(offset == sync.downstream, g == sync.upstream);
                        // The chosen sync is the newest retained one at or before g.
                        let first = sl.iter().find(|x| x.upstream <= g).copied();
                        prop_assert_eq!(first, Some(sync));
                        // No loss: never past the first replicated record at or after g.
                        if let Some(next) = generation.iter().find(|x| x.upstream >= g) {
                            prop_assert!(offset <= next.downstream);
                        }
                    }
                    Translation::TooOld { sync } => {
                        prop_assert_eq!(sync, sl[SYNCS_PER_PARTITION - 1]);
                        prop_assert!(sync.upstream > g);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }
}
