//! `strait run --http ADDR`: `/metrics` (Prometheus), `/api/status` (the `strait status --json`
//! document), `/api/history` (15 minutes of lag per flow), `/api/clients/{group}` (where a group
//! should connect now, read from the clusters on each request), `/healthz`, `/readyz`, and the
//! dashboard at `/`. The lag model is collected from the clusters every few seconds in the
//! background; requests only read the latest copy.

pub(crate) mod history;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::stop::{pause, CancellationToken};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tracing::{info, warn};

use crate::checkpoint::CheckpointStats;
use crate::config::Config;
use crate::monitor::{self, Status, Verdict};
use crate::replicate::FlowStats;
use history::History;
use metrics::Metrics;

/// The running jobs' counters, by (source, target).
#[derive(Default)]
pub struct Observed {
    /// Each replication flow's counters (records, bytes, offset syncs, assigned partitions,
    /// latency), as (source alias, target alias, stats).
    pub flows: Vec<(String, String, Arc<FlowStats>)>,
    /// Each checkpoint job's counters (checkpoints emitted, group offsets synced), by
    /// (source, target).
    pub checkpoints: Vec<(String, String, Arc<CheckpointStats>)>,
    /// How many heartbeats each flow's heartbeat job has emitted, by (source, target).
    pub heartbeats: Vec<(String, String, Arc<AtomicU64>)>,
    /// Whether each cluster the flows touch answers (see [`crate::reach`]).
    pub clusters: Vec<crate::reach::Watched>,
    /// The conflicts recorded by this process's jobs (`strait_conflicts_total`).
    pub conflicts: crate::conflicts::tally::ConflictTally,
    /// The clock skew between regions this process measures (`strait_clock_skew_seconds`).
    pub clock: crate::conflicts::clock::ClockBoard,
    /// Each conflict detector's counters, by region.
    pub detectors: Vec<(String, Arc<crate::conflicts::detect::DetectStats>)>,
}

