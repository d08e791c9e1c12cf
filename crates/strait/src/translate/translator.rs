//! Translation from the clusters: strait's exact index where it covers the group's position,
//! MM2's offset syncs (the 64-slot store) where it does not (partitions replicated before strait,
//! or by MM2). Reads the topics through [`TopicTail`].

use std::time::Duration;

use tracing::{debug, warn};

use super::index::{Lookup, OffsetIndex};
use super::sync_store::{OffsetSyncStore, Translation};
use crate::kafka::tail::TopicTail;
use crate::kafka::{ClientError, Endpoint};
use crate::wire::{IndexRecord, OffsetSync};

/// How a translated offset was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// strait's exact index.
    Exact(Lookup),
    /// MM2's offset syncs: the sync used, and the MM2 rule (`down`, or `down + 1` past it).
    Mm2Sync {
        /// The sync's upstream offset.
        upstream: i64,
        /// The sync's downstream offset.
        downstream: i64,
    },
    /// No translation: why.
    None(String),
}

impl Method {
    /// A short name for tables and JSON: `exact`, `exact-gap`, `exact-end`, `mm2-sync`, `none`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Exact(Lookup::InRun { .. }) => "exact",
            Method::Exact(Lookup::Gap { .. }) => "exact-gap",
            Method::Exact(Lookup::Ahead { .. }) => "exact-end",
            Method::Exact(_) => "exact",
            Method::Mm2Sync { .. } => "mm2-sync",
            Method::None(_) => "none",
        }
    }
}

/// A translated position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    /// Where the group resumes on the target; `None` when it cannot be translated.
    pub downstream: Option<i64>,
    /// How it was obtained, or why it could not be.
    pub method: Method,
}

/// The index and the MM2 sync store of one flow, kept up to date from their topics.
pub struct Translator {
    index: OffsetIndex,
    index_tail: TopicTail,
    /// The index topic and its cluster, for the log.
    index_topic: String,
    index_cluster: String,
    mm2: OffsetSyncStore,
    syncs_tail: Option<TopicTail>,
    loaded: bool,
}

impl Translator {
    /// `target`: consumer properties of the flow's target (where the index lives).
    /// `offset_syncs`: where MM2-format offset syncs live (cluster, topic), if they are on.
    pub fn new(
        target: &Endpoint,
        index_topic: &str,
        offset_syncs: Option<(&Endpoint, &str)>,
    ) -> Self {
        Self {
            index: OffsetIndex::default(),
            index_tail: TopicTail::new(target, index_topic),
            index_topic: index_topic.to_string(),
            index_cluster: target.alias.clone(),
            mm2: OffsetSyncStore::new(false),
            syncs_tail: offset_syncs.map(|(ep, t)| TopicTail::new(ep, t)),
            loaded: false,
        }
    }

    /// The translator of a configured flow: its index on the target, and MM2's offset syncs
    /// where the flow writes them (when it does).
    pub fn for_flow(flow: &crate::config::Flow) -> Self {
        let syncs = &flow.internal_topics.offset_syncs;
        Self::new(
            &flow.clients.target_consumer,
            &super::index_topic(&flow.source),
            flow.emit_offset_syncs
                .then(|| (flow.offset_syncs_reader(), syncs.name.as_str())),
        )
    }

