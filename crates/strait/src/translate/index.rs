//! The exact offset index: which downstream offset each replicated upstream record landed at.
//!
//! MM2 keeps a sparse sample of (upstream, downstream) pairs and rounds every translation down to
//! the sample before it plus one, so consumers re-read up to `offset.lag.max` records, or get no
//! translation at all once they lag behind its 64-slot history. strait sees every pair it writes
//! and keeps them as *runs*: stretches where both offsets advance by one per record. A run ends at
//! any gap on either side (compaction holes and transaction markers upstream, records written by
//! someone else downstream, records copied again after a restart), so a handful of runs describe
//! a partition exactly.
//!
//! The writer side ([`RunTracker`]) lives in the copy loop and turns acknowledged pairs into
//! [`IndexRun`] records; the reader side ([`OffsetIndex`]) rebuilds the runs from those records
//! (the compacted topic `strait-offset-index.<source>.internal` on the target) and translates.
//!
//! **What a translation means.** A group that committed upstream offset `g` has processed every
//! record before `g` and none from `g` on. Every upstream record `u >= g` may have several copies
//! downstream (a restart copies some records again); the translation is the largest downstream
//! offset `d` such that every such record has a copy at or after `d`:
//! `d = min over replicated u >= g of (downstream offset of u's latest copy)`.
//! A consumer starting at `d` therefore reads every record the group had not processed, and
//! re-reads only extra copies made by restarts. When nothing at or after `g` has been replicated,
//! the translation is the end of what has been replicated: never past a record not yet copied.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::wire::IndexRun;

/// A source partition as the copy loop names it.
pub(crate) type Tp = (Arc<str>, i32);

/// A run: `len` records, upstream `up..up+len` at downstream `down..down+len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    up: i64,
    down: i64,
    len: i64,
}

impl Run {
    fn up_end(&self) -> i64 {
        self.up + self.len
    }
    fn down_end(&self) -> i64 {
        self.down + self.len
    }
}

/// Which handed-out run an index record describes: its acknowledgement makes that run's pairs
/// durable. Unique for the tracker's life, so that an acknowledgement from a partition's earlier
/// ownership never counts for a later one.
pub type RunId = u64;

/// An index record to write, and the run it describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRun {
    /// The run, for [`RunTracker::persisted`] when the record is acknowledged.
    pub id: RunId,
    /// The record to write to the index topic.
    pub record: IndexRun,
}

#[derive(Debug)]
struct TrackedRun {
    run: Run,
    /// The length last handed out to be written.
    handed: i64,
    /// The length the index durably holds (the longest acknowledged record of this run).
    durable: i64,
}

#[derive(Debug, Default)]
struct TrackPart {
    /// Runs with pairs not yet durable, and the open run, by id (the order they were opened in).
    runs: BTreeMap<RunId, TrackedRun>,
    /// The run being extended.
    open: Option<RunId>,
    /// One past the highest upstream offset of a run that became durable and was dropped.
    durable_end: Option<i64>,
}

/// The writer side: the copy loop reports each acknowledged (upstream, downstream) pair, and
/// periodically takes the index records to write.
///
/// Source offsets must not be committed past what the index holds ([`RunTracker::commit_limit`]):
/// after a crash, replication resumes from the committed offset, so every record the index does
/// not know about is copied again and gets indexed then. That is what makes the index complete.
/// The limit is the lowest pair not yet durable, whatever order acknowledgements come in: a later
/// run acknowledged before an earlier one must not let a commit pass the earlier one's pairs.
#[derive(Debug, Default)]
pub struct RunTracker {
    parts: HashMap<Tp, TrackPart>,
    next_id: RunId,
}

