//! How far apart two regions' clocks are, measured from timings both ways (as NTP does).
//!
//! A message sent from A at `s` (A's clock) and received in B at `r` (B's clock) took
//! `d_ab = r - s = delay_ab + θ`, where θ is B's clock minus A's. The other way,
//! `d_ba = delay_ba - θ`. With both delays at least zero:
//!
//! ```text
//!     θ ≈ (d_ab - d_ba) / 2,    |error| <= (d_ab + d_ba) / 2
//! ```
//!
//! Taking the smallest `d_ab` and the smallest `d_ba` of a window keeps the bound as tight as
//! the quickest messages allow (the bound holds for any pair of samples, so also for the two
//! minima). strait's samples are heartbeats: written in one region with that region's clock and
//! seen arriving in the other with the other's.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The estimate: B's clock minus A's, within `bound` either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skew {
    /// B's clock minus A's, in milliseconds.
    pub offset_ms: i64,
    /// The most the true offset can differ from `offset_ms`, in milliseconds.
    pub bound_ms: i64,
}

/// Timings between two regions A and B over the last `window` samples each way.
#[derive(Clone, Debug)]
pub struct SkewEstimator {
    window: usize,
    ab: VecDeque<i64>,
    ba: VecDeque<i64>,
}

impl SkewEstimator {
    /// An estimator over the last `window` samples each way (at least one).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            ab: VecDeque::new(),
            ba: VecDeque::new(),
        }
    }

    /// A message sent from A at `sent` (A's clock) arrived in B at `received` (B's clock).
    pub fn a_to_b(&mut self, sent: i64, received: i64) {
        push(&mut self.ab, self.window, received.saturating_sub(sent));
    }

    /// A message sent from B at `sent` (B's clock) arrived in A at `received` (A's clock).
    pub fn b_to_a(&mut self, sent: i64, received: i64) {
        push(&mut self.ba, self.window, received.saturating_sub(sent));
    }

    /// The estimate, once there is a sample each way.
    pub fn estimate(&self) -> Option<Skew> {
        let ab = *self.ab.iter().min()?;
        let ba = *self.ba.iter().min()?;
        Some(Skew {
            offset_ms: (ab - ba).div_euclid(2),
            // Rounded up, so that halving an odd sum never narrows the bound.
            bound_ms: (ab + ba + 1).div_euclid(2),
        })
    }
}

fn push(q: &mut VecDeque<i64>, window: usize, d: i64) {
    if q.len() == window {
        q.pop_front();
    }
    q.push_back(d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_clock_ahead_by_five_seconds_is_measured() {
        let mut e = SkewEstimator::new(8);
        // B is 5 s ahead; 40 ms there, 60 ms back.
        e.a_to_b(1_000, 1_000 + 40 + 5_000);
        e.b_to_a(10_000 + 5_000, 10_000 + 60);
        let s = e.estimate().unwrap();
        assert_eq!(
            s,
            Skew {
                offset_ms: 4_990,
                bound_ms: 50
            }
        );
        assert!((s.offset_ms - 5_000).abs() <= s.bound_ms);
    }

    #[test]
    fn nothing_is_said_before_both_ways_are_heard() {
        let mut e = SkewEstimator::new(8);
        e.a_to_b(0, 10);
        assert_eq!(e.estimate(), None);
    }

    proptest! {
        /// Whatever the offset and the (non-negative) delays, the true offset is within the
        /// bound of the estimate.
        #[test]
        fn the_truth_is_within_the_bound(
            theta in -100_000i64..100_000,
            there in prop::collection::vec((0i64..1_000_000, 0i64..5_000), 1..20),
            back in prop::collection::vec((0i64..1_000_000, 0i64..5_000), 1..20),
            window in 1usize..10,
        ) {
            let mut e = SkewEstimator::new(window);
            for (at, delay) in there {
                e.a_to_b(at, at + delay + theta);
            }
            for (at, delay) in back {
                e.b_to_a(at + theta, at + delay);
            }
            let s = e.estimate().unwrap();
            prop_assert!((s.offset_ms - theta).abs() <= s.bound_ms, "{s:?} vs {theta}");
        }
    }
}
