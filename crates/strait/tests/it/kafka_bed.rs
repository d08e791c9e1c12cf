//! The Apache Kafka test bed itself: clusters start from the pom's jars, serve clients through the
//! fault proxy, enforce SCRAM, TLS and ACLs, and are gone when dropped.

use std::time::Duration;

use crate::common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use strait::kafka::TopicSpec;
use strait_sandbox::kafka::{ADMIN, USERS};
use strait_sandbox::{Cluster, Security};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_node_serves_clients_through_its_proxy_and_dies_with_its_handle() {
    let Some(spec) = kafka_spec(Security::Plaintext) else {
        return;
    };
    let c = Cluster::start_kafka("k1", &spec).await.unwrap();
    assert!(c.is_kafka());
    create_topic(&c, "t", 3).await;
    produce_seq(&c, "t", 3, 300).await;
    assert_eq!(read_all(&c, "t", 3, 300).await.len(), 300);

    c.cut();
    let a = strait::kafka::Admin::new(&endpoint(&c), Duration::from_secs(2)).unwrap();
    assert!(a.topics(None).await.is_err(), "a cut cluster answered");
    c.heal();
    wait_for_count(&c, "t", 3, 300, Duration::from_secs(20)).await;

    let broker = c.broker_addr();
    drop(c);
    assert!(
        std::net::TcpStream::connect_timeout(&broker, Duration::from_secs(1)).is_err(),
        "the broker still listens on {broker} after its cluster was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_hold_replication_factor_three() {
    let Some(spec) = kafka_spec(Security::Plaintext) else {
        return;
    };
    let c = Cluster::start_kafka("k3", &spec.nodes(3)).await.unwrap();
    assert_eq!(c.bootstrap_servers().split(',').count(), 3);
    admin(&c)
        .create_topics(&[TopicSpec::new("rf3", 2, 3)])
        .await
        .unwrap();
    produce_seq(&c, "rf3", 2, 100).await;
    assert_eq!(read_all(&c, "rf3", 2, 100).await.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cluster_checks_passwords_certificates_and_acls() {
    let Some(spec) = kafka_spec(Security::SaslSslAcl) else {
        return;
    };
    let c = Cluster::start_kafka("ks", &spec).await.unwrap();
    // The super user does anything.
    create_topic(&c, "secret", 1).await;
    produce_seq(&c, "secret", 1, 10).await;
    assert_eq!(read_all(&c, "secret", 1, 10).await.len(), 10);

    // Another user logs in but may not see the topic.
    let alice = endpoint_as(&c, USERS[1]);
    let topics = strait::kafka::Admin::new(&alice, Duration::from_secs(10))
        .unwrap()
        .topics(None)
        .await
        .unwrap();
    assert!(
        !topics.iter().any(|t| t.name == "secret"),
        "alice sees a topic she has no ACL for: {topics:?}"
    );
    let denied = rdkafka_admin(&alice)
        .create_topics(
            &[NewTopic::new("alice-topic", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    let msg = format!("{denied:?}");
    assert!(msg.contains("Authorization"), "{msg}");

    // A wrong password is refused.
    let wrong = endpoint(&c).with("sasl.password", "not-the-password");
    let consumer: BaseConsumer = wrong.consumer_config("g").create().unwrap();
    assert!(
        consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .is_err(),
        "a wrong password was accepted"
    );

    // A client that does not trust the run's CA cannot connect.
    let untrusting = endpoint(&c).with("ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt");
    let consumer: BaseConsumer = untrusting.consumer_config("g").create().unwrap();
    assert!(consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .is_err());

    assert!(c.access().password(ADMIN).is_some());
    assert_eq!(c.access().secrets().len(), 1 + USERS.len() + 1);
}

fn rdkafka_admin(ep: &strait::kafka::Endpoint) -> AdminClient<DefaultClientContext> {
    ep.admin_config().create().unwrap()
}
