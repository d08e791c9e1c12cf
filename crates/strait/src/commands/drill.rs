//! `strait drill CONFIG --primary A --secondary B [...]` and `strait drill --sandbox [...]`: a
//! complete DR drill (see `strait::drill`), a short summary on stdout, the report in
//! `--report`. Exit 0 when the drill passed, 1 when it failed (a budget exceeded, recovery not
//! shown, records lost after the failover) or could not run, 2 for a usage mistake.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use strait::config::Config;
use strait::drill::report::{fmt_ms, fmt_utc};
use strait::drill::DrillReport;
use strait::drill::{self, DrillError, DrillOptions, Environment};
use strait::heartbeat::now_ms;

use super::failover::parse_duration;
use super::UsageError;
use crate::cli::DrillArgs;

const DEFAULT_DURATION: Duration = Duration::from_secs(60);
const DEFAULT_RATE: u64 = 200;
const MAX_RATE: u64 = 100_000;

pub(super) async fn run(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let (env, opts) = options(args)?;
    let progress: drill::Progress = Arc::new(|line: &str| eprintln!("strait drill: {line}"));
    let outcome = match drill::run(env, opts, progress).await {
        Ok(o) => o,
        Err(DrillError::Usage(m)) => return Err(UsageError(m).into()),
        Err(e) => return Err(e.into()),
    };
    print!("{}", summary(&outcome.report, &outcome.report_dir));
    Ok(if outcome.report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The drill asked for, with defaults filled in; every mistake is one sentence (exit 2).
fn options(args: DrillArgs) -> Result<(Environment, DrillOptions), UsageError> {
    if cfg!(not(feature = "sandbox")) && args.sandbox {
        return Err(UsageError(drill::NO_SANDBOX.into()));
    }
    let env =
        match (&args.config, args.sandbox) {
            (None, false) => return Err(UsageError(
                "give CONFIG (an MM2 properties file with --primary and --secondary) or --sandbox"
                    .into(),
            )),
            (Some(path), true) => {
                return Err(UsageError(format!(
                    "give CONFIG ({}) or --sandbox, not both: --sandbox writes a config of its own",
                    path.display()
                )))
            }
            (Some(path), false) => Environment::Config(Box::new(
                Config::load(path).map_err(|e| UsageError(e.to_string()))?,
            )),
            (None, true) => Environment::Sandbox,
        };
    let (primary, secondary) = match (&env, args.primary, args.secondary) {
        (Environment::Config(_), Some(a), Some(b)) => (a, b),
        (Environment::Config(_), _, _) => {
            return Err(UsageError(
                "with CONFIG, name the region to fail with --primary and the one to take over with --secondary".into(),
            ))
        }
        (Environment::Sandbox, a, b) => (
            a.unwrap_or_else(|| "us-east".into()),
            b.unwrap_or_else(|| "us-west".into()),
        ),
    };
    let duration = match &args.duration {
        Some(d) => parse_duration("--duration", d)?,
        None => DEFAULT_DURATION,
    };
    let fail_after = match &args.fail_after {
        Some(d) => parse_duration("--fail-after", d)?,
        None => duration / 3,
    };
    let rate = args.rate.unwrap_or(DEFAULT_RATE);
    if rate > MAX_RATE {
        return Err(UsageError(format!(
            "--rate {rate} is more than a drill needs; use at most {MAX_RATE} records per second"
        )));
    }
    let rto_budget = args
        .rto_budget
        .as_deref()
        .map(|d| parse_duration("--rto-budget", d))
        .transpose()?;
    let report_dir = args.report.unwrap_or_else(default_report_dir);
    let opts = DrillOptions {
        primary,
        secondary,
        duration,
        rate,
        fail_after,
        rpo_budget_records: args.rpo_budget,
        rto_budget,
        report_dir,
        topic: args.topic,
    };
    drill::check(&env, &opts).map_err(|e| UsageError(e.to_string()))?;
    Ok((env, opts))
}

/// `./strait-drill-20240501-120000` (UTC).
fn default_report_dir() -> PathBuf {
    let t: String = fmt_utc(now_ms())
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect();
    PathBuf::from(format!("strait-drill-{t}"))
}

/// What a person (or a pager) needs from the drill at a glance.
fn summary(r: &DrillReport, dir: &std::path::Path) -> String {
    let s = &r.sequence;
    let opt = |v: Option<i64>| v.map_or_else(|| "not measured".to_string(), fmt_ms);
    let budget = |name: &str| {
        r.budgets
            .iter()
            .find(|b| b.name == name)
            .map(|b| {
                format!(
                    " (budget {}: {})",
                    match b.unit {
                        drill::BudgetUnit::Milliseconds => fmt_ms(b.limit as i64),
                        drill::BudgetUnit::Records => format!("{} records", b.limit),
                    },
                    if b.passed { "pass" } else { "FAIL" }
                )
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "DR drill {}: {} -> {}\n",
        r.verdict(),
        r.settings.primary,
        r.settings.secondary
    );
    for f in &r.failures {
        out.push_str(&format!("  ! {f}\n"));
    }
    out.push_str(&format!(
        "  RTO        {}{}  (failure to first record consumed on {})\n",
        opt(r.durations.rto_ms),
        budget("rto"),
        r.settings.secondary
    ));
    out.push_str(&format!(
        "  detection  {}   failover {}\n",
        opt(r.durations.detection_ms),
        opt(r.durations.failover_ms)
    ));
    let check = r
        .estimate_check()
        .map_or_else(String::new, |c| format!(" ({})", c.describe()));
    let estimate = match r.strait_estimate.as_ref() {
        Some(e) => match (e.at_least, e.records) {
            (Some(lo), Some(n)) if lo < n => {
                format!("; strait estimated {lo} to {n}{check}")
            }
            (_, Some(n)) if e.source.contains("upper bound") => {
                format!("; strait estimated at most {n}{check}")
            }
            (_, Some(n)) => format!("; strait estimated {n}{check}"),
            (_, None) => String::new(),
        },
        None => String::new(),
    };
    out.push_str(&format!(
        "  RPO        {} records, {}{}{}\n",
        r.rpo_records,
        fmt_ms((r.rpo_seconds * 1000.0).round() as i64),
        budget("rpo"),
        estimate
    ));
    out.push_str(&format!(
        "  records    {} produced, {} acknowledged, {} lost, {} re-delivered ({} extra deliveries), {} gaps\n",
        r.counts.produced,
        s.acked,
        s.lost_count,
        s.redelivered_records,
        s.redeliveries,
        s.gaps.len()
    ));
    out.push_str(&format!(
        "  report     {}  (also report.md, report.json)\n",
        dir.join("report.html").display()
    ));
    out
}
