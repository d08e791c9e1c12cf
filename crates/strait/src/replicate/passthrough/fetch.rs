//! One source broker's fetcher: its partitions in one Fetch request at a time, answers cut into
//! whole batches by [`super::batch`]'s rules (aborted transactions and markers dropped, batches a
//! producer may not send rewritten by [`super::rebatch`]), handed to the coordinator in order.
//!
//! A backlog of small batches (a producer that batched little) is merged: consecutive batches of
//! a partition under [`SMALL_BATCH`] in one answer become one of up to [`MERGE_UP_TO`] (their
//! records decompressed and compressed again with the same codec). Kafka takes one batch a
//! partition in a produce request and an idempotent producer five requests in flight, so copied
//! one by one, batches of a record or two drain a backlog at a few thousand records a second.
//!
//! A partition is left out of the next request while what it fetched waits for the target above
//! a limit (twice `max.partition.fetch.bytes`), and every partition while all of them hold more
//! than `fetch.max.bytes` twice over: a slow target slows the fetching, not the memory.
//! A partition whose leader moved is handed back; a failed connection hands back all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{debug, info};

use super::batch::{disposition, Aborted, Batch, Batches, Disposition};
use super::engine::{class_of, class_of_code, means_moved, Ev, Fetched};
use super::rebatch::rebatch;
use crate::kafka::raw::{error_name, Conn};
use crate::kafka::Endpoint;
use crate::replicate::health::ErrorClass;
use crate::replicate::progress::Tp;
use crate::stop::CancellationToken;

/// Batches smaller than this (a Java producer's default `batch.size`) are merged with their
/// neighbours; larger ones go as they are.
pub(crate) const SMALL_BATCH: usize = 16 * 1024;

/// How large a merged batch may grow (the sum of its parts as fetched), unless a remote topic's
/// `max.message.bytes` asks for less ([`FetchConfig::merge_up_to`]).
pub(crate) const MERGE_UP_TO: usize = 256 * 1024;

/// The source consumer's fetch properties, as librdkafka reads them.
#[derive(Clone, Debug)]
pub(crate) struct FetchConfig {
    pub(crate) max_partition_bytes: i32,
    pub(crate) max_bytes: i32,
    pub(crate) min_bytes: i32,
    pub(crate) max_wait_ms: i32,
    /// `isolation.level = read_committed` (librdkafka's default).
    pub(crate) read_committed: bool,
    /// `auto.offset.reset`: true for the earliest offset (strait's default).
    pub(crate) reset_earliest: bool,
    /// The largest merged batch: [`MERGE_UP_TO`], or half the smallest `max.message.bytes` of
    /// the remote topics when that is less (set as the flow learns them), so that a merged
    /// batch is never one the target refuses where its parts would pass.
    pub(crate) merge_up_to: Arc<AtomicUsize>,
}

impl FetchConfig {
    /// From the source consumer's properties, with librdkafka's defaults (and strait's own
    /// `fetch.wait.max.ms` of 100 ms, as the record path's).
    pub(crate) fn of(ep: &Endpoint) -> Self {
        let get = |k: &str, d: i32| {
            ep.props
                .get(k)
                .and_then(|v| v.trim().parse::<i32>().ok())
                .unwrap_or(d)
        };
        let reset = ep
            .props
            .get("auto.offset.reset")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_else(|| "earliest".into());
        FetchConfig {
            max_partition_bytes: get("max.partition.fetch.bytes", 1 << 20).max(1),
            max_bytes: get("fetch.max.bytes", 50 << 20).max(1),
            min_bytes: get("fetch.min.bytes", 1).max(0),
            max_wait_ms: get("fetch.wait.max.ms", 100).max(0),
            read_committed: !ep
                .props
                .get("isolation.level")
                .is_some_and(|v| v.eq_ignore_ascii_case("read_uncommitted")),
            reset_earliest: !["latest", "largest", "end"].contains(&reset.as_str()),
            merge_up_to: Arc::new(AtomicUsize::new(MERGE_UP_TO)),
        }
    }

    /// The remote topics' `max.message.bytes` as the flow learned them: merged batches stay
    /// within half the smallest.
    pub(crate) fn limit_merges(&self, limits: impl IntoIterator<Item = i64>) {
        let up_to = limits
            .into_iter()
            .map(|l| usize::try_from(l / 2).unwrap_or(0))
            .fold(MERGE_UP_TO, usize::min);
        self.merge_up_to.store(up_to, Ordering::Relaxed);
    }
}

