//! Record batches as bytes (issue 19): what the passthrough reads of a fetched batch and what it
//! owns when it produces the batch again. Only the 61-byte v2 header is read; the records after
//! it, compressed or not, are copied as they are.
//!
//! A batch can go to the target as bytes when Apache Kafka would take it from a producer
//! (`LogValidator`): magic 2, offsets without holes (`count == lastOffsetDelta + 1`), not a
//! control batch. The fields a produce owns are rewritten: the base offset (0: the broker assigns
//! offsets), the partition leader epoch (the broker's), the producer id, epoch and base sequence
//! (the passthrough's own idempotent producer, or none), and the transactional bit (copies are
//! not in the source's transactions). The CRC-32C covers the attributes to the end, so it is
//! computed again whenever those change. A produce request (v3 and later) carries one batch a
//! partition: Kafka answers INVALID_RECORD to more (Tansu takes them).
//!
//! Pure: no I/O, so the rules are tested on their own (proptests below).

use bytes::BytesMut;

/// The v2 header's size: where the records start.
pub const HEADER: usize = 61;

/// Where each header field lies (Kafka's `DefaultRecordBatch`).
pub(crate) mod at {
    pub(crate) const BASE_OFFSET: usize = 0;
    pub(crate) const LENGTH: usize = 8;
    pub(crate) const LEADER_EPOCH: usize = 12;
    pub(crate) const MAGIC: usize = 16;
    pub(crate) const CRC: usize = 17;
    pub(crate) const ATTRIBUTES: usize = 21;
    pub(crate) const LAST_OFFSET_DELTA: usize = 23;
    pub(crate) const BASE_TIMESTAMP: usize = 27;
    pub(crate) const MAX_TIMESTAMP: usize = 35;
    pub(crate) const PRODUCER_ID: usize = 43;
    pub(crate) const PRODUCER_EPOCH: usize = 51;
    pub(crate) const BASE_SEQUENCE: usize = 53;
    pub(crate) const COUNT: usize = 57;
}

/// The batch length field counts from the leader epoch on: the 12 bytes before it are not in it.
const LENGTH_EXCLUDES: usize = 12;

/// Attribute bits (Kafka's `RecordBatch`).
const COMPRESSION_MASK: i16 = 0x07;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;
pub(super) const DELETE_HORIZON: i16 = 0x40;
pub(super) const LOG_APPEND_TIME: i16 = 0x08;

fn i16_at(b: &[u8], i: usize) -> i16 {
    i16::from_be_bytes([b[i], b[i + 1]])
}

fn i32_at(b: &[u8], i: usize) -> i32 {
    i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn i64_at(b: &[u8], i: usize) -> i64 {
    let mut x = [0; 8];
    x.copy_from_slice(&b[i..i + 8]);
    i64::from_be_bytes(x)
}

/// Why fetched bytes are not batches the passthrough can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A message set older than v2 (Kafka before 0.11, or a topic kept in that format).
    #[error("the record batch at offset {offset} is in the message format v{magic}; only v2 (Kafka 0.11 and later) is copied as bytes")]
    Magic {
        /// The batch's base offset.
        offset: i64,
        /// Its magic byte.
        magic: i8,
    },
    /// A length field that cannot be a batch's.
    #[error("the record batch at offset {offset} gives a length of {length} bytes, shorter than its own header")]
    Length {
        /// The batch's base offset.
        offset: i64,
        /// Its length field.
        length: i32,
    },
}

/// The header fields of one v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The offset of its first record (0 as a producer sends it).
    pub base_offset: i64,
    /// Bytes after the first 12 (the batch is `12 + length` bytes).
    pub length: i32,
    /// The partition leader's epoch when it was written (the broker's to set).
    pub leader_epoch: i32,
    /// CRC-32C of the bytes from the attributes to the end.
    pub crc: u32,
    /// Compression, timestamp type, transactional, control and delete-horizon bits.
    pub attributes: i16,
    /// Its last offset, relative to the base.
    pub last_offset_delta: i32,
    /// The first record's timestamp (or the delete horizon, see [`Header::has_delete_horizon`]).
    pub base_timestamp: i64,
    /// The latest record timestamp.
    pub max_timestamp: i64,
    /// Its idempotent or transactional producer, or -1.
    pub producer_id: i64,
    /// That producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The first record's sequence number of that producer, or -1.
    pub base_sequence: i32,
    /// Records in it (fewer than its offsets when compaction removed some).
    pub count: i32,
}

