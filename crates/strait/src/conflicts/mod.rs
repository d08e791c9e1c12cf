//! Active-active conflicts at run time (issue 16): what the rules of `strait.conflicts.*` make
//! strait do. The pure rules (concurrency, last-writer-wins, authority, skew, event order) live
//! in the `strait-conflicts` crate; this module gives them Kafka: the record of a conflict
//! ([`record`]) and their count ([`tally`]), the clock skew between regions and the one place
//! instants of different clocks are put side by side ([`clock`]), the jobs that keep resolved
//! views ([`resolve`]) and merged event streams ([`merge`]), the receipts the flows write of each
//! copy ([`receipts`]), the jobs that find concurrent writes in them ([`detect`]), the listing of
//! what was recorded ([`list`]), and regional authority as the flows apply it ([`authority`]).

/// What each consumer of the conflict jobs (detection, views, merged streams) may hold of
/// records fetched ahead, in KB: librdkafka's default is 64 MB a consumer, and a backlog taken in
/// filled them all (a dozen consumers in a process serving two regions).
pub(crate) const CONSUMER_QUEUE_KB: &str = "8192";

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
