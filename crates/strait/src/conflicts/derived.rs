//! What the dashboard shows of the topics strait derives in each region: the resolved views of
//! last-writer-wins topics and the merged streams of event topics, each with how many records
//! were written to it and its newest records. Read from each region's cluster as it is now (no
//! running job needed), so an operator sees both regions' views side by side converge.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::conflicts::{MARKS_TOPIC, MERGED_SUFFIX, VIEW_SUFFIX};
use crate::config::Config;
use crate::conflicts::resolve::ORIGIN_HEADER;
use crate::kafka::Endpoint;

/// How much of a value is shown.
const VALUE_CHARS: usize = 80;

/// One derived topic in one region.
#[derive(Clone, Debug, Serialize)]
pub struct DerivedTopic {
    /// The region whose cluster holds it.
    pub region: String,
    /// Its name (`orders.resolved`, `order-events.merged`).
    pub topic: String,
    /// `resolved-view` or `merged-stream`.
    pub kind: &'static str,
    /// Records written to it so far (the sum of its partitions' end offsets; a compacted view
    /// holds fewer).
    pub written: i64,
    /// Its newest records, newest first.
    pub latest: Vec<DerivedRecord>,
}

/// One record of a derived topic, for display.
#[derive(Clone, Debug, Serialize)]
pub struct DerivedRecord {
    /// The key, as text (bytes that are not UTF-8 are replaced).
    pub key: String,
    /// The value's first characters, as text; None for a tombstone.
    pub value: Option<String>,
    /// Its timestamp (the winning version's, or the event's effective time).
    pub timestamp_ms: i64,
    /// The region that wrote the version (the `strait.origin` header).
    pub origin: Option<String>,
    /// Where it is in the derived topic.
    pub partition: i32,
    /// Where it is in the derived topic.
    pub offset: i64,
}

/// The derived topics of every conflict region with their newest `latest` records each; a
/// region that cannot be read is named in the error.
pub async fn derived(
    config: &Config,
    latest: usize,
    timeout: Duration,
) -> Result<Vec<DerivedTopic>, String> {
    let derived = config.conflicts.derived();
    let mut reads = Vec::new();
    for region in config.conflicts.regions.clone() {
        let Some(ep) = super::list::endpoint(config, &region) else {
            continue;
        };
        let derived = derived.clone();
        reads.push(tokio::task::spawn_blocking(move || {
            read(
                &ep,
                &|t| t != MARKS_TOPIC && derived.contains(t),
                latest,
                timeout,
            )
            .map_err(|e| format!("{region} ({}): {e}", ep.bootstrap_servers()))
        }));
    }
    let mut out = Vec::new();
    for h in reads {
        out.extend(h.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

/// The topics on `ep`'s cluster that `pick` takes, with their newest `latest` records.
fn read(
    ep: &Endpoint,
    pick: &dyn Fn(&str) -> bool,
    latest: usize,
    timeout: Duration,
) -> Result<Vec<DerivedTopic>, String> {
    let mut cfg = ep.consumer_config("strait-internal-reader");
    cfg.set("client.id", format!("strait-{}-derived", ep.alias));
    let consumer: BaseConsumer<crate::kafka::diagnose::Diagnosed> = cfg
        .create_with_context(ep.context())
        .map_err(|e| e.to_string())?;
    let md = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| e.to_string())?;
    let mut topics: BTreeMap<String, DerivedTopic> = BTreeMap::new();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for t in md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && pick(t.name()))
    {
        let kind = if t.name().ends_with(VIEW_SUFFIX) {
            "resolved-view"
        } else if t.name().ends_with(MERGED_SUFFIX) {
            "merged-stream"
        } else {
            continue;
        };
        let mut written = 0;
        for p in t.partitions() {
            let (lo, hi) = consumer
                .fetch_watermarks(t.name(), p.id(), timeout)
                .map_err(|e| e.to_string())?;
            written += hi;
            if hi > lo {
                let from = lo.max(hi - latest as i64);
                ends.insert((t.name().to_string(), p.id()), hi);
                tpl.add_partition_offset(t.name(), p.id(), Offset::Offset(from))
                    .map_err(|e| e.to_string())?;
            }
        }
        topics.insert(
            t.name().to_string(),
            DerivedTopic {
                region: ep.alias.clone(),
                topic: t.name().to_string(),
                kind,
                written,
                latest: Vec::new(),
            },
        );
    }
    if !ends.is_empty() {
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
    }
    // What is not read by the deadline is left out: the dashboard shows what it has.
    super::list::read_to_ends(&consumer, &mut ends, Instant::now() + timeout, |m| {
        if let Some(t) = topics.get_mut(m.topic()) {
            t.latest.push(shown(m));
        }
    })?;
    Ok(topics
        .into_values()
        .map(|mut t| {
            let view = t.kind == "resolved-view";
            t.latest = newest(std::mem::take(&mut t.latest), latest, view);
            t
        })
        .collect())
}

/// The `n` newest of `records` by timestamp; of a view, one per key: a key's last record in its
/// partition is what the view holds for it (an earlier one in the tail was replaced). A merged
/// stream's records are events, each shown.
fn newest(records: Vec<DerivedRecord>, n: usize, view: bool) -> Vec<DerivedRecord> {
    let mut out = if view {
        let mut last: BTreeMap<(i32, String), DerivedRecord> = BTreeMap::new();
        for r in records {
            let at = (r.partition, r.key.clone());
            if last.get(&at).is_none_or(|k| k.offset < r.offset) {
                last.insert(at, r);
            }
        }
        last.into_values().collect()
    } else {
        records
    };
    out.sort_by_key(|r| std::cmp::Reverse((r.timestamp_ms, r.partition, r.offset)));
    out.truncate(n);
    out
}

/// A record as the dashboard shows it.
fn shown<M: Message>(m: &M) -> DerivedRecord {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    DerivedRecord {
        key: m.key().map(text).unwrap_or_default(),
        value: m.payload().map(|v| {
            let s = text(v);
            match s.char_indices().nth(VALUE_CHARS) {
                Some((i, _)) => format!("{}…", &s[..i]),
                None => s,
            }
        }),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(-1),
        origin: m.headers().and_then(|h| {
            h.iter()
                .filter(|h| h.key == ORIGIN_HEADER)
                .last()
                .and_then(|h| h.value)
                .map(text)
        }),
        partition: m.partition(),
        offset: m.offset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, partition: i32, offset: i64, timestamp_ms: i64) -> DerivedRecord {
        DerivedRecord {
            key: key.into(),
            value: Some(format!("{key}@{offset}")),
            timestamp_ms,
            origin: None,
            partition,
            offset,
        }
    }

    #[test]
    fn a_views_newest_are_one_per_key_its_last_in_the_partition() {
        let got = newest(
            vec![
                rec("a", 0, 5, 100),
                rec("b", 1, 2, 300),
                // `a` again later in its partition, with an older timestamp (a merged stream's
                // effective time, or a view's winner taken in late): it is what the topic holds.
                rec("a", 0, 7, 50),
                rec("c", 1, 3, 200),
            ],
            2,
            true,
        );
        let shown: Vec<(&str, i64)> = got.iter().map(|r| (r.key.as_str(), r.offset)).collect();
        assert_eq!(shown, [("b", 2), ("c", 3)]);
        let all = newest(vec![rec("a", 0, 5, 100), rec("a", 0, 7, 50)], 8, true);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].offset, 7);
        let events = newest(vec![rec("a", 0, 5, 100), rec("a", 0, 7, 50)], 8, false);
        assert_eq!(events.len(), 2, "a merged stream's events are each shown");
    }
}
