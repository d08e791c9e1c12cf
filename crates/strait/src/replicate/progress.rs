//! Which source offsets may be committed: a record's offset counts only once the target has
//! acknowledged it and every earlier record of its partition. Pure bookkeeping, no I/O.
//!
//! Each time this process gets a partition it is a new *ownership*: records sent under an earlier
//! one may still be acknowledged after the partition was given up (a revoke that could not wait
//! for them), and must then count for nothing, or a process that no longer owns a partition
//! would move its bookkeeping, offset syncs and commits.
//!
//! The offsets of one ownership normally only go up. A record behind the last one sent means the
//! source partition went back (the topic was deleted and re-created, or truncated by an unclean
//! leader election): it starts a new ownership whose commits may go back too, or a restart would
//! resume at the old, higher offset and skip what the new partition holds below it. A record
//! ahead of the next expected offset is a gap, which the copy loop looks into (records deleted by
//! retention are counted and said; compaction and transaction markers are not).

use std::collections::{BTreeSet, HashMap};

pub(crate) use crate::translate::index::Tp;

/// One ownership of a partition by this process: acknowledgements carry it back.
pub(crate) type Owner = u64;

#[derive(Debug, Default)]
struct Part {
    owner: Owner,
    /// Sent, not yet acknowledged.
    in_flight: BTreeSet<i64>,
    /// One past the offset last sent (or where the partition resumed, before the first).
    next: Option<i64>,
    /// The offset last committed (the next to read), if any.
    committed: Option<i64>,
}

impl Part {
    /// The offset to commit: the oldest record still in flight, or one past the last sent.
    fn safe(&self) -> Option<i64> {
        self.in_flight.first().copied().or(self.next)
    }
}

/// What a record handed to the producer tells of its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jump {
    /// The next offset expected: nothing to say.
    None,
    /// Ahead of the next offset expected: `from..to` were never read.
    Gap { from: i64, to: i64 },
    /// Behind the last offset sent: the partition went back from `from` to `to`.
    Back { from: i64, to: i64 },
}

/// A record handed to the producer: the ownership its acknowledgement must carry, and how its
/// offset follows the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) owner: Owner,
    pub(crate) jump: Jump,
}

/// Replication progress of the partitions this process owns.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    parts: HashMap<Tp, Part>,
    next_owner: Owner,
}

impl Progress {
    /// `tp` was assigned to this process, which resumes it at `resume_at` (its committed
    /// offset; `None` when it has none): the first record is expected there.
    pub(crate) fn assigned(&mut self, tp: &Tp, resume_at: Option<i64>) {
        self.next_owner += 1;
        self.parts.insert(
            tp.clone(),
            Part {
                owner: self.next_owner,
                next: resume_at,
                committed: resume_at,
                ..Part::default()
            },
        );
    }

    /// Record `offset` of `tp` handed to the producer.
    pub(crate) fn sent(&mut self, tp: &Tp, offset: i64) -> Sent {
        let next_owner = &mut self.next_owner;
        let p = self.parts.entry(tp.clone()).or_insert_with(|| {
            *next_owner += 1;
            Part {
                owner: *next_owner,
                ..Part::default()
            }
        });
        let jump = match p.next {
            // The same record again: the producer had no room for it the first time.
            Some(n) if offset == n - 1 && p.in_flight.contains(&offset) => Jump::None,
            Some(n) if offset > n => Jump::Gap {
                from: n,
                to: offset,
            },
            Some(n) if offset < n => {
                // A new partition under the old name: what was in flight belongs to the old
                // one, and commits start over (they may go back).
                *next_owner += 1;
                *p = Part {
                    owner: *next_owner,
                    ..Part::default()
                };
                Jump::Back {
                    from: n,
                    to: offset,
                }
            }
            _ => Jump::None,
        };
        p.in_flight.insert(offset);
        p.next = Some(offset + 1);
        Sent {
            owner: p.owner,
            jump,
        }
    }

