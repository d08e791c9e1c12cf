//! The sequence check of a drill: what the producer was told was safe against what the consumer
//! actually saw, across the failover.
//!
//! Every drill record carries a sequence number. The producer logs each acknowledgement
//! ([`Ack`]), the consumer logs each record it receives ([`Delivery`]), on whichever region it
//! was working in at the time. [`verify`] sorts both logs once (O(n log n); about a second for a
//! million records) and answers the questions a DR test has to answer:
//!
//! - **lost**: acknowledged, never consumed anywhere. This is the data loss the failover caused
//!   (or a bug), and its size is the RPO in records.
//! - **redelivered**: received more than once. Legal under at-least-once; a failover that
//!   translates offsets exactly should add few of them.
//! - **gaps**: holes between the sequence numbers the consumer did see. A hole can be lost data
//!   (acknowledged) or records whose write failed (never acknowledged, so nothing was promised).
//!   Losses *above* the highest consumed number are the usual shape of an unplanned failover (the
//!   last writes to the primary never got out) and are counted apart as `lost_at_tail`.
//! - **unacked consumed**: received although the producer never saw an acknowledgement. Legal: the
//!   write landed and was replicated but the acknowledgement was lost when the region was cut.

use serde::{Deserialize, Serialize};

/// Which of the drill's two regions something happened in. A role, not a cluster name, so that
/// the check does not depend on naming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The region that is failed: before the failover.
    Primary,
    /// The region that takes over: after the failover.
    Secondary,
}

/// One acknowledgement the drill producer received: the region promised to keep `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The record's sequence number.
    pub seq: u64,
    /// The region the record was written to.
    pub side: Side,
    /// When the producer got the acknowledgement (ms since the epoch).
    pub acked_at_ms: i64,
    /// The record's own timestamp (CreateTime, ms since the epoch): when the data came into
    /// being, which is what an RPO in time is measured from.
    pub record_ts_ms: i64,
}

/// One record the drill consumer received (every receipt, duplicates included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The record's sequence number.
    pub seq: u64,
    /// The region the consumer was reading from.
    pub side: Side,
    /// When the consumer got it (ms since the epoch).
    pub received_at_ms: i64,
}

/// Sequence numbers `first..=last`. Results are lists of these, sorted, disjoint and never
/// adjacent, so that a million lost records after one cut are one line in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    /// The lowest sequence number in the range.
    pub first: u64,
    /// The highest sequence number in the range (inclusive).
    pub last: u64,
}

impl SeqRange {
    /// How many sequence numbers the range holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true (a range holds at least one number); here because clippy pairs it with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `seq` is in the range.
    pub fn contains(&self, seq: u64) -> bool {
        self.first <= seq && seq <= self.last
    }
}

impl std::fmt::Display for SeqRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// How many sequence numbers a list of ranges holds.
pub(crate) fn count(ranges: &[SeqRange]) -> u64 {
    ranges.iter().map(SeqRange::len).sum()
}

/// The lost record the RPO in time is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRecord {
    /// Its sequence number.
    pub seq: u64,
    /// The region that acknowledged it.
    pub side: Side,
    /// When the producer got the acknowledgement (ms since the epoch).
    pub acked_at_ms: i64,
    /// The record's timestamp (ms since the epoch): the failure minus this is the RPO in time.
    pub record_ts_ms: i64,
}

/// The first record the consumer received on the secondary at or after the failure: the end of
/// the outage as an application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstOnSecondary {
    /// Its sequence number.
    pub seq: u64,
    /// When the consumer got it (ms since the epoch): the failure to this is the RTO.
    pub received_at_ms: i64,
}

