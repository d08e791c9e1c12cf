//! The replication service: everything `strait run` keeps running for a config, as one value
//! that starts together and stops together. `strait run`, `strait demo` and `strait drill` all
//! run replication through it.
//!
//! For the selected flows (those whose target is one of `targets`, or all when it is empty) it
//! runs:
//! - a heartbeat emitter for every pair MM2 would run a herder for, enabled or not (MM2-SPEC §6);
//! - for every enabled flow: its copy flow ([`replicate::start`]), its checkpoint job
//!   (`checkpoint::start`, when checkpoints or group offset sync are on) and its lag snapshot
//!   recorder ([`snapshot::start`]);
//! - for every last-writer-wins conflict rule and region the selected flows write into: its
//!   resolved view (`resolve::start`), and with any conflict rule the clock skew measurement
//!   (`clock::run`);
//! - for every events rule and region the selected flows write into: its merged streams
//!   (`merge::start`), and then for every region the marks its mergers read (`merge::start_marks`);
//! - for every conflict region the selected flows write into: its detector of concurrent
//!   writes (`detect::start`), fed by the receipts the flows write (`conflicts::receipts`);
//! - optionally the HTTP server (`/metrics`, `/api/status`, the dashboard) on a listener the
//!   caller bound beforehand, so that a busy address fails before anything starts.
//!
//! ```no_run
//! # async fn demo(config: strait::config::Config) -> Result<(), strait::replicate::FlowError> {
//! use strait::service::{Service, STOP_GRACE};
//! let service = Service::start(&config, &[], None);
//! // ... until the caller decides to stop, or `service.failed_flow()` names a flow ...
//! service.shutdown(STOP_GRACE).await
//! # }
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tracing::{error, warn};

use crate::checkpoint::{self, CheckpointSpec};
use crate::config::{Config, Flow};
use crate::conflicts::clock::{self, ClockSpec};
use crate::conflicts::detect::{self, DetectSpec};
use crate::conflicts::merge::{self, MarksSpec, MergeSpec};
use crate::conflicts::receipts::ReceiptSpec;
use crate::conflicts::resolve::{self, ResolveSpec};
use crate::heartbeat::{self, HeartbeatSpec};
use crate::http::Observed;
use crate::monitor::snapshot;
use crate::replicate::{self, FlowError, FlowSpec, FlowStats, RunningFlow};
use crate::stop::CancellationToken;

/// How long a graceful stop may take by default before the caller moves on anyway (in-flight
/// records are then copied again on the next start: nothing is lost, a few are duplicated).
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// How long the HTTP server's lag collection waits for each cluster.
const HTTP_COLLECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A job that runs until the service's stop and then ends: its name for the log, and its task.
type Job = (String, tokio::task::JoinHandle<()>);

/// Replication for a config's selected flows, running on the current tokio runtime.
pub struct Service {
    flows: Vec<RunningFlow>,
    /// Each cluster's reachability probe (see [`crate::reach`]).
    clusters: Vec<crate::reach::Watched>,
    /// Everything else (heartbeats, checkpoints, lag snapshots, conflict jobs, probes, the HTTP
    /// server), each ending once `cancel` is.
    jobs: Vec<Job>,
    /// The root of the stop tree (every task above holds a child of it), cancelled when the
    /// service is shut down or dropped.
    cancel: tokio_util::sync::DropGuard,
}

/// A named job from a spawned task (its result is logged by the task itself, if at all).
fn task<T: Send + 'static>(name: String, h: tokio::task::JoinHandle<T>) -> Job {
    (
        name,
        tokio::spawn(async move {
            let _ = h.await;
        }),
    )
}

/// A named job from a job's own end.
fn ending(name: String, end: impl std::future::Future<Output = ()> + Send + 'static) -> Job {
    (name, tokio::spawn(end))
}

