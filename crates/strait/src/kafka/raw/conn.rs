//! One connection to one broker: TCP, then TLS and a SASL login as the endpoint's librdkafka
//! properties say, ApiVersions, and then requests, one at a time or several in flight (a broker
//! answers a connection's requests in the order they came). Every step is bounded by the
//! endpoint's `socket.timeout.ms`; every failure is one sentence naming the cluster, the broker's
//! address and what failed, and never a secret.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tracing::debug;

use super::sasl::{self, Mechanism, Scram};
use super::tls::{self, Tls};
use crate::kafka::config::is_secret;
use crate::kafka::{Endpoint, Props};

/// librdkafka's `socket.timeout.ms` default: how long a connection or a call may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// librdkafka's `receive.message.max.bytes` default: the largest response frame accepted.
const DEFAULT_MAX_FRAME: usize = 100_000_000;
/// A response is read into memory at most this much at a time beyond what has arrived, so a
/// frame size that lies costs no more than this before the connection ends.
const READ_CHUNK: usize = 1 << 20;
/// The ApiVersions version asked first; brokers before Kafka 2.4 answer UNSUPPORTED_VERSION,
/// and are then asked with v0.
const API_VERSIONS_VERSION: i16 = 3;

/// A request this client sends, and what the broker answers: what `kafka-protocol`'s own
/// `Request` trait says, which that crate only offers when built for brokers as well.
pub trait ApiRequest: Message + Encodable + HeaderVersion {
    /// The request's API key.
    const KEY: ApiKey;
    /// The broker's answer.
    type Response: Decodable + HeaderVersion;
}

macro_rules! api_requests {
    ($($key:ident: $req:ident => $resp:ident,)*) => {
        $(
            impl ApiRequest for $req {
                const KEY: ApiKey = ApiKey::$key;
                type Response = $resp;
            }
        )*
    };
}

// What the passthrough data path needs; more are one line each.
api_requests! {
    ApiVersions: ApiVersionsRequest => ApiVersionsResponse,
    SaslHandshake: SaslHandshakeRequest => SaslHandshakeResponse,
    SaslAuthenticate: SaslAuthenticateRequest => SaslAuthenticateResponse,
    Metadata: MetadataRequest => MetadataResponse,
    Fetch: FetchRequest => FetchResponse,
    Produce: ProduceRequest => ProduceResponse,
    ListOffsets: ListOffsetsRequest => ListOffsetsResponse,
    OffsetForLeaderEpoch: OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse,
    InitProducerId: InitProducerIdRequest => InitProducerIdResponse,
    FindCoordinator: FindCoordinatorRequest => FindCoordinatorResponse,
    OffsetCommit: OffsetCommitRequest => OffsetCommitResponse,
    OffsetFetch: OffsetFetchRequest => OffsetFetchResponse,
}

/// A failure of the raw client: the cluster (alias as in the MM2 file), the broker's address,
/// and what failed. Displayed as one sentence for an operator; neither it nor its `Debug` ever
/// holds a password or a key.
#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster} ({addr}): {kind}")]
pub struct Error {
    /// The cluster's alias.
    pub cluster: String,
    /// The broker's `host:port`.
    pub addr: String,
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The endpoint needs something this client does not do (see `unsupported`).
    #[error("this client cannot serve it: {0}")]
    Unsupported(String),
    /// A property has a value that cannot work (a missing username, a CA file that is not one).
    #[error("bad configuration: {0}")]
    Config(String),
    /// No TCP connection (refused, unreachable, a name that does not resolve).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed: OpenSSL's reason, or the certificate check's verdict.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The broker does not take the configured SASL mechanism.
    #[error("the broker does not take SASL mechanism {mechanism} (it takes {offered}); check sasl.mechanisms")]
    MechanismRefused {
        /// The mechanism asked for.
        mechanism: String,
        /// What the broker offers, comma-separated.
        offered: String,
    },
    /// The broker refused the login (the broker's message), or proved it does not know the
    /// password (SCRAM).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No answer in time (`socket.timeout.ms`).
    #[error("{what} timed out after {}s (socket.timeout.ms); is the broker reachable?", after.as_secs_f64())]
    Timeout {
        /// The step or request that ran out of time.
        what: String,
        /// The time it had.
        after: Duration,
    },
    /// The connection failed under a step or request.
    #[error("connection lost during {what}: {reason}")]
    Closed {
        /// The step or request.
        what: String,
        /// What the socket said.
        reason: String,
    },
    /// The broker's bytes are not what the protocol says, or a request cannot be written.
    #[error("protocol error in {what}: {reason}")]
    Protocol {
        /// The request (`Metadata v12`), or step.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// An earlier failure (or an abandoned call) left the connection unusable: open another.
    #[error("the connection is unusable after an earlier failure: {0}")]
    Broken(String),
}

/// `security.protocol`, as librdkafka reads it (case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Security {
    /// The endpoint's protocol (PLAINTEXT when unset); `Err` holds a value that is none.
    fn of(props: &Props) -> Result<Self, String> {
        let Some(v) = props.get("security.protocol") else {
            return Ok(Self::Plaintext);
        };
        match v.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            _ => Err(v.clone()),
        }
    }

    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanism property as set (librdkafka's `sasl.mechanisms`, or the Java name
/// `sasl.mechanism`), and its value; librdkafka's default GSSAPI when neither is set.
fn mechanism_setting(props: &Props) -> (&'static str, &str) {
    for key in ["sasl.mechanisms", "sasl.mechanism"] {
        if let Some(v) = props.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            return (key, v);
        }
    }
    ("sasl.mechanisms", "GSSAPI")
}

