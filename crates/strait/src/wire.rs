//! MirrorMaker 2's internal record formats (MM2-SPEC §3), byte for byte, so that MM2 tools and
//! MM2 itself can read what strait writes, and strait can read what MM2 wrote.
//!
//! All integers are big-endian; strings are Kafka protocol STRINGs (i16 length + UTF-8).

/// A record that does not decode: too short, bad UTF-8 or a negative length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} record: {reason}")]
pub struct DecodeError {
    /// Which record format failed: `offset sync`, `checkpoint`, `heartbeat` or `offset index`.
    pub kind: &'static str,
    /// What was wrong with the bytes, for the log.
    pub reason: String,
}

/// Offset sync (topic `mm2-offset-syncs.<cluster>.internal`, partition 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetSync {
    /// Upstream (source) topic name, not renamed.
    pub topic: String,
    /// Partition number, the same on both clusters (MM2 key field `partition`).
    pub partition: i32,
    /// Offset of the record on the source (MM2 value field `upstreamOffset`).
    pub upstream_offset: i64,
    /// Offset its copy got in the remote topic on the target (MM2 value field `offset`).
    pub downstream_offset: i64,
}

/// Checkpoint (topic `<source>.checkpoints.internal` on the target, partition 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Consumer group id, the same on both clusters (MM2 key field `group`).
    pub group: String,
    /// Downstream (renamed) topic.
    pub topic: String,
    /// Partition number, the same on both clusters (MM2 key field `partition`).
    pub partition: i32,
    /// The group's committed offset on the source (MM2 value field `upstreamOffset`).
    pub upstream_offset: i64,
    /// That position translated to the remote topic on the target (MM2 value field `offset`);
    /// what group offset sync commits there.
    pub downstream_offset: i64,
    /// The commit metadata the group stored with its source offset, passed through (MM2 value
    /// field `metadata`).
    pub metadata: String,
}

/// Heartbeat (topic `heartbeats`, partition 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Alias of the cluster the heartbeat's flow starts from (MM2 key field
    /// `sourceClusterAlias`).
    pub source: String,
    /// Alias of the cluster it was written to (MM2 key field `targetClusterAlias`).
    pub target: String,
    /// Epoch milliseconds when emitted.
    pub timestamp: i64,
}

impl OffsetSync {
    /// Record key: `STRING topic`, `INT32 partition`, as MM2's `OffsetSync.KEY_SCHEMA`.
    pub fn key(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(2 + self.topic.len() + 4);
        put_str(&mut b, &self.topic);
        b.extend_from_slice(&self.partition.to_be_bytes());
        b
    }

    /// Record value: `INT64 upstreamOffset`, `INT64 offset` (no version header, as MM2).
    pub fn value(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.upstream_offset.to_be_bytes());
        b.extend_from_slice(&self.downstream_offset.to_be_bytes());
        b
    }

    /// Reads an offset sync record as MM2 or strait wrote it; trailing bytes are ignored.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new("offset sync", key);
        let mut v = Reader::new("offset sync", value);
        Ok(Self {
            topic: k.string()?,
            partition: k.i32()?,
            upstream_offset: v.i64()?,
            downstream_offset: v.i64()?,
        })
    }
}

impl Checkpoint {
    /// Record key: `STRING group`, `STRING topic`, `INT32 partition`, as MM2's
    /// `Checkpoint.KEY_SCHEMA`.
    pub fn key(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_str(&mut b, &self.group);
        put_str(&mut b, &self.topic);
        b.extend_from_slice(&self.partition.to_be_bytes());
        b
    }

    /// Record value: `INT16 version (=0)`, `INT64 upstreamOffset`, `INT64 offset`,
    /// `STRING metadata`.
    pub fn value(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(20 + self.metadata.len());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&self.upstream_offset.to_be_bytes());
        b.extend_from_slice(&self.downstream_offset.to_be_bytes());
        put_str(&mut b, &self.metadata);
        b
    }

    /// Any header version is read as version 0, as MM2 does.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new("checkpoint", key);
        let mut v = Reader::new("checkpoint", value);
        let group = k.string()?;
        let topic = k.string()?;
        let partition = k.i32()?;
        let _version = v.i16()?;
        Ok(Self {
            group,
            topic,
            partition,
            upstream_offset: v.i64()?,
            downstream_offset: v.i64()?,
            metadata: v.string()?,
        })
    }
}

impl Heartbeat {
    /// Record key: `STRING sourceClusterAlias`, `STRING targetClusterAlias`, as MM2's
    /// `Heartbeat.KEY_SCHEMA`.
    pub fn key(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_str(&mut b, &self.source);
        put_str(&mut b, &self.target);
        b
    }

    /// Record value: `INT16 version (=0)`, `INT64 timestamp`.
    pub fn value(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(10);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b
    }

    /// Reads a heartbeat record; any header version is read as version 0, as MM2 does.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new("heartbeat", key);
        let mut v = Reader::new("heartbeat", value);
        let source = k.string()?;
        let target = k.string()?;
        let _version = v.i16()?;
        Ok(Self {
            source,
            target,
            timestamp: v.i64()?,
        })
    }
}

/// A run of the exact offset index (strait's own format, topic
/// `strait-offset-index.<source>.internal` on the target, partition 0, compacted): `len` records
/// whose upstream offsets `upstream_start..` were written at downstream offsets
/// `downstream_start..`, one for one. The key names the run by its first downstream offset, so a
/// run that grows is rewritten under the same key and compaction keeps its latest length.
///
/// - key: `STRING topic` (upstream, not renamed), `INT32 partition`, `INT64 downstreamStart`
/// - value: `INT16 version (=0)`, `INT64 upstreamStart`, `INT64 length`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRun {
    /// Upstream (source) topic name, not renamed.
    pub topic: String,
    /// Partition number, the same on both clusters.
    pub partition: i32,
    /// Target offset of the run's first record; part of the key, so it names the run.
    pub downstream_start: i64,
    /// Source offset of the run's first record.
    pub upstream_start: i64,
    /// Number of records in the run (at least 1).
    pub len: i64,
}

