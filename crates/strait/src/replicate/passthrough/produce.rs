//! One target broker's producer: the batches of the partitions it leads, stamped with each
//! partition's idempotent producer id and sequence, up to five requests in flight on one
//! connection, one batch a partition in a request (Kafka refuses more: INVALID_RECORD).
//!
//! Idempotence is what allows five batches of a partition in flight without losing their
//! order: the broker takes a partition's batches only in sequence, so after a failure the later
//! ones fail too, and everything unacknowledged is sent again in order, under the same
//! sequences; a batch the broker already has is recognised and answered with its offset (Kafka)
//! or as a duplicate (Tansu). A target that gives no producer ids gets one batch a partition at
//! a time instead.
//!
//! Each partition has its own producer id ([`PartProducer`]), so that a broker that lost one
//! partition's producer state (UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER) costs that
//! partition a new id and nothing else. A partition whose leader moved, or that fails for any
//! reason worth retrying, is handed back to the coordinator once its requests in flight are
//! answered, with its unacknowledged batches in order; a failed connection hands back all.
//! A batch the target refuses for good (too large, invalid) stops its partition.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::batch::{append_for_produce, Batches, Stamp};
use super::engine::{class_of, means_moved, Ev, Item, RTp, Why};
use crate::kafka::raw::{error_name, Conn};
use crate::kafka::Endpoint;
use crate::replicate::health::ErrorClass;
use crate::stop::CancellationToken;

/// Requests in flight on one connection, and batches of one partition in flight (the
/// idempotent producer's window, as Kafka's `max.in.flight.requests.per.connection`).
const WINDOW: usize = 5;

/// The most bytes of batches in one request (a single larger batch still goes alone).
const REQUEST_BYTES: usize = 8 << 20;

/// One partition's idempotent producer: its id, epoch and next sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartProducer {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
    pub(crate) next_seq: i32,
}

impl PartProducer {
    /// No idempotence: the broker neither orders nor deduplicates.
    pub(crate) const NONE: PartProducer = PartProducer {
        id: -1,
        epoch: -1,
        next_seq: -1,
    };

    pub(crate) fn new(id: i64, epoch: i16) -> Self {
        Self {
            id,
            epoch,
            next_seq: 0,
        }
    }

    fn idempotent(&self) -> bool {
        self.id >= 0
    }

    /// The sequence of a batch of `count` records sent for the first time.
    fn take(&mut self, count: i32) -> i32 {
        if !self.idempotent() {
            return -1;
        }
        let seq = self.next_seq;
        // Sequences wrap at i32::MAX, as the broker's do.
        self.next_seq = ((i64::from(seq) + i64::from(count)) % (i64::from(i32::MAX) + 1)) as i32;
        seq
    }
}

/// What the coordinator tells a producer.
pub(crate) enum SinkCmd {
    /// Produce `rtp`'s batches from now on: its state, and batches waiting (in order).
    Add {
        rtp: RTp,
        gen: u64,
        state: PartProducer,
        items: VecDeque<Item>,
    },
    /// One more batch of `rtp`.
    Item(RTp, Item),
    /// Drop what `rtp` has (its partition was given up).
    Forget(RTp),
}

pub(crate) struct Sink {
    pub(crate) ep: Endpoint,
    pub(crate) addr: String,
    /// The produce request's timeout (acks = all).
    pub(crate) timeout: Duration,
    pub(crate) events: UnboundedSender<Ev>,
    pub(crate) cancel: CancellationToken,
}

struct Part {
    /// The coordinator's incarnation of the partition: batches of an earlier one still in
    /// flight are answered, and then count for nothing.
    gen: u64,
    state: PartProducer,
    waiting: VecDeque<Item>,
    /// Sent, unanswered, in order.
    in_flight: VecDeque<Item>,
    /// Answered with an error: to send again (in order, before `waiting`).
    failed: Vec<Item>,
    /// Why it is being handed back, once it is (its requests in flight are answered first).
    leaving: Option<Why>,
}

impl Part {
    fn window(&self) -> usize {
        if self.state.idempotent() {
            WINDOW
        } else {
            1
        }
    }
}

