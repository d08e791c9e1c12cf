//! Prometheus metrics (`/metrics`): MM2's equivalents from the running jobs' counters, and what
//! MM2 lacks (lag, heartbeat and checkpoint age, group lag, flow up) from the lag model. The
//! names are listed in the README and used by examples/prometheus-alerts.yml and
//! examples/grafana-dashboard.json.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::Observed;
use crate::monitor::{Status, Verdict};

/// Every metric strait exports: (name, help). The test suite checks that each is present.
pub const NAMES: &[(&str, &str)] = &[
    ("strait_replicated_records_total", "Records replicated and acknowledged by the target (MM2 record-count)."),
    ("strait_replicated_bytes_total", "Key and value bytes replicated (MM2 byte-count)."),
    ("strait_replication_latency_seconds", "For the last replicated record: acknowledgement time minus its source timestamp (MM2 replication-latency-ms)."),
    ("strait_offset_syncs_total", "MM2 offset syncs written."),
    ("strait_assigned_partitions", "Source partitions this process replicates now."),
    ("strait_heartbeats_total", "Heartbeats emitted."),
    ("strait_checkpoints_total", "Checkpoints emitted."),
    ("strait_group_offsets_synced_total", "Group offsets committed on the target by group offset sync."),
    ("strait_offset_index_records_pruned_total", "Offset index records tombstoned by the checkpoint job because the target no longer holds their copies."),
    ("strait_lag_records", "Source records not yet replicated, per partition."),
    ("strait_lag_seconds", "Age of the oldest source record not yet replicated, per partition (0 when caught up; MM2 record-age-ms)."),
    ("strait_flow_lag_records", "Source records not yet replicated, per flow."),
    ("strait_flow_lag_seconds", "The largest partition lag in seconds, per flow."),
    ("strait_heartbeat_age_seconds", "Age of the newest heartbeat that crossed the flow."),
    ("strait_checkpoint_age_seconds", "Age of the newest checkpoint of the flow (MM2 checkpoint-latency-ms, roughly)."),
    ("strait_group_lag_records", "A consumer group's unread records, on the source or the target (label side)."),
    ("strait_flow_up", "1 unless the flow is BROKEN (cluster unreachable or heartbeats stale)."),
    ("strait_flow_verdict", "0 OK, 1 LAGGING, 2 BROKEN."),
    ("strait_status_collection_seconds", "How long the last lag collection took."),
    ("strait_flow_errors_total", "Errors a flow met, by class (unreachable, authentication, tls, authorization, source, target, fatal)."),
    ("strait_records_skipped_total", "Source records a flow could not copy, by reason (retention: the source deleted them first)."),
    ("strait_cluster_up", "1 while the cluster answers its probes, 0 once 3 in a row failed."),
    ("strait_clock_skew_seconds", "The second region's clock minus the first's (region_a, region_b), measured from heartbeats both ways; with strait.conflicts.rules set."),
    ("strait_clock_skew_bound_seconds", "The most the true clock skew can differ from strait_clock_skew_seconds."),
    ("strait_conflicts_total", "Conflicts recorded in strait.conflicts, by topic, strategy and outcome (overwritten, owner-wins, reported, quarantined, merged)."),
    ("strait_conflict_writes_unjudged_total", "Writes a region's conflict detector could not judge, by reason: late (copied again after its direction's progress) or evicted (beyond 64 kept deliveries of one key)."),
    ("strait_conflict_deliveries_kept", "Deliveries a region's conflict detector keeps in memory: the writes of the last replication lag plus strait.conflicts.write.delay.max.ms (about 130 bytes each)."),
];

/// The metrics of [`NAMES`] that have samples only once `strait.conflicts.rules` are set (and a
/// conflict was recorded, or heartbeats crossed both ways).
pub const CONFLICTS_ONLY: &[&str] = &[
    "strait_conflicts_total",
    "strait_conflict_writes_unjudged_total",
    "strait_conflict_deliveries_kept",
    "strait_clock_skew_seconds",
    "strait_clock_skew_bound_seconds",
];

fn help(name: &str) -> &'static str {
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, h)| h)
}

/// The Prometheus registry behind `/metrics`: every metric of [`NAMES`], set from the lag model
/// after each collection ([`Metrics::update_status`]) and from the jobs' counters at each scrape
/// ([`Metrics::render`]).
pub struct Metrics {
    registry: Registry,
    counters: HashMap<&'static str, IntCounterVec>,
    int_gauges: HashMap<&'static str, IntGaugeVec>,
    gauges: HashMap<&'static str, GaugeVec>,
    /// Counter values already exported, to add only the difference at each scrape.
    seen: Mutex<HashMap<(String, Vec<String>), u64>>,
}

const FLOW: &[&str] = &["source", "target"];
const PARTITION: &[&str] = &["source", "target", "topic", "partition"];