impl Observed {
    /// `status` as this process sees it too: each cluster's reachability, and for each flow it
    /// runs what the flow is doing and what holds it. A flow whose cluster is down, that
    /// failed, or that meets an error that does not heal by itself is BROKEN, with the reason.
    pub fn complete(&self, status: &mut Status) {
        status.clusters = self
            .clusters
            .iter()
            .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        for f in &mut status.flows {
            for c in &status.clusters {
                let touches = c.cluster == f.source || c.cluster == f.target;
                if touches && c.reach == crate::reach::Reach::Down {
                    // The probe's reason replaces the collection's timeouts for that cluster.
                    let prefix = format!("cluster {} (", c.cluster);
                    f.reasons.retain(|r| !r.starts_with(&prefix));
                    f.reasons.push(c.down_reason());
                    f.verdict = Verdict::Broken;
                }
            }
            let Some((_, _, stats)) = self
                .flows
                .iter()
                .find(|(s, t, _)| *s == f.source && *t == f.target)
            else {
                continue;
            };
            let process = stats.health.view(
                stats
                    .assigned_partitions
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
            let why = process
                .reason
                .clone()
                .or_else(|| process.problem.as_ref().map(|p| p.message.clone()));
            if process.is_broken() {
                f.verdict = Verdict::Broken;
                f.reasons.extend(why);
            } else if process.condition == crate::replicate::Condition::Waiting {
                // Held up by what heals by itself (a cluster away): behind, not broken.
                f.verdict = f.verdict.max(Verdict::Lagging);
                f.reasons.extend(why);
            }
            f.process = Some(process);
        }
        // This process's own measurement is fresher than what `strait.clock` held.
        let skews = self.clock.skews();
        if !skews.is_empty() {
            status.clock_skews = skews;
        }
        status.verdict = Status::worst(&status.flows);
    }
}

/// What the HTTP handlers share: the latest lag model (none until the first collection
/// ends), its recent history, the Prometheus metrics and the running jobs' counters.
pub struct AppState {
    status: RwLock<Option<Status>>,
    history: Mutex<History>,
    metrics: Metrics,
    observed: Observed,
}

/// How often the lag model is collected.
pub const COLLECT_EVERY: Duration = Duration::from_secs(5);

/// The dashboard: one self-contained page (no CDN), embedded in the binary.
const DASHBOARD: &str = include_str!("dashboard.html");

/// Bind `addr`. Done before anything starts, so a bad or busy address fails at once.
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener, String> {
    // `:8080` means every interface; names such as `localhost:8080` are resolved.
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    let mut candidates = tokio::net::lookup_host(full.as_str())
        .await
        .map_err(|_| format!("--http {addr:?} is not an address such as 127.0.0.1:8080"))?;
    let sock: SocketAddr = candidates
        .next()
        .ok_or_else(|| format!("--http {addr:?} resolves to no address"))?;
    tokio::net::TcpListener::bind(sock)
        .await
        .map_err(|e| format!("--http {addr}: cannot listen there: {e}"))
}

/// Serve on `listener` until `cancel` fires.
pub fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    observed: Observed,
    opts: monitor::Options,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let sock = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let state = Arc::new(AppState {
        status: RwLock::new(None),
        history: Mutex::new(History::default()),
        metrics: Metrics::new(),
        observed,
    });
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/metrics", get(metrics_text))
        .route("/api/status", get(api_status))
        .route("/api/history", get(api_history))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state.clone())
        .merge(
            Router::new()
                .route("/api/clients/{group}", get(api_clients))
                .with_state(Arc::new(config.clone())),
        )
        .merge(
            Router::new()
                .route("/api/conflicts", get(api_conflicts))
                .with_state(Arc::new((config.clone(), state.observed.conflicts.clone()))),
        )
        .merge(
            Router::new()
                .route("/api/views", get(api_views))
                .with_state(Arc::new(config.clone())),
        );
    info!(address = %sock, "serving /metrics, /api/status and the dashboard");
    let collector = {
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let t = Instant::now();
                // What this process's flows know the target holds, fresher than their commits.
                let mut opts = opts.clone();
                let flows: Vec<(String, Arc<FlowStats>)> = state
                    .observed
                    .flows
                    .iter()
                    .map(|(s, t, stats)| (crate::config::flow_name(s, t), stats.clone()))
                    .collect();
                opts.delivered = Some(monitor::DeliveredBy(Arc::new(move |name: &str| {
                    let (_, stats) = flows.iter().find(|(n, _)| n == name)?;
                    let positions = stats
                        .delivered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    Some(monitor::Delivered {
                        at_ms: crate::heartbeat::now_ms(),
                        positions,
                    })
                })));
                let Some(s) =
                    crate::stop::or_cancel(&cancel, monitor::collect(&config, &opts)).await
                else {
                    break;
                };
                let mut s = s;
                state.observed.complete(&mut s);
                state.metrics.update_status(&s, t.elapsed().as_secs_f64());
                state.history.lock().expect("history lock").record(&s);
                *state.status.write().expect("status lock") = Some(s);
                if !pause(&cancel, COLLECT_EVERY).await {
                    break;
                }
            }
        })
    };
    tokio::spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(e) = server.await {
            warn!(error = %e, "the HTTP server stopped");
        }
        collector.abort();
    })
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&s.observed),
    )
        .into_response()
}

async fn api_status(State(s): State<Arc<AppState>>) -> Response {
    match s.status.read().expect("status lock").clone() {
        Some(st) => Json(st).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": "the first lag collection has not finished yet" })),
        )
            .into_response(),
    }
}

