//! Which clusters answer, seen within seconds.
//!
//! librdkafka retries connections silently and a call to a cluster that is away waits out its
//! whole timeout (a minute for admin calls), so without a watch an operator whose bootstrap
//! address has a typo reads "flow starting" and then nothing. `strait run` therefore probes every
//! cluster its flows touch with one kept-alive client and a tiny request (metadata of one topic
//! that need not exist, never auto-created) every `strait.region.probe.interval.ms` (100 ms by
//! default; see `config::region`). Probes failing for `strait.region.down.after.ms` in a row
//! (3 s, at least [`MIN_FAILURES`] of them) make the cluster *down*: said at once in the log
//! with the cluster, its address and librdkafka's last reason, said again every
//! [`REPEAT_EVERY`] while it lasts, and exported to `/api/status`, `/metrics` and the
//! dashboard. The first success after that says how long it was away.
//!
//! The decision ([`Tracker`]) is pure, so it is tested on its own; the probing is
//! [`watch`]'s task.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::config::region::RegionWatch;
use crate::kafka::Endpoint;
use crate::stop::{pause, CancellationToken};

/// Failed probes in a row, at the least, before a cluster is down (however fast they fail).
pub(crate) const MIN_FAILURES: u32 = 3;
/// How often a cluster that stays down is mentioned again in the log.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(30);
/// The topic whose metadata a probe asks for: any answer, even "unknown topic" or "not
/// authorized", proves the cluster answers.
const PROBE_TOPIC: &str = "__strait_probe";

/// Whether a cluster answers, as its probes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// Not probed enough yet to tell.
    Unknown,
    /// The last probe was answered.
    Up,
    /// Probes went unanswered for `strait.region.down.after.ms` in a row (or longer).
    Down,
}

/// One cluster as the watch sees it: the `clusters` entries of `/api/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterReach {
    /// The cluster's alias in the MM2 file.
    pub cluster: String,
    /// Its `bootstrap.servers`.
    pub address: String,
    /// Up, down or not known yet.
    pub reach: Reach,
    /// Epoch milliseconds since when the cluster has been in this state.
    pub since_ms: i64,
    /// Probes failed in a row (0 when the last one was answered).
    pub failed_probes: u32,
    /// Why the last probe failed (librdkafka's reason when it gave one); `None` when it did not.
    pub error: Option<String>,
    /// Epoch milliseconds of the last answered probe (`None`: none yet).
    #[serde(default)]
    pub answered_at_ms: Option<i64>,
    /// By when the cluster stopped answering, at the latest (epoch milliseconds): the start of
    /// the first failed probe in a row plus the round trip of the last answered one, since an
    /// answering cluster would have answered it by then (`None` when the last probe was
    /// answered).
    #[serde(default)]
    pub failing_since_ms: Option<i64>,
}

impl ClusterReach {
    fn new(ep: &Endpoint) -> Self {
        Self {
            cluster: ep.alias.clone(),
            address: ep.bootstrap_servers().to_string(),
            reach: Reach::Unknown,
            since_ms: crate::heartbeat::now_ms(),
            failed_probes: 0,
            error: None,
            answered_at_ms: None,
            failing_since_ms: None,
        }
    }

    /// The sentence an operator reads for a down cluster (in reasons and the log).
    pub fn down_reason(&self) -> String {
        let age = (crate::heartbeat::now_ms() - self.since_ms).max(0) / 1000;
        format!(
            "cluster {} ({}) does not answer for {age}s ({} probes failed{})",
            self.cluster,
            self.address,
            self.failed_probes,
            self.error
                .as_deref()
                .map_or_else(String::new, |e| format!(": {e}"))
        )
    }
}

/// What a probe's outcome changes, for the log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing worth a line.
    Quiet,
    /// The cluster just went down.
    Down,
    /// Still down, and [`REPEAT_EVERY`] passed since it was last said.
    StillDown(Duration),
    /// Answers again, after being down this long.
    Up(Duration),
}

/// The decision of [`Change`]s from probe outcomes, without I/O.
#[derive(Debug)]
pub(crate) struct Tracker {
    down_after: Duration,
    repeat_every: Duration,
    failures: u32,
    reach: Reach,
    since: Instant,
    last_said: Instant,
    /// When the first failure of the current row was seen.
    first_failure: Option<Instant>,
}

impl Tracker {
    pub(crate) fn new(down_after: Duration, repeat_every: Duration, now: Instant) -> Self {
        Self {
            down_after,
            repeat_every,
            failures: 0,
            reach: Reach::Unknown,
            since: now,
            last_said: now,
            first_failure: None,
        }
    }

