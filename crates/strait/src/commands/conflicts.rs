//! `strait conflicts CONFIG [--region R] [--topic T] [--since DURATION|RFC3339] [--json]`: the
//! conflicts recorded in `strait.conflicts` on each region, one line each (or a JSON array of
//! the records as written), oldest first. Exit code 0; 1 when a cluster cannot be read.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::ConflictsArgs;
use crate::commands::UsageError;
use strait::config::Config;
use strait::conflicts::list::{self, Filter};

pub(super) async fn run(args: ConflictsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(UsageError(format!(
            "--timeout must be a positive number of seconds, not {}",
            args.timeout
        ))
        .into());
    }
    let since_ms = match &args.since {
        None => None,
        Some(s) => Some(since(s, SystemTime::now()).map_err(UsageError)?),
    };
    let filter = Filter {
        topic: args.topic.clone(),
        since_ms,
    };
    let pb = super::spinner("reading strait.conflicts on the clusters");
    let listed = list::list(
        &config,
        args.region.as_deref(),
        &filter,
        Duration::from_secs_f64(args.timeout),
    )
    .await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let listed = listed.map_err(|e| match e {
        list::ListError::NotARegion(..) | list::ListError::NoRules => {
            anyhow::Error::from(UsageError(e.to_string()))
        }
        other => other.into(),
    })?;
    if args.json {
        let all: Vec<serde_json::Value> = listed.iter().map(|l| l.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if listed.is_empty() {
        println!("no conflicts recorded");
    } else {
        for l in &listed {
            println!("{}", l.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: a duration before `now` (10m, 2h 30m) or an RFC 3339 time, in ms since the epoch.
fn since(text: &str, now: SystemTime) -> Result<i64, String> {
    let at = match humantime::parse_duration(text.trim()) {
        Ok(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
            format!("--since must be a duration (10m, 2h) or an RFC 3339 time (2026-11-27T10:00:00Z), not `{text}`")
        })?,
    };
    Ok(at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(since("10m", now), Ok(10_000_000 - 600_000));
        assert_eq!(since("1970-01-01T00:00:05Z", now), Ok(5_000));
        let e = since("yesterday", now).unwrap_err();
        assert!(e.contains("not `yesterday`"), "{e}");
    }
}