impl Service {
    /// Start every task for the flows whose target is in `targets` (every flow when `targets` is
    /// empty), and serve HTTP on `http` when given. Must be called within a tokio runtime.
    ///
    /// Nothing here fails: unreachable clusters are retried by each task. A caller that needs
    /// at least one flow checks `config` first (a service with no enabled flow selected only
    /// sends heartbeats, if any).
    pub fn start(
        config: &Config,
        targets: &[String],
        http: Option<tokio::net::TcpListener>,
    ) -> Service {
        let selected = |f: &&Flow| targets.is_empty() || targets.contains(&f.target);
        let cancel = CancellationToken::new();
        let mut observed = Observed::default();
        let mut jobs: Vec<Job> = Vec::new();
        for spec in config
            .flows
            .iter()
            .filter(selected)
            .filter_map(HeartbeatSpec::from_config)
        {
            let sent = Arc::new(AtomicU64::new(0));
            observed.heartbeats.push((
                spec.source_alias.clone(),
                spec.target.alias.clone(),
                sent.clone(),
            ));
            let name = format!("heartbeats {}", spec.name());
            jobs.push(task(
                name,
                tokio::spawn(heartbeat::run(spec, cancel.child_token(), sent)),
            ));
        }
        for spec in config
            .enabled_flows()
            .filter(selected)
            .filter_map(CheckpointSpec::from_config)
        {
            let (s, t) = (spec.source_alias.clone(), spec.target_alias.clone());
            let c = checkpoint::start(spec, cancel.child_token());
            observed.checkpoints.push((s, t, c.stats.clone()));
            jobs.push(ending(format!("checkpoints {}", c.name), c.join()));
        }
        let flows = config
            .enabled_flows()
            .filter(selected)
            .map(|f| {
                let mut spec = FlowSpec::from_config(f);
                spec.receipts = ReceiptSpec::for_flow(config, f);
                spec.authority = crate::conflicts::authority::AuthorityPlan::new(
                    &config.conflicts,
                    &f.source,
                    &f.target,
                    observed.conflicts.clone(),
                );
                let (s, t) = (spec.source.alias.clone(), spec.target.alias.clone());
                let running = replicate::start(spec, cancel.child_token());
                observed.flows.push((s, t, running.stats.clone()));
                running
            })
            .collect();
        jobs.push(task(
            "giving freed memory back".to_string(),
            tokio::spawn(crate::memory::keep_giving_back(cancel.child_token())),
        ));
        // One probe per cluster the flows touch, however many flows share it.
        let mut clusters = Vec::new();
        for ep in crate::reach::touched(config.enabled_flows().filter(selected)) {
            let (watched, probe) = crate::reach::watch(
                ep,
                config.region_watch,
                crate::reach::Logging::Verdicts,
                cancel.child_token(),
            );
            clusters.push(watched.clone());
            observed.clusters.push(watched);
            jobs.push(task(
                format!("the reachability probe of {}", ep.alias),
                probe,
            ));
        }
        for f in config.enabled_flows().filter(selected) {
            let stats = observed
                .flows
                .iter()
                .find(|(s, t, _)| *s == f.source && *t == f.target)
                .map(|(_, _, stats)| stats.clone());
            let source = crate::reach::of(&clusters, &f.source);
            let r = snapshot::start(f.clone(), stats, source, cancel.child_token());
            jobs.push(ending(format!("lag snapshots {}", r.name), r.join()));
        }
        for spec in ResolveSpec::from_config(config, &|f: &Flow| selected(&f)) {
            let r = resolve::start(spec, cancel.child_token());
            jobs.push(ending(
                format!("last-writer-wins view {}", r.name),
                r.join(),
            ));
        }
        let merge_specs = MergeSpec::from_config(config, &|f: &Flow| selected(&f));
        for spec in MarksSpec::from_config(config, &merge_specs) {
            let m = merge::start_marks(spec, cancel.child_token());
            jobs.push(ending(m.name.clone(), m.join()));
        }
        for spec in merge_specs {
            let m = merge::start(spec, cancel.child_token());
            jobs.push(ending(m.name.clone(), m.join()));
        }
        for spec in DetectSpec::from_config(
            config,
            &|f: &Flow| selected(&f),
            &observed.conflicts,
            &observed.clock,
        ) {
            let d = detect::start(spec, cancel.child_token());
            observed.detectors.push((d.name.clone(), d.stats.clone()));
            jobs.push(ending(
                format!("conflict detection in {}", d.name),
                d.join(),
            ));
        }
        if let Some(spec) = ClockSpec::from_config(config, &|f: &Flow| selected(&f)) {
            let board = observed.clock.clone();
            jobs.push(task(
                "clock skew".into(),
                tokio::spawn(clock::run(spec, board, cancel.child_token())),
            ));
        }
        if let Some(listener) = http {
            let opts = crate::monitor::Options {
                timeout: HTTP_COLLECT_TIMEOUT,
                ..Default::default()
            };
            let server = crate::http::serve(
                listener,
                config.clone(),
                observed,
                opts,
                cancel.child_token(),
            );
            jobs.push(task("the HTTP server".into(), server));
        }
        Service {
            flows,
            clusters,
            jobs,
            cancel: cancel.drop_guard(),
        }
    }

