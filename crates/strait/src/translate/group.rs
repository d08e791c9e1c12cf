//! Translate one consumer group's position from a flow's source to its target, from the clusters
//! themselves (MM2's `RemoteClusterUtils.translateOffsets`, made exact): what `strait translate`
//! shows and `--apply` commits, and what failover uses. Blocking.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::checkpoints::CheckpointStore;
use super::translator::{Method, Translator};
use crate::config::Flow;
use crate::kafka::admin::topics_once;
use crate::kafka::groups::{GroupListing, Groups, OffsetAndMetadata, TopicPartition};
use crate::kafka::tail::TopicTail;
use crate::kafka::ClientError;
use crate::wire::Checkpoint;

/// One partition of the group, on both sides.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionTranslation {
    /// Upstream topic and partition.
    pub topic: String,
    /// The partition number, the same on the target.
    pub partition: i32,
    /// The topic on the target (`us-east.orders`).
    pub remote_topic: String,
    /// The group's committed offset on the source (`None` when the source was not reachable).
    pub upstream_offset: Option<i64>,
    /// Where the group resumes on the target (`None`: cannot translate, see `detail`).
    pub downstream_offset: Option<i64>,
    /// `exact`, `exact-gap`, `exact-end`, `mm2-sync`, `checkpoint` or `none`.
    pub method: String,
    /// For people: why it cannot translate, or where a `mm2-sync` or `checkpoint` offset came
    /// from; `None` when there is nothing to add (an exact translation).
    pub detail: Option<String>,
    /// Records a consumer resuming at `downstream_offset` reads a second time (copies of
    /// records the group had processed). `None` when unknown (source unreachable).
    pub reread: Option<i64>,
    /// Records the group had not processed that it would never see on the target. Always 0 for
    /// a translation; `None` when unknown.
    pub skipped: Option<i64>,
    /// The group's committed offset on the target now, if any.
    pub target_committed: Option<i64>,
    /// What MirrorMaker 2's translation (from the same offset syncs) would give: `-1` when it
    /// cannot translate, `None` when it has no syncs for the partition.
    pub mm2_offset: Option<i64>,
}

/// The whole group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupTranslation {
    /// The consumer group, named the same on both clusters.
    pub group: String,
    /// The flow's source cluster, where the group consumed.
    pub source: String,
    /// The flow's target cluster, where it resumes.
    pub target: String,
    /// Whether the group's offsets could be read on the source; when not, the partitions come
    /// from the last checkpoints on the target.
    pub source_reachable: bool,
    /// Why the source could not be read, when it could not.
    pub source_error: Option<String>,
    /// The group's state on the target (`Stable`, `Empty`, ...); `None` when unknown.
    pub target_state: Option<String>,
    /// Consumers in the group on the target now (0 when the group is not there).
    pub target_members: usize,
    /// One per partition the group committed on the source (or was checkpointed for), by topic
    /// and partition.
    pub partitions: Vec<PartitionTranslation>,
}

impl GroupTranslation {
    /// Whether consumers are in the group on the target now.
    pub fn active_on_target(&self) -> bool {
        GroupListing {
            name: self.group.clone(),
            state: self.target_state.clone().unwrap_or_default(),
            members: self.target_members,
        }
        .is_active()
    }

    /// The offsets `--apply` commits on the target.
    pub fn offsets_to_apply(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.partitions
            .iter()
            .filter_map(|p| {
                Some((
                    (p.remote_topic.clone(), p.partition),
                    OffsetAndMetadata {
                        offset: p.downstream_offset?,
                        metadata: String::new(),
                    },
                ))
            })
            .collect()
    }
}

/// What `strait translate --json` prints: the translation and whether `--apply` committed it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TranslateReport {
    /// The translation; its fields are at the top level of the document.
    #[serde(flatten)]
    pub translation: GroupTranslation,
    /// Whether `--apply` committed the translated offsets to the group on the target; false
    /// without `--apply` (a refused `--apply` prints no document).
    pub applied: bool,
}

impl TranslateReport {
    /// The document as the command prints it: pretty, keys in alphabetical order at every level
    /// (as since the command first added `applied` to a `serde_json::Value`), no trailing newline.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&serde_json::to_value(self)?)
    }
}

