//! Where a merge stood right after a merged record: the `strait.resume` header it carries, so
//! that the merged topic's last record says where to go on (see the module docs of `merge`).

use serde::{Deserialize, Serialize};

/// The header holding a [`ResumeState`] (JSON).
pub(crate) const RESUME_HEADER: &str = "strait.resume";

/// One region's partition, right after the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamState {
    /// The region's alias.
    pub region: String,
    /// Read its events again from this offset (everything before it is merged).
    pub from: i64,
    /// The mark in force at `from` (position, floor), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<(i64, i64)>,
    /// Read its marks again from this offset of its cluster's marks topic.
    pub marks: i64,
}

/// The merge of one partition, right after one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResumeState {
    /// The record's effective time (its timestamp in the merged topic).
    pub at: i64,
    /// Every region's partition.
    pub streams: Vec<StreamState>,
}

impl ResumeState {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        serde_json::from_slice(value).ok()
    }

    /// The state of `region`'s partition, if recorded.
    pub(crate) fn stream(&self, region: &str) -> Option<&StreamState> {
        self.streams.iter().find(|s| s.region == region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_state_reads_back_as_written() {
        let r = ResumeState {
            at: 1_700_000_000_123,
            streams: vec![
                StreamState {
                    region: "us-west".into(),
                    from: 17,
                    seed: Some((15, 1_700_000_000_000)),
                    marks: 412,
                },
                StreamState {
                    region: "us-east".into(),
                    from: 0,
                    seed: None,
                    marks: 0,
                },
            ],
        };
        let json = r.to_json();
        assert_eq!(
            json,
            r#"{"at":1700000000123,"streams":[{"region":"us-west","from":17,"seed":[15,1700000000000],"marks":412},{"region":"us-east","from":0,"marks":0}]}"#
        );
        assert_eq!(ResumeState::parse(json.as_bytes()), Some(r.clone()));
        assert_eq!(r.stream("us-east").map(|s| s.from), Some(0));
        assert!(r.stream("eu").is_none());
        assert_eq!(ResumeState::parse(b"{}"), None);
    }
}
