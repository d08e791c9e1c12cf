//! Answers on the wire: what the sandbox (Tansu) sends where librdkafka reads the bytes itself,
//! compared byte for byte with what Apache Kafka sends. Requests are written with Tansu's own
//! encoder (tansu-sans-io); the answers expected are written here from Kafka's message schema
//! (`FetchResponse.json`) and what its broker fills in, and the `kafka` variant of each test
//! checks them against a real Apache Kafka broker.

use std::time::Duration;

use strait_sandbox::Cluster;
use tansu_sans_io::fetch_request::{FetchPartition, FetchTopic};
use tansu_sans_io::metadata_request::MetadataRequestTopic;
use tansu_sans_io::{Body, FetchRequest, Frame, Header, MetadataRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

const FETCH: i16 = 1;
const METADATA: i16 = 3;
/// The Fetch versions librdkafka 2.12 may use (it asks for up to 16; Apache Kafka 4 answers from
/// 4). 12 is the first flexible one (tagged fields, among them KIP-951's `CurrentLeader`), 13 the
/// first that names topics by id, 16 the first with the top-level `NodeEndpoints`.
const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=16;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_TOPIC_ID: i16 = 100;

on_both_engines! {
/// A fetch of a topic deleted meanwhile (by name up to v12, by its old id from v13) is answered
/// as Apache Kafka answers it: the topic as asked for, each partition with the error, -1 for the
/// offsets, no records, and no tagged fields. Before, the sandbox added the tagged fields
/// `CurrentLeader` (leader -1), `DivergingEpoch` and `SnapshotId` to each partition and an empty
/// `NodeEndpoints` to the answer: librdkafka 2.12 counts every `CurrentLeader` it reads as a leader
/// change but fills in only those with a leader, so it then read the rest of its leader update from
/// uninitialised memory ("Partition soak(...)[203554984]: not found in cache", "new leader
/// -2147483648") and `strait run` died by SIGSEGV right after the soak's topic-recreate scenario
/// deleted and created again the topic it copied.
async fn a_fetch_of_a_deleted_topic_is_answered_as_kafka_does(engine) {
    let c = engine.cluster("a").await;
    create_topic(&c, "gone", 3).await;
    let mut conn = Conn::open(&c).await;
    let id = conn.topic_id("gone").await;
    delete_topic(&c, "gone").await;

    let partitions = [0, 1, 2];
    let mut wrong = Vec::new();
    for version in FETCH_VERSIONS {
        let asked = if version >= 13 {
            Asked::Id(id)
        } else {
            Asked::Name("gone")
        };
        let (correlation_id, got) = conn
            .call(FETCH, version, fetch_request(version, &asked, &partitions).into())
            .await;
        let want = kafka_unknown_topic_answer(version, correlation_id, &asked, &partitions);
        if got != want {
            wrong.push(format!("Fetch v{version}: {}", difference(&got, &want)));
        }
    }
    assert!(
        wrong.is_empty(),
        "{engine:?} answers a fetch of a deleted topic otherwise than Apache Kafka:\n{}",
        wrong.join("\n")
    );
}
}

/// How a fetch names its topic.
enum Asked<'a> {
    /// By name (Fetch v0 to v12).
    Name(&'a str),
    /// By topic id (Fetch v13 on).
    Id([u8; 16]),
}

/// A consumer's sessionless fetch (session 0, epoch -1, as librdkafka sends) from offset 0 of
/// `partitions`, not waiting.
fn fetch_request(version: i16, asked: &Asked<'_>, partitions: &[i32]) -> FetchRequest {
    let (name, id) = match asked {
        Asked::Name(n) => (Some((*n).to_string()), None),
        Asked::Id(id) => (None, Some(*id)),
    };
    let partitions = partitions
        .iter()
        .map(|&p| {
            FetchPartition::default()
                .partition(p)
                .current_leader_epoch(Some(-1))
                .fetch_offset(0)
                .last_fetched_epoch(Some(-1))
                .log_start_offset(Some(-1))
                .partition_max_bytes(1 << 20)
                .replica_directory_id(None)
        })
        .collect();
    FetchRequest::default()
        .cluster_id(None)
        .replica_id((version <= 14).then_some(-1))
        .replica_state(None)
        .max_wait_ms(0)
        .min_bytes(1)
        .max_bytes(Some(50 << 20))
        .isolation_level(Some(0))
        .session_id(Some(0))
        .session_epoch(Some(-1))
        .topics(Some(vec![FetchTopic::default()
            .topic(name)
            .topic_id(id)
            .partitions(Some(partitions))]))
        .forgotten_topics_data(Some(vec![]))
        .rack_id(Some(String::new()))
}

/// What Apache Kafka sends (the whole frame, its size first) to `fetch_request` for a topic it
/// does not have: `FetchResponse.partitionResponse(partition, error)` for each partition (the
/// error, high watermark -1, the other fields at their defaults), its null records sent as empty
/// (`FetchResponse.recordsOrFail`). A tagged field is written only when it differs from its default,
/// so `DivergingEpoch` (-1, -1), `CurrentLeader` (-1, -1), `SnapshotId` (-1, -1) and an empty
/// `NodeEndpoints` are left out.
fn kafka_unknown_topic_answer(
    version: i16,
    correlation_id: i32,
    asked: &Asked<'_>,
    partitions: &[i32],
) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        flexible: version >= 12,
    };
    w.i32(0); // the frame's size, filled in at the end
    w.i32(correlation_id);
    w.tags(); // response header v1 from Fetch v12
    if version >= 1 {
        w.i32(0); // ThrottleTimeMs
    }
    if version >= 7 {
        w.i16(0); // ErrorCode
        w.i32(0); // SessionId: sessionless
    }
    w.len(1); // Responses
    let error = match asked {
        Asked::Name(name) => {
            w.string(name); // Topic
            UNKNOWN_TOPIC_OR_PARTITION
        }
        Asked::Id(id) => {
            w.out.extend_from_slice(id); // TopicId
            UNKNOWN_TOPIC_ID
        }
    };
    w.len(partitions.len());
    for &p in partitions {
        w.i32(p); // PartitionIndex
        w.i16(error); // ErrorCode
        w.i64(-1); // HighWatermark
        if version >= 4 {
            w.i64(-1); // LastStableOffset
        }
        if version >= 5 {
            w.i64(-1); // LogStartOffset
        }
        if version >= 4 {
            w.len(0); // AbortedTransactions: empty
        }
        if version >= 11 {
            w.i32(-1); // PreferredReadReplica
        }
        w.len(0); // Records: empty
        w.tags(); // none: DivergingEpoch, CurrentLeader, SnapshotId at their defaults
    }
    w.tags(); // topic
    w.tags(); // none: NodeEndpoints empty
    let size = i32::try_from(w.out.len() - 4).unwrap();
    w.out[..4].copy_from_slice(&size.to_be_bytes());
    w.out
}