impl IndexRun {
    /// Record key: `STRING topic`, `INT32 partition`, `INT64 downstreamStart`.
    pub fn key(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(2 + self.topic.len() + 12);
        put_str(&mut b, &self.topic);
        b.extend_from_slice(&self.partition.to_be_bytes());
        b.extend_from_slice(&self.downstream_start.to_be_bytes());
        b
    }

    /// Record value: `INT16 version (=0)`, `INT64 upstreamStart`, `INT64 length`.
    pub fn value(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(18);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&self.upstream_start.to_be_bytes());
        b.extend_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Reads a run record; a run with a length under 1 or a negative offset is an error.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new("offset index", key);
        let mut v = Reader::new("offset index", value);
        let topic = k.string()?;
        let partition = k.i32()?;
        let downstream_start = k.i64()?;
        let _version = v.i16()?;
        let upstream_start = v.i64()?;
        let len = v.i64()?;
        if len < 1 || upstream_start < 0 || downstream_start < 0 {
            return Err(DecodeError {
                kind: "offset index",
                reason: format!("impossible run: upstream {upstream_start}, downstream {downstream_start}, length {len}"),
            });
        }
        Ok(Self {
            topic,
            partition,
            downstream_start,
            upstream_start,
            len,
        })
    }
}

/// Kafka STRING: i16 length then UTF-8. Names longer than 32767 bytes cannot occur in Kafka
/// (topic names are at most 249 bytes); longer metadata is cut at a character boundary.
fn put_str(b: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    b.extend_from_slice(&(end as i16).to_be_bytes());
    b.extend_from_slice(&s.as_bytes()[..end]);
}

struct Reader<'a> {
    kind: &'static str,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(kind: &'static str, buf: &'a [u8]) -> Self {
        Self { kind, buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError {
                kind: self.kind,
                reason: format!("needed {n} more bytes, {} left", self.buf.len()),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.i16()?;
        if len < 0 {
            return Err(DecodeError {
                kind: self.kind,
                reason: format!("negative string length {len}"),
            });
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| DecodeError {
            kind: self.kind,
            reason: format!("string is not UTF-8: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    #[test]
    fn heartbeat_bytes_match_spec_example() {
        let hb = Heartbeat {
            source: "A".into(),
            target: "B".into(),
            timestamp: 1_700_000_000_000,
        };
        assert_eq!(hb.key(), hex("00 01 41 00 01 42"));
        assert_eq!(hb.value(), hex("00 00 00 00 01 8b cf e5 68 00"));
        assert_eq!(Heartbeat::decode(&hb.key(), &hb.value()).unwrap(), hb);
    }

    #[test]
    fn checkpoint_bytes_match_spec_example() {
        let cp = Checkpoint {
            group: "g1".into(),
            topic: "A.orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 991,
            metadata: String::new(),
        };
        assert_eq!(
            cp.key(),
            hex("00 02 67 31 00 08 41 2e 6f 72 64 65 72 73 00 00 00 03")
        );
        assert_eq!(
            cp.value(),
            hex("00 00 00 00 00 00 00 00 03 e8 00 00 00 00 00 00 03 df 00 00")
        );
        assert_eq!(Checkpoint::decode(&cp.key(), &cp.value()).unwrap(), cp);
    }

    #[test]
    fn offset_sync_bytes_match_spec_example() {
        let s = OffsetSync {
            topic: "orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 990,
        };
        assert_eq!(s.key(), hex("00 06 6f 72 64 65 72 73 00 00 00 03"));
        assert_eq!(
            s.value(),
            hex("00 00 00 00 00 00 03 e8 00 00 00 00 00 00 03 de")
        );
        assert_eq!(OffsetSync::decode(&s.key(), &s.value()).unwrap(), s);
    }

    #[test]
    fn short_or_bad_records_are_errors_not_panics() {
        assert!(OffsetSync::decode(&[0, 6, b'o'], &[0; 16]).is_err());
        assert!(OffsetSync::decode(&hex("00 01 41 00 00 00 01"), &[0; 15]).is_err());
        assert!(Checkpoint::decode(&hex("ff ff"), &[]).is_err());
        assert!(Heartbeat::decode(
            &hex("00 02 ff fe 00 00"),
            &hex("00 00 00 00 00 00 00 00 00 00")
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn round_trips(topic in "[a-zA-Z0-9._-]{1,249}", p in any::<i32>(), u in any::<i64>(), d in any::<i64>(), meta in ".{0,40}") {
            let s = OffsetSync { topic: topic.clone(), partition: p, upstream_offset: u, downstream_offset: d };
            prop_assert_eq!(OffsetSync::decode(&s.key(), &s.value()).unwrap(), s);
            let c = Checkpoint { group: meta.clone(), topic, partition: p, upstream_offset: u, downstream_offset: d, metadata: meta };
            prop_assert_eq!(Checkpoint::decode(&c.key(), &c.value()).unwrap(), c);
        }

        #[test]
        fn decoding_garbage_never_panics(k in proptest::collection::vec(any::<u8>(), 0..40), v in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = OffsetSync::decode(&k, &v);
            let _ = Checkpoint::decode(&k, &v);
            let _ = Heartbeat::decode(&k, &v);
        }
    }
}
