//! Config errors and warnings. An error is one sentence that names the file, the line and the
//! key, because the person reading it has the file open in an editor; a warning names the keys it
//! is about, because strait never drops a setting without saying so.

use std::fmt;

/// Why a config file cannot be used. `Display` is the whole user-facing sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{file}, line {line}: malformed line (key `{key}`): {reason}")]
    Malformed {
        file: String,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("{file}: required key `clusters` is missing (no line sets it); list the cluster aliases, e.g. `clusters = us-east, us-west`")]
    MissingClusters { file: String },
    #[error("{file}, line {line}, key `{key}`: {problem}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        problem: Problem,
    },
}

impl ConfigError {
    /// The line the error is about, where there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Malformed { line, .. } | Self::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The key the error is about, where there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Malformed { key, .. } | Self::Invalid { key, .. } => Some(key),
            Self::MissingClusters { .. } => Some("clusters"),
            Self::Unreadable { .. } => None,
        }
    }
}

/// What is wrong with one key's value (the rest of a [`ConfigError::Invalid`] sentence).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("`clusters` lists no cluster aliases")]
    NoClusters,
    #[error("`clusters` has an empty alias (two commas in a row?)")]
    EmptyAlias,
    #[error("cluster alias `{0}` may not contain `->`")]
    ArrowInAlias(String),
    #[error("cluster `{0}` has no bootstrap servers; add `{0}.bootstrap.servers = host:port`")]
    NoBootstrap(String),
    #[error("invalid regex `{pattern}`: {reason}")]
    InvalidRegex { pattern: String, reason: String },
    #[error("`{value}` is not {expected}")]
    NotANumber {
        value: String,
        expected: &'static str,
    },
    #[error("`{0}` is not true or false")]
    NotABoolean(String),
    #[error("unknown replication policy class `{0}`; strait supports org.apache.kafka.connect.mirror.DefaultReplicationPolicy and IdentityReplicationPolicy")]
    UnknownPolicy(String),
    #[error("`{0}` must be `source` or `target`")]
    NotSourceOrTarget(String),
    #[error("no pair of clusters runs: {0}; MirrorMaker 2 exits at start with \"No source->target replication flows.\"")]
    NoFlows(String),
    #[error("`{0}` has no port; MirrorMaker 2 refuses it (\"Invalid url in bootstrap.servers\"): write `host:port`")]
    BadBootstrap(String),
    /// A `${provider:path:key}` reference that cannot be resolved (the cause; never the value).
    #[error("{0}")]
    Provider(String),
    /// A client (security) setting that cannot be turned into a librdkafka setting.
    #[error("{0}")]
    Client(String),
}

/// A key in the file and its line, for warnings and JSON output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRef {
    pub key: String,
    pub line: usize,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` (line {})", self.key, self.line)
    }
}

/// Something strait accepts but the user should know about: a setting it ignores, a quirk it
/// reproduces. `message` is complete on its own; `keys` repeats the keys it names, for tools.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    pub message: String,
    pub keys: Vec<KeyRef>,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Warning {
    /// One warning about several keys: `intro` followed by the list of keys with their lines.
    pub fn about_keys(intro: &str, mut keys: Vec<KeyRef>) -> Self {
        keys.sort_by(|a, b| (a.line, &a.key).cmp(&(b.line, &b.key)));
        keys.dedup();
        let list: Vec<String> = keys.iter().map(ToString::to_string).collect();
        Self {
            message: format!("{intro}: {}", list.join(", ")),
            keys,
        }
    }

    pub fn about_key(message: String, key: KeyRef) -> Self {
        Self {
            message,
            keys: vec![key],
        }
    }

    pub fn general(message: String) -> Self {
        Self {
            message,
            keys: Vec::new(),
        }
    }
}