/// What the coordinator tells a fetcher.
pub(crate) enum FetchCmd {
    /// Fetch `tp` from `position` (`None`: `auto.offset.reset`) under `gen`; `bytes` is what it
    /// has waiting for the target.
    Add {
        tp: Tp,
        gen: u64,
        position: Option<i64>,
        bytes: Arc<AtomicI64>,
    },
    /// Stop fetching `tp`.
    Remove(Tp),
}

pub(crate) struct Fetcher {
    pub(crate) flow: String,
    pub(crate) ep: Endpoint,
    pub(crate) addr: String,
    pub(crate) config: FetchConfig,
    pub(crate) events: UnboundedSender<Ev>,
    /// Bytes waiting for the target, all partitions of the flow.
    pub(crate) outstanding: Arc<AtomicI64>,
    pub(crate) cancel: CancellationToken,
}

struct Part {
    gen: u64,
    position: Option<i64>,
    bytes: Arc<AtomicI64>,
    /// The end last told (told again only when it moves).
    told_end: i64,
    /// Left out of requests until then (after an error).
    not_before: Instant,
}

/// Run the fetcher until cancelled or its coordinator is gone; on a connection failure it hands
/// every partition back and ends.
pub(crate) async fn run(f: Fetcher, mut cmds: UnboundedReceiver<FetchCmd>) {
    let mut parts: HashMap<Tp, Part> = HashMap::new();
    let mut conn: Option<Conn> = None;
    // Requests list the partitions from a different one each time, so that a partition behind
    // a large batch is not always last (a broker may fill a request's bytes before it).
    let mut rotate = 0usize;
    loop {
        loop {
            match cmds.try_recv() {
                Ok(c) => apply(&mut parts, c),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(_) => return,
            }
        }
        if parts.is_empty() {
            tokio::select! {
                _ = f.cancel.cancelled() => return,
                c = cmds.recv() => match c {
                    Some(c) => apply(&mut parts, c),
                    None => return,
                },
            }
            continue;
        }
        if f.cancel.is_cancelled() {
            return;
        }
        let c = match &mut conn {
            Some(c) if c.is_usable() => c,
            _ => match Conn::connect(&f.ep, &f.addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    hand_back(&f, &mut parts, class_of(&e, false), e.to_string());
                    return;
                }
            },
        };
        if let Err((class, e)) = reset(&f, c, &mut parts).await {
            hand_back(&f, &mut parts, class, e);
            return;
        }
        let global_full = f.outstanding.load(Ordering::Relaxed) > 2 * i64::from(f.config.max_bytes);
        let now = Instant::now();
        let mut ready: Vec<(&Tp, i64)> = parts
            .iter()
            .filter(|(_, p)| {
                !global_full
                    && p.not_before <= now
                    && p.bytes.load(Ordering::Relaxed) < 2 * i64::from(f.config.max_partition_bytes)
            })
            .filter_map(|(tp, p)| Some((tp, p.position?)))
            .collect();
        if ready.is_empty() {
            // Waiting for the target (or a backoff): look again shortly.
            tokio::select! {
                _ = f.cancel.cancelled() => return,
                c = cmds.recv() => match c {
                    Some(c) => apply(&mut parts, c),
                    None => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            continue;
        }
        ready.sort_unstable();
        rotate = rotate.wrapping_add(1);
        let k = rotate % ready.len();
        ready.rotate_left(k);
        let req = request(&f.config, &ready);
        let Some(v) = c.version(ApiKey::Fetch, 4..=12) else {
            hand_back(
                &f,
                &mut parts,
                ErrorClass::Source,
                format!(
                    "cluster {} ({}): the broker offers no Fetch version strait speaks",
                    f.ep.alias, f.addr
                ),
            );
            return;
        };
        let resp = tokio::select! {
            _ = f.cancel.cancelled() => return,
            r = c.call(&req, v) => r,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                hand_back(&f, &mut parts, class_of(&e, false), e.to_string());
                return;
            }
        };
        if resp.error_code != 0 {
            hand_back(
                &f,
                &mut parts,
                class_of_code(resp.error_code, false),
                format!(
                    "fetch refused by {}: {}",
                    f.addr,
                    error_name(resp.error_code)
                ),
            );
            return;
        }
        answer(&f, &mut parts, resp);
    }
}