impl RunTracker {
    /// The target acknowledged upstream record `up` of `tp` at downstream offset `down`.
    pub fn observe(&mut self, tp: &Tp, up: i64, down: i64) {
        let p = self.parts.entry(tp.clone()).or_default();
        if let Some(r) = p.open.and_then(|id| p.runs.get_mut(&id)) {
            if r.run.up_end() == up && r.run.down_end() == down {
                r.run.len += 1;
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        p.runs.insert(
            id,
            TrackedRun {
                run: Run { up, down, len: 1 },
                handed: 0,
                durable: 0,
            },
        );
        let closed = p.open.replace(id);
        if let Some(closed) = closed {
            p.drop_if_durable(closed);
        }
    }

    /// Index records for everything that changed since the last call: each run that ended with
    /// its final length, and each open run that grew.
    pub fn take_pending(&mut self) -> Vec<PendingRun> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &mut self.parts {
            for (&id, r) in &mut p.runs {
                if r.handed < r.run.len {
                    r.handed = r.run.len;
                    out.push(PendingRun {
                        id,
                        record: IndexRun {
                            topic: topic.to_string(),
                            partition: *partition,
                            downstream_start: r.run.down,
                            upstream_start: r.run.up,
                            len: r.run.len,
                        },
                    });
                }
            }
        }
        out
    }

    /// The target acknowledged the index record of run `id` with `len` pairs: they are durable.
    /// An acknowledgement for a partition no longer tracked (given up meanwhile) is ignored.
    pub fn persisted(&mut self, tp: &Tp, id: RunId, len: i64) {
        let Some(p) = self.parts.get_mut(tp) else {
            return;
        };
        if let Some(r) = p.runs.get_mut(&id) {
            r.durable = r.durable.max(len);
            if p.open != Some(id) {
                p.drop_if_durable(id);
            }
        }
    }

    /// The highest source offset that may be committed for `tp`: every pair observed below it is
    /// durably in the index. `None` until a pair of this ownership is.
    pub fn commit_limit(&self, tp: &Tp) -> Option<i64> {
        let p = self.parts.get(tp)?;
        let mut limit: Option<i64> = None;
        let mut end = p.durable_end;
        for r in p.runs.values() {
            if r.durable < r.run.len {
                let first_missing = r.run.up + r.durable;
                limit = Some(limit.map_or(first_missing, |l| l.min(first_missing)));
            } else {
                end = Some(end.map_or(r.run.up_end(), |e| e.max(r.run.up_end())));
            }
        }
        let anything_durable = end.is_some() || p.runs.values().any(|r| r.durable > 0);
        if !anything_durable {
            return None;
        }
        limit.or(end)
    }

    /// Whether pairs are waiting to be written.
    #[cfg(test)]
    pub fn has_pending(&self) -> bool {
        self.parts
            .values()
            .any(|p| p.runs.values().any(|r| r.handed < r.run.len))
    }

    /// The partition went to another process: its next pairs here start a new run, and late
    /// acknowledgements of its index records are ignored.
    pub fn forget(&mut self, tp: &Tp) {
        self.parts.remove(tp);
    }
}

impl TrackPart {
    /// A run that is no longer extended needs no tracking once the index holds all of it.
    fn drop_if_durable(&mut self, id: RunId) {
        if let Some(r) = self.runs.get(&id) {
            if r.durable >= r.run.len {
                let end = r.run.up_end();
                self.durable_end = Some(self.durable_end.map_or(end, |e| e.max(end)));
                self.runs.remove(&id);
            }
        }
    }
}

/// How a translation was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing of this partition is in the index.
    NoRuns,
    /// The group is before the first indexed record (replicated before strait, or by something
    /// else): the index cannot say, and another source (MM2's offset syncs) must.
    BeforeIndex {
        /// The lowest upstream offset the index holds for the partition.
        first_upstream: i64,
    },
    /// The record at `g` was replicated; `downstream` is where a consumer resumes.
    InRun {
        /// Where a consumer resumes on the target.
        downstream: i64,
    },
    /// No record at `g` was replicated (a compaction hole, a transaction marker): `downstream`
    /// is where the next replicated record is.
    Gap {
        /// Where a consumer resumes on the target: at the next replicated record.
        downstream: i64,
    },
    /// The group is ahead of replication (or exactly caught up): the end of what was replicated.
    Ahead {
        /// One past the last copy on the target: the end of what was replicated.
        downstream: i64,
    },
}

impl Lookup {
    /// The translated downstream offset, when the index knows one.
    pub fn downstream(&self) -> Option<i64> {
        match *self {
            Lookup::NoRuns | Lookup::BeforeIndex { .. } => None,
            Lookup::InRun { downstream }
            | Lookup::Gap { downstream }
            | Lookup::Ahead { downstream } => Some(downstream),
        }
    }
}

/// A stretch of upstream offsets whose latest copies are all in one run.
#[derive(Clone, Copy, Debug)]
struct Surviving {
    lo: i64,
    hi: i64,
    run: Run,
}

impl Surviving {
    fn pos(&self, u: i64) -> i64 {
        self.run.down + (u - self.run.up)
    }
}

