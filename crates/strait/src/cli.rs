//! The command-line contract (DESIGN.md): command and option names are kept stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "strait",
    version,
    about = "Multi-region Kafka replication and disaster recovery",
    long_about = "Multi-region Kafka replication and disaster recovery.\n\n\
        strait replicates topics between Kafka clusters as MirrorMaker 2 does, from the same \
        properties file, and turns failover, failback and DR drills into commands that report \
        the RTO and RPO that actually happened."
)]
pub(crate) struct Cli {
    /// More log output (-v: debug for strait, -vv: everything). STRAIT_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Replicate as CONFIG (an MM2 properties file) says.
    Run(RunArgs),
    /// Validate CONFIG and print the effective flows and settings.
    Check(CheckArgs),
    /// Replication lag, heartbeat age, checkpoint age and group positions, per flow.
    Status(StatusArgs),
    /// The active-active conflicts strait recorded (strait.conflicts), oldest first.
    Conflicts(ConflictsArgs),
    /// A consumer group's offsets on the target for its position on the source.
    Translate(TranslateArgs),
    /// Switch consumers from one region to another and report RTO and RPO.
    Failover(FailoverArgs),
    /// Return to the original region once it is back, salvaging what it never replicated.
    Failback(FailbackArgs),
    /// Where a consumer group should connect now: the active region's bootstrap servers and topics.
    Clients(ClientsArgs),
    /// Run a complete DR drill and write a report with the measured RTO and RPO.
    Drill(DrillArgs),
    /// Local Kafka-compatible clusters, in this process, with fault controls, for trying strait.
    Sandbox(SandboxArgs),
    /// Sandbox + active-active replication + traffic + dashboard.
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// MirrorMaker 2 properties file.
    pub config: PathBuf,
    /// Run only the flows whose target is one of these clusters (comma-separated aliases).
    #[arg(long, value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// Serve /metrics, /api/status and the dashboard on this address (e.g. 127.0.0.1:8080).
    #[arg(long)]
    pub http: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    pub config: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also ask the clusters where each partition of each enabled flow would resume on a first
    /// `strait run`: strait's group, MirrorMaker 2's position, or auto.offset.reset.
    #[arg(long)]
    pub positions: bool,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    pub config: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// Refresh in place until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// A flow whose lag is over this many seconds is LAGGING.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub lag_threshold: f64,
    /// How long each cluster may take to answer before it counts as unreachable.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Leave out the consumer groups (faster on clusters with many groups).
    #[arg(long)]
    pub no_groups: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ConflictsArgs {
    pub config: PathBuf,
    /// Only the conflicts recorded in this region (default: every conflict region).
    #[arg(long)]
    pub region: Option<String>,
    /// Only the conflicts of this topic (its name in the regions that write it).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only those found since: a duration ago (10m, 2h) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|RFC3339")]
    pub since: Option<String>,
    /// The records as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// How long each cluster may take to answer.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub(crate) struct TranslateArgs {
    pub config: PathBuf,
    #[arg(long)]
    pub group: String,
    #[arg(long)]
    pub source: String,
    #[arg(long)]
    pub target: String,
    #[arg(long)]
    pub json: bool,
    /// Commit the translated offsets to the group on the target.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Args, Debug)]
pub(crate) struct FailoverArgs {
    pub config: PathBuf,
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    /// Only the consumer groups matching this regex.
    #[arg(long)]
    pub groups: Option<String>,
    /// How long to wait for producers to stop and replication to catch up (e.g. 60s, 5m).
    #[arg(long)]
    pub max_wait: Option<String>,
    /// Change nothing; print what a failover now would lose and re-read.
    #[arg(long)]
    pub dry_run: bool,
    /// The old region is known to be down (an alert, `strait status`): fail over unplanned at
    /// once instead of waiting up to ~4 s for it to answer.
    #[arg(long)]
    pub source_down: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct FailbackArgs {
    pub config: PathBuf,
    /// The region active now (where consumers run since the failover).
    #[arg(long)]
    pub from: String,
    /// The region to return to.
    #[arg(long)]
    pub to: String,
    /// Only the consumer groups matching this regex.
    #[arg(long)]
    pub groups: Option<String>,
    /// How long to wait for producers to stop and replication to catch up (e.g. 60s, 5m).
    #[arg(long)]
    pub max_wait: Option<String>,
    /// Replicate records that reached the old region but never left it.
    #[arg(long)]
    pub salvage: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ClientsArgs {
    pub config: PathBuf,
    /// The consumer group.
    #[arg(long)]
    pub group: String,
    /// The pair of clusters, when CONFIG has more than two (e.g. us-east,us-west).
    #[arg(long, value_delimiter = ',')]
    pub pair: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct DrillArgs {
    /// MM2 properties file whose clusters and flow settings the drill uses (the failure is
    /// simulated); not with --sandbox.
    pub config: Option<PathBuf>,
    /// Run the drill on two sandbox regions started for it, with an active-passive config of
    /// its own and a real failure (the fault proxy cuts the primary).
    #[arg(long)]
    pub sandbox: bool,
    /// The region to fail (with --sandbox: default us-east).
    #[arg(long)]
    pub primary: Option<String>,
    /// The region that takes over (with --sandbox: default us-west).
    #[arg(long)]
    pub secondary: Option<String>,
    /// From the first record written to stopping the producer (e.g. 60s, 5m; a bare number is
    /// seconds). Default 60s.
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// Records per second the drill producer writes. Default 200.
    #[arg(long, value_name = "N")]
    pub rate: Option<u64>,
    /// When to fail the primary, from the first record written. Default: a third of --duration.
    #[arg(long, value_name = "DUR")]
    pub fail_after: Option<String>,
    /// Fail the drill when more records than this are lost.
    #[arg(long, value_name = "N")]
    pub rpo_budget: Option<u64>,
    /// Fail the drill when the outage (failure to first record consumed on the secondary) is
    /// longer than this (e.g. 30s, 500ms).
    #[arg(long, value_name = "DUR")]
    pub rto_budget: Option<String>,
    /// Directory for report.json, report.md and report.html. Default:
    /// ./strait-drill-<UTC timestamp>.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Drill with this topic on the primary instead of a new strait-drill-<id> (created when
    /// missing, deleted afterwards only if the drill created it).
    #[arg(long, alias = "topics", value_name = "TOPIC")]
    pub topic: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct SandboxArgs {
    /// Region names, one cluster each.
    #[arg(long, value_delimiter = ',', default_value = "us-east,us-west")]
    pub regions: Vec<String>,
    /// Bootstrap port of the first region; the others follow (base, base+1, ...).
    #[arg(long, default_value_t = 19092)]
    pub base_port: u16,
    /// Port of the HTTP fault-control endpoint (default: base port + 100).
    #[arg(long)]
    pub control_port: Option<u16>,
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Serve the dashboard here.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Bootstrap port of us-east; us-west is the next one.
    #[arg(long, default_value_t = 19092)]
    pub base_port: u16,
    /// Port of the HTTP fault-control endpoint (default: base port + 100).
    #[arg(long)]
    pub control_port: Option<u16>,
}
