//! One sandbox cluster: an embedded Tansu broker with in-memory storage, or Apache Kafka nodes in
//! JVMs ([`crate::kafka`]), behind a fault proxy per node.
//!
//! A cluster's data lives only as long as the cluster: when a [`Cluster`] is shut down or dropped,
//! every topic, record and committed offset in it is gone.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::debug;
use url::Url;

use crate::kafka::{self, Access, KafkaSpec};
use crate::proxy::{FaultProxy, Faults};
use crate::SandboxError;

/// How often we try to start the broker on a fresh internal port when the one we picked was
/// taken in the meantime by someone else (the port is chosen by binding to port 0 and releasing it,
/// because the broker binds its own listener).
const BROKER_START_ATTEMPTS: usize = 8;
const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running sandbox cluster. Clients connect to [`Cluster::bootstrap_servers`], which is the fault
/// proxy; the broker advertises the same address, so all traffic passes through the proxy.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    /// One per node, all under the same [`Faults`]: a region fails as a whole.
    proxies: Vec<FaultProxy>,
    broker_addr: SocketAddr,
    engine: Engine,
}

/// What serves the cluster behind its proxies.
#[derive(Debug)]
enum Engine {
    Tansu(Tansu),
    Kafka(kafka::Nodes),
}

type TansuBroker = Broker<Controller<StorageContainer>, StorageContainer>;

/// The embedded broker, and the task that listens for it (stopped and started again by
/// [`Cluster::restart_node`]; the broker and its storage stay).
struct Tansu {
    broker: Arc<TansuBroker>,
    listening: JoinHandle<()>,
}