impl Header {
    /// Read the header at the start of `b` (at least [`HEADER`] bytes).
    fn read(b: &[u8]) -> Result<Self, BatchError> {
        let base_offset = i64_at(b, at::BASE_OFFSET);
        let magic = b[at::MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::Magic {
                offset: base_offset,
                magic,
            });
        }
        let length = i32_at(b, at::LENGTH);
        let too_short = match usize::try_from(length) {
            Ok(l) => l + LENGTH_EXCLUDES < HEADER,
            Err(_) => true,
        };
        if too_short {
            return Err(BatchError::Length {
                offset: base_offset,
                length,
            });
        }
        Ok(Header {
            base_offset,
            length,
            leader_epoch: i32_at(b, at::LEADER_EPOCH),
            crc: u32::from_be_bytes([b[at::CRC], b[at::CRC + 1], b[at::CRC + 2], b[at::CRC + 3]]),
            attributes: i16_at(b, at::ATTRIBUTES),
            last_offset_delta: i32_at(b, at::LAST_OFFSET_DELTA),
            base_timestamp: i64_at(b, at::BASE_TIMESTAMP),
            max_timestamp: i64_at(b, at::MAX_TIMESTAMP),
            producer_id: i64_at(b, at::PRODUCER_ID),
            producer_epoch: i16_at(b, at::PRODUCER_EPOCH),
            base_sequence: i32_at(b, at::BASE_SEQUENCE),
            count: i32_at(b, at::COUNT),
        })
    }

    /// The whole batch's size in bytes.
    pub fn size(&self) -> usize {
        LENGTH_EXCLUDES + self.length as usize
    }

    /// The offset of its last record, present or compacted away.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Where the next fetch starts after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compaction removed records from it: Kafka refuses such a batch from a producer.
    pub fn has_holes(&self) -> bool {
        i64::from(self.count) != i64::from(self.last_offset_delta) + 1
    }

    /// A transaction marker (commit or abort), never a record of the topic's.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL != 0
    }

    /// Written in a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL != 0
    }

    /// Compaction stamped a delete horizon on it (KIP-534): its base timestamp is then that
    /// horizon, not a record's.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON != 0
    }

    /// Its compression codec's id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }
}

/// One batch of a fetched partition: its header and all of its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Its header, read.
    pub header: Header,
    /// All of its bytes, header included.
    pub bytes: &'a [u8],
}

/// A fetched partition's records cut into batches. A fetch may end inside a batch (its size
/// limit falls there): that last part is not a batch and ends the iteration. An error ends it
/// too.
pub struct Batches<'a> {
    bytes: &'a [u8],
    failed: bool,
}

impl<'a> Batches<'a> {
    /// The batches of a fetched partition's `records`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            failed: false,
        }
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.bytes.len() < HEADER {
            return None;
        }
        let header = match Header::read(self.bytes) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        if self.bytes.len() < header.size() {
            return None;
        }
        let (bytes, rest) = self.bytes.split_at(header.size());
        self.bytes = rest;
        Some(Ok(Batch { header, bytes }))
    }
}

/// Why a batch's records must be rewritten (decompressed and encoded again) to reach the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// It starts before the position copied from (a fetch from inside a batch, after a restart
    /// at a committed offset): as bytes, its first records would be copied twice.
    Starts,
    /// Compaction left holes in its offsets.
    Holes,
    /// It carries a delete horizon instead of a base timestamp.
    DeleteHorizon,
    /// Its topic keeps the broker's append times: a consumer reads the batch's append time as
    /// every record's timestamp, which the copy must carry as its records' own.
    AppendTime,
}

