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
        let (topic, partition, upstream_offset, downstream_offset) =
            Self::decode_in_place(key, value)?;
        Ok(Self {
            topic: topic.to_string(),
            partition,
            upstream_offset,
            downstream_offset,
        })
    }

    /// [`OffsetSync::decode`] with the topic left in the key: (topic, partition, upstream offset,
    /// downstream offset). A reader of a whole syncs topic, one sync per replicated gap, takes
    /// millions of them, and copying each topic name is a good part of the work.
    pub(crate) fn decode_in_place<'k>(
        key: &'k [u8],
        value: &[u8],
    ) -> Result<(&'k str, i32, i64, i64), DecodeError> {
        let mut k = Reader::new("offset sync", key);
        let mut v = Reader::new("offset sync", value);
        Ok((k.str()?, k.i32()?, v.i64()?, v.i64()?))
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

/// A run of the exact offset index, value version 0 (strait's own format, topic
/// `strait-offset-index.<source>.internal` on the target, partition 0, compacted): `len` records
/// whose upstream offsets `upstream_start..` were written at downstream offsets
/// `downstream_start..`, one for one. The key names the run by its first downstream offset, so a
/// run that grows is rewritten under the same key and compaction keeps its latest length.
///
/// - key: `STRING topic` (upstream, not renamed), `INT32 partition`, `INT64 downstreamStart`
/// - value: `INT16 version (=0)`, `INT64 upstreamStart`, `INT64 length`
///
/// strait no longer writes these (one record per run never shrinks: see [`IndexBlock`]), but
/// still reads them from index topics written by earlier releases.
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

/// The last byte of a block key (a version-0 run key has none).
const BLOCK_KEY: u8 = 1;
/// The last byte of a floor key.
const FLOOR_KEY: u8 = 2;
/// Second byte after the version of every version-1 value: an older strait reads bytes 2..10 of
/// any index value as the run's upstream start, sees a negative number and skips the record as
/// malformed instead of taking a block for a run.
const V1_GUARD: u8 = 0xff;

/// One entry of an [`IndexBlock`]: `repeat` runs of `len` records each, every one of them starting
/// `up_gap` upstream offsets and `down_gap` downstream offsets after the end of the run before it
/// (for the block's first run: after the block's upstream and downstream start). One entry is
/// therefore a whole train of runs with the same shape: a transactional producer that writes
/// single-record transactions (record, commit marker, record, ...) is one entry
/// `(1, 0, 1, n)`, however many transactions it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Upstream offsets between the end of the previous run and this one (holes upstream).
    pub up_gap: i64,
    /// Downstream offsets between the end of the previous run and this one (records written to
    /// the remote topic by someone else).
    pub down_gap: i64,
    /// Records in each run (at least 1).
    pub len: i64,
    /// How many such runs follow one another (at least 1).
    pub repeat: i64,
}

/// A block of the exact offset index (value version 1): every run one copy loop wrote into a
/// stretch of the remote partition, in order, both offsets increasing. The key names the block
/// by the downstream offset of its first record; the writer rewrites it under the same key as
/// the block grows, so compaction keeps only its latest version.
///
/// - key: `STRING topic` (upstream), `INT32 partition`, `INT64 downstreamStart`, `INT8 1`
/// - value: `INT16 version (=1)`, `INT8 0xff`, `UVARINT upstreamStart`, `UVARINT entries`, then
///   per entry `UVARINT upGap`, `UVARINT downGap`, `UVARINT len`, `UVARINT repeat`
///   (unsigned LEB128, as protobuf)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexBlock {
    /// Upstream (source) topic name, not renamed.
    pub topic: String,
    /// Partition number, the same on both clusters.
    pub partition: i32,
    /// Where the block starts downstream; part of the key, so it names the block.
    pub downstream_start: i64,
    /// Where the block starts upstream.
    pub upstream_start: i64,
    /// The runs, in order (at least one entry).
    pub entries: Vec<IndexEntry>,
}