/// What lookups read, derived from the runs.
#[derive(Debug)]
struct Built {
    /// Disjoint, sorted by `lo`.
    surviving: Vec<Surviving>,
    /// `suffix_min[i]` = min over `j >= i` of the downstream offset of `surviving[j].lo`.
    suffix_min: Vec<i64>,
    /// One past the highest downstream offset of any run.
    end: i64,
    min_up: i64,
    max_up_end: i64,
}

#[derive(Debug, Default)]
struct PartIndex {
    /// downstream start -> (upstream start, length)
    runs: BTreeMap<i64, (i64, i64)>,
    built: Option<Built>,
}

impl PartIndex {
    fn apply(&mut self, down: i64, up: i64, len: i64) {
        let old = self.runs.insert(down, (up, len));
        // The common case: the newest run, which holds the highest upstream offsets, grew. Its
        // new records are nobody else's latest copy, so only its own stretch gets longer.
        let newest = self.runs.keys().next_back() == Some(&down);
        if let (Some(b), Some((old_up, old_len)), true) = (&mut self.built, old, newest) {
            if let Some(last) = b.surviving.last_mut() {
                let frontier = old_up == up
                    && old_len <= len
                    && last.run.down == down
                    && last.hi == old_up + old_len
                    && b.max_up_end == last.hi;
                if frontier {
                    last.hi = up + len;
                    last.run.len = len;
                    b.max_up_end = up + len;
                    b.end = b.end.max(down + len);
                    return;
                }
            }
        }
        self.built = None;
    }

    fn build(&self) -> Built {
        let mut covered: BTreeMap<i64, i64> = BTreeMap::new();
        let mut surviving = Vec::new();
        let (mut end, mut min_up, mut max_up_end) = (0, i64::MAX, i64::MIN);
        for (&down, &(up, len)) in self.runs.iter().rev() {
            let run = Run { up, down, len };
            end = end.max(run.down_end());
            min_up = min_up.min(up);
            max_up_end = max_up_end.max(run.up_end());
            for (lo, hi) in subtract_and_cover(&mut covered, up, run.up_end()) {
                surviving.push(Surviving { lo, hi, run });
            }
        }
        surviving.sort_by_key(|s| s.lo);
        let mut suffix_min = vec![i64::MAX; surviving.len()];
        let mut m = i64::MAX;
        for (i, s) in surviving.iter().enumerate().rev() {
            m = m.min(s.pos(s.lo));
            suffix_min[i] = m;
        }
        Built {
            surviving,
            suffix_min,
            end,
            min_up,
            max_up_end,
        }
    }

    fn lookup(&mut self, g: i64) -> Lookup {
        if self.runs.is_empty() {
            return Lookup::NoRuns;
        }
        if self.built.is_none() {
            self.built = Some(self.build());
        }
        let b = self.built.as_ref().expect("just built");
        if g < b.min_up {
            return Lookup::BeforeIndex {
                first_upstream: b.min_up,
            };
        }
        let i = b.surviving.partition_point(|s| s.hi <= g);
        let Some(s) = b.surviving.get(i) else {
            return Lookup::Ahead { downstream: b.end };
        };
        if s.lo <= g {
            let here = s.pos(g);
            let later = b.suffix_min.get(i + 1).copied().unwrap_or(i64::MAX);
            Lookup::InRun {
                downstream: here.min(later),
            }
        } else {
            Lookup::Gap {
                downstream: b.suffix_min[i],
            }
        }
    }
}

/// Remove from `[a, b)` what `covered` (disjoint ranges lo -> hi, exclusive) already has, return
/// the remaining pieces, and add `[a, b)` to `covered`.
fn subtract_and_cover(covered: &mut BTreeMap<i64, i64>, a: i64, b: i64) -> Vec<(i64, i64)> {
    let first = covered.range(..=a).next_back().map_or(a, |(&lo, _)| lo);
    let overlapping: Vec<(i64, i64)> = covered
        .range(first..b)
        .map(|(&l, &h)| (l, h))
        .filter(|&(l, h)| h > a && l < b)
        .collect();
    let mut out = Vec::new();
    let mut x = a;
    let (mut lo, mut hi) = (a, b);
    for &(l, h) in &overlapping {
        if l > x {
            out.push((x, l));
        }
        x = x.max(h);
        lo = lo.min(l);
        hi = hi.max(h);
        covered.remove(&l);
    }
    if x < b {
        out.push((x, b));
    }
    covered.insert(lo, hi);
    out
}

