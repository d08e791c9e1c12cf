//! The broker's `server.properties` and log4j2 file for each node: pure text from the plan, so the
//! choices (listeners, security, replication of internal topics) are tested without a JVM.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use super::Security;

/// One node's addresses. `external` is where the broker listens for clients; clients never use it
/// directly: the broker advertises `advertised` (its fault proxy), so all client traffic passes the
/// proxy. `internal` carries replication between nodes and `controller` the KRaft quorum; neither
/// passes a proxy, as brokers of one region share a network that a region's loss takes down whole.
#[derive(Clone, Debug)]
pub(crate) struct NodePorts {
    pub(crate) id: u32,
    pub(crate) external: SocketAddr,
    pub(crate) advertised: SocketAddr,
    pub(crate) internal: SocketAddr,
    pub(crate) controller: SocketAddr,
}

/// What the TLS side of a secure node needs: the broker's PKCS#12 keystore and the CA (PEM) that
/// client certificates are checked against.
#[derive(Clone, Debug)]
pub(crate) struct BrokerTls<'a> {
    pub(crate) keystore_p12: &'a Path,
    pub(crate) password: &'a str,
    pub(crate) ca_pem: &'a Path,
}

/// Everything a node's properties depend on.
pub(crate) struct NodePlan<'a> {
    pub(crate) node: &'a NodePorts,
    pub(crate) all: &'a [NodePorts],
    pub(crate) data_dir: &'a Path,
    pub(crate) security: Security,
    /// The SCRAM login brokers use between themselves (the super user).
    pub(crate) admin: (&'a str, &'a str),
    pub(crate) tls: Option<BrokerTls<'a>>,
}

