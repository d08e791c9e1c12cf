//! Topic ids (KIP-516): what tells a topic from another created later under the same name.
//!
//! A topic deleted and created again keeps its name but starts its offsets over, and librdkafka
//! does not reset a consumer that was reading it (its own source says so: only a position past
//! the new end is reset, by the out-of-range error). A flow that kept its old position would skip
//! what the new topic holds below it. rust-rdkafka does not wrap librdkafka's DescribeTopics, the
//! one call that returns topic ids, so it is called here through the C API, and nowhere else.
//!
//! Every position strait records (its group commits, MM2's positions it keeps) is stamped with
//! the id of the topic it was taken on, so a position of an earlier topic of the same name is
//! recognised after a restart too, when the running check above has nothing to compare with.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// The ids of those of `names` that exist, as base64 (as Kafka's tools print them). Blocking,
/// for at most `timeout`.
pub(crate) fn describe<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    names: &[String],
    timeout: Duration,
) -> Result<HashMap<String, String>, KafkaError> {
    let mut out = HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let owned: Vec<CString> = names
        .iter()
        .filter_map(|n| CString::new(n.as_str()).ok())
        .collect();
    let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let rk = client.native_ptr();
    // SAFETY: every object created here is destroyed here, after its last use; `owned` outlives
    // the collection that points into it; the event's strings are copied before it is destroyed.
    unsafe {
        let topics = rd::rd_kafka_TopicCollection_of_topic_names(ptrs.as_mut_ptr(), ptrs.len());
        let queue = rd::rd_kafka_queue_new(rk);
        let options = rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
        );
        let mut errstr = [0 as c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options,
            ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        rd::rd_kafka_DescribeTopics(rk, topics, options, queue);
        let event = rd::rd_kafka_queue_poll(queue, ms);
        let result = if event.is_null() {
            Err(KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut))
        } else {
            let code = rd::rd_kafka_event_error(event);
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                Err(KafkaError::AdminOp(code.into()))
            } else {
                let described = rd::rd_kafka_event_DescribeTopics_result(event);
                let mut n = 0usize;
                let list = rd::rd_kafka_DescribeTopics_result_topics(described, &mut n);
                for i in 0..n {
                    let d = *list.add(i);
                    let error = rd::rd_kafka_TopicDescription_error(d);
                    if !error.is_null()
                        && rd::rd_kafka_error_code(error)
                            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    {
                        continue;
                    }
                    let name = CStr::from_ptr(rd::rd_kafka_TopicDescription_name(d));
                    let id = rd::rd_kafka_TopicDescription_topic_id(d);
                    if id.is_null() {
                        continue;
                    }
                    let text = CStr::from_ptr(rd::rd_kafka_Uuid_base64str(id));
                    out.insert(
                        name.to_string_lossy().into_owned(),
                        text.to_string_lossy().into_owned(),
                    );
                }
                Ok(())
            }
        };
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        rd::rd_kafka_TopicCollection_destroy(topics);
        result.map(|()| out)
    }
}

/// Topics whose id changed between two descriptions (created again under the same name); a
/// topic missing from either is not compared.
pub(crate) fn recreated(
    before: &HashMap<String, String>,
    now: &HashMap<String, String>,
) -> Vec<String> {
    let mut out: Vec<String> = now
        .iter()
        .filter(|(name, id)| before.get(*name).is_some_and(|old| old != *id))
        .map(|(name, _)| name.clone())
        .collect();
    out.sort_unstable();
    out
}

/// The commit metadata strait writes with a position taken on topic `id`.
pub(crate) fn stamp(id: &str) -> String {
    format!("{STAMP}{id}")
}

const STAMP: &str = "strait: topic id ";

/// The topic id a commit's metadata was stamped with ([`stamp`]); None for any other metadata
/// (MM2's commits, an operator's, strait's before stamps).
pub(crate) fn stamp_of(metadata: &str) -> Option<&str> {
    metadata.strip_prefix(STAMP).filter(|id| !id.is_empty())
}

/// Whether a position stamped with `stamped` was taken on an earlier topic than the one now
/// called the same (`current`). Unknown on either side means no: a position is only set aside
/// on evidence.
pub(crate) fn of_earlier_topic(stamped: Option<&str>, current: Option<&str>) -> bool {
    matches!((stamped, current), (Some(s), Some(c)) if s != c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_only_a_different_id_is_earlier() {
        assert_eq!(stamp_of(&stamp("AbC_-9")), Some("AbC_-9"));
        for other in ["", "strait: MirrorMaker 2's position", "strait: topic id "] {
            assert_eq!(stamp_of(other), None, "{other:?}");
        }
        assert!(of_earlier_topic(Some("A"), Some("B")));
        assert!(!of_earlier_topic(Some("A"), Some("A")));
        assert!(!of_earlier_topic(None, Some("B")));
        assert!(!of_earlier_topic(Some("A"), None));
    }

    #[test]
    fn only_a_changed_id_means_recreated() {
        let m = |v: &[(&str, &str)]| -> HashMap<String, String> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let before = m(&[("orders", "AAA"), ("gone", "BBB"), ("same", "CCC")]);
        let now = m(&[("orders", "ZZZ"), ("new", "DDD"), ("same", "CCC")]);
        assert_eq!(recreated(&before, &now), ["orders"]);
        assert!(recreated(&now, &now).is_empty());
    }
}
