//! Offset translation: where a consumer group that stopped at upstream offset `g` resumes on the
//! other cluster. strait's exact index first, MM2's offset syncs as the fallback.

pub(crate) mod checkpoints;
pub(crate) mod group;
pub(crate) mod group_sync;
pub(crate) mod index;
pub(crate) mod sync_store;
pub(crate) mod translator;

pub use group::{translate_group, GroupTranslation, PartitionTranslation, TranslateReport};
pub use index::{Lookup, OffsetIndex, PendingRun, RunId, RunTracker};
pub use translator::{Method, Translated, Translator};

/// strait's exact offset index for flow `source -> target` lives on the target under this name
/// (compacted, one partition). `.internal` keeps it out of every replication, MM2's included.
pub fn index_topic(source_alias: &str) -> String {
    format!("strait-offset-index.{source_alias}.internal")
}
