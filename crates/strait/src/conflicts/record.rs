//! The record of one conflict, as strait writes it to `strait.conflicts` on each region and as
//! `strait conflicts` lists it: one JSON value, keyed by an id that is the same whoever finds the
//! conflict and however often (a restarted detector finds it again; the topic is compacted, so
//! the copy replaces the first).
//!
//! Two kinds: two concurrent writes to one key in two regions (any strategy), and a write to a
//! key its region does not own (regional authority). Each names every version involved by where
//! it was written (region, partition, offset), its timestamp and a digest of its value, so an
//! operator can fetch both and see what was decided: the rule, the strategy, the outcome, and
//! whether the clocks allowed a certain verdict.

use serde::{Deserialize, Serialize};

/// The topic on every region's cluster that holds the conflicts found there (compacted).
pub(crate) const CONFLICTS_TOPIC: &str = "strait.conflicts";

/// `strait.conflicts` as every job that records conflicts creates it: one partition, compacted
/// (a conflict found again, by the other region or after a restart, replaces itself).
pub(crate) fn topic_spec(replication_factor: i32) -> crate::kafka::TopicSpec {
    crate::kafka::TopicSpec::new(CONFLICTS_TOPIC, 1, replication_factor)
        .config("cleanup.policy", "compact")
}

/// What was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// Two regions wrote one key, neither having received the other's write.
    ConcurrentWrites,
    /// A region wrote a key another region owns.
    AuthorityViolation,
}

/// What strait did about it (a closed set: the `outcome` label of `strait_conflicts_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// Last-writer-wins: the version in `loser` is overwritten in every resolved view.
    Overwritten,
    /// Regional authority: one of the writes is the owner's and stands; the other is a
    /// violation (recorded on its own too).
    OwnerWins,
    /// Recorded only: the writes are replicated as any (authority with `violations=report`, or
    /// concurrent writes of which neither region owns the key).
    Reported,
    /// Regional authority with `violations=quarantine`: the write went to the quarantine topic
    /// beside the owner's remote topic, not into it.
    Quarantined,
    /// Event order: both events are kept, in the one order every region's merged stream has.
    Merged,
}

impl Outcome {
    /// The name in metrics, JSON and text.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Overwritten => "overwritten",
            Outcome::OwnerWins => "owner-wins",
            Outcome::Reported => "reported",
            Outcome::Quarantined => "quarantined",
            Outcome::Merged => "merged",
        }
    }
}

/// One write involved, where it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    /// The region (cluster alias) that wrote it.
    pub region: String,
    /// Its partition in that region's local topic.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its record timestamp (milliseconds since the epoch, the producer's or broker's clock).
    pub timestamp_ms: i64,
    /// A digest of its value (FNV-1a 64, hex; a tombstone and an empty value differ).
    pub value_digest: String,
    /// When its copy became readable in the other region (strait's clock, ms): between these
    /// two instants (sent, acknowledged). None for a write not copied (yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_ms: Option<[i64; 2]>,
}

/// One conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConflictRecord {
    pub kind: Kind,
    /// The topic's name in the regions that write it (`orders`, not `us-east.orders`).
    pub topic: String,
    /// The key, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key in hex, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<String>,
    /// The rule covering the topic (`strait.conflicts.rules`).
    pub rule: String,
    /// The rule's strategy (`authority`, `last-writer-wins`, `events`).
    pub strategy: String,
    /// The writes: two for concurrent writes (earlier region in `strait.conflicts.regions`
    /// first), one for a violation.
    pub versions: Vec<VersionRecord>,
    /// False when the clocks' bounds could not tell whether the writes were concurrent (they were
    /// recorded as concurrent, never dropped).
    pub certain: bool,
    /// Last-writer-wins: false when the two timestamps are closer than the measured clock skew
    /// between their regions allows to order (offset plus its bound, `skew_reach_ms`), so the
    /// winner by timestamp may not be the later write. Absent for other strategies, and while
    /// the skew is not measured yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner_certain: Option<bool>,
    /// The skew's reach the winner was judged with, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_reach_ms: Option<i64>,
    pub outcome: Outcome,
    /// The region whose version stands (last-writer-wins: the winner; authority: the owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// The region whose `strait.conflicts` holds this record.
    pub recorded_in: String,
    /// When it was found (strait's clock, ms since the epoch).
    pub detected_at_ms: i64,
}

