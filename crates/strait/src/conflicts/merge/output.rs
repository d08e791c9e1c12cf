//! The merged topics on R: writing merged records, and reading back a partition's tail (its
//! last record's `strait.resume` and the ids of the last dedupe window) to resume from.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::debug;

use super::resume::{ResumeState, RESUME_HEADER};
use crate::conflicts::output::OutputContext;
use crate::conflicts::resolve::{OFFSET_HEADER, ORIGIN_HEADER, PARTITION_HEADER};
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::Endpoint;
use crate::stop::CancellationToken;

/// The header holding an event's own timestamp (the merged record's is its effective time).
pub(crate) const TIMESTAMP_HEADER: &str = "strait.timestamp";

/// How long a stop waits for merged records already handed to the producer.
const STOP_FLUSH: Duration = Duration::from_secs(2);

/// Whether a header is one strait writes on merged records (an event's own are dropped, so
/// that each merged record has one of each).
fn is_merge_header(key: &str) -> bool {
    matches!(
        key,
        ORIGIN_HEADER | PARTITION_HEADER | OFFSET_HEADER | TIMESTAMP_HEADER | RESUME_HEADER
    )
}

/// The last value of header `name`.
pub(crate) fn header<'a, M: Message>(m: &'a M, name: &str) -> Option<&'a [u8]> {
    m.headers()?
        .iter()
        .filter(|h| h.key == name)
        .last()
        .and_then(|h| h.value)
}

fn header_text<'a, M: Message>(m: &'a M, name: &str) -> Option<&'a str> {
    header(m, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// What a merged record is made of.
pub(super) struct Merged<'a, M: Message> {
    /// The event, as read in its region.
    pub event: &'a M,
    /// The region it was written in.
    pub origin: &'a str,
    /// Its effective time.
    pub at: i64,
    /// Where the merge stands right after it.
    pub resume: &'a ResumeState,
}

/// The producer of merged records.
pub(super) struct Output {
    producer: ThreadedProducer<OutputContext>,
}

impl Output {
    pub(super) fn new(ep: &Endpoint, region: &str) -> Result<Self, String> {
        let mut cfg = ep.producer_config();
        cfg.set("client.id", format!("strait-{region}-merger"));
        // A record that fails must not be followed by later ones (the merged topic's last
        // record says where to go on, so a gap before it would be a lost event): a failure is
        // fatal, the session starts over from what landed.
        cfg.set("enable.gapless.guarantee", "true");
        let producer = cfg
            .create_with_context(OutputContext::new(ep.context()))
            .map_err(|e| format!("cannot create the merged streams' producer: {e}"))?;
        Ok(Self { producer })
    }

    /// Hand a merged record to the producer (idempotent: records of a partition land in the
    /// order handed).
    pub(super) fn write<M: Message>(
        &self,
        topic: &str,
        partition: i32,
        r: Merged<'_, M>,
    ) -> Result<(), String> {
        let mut headers = OwnedHeaders::new();
        if let Some(hs) = r.event.headers() {
            for h in hs.iter().filter(|h| !is_merge_header(h.key)) {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let own_ts = r.event.timestamp().to_millis().unwrap_or(-1).to_string();
        let (p, o) = (
            r.event.partition().to_string(),
            r.event.offset().to_string(),
        );
        let resume = r.resume.to_json();
        for (k, v) in [
            (ORIGIN_HEADER, r.origin),
            (PARTITION_HEADER, &p),
            (OFFSET_HEADER, &o),
            (TIMESTAMP_HEADER, &own_ts),
            (RESUME_HEADER, &resume),
        ] {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(partition)
            .timestamp(r.at)
            .headers(headers);
        if let Some(k) = r.event.key() {
            rec = rec.key(k);
        }
        if let Some(v) = r.event.payload() {
            rec = rec.payload(v);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(format!(
                        "cannot hand a record of {topic} to the producer: {e}"
                    ))
                }
            }
        }
    }

    /// Wait up to `within` for every record handed over: whether they all were acknowledged
    /// (a failure is kept for [`Output::failed`]).
    pub(super) fn flush(&self, within: Duration) -> bool {
        let _ = self.producer.flush(within);
        self.producer.in_flight_count() <= 0
    }

    /// The first delivery failure, if any.
    pub(super) fn failed(&self) -> Option<String> {
        self.producer.context().take_failure()
    }

    /// Wait until every record handed over is acknowledged: true when they are, false when
    /// stopped first (given [`STOP_FLUSH`] more), an error when one failed.
    pub(super) fn settle(&self, cancel: &CancellationToken) -> Result<bool, String> {
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(e) = self.failed() {
                return Err(e);
            }
            if self.producer.in_flight_count() <= 0 {
                return Ok(true);
            }
            if cancel.is_cancelled() {
                let d = *deadline.get_or_insert_with(|| Instant::now() + STOP_FLUSH);
                if Instant::now() >= d {
                    return Ok(false);
                }
            }
            let _ = self.producer.flush(Duration::from_millis(100));
        }
    }
}

/// The last merged record of a partition: where the merge stood after it.
#[derive(Debug)]
pub(super) struct Last {
    pub resume: ResumeState,
    /// The region, partition and offset of the event it holds.
    pub origin: String,
    pub partition: i32,
    pub position: i64,
}

