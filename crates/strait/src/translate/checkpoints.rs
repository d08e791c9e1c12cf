//! Checkpoints (MM2-SPEC §4.4, MM2's `CheckpointStore` and `MirrorCheckpointTask`): which
//! checkpoint records to emit for a group, and the latest checkpoint per (group, downstream
//! partition) that decides it. Pure state, no I/O.
//!
//! The caller loads the store from `<source>.checkpoints.internal` with [`CheckpointStore::record`]
//! (records in log order, so the last one per key wins, as compaction would), then periodically
//! builds checkpoints with [`CheckpointStore::checkpoints_for_group`], produces them and records
//! them.

use std::collections::{BTreeMap, HashMap};

use crate::wire::Checkpoint;

pub(crate) use crate::kafka::groups::{OffsetAndMetadata, TopicPartition};

/// Latest checkpoint per group and downstream partition (MM2's `CheckpointStore`).
///
/// Checkpoints must not move a group backwards on the target unless the group itself rewound
/// upstream; this store remembers what was last emitted (or read back after a restart) so that
/// [`CheckpointStore::should_emit`] can enforce it.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckpointStore {
    by_group: HashMap<String, HashMap<TopicPartition, Checkpoint>>,
}

impl CheckpointStore {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Remember `cp` as the latest checkpoint for its (group, topic, partition), replacing any
    /// earlier one. Use it both to load the checkpoints topic (in log order) and after emitting.
    pub(crate) fn record(&mut self, cp: Checkpoint) {
        self.by_group
            .entry(cp.group.clone())
            .or_default()
            .insert((cp.topic.clone(), cp.partition), cp);
    }

    /// [`CheckpointStore::record`] for each checkpoint, in order.
    pub(crate) fn record_all(&mut self, cps: impl IntoIterator<Item = Checkpoint>) {
        for cp in cps {
            self.record(cp);
        }
    }

    /// Keep only the groups for which `keep` is true; MM2 loads only a task's own groups.
    #[cfg(test)]
    pub(crate) fn retain_groups(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.by_group.retain(|g, _| keep(g));
    }

    /// The latest checkpoint for `group` on downstream `topic`/`partition`.
    pub(crate) fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&Checkpoint> {
        // Keyed by owned strings; a linear scan would avoid the allocation but groups are small
        // and this is off the hot path.
        self.by_group
            .get(group)?
            .get(&(topic.to_string(), partition))
    }

