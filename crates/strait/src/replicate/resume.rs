//! Where each source partition of a flow starts, so that strait takes over from a running
//! MirrorMaker 2 without copying its topics again.
//!
//! Two replicators may have recorded a position for a partition: strait, in its replication
//! group's commits, and MM2, in its Connect worker's offsets topic on the target (see
//! [`super::mm2_offsets`], which strait also keeps current). A partition resumes from the further
//! of the two: after a switch from MM2 that is MM2's, after a restart strait's own (the two are
//! equal while strait runs, unless MM2 ran in between). An MM2 position past the partition's end
//! (a topic deleted and created again since) is not used: it would skip records; nor is a
//! position stamped with the id of an earlier topic of the same name (`kafka::topic_ids`).
//! Partitions neither knows start at the consumer's `auto.offset.reset` (earliest unless set).
//!
//! The choice is applied before the flow's consumer joins its group, by committing MM2's
//! positions to the group, and only while the group has no members: a running strait process
//! already decided.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tracing::{info, warn};

use super::mm2_offsets;
use crate::kafka::groups::Groups;
use crate::kafka::groups::OffsetAndMetadata;
use crate::kafka::{tail, Admin, ClientError, Endpoint, TopicInfo};

/// A source partition: topic and partition number.
pub type Part = (String, i32);

/// Why a partition starts where it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeFrom {
    /// strait's own commit in the replication group.
    Group(i64),
    /// MirrorMaker 2's position, further than strait's own (or strait had none).
    Mm2(i64),
    /// Neither knows it: the consumer's `auto.offset.reset`.
    Reset,
}

impl ResumeFrom {
    /// `group`, `mm2` or `reset`: for `check --positions --json`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Group(_) => "group",
            Self::Mm2(_) => "mm2",
            Self::Reset => "reset",
        }
    }

    /// The offset the partition resumes at; `None` for `Reset`.
    pub fn offset(&self) -> Option<i64> {
        match self {
            Self::Group(o) | Self::Mm2(o) => Some(*o),
            Self::Reset => None,
        }
    }
}

/// The decision for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The source partition.
    pub part: Part,
    /// Where it starts, and whose position that is.
    pub from: ResumeFrom,
    /// An MM2 position that was not used because it lies past the partition's end.
    pub mm2_past_end: Option<i64>,
    /// A position (the further, strait's or MM2's) that was not used because it was taken on an
    /// earlier topic of the same name, deleted since.
    pub of_earlier_topic: Option<i64>,
}

/// A recorded position: the next offset to copy, and the id of the topic it was taken on when
/// strait recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    /// The next offset to copy.
    pub next: i64,
    /// The topic's id ([`crate::kafka::topic_ids`]); None when not stamped.
    pub topic_id: Option<String>,
}

impl Stamped {
    /// A position without a stamp (MM2's own, or an operator's).
    pub fn bare(next: i64) -> Self {
        Self {
            next,
            topic_id: None,
        }
    }
}

/// Decide every partition of `parts`. `group`: strait's commits; `mm2`: MM2's positions; `ends`:
/// the partitions' end offsets, needed for every MM2 position; `ids`: the topics' ids now.
pub fn plan(
    parts: &[Part],
    group: &BTreeMap<Part, Stamped>,
    mm2: &HashMap<Part, Stamped>,
    ends: &HashMap<Part, i64>,
    ids: &HashMap<String, String>,
) -> Vec<Resume> {
    parts
        .iter()
        .map(|part| {
            let earlier = |s: &Stamped| {
                crate::kafka::topic_ids::of_earlier_topic(
                    s.topic_id.as_deref(),
                    ids.get(&part.0).map(String::as_str),
                )
            };
            let (own, theirs) = (group.get(part), mm2.get(part));
            let set_aside = [own, theirs]
                .into_iter()
                .flatten()
                .filter(|s| earlier(s))
                .map(|s| s.next)
                .max();
            let own = own.filter(|s| !earlier(s)).map(|s| s.next);
            let theirs = theirs.filter(|s| !earlier(s)).map(|s| s.next);
            let usable = theirs.filter(|m| ends.get(part).is_some_and(|end| m <= end));
            let from = match (own, usable) {
                (Some(g), Some(m)) if m > g => ResumeFrom::Mm2(m),
                (None, Some(m)) => ResumeFrom::Mm2(m),
                (Some(g), _) => ResumeFrom::Group(g),
                (None, None) => ResumeFrom::Reset,
            };
            Resume {
                part: part.clone(),
                from,
                mm2_past_end: theirs.filter(|_| usable.is_none()),
                of_earlier_topic: set_aside,
            }
        })
        .collect()
}

