//! IncrementalAlterConfigs (KIP-339) through librdkafka's C API.
//!
//! rdkafka 0.39's safe API only has the legacy AlterConfigs, which replaces a topic's whole config
//! set (so one call could wipe configs it did not mention) and which some brokers (Tansu) do not
//! implement. MM2 syncs configs with IncrementalAlterConfigs SET/DELETE (MM2-SPEC §5), so this
//! module calls `rd_kafka_IncrementalAlterConfigs` directly. Every librdkafka object is owned by
//! a guard that destroys it on drop, so every return path (including early errors) frees it.
//!
//! The call blocks the calling thread while it waits for the answer: callers run it on tokio's
//! blocking pool (see `Admin::alter_topic_configs`). The guards and `request` are shared with
//! the ACL calls in `kafka::acls`.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;
use std::time::Duration;

use super::diagnose::Diagnosed;
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

/// One change to a topic config.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlterOp {
    /// Set `name` to `value` on the topic.
    Set {
        /// Config name, as Kafka spells it (`retention.ms`).
        name: String,
        /// The new value, in Kafka's string form.
        value: String,
    },
    /// Remove the topic's own value, reverting `name` to the broker's default.
    Delete {
        /// Config name, as Kafka spells it (`retention.ms`).
        name: String,
    },
}

impl AlterOp {
    /// A SET of config `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Set {
            name: name.into(),
            value: value.into(),
        }
    }

    /// A DELETE of config `name` (back to the broker's default).
    pub fn delete(name: impl Into<String>) -> Self {
        Self::Delete { name: name.into() }
    }

    /// The config the operation changes.
    pub fn name(&self) -> &str {
        match self {
            Self::Set { name, .. } | Self::Delete { name } => name,
        }
    }
}

/// Why a native admin request failed: librdkafka's or the broker's error code, and the message
/// that came with it (the broker's message names, say, the offending config; the code does not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AdminFailure {
    pub code: RDKafkaErrorCode,
    pub message: Option<String>,
}

impl AdminFailure {
    pub(super) fn new(code: RDKafkaErrorCode, message: Option<String>) -> Self {
        // Brokers often answer "" or repeat the code's name: only keep a message that adds to it.
        let message = message.filter(|m| !m.is_empty());
        Self { code, message }
    }

    /// librdkafka (or the broker) gave up waiting.
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(
            self.code,
            RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut
        )
    }
}

/// Apply `ops` to the configs of `topic` in one IncrementalAlterConfigs request and wait up to
/// `timeout` (plus a little) for the answer. Blocks the calling thread.
pub(crate) fn incremental_alter_topic_configs(
    client: &AdminClient<Diagnosed>,
    topic: &str,
    ops: &[AlterOp],
    timeout: Duration,
) -> Result<(), AdminFailure> {
    let rk = client.inner().native_ptr();
    let c_topic = c_string(topic)?;

    // SAFETY (whole block): `rk` is a live rd_kafka_t owned by `client`, which outlives this call.
    // Every pointer librdkafka hands out is checked for NULL and then owned by exactly one guard;
    // pointers it lends (names, error strings, result arrays) are only read while their owner
    // (the event or the resource) is alive.
    unsafe {
        let resource = Resource(rd::rd_kafka_ConfigResource_new(
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            c_topic.as_ptr(),
        ));
        if resource.0.is_null() {
            return Err(invalid_arg("cannot create a config resource"));
        }
        for op in ops {
            let (kind, name, value) = match op {
                AlterOp::Set { name, value } => (
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    name,
                    Some(c_string(value)?),
                ),
                AlterOp::Delete { name } => (
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                    name,
                    None,
                ),
            };
            let c_name = c_string(name)?;
            // DELETE takes a NULL value ("revert to the default").
            let value_ptr = value.as_ref().map_or(ptr::null(), |v| v.as_ptr());
            let err = RdError(rd::rd_kafka_ConfigResource_add_incremental_config(
                resource.0,
                c_name.as_ptr(),
                kind,
                value_ptr,
            ));
            if !err.0.is_null() {
                return Err(err.failure());
            }
        }

        // librdkafka copies the resources: ours is still freed by its guard.
        let mut resources = [resource.0];
        let event = request(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            rd::RD_KAFKA_EVENT_INCREMENTALALTERCONFIGS_RESULT,
            timeout,
            |options, queue| {
                rd::rd_kafka_IncrementalAlterConfigs(
                    rk,
                    resources.as_mut_ptr(),
                    resources.len(),
                    options,
                    queue,
                )
            },
        )?;
        // Resource-level errors: the broker refused this topic's change (unknown topic, invalid
        // value, unsupported version, no permission).
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.0);
        if result.is_null() {
            return Err(invalid_arg(
                "event without an IncrementalAlterConfigs result",
            ));
        }
        let mut count = 0usize;
        let results = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let r = *results.add(i);
            let code = rd::rd_kafka_ConfigResource_error(r);
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let msg = rd::rd_kafka_ConfigResource_error_string(r);
                return Err(AdminFailure::new(code.into(), Some(borrowed_str(msg))));
            }
        }
        Ok(())
    }
}