/// Why this client cannot serve `ep`, in one sentence naming the property and its value, or
/// `None` when it can. A flow then keeps librdkafka's data path for the cluster, saying this.
pub(crate) fn unsupported(ep: &Endpoint) -> Option<String> {
    let security = match Security::of(&ep.props) {
        Ok(s) => s,
        Err(v) => {
            return Some(format!(
                "security.protocol = {v} is not a protocol this client speaks (it speaks \
                 PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL)"
            ))
        }
    };
    if security.sasl() {
        let (key, mech) = mechanism_setting(&ep.props);
        if Mechanism::parse(mech).is_none() {
            let default = if ep.props.contains_key(key) {
                ""
            } else {
                " (librdkafka's default)"
            };
            return Some(format!(
                "{key} = {mech}{default} is a login this client does not perform (it does \
                 PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512)"
            ));
        }
    }
    if security.tls() {
        let ignored = |k: &str| {
            // A keystore password alone is ignored by librdkafka too.
            k == "ssl.keystore.password" && !ep.props.contains_key("ssl.keystore.location")
        };
        if let Some((k, v)) = ep.props.iter().find(|(k, _)| {
            k.starts_with("ssl") && !tls::APPLIED.contains(&k.as_str()) && !ignored(k)
        }) {
            let v = if is_secret(k) {
                "[redacted]"
            } else {
                v.as_str()
            };
            return Some(format!(
                "{k} = {v} is a TLS setting this client does not apply (librdkafka does)"
            ));
        }
    }
    None
}

/// A SASL login. No `Debug`: it holds the password.
struct Login {
    mechanism: Mechanism,
    user: String,
    password: String,
}

/// How to connect, read from an endpoint's properties.
struct Settings {
    tls: Option<Tls>,
    login: Option<Login>,
    timeout: Duration,
    max_frame: usize,
    client_id: StrBytes,
}

impl Settings {
    fn of(ep: &Endpoint) -> Result<Self, ErrorKind> {
        if let Some(why) = unsupported(ep) {
            return Err(ErrorKind::Unsupported(why));
        }
        let props = &ep.props;
        let security = Security::of(props).map_err(ErrorKind::Unsupported)?;
        let number = |key: &str| -> Result<Option<u64>, ErrorKind> {
            match props.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| ErrorKind::Config(format!("{key} = {v} is not a whole number"))),
            }
        };
        let timeout = number("socket.timeout.ms")?
            .filter(|&ms| ms > 0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let max_frame = number("receive.message.max.bytes")?
            .filter(|&n| n > 0)
            .map_or(DEFAULT_MAX_FRAME, |n| n.min(i32::MAX as u64) as usize);
        let login = if security.sasl() {
            let (_, mech) = mechanism_setting(props);
            let mechanism = Mechanism::parse(mech)
                .ok_or_else(|| ErrorKind::Unsupported(format!("sasl.mechanisms = {mech}")))?;
            let need = |key: &str| {
                props.get(key).cloned().ok_or_else(|| {
                    ErrorKind::Config(format!(
                        "{key} is not set, and {} needs it",
                        mechanism.name()
                    ))
                })
            };
            Some(Login {
                mechanism,
                user: need("sasl.username")?,
                password: need("sasl.password")?,
            })
        } else {
            None
        };
        let tls = if security.tls() {
            Some(Tls::from_props(props).map_err(|why| ErrorKind::Config(format!("TLS: {why}")))?)
        } else {
            None
        };
        let client_id = props
            .get("client.id")
            .cloned()
            .unwrap_or_else(|| format!("strait-{}-raw", ep.alias));
        Ok(Self {
            tls,
            login,
            timeout,
            max_frame,
            client_id: StrBytes::from_string(client_id),
        })
    }
}

/// The byte stream under a connection: TCP, or TLS over TCP (or a test's in-memory pipe).
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A request sent and not yet answered.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: i32,
    key: ApiKey,
    version: i16,
}

