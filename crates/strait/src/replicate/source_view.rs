//! What a flow knows of its source without asking it, for the lag snapshots an unplanned
//! failover estimates its loss from (`monitor::snapshot`).
//!
//! Asking the source (a metadata request, a watermark request per partition, the group's
//! commits, a reader for timestamps) took seconds a round, so the snapshot of a source that had
//! just failed was often 10-20 s old and the loss estimated from it 20 times too high. The copy
//! loop's consumer already holds the answer: every fetch response carries each partition's high
//! watermark, which librdkafka keeps (`get_watermark_offsets`, no request). The loop looks every
//! [`LOOK_EVERY`] and keeps here, per partition it owns, that end and how far the target holds
//! every record; and when the ends last moved and when the source first failed to answer since.
//!
//! Dating the ends: an end that changed between two looks came with a fetch response between
//! them, and a broker may hold a fetch up to `fetch.wait.max.ms` before it answers (some read the
//! end when the request arrives), so the end was true at some time after the earlier look minus
//! that wait. Writes after that time are what no view can see; an estimate extrapolates them
//! from [`SourceView::ends_since_ms`], that time (an upper bound, off by at most a look and a
//! fetch wait's worth of writes: the flow's consumer waits 100 ms unless the file says
//! otherwise).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka::TopicPartition;

/// How often the copy loop brings the view up to date.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(100);

/// One partition this process owns, as its flow sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedPartition {
    /// The source's end (high watermark) as the last fetch response gave it; `None` before
    /// the first.
    pub end: Option<i64>,
    /// The offset below which the target holds every record; `None` before the first record
    /// or resume position is known.
    pub delivered: Option<i64>,
}

/// The flow's view of its source (see the module doc).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceView {
    /// When the copy loop last looked (ms since the epoch); 0 before the first look.
    pub at_ms: i64,
    /// The ends were true at some time after this (ms since the epoch): the look before the
    /// last one at which an end moved, minus the fetch wait; `None` before any end was seen.
    pub ends_since_ms: Option<i64>,
    /// The flow consumer's `fetch.wait.max.ms`.
    pub fetch_wait_ms: i64,
    /// The first time the flow met an "unreachable" error of the source (a refused or dropped
    /// connection) since the ends last moved; cleared when they move again.
    pub unreachable_at_ms: Option<i64>,
    /// The latest such error (ms since the epoch), cleared with the first.
    pub last_unreachable_at_ms: Option<i64>,
    /// The look before the ends last moved (ms since the epoch): the source answered after it
    /// (the look that saw them moved may be a tenth of a second after the answer, and after a
    /// failure).
    pub moved_seen_ms: i64,
    /// Partitions of the topics the flow replicates, all of them (this process owns some).
    pub partitions_total: usize,
    /// The partitions this process owns.
    pub owned: BTreeMap<TopicPartition, OwnedPartition>,
}

impl SourceView {
    /// Take in one look at `now_ms`: the partitions owned now, with their ends and positions,
    /// out of `partitions_total`.
    pub(crate) fn look(
        &mut self,
        now_ms: i64,
        owned: BTreeMap<TopicPartition, OwnedPartition>,
        partitions_total: usize,
    ) {
        let moved = owned.iter().any(|(tp, p)| {
            p.end.is_some() && self.owned.get(tp).is_none_or(|before| before.end != p.end)
        });
        if moved {
            // True after the previous look (or now, at the first).
            let since = if self.at_ms > 0 { self.at_ms } else { now_ms };
            self.ends_since_ms = Some(since - self.fetch_wait_ms);
            self.moved_seen_ms = since;
            if self.last_unreachable_at_ms.is_some_and(|u| u <= now_ms) {
                self.unreachable_at_ms = None;
                self.last_unreachable_at_ms = None;
            }
        }
        self.at_ms = now_ms;
        self.owned = owned;
        self.partitions_total = partitions_total;
    }

    /// The flow met an "unreachable" error of the source at `at_ms`; the first since the ends
    /// last moved is kept.
    pub(crate) fn unreachable(&mut self, at_ms: i64) {
        if self.unreachable_at_ms.is_none() {
            self.unreachable_at_ms = Some(at_ms);
        }
        self.last_unreachable_at_ms = Some(at_ms);
    }

    /// When the source was last seen answering: the look before its ends last moved, or
    /// `answered_ms` (its reachability probe's last answer), whichever is later.
    fn alive_at(&self, answered_ms: Option<i64>) -> Option<i64> {
        let moved = self.ends_since_ms.map(|_| self.moved_seen_ms);
        moved.max(answered_ms)
    }