/// Kafka's primitive types, in a flexible version's encoding (compact lengths, tagged fields) or not.
struct Writer {
    out: Vec<u8>,
    flexible: bool,
}

impl Writer {
    fn i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    /// The length of an array, of bytes or of records.
    fn len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.i32(i32::try_from(n).unwrap());
        }
    }
    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            self.i16(i16::try_from(s.len()).unwrap());
        }
        self.out.extend_from_slice(s.as_bytes());
    }
    /// No tagged fields (flexible versions only).
    fn tags(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }
}

/// Where two frames part, with both in hex from a little before.
fn difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(8);
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{} bytes sent, {} expected; they part at byte {at}:\n sent     ..{}\n expected ..{}",
        got.len(),
        want.len(),
        hex(&got[from.min(got.len())..]),
        hex(&want[from.min(want.len())..]),
    )
}

/// One connection to a cluster's first node, through its proxy.
struct Conn {
    stream: TcpStream,
    correlation_id: i32,
}

impl Conn {
    async fn open(c: &Cluster) -> Self {
        Self {
            stream: TcpStream::connect(c.addr()).await.expect("connect"),
            correlation_id: 0,
        }
    }

    /// Send `body` as request `api_key` at `version`; its correlation id and the answer's frame,
    /// size first.
    async fn call(&mut self, api_key: i16, version: i16, body: Body) -> (i32, Vec<u8>) {
        self.correlation_id += 1;
        let header = Header::Request {
            api_key,
            api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("wire-test".into()),
        };
        let request = Frame::request(header, body).expect("encode request");
        self.stream.write_all(&request).await.unwrap();
        let mut size = [0; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut size))
            .await
            .expect("no answer in 10 s")
            .unwrap();
        let mut frame = size.to_vec();
        frame.resize(4 + usize::try_from(i32::from_be_bytes(size)).unwrap(), 0);
        self.stream.read_exact(&mut frame[4..]).await.unwrap();
        (self.correlation_id, frame)
    }

    /// The id of `topic`, from a Metadata v12 answer.
    async fn topic_id(&mut self, topic: &str) -> [u8; 16] {
        let request = MetadataRequest::default()
            .topics(Some(vec![MetadataRequestTopic::default()
                .topic_id(Some([0; 16]))
                .name(Some(topic.into()))]))
            .allow_auto_topic_creation(Some(false))
            .include_cluster_authorized_operations(None)
            .include_topic_authorized_operations(Some(false));
        let (_, frame) = self.call(METADATA, 12, request.into()).await;
        let Body::MetadataResponse(answer) = Frame::response_from_bytes(&frame[..], METADATA, 12)
            .expect("decode metadata")
            .body
        else {
            panic!("not a metadata answer");
        };
        let found = answer.topics.unwrap_or_default();
        let t = found
            .iter()
            .find(|t| t.name.as_deref() == Some(topic))
            .unwrap_or_else(|| panic!("{topic} not in metadata: {found:?}"));
        assert_eq!(t.error_code, 0, "metadata of {topic}");
        t.topic_id.expect("a topic id")
    }
}
