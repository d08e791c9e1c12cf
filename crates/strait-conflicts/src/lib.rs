//! Active-active write conflicts, decided without I/O.
//!
//! In active-active replication both regions write the same topics, and two writes to one key
//! (us-east ships `order-123` while us-west cancels it) both reach both regions. strait sees every
//! write of both regions and when each copy arrived, so it can tell which writes were made
//! without knowledge of each other ([`detect`]), and settle them by the strategy a topic is
//! given: a region owns the key ([`authority`]), the latest timestamp wins ([`lww`]), with the
//! clocks' disagreement measured ([`skew`]).
//!
//! Everything here is a pure function of what it is told, so the rules are tested on their own
//! (against brute force, in every arrival order); reading and writing topics is strait's.

pub mod authority;
pub mod detect;
pub mod events;
pub mod lww;
pub mod skew;
mod span;

pub use span::{Span, Tri};

/// A region's place in the configured region order (0 is first). Ties are broken by it, and it
/// names a pair's sides the same way in every region.
pub type Rank = u16;
