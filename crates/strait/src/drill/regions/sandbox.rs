//! A sandbox drill: two sandbox regions started for it, replicated by a [`Service`] exactly as
//! `strait run` does (copy flow, heartbeats, checkpoints with group offset sync, lag snapshots),
//! the primary failed for real through its fault proxy, and `strait failover` in full.

use super::{Created, Detection, Names, Plan, Regions};
use crate::config::{Config, Flow};
use crate::drill::narration::{Kind, Narrator, Note, Say};
use crate::drill::report::RpoEstimate;
use crate::drill::DrillError;
use crate::failover::{self, FailoverError, FailoverReport};
use crate::monitor::collect::{heartbeat_source, HeartbeatSource};
use crate::service::{Service, STOP_GRACE};

/// The two regions of a sandbox drill: the embedded sandbox, when strait is built with it.
#[cfg(feature = "sandbox")]
mod embedded {
    pub(super) struct Sandbox(strait_sandbox::Sandbox);

    impl Sandbox {
        pub(super) async fn start(names: &[&str]) -> Result<Self, String> {
            strait_sandbox::Sandbox::start(names)
                .await
                .map(Self)
                .map_err(|e| e.to_string())
        }

        /// (name, bootstrap servers) of each region.
        pub(super) fn bootstrap_servers(&self) -> Vec<(String, String)> {
            self.0
                .clusters()
                .iter()
                .map(|c| (c.name().to_string(), c.bootstrap_servers()))
                .collect()
        }

        /// Fail region `name`: its fault proxy resets every connection and refuses new ones.
        pub(super) fn cut(&self, name: &str) {
            if let Some(c) = self.0.cluster(name) {
                c.cut();
            }
        }

        pub(super) async fn shutdown(self) {
            self.0.shutdown().await;
        }
    }
}

/// Without the embedded sandbox there are no sandbox regions: starting them says so.
#[cfg(not(feature = "sandbox"))]
mod embedded {
    pub(super) enum Sandbox {}

    impl Sandbox {
        pub(super) async fn start(_: &[&str]) -> Result<Self, String> {
            Err(crate::drill::NO_SANDBOX.to_string())
        }

        pub(super) fn bootstrap_servers(&self) -> Vec<(String, String)> {
            match *self {}
        }

        pub(super) fn cut(&self, _: &str) {
            match *self {}
        }

        pub(super) async fn shutdown(self) {
            match self {}
        }
    }
}

pub(crate) struct SandboxRegions {
    sandbox: Option<embedded::Sandbox>,
    config: Config,
    flow: Flow,
    primary: String,
    service: Option<Service>,
    /// The service being stopped in the background, after the failover.
    stopping: Option<tokio::task::JoinHandle<()>>,
}

impl SandboxRegions {
    /// Start the two regions and write the drill's MM2 file for them into `report_dir`.
    pub(crate) async fn start(
        names: &Names<'_>,
        report_dir: &std::path::Path,
        narrator: &Narrator,
    ) -> Result<Self, DrillError> {
        let (a, b) = (names.primary, names.secondary);
        narrator.say(Say::StartingSandbox {
            a: a.into(),
            b: b.into(),
        });
        let sandbox = embedded::Sandbox::start(&[a, b])
            .await
            .map_err(DrillError::Sandbox)?;
        let clusters = sandbox.bootstrap_servers();
        let text = sandbox_properties(&clusters, a, b, names.topic, names.group);
        let path = report_dir.join("mm2.properties");
        std::fs::write(&path, &text).map_err(|source| DrillError::Write {
            path: path.clone(),
            source,
        })?;
        let config = Config::parse(&text, &path.display().to_string())
            .map_err(|e| DrillError::OwnFile(e.to_string()))?;
        let flow = config
            .flow(a, b)
            .cloned()
            .ok_or_else(|| DrillError::OwnFile("it has no flow".into()))?;
        narrator.note(Note::SandboxDrill {
            a: a.into(),
            b: b.into(),
            file: path.display().to_string(),
        });
        Ok(Self {
            sandbox: Some(sandbox),
            config,
            flow,
            primary: a.into(),
            service: None,
            stopping: None,
        })
    }

    async fn stop_service(&mut self) {
        if let Some(stopping) = self.stopping.take() {
            let _ = stopping.await;
        }
        if let Some(s) = self.service.take() {
            let _ = s.shutdown(STOP_GRACE).await;
        }
    }
}

impl Regions for SandboxRegions {
    fn kind(&self) -> Kind {
        Kind::Sandbox
    }

    fn flow(&self) -> &Flow {
        &self.flow
    }

    fn replication_factor(&self) -> i32 {
        1
    }

    fn start_replication(&mut self, _: &Plan) {
        self.service = Some(Service::start(&self.config, &[], None));
    }

    fn readiness(&self) -> Option<HeartbeatSource> {
        heartbeat_source(&self.config, &self.flow)
    }

    fn replication_failed(&self) -> Option<String> {
        self.service
            .as_ref()
            .and_then(|s| s.failed_flow().map(str::to_string))
    }

    fn fail_primary(&mut self, narrator: &Narrator) {
        if let Some(sb) = &self.sandbox {
            sb.cut(&self.primary);
        }
        narrator.note(Note::CutByProxy {
            a: self.primary.clone(),
        });
    }

    /// A cut is immediate; replication goes on failing against it until the failover.
    async fn failure_settled(&mut self) {}

