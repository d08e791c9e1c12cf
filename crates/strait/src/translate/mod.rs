//! Offset translation: where a consumer group that stopped at upstream offset `g` resumes on the
//! other cluster. strait's exact index first, MM2's offset syncs as the fallback.

pub(crate) mod checkpoints;
pub(crate) mod group;
pub(crate) mod group_sync;
pub(crate) mod index;
pub(crate) mod sync_store;
pub(crate) mod translator;

pub use group::{
    translate_group, GroupTranslation, GroupTranslator, PartitionTranslation, TranslateReport,
};
pub use index::{Lookup, OffsetIndex, PendingRun, Prune, RunId, RunTracker};
pub use translator::{Method, Translated, Translator};

/// strait's exact offset index for flow `source -> target` lives on the target under this name
/// (compacted, one partition). `.internal` keeps it out of every replication, MM2's included.
pub fn index_topic(source_alias: &str) -> String {
    format!("strait-offset-index.{source_alias}.internal")
}

/// `segment.ms` of the index topic: the copy loop rewrites a partition's newest block at every
/// commit, and compaction never touches the active segment, so with Kafka's default (7 days) a
/// reader starting from offset 0 would read a week of versions of it. Ten minutes bounds that.
pub const INDEX_SEGMENT_MS: &str = "600000";

/// The index topic as strait creates it: one partition, compacted, segments rolled often enough
/// for compaction to keep only the latest version of each block.
pub fn index_topic_spec(name: &str, replication_factor: i32) -> crate::kafka::TopicSpec {
    crate::kafka::TopicSpec::new(name, 1, replication_factor)
        .config("cleanup.policy", "compact")
        .config("segment.ms", INDEX_SEGMENT_MS)
}