    /// The copy flows running, by name (`S->T`), with their counters.
    pub fn flows(&self) -> impl Iterator<Item = (&str, &Arc<FlowStats>)> {
        self.flows.iter().map(|f| (f.name.as_str(), &f.stats))
    }

    /// Cluster `alias`'s reachability as its probe sees it, if the service probes it.
    pub fn reach_of(&self, alias: &str) -> Option<crate::reach::Watched> {
        crate::reach::of(&self.clusters, alias)
    }

    /// The name of the first copy flow that ended without being asked to (a fatal error: its
    /// cause is returned by [`Service::shutdown`]), if any. Cheap: poll it.
    pub fn failed_flow(&self) -> Option<&str> {
        self.flows
            .iter()
            .find(|f| f.is_finished())
            .map(|f| f.name.as_str())
    }

    /// Stop everything at once and wait for it, all sharing one deadline `grace`, so that the
    /// caller regains control within `grace` even when a cluster is gone and every flush times
    /// out (what did not stop in time is told to stop and left behind; records not acknowledged
    /// are copied again on the next start).
    ///
    /// Returns the first flow's error, if a flow failed; every failure is logged.
    pub async fn shutdown(self, grace: Duration) -> Result<(), FlowError> {
        let Service {
            flows,
            jobs,
            cancel,
            ..
        } = self;
        drop(cancel);
        // Every part by name, joined together: what has not ended at the deadline is named.
        // A flow's end carries its error (with the flow's place in the configuration).
        type End = futures::future::BoxFuture<'static, Option<(usize, FlowError)>>;
        let mut parts: Vec<(String, End)> = Vec::new();
        for (i, f) in flows.into_iter().enumerate() {
            let name = f.name.clone();
            parts.push((
                format!("flow {name}"),
                Box::pin(async move {
                    let e = f.join().await.err()?;
                    error!(flow = %name, error = %e, "flow failed");
                    Some((i, e))
                }),
            ));
        }
        for (name, end) in jobs {
            parts.push((
                name,
                Box::pin(async move {
                    let _ = end.await;
                    None
                }),
            ));
        }
        let mut running: BTreeSet<String> = parts.iter().map(|(n, _)| n.clone()).collect();
        let mut ends: FuturesUnordered<_> = parts
            .into_iter()
            .map(|(name, end)| async move { (name, end.await) })
            .collect();
        let mut errors: Vec<(usize, FlowError)> = Vec::new();
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = ends.next() => match next {
                    Some((name, error)) => {
                        running.remove(&name);
                        errors.extend(error);
                    }
                    None => break,
                },
                _ = &mut deadline => {
                    warn!(
                        not_stopped = ?running,
                        "not everything stopped within {}s; moving on anyway (unacknowledged records are copied again on the next start)",
                        grace.as_secs()
                    );
                    break;
                }
            }
        }
        // The first flow of the configuration that failed, as before.
        let first_error = errors.into_iter().min_by_key(|(i, _)| *i).map(|(_, e)| e);
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