/// Run the producer until cancelled or its coordinator is gone; on a connection failure it
/// hands every partition back and ends.
pub(crate) async fn run(s: Sink, mut cmds: UnboundedReceiver<SinkCmd>) {
    let mut parts: HashMap<RTp, Part> = HashMap::new();
    // The partitions of each request in flight, oldest first (answers come in order).
    let mut requests: VecDeque<Vec<RTp>> = VecDeque::new();
    let mut conn = match Conn::connect(&s.ep, &s.addr).await {
        Ok(c) => c,
        Err(e) => {
            // Take what was sent already, and hand it all back.
            while let Ok(c) = cmds.try_recv() {
                apply(&s, &mut parts, c);
            }
            hand_back(&s, &mut parts, class_of(&e, true), e.to_string());
            drain_bounced(&s, cmds);
            return;
        }
    };
    let Some(version) = conn.version(ApiKey::Produce, 3..=12) else {
        let reason = format!(
            "cluster {} ({}): the broker offers no Produce version strait speaks",
            s.ep.alias, s.addr
        );
        while let Ok(c) = cmds.try_recv() {
            apply(&s, &mut parts, c);
        }
        hand_back(&s, &mut parts, ErrorClass::Target, reason);
        drain_bounced(&s, cmds);
        return;
    };
    loop {
        loop {
            match cmds.try_recv() {
                Ok(c) => apply(&s, &mut parts, c),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(_) => return,
            }
        }
        leave(&s, &mut parts);
        while requests.len() < WINDOW {
            let Some((req, listed)) = next_request(&s, &mut parts) else {
                break;
            };
            let sent = tokio::select! {
                _ = s.cancel.cancelled() => return,
                r = conn.send(&req, version) => r,
            };
            if let Err(e) = sent {
                requests.push_back(listed);
                fail_all(&s, &mut parts, &mut requests, &e);
                drain_bounced(&s, cmds);
                return;
            }
            requests.push_back(listed);
        }
        if requests.is_empty() {
            tokio::select! {
                _ = s.cancel.cancelled() => return,
                c = cmds.recv() => match c {
                    Some(c) => apply(&s, &mut parts, c),
                    None => return,
                },
            }
            continue;
        }
        let resp = tokio::select! {
            _ = s.cancel.cancelled() => return,
            r = conn.recv::<ProduceRequest>() => r,
        };
        let listed = requests.pop_front().expect("a request in flight");
        match resp {
            Ok(r) => answer(&s, &mut parts, listed, r),
            Err(e) => {
                requests.push_front(listed);
                fail_all(&s, &mut parts, &mut requests, &e);
                drain_bounced(&s, cmds);
                return;
            }
        }
    }
}

fn apply(s: &Sink, parts: &mut HashMap<RTp, Part>, c: SinkCmd) {
    match c {
        SinkCmd::Add {
            rtp,
            gen,
            state,
            items,
        } => {
            // Batches of an earlier incarnation still in flight stay first: their answers come
            // first.
            let in_flight = parts
                .remove(&rtp)
                .map(|old| old.in_flight)
                .unwrap_or_default();
            parts.insert(
                rtp,
                Part {
                    gen,
                    state,
                    waiting: items,
                    in_flight,
                    failed: Vec::new(),
                    leaving: None,
                },
            );
        }
        SinkCmd::Item(rtp, item) => match parts.get_mut(&rtp) {
            Some(p) => p.waiting.push_back(item),
            None => {
                let _ = s.events.send(Ev::Returned {
                    rtp,
                    state: None,
                    items: vec![item],
                    why: Why::Bounced,
                });
            }
        },
        SinkCmd::Forget(rtp) => {
            if let Some(p) = parts.get_mut(&rtp) {
                // What is in flight is answered, and counts for nothing.
                p.gen = u64::MAX;
                p.waiting.clear();
                p.failed.clear();
            }
        }
    }
}

/// After the producer ended: batches sent to it meanwhile go back.
fn drain_bounced(s: &Sink, mut cmds: UnboundedReceiver<SinkCmd>) {
    cmds.close();
    while let Ok(c) = cmds.try_recv() {
        match c {
            SinkCmd::Add {
                rtp, state, items, ..
            } => {
                let _ = s.events.send(Ev::Returned {
                    rtp,
                    state: Some(state),
                    items: items.into(),
                    why: Why::Retry("the producer's connection failed".into()),
                });
            }
            SinkCmd::Item(rtp, item) => {
                let _ = s.events.send(Ev::Returned {
                    rtp,
                    state: None,
                    items: vec![item],
                    why: Why::Bounced,
                });
            }
            SinkCmd::Forget(_) => {}
        }
    }
}

