//! The detector's output: one [`ConflictRecord`] per concurrent pair, written to
//! `strait.conflicts` on the detector's region (keyed by the record's id, so a conflict found
//! again replaces itself), and counted once per process.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use strait_conflicts::detect::{Delivery, Pair, Relation};
use strait_conflicts::lww::Version;
use strait_conflicts::Rank;

use crate::config::conflicts::{ConflictRule, Strategy};
use crate::conflicts::clock::order_check;
use crate::conflicts::output::OutputContext;
use crate::conflicts::record::{
    digest_text, ConflictRecord, Kind, Outcome, VersionRecord, CONFLICTS_TOPIC,
};

use super::spec::DetectSpec;

/// What a receipt told of a write beyond what the pure detector keeps: its timestamp as written
/// and its copy's window as taken (raw, before the clocks' bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Raw {
    pub timestamp: i64,
    pub sent_ms: i64,
    pub acked_ms: i64,
}

/// The outcome of a concurrent pair under `rule`, and the region whose version stands.
pub(crate) fn settle(
    spec: &DetectSpec,
    rule: &ConflictRule,
    key: &[u8],
    a: (&Delivery, &Raw),
    b: (&Delivery, &Raw),
) -> (Outcome, Option<Rank>) {
    match &rule.strategy {
        Strategy::LastWriterWins => {
            let version = |d: &Delivery, r: &Raw| Version {
                timestamp: r.timestamp,
                origin: d.write.origin,
                partition: d.write.partition,
                offset: d.write.offset,
                digest: d.write.digest,
            };
            let (va, vb) = (version(a.0, a.1), version(b.0, b.1));
            let winner = if va > vb { va.origin } else { vb.origin };
            (Outcome::Overwritten, Some(winner))
        }
        Strategy::Authority { .. } => {
            let owner = spec.authorities.get(&rule.name).map(|a| a.owner(key));
            match owner {
                Some(strait_conflicts::authority::Owner::Region(r))
                    if r == a.0.write.origin || r == b.0.write.origin =>
                {
                    (Outcome::OwnerWins, Some(r))
                }
                _ => (Outcome::Reported, None),
            }
        }
        Strategy::Events { .. } => (Outcome::Merged, None),
    }
}

/// The record of a concurrent pair of writes to `key` found by `spec`'s detector.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record<K, P>(
    spec: &DetectSpec,
    topic: &str,
    rule: &ConflictRule,
    key: &[u8],
    pair: &Pair<K, P>,
    raw_a: &Raw,
    raw_b: &Raw,
    detected_at_ms: i64,
) -> Option<ConflictRecord> {
    let Relation::Concurrent { certain } = pair.relation else {
        return None;
    };
    let (outcome, winner) = settle(spec, rule, key, (&pair.a, raw_a), (&pair.b, raw_b));
    let order = match rule.strategy {
        Strategy::LastWriterWins => order_check(
            &spec.clock.skews(),
            (spec.alias(pair.a.write.origin), raw_a.timestamp),
            (spec.alias(pair.b.write.origin), raw_b.timestamp),
        ),
        _ => None,
    };
    let version = |d: &Delivery, r: &Raw| VersionRecord {
        region: spec.alias(d.write.origin).to_string(),
        partition: d.write.partition,
        offset: d.write.offset,
        timestamp_ms: r.timestamp,
        value_digest: digest_text(d.write.digest),
        visible_ms: Some([r.sent_ms, r.acked_ms]),
    };
    Some(
        ConflictRecord {
            kind: Kind::ConcurrentWrites,
            topic: topic.to_string(),
            key: None,
            key_hex: None,
            rule: rule.name.clone(),
            strategy: rule.strategy.as_str().to_string(),
            versions: vec![version(&pair.a, raw_a), version(&pair.b, raw_b)],
            certain,
            winner_certain: order.map(|o| o.certain),
            skew_reach_ms: order.map(|o| o.reach_ms),
            outcome,
            winner: winner.map(|w| spec.alias(w).to_string()),
            recorded_in: spec.region.clone(),
            detected_at_ms,
        }
        .with_key(key),
    )
}

/// Writes conflict records and counts each once per job.
pub(crate) struct Writer {
    pub producer: ThreadedProducer<OutputContext>,
    /// Digests of the ids counted already by the job (a conflict found again, by a later
    /// session, is written again and counted once).
    counted: Arc<Mutex<HashSet<u64>>>,
}

impl Writer {
    pub(crate) fn new(
        producer: ThreadedProducer<OutputContext>,
        counted: Arc<Mutex<HashSet<u64>>>,
    ) -> Self {
        Self { producer, counted }
    }