/// The reader side: every run of every partition of one flow, from the index topic.
#[derive(Debug, Default)]
pub struct OffsetIndex {
    parts: HashMap<(String, i32), PartIndex>,
}

impl OffsetIndex {
    /// Take in one record of the index topic (in topic order; a later record for the same run
    /// replaces the earlier one).
    pub fn apply(&mut self, run: &IndexRun) {
        self.parts
            .entry((run.topic.clone(), run.partition))
            .or_default()
            .apply(run.downstream_start, run.upstream_start, run.len);
    }

    /// Translate the committed upstream offset `g` of `topic`-`partition` (upstream name).
    pub fn lookup(&mut self, topic: &str, partition: i32, g: i64) -> Lookup {
        match self.parts.get_mut(&(topic.to_string(), partition)) {
            Some(p) => p.lookup(g),
            None => Lookup::NoRuns,
        }
    }

    /// How many records at or after downstream offset `d` are copies of upstream records before
    /// `g`: what a consumer of the group resuming at `d` reads a second time.
    pub fn rereads(&self, topic: &str, partition: i32, g: i64, d: i64) -> i64 {
        let Some(p) = self.parts.get(&(topic.to_string(), partition)) else {
            return 0;
        };
        p.runs
            .iter()
            .map(|(&down, &(up, len))| {
                let from = (d - down).max(0);
                let to = (g - up).min(len);
                (to - from).max(0)
            })
            .sum()
    }