/// MM2's positions for source cluster `cluster` in the offsets topic `topic` on `target`: the
/// next offset to copy per partition. An absent topic reads as none.
pub async fn read_mm2_positions(
    target: &Endpoint,
    topic: &str,
    cluster: &str,
    timeout: Duration,
) -> Result<HashMap<Part, Stamped>, ClientError> {
    let cluster = cluster.to_string();
    tail::fold_topic(target, topic, timeout, HashMap::new(), move |out, _, r| {
        let value = (!r.value.is_empty()).then_some(r.value);
        if let Some(p) = mm2_offsets::decode(r.key, value) {
            if p.cluster == cluster {
                match p.next {
                    Some(next) => out.insert(
                        (p.topic, p.partition),
                        Stamped {
                            next,
                            topic_id: p.topic_id,
                        },
                    ),
                    None => out.remove(&(p.topic, p.partition)),
                };
            }
        }
    })
    .await
}

/// What [`seed`] needs of a flow.
pub struct SeedSpec<'a> {
    /// The flow's name, `S->T`, for the log.
    pub flow: &'a str,
    /// The replication group on the source, whose commits are strait's positions.
    pub group: &'a str,
    /// The source cluster, consumer properties (group commits).
    pub source: &'a Endpoint,
    /// An admin client of the source (partition end offsets).
    pub source_admin: &'a Admin,
    /// The target cluster, consumer properties (reads MM2's offsets topic).
    pub target: &'a Endpoint,
    /// MM2's offsets topic on the target (see [`mm2_offsets::default_topic`]).
    pub offsets_topic: &'a str,
    /// The source alias MM2 writes in its keys (`source.cluster.alias`).
    pub source_alias: &'a str,
    /// How long each cluster request may take.
    pub timeout: Duration,
}

/// MM2's positions for the flow of `spec` ([`read_mm2_positions`]).
async fn mm2_positions(spec: &SeedSpec<'_>) -> Result<HashMap<Part, Stamped>, ClientError> {
    read_mm2_positions(
        spec.target,
        spec.offsets_topic,
        spec.source_alias,
        spec.timeout,
    )
    .await
}

/// Decide where every partition of `topics` would start, without changing anything: what
/// `strait check --positions` shows. Also returns strait's own commits.
pub async fn decide(
    spec: &SeedSpec<'_>,
    topics: &[TopicInfo],
) -> Result<(Vec<Resume>, BTreeMap<Part, Stamped>), ClientError> {
    let mm2 = mm2_positions(spec).await?;
    decide_from(spec, topics, &mm2).await
}

/// [`decide`] with MM2's positions already read.
async fn decide_from(
    spec: &SeedSpec<'_>,
    topics: &[TopicInfo],
    mm2: &HashMap<Part, Stamped>,
) -> Result<(Vec<Resume>, BTreeMap<Part, Stamped>), ClientError> {
    let parts: Vec<Part> = topics
        .iter()
        .flat_map(|t| (0..t.partitions).map(|p| (t.name.clone(), p)))
        .collect();
    let committed: BTreeMap<Part, Stamped> = Groups::new(spec.source, spec.timeout)
        .committed(spec.group, &parts)
        .await?
        .into_iter()
        .map(|(k, v)| {
            let topic_id = crate::kafka::topic_ids::stamp_of(&v.metadata).map(str::to_string);
            (
                k,
                Stamped {
                    next: v.offset,
                    topic_id,
                },
            )
        })
        .collect();
    // Without ids (a broker before Kafka 2.8, or a refused describe) no position is set aside.
    let names = topics.iter().map(|t| t.name.clone()).collect();
    let ids = spec.source_admin.topic_ids(names).await.unwrap_or_default();
    let mut ends = HashMap::new();
    for part in parts.iter().filter(|p| mm2.contains_key(*p)) {
        let (_, hi) = spec.source_admin.watermarks(&part.0, part.1).await?;
        ends.insert(part.clone(), hi);
    }
    Ok((plan(&parts, &committed, mm2, &ends, &ids), committed))
}

