//! Last-writer-wins, the same in every region.
//!
//! Each region keeps a resolved view of a conflict topic: for each key, the version with the
//! latest timestamp, ties broken by the region order (the region listed first wins), then by
//! partition and offset. "Keep the greater" is a join: associative, commutative, idempotent.
//! So two regions that have taken in the same versions hold the same view, whatever order the
//! versions came in, however often one was taken in again (a restart re-reading), and
//! whichever side of a cut wrote what. What the view drops is never silent: every version that
//! loses is returned to the caller, to be recorded.

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::Rank;

/// One version of a key, as last-writer-wins sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version {
    /// The record's timestamp, in milliseconds, as written (last-writer-wins trusts the
    /// writers' clocks; see [`crate::skew`] for how far it can).
    pub timestamp: i64,
    /// The region written in.
    pub origin: Rank,
    /// Where in that region's topic.
    pub partition: i32,
    /// Where in that region's topic.
    pub offset: i64,
    /// A digest of the value, to report which value won.
    pub digest: u64,
}

impl Version {
    /// Greater wins: later timestamp, then the region earlier in the order, then the later
    /// write within one region.
    fn precedence(&self) -> (i64, Reverse<Rank>, i32, i64) {
        (
            self.timestamp,
            Reverse(self.origin),
            self.partition,
            self.offset,
        )
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.precedence()
            .cmp(&other.precedence())
            .then(self.digest.cmp(&other.digest))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What taking a version in did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// It is the key's winner now; `replaced` lost to it.
    Won {
        /// The version that held the key before, if any.
        replaced: Option<Version>,
    },
    /// It lost to the key's winner.
    Lost {
        /// The version that keeps the key.
        winner: Version,
    },
    /// It is the key's winner already (taken in before).
    Again,
}

/// The resolved view of one conflict topic: the winner of each key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View<K: Eq + Hash> {
    winners: HashMap<K, Version>,
}

impl<K: Eq + Hash> View<K> {
    /// An empty view.
    pub fn new() -> Self {
        Self {
            winners: HashMap::new(),
        }
    }

    /// The key's winner.
    pub fn get(&self, key: &K) -> Option<&Version> {
        self.winners.get(key)
    }

    /// Keys in the view.
    pub fn len(&self) -> usize {
        self.winners.len()
    }

    /// Whether no key is in the view.
    pub fn is_empty(&self) -> bool {
        self.winners.is_empty()
    }

    /// Take in one version of `key`.
    pub fn offer(&mut self, key: K, v: Version) -> Offer {
        match self.winners.entry(key) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
                Offer::Won { replaced: None }
            }
            std::collections::hash_map::Entry::Occupied(mut e) => match v.cmp(e.get()) {
                Ordering::Greater => Offer::Won {
                    replaced: Some(e.insert(v)),
                },
                Ordering::Equal => Offer::Again,
                Ordering::Less => Offer::Lost { winner: *e.get() },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(timestamp: i64, origin: Rank, offset: i64) -> Version {
        Version {
            timestamp,
            origin,
            partition: 0,
            offset,
            digest: offset as u64 * 31 + u64::from(origin),
        }
    }

    #[test]
    fn the_later_timestamp_wins_and_the_loser_is_told() {
        let mut view = View::new();
        let shipped = v(1_000, 0, 7);
        let cancelled = v(1_010, 1, 3);
        assert_eq!(
            view.offer("order-123", shipped),
            Offer::Won { replaced: None }
        );
        assert_eq!(
            view.offer("order-123", cancelled),
            Offer::Won {
                replaced: Some(shipped)
            }
        );
        assert_eq!(
            view.offer("order-123", shipped),
            Offer::Lost { winner: cancelled }
        );
        assert_eq!(view.offer("order-123", cancelled), Offer::Again);
    }

    #[test]
    fn on_equal_timestamps_the_region_first_in_the_order_wins() {
        let mut view = View::new();
        view.offer("k", v(5, 1, 1));
        assert!(matches!(view.offer("k", v(5, 0, 1)), Offer::Won { .. }));
    }

    proptest! {
        /// Two regions taking in the same versions in different orders, some twice, end with
        /// the same view: each key's greatest version.
        #[test]
        fn every_arrival_order_converges(
            versions in prop::collection::vec((0u8..5, 0i64..20, 0u16..2), 1..60),
            seed in any::<u64>(),
        ) {
            let vs: Vec<(u8, Version)> = versions
                .iter()
                .enumerate()
                .map(|(i, &(k, t, r))| (k, v(t, r, i as i64)))
                .collect();
            let mut east = View::new();
            for &(k, x) in &vs {
                east.offer(k, x);
            }
            // Another order, with repeats (a restart reading some again).
            let mut order: Vec<usize> = (0..vs.len()).chain(0..vs.len() / 2).collect();
            let mut s = seed;
            for i in (1..order.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut west = View::new();
            let mut lost = 0;
            for &i in &order {
                let (k, x) = vs[i];
                match west.offer(k, x) {
                    Offer::Lost { .. } | Offer::Won { replaced: Some(_) } => lost += 1,
                    _ => {}
                }
            }
            prop_assert_eq!(&east, &west);
            for (k, w) in &west.winners {
                let max = vs.iter().filter(|(kk, _)| kk == k).map(|(_, x)| *x).max().unwrap();
                prop_assert_eq!(*w, max);
            }
            // Every distinct version but the winners was reported lost at least once.
            prop_assert!(lost >= vs.len() - west.len());
        }
    }
}
