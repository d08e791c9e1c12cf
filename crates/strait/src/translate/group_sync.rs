//! Which translated offsets to commit into the same group id on the target (MM2-SPEC §4.5,
//! `sync.group.offsets.enabled`). Pure decision, no I/O.
//!
//! strait deliberately differs from MM2 here. MM2 writes *all* translated offsets to any group
//! that is not Empty on the target (relying on the broker to refuse the write for an active
//! group) and applies "never rewind" only to Empty groups. strait writes only while the group has
//! no active members on the target, and never moves a committed offset backwards, whatever the
//! group's state: a consumer that already runs (or ran) on the target owns its position.

use std::collections::BTreeMap;

use super::checkpoints::{OffsetAndMetadata, TopicPartition};

/// The state of the consumer group on the target cluster, as described there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TargetGroupState {
    /// The group does not exist on the target (MM2: `GroupIdNotFoundException`).
    NonExistent,
    /// The group is Dead (being removed, or reported so for an unknown group).
    Dead,
    /// The group exists with no members: nobody consumes with it on the target.
    Empty,
    /// Any other state (Stable, PreparingRebalance, CompletingRebalance, Assigning, Reconciling,
    /// Unknown): consumers use, or may be joining, the group on the target.
    Active {
        /// The state as reported by the broker.
        state: String,
        /// Number of members reported.
        members: usize,
    },
}

impl TargetGroupState {
    /// Classify a broker-reported state name (case-insensitive, as in `DescribeGroups` /
    /// `ConsumerGroupDescribe`) and member count. Anything not clearly Empty or Dead counts as
    /// active, so that uncertainty never leads to writing under live consumers.
    pub(crate) fn from_state_name(state: &str, members: usize) -> Self {
        let active = || TargetGroupState::Active {
            state: state.to_string(),
            members,
        };
        if members > 0 {
            active()
        } else if state.eq_ignore_ascii_case("empty") {
            TargetGroupState::Empty
        } else if state.eq_ignore_ascii_case("dead") {
            TargetGroupState::Dead
        } else {
            active()
        }
    }
}

/// Why a translated offset is not written although the group may be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NotWritten {
    /// The target group already has this offset or a later one: writing would not advance it,
    /// and a lower value would rewind the consumer (reprocessing).
    TargetNotBehind {
        /// The offset committed on the target.
        target: i64,
    },
    /// The translated offset is negative (only possible from a malformed checkpoint record).
    InvalidTranslation,
}

/// Offsets to commit for one group, and which translated ones are left alone and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupWrite {
    /// Offsets to commit, with their metadata; may be empty when everything is up to date.
    pub offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// Translated offsets that are not written.
    pub not_written: BTreeMap<TopicPartition, NotWritten>,
}

/// The decision for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GroupSyncDecision {
    /// The group has no active members on the target: commit `offsets` (if any).
    Write(GroupWrite),
    /// The group is in use on the target: write nothing, so as not to move offsets under
    /// running consumers (MM2 would try and have the broker reject it).
    GroupActive {
        /// The state as reported by the broker.
        state: String,
        /// Number of members reported.
        members: usize,
    },
}

impl GroupSyncDecision {
    /// The offsets to commit; empty for an active group.
    #[cfg(test)]
    pub(crate) fn offsets(&self) -> Option<&BTreeMap<TopicPartition, OffsetAndMetadata>> {
        match self {
            GroupSyncDecision::Write(w) if !w.offsets.is_empty() => Some(&w.offsets),
            _ => None,
        }
    }
}