    pub(crate) fn reach(&self) -> Reach {
        self.reach
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Take in the outcome of one probe that began at `started`, known at `now`. A cluster is
    /// down once its probes have failed for [`Tracker::down_after`]'s time in a row, at least
    /// [`MIN_FAILURES`] of them.
    pub(crate) fn observe(&mut self, answered: bool, started: Instant, now: Instant) -> Change {
        if answered {
            self.failures = 0;
            self.first_failure = None;
            let was = std::mem::replace(&mut self.reach, Reach::Up);
            return match was {
                Reach::Up => Change::Quiet,
                Reach::Unknown => {
                    self.since = now;
                    Change::Quiet
                }
                Reach::Down => {
                    let away = now.saturating_duration_since(self.since);
                    self.since = now;
                    Change::Up(away)
                }
            };
        }
        self.failures = self.failures.saturating_add(1);
        let first = *self.first_failure.get_or_insert(started);
        match self.reach {
            Reach::Down => {
                if now.saturating_duration_since(self.last_said) >= self.repeat_every {
                    self.last_said = now;
                    Change::StillDown(now.saturating_duration_since(self.since))
                } else {
                    Change::Quiet
                }
            }
            _ if self.failures >= MIN_FAILURES
                && now.saturating_duration_since(first) >= self.down_after =>
            {
                self.reach = Reach::Down;
                // Down since the first failure of the row: that is when it stopped answering.
                self.since = first;
                self.last_said = now;
                Change::Down
            }
            _ => Change::Quiet,
        }
    }
}

/// The probe client's context: keeps librdkafka's last error, which says why a probe went
/// unanswered ("Connection refused", a failed TLS handshake) better than its timeout does.
struct ProbeContext {
    bootstrap: String,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for ProbeContext {
    /// librdkafka's own lines about the probe's connection would repeat every second what the
    /// watch says once: kept for debugging only.
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        debug!(address = %self.bootstrap, fac, message, "probe client log");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka::diagnose::record(&self.bootstrap, &error, reason);
        debug!(address = %self.bootstrap, %error, reason, "probe client error");
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_string());
    }
}

impl ConsumerContext for ProbeContext {}

/// A cluster's watch: its latest state, read by the HTTP server and the flows' reports.
pub type Watched = Arc<Mutex<ClusterReach>>;

/// The watch of cluster `alias` among `watches`.
pub fn of(watches: &[Watched], alias: &str) -> Option<Watched> {
    watches
        .iter()
        .find(|c| c.lock().unwrap_or_else(|e| e.into_inner()).cluster == alias)
        .cloned()
}

/// The clusters `flows` touch, each once however many flows share it (one probe each).
pub fn touched<'a>(flows: impl Iterator<Item = &'a crate::config::Flow>) -> Vec<&'a Endpoint> {
    let mut touched: Vec<&Endpoint> = Vec::new();
    for f in flows {
        for ep in [&f.clients.source_admin, &f.clients.target_admin] {
            if !touched.iter().any(|c| c.alias == ep.alias) {
                touched.push(ep);
            }
        }
    }
    touched
}

/// Whether a watch logs its verdicts: `strait run` does (an operator's alert); a command that
/// prints them in its report does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logging {
    /// A line when a cluster goes down, stays down and answers again.
    Verdicts,
    /// Nothing.
    Quiet,
}

/// Probe `ep` as `how` says until `cancel` fires; the state is kept in the returned value.
pub fn watch(
    ep: &Endpoint,
    how: RegionWatch,
    logging: Logging,
    cancel: CancellationToken,
) -> (Watched, tokio::task::JoinHandle<()>) {
    let shared = Arc::new(Mutex::new(ClusterReach::new(ep)));
    let task = tokio::spawn(run(ep.clone(), how, logging, shared.clone(), cancel));
    (shared, task)
}