/// Decide where every partition of `topics` starts ([`decide`]) and commit MM2's positions to
/// the group where they win (only while the group is empty). Logs each decision once per topic.
pub async fn seed(spec: &SeedSpec<'_>, topics: &[TopicInfo]) -> Result<Vec<Resume>, ClientError> {
    // Without MM2 positions there is nothing to decide: the consumer resumes from the group's
    // commits as always, and strait does not ask the group for them a second time.
    let mm2 = mm2_positions(spec).await?;
    if mm2.is_empty() {
        info!(flow = %spec.flow, topic = %spec.offsets_topic, "no MirrorMaker 2 positions: partitions resume from strait's group or auto.offset.reset");
        return Ok(Vec::new());
    }
    let (mut decided, committed) = decide_from(spec, topics, &mm2).await?;
    let from_mm2: BTreeMap<Part, OffsetAndMetadata> = decided
        .iter()
        .filter_map(|r| match r.from {
            ResumeFrom::Mm2(o) => Some((
                r.part.clone(),
                OffsetAndMetadata::new(o, "strait: MirrorMaker 2's position"),
            )),
            _ => None,
        })
        .collect();
    if !from_mm2.is_empty() {
        let groups = Groups::new(spec.source, spec.timeout);
        let busy = groups
            .list(Some(spec.group))
            .await?
            .iter()
            .any(|g| g.members > 0);
        if !busy {
            groups.commit(spec.group, &from_mm2).await?;
        }
        let applied = !busy;
        if !applied {
            warn!(flow = %spec.flow, group = %spec.group, "the replication group has members (strait is running elsewhere): MirrorMaker 2's positions are left to them");
            for r in &mut decided {
                if let ResumeFrom::Mm2(_) = r.from {
                    r.from = committed
                        .get(&r.part)
                        .map_or(ResumeFrom::Reset, |g| ResumeFrom::Group(g.next));
                }
            }
        }
    }
    log(spec, &decided);
    Ok(decided)
}

