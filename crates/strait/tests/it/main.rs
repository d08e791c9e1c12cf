//! The integration tests, one binary (as ripgrep's `tests/tests.rs`): the product's crates, the
//! sandbox and librdkafka are linked once, and every area's tests share one run, two at a time on
//! CI's two cores. Each area is a module; `common` holds what they share. Apache Kafka tests need
//! Java and Maven (see `strait_sandbox::kafka`); `STRAIT_TEST_KAFKA=0` leaves them out, saying so.

mod common;

mod active_region;
mod authority;
mod check_cli;
mod checkpoints;
mod cli;
mod clients;
mod config_sync;
mod config_sync_run;
mod conflicts;
mod dashboard;
mod demo;
mod drill;
mod events;
mod exactly_once;
mod failover;
mod faults;
mod kafka_bed;
mod metrics_http;
mod mm2;
mod offset_index;
mod passthrough;
mod produce_consume;
mod raw_client;
mod replicate;
mod run_cli;
mod security;
mod status;
mod topologies;
mod wire;
