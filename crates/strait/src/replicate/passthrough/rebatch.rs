//! Batches that cannot go as bytes ([`Disposition::Rewrite`](super::batch::Disposition)): their
//! records are decompressed, those before the position dropped, their offsets made contiguous
//! and their timestamps made what a consumer of the source reads, then compressed again with the
//! same codec. A record's key, value and headers are copied as bytes, never through a map (a
//! record may repeat a header key, and its bytes are the user's).
//!
//! Pure: no I/O (proptests below). The codecs are the protocol crate's (Kafka's snappy framing
//! included).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

// The attribute bits this rewrite clears: the copy's timestamps are create times (the source's
// append times, when it had them), and it carries no delete horizon.
use super::batch::{at, put, seal, varint, Batch, DELETE_HORIZON, HEADER, LOG_APPEND_TIME};

/// One batch a producer may send, made from a fetched one.
#[derive(Debug)]
pub struct Rebatched {
    /// The whole v2 batch: base offset 0, leader epoch -1, the source's producer fields (to be
    /// stamped by [`super::batch::append_for_produce`]), a valid CRC.
    pub bytes: BytesMut,
    /// The source offset of each of its records, in order: its record `i` lands at the target's
    /// base offset + `i`.
    pub offsets: Vec<i64>,
}

/// Why a batch could not be rewritten. Each names the batch by its source offset.
#[derive(Debug, thiserror::Error)]
pub enum RebatchError {
    /// A codec id Kafka does not define (or strait does not know yet).
    #[error("the record batch at offset {offset} is compressed with codec {codec}, which strait does not know")]
    Codec {
        /// The batch's base offset.
        offset: i64,
        /// The attributes' codec id.
        codec: i16,
    },
    /// The records did not decompress.
    #[error("the record batch at offset {offset} did not decompress ({codec}): {reason}")]
    Decompress {
        /// The batch's base offset.
        offset: i64,
        /// The codec's name.
        codec: &'static str,
        /// The codec's error.
        reason: String,
    },
    /// The records did not compress again.
    #[error(
        "the records of the batch at offset {offset} did not compress again ({codec}): {reason}"
    )]
    Compress {
        /// The batch's base offset.
        offset: i64,
        /// The codec's name.
        codec: &'static str,
        /// The codec's error.
        reason: String,
    },
    /// A record's framing is cut short or inconsistent with the header.
    #[error("the record batch at offset {offset} holds a malformed record: {what}")]
    Record {
        /// The batch's base offset.
        offset: i64,
        /// What was wrong.
        what: &'static str,
    },
}

/// The codec of an attributes value, by name.
fn codec_name(id: i16) -> Option<&'static str> {
    Some(match id {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => return None,
    })
}

/// One record of a batch, its framing read and the rest kept as bytes.
struct Framed<'a> {
    attributes: u8,
    timestamp: i64,
    offset: i64,
    /// Key, value and headers, as written.
    rest: &'a [u8],
}