impl ConflictRecord {
    /// The key of the record in `strait.conflicts`: the same for one conflict whoever finds it
    /// (`c/<topic>/<region>:<partition>:<offset>/<region>:<partition>:<offset>` for concurrent
    /// writes, in the order of `versions`; `v/<topic>/<region>:<partition>:<offset>` for a
    /// violation).
    pub(crate) fn id(&self) -> String {
        let tag = match self.kind {
            Kind::ConcurrentWrites => "c",
            Kind::AuthorityViolation => "v",
        };
        let mut id = format!("{tag}/{}", self.topic);
        for v in &self.versions {
            id.push_str(&format!("/{}:{}:{}", v.region, v.partition, v.offset));
        }
        id
    }

    /// Sets `key` or `key_hex` from the record key's bytes.
    pub(crate) fn with_key(mut self, key: &[u8]) -> Self {
        match std::str::from_utf8(key) {
            Ok(text) => {
                self.key = Some(text.to_string());
                self.key_hex = None;
            }
            Err(_) => {
                self.key = None;
                self.key_hex = Some(hex(key));
            }
        }
        self
    }
}

/// Bytes in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A value digest as the record writes it.
pub(crate) fn digest_text(digest: u64) -> String {
    format!("{digest:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(region: &str, offset: i64) -> VersionRecord {
        VersionRecord {
            region: region.into(),
            partition: 2,
            offset,
            timestamp_ms: 1_700_000_000_000,
            value_digest: digest_text(0xfeed),
            visible_ms: Some([1_700_000_000_100, 1_700_000_000_140]),
        }
    }

    fn record() -> ConflictRecord {
        ConflictRecord {
            kind: Kind::ConcurrentWrites,
            topic: "orders".into(),
            key: None,
            key_hex: None,
            rule: "orders".into(),
            strategy: "last-writer-wins".into(),
            versions: vec![version("us-east", 7), version("us-west", 9)],
            certain: true,
            winner_certain: None,
            skew_reach_ms: None,
            outcome: Outcome::Overwritten,
            winner: Some("us-west".into()),
            recorded_in: "us-east".into(),
            detected_at_ms: 1_700_000_000_500,
        }
        .with_key(b"order-123")
    }

    #[test]
    fn a_record_reads_back_as_written_and_names_its_outcome_in_kebab_case() {
        let r = record();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""kind":"concurrent-writes""#), "{json}");
        assert!(json.contains(r#""outcome":"overwritten""#), "{json}");
        assert!(json.contains(r#""key":"order-123""#), "{json}");
        assert!(!json.contains("key_hex"), "{json}");
        assert_eq!(serde_json::from_str::<ConflictRecord>(&json).unwrap(), r);
    }

    #[test]
    fn the_id_names_both_writes_and_not_who_found_them() {
        let r = record();
        assert_eq!(r.id(), "c/orders/us-east:2:7/us-west:2:9");
        let elsewhere = ConflictRecord {
            recorded_in: "us-west".into(),
            detected_at_ms: 1,
            ..r.clone()
        };
        assert_eq!(elsewhere.id(), r.id());
        let violation = ConflictRecord {
            kind: Kind::AuthorityViolation,
            versions: vec![version("us-west", 9)],
            ..r
        };
        assert_eq!(violation.id(), "v/orders/us-west:2:9");
    }

    #[test]
    fn a_key_that_is_not_utf8_is_kept_in_hex() {
        let r = record().with_key(&[0xff, 0x00, 0x1a]);
        assert_eq!(r.key, None);
        assert_eq!(r.key_hex.as_deref(), Some("ff001a"));
    }

    #[test]
    fn outcome_names_match_their_serde_names() {
        for o in [
            Outcome::Overwritten,
            Outcome::OwnerWins,
            Outcome::Reported,
            Outcome::Quarantined,
            Outcome::Merged,
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }
}
