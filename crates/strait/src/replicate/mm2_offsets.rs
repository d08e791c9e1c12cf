//! MirrorMaker 2's own record of how far it replicated, read and written byte for byte, so that
//! strait and MM2 take over from each other without copying a topic again. Pure, no I/O.
//!
//! MM2's source connector runs in a Kafka Connect worker, which keeps the offset of the last
//! record copied from each source partition in its offsets topic on the target
//! (`mm2-offsets.<S>.internal` unless `offset.storage.topic` says otherwise). The key is
//! `["MirrorSourceConnector",{"cluster":"<S>","partition":<P>,"topic":"<T>"}]` and the value
//! `{"offset":<N>}`, as Connect's JsonConverter writes them; MM2 resumes at N + 1. Connect
//! looks a position up by the key's bytes, and reads the topic's partitions in no set order, so
//! strait writes keys exactly as Connect does and to the partition Kafka's Java producer would
//! pick (murmur2 of the key): anything else could let an older position win over a newer one.
//!
//! To the values it writes strait adds one field, `"strait.topic.id"`: the id of the source topic
//! the position was taken on (see `kafka::topic_ids`), so that a position of a topic since
//! deleted and created again is not used. Connect and MM2 read only `offset`.

use std::collections::HashMap;

use serde_json::Value;

/// The name under which MM2's dedicated mode runs its source connector, the first element of
/// every key it stores.
pub const CONNECTOR: &str = "MirrorSourceConnector";

/// The Kafka Connect defaults for the offsets topic (`offset.storage.partitions`,
/// `offset.storage.replication.factor`), used when strait creates it.
pub const DEFAULT_PARTITIONS: i32 = 25;

/// The offsets topic of flow `source`->T: Connect's default name, per source cluster.
pub fn default_topic(source: &str) -> String {
    format!("mm2-offsets.{source}.internal")
}

/// The key of `cluster`'s partition `topic`-`partition`, as Connect writes it. The map's fields
/// are in the order Java's `HashMap` yields them for these three names (cluster, partition,
/// topic), which Jackson keeps.
pub fn key(cluster: &str, topic: &str, partition: i32) -> Vec<u8> {
    let s = |v: &str| Value::String(v.to_string()).to_string();
    format!(
        "[{},{{\"cluster\":{},\"partition\":{partition},\"topic\":{}}}]",
        s(CONNECTOR),
        s(cluster),
        s(topic)
    )
    .into_bytes()
}

/// The value saying that every record before `next` of the topic with id `topic_id` was copied:
/// `{"offset":next-1}`, with `"strait.topic.id"` when the id is known. None for `next` <= 0:
/// nothing was copied, and MM2 has no way to say so but silence.
pub fn value(next: i64, topic_id: Option<&str>) -> Option<Vec<u8>> {
    (next > 0).then(|| {
        let id = topic_id.map_or(String::new(), |id| {
            format!(",\"{TOPIC_ID}\":{}", Value::String(id.to_string()))
        });
        format!("{{\"offset\":{}{id}}}", next - 1).into_bytes()
    })
}

/// The field strait adds to the values it writes.
const TOPIC_ID: &str = "strait.topic.id";

/// One decoded record of the offsets topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The source cluster's alias, as MM2 wrote it in the key.
    pub cluster: String,
    /// The source topic.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// The next offset to copy; None when the position was removed (a tombstone or a null
    /// offset, as Connect's offset reset writes).
    pub next: Option<i64>,
    /// The id of the topic the position was taken on, when strait wrote it.
    pub topic_id: Option<String>,
}

/// A record of the offsets topic, if it is a position of MM2's source connector. Records of other
/// connectors (MM2's checkpoint connector, or anything sharing the worker) are None.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Position> {
    let key: Value = serde_json::from_slice(key).ok()?;
    let [connector, partition] = key.as_array()?.as_slice() else {
        return None;
    };
    if connector.as_str()? != CONNECTOR {
        return None;
    }
    let cluster = partition.get("cluster")?.as_str()?.to_string();
    let topic = partition.get("topic")?.as_str()?.to_string();
    let partition = i32::try_from(partition.get("partition")?.as_i64()?).ok()?;
    let value = value
        .filter(|v| !v.is_empty())
        .and_then(|v| serde_json::from_slice::<Value>(v).ok());
    let next = value
        .as_ref()
        .and_then(|v| v.get("offset")?.as_i64())
        .map(|last| last + 1);
    let topic_id = next
        .and(value.as_ref())
        .and_then(|v| Some(v.get(TOPIC_ID)?.as_str()?.to_string()));
    Some(Position {
        cluster,
        topic,
        partition,
        next,
        topic_id,
    })
}

/// The records that keep MM2's positions equal to strait's commits: one per partition whose
/// committed offset changed since the last call.
#[derive(Debug)]
pub struct PositionLog {
    /// The source alias MM2 writes in its keys (`source.cluster.alias`).
    cluster: String,
    /// Partitions of the offsets topic.
    partitions: i32,
    /// Key -> the position last handed over for writing.
    written: HashMap<Vec<u8>, i64>,
}