/// Hand back the partitions that are leaving and have nothing in flight.
fn leave(s: &Sink, parts: &mut HashMap<RTp, Part>) {
    let gone: Vec<RTp> = parts
        .iter()
        .filter(|(_, p)| p.leaving.is_some() && p.in_flight.is_empty())
        .map(|(rtp, _)| rtp.clone())
        .collect();
    for rtp in gone {
        let mut p = parts.remove(&rtp).expect("listed");
        let mut items = std::mem::take(&mut p.failed);
        items.extend(p.waiting.drain(..));
        let _ = s.events.send(Ev::Returned {
            rtp,
            state: Some(p.state),
            items,
            why: p.leaving.take().expect("leaving"),
        });
    }
}

/// The connection failed: every partition goes back with all it has, in order.
fn fail_all(
    s: &Sink,
    parts: &mut HashMap<RTp, Part>,
    requests: &mut VecDeque<Vec<RTp>>,
    e: &crate::kafka::raw::Error,
) {
    requests.clear();
    for p in parts.values_mut() {
        let mut failed = std::mem::take(&mut p.failed);
        failed.extend(p.in_flight.drain(..));
        failed.sort_by_key(|i| i.first);
        p.failed = failed;
    }
    hand_back(s, parts, class_of(e, true), e.to_string());
}

fn hand_back(s: &Sink, parts: &mut HashMap<RTp, Part>, class: ErrorClass, reason: String) {
    let _ = s.events.send(Ev::Trouble {
        class,
        on_target: true,
        message: reason.clone(),
    });
    for p in parts.values_mut() {
        p.leaving.get_or_insert_with(|| Why::Retry(reason.clone()));
    }
    leave(s, parts);
}

