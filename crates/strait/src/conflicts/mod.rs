//! Active-active conflicts at run time (issue 16): what the rules of `strait.conflicts.*` make
//! strait do. The pure rules (concurrency, last-writer-wins, authority, skew, event order) live
//! in the `strait-conflicts` crate; this module gives them Kafka: the record of a conflict
//! ([`record`]) and their count ([`tally`]), and the jobs that keep resolved views ([`resolve`])
//! and merged event streams ([`merge`]).

// Written by the detector and the flows' authority path, which land next (issue 16).
pub(crate) mod merge;
#[allow(dead_code)]
pub(crate) mod record;
pub(crate) mod resolve;
pub mod tally;
