//! ACL bindings and the DescribeAcls / CreateAcls calls, through librdkafka's C API (rdkafka 0.39
//! has no safe ACL API). The decisions about which ACLs to sync are in `replicate::acls`.
//!
//! Both calls block the calling thread: callers run them on tokio's blocking pool (see
//! `Admin::describe_topic_acls` and `Admin::create_acls`).

use std::ffi::CString;
use std::ptr;
use std::time::Duration;

use super::diagnose::Diagnosed;
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use super::alter_configs::{borrowed_str, c_string, invalid_arg, request, AdminFailure};
use super::ClientError;

/// What kind of resource a binding is on. Only topics are synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    /// A topic (`TOPIC`): the only kind that is synced.
    Topic,
    /// A consumer group (`GROUP`).
    Group,
    /// Kafka's CLUSTER resource (librdkafka's BROKER).
    Cluster,
    /// A transactional producer's id (`TRANSACTIONAL_ID`).
    TransactionalId,
    /// Anything librdkafka does not know (it reports such resources as UNKNOWN).
    Unknown,
}

/// How a binding's resource name matches. Only literal names are synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    /// `LITERAL`: the name is one resource's exact name (or `*`, every resource).
    Literal,
    /// `PREFIXED`: the binding covers every resource whose name starts with the name.
    Prefixed,
    /// Anything else librdkafka reports; such a binding cannot be created.
    Unknown,
}

/// The operation a binding allows or denies (Kafka's `AclOperation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// `ALL`: every operation.
    All,
    /// `READ`: consume from a topic, read or commit a group's offsets.
    Read,
    /// `WRITE`: produce to a topic.
    Write,
    /// `CREATE`: create a topic (granted on the topic, or on the cluster for every topic).
    Create,
    /// `DELETE`: delete the resource (or a topic's records).
    Delete,
    /// `ALTER`: change the resource (on a topic: add partitions).
    Alter,
    /// `DESCRIBE`: see the resource (metadata, offsets, a group's description).
    Describe,
    /// `CLUSTER_ACTION`: the brokers' own requests to each other.
    ClusterAction,
    /// `DESCRIBE_CONFIGS`: read the resource's configs.
    DescribeConfigs,
    /// `ALTER_CONFIGS`: change the resource's configs.
    AlterConfigs,
    /// `IDEMPOTENT_WRITE`: produce idempotently (on the cluster).
    IdempotentWrite,
    /// Anything librdkafka does not know (such as the token operations).
    Unknown,
}

/// Whether a binding allows or denies its operation (Kafka's `AclPermissionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// `ALLOW`: the principal may do the operation.
    Allow,
    /// `DENY`: the principal may not, whatever other bindings allow.
    Deny,
    /// Anything librdkafka does not know; such a binding cannot be created.
    Unknown,
}

/// One ACL binding: a resource pattern and an access control entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// Kind of resource the binding is on.
    pub resource_type: ResourceType,
    /// How [`AclBinding::name`] matches resource names.
    pub pattern_type: PatternType,
    /// The resource name (`*` on a literal pattern is Kafka's wildcard: every resource).
    pub name: String,
    /// `User:alice`.
    pub principal: String,
    /// `*` for any host.
    pub host: String,
    /// The operation the binding is about.
    pub operation: Operation,
    /// Whether that operation is allowed or denied to the principal.
    pub permission: Permission,
}