/// One connection to one broker, logged in and with the broker's API versions known.
///
/// Requests go out with [`Conn::call`] (send, then wait for the answer), or with [`Conn::send`]
/// several times then [`Conn::recv`] as many, in the same order: the broker answers in order.
/// A call abandoned halfway (its future dropped) or a failure of the stream leaves the
/// connection unusable, and every later call says so; open another.
pub struct Conn {
    io: BufReader<Box<dyn Io>>,
    cluster: String,
    addr: String,
    versions: BTreeMap<i16, RangeInclusive<i16>>,
    next_id: i32,
    in_flight: VecDeque<InFlight>,
    timeout: Duration,
    max_frame: usize,
    client_id: StrBytes,
    busy: bool,
    broken: Option<String>,
    session_lifetime: Option<Duration>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("cluster", &self.cluster)
            .field("addr", &self.addr)
            .field("in_flight", &self.in_flight.len())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// `host:port` from a bootstrap entry, without a `SCHEME://` prefix.
fn strip_scheme(addr: &str) -> &str {
    let addr = addr.trim();
    addr.split_once("://").map_or(addr, |(_, a)| a)
}

/// The host of `host:port` (`[v6]:port` too), for the TLS host name check.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

impl Conn {
    /// Connect to the broker at `addr` (`host:port`) of `ep`: TCP, TLS and SASL as `ep` says,
    /// then ApiVersions. All of it within `socket.timeout.ms` (60 s by default).
    pub async fn connect(ep: &Endpoint, addr: &str) -> Result<Self, Error> {
        let addr = strip_scheme(addr);
        let err = |kind| Error {
            cluster: ep.alias.clone(),
            addr: addr.to_string(),
            kind,
        };
        let settings = Settings::of(ep).map_err(err)?;
        let after = settings.timeout;
        let deadline = Instant::now() + after;
        let timed_out = |what: &str| {
            err(ErrorKind::Timeout {
                what: what.to_string(),
                after,
            })
        };
        let tcp = match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timed_out("TCP connect")),
            Ok(Err(e)) => return Err(err(ErrorKind::Connect(e.to_string()))),
            Ok(Ok(s)) => s,
        };
        // Requests are written whole; Nagle would only hold the last segment back.
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &settings.tls {
            None => Box::new(tcp),
            Some(tls) => match timeout_at(deadline, tls.handshake(host_of(addr), tcp)).await {
                Err(_) => return Err(timed_out("TLS handshake")),
                Ok(Err(why)) => return Err(err(ErrorKind::Tls(why))),
                Ok(Ok(s)) => Box::new(s),
            },
        };
        let mut conn = Self::over(io, &ep.alias, addr, &settings);
        conn.api_versions(deadline).await.map_err(|mut e| {
            if let (ErrorKind::Closed { reason, .. }, None) = (&mut e.kind, &settings.tls) {
                reason.push_str(" (does the listener expect TLS? check security.protocol)");
            }
            e
        })?;
        if let Some(login) = &settings.login {
            conn.login(login, deadline).await?;
        }
        debug!(
            cluster = %conn.cluster,
            addr = %conn.addr,
            tls = settings.tls.is_some(),
            sasl = settings.login.as_ref().map(|l| l.mechanism.name()),
            "raw connection open"
        );
        Ok(conn)
    }

    /// Connect to the first broker of `ep`'s `bootstrap.servers` that answers; the last error
    /// when none does.
    pub async fn bootstrap(ep: &Endpoint) -> Result<Self, Error> {
        let mut last = None;
        for addr in ep.bootstrap_servers().split(',').map(strip_scheme) {
            if addr.is_empty() {
                continue;
            }
            match Self::connect(ep, addr).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    debug!("{e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error {
            cluster: ep.alias.clone(),
            addr: String::new(),
            kind: ErrorKind::Config("bootstrap.servers is empty".into()),
        }))
    }

    /// A connection over `io`, before ApiVersions.
    fn over(io: Box<dyn Io>, cluster: &str, addr: &str, settings: &Settings) -> Self {
        Self {
            io: BufReader::with_capacity(64 * 1024, io),
            cluster: cluster.to_string(),
            addr: addr.to_string(),
            versions: BTreeMap::new(),
            next_id: 0,
            in_flight: VecDeque::new(),
            timeout: settings.timeout,
            max_frame: settings.max_frame,
            client_id: settings.client_id.clone(),
            busy: false,
            broken: None,
            session_lifetime: None,
        }
    }

    /// The cluster's alias.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The broker's `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How long each call may take (`socket.timeout.ms`, 60 s by default).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Let each later call take up to `timeout` (a fetch that waits long on the broker needs
    /// more than its `max_wait_ms`).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The highest version of `key` that the broker, this client's message types and `ours`
    /// all allow; `None` when there is none.
    pub fn version(&self, key: ApiKey, ours: RangeInclusive<i16>) -> Option<i16> {
        let theirs = self.versions.get(&(key as i16))?;
        let written = key.valid_versions();
        let low = (*ours.start()).max(*theirs.start()).max(written.min);
        let high = (*ours.end()).min(*theirs.end()).min(written.max);
        (low <= high).then_some(high)
    }

    /// The versions of `key` the broker offers, as it said at connect.
    pub fn broker_versions(&self, key: ApiKey) -> Option<RangeInclusive<i16>> {
        self.versions.get(&(key as i16)).cloned()
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether calls can still go through (no failure or abandoned call so far).
    pub fn is_usable(&self) -> bool {
        self.broken.is_none() && !self.busy
    }

    /// How long the broker keeps this login valid (KIP-368), when it says: past that it closes
    /// the connection, and a new one is needed.
    pub fn session_lifetime(&self) -> Option<Duration> {
        self.session_lifetime
    }

    /// Send `req` as `version` and wait for its answer, within the timeout. Not for requests
    /// the broker does not answer (a Produce with acks = 0).
    pub async fn call<R: ApiRequest>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, Error> {
        let deadline = Instant::now() + self.timeout;
        self.call_by(req, version, deadline).await
    }

    /// Send `req` as `version` without waiting for the answer; [`Conn::recv`] reads the answers
    /// in the order the requests went. Returns the request's correlation id.
    pub async fn send<R: ApiRequest>(&mut self, req: &R, version: i16) -> Result<i32, Error> {
        let deadline = Instant::now() + self.timeout;
        self.send_by(req, version, deadline).await
    }

    /// The answer to the oldest request sent and not yet answered, which must be an `R`,
    /// within the timeout.
    pub async fn recv<R: ApiRequest>(&mut self) -> Result<R::Response, Error> {
        let deadline = Instant::now() + self.timeout;
        self.recv_by::<R>(deadline).await
    }

    fn err(&self, kind: ErrorKind) -> Error {
        Error {
            cluster: self.cluster.clone(),
            addr: self.addr.clone(),
            kind,
        }
    }

    /// The error `kind`, after which the connection is unusable.
    fn fail(&mut self, kind: ErrorKind) -> Error {
        self.busy = false;
        self.broken.get_or_insert_with(|| kind.to_string());
        self.err(kind)
    }

    /// Ok when the stream is in a known state: nothing failed, no call was abandoned halfway.
    fn usable(&mut self) -> Result<(), Error> {
        if self.busy {
            self.busy = false;
            self.broken.get_or_insert_with(|| {
                "an earlier call was abandoned before it finished".to_string()
            });
        }
        match &self.broken {
            Some(why) => Err(self.err(ErrorKind::Broken(why.clone()))),
            None => Ok(()),
        }
    }

    async fn call_by<R: ApiRequest>(
        &mut self,
        req: &R,
        version: i16,
        deadline: Instant,
    ) -> Result<R::Response, Error> {
        self.usable()?;
        if !self.in_flight.is_empty() {
            return Err(self.err(ErrorKind::Protocol {
                what: format!("{:?} v{version}", R::KEY),
                reason: format!(
                    "{} earlier requests are still waiting for their answers (recv them first)",
                    self.in_flight.len()
                ),
            }));
        }
        self.send_by(req, version, deadline).await?;
        self.recv_by::<R>(deadline).await
    }

    async fn send_by<R: ApiRequest>(
        &mut self,
        req: &R,
        version: i16,
        deadline: Instant,
    ) -> Result<i32, Error> {
        self.usable()?;
        let what = || format!("{:?} v{version}", R::KEY);
        if !(R::VERSIONS.min..=R::VERSIONS.max).contains(&version) {
            return Err(self.err(ErrorKind::Protocol {
                what: what(),
                reason: format!("this client writes versions {} only", R::VERSIONS),
            }));
        }
        let id = self.next_id;
        let frame = self.frame(req, version, id).map_err(|e| {
            self.err(ErrorKind::Protocol {
                what: what(),
                reason: format!("cannot write the request: {e:#}"),
            })
        })?;
        self.busy = true;
        let io = &mut self.io;
        let written = timeout_at(deadline, async move {
            io.write_all(&frame).await?;
            io.flush().await
        })
        .await;
        match written {
            Err(_) => {
                let after = self.timeout;
                return Err(self.fail(ErrorKind::Timeout {
                    what: format!("sending {}", what()),
                    after,
                }));
            }
            Ok(Err(e)) => {
                return Err(self.fail(ErrorKind::Closed {
                    what: what(),
                    reason: io_reason(&e),
                }))
            }
            Ok(Ok(())) => {}
        }
        self.busy = false;
        self.next_id = id.checked_add(1).unwrap_or(0);
        self.in_flight.push_back(InFlight {
            id,
            key: R::KEY,
            version,
        });
        Ok(id)
    }

    /// `req` framed: size, header, body.
    fn frame<R: ApiRequest>(&self, req: &R, version: i16, id: i32) -> anyhow::Result<BytesMut> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version))?;
        req.encode(&mut buf, version)?;
        let size = i32::try_from(buf.len() - 4)
            .map_err(|_| anyhow::anyhow!("{} bytes is more than a frame can hold", buf.len()))?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok(buf)
    }

    async fn recv_by<R: ApiRequest>(&mut self, deadline: Instant) -> Result<R::Response, Error> {
        if let Some(next) = self.in_flight.front().copied() {
            if next.key != R::KEY {
                return Err(self.err(ErrorKind::Protocol {
                    what: format!("{:?}", R::KEY),
                    reason: format!(
                        "the next answer is to {:?} v{} (correlation id {})",
                        next.key, next.version, next.id
                    ),
                }));
            }
        }
        let (sent, body) = self.recv_frame_by(deadline).await?;
        self.decode(sent, body)
    }

    /// The body of a response to `sent`, decoded. Broker garbage is an error, never a panic;
    /// the connection stays usable (the whole frame was read).
    fn decode<T: Decodable>(&self, sent: InFlight, mut body: Bytes) -> Result<T, Error> {
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            T::decode(&mut body, sent.version)
        }));
        let reason = match decoded {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => format!("cannot read the answer: {e:#}"),
            Err(_) => "cannot read the answer (the decoder gave up on it)".to_string(),
        };
        Err(self.err(ErrorKind::Protocol {
            what: format!("{:?} v{}", sent.key, sent.version),
            reason,
        }))
    }

    /// The next response frame, its header read and checked: the request it answers, and the
    /// body.
    async fn recv_frame_by(&mut self, deadline: Instant) -> Result<(InFlight, Bytes), Error> {
        self.usable()?;
        let Some(next) = self.in_flight.front().copied() else {
            return Err(self.err(ErrorKind::Protocol {
                what: "recv".into(),
                reason: "no request is waiting for an answer".into(),
            }));
        };
        let what = format!("{:?} v{}", next.key, next.version);
        self.busy = true;
        let max = self.max_frame;
        let read = timeout_at(deadline, read_frame(&mut self.io, max)).await;
        let mut frame = match read {
            Err(_) => {
                let after = self.timeout;
                return Err(self.fail(ErrorKind::Timeout {
                    what: format!("waiting for the answer to {what}"),
                    after,
                }));
            }
            Ok(Err(FrameError::Io(e))) => {
                return Err(self.fail(ErrorKind::Closed {
                    what,
                    reason: io_reason(&e),
                }))
            }
            Ok(Err(FrameError::Size(reason))) => {
                return Err(self.fail(ErrorKind::Protocol { what, reason }))
            }
            Ok(Ok(frame)) => frame,
        };
        self.busy = false;
        let header = match ResponseHeader::decode(
            &mut frame,
            next.key.response_header_version(next.version),
        ) {
            Ok(h) => h,
            Err(e) => {
                return Err(self.fail(ErrorKind::Protocol {
                    what,
                    reason: format!("cannot read the response header: {e:#}"),
                }))
            }
        };
        if header.correlation_id != next.id {
            return Err(self.fail(ErrorKind::Protocol {
                what,
                reason: format!(
                    "the broker answered correlation id {} where {} was next",
                    header.correlation_id, next.id
                ),
            }));
        }
        self.in_flight.pop_front();
        Ok((next, frame))
    }

    /// ApiVersions v3 (v0 for a broker that does not take v3): the versions the broker serves.
    async fn api_versions(&mut self, deadline: Instant) -> Result<(), Error> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strait"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        self.send_by(&req, API_VERSIONS_VERSION, deadline).await?;
        let (sent, body) = self.recv_frame_by(deadline).await?;
        // An old broker answers a version it does not know with a v0 body: error code first.
        let unsupported = ResponseError::UnsupportedVersion.code();
        let resp: ApiVersionsResponse = if body.get(..2) == Some(&unsupported.to_be_bytes()[..]) {
            debug!(cluster = %self.cluster, addr = %self.addr, "ApiVersions v3 refused; asking with v0");
            self.send_by(&ApiVersionsRequest::default(), 0, deadline)
                .await?;
            let (sent, body) = self.recv_frame_by(deadline).await?;
            self.decode(sent, body)?
        } else {
            self.decode(sent, body)?
        };
        if resp.error_code != 0 {
            return Err(self.fail(ErrorKind::Protocol {
                what: "ApiVersions".into(),
                reason: format!("the broker answered {}", error_name(resp.error_code)),
            }));
        }
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version..=k.max_version))
            .collect();
        Ok(())
    }

    /// SaslHandshake v1, then the mechanism's SaslAuthenticate rounds.
    async fn login(&mut self, login: &Login, deadline: Instant) -> Result<(), Error> {
        let mech = login.mechanism.name();
        let missing = |api: &str| ErrorKind::Protocol {
            what: "SASL login".into(),
            reason: format!("the broker does not offer {api} (Kafka 1.0 and later do)"),
        };
        let Some(v) = self.version(ApiKey::SaslHandshake, 1..=1) else {
            return Err(self.fail(missing("SaslHandshake v1")));
        };
        let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech));
        let resp = self.call_by(&req, v, deadline).await?;
        if resp.error_code == ResponseError::UnsupportedSaslMechanism.code() {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(self.fail(ErrorKind::MechanismRefused {
                mechanism: mech.to_string(),
                offered: offered.join(", "),
            }));
        }
        if resp.error_code != 0 {
            return Err(self.fail(ErrorKind::Protocol {
                what: format!("SaslHandshake v{v}"),
                reason: format!("the broker answered {}", error_name(resp.error_code)),
            }));
        }
        let Some(v) = self.version(ApiKey::SaslAuthenticate, 0..=2) else {
            return Err(self.fail(missing("SaslAuthenticate")));
        };
        match Scram::new(login.mechanism, &login.user, &login.password) {
            None => {
                let msg = sasl::plain(&login.user, &login.password);
                self.authenticate(msg, v, login, deadline).await?;
            }
            Some(scram) => {
                let mut scram = scram.map_err(|e| {
                    self.err(ErrorKind::Config(format!(
                        "OpenSSL cannot make a SCRAM nonce: {e}"
                    )))
                })?;
                let server_first = self
                    .authenticate(scram.client_first(), v, login, deadline)
                    .await?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|why| self.fail(ErrorKind::Auth(why)))?;
                let server_final = self.authenticate(client_final, v, login, deadline).await?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|why| self.fail(ErrorKind::Auth(why)))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round: the broker's answer, or its refusal as an error.
    async fn authenticate(
        &mut self,
        msg: Vec<u8>,
        version: i16,
        login: &Login,
        deadline: Instant,
    ) -> Result<Bytes, Error> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(msg));
        let resp = self.call_by(&req, version, deadline).await?;
        if resp.error_code != 0 {
            let said = resp
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| error_name(resp.error_code));
            // A broker would not echo the password; this makes sure no message ever carries it.
            let said = if login.password.is_empty() {
                said
            } else {
                said.replace(&login.password, "[redacted]")
            };
            return Err(self.fail(ErrorKind::Auth(format!(
                "{said} (user {}, {})",
                login.user,
                login.mechanism.name()
            ))));
        }
        if resp.session_lifetime_ms > 0 {
            self.session_lifetime = Some(Duration::from_millis(resp.session_lifetime_ms as u64));
        }
        Ok(resp.auth_bytes)
    }
}

