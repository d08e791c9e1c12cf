//! Async admin and metadata calls with deadlines. rdkafka's metadata and watermark calls block the
//! calling thread, so they run on tokio's blocking pool; every call is bounded by a timeout and
//! its error names the cluster and its address.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::diagnose::Diagnosed;
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource as RdConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::acls::{self, AclBinding, AclError, AclFailureKind};
use super::alter_configs::{self, AdminFailure, AlterOp};
use super::{ClientError, Endpoint};

/// Topic as seen in cluster metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name on this cluster.
    pub name: String,
    /// Partition count in the cluster's metadata.
    pub partitions: i32,
}

/// The topics of a metadata answer; a topic with an error fails the whole answer, except one
/// that does not exist (left out).
fn topic_infos(md: &rdkafka::metadata::Metadata) -> Result<Vec<TopicInfo>, KafkaError> {
    let mut out = Vec::new();
    for topic in md.topics() {
        if let Some(err) = topic.error() {
            let code = RDKafkaErrorCode::from(err);
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                continue;
            }
            return Err(KafkaError::MetadataFetch(code));
        }
        out.push(TopicInfo {
            name: topic.name().to_string(),
            partitions: topic.partitions().len() as i32,
        });
    }
    Ok(out)
}

/// The topics as [`Admin::topics`] lists them (all, or `only`), through a plain client made for
/// this one request and let go without waiting for it (see [`super::dispose`]). For a one-shot
/// question an [`Admin`] costs more: its client polls for results on a thread of its own, which
/// dropping it waits for, up to 100 ms.
pub(crate) async fn topics_once(
    endpoint: &Endpoint,
    only: Option<&str>,
    timeout: Duration,
) -> Result<Vec<TopicInfo>, ClientError> {
    use rdkafka::consumer::Consumer as _;
    let client: rdkafka::consumer::BaseConsumer<Diagnosed> = endpoint
        .admin_config()
        .create_with_context(endpoint.context())
        .map_err(|e| ClientError::from_kafka(endpoint, "create a metadata client", e))?;
    let (ep, only) = (endpoint.clone(), only.map(str::to_string));
    super::blocking(move || {
        let got = client
            .fetch_metadata(only.as_deref(), timeout)
            .and_then(|md| topic_infos(&md))
            .map_err(|e| ClientError::from_blocking(&ep, "fetch metadata", e, timeout));
        super::dispose(client);
        got
    })
    .await
}

/// What to create: name, partitions, replication factor and topic configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name of the topic to create.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replicas per partition; the broker refuses more than it has brokers.
    pub replication_factor: i32,
    /// Topic configs set at creation, by Kafka name (`retention.ms`); the rest are the broker's
    /// defaults.
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic with no configs of its own.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Add topic config `k` = `v` (a later value for the same key replaces an earlier one).
    pub fn config(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.configs.insert(k.into(), v.into());
        self
    }
}

/// Outcome of creating one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The cluster created the topic.
    Created,
    /// The topic was there already (TOPIC_ALREADY_EXISTS); it was left as it is.
    AlreadyExists,
}

/// Where a topic config value comes from (Kafka's `ConfigEntry.ConfigSource`). MM2's config filter
/// (MM2-SPEC §5) decides on it, so it is kept rather than flattened into name → value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// The broker did not say (brokers before 1.1).
    Unknown,
    /// Set on the topic (`DYNAMIC_TOPIC_CONFIG`).
    DynamicTopic,
    /// A per-broker dynamic value (`DYNAMIC_BROKER_CONFIG`).
    DynamicBroker,
    /// The cluster-wide dynamic default (`DYNAMIC_DEFAULT_BROKER_CONFIG`).
    DynamicDefaultBroker,
    /// From the broker's properties file (`STATIC_BROKER_CONFIG`).
    StaticBroker,
    /// Kafka's built-in default (`DEFAULT_CONFIG`).
    Default,
}

impl From<RdConfigSource> for ConfigSource {
    fn from(s: RdConfigSource) -> Self {
        match s {
            RdConfigSource::Unknown => Self::Unknown,
            RdConfigSource::DynamicTopic => Self::DynamicTopic,
            RdConfigSource::DynamicBroker => Self::DynamicBroker,
            RdConfigSource::DynamicDefaultBroker => Self::DynamicDefaultBroker,
            RdConfigSource::StaticBroker => Self::StaticBroker,
            RdConfigSource::Default => Self::Default,
        }
    }
}

/// One entry of a topic's described configs, with what MM2's filter needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntryInfo {
    /// Config name, as Kafka spells it (`retention.ms`).
    pub name: String,
    /// `None` when the broker withholds it (sensitive) or has none.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// The broker does not let this config be changed.
    pub read_only: bool,
    /// The value is a secret, which the broker does not return.
    pub sensitive: bool,
}

impl ConfigEntryInfo {
    /// An entry set on the topic (`DYNAMIC_TOPIC_CONFIG`), writable and not sensitive.
    pub fn topic(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
            source: ConfigSource::DynamicTopic,
            read_only: false,
            sensitive: false,
        }
    }
}

