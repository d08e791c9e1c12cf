//! strait: multi-region Kafka replication and disaster recovery.
//!
//! The library behind the `strait` binary. See the README for what each command does.

pub(crate) mod backoff;
pub(crate) mod checkpoint;
pub mod config;
pub mod conflicts;
pub mod drill;
pub mod failover;
pub mod heartbeat;
pub mod http;
pub mod kafka;
pub(crate) mod memory;
pub mod monitor;
pub mod policy;
pub mod reach;
pub mod replicate;
pub mod service;
pub mod stop;
pub mod text;
pub mod translate;
pub mod wire;