impl AclBinding {
    /// A literal topic binding, from any host.
    pub fn topic(
        name: impl Into<String>,
        principal: impl Into<String>,
        operation: Operation,
        permission: Permission,
    ) -> Self {
        Self {
            resource_type: ResourceType::Topic,
            pattern_type: PatternType::Literal,
            name: name.into(),
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }
}

/// A failed ACL call. The cluster having no authorizer, or not implementing the ACL API, is an
/// expected answer rather than a fault: MM2 logs it once and skips ACL sync, so callers can tell
/// those apart from other errors.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The cluster has no authorizer (the broker answered SECURITY_DISABLED), so it has no ACLs.
    #[error("cluster {alias} ({bootstrap}): {op}: no authorizer is configured (SecurityDisabled)")]
    SecurityDisabled {
        /// The cluster's alias, as in the MM2 file.
        alias: String,
        /// The cluster's `bootstrap.servers`.
        bootstrap: String,
        /// What was being done ("describe topic ACLs", "create 3 ACL bindings").
        op: String,
    },
    /// The cluster does not implement the ACL API (UNSUPPORTED_VERSION or UNSUPPORTED_FEATURE).
    #[error("cluster {alias} ({bootstrap}): {op}: not supported by the cluster ({reason})")]
    Unsupported {
        /// The cluster's alias, as in the MM2 file.
        alias: String,
        /// The cluster's `bootstrap.servers`.
        bootstrap: String,
        /// What was being done ("describe topic ACLs", "create 3 ACL bindings").
        op: String,
        /// The broker's message, or the error code's name when it sent none.
        reason: String,
    },
    /// Any other failure (a timeout, an unreachable cluster, a refused authorization), as for
    /// any other call.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl AclError {
    /// The cluster has no ACLs to sync or take (no authorizer, or no ACL API), as opposed to a
    /// failure worth retrying.
    pub fn means_no_acls(&self) -> bool {
        matches!(
            self,
            Self::SecurityDisabled { .. } | Self::Unsupported { .. }
        )
    }
}

/// How an [`AdminFailure`] of an ACL call is classified.
pub(crate) enum AclFailureKind {
    SecurityDisabled,
    Unsupported,
    Other,
}

pub(crate) fn classify(f: &AdminFailure) -> AclFailureKind {
    match f.code {
        RDKafkaErrorCode::SecurityDisabled => AclFailureKind::SecurityDisabled,
        RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature => {
            AclFailureKind::Unsupported
        }
        _ => AclFailureKind::Other,
    }
}

/// Every TOPIC binding of the cluster (any pattern type, principal, host, operation and
/// permission). Blocks the calling thread.
pub(crate) fn describe_topic_acls(
    client: &AdminClient<Diagnosed>,
    timeout: Duration,
) -> Result<Vec<AclBinding>, AdminFailure> {
    let rk = client.inner().native_ptr();
    // SAFETY: `rk` is owned by `client`, alive for the call. The filter and the event are owned
    // by guards; the bindings the result lends are only read while the event is alive.
    unsafe {
        let mut errstr = [0 as std::os::raw::c_char; 512];
        let filter = Binding(rd::rd_kafka_AclBindingFilter_new(
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            ptr::null(),
            rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
            ptr::null(),
            ptr::null(),
            rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
            rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
            errstr.as_mut_ptr(),
            errstr.len(),
        ));
        if filter.0.is_null() {
            return Err(invalid_arg(&borrowed_str(errstr.as_ptr())));
        }
        // librdkafka copies the filter: ours is still freed by its guard.
        let event = request(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
            rd::RD_KAFKA_EVENT_DESCRIBEACLS_RESULT,
            timeout,
            |options, queue| rd::rd_kafka_DescribeAcls(rk, filter.0, options, queue),
        )?;
        let result = rd::rd_kafka_event_DescribeAcls_result(event.0);
        if result.is_null() {
            return Err(invalid_arg("event without a DescribeAcls result"));
        }
        let mut count = 0usize;
        let acls = rd::rd_kafka_DescribeAcls_result_acls(result, &mut count);
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let b = *acls.add(i);
            out.push(AclBinding {
                resource_type: resource_type_from(rd::rd_kafka_AclBinding_restype(b)),
                pattern_type: pattern_type_from(rd::rd_kafka_AclBinding_resource_pattern_type(b)),
                name: borrowed_str(rd::rd_kafka_AclBinding_name(b)),
                principal: borrowed_str(rd::rd_kafka_AclBinding_principal(b)),
                host: borrowed_str(rd::rd_kafka_AclBinding_host(b)),
                operation: operation_from(rd::rd_kafka_AclBinding_operation(b)),
                permission: permission_from(rd::rd_kafka_AclBinding_permission_type(b)),
            });
        }
        Ok(out)
    }
}