/// Rewrite `batches` (consecutive batches of one partition, in order) into one a producer may
/// send: only their records at or after `position`, offsets from 0 without holes, each record's
/// timestamp as a consumer reads it (its batch's append time when the source topic keeps append
/// times), no delete horizon, compressed with the first batch's codec. Several small batches
/// become one this way ([`super::fetch`] merges a backlog of them: Kafka takes one batch a
/// partition a request). `Ok(None)` when no record is at or after `position`.
pub fn rebatch(batches: &[Batch<'_>], position: i64) -> Result<Option<Rebatched>, RebatchError> {
    let Some(lead) = batches.first() else {
        return Ok(None);
    };
    let h = &lead.header;
    let offset = h.base_offset;
    let codec = h.compression();
    let name = codec_name(codec).ok_or(RebatchError::Codec { offset, codec })?;
    let mut plain_records = Vec::with_capacity(batches.len());
    for b in batches {
        plain_records.push(records_of(b)?);
    }
    let mut kept = Vec::new();
    for (b, records) in batches.iter().zip(&plain_records) {
        let h = &b.header;
        let offset = h.base_offset;
        let append_time = h.attributes & LOG_APPEND_TIME != 0;
        let mut r = &records[..];
        for _ in 0..h.count {
            let bad = |what| RebatchError::Record { offset, what };
            let length = varint(&mut r).ok_or(bad("its length is cut short"))?;
            let length = usize::try_from(length).map_err(|_| bad("a negative length"))?;
            if r.len() < length {
                return Err(bad("it is longer than the batch"));
            }
            let (mut body, rest) = r.split_at(length);
            r = rest;
            let (&attributes, after) = body.split_first().ok_or(bad("it is empty"))?;
            body = after;
            let timestamp_delta = varint(&mut body).ok_or(bad("its timestamp is cut short"))?;
            let offset_delta = varint(&mut body).ok_or(bad("its offset is cut short"))?;
            let record_offset = h.base_offset.wrapping_add(offset_delta);
            if record_offset >= position {
                kept.push(Framed {
                    attributes,
                    timestamp: if append_time {
                        h.max_timestamp
                    } else {
                        h.base_timestamp.wrapping_add(timestamp_delta)
                    },
                    offset: record_offset,
                    rest: body,
                });
            }
        }
    }
    let Some(first) = kept.first() else {
        return Ok(None);
    };
    let base_timestamp = first.timestamp;
    let max_timestamp = kept
        .iter()
        .map(|k| k.timestamp)
        .max()
        .unwrap_or(base_timestamp);
    let mut plain = BytesMut::with_capacity(plain_records.iter().map(Bytes::len).sum());
    let mut body = Vec::new();
    for (i, k) in kept.iter().enumerate() {
        body.clear();
        body.push(k.attributes);
        put_varint(&mut body, k.timestamp.wrapping_sub(base_timestamp));
        put_varint(&mut body, i as i64);
        body.extend_from_slice(k.rest);
        let mut length = Vec::with_capacity(5);
        put_varint(&mut length, body.len() as i64);
        plain.put_slice(&length);
        plain.put_slice(&body);
    }

    let mut out = BytesMut::with_capacity(HEADER + plain.len());
    out.put_slice(&lead.bytes[..HEADER]);
    let compress_error = |e: anyhow::Error| RebatchError::Compress {
        offset,
        codec: name,
        reason: e.to_string(),
    };
    let records_into = |b: &mut BytesMut| {
        b.put_slice(&plain);
        Ok(())
    };
    match codec {
        0 => out.put_slice(&plain),
        1 => Gzip::compress(&mut out, records_into).map_err(compress_error)?,
        2 => Snappy::compress(&mut out, records_into).map_err(compress_error)?,
        3 => Lz4::compress(&mut out, records_into).map_err(compress_error)?,
        _ => Zstd::compress(&mut out, records_into).map_err(compress_error)?,
    }
    let length = i32::try_from(out.len() - 12).map_err(|_| RebatchError::Record {
        offset,
        what: "it does not fit a batch once rewritten",
    })?;
    let attributes = h.attributes & !(LOG_APPEND_TIME | DELETE_HORIZON);
    put(&mut out, at::BASE_OFFSET, &0i64.to_be_bytes());
    put(&mut out, at::LENGTH, &length.to_be_bytes());
    put(&mut out, at::LEADER_EPOCH, &(-1i32).to_be_bytes());
    put(&mut out, at::ATTRIBUTES, &attributes.to_be_bytes());
    put(
        &mut out,
        at::LAST_OFFSET_DELTA,
        &(kept.len() as i32 - 1).to_be_bytes(),
    );
    put(&mut out, at::BASE_TIMESTAMP, &base_timestamp.to_be_bytes());
    put(&mut out, at::MAX_TIMESTAMP, &max_timestamp.to_be_bytes());
    // The sequence of the first record kept: a producer's sequences follow its offsets.
    if h.base_sequence >= 0 {
        let skipped = (first.offset - h.base_offset) as i32;
        put(
            &mut out,
            at::BASE_SEQUENCE,
            &h.base_sequence.wrapping_add(skipped).to_be_bytes(),
        );
    }
    put(&mut out, at::COUNT, &(kept.len() as i32).to_be_bytes());
    seal(&mut out);
    Ok(Some(Rebatched {
        offsets: kept.iter().map(|k| k.offset).collect(),
        bytes: out,
    }))
}

/// A batch's records, decompressed.
fn records_of(batch: &Batch<'_>) -> Result<Bytes, RebatchError> {
    let h = &batch.header;
    let (offset, codec) = (h.base_offset, h.compression());
    let name = codec_name(codec).ok_or(RebatchError::Codec { offset, codec })?;
    let mut compressed = Bytes::copy_from_slice(&batch.bytes[HEADER..]);
    let decompress_error = |e: anyhow::Error| RebatchError::Decompress {
        offset,
        codec: name,
        reason: e.to_string(),
    };
    Ok(match codec {
        0 => compressed,
        1 => Gzip::decompress(&mut compressed, |b| Ok(b.clone())).map_err(decompress_error)?,
        2 => Snappy::decompress(&mut compressed, |b| Ok(b.clone())).map_err(decompress_error)?,
        3 => Lz4::decompress(&mut compressed, |b| Ok(b.clone())).map_err(decompress_error)?,
        _ => Zstd::decompress(&mut compressed, |b| Ok(b.clone())).map_err(decompress_error)?,
    })
}

/// Write `v` as a zigzag varint.
fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut x = ((v << 1) ^ (v >> 63)) as u64;
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

#[cfg(test)]
mod tests {
    use super::super::batch::varint;
    use super::super::batch::{crc_matches, disposition, encoded, Batches, Disposition};
    use super::*;
    use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};
    use proptest::prelude::*;

    fn record(offset: i64, timestamp: i64, key: &[u8], value: Option<&[u8]>, h: usize) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 4,
            producer_id: 9,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp,
            key: Some(Bytes::copy_from_slice(key)),
            value: value.map(Bytes::copy_from_slice),
            headers: (0..h)
                .map(|i| {
                    (
                        kafka_protocol::protocol::StrBytes::from_string(format!("h{i}")),
                        Some(Bytes::from(vec![i as u8; i])),
                    )
                })
                .collect(),
        }
    }

    fn decode(bytes: &[u8]) -> Vec<Record> {
        let mut b = Bytes::copy_from_slice(bytes);
        RecordBatchDecoder::decode(&mut b).expect("decode").records
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = &out[..];
            assert_eq!(varint(&mut r), Some(v));
            assert!(r.is_empty());
        }
        assert_eq!(varint(&mut &[0x80u8][..]), None);
    }

    fn compression() -> impl Strategy<Value = Compression> {
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
            Just(Compression::Zstd),
        ]
    }

    proptest! {
        /// Compacted batches (offsets with holes), one or several in a row (each its own
        /// codec), read from inside: the rewrite is one batch holding the records at or after
        /// the position, in order, each with its key, value, headers and timestamp, offsets
        /// 0..n with the source offsets listed beside; it is a batch a producer may send (no
        /// holes, valid CRC), in the first batch's codec.
        #[test]
        fn a_rewritten_batch_holds_the_records_from_the_position(
            kept in prop::collection::vec(any::<bool>(), 1..40),
            position_at in 0usize..40,
            codecs in prop::collection::vec(compression(), 1..4),
            cuts in prop::collection::vec(1usize..40, 0..3),
            base in 0i64..1_000_000,
        ) {
            let mut offsets: Vec<i64> = kept
                .iter()
                .enumerate()
                .filter(|(_, k)| **k)
                .map(|(i, _)| base + i as i64)
                .collect();
            if offsets.is_empty() {
                offsets.push(base);
            }
            let records: Vec<Record> = offsets
                .iter()
                .enumerate()
                .map(|(i, &o)| {
                    let value = format!("value {o} {}", "x".repeat(i * 7));
                    record(o, 1_700_000_000_000 + (i as i64 * 37) % 500 - 100, format!("k{o}").as_bytes(), (i % 5 != 0).then_some(value.as_bytes()), i % 3)
                })
                .collect();
            // Split where `cuts` say (each part a non-empty batch), codecs in turn.
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < records.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut source = Vec::new();
            let mut from = 0;
            for (i, to) in cuts.into_iter().chain([records.len()]).enumerate() {
                source.extend(encoded(&records[from..to], codecs[i % codecs.len()]));
                from = to;
            }
            let batches: Vec<Batch<'_>> = Batches::new(&source).map(Result::unwrap).collect();
            let b = batches[0];
            let position = base + position_at as i64;
            let got = rebatch(&batches, position).unwrap();
            let want: Vec<&Record> = records.iter().filter(|r| r.offset >= position).collect();
            let Some(got) = got else {
                prop_assert!(want.is_empty());
                return Ok(());
            };
            prop_assert_eq!(&got.offsets, &want.iter().map(|r| r.offset).collect::<Vec<_>>());
            prop_assert!(crc_matches(&got.bytes));
            let nb = Batches::new(&got.bytes).next().unwrap().unwrap();
            prop_assert_eq!(nb.bytes.len(), got.bytes.len());
            prop_assert_eq!(nb.header.compression(), b.header.compression());
            prop_assert_eq!(disposition(&nb.header, 0), Disposition::Bytes);
            let decoded = decode(&got.bytes);
            prop_assert_eq!(decoded.len(), want.len());
            for (i, (d, w)) in decoded.iter().zip(&want).enumerate() {
                prop_assert_eq!(d.offset, i as i64);
                prop_assert_eq!(d.timestamp, w.timestamp);
                prop_assert_eq!(&d.key, &w.key);
                prop_assert_eq!(&d.value, &w.value);
                prop_assert_eq!(&d.headers, &w.headers);
                // Sequences follow offsets, from the first record kept's (the producer's own
                // replace them when the batch is produced).
                prop_assert_eq!(d.sequence, want[0].sequence + i as i32);
            }
            prop_assert_eq!(nb.header.max_timestamp, want.iter().map(|r| r.timestamp).max().unwrap());
        }
    }

    #[test]
    fn append_times_become_the_records_timestamps() {
        let records: Vec<Record> = (0..3)
            .map(|i| record(i, 1_000 + i, b"k", Some(b"v"), 0))
            .collect();
        let mut source = encoded(&records, Compression::None);
        // As a broker with message.timestamp.type = LogAppendTime stores it: the bit set and the
        // append time in the max timestamp.
        let attributes = i16::from_be_bytes([source[21], source[22]]) | LOG_APPEND_TIME;
        source[21..23].copy_from_slice(&attributes.to_be_bytes());
        source[35..43].copy_from_slice(&5_000i64.to_be_bytes());
        let crc = crc32c::crc32c(&source[21..]);
        source[17..21].copy_from_slice(&crc.to_be_bytes());
        let b = Batches::new(&source).next().unwrap().unwrap();
        let got = rebatch(&[b], 0).unwrap().unwrap();
        let decoded = decode(&got.bytes);
        assert!(decoded
            .iter()
            .all(|r| r.timestamp == 5_000 && r.timestamp_type == TimestampType::Creation));
    }

    #[test]
    fn nothing_at_or_after_the_position_is_none() {
        let records: Vec<Record> = (0..3).map(|i| record(i, 1, b"k", None, 0)).collect();
        let source = encoded(&records, Compression::Zstd);
        let b = Batches::new(&source).next().unwrap().unwrap();
        assert!(rebatch(&[b], 3).unwrap().is_none());
    }

    #[test]
    fn a_truncated_record_is_an_error_naming_the_batch() {
        let records: Vec<Record> = (0..3)
            .map(|i| record(10 + i, 1, b"k", Some(b"v"), 1))
            .collect();
        let mut source = encoded(&records, Compression::None);
        // Claim one more record than the batch holds.
        source[57..61].copy_from_slice(&4i32.to_be_bytes());
        let b = Batches::new(&source).next().unwrap().unwrap();
        let e = rebatch(&[b], 0).unwrap_err();
        assert!(e.to_string().contains("offset 10"), "{e}");
    }
}