/// Decide what to commit into the group on the target.
///
/// - `state`: the group's state on the target.
/// - `target_offsets`: its committed offsets there; `None` is a null or reset commit (MM2 notes
///   that some clients reset a group to `-1` this way), a missing key means no commit.
/// - `translated`: downstream partition → translated offset and metadata (the latest
///   checkpoints, see [`super::checkpoints::CheckpointStore::translated_offsets`]).
///
/// For an active group nothing is written. Otherwise a partition is written when the target
/// has no offset, a null or negative one, or one lower than the translated offset; so no write
/// ever lowers an existing committed offset. The decision is only as fresh as `state`: a
/// consumer joining between describe and commit is refused by the broker (UNKNOWN_MEMBER_ID).
pub(crate) fn plan_group_sync(
    state: &TargetGroupState,
    target_offsets: &BTreeMap<TopicPartition, Option<i64>>,
    translated: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> GroupSyncDecision {
    if let TargetGroupState::Active { state, members } = state {
        return GroupSyncDecision::GroupActive {
            state: state.clone(),
            members: *members,
        };
    }
    let mut w = GroupWrite::default();
    for (tp, t) in translated {
        if t.offset < 0 {
            w.not_written
                .insert(tp.clone(), NotWritten::InvalidTranslation);
            continue;
        }
        match target_offsets.get(tp).copied().flatten() {
            Some(target) if target >= 0 && target >= t.offset => {
                w.not_written
                    .insert(tp.clone(), NotWritten::TargetNotBehind { target });
            }
            _ => {
                w.offsets.insert(tp.clone(), t.clone());
            }
        }
    }
    GroupSyncDecision::Write(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    fn om(o: i64) -> OffsetAndMetadata {
        OffsetAndMetadata::new(o, "m")
    }

    #[test]
    fn active_group_gets_nothing() {
        let translated = BTreeMap::from([(tp("A.t", 0), om(10))]);
        let d = plan_group_sync(
            &TargetGroupState::Active {
                state: "Stable".into(),
                members: 2,
            },
            &BTreeMap::new(),
            &translated,
        );
        assert_eq!(
            d,
            GroupSyncDecision::GroupActive {
                state: "Stable".into(),
                members: 2
            }
        );
        assert_eq!(d.offsets(), None);
    }

    #[test]
    fn missing_group_gets_everything_valid() {
        let translated = BTreeMap::from([
            (tp("A.t", 0), om(10)),
            (tp("A.t", 1), om(0)),
            (tp("A.t", 2), om(-1)),
        ]);
        for st in [TargetGroupState::NonExistent, TargetGroupState::Dead] {
            let d = plan_group_sync(&st, &BTreeMap::new(), &translated);
            let GroupSyncDecision::Write(w) = d else {
                panic!("expected a write for {st:?}");
            };
            assert_eq!(
                w.offsets,
                BTreeMap::from([(tp("A.t", 0), om(10)), (tp("A.t", 1), om(0))])
            );
            assert_eq!(
                w.not_written,
                BTreeMap::from([(tp("A.t", 2), NotWritten::InvalidTranslation)])
            );
        }
    }

    #[test]
    fn empty_group_is_only_moved_forward() {
        let target = BTreeMap::from([
            (tp("A.t", 0), Some(5)),   // behind: write
            (tp("A.t", 1), Some(20)),  // ahead: keep
            (tp("A.t", 2), Some(30)),  // equal: keep
            (tp("A.t", 3), None),      // null: write
            (tp("A.t", 4), Some(-1)),  // negative: write
            (tp("A.u", 0), Some(100)), // not translated: untouched
        ]);
        let translated = BTreeMap::from([
            (tp("A.t", 0), om(10)),
            (tp("A.t", 1), om(10)),
            (tp("A.t", 2), om(30)),
            (tp("A.t", 3), om(7)),
            (tp("A.t", 4), om(0)),
            (tp("A.t", 5), om(3)), // no target offset: write
        ]);
        let GroupSyncDecision::Write(w) =
            plan_group_sync(&TargetGroupState::Empty, &target, &translated)
        else {
            panic!("expected a write");
        };
        let written: Vec<_> = w.offsets.keys().map(|(_, p)| *p).collect();
        assert_eq!(written, vec![0, 3, 4, 5]);
        assert_eq!(
            w.not_written,
            BTreeMap::from([
                (tp("A.t", 1), NotWritten::TargetNotBehind { target: 20 }),
                (tp("A.t", 2), NotWritten::TargetNotBehind { target: 30 }),
            ])
        );
    }

    #[test]
    fn up_to_date_group_writes_nothing() {
        let target = BTreeMap::from([(tp("A.t", 0), Some(10))]);
        let translated = BTreeMap::from([(tp("A.t", 0), om(10))]);
        let d = plan_group_sync(&TargetGroupState::Empty, &target, &translated);
        assert_eq!(d.offsets(), None);
        assert!(matches!(d, GroupSyncDecision::Write(_)));
    }

    #[test]
    fn state_names() {
        use TargetGroupState::*;
        assert_eq!(TargetGroupState::from_state_name("Empty", 0), Empty);
        assert_eq!(TargetGroupState::from_state_name("EMPTY", 0), Empty);
        assert_eq!(TargetGroupState::from_state_name("Dead", 0), Dead);
        for (s, m) in [
            ("Stable", 1),
            ("PreparingRebalance", 0),
            ("CompletingRebalance", 3),
            ("Unknown", 0),
            ("", 0),
            ("Empty", 1),
        ] {
            assert_eq!(
                TargetGroupState::from_state_name(s, m),
                Active {
                    state: s.into(),
                    members: m
                }
            );
        }
    }

    fn state() -> impl Strategy<Value = TargetGroupState> {
        prop_oneof![
            Just(TargetGroupState::NonExistent),
            Just(TargetGroupState::Dead),
            Just(TargetGroupState::Empty),
            (0usize..5).prop_map(|members| TargetGroupState::Active {
                state: "Stable".into(),
                members
            }),
        ]
    }

    fn tps() -> impl Strategy<Value = TopicPartition> {
        (prop_oneof![Just("A.t"), Just("A.u")], 0i32..4).prop_map(|(t, p)| tp(t, p))
    }

    proptest! {
        #[test]
        fn never_lowers_and_never_touches_active_groups(
            st in state(),
            target in proptest::collection::btree_map(tps(), proptest::option::of(-3i64..50), 0..8),
            translated in proptest::collection::btree_map(tps(), (-3i64..50).prop_map(om), 0..8),
        ) {
            let d = plan_group_sync(&st, &target, &translated);
            match (&st, &d) {
                (TargetGroupState::Active { .. }, GroupSyncDecision::GroupActive { .. }) => {}
                (TargetGroupState::Active { .. }, _) => prop_assert!(false, "wrote to an active group"),
                (_, GroupSyncDecision::GroupActive { .. }) => prop_assert!(false, "refused an idle group"),
                (_, GroupSyncDecision::Write(w)) => {
                    for (k, v) in &w.offsets {
                        // Only translated offsets, unchanged, never negative.
                        prop_assert_eq!(translated.get(k), Some(v));
                        prop_assert!(v.offset >= 0);
                        // Never lowers an existing committed offset.
                        if let Some(Some(cur)) = target.get(k) {
                            prop_assert!(*cur < 0 || *cur < v.offset);
                        }
                    }
                    // Every translated partition is either written or explained.
                    for k in translated.keys() {
                        prop_assert!(w.offsets.contains_key(k) != w.not_written.contains_key(k));
                    }
                    // Whatever can move forward does.
                    for (k, v) in &translated {
                        let behind = match target.get(k) { Some(Some(c)) => *c < 0 || *c < v.offset, _ => true };
                        prop_assert_eq!(w.offsets.contains_key(k), behind && v.offset >= 0);
                    }
                }
            }
        }
    }
}
