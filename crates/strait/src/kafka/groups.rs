//! Consumer groups seen from outside: list them, read and write their committed offsets, and
//! whether anyone is consuming. librdkafka's group APIs block; each call here runs on tokio's
//! blocking pool ([`super::blocking`]), so callers are async and never hold a runtime thread.
//!
//! Reading and writing a group's offsets uses a consumer configured with that group id that never
//! subscribes, so it never joins the group: a commit from it is the "simple consumer" commit the
//! broker accepts only while the group has no active members. That client also describes the
//! group and can fetch the cluster's metadata, so one connection to the cluster serves all that
//! a caller asks about one group. Calls take `&self`: several may run at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};

use super::diagnose::Diagnosed;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::{ClientError, Endpoint};

/// A group as the cluster lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub name: String,
    /// The broker's state name: `Empty`, `Stable`, `PreparingRebalance`, `Dead`, ...
    pub state: String,
    pub members: usize,
}

impl GroupListing {
    /// Whether consumers are in the group now (a commit from outside would be rejected or
    /// overwritten).
    pub fn is_active(&self) -> bool {
        self.members > 0
            || matches!(
                self.state.as_str(),
                "Stable" | "PreparingRebalance" | "CompletingRebalance" | "AwaitingSync"
            )
    }
}

/// A committed group offset with its metadata, as Kafka's `OffsetAndMetadata`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetAndMetadata {
    /// The committed offset: the next record the group will read.
    pub offset: i64,
    /// The commit's metadata; a missing value is the empty string, as MM2 stores it.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset with its commit metadata (`""` for none).
    pub fn new(offset: i64, metadata: impl Into<String>) -> Self {
        Self {
            offset,
            metadata: metadata.into(),
        }
    }
}

/// A topic and partition: upstream in group offsets, downstream (renamed) in checkpoints.
pub type TopicPartition = (String, i32);

/// Group operations on one cluster.
pub struct Groups {
    endpoint: Endpoint,
    timeout: Duration,
    /// One non-joining consumer per group, kept for the next call.
    clients: Mutex<HashMap<String, Arc<BaseConsumer<Diagnosed>>>>,
    lister: Mutex<Option<Arc<BaseConsumer<Diagnosed>>>>,
}

impl Drop for Groups {
    fn drop(&mut self) {
        let clients = std::mem::take(self.clients.get_mut().unwrap_or_else(|e| e.into_inner()));
        let lister = self
            .lister
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if !clients.is_empty() || lister.is_some() {
            super::dispose((clients, lister));
        }
    }
}

impl Groups {
    /// Group operations on `endpoint`, each call bounded by `timeout`. No client is made here:
    /// each is created on first use and kept.
    pub fn new(endpoint: &Endpoint, timeout: Duration) -> Self {
        Self {
            endpoint: endpoint.clone(),
            timeout,
            clients: Mutex::new(HashMap::new()),
            lister: Mutex::new(None),
        }
    }

    /// The cluster these operations go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A client of this cluster from `cfg`, named as strait's group client.
    fn make(
        &self,
        mut cfg: rdkafka::ClientConfig,
        what: &str,
    ) -> Result<Arc<BaseConsumer<Diagnosed>>, ClientError> {
        cfg.set(
            "client.id",
            format!("strait-{}-groups", self.endpoint.alias),
        );
        cfg.create_with_context(self.endpoint.context())
            .map(Arc::new)
            .map_err(|e| ClientError::from_kafka(&self.endpoint, what, e))
    }

