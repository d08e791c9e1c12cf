//! The two environments a drill runs in, behind one trait: what differs between failing a real
//! sandbox region and simulating the loss of a user's cluster.
//!
//! The drill's timeline (`super::run`) is the same for both: set up, replicate, write, fail the
//! primary, detect, fail over, recover, verify, clean up. [`Regions`] is every step of it that
//! depends on where the drill runs; [`sandbox::SandboxRegions`] and
//! [`simulated::SimulatedRegions`] are the two answers.

use std::future::Future;
use std::time::Duration;

use super::narration::{Kind, Narrator};
use super::report::RpoEstimate;
use crate::config::Flow;
use crate::failover::{self, FailoverError, FailoverReport};
use crate::kafka::{Admin, Endpoint};
use crate::monitor::collect::HeartbeatSource;
use crate::monitor::model::heartbeat_stale_after;

pub(crate) mod sandbox;
pub(crate) mod simulated;

/// How long each cluster request may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// The names a drill is given, before its environment exists.
pub(crate) struct Names<'a> {
    pub(crate) id: &'a str,
    pub(crate) primary: &'a str,
    pub(crate) secondary: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) group: &'a str,
}

/// The names the drill uses, the same in both environments.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) primary: String,
    pub(crate) secondary: String,
    /// The drill topic on the primary (and its local name on the secondary).
    pub(crate) topic: String,
    /// The drill's consumer group.
    pub(crate) group: String,
    /// The drill topic's copies on the secondary.
    pub(crate) remote_topic: String,
    pub(crate) partitions: i32,
}

impl Plan {
    /// `strait-drill-<id>` for the topic unless one is given, and for the group.
    pub(crate) fn names(id: &str, topic: Option<&str>) -> (String, String) {
        let group = format!("strait-drill-{id}");
        (topic.map_or_else(|| group.clone(), str::to_string), group)
    }
}

/// How the failure of the primary is expected to show on the secondary.
pub(crate) enum Detection {
    /// The newest heartbeat that crossed the flow gets older than the staleness bound (a real
    /// outage stops them).
    Heartbeats(HeartbeatSource),
    /// The drill topic's copies stop growing for as long as the bound (in a simulation the
    /// primary's heartbeats go on).
    CopiesStopGrowing {
        /// `emit.heartbeats.interval` of the flow.
        interval: Duration,
    },
    /// The primary's reachability probe (`strait run`'s, see `crate::reach`) declares it down:
    /// probes unanswered for `strait.region.down.after.ms` in a row. A real outage only.
    Probes(crate::reach::Watched, crate::config::region::RegionWatch),
}

impl Detection {
    /// Copies that stop growing, with `flow`'s heartbeat interval (1 s when it emits none).
    pub(crate) fn copies_of(flow: &Flow) -> Self {
        Detection::CopiesStopGrowing {
            interval: flow
                .intervals
                .emit_heartbeats
                .unwrap_or(Duration::from_secs(1)),
        }
    }

    /// How long after the failure it shows at most: for the probes, `RegionWatch::verdict_within`;
    /// otherwise the rule `strait status` uses, 3 × the heartbeat interval + 10 s.
    pub(crate) fn bound(&self) -> Duration {
        match self {
            Detection::Heartbeats(hb) => heartbeat_stale_after(hb.interval),
            Detection::CopiesStopGrowing { interval } => heartbeat_stale_after(*interval),
            Detection::Probes(_, how) => how.verdict_within(),
        }
    }
}

/// What a drill does differently in each environment. Every method is one step of the timeline;
/// none of them waits for the drill's traffic or decides the verdict.
pub(crate) trait Regions: Send + Sync {
    /// For the narration.
    fn kind(&self) -> Kind;

    /// The `primary->secondary` flow the drill replicates with.
    fn flow(&self) -> &Flow;

    /// Replication factor of the topics the drill creates (`-1`: the cluster's default).
    fn replication_factor(&self) -> i32;

    /// Start replicating the primary to the secondary.
    fn start_replication(&mut self, plan: &Plan);

    /// Heartbeats that must have crossed the flow before the drill writes anything; `None`:
    /// the remote topic existing is enough.
    fn readiness(&self) -> Option<HeartbeatSource>;

    /// The replication flow that stopped with an error, if one did.
    fn replication_failed(&self) -> Option<String>;

    /// Fail the primary, at once (the drill's own clients there are stopped by the drill right
    /// after, as an outage stops everything at the same instant).
    fn fail_primary(&mut self, narrator: &Narrator);

    /// Until what the failure stopped has stopped (bounded).
    fn failure_settled(&mut self) -> impl Future<Output = ()> + Send;

    /// How the failure shows.
    fn detection(&self) -> Detection;

    /// The unplanned failover.
    fn fail_over(
        &mut self,
        opts: &failover::Options,
        progress: &failover::Progress<'_>,
    ) -> impl Future<Output = Result<FailoverReport, FailoverError>> + Send;

    /// strait's estimate of the records lost, with what it is based on; notes what the drill
    /// should keep of the failover's own report.
    fn estimate_rpo(
        &self,
        plan: &Plan,
        report: &FailoverReport,
        narrator: &Narrator,
    ) -> impl Future<Output = RpoEstimate> + Send;

    /// Right after the failover: nothing is left to copy from the failed primary.
    fn after_failover(&mut self);

    /// Stop replication and wait for it (bounded).
    fn stop_replication(&mut self) -> impl Future<Output = ()> + Send;

    /// Undo the set-up; says and notes what is left behind.
    fn clean_up(
        &mut self,
        plan: &Plan,
        created: Created,
        narrator: &Narrator,
    ) -> impl Future<Output = ()> + Send;
}

/// What the drill created, so that clean-up deletes only that.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Created {
    /// The drill topic on the primary.
    pub(crate) topic: bool,
    /// The topic's local name on the secondary (where the producer writes after the failover).
    pub(crate) local_on_secondary: bool,
}

/// The newest heartbeat's timestamp, `None` when there is none or the cluster does not answer.
pub(crate) async fn newest_heartbeat(hb: &HeartbeatSource, ep: &Endpoint) -> Option<i64> {
    hb.newest(ep, TIMEOUT).await.ok().flatten()
}

/// The sum of the high watermarks of `partitions` partitions of `topic`; `None` when any fails.
pub(crate) async fn end_offsets(admin: &Admin, topic: &str, partitions: i32) -> Option<i64> {
    let calls = (0..partitions).map(|p| admin.watermarks(topic, p));
    let ends = futures::future::join_all(calls).await;
    ends.into_iter()
        .map(|r| r.ok().map(|(_, hi)| hi))
        .sum::<Option<i64>>()
}

/// A regex matching exactly `name` (MM2 filters and `--groups` match whole names; the escape
/// is for the dots a topic name may have).
pub(crate) fn exact(name: &str) -> String {
    fancy_regex::escape(name).into_owned()
}