/// An id released before a restart: (id, effective time, region, partition, offset).
pub(super) type Released = (Vec<u8>, i64, String, i32, i64);

/// What a merged partition's tail says.
#[derive(Debug, Default)]
pub(super) struct Tail {
    /// Its last record, unless it is empty.
    pub last: Option<Last>,
    /// The ids of its records within the window before the last, in order.
    pub ids: Vec<Released>,
}

/// Where a merged record's event was written: (region, partition, offset).
fn origin_of(m: &BorrowedMessage<'_>) -> Option<(String, i32, i64)> {
    Some((
        header_text(m, ORIGIN_HEADER)?.to_string(),
        header_text(m, PARTITION_HEADER)?.parse().ok()?,
        header_text(m, OFFSET_HEADER)?.parse().ok()?,
    ))
}

/// Read the tail of `topic`-`partition`: its last record, and when `id_header` is set the ids
/// of the records whose effective time is at most `window_ms` before the last one's.
pub(super) fn read_tail(
    reader: &BaseConsumer<Diagnosed>,
    topic: &str,
    partition: i32,
    id_header: Option<&str>,
    window_ms: i64,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<Tail>, String> {
    // A merged topic just created may have no leader known yet: asked again until it has.
    let asked = Instant::now();
    let (lo, hi) = loop {
        match reader.fetch_watermarks(topic, partition, timeout) {
            Ok(w) => break w,
            Err(e) if asked.elapsed() >= timeout => {
                return Err(format!("cannot read the end of {topic}-{partition}: {e}"))
            }
            Err(e) => {
                debug!(topic, partition, error = %e, "merged topic's end not known yet; asking again");
                if cancel.is_cancelled() {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    if hi <= lo {
        return Ok(Some(Tail::default()));
    }
    let Some(last) = read_range(
        reader,
        topic,
        partition,
        hi - 1,
        hi,
        timeout,
        cancel,
        |_| {},
    )?
    else {
        return Ok(None);
    };
    let mut tail = Tail {
        last: Some(last),
        ids: Vec::new(),
    };
    let Some(name) = id_header else {
        return Ok(Some(tail));
    };
    let at = tail.last.as_ref().map_or(0, |l| l.resume.at);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(
        topic,
        partition,
        Offset::Offset(at.saturating_sub(window_ms)),
    )
    .map_err(|e| e.to_string())?;
    let found = reader.offsets_for_times(tpl, timeout).map_err(|e| {
        format!("cannot find the records of the last dedupe window of {topic}-{partition}: {e}")
    })?;
    let start = found
        .elements()
        .first()
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .unwrap_or(lo)
        .max(lo);
    let mut ids = Vec::new();
    let read = read_range(reader, topic, partition, start, hi, timeout, cancel, |m| {
        if let (Some(id), Some((origin, p, o)), Some(t)) =
            (header(m, name), origin_of(m), m.timestamp().to_millis())
        {
            ids.push((id.to_vec(), t, origin, p, o));
        }
    })?;
    if read.is_none() {
        return Ok(None);
    }
    tail.ids = ids;
    Ok(Some(tail))
}

/// Read `from..to` of a partition, giving each record to `each`: the last one as a [`Last`]
/// (an error if strait did not write it), `None` when stopped first.
#[allow(clippy::too_many_arguments)]
fn read_range(
    reader: &BaseConsumer<Diagnosed>,
    topic: &str,
    partition: i32,
    from: i64,
    to: i64,
    timeout: Duration,
    cancel: &CancellationToken,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<Option<Last>, String> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))
        .map_err(|e| e.to_string())?;
    reader
        .assign(&tpl)
        .map_err(|e| format!("cannot read {topic}-{partition} back: {e}"))?;
    let deadline = Instant::now() + timeout.max(Duration::from_secs(30));
    let result = loop {
        if cancel.is_cancelled() {
            break Ok(None);
        }
        if Instant::now() >= deadline {
            break Err(format!(
                "{topic}-{partition} was not read back to offset {to} within {}s",
                timeout.max(Duration::from_secs(30)).as_secs()
            ));
        }
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                each(&m);
                if m.offset() + 1 >= to {
                    break match (
                        header(&m, RESUME_HEADER).and_then(ResumeState::parse),
                        origin_of(&m),
                    ) {
                        (Some(resume), Some((origin, partition, position))) => Ok(Some(Last {
                            resume,
                            origin,
                            partition,
                            position,
                        })),
                        _ => Err(format!(
                            "the record at offset {} of {topic}-{partition} was not written by strait's merger (no {RESUME_HEADER} header): strait cannot tell where to go on; move the topic away or delete it",
                            m.offset()
                        )),
                    };
                }
            }
            Some(Err(e)) => debug!(topic, partition, error = %e, "reading a merged topic back"),
            None => {}
        }
    };
    let _ = reader.unassign();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strait_headers_are_told_from_an_events_own() {
        for h in [
            ORIGIN_HEADER,
            PARTITION_HEADER,
            OFFSET_HEADER,
            TIMESTAMP_HEADER,
            RESUME_HEADER,
        ] {
            assert!(is_merge_header(h), "{h}");
        }
        assert!(!is_merge_header("event-id"));
    }
}