    fn detection(&self) -> Detection {
        if let Some(w) = self
            .service
            .as_ref()
            .and_then(|s| s.reach_of(&self.primary))
        {
            return Detection::Probes(w, self.config.region_watch);
        }
        match heartbeat_source(&self.config, &self.flow) {
            Some(hb) => Detection::Heartbeats(hb),
            None => Detection::copies_of(&self.flow),
        }
    }

    async fn fail_over(
        &mut self,
        opts: &failover::Options,
        progress: &failover::Progress<'_>,
    ) -> Result<FailoverReport, FailoverError> {
        failover::failover(&self.config, opts, progress).await
    }

    async fn estimate_rpo(
        &self,
        _: &Plan,
        report: &FailoverReport,
        narrator: &Narrator,
    ) -> RpoEstimate {
        narrator.note(Note::FailoverRan {
            mode: report.mode,
            steps: report
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {} {:.1} s",
                        s.name,
                        s.outcome,
                        s.duration_ms as f64 / 1000.0
                    )
                })
                .collect(),
            rto_ms: report.rto_ms,
        });
        RpoEstimate {
            records: report.rpo.records.map(|r| r.max(0) as u64),
            at_least: report.rpo.records_at_least.map(|r| r.max(0) as u64),
            source: match (report.rpo.records_at_least, report.rpo.records) {
                (Some(lo), Some(hi)) if lo < hi => format!(
                    "strait failover, an upper bound (at least {lo}): {}",
                    report.rpo.source
                ),
                _ => format!("strait failover: {}", report.rpo.source),
            },
        }
    }

    /// Stop replication while the drill goes on, so that waiting out its timeouts against the
    /// dead region overlaps the run on the secondary.
    fn after_failover(&mut self) {
        if let Some(s) = self.service.take() {
            self.stopping = Some(tokio::spawn(async move {
                let _ = s.shutdown(STOP_GRACE).await;
            }));
        }
    }

    async fn stop_replication(&mut self) {
        self.stop_service().await;
    }

    async fn clean_up(&mut self, _: &Plan, _: Created, narrator: &Narrator) {
        self.stop_service().await;
        if let Some(sb) = self.sandbox.take() {
            narrator.say(Say::StoppingSandbox);
            sb.shutdown().await;
        }
    }
}

/// The active-passive MM2 file `strait drill --sandbox` writes for its two regions.
pub(crate) fn sandbox_properties(
    clusters: &[(String, String)],
    primary: &str,
    secondary: &str,
    topic: &str,
    group: &str,
) -> String {
    // A properties file reads `\\` as `\`.
    let topic_re = super::exact(topic).replace('\\', "\\\\");
    let group_re = super::exact(group).replace('\\', "\\\\");
    let names: Vec<&str> = clusters.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = format!(
        "# strait drill --sandbox: two sandbox regions, {primary} replicated to {secondary} (active-passive).\n\
         # The sandbox and its data are gone when the drill ends; this file is kept to show what ran.\n\
         clusters = {}\n",
        names.join(", ")
    );
    for (name, bootstrap) in clusters {
        out.push_str(&format!("{name}.bootstrap.servers = {bootstrap}\n"));
    }
    out.push_str(&format!(
        "{primary}->{secondary}.enabled = true\n\
         {primary}->{secondary}.topics = {topic_re}\n\
         {primary}->{secondary}.groups = {group_re}\n\
         \n\
         # Short intervals, so that a drill of a minute shows everything.\n\
         emit.heartbeats.interval.seconds = 1\n\
         emit.checkpoints.interval.seconds = 1\n\
         refresh.topics.interval.seconds = 1\n\
         refresh.groups.interval.seconds = 1\n\
         sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = 1\n\
         # The sandbox answers in milliseconds: a region that does not answer in 5 s is gone.\n\
         admin.timeout.ms = 5000\n\
         \n\
         # One broker per sandbox region.\n\
         replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_sandbox_file_replicates_only_the_drill() {
        let clusters = vec![
            ("us-east".to_string(), "127.0.0.1:1".to_string()),
            ("us-west".to_string(), "127.0.0.1:2".to_string()),
        ];
        let text = sandbox_properties(
            &clusters,
            "us-east",
            "us-west",
            "drill.t-1",
            "strait-drill-abc",
        );
        let c = Config::parse(&text, "mm2.properties").unwrap();
        let f = c.flow("us-east", "us-west").unwrap();
        assert!(f.enabled);
        assert!(f.should_replicate_topic("drill.t-1"));
        assert!(!f.should_replicate_topic("drillxt-1"), "the dot is escaped");
        assert!(!f.should_replicate_topic("orders"));
        assert!(f.should_replicate_group("strait-drill-abc"));
        assert!(!f.should_replicate_group("billing"));
        assert_eq!(f.intervals.emit_checkpoints, Some(Duration::from_secs(1)));
        assert_eq!(f.intervals.sync_group_offsets, Some(Duration::from_secs(1)));
        assert!(!c.flow("us-west", "us-east").unwrap().enabled);
        // Detection looks at us-east.heartbeats on us-west, emitted every second.
        let hb = heartbeat_source(&c, f).unwrap();
        assert_eq!(hb.topic, "us-east.heartbeats");
        assert_eq!(hb.interval, Duration::from_secs(1));
        assert_eq!(hb.only_from, None);
    }
}
