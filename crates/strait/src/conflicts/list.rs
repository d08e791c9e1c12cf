//! What `strait conflicts` and the dashboard show: the records of `strait.conflicts`, read from
//! each region's cluster to its end as of now, one per conflict (both regions record a conflict
//! between them under one id: the first found is kept), oldest first.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::record::{ConflictRecord, CONFLICTS_TOPIC};
use crate::config::Config;
use crate::kafka::Endpoint;

/// Why conflicts could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// `--region` names no region of the file.
    #[error("`{0}` is not a conflict region of the file ({1})")]
    NotARegion(String, String),
    /// The file has no conflict rules.
    #[error("the file sets no `strait.conflicts.rules`: strait records no conflicts for it")]
    NoRules,
    /// A cluster did not answer or refused.
    #[error("cannot read {CONFLICTS_TOPIC} on {region} ({address}): {reason}")]
    Unreachable {
        /// The region's alias.
        region: String,
        /// Its bootstrap servers.
        address: String,
        /// What the client said.
        reason: String,
    },
}

/// Which conflicts to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this topic's (the local topic's name).
    pub topic: Option<String>,
    /// Only those found at or after this instant (ms since the epoch).
    pub since_ms: Option<i64>,
}

/// One conflict as recorded.
#[derive(Clone, Debug)]
pub struct Listed(ConflictRecord);

impl Listed {
    /// The record as written (the JSON of `strait.conflicts`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// When it was found (ms since the epoch).
    pub fn detected_at_ms(&self) -> i64 {
        self.0.detected_at_ms
    }

    /// One line: when, topic, key, strategy and outcome, the versions, whether certain.
    pub fn line(&self) -> String {
        let r = &self.0;
        let when = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + Duration::from_millis(r.detected_at_ms.max(0) as u64),
        );
        let key = match (&r.key, &r.key_hex) {
            (Some(k), _) => k.clone(),
            (None, Some(h)) => format!("0x{h}"),
            (None, None) => "-".into(),
        };
        let versions: Vec<String> = r
            .versions
            .iter()
            .map(|v| {
                format!(
                    "{}:{}@{} (t={})",
                    v.region, v.partition, v.offset, v.timestamp_ms
                )
            })
            .collect();
        let mut line = format!(
            "{when}  {}  {key}  {} {}",
            r.topic,
            r.strategy,
            r.outcome.as_str()
        );
        if let Some(w) = &r.winner {
            line.push_str(&format!(" (winner {w})"));
        }
        line.push_str(&format!("  {}", versions.join(" vs ")));
        if !r.certain {
            line.push_str("  uncertain");
        }
        if let (Some(false), Some(reach)) = (r.winner_certain, r.skew_reach_ms) {
            line.push_str(&format!("  winner uncertain (clock skew reach {reach} ms)"));
        }
        line
    }
}

/// The cluster of region `alias`, with consumer properties: those of a flow into it, else out
/// of it.
pub(crate) fn endpoint(config: &Config, alias: &str) -> Option<Endpoint> {
    config
        .flows
        .iter()
        .find(|f| f.target == alias)
        .map(|f| f.clients.target_consumer.clone())
        .or_else(|| {
            config
                .flows
                .iter()
                .find(|f| f.source == alias)
                .map(|f| f.clients.source_consumer.clone())
        })
}

/// The conflicts recorded in `region` (every conflict region when `None`) that `filter` keeps,
/// one per id, oldest first.
pub async fn list(
    config: &Config,
    region: Option<&str>,
    filter: &Filter,
    timeout: Duration,
) -> Result<Vec<Listed>, ListError> {
    let c = &config.conflicts;
    if c.rules.is_empty() {
        return Err(ListError::NoRules);
    }
    let regions: Vec<String> = match region {
        Some(r) if c.rank(r).is_some() => vec![r.to_string()],
        Some(r) => return Err(ListError::NotARegion(r.into(), c.regions.join(", "))),
        None => c.regions.clone(),
    };
    let mut reads = Vec::new();
    for r in regions {
        let Some(ep) = endpoint(config, &r) else {
            continue;
        };
        reads.push(tokio::task::spawn_blocking(move || {
            read(&ep, timeout).map_err(|reason| ListError::Unreachable {
                region: r.clone(),
                address: ep.bootstrap_servers().to_string(),
                reason,
            })
        }));
    }
    let mut all = Vec::new();
    for h in reads {
        all.extend(h.await.unwrap_or_else(|e| {
            Err(ListError::Unreachable {
                region: "?".into(),
                address: "?".into(),
                reason: e.to_string(),
            })
        })?);
    }
    Ok(merge(all, filter).into_iter().map(Listed).collect())
}

/// One record per id (the first found), those `filter` keeps, oldest first.
fn merge(records: Vec<ConflictRecord>, filter: &Filter) -> Vec<ConflictRecord> {
    let mut by_id: HashMap<String, ConflictRecord> = HashMap::new();
    for r in records {
        if filter.topic.as_ref().is_some_and(|t| *t != r.topic)
            || filter.since_ms.is_some_and(|s| r.detected_at_ms < s)
        {
            continue;
        }
        let id = r.id();
        match by_id.get(&id) {
            Some(k) if k.detected_at_ms <= r.detected_at_ms => {}
            _ => {
                by_id.insert(id, r);
            }
        }
    }
    let mut out: Vec<(String, ConflictRecord)> = by_id.into_iter().collect();
    out.sort_by(|(a_id, a), (b_id, b)| (a.detected_at_ms, a_id).cmp(&(b.detected_at_ms, b_id)));
    out.into_iter().map(|(_, r)| r).collect()
}

