//! The one place where instants of different clocks are moved onto strait's clock, the
//! reference clock of conflict detection (see `strait_conflicts::detect`).
//!
//! Two kinds of instants meet there: record timestamps, taken by each region's producers (or
//! brokers), and the instants strait takes itself when it copies a record (sent, acknowledged).
//! For now each region's clock is trusted to within a configured tolerance
//! (`strait.conflicts.clock.tolerance.ms`): a timestamp `t` of any region is `t ± tolerance` on
//! strait's clock, and strait's own instants are widened by the same tolerance (strait runs as
//! several processes, one per region, each with its own clock). The skew measured from
//! heartbeats will replace the configured tolerance here, and only here.

use strait_conflicts::{Rank, Span};

/// How long after its timestamp a record may be appended to its partition at most: a producer's
/// delivery timeout (the Java producer's `delivery.timeout.ms` default is 120 s). A record
/// stamped earlier than that before an instant was appended before it; progress marks rely on
/// it (see `receipts`).
pub(crate) const WRITE_DELAY_MAX_MS: i64 = 120_000;

/// Moves instants onto strait's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clocks {
    /// How far any clock may be from strait's, in ms.
    tolerance_ms: i64,
}

impl Clocks {
    /// Every clock within `tolerance_ms` of strait's.
    pub(crate) fn new(tolerance_ms: i64) -> Self {
        Self {
            tolerance_ms: tolerance_ms.max(0),
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
    /// delivered (a later append of an earlier stamp is at most [`WRITE_DELAY_MAX_MS`] late).
    pub(crate) fn progress(&self, _region: Rank, appended_before_ms: i64) -> i64 {
        appended_before_ms
            .saturating_sub(WRITE_DELAY_MAX_MS)
            .saturating_sub(2 * self.tolerance_ms)
    }
}

#[cfg(test)]
mod tests {
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
            delay in 0i64..=WRITE_DELAY_MAX_MS,
            skew in -2_000i64..2_000,
        ) {
            let skew = skew.clamp(-tolerance, tolerance);
            let clocks = Clocks::new(tolerance);
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
        let c = Clocks::new(5);
        assert_eq!(c.visible(100, 140), Span { lo: 95, hi: 145 });
        assert_eq!(Clocks::new(-3).stamp(1, 7), Span::exact(7));
    }
}