/// How far the target has deleted a remote partition (value version 1): every downstream offset
/// below `downstream` is gone there, so runs below it are dropped from the index and a group
/// positioned in them resumes at the first record still held. One per partition (compaction keeps
/// the latest), written before the tombstones of the records it makes obsolete.
///
/// - key: `STRING topic` (upstream), `INT32 partition`, `INT8 2`
/// - value: `INT16 version (=1)`, `INT8 0xff`, `INT64 downstream`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFloor {
    /// Upstream (source) topic name, not renamed.
    pub topic: String,
    /// Partition number, the same on both clusters.
    pub partition: i32,
    /// The remote partition's log start offset when the floor was written.
    pub downstream: i64,
}

/// The key of any offset index record, for tombstones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKey {
    /// A version-0 run, by its first downstream offset.
    Run {
        /// Upstream topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// First downstream offset of the run.
        downstream_start: i64,
    },
    /// A block, by its first downstream offset.
    Block {
        /// Upstream topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// First downstream offset of the block.
        downstream_start: i64,
    },
    /// A partition's floor.
    Floor {
        /// Upstream topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}

/// Any record of the offset index topic, as read back: the topic mixes version-0 runs written by
/// earlier strait releases with blocks and floors, and tombstones of any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexRecord {
    /// A version-0 run (written by strait before blocks; still read).
    Run(IndexRun),
    /// A block of runs.
    Block(IndexBlock),
    /// A partition's floor.
    Floor(IndexFloor),
    /// A tombstone (null value): the record under this key is deleted.
    Deleted(IndexKey),
}

impl IndexKey {
    /// The key's bytes, as the record it names was written with.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            IndexKey::Run {
                topic,
                partition,
                downstream_start,
            } => {
                put_str(&mut b, topic);
                b.extend_from_slice(&partition.to_be_bytes());
                b.extend_from_slice(&downstream_start.to_be_bytes());
            }
            IndexKey::Block {
                topic,
                partition,
                downstream_start,
            } => {
                put_str(&mut b, topic);
                b.extend_from_slice(&partition.to_be_bytes());
                b.extend_from_slice(&downstream_start.to_be_bytes());
                b.push(BLOCK_KEY);
            }
            IndexKey::Floor { topic, partition } => {
                put_str(&mut b, topic);
                b.extend_from_slice(&partition.to_be_bytes());
                b.push(FLOOR_KEY);
            }
        }
        b
    }

    /// Reads a key of any index record; its layout tells the record's kind.
    pub fn decode(key: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new("offset index", key);
        let topic = k.string()?;
        let partition = k.i32()?;
        match k.buf.len() {
            8 => Ok(IndexKey::Run {
                topic,
                partition,
                downstream_start: k.i64()?,
            }),
            9 if k.buf[8] == BLOCK_KEY => Ok(IndexKey::Block {
                topic,
                partition,
                downstream_start: k.i64()?,
            }),
            1 if k.buf[0] == FLOOR_KEY => Ok(IndexKey::Floor { topic, partition }),
            n => Err(DecodeError {
                kind: "offset index",
                reason: format!("unknown key layout ({n} bytes after the partition)"),
            }),
        }
    }

    /// The source partition the record belongs to.
    pub fn partition(&self) -> (&str, i32) {
        match self {
            IndexKey::Run {
                topic, partition, ..
            }
            | IndexKey::Block {
                topic, partition, ..
            }
            | IndexKey::Floor { topic, partition } => (topic, *partition),
        }
    }
}

impl IndexRecord {
    /// Reads any offset index record; an empty value is a tombstone of its key.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let k = IndexKey::decode(key)?;
        if value.is_empty() {
            return Ok(IndexRecord::Deleted(k));
        }
        match k {
            IndexKey::Run { .. } => IndexRun::decode(key, value).map(IndexRecord::Run),
            IndexKey::Block { .. } => IndexBlock::decode(key, value).map(IndexRecord::Block),
            IndexKey::Floor { .. } => IndexFloor::decode(key, value).map(IndexRecord::Floor),
        }
    }
}