    /// Read what was written since the last call. Until the first call succeeds, nothing is
    /// translated (as MM2's store, which waits for its initial read to the end). A call that
    /// fails (or is dropped) leaves the translator empty, to be read again from the start.
    ///
    /// The index and the offset syncs are read at the same time (they are on different
    /// clusters by default, and each read waits on its broker). An index that cannot be read
    /// fails the call at once; when both fail, the index's error is the one returned.
    pub async fn refresh(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let loaded = std::mem::take(&mut self.loaded);
        let index = std::mem::take(&mut self.index);
        let (topic, cluster) = (self.index_topic.clone(), self.index_cluster.clone());
        // A read that fails or is dropped takes its state with it: the store starts over
        // (empty, read again from the first sync), as its reader does.
        let mm2 = std::mem::replace(&mut self.mm2, OffsetSyncStore::new(false));
        let index_read = self
            .index_tail
            .fold(timeout, index, move |index, r| {
                let applied = IndexRecord::decode(r.key, r.value)
                    .map_err(|e| e.to_string())
                    .and_then(|record| index.apply_record(&record));
                // A damaged record is skipped rather than failing every translation: the
                // others are still read.
                if let Err(e) = applied {
                    warn!(topic = %topic, cluster = %cluster, offset = r.offset, error = %e, "skipping an offset index record that cannot be read");
                }
            });
        let syncs_tail = &mut self.syncs_tail;
        let syncs_read = async move {
            match syncs_tail {
                Some(tail) => {
                    tail.fold(timeout, mm2, |mm2, r| {
                        match OffsetSync::decode_in_place(r.key, r.value) {
                            Ok((topic, partition, up, down)) => mm2.apply(topic, partition, up, down),
                            Err(e) => {
                                debug!(offset = r.offset, error = %e, "skipping an undecodable offset sync")
                            }
                        }
                    })
                    .await
                }
                // No syncs to read: the store stays as it was.
                None => Ok(mm2),
            }
        };
        let (index, mm2) = {
            let index_read = std::pin::pin!(index_read);
            let mut syncs_read = std::pin::pin!(syncs_read);
            match futures::future::select(index_read, syncs_read.as_mut()).await {
                // An index that cannot be read fails the call now; the syncs read, dropped,
                // takes the store with it.
                futures::future::Either::Left((Err(e), _)) => return Err(e),
                futures::future::Either::Left((Ok(index), _)) => (Ok(index), syncs_read.await),
                futures::future::Either::Right((mm2, index_read)) => (index_read.await, mm2),
            }
        };
        // The store stays with its reader (which has moved on when the read succeeded), whatever
        // became of the index.
        let mm2 = mm2.map(|mm2| self.mm2 = mm2);
        self.index = index?;
        mm2?;
        if !loaded {
            self.mm2.finish_initial_load();
        }
        self.loaded = true;
        Ok(())
    }

    /// Translate upstream offset `g` of `topic`-`partition` (upstream name).
    pub fn translate(&mut self, topic: &str, partition: i32, g: i64) -> Translated {
        if !self.loaded {
            return Translated {
                downstream: None,
                method: Method::None("the offset index has not been read yet".into()),
            };
        }
        let lookup = self.index.lookup(topic, partition, g);
        if let Some(d) = lookup.downstream() {
            return Translated {
                downstream: Some(d),
                method: Method::Exact(lookup),
            };
        }
        match self.mm2.translate(topic, partition, g) {
            Translation::Offset { offset, sync } => Translated {
                downstream: Some(offset),
                method: Method::Mm2Sync {
                    upstream: sync.upstream,
                    downstream: sync.downstream,
                },
            },
            other => Translated {
                downstream: None,
                method: Method::None(match (lookup, other) {
                    (Lookup::BeforeIndex { first_upstream }, _) => format!(
                        "offset {g} is before strait's first replicated record ({first_upstream}) and no MM2 offset sync covers it"
                    ),
                    (_, Translation::TooOld { .. }) => {
                        format!("offset {g} is older than every MM2 offset sync kept")
                    }
                    _ => "nothing of this partition has been replicated yet".to_string(),
                }),
            },
        }
    }

    /// What MirrorMaker 2 would answer for the same position (its 64-slot store and "+1" rule;
    /// `-1` when it cannot translate), to show beside strait's own translation.
    pub fn mm2_translate(&self, topic: &str, partition: i32, g: i64) -> Option<i64> {
        self.mm2.translate(topic, partition, g).mm2_value()
    }

    /// Records at or after downstream offset `d` that are copies of upstream records before `g`
    /// (what a consumer resuming at `d` reads again), as far as the exact index knows.
    pub fn rereads(&self, topic: &str, partition: i32, g: i64, d: i64) -> i64 {
        self.index.rereads(topic, partition, g, d)
    }

    /// strait's exact index, as last read.
    pub fn index(&self) -> &OffsetIndex {
        &self.index
    }
}