/// Create `bindings` (existing ones are not an error: Kafka treats a create as idempotent).
/// Bindings with an `Unknown` part cannot be expressed and are refused before any request.
/// Blocks the calling thread.
///
/// librdkafka 2.12.1's CreateAcls response parser returns "no error" without a result when a
/// response does not parse (for example, fewer results than bindings, which is what Tansu 0.6
/// sends), and then aborts the process on `assert(rko_result)`. Nothing here can catch that, so
/// callers must not send CreateAcls to such a broker.
pub(crate) fn create_acls(
    client: &AdminClient<Diagnosed>,
    bindings: &[AclBinding],
    timeout: Duration,
) -> Result<(), AdminFailure> {
    if bindings.is_empty() {
        return Ok(());
    }
    let rk = client.inner().native_ptr();
    // SAFETY: as in `describe_topic_acls`; each new binding is owned by a guard until freed, and
    // librdkafka copies them into the request.
    unsafe {
        let mut owned = Vec::with_capacity(bindings.len());
        for b in bindings {
            owned.push(new_binding(b)?);
        }
        let mut ptrs: Vec<*mut rd::rd_kafka_AclBinding_t> = owned.iter().map(|b| b.0).collect();
        let event = request(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
            rd::RD_KAFKA_EVENT_CREATEACLS_RESULT,
            timeout,
            |options, queue| {
                rd::rd_kafka_CreateAcls(rk, ptrs.as_mut_ptr(), ptrs.len(), options, queue)
            },
        )?;
        let result = rd::rd_kafka_event_CreateAcls_result(event.0);
        if result.is_null() {
            return Err(invalid_arg("event without a CreateAcls result"));
        }
        let mut count = 0usize;
        let results = rd::rd_kafka_CreateAcls_result_acls(result, &mut count);
        for i in 0..count {
            // The error belongs to the result (and so to the event): read it, do not free it.
            let err = rd::rd_kafka_acl_result_error(*results.add(i));
            if !err.is_null() {
                let code = rd::rd_kafka_error_code(err);
                let msg = borrowed_str(rd::rd_kafka_error_string(err));
                return Err(AdminFailure::new(code.into(), Some(msg)));
            }
        }
        Ok(())
    }
}

/// # Safety
/// Calls librdkafka; the returned guard owns the new binding.
unsafe fn new_binding(b: &AclBinding) -> Result<Binding, AdminFailure> {
    // SAFETY: the caller upholds this function's contract (librdkafka is linked and initialised);
    // every pointer passed below is a CString or guard alive for the call.
    unsafe {
        let unknown = |what: &str| invalid_arg(&format!("cannot create an ACL with {what}: {b:?}"));
        let restype = match b.resource_type {
            ResourceType::Topic => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            ResourceType::Group => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP,
            ResourceType::Cluster => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
            ResourceType::TransactionalId => {
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID
            }
            ResourceType::Unknown => return Err(unknown("an unknown resource type")),
        };
        let pattern = match b.pattern_type {
            PatternType::Literal => {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL
            }
            PatternType::Prefixed => {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED
            }
            PatternType::Unknown => return Err(unknown("an unknown pattern type")),
        };
        use rd::rd_kafka_AclOperation_t as O;
        let operation = match b.operation {
            Operation::All => O::RD_KAFKA_ACL_OPERATION_ALL,
            Operation::Read => O::RD_KAFKA_ACL_OPERATION_READ,
            Operation::Write => O::RD_KAFKA_ACL_OPERATION_WRITE,
            Operation::Create => O::RD_KAFKA_ACL_OPERATION_CREATE,
            Operation::Delete => O::RD_KAFKA_ACL_OPERATION_DELETE,
            Operation::Alter => O::RD_KAFKA_ACL_OPERATION_ALTER,
            Operation::Describe => O::RD_KAFKA_ACL_OPERATION_DESCRIBE,
            Operation::ClusterAction => O::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
            Operation::DescribeConfigs => O::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
            Operation::AlterConfigs => O::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
            Operation::IdempotentWrite => O::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
            Operation::Unknown => return Err(unknown("an unknown operation")),
        };
        use rd::rd_kafka_AclPermissionType_t as P;
        let permission = match b.permission {
            Permission::Allow => P::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
            Permission::Deny => P::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
            Permission::Unknown => return Err(unknown("an unknown permission")),
        };
        let (name, principal, host): (CString, CString, CString) = (
            c_string(&b.name)?,
            c_string(&b.principal)?,
            c_string(&b.host)?,
        );
        let mut errstr = [0 as std::os::raw::c_char; 512];
        let binding = Binding(rd::rd_kafka_AclBinding_new(
            restype,
            name.as_ptr(),
            pattern,
            principal.as_ptr(),
            host.as_ptr(),
            operation,
            permission,
            errstr.as_mut_ptr(),
            errstr.len(),
        ));
        if binding.0.is_null() {
            return Err(invalid_arg(&borrowed_str(errstr.as_ptr())));
        }
        Ok(binding)
    }
}