/// Reads the version-1 header: `INT16 1`, `INT8 0xff`.
fn v1_header(v: &mut Reader<'_>) -> Result<(), DecodeError> {
    let version = v.i16()?;
    let guard = v.take(1)?[0];
    if version != 1 || guard != V1_GUARD {
        return Err(DecodeError {
            kind: "offset index",
            reason: format!("expected version 1, found version {version} (guard {guard:#x})"),
        });
    }
    Ok(())
}

impl IndexBlock {
    /// The block's key.
    pub fn index_key(&self) -> IndexKey {
        IndexKey::Block {
            topic: self.topic.clone(),
            partition: self.partition,
            downstream_start: self.downstream_start,
        }
    }

    /// Record key: `STRING topic`, `INT32 partition`, `INT64 downstreamStart`, `INT8 1`.
    pub fn key(&self) -> Vec<u8> {
        self.index_key().encode()
    }

    /// Record value (see the type's doc).
    pub fn value(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + self.entries.len() * 4);
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(V1_GUARD);
        put_uvarint(&mut b, self.upstream_start);
        put_uvarint(&mut b, self.entries.len() as i64);
        for e in &self.entries {
            put_uvarint(&mut b, e.up_gap);
            put_uvarint(&mut b, e.down_gap);
            put_uvarint(&mut b, e.len);
            put_uvarint(&mut b, e.repeat);
        }
        b
    }

    /// How many (upstream, downstream) pairs the block holds.
    pub fn pairs(&self) -> i64 {
        self.entries.iter().fold(0i64, |n, e| {
            n.saturating_add(e.len.saturating_mul(e.repeat))
        })
    }

    /// Reads a block. Errors: another version, a length or repeat under 1, a negative offset,
    /// or offsets past `i64::MAX`; trailing bytes are ignored (room for later fields).
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let IndexKey::Block {
            topic,
            partition,
            downstream_start,
        } = IndexKey::decode(key)?
        else {
            return Err(DecodeError {
                kind: "offset index",
                reason: "not a block key".into(),
            });
        };
        let mut v = Reader::new("offset index", value);
        v1_header(&mut v)?;
        let upstream_start = v.uvarint()?;
        let n = v.uvarint()?;
        let bad = |reason: String| DecodeError {
            kind: "offset index",
            reason,
        };
        if n < 1 || n as usize > v.buf.len() / 4 {
            return Err(bad(format!("{n} entries in {} bytes", v.buf.len())));
        }
        if downstream_start < 0 {
            return Err(bad(format!("negative downstream start {downstream_start}")));
        }
        let mut entries = Vec::with_capacity(n as usize);
        let (mut up, mut down) = (upstream_start, downstream_start);
        for _ in 0..n {
            let e = IndexEntry {
                up_gap: v.uvarint()?,
                down_gap: v.uvarint()?,
                len: v.uvarint()?,
                repeat: v.uvarint()?,
            };
            if e.len < 1 || e.repeat < 1 {
                return Err(bad(format!(
                    "a run of length {} repeated {} times",
                    e.len, e.repeat
                )));
            }
            // The end of the entry's last run must be a valid offset on both sides.
            let end = |at: i64, gap: i64| {
                e.len
                    .checked_add(gap)
                    .and_then(|step| step.checked_mul(e.repeat))
                    .and_then(|span| span.checked_add(at))
            };
            match (end(up, e.up_gap), end(down, e.down_gap)) {
                (Some(u), Some(d)) => (up, down) = (u, d),
                _ => return Err(bad("offsets past the largest offset".into())),
            }
            entries.push(e);
        }
        Ok(Self {
            topic,
            partition,
            downstream_start,
            upstream_start,
            entries,
        })
    }
}

