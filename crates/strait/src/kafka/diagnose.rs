//! Why calls to a cluster fail, as librdkafka's error callback says it.
//!
//! A wrong SASL password, a certificate the client does not trust or a missing ACL rarely fail a
//! call outright: librdkafka retries the connection and the call runs into its deadline, so the
//! operator would read "timed out; is the cluster reachable?" for a cluster that answered
//! "invalid credentials". Every client strait creates reports librdkafka's errors here
//! ([`Diagnosed`], or [`record`] from a context of its own), and an error built for a timed-out
//! or failed call names the recent cause instead ([`super::ClientError::timeout`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode as C;
use tracing::warn;

/// How long a reported cause explains failures of the same cluster's calls. Long enough to cover
/// a call's deadline; short enough that a fixed cluster's later troubles are not misread.
const FRESH: Duration = Duration::from_secs(60);

/// The latest cause per cluster, keyed by its bootstrap servers.
static CAUSES: Mutex<Option<HashMap<String, (Instant, String)>>> = Mutex::new(None);

/// Note an error librdkafka reported for a client of the cluster at `bootstrap`, when it tells
/// why calls cannot succeed (authentication, TLS, authorization).
pub(crate) fn record(bootstrap: &str, error: &KafkaError, reason: &str) {
    if let Some(cause) = explain(error.rdkafka_error_code(), reason) {
        remember(bootstrap, cause);
    }
}

/// Note `cause` as why calls to the cluster at `bootstrap` fail (see [`recent`]).
pub(crate) fn remember(bootstrap: &str, cause: String) {
    tracing::debug!(%bootstrap, %cause, "connection failure recorded");
    let mut m = CAUSES.lock().unwrap_or_else(|e| e.into_inner());
    m.get_or_insert_with(HashMap::new)
        .insert(bootstrap.to_string(), (Instant::now(), cause));
}

/// The cause recorded for `bootstrap` within the last minute.
pub(crate) fn recent(bootstrap: &str) -> Option<String> {
    let m = CAUSES.lock().unwrap_or_else(|e| e.into_inner());
    m.as_ref()?
        .get(bootstrap)
        .filter(|(at, _)| at.elapsed() < FRESH)
        .map(|(_, c)| c.clone())
}

/// Ask the cluster once more, with a client whose events are read at once, and return what
/// librdkafka says is wrong (within `within`). Blocking.
///
/// librdkafka queues its errors and logs for the application to poll; a client that is blocked
/// in a call, or never polled (an admin client's main queue, an assigned reader that must not lose
/// a record), hears of them only later or never. A fresh, unassigned consumer can be polled
/// freely: this is how a failed call learns its cause.
pub(crate) fn probe(ep: &super::Endpoint, within: Duration) -> Option<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    if let Some(cause) = recent(ep.bootstrap_servers()) {
        return Some(cause);
    }
    // Without SASL or TLS there is no login or handshake to fail: a call that timed out met a
    // cluster that is away, and asking again would only add to the wait.
    let secured = ep
        .props
        .get("security.protocol")
        .is_some_and(|p| !p.eq_ignore_ascii_case("plaintext"));
    if !secured {
        return None;
    }
    let mut cfg = ep.consumer_config("strait-probe");
    cfg.set("client.id", format!("strait-{}-probe", ep.alias));
    let c: BaseConsumer<Diagnosed> = cfg.create_with_context(ep.context()).ok()?;
    if c.fetch_metadata(None, within).is_ok() {
        return None;
    }
    // Deliver what librdkafka queued while the call waited.
    for _ in 0..3 {
        let _ = c.poll(Duration::ZERO);
    }
    recent(ep.bootstrap_servers())
}

const AUTHENTICATION: &str =
    "authentication failed (check the cluster's sasl.jaas.config or sasl.username/sasl.password)";
const TLS: &str = "the TLS handshake failed (check the cluster's truststore or ssl.ca.location)";
const AUTHORIZATION: &str = "not authorized (the cluster's ACLs do not allow this principal)";

/// An operator's reading of librdkafka's error, or `None` for errors that do not explain a
/// failure by themselves (a broker restarting, a transient disconnect).
pub(crate) fn explain(code: Option<C>, reason: &str) -> Option<String> {
    let what = match code? {
        C::Authentication | C::SaslAuthenticationFailed => AUTHENTICATION,
        C::SSL => TLS,
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed => AUTHORIZATION,
        _ => return None,
    };
    Some(format!("{what}: {}", reason.trim()))
}

