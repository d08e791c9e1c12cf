//! Config errors and warnings. An error is one sentence that names the file, the line and the
//! key, because the person reading it has the file open in an editor; a warning names the keys it
//! is about, because strait never drops a setting without saying so.

use std::fmt;

/// Why a config file cannot be used. `Display` is the whole user-facing sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all (missing, no permission, a directory).
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        /// The path as given.
        path: String,
        /// The operating system's reason, in words.
        reason: String,
    },
    /// A line is not valid `java.util.Properties` syntax (a bad `\uXXXX` escape, no key).
    #[error("{file}, line {line}: malformed line (key `{key}`): {reason}")]
    Malformed {
        /// The file, as given.
        file: String,
        /// 1-based line where the logical line starts.
        line: usize,
        /// The start of that line up to the first separator, as a hint; may be empty.
        key: String,
        /// What the parser could not read.
        reason: String,
    },
    /// No line sets `clusters`, so there is nothing to replicate between.
    #[error("{file}: required key `clusters` is missing (no line sets it); list the cluster aliases, e.g. `clusters = us-east, us-west`")]
    MissingClusters {
        /// The file, as given.
        file: String,
    },
    /// A key's value is wrong; `problem` says how.
    #[error("{file}, line {line}, key `{key}`: {problem}")]
    Invalid {
        /// The file, as given.
        file: String,
        /// 1-based line of the key.
        line: usize,
        /// The key as written in the file (with any cluster or flow prefix).
        key: String,
        /// What is wrong with its value.
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
    /// `clusters` is set but empty.
    #[error("`clusters` lists no cluster aliases")]
    NoClusters,
    /// `clusters` has an empty entry between commas.
    #[error("`clusters` has an empty alias (two commas in a row?)")]
    EmptyAlias,
    /// An alias (given) contains `->`, which would make flow keys ambiguous.
    #[error("cluster alias `{0}` may not contain `->`")]
    ArrowInAlias(String),
    /// The cluster (alias given) has no non-empty `<alias>.bootstrap.servers` nor a global one.
    #[error("cluster `{0}` has no bootstrap servers; add `{0}.bootstrap.servers = host:port`")]
    NoBootstrap(String),
    /// A filter entry (`topics`, `groups`, their excludes, ...) is not a valid regex.
    #[error("invalid regex `{pattern}`: {reason}")]
    InvalidRegex {
        /// The entry as written.
        pattern: String,
        /// The regex compiler's complaint.
        reason: String,
    },
    /// A numeric setting does not parse or is out of its range.
    #[error("`{value}` is not {expected}")]
    NotANumber {
        /// The value as written.
        value: String,
        /// What was wanted, as a phrase (`a positive number of milliseconds`).
        expected: &'static str,
    },
    /// A boolean setting (value given) is neither `true` nor `false`.
    #[error("`{0}` is not true or false")]
    NotABoolean(String),
    /// `replication.policy.class` (value given) names neither policy strait implements.
    #[error("unknown replication policy class `{0}`; strait supports org.apache.kafka.connect.mirror.DefaultReplicationPolicy and IdentityReplicationPolicy")]
    UnknownPolicy(String),
    /// `offset-syncs.topic.location` or `use.defaults.from` (value given) is another word.
    #[error("`{0}` must be `source` or `target`")]
    NotSourceOrTarget(String),
    /// `strait.data.path` (value given) is another word.
    #[error("`{0}` must be `batches` (copy record batches as they are, the default) or `records` (copy record by record)")]
    NotADataPath(String),
    /// No pair would run a herder (the reason given): MM2 would not start on this file.
    #[error("no pair of clusters runs: {0}; MirrorMaker 2 exits at start with \"No source->target replication flows.\"")]
    NoFlows(String),
    /// An entry of `bootstrap.servers` (given) is not `host:port`.
    #[error("`{0}` has no port; MirrorMaker 2 refuses it (\"Invalid url in bootstrap.servers\"): write `host:port`")]
    BadBootstrap(String),
    /// A `${provider:path:key}` reference that cannot be resolved (the cause; never the value).
    #[error("{0}")]
    Provider(String),
    /// A client (security) setting that cannot be turned into a librdkafka setting.
    #[error("{0}")]
    Client(String),
    /// A `strait.conflicts.` setting that is wrong, or rules that cannot work together.
    #[error("{0}")]
    Conflicts(String),
    /// An exactly-once setting (`exactly.once.support`, `exactly.once.source.support`,
    /// `transaction.boundary`) that is wrong, or that the flow cannot have.
    #[error("{0}")]
    ExactlyOnce(String),
}

/// A key in the file and its line, for warnings and JSON output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRef {
    /// The key as written in the file, after unescaping (with any cluster or flow prefix).
    pub key: String,
    /// 1-based line where the key's logical line starts.
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
    /// The whole warning, one or more sentences, for people.
    pub message: String,
    /// The keys it is about, sorted by line; empty for a warning about the file as a whole.
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

    /// A warning about one key; `message` should name it already.
    pub fn about_key(message: String, key: KeyRef) -> Self {
        Self {
            message,
            keys: vec![key],
        }
    }

    /// A warning about no key in particular (the file as a whole).
    pub fn general(message: String) -> Self {
        Self {
            message,
            keys: Vec::new(),
        }
    }
}
