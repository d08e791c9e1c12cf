//! Failover and failback (issue 6, in progress): for now, the durable record of which region is
//! active for a pair.

pub mod active;