/// Why a response frame could not be read.
#[derive(Debug)]
enum FrameError {
    Io(std::io::Error),
    /// The size is not one a Kafka broker sends: nothing more is read.
    Size(String),
}

/// The size of a response frame from its 4-byte prefix, refused when it cannot be one (below
/// a correlation id, negative, or above `max`, `receive.message.max.bytes`).
fn frame_size(prefix: [u8; 4], max: usize) -> Result<usize, String> {
    let size = i32::from_be_bytes(prefix);
    if size < 4 {
        return Err(format!(
            "the broker sent a frame of {size} bytes, too short for a response header"
        ));
    }
    let size = size as usize;
    if size > max {
        return Err(format!(
            "the broker sent a frame of {size} bytes, more than receive.message.max.bytes \
             ({max}); is this a Kafka listener, and is security.protocol right?"
        ));
    }
    Ok(size)
}

/// Read one response frame (without its size prefix). Memory grows with what arrives, at most
/// [`READ_CHUNK`] ahead of it, up to the checked size.
async fn read_frame<S: AsyncRead + Unpin>(io: &mut S, max: usize) -> Result<Bytes, FrameError> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await.map_err(|e| {
        FrameError::Io(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            ),
            _ => e,
        })
    })?;
    let size = frame_size(prefix, max).map_err(FrameError::Size)?;
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        if buf.capacity() == buf.len() {
            buf.reserve((size - buf.len()).min(READ_CHUNK));
        }
        let room = (size - buf.len()).min(buf.capacity() - buf.len());
        let n = (&mut *io)
            .take(room as u64)
            .read_buf(&mut buf)
            .await
            .map_err(FrameError::Io)?;
        if n == 0 {
            return Err(FrameError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the broker closed the connection after {} of {size} bytes",
                    buf.len()
                ),
            )));
        }
    }
    Ok(buf.freeze())
}

