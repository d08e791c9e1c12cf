//! rdkafka plumbing shared by every job: client configurations, admin calls with deadlines,
//! consumer-group operations and readers of internal topics.

pub(crate) mod acls;
pub(crate) mod admin;
pub(crate) mod alter_configs;
pub(crate) mod config;
pub(crate) mod diagnose;
pub(crate) mod groups;
pub mod raw;
pub(crate) mod tail;
pub(crate) mod topic_ids;

use std::time::Duration;

pub use acls::{AclBinding, AclError, Operation, PatternType, Permission, ResourceType};
pub use admin::{Admin, ConfigEntryInfo, ConfigSource, Created, TopicInfo, TopicSpec};
pub use alter_configs::AlterOp;
pub use config::{Endpoint, Props};
pub use groups::{Groups, OffsetAndMetadata, TopicPartition};
use rdkafka::error::KafkaError;

/// Run a blocking librdkafka call on tokio's blocking pool and wait for it: how the async layer
/// uses librdkafka's synchronous consumer APIs (groups, watermarks, reading internal topics)
/// without holding a runtime thread. A cancelled caller leaves the call to finish on its own
/// (each has a timeout), so a stop never waits for it.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down: the caller is being dropped with it.
        Err(_) => std::future::pending().await,
    }
}

/// Let a librdkafka client (or the last reference to one) go on tokio's blocking pool, instead
/// of in the caller. rust-rdkafka's drop of a consumer with a group id (every reader and group
/// client here has one) polls its queue 100 ms at a time until librdkafka says it is closed, so
/// it takes 100 ms even for a consumer that never joined its group, where closing takes a
/// millisecond: dropped in turn, a command's clients cost a tenth of a second each. Disposed
/// of here, they go together and beside whatever the caller does next. A command's `main`
/// waits for them with the rest of the blocking pool before it exits. Outside a runtime, the
/// client is dropped in place.
pub(crate) fn dispose<T: Send + 'static>(client: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(move || drop(client))),
        Err(_) => drop(client),
    }
}

/// A partition's watermarks (log start, end) as the client last heard them in a fetch
/// response, without a request (`None` when it has not heard them). rust-rdkafka only offers
/// the watermarks through a round trip to the broker, which the copy loop cannot afford per gap
/// or every tenth of a second.
pub(crate) fn cached_watermarks<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the borrow of `client`; librdkafka only reads the
    // NUL-terminated topic name and writes the two offsets, under its own partition lock.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
        .then_some((low, high))
}

/// The watermarks (log start, end) of each of `partitions`, in their order: many requests in
/// flight at once (a few dozen), rather than one round trip after another.
pub(crate) async fn watermarks_of(
    admin: &Admin,
    partitions: &[TopicPartition],
) -> Result<Vec<(i64, i64)>, ClientError> {
    use futures::stream::{StreamExt, TryStreamExt};
    // Owned inputs: a borrowing closure here makes callers' futures fail to be `Send`
    // (rust-lang/rust#102211).
    futures::stream::iter(partitions.to_vec())
        .map(|(t, p)| {
            let admin = admin.clone();
            async move { admin.watermarks(&t, p).await }
        })
        .buffered(32)
        .try_collect()
        .await
}

/// How long a failed call's diagnosis may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A failed call to a cluster, naming the cluster (alias and address) and what was being done.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cluster {alias} ({bootstrap}): {op} failed: {source}")]
    /// The cluster (or librdkafka) refused the call, and no recently reported cause explains it
    /// better: `source` says what went wrong.
    Kafka {
        /// The cluster's alias, as in the MM2 file.
        alias: String,
        /// The cluster's `bootstrap.servers`.
        bootstrap: String,
        /// What was being done, as a phrase ("fetch metadata", "commit offsets for group g").
        op: String,
        /// librdkafka's error, as it reported it.
        source: Box<KafkaError>,
    },
    /// The call failed or timed out, and librdkafka had said why (see `diagnose`).
    #[error("cluster {alias} ({bootstrap}): {op} failed: {cause}")]
    Refused {
        /// The cluster's alias, as in the MM2 file.
        alias: String,
        /// The cluster's `bootstrap.servers`.
        bootstrap: String,
        /// What was being done, as a phrase ("fetch metadata", "commit offsets for group g").
        op: String,
        /// Why, in librdkafka's words (a failed login, an untrusted certificate, a missing ACL).
        cause: String,
    },
    /// Nothing answered within `timeout` and librdkafka gave no reason: the cluster is probably
    /// down, or unreachable from here.
    #[error("cluster {alias} ({bootstrap}): {op} timed out after {}s; is the cluster reachable?", timeout.as_secs_f64())]
    Timeout {
        /// The cluster's alias, as in the MM2 file.
        alias: String,
        /// The cluster's `bootstrap.servers`.
        bootstrap: String,
        /// What was being done, as a phrase ("fetch metadata", "commit offsets for group g").
        op: String,
        /// The deadline the call had.
        timeout: Duration,
    },
}