async fn run(
    ep: Endpoint,
    how: RegionWatch,
    logging: Logging,
    shared: Watched,
    cancel: CancellationToken,
) {
    let mut cfg = ep.consumer_config("strait-probe");
    cfg.set("client.id", format!("strait-{}-probe", ep.alias));
    cfg.set("allow.auto.create.topics", "false");
    let context = ProbeContext {
        bootstrap: ep.bootstrap_servers().to_string(),
        last_error: Mutex::new(None),
    };
    let client: Arc<BaseConsumer<ProbeContext>> = match cfg.create_with_context(context) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // The flows fail on the same configuration with their own error; nothing to watch.
            warn!(cluster = %ep.alias, error = %e, "cannot create the reachability probe");
            return;
        }
    };
    let mut tracker = Tracker::new(how.down_after, REPEAT_EVERY, Instant::now());
    let (probe_every, probe_timeout) = (how.probe_every, how.probe_timeout);
    let (alias, address) = (ep.alias.clone(), ep.bootstrap_servers().to_string());
    // The last answered probe's round trip (a probe that fails dates the loss by it).
    let mut round_trip_ms = 0i64;
    loop {
        let started = Instant::now();
        let started_ms = crate::heartbeat::now_ms();
        let c = client.clone();
        let answered = crate::kafka::blocking(move || {
            let r = c.fetch_metadata(Some(PROBE_TOPIC), probe_timeout);
            // Serve the error events queued meanwhile (they carry the reason).
            let _ = c.poll(Duration::ZERO);
            r.is_ok()
        });
        let Some(answered) = crate::stop::or_cancel(&cancel, answered).await else {
            return;
        };
        let error =
            if answered {
                None
            } else {
                let recent = crate::kafka::diagnose::recent(&address);
                let last = client
                    .context()
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                Some(recent.or(last).unwrap_or_else(|| {
                    format!("no answer within {} ms", probe_timeout.as_millis())
                }))
            };
        let change = tracker.observe(answered, started, Instant::now());
        let snapshot = {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            let now = crate::heartbeat::now_ms();
            if answered {
                round_trip_ms = now - started_ms;
                tracing::trace!(cluster = %alias, round_trip_ms, "probe answered");
                s.answered_at_ms = Some(now);
                s.failing_since_ms = None;
            } else if s.failing_since_ms.is_none() {
                tracing::trace!(cluster = %alias, started_ms, "first probe failed");
                s.failing_since_ms = Some(match s.answered_at_ms {
                    Some(_) => (started_ms + round_trip_ms).min(now),
                    None => now,
                });
            }
            if s.reach != tracker.reach() {
                // Down since the first failure of the row, up since now.
                s.since_ms = match tracker.reach() {
                    Reach::Down => s.failing_since_ms.unwrap_or(now),
                    _ => now,
                };
            }
            s.reach = tracker.reach();
            s.failed_probes = tracker.failures();
            s.error = error;
            s.clone()
        };
        match change {
            _ if logging == Logging::Quiet => {}
            Change::Quiet => {}
            Change::Down => {
                warn!(cluster = %alias, address = %address, "{}; replication to and from it waits until it answers", snapshot.down_reason());
            }
            Change::StillDown(_) => {
                warn!(cluster = %alias, address = %address, "{}", snapshot.down_reason());
            }
            Change::Up(away) => {
                info!(cluster = %alias, address = %address, "cluster {alias} ({address}) answers again after {:.0}s", away.as_secs_f64());
            }
        }
        let wait = probe_every.saturating_sub(started.elapsed());
        if !pause(&cancel, wait).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcomes: &[bool]) -> Vec<Change> {
        let t0 = Instant::now();
        let mut t = Tracker::new(Duration::from_secs(2), Duration::from_secs(30), t0);
        outcomes
            .iter()
            .enumerate()
            .map(|(i, ok)| {
                let at = t0 + Duration::from_secs(i as u64);
                t.observe(*ok, at, at)
            })
            .collect()
    }

    #[test]
    fn fast_failures_make_a_cluster_down_only_after_the_time() {
        let t0 = Instant::now();
        let mut t = Tracker::new(Duration::from_secs(3), Duration::from_secs(30), t0);
        let tick = Duration::from_millis(100);
        let downs: Vec<u32> = (0..40)
            .filter(|i| {
                let at = t0 + tick * *i;
                t.observe(false, at, at + Duration::from_millis(2)) == Change::Down
            })
            .collect();
        // Failing since t0: down at the first probe ending 3 s after it.
        assert_eq!(downs, vec![30]);
    }

    #[test]
    fn down_after_three_failures_in_a_row_and_said_once() {
        let c = run(&[true, false, false, false, false]);
        assert_eq!(
            c,
            vec![
                Change::Quiet,
                Change::Quiet,
                Change::Quiet,
                Change::Down,
                Change::Quiet
            ]
        );
    }

    #[test]
    fn a_cluster_that_never_answered_is_down_within_three_probes() {
        let c = run(&[false, false, false]);
        assert_eq!(c.last(), Some(&Change::Down));
    }

    #[test]
    fn isolated_failures_do_not_make_a_cluster_down() {
        let c = run(&[true, false, false, true, false, false, true]);
        assert!(c.iter().all(|c| *c == Change::Quiet), "{c:?}");
    }

    #[test]
    fn a_long_outage_is_repeated_every_interval_and_its_end_says_how_long() {
        let mut outcomes = vec![true];
        outcomes.extend(std::iter::repeat_n(false, 65));
        outcomes.push(true);
        let c = run(&outcomes);
        let still: Vec<_> = c
            .iter()
            .filter(|c| matches!(c, Change::StillDown(_)))
            .collect();
        assert_eq!(still.len(), 2, "{c:?}");
        // Down from the first failed probe (t=1s) to the answer at t=66s.
        assert_eq!(c.last(), Some(&Change::Up(Duration::from_secs(65))));
    }
}