impl std::fmt::Debug for Tansu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tansu").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Start a cluster named `name` on a free loopback port.
    pub async fn start(name: impl Into<String>) -> Result<Self, SandboxError> {
        Self::start_with(name.into(), None).await
    }

    /// Start a cluster whose bootstrap address is `127.0.0.1:port`.
    /// Fails with [`SandboxError::PortInUse`] when that port is taken.
    pub async fn start_on_port(name: impl Into<String>, port: u16) -> Result<Self, SandboxError> {
        Self::start_with(name.into(), Some(port)).await
    }

    async fn start_with(name: String, port: Option<u16>) -> Result<Self, SandboxError> {
        validate_name(&name)?;
        let public = SocketAddr::from((Ipv4Addr::LOCALHOST, port.unwrap_or(0)));
        let listener = TcpListener::bind(public).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                SandboxError::PortInUse {
                    port: public.port(),
                    cluster: name.clone(),
                }
            } else {
                SandboxError::Bind {
                    addr: public,
                    cluster: name.clone(),
                    source: e,
                }
            }
        })?;
        let public = listener.local_addr().map_err(|e| SandboxError::Bind {
            addr: public,
            cluster: name.clone(),
            source: e,
        })?;

        let mut last_error = String::new();
        for attempt in 0..BROKER_START_ATTEMPTS {
            let broker_addr = free_loopback_port().await.map_err(|e| SandboxError::Bind {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                cluster: name.clone(),
                source: e,
            })?;
            match start_broker(&name, broker_addr, public).await {
                Ok(tansu) => {
                    let proxy = FaultProxy::start(listener, broker_addr).map_err(|e| {
                        SandboxError::Bind {
                            addr: public,
                            cluster: name.clone(),
                            source: e,
                        }
                    })?;
                    debug!(cluster = %name, %public, %broker_addr, attempt, "sandbox cluster up");
                    return Ok(Self {
                        name,
                        proxies: vec![proxy],
                        broker_addr,
                        engine: Engine::Tansu(tansu),
                    });
                }
                Err(e) => {
                    debug!(cluster = %name, attempt, error = %e, "embedded broker did not start");
                    last_error = e;
                }
            }
        }
        Err(SandboxError::Broker {
            cluster: name,
            reason: last_error,
        })
    }

    /// Start Apache Kafka nodes for a cluster named `name`, each behind a proxy on a free loopback
    /// port; slow (a JVM per node, seconds), so it runs its blocking part on a blocking thread.
    pub async fn start_kafka(
        name: impl Into<String>,
        spec: &KafkaSpec,
    ) -> Result<Self, SandboxError> {
        let name = name.into();
        validate_name(&name)?;
        let n = usize::from(spec.nodes.max(1));
        let mut listeners = Vec::with_capacity(n);
        for _ in 0..n {
            let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let l = TcpListener::bind(any)
                .await
                .map_err(|e| SandboxError::Bind {
                    addr: any,
                    cluster: name.clone(),
                    source: e,
                })?;
            listeners.push(l);
        }
        let advertised: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let (n2, spec2) = (name.clone(), spec.clone());
        let nodes = tokio::task::spawn_blocking(move || {
            // The nodes' own ports are picked free and released for the JVM to bind; an outgoing
            // connection may take one in between. Then the node exits at once: start again.
            let mut attempt = 1;
            loop {
                match kafka::start_nodes(&n2, &spec2, &advertised) {
                    Err(e) if e.port_taken() && attempt < BROKER_START_ATTEMPTS => {
                        debug!(cluster = %n2, attempt, error = %e, "a port was taken; starting again");
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
        .map_err(|e| SandboxError::Broker {
            cluster: name.clone(),
            reason: e.to_string(),
        })?
        .map_err(|source| SandboxError::Kafka {
            cluster: name.clone(),
            source,
        })?;
        let faults = Faults::new();
        let mut proxies = Vec::with_capacity(n);
        for (l, upstream) in listeners.into_iter().zip(&nodes.external) {
            let addr = l.local_addr().ok();
            proxies.push(
                FaultProxy::start_with(l, *upstream, faults.clone()).map_err(|e| {
                    SandboxError::Bind {
                        addr: addr.unwrap_or(*upstream),
                        cluster: name.clone(),
                        source: e,
                    }
                })?,
            );
        }
        debug!(cluster = %name, nodes = n, "Apache Kafka sandbox cluster up");
        Ok(Self {
            name,
            broker_addr: nodes.external[0],
            proxies,
            engine: Engine::Kafka(nodes),
        })
    }

    /// The cluster's name, which is also its MM2 alias.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The addresses clients use (the fault proxies'), as `host:port[,host:port...]`.
    pub fn bootstrap_servers(&self) -> String {
        let addrs: Vec<String> = self.proxies.iter().map(|p| p.addr().to_string()).collect();
        addrs.join(",")
    }

    /// The first node's proxy address.
    pub fn addr(&self) -> SocketAddr {
        self.proxies[0].addr()
    }

    /// How many brokers serve the cluster (Tansu: one).
    pub fn nodes(&self) -> usize {
        self.proxies.len()
    }

    /// Whether this is an Apache Kafka cluster (else the embedded Tansu broker).
    pub fn is_kafka(&self) -> bool {
        matches!(self.engine, Engine::Kafka(_))
    }

    /// Who may connect and how: the security profile, users and passwords, certificates.
    pub fn access(&self) -> &Access {
        static PLAINTEXT: std::sync::OnceLock<Access> = std::sync::OnceLock::new();
        match &self.engine {
            Engine::Kafka(nodes) => &nodes.access,
            Engine::Tansu(_) => PLAINTEXT.get_or_init(Access::plaintext),
        }
    }

    /// The GC logs of an Apache Kafka cluster's nodes started with
    /// [`JvmProfile::Stock`](crate::JvmProfile::Stock) (`-Xlog:gc*`, UTC times); none otherwise.
    /// They go with the cluster: read them before dropping it.
    pub fn gc_logs(&self) -> &[std::path::PathBuf] {
        match &self.engine {
            Engine::Kafka(nodes) => &nodes.gc_logs,
            Engine::Tansu(_) => &[],
        }
    }

    /// Kill node `i` (0-based) of an Apache Kafka cluster with SIGKILL, as in a broker crash.
    /// No effect on a Tansu cluster or a node already gone.
    pub fn kill_node(&mut self, i: usize) {
        if let Engine::Kafka(nodes) = &mut self.engine {
            nodes.kill_node(i);
        }
    }

    /// The broker's own address, behind the proxy. Clients must not use it: the broker advertises
    /// the proxy's address, so metadata would send them back through the proxy anyway.
    pub fn broker_addr(&self) -> SocketAddr {
        self.broker_addr
    }

    /// The fault controls for this cluster's proxy (cloneable; usable from other tasks).
    pub fn faults(&self) -> &Faults {
        self.proxies[0].faults()
    }

    /// Drop every connection to this cluster and refuse new ones, as if the region went down.
    pub fn cut(&self) {
        self.faults().cut()
    }

    /// Accept connections but forward nothing, as in a network partition.
    pub fn blackhole(&self) {
        self.faults().blackhole()
    }

    /// Add one-way latency in each direction, as across a WAN between regions.
    pub fn delay(&self, one_way: Duration) {
        self.faults().delay(one_way)
    }

    /// Remove every fault.
    pub fn heal(&self) {
        self.faults().heal()
    }

    /// Restart node `i` (0-based): it goes away for `down`, then comes back with its data, and
    /// this returns once it is ready again. Apache Kafka: the node's JVM is killed (SIGKILL, a
    /// crash) and started again on its data directory; a single-node cluster is down as a whole
    /// meanwhile. Tansu (one node, `i` = 0): the broker stops listening and every connection it
    /// serves is dropped, then it listens again on the same storage and group coordinator (a
    /// Tansu broker keeps topics, records, offsets and groups in its storage, which with memory
    /// storage cannot outlive the process, so the storage stays). The fault proxies are left as
    /// they are.
    pub async fn restart_node(&mut self, i: usize, down: Duration) -> Result<(), SandboxError> {
        let name = self.name.clone();
        let broker_addr = self.broker_addr;
        match &mut self.engine {
            Engine::Tansu(t) => {
                t.listening.abort();
                let _ = (&mut t.listening).await;
                tokio::time::sleep(down).await;
                t.listening = listen(t.broker.clone(), broker_addr)
                    .await
                    .map_err(|reason| SandboxError::Broker {
                        cluster: name,
                        reason,
                    })?;
                Ok(())
            }
            Engine::Kafka(nodes) => {
                nodes.kill_node(i);
                tokio::time::sleep(down).await;
                let (log, from) = nodes.respawn(i).map_err(|source| SandboxError::Kafka {
                    cluster: name.clone(),
                    source,
                })?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
                loop {
                    if let Some(e) = nodes.exited(i) {
                        return Err(SandboxError::Kafka {
                            cluster: name,
                            source: e,
                        });
                    }
                    if kafka::logged_ready_since(&log, from) {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(SandboxError::Kafka {
                            cluster: name,
                            source: nodes.not_ready(i, 90),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Stop the brokers and the proxies. All data in the cluster is lost.
    pub async fn shutdown(mut self) {
        match &mut self.engine {
            Engine::Tansu(t) => {
                t.listening.abort();
                // Wait for the task to be gone so that its port is free when this returns.
                let _ = (&mut t.listening).await;
            }
            Engine::Kafka(nodes) => {
                for i in 0..nodes.external.len() {
                    nodes.kill_node(i);
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Kafka nodes stop when `Nodes` drops.
        if let Engine::Tansu(t) = &self.engine {
            t.listening.abort();
        }
    }
}

/// Cluster names become MM2 aliases and client ids: keep them to what both accept.
fn validate_name(name: &str) -> Result<(), SandboxError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidName(name.to_string()))
    }
}

async fn free_loopback_port() -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    l.local_addr()
}

/// Build and serve a broker on `listen`, advertising `advertise`; return once it accepts
/// connections, or the reason it could not start.
async fn start_broker(
    name: &str,
    listen_on: SocketAddr,
    advertise: SocketAddr,
) -> Result<Tansu, String> {
    let url = |addr: SocketAddr| {
        Url::parse(&format!("tcp://{addr}")).map_err(|e| format!("bad listener url: {e}"))
    };
    let storage = Url::parse("memory://tansu/").map_err(|e| e.to_string())?;
    let mut broker = TansuBroker::builder()
        .node_id(0)
        .cluster_id(name)
        .incarnation_id(uuid::Uuid::new_v4())
        .advertised_listener(url(advertise)?)
        .storage(storage)
        .listener(url(listen_on)?)
        .silent(true)
        .build()
        .await
        .map_err(|e| format!("{e}"))?;
    broker.register().await.map_err(|e| format!("{e}"))?;
    let broker = Arc::new(broker);
    let listening = listen(broker.clone(), listen_on).await?;
    Ok(Tansu { broker, listening })
}

/// Let `broker` listen on `addr` (its listener) in a task; return once it accepts connections,
/// or the reason it could not. Aborting the task closes the listener and every connection.
async fn listen(broker: Arc<TansuBroker>, addr: SocketAddr) -> Result<JoinHandle<()>, String> {
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<String>();
    let task = tokio::spawn(async move {
        // `listen` only returns on failure (for instance the port was taken).
        let outcome = broker.listen(tokio::time::Instant::now()).await;
        let _ = done_tx.send(match outcome {
            Ok(()) => "the broker stopped".to_string(),
            Err(e) => format!("{e}"),
        });
    });

    let deadline = tokio::time::Instant::now() + BROKER_READY_TIMEOUT;
    loop {
        if let Ok(reason) = done_rx.try_recv() {
            return Err(reason);
        }
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(task);
        }
        if tokio::time::Instant::now() > deadline {
            task.abort();
            return Err(format!(
                "the broker did not accept connections on {addr} within {BROKER_READY_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