impl ClientError {
    /// The error of a call that failed with `source`. When `source` only says that no broker
    /// answered in time, or that login or TLS failed, and librdkafka recently reported a reason
    /// for this cluster, that reason is the error ([`ClientError::Refused`]); otherwise
    /// [`ClientError::Kafka`].
    pub fn from_kafka(ep: &Endpoint, op: &str, source: KafkaError) -> Self {
        use rdkafka::types::RDKafkaErrorCode as C;
        let vague = matches!(
            source.rdkafka_error_code(),
            Some(
                C::AllBrokersDown
                    | C::BrokerTransportFailure
                    | C::OperationTimedOut
                    | C::RequestTimedOut
                    | C::MessageTimedOut
                    | C::Authentication
                    | C::SSL
            )
        );
        if let Some(refused) = vague.then(|| Self::refused(ep, op)).flatten() {
            return refused;
        }
        Self::Kafka {
            alias: ep.alias.clone(),
            bootstrap: ep.bootstrap_servers().to_string(),
            op: op.to_string(),
            source: Box::new(source),
        }
    }

    /// The call's error when librdkafka reported a reason for `ep` recently.
    fn refused(ep: &Endpoint, op: &str) -> Option<Self> {
        diagnose::recent(ep.bootstrap_servers()).map(|cause| Self::refused_by(ep, op, cause))
    }

    fn refused_by(ep: &Endpoint, op: &str, cause: String) -> Self {
        Self::Refused {
            alias: ep.alias.clone(),
            bootstrap: ep.bootstrap_servers().to_string(),
            op: op.to_string(),
            cause,
        }
    }

    /// [`ClientError::timeout`], after asking the cluster why when nothing has said so yet
    /// (`diagnose::probe`, at most a few seconds). Blocking: for calls that failed on a
    /// blocking thread.
    pub fn timeout_diagnosed(ep: &Endpoint, op: &str, timeout: Duration) -> Self {
        match diagnose::probe(ep, PROBE_TIMEOUT) {
            Some(cause) => Self::refused_by(ep, op, cause),
            None => Self::timeout(ep, op, timeout),
        }
    }

    /// The error of a blocking call bounded by `timeout` (watermarks, committed offsets, a
    /// commit): librdkafka's timeouts and unreachable brokers become [`ClientError::Timeout`]
    /// (or the cause the cluster gives), anything else is reported as it is.
    pub fn from_blocking(ep: &Endpoint, op: &str, e: KafkaError, timeout: Duration) -> Self {
        if is_timeout(&e) || is_unreachable(&e) {
            Self::timeout_diagnosed(ep, op, timeout)
        } else {
            Self::from_kafka(ep, op, e)
        }
    }

    /// A call that ran out of time: named by its cause when librdkafka gave one.
    pub fn timeout(ep: &Endpoint, op: &str, timeout: Duration) -> Self {
        if let Some(refused) = Self::refused(ep, op) {
            return refused;
        }
        Self::Timeout {
            alias: ep.alias.clone(),
            bootstrap: ep.bootstrap_servers().to_string(),
            op: op.to_string(),
            timeout,
        }
    }

    /// The alias of the cluster the call went to.
    pub fn cluster(&self) -> &str {
        match self {
            Self::Kafka { alias, .. }
            | Self::Refused { alias, .. }
            | Self::Timeout { alias, .. } => alias,
        }
    }

    /// The librdkafka error code that says what kind of failure this is: the code the cluster or
    /// librdkafka gave, the one behind a recorded cause, or a timeout.
    pub fn code(&self) -> Option<rdkafka::types::RDKafkaErrorCode> {
        match self {
            Self::Kafka { source, .. } => source.rdkafka_error_code(),
            Self::Refused { cause, .. } => diagnose::code_of_cause(cause),
            Self::Timeout { .. } => Some(rdkafka::types::RDKafkaErrorCode::OperationTimedOut),
        }
    }

    /// Whether the call ran out of time with no known cause ([`ClientError::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether the cluster's authorizer refused the operation (a missing ACL).
    pub fn is_denied(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode as C;
        matches!(self, Self::Kafka { source, .. } if matches!(
            source.rdkafka_error_code(),
            Some(C::TopicAuthorizationFailed | C::GroupAuthorizationFailed | C::ClusterAuthorizationFailed)
        ))
    }
}

/// Whether librdkafka gave up waiting (as opposed to the cluster answering with an error).
pub(crate) fn is_timeout(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::OperationTimedOut | C::RequestTimedOut | C::MessageTimedOut)
    )
}

/// Whether the error means no broker could be reached (as opposed to a broker's answer).
pub(crate) fn is_unreachable(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::BrokerTransportFailure | C::AllBrokersDown | C::Resolve)
    )
}