/// Translate `group` for `flow`. The target must be reachable; the source is tried within
/// `source_timeout`, and without it the last checkpoints stand in.
pub async fn translate_group(
    flow: &Flow,
    group: &str,
    timeout: Duration,
    source_timeout: Duration,
) -> Result<GroupTranslation, ClientError> {
    GroupTranslator::new(flow, timeout, source_timeout)
        .translate(group)
        .await
}

/// Translates any number of groups of one flow, reading the source's partitions, the offset
/// index and (without the source) the checkpoints once for all of them, as a failover does.
///
/// One group's translation asks the clusters what it needs at the same time, not one after the
/// other: the group on the target; on the source, the replicated partitions, the group's offsets
/// there and then the group's offsets on the target for the same partitions; and the offset
/// index with MM2's offset syncs. Each cluster's group client is made once, and serves every
/// question about the group there (`--apply`'s commit too).
pub struct GroupTranslator<'a> {
    flow: &'a Flow,
    timeout: Duration,
    source_timeout: Duration,
    /// Group operations on the target (which must answer) and on the source.
    target: Groups,
    source: Groups,
    partitions: Option<Result<Vec<TopicPartition>, ClientError>>,
    translator: Option<Translator>,
    checkpoints: Option<CheckpointStore>,
}

impl<'a> GroupTranslator<'a> {
    /// A translator for `flow`: the target's calls bounded by `timeout`, the source's by
    /// `source_timeout`. Nothing is asked yet.
    pub fn new(flow: &'a Flow, timeout: Duration, source_timeout: Duration) -> Self {
        Self {
            flow,
            timeout,
            source_timeout,
            target: Groups::new(&flow.clients.target_consumer, timeout),
            source: Groups::new(&flow.clients.source_consumer, source_timeout),
            partitions: None,
            translator: None,
            checkpoints: None,
        }
    }

    /// The source is known not to answer (`why`, one sentence): nothing is asked of it, and
    /// groups are translated from the last checkpoints at once (an unplanned failover).
    pub fn without_source(mut self, why: &str) -> Self {
        let ep = &self.flow.clients.source_admin;
        self.partitions = Some(Err(ClientError::Refused {
            alias: ep.alias.clone(),
            bootstrap: ep.bootstrap_servers().to_string(),
            op: "read the replicated partitions".into(),
            cause: why.to_string(),
        }));
        self
    }

    /// Create `group`'s client on the target now, so that it has found the group's coordinator
    /// by the time the group is translated and committed.
    pub fn prepare_target(&self, group: &str) {
        self.target.prepare(group);
    }

    /// The groups with checkpoints on the target, read once (and kept for the translations).
    pub async fn checkpoint_groups(&mut self) -> Result<Vec<String>, ClientError> {
        let store = read_checkpoints(self.flow, self.timeout, &mut self.checkpoints).await?;
        Ok(store.groups().into_iter().map(str::to_string).collect())
    }

    /// Commit a translation's offsets to its group on the target (what `--apply` does), with
    /// the client that read the group there.
    pub async fn apply(&self, t: &GroupTranslation) -> Result<(), ClientError> {
        self.target.commit(&t.group, &t.offsets_to_apply()).await
    }

