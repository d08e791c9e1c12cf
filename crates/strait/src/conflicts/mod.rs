//! Active-active conflicts at run time (issue 16): what the rules of `strait.conflicts.*` make
//! strait do. The pure rules (concurrency, last-writer-wins, authority, skew, event order) live
//! in the `strait-conflicts` crate; this module gives them Kafka: the record of a conflict
//! ([`record`]) and their count ([`tally`]), the clock skew between regions and the one place
//! instants of different clocks are put side by side ([`clock`]), the jobs that keep resolved
//! views ([`resolve`]) and merged event streams ([`merge`]), the receipts the flows write of each
//! copy ([`receipts`]), the jobs that find concurrent writes in them ([`detect`]), the listing of
//! what was recorded ([`list`]), and regional authority as the flows apply it ([`authority`]).

/// How a consumer of the conflict jobs (detection, views, merged streams) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Following inputs as they are written, each record worked on.
    Steady,
    /// Reading a topic back once, from its start, as fast as it comes (a view or a merged
    /// stream at a start).
    ReadBack,
}

/// Bound what a consumer of the conflict jobs fetches ahead of its reader. librdkafka's
/// defaults let each hold 64 MB of records, plus ~300 bytes of its own a record, and take up to
/// 1 MB a partition in one fetch: with a dozen such consumers in a process serving two regions,
/// a backlog of small records (receipts, keyed versions) held ~700 MB. A steady reader needs a
/// few thousand records ahead and small fetches; a read-back keeps librdkafka's fetch sizes
/// (smaller ones made reading a 1M-key view back several times slower) with the same bound on
/// what waits.
pub(crate) fn bound_fetch_ahead(cfg: &mut rdkafka::ClientConfig, reading: Reading) {
    cfg.set("queued.min.messages", "20000");
    cfg.set("queued.max.messages.kbytes", "4096");
    if reading == Reading::Steady {
        cfg.set("max.partition.fetch.bytes", "524288");
        cfg.set("fetch.max.bytes", "2097152");
    }
}

pub mod authority;
pub mod clock;
pub mod derived;
pub mod detect;
pub(crate) mod keys;
pub mod list;
pub(crate) mod merge;
pub(crate) mod output;
pub mod receipts;
pub(crate) mod record;
pub(crate) mod resolve;
pub mod tally;
