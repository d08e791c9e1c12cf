//! How many conflicts this process has recorded, by topic, strategy and outcome: what
//! `strait_conflicts_total` exports. Shared by every job that records conflicts (the detector,
//! and the flows for authority violations), read at each scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::record::Outcome;

/// The counts, shareable between jobs (cloning shares them).
#[derive(Clone, Debug, Default)]
pub struct ConflictTally {
    counts: Arc<Mutex<BTreeMap<(String, &'static str, Outcome), u64>>>,
}

impl ConflictTally {
    /// One more conflict of `topic` (the local topic's name), settled by `strategy` (its
    /// `as_str`) with `outcome`.
    #[allow(dead_code)] // called by the detector and the authority path, landing next
    pub(crate) fn add(&self, topic: &str, strategy: &'static str, outcome: Outcome) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((topic.to_string(), strategy, outcome))
            .or_default() += 1;
    }

    /// Every count so far, as (topic, strategy, outcome, count), in a fixed order.
    pub fn counts(&self) -> Vec<(String, &'static str, &'static str, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((t, s, o), n)| (t.clone(), *s, o.as_str(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_topic_strategy_and_outcome_across_clones() {
        let tally = ConflictTally::default();
        let other = tally.clone();
        tally.add("orders", "last-writer-wins", Outcome::Overwritten);
        other.add("orders", "last-writer-wins", Outcome::Overwritten);
        other.add("orders", "authority", Outcome::Quarantined);
        assert_eq!(
            tally.counts(),
            vec![
                ("orders".to_string(), "authority", "quarantined", 1),
                ("orders".to_string(), "last-writer-wins", "overwritten", 2),
            ]
        );
    }
}