    /// Translate one group (see [`translate_group`]).
    pub async fn translate(&mut self, group: &str) -> Result<GroupTranslation, ClientError> {
        let Self {
            flow,
            timeout,
            source_timeout,
            target,
            source,
            partitions,
            translator,
            checkpoints,
        } = self;
        let (flow, timeout, source_timeout) = (*flow, *timeout, *source_timeout);
        let rename = |t: &str| flow.policy.remote_topic(t);
        // The group's client on the source connects while the partitions are asked for.
        source.prepare(group);

        // The index and the syncs, needed when the source answers: not even begun when it is
        // already known not to (a failover asking about many groups).
        let source_down = matches!(partitions, Some(Err(_)));

        // The target: it must answer.
        let listing = target.list(Some(group));
        // The source: which partitions are replicated and where the group is, then where it is
        // on the target for the same partitions. Never fails: an error means "source unreachable".
        let target_ref = &*target;
        let source_side = async {
            let committed = match source_partitions(flow, partitions, source_timeout).await {
                Ok(parts) => source.committed(group, &parts).await,
                Err(e) => Err(e),
            };
            Ok::<_, ClientError>(match committed {
                Ok(committed) => {
                    let tps: Vec<TopicPartition> =
                        committed.keys().map(|(t, p)| (rename(t), *p)).collect();
                    let on_target = target_ref.committed(group, &tps).await;
                    Ok((committed, on_target))
                }
                Err(e) => Err(e),
            })
        };
        let cached = if source_down { None } else { translator.take() };
        let read = async move {
            match cached {
                Some(t) => Ok(t),
                None => {
                    let mut t = Translator::for_flow(flow);
                    t.refresh(timeout).await.map(|()| t)
                }
            }
        };
        let mut read = std::pin::pin!(futures::future::OptionFuture::from(
            (!source_down).then_some(read)
        ));
        let both = std::pin::pin!(futures::future::try_join(listing, source_side));
        let (read_done, both) = match futures::future::select(both, read.as_mut()).await {
            futures::future::Either::Left((both, _)) => (None, both),
            futures::future::Either::Right((t, both)) => (Some(t), both.await),
        };
        let (listing, source_result) = both?;
        let (target_state, target_members) = listing
            .first()
            .map_or((None, 0), |g| (Some(g.state.clone()), g.members));

        let mut out = Vec::new();
        let (source_reachable, source_error, on_target) = match source_result {
            Ok((committed, on_target)) => {
                let read = match read_done {
                    Some(t) => t,
                    None => read.await,
                };
                let t = read.expect("the translator is read whenever the source answers")?;
                let translator = translator.insert(t);
                let mut from_checkpoints = Vec::new();
                for ((topic, partition), c) in committed {
                    let t = translator.translate(&topic, partition, c.offset);
                    if !matches!(t.method, Method::Exact(_)) {
                        from_checkpoints.push(out.len());
                    }
                    let (reread, detail) = match (&t.method, t.downstream) {
                        (Method::Exact(_), Some(d)) => {
                            (Some(translator.rereads(&topic, partition, c.offset, d)), None)
                        }
                        (Method::Mm2Sync { upstream, downstream }, Some(_)) => (
                            Some((c.offset - upstream - 1).max(0)),
                            Some(format!(
                                "from MM2 offset sync {upstream} -> {downstream}; re-read is an upper bound"
                            )),
                        ),
                        (Method::None(why), _) => (None, Some(why.clone())),
                        _ => (None, None),
                    };
                    let mm2_offset = translator.mm2_translate(&topic, partition, c.offset);
                    out.push(PartitionTranslation {
                        remote_topic: rename(&topic),
                        topic,
                        partition,
                        upstream_offset: Some(c.offset),
                        downstream_offset: t.downstream,
                        method: t.method.name().to_string(),
                        detail,
                        reread,
                        skipped: t.downstream.map(|_| 0),
                        target_committed: None,
                        mm2_offset,
                    });
                }
                if !from_checkpoints.is_empty() {
                    let store = read_checkpoints(flow, timeout, checkpoints).await?;
                    better_from_checkpoints(store, group, &mut out, &from_checkpoints);
                }
                (true, None, on_target?)
            }
            Err(e) => {
                // A read of the index that finished is kept for the next group.
                if let Some(Some(Ok(t))) = read_done {
                    *translator = Some(t);
                }
                // Without the source, the last checkpoints are the best there is.
                let store = read_checkpoints(flow, timeout, checkpoints).await?;
                for cp in store.group_checkpoints(group) {
                    out.push(PartitionTranslation {
                        topic: flow
                            .policy
                            .upstream_topic(&cp.topic)
                            .unwrap_or_else(|| cp.topic.clone()),
                        partition: cp.partition,
                        remote_topic: cp.topic.clone(),
                        upstream_offset: None,
                        downstream_offset: Some(cp.downstream_offset),
                        method: "checkpoint".into(),
                        detail: Some(format!(
                            "last checkpoint: upstream offset {} at the time it was taken",
                            cp.upstream_offset
                        )),
                        reread: None,
                        skipped: None,
                        target_committed: None,
                        mm2_offset: None,
                    });
                }
                let tps: Vec<TopicPartition> = out
                    .iter()
                    .map(|p| (p.remote_topic.clone(), p.partition))
                    .collect();
                let on_target = target.committed(group, &tps).await?;
                (false, Some(e.to_string()), on_target)
            }
        };

        for p in &mut out {
            p.target_committed = on_target
                .get(&(p.remote_topic.clone(), p.partition))
                .map(|c| c.offset);
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(GroupTranslation {
            group: group.to_string(),
            source: flow.source.clone(),
            target: flow.target.clone(),
            source_reachable,
            source_error,
            target_state,
            target_members,
            partitions: out,
        })
    }
}

/// The replicated partitions on the source, read once (an unreachable source stays so).
async fn source_partitions(
    flow: &Flow,
    cache: &mut Option<Result<Vec<TopicPartition>, ClientError>>,
    timeout: Duration,
) -> Result<Vec<TopicPartition>, ClientError> {
    if cache.is_none() {
        let read = async {
            let topics = topics_once(&flow.clients.source_admin, None, timeout).await?;
            Ok(topics
                .iter()
                .filter(|t| flow.should_replicate_topic(&t.name))
                .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
                .collect())
        };
        *cache = Some(read.await);
    }
    cache.clone().expect("just set")
}

/// The checkpoints on the target, read once.
async fn read_checkpoints<'c>(
    flow: &Flow,
    timeout: Duration,
    cache: &'c mut Option<CheckpointStore>,
) -> Result<&'c CheckpointStore, ClientError> {
    if cache.is_none() {
        let store = TopicTail::new(
            &flow.clients.target_consumer,
            &flow.internal_topics.checkpoints.name,
        )
        .fold(timeout, CheckpointStore::new(), |store, r| {
            if let Ok(cp) = Checkpoint::decode(r.key, r.value) {
                store.record(cp);
            }
        })
        .await?;
        *cache = Some(store);
    }
    Ok(cache.as_ref().expect("just set"))
}

