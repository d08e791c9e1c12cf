//! Active-active conflicts at run time (issue 16): what the rules of `strait.conflicts.*` make
//! strait do. The pure rules (concurrency, last-writer-wins, authority, skew, event order) live
//! in the `strait-conflicts` crate; this module gives them Kafka: the record of a conflict
//! ([`record`]) and their count ([`tally`]), the clock skew between regions and the one place
//! instants of different clocks are put side by side ([`clock`]), the jobs that keep resolved
//! views ([`resolve`]) and merged event streams ([`merge`]), the receipts the flows write of each
//! copy ([`receipts`]), the jobs that find concurrent writes in them ([`detect`]), the listing of
//! what was recorded ([`list`]), and regional authority as the flows apply it ([`authority`]).

pub mod authority;
pub mod clock;
pub mod derived;
pub mod detect;
pub(crate) mod keys;
pub mod list;
pub(crate) mod merge;
pub mod receipts;
pub(crate) mod record;
pub(crate) mod resolve;
pub mod tally;