/// What the passthrough does with a fetched batch, given the position it copies from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// It ends before the position: copied already.
    Behind,
    /// A transaction marker: not a record of the topic's (Kafka's consumers skip it too). The
    /// position moves past it.
    Marker,
    /// Produced as bytes, its header rewritten.
    Bytes,
    /// Its records must be rewritten first.
    Rewrite(Rewrite),
}

/// The rule, in one place.
pub fn disposition(h: &Header, position: i64) -> Disposition {
    if h.last_offset() < position {
        Disposition::Behind
    } else if h.is_control() {
        Disposition::Marker
    } else if h.base_offset < position {
        Disposition::Rewrite(Rewrite::Starts)
    } else if h.has_holes() {
        Disposition::Rewrite(Rewrite::Holes)
    } else if h.has_delete_horizon() {
        Disposition::Rewrite(Rewrite::DeleteHorizon)
    } else if h.attributes & LOG_APPEND_TIME != 0 {
        Disposition::Rewrite(Rewrite::AppendTime)
    } else {
        Disposition::Bytes
    }
}

/// Who produces a batch: an idempotent producer's id, epoch and the batch's first sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// From InitProducerId.
    pub producer_id: i64,
    /// From InitProducerId.
    pub producer_epoch: i16,
    /// The batch's first record's sequence number in its partition.
    pub base_sequence: i32,
}

impl Stamp {
    /// No producer identity: the broker does not deduplicate.
    pub const NONE: Stamp = Stamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Append `batch` to `out` as a producer sends it: base offset 0, leader epoch -1 (the broker
/// sets both), not transactional, stamped with `stamp`, its CRC computed again if any byte it
/// covers changed. The records are copied as they are.
pub fn append_for_produce(batch: &Batch<'_>, stamp: Stamp, out: &mut BytesMut) {
    let start = out.len();
    out.extend_from_slice(batch.bytes);
    let b = &mut out[start..];
    put(b, at::BASE_OFFSET, &0i64.to_be_bytes());
    put(b, at::LEADER_EPOCH, &(-1i32).to_be_bytes());
    let h = &batch.header;
    let attributes = h.attributes & !TRANSACTIONAL;
    if attributes == h.attributes
        && stamp.producer_id == h.producer_id
        && stamp.producer_epoch == h.producer_epoch
        && stamp.base_sequence == h.base_sequence
    {
        return; // nothing the CRC covers changed
    }
    put(b, at::ATTRIBUTES, &attributes.to_be_bytes());
    put(b, at::PRODUCER_ID, &stamp.producer_id.to_be_bytes());
    put(b, at::PRODUCER_EPOCH, &stamp.producer_epoch.to_be_bytes());
    put(b, at::BASE_SEQUENCE, &stamp.base_sequence.to_be_bytes());
    seal(b);
}

/// Write a header field of batch `b` ([`at`] says where).
pub(crate) fn put(b: &mut [u8], at: usize, value: &[u8]) {
    b[at..at + value.len()].copy_from_slice(value);
}

/// Compute batch `b`'s CRC-32C again, once a byte it covers (the attributes on) changed.
pub(crate) fn seal(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[at::ATTRIBUTES..]);
    put(b, at::CRC, &crc.to_be_bytes());
}

/// Whether a batch's CRC matches its bytes (what the broker checks).
pub fn crc_matches(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER
        && crc32c::crc32c(&bytes[at::ATTRIBUTES..])
            == u32::from_be_bytes([
                bytes[at::CRC],
                bytes[at::CRC + 1],
                bytes[at::CRC + 2],
                bytes[at::CRC + 3],
            ])
}

/// A transaction marker's kind, from its control record's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// The producer's transaction was aborted: its records are not to be read.
    Abort,
    /// The producer's transaction was committed.
    Commit,
}

/// The kind of marker a control batch holds: its one record's key is (version: i16, type: i16),
/// 0 abort, 1 commit. Control batches are never compressed. `None` when the bytes are not such a
/// record (a kind Kafka may add later is not a transaction's end either).
pub fn marker(batch: &Batch<'_>) -> Option<Marker> {
    if !batch.header.is_control() || batch.header.compression() != 0 {
        return None;
    }
    let mut r = &batch.bytes[HEADER..];
    let _length = varint(&mut r)?;
    let (_attributes, rest) = r.split_first()?;
    r = rest;
    let _timestamp_delta = varint(&mut r)?;
    let _offset_delta = varint(&mut r)?;
    let key_length = varint(&mut r)?;
    if key_length < 4 || r.len() < 4 {
        return None;
    }
    match i16_at(r, 2) {
        0 => Some(Marker::Abort),
        1 => Some(Marker::Commit),
        _ => None,
    }
}

