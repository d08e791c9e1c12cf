//! The producer context of every conflict job that writes records of its own (views, merged
//! streams, conflict records): a failed delivery is kept, the first one, for the job's session
//! to stop on and start over (what it had not committed is read again and written again).

use std::sync::Mutex;

use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;

use crate::kafka::diagnose::Diagnosed;

/// Keeps the first delivery failure of a job's producer.
pub(crate) struct OutputContext {
    diagnose: Diagnosed,
    failed: Mutex<Option<String>>,
}

crate::kafka::diagnose::diagnosed_client_context!(OutputContext, diagnose);

impl OutputContext {
    /// A context diagnosing connection errors with `diagnose`, no failure yet.
    pub(crate) fn new(diagnose: Diagnosed) -> Self {
        Self {
            diagnose,
            failed: Mutex::new(None),
        }
    }

    /// The first delivery failure since the last call, if any.
    pub(crate) fn take_failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl ProducerContext for OutputContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            self.failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| format!("a record of {} was not written: {e}", m.topic()));
        }
    }
}
