//! strait's own Kafka client (`strait::kafka::raw`, the passthrough data path's of issue 19)
//! against real brokers: plaintext on both engines, SCRAM-SHA-512 over TLS on Apache Kafka, and
//! what an operator reads when a password or a CA is wrong.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use strait::kafka::raw::{Conn, ErrorKind};
use strait::kafka::Endpoint;
use strait_sandbox::kafka::pki::Pki;
use strait_sandbox::kafka::ADMIN;
use strait_sandbox::{Cluster, Security};

use crate::common::*;

/// The Metadata versions asked for: from the first that lists every topic for a null list, to
/// the last this test's reading of the answer knows.
const METADATA: std::ops::RangeInclusive<i16> = 4..=12;

fn all_topics() -> MetadataRequest {
    MetadataRequest::default().with_topics(None)
}

/// The topics an answer lists, with their partition counts.
fn topics(resp: &kafka_protocol::messages::MetadataResponse) -> Vec<(String, usize)> {
    resp.topics
        .iter()
        .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), t.partitions.len())))
        .collect()
}

/// The topics a Metadata call on `conn` lists.
async fn listed(conn: &mut Conn) -> Vec<(String, usize)> {
    let v = conn
        .version(ApiKey::Metadata, METADATA)
        .expect("a Metadata version");
    let resp = conn
        .call(&all_topics(), v)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    topics(&resp)
}

on_both_engines! {
/// PLAINTEXT: ApiVersions at connect, a Metadata call listing a topic just created, and three
/// Metadata requests in flight at once, answered in order.
async fn a_plaintext_broker_answers_api_versions_and_metadata(engine) {
    let c = engine.cluster("raw").await;
    create_topic(&c, "listed", 2).await;
    let mut conn = Conn::bootstrap(&endpoint(&c))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conn.cluster(), "raw");
    assert_eq!(conn.addr(), c.bootstrap_servers().split(',').next().unwrap());
    for key in [ApiKey::Metadata, ApiKey::Fetch, ApiKey::Produce, ApiKey::ListOffsets] {
        let theirs = conn.broker_versions(key).unwrap_or_else(|| panic!("{key:?} not offered"));
        let v = conn.version(key, 0..=i16::MAX).unwrap_or_else(|| panic!("{key:?}: no common version"));
        assert!(theirs.contains(&v), "{key:?} v{v} outside the broker's {theirs:?}");
    }
    assert_eq!(conn.version(ApiKey::Metadata, 100..=200), None);
    assert!(
        listed(&mut conn).await.contains(&("listed".to_string(), 2)),
        "{:?}",
        listed(&mut conn).await
    );

    let v = conn.version(ApiKey::Metadata, METADATA).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(conn.send(&all_topics(), v).await.unwrap_or_else(|e| panic!("{e}")));
    }
    assert_eq!(conn.in_flight(), 3);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    for _ in 0..3 {
        let resp = conn.recv::<MetadataRequest>().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(topics(&resp).contains(&("listed".to_string(), 2)));
    }
    assert_eq!(conn.in_flight(), 0);
    assert!(conn.is_usable());
}
}

