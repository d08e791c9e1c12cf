//! strait: multi-region Kafka replication and disaster recovery.
//!
//! The library behind the `strait` binary. See the README for what each command does.

pub mod config;
pub mod kafka;
pub mod policy;
pub mod replicate;
pub mod wire;