/// One record for the offsets topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionRecord {
    /// The offsets topic's partition to write to, as Kafka's Java producer would pick it.
    pub partition: i32,
    /// The key, byte for byte as Connect writes it (see [`key`]).
    pub key: Vec<u8>,
    /// The value (see [`value`]).
    pub value: Vec<u8>,
}

impl PositionLog {
    /// A log that has written nothing yet, for source alias `cluster` and an offsets topic of
    /// `partitions` partitions.
    pub fn new(cluster: &str, partitions: i32) -> Self {
        Self {
            cluster: cluster.to_string(),
            partitions,
            written: HashMap::new(),
        }
    }

    /// Records for the commits in `committed` (source partition, next offset to copy, the
    /// topic's id) that differ from what was last written.
    pub fn changed<'a>(
        &mut self,
        committed: impl IntoIterator<Item = (&'a str, i32, i64, Option<&'a str>)>,
    ) -> Vec<PositionRecord> {
        let mut out = Vec::new();
        for (topic, p, next, id) in committed {
            let key = key(&self.cluster, topic, p);
            if self.written.get(&key) == Some(&next) {
                continue;
            }
            let Some(value) = value(next, id) else {
                continue;
            };
            self.written.insert(key.clone(), next);
            out.push(PositionRecord {
                partition: partition_for(&key, self.partitions),
                key,
                value,
            });
        }
        out
    }

    /// The record with `key` was not written: write it again at the next change or commit.
    pub fn forget(&mut self, key: &[u8]) {
        self.written.remove(key);
    }

    /// A write failed (which one is not known): write every position again.
    pub fn forget_all(&mut self) {
        self.written.clear();
    }
}

/// The partition Kafka's Java producer gives `key` in a topic of `partitions` partitions.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Kafka's `Utils.murmur2`, the hash behind the Java producer's default partitioner.
fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn murmur2_matches_kafkas_utils() {
        // Kafka's UtilsTest.testMurmur2 vectors.
        for (data, want) in [
            (&b"21"[..], -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ] {
            assert_eq!(murmur2(data), want, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keys_and_values_are_connects_bytes() {
        assert_eq!(
            key("us-east", "orders", 3),
            br#"["MirrorSourceConnector",{"cluster":"us-east","partition":3,"topic":"orders"}]"#
        );
        assert_eq!(value(42, None).unwrap(), br#"{"offset":41}"#);
        assert_eq!(value(0, Some("x")), None);
    }

    #[test]
    fn decodes_positions_and_resets() {
        let k = key("A", "t", 0);
        assert_eq!(
            decode(&k, Some(br#"{"offset":9}"#)),
            Some(Position {
                cluster: "A".into(),
                topic: "t".into(),
                partition: 0,
                next: Some(10),
                topic_id: None,
            })
        );
        assert_eq!(decode(&k, None).unwrap().next, None);
        assert_eq!(decode(&k, Some(b"")).unwrap().next, None);
        assert_eq!(decode(&k, Some(br#"{"offset":null}"#)).unwrap().next, None);
        // The checkpoint connector's positions, and records that are not Connect's.
        let other = br#"["MirrorCheckpointConnector",{"group":"g","partition":0,"topic":"t"}]"#;
        assert_eq!(decode(other, Some(br#"{"offset":1}"#)), None);
        assert_eq!(decode(b"not json", Some(b"{}")), None);
    }

    #[test]
    fn only_changed_positions_are_written_again() {
        let mut log = PositionLog::new("A", 25);
        let first = log.changed([("t", 0, 10, None), ("t", 1, 0, None), ("u", 0, 3, None)]);
        assert_eq!(
            first.len(),
            2,
            "nothing is written for a partition with nothing copied"
        );
        assert_eq!(first[0].value, br#"{"offset":9}"#);
        assert_eq!(first[0].partition, partition_for(&key("A", "t", 0), 25));
        assert!(log
            .changed([("t", 0, 10, None), ("u", 0, 3, None)])
            .is_empty());
        log.forget(&key("A", "u", 0));
        assert_eq!(
            log.changed([("t", 0, 10, None), ("u", 0, 3, None)]).len(),
            1
        );
        let next = log.changed([("t", 0, 11, Some("Id-1"))]);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].value, br#"{"offset":10,"strait.topic.id":"Id-1"}"#);
    }

    proptest! {
        #[test]
        fn what_is_written_reads_back(
            cluster in "[a-zA-Z0-9._\\-\"\\\\ ]{1,12}",
            topic in "[a-zA-Z0-9._\\-]{1,40}",
            partition in 0i32..100_000,
            next in 1i64..i64::MAX,
            partitions in 1i32..200,
            id: bool,
        ) {
            let k = key(&cluster, &topic, partition);
            let topic_id = id.then(|| "MsNb3TKmQVqHL2o4lPKWbA".to_string());
            let p = decode(&k, value(next, topic_id.as_deref()).as_deref()).unwrap();
            prop_assert_eq!(p, Position { cluster, topic, partition, next: Some(next), topic_id });
            let to = partition_for(&k, partitions);
            prop_assert!((0..partitions).contains(&to));
        }
    }
}