/// The kind of failure a cause written by [`explain`] reports, as a librdkafka code.
pub(crate) fn code_of_cause(cause: &str) -> Option<C> {
    [
        (AUTHENTICATION, C::Authentication),
        (TLS, C::SSL),
        (AUTHORIZATION, C::TopicAuthorizationFailed),
    ]
    .into_iter()
    .find(|(what, _)| cause.starts_with(what))
    .map(|(_, code)| code)
}

/// A client context that reports librdkafka's errors to [`record`] and logs them.
#[derive(Clone, Debug)]
pub struct Diagnosed {
    bootstrap: Arc<str>,
}

impl Diagnosed {
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: Arc::from(bootstrap),
        }
    }
}

impl ClientContext for Diagnosed {
    fn error(&self, error: KafkaError, reason: &str) {
        record(&self.bootstrap, &error, reason);
        warn!(target: "librdkafka", "{error}: {reason}");
    }

    /// librdkafka logs connection failures from its own threads, where the error callback waits
    /// for the client to be polled (a reader that only asks for watermarks never is).
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            if let Some(code) = code_of_log(message) {
                if let Some(cause) = explain(Some(code), message) {
                    remember(&self.bootstrap, cause);
                }
            }
        }
        DefaultClientContext.log(level, fac, message)
    }
}

/// `ClientContext` for a context that carries a [`Diagnosed`] in field `$field` and adds only
/// delivery or rebalance handling of its own: errors and logs go where every client's go.
macro_rules! diagnosed_client_context {
    ($ty:ty, $field:ident) => {
        impl rdkafka::ClientContext for $ty {
            fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
                rdkafka::ClientContext::error(&self.$field, error, reason)
            }

            fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
                rdkafka::ClientContext::log(&self.$field, level, fac, message)
            }
        }
    };
}
pub(crate) use diagnosed_client_context;

/// The error a librdkafka log line reports, for the failures [`explain`] knows.
pub(crate) fn code_of_log(message: &str) -> Option<C> {
    if message.contains("SASL authentication error") {
        Some(C::Authentication)
    } else if message.contains("SSL handshake failed") {
        Some(C::SSL)
    } else {
        None
    }
}

impl ConsumerContext for Diagnosed {}

impl ProducerContext for Diagnosed {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_worth_telling_an_operator() {
        let auth = explain(
            Some(C::Authentication),
            "SASL authentication error: Authentication failed due to invalid credentials",
        )
        .unwrap();
        assert!(auth.starts_with("authentication failed"), "{auth}");
        assert!(auth.contains("invalid credentials"), "{auth}");
        assert!(explain(Some(C::SSL), "certificate verify failed")
            .unwrap()
            .contains("truststore"));
        assert!(explain(Some(C::TopicAuthorizationFailed), "x")
            .unwrap()
            .starts_with("not authorized"));
        assert_eq!(
            explain(Some(C::AllBrokersDown), "1/1 brokers are down"),
            None
        );
        assert_eq!(explain(None, "x"), None);
        let line = "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        assert_eq!(code_of_log(line), Some(C::Authentication));
        assert_eq!(
            code_of_log("ssl://h:9093/1: SSL handshake failed: certificate verify failed"),
            Some(C::SSL)
        );
        assert_eq!(code_of_log("Connection refused"), None);
        // A cause names its kind again (how a flow classifies the errors built from it).
        assert_eq!(code_of_cause(&auth), Some(C::Authentication));
        assert_eq!(
            code_of_cause(&explain(Some(C::SSL), "x").unwrap()),
            Some(C::SSL)
        );
        assert_eq!(code_of_cause("Connection refused"), None);
    }

    #[test]
    fn a_recorded_cause_is_per_cluster() {
        record(
            "10.0.0.1:9093",
            &KafkaError::Global(rdkafka::error::RDKafkaErrorCode::Authentication),
            "bad password",
        );
        assert!(recent("10.0.0.1:9093").unwrap().contains("bad password"));
        assert_eq!(recent("10.0.0.2:9093"), None);
    }
}