const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// `server.properties` for one combined broker-and-controller node.
pub(crate) fn server_properties(p: &NodePlan<'_>) -> String {
    let n = p.all.len();
    let voters: Vec<String> = p
        .all
        .iter()
        .map(|o| format!("{}@{}", o.id, o.controller))
        .collect();
    let (external, internal) = match p.security {
        Security::Plaintext => ("PLAINTEXT", "PLAINTEXT"),
        Security::SaslSsl | Security::SaslSslAcl => ("SASL_SSL", "SASL_PLAINTEXT"),
    };
    // Internal topics replicated like users' topics in production, within what the cluster has.
    let rf = n.min(3);
    let min_isr = if n >= 3 { 2 } else { 1 };
    let mut s = String::new();
    let mut kv = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(s, "{k}={v}");
    };
    kv("process.roles", &"broker,controller");
    kv("node.id", &p.node.id);
    kv("controller.quorum.voters", &voters.join(","));
    kv("controller.listener.names", &"CONTROLLER");
    kv(
        "listeners",
        &format!(
            "EXTERNAL://{},INTERNAL://{},CONTROLLER://{}",
            p.node.external, p.node.internal, p.node.controller
        ),
    );
    kv(
        "advertised.listeners",
        &format!(
            "EXTERNAL://{},INTERNAL://{}",
            p.node.advertised, p.node.internal
        ),
    );
    kv("inter.broker.listener.name", &"INTERNAL");
    kv(
        "listener.security.protocol.map",
        &format!("EXTERNAL:{external},INTERNAL:{internal},CONTROLLER:PLAINTEXT"),
    );
    kv("log.dirs", &p.data_dir.display());
    kv("num.partitions", &1);
    kv("default.replication.factor", &rf);
    kv("min.insync.replicas", &1);
    kv("offsets.topic.replication.factor", &rf);
    // Fewer partitions than the default 50: the first group of a test creates them all.
    kv("offsets.topic.num.partitions", &5);
    kv("transaction.state.log.replication.factor", &rf);
    kv("transaction.state.log.min.isr", &min_isr);
    kv("transaction.state.log.num.partitions", &5);
    kv("share.coordinator.state.topic.replication.factor", &rf);
    kv("share.coordinator.state.topic.min.isr", &min_isr);
    kv("group.initial.rebalance.delay.ms", &0);
    kv("log.segment.bytes", &(16 * 1024 * 1024));
    kv("log.cleaner.backoff.ms", &1000);
    kv("auto.create.topics.enable", &true);
    kv("delete.topic.enable", &true);
    if p.security != Security::Plaintext {
        let (user, password) = p.admin;
        // OAUTHBEARER with Kafka's unsecured validator (unsigned JWTs, `sub` is the principal):
        // enough to test a client's OIDC token endpoint flow end to end.
        kv("sasl.enabled.mechanisms", &"SCRAM-SHA-512");
        kv(
            "listener.name.external.sasl.enabled.mechanisms",
            &"SCRAM-SHA-512,OAUTHBEARER",
        );
        kv(
            "listener.name.external.oauthbearer.sasl.jaas.config",
            &"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        );
        kv("sasl.mechanism.inter.broker.protocol", &"SCRAM-SHA-512");
        kv(
            "listener.name.external.scram-sha-512.sasl.jaas.config",
            &format!("{SCRAM} required;"),
        );
        kv(
            "listener.name.internal.scram-sha-512.sasl.jaas.config",
            &format!("{SCRAM} required username=\"{user}\" password=\"{password}\";"),
        );
        if let Some(tls) = &p.tls {
            kv("ssl.keystore.type", &"PKCS12");
            kv("ssl.keystore.location", &tls.keystore_p12.display());
            kv("ssl.keystore.password", &tls.password);
            kv("ssl.truststore.type", &"PEM");
            kv("ssl.truststore.location", &tls.ca_pem.display());
            // A client may present a certificate (one from a JKS or PKCS#12 keystore, say); when it
            // does, it must be signed by the run's CA. Identity still comes from SASL.
            kv("ssl.client.auth", &"requested");
        }
    }
    if p.security == Security::SaslSslAcl {
        kv(
            "authorizer.class.name",
            &"org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        );
        // ANONYMOUS is the principal of the controller listener (plaintext, loopback, never
        // advertised to clients): brokers must be able to register with the quorum.
        kv("super.users", &format!("User:{};User:ANONYMOUS", p.admin.0));
        kv("allow.everyone.if.no.acl.found", &false);
    }
    s
}

/// log4j2 configuration: everything at INFO to stdout except the loggers in `levels` (name,
/// level), which the test bed writes to the process's log file (kept when a test fails).
pub(crate) fn log4j2_yaml(levels: &[(&str, &str)]) -> String {
    let mut s = String::from(
        "Configuration:\n  Appenders:\n    Console:\n      name: STDOUT\n      target: SYSTEM_OUT\n      \
         PatternLayout:\n        pattern: \"[%d] %p %m (%c)%n\"\n  Loggers:\n    Logger:\n",
    );
    for (name, level) in levels {
        s.push_str(&format!("      - name: {name}\n        level: {level}\n"));
    }
    s.push_str("    Root:\n      level: INFO\n      AppenderRef:\n        - ref: STDOUT\n");
    s
}

/// The brokers' quieter loggers. The readiness line comes from `kafka.server.KafkaRaftServer`.
pub(crate) const BROKER_LOG_LEVELS: &[(&str, &str)] = &[
    ("kafka.log.LogCleaner", "WARN"),
    ("state.change.logger", "WARN"),
    ("org.apache.kafka.storage.internals.log", "WARN"),
];

/// The line a node logs once it is a registered, unfenced broker that accepts clients.
pub(crate) const READY_LINE: &str = "Kafka Server started";

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(id: u32, base: u16) -> NodePorts {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        NodePorts {
            id,
            external: a(base),
            advertised: a(base + 1),
            internal: a(base + 2),
            controller: a(base + 3),
        }
    }

    fn props(text: &str) -> std::collections::BTreeMap<&str, &str> {
        text.lines().filter_map(|l| l.split_once('=')).collect()
    }

    #[test]
    fn one_plaintext_node_advertises_its_proxy_and_votes_alone() {
        let all = [ports(1, 9000)];
        let text = server_properties(&NodePlan {
            node: &all[0],
            all: &all,
            data_dir: Path::new("/tmp/d"),
            security: Security::Plaintext,
            admin: ("admin", "pw"),
            tls: None,
        });
        let p = props(&text);
        assert_eq!(p["controller.quorum.voters"], "1@127.0.0.1:9003");
        assert_eq!(
            p["advertised.listeners"],
            "EXTERNAL://127.0.0.1:9001,INTERNAL://127.0.0.1:9002"
        );
        assert_eq!(
            p["listener.security.protocol.map"],
            "EXTERNAL:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
        );
        assert_eq!(p["offsets.topic.replication.factor"], "1");
        assert_eq!(p["transaction.state.log.min.isr"], "1");
        assert!(!p.contains_key("authorizer.class.name"));
        assert!(!text.contains("pw"), "no SASL login in a plaintext node");
    }

    #[test]
    fn three_secure_nodes_with_acls_share_voters_and_replicate_internal_topics() {
        let all = [ports(1, 9000), ports(2, 9010), ports(3, 9020)];
        let ks = Path::new("/tmp/broker.p12");
        let ca = Path::new("/tmp/ca.pem");
        let text = server_properties(&NodePlan {
            node: &all[1],
            all: &all,
            data_dir: Path::new("/tmp/d2"),
            security: Security::SaslSslAcl,
            admin: ("admin", "s3cret"),
            tls: Some(BrokerTls {
                keystore_p12: ks,
                password: "kspw",
                ca_pem: ca,
            }),
        });
        let p = props(&text);
        assert_eq!(p["node.id"], "2");
        assert_eq!(
            p["controller.quorum.voters"],
            "1@127.0.0.1:9003,2@127.0.0.1:9013,3@127.0.0.1:9023"
        );
        assert_eq!(
            p["listener.security.protocol.map"],
            "EXTERNAL:SASL_SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
        );
        assert_eq!(p["offsets.topic.replication.factor"], "3");
        assert_eq!(p["transaction.state.log.min.isr"], "2");
        assert_eq!(p["allow.everyone.if.no.acl.found"], "false");
        assert_eq!(p["super.users"], "User:admin;User:ANONYMOUS");
        assert!(p["listener.name.internal.scram-sha-512.sasl.jaas.config"]
            .contains("username=\"admin\" password=\"s3cret\""));
        assert_eq!(
            p["listener.name.external.scram-sha-512.sasl.jaas.config"],
            format!("{SCRAM} required;")
        );
        assert_eq!(p["ssl.keystore.location"], "/tmp/broker.p12");
    }
}