fn apply(parts: &mut HashMap<Tp, Part>, c: FetchCmd) {
    match c {
        FetchCmd::Add {
            tp,
            gen,
            position,
            bytes,
        } => {
            parts.insert(
                tp,
                Part {
                    gen,
                    position,
                    bytes,
                    told_end: -1,
                    not_before: Instant::now(),
                },
            );
        }
        FetchCmd::Remove(tp) => {
            parts.remove(&tp);
        }
    }
}

/// Hand every partition back to the coordinator (the connection failed): `reason` names the
/// cluster and the broker.
fn hand_back(f: &Fetcher, parts: &mut HashMap<Tp, Part>, class: ErrorClass, reason: String) {
    let _ = f.events.send(Ev::Trouble {
        class,
        on_target: false,
        message: reason.clone(),
    });
    for (tp, p) in parts.drain() {
        let _ = f.events.send(Ev::Unfetched {
            tp,
            gen: p.gen,
            position: p.position,
            reason: reason.clone(),
        });
    }
}

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// One Fetch request for `ready` (partition, position), in that order, topics grouped as they
/// come.
fn request(cfg: &FetchConfig, ready: &[(&Tp, i64)]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, position) in ready {
        let p = FetchPartition::default()
            .with_partition(tp.1)
            .with_fetch_offset(*position)
            .with_partition_max_bytes(cfg.max_partition_bytes)
            .with_current_leader_epoch(-1)
            .with_log_start_offset(-1);
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == &*tp.0 => t.partitions.push(p),
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(name(&tp.0))
                    .with_partitions(vec![p]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(cfg.max_wait_ms)
        .with_min_bytes(cfg.min_bytes)
        .with_max_bytes(cfg.max_bytes)
        .with_isolation_level(i8::from(cfg.read_committed))
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Resolve `auto.offset.reset` for the partitions without a position, with one ListOffsets
/// request. A partition whose leader moved is handed back.
async fn reset(
    f: &Fetcher,
    c: &mut Conn,
    parts: &mut HashMap<Tp, Part>,
) -> Result<(), (ErrorClass, String)> {
    let missing: Vec<Tp> = parts
        .iter()
        .filter(|(_, p)| p.position.is_none())
        .map(|(tp, _)| tp.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let Some(v) = c.version(ApiKey::ListOffsets, 1..=7) else {
        return Err((
            ErrorClass::Source,
            format!(
                "cluster {} ({}): the broker offers no ListOffsets version strait speaks",
                f.ep.alias, f.addr
            ),
        ));
    };
    let timestamp = if f.config.reset_earliest { -2 } else { -1 };
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for tp in &missing {
        let p = ListOffsetsPartition::default()
            .with_partition_index(tp.1)
            .with_current_leader_epoch(-1)
            .with_timestamp(timestamp);
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.0) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                ListOffsetsTopic::default()
                    .with_name(name(&tp.0))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(i8::from(f.config.read_committed))
        .with_topics(topics);
    let resp = c
        .call(&req, v)
        .await
        .map_err(|e| (class_of(&e, false), e.to_string()))?;
    for t in &resp.topics {
        for p in &t.partitions {
            let tp: Tp = (Arc::from(t.name.0.as_str()), p.partition_index);
            let Some(part) = parts.get_mut(&tp) else {
                continue;
            };
            match p.error_code {
                0 => {
                    info!(flow = %f.flow, partition = %format!("{}-{}", tp.0, tp.1), offset = p.offset, "no committed position: starting at the {} offset (auto.offset.reset)", if f.config.reset_earliest { "earliest" } else { "latest" });
                    part.position = Some(p.offset);
                }
                code if means_moved(code) => {
                    let part = parts.remove(&tp).expect("just found");
                    let _ = f.events.send(Ev::Unfetched {
                        tp,
                        gen: part.gen,
                        position: None,
                        reason: format!("offset lookup: {}", error_name(code)),
                    });
                }
                code => {
                    part.not_before = Instant::now() + Duration::from_secs(1);
                    let _ = f.events.send(Ev::Trouble {
                        class: class_of_code(code, false),
                        on_target: false,
                        message: format!(
                            "cluster {} ({}): the offset of {}-{} cannot be looked up: {}",
                            f.ep.alias,
                            f.addr,
                            tp.0,
                            tp.1,
                            error_name(code)
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Cut a fetch answer into batches and hand them to the coordinator, partition by partition.
fn answer(f: &Fetcher, parts: &mut HashMap<Tp, Part>, resp: FetchResponse) {
    for t in resp.responses {
        let topic: Arc<str> = Arc::from(t.topic.0.as_str());
        for p in t.partitions {
            let tp: Tp = (topic.clone(), p.partition_index);
            let Some(part) = parts.get_mut(&tp) else {
                continue; // removed meanwhile
            };
            let Some(position) = part.position else {
                continue;
            };
            match p.error_code {
                0 => {}
                // OFFSET_OUT_OF_RANGE: retention passed the position (or the partition went
                // back): `auto.offset.reset` decides, as librdkafka's consumer does.
                1 => {
                    info!(flow = %f.flow, partition = %format!("{}-{}", tp.0, tp.1), position, "the position is out of the source's range; looking up auto.offset.reset's");
                    part.position = None;
                    continue;
                }
                code if means_moved(code) => {
                    let part = parts.remove(&tp).expect("just found");
                    let _ = f.events.send(Ev::Unfetched {
                        tp,
                        gen: part.gen,
                        position: Some(position),
                        reason: format!("fetch: {}", error_name(code)),
                    });
                    continue;
                }
                code => {
                    part.not_before = Instant::now() + Duration::from_secs(1);
                    let _ = f.events.send(Ev::Trouble {
                        class: class_of_code(code, false),
                        on_target: false,
                        message: format!(
                            "cluster {} ({}): fetching {}-{} failed: {}",
                            f.ep.alias,
                            f.addr,
                            tp.0,
                            tp.1,
                            error_name(code)
                        ),
                    });
                    continue;
                }
            }
            let records = p.records.unwrap_or_default();
            let mut aborted = f.config.read_committed.then(|| {
                Aborted::new(
                    p.aborted_transactions
                        .iter()
                        .flatten()
                        .map(|a| (a.producer_id.0, a.first_offset)),
                )
            });
            let up_to = f.config.merge_up_to.load(Ordering::Relaxed);
            let Cut {
                batches,
                next,
                unreadable,
            } = cut(&records, position, aborted.as_mut(), up_to);
            if let Some(e) = unreadable {
                part.not_before = Instant::now() + Duration::from_secs(5);
                let _ = f.events.send(Ev::Trouble {
                    class: ErrorClass::Source,
                    on_target: false,
                    message: format!("cluster {} ({}): {}-{}{e}", f.ep.alias, f.addr, tp.0, tp.1),
                });
            }
            let end = p.high_watermark;
            if batches.is_empty() && next == position && end == part.told_end {
                continue;
            }
            part.told_end = end;
            part.position = Some(next);
            debug!(partition = %format!("{}-{}", tp.0, tp.1), batches = batches.len(), next, "fetched");
            let _ = f.events.send(Ev::Fetched {
                tp,
                gen: part.gen,
                batches,
                next,
                end,
                log_start: p.log_start_offset,
            });
        }
    }
}

/// One answer's batches of a partition, cut for the coordinator.
struct Cut {
    /// To copy, in order.
    batches: Vec<Fetched>,
    /// The position after what was read.
    next: i64,
    /// Why the reading stopped before the end of the answer, if it did.
    unreadable: Option<String>,
}

/// Cut `records` (a partition's part of a fetch answer) read from `position`: batches behind it
/// skipped, markers and aborted transactions (`aborted`, read committed) dropped, small batches
/// merged up to `up_to` bytes, the rest as they are (or rewritten, [`copied`]). Pure.
fn cut(
    records: &bytes::Bytes,
    position: i64,
    mut aborted: Option<&mut Aborted>,
    up_to: usize,
) -> Cut {
    let mut next = position;
    let mut batches = Vec::new();
    // What stops the reading of this answer's batches (the partition is fetched again
    // after a pause, from the last batch read).
    let mut unreadable = None;
    // Small batches waiting to be merged, and the position before the first of them.
    let mut run: Vec<Batch<'_>> = Vec::new();
    let mut run_from = next;
    let mut run_bytes = 0;
    for b in Batches::new(records) {
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                unreadable = Some(format!(" at offset {next}: {e}"));
                break;
            }
        };
        let dropped = aborted.as_mut().is_some_and(|a| a.is_aborted(&b));
        let d = disposition(&b.header, next);
        if d == Disposition::Behind {
            continue;
        }
        if dropped || d == Disposition::Marker {
            next = b.header.next_offset();
            continue;
        }
        let size = b.header.size();
        let joins = size < SMALL_BATCH
            && run.first().is_none_or(|lead| {
                lead.header.compression() == b.header.compression() && run_bytes + size <= up_to
            });
        if !joins {
            match copied(&std::mem::take(&mut run), run_from, records) {
                Ok(c) => batches.extend(c),
                Err(e) => {
                    next = run_from;
                    unreadable = Some(e);
                    break;
                }
            }
        }
        if size < SMALL_BATCH {
            if run.is_empty() {
                (run_from, run_bytes) = (next, 0);
            }
            run_bytes += size;
            run.push(b);
        } else {
            match copied(&[b], next, records) {
                Ok(c) => batches.extend(c),
                Err(e) => {
                    unreadable = Some(e);
                    break;
                }
            }
        }
        next = b.header.next_offset();
    }
    // What waits to be merged is copied, also when a batch after it could not be read (the
    // position has moved past it).
    match copied(&run, run_from, records) {
        Ok(c) => batches.extend(c),
        Err(e) => {
            next = run_from;
            unreadable = Some(e);
        }
    }
    Cut {
        batches,
        next,
        unreadable,
    }
}

/// What the coordinator gets of `run` (consecutive batches of one partition, read from
/// `position`): one batch as fetched (a slice of `records`, the answer's bytes) when it may go as
/// it is, else one rewritten by [`rebatch`] (several merged, or one that must be). `Err`: why
/// they cannot be read, for the trouble.
fn copied(
    run: &[Batch<'_>],
    position: i64,
    records: &bytes::Bytes,
) -> Result<Option<Fetched>, String> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(None);
    };
    let max_timestamp = run
        .iter()
        .map(|b| b.header.max_timestamp)
        .max()
        .unwrap_or(-1);
    if run.len() == 1 && disposition(&first.header, position) == Disposition::Bytes {
        return Ok(Some(Fetched {
            first: first.header.base_offset,
            next: first.header.next_offset(),
            count: first.header.count,
            offsets: None,
            bytes: records.slice_ref(first.bytes),
            max_timestamp,
        }));
    }
    let Some(r) = rebatch(run, position).map_err(|e| format!(": {e}"))? else {
        return Ok(None);
    };
    let (from, count) = (r.offsets[0], r.offsets.len() as i32);
    // Contiguous offsets need no list (the ledger's cheaper case).
    let contiguous = r.offsets[r.offsets.len() - 1] - from + 1 == i64::from(count);
    Ok(Some(Fetched {
        first: from,
        next: last.header.next_offset(),
        count,
        offsets: (!contiguous).then_some(r.offsets),
        bytes: r.bytes.freeze(),
        max_timestamp,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};

    /// One batch of `n` records from offset `from`, values of `len` bytes.
    fn batch(from: i64, n: i64, len: usize, compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = (from..from + n)
            .map(|o| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: o,
                sequence: o as i32,
                timestamp: 1_700_000_000_000 + o,
                key: Some(Bytes::from(format!("k{o}"))),
                value: Some(Bytes::from(format!("{o:08}").repeat(len / 8))),
                headers: Default::default(),
            })
            .collect();
        super::super::batch::encoded(&records, compression)
    }

    /// The offsets and values of the records in `f`, as a consumer of the copy reads them.
    fn records_of(f: &Fetched) -> Vec<(i64, Bytes)> {
        let mut b = f.bytes.clone();
        let decoded = RecordBatchDecoder::decode(&mut b).expect("decode").records;
        let offsets: Vec<i64> = match &f.offsets {
            Some(o) => o.clone(),
            None => (f.first..f.first + i64::from(f.count)).collect(),
        };
        assert_eq!(offsets.len(), decoded.len());
        offsets
            .into_iter()
            .zip(decoded)
            .map(|(o, r)| (o, r.value.expect("a value")))
            .collect()
    }

    /// The source offsets of every record in `batches`, in order.
    fn offsets_of(batches: &[Fetched]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(records_of)
            .map(|(o, _)| o)
            .collect()
    }

    /// 40 batches of one 1 KB record, one of 40 such records (above [`SMALL_BATCH`]), 3 of a
    /// record compressed with zstd, 3 more uncompressed.
    fn answer() -> Bytes {
        let mut src = Vec::new();
        for o in 0..40 {
            src.extend(batch(o, 1, 1000, Compression::None));
        }
        src.extend(batch(40, 40, 1000, Compression::None));
        for o in 80..83 {
            src.extend(batch(o, 1, 1000, Compression::Zstd));
        }
        for o in 83..86 {
            src.extend(batch(o, 1, 1000, Compression::None));
        }
        Bytes::from(src)
    }

    #[test]
    fn small_batches_are_merged_and_large_ones_go_as_they_are() {
        let records = answer();
        let c = cut(&records, 0, None, MERGE_UP_TO);
        assert!(c.unreadable.is_none(), "{:?}", c.unreadable);
        assert_eq!(c.next, 86);
        let shape: Vec<(i64, i32, i64, i16)> = c
            .batches
            .iter()
            .map(|f| {
                let h = Batches::new(&f.bytes).next().unwrap().unwrap().header;
                (f.first, f.count, f.next, h.compression())
            })
            .collect();
        // Merged runs keep their codec; a codec change starts a new run.
        assert_eq!(
            shape,
            [
                (0, 40, 40, 0),
                (40, 40, 80, 0),
                (80, 3, 83, 4),
                (83, 3, 86, 0)
            ]
        );
        // The large batch is the answer's own bytes.
        let big = Batches::new(&records).nth(40).unwrap().unwrap();
        assert_eq!(&c.batches[1].bytes[..], big.bytes);
        let copied: Vec<(i64, Bytes)> = c.batches.iter().flat_map(records_of).collect();
        let want: Vec<(i64, Bytes)> = (0..86)
            .map(|o| (o, Bytes::from(format!("{o:08}").repeat(125))))
            .collect();
        assert_eq!(copied, want, "every record once, in order");
        for f in &c.batches {
            assert!(super::super::batch::crc_matches(&f.bytes));
            assert_eq!(f.max_timestamp, 1_700_000_000_000 + f.next - 1);
        }
    }

    #[test]
    fn merged_batches_stay_within_their_limit_and_start_at_the_position() {
        let records = answer();
        let c = cut(&records, 5, None, 8 * 1024);
        assert_eq!(c.batches[0].first, 5, "from the position");
        let merged = &c.batches[..c.batches.len() - 3];
        assert!(merged.len() >= 5, "{} batches", merged.len());
        for f in merged.iter().filter(|f| f.count > 1 && f.first < 40) {
            // Each part is about 1.1 KB: at most 7 of them fit 8 KiB.
            assert!(
                f.count <= 8 && f.bytes.len() <= 8 * 1024,
                "{} records",
                f.count
            );
        }
        let copied = offsets_of(&c.batches);
        assert_eq!(copied, (5..86).collect::<Vec<_>>());
    }

    #[test]
    fn small_batches_before_an_unreadable_one_are_copied_and_the_position_stops_there() {
        let mut src = Vec::new();
        for o in 0..5 {
            src.extend(batch(o, 1, 1000, Compression::None));
        }
        // An old message format (magic 1) after them.
        let mut old = batch(5, 1, 1000, Compression::None);
        old[16] = 1;
        src.extend(old);
        let records = Bytes::from(src);
        let c = cut(&records, 0, None, MERGE_UP_TO);
        let copied = offsets_of(&c.batches);
        assert_eq!(copied, (0..5).collect::<Vec<_>>());
        assert_eq!(c.next, 5, "fetched again from the batch it could not read");
        assert!(c.unreadable.is_some_and(|e| e.contains("offset 5")));
    }

    #[test]
    fn merges_stay_within_half_the_smallest_remote_limit() {
        let cfg = FetchConfig::of(&Endpoint::new("a", "a:9092"));
        assert_eq!(cfg.merge_up_to.load(Ordering::Relaxed), MERGE_UP_TO);
        cfg.limit_merges([1_048_588, 100_000]);
        assert_eq!(cfg.merge_up_to.load(Ordering::Relaxed), 50_000);
        cfg.limit_merges([]);
        assert_eq!(cfg.merge_up_to.load(Ordering::Relaxed), MERGE_UP_TO);
    }
}