    /// Groups with at least one checkpoint, sorted.
    pub(crate) fn groups(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_group.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The latest checkpoints of `group`, sorted by downstream topic and partition.
    pub(crate) fn group_checkpoints(&self, group: &str) -> Vec<&Checkpoint> {
        let mut v: Vec<&Checkpoint> = self
            .by_group
            .get(group)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        v.sort_unstable_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        v
    }

    /// The offsets to commit for `group` on the target: downstream partition →
    /// (downstream offset, metadata) of the latest checkpoints (MM2's
    /// `computeConvertedUpstreamOffset`); the input of [`super::group_sync::plan_group_sync`].
    pub(crate) fn translated_offsets(
        &self,
        group: &str,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.by_group
            .get(group)
            .map(|m| {
                m.iter()
                    .map(|(tp, cp)| {
                        (
                            tp.clone(),
                            OffsetAndMetadata::new(cp.downstream_offset, cp.metadata.clone()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `new` is "more recent" than the stored checkpoint for its key (MM2-SPEC §4.4 step
    /// 4): there is none, the upstream offset decreased (the group rewound upstream, so the
    /// downstream may rewind too), or the downstream offset increased. Equal downstream is a
    /// repeat; a lower downstream without an upstream rewind would rewind the group and is
    /// refused, because translation is not monotonic over time.
    pub(crate) fn should_emit(&self, new: &Checkpoint) -> bool {
        match self.get(&new.group, &new.topic, new.partition) {
            None => true,
            Some(last) => {
                new.upstream_offset < last.upstream_offset
                    || new.downstream_offset > last.downstream_offset
            }
        }
    }

    /// The checkpoints to emit for `group` now (MM2's `checkpointsForGroup`), sorted by
    /// downstream partition; the caller produces them and then [`CheckpointStore::record`]s them.
    ///
    /// See [`build_checkpoints`] for the arguments; of its result only the checkpoints that pass
    /// [`CheckpointStore::should_emit`] are kept.
    pub(crate) fn checkpoints_for_group<T, R, F>(
        &self,
        group: &str,
        upstream_offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        translate: T,
        rename: R,
        topic_filter: F,
    ) -> Vec<Checkpoint>
    where
        T: Fn(&str, i32, i64) -> Option<i64>,
        R: Fn(&str) -> String,
        F: Fn(&str) -> bool,
    {
        build_checkpoints(group, upstream_offsets, translate, rename, topic_filter)
            .into_iter()
            .filter(|cp| self.should_emit(cp))
            .collect()
    }
}

impl FromIterator<Checkpoint> for CheckpointStore {
    /// Load from checkpoint records in log order.
    fn from_iter<I: IntoIterator<Item = Checkpoint>>(iter: I) -> Self {
        let mut s = Self::new();
        s.record_all(iter);
        s
    }
}

/// Build the checkpoints of `group` from its committed upstream offsets (MM2-SPEC §4.4 steps
/// 2–3), without the "more recent" filter.
///
/// - `upstream_offsets`: the group's commits on the source, upstream partition → offset.
/// - `topic_filter(upstream topic)`: only accepted topics are checkpointed.
/// - `translate(upstream topic, partition, offset)`: the downstream offset; `None` (no result)
///   or a negative value (MM2's `-1`, "cannot translate") drops the entry, as MM2 does.
/// - `rename(upstream topic)`: the downstream topic name (the replication policy).
///
/// Sorted by downstream partition. Should two upstream partitions rename to the same downstream
/// one, only the first (in upstream order) is kept; MM2 fails the whole poll in that case.
pub(crate) fn build_checkpoints<T, R, F>(
    group: &str,
    upstream_offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    translate: T,
    rename: R,
    topic_filter: F,
) -> Vec<Checkpoint>
where
    T: Fn(&str, i32, i64) -> Option<i64>,
    R: Fn(&str) -> String,
    F: Fn(&str) -> bool,
{
    let mut out: BTreeMap<TopicPartition, Checkpoint> = BTreeMap::new();
    for ((topic, partition), committed) in upstream_offsets {
        if !topic_filter(topic) {
            continue;
        }
        let Some(downstream) = translate(topic, *partition, committed.offset) else {
            continue;
        };
        if downstream < 0 {
            continue;
        }
        let renamed = rename(topic);
        out.entry((renamed.clone(), *partition))
            .or_insert_with(|| Checkpoint {
                group: group.to_string(),
                topic: renamed,
                partition: *partition,
                upstream_offset: committed.offset,
                downstream_offset: downstream,
                metadata: committed.metadata.clone(),
            });
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::super::sync_store::OffsetSyncStore;
    use super::*;
    use proptest::prelude::*;

    fn cp(group: &str, topic: &str, p: i32, up: i64, down: i64) -> Checkpoint {
        Checkpoint {
            group: group.into(),
            topic: topic.into(),
            partition: p,
            upstream_offset: up,
            downstream_offset: down,
            metadata: String::new(),
        }
    }

    fn offsets(v: &[(&str, i32, i64, &str)]) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        v.iter()
            .map(|(t, p, o, m)| ((t.to_string(), *p), OffsetAndMetadata::new(*o, *m)))
            .collect()
    }

    #[test]
    fn more_recent_rule() {
        let mut s = CheckpointStore::new();
        let first = cp("g", "A.t", 0, 100, 90);
        assert!(s.should_emit(&first), "nothing stored");
        s.record(first);
        assert!(!s.should_emit(&cp("g", "A.t", 0, 100, 90)), "repeat");
        assert!(
            !s.should_emit(&cp("g", "A.t", 0, 120, 90)),
            "same downstream"
        );
        assert!(
            !s.should_emit(&cp("g", "A.t", 0, 120, 80)),
            "downstream rewind"
        );
        assert!(
            s.should_emit(&cp("g", "A.t", 0, 120, 91)),
            "downstream advanced"
        );
        assert!(s.should_emit(&cp("g", "A.t", 0, 99, 10)), "upstream rewind");
        assert!(s.should_emit(&cp("g", "A.t", 1, 0, 0)), "other partition");
        assert!(s.should_emit(&cp("g", "A.u", 0, 0, 0)), "other topic");
        assert!(s.should_emit(&cp("h", "A.t", 0, 0, 0)), "other group");
    }

    #[test]
    fn loading_keeps_latest_per_key() {
        let s: CheckpointStore = vec![
            cp("g", "A.t", 0, 10, 10),
            cp("g", "A.t", 1, 5, 5),
            cp("g", "A.t", 0, 20, 19),
            cp("h", "A.t", 0, 1, 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.get("g", "A.t", 0).map(|c| c.downstream_offset), Some(19));
        assert_eq!(s.groups(), vec!["g", "h"]);
        assert_eq!(s.group_checkpoints("g").len(), 2);
        let t = s.translated_offsets("g");
        assert_eq!(
            t.get(&("A.t".into(), 0)),
            Some(&OffsetAndMetadata::new(19, ""))
        );
        assert_eq!(
            t.get(&("A.t".into(), 1)),
            Some(&OffsetAndMetadata::new(5, ""))
        );
        assert!(s.translated_offsets("nobody").is_empty());
        let mut s = s;
        s.retain_groups(|g| g == "h");
        assert_eq!(s.groups(), vec!["h"]);
    }

    #[test]
    fn builds_filters_and_drops_untranslatable() {
        let up = offsets(&[
            ("orders", 0, 1000, "m0"),
            ("orders", 1, 50, ""),
            ("orders", 2, 7, ""),
            ("skipped", 0, 10, ""),
        ]);
        let translate = |t: &str, p: i32, o: i64| match (t, p) {
            ("orders", 0) => Some(o - 9),
            ("orders", 1) => Some(-1),
            _ => None,
        };
        let rename = |t: &str| format!("A.{t}");
        let filter = |t: &str| t != "skipped";
        let got = build_checkpoints("g1", &up, translate, rename, filter);
        assert_eq!(
            got,
            vec![Checkpoint {
                group: "g1".into(),
                topic: "A.orders".into(),
                partition: 0,
                upstream_offset: 1000,
                downstream_offset: 991,
                metadata: "m0".into(),
            }]
        );
        let mut s = CheckpointStore::new();
        let emit = s.checkpoints_for_group("g1", &up, translate, rename, filter);
        assert_eq!(emit, got);
        s.record_all(emit);
        assert!(s
            .checkpoints_for_group("g1", &up, translate, rename, filter)
            .is_empty());
    }

    #[test]
    fn colliding_renames_keep_the_first() {
        let up = offsets(&[("a", 0, 10, ""), ("b", 0, 20, "")]);
        let got = build_checkpoints("g", &up, |_, _, o| Some(o), |_| "x".into(), |_| true);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].upstream_offset, 10);
    }

    #[derive(Clone, Debug)]
    enum Event {
        /// Replicate `n` more records (every `every`-th one produces a sync).
        Replicate(i64, i64),
        /// The group commits `n` records further (clamped to the replicated end).
        Consume(i64),
        /// The group rewinds `n` records upstream.
        Rewind(i64),
        /// Emit checkpoints.
        Checkpoint,
        /// Restart: a fresh sync store re-reads the (compacted) syncs topic.
        Restart(bool),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => (1i64..500, 1i64..50).prop_map(|(n, e)| Event::Replicate(n, e)),
            4 => (0i64..300).prop_map(Event::Consume),
            1 => (1i64..500).prop_map(Event::Rewind),
            4 => Just(Event::Checkpoint),
            1 => any::<bool>().prop_map(Event::Restart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Emitted checkpoints only go back downstream when the group rewound upstream, even across
        /// restarts of the sync store (with the compacted syncs topic) and with varying history.
        #[test]
        fn emitted_checkpoints_never_go_backwards_without_upstream_rewind(
            events in proptest::collection::vec(event(), 1..200),
            skew in 0i64..1000,
        ) {
            let mut syncs = OffsetSyncStore::new(false);
            syncs.finish_initial_load();
            let mut log: Vec<(i64, i64)> = Vec::new();
            let mut store = CheckpointStore::new();
            let (mut head, mut committed) = (0i64, 0i64);
            let mut emitted: Vec<Checkpoint> = Vec::new();
            for ev in events {
                match ev {
                    Event::Replicate(n, every) => {
                        for i in 0..n {
                            let u = head + i;
                            if i == 0 || i % every == 0 || i == n - 1 {
                                syncs.apply("t", 0, u, u + skew);
                                log.push((u, u + skew));
                            }
                        }
                        head += n;
                    }
                    Event::Consume(n) => committed = (committed + n).min(head),
                    Event::Rewind(n) => committed = (committed - n).max(0),
                    Event::Restart(must_read_to_end) => {
                        // Compaction keeps only the latest sync per partition in the worst case.
                        syncs = OffsetSyncStore::new(must_read_to_end);
                        if let Some(&(u, d)) = log.last() {
                            syncs.apply("t", 0, u, d);
                        }
                        syncs.finish_initial_load();
                    }
                    Event::Checkpoint => {
                        let up = offsets(&[("t", 0, committed, "")]);
                        let out = store.checkpoints_for_group(
                            "g",
                            &up,
                            |t, p, o| syncs.translate(t, p, o).mm2_value(),
                            |t| format!("A.{t}"),
                            |_| true,
                        );
                        prop_assert!(out.len() <= 1);
                        for c in &out {
                            prop_assert!(c.downstream_offset >= 0);
                            prop_assert!(c.downstream_offset <= c.upstream_offset + skew);
                            if let Some(prev) = emitted.last() {
                                prop_assert!(
                                    c.downstream_offset > prev.downstream_offset
                                        || c.upstream_offset < prev.upstream_offset,
                                    "{:?} after {:?}", c, prev
                                );
                            }
                        }
                        emitted.extend(out.iter().cloned());
                        store.record_all(out);
                        prop_assert_eq!(store.get("g", "A.t", 0), emitted.last());
                    }
                }
            }
        }
    }
}