/// Every conflict record of `strait.conflicts` on `ep`'s cluster (the last of each key), read to
/// its end as of now; empty when the topic does not exist.
fn read(ep: &Endpoint, timeout: Duration) -> Result<Vec<ConflictRecord>, String> {
    let mut cfg = ep.consumer_config("strait-internal-reader");
    cfg.set("client.id", format!("strait-{}-conflicts", ep.alias));
    let consumer: BaseConsumer<crate::kafka::diagnose::Diagnosed> = cfg
        .create_with_context(ep.context())
        .map_err(|e| e.to_string())?;
    let md = consumer
        .fetch_metadata(Some(CONFLICTS_TOPIC), timeout)
        .map_err(|e| e.to_string())?;
    let Some(t) = md
        .topics()
        .iter()
        .find(|t| t.name() == CONFLICTS_TOPIC && t.error().is_none())
    else {
        return Ok(Vec::new());
    };
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (lo, hi) = consumer
            .fetch_watermarks(CONFLICTS_TOPIC, p.id(), timeout)
            .map_err(|e| e.to_string())?;
        if hi > lo {
            ends.insert((CONFLICTS_TOPIC.to_string(), p.id()), hi);
            tpl.add_partition_offset(CONFLICTS_TOPIC, p.id(), Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut latest: HashMap<Vec<u8>, Option<ConflictRecord>> = HashMap::new();
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout.max(Duration::from_secs(10));
    let read = read_to_ends(&consumer, &mut ends, deadline, |m| {
        let record = m
            .payload()
            .and_then(|v| serde_json::from_slice::<ConflictRecord>(v).ok());
        latest.insert(m.key().unwrap_or_default().to_vec(), record);
    })?;
    if !read {
        return Err(format!("not read to its end within {}s", timeout.as_secs()));
    }
    Ok(latest.into_values().flatten().collect())
}

/// Poll `consumer` (assigned where the reading starts) until every partition of `ends` is read
/// to its end offset, handing each record to `each`: true once all are, false at `deadline`.
/// A compacted partition can end with empty offsets: a position at the end is the end.
pub(crate) fn read_to_ends<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    ends: &mut BTreeMap<(String, i32), i64>,
    deadline: Instant,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<bool, String> {
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Ok(false);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let at = (m.topic().to_string(), m.partition());
                if ends.get(&at).is_some_and(|e| m.offset() + 1 >= *e) {
                    ends.remove(&at);
                }
                each(&m);
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => {
                if let Ok(pos) = consumer.position() {
                    for e in pos.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            let at = (e.topic().to_string(), e.partition());
                            if ends.get(&at).is_some_and(|end| o >= *end) {
                                ends.remove(&at);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conflicts::record::{Kind, Outcome, VersionRecord};

    fn record(recorded_in: &str, offset: i64, at: i64, topic: &str) -> ConflictRecord {
        let v = |region: &str, offset| VersionRecord {
            region: region.into(),
            partition: 0,
            offset,
            timestamp_ms: 1_000,
            value_digest: "00".into(),
            visible_ms: Some([1_100, 1_200]),
        };
        ConflictRecord {
            kind: Kind::ConcurrentWrites,
            topic: topic.into(),
            key: None,
            key_hex: None,
            rule: "orders".into(),
            strategy: "last-writer-wins".into(),
            versions: vec![v("west", offset), v("east", 3)],
            certain: offset % 2 == 0,
            winner_certain: None,
            skew_reach_ms: None,
            outcome: Outcome::Overwritten,
            winner: Some("east".into()),
            recorded_in: recorded_in.into(),
            detected_at_ms: at,
        }
        .with_key(b"order-123")
    }

    #[test]
    fn one_line_per_conflict_oldest_first_filtered() {
        let all = vec![
            record("east", 2, 50, "orders"),
            record("west", 2, 40, "orders"), // the same conflict, found first in west
            record("east", 1, 10, "orders"),
            record("east", 5, 60, "ledger"),
        ];
        let got = merge(all.clone(), &Filter::default());
        let summary: Vec<(i64, &str)> = got
            .iter()
            .map(|r| (r.detected_at_ms, r.recorded_in.as_str()))
            .collect();
        assert_eq!(summary, [(10, "east"), (40, "west"), (60, "east")]);
        let orders = merge(
            all.clone(),
            &Filter {
                topic: Some("orders".into()),
                since_ms: Some(20),
            },
        );
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].detected_at_ms, 40);
        let line = Listed(got[0].clone()).line();
        assert_eq!(
            line,
            "1970-01-01T00:00:00.010Z  orders  order-123  last-writer-wins overwritten (winner east)  west:0@1 (t=1000) vs east:0@3 (t=1000)  uncertain"
        );
        assert_eq!(Listed(got[1].clone()).to_json()["recorded_in"], "west");
        let mut close = got[1].clone();
        close.winner_certain = Some(false);
        close.skew_reach_ms = Some(90);
        assert!(
            Listed(close)
                .line()
                .ends_with("  winner uncertain (clock skew reach 90 ms)"),
            "the stamps are within the skew's reach"
        );
    }
}