fn io_reason(e: &std::io::Error) -> String {
    e.to_string()
}

/// A Kafka error code by name (`SaslAuthenticationFailed (58)`).
pub(crate) fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e} ({code})"),
        None => "no error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(kv: &[(&str, &str)]) -> Endpoint {
        kv.iter()
            .fold(Endpoint::new("us-east", "h:9093"), |e, (k, v)| {
                e.with(*k, *v)
            })
    }

    #[test]
    fn what_this_client_cannot_serve_is_one_sentence_naming_property_and_value() {
        assert_eq!(unsupported(&ep(&[])), None);
        for ok in [
            vec![
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanisms", "SCRAM-SHA-512"),
            ],
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
            ],
            vec![("security.protocol", "ssl"), ("ssl.ca.location", "/ca.pem")],
            // Without TLS, librdkafka ignores TLS settings too.
            vec![("ssl.keystore.location", "/k.p12")],
            vec![("security.protocol", "SSL"), ("ssl.keystore.password", "x")],
        ] {
            assert_eq!(unsupported(&ep(&ok)), None, "{ok:?}");
        }
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanisms", "GSSAPI"),
                ],
                "sasl.mechanisms = GSSAPI",
            ),
            (
                &[
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanism", "OAUTHBEARER"),
                ],
                "sasl.mechanism = OAUTHBEARER",
            ),
            (
                &[("security.protocol", "SASL_PLAINTEXT")],
                "sasl.mechanisms = GSSAPI (librdkafka's default)",
            ),
            (
                &[("security.protocol", "SSL"), ("ssl.engine.id", "pkcs11")],
                "ssl.engine.id = pkcs11",
            ),
            (
                &[
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanisms", "PLAIN"),
                    ("ssl.keystore.location", "/client.p12"),
                    ("ssl.keystore.password", "hunter2"),
                ],
                "ssl.keystore.location = /client.p12",
            ),
            (
                &[
                    ("security.protocol", "SSL"),
                    ("ssl.keystore.password", "hunter2"),
                    ("ssl.keystore.location", "/k"),
                ],
                "ssl.keystore.location = /k",
            ),
            (&[("security.protocol", "QUIC")], "security.protocol = QUIC"),
        ];
        for (props, want) in cases {
            let why = unsupported(&ep(props)).unwrap_or_else(|| panic!("{props:?} is served"));
            assert!(why.starts_with(want), "{props:?}: {why}");
            assert!(!why.contains("hunter2"), "{why}");
            assert_eq!(why.lines().count(), 1, "{why}");
        }
    }

    #[test]
    fn settings_come_from_the_endpoint() {
        let s = Settings::of(&ep(&[("socket.timeout.ms", "1500")])).unwrap();
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.max_frame, DEFAULT_MAX_FRAME);
        assert_eq!(s.client_id.as_str(), "strait-us-east-raw");
        assert!(s.tls.is_none() && s.login.is_none());
        let s = Settings::of(&ep(&[])).unwrap();
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let Err(ErrorKind::Config(why)) = Settings::of(&ep(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
            ("sasl.username", "u"),
        ])) else {
            panic!("a login without a password")
        };
        assert!(why.contains("sasl.password"), "{why}");
        let Err(ErrorKind::Unsupported(why)) =
            Settings::of(&ep(&[("security.protocol", "SASL_SSL")]))
        else {
            panic!("GSSAPI is served")
        };
        assert!(why.contains("GSSAPI"), "{why}");
        assert!(matches!(
            Settings::of(&ep(&[("socket.timeout.ms", "soon")])),
            Err(ErrorKind::Config(_))
        ));
    }

    #[test]
    fn addresses() {
        assert_eq!(strip_scheme(" SASL_SSL://b1:9093"), "b1:9093");
        assert_eq!(strip_scheme("b1:9093"), "b1:9093");
        assert_eq!(host_of("b1.example.com:9093"), "b1.example.com");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
    }

    #[test]
    fn absurd_frame_sizes_are_refused() {
        assert_eq!(frame_size(100i32.to_be_bytes(), 1000), Ok(100));
        assert_eq!(frame_size(1000i32.to_be_bytes(), 1000), Ok(1000));
        for bad in [1001, -1, i32::MIN, 0, 3, i32::MAX] {
            assert!(frame_size(bad.to_be_bytes(), 1000).is_err(), "{bad}");
        }
        // A TLS alert read as a frame size: a plaintext client on a TLS listener.
        let e = frame_size([0x15, 0x03, 0x03, 0x00], DEFAULT_MAX_FRAME).unwrap_err();
        assert!(e.contains("security.protocol"), "{e}");
    }

    /// A connection over an in-memory pipe, and the broker's end of it.
    fn piped(timeout: Duration) -> (Conn, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let mut settings = Settings::of(&ep(&[])).unwrap();
        settings.timeout = timeout;
        settings.max_frame = 1 << 20;
        (
            Conn::over(Box::new(ours), "us-east", "h:9093", &settings),
            theirs,
        )
    }

    /// Read one request frame at the broker's end: (correlation id, whole frame).
    async fn request(theirs: &mut tokio::io::DuplexStream) -> (i32, Vec<u8>) {
        let size = theirs.read_i32().await.unwrap() as usize;
        let mut frame = vec![0; size];
        theirs.read_exact(&mut frame).await.unwrap();
        let id = i32::from_be_bytes(frame[4..8].try_into().unwrap());
        (id, frame)
    }

    #[tokio::test]
    async fn a_frame_too_large_ends_the_connection_without_reading_it() {
        let (mut conn, mut theirs) = piped(Duration::from_secs(5));
        conn.send(&MetadataRequest::default(), 4).await.unwrap();
        request(&mut theirs).await;
        theirs
            .write_all(&(64i32 << 20).to_be_bytes())
            .await
            .unwrap();
        let e = conn.recv::<MetadataRequest>().await.unwrap_err();
        assert!(
            matches!(&e.kind, ErrorKind::Protocol { reason, .. } if reason.contains("receive.message.max.bytes")),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("cluster us-east (h:9093): "),
            "{e}"
        );
        assert!(!conn.is_usable());
        let e = conn.call(&MetadataRequest::default(), 4).await.unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Broken(_)), "{e}");
    }

    #[tokio::test]
    async fn garbage_in_a_frame_is_an_error_and_answers_come_in_order() {
        let (mut conn, mut theirs) = piped(Duration::from_secs(5));
        let a = conn.send(&MetadataRequest::default(), 4).await.unwrap();
        let b = conn.send(&MetadataRequest::default(), 4).await.unwrap();
        assert_eq!((a, b, conn.in_flight()), (0, 1, 2));
        assert_eq!(request(&mut theirs).await.0, a);
        assert_eq!(request(&mut theirs).await.0, b);
        // Asking for another type's answer is refused, and nothing is read.
        let e = conn.recv::<FetchRequest>().await.unwrap_err();
        assert!(
            e.to_string().contains("the next answer is to Metadata"),
            "{e}"
        );
        // A frame with the right id and a body that is no Metadata answer.
        let mut frame = a.to_be_bytes().to_vec();
        frame.push(0);
        theirs
            .write_all(&(frame.len() as i32).to_be_bytes())
            .await
            .unwrap();
        theirs.write_all(&frame).await.unwrap();
        let e = conn.recv::<MetadataRequest>().await.unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Protocol { .. }), "{e}");
        assert!(conn.is_usable(), "a whole frame was read: {e}");
        // The next answer carries the wrong correlation id.
        let frame = 7i32.to_be_bytes();
        theirs.write_all(&4i32.to_be_bytes()).await.unwrap();
        theirs.write_all(&frame).await.unwrap();
        let e = conn.recv::<MetadataRequest>().await.unwrap_err();
        assert!(e.to_string().contains("correlation id 7 where 1"), "{e}");
        assert!(!conn.is_usable());
    }

    #[tokio::test]
    async fn a_silent_broker_times_out_and_an_abandoned_call_breaks_the_connection() {
        let (mut conn, _theirs) = piped(Duration::from_millis(100));
        let e = conn.call(&MetadataRequest::default(), 4).await.unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("timed out after 0.1s"), "{e}");
        assert!(!conn.is_usable());

        let (mut conn, _theirs) = piped(Duration::from_secs(60));
        conn.send(&MetadataRequest::default(), 4).await.unwrap();
        let abandoned =
            tokio::time::timeout(Duration::from_millis(50), conn.recv::<MetadataRequest>()).await;
        assert!(abandoned.is_err());
        let e = conn.recv::<MetadataRequest>().await.unwrap_err();
        assert!(e.to_string().contains("abandoned"), "{e}");
    }

    #[test]
    fn connecting_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        let ep = ep(&[]);
        send(&Conn::connect(&ep, "h:9093"));
        send(&Conn::bootstrap(&ep));
    }

    #[tokio::test]
    async fn versions_outside_the_message_types_are_refused_before_sending() {
        let (mut conn, _theirs) = piped(Duration::from_secs(5));
        let e = conn
            .send(&MetadataRequest::default(), 99)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Metadata v99"), "{e}");
        assert!(conn.is_usable());
        conn.versions.insert(ApiKey::Metadata as i16, 0..=12);
        assert_eq!(conn.version(ApiKey::Metadata, 0..=9), Some(9));
        assert_eq!(conn.version(ApiKey::Metadata, 4..=20), Some(12));
        assert_eq!(conn.version(ApiKey::Metadata, 13..=20), None);
        assert_eq!(conn.version(ApiKey::Fetch, 0..=12), None);
    }
}