impl IndexFloor {
    /// The floor's key.
    pub fn index_key(&self) -> IndexKey {
        IndexKey::Floor {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    /// Record key: `STRING topic`, `INT32 partition`, `INT8 2`.
    pub fn key(&self) -> Vec<u8> {
        self.index_key().encode()
    }

    /// Record value: `INT16 version (=1)`, `INT8 0xff`, `INT64 downstream`.
    pub fn value(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(11);
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(V1_GUARD);
        b.extend_from_slice(&self.downstream.to_be_bytes());
        b
    }

    /// Reads a floor; a negative offset is an error.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let IndexKey::Floor { topic, partition } = IndexKey::decode(key)? else {
            return Err(DecodeError {
                kind: "offset index",
                reason: "not a floor key".into(),
            });
        };
        let mut v = Reader::new("offset index", value);
        v1_header(&mut v)?;
        let downstream = v.i64()?;
        if downstream < 0 {
            return Err(DecodeError {
                kind: "offset index",
                reason: format!("negative floor {downstream}"),
            });
        }
        Ok(Self {
            topic,
            partition,
            downstream,
        })
    }
}

/// Unsigned LEB128 of a non-negative `i64` (negative values are written as 0: callers never
/// pass one).
fn put_uvarint(b: &mut Vec<u8>, v: i64) {
    let mut v = v.max(0) as u64;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            b.push(byte);
            return;
        }
        b.push(byte | 0x80);
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

    /// Unsigned LEB128, at most `i64::MAX`.
    fn uvarint(&mut self) -> Result<i64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            if shift == 63 && byte > 1 {
                break;
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return i64::try_from(v).map_err(|_| DecodeError {
                    kind: self.kind,
                    reason: format!("varint {v} is past the largest offset"),
                });
            }
        }
        Err(DecodeError {
            kind: self.kind,
            reason: "varint longer than 10 bytes".into(),
        })
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_string)
    }

    /// A string in place, not copied.
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.i16()?;
        if len < 0 {
            return Err(DecodeError {
                kind: self.kind,
                reason: format!("negative string length {len}"),
            });
        }
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes).map_err(|e| DecodeError {
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

    #[test]
    fn index_block_bytes() {
        // Single-record transactions: record, commit marker, record, ... one entry for all.
        let b = IndexBlock {
            topic: "o".into(),
            partition: 2,
            downstream_start: 300,
            upstream_start: 1000,
            entries: vec![
                IndexEntry {
                    up_gap: 0,
                    down_gap: 0,
                    len: 1,
                    repeat: 1,
                },
                IndexEntry {
                    up_gap: 1,
                    down_gap: 0,
                    len: 1,
                    repeat: 1_000_000,
                },
            ],
        };
        assert_eq!(
            b.key(),
            hex("00 01 6f 00 00 00 02 00 00 00 00 00 00 01 2c 01")
        );
        assert_eq!(
            b.value(),
            hex("00 01 ff e8 07 02 00 00 01 01 01 00 01 c0 84 3d")
        );
        assert_eq!(b.pairs(), 1_000_001);
        assert_eq!(IndexBlock::decode(&b.key(), &b.value()).unwrap(), b);
        assert_eq!(
            IndexRecord::decode(&b.key(), &b.value()).unwrap(),
            IndexRecord::Block(b.clone())
        );
        // An older strait reads a block as a version-0 run and must refuse it.
        assert!(IndexRun::decode(&b.key(), &b.value()).is_err());
        // A tombstone of the block.
        assert_eq!(
            IndexRecord::decode(&b.key(), &[]).unwrap(),
            IndexRecord::Deleted(b.index_key())
        );
    }

    #[test]
    fn index_floor_and_version_0_runs_are_read_beside_blocks() {
        let f = IndexFloor {
            topic: "o".into(),
            partition: 2,
            downstream: 77,
        };
        assert_eq!(f.key(), hex("00 01 6f 00 00 00 02 02"));
        assert_eq!(f.value(), hex("00 01 ff 00 00 00 00 00 00 00 4d"));
        assert_eq!(
            IndexRecord::decode(&f.key(), &f.value()).unwrap(),
            IndexRecord::Floor(f.clone())
        );
        assert!(IndexRun::decode(&f.key(), &f.value()).is_err());
        let r = IndexRun {
            topic: "o".into(),
            partition: 2,
            downstream_start: 5,
            upstream_start: 9,
            len: 3,
        };
        assert_eq!(
            IndexRecord::decode(&r.key(), &r.value()).unwrap(),
            IndexRecord::Run(r.clone())
        );
        let k = IndexKey::Run {
            topic: "o".into(),
            partition: 2,
            downstream_start: 5,
        };
        assert_eq!(k.encode(), r.key());
        assert_eq!(
            IndexRecord::decode(&r.key(), &[]).unwrap(),
            IndexRecord::Deleted(k)
        );
    }

    #[test]
    fn bad_index_blocks_are_errors() {
        let key = hex("00 01 6f 00 00 00 02 00 00 00 00 00 00 01 2c 01");
        for value in [
            "00 00 ff 00 01 00 00 01 01",                            // version 0
            "00 01 00 00 01 00 00 01 01",                            // no guard
            "00 01 ff 00 00",                                        // no entries
            "00 01 ff 00 01 00 00 00 01",                            // length 0
            "00 01 ff 00 01 00 00 01 00",                            // repeat 0
            "00 01 ff 00 01 00 00 01",                               // truncated
            "00 01 ff 00 05 00 00 01 01",                            // more entries than bytes
            "00 01 ff ff ff ff ff ff ff ff ff ff 01 01 00 00 01 01", // varint too long
            "00 01 ff 00 01 00 00 ff ff ff ff ff ff ff ff 7f 02",    // past i64::MAX
        ] {
            assert!(
                IndexBlock::decode(&key, &hex(value)).is_err(),
                "{value} decodes"
            );
        }
        assert!(IndexKey::decode(&hex("00 01 6f 00 00 00 02 03")).is_err());
    }

    fn entry() -> impl Strategy<Value = IndexEntry> {
        (0i64..1 << 30, 0i64..1 << 30, 1i64..1 << 30, 1i64..1 << 20).prop_map(
            |(up_gap, down_gap, len, repeat)| IndexEntry {
                up_gap,
                down_gap,
                len,
                repeat,
            },
        )
    }

    proptest! {
        #[test]
        fn index_blocks_round_trip(
            topic in "[a-zA-Z0-9._-]{1,249}",
            p in any::<i32>(),
            d in 0i64..1 << 50,
            u in 0i64..1 << 50,
            entries in proptest::collection::vec(entry(), 1..40),
        ) {
            let b = IndexBlock { topic, partition: p, downstream_start: d, upstream_start: u, entries };
            prop_assert_eq!(IndexRecord::decode(&b.key(), &b.value()).unwrap(), IndexRecord::Block(b.clone()));
            prop_assert!(IndexRun::decode(&b.key(), &b.value()).is_err(), "an older strait skips it");
        }

        #[test]
        fn decoding_garbage_index_records_never_panics(k in proptest::collection::vec(any::<u8>(), 0..40), v in proptest::collection::vec(any::<u8>(), 0..60)) {
            let _ = IndexRecord::decode(&k, &v);
            let mut v1 = vec![0, 1, 0xff];
            v1.extend_from_slice(&v);
            let key = IndexKey::Block { topic: "t".into(), partition: 0, downstream_start: 0 }.encode();
            if let Ok(IndexRecord::Block(b)) = IndexRecord::decode(&key, &v1) {
                prop_assert!(b.pairs() >= 1);
            }
        }

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