/// An admin client for one cluster.
#[derive(Clone)]
pub struct Admin {
    endpoint: Arc<Endpoint>,
    client: Arc<AdminClient<Diagnosed>>,
    timeout: Duration,
}

impl Admin {
    /// Build the client. This does not contact the cluster: the first call does.
    pub fn new(endpoint: &Endpoint, timeout: Duration) -> Result<Self, ClientError> {
        let client = endpoint
            .admin_config()
            .create_with_context::<_, AdminClient<Diagnosed>>(endpoint.context())
            .map_err(|e| ClientError::from_kafka(endpoint, "create an admin client", e))?;
        Ok(Self {
            endpoint: Arc::new(endpoint.clone()),
            client: Arc::new(client),
            timeout,
        })
    }

    /// The cluster this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Bound `fut` by this client's timeout, naming `op` in the error.
    async fn bounded<T>(
        &self,
        op: &str,
        fut: impl std::future::Future<Output = Result<T, KafkaError>>,
    ) -> Result<T, ClientError> {
        // A little slack over librdkafka's own timeout, so that its (more precise) error wins.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if super::is_timeout(&e) => Err(self.timed_out(op, self.timeout).await),
            Ok(Err(e)) => Err(ClientError::from_kafka(&self.endpoint, op, e)),
            Err(_) => Err(self.timed_out(op, self.timeout).await),
        }
    }

    /// The error of a call that ran out of time, with its cause when the cluster tells one.
    async fn timed_out(&self, op: &str, timeout: Duration) -> ClientError {
        let (ep, op2) = (self.endpoint.clone(), op.to_string());
        tokio::task::spawn_blocking(move || ClientError::timeout_diagnosed(&ep, &op2, timeout))
            .await
            .unwrap_or_else(|_| ClientError::timeout(&self.endpoint, op, timeout))
    }

    /// Run a blocking rdkafka call on the blocking pool, bounded by the timeout.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &str,
        f: impl FnOnce(&AdminClient<Diagnosed>, Duration) -> Result<T, KafkaError> + Send + 'static,
    ) -> Result<T, ClientError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let started = std::time::Instant::now();
        let fut = async move {
            tokio::task::spawn_blocking(move || f(&client, timeout))
                .await
                .unwrap_or(Err(KafkaError::Canceled))
        };
        match self.bounded(op, fut).await {
            // librdkafka waits the whole timeout for a usable broker and then says "transport
            // failure"; to the user that is a timeout (nothing answered in time).
            Err(ClientError::Kafka { source, .. })
                if started.elapsed() >= timeout && super::is_unreachable(&source) =>
            {
                Err(self.timed_out(op, timeout).await)
            }
            other => other,
        }
    }

    /// All topics (or one) with their partition counts.
    pub async fn topics(&self, only: Option<&str>) -> Result<Vec<TopicInfo>, ClientError> {
        let only = only.map(str::to_string);
        self.blocking("fetch metadata", move |c, t| {
            topic_infos(&c.inner().fetch_metadata(only.as_deref(), t)?)
        })
        .await
    }

    /// The topic ids of those of `names` that exist (base64), to tell a topic created again
    /// under the same name (see `topic_ids`).
    pub async fn topic_ids(
        &self,
        names: Vec<String>,
    ) -> Result<std::collections::HashMap<String, String>, ClientError> {
        self.blocking("describe topics", move |c, t| {
            super::topic_ids::describe(c.inner(), &names, t)
        })
        .await
    }

    /// Number of brokers in the cluster (used to cap replication factors).
    pub async fn broker_count(&self) -> Result<usize, ClientError> {
        self.blocking("fetch metadata", |c, t| {
            Ok(c.inner().fetch_metadata(None, t)?.brokers().len())
        })
        .await
    }

    /// Low and high watermarks of one partition.
    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), ClientError> {
        let topic = topic.to_string();
        self.blocking("fetch watermarks", move |c, t| {
            c.inner().fetch_watermarks(&topic, partition, t)
        })
        .await
    }

    /// Create topics; a topic that already exists is reported as such, not as an error.
    pub async fn create_topics(
        &self,
        specs: &[TopicSpec],
    ) -> Result<Vec<(String, Created)>, ClientError> {
        let new: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|s| {
                let mut t = NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(s.replication_factor),
                );
                for (k, v) in &s.configs {
                    t = t.set(k, v);
                }
                t
            })
            .collect();
        let opts = self.options();
        let results = self
            .bounded("create topics", self.client.create_topics(&new, &opts))
            .await?;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(name) => out.push((name, Created::Created)),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    out.push((name, Created::AlreadyExists))
                }
                Err((name, code)) => {
                    return Err(ClientError::from_kafka(
                        &self.endpoint,
                        &format!("create topic {name}"),
                        KafkaError::AdminOp(code),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Raise `topic`'s partition count to `total` (never lowers it: Kafka refuses).
    pub async fn create_partitions(&self, topic: &str, total: usize) -> Result<(), ClientError> {
        let opts = self.options();
        let op = format!("add partitions to topic {topic}");
        let req = [rdkafka::admin::NewPartitions::new(topic, total)];
        let results = self
            .bounded(&op, self.client.create_partitions(&req, &opts))
            .await?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(ClientError::from_kafka(
                    &self.endpoint,
                    &op,
                    KafkaError::AdminOp(code),
                ));
            }
        }
        Ok(())
    }

    /// The topic configs the cluster reports for `topic` (name → value), every entry with a
    /// value whatever its source.
    pub async fn topic_configs(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        Ok(self
            .topic_config_entries(topic)
            .await?
            .into_iter()
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect())
    }

    /// Every config entry the cluster reports for `topic`, with its source and flags, as the
    /// broker said them (see `replicate::configs` for what MM2 copies).
    pub async fn topic_config_entries(
        &self,
        topic: &str,
    ) -> Result<Vec<ConfigEntryInfo>, ClientError> {
        let opts = self.options();
        let spec = [ResourceSpecifier::Topic(topic)];
        let op = format!("describe configs of topic {topic}");
        let mut results = self
            .bounded(&op, self.client.describe_configs(&spec, &opts))
            .await?;
        let resource = results
            .pop()
            .ok_or(KafkaError::AdminOpCreation("no result".into()))
            .and_then(|r| r.map_err(KafkaError::AdminOp))
            .map_err(|e| ClientError::from_kafka(&self.endpoint, &op, e))?;
        Ok(resource
            .entries
            .into_iter()
            .map(|e| ConfigEntryInfo {
                name: e.name,
                value: e.value,
                source: e.source.into(),
                read_only: e.is_read_only,
                sensitive: e.is_sensitive,
            })
            .collect())
    }

    /// Apply `ops` to `topic`'s configs in one IncrementalAlterConfigs request (SET and DELETE
    /// leave every other config alone, unlike the legacy AlterConfigs, which replaces them all).
    /// Nothing is sent when `ops` is empty. The broker's own message, if any, is in the error.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        ops: &[AlterOp],
    ) -> Result<(), ClientError> {
        if ops.is_empty() {
            return Ok(());
        }
        let op = format!("alter configs of topic {topic}");
        let (t, o) = (topic.to_string(), ops.to_vec());
        let outcome = self
            .blocking(&op, move |c, timeout| {
                Ok(alter_configs::incremental_alter_topic_configs(
                    c, &t, &o, timeout,
                ))
            })
            .await?;
        outcome.map_err(|f| self.native_error(&op, f))
    }

    /// Every TOPIC ACL binding of the cluster (literal and prefixed, any principal).
    pub async fn describe_topic_acls(&self) -> Result<Vec<AclBinding>, AclError> {
        let op = "describe topic ACLs";
        let outcome = self
            .blocking(op, |c, timeout| Ok(acls::describe_topic_acls(c, timeout)))
            .await?;
        outcome.map_err(|f| self.acl_error(op, f))
    }

    /// Create `bindings` (additive; bindings that already exist are not an error). Nothing is
    /// sent when `bindings` is empty.
    ///
    /// Never call this against a Tansu broker (the sandbox): Tansu answers CreateAcls with no
    /// per-binding results, and librdkafka 2.12.1's response parser then aborts the process.
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<(), AclError> {
        if bindings.is_empty() {
            return Ok(());
        }
        let op = format!("create {} ACL bindings", bindings.len());
        let b = bindings.to_vec();
        let outcome = self
            .blocking(&op, move |c, timeout| Ok(acls::create_acls(c, &b, timeout)))
            .await?;
        outcome.map_err(|f| self.acl_error(&op, f))
    }

    /// An error from a native (FFI) admin request, naming the cluster and, if the broker said
    /// more than the code, its message.
    fn native_error(&self, op: &str, f: AdminFailure) -> ClientError {
        if f.is_timeout() {
            return ClientError::timeout(&self.endpoint, op, self.timeout);
        }
        let op = match &f.message {
            Some(m) => format!("{op} ({m})"),
            None => op.to_string(),
        };
        ClientError::from_kafka(&self.endpoint, &op, KafkaError::AdminOp(f.code))
    }

    /// Tell "no authorizer" and "no ACL API" apart from other failures (MM2 skips ACL sync on
    /// those, logging once).
    fn acl_error(&self, op: &str, f: AdminFailure) -> AclError {
        let (alias, bootstrap) = (
            self.endpoint.alias.clone(),
            self.endpoint.bootstrap_servers().to_string(),
        );
        match acls::classify(&f) {
            AclFailureKind::SecurityDisabled => AclError::SecurityDisabled {
                alias,
                bootstrap,
                op: op.to_string(),
            },
            AclFailureKind::Unsupported => AclError::Unsupported {
                alias,
                bootstrap,
                op: op.to_string(),
                reason: f.message.clone().unwrap_or_else(|| f.code.to_string()),
            },
            AclFailureKind::Other => AclError::Client(self.native_error(op, f)),
        }
    }
}
