//! `strait.region.*`: how fast `strait run` declares a region down. MirrorMaker 2 ignores
//! `strait.` keys (they name no cluster), so the same file runs under both.
//!
//! Each region is probed with a metadata request on a kept-alive connection every
//! `strait.region.probe.interval.ms` (default 100), each probe waiting at most
//! `strait.region.probe.timeout.ms` (default 1000: above the round trip to the farthest region).
//! A region is down once its probes have failed for `strait.region.down.after.ms` in a row
//! (default 3000), at least three of them; one answer calls it up again. A shorter time decides
//! faster and risks calling a slow moment an outage. The probes also date a loss for the RPO
//! estimate (`monitor::snapshot`): a failed probe says the region was gone by its start plus a
//! round trip, so the shorter the interval, the tighter the estimate's upper bound.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{KeyRef, Problem};
use super::model::Sourced;

/// The keys of this namespace.
pub(crate) const PREFIX: &str = "strait.region.";
const INTERVAL_KEY: &str = "strait.region.probe.interval.ms";
const TIMEOUT_KEY: &str = "strait.region.probe.timeout.ms";
const DOWN_AFTER_KEY: &str = "strait.region.down.after.ms";

/// How each region is watched (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionWatch {
    /// How often a region is probed.
    pub probe_every: Duration,
    /// How long one probe waits for an answer.
    pub probe_timeout: Duration,
    /// How long probes must fail in a row before a region is down.
    pub down_after: Duration,
}

impl Default for RegionWatch {
    fn default() -> Self {
        Self {
            probe_every: Duration::from_millis(100),
            probe_timeout: Duration::from_secs(1),
            down_after: Duration::from_secs(3),
        }
    }
}

impl RegionWatch {
    /// How long after a region stops answering it is declared down, at most: the time, one
    /// interval before the first failed probe, and the last probe's timeout.
    pub fn verdict_within(&self) -> Duration {
        self.down_after + self.probe_every + self.probe_timeout
    }
}

/// Read the `strait.region.` keys of `keys`.
pub(crate) fn parse(keys: &BTreeMap<String, Sourced>) -> Result<RegionWatch, (KeyRef, Problem)> {
    let mut watch = RegionWatch::default();
    for (key, src) in keys {
        let ms = src
            .value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (10..=3_600_000).contains(n))
            .map(Duration::from_millis)
            .ok_or_else(|| {
                (
                    src.at.clone(),
                    Problem::NotANumber {
                        value: src.value.trim().to_string(),
                        expected: "a number of milliseconds from 10 to 3600000",
                    },
                )
            });
        match key.as_str() {
            INTERVAL_KEY => watch.probe_every = ms?,
            TIMEOUT_KEY => watch.probe_timeout = ms?,
            DOWN_AFTER_KEY => watch.down_after = ms?,
            _ => {
                return Err((
                    src.at.clone(),
                    Problem::Conflicts(format!(
                        "strait knows no such setting; under `{PREFIX}` it has `{INTERVAL_KEY}`, `{TIMEOUT_KEY}` and `{DOWN_AFTER_KEY}`"
                    )),
                ))
            }
        }
    }
    Ok(watch)
}