/// The outcome of the sequence check. Counts of deliveries include duplicates; counts of records
/// are distinct sequence numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Distinct sequence numbers acknowledged.
    pub acked: u64,
    /// Deliveries in all (duplicates included).
    pub consumed: u64,
    /// Distinct sequence numbers delivered.
    pub consumed_distinct: u64,
    /// Deliveries read from the primary.
    pub consumed_on_primary: u64,
    /// Deliveries read from the secondary.
    pub consumed_on_secondary: u64,
    /// Acknowledged and never delivered.
    pub lost: Vec<SeqRange>,
    /// How many sequence numbers `lost` holds.
    pub lost_count: u64,
    /// Lost records above the highest sequence number delivered (all of them when nothing was
    /// delivered): the writes that never left the primary before the cut.
    pub lost_at_tail: u64,
    /// Lost records whose acknowledgement came from the secondary. These were written after the
    /// failover and should never be lost: anything here is a bug, not RPO.
    pub lost_acked_on_secondary: u64,
    /// Holes between the lowest and highest sequence numbers delivered, acknowledged or not.
    pub gaps: Vec<SeqRange>,
    /// Sequence numbers delivered more than once.
    pub redelivered: Vec<SeqRange>,
    /// Distinct sequence numbers delivered more than once.
    pub redelivered_records: u64,
    /// Extra deliveries: every delivery of a sequence number after its first one.
    pub redeliveries: u64,
    /// Extra deliveries received at or after the failure: the re-reads the failover caused.
    pub redeliveries_after_failover: u64,
    /// Delivered but never acknowledged (acknowledgements lost at the cut): legal.
    pub unacked_consumed: Vec<SeqRange>,
    /// How many sequence numbers `unacked_consumed` holds.
    pub unacked_consumed_count: u64,
    /// RPO in records: the number of records lost, i.e. `lost_count`.
    pub rpo_records: u64,
    /// RPO in time: how far back before the failure data was lost. It is the failure time minus
    /// the record timestamp of the oldest lost record (smallest `record_ts_ms`), so every record
    /// lost was written no earlier than `rpo_ms` before the failure; 0 when nothing was lost, and
    /// never negative (a lost record stamped after the failure adds records, not time).
    pub rpo_ms: u64,
    /// The oldest lost record (by record timestamp), the one `rpo_ms` is measured from.
    pub oldest_lost: Option<LostRecord>,
    /// See [`FirstOnSecondary`]; `None` when the consumer never read on the secondary after the
    /// failure.
    pub first_on_secondary: Option<FirstOnSecondary>,
}

/// Appends increasing sequence numbers, merging neighbours into ranges.
#[derive(Default)]
struct Ranges {
    ranges: Vec<SeqRange>,
    count: u64,
}

impl Ranges {
    fn push(&mut self, seq: u64) {
        self.push_range(seq, seq);
    }

    fn push_range(&mut self, first: u64, last: u64) {
        self.count += last - first + 1;
        match self.ranges.last_mut() {
            Some(r) if r.last.checked_add(1) == Some(first) => r.last = last,
            _ => self.ranges.push(SeqRange { first, last }),
        }
    }
}