/// Submit one admin request with a private result queue and wait for its result event.
///
/// `submit` gets the options (request timeout set) and the queue, and must start exactly one
/// request that answers on that queue with an event of type `result_type`. Request-level errors
/// (timeout, no controller, a broker without the API, SecurityDisabled) come back as `Err`;
/// per-item errors are in the returned event, for the caller to read.
///
/// # Safety
/// `rk` is a live client handle for the whole call, and `submit` upholds the contract above.
pub(super) unsafe fn request(
    rk: *mut rd::rd_kafka_t,
    api: rd::rd_kafka_admin_op_t,
    result_type: rd::rd_kafka_event_type_t,
    timeout: Duration,
    submit: impl FnOnce(*const rd::rd_kafka_AdminOptions_t, *mut rd::rd_kafka_queue_t),
) -> Result<Event, AdminFailure> {
    // SAFETY: `rk` is live for the call (the caller's contract); every handle created here is
    // owned by a guard that outlives its last use.
    unsafe {
        let options = Options(rd::rd_kafka_AdminOptions_new(rk, api));
        if options.0.is_null() {
            return Err(invalid_arg("cannot create admin options"));
        }
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut errstr = [0 as c_char; 512];
        let code = rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(AdminFailure::new(
                code.into(),
                Some(borrowed_str(errstr.as_ptr())),
            ));
        }

        // A queue of our own, so the result comes back to this thread and nowhere else.
        let queue = Queue(rd::rd_kafka_queue_new(rk));
        if queue.0.is_null() {
            return Err(invalid_arg("cannot create a result queue"));
        }
        submit(options.0, queue.0);

        // librdkafka answers with a timeout error itself after the request timeout; the slack lets
        // that answer (rather than our own give-up) arrive. If we do give up, dropping the queue only
        // drops our reference: librdkafka discards the late result.
        let wait_ms = timeout_ms.saturating_add(500);
        let event = Event(rd::rd_kafka_queue_poll(queue.0, wait_ms));
        if event.0.is_null() {
            return Err(AdminFailure::new(
                RDKafkaErrorCode::OperationTimedOut,
                Some(format!("no answer within {wait_ms} ms")),
            ));
        }
        if rd::rd_kafka_event_type(event.0) != result_type {
            return Err(invalid_arg("unexpected event on the result queue"));
        }
        let code = rd::rd_kafka_event_error(event.0);
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let msg = rd::rd_kafka_event_error_string(event.0);
            return Err(AdminFailure::new(code.into(), Some(borrowed_str(msg))));
        }
        Ok(event)
    }
}

pub(super) fn c_string(s: &str) -> Result<CString, AdminFailure> {
    CString::new(s).map_err(|_| invalid_arg(&format!("{s:?} contains a NUL byte")))
}

pub(super) fn invalid_arg(message: &str) -> AdminFailure {
    AdminFailure::new(RDKafkaErrorCode::InvalidArgument, Some(message.to_string()))
}

/// Copy a C string librdkafka lends us (NULL reads as empty).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string alive for the duration of the call.
pub(super) unsafe fn borrowed_str(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: `p` is not NULL, and NUL-terminated and alive for the call (the caller's
        // contract).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Owns an `rd_kafka_ConfigResource_t`.
struct Resource(*mut rd::rd_kafka_ConfigResource_t);

impl Drop for Resource {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by rd_kafka_ConfigResource_new and destroyed only here.
            unsafe { rd::rd_kafka_ConfigResource_destroy(self.0) }
        }
    }
}

/// Owns an `rd_kafka_AdminOptions_t`.
struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Drop for Options {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by rd_kafka_AdminOptions_new and destroyed only here.
            unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
        }
    }
}

/// Owns our reference to an `rd_kafka_queue_t`.
struct Queue(*mut rd::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by rd_kafka_queue_new; librdkafka refcounts queues, so an operation
            // still holding it keeps it alive.
            unsafe { rd::rd_kafka_queue_destroy(self.0) }
        }
    }
}

/// Owns an `rd_kafka_event_t` (and, through it, the result arrays and strings it lends).
pub(super) struct Event(pub(super) *mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: returned by rd_kafka_queue_poll, owned by us, destroyed only here.
            unsafe { rd::rd_kafka_event_destroy(self.0) }
        }
    }
}

/// Owns an `rd_kafka_error_t` (NULL means "no error").
pub(super) struct RdError(pub(super) *mut rd::rd_kafka_error_t);

impl RdError {
    /// # Safety
    /// `self.0` is not NULL.
    pub(super) unsafe fn failure(&self) -> AdminFailure {
        // SAFETY: `self.0` is a live, non-NULL error handle (the caller's contract).
        unsafe {
            let code = rd::rd_kafka_error_code(self.0);
            let msg = borrowed_str(rd::rd_kafka_error_string(self.0));
            AdminFailure::new(code.into(), Some(msg))
        }
    }
}

impl Drop for RdError {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: ownership was handed to us by librdkafka; destroyed only here.
            unsafe { rd::rd_kafka_error_destroy(self.0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_timeouts() {
        assert_eq!(AlterOp::set("retention.ms", "1").name(), "retention.ms");
        assert_eq!(AlterOp::delete("cleanup.policy").name(), "cleanup.policy");
        assert!(AdminFailure::new(RDKafkaErrorCode::RequestTimedOut, None).is_timeout());
        let f = AdminFailure::new(RDKafkaErrorCode::InvalidConfig, Some(String::new()));
        assert!(!f.is_timeout());
        assert_eq!(f.message, None, "empty broker messages are dropped");
    }

    #[test]
    fn nul_bytes_are_refused_before_any_call() {
        let e = c_string("a\0b").unwrap_err();
        assert_eq!(e.code, RDKafkaErrorCode::InvalidArgument);
    }
}