    /// Hand `record` to the producer.
    pub(crate) fn write(
        &mut self,
        spec: &DetectSpec,
        record: &ConflictRecord,
    ) -> Result<(), String> {
        let id = record.id();
        let value = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let mut rec: BaseRecord<'_, str, [u8]> = BaseRecord::to(CONFLICTS_TOPIC)
            .key(id.as_str())
            .payload(&value);
        loop {
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(format!(
                        "cannot hand a conflict record to the producer: {e}"
                    ))
                }
            }
        }
        if self
            .counted
            .lock()
            .unwrap()
            .insert(crate::conflicts::resolve::digest(Some(id.as_bytes())))
        {
            let strategy = spec
                .conflicts
                .rule_for(&record.topic)
                .map_or("", |r| r.strategy.as_str());
            spec.tally.add(&record.topic, strategy, record.outcome);
        }
        Ok(())
    }

    /// Wait until every record handed over is acknowledged: true when they are, false when
    /// `give_up` says so first, an error when one failed.
    pub(crate) fn settle(&self, give_up: impl Fn() -> bool) -> Result<bool, String> {
        loop {
            if let Some(e) = self.producer.context().take_failure() {
                return Err(e);
            }
            if self.producer.in_flight_count() <= 0 {
                return Ok(true);
            }
            if give_up() {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::conflicts::tally::ConflictTally;
    use strait_conflicts::detect::Write;
    use strait_conflicts::Span;

    fn spec() -> DetectSpec {
        let c = Config::parse(
            "clusters = east, west\n\
             east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
             east->west.enabled = true\nwest->east.enabled = true\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.rules = orders, owned, log\n\
             strait.conflicts.orders.topics = orders\n\
             strait.conflicts.orders.strategy = last-writer-wins\n\
             strait.conflicts.owned.topics = accounts\n\
             strait.conflicts.owned.strategy = authority\n\
             strait.conflicts.owned.authority.east = E-.*\n\
             strait.conflicts.log.topics = events\n\
             strait.conflicts.log.strategy = events\n",
            "mm2.properties",
        )
        .unwrap();
        DetectSpec::from_config(
            &c,
            &|_| true,
            &ConflictTally::default(),
            &crate::conflicts::clock::ClockBoard::default(),
        )
        .remove(1)
    }

    /// A write of region `origin` (0 west, 1 east) at `t`, copied into the other.
    fn side(origin: Rank, offset: i64, t: i64) -> (Delivery, Raw) {
        let d = Delivery {
            write: Write {
                origin,
                partition: 1,
                offset,
                timestamp: Span::exact(t),
                digest: 7 + offset as u64,
            },
            into: 1 - origin,
            visible: Span::between(t + 100, t + 120),
        };
        let raw = Raw {
            timestamp: t,
            sent_ms: t + 100,
            acked_ms: t + 120,
        };
        (d, raw)
    }

    #[test]
    fn each_strategy_has_its_outcome() {
        let spec = spec();
        let rule = |t: &str| spec.conflicts.rule_for(t).unwrap().clone();
        let (west, rw) = side(0, 3, 1_010);
        let (east, re) = side(1, 9, 1_000);
        let lww = settle(
            &spec,
            &rule("orders"),
            b"order-1",
            (&west, &rw),
            (&east, &re),
        );
        assert_eq!(lww, (Outcome::Overwritten, Some(0)), "the later write wins");
        let owned = settle(&spec, &rule("accounts"), b"E-7", (&west, &rw), (&east, &re));
        assert_eq!(owned, (Outcome::OwnerWins, Some(1)), "east owns E-7");
        let free = settle(&spec, &rule("accounts"), b"W-7", (&west, &rw), (&east, &re));
        assert_eq!(free, (Outcome::Reported, None), "nobody owns W-7");
        let events = settle(&spec, &rule("events"), b"k", (&west, &rw), (&east, &re));
        assert_eq!(events, (Outcome::Merged, None));
    }

    #[test]
    fn a_concurrent_pair_becomes_a_record_an_update_none() {
        let spec = spec();
        let rule = spec.conflicts.rule_for("orders").unwrap().clone();
        let (west, rw) = side(0, 3, 1_010);
        let (east, re) = side(1, 9, 1_000);
        let mut pair = Pair {
            key: b"order-1".to_vec(),
            a: west,
            b: east,
            relation: Relation::Concurrent { certain: true },
            carried: ((), ()),
        };
        let r = record(&spec, "orders", &rule, b"order-1", &pair, &rw, &re, 5_000).unwrap();
        assert_eq!(r.id(), "c/orders/west:1:3/east:1:9");
        assert_eq!(r.key.as_deref(), Some("order-1"));
        assert_eq!(r.winner.as_deref(), Some("west"));
        assert_eq!(r.recorded_in, "east");
        assert_eq!(r.versions[1].visible_ms, Some([1_100, 1_120]));
        assert_eq!(r.versions[0].value_digest, digest_text(10));
        assert_eq!(r.winner_certain, None, "no skew measured yet");
        // A measured skew between west and east.
        spec.clock.sample("west", "east", 30);
        spec.clock.sample("east", "west", 50);
        let reach = spec.clock.skews()[0].reach_ms();
        assert!(reach > 10, "{reach}");
        let r = record(&spec, "orders", &rule, b"order-1", &pair, &rw, &re, 5_000).unwrap();
        assert_eq!(
            r.winner_certain,
            Some(false),
            "10 ms apart is within the skew"
        );
        assert_eq!(r.skew_reach_ms, Some(reach));
        let (far, rf) = side(0, 3, 1_000 + reach + 1);
        pair.a = far;
        let r = record(&spec, "orders", &rule, b"order-1", &pair, &rf, &re, 5_000).unwrap();
        assert_eq!(r.winner_certain, Some(true));
        pair.relation = Relation::After {
            later: strait_conflicts::detect::Side::A,
        };
        assert!(record(&spec, "orders", &rule, b"order-1", &pair, &rw, &re, 5_000).is_none());
    }
}
