//! The fault controls over HTTP, so a shell script can cut a region while `strait sandbox` runs:
//!
//! ```text
//! curl -s localhost:19192/regions                         # state of every region
//! curl -s -X POST localhost:19192/regions/us-east/cut     # region down
//! curl -s -X POST localhost:19192/regions/us-east/blackhole
//! curl -s -X POST 'localhost:19192/regions/us-east/delay?ms=50'
//! curl -s -X POST localhost:19192/regions/us-east/heal
//! ```
//! Every answer is the JSON state of the region(s) concerned; an unknown region is a 404.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::proxy::{FaultState, Faults};

/// One region as the control endpoint sees it.
#[derive(Clone, Debug)]
pub struct Region {
    /// The cluster's bootstrap servers (its proxies' addresses), shown in its state.
    pub bootstrap: String,
    /// The cluster's fault controls, which the endpoint's actions set.
    pub faults: Faults,
}

#[derive(Serialize)]
struct RegionState {
    name: String,
    bootstrap: String,
    #[serde(flatten)]
    state: FaultState,
}

type Regions = Arc<BTreeMap<String, Region>>;

/// A running control server; dropping it stops it.
#[derive(Debug)]
pub struct ControlServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Serve the controls of `regions` on `listener`.
    pub fn start(
        listener: TcpListener,
        regions: BTreeMap<String, Region>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/regions", get(list))
            .route("/regions/{name}", get(show))
            .route("/regions/{name}/{action}", post(act))
            .with_state(Arc::new(regions));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }

    /// The address the server listens on (with the port chosen when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:19192`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn state_of(name: &str, r: &Region) -> RegionState {
    RegionState {
        name: name.to_string(),
        bootstrap: r.bootstrap.clone(),
        state: r.faults.state(),
    }
}

async fn list(State(regions): State<Regions>) -> Json<Vec<RegionState>> {
    Json(regions.iter().map(|(n, r)| state_of(n, r)).collect())
}

fn unknown(regions: &Regions, name: &str) -> Response {
    let known: Vec<&str> = regions.keys().map(String::as_str).collect();
    (
        StatusCode::NOT_FOUND,
        format!(
            "no region named {name:?}; regions are {}\n",
            known.join(", ")
        ),
    )
        .into_response()
}

async fn show(State(regions): State<Regions>, Path(name): Path<String>) -> Response {
    match regions.get(&name) {
        Some(r) => Json(state_of(&name, r)).into_response(),
        None => unknown(&regions, &name),
    }
}

#[derive(Deserialize)]
struct DelayQuery {
    ms: Option<u64>,
}

async fn act(
    State(regions): State<Regions>,
    Path((name, action)): Path<(String, String)>,
    Query(q): Query<DelayQuery>,
) -> Response {
    let Some(r) = regions.get(&name) else {
        return unknown(&regions, &name);
    };
    match action.as_str() {
        "cut" => r.faults.cut(),
        "blackhole" => r.faults.blackhole(),
        "heal" => r.faults.heal(),
        "delay" => match q.ms {
            Some(ms) => r.faults.delay(Duration::from_millis(ms)),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    "delay needs ?ms=N (one-way milliseconds; 0 removes it)\n",
                )
                    .into_response()
            }
        },
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}; use cut, blackhole, delay?ms=N or heal\n"),
            )
                .into_response()
        }
    }
    Json(state_of(&name, r)).into_response()
}