/// A record's zigzag varint (or varlong), as Kafka writes them; `None` if cut short or over 64
/// bits.
pub(super) fn varint(r: &mut &[u8]) -> Option<i64> {
    let mut x: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (b, rest) = r.split_first()?;
        *r = rest;
        x |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((x >> 1) as i64 ^ -((x & 1) as i64));
        }
    }
    None
}

/// Which batches of one fetched partition belong to aborted transactions, as Kafka's consumer
/// tells them with `isolation.level = read_committed` (`CompletedFetch`): the fetch answer lists
/// each aborted transaction overlapping it (producer id, first offset); a transactional batch of
/// such a producer at or after that offset is aborted until the producer's abort marker.
pub struct Aborted {
    /// Not reached yet, the lowest first offset last.
    pending: Vec<(i64, i64)>,
    /// Producers whose open transaction here was aborted.
    open: std::collections::HashSet<i64>,
}

impl Aborted {
    /// From a fetch answer's aborted transactions, as (producer id, first offset).
    pub fn new(listed: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut pending: Vec<(i64, i64)> = listed.into_iter().map(|(p, o)| (o, p)).collect();
        pending.sort_unstable_by(|a, b| b.cmp(a));
        Self {
            pending,
            open: Default::default(),
        }
    }

    /// Whether `batch`, the next of the partition in offset order, is aborted data (to drop).
    /// Markers are never data: they close the producer's aborted transaction and return false.
    pub fn is_aborted(&mut self, batch: &Batch<'_>) -> bool {
        let h = &batch.header;
        if h.producer_id < 0 {
            return false;
        }
        while let Some(&(first, producer)) = self.pending.last() {
            if first > h.last_offset() {
                break;
            }
            self.open.insert(producer);
            self.pending.pop();
        }
        if h.is_control() {
            if marker(batch) == Some(Marker::Abort) {
                self.open.remove(&h.producer_id);
            }
            return false;
        }
        h.is_transactional() && self.open.contains(&h.producer_id)
    }
}

