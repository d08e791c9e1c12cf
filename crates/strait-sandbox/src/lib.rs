//! Kafka-compatible clusters inside the current process, for tests and for trying strait.
//!
//! Each [`Cluster`] is an embedded [Tansu](https://crates.io/crates/tansu-broker) broker (one broker,
//! `memory://` storage) on a loopback port, behind a [fault proxy](proxy) whose address is the one the
//! broker advertises, so every client connection can be cut, black-holed or slowed down.
//!
//! **Memory storage is lost when a cluster stops**: the sandbox is for tests and demos, never for
//! data you want to keep.
//!
//! Clusters run on the caller's tokio runtime (multi-threaded recommended):
//! ```no_run
//! # async fn demo() -> Result<(), strait_sandbox::SandboxError> {
//! let sandbox = strait_sandbox::Sandbox::start(&["us-east", "us-west"]).await?;
//! let east = sandbox.cluster("us-east").unwrap();
//! println!("{}", east.bootstrap_servers());
//! east.cut(); // us-east is down
//! east.heal();
//! # Ok(()) }
//! ```

pub mod cluster;
pub mod control;
pub mod kafka;
pub mod proxy;

#[cfg(test)]
mod coordinator_fix;

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use cluster::Cluster;
pub use control::ControlServer;
pub use kafka::{Access, JvmProfile, KafkaSpec, Security};
pub use proxy::{FaultState, Faults, Mode};

/// Why a sandbox could not start. Each message is one sentence naming the cluster and the address.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The port asked for a cluster is taken (or, from a base port, the cluster's port would be
    /// past 65535).
    #[error("port {port} is already in use (wanted for sandbox cluster {cluster}); choose another with --base-port")]
    PortInUse {
        /// The port that was wanted (65535 when the range ran past it).
        port: u16,
        /// The cluster it was for.
        cluster: String,
    },
    /// Listening on a loopback address for a cluster (its proxy, or a port for its broker)
    /// failed for another reason than the port being taken.
    #[error("cannot listen on {addr} for sandbox cluster {cluster}: {source}")]
    Bind {
        /// The address that could not be bound (port 0: any free port).
        addr: SocketAddr,
        /// The cluster it was for.
        cluster: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The embedded Tansu broker did not start on any of several fresh ports, or the thread
    /// starting Apache Kafka nodes failed.
    #[error("the embedded broker of sandbox cluster {cluster} did not start: {reason}")]
    Broker {
        /// The cluster whose broker did not start.
        cluster: String,
        /// The last attempt's error.
        reason: String,
    },
    #[error("invalid sandbox cluster name {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    /// A cluster name is empty, longer than 64 characters, or has characters other than ASCII
    /// letters, digits, `-` and `_` (names become MM2 aliases and client ids).
    InvalidName(String),
    #[error("sandbox cluster name {0:?} is given twice")]
    /// The same cluster name is given twice.
    DuplicateName(String),
    /// An Apache Kafka cluster's nodes did not start; `source` says what to install or fix.
    #[error("Apache Kafka cluster {cluster} did not start: {source}")]
    Kafka {
        /// The cluster that did not start.
        cluster: String,
        /// Why (no Java or Maven, a node that exited or was not ready in time, ...).
        source: kafka::KafkaError,
    },
    /// No cluster name was given.
    #[error("a sandbox needs at least one region")]
    NoRegions,
    /// The port asked for the fault-control endpoint is taken.
    #[error("port {port} is already in use (wanted for the sandbox fault-control endpoint); choose another with --control-port")]
    ControlPortInUse {
        /// The port that was wanted.
        port: u16,
    },
    /// Listening for the fault-control endpoint failed for another reason than the port being
    /// taken.
    #[error("cannot listen on {addr} for the sandbox fault-control endpoint: {source}")]
    ControlBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

fn check_names(names: &[&str]) -> Result<(), SandboxError> {
    if names.is_empty() {
        return Err(SandboxError::NoRegions);
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(SandboxError::DuplicateName(n.to_string()));
        }
    }
    Ok(())
}

/// Several named clusters, typically one per region.
#[derive(Debug)]
pub struct Sandbox {
    clusters: Vec<Cluster>,
}

impl Sandbox {
    /// Start one cluster per name, each on a free loopback port.
    pub async fn start(names: &[&str]) -> Result<Self, SandboxError> {
        Self::start_with(names, None).await
    }

    /// Start one Apache Kafka cluster per name (see [`kafka`]), all at once.
    pub async fn start_kafka(names: &[&str], spec: &KafkaSpec) -> Result<Self, SandboxError> {
        check_names(names)?;
        let clusters =
            futures::future::try_join_all(names.iter().map(|n| Cluster::start_kafka(*n, spec)))
                .await?;
        Ok(Self { clusters })
    }

    /// Start one cluster per name, the i-th on `base_port + i`.
    pub async fn start_on(names: &[&str], base_port: u16) -> Result<Self, SandboxError> {
        Self::start_with(names, Some(base_port)).await
    }

    async fn start_with(names: &[&str], base_port: Option<u16>) -> Result<Self, SandboxError> {
        check_names(names)?;
        // Started one after another: each takes a few milliseconds, and an error (a busy port)
        // then stops the rest; clusters already started are dropped, which stops them.
        let mut clusters = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let cluster = match base_port {
                Some(base) => {
                    let port = base.checked_add(i as u16).ok_or(SandboxError::PortInUse {
                        port: u16::MAX,
                        cluster: name.to_string(),
                    })?;
                    Cluster::start_on_port(*name, port).await?
                }
                None => Cluster::start(*name).await?,
            };
            clusters.push(cluster);
        }
        Ok(Self { clusters })
    }

    /// The clusters, in the order their names were given.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// The cluster named `name`, if there is one.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    /// A MirrorMaker 2 properties snippet naming these clusters, ready to extend with flows. A
    /// secure cluster's clients log in as [`kafka::ADMIN`] and trust the run's CA (PEM).
    pub fn mm2_properties(&self) -> String {
        let names: Vec<&str> = self.clusters.iter().map(Cluster::name).collect();
        let mut out = format!("clusters = {}\n", names.join(", "));
        for c in &self.clusters {
            out.push_str(&format!(
                "{}.bootstrap.servers = {}\n",
                c.name(),
                c.bootstrap_servers()
            ));
            for (k, v) in c
                .access()
                .mm2(kafka::ADMIN, kafka::pki::StoreForm::Pem, false)
            {
                out.push_str(&format!("{}.{k} = {v}\n", c.name()));
            }
        }
        out
    }

    /// Serve the fault controls of every cluster over HTTP on `addr` (port 0: a free one).
    pub async fn serve_control(&self, addr: SocketAddr) -> Result<ControlServer, SandboxError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                SandboxError::ControlPortInUse { port: addr.port() }
            } else {
                SandboxError::ControlBind { addr, source: e }
            }
        })?;
        let regions: BTreeMap<String, control::Region> = self
            .clusters
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    control::Region {
                        bootstrap: c.bootstrap_servers(),
                        faults: c.faults().clone(),
                    },
                )
            })
            .collect();
        ControlServer::start(listener, regions)
            .map_err(|e| SandboxError::ControlBind { addr, source: e })
    }

    /// Stop every cluster; their data is lost.
    pub async fn shutdown(self) {
        for c in self.clusters {
            c.shutdown().await;
        }
    }
}
