//! The drill's timeline: every [`SAMPLE_EVERY`], what the producer has had acknowledged, what the
//! consumer received, the replication lag in records while the primary answers, and the
//! produce rate. The report draws its chart from these samples.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::regions::end_offsets;
use super::report::Sample;
use super::traffic::DrillLog;
use crate::kafka::{Admin, Endpoint};
use crate::stop::CancellationToken;

/// How often a timeline sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Where the lag is read: the drill topic on the primary and its copies on the secondary.
pub(crate) struct LagSource {
    pub(crate) primary: Endpoint,
    pub(crate) secondary: Endpoint,
    pub(crate) topic: String,
    pub(crate) remote_topic: String,
    pub(crate) partitions: i32,
}

/// A running sampler.
pub(crate) struct Sampler {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Sample from `started` on; the lag is no longer read once `primary_lost` is cancelled.
    pub(crate) fn start(
        started: Instant,
        log: Arc<DrillLog>,
        lag: LagSource,
        primary_lost: CancellationToken,
    ) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples: Vec<Sample> = Vec::new();
            let mut admins: Option<(Admin, Admin)> = None;
            let mut prev = (0.0f64, 0u64);
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.cancelled() => break,
                }
                let t = started.elapsed().as_secs_f64();
                let acked = log.acked();
                let lag = if primary_lost.is_cancelled() {
                    None
                } else {
                    if admins.is_none() {
                        admins = Admin::new(&lag.primary, Duration::from_secs(2))
                            .ok()
                            .zip(Admin::new(&lag.secondary, Duration::from_secs(2)).ok());
                    }
                    match &admins {
                        Some((aa, ab)) => {
                            let (ea, eb) = tokio::join!(
                                end_offsets(aa, &lag.topic, lag.partitions),
                                end_offsets(ab, &lag.remote_topic, lag.partitions)
                            );
                            match (ea, eb) {
                                (Some(ea), Some(eb)) => Some((ea - eb).max(0)),
                                _ => {
                                    admins = None;
                                    None
                                }
                            }
                        }
                        None => None,
                    }
                };
                let dt = t - prev.0;
                let rate = if dt > 0.0 {
                    (acked.saturating_sub(prev.1)) as f64 / dt
                } else {
                    0.0
                };
                prev = (t, acked);
                samples.push(Sample {
                    t_ms: (t * 1000.0) as i64,
                    acked_total: acked,
                    consumed_total: log.consumed(),
                    replication_lag_records: lag,
                    produce_rate: (rate * 10.0).round() / 10.0,
                });
            }
            samples
        });
        Self { stop, task }
    }

    /// Stop and return the samples taken.
    pub(crate) async fn finish(self) -> Vec<Sample> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}