impl Metrics {
    /// Register every metric of [`NAMES`], with no values yet.
    pub fn new() -> Self {
        let registry = Registry::new();
        let mut counters = HashMap::new();
        let mut int_gauges = HashMap::new();
        let mut gauges = HashMap::new();
        for (name, labels) in [
            "strait_replicated_records_total",
            "strait_replicated_bytes_total",
            "strait_offset_syncs_total",
            "strait_heartbeats_total",
            "strait_checkpoints_total",
            "strait_group_offsets_synced_total",
            "strait_offset_index_records_pruned_total",
        ]
        .into_iter()
        .map(|n| (n, FLOW))
        .chain([
            (
                "strait_flow_errors_total",
                &["source", "target", "class"][..],
            ),
            (
                "strait_records_skipped_total",
                &["source", "target", "reason"][..],
            ),
            (
                "strait_conflicts_total",
                &["topic", "strategy", "outcome"][..],
            ),
            (
                "strait_conflict_writes_unjudged_total",
                &["region", "reason"][..],
            ),
        ]) {
            let c = IntCounterVec::new(Opts::new(name, help(name)), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            counters.insert(name, c);
        }
        for (name, labels) in [
            ("strait_assigned_partitions", FLOW),
            ("strait_lag_records", PARTITION),
            ("strait_flow_lag_records", FLOW),
            ("strait_flow_up", FLOW),
            ("strait_flow_verdict", FLOW),
            ("strait_cluster_up", &["cluster"][..]),
            ("strait_conflict_deliveries_kept", &["region"][..]),
            (
                "strait_group_lag_records",
                &["source", "target", "group", "side"][..],
            ),
        ] {
            let g = IntGaugeVec::new(Opts::new(name, help(name)), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            int_gauges.insert(name, g);
        }
        for (name, labels) in [
            ("strait_replication_latency_seconds", FLOW),
            ("strait_lag_seconds", PARTITION),
            ("strait_flow_lag_seconds", FLOW),
            ("strait_heartbeat_age_seconds", FLOW),
            ("strait_checkpoint_age_seconds", FLOW),
            ("strait_status_collection_seconds", &[][..]),
            ("strait_clock_skew_seconds", &["region_a", "region_b"][..]),
            (
                "strait_clock_skew_bound_seconds",
                &["region_a", "region_b"][..],
            ),
        ] {
            let g = GaugeVec::new(Opts::new(name, help(name)), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            gauges.insert(name, g);
        }
        Self {
            registry,
            counters,
            int_gauges,
            gauges,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, name: &'static str, labels: &[&str], now: u64) {
        let key = (
            name.to_string(),
            labels.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        let mut seen = self.seen.lock().expect("metrics lock");
        let before = seen.insert(key, now).unwrap_or(0);
        self.counters[name]
            .with_label_values(labels)
            .inc_by(now.saturating_sub(before));
    }

    /// Take in the lag model (after each collection).
    pub fn update_status(&self, s: &Status, took_seconds: f64) {
        for name in ["strait_lag_records", "strait_group_lag_records"] {
            self.int_gauges[name].reset();
        }
        self.gauges["strait_lag_seconds"].reset();
        self.gauges["strait_status_collection_seconds"]
            .with_label_values(&[] as &[&str])
            .set(took_seconds);
        for f in &s.flows {
            let l = [f.source.as_str(), f.target.as_str()];
            // Unknown lag (source unreachable) is left out, never reported as 0.
            if f.lag_known {
                self.int_gauges["strait_flow_lag_records"]
                    .with_label_values(&l)
                    .set(f.lag_records);
                self.gauges["strait_flow_lag_seconds"]
                    .with_label_values(&l)
                    .set(f.lag_seconds);
            } else {
                let _ = self.int_gauges["strait_flow_lag_records"].remove_label_values(&l);
                let _ = self.gauges["strait_flow_lag_seconds"].remove_label_values(&l);
            }
            self.int_gauges["strait_flow_up"]
                .with_label_values(&l)
                .set(i64::from(f.verdict != Verdict::Broken));
            self.int_gauges["strait_flow_verdict"]
                .with_label_values(&l)
                .set(i64::from(f.verdict.exit_code()));
            // Unknown ages are left out rather than reported as 0.
            let hb = &self.gauges["strait_heartbeat_age_seconds"];
            match f.heartbeat_age_seconds {
                Some(a) => hb.with_label_values(&l).set(a),
                None => {
                    let _ = hb.remove_label_values(&l);
                }
            }
            let cp = &self.gauges["strait_checkpoint_age_seconds"];
            match f.checkpoint_age_seconds {
                Some(a) => cp.with_label_values(&l).set(a),
                None => {
                    let _ = cp.remove_label_values(&l);
                }
            }
            for p in &f.partition_lags {
                let partition = p.partition.to_string();
                let pl = [
                    f.source.as_str(),
                    f.target.as_str(),
                    p.topic.as_str(),
                    partition.as_str(),
                ];
                self.int_gauges["strait_lag_records"]
                    .with_label_values(&pl)
                    .set(p.lag_records);
                self.gauges["strait_lag_seconds"]
                    .with_label_values(&pl)
                    .set(p.lag_seconds);
            }
        }
        for g in &s.groups {
            let base = [g.source.as_str(), g.target.as_str(), g.group.as_str()];
            self.int_gauges["strait_group_lag_records"]
                .with_label_values(&[base[0], base[1], base[2], "source"])
                .set(g.source_lag);
            if let Some(t) = g.target_lag {
                self.int_gauges["strait_group_lag_records"]
                    .with_label_values(&[base[0], base[1], base[2], "target"])
                    .set(t);
            }
        }
    }

    /// The text exposition, with the running jobs' counters as of now.
    pub fn render(&self, observed: &Observed) -> String {
        for (s, t, stats) in &observed.flows {
            let l = [s.as_str(), t.as_str()];
            self.count(
                "strait_replicated_records_total",
                &l,
                stats.records.load(Ordering::Relaxed),
            );
            self.count(
                "strait_replicated_bytes_total",
                &l,
                stats.bytes.load(Ordering::Relaxed),
            );
            self.count(
                "strait_offset_syncs_total",
                &l,
                stats.offset_syncs.load(Ordering::Relaxed),
            );
            self.int_gauges["strait_assigned_partitions"]
                .with_label_values(&l)
                .set(stats.assigned_partitions.load(Ordering::Relaxed) as i64);
            self.gauges["strait_replication_latency_seconds"]
                .with_label_values(&l)
                .set(stats.last_latency_ms.load(Ordering::Relaxed) as f64 / 1000.0);
            for class in crate::replicate::ErrorClass::ALL {
                self.count(
                    "strait_flow_errors_total",
                    &[s.as_str(), t.as_str(), class.as_str()],
                    stats.health.errors(class),
                );
            }
            self.count(
                "strait_records_skipped_total",
                &[s.as_str(), t.as_str(), "retention"],
                stats.health.skipped_retention(),
            );
        }
        for c in &observed.clusters {
            let c = c.lock().unwrap_or_else(|e| e.into_inner());
            // Unknown (not probed enough yet) is left out rather than reported either way.
            match c.reach {
                crate::reach::Reach::Unknown => {
                    let _ = self.int_gauges["strait_cluster_up"].remove_label_values(&[&c.cluster]);
                }
                r => self.int_gauges["strait_cluster_up"]
                    .with_label_values(&[&c.cluster])
                    .set(i64::from(r == crate::reach::Reach::Up)),
            }
        }
        for (s, t, stats) in &observed.checkpoints {
            let l = [s.as_str(), t.as_str()];
            self.count(
                "strait_checkpoints_total",
                &l,
                stats.checkpoints.load(Ordering::Relaxed),
            );
            self.count(
                "strait_group_offsets_synced_total",
                &l,
                stats.group_offsets_synced.load(Ordering::Relaxed),
            );
            self.count(
                "strait_offset_index_records_pruned_total",
                &l,
                stats.index_records_pruned.load(Ordering::Relaxed),
            );
        }
        for name in [
            "strait_clock_skew_seconds",
            "strait_clock_skew_bound_seconds",
        ] {
            self.gauges[name].reset();
        }
        for k in observed.clock.skews() {
            let l = [k.a.as_str(), k.b.as_str()];
            self.gauges["strait_clock_skew_seconds"]
                .with_label_values(&l)
                .set(k.offset_ms as f64 / 1000.0);
            self.gauges["strait_clock_skew_bound_seconds"]
                .with_label_values(&l)
                .set(k.bound_ms as f64 / 1000.0);
        }
        for (region, stats) in &observed.detectors {
            self.int_gauges["strait_conflict_deliveries_kept"]
                .with_label_values(&[region.as_str()])
                .set(stats.kept.load(Ordering::Relaxed) as i64);
            for (reason, n) in [("late", &stats.late), ("evicted", &stats.evicted)] {
                self.count(
                    "strait_conflict_writes_unjudged_total",
                    &[region.as_str(), reason],
                    n.load(Ordering::Relaxed),
                );
            }
        }
        for (topic, strategy, outcome, n) in observed.conflicts.counts() {
            self.count("strait_conflicts_total", &[&topic, strategy, outcome], n);
        }
        for (s, t, sent) in &observed.heartbeats {
            self.count(
                "strait_heartbeats_total",
                &[s.as_str(), t.as_str()],
                sent.load(Ordering::Relaxed),
            );
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Shared with the server.
pub type SharedMetrics = Arc<Metrics>;
