//! MirrorMaker 2 properties files -> typed configuration.
//!
//! [`Config::load`] reads an MM2 dedicated-mode file with MM2's own precedence and defaults
//! (MM2-SPEC §1) and validates everything up front, so that a mistake is one sentence naming file,
//! line and key before any cluster is contacted.
//!
//! - [`properties`]: the Java Properties text format, with lines.
//! - `keys`: which keys strait honours, which MM2 keys it ignores, which are unknown.
//! - `load`: MM2's construction of cluster props and per-flow connector configs.
//! - `filter`: LIST values and whole-name regex filters.
//! - [`providers`]: `config.providers` and `${provider:path:key}` references, resolved first.
//! - [`client_props`]: Java client properties -> librdkafka properties; `jaas` reads logins.
//! - [`stores`]: JKS, PKCS#12 and PEM key and trust stores -> PEM in memory (`stores_io` reads
//!   the files, once each).
//! - [`conflicts`]: strait's own `strait.conflicts.` rules for active-active topics.
//! - `model`: the typed result; `error`: errors and warnings; [`report`]: the result as
//!   `strait check --json` shows it.

pub mod client_props;
pub mod conflicts;
pub(crate) mod error;
pub(crate) mod filter;
pub(crate) mod jaas;
pub(crate) mod keys;
mod load;
pub(crate) mod model;
pub mod properties;
pub mod providers;
pub mod region;
pub mod report;
pub mod stores;
mod stores_io;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, KeyRef, Problem, Warning};
pub use filter::{parse_list, NameFilter};
pub use load::LocalFiles;
pub use model::{
    flow_name, Clients, Cluster, Config, ExactlyOnce, Flow, InternalTopic, InternalTopics,
    Intervals, Origin, PolicySettings, Side, StoreSummary,
};
