//! A TCP fault proxy: every client connection to a sandbox cluster passes through it, so a test (or a
//! shell script, through the control endpoint) can cut a region off, black-hole it, or put a WAN
//! between regions, without touching the broker.
//!
//! The proxy's address is the one the broker advertises, so clients that follow metadata (every Kafka
//! client does) keep going through it after bootstrap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

/// What the proxy does with traffic right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Forward everything (after the configured delay, if any).
    Open,
    /// Drop every connection and reset new ones: the region is down.
    Cut,
    /// Accept connections and hold them, forwarding nothing: a network partition where packets
    /// vanish and clients only learn of it through their own timeouts.
    Blackhole,
}

/// The proxy's fault state; a `watch` channel carries it to every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FaultState {
    /// Whether traffic is forwarded, cut or black-holed.
    pub mode: Mode,
    /// Added one-way latency, in each direction.
    #[serde(rename = "delay_ms", serialize_with = "ser_ms")]
    pub delay: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Default for FaultState {
    fn default() -> Self {
        Self {
            mode: Mode::Open,
            delay: Duration::ZERO,
        }
    }
}

/// Cloneable handle to a running proxy's fault controls.
#[derive(Clone, Debug)]
pub struct Faults {
    state: Arc<watch::Sender<FaultState>>,
}

impl Faults {
    /// Controls for a new proxy (or several): open, no delay.
    pub fn new() -> Self {
        let (tx, _) = watch::channel(FaultState::default());
        Self {
            state: Arc::new(tx),
        }
    }

    /// Drop all connections and refuse (reset) new ones until [`Faults::heal`].
    pub fn cut(&self) {
        self.state.send_modify(|s| s.mode = Mode::Cut);
    }

    /// Hold all connections, forward nothing, until [`Faults::heal`] or [`Faults::cut`].
    pub fn blackhole(&self) {
        self.state.send_modify(|s| s.mode = Mode::Blackhole);
    }

    /// Add `one_way` latency in each direction (so a round trip takes `2 * one_way` longer).
    /// `Duration::ZERO` removes it. Independent of cut and blackhole.
    pub fn delay(&self, one_way: Duration) {
        self.state.send_modify(|s| s.delay = one_way);
    }

    /// Back to normal: forward everything, no added delay.
    pub fn heal(&self) {
        self.state.send_replace(FaultState::default());
    }

    /// The current mode and delay.
    pub fn state(&self) -> FaultState {
        *self.state.borrow()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

/// A running fault proxy. Dropping it stops the proxy and closes every connection through it.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    faults: Faults,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Start forwarding connections made to `listener` to `upstream`.
    pub fn start(listener: TcpListener, upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(listener, upstream, Faults::new())
    }

    /// Like [`FaultProxy::start`], under fault controls shared with other proxies (the nodes of
    /// one cluster fail together).
    pub fn start_with(
        listener: TcpListener,
        upstream: SocketAddr,
        faults: Faults,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let accept_task = tokio::spawn(accept_loop(listener, upstream, faults.clone()));
        Ok(Self {
            addr,
            faults,
            accept_task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This proxy's fault controls (shared with the proxies started under the same [`Faults`]).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Connections watch the state channel and end when its sender goes away; a cut also makes
        // any that are still alive (held by a clone of `Faults`) close now.
        self.faults.cut();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, faults: Faults) {
    // Connection tasks are not tracked here: each one ends on a cut or when the state sender is
    // dropped, and aborting this task (on drop) stops new ones.
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "fault proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if faults.state().mode == Mode::Cut {
            reset(client);
            continue;
        }
        let state = faults.state.subscribe();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(client, upstream, state).await {
                debug!(%peer, error = %e, "fault proxy connection ended");
            }
        });
    }
}

