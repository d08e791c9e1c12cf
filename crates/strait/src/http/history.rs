//! The last 15 minutes of each flow's lag, kept in memory for the dashboard's chart.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::monitor::Status;

/// How far back the history goes.
pub(crate) const WINDOW_MS: i64 = 15 * 60 * 1000;

/// One sample: epoch ms, lag in records, lag in seconds, heartbeat age in seconds (if any).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Point(pub i64, pub i64, pub f64, pub Option<f64>);

/// A flow's samples, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct FlowHistory {
    pub source: String,
    pub target: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Default)]
pub(crate) struct History {
    flows: BTreeMap<(String, String), VecDeque<Point>>,
}

impl History {
    /// Add a status sample and forget what is older than the window.
    pub(crate) fn record(&mut self, s: &Status) {
        // A flow whose lag is unknown (source unreachable) gets no point: a gap, not a false 0.
        for f in s.flows.iter().filter(|f| f.lag_known) {
            let q = self
                .flows
                .entry((f.source.clone(), f.target.clone()))
                .or_default();
            q.push_back(Point(
                s.generated_at_ms,
                f.lag_records,
                f.lag_seconds,
                f.heartbeat_age_seconds,
            ));
        }
        let cutoff = s.generated_at_ms - WINDOW_MS;
        for q in self.flows.values_mut() {
            while q.front().is_some_and(|p| p.0 < cutoff) {
                q.pop_front();
            }
        }
    }

    pub(crate) fn flows(&self) -> Vec<FlowHistory> {
        self.flows
            .iter()
            .map(|((source, target), q)| FlowHistory {
                source: source.clone(),
                target: target.clone(),
                points: q.iter().copied().collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::model::{FlowStatus, Verdict};

    fn status(at: i64, lag: i64) -> Status {
        Status {
            generated_at_ms: at,
            verdict: Verdict::Ok,
            lag_threshold_seconds: 30.0,
            active_regions: vec![],
            clusters: vec![],
            clock_skews: vec![],
            flows: vec![FlowStatus {
                source: "a".into(),
                target: "b".into(),
                verdict: Verdict::Ok,
                reasons: vec![],
                topics: 1,
                partitions: 1,
                lag_known: true,
                lag_records: lag,
                lag_seconds: 0.5,
                heartbeat_age_seconds: Some(1.0),
                heartbeat_topic: None,
                checkpoint_age_seconds: None,
                groups_known: true,
                partition_lags: vec![],
                replicated_from: crate::monitor::model::ReplicatedFrom::Commits,
                delivery: crate::monitor::model::Delivery::AtLeastOnce,
                replicated_age_seconds: 0.0,
                process: None,
            }],
            groups: vec![],
        }
    }

    #[test]
    fn keeps_fifteen_minutes() {
        let mut h = History::default();
        for i in 0..2000 {
            h.record(&status(i * 1000, i));
        }
        let f = &h.flows()[0];
        assert_eq!(f.points.first().unwrap().0, 1999 * 1000 - WINDOW_MS);
        assert_eq!(f.points.len() as i64, WINDOW_MS / 1000 + 1);
        assert_eq!(f.points.last().unwrap().1, 1999);
    }
}