    /// One past the highest upstream offset with a copy on the target: how far replication of
    /// the partition got, read from the target alone (what an unplanned failover can know).
    pub fn replicated_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.parts
            .get(&(topic.to_string(), partition))?
            .runs
            .values()
            .map(|&(up, len)| up + len)
            .max()
    }

    /// The reverse translation, for failback: where on the source a consumer resumes that is at
    /// downstream offset `d` of the remote topic. Inside a run it is the record's own upstream
    /// offset; in a hole between runs, the next run's start; past every run, the offset after
    /// the last copy (records the target never got are then read on the source). `None` when
    /// the partition has no runs.
    pub fn upstream_of(&self, topic: &str, partition: i32, d: i64) -> Option<i64> {
        let p = self.parts.get(&(topic.to_string(), partition))?;
        if let Some((&down, &(up, len))) = p.runs.range(..=d).next_back() {
            if d < down + len {
                return Some(up + (d - down));
            }
        }
        if let Some((_, &(up, _))) = p.runs.range(d + 1..).next() {
            return Some(up);
        }
        p.runs.values().next_back().map(|&(up, len)| up + len)
    }

    /// How many runs the index holds for a partition (for `strait translate` and tests).
    pub fn run_count(&self, topic: &str, partition: i32) -> usize {
        self.parts
            .get(&(topic.to_string(), partition))
            .map_or(0, |p| p.runs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_translation_for_failback() {
        let mut ix = OffsetIndex::default();
        let run = |d, u, n| IndexRun {
            topic: "o".into(),
            partition: 0,
            downstream_start: d,
            upstream_start: u,
            len: n,
        };
        // 0..10 copied to 0..10; a restart re-copied 8..20 to 10..22; a hole, then 30..35 at 25.
        ix.apply(&run(0, 0, 10));
        ix.apply(&run(10, 8, 12));
        ix.apply(&run(25, 30, 5));
        assert_eq!(ix.upstream_of("o", 0, 0), Some(0));
        assert_eq!(ix.upstream_of("o", 0, 9), Some(9));
        assert_eq!(ix.upstream_of("o", 0, 10), Some(8));
        assert_eq!(ix.upstream_of("o", 0, 21), Some(19));
        assert_eq!(ix.upstream_of("o", 0, 23), Some(30));
        assert_eq!(ix.upstream_of("o", 0, 30), Some(35));
        assert_eq!(ix.upstream_of("o", 0, 99), Some(35));
        assert_eq!(ix.upstream_of("x", 0, 5), None);
        assert_eq!(ix.replicated_end("o", 0), Some(35));
    }
    use proptest::prelude::*;

    fn tp() -> Tp {
        (Arc::from("orders"), 0)
    }

    fn index_of(pairs: &[(i64, i64)]) -> OffsetIndex {
        let mut t = RunTracker::default();
        for &(u, d) in pairs {
            t.observe(&tp(), u, d);
        }
        let mut idx = OffsetIndex::default();
        for r in records(t.take_pending()) {
            idx.apply(&r);
        }
        idx
    }

    #[test]
    fn contiguous_replication_is_one_run_and_exact() {
        let pairs: Vec<_> = (0..100).map(|i| (i, i + 7)).collect();
        let mut idx = index_of(&pairs);
        assert_eq!(idx.run_count("orders", 0), 1);
        assert_eq!(
            idx.lookup("orders", 0, 40),
            Lookup::InRun { downstream: 47 }
        );
        assert_eq!(
            idx.lookup("orders", 0, 100),
            Lookup::Ahead { downstream: 107 }
        );
        assert_eq!(
            idx.lookup("orders", 0, 5000),
            Lookup::Ahead { downstream: 107 }
        );
        assert_eq!(idx.lookup("orders", 1, 5), Lookup::NoRuns);
    }

    #[test]
    fn upstream_hole_translates_to_next_replicated_record() {
        // 0..10 then 15..20 (5 compacted away), downstream dense.
        let mut pairs: Vec<_> = (0..10).map(|i| (i, i)).collect();
        pairs.extend((15..20).map(|i| (i, i - 5)));
        let mut idx = index_of(&pairs);
        assert_eq!(idx.run_count("orders", 0), 2);
        assert_eq!(idx.lookup("orders", 0, 12), Lookup::Gap { downstream: 10 });
        assert_eq!(
            idx.lookup("orders", 0, 16),
            Lookup::InRun { downstream: 11 }
        );
    }

    #[test]
    fn restart_copies_resume_from_the_latest_copy() {
        // 0..100 at 0..100, then a restart re-sends from 80: 80..150 at 100..170.
        let mut pairs: Vec<_> = (0..100).map(|i| (i, i)).collect();
        pairs.extend((80..150).map(|i| (i, i + 20)));
        let mut idx = index_of(&pairs);
        // Before the re-sent range: resume in the first copy (the restart's copies of 80..99
        // will be read again: they are the restart's duplicates).
        assert_eq!(
            idx.lookup("orders", 0, 50),
            Lookup::InRun { downstream: 50 }
        );
        // Inside it: the latest copy, so nothing is read twice.
        assert_eq!(
            idx.lookup("orders", 0, 90),
            Lookup::InRun { downstream: 110 }
        );
        assert_eq!(
            idx.lookup("orders", 0, 150),
            Lookup::Ahead { downstream: 170 }
        );
    }

    #[test]
    fn a_restart_that_has_not_caught_up_keeps_the_older_copies_reachable() {
        // 0..100, then a restart copies 80..90 only (so far).
        let mut pairs: Vec<_> = (0..100).map(|i| (i, i)).collect();
        pairs.extend((80..90).map(|i| (i, i + 20)));
        let mut idx = index_of(&pairs);
        // 95..99 exist only in the first copy: resume there, not at the end.
        assert_eq!(
            idx.lookup("orders", 0, 95),
            Lookup::InRun { downstream: 95 }
        );
        // 85..89's latest copies are at 105..109, but 90..99 only exist at 90..99: resume at 90
        // and read 90..99, then the restart's copies of 80..89 (85..89 among them).
        assert_eq!(
            idx.lookup("orders", 0, 85),
            Lookup::InRun { downstream: 90 }
        );
    }

    #[test]
    fn tracker_limits_commits_to_what_the_index_holds() {
        let mut t = RunTracker::default();
        for i in 0..10 {
            t.observe(&tp(), i, i);
        }
        assert_eq!(t.commit_limit(&tp()), None);
        let recs = t.take_pending();
        assert_eq!(recs.len(), 1);
        assert!(!t.has_pending());
        t.persisted(&tp(), recs[0].id, recs[0].record.len);
        assert_eq!(t.commit_limit(&tp()), Some(10));
        t.observe(&tp(), 12, 10); // hole: a new run
        let recs = records(t.take_pending());
        assert_eq!(
            recs.len(),
            1,
            "the first run is unchanged, only the new one"
        );
        assert_eq!((recs[0].upstream_start, recs[0].len), (12, 1));
    }

    #[test]
    fn closed_run_final_length_is_written_before_the_next() {
        let mut t = RunTracker::default();
        t.observe(&tp(), 0, 0);
        let first = records(t.take_pending());
        assert_eq!(first[0].len, 1);
        t.observe(&tp(), 1, 1);
        t.observe(&tp(), 2, 5); // downstream gap: someone else wrote 2..4
        let recs = records(t.take_pending());
        assert_eq!(
            recs.iter()
                .map(|r| (r.downstream_start, r.upstream_start, r.len))
                .collect::<Vec<_>>(),
            vec![(0, 0, 2), (5, 2, 1)]
        );
    }

    fn records(pending: Vec<PendingRun>) -> Vec<IndexRun> {
        pending.into_iter().map(|p| p.record).collect()
    }

    #[test]
    fn a_later_run_acknowledged_first_never_lets_a_commit_pass_an_earlier_one() {
        // Two delivery-report batches of one partition handled out of order used to let the
        // commit limit jump to the later run's end while the earlier run was not in the index.
        let mut t = RunTracker::default();
        for i in 0..10 {
            t.observe(&tp(), i, i);
        }
        for i in 12..20 {
            t.observe(&tp(), i, i - 2); // 10 and 11 are transaction markers upstream
        }
        let recs = t.take_pending();
        assert_eq!(recs.len(), 2);
        let (a, b) = (&recs[0], &recs[1]);
        assert_eq!((a.record.upstream_start, b.record.upstream_start), (0, 12));
        t.persisted(&tp(), b.id, b.record.len);
        assert_eq!(
            t.commit_limit(&tp()),
            Some(0),
            "0..9 are not in the index yet"
        );
        t.persisted(&tp(), a.id, a.record.len);
        assert_eq!(t.commit_limit(&tp()), Some(20));
    }

    #[test]
    fn a_growing_run_counts_its_longest_acknowledged_record() {
        let mut t = RunTracker::default();
        for i in 0..5 {
            t.observe(&tp(), i, i);
        }
        let short = t.take_pending().remove(0);
        for i in 5..10 {
            t.observe(&tp(), i, i);
        }
        let long = t.take_pending().remove(0);
        assert_eq!(short.id, long.id);
        t.persisted(&tp(), long.id, long.record.len);
        t.persisted(&tp(), short.id, short.record.len);
        assert_eq!(t.commit_limit(&tp()), Some(10));
        t.observe(&tp(), 10, 10);
        assert_eq!(
            t.commit_limit(&tp()),
            Some(10),
            "10 is observed, not indexed"
        );
    }

    #[test]
    fn acknowledgements_after_the_partition_was_given_up_are_ignored() {
        let mut t = RunTracker::default();
        t.observe(&tp(), 0, 0);
        let r = t.take_pending().remove(0);
        t.forget(&tp());
        t.persisted(&tp(), r.id, r.record.len);
        assert_eq!(t.commit_limit(&tp()), None);
        // Back to this process: a new run, whose limit the old acknowledgement does not raise.
        t.observe(&tp(), 5, 7);
        let again = t.take_pending().remove(0);
        assert_ne!(again.id, r.id);
        t.persisted(&tp(), r.id, 100);
        assert_eq!(t.commit_limit(&tp()), None);
    }

    /// The definition, computed from every pair.
    fn brute(pairs: &[(i64, i64)], g: i64) -> Option<i64> {
        let mut latest: BTreeMap<i64, i64> = BTreeMap::new();
        for &(u, d) in pairs {
            let e = latest.entry(u).or_insert(d);
            *e = (*e).max(d);
        }
        let min_up = *latest.keys().next()?;
        if g < min_up {
            return None;
        }
        let end = pairs.iter().map(|&(_, d)| d + 1).max()?;
        Some(latest.range(g..).map(|(_, &d)| d).min().unwrap_or(end))
    }

    /// Pairs as a replicator produces them: sessions that each resume at or before where the
    /// last one got, skipping upstream offsets that do not exist (compaction, markers, which may
    /// change between sessions), with foreign records written downstream in between.
    fn pairs_strategy() -> impl Strategy<Value = Vec<(i64, i64)>> {
        prop::collection::vec(
            (
                0i64..30,
                1usize..60,
                prop::collection::vec(0u8..100, 60),
                0u8..100,
            ),
            1..6,
        )
        .prop_map(|sessions| {
            let mut pairs = Vec::new();
            let (mut frontier, mut down) = (0i64, 0i64);
            for (back, count, dice, foreign) in sessions {
                let mut u = (frontier - back).max(0);
                let mut n = 0;
                let mut k = 0;
                while n < count {
                    let roll = dice[k % dice.len()];
                    k += 1;
                    if roll < 15 {
                        u += 1; // does not exist upstream
                        continue;
                    }
                    if roll > 95 {
                        down += i64::from(foreign % 3) + 1; // someone else's records
                    }
                    pairs.push((u, down));
                    down += 1;
                    u += 1;
                    n += 1;
                }
                frontier = frontier.max(u);
            }
            pairs
        })
    }

    proptest! {
        #[test]
        fn index_matches_brute_force(pairs in pairs_strategy(), flush_every in 1usize..40) {
            let mut t = RunTracker::default();
            let mut idx = OffsetIndex::default();
            let mut persisted: Vec<IndexRun> = Vec::new();
            for (i, &(u, d)) in pairs.iter().enumerate() {
                t.observe(&tp(), u, d);
                if i % flush_every == 0 {
                    for r in records(t.take_pending()) {
                        idx.apply(&r);
                        persisted.retain(|p| p.downstream_start != r.downstream_start);
                        persisted.push(r);
                    }
                    // Lookups between flushes exercise the incremental path.
                    let known: Vec<(i64, i64)> = persisted
                        .iter()
                        .flat_map(|r| (0..r.len).map(move |j| (r.upstream_start + j, r.downstream_start + j)))
                        .collect();
                    let g = u - 3;
                    prop_assert_eq!(idx.lookup("orders", 0, g).downstream(), brute(&known, g));
                }
            }
            for r in records(t.take_pending()) {
                idx.apply(&r);
            }
            let max_u = pairs.iter().map(|p| p.0).max().unwrap_or(0);
            for g in 0..=max_u + 2 {
                prop_assert_eq!(idx.lookup("orders", 0, g).downstream(), brute(&pairs, g), "g = {}", g);
            }
        }

        #[test]
        fn the_commit_limit_never_passes_a_pair_the_index_lacks(
            pairs in pairs_strategy(),
            flush_every in 1usize..20,
            order in prop::collection::vec(any::<prop::sample::Index>(), 0..200),
        ) {
            // Index records acknowledged in any order, some never: every observed pair below
            // the limit is in an acknowledged record.
            let mut t = RunTracker::default();
            let mut handed: Vec<PendingRun> = Vec::new();
            let mut acked: Vec<IndexRun> = Vec::new();
            let mut observed: Vec<i64> = Vec::new();
            let mut order = order.into_iter();
            for (i, &(u, d)) in pairs.iter().enumerate() {
                t.observe(&tp(), u, d);
                observed.push(u);
                if i % flush_every == 0 {
                    handed.extend(t.take_pending());
                }
                if let Some(pick) = order.next() {
                    if !handed.is_empty() {
                        let r = handed.swap_remove(pick.index(handed.len()));
                        t.persisted(&tp(), r.id, r.record.len);
                        acked.push(r.record);
                    }
                }
                if let Some(limit) = t.commit_limit(&tp()) {
                    for &o in observed.iter().filter(|&&o| o < limit) {
                        prop_assert!(
                            acked.iter().any(|r| r.upstream_start <= o && o < r.upstream_start + r.len),
                            "limit {} passes {} which no acknowledged record holds", limit, o
                        );
                    }
                }
            }
        }

        #[test]
        fn translation_is_monotonic_in_the_group_offset(pairs in pairs_strategy()) {
            let mut idx = index_of(&pairs);
            let max_u = pairs.iter().map(|p| p.0).max().unwrap_or(0);
            let mut last = None;
            for g in 0..=max_u + 2 {
                if let Some(d) = idx.lookup("orders", 0, g).downstream() {
                    if let Some(l) = last {
                        prop_assert!(d >= l, "g = {}: {} < {}", g, d, l);
                    }
                    last = Some(d);
                }
            }
        }

        #[test]
        fn index_record_roundtrip(topic in "[a-z.]{1,20}", p in 0i32..1000, d in 0i64..i64::MAX/2, u in 0i64..i64::MAX/2, len in 1i64..1_000_000) {
            let r = IndexRun { topic, partition: p, downstream_start: d, upstream_start: u, len };
            prop_assert_eq!(IndexRun::decode(&r.key(), &r.value()).unwrap(), r);
        }
    }
}