/// Close with RST rather than FIN, as a dead host or a firewall reject would look to the client.
fn reset(stream: TcpStream) {
    let sock = socket2::SockRef::from(&stream);
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve_connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<FaultState>,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    // A blackholed region accepts the connection (the SYN got an answer from the proxy) but no byte
    // reaches the broker, not even the connect.
    if !wait_open(&mut state).await {
        reset(client);
        return Ok(());
    }
    let server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;

    // Keep a second handle on the client socket so a cut can turn the close into a reset even
    // though the halves live in the pump tasks.
    let client = client.into_std()?;
    let client_handle = socket2::Socket::from(client.try_clone()?);
    let client = TcpStream::from_std(client)?;

    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = tokio::spawn(pump(client_r, server_w, state.clone()));
    let down = tokio::spawn(pump(server_r, client_w, state.clone()));
    let (abort_up, abort_down) = (up.abort_handle(), down.abort_handle());

    let cut = async {
        loop {
            if state.borrow_and_update().mode == Mode::Cut {
                return;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = async { let _ = tokio::join!(up, down); } => {}
        _ = cut => {
            let _ = client_handle.set_linger(Some(Duration::ZERO));
        }
    }
    abort_up.abort();
    abort_down.abort();
    Ok(())
}

/// Wait until the state is `Open` (true) or `Cut` / proxy gone (false).
async fn wait_open(state: &mut watch::Receiver<FaultState>) -> bool {
    loop {
        match state.borrow_and_update().mode {
            Mode::Open => return true,
            Mode::Cut => return false,
            Mode::Blackhole => {}
        }
        if state.changed().await.is_err() {
            return false;
        }
    }
}

/// Copy one direction of a connection, holding bytes back by the current delay and not at all
/// while blackholed. Reading and writing are separate tasks so that latency does not cap
/// throughput: like a long link, many bytes can be in flight at once.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: watch::Receiver<FaultState>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let mut read_state = state.clone();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if !wait_open(&mut read_state).await {
                return;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let due = Instant::now() + read_state.borrow().delay;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    let mut write_state = state;
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if !wait_open(&mut write_state).await {
                return;
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    // The writer drains what the reader queued, then ends when the reader ends (channel closed).
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn proxy_to_echo() -> FaultProxy {
        let upstream = echo_server().await;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        FaultProxy::start(l, upstream).unwrap()
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways() {
        let p = proxy_to_echo().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut s, &msg).await.unwrap(), msg);
    }

    #[tokio::test]
    async fn cut_drops_live_connections_and_refuses_new_ones_until_heal() {
        let p = proxy_to_echo().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        round_trip(&mut s, b"before").await.unwrap();
        p.faults().cut();
        let live =
            tokio::time::timeout(Duration::from_secs(2), round_trip(&mut s, b"during")).await;
        assert!(
            matches!(live, Ok(Err(_))),
            "live connection must fail, got {live:?}"
        );
        let mut fresh = TcpStream::connect(p.addr()).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(2), round_trip(&mut fresh, b"x")).await;
        assert!(
            matches!(r, Ok(Err(_))),
            "new connection must be reset, got {r:?}"
        );
        p.faults().heal();
        let mut after = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(round_trip(&mut after, b"after").await.unwrap(), b"after");
    }

    #[tokio::test]
    async fn blackhole_holds_traffic_and_heal_releases_it() {
        let p = proxy_to_echo().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        round_trip(&mut s, b"ping").await.unwrap();
        p.faults().blackhole();
        s.write_all(b"held").await.unwrap();
        let mut got = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut got)).await;
        assert!(r.is_err(), "nothing may come back while blackholed");
        p.faults().heal();
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut got))
            .await
            .expect("released after heal")
            .unwrap();
        assert_eq!(&got, b"held");
    }

    #[tokio::test]
    async fn delay_adds_latency_each_way_without_reordering() {
        let p = proxy_to_echo().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        round_trip(&mut s, b"warm").await.unwrap();
        p.faults().delay(Duration::from_millis(40));
        let t = std::time::Instant::now();
        round_trip(&mut s, b"slow").await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
        // Many small writes in flight at once stay in order and do not each pay the full delay in
        // sequence (latency, not bandwidth).
        let t = std::time::Instant::now();
        let msg: Vec<u8> = (0..50u8).collect();
        for b in &msg {
            s.write_all(&[*b]).await.unwrap();
        }
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, msg);
        assert!(
            t.elapsed() < Duration::from_millis(1000),
            "{:?}",
            t.elapsed()
        );
        p.faults().heal();
        assert_eq!(p.faults().state(), FaultState::default());
    }
}