/// `GET /api/clients/{group}[?pair=A,B]`: the `strait clients --json` document, with an `ETag`
/// (304 for a matching `If-None-Match`); 400 for a bad group or pair, 503 when no cluster answers.
async fn api_clients(
    State(config): State<Arc<Config>>,
    axum::extract::Path(group): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    use crate::failover::clients;
    let pair: Vec<String> = query
        .get("pair")
        .map(|p| p.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let answer = clients::settings(&config, &group, &pair, clients::DEFAULT_TIMEOUT).await;
    let error = |code: StatusCode, e: String| {
        (code, Json(serde_json::json!({ "error": e }))).into_response()
    };
    match answer {
        Ok(s) => {
            let etag = s.etag();
            let matches = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
            let hs = [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, "no-cache".into()),
            ];
            if matches {
                (StatusCode::NOT_MODIFIED, hs).into_response()
            } else {
                (hs, Json(s)).into_response()
            }
        }
        Err(e) if e.is_bad_request() => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// How many of the latest conflicts `/api/conflicts` shows.
const LATEST_CONFLICTS: usize = 20;

/// `GET /api/conflicts`: whether conflict rules are set, this process's counts
/// (`strait_conflicts_total`), and the latest conflicts recorded in every region (read from
/// `strait.conflicts`; `error` says why not, when a cluster did not answer).
async fn api_conflicts(
    State(s): State<Arc<(Config, crate::conflicts::tally::ConflictTally)>>,
) -> Response {
    let (config, tally) = &*s;
    let enabled = !config.conflicts.rules.is_empty();
    let counts: Vec<serde_json::Value> = tally
        .counts()
        .into_iter()
        .map(|(topic, strategy, outcome, count)| {
            serde_json::json!({ "topic": topic, "strategy": strategy, "outcome": outcome, "count": count })
        })
        .collect();
    let (latest, error) = if enabled {
        match crate::conflicts::list::list(
            config,
            None,
            &Default::default(),
            Duration::from_secs(3),
        )
        .await
        {
            Ok(all) => {
                let skip = all.len().saturating_sub(LATEST_CONFLICTS);
                (all[skip..].iter().map(|l| l.to_json()).collect(), None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        }
    } else {
        (Vec::new(), None)
    };
    Json(serde_json::json!({
        "enabled": enabled,
        "counts": counts,
        "latest": latest,
        "error": error,
    }))
    .into_response()
}

/// How many of each derived topic's newest records `/api/views` shows.
const LATEST_DERIVED: usize = 8;

/// `GET /api/views`: the resolved views and merged streams in every conflict region, each with
/// the records written to it and its newest records (`enabled`, `topics`, `error`).
async fn api_views(State(config): State<Arc<Config>>) -> Response {
    let enabled = !config.conflicts.rules.is_empty();
    let (topics, error) = if enabled {
        match crate::conflicts::derived::derived(&config, LATEST_DERIVED, Duration::from_secs(3))
            .await
        {
            Ok(t) => (t, None),
            Err(e) => (Vec::new(), Some(e)),
        }
    } else {
        (Vec::new(), None)
    };
    Json(serde_json::json!({ "enabled": enabled, "topics": topics, "error": error }))
        .into_response()
}

async fn api_history(State(s): State<Arc<AppState>>) -> Response {
    let flows = s.history.lock().expect("history lock").flows();
    Json(serde_json::json!({ "window_ms": history::WINDOW_MS, "flows": flows })).into_response()
}

/// Ready when the lag model has been collected and no flow is BROKEN.
async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let st = s.status.read().expect("status lock").clone();
    match st {
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: collecting\n").into_response(),
        Some(st) => {
            let broken: Vec<String> = st
                .flows
                .iter()
                .filter(|f| f.verdict == Verdict::Broken)
                .map(|f| format!("{}->{}: {}", f.source, f.target, f.reasons.join("; ")))
                .collect();
            if broken.is_empty() {
                (StatusCode::OK, "ready\n".to_string()).into_response()
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready:\n{}\n", broken.join("\n")),
                )
                    .into_response()
            }
        }
    }
}
