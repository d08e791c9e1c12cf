//! `strait clients CONFIG --group G [--pair A,B] [--json]`: where a consumer group should connect
//! now (the active region's bootstrap servers and the topics to subscribe to there), the same
//! document as `GET /api/clients/{group}` on `strait run --http`. Exit code: 0, 1 when no cluster
//! of the pair answered, 2 for a mistake in the call.

use std::process::ExitCode;

use crate::cli::ClientsArgs;
use crate::commands::UsageError;
use strait::config::Config;
use strait::failover::clients::{self, ClientSettings, ClientsError, Decision};

pub(super) async fn run(args: ClientsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let usage = |e: ClientsError| -> anyhow::Error {
        if e.is_bad_request() {
            UsageError(e.to_string()).into()
        } else {
            e.into()
        }
    };
    // Mistakes first, before waiting on any cluster.
    clients::check_group(&args.group).map_err(usage)?;
    clients::resolve_pair(&config, &args.pair).map_err(usage)?;

    let pb = super::spinner(&format!(
        "reading the active region for group {}",
        args.group
    ));
    let answer =
        clients::settings(&config, &args.group, &args.pair, clients::DEFAULT_TIMEOUT).await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let s = answer.map_err(usage)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", to_text(&s));
    }
    Ok(ExitCode::SUCCESS)
}

fn to_text(s: &ClientSettings) -> String {
    let rows = vec![vec![
        s.group.clone(),
        s.active_region.clone(),
        s.bootstrap_servers.clone(),
        if s.topics.is_empty() {
            "-".to_string()
        } else {
            s.topics.join(",")
        },
        s.version.to_string(),
    ]];
    let mut o = super::table(
        &[
            "GROUP",
            "ACTIVE REGION",
            "BOOTSTRAP SERVERS",
            "TOPICS",
            "VERSION",
        ],
        &rows,
    );
    o += &match (s.decision, s.changed_at_ms) {
        (Decision::Record, Some(ms)) => {
            format!("\n{} (recorded {})\n", s.reason, utc(ms))
        }
        _ => format!("\n{}\n", s.reason),
    };
    o += &format!("pair: {}, {}\n", s.pair[0], s.pair[1]);
    for w in &s.warnings {
        o += &format!("note: {w}\n");
    }
    o
}

/// `2025-05-01 12:00:00 UTC` from epoch milliseconds.
fn utc(ms: i64) -> String {
    let (y, m, d, t) = strait::text::utc_parts(ms);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
    }
}