/// SASL_SSL with SCRAM-SHA-512 on Apache Kafka: a login over TLS that checks the broker's
/// certificate and host name (with the CA as a file, or as PEM with a client certificate),
/// and, when something is wrong, one sentence naming the cluster, the address and the cause,
/// never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_over_tls_logs_in_and_a_wrong_password_or_ca_says_so() {
    let Some(spec) = kafka_spec(Security::SaslSsl) else {
        return;
    };
    let c = Cluster::start_kafka("raw-secure", &spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    create_topic(&c, "secured", 1).await;
    let ep = endpoint(&c).with("socket.timeout.ms", "20000");
    let addr = c.bootstrap_servers();
    let password = c.access().password(ADMIN).unwrap().to_string();

    let mut conn = Conn::connect(&ep, &addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(listed(&mut conn)
        .await
        .contains(&("secured".to_string(), 1)));

    // The CA as PEM text, and the client's certificate, which the broker then checks.
    let pki = c.access().pki().unwrap();
    let (cert, key) = pki.client_pem();
    let mut pem = ep.clone();
    pem.props.remove("ssl.ca.location");
    let pem = pem
        .with("ssl.ca.pem", std::fs::read_to_string(pki.ca_pem()).unwrap())
        .with("ssl.certificate.location", cert.display().to_string())
        .with("ssl.key.location", key.display().to_string());
    let mut conn = Conn::connect(&pem, &addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(listed(&mut conn)
        .await
        .contains(&("secured".to_string(), 1)));

    // A wrong password: the broker's refusal, naming cluster and address, no password.
    let wrong = "not-the-password-4711";
    let e = Conn::connect(&ep.clone().with("sasl.password", wrong), &addr)
        .await
        .unwrap_err();
    let (text, debug) = (e.to_string(), format!("{e:?}"));
    eprintln!("wrong password: {text}");
    assert!(matches!(e.kind, ErrorKind::Auth(_)), "{text}");
    assert!(
        text.starts_with(&format!(
            "cluster raw-secure ({addr}): authentication failed: "
        )),
        "{text}"
    );
    for secret in [wrong, password.as_str()] {
        assert!(!text.contains(secret) && !debug.contains(secret), "{debug}");
    }
    assert_eq!(text.lines().count(), 1, "{text}");

    // A mechanism the broker does not take: it says which it takes.
    let e = Conn::connect(&ep.clone().with("sasl.mechanisms", "SCRAM-SHA-256"), &addr)
        .await
        .unwrap_err();
    eprintln!("mechanism: {e}");
    assert!(
        matches!(&e.kind, ErrorKind::MechanismRefused { offered, .. } if offered.contains("SCRAM-SHA-512")),
        "{e}"
    );

    // A CA that did not sign the broker's certificate.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    Pki::write_unrelated_ca(&other_ca).unwrap();
    let e = Conn::connect(
        &ep.clone()
            .with("ssl.ca.location", other_ca.display().to_string()),
        &addr,
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    eprintln!("unrelated CA: {text}");
    assert!(matches!(e.kind, ErrorKind::Tls(_)), "{text}");
    assert!(
        text.starts_with(&format!(
            "cluster raw-secure ({addr}): TLS handshake failed: "
        )),
        "{text}"
    );
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(!format!("{e:?}").contains(&password));
    // ...which is no error with the check turned off, as in librdkafka.
    let unchecked = ep
        .clone()
        .with("ssl.ca.location", other_ca.display().to_string())
        .with("enable.ssl.certificate.verification", "false");
    let mut conn = Conn::connect(&unchecked, &addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(listed(&mut conn)
        .await
        .contains(&("secured".to_string(), 1)));

    // No TLS to a TLS listener: an error soon, not a wait for the timeout.
    let t = std::time::Instant::now();
    let e = Conn::connect(
        &ep.clone().with("security.protocol", "SASL_PLAINTEXT"),
        &addr,
    )
    .await
    .unwrap_err();
    eprintln!("no TLS: {e} (after {:?})", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "{e} after {:?}",
        t.elapsed()
    );
    assert!(!e.to_string().contains(&password), "{e}");
}

/// What an endpoint asks of the raw client that it does not do is an error at connect, before
/// any I/O, in the same words as `unsupported` (which a flow uses to keep librdkafka).
#[tokio::test]
async fn an_unsupported_login_is_refused_before_connecting() {
    let ep = Endpoint::new("legacy", "127.0.0.1:1")
        .with("security.protocol", "SASL_SSL")
        .with("sasl.mechanisms", "GSSAPI");
    let e = Conn::bootstrap(&ep).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("sasl.mechanisms = GSSAPI"), "{e}");
}