/// Where the offset syncs alone translate approximately, a checkpoint can be better: MM2
/// emits a checkpoint from the syncs it holds at the time and never moves one backwards,
/// while its sync store forgets older syncs as new ones come (so MM2's own
/// `RemoteClusterUtils.translateOffsets` may say more than the syncs say now). A checkpoint
/// of an upstream offset at or before the group's is a valid translation of the group's
/// position too; the higher of the two wins.
fn better_from_checkpoints(
    store: &CheckpointStore,
    group: &str,
    out: &mut [PartitionTranslation],
    which: &[usize],
) {
    for &i in which {
        let p = &mut out[i];
        let Some(up) = p.upstream_offset else {
            continue;
        };
        let Some(cp) = store.get(group, &p.remote_topic, p.partition) else {
            continue;
        };
        if cp.upstream_offset <= up && Some(cp.downstream_offset) > p.downstream_offset {
            p.downstream_offset = Some(cp.downstream_offset);
            p.method = "checkpoint".into();
            p.detail = Some(format!(
                "from the checkpoint of upstream offset {} -> {} (better than the offset syncs now give); re-read unknown",
                cp.upstream_offset, cp.downstream_offset
            ));
            p.reread = None;
            p.skipped = Some(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group translated from the checkpoints (the source unreachable) and applied: every way a
    /// partition can come out, numbers and nulls.
    fn report() -> TranslateReport {
        let part = |partition, method: &str| PartitionTranslation {
            topic: "orders".into(),
            partition,
            remote_topic: "us-east.orders".into(),
            upstream_offset: None,
            downstream_offset: Some(250),
            method: method.into(),
            detail: None,
            reread: None,
            skipped: None,
            target_committed: Some(200),
            mm2_offset: Some(249),
        };
        let mut untranslated = part(2, "none");
        untranslated.downstream_offset = None;
        untranslated.target_committed = None;
        untranslated.mm2_offset = Some(-1);
        untranslated.detail = Some("no checkpoint of the group for this partition".into());
        let mut exact = part(0, "exact");
        exact.upstream_offset = Some(250);
        exact.reread = Some(0);
        exact.skipped = Some(0);
        TranslateReport {
            translation: GroupTranslation {
                group: "billing".into(),
                source: "us-east".into(),
                target: "us-west".into(),
                source_reachable: false,
                source_error: Some("cluster us-east (127.0.0.1:19092): timed out".into()),
                target_state: Some("Empty".into()),
                target_members: 0,
                partitions: vec![exact, part(1, "checkpoint"), untranslated],
            },
            applied: true,
        }
    }

    /// The document is byte for byte what `strait translate --json` prints and scripts parse
    /// (`testdata/translate.json`; regenerate with `STRAIT_UPDATE_GOLDEN=1` only for an intended
    /// change of the documented format), and it reads back as the same value.
    #[test]
    fn json_matches_the_golden_file() {
        let r = report();
        let json = r.to_json().unwrap() + "\n";
        crate::text::assert_golden("src/translate/testdata/translate.json", &json);
        assert_eq!(serde_json::from_str::<TranslateReport>(&json).unwrap(), r);
    }
}