/// Checks a drill's producer and consumer logs against each other.
///
/// `failure_at_ms` is when the primary was failed (ms since the epoch): it splits redeliveries
/// into before and after, is the start of the search for the first record on the secondary, and
/// is what the RPO in time is measured back from. If the drill stopped before failing the region,
/// pass the time it stopped. When the same sequence number was acknowledged twice, the earliest
/// acknowledgement counts.
pub fn verify(acked: &[Ack], consumed: &[Delivery], failure_at_ms: i64) -> Verification {
    let mut acks: Vec<Ack> = acked.to_vec();
    acks.sort_unstable_by_key(|a| (a.seq, a.acked_at_ms));
    acks.dedup_by_key(|a| a.seq);

    let mut deliveries: Vec<(u64, i64, Side)> = consumed
        .iter()
        .map(|d| (d.seq, d.received_at_ms, d.side))
        .collect();
    deliveries.sort_unstable_by_key(|&(seq, at, _)| (seq, at));

    let mut consumed_on_primary = 0;
    let mut consumed_on_secondary = 0;
    let mut first_on_secondary: Option<FirstOnSecondary> = None;
    let mut distinct: Vec<u64> = Vec::with_capacity(deliveries.len());
    let mut redelivered = Ranges::default();
    let mut redeliveries = 0;
    let mut redeliveries_after_failover = 0;
    let mut gaps = Ranges::default();

    for (i, &(seq, at, side)) in deliveries.iter().enumerate() {
        match side {
            Side::Primary => consumed_on_primary += 1,
            Side::Secondary => {
                consumed_on_secondary += 1;
                if at >= failure_at_ms
                    && first_on_secondary.is_none_or(|f| (at, seq) < (f.received_at_ms, f.seq))
                {
                    first_on_secondary = Some(FirstOnSecondary {
                        seq,
                        received_at_ms: at,
                    });
                }
            }
        }
        let repeat = i > 0 && deliveries[i - 1].0 == seq;
        if repeat {
            redeliveries += 1;
            if at >= failure_at_ms {
                redeliveries_after_failover += 1;
            }
            if redelivered.ranges.last().is_none_or(|r| r.last != seq) {
                redelivered.push(seq);
            }
        } else {
            if let Some(&prev) = distinct.last() {
                if seq > prev + 1 {
                    gaps.push_range(prev + 1, seq - 1);
                }
            }
            distinct.push(seq);
        }
    }

    let max_consumed = distinct.last().copied();
    let mut lost = Ranges::default();
    let mut lost_at_tail = 0;
    let mut lost_acked_on_secondary = 0;
    let mut oldest_lost: Option<LostRecord> = None;
    let mut unacked = Ranges::default();

    let mut c = distinct.iter().copied().peekable();
    for a in &acks {
        while let Some(s) = c.next_if(|&s| s < a.seq) {
            unacked.push(s);
        }
        if c.next_if_eq(&a.seq).is_some() {
            continue;
        }
        lost.push(a.seq);
        if max_consumed.is_none_or(|m| a.seq > m) {
            lost_at_tail += 1;
        }
        if a.side == Side::Secondary {
            lost_acked_on_secondary += 1;
        }
        if oldest_lost.is_none_or(|o| (a.record_ts_ms, a.seq) < (o.record_ts_ms, o.seq)) {
            oldest_lost = Some(LostRecord {
                seq: a.seq,
                side: a.side,
                acked_at_ms: a.acked_at_ms,
                record_ts_ms: a.record_ts_ms,
            });
        }
    }
    for s in c {
        unacked.push(s);
    }

    let rpo_ms = oldest_lost.map_or(0, |o| {
        u64::try_from(failure_at_ms.saturating_sub(o.record_ts_ms)).unwrap_or(0)
    });

    Verification {
        acked: acks.len() as u64,
        consumed: deliveries.len() as u64,
        consumed_distinct: distinct.len() as u64,
        consumed_on_primary,
        consumed_on_secondary,
        lost_count: lost.count,
        lost: lost.ranges,
        lost_at_tail,
        lost_acked_on_secondary,
        gaps: gaps.ranges,
        redelivered_records: redelivered.count,
        redelivered: redelivered.ranges,
        redeliveries,
        redeliveries_after_failover,
        unacked_consumed_count: unacked.count,
        unacked_consumed: unacked.ranges,
        rpo_records: lost.count,
        rpo_ms,
        oldest_lost,
        first_on_secondary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn ack(seq: u64, side: Side, at: i64) -> Ack {
        Ack {
            seq,
            side,
            acked_at_ms: at,
            record_ts_ms: at - 5,
        }
    }

    fn del(seq: u64, side: Side, at: i64) -> Delivery {
        Delivery {
            seq,
            side,
            received_at_ms: at,
        }
    }

    fn r(first: u64, last: u64) -> SeqRange {
        SeqRange { first, last }
    }

    fn expand(ranges: &[SeqRange]) -> Vec<u64> {
        ranges.iter().flat_map(|r| r.first..=r.last).collect()
    }

    /// Sorted, disjoint, not adjacent: what every range list promises.
    fn well_formed(ranges: &[SeqRange]) -> bool {
        ranges.iter().all(|r| r.first <= r.last)
            && ranges.windows(2).all(|w| w[0].last + 1 < w[1].first)
    }

    #[test]
    fn a_typical_drill() {
        use Side::*;
        // 0..10 written to the primary at t=1000+seq*100; the cut is at t=2000.
        let mut acked: Vec<Ack> = (0..10)
            .map(|s| ack(s, Primary, 1000 + s as i64 * 100))
            .collect();
        // 10 and 11 were written, but their acks were lost at the cut.
        // 12..15 written to the secondary after the failover.
        acked.extend((12..15).map(|s| ack(s, Secondary, 3000 + s as i64)));
        // The consumer read 0..6 on the primary; 7 and 8 never left it; 9..11 were replicated.
        let mut consumed: Vec<Delivery> = (0..6)
            .map(|s| del(s, Primary, 1100 + s as i64 * 100))
            .collect();
        // After the failover it re-reads 4 and 5 from the translated offsets, then the rest.
        consumed.extend(
            [4, 5, 9, 10, 11]
                .iter()
                .map(|&s| del(s, Secondary, 2500 + s as i64)),
        );
        consumed.extend((12..15).map(|s| del(s, Secondary, 3100 + s as i64)));

        let v = verify(&acked, &consumed, 2000);
        assert_eq!(v.acked, 13);
        assert_eq!(v.consumed, 14);
        assert_eq!(v.consumed_distinct, 12);
        assert_eq!((v.consumed_on_primary, v.consumed_on_secondary), (6, 8));
        assert_eq!(v.lost, vec![r(6, 8)]);
        assert_eq!(v.lost_count, 3);
        assert_eq!(v.lost_at_tail, 0, "the consumer read past the lost ones");
        assert_eq!(v.lost_acked_on_secondary, 0);
        assert_eq!(v.gaps, vec![r(6, 8)]);
        assert_eq!(v.redelivered, vec![r(4, 5)]);
        assert_eq!((v.redelivered_records, v.redeliveries), (2, 2));
        assert_eq!(v.redeliveries_after_failover, 2);
        assert_eq!(v.unacked_consumed, vec![r(10, 11)]);
        assert_eq!(v.unacked_consumed_count, 2);
        assert_eq!(v.rpo_records, 3);
        // The oldest lost record, 6, was stamped at 1000 + 600 - 5.
        assert_eq!(v.oldest_lost.map(|o| o.seq), Some(6));
        assert_eq!(v.rpo_ms, 2000 - 1595);
        assert_eq!(
            v.first_on_secondary,
            Some(FirstOnSecondary {
                seq: 4,
                received_at_ms: 2504
            })
        );
    }

    #[test]
    fn losses_at_the_tail_and_nothing_consumed() {
        use Side::*;
        let acked: Vec<Ack> = (0..5).map(|s| ack(s, Primary, 100 + s as i64)).collect();
        let v = verify(&acked, &[], 1000);
        assert_eq!(v.lost, vec![r(0, 4)]);
        assert_eq!(v.lost_at_tail, 5);
        assert!(v.gaps.is_empty());
        assert_eq!(v.rpo_ms, 1000 - 95);
        assert_eq!(v.first_on_secondary, None);

        let consumed = [del(0, Primary, 200), del(1, Primary, 201)];
        let v = verify(&acked, &consumed, 1000);
        assert_eq!(v.lost, vec![r(2, 4)]);
        assert_eq!(v.lost_at_tail, 3);
        assert!(v.gaps.is_empty());
    }

    #[test]
    fn nothing_lost_means_zero_rpo() {
        use Side::*;
        let acked = [ack(0, Primary, 10), ack(1, Primary, 20)];
        let consumed = [del(1, Primary, 30), del(0, Primary, 25)];
        let v = verify(&acked, &consumed, 1000);
        assert_eq!(v.rpo_records, 0);
        assert_eq!(v.rpo_ms, 0);
        assert_eq!(v.oldest_lost, None);
        assert!(v.lost.is_empty() && v.gaps.is_empty() && v.redelivered.is_empty());
    }

    #[test]
    fn lost_after_the_failure_adds_records_not_time() {
        use Side::*;
        let acked = [ack(0, Secondary, 5000)];
        let v = verify(&acked, &[], 1000);
        assert_eq!(v.rpo_records, 1);
        assert_eq!(v.rpo_ms, 0);
        assert_eq!(v.lost_acked_on_secondary, 1);
    }

    #[test]
    fn the_earliest_acknowledgement_of_a_sequence_number_counts() {
        use Side::*;
        let acked = [ack(3, Secondary, 900), ack(3, Primary, 100)];
        let v = verify(&acked, &[], 1000);
        assert_eq!(v.acked, 1);
        assert_eq!(v.oldest_lost.map(|o| o.side), Some(Primary));
        assert_eq!(v.lost_acked_on_secondary, 0);
    }

    #[test]
    fn redeliveries_before_the_failure_are_not_the_failovers() {
        use Side::*;
        let consumed = [
            del(1, Primary, 10),
            del(1, Primary, 20), // a rebalance, before the failure
            del(1, Secondary, 2000),
            del(2, Secondary, 1500), // read on the secondary before the failure: not "first"
            del(2, Secondary, 2100),
        ];
        let v = verify(&[], &consumed, 1000);
        assert_eq!(v.redeliveries, 3);
        assert_eq!(v.redelivered_records, 2);
        assert_eq!(v.redeliveries_after_failover, 2);
        assert_eq!(v.redelivered, vec![r(1, 2)]);
        assert_eq!(v.unacked_consumed, vec![r(1, 2)]);
        assert_eq!(
            v.first_on_secondary,
            Some(FirstOnSecondary {
                seq: 2,
                received_at_ms: 1500
            })
        );
    }

    #[test]
    fn ranges_display_and_count() {
        assert_eq!(r(4, 4).to_string(), "4");
        assert_eq!(r(4, 9).to_string(), "4-9");
        assert_eq!(count(&[r(0, 0), r(2, 11)]), 11);
        assert!(r(2, 11).contains(11) && !r(2, 11).contains(12));
    }

    #[test]
    fn a_million_records() {
        use Side::*;
        let n = 1_000_000u64;
        let acked: Vec<Ack> = (0..n).map(|s| ack(s, Primary, s as i64)).collect();
        // Delivered in reverse order, the last 1000 missing, every 1000th twice.
        let mut consumed: Vec<Delivery> = (0..n - 1000)
            .rev()
            .map(|s| del(s, Primary, s as i64))
            .collect();
        consumed.extend(
            (0..n - 1000)
                .step_by(1000)
                .map(|s| del(s, Secondary, n as i64 + s as i64)),
        );
        let v = verify(&acked, &consumed, n as i64);
        assert_eq!(v.lost, vec![r(n - 1000, n - 1)]);
        assert_eq!(v.redeliveries, (n - 1000) / 1000);
        assert_eq!(v.redelivered.len() as u64, (n - 1000) / 1000);
    }

    /// The same questions answered the slow, obvious way.
    struct Model {
        lost: Vec<u64>,
        gaps: Vec<u64>,
        unacked: Vec<u64>,
        redelivered: Vec<u64>,
        redeliveries: u64,
    }

    fn model(acked: &[Ack], consumed: &[Delivery]) -> Model {
        let acked: BTreeSet<u64> = acked.iter().map(|a| a.seq).collect();
        let mut times: BTreeMap<u64, u64> = BTreeMap::new();
        for d in consumed {
            *times.entry(d.seq).or_default() += 1;
        }
        let gaps = match (times.keys().next(), times.keys().next_back()) {
            (Some(&lo), Some(&hi)) => (lo..=hi).filter(|s| !times.contains_key(s)).collect(),
            _ => vec![],
        };
        Model {
            lost: acked
                .iter()
                .copied()
                .filter(|s| !times.contains_key(s))
                .collect(),
            gaps,
            unacked: times
                .keys()
                .copied()
                .filter(|s| !acked.contains(s))
                .collect(),
            redelivered: times
                .iter()
                .filter(|(_, &n)| n > 1)
                .map(|(&s, _)| s)
                .collect(),
            redeliveries: times.values().map(|n| n - 1).sum(),
        }
    }

    fn side(secondary: bool) -> Side {
        if secondary {
            Side::Secondary
        } else {
            Side::Primary
        }
    }

    proptest! {
        /// The drill's shape: consume what was acknowledged, lose a suffix, re-read some.
        #[test]
        fn a_dropped_suffix_is_lost_and_duplicates_are_redelivered(
            seqs in proptest::collection::btree_set(0u64..500, 0..120),
            drop in 0usize..40,
            dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
            failure_at in 0i64..1100,
        ) {
            let seqs: Vec<u64> = seqs.into_iter().collect();
            let acked: Vec<Ack> = seqs.iter().map(|&s| ack(s, Side::Primary, s as i64)).collect();
            let keep = seqs.len().saturating_sub(drop);
            let (kept, dropped) = seqs.split_at(keep);
            let mut consumed: Vec<Delivery> =
                kept.iter().map(|&s| del(s, Side::Primary, s as i64)).collect();
            let mut dup_seqs = BTreeSet::new();
            let mut dups_after = 0;
            if !kept.is_empty() {
                for (i, d) in dups.iter().enumerate() {
                    let s = *d.get(kept);
                    dup_seqs.insert(s);
                    // Later than the original, so it is the repeat.
                    let at = 1000 + i as i64;
                    if at >= failure_at {
                        dups_after += 1;
                    }
                    consumed.push(del(s, side(i % 2 == 0), at));
                }
            }

            let v = verify(&acked, &consumed, failure_at);
            prop_assert_eq!(expand(&v.lost), dropped.to_vec());
            prop_assert_eq!(v.lost_count, dropped.len() as u64);
            prop_assert_eq!(v.lost_at_tail, dropped.len() as u64);
            prop_assert_eq!(v.rpo_records, dropped.len() as u64);
            prop_assert_eq!(v.redeliveries, if kept.is_empty() { 0 } else { dups.len() as u64 });
            prop_assert_eq!(v.redeliveries_after_failover, dups_after);
            prop_assert_eq!(expand(&v.redelivered), dup_seqs.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(v.unacked_consumed_count, 0);
            // Nothing acknowledged escapes both lists.
            let lost: BTreeSet<u64> = expand(&v.lost).into_iter().collect();
            let seen: BTreeSet<u64> = consumed.iter().map(|d| d.seq).collect();
            prop_assert!(seqs.iter().all(|s| lost.contains(s) || seen.contains(s)));
            prop_assert!(lost.is_disjoint(&seen));
        }

        /// Any logs at all: the same answers as the obvious model, in well-formed ranges.
        #[test]
        fn matches_the_model(
            acked in proptest::collection::vec((0u64..200, any::<bool>(), 0i64..1000), 0..150),
            consumed in proptest::collection::vec((0u64..200, any::<bool>(), 0i64..1000), 0..200),
            failure_at in 0i64..1000,
        ) {
            let acked: Vec<Ack> = acked
                .into_iter()
                .map(|(s, sec, at)| ack(s, side(sec), at))
                .collect();
            let consumed: Vec<Delivery> = consumed
                .into_iter()
                .map(|(s, sec, at)| del(s, side(sec), at))
                .collect();
            let v = verify(&acked, &consumed, failure_at);
            let m = model(&acked, &consumed);

            for ranges in [&v.lost, &v.gaps, &v.unacked_consumed, &v.redelivered] {
                prop_assert!(well_formed(ranges));
            }
            prop_assert_eq!(expand(&v.lost), m.lost.clone());
            prop_assert_eq!(expand(&v.gaps), m.gaps);
            prop_assert_eq!(expand(&v.unacked_consumed), m.unacked);
            prop_assert_eq!(expand(&v.redelivered), m.redelivered);
            prop_assert_eq!(v.redeliveries, m.redeliveries);
            prop_assert_eq!(v.lost_count, count(&v.lost));
            prop_assert_eq!(v.unacked_consumed_count, count(&v.unacked_consumed));
            prop_assert_eq!(v.redelivered_records, count(&v.redelivered));
            prop_assert_eq!(v.consumed, consumed.len() as u64);
            prop_assert_eq!(v.consumed_on_primary + v.consumed_on_secondary, v.consumed);
            prop_assert_eq!(v.consumed + m.lost.len() as u64 >= v.acked, true);

            // RPO in time: measured from the oldest lost record, never negative.
            let oldest = acked_min_ts_of_lost(&acked, &m.lost);
            prop_assert_eq!(v.oldest_lost.map(|o| o.record_ts_ms), oldest);
            prop_assert_eq!(v.rpo_ms, oldest.map_or(0, |ts| (failure_at - ts).max(0) as u64));

            let first = consumed
                .iter()
                .filter(|d| d.side == Side::Secondary && d.received_at_ms >= failure_at)
                .map(|d| d.received_at_ms)
                .min();
            prop_assert_eq!(v.first_on_secondary.map(|f| f.received_at_ms), first);
        }
    }

    /// The record timestamp of the oldest lost record, taking each sequence number's earliest
    /// acknowledgement as `verify` does.
    fn acked_min_ts_of_lost(acked: &[Ack], lost: &[u64]) -> Option<i64> {
        let mut first: BTreeMap<u64, Ack> = BTreeMap::new();
        for a in acked {
            let e = first.entry(a.seq).or_insert(*a);
            if a.acked_at_ms < e.acked_at_ms {
                *e = *a;
            }
        }
        lost.iter().map(|s| first[s].record_ts_ms).min()
    }
}