/// The next request: the first waiting batch of each partition with room in its window, up to
/// [`REQUEST_BYTES`]. `None` when nothing can go.
fn next_request(s: &Sink, parts: &mut HashMap<RTp, Part>) -> Option<(ProduceRequest, Vec<RTp>)> {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    let mut listed = Vec::new();
    let mut size = 0usize;
    for (rtp, p) in parts.iter_mut() {
        if p.leaving.is_some() || p.in_flight.len() >= p.window() {
            continue;
        }
        let next = if p.failed.is_empty() {
            p.waiting.front()
        } else {
            p.failed.first()
        };
        let Some(item) = next else { continue };
        if size > 0 && size + item.bytes.len() > REQUEST_BYTES {
            continue;
        }
        let mut item = if p.failed.is_empty() {
            p.waiting.pop_front().expect("front")
        } else {
            p.failed.remove(0)
        };
        let seq = match item.seq {
            Some(seq) if p.state.idempotent() => seq,
            _ => p.state.take(item.count),
        };
        item.seq = p.state.idempotent().then_some(seq);
        let stamp = Stamp {
            producer_id: p.state.id,
            producer_epoch: p.state.epoch,
            base_sequence: seq,
        };
        let mut out = BytesMut::with_capacity(item.bytes.len());
        let Some(Ok(batch)) = Batches::new(&item.bytes).next() else {
            // Read once already by the fetcher: cannot happen.
            let _ = s.events.send(Ev::Refused {
                item,
                reason: "a fetched batch could not be read again".into(),
            });
            continue;
        };
        append_for_produce(&batch, stamp, &mut out);
        size += out.len();
        let data = PartitionProduceData::default()
            .with_index(rtp.1)
            .with_records(Some(out.freeze()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*rtp.0) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(rtp.0.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
        p.in_flight.push_back(item);
        listed.push(rtp.clone());
    }
    if listed.is_empty() {
        return None;
    }
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(s.timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(topics);
    Some((req, listed))
}

/// What a produce error means for the partition.
enum Outcome {
    /// Written: at this offset, or (a duplicate Tansu does not place) somewhere.
    Written(Option<i64>),
    Again(Why),
    /// Refused for good.
    Refused(String),
}

fn outcome(code: i16, base_offset: i64, message: Option<&str>) -> Outcome {
    let named = || match message {
        Some(m) if !m.is_empty() => format!("{} ({m})", error_name(code)),
        _ => error_name(code),
    };
    match code {
        0 => Outcome::Written(Some(base_offset)),
        // DUPLICATE_SEQUENCE_NUMBER: the broker has it (Tansu says so without the offset).
        46 => Outcome::Written(None),
        // OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID,
        // INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED.
        45 | 47 | 59 | 49 | 90 => Outcome::Again(Why::Producer(named())),
        c if means_moved(c) => Outcome::Again(Why::Moved(named())),
        // CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_TIMESTAMP,
        // UNSUPPORTED_FOR_MESSAGE_FORMAT, INVALID_RECORD, INVALID_TOPIC_EXCEPTION.
        2 | 10 | 18 | 32 | 43 | 87 | 17 => Outcome::Refused(named()),
        _ => Outcome::Again(Why::Retry(named())),
    }
}

/// Why a partition stops at a batch the target refuses, in one sentence an operator can act on.
fn refusal(s: &Sink, rtp: &RTp, item: &Item, code: i16, reason: String) -> String {
    let (tp, first, size) = (&item.tp, item.first, item.bytes.len());
    match code {
        // MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE.
        10 | 18 => format!(
            "the record batch of {}-{} from offset {first} is {size} bytes, over the max.message.bytes {} accepts on {} ({reason}): {}-{} stops there, the rest of the flow goes on; raise max.message.bytes of {} on {} (or of {} on the source, which strait copies) and restart strait",
            tp.0, tp.1, rtp.0, s.ep.alias, tp.0, tp.1, rtp.0, s.ep.alias, tp.0
        ),
        _ => format!(
            "cluster {} ({}) refuses the record batch of {}-{} from offset {first} for good ({reason}): {}-{} stops there, the rest of the flow goes on",
            s.ep.alias, s.addr, tp.0, tp.1, tp.0, tp.1
        ),
    }
}

fn answer(s: &Sink, parts: &mut HashMap<RTp, Part>, listed: Vec<RTp>, r: ProduceResponse) {
    for rtp in listed {
        let Some(p) = parts.get_mut(&rtp) else {
            continue;
        };
        let Some(item) = p.in_flight.pop_front() else {
            continue;
        };
        let found = r
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == &*rtp.0)
            .flat_map(|t| &t.partition_responses)
            .find(|x| x.index == rtp.1);
        let o = match found {
            Some(x) => outcome(
                x.error_code,
                x.base_offset,
                x.error_message.as_ref().map(|m| m.as_str()),
            ),
            None => Outcome::Again(Why::Retry(format!(
                "no answer for {}-{} in the produce response",
                rtp.0, rtp.1
            ))),
        };
        if item.gen != p.gen {
            // Of an earlier incarnation: nothing to do but tell a write (which counts for
            // nothing).
            if let Outcome::Written(base_offset) = o {
                let _ = s.events.send(Ev::Acked { item, base_offset });
            }
            continue;
        }
        match o {
            Outcome::Written(base_offset) => {
                let _ = s.events.send(Ev::Acked { item, base_offset });
            }
            Outcome::Again(why) => {
                p.failed.push(item);
                // The first error says why; the later ones follow from it (the broker takes a
                // partition's batches only in order).
                p.leaving.get_or_insert(why);
            }
            Outcome::Refused(reason) => {
                let reason = refusal(s, &rtp, &item, found.map_or(0, |x| x.error_code), reason);
                let _ = s.events.send(Ev::Refused { item, reason });
                p.waiting.clear();
                p.failed.clear();
                p.leaving = Some(Why::Refused);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_count_records_and_wrap_as_the_brokers_do() {
        let mut p = PartProducer::new(7, 0);
        assert_eq!(p.take(5), 0);
        assert_eq!(p.take(3), 5);
        assert_eq!(p.next_seq, 8);
        p.next_seq = i32::MAX - 1;
        assert_eq!(p.take(4), i32::MAX - 1);
        assert_eq!(p.next_seq, 2);
        let mut none = PartProducer::NONE;
        assert_eq!(none.take(10), -1);
        assert_eq!(none, PartProducer::NONE);
    }

    #[test]
    fn errors_are_sorted_into_written_again_and_refused() {
        assert!(matches!(outcome(0, 42, None), Outcome::Written(Some(42))));
        assert!(matches!(outcome(46, -1, None), Outcome::Written(None)));
        assert!(matches!(
            outcome(6, -1, None),
            Outcome::Again(Why::Moved(_))
        ));
        assert!(matches!(
            outcome(59, -1, None),
            Outcome::Again(Why::Producer(_))
        ));
        assert!(matches!(
            outcome(19, -1, None),
            Outcome::Again(Why::Retry(_))
        ));
        assert!(matches!(outcome(10, -1, None), Outcome::Refused(_)));
        assert!(matches!(outcome(87, -1, Some("")), Outcome::Refused(_)));
    }
}