    /// A batch of `tp` from `first` handed to the target, after which the partition is read
    /// from `next` (records `first..next`, or fewer: markers and compaction leave holes). It
    /// counts in flight as its first record, acknowledged with [`Progress::acked`]`(first)`.
    pub(crate) fn sent_span(&mut self, tp: &Tp, first: i64, next: i64) -> Sent {
        let sent = self.sent(tp, first);
        if let Some(p) = self.parts.get_mut(tp) {
            p.next = Some(next.max(first + 1));
        }
        sent
    }

    /// The target acknowledged `offset` of `tp`, sent under `owner`. False when that ownership
    /// is over: the acknowledgement must then change nothing.
    pub(crate) fn acked(&mut self, tp: &Tp, owner: Owner, offset: i64) -> bool {
        match self.parts.get_mut(tp) {
            Some(p) if p.owner == owner => {
                p.in_flight.remove(&offset);
                true
            }
            _ => false,
        }
    }

    /// Whether `owner` is the current ownership of `tp`.
    pub(crate) fn owns(&self, tp: &Tp, owner: Owner) -> bool {
        self.parts.get(tp).is_some_and(|p| p.owner == owner)
    }

    /// Whether this process owns no partition (it gave them all up).
    pub(crate) fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Every partition owned, with the offset up to which the target holds every record (the
    /// next record it lacks) when one is known: what a commit would write, before the offset
    /// index bounds it.
    pub(crate) fn positions(&self) -> Vec<(Tp, Option<i64>)> {
        self.parts
            .iter()
            .map(|(tp, p)| (tp.clone(), p.safe()))
            .collect()
    }

    /// The partitions owned.
    pub(crate) fn owned(&self) -> Vec<Tp> {
        self.parts.keys().cloned().collect()
    }

    /// Offsets that advanced since the last commit: (partition, offset to commit).
    #[cfg(test)]
    pub(crate) fn to_commit(&self) -> Vec<(Tp, i64)> {
        self.to_commit_within(|_| Some(i64::MAX))
    }

    /// As [`Progress::to_commit`], but never past `limit(tp)` (nothing for a partition whose
    /// limit is `None`): the offset index must hold a record's position before its source offset
    /// is committed.
    pub(crate) fn to_commit_within(&self, limit: impl Fn(&Tp) -> Option<i64>) -> Vec<(Tp, i64)> {
        self.parts
            .iter()
            .filter_map(|(tp, p)| {
                let safe = p.safe()?.min(limit(tp)?);
                (p.committed.is_none_or(|c| c < safe)).then(|| (tp.clone(), safe))
            })
            .collect()
    }

    pub(crate) fn committed(&mut self, tp: &Tp, offset: i64) {
        if let Some(p) = self.parts.get_mut(tp) {
            p.committed = Some(offset);
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.in_flight.len()).sum()
    }

    /// Drop a partition that this process no longer owns.
    pub(crate) fn forget(&mut self, tp: &Tp) {
        self.parts.remove(tp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn tp(p: i32) -> Tp {
        (Arc::from("t"), p)
    }

    #[test]
    fn commits_only_up_to_the_oldest_unacknowledged_record() {
        let mut pr = Progress::default();
        let mut owner = 0;
        for o in 10..15 {
            owner = pr.sent(&tp(0), o).owner;
        }
        assert_eq!(pr.to_commit(), vec![(tp(0), 10)]);
        pr.acked(&tp(0), owner, 11);
        pr.acked(&tp(0), owner, 12);
        assert_eq!(pr.to_commit(), vec![(tp(0), 10)], "10 is still in flight");
        pr.acked(&tp(0), owner, 10);
        assert_eq!(pr.to_commit(), vec![(tp(0), 13)]);
        pr.committed(&tp(0), 13);
        assert!(pr.to_commit().is_empty());
        pr.acked(&tp(0), owner, 13);
        pr.acked(&tp(0), owner, 14);
        assert_eq!(pr.to_commit(), vec![(tp(0), 15)]);
        assert_eq!(pr.in_flight(), 0);
    }

    #[test]
    fn acknowledgements_of_an_earlier_ownership_change_nothing() {
        // A revoke that could not wait for every record: their acknowledgements arrive after the
        // partition was given up, and again after it came back to this process.
        let mut pr = Progress::default();
        let old = pr.sent(&tp(0), 10).owner;
        pr.forget(&tp(0));
        assert!(!pr.acked(&tp(0), old, 10), "given up: not ours");
        assert!(
            pr.is_empty(),
            "a late acknowledgement does not re-create the partition"
        );
        let new = pr.sent(&tp(0), 20).owner;
        assert_ne!(new, old);
        assert!(!pr.acked(&tp(0), old, 20));
        assert_eq!(pr.to_commit(), vec![(tp(0), 20)], "20 is still in flight");
        assert!(pr.acked(&tp(0), new, 20));
        assert_eq!(pr.to_commit(), vec![(tp(0), 21)]);
    }

    #[test]
    fn a_partition_that_went_back_commits_from_its_new_offsets() {
        // The topic was deleted and re-created while its records were copied: offsets start
        // again at 0. The commit must follow them down, or a restart resumes at 5000 of the new
        // partition and never copies 2..5000.
        let mut pr = Progress::default();
        pr.assigned(&tp(0), Some(4998));
        let a = pr.sent(&tp(0), 4998);
        assert_eq!(a.jump, Jump::None);
        pr.sent(&tp(0), 4999);
        assert_eq!(
            pr.sent(&tp(0), 4999).jump,
            Jump::None,
            "handed again after a full queue"
        );
        let b = pr.sent(&tp(0), 0);
        assert_eq!(b.jump, Jump::Back { from: 5000, to: 0 });
        assert_ne!(
            a.owner, b.owner,
            "the old partition's acknowledgements count for nothing"
        );
        assert!(!pr.acked(&tp(0), a.owner, 4999));
        pr.sent(&tp(0), 1);
        assert_eq!(pr.to_commit(), vec![(tp(0), 0)]);
        pr.acked(&tp(0), b.owner, 0);
        pr.acked(&tp(0), b.owner, 1);
        assert_eq!(pr.to_commit(), vec![(tp(0), 2)], "below the old commit");
    }

    #[test]
    fn the_next_offset_is_the_last_sent_plus_one_and_gaps_are_told() {
        let mut pr = Progress::default();
        pr.assigned(&tp(0), Some(100));
        assert!(
            pr.to_commit().is_empty(),
            "resumed where committed: nothing new"
        );
        // The source deleted 100..250 before they were read.
        let s = pr.sent(&tp(0), 250);
        assert_eq!(s.jump, Jump::Gap { from: 100, to: 250 });
        assert_eq!(pr.sent(&tp(0), 251).jump, Jump::None);
        // No resume point: the first record is not a gap.
        assert_eq!(pr.sent(&tp(1), 7).jump, Jump::None);
    }

    proptest! {
        /// Whatever order acknowledgements arrive in, the committable offset never passes a
        /// record that is not acknowledged, and reaches the end once all are.
        #[test]
        fn never_commits_past_an_unacked_record(n in 1usize..200, order in proptest::collection::vec(any::<u64>(), 200)) {
            let mut pr = Progress::default();
            let mut owner = 0;
            for o in 0..n as i64 { owner = pr.sent(&tp(1), o).owner; }
            let mut idx: Vec<usize> = (0..n).collect();
            idx.sort_by_key(|i| order[*i]);
            let mut acked = vec![false; n];
            for i in idx {
                pr.acked(&tp(1), owner, i as i64);
                acked[i] = true;
                if let Some((_, c)) = pr.to_commit().first() {
                    prop_assert!(acked[..*c as usize].iter().all(|a| *a));
                }
            }
            prop_assert_eq!(pr.to_commit(), vec![(tp(1), n as i64)]);
        }
    }
}