    /// Whether the source stopped answering, and by when at the latest (ms since the epoch): the
    /// earliest sign of it after the source was last seen answering, from the flow's own
    /// errors or from its reachability probe (`answered_ms`: its last answer; `failing_since_ms`:
    /// when the first of the failed probes in a row ended). `None` while it answers.
    pub fn lost_by(&self, answered_ms: Option<i64>, failing_since_ms: Option<i64>) -> Option<i64> {
        let alive = self.alive_at(answered_ms);
        let after = |t: Option<i64>| t.filter(|t| alive.is_none_or(|a| *t > a));
        let flow = match (
            after(self.unreachable_at_ms),
            after(self.last_unreachable_at_ms),
        ) {
            (Some(first), _) => Some(first),
            (None, last) => last,
        };
        match (flow, after(failing_since_ms)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the view covers every partition the flow replicates, each with an end and a
    /// position: only then can a snapshot be made of it alone.
    pub fn complete(&self) -> bool {
        self.partitions_total > 0
            && self.owned.len() >= self.partitions_total
            && self
                .owned
                .values()
                .all(|p| p.end.is_some() && p.delivered.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(
        parts: &[(&str, i32, Option<i64>, Option<i64>)],
    ) -> BTreeMap<TopicPartition, OwnedPartition> {
        parts
            .iter()
            .map(|(t, p, end, delivered)| {
                (
                    (t.to_string(), *p),
                    OwnedPartition {
                        end: *end,
                        delivered: *delivered,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn ends_are_dated_from_the_look_before_they_moved() {
        let mut v = SourceView::default();
        v.look(1_000, owned(&[("o", 0, Some(10), Some(10))]), 1);
        assert_eq!(v.ends_since_ms, Some(1_000));
        v.look(1_100, owned(&[("o", 0, Some(10), Some(10))]), 1);
        assert_eq!(v.ends_since_ms, Some(1_000), "nothing moved");
        v.look(1_200, owned(&[("o", 0, Some(12), Some(11))]), 1);
        assert_eq!(v.ends_since_ms, Some(1_100));
        assert!(v.complete());
        // A broker may have held the fetch that brought them this long.
        v.fetch_wait_ms = 100;
        v.look(1_300, owned(&[("o", 0, Some(13), Some(12))]), 1);
        assert_eq!(v.ends_since_ms, Some(1_100));
    }

    #[test]
    fn an_error_is_kept_until_the_ends_move_again() {
        let mut v = SourceView::default();
        v.look(1_000, owned(&[("o", 0, Some(10), Some(10))]), 1);
        v.unreachable(1_050);
        v.unreachable(1_070);
        assert_eq!(v.unreachable_at_ms, Some(1_050), "the first is kept");
        v.look(1_100, owned(&[("o", 0, Some(10), Some(10))]), 1);
        assert_eq!(v.unreachable_at_ms, Some(1_050));
        v.look(1_200, owned(&[("o", 0, Some(11), Some(10))]), 1);
        assert_eq!(v.unreachable_at_ms, None, "the source answered again");
    }

    #[test]
    fn the_source_is_lost_by_the_first_sign_after_it_last_answered() {
        let mut v = SourceView::default();
        v.look(1_000, owned(&[("o", 0, Some(10), Some(10))]), 1);
        assert_eq!(v.lost_by(Some(900), None), None, "answering");
        // A dropped idle connection, then a probe answered: not lost.
        v.unreachable(1_050);
        assert_eq!(v.lost_by(Some(1_060), None), None);
        // The source fails: the flow's next error dates it, before the probes do.
        v.unreachable(1_300);
        assert_eq!(v.lost_by(Some(1_060), None), Some(1_300));
        assert_eq!(v.lost_by(Some(1_060), Some(1_800)), Some(1_300));
        // Without the flow noticing (a blackhole), the probes date it.
        let mut quiet = SourceView::default();
        quiet.look(1_000, owned(&[("o", 0, Some(10), Some(10))]), 1);
        assert_eq!(quiet.lost_by(Some(1_500), Some(2_600)), Some(2_600));
        // Ends seen moved at a look after the failure came with an answer from before it: a
        // probe that failed in between still dates the loss.
        let mut late = SourceView::default();
        late.look(1_000, owned(&[("o", 0, Some(10), Some(10))]), 1);
        late.look(1_100, owned(&[("o", 0, Some(11), Some(10))]), 1);
        assert_eq!(late.lost_by(Some(1_080), Some(1_093)), Some(1_093));
        // An error before the ends last moved is forgotten.
        let mut w = SourceView::default();
        w.look(1_000, owned(&[("o", 0, Some(10), Some(10))]), 1);
        w.unreachable(1_050);
        w.look(1_100, owned(&[("o", 0, Some(11), Some(10))]), 1);
        assert_eq!(w.lost_by(None, None), None);
    }

    #[test]
    fn a_view_missing_a_partition_an_end_or_a_position_is_not_complete() {
        let mut v = SourceView::default();
        v.look(1, owned(&[("o", 0, Some(1), Some(1))]), 2);
        assert!(!v.complete(), "one of two partitions");
        v.look(
            2,
            owned(&[("o", 0, Some(1), Some(1)), ("o", 1, None, Some(0))]),
            2,
        );
        assert!(!v.complete(), "no end yet");
        v.look(
            3,
            owned(&[("o", 0, Some(1), Some(1)), ("o", 1, Some(0), None)]),
            2,
        );
        assert!(!v.complete(), "no position yet");
        v.look(
            4,
            owned(&[("o", 0, Some(1), Some(1)), ("o", 1, Some(0), Some(0))]),
            2,
        );
        assert!(v.complete());
        assert!(!SourceView::default().complete());
    }
}