/// One line per topic: where its partitions resume and why.
fn log(spec: &SeedSpec<'_>, decided: &[Resume]) {
    let mut by_topic: BTreeMap<&str, Vec<&Resume>> = BTreeMap::new();
    for r in decided {
        by_topic.entry(r.part.0.as_str()).or_default().push(r);
    }
    for (topic, rs) in by_topic {
        let list = |want: fn(&ResumeFrom) -> bool| {
            rs.iter()
                .filter(|r| want(&r.from))
                .map(|r| match r.from {
                    ResumeFrom::Group(o) | ResumeFrom::Mm2(o) => format!("{}@{o}", r.part.1),
                    ResumeFrom::Reset => r.part.1.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mm2 = list(|f| matches!(f, ResumeFrom::Mm2(_)));
        let own = list(|f| matches!(f, ResumeFrom::Group(_)));
        let reset = list(|f| matches!(f, ResumeFrom::Reset));
        info!(
            flow = %spec.flow,
            topic = %topic,
            from_mm2 = %mm2,
            from_group = %own,
            from_reset = %reset,
            "partitions resume from MirrorMaker 2's position ({}), strait's group ({}), or auto.offset.reset",
            spec.offsets_topic,
            spec.group
        );
        for r in rs.iter().filter(|r| r.mm2_past_end.is_some()) {
            warn!(flow = %spec.flow, topic = %topic, partition = r.part.1, mm2_position = r.mm2_past_end, "MirrorMaker 2's position is past the partition's end (the topic was recreated?); not used");
        }
        for r in rs.iter().filter(|r| r.of_earlier_topic.is_some()) {
            warn!(flow = %spec.flow, topic = %topic, partition = r.part.1, position = r.of_earlier_topic, "the position recorded for this partition was taken on an earlier topic {topic}, deleted and created again since; not used");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(p: i32) -> Part {
        ("t".to_string(), p)
    }

    fn bare<K: Ord + std::hash::Hash + Clone, M: FromIterator<(K, Stamped)>>(v: &[(K, i64)]) -> M {
        v.iter()
            .map(|(k, o)| (k.clone(), Stamped::bare(*o)))
            .collect()
    }

    #[test]
    fn the_further_position_wins_and_a_stale_one_is_ignored() {
        let parts: Vec<Part> = (0..5).map(part).collect();
        let group: BTreeMap<Part, Stamped> = bare(&[(part(0), 10), (part(1), 50), (part(4), 7)]);
        let mm2: HashMap<Part, Stamped> =
            bare(&[(part(0), 40), (part(1), 30), (part(2), 5), (part(4), 900)]);
        let ends = HashMap::from([(part(0), 60), (part(1), 60), (part(2), 5), (part(4), 100)]);
        let none = HashMap::new();
        let got: Vec<ResumeFrom> = plan(&parts, &group, &mm2, &ends, &none)
            .iter()
            .map(|r| r.from)
            .collect();
        assert_eq!(
            got,
            vec![
                ResumeFrom::Mm2(40),
                ResumeFrom::Group(50),
                ResumeFrom::Mm2(5),
                ResumeFrom::Reset,
                ResumeFrom::Group(7),
            ]
        );
        let r = plan(&parts, &group, &mm2, &ends, &none);
        assert_eq!(r[4].mm2_past_end, Some(900));
        assert_eq!(r[0].mm2_past_end, None);
        // Without the end offset an MM2 position is not trusted.
        let r = plan(&[part(2)], &BTreeMap::new(), &mm2, &HashMap::new(), &none);
        assert_eq!(r[0].from, ResumeFrom::Reset);
    }

    /// A topic deleted and created again under the same name: positions stamped with the old id
    /// are set aside, however plausible their offsets; unstamped ones are still used.
    #[test]
    fn a_position_of_an_earlier_topic_is_not_used() {
        let stamped = |next, id: &str| Stamped {
            next,
            topic_id: Some(id.to_string()),
        };
        let parts: Vec<Part> = (0..3).map(part).collect();
        let group = BTreeMap::from([
            (part(0), stamped(5000, "old")),
            (part(1), stamped(70, "new")),
        ]);
        let mm2 = HashMap::from([
            (part(0), stamped(5000, "old")),
            (part(1), stamped(60, "new")),
            (part(2), Stamped::bare(30)),
        ]);
        let ends = HashMap::from([(part(0), 9000), (part(1), 9000), (part(2), 9000)]);
        let ids = HashMap::from([("t".to_string(), "new".to_string())]);
        let r = plan(&parts, &group, &mm2, &ends, &ids);
        assert_eq!(r[0].from, ResumeFrom::Reset);
        assert_eq!(r[0].of_earlier_topic, Some(5000));
        assert_eq!(r[1].from, ResumeFrom::Group(70));
        assert_eq!(r[1].of_earlier_topic, None);
        assert_eq!(r[2].from, ResumeFrom::Mm2(30));
        // Without the topic's id now, nothing is set aside.
        let r = plan(&parts, &group, &mm2, &ends, &HashMap::new());
        assert_eq!(r[0].from, ResumeFrom::Group(5000));
    }

    proptest! {
        /// Never behind strait's own commit, never past the end, never a position nobody gave,
        /// never one of an earlier topic.
        #[test]
        fn never_backwards_never_past_the_end(
            g in proptest::option::of(0i64..1000),
            m in proptest::option::of(0i64..1000),
            end in 0i64..1000,
            g_old: bool,
            m_old: bool,
        ) {
            let p = part(0);
            let at = |next, old: bool| Stamped { next, topic_id: Some(if old { "old" } else { "new" }.to_string()) };
            let group: BTreeMap<Part, Stamped> = g.map(|g| (p.clone(), at(g, g_old))).into_iter().collect();
            let mm2: HashMap<Part, Stamped> = m.map(|m| (p.clone(), at(m, m_old))).into_iter().collect();
            let ends = HashMap::from([(p.clone(), end)]);
            let ids = HashMap::from([("t".to_string(), "new".to_string())]);
            let r = &plan(std::slice::from_ref(&p), &group, &mm2, &ends, &ids)[0];
            let g = g.filter(|_| !g_old);
            let m = m.filter(|_| !m_old);
            match r.from {
                ResumeFrom::Group(o) => prop_assert_eq!(Some(o), g),
                ResumeFrom::Mm2(o) => {
                    prop_assert_eq!(Some(o), m);
                    prop_assert!(o <= end);
                    prop_assert!(g.is_none_or(|g| o > g));
                }
                ResumeFrom::Reset => prop_assert!(g.is_none()),
            }
        }
    }
}