    fn client(&self, group: &str) -> Result<Arc<BaseConsumer<Diagnosed>>, ClientError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(group) {
            return Ok(c.clone());
        }
        let c = self.make(
            self.endpoint.consumer_config(group),
            &format!("create a client for group {group}"),
        )?;
        clients.insert(group.to_string(), c.clone());
        Ok(c)
    }

    fn lister(&self) -> Result<Arc<BaseConsumer<Diagnosed>>, ClientError> {
        let mut lister = self.lister.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &*lister {
            return Ok(c.clone());
        }
        let c = self.make(
            self.endpoint.admin_config(),
            "create a group listing client",
        )?;
        *lister = Some(c.clone());
        Ok(c)
    }

    /// Make `group`'s client now, so that it connects to the cluster while the caller does
    /// something else before its first question about the group. A client that cannot be made
    /// is left for that question to report.
    pub(crate) fn prepare(&self, group: &str) {
        let _ = self.client(group);
    }

    /// Every group on the cluster, or just `group` (asked through the client of that group, which
    /// reads and commits its offsets too).
    pub async fn list(&self, group: Option<&str>) -> Result<Vec<GroupListing>, ClientError> {
        let lister = match group {
            Some(g) => self.client(g)?,
            None => self.lister()?,
        };
        let op = match group {
            Some(g) => format!("describe group {g}"),
            None => "list consumer groups".to_string(),
        };
        let (group, timeout) = (group.map(str::to_string), self.timeout);
        super::blocking(move || {
            let list = coordinator_retry(timeout, || {
                lister.fetch_group_list(group.as_deref(), timeout)
            })?;
            Ok(list
                .groups()
                .iter()
                .map(|g| GroupListing {
                    name: g.name().to_string(),
                    state: g.state().to_string(),
                    members: g.members().len(),
                })
                .collect())
        })
        .await
        .map_err(|e| self.error(&op, e))
    }

    /// The group's committed offsets for `partitions` (those it has no offset for are left out).
    pub async fn committed(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, ClientError> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let timeout = self.timeout;
        let op = format!("read the committed offsets of group {group}");
        let client = self.client(group)?;
        let got = super::blocking(move || {
            coordinator_retry(timeout, || {
                let got = client.committed_offsets(tpl.clone(), timeout)?;
                // A partition's own error (the coordinator loading, a group being rebalanced)
                // is the call's: read as "no commit", it made a group look as if it had none.
                match got.elements().iter().find_map(|e| e.error().err()) {
                    Some(e) => Err(e),
                    None => Ok(got),
                }
            })
        })
        .await
        .map_err(|e| self.error(&op, e))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some((
                    (e.topic().to_string(), e.partition()),
                    OffsetAndMetadata {
                        offset: o,
                        metadata: e.metadata().to_string(),
                    },
                )),
                _ => None,
            })
            .collect())
    }

    /// Commit `offsets` for `group` without joining it.
    pub async fn commit(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), c) in offsets {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(c.offset));
            if let Some(mut e) = tpl.find_partition(t, *p) {
                e.set_metadata(c.metadata.clone());
            }
        }
        let op = format!("commit offsets for group {group}");
        let timeout = self.timeout;
        let client = self.client(group)?;
        super::blocking(move || {
            coordinator_retry(timeout, || client.commit(&tpl, CommitMode::Sync))
        })
        .await
        .map_err(|e| self.error(&op, e))
    }

    fn error(&self, op: &str, e: KafkaError) -> ClientError {
        ClientError::from_blocking(&self.endpoint, op, e, self.timeout)
    }
}

/// Run `call` again while the group coordinator is moving or loading (NOT_COORDINATOR,
/// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE), for up to `within`. Apache Kafka
/// answers so while it creates or loads `__consumer_offsets` (a new cluster, a broker restart),
/// and Kafka's own clients retry it; any other answer is returned at once.
fn coordinator_retry<T>(
    within: Duration,
    mut call: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, KafkaError> {
    use rdkafka::types::RDKafkaErrorCode as C;
    let deadline = std::time::Instant::now() + within;
    loop {
        match call() {
            Err(e)
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        C::NotCoordinator
                            | C::CoordinatorLoadInProgress
                            | C::CoordinatorNotAvailable
                    )
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}
