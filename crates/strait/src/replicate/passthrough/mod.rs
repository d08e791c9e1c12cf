//! The passthrough data path (issue 19): record batches fetched from the source and produced to
//! the target as bytes, never decompressed. librdkafka's path decompresses every record, copies
//! it through its per-message API and compresses it again; a broker's own mirroring copies
//! batches at a fraction of that CPU. [`batch`] holds the rules of what may go as bytes and
//! what a produce owns in a batch; [`rebatch`] rewrites the batches that may not (a compacted
//! source's holes, a fetch from inside a batch, append times).

pub mod batch;
pub(crate) mod engine;
pub(crate) mod fetch;
pub(crate) mod produce;
pub mod rebatch;
