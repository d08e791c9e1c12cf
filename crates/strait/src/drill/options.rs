//! What a drill is asked to do, and the checks made before anything starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::DrillError;
use super::report::DrillReport;
use crate::config::Config;
use crate::failover::execute::flow_for;
use crate::failover::FailoverError;

/// What the drill is asked to do.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// The region that is failed.
    pub primary: String,
    /// The region that takes over.
    pub secondary: String,
    /// From the first record written to stopping the producer (the drill may run longer: see
    /// [`super::MIN_ON_SECONDARY`]).
    pub duration: Duration,
    /// Records per second.
    pub rate: u64,
    /// From the first record written to failing the primary.
    pub fail_after: Duration,
    /// The drill fails when more records than this were lost.
    pub rpo_budget_records: Option<u64>,
    /// The drill fails when recovery took longer than this.
    pub rto_budget: Option<Duration>,
    /// Where report.json, report.md and report.html go (created when missing).
    pub report_dir: PathBuf,
    /// Use this topic on the primary instead of a new `strait-drill-<id>` (created when missing;
    /// deleted afterwards only when the drill created it).
    pub topic: Option<String>,
}

/// Where the drill runs.
pub enum Environment {
    /// Two sandbox regions started for the drill, named after `primary` and `secondary`.
    Sandbox,
    /// The clusters and flow settings of a configuration; the failure is simulated.
    Config(Box<Config>),
}

/// One line of progress for a person watching.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// A drill that ran to its report.
#[derive(Debug)]
pub struct DrillOutcome {
    /// What happened, as written to report.json.
    pub report: DrillReport,
    /// The directory the report was written to.
    pub report_dir: PathBuf,
}

/// Check what can be checked before anything starts.
pub fn check(env: &Environment, opts: &DrillOptions) -> Result<(), DrillError> {
    let usage = |m: String| Err(DrillError::Usage(m));
    if opts.primary == opts.secondary {
        return usage(format!(
            "--primary and --secondary are both {}; name two different regions",
            opts.primary
        ));
    }
    if opts.rate == 0 {
        return usage("--rate must be at least 1 record per second".into());
    }
    if opts.duration.is_zero() {
        return usage("--duration must be longer than 0 s".into());
    }
    if opts.fail_after.is_zero() || opts.fail_after >= opts.duration {
        return usage(format!(
            "--fail-after ({}) must be longer than 0 s and shorter than --duration ({})",
            humantime::format_duration(opts.fail_after),
            humantime::format_duration(opts.duration)
        ));
    }
    if let Some(t) = &opts.topic {
        if !valid_topic_name(t) {
            return usage(format!(
                "--topic {t:?} is not a Kafka topic name (1 to 249 letters, digits, '.', '_' or '-')"
            ));
        }
    }
    match env {
        Environment::Sandbox => {
            for name in [&opts.primary, &opts.secondary] {
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return usage(format!(
                        "{name:?} cannot name a sandbox region: use 1 to 64 letters, digits, '-' or '_'"
                    ));
                }
            }
        }
        Environment::Config(config) => {
            flow_for(config, &opts.primary, &opts.secondary).map_err(|e| match e {
                FailoverError::Usage(m) | FailoverError::Aborted(m) => DrillError::Usage(format!(
                    "{}: {}",
                    config.file,
                    m.replace("--from and --to", "--primary and --secondary")
                )),
            })?;
        }
    }
    Ok(())
}

fn valid_topic_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DrillOptions {
        DrillOptions {
            primary: "us-east".into(),
            secondary: "us-west".into(),
            duration: Duration::from_secs(60),
            rate: 200,
            fail_after: Duration::from_secs(20),
            rpo_budget_records: None,
            rto_budget: None,
            report_dir: PathBuf::from("x"),
            topic: None,
        }
    }

    #[test]
    fn options_are_checked_before_anything_starts() {
        let env = Environment::Sandbox;
        assert!(check(&env, &opts()).is_ok());
        let mut o = opts();
        o.fail_after = o.duration;
        let e = check(&env, &o).unwrap_err().to_string();
        assert!(e.contains("shorter than --duration"), "{e}");
        let mut o = opts();
        o.secondary = o.primary.clone();
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("both us-east"));
        let mut o = opts();
        o.rate = 0;
        assert!(check(&env, &o).is_err());
        let mut o = opts();
        o.topic = Some("no spaces".into());
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("not a Kafka topic name"));
        let mut o = opts();
        o.primary = "us east".into();
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("sandbox region"));

        let c = Config::parse(
            "clusters = a, b\na.bootstrap.servers = x:1\nb.bootstrap.servers = y:1\na->b.enabled = true\n",
            "t.properties",
        )
        .unwrap();
        let env = Environment::Config(Box::new(c));
        let mut o = opts();
        (o.primary, o.secondary) = ("a".into(), "b".into());
        assert!(check(&env, &o).is_ok());
        (o.primary, o.secondary) = ("b".into(), "a".into());
        let e = check(&env, &o).unwrap_err().to_string();
        assert!(
            e.starts_with("t.properties: ") && e.contains("replicates nothing from b to a"),
            "{e}"
        );
        (o.primary, o.secondary) = ("a".into(), "c".into());
        assert!(check(&env, &o)
            .unwrap_err()
            .to_string()
            .contains("\"c\" is not a cluster"));
    }
}