fn resource_type_from(t: rd::rd_kafka_ResourceType_t) -> ResourceType {
    use rd::rd_kafka_ResourceType_t as R;
    match t {
        R::RD_KAFKA_RESOURCE_TOPIC => ResourceType::Topic,
        R::RD_KAFKA_RESOURCE_GROUP => ResourceType::Group,
        R::RD_KAFKA_RESOURCE_BROKER => ResourceType::Cluster,
        R::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID => ResourceType::TransactionalId,
        _ => ResourceType::Unknown,
    }
}

fn pattern_type_from(t: rd::rd_kafka_ResourcePatternType_t) -> PatternType {
    use rd::rd_kafka_ResourcePatternType_t as R;
    match t {
        R::RD_KAFKA_RESOURCE_PATTERN_LITERAL => PatternType::Literal,
        R::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => PatternType::Prefixed,
        _ => PatternType::Unknown,
    }
}

fn operation_from(o: rd::rd_kafka_AclOperation_t) -> Operation {
    use rd::rd_kafka_AclOperation_t as O;
    match o {
        O::RD_KAFKA_ACL_OPERATION_ALL => Operation::All,
        O::RD_KAFKA_ACL_OPERATION_READ => Operation::Read,
        O::RD_KAFKA_ACL_OPERATION_WRITE => Operation::Write,
        O::RD_KAFKA_ACL_OPERATION_CREATE => Operation::Create,
        O::RD_KAFKA_ACL_OPERATION_DELETE => Operation::Delete,
        O::RD_KAFKA_ACL_OPERATION_ALTER => Operation::Alter,
        O::RD_KAFKA_ACL_OPERATION_DESCRIBE => Operation::Describe,
        O::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION => Operation::ClusterAction,
        O::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS => Operation::DescribeConfigs,
        O::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS => Operation::AlterConfigs,
        O::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE => Operation::IdempotentWrite,
        _ => Operation::Unknown,
    }
}

fn permission_from(p: rd::rd_kafka_AclPermissionType_t) -> Permission {
    use rd::rd_kafka_AclPermissionType_t as P;
    match p {
        P::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => Permission::Allow,
        P::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => Permission::Deny,
        _ => Permission::Unknown,
    }
}

/// Owns an `rd_kafka_AclBinding_t` (or a filter, the same type).
struct Binding(*mut rd::rd_kafka_AclBinding_t);

impl Drop for Binding {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by rd_kafka_AclBinding(Filter)_new and destroyed only here.
            unsafe { rd::rd_kafka_AclBinding_destroy(self.0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parts_are_refused_before_any_request() {
        let mut b = AclBinding::topic(
            "orders",
            "User:alice",
            Operation::Unknown,
            Permission::Allow,
        );
        // SAFETY: only builds (and frees) a binding.
        let e = unsafe { new_binding(&b) }.err().expect("refused");
        assert_eq!(e.code, RDKafkaErrorCode::InvalidArgument);
        b.operation = Operation::Read;
        assert!(unsafe { new_binding(&b) }.is_ok());
        b.name = "a\0b".into();
        assert!(unsafe { new_binding(&b) }.is_err());
    }

    #[test]
    fn security_disabled_and_unsupported_are_told_apart() {
        let f = |c| AdminFailure::new(c, None);
        assert!(matches!(
            classify(&f(RDKafkaErrorCode::SecurityDisabled)),
            AclFailureKind::SecurityDisabled
        ));
        assert!(matches!(
            classify(&f(RDKafkaErrorCode::UnsupportedVersion)),
            AclFailureKind::Unsupported
        ));
        assert!(matches!(
            classify(&f(RDKafkaErrorCode::ClusterAuthorizationFailed)),
            AclFailureKind::Other
        ));
    }
}
