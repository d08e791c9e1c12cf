//! Building librdkafka client configurations from a map of properties, with the defaults strait
//! relies on, and a redacted view for anything that prints or logs a configuration.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// librdkafka properties for one cluster: `bootstrap.servers`, security settings, and any
/// client overrides. Keys are librdkafka's names (translation from Java names happens in config).
pub type Props = BTreeMap<String, String>;

/// A cluster strait talks to: its alias (as in the MM2 file) and its client properties.
/// Every error that comes from a client built here names the alias and the bootstrap address.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The cluster's alias in the MM2 file; it names the cluster in errors and in client ids
    /// (`strait-{alias}-{role}`).
    pub alias: String,
    /// librdkafka properties, `bootstrap.servers` included; may hold secrets (see
    /// [`Endpoint::redacted`]).
    pub props: Props,
}

/// Debug output is redacted: an endpoint can end up in a log line or a panic message.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("alias", &self.alias)
            .field("props", &self.redacted())
            .finish()
    }
}

impl Endpoint {
    /// An endpoint with only `bootstrap.servers` set: librdkafka's defaults (PLAINTEXT, no login)
    /// for the rest.
    pub fn new(alias: impl Into<String>, bootstrap_servers: impl Into<String>) -> Self {
        let mut props = Props::new();
        props.insert("bootstrap.servers".into(), bootstrap_servers.into());
        Self {
            alias: alias.into(),
            props,
        }
    }

    /// Set librdkafka property `key` (replacing an earlier value).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.props.insert(key.into(), value.into());
        self
    }

    /// The `bootstrap.servers` property, empty when unset. Errors name the cluster by it, and
    /// `kafka::diagnose` files the cluster's connection failures under it.
    pub fn bootstrap_servers(&self) -> &str {
        self.props
            .get("bootstrap.servers")
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Configuration for a producer that never loses or duplicates what it was given:
    /// idempotent, acks=all. Explicit properties win over these defaults, except that
    /// idempotence cannot be switched off (strait's data path depends on it).
    pub fn producer_config(&self) -> ClientConfig {
        let mut cfg = base(&self.alias, "producer");
        cfg.set("acks", "all");
        cfg.set("linger.ms", "5");
        // 32 MiB of records waiting for the target, as a Java producer's `buffer.memory`
        // (librdkafka's own default is 1 GiB): a target that is away fills this, and the copy
        // loop then pauses the source instead of buffering more.
        cfg.set("queue.buffering.max.kbytes", "32768");
        apply(&mut cfg, &self.props);
        cfg.set("enable.idempotence", "true");
        cfg
    }

    /// Configuration for a consumer in `group_id` that commits only when told to.
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut cfg = base(&self.alias, "consumer");
        cfg.set("enable.auto.commit", "false");
        cfg.set("enable.auto.offset.store", "false");
        cfg.set("auto.offset.reset", "earliest");
        // Eager assignment: Tansu hands out empty assignments to cooperative-sticky members.
        cfg.set("partition.assignment.strategy", "range,roundrobin");
        apply(&mut cfg, &self.props);
        cfg.set("group.id", group_id);
        cfg
    }

    /// The context every client of this cluster is created with: it keeps librdkafka's reasons
    /// for failing calls (see `super::diagnose`).
    pub fn context(&self) -> super::diagnose::Diagnosed {
        super::diagnose::Diagnosed::new(self.bootstrap_servers())
    }

    /// Configuration for admin and metadata requests: the properties as given, over strait's base
    /// settings (client id `strait-{alias}-admin`, librdkafka's logging quieted).
    pub fn admin_config(&self) -> ClientConfig {
        let mut cfg = base(&self.alias, "admin");
        apply(&mut cfg, &self.props);
        cfg
    }

    /// The properties with every secret replaced by `[redacted]`, for printing and logging.
    pub fn redacted(&self) -> Props {
        redact(&self.props)
    }
}