/// `records` as one v2 batch, encoded by the protocol crate as a producer would (for the tests).
#[cfg(test)]
pub(crate) fn encoded(
    records: &[kafka_protocol::records::Record],
    compression: kafka_protocol::records::Compression,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut out,
        records,
        &kafka_protocol::records::RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use proptest::prelude::*;

    /// A valid, uncompressed v2 batch of `n` records from `base`, made by the protocol crate's
    /// encoder (a producer's bytes); `producer_id` -1 for none.
    fn batch(base: i64, n: usize, producer_id: i64, transactional: bool) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 7,
                producer_id,
                producer_epoch: if producer_id < 0 { -1 } else { 3 },
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                // The encoder keeps records in one batch while offset - sequence stays the same.
                sequence: if producer_id < 0 {
                    i as i32 - 1
                } else {
                    10 + i as i32
                },
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; i % 50])),
                headers: Default::default(),
            })
            .collect();
        encoded(&records, Compression::None)
    }

    fn only(bytes: &[u8]) -> Batch<'_> {
        let mut it = Batches::new(bytes);
        let b = it.next().expect("a batch").expect("valid");
        assert!(it.next().is_none());
        b
    }

    #[test]
    fn a_producers_batch_reads_back_as_written() {
        let b = batch(100, 5, 42, true);
        let h = only(&b).header;
        assert_eq!(h.base_offset, 100);
        assert_eq!(h.count, 5);
        assert_eq!(h.last_offset(), 104);
        assert_eq!(h.next_offset(), 105);
        assert_eq!(h.size(), b.len());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 10)
        );
        assert!(h.is_transactional() && !h.is_control() && !h.has_holes());
        assert_eq!(h.compression(), 0);
        assert!(crc_matches(&b));
    }

    #[test]
    fn the_dispositions() {
        let b = batch(100, 5, -1, false);
        let h = only(&b).header;
        assert_eq!(disposition(&h, 105), Disposition::Behind);
        assert_eq!(disposition(&h, 100), Disposition::Bytes);
        assert_eq!(disposition(&h, 50), Disposition::Bytes);
        assert_eq!(disposition(&h, 101), Disposition::Rewrite(Rewrite::Starts));
        let holes = Header { count: 3, ..h };
        assert_eq!(
            disposition(&holes, 100),
            Disposition::Rewrite(Rewrite::Holes)
        );
        let marker = Header {
            attributes: CONTROL | TRANSACTIONAL,
            ..h
        };
        assert_eq!(disposition(&marker, 101), Disposition::Marker);
        let horizon = Header {
            attributes: DELETE_HORIZON,
            ..h
        };
        assert_eq!(
            disposition(&horizon, 100),
            Disposition::Rewrite(Rewrite::DeleteHorizon)
        );
        let appended = Header {
            attributes: LOG_APPEND_TIME,
            ..h
        };
        assert_eq!(
            disposition(&appended, 100),
            Disposition::Rewrite(Rewrite::AppendTime)
        );
    }

    #[test]
    fn older_message_formats_and_short_lengths_are_errors() {
        let mut b = batch(7, 2, -1, false);
        b[at::MAGIC] = 1;
        assert_eq!(
            Batches::new(&b).next(),
            Some(Err(BatchError::Magic {
                offset: 7,
                magic: 1
            }))
        );
        let mut b = batch(7, 2, -1, false);
        b[at::LENGTH..at::LENGTH + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            Batches::new(&b).next(),
            Some(Err(BatchError::Length {
                offset: 7,
                length: 10
            }))
        );
        b[at::LENGTH..at::LENGTH + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            Batches::new(&b).next(),
            Some(Err(BatchError::Length { .. }))
        ));
    }

    #[test]
    fn a_batch_without_producer_fields_keeps_its_crc_bytes() {
        let b = batch(0, 4, -1, false);
        let mut out = BytesMut::new();
        append_for_produce(&only(&b), Stamp::NONE, &mut out);
        assert_eq!(out[at::CRC..at::CRC + 4], b[at::CRC..at::CRC + 4]);
        assert_eq!(out[HEADER..], b[HEADER..]);
        assert!(crc_matches(&out));
    }

    /// A control batch as a transaction coordinator writes it: one uncompressed record whose
    /// key is (version 0, type) and value (version 0, coordinator epoch 0).
    fn marker_batch(base: i64, producer_id: i64, kind: i16) -> Vec<u8> {
        let mut key = Vec::new();
        key.extend(0i16.to_be_bytes());
        key.extend(kind.to_be_bytes());
        let record = Record {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: 3,
            timestamp_type: TimestampType::Creation,
            offset: base,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from(vec![0, 0, 0, 0, 0, 0])),
            headers: Default::default(),
        };
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            [&record],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        out.to_vec()
    }

    #[test]
    fn markers_are_read_from_their_control_record() {
        let abort = marker_batch(10, 5, 0);
        let commit = marker_batch(11, 5, 1);
        assert_eq!(marker(&only(&abort)), Some(Marker::Abort));
        assert_eq!(marker(&only(&commit)), Some(Marker::Commit));
        assert_eq!(marker(&only(&batch(0, 3, 5, true))), None);
        assert_eq!(disposition(&only(&abort).header, 10), Disposition::Marker);
    }

    #[test]
    fn aborted_transactions_are_told_from_committed_ones() {
        // Producer 1's transaction at 0-2 is aborted (marker at 3); producer 2's at 4-5
        // committed (marker at 6); producer 1 again at 7-8, committed (marker at 9); a
        // non-transactional batch at 10; producer 1's next at 11-12 aborted, its marker not
        // fetched yet.
        let parts = [
            batch(0, 3, 1, true),
            marker_batch(3, 1, 0),
            batch(4, 2, 2, true),
            marker_batch(6, 2, 1),
            batch(7, 2, 1, true),
            marker_batch(9, 1, 1),
            batch(10, 1, -1, false),
            batch(11, 2, 1, true),
        ];
        let all: Vec<u8> = parts.concat();
        let mut aborted = Aborted::new([(1, 0), (1, 11)]);
        let dropped: Vec<i64> = Batches::new(&all)
            .map(|b| b.unwrap())
            .filter(|b| aborted.is_aborted(b))
            .map(|b| b.header.base_offset)
            .collect();
        assert_eq!(dropped, vec![0, 11]);
    }

    impl PartialEq for Batch<'_> {
        fn eq(&self, other: &Self) -> bool {
            self.header == other.header && self.bytes == other.bytes
        }
    }

    proptest! {
        /// Batches laid end to end come back one by one, each whole; a cut anywhere in the
        /// last leaves it out and never yields a part of it.
        #[test]
        fn batches_cut_a_fetch_into_whole_batches(
            sizes in prop::collection::vec(1usize..20, 1..6),
            cut in 0usize..2000,
        ) {
            let mut all = Vec::new();
            let mut base = 0;
            let mut ends = Vec::new();
            for n in &sizes {
                all.extend(batch(base, *n, -1, false));
                ends.push(all.len());
                base += *n as i64;
            }
            let got: Vec<_> = Batches::new(&all).map(|b| b.unwrap()).collect();
            prop_assert_eq!(got.len(), sizes.len());
            let mut next = 0;
            for (b, n) in got.iter().zip(&sizes) {
                prop_assert_eq!(b.header.base_offset, next);
                prop_assert_eq!(b.header.count as usize, *n);
                prop_assert!(crc_matches(b.bytes));
                next = b.header.next_offset();
            }
            let cut = cut % (all.len() + 1);
            let whole = ends.iter().filter(|e| **e <= cut).count();
            prop_assert_eq!(Batches::new(&all[..cut]).count(), whole);
        }

        /// A batch produced again carries exactly the records it was fetched with, the
        /// passthrough's producer fields, no transactional bit, base offset 0 and a CRC the
        /// broker accepts.
        #[test]
        fn a_produced_batch_is_the_fetched_one_restamped(
            n in 1usize..30,
            base in 0i64..1_000_000,
            source_producer in prop_oneof![Just(-1i64), 0i64..1000],
            transactional: bool,
            stamped: bool,
            id in 0i64..1_000_000,
            epoch in 0i16..100,
            sequence in 0i32..1_000_000,
        ) {
            let transactional = transactional && source_producer >= 0;
            let b = batch(base, n, source_producer, transactional);
            let fetched = only(&b);
            let stamp = if stamped {
                Stamp { producer_id: id, producer_epoch: epoch, base_sequence: sequence }
            } else {
                Stamp::NONE
            };
            let mut out = BytesMut::from(&b"earlier"[..]);
            append_for_produce(&fetched, stamp, &mut out);
            prop_assert_eq!(&out[..7], b"earlier");
            let produced = &out[7..];
            prop_assert_eq!(produced.len(), b.len());
            prop_assert!(crc_matches(produced));
            prop_assert_eq!(&produced[HEADER..], &b[HEADER..]);
            let h = only(produced).header;
            prop_assert_eq!(h.base_offset, 0);
            prop_assert_eq!(h.leader_epoch, -1);
            prop_assert!(!h.is_transactional());
            prop_assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (stamp.producer_id, stamp.producer_epoch, stamp.base_sequence)
            );
            let f = fetched.header;
            prop_assert_eq!(
                (h.count, h.last_offset_delta, h.base_timestamp, h.max_timestamp, h.compression()),
                (f.count, f.last_offset_delta, f.base_timestamp, f.max_timestamp, f.compression())
            );
        }

        /// Whatever bytes a broker sends, reading them never panics.
        #[test]
        fn any_bytes_read_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            for b in Batches::new(&bytes).flatten() {
                let _ = disposition(&b.header, 0);
                prop_assert!(b.bytes.len() >= HEADER);
            }
        }
    }
}
