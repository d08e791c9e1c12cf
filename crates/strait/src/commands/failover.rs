//! `strait failover CONFIG --from A --to B [--groups REGEX] [--max-wait DUR] [--dry-run] [--source-down] [--json]`:
//! move consumers from A to B and report RTO, RPO and what each group re-reads. Exit 0 when every
//! group moved, 1 when something did not (the report says what) or a precondition failed
//! (nothing changed), 2 for a usage mistake.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::FailoverArgs;
use crate::commands::UsageError;
use strait::config::Config;
use strait::failover::{self, FailoverError, FailoverReport, Options};

pub(super) async fn run(args: FailoverArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let mut opts = options(
        &args.from,
        &args.to,
        args.groups.as_deref(),
        args.max_wait.as_deref(),
    )?;
    opts.dry_run = args.dry_run;
    // As long as `strait run` takes to call a region down: no longer a wait than the watch's.
    opts.probe_timeout = config.region_watch.verdict_within();
    if args.source_down {
        opts.source_down = Some("declared down by --source-down".to_string());
    }
    failover::flow_for(&config, &opts.from, &opts.to)
        .map_err(|e| UsageError(format!("{}: {e}", args.config.display())))?;
    let report = failover::failover(&config, &opts, &|line| eprintln!("strait: {line}")).await;
    finish(report, args.json)
}

/// The options `failover` and `failback` share, checked.
pub(super) fn options(
    from: &str,
    to: &str,
    groups: Option<&str>,
    max_wait: Option<&str>,
) -> Result<Options, UsageError> {
    let mut opts = Options::new(from, to);
    if let Some(w) = max_wait {
        opts.max_wait = parse_duration("--max-wait", w)?;
    }
    if let Some(g) = groups {
        opts.groups = Some(fancy_regex::Regex::new(g).map_err(|e| {
            UsageError(format!(
                "--groups {g:?} is not a valid regular expression: {e}"
            ))
        })?);
    }
    Ok(opts)
}

/// Print the report (table or JSON) and choose the exit code: 0 when everything moved.
pub(super) fn finish(
    report: Result<FailoverReport, FailoverError>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = match report {
        Ok(r) => r,
        Err(FailoverError::Usage(m)) => return Err(UsageError(m).into()),
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A duration as people write it (`90s`, `5m`, `1h 30m`); a bare number is seconds.
pub(super) fn parse_duration(option: &str, text: &str) -> Result<Duration, UsageError> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| {
        UsageError(format!(
            "{option} {text:?} is not a duration ({e}); write e.g. 90s, 5m or 1h"
        ))
    })
}