fn base(alias: &str, role: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("client.id", format!("strait-{alias}-{role}"));
    // Quiet librdkafka's own logging; strait reports connection problems itself, once, by cluster.
    cfg.set("log_level", "3");
    // No KIP-714 metrics push unless a user asks for it: librdkafka otherwise keeps eight
    // latency histograms per broker in every client (~100 KB each time), and strait's clients
    // are many and its own metrics are on `/metrics`.
    cfg.set("enable.metrics.push", "false");
    cfg
}

fn apply(cfg: &mut ClientConfig, props: &Props) {
    for (k, v) in props {
        cfg.set(k, v);
    }
}

/// What librdkafka makes of one property, asked without creating a client (no I/O).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PropertyCheck {
    Ok,
    /// librdkafka has no property of this name.
    Unknown,
    /// The name is known and the value is not acceptable; librdkafka's reason.
    Invalid(String),
}

/// Ask librdkafka whether `key = value` is a valid client property, so that config validation
/// agrees with the client library exactly instead of with a hand-kept list of its properties.
pub(crate) fn check_property(key: &str, value: &str) -> PropertyCheck {
    let mut cfg = ClientConfig::new();
    cfg.set(key, value);
    match cfg.create_native_config() {
        Ok(_) => PropertyCheck::Ok,
        Err(rdkafka::error::KafkaError::ClientConfig(res, desc, _, _)) => {
            if res == rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN {
                PropertyCheck::Unknown
            } else {
                PropertyCheck::Invalid(desc)
            }
        }
        Err(e) => PropertyCheck::Invalid(e.to_string()),
    }
}

/// Whether a property holds a secret that must never be printed.
pub(crate) fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("jaas")
        || k.ends_with(".key.pem")
        || k.ends_with("token")
        || k.contains("credentials")
}

pub(crate) fn redact(props: &Props) -> Props {
    props
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(k) {
                "[redacted]".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(cfg: &ClientConfig, k: &str) -> Option<String> {
        cfg.get(k).map(str::to_string)
    }

    #[test]
    fn producer_is_idempotent_even_if_asked_otherwise() {
        let ep = Endpoint::new("us-east", "h:1")
            .with("enable.idempotence", "false")
            .with("linger.ms", "50");
        let cfg = ep.producer_config();
        assert_eq!(get(&cfg, "enable.idempotence").as_deref(), Some("true"));
        assert_eq!(get(&cfg, "acks").as_deref(), Some("all"));
        assert_eq!(get(&cfg, "linger.ms").as_deref(), Some("50"));
        assert_eq!(get(&cfg, "bootstrap.servers").as_deref(), Some("h:1"));
        assert_eq!(
            get(&cfg, "client.id").as_deref(),
            Some("strait-us-east-producer")
        );
    }

    #[test]
    fn consumer_commits_manually_with_eager_assignors() {
        let cfg = Endpoint::new("a", "h:1").consumer_config("g1");
        assert_eq!(get(&cfg, "group.id").as_deref(), Some("g1"));
        assert_eq!(get(&cfg, "enable.auto.commit").as_deref(), Some("false"));
        assert_eq!(
            get(&cfg, "partition.assignment.strategy").as_deref(),
            Some("range,roundrobin")
        );
    }

    #[test]
    fn librdkafka_judges_properties() {
        assert_eq!(check_property("linger.ms", "5"), PropertyCheck::Ok);
        assert_eq!(
            check_property("max.poll.records", "5"),
            PropertyCheck::Unknown
        );
        assert!(matches!(
            check_property("compression.type", "brotli"),
            PropertyCheck::Invalid(_)
        ));
    }

    #[test]
    fn secrets_are_redacted() {
        let ep = Endpoint::new("a", "h:1")
            .with("sasl.password", "hunter2")
            .with("ssl.key.password", "k")
            .with("sasl.oauthbearer.client.secret", "s")
            .with("sasl.username", "alice");
        let r = ep.redacted();
        assert_eq!(r["sasl.password"], "[redacted]");
        assert_eq!(r["ssl.key.password"], "[redacted]");
        assert_eq!(r["sasl.oauthbearer.client.secret"], "[redacted]");
        assert_eq!(r["sasl.username"], "alice");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{ep:?}").contains("hunter2"));
    }
}
