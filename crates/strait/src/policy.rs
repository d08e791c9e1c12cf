//! Replication policies: how remote topics are named and recognised, exactly as MirrorMaker 2's
//! `DefaultReplicationPolicy` and `IdentityReplicationPolicy` do it (MM2-SPEC §2), so that topics,
//! internal topics and cycle detection agree with an MM2 deployment on the same clusters.

/// Which naming rule remote topics follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// `us-east.orders`: the source alias and the separator before the topic name.
    Default,
    /// `orders`: names unchanged (heartbeats still prefixed); cycles cannot be detected.
    Identity,
}

impl PolicyKind {
    /// Accept MM2's Java class names and short names.
    pub fn from_class_name(name: &str) -> Option<Self> {
        let short = name.rsplit('.').next().unwrap_or(name).trim();
        match short.to_ascii_lowercase().as_str() {
            "defaultreplicationpolicy" | "default" => Some(Self::Default),
            "identityreplicationpolicy" | "identity" => Some(Self::Identity),
            _ => None,
        }
    }

    /// MM2's fully qualified class name for this policy, as `strait check` prints it.
    pub fn java_class(self) -> &'static str {
        match self {
            Self::Default => "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
            Self::Identity => "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        }
    }
}

/// The topic heartbeats are written to on each target; replicated onward as `<alias>.heartbeats`.
pub const HEARTBEATS_TOPIC: &str = "heartbeats";

/// A configured replication policy. For Identity, `source_alias` is the flow's source (MM2 always
/// passes the connector's source alias in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationPolicy {
    kind: PolicyKind,
    separator: String,
    internal_separator: String,
    source_alias: Option<String>,
    /// The connector's `target.cluster.alias`, when bound to a flow: what cycle detection
    /// compares topic sources with.
    target_alias: Option<String>,
}

impl ReplicationPolicy {
    /// `separator`: the configured `replication.policy.separator`, if set explicitly.
    /// `internal_separator_enabled`: `replication.policy.internal.topic.separator.enabled`, which
    /// MM2 reads only when a separator is explicitly configured.
    pub fn new(
        kind: PolicyKind,
        separator: Option<&str>,
        internal_separator_enabled: bool,
        source_alias: Option<&str>,
    ) -> Self {
        let sep = separator.unwrap_or(".").to_string();
        let internal_separator = if separator.is_some() && internal_separator_enabled {
            sep.clone()
        } else {
            ".".to_string()
        };
        Self {
            kind,
            separator: sep,
            internal_separator,
            source_alias: source_alias.map(str::to_string),
            target_alias: None,
        }
    }

    /// MM2's default: `DefaultReplicationPolicy` with separator `.` and no source alias bound.
    pub fn default_policy() -> Self {
        Self::new(PolicyKind::Default, None, true, None)
    }

    /// Which naming rule this policy follows.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The separator between source alias and topic name (`.` unless configured).
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The same policy bound to a flow's target alias (the connector's `target.cluster.alias`).
    pub fn with_target(self, alias: &str) -> Self {
        Self {
            target_alias: Some(alias.to_string()),
            ..self
        }
    }

    /// The source alias remote topics are named with ("" when the file sets it empty).
    pub fn source_alias(&self) -> &str {
        self.source_alias.as_deref().unwrap_or("")
    }

    /// The target alias cycles are detected against, when bound.
    pub fn target_alias(&self) -> Option<&str> {
        self.target_alias.as_deref()
    }

    /// The same policy with Identity's source alias set to `alias` (one policy object per flow).
    pub fn for_source(&self, alias: &str) -> Self {
        Self {
            source_alias: Some(alias.to_string()),
            ..self.clone()
        }
    }

    fn looks_like_heartbeat(topic: &str) -> bool {
        topic.ends_with(HEARTBEATS_TOPIC)
    }

    fn identity_applies(&self, topic: &str) -> bool {
        self.kind == PolicyKind::Identity && !Self::looks_like_heartbeat(topic)
    }

    /// The name of `topic` on the flow's target: `format_remote_topic` with the connector's
    /// `source.cluster.alias` (the flow's source unless the file sets it, possibly to "").
    pub fn remote_topic(&self, topic: &str) -> String {
        self.format_remote_topic(self.source_alias.as_deref().unwrap_or(""), topic)
    }

    /// The name of `topic` from cluster `source` on the target.
    pub fn format_remote_topic(&self, source: &str, topic: &str) -> String {
        if self.identity_applies(topic) {
            topic.to_string()
        } else {
            format!("{source}{}{topic}", self.separator)
        }
    }

    /// The cluster a remote topic came from, or None for a local topic.
    pub fn topic_source<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        if self.identity_applies(topic) {
            return self.source_alias.as_deref();
        }
        let parts = java_split(topic, &self.separator);
        if parts.len() < 2 {
            None
        } else {
            Some(parts[0])
        }
    }

    /// The topic's name one hop upstream, or None for a local topic.
    pub fn upstream_topic(&self, topic: &str) -> Option<String> {
        if self.identity_applies(topic) {
            return Some(topic.to_string());
        }
        let source = self.topic_source(topic)?;
        Some(topic[source.len() + self.separator.len()..].to_string())
    }

    /// The topic's name on the cluster where it was first written.
    pub fn original_topic(&self, topic: &str) -> String {
        let mut current = topic.to_string();
        // Each hop removes at least one character, so this ends; bounded anyway.
        for _ in 0..=topic.len() {
            match self.upstream_topic(&current) {
                Some(up) if up != current => current = up,
                _ => break,
            }
        }
        current
    }

    /// Where heartbeats are written on a cluster: always [`HEARTBEATS_TOPIC`].
    pub fn heartbeats_topic(&self) -> &'static str {
        HEARTBEATS_TOPIC
    }

    /// Whether `topic` is `heartbeats` or a remote copy of it (`us-east.heartbeats`, any number
    /// of hops).
    pub fn is_heartbeats_topic(&self, topic: &str) -> bool {
        self.original_topic(topic) == HEARTBEATS_TOPIC
    }

    /// `<alias>.checkpoints.internal`, where checkpoints from `alias` are written on the target.
    pub fn checkpoints_topic(&self, alias: &str) -> String {
        let s = &self.internal_separator;
        format!("{alias}{s}checkpoints{s}internal")
    }

    /// `mm2-offset-syncs.<alias>.internal`.
    pub fn offset_syncs_topic(&self, alias: &str) -> String {
        let s = &self.internal_separator;
        format!("mm2-offset-syncs{s}{alias}{s}internal")
    }

    /// Whether `topic` is a checkpoints topic of any source alias (`*.checkpoints.internal`,
    /// with the internal separator).
    pub fn is_checkpoints_topic(&self, topic: &str) -> bool {
        let s = &self.internal_separator;
        topic.ends_with(&format!("{s}checkpoints{s}internal"))
    }

    /// Whether `topic` ends in `<internal separator>internal`, as MM2's own internal topics do.
    pub fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        topic.ends_with(&format!("{}internal", self.internal_separator))
    }

    /// Topics never replicated: MM2's own, Kafka's (`__*`, `.*`), Connect's (`*-internal`,
    /// `*.internal`) and strait's (`strait.*`: conflicts, clock, receipts, marks).
    pub fn is_internal_topic(&self, topic: &str) -> bool {
        self.is_mm2_internal_topic(topic)
            || topic.starts_with("strait.")
            || topic.starts_with("__")
            || topic.starts_with('.')
            || topic.ends_with("-internal")
            || topic.ends_with(".internal")
    }

    /// Whether replicating `topic` to `target` would send it back where it came from: the target
    /// alias appears anywhere in the topic's chain of sources (MM2's `isCycle`).
    pub fn is_cycle(&self, topic: &str, target: &str) -> bool {
        let mut current = topic.to_string();
        for _ in 0..=topic.len() {
            let Some(src) = self.topic_source(&current) else {
                return false;
            };
            if src == target {
                return true;
            }
            match self.upstream_topic(&current) {
                Some(up) if up != current => current = up,
                _ => return false,
            }
        }
        false
    }
}

/// Java's `String.split` with a literal separator: trailing empty pieces dropped, a leading empty
/// piece kept; no match gives the whole string. An empty separator (`Pattern.quote("")`) matches
/// between every two characters, so Java splits into single characters: MM2 then takes a topic's
/// first character for its source cluster, and strait does the same.
fn java_split<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    if sep.is_empty() {
        if s.is_empty() {
            return vec![s];
        }
        return s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() && !s.is_empty() {
        // Only separators: Java returns an empty array.
        parts.clear();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn default() -> ReplicationPolicy {
        ReplicationPolicy::default_policy()
    }

    fn identity(src: &str) -> ReplicationPolicy {
        ReplicationPolicy::new(PolicyKind::Identity, None, true, Some(src))
    }

    #[test]
    fn default_naming_matches_mm2() {
        let p = default();
        assert_eq!(p.format_remote_topic("us-east", "orders"), "us-east.orders");
        assert_eq!(p.topic_source("A.foo"), Some("A"));
        assert_eq!(p.topic_source("foo"), None);
        assert_eq!(p.topic_source("A."), None);
        assert_eq!(p.topic_source("A.B.foo"), Some("A"));
        assert_eq!(p.topic_source(".foo"), Some(""));
        assert_eq!(p.upstream_topic("A.B.foo").as_deref(), Some("B.foo"));
        assert_eq!(p.upstream_topic("foo"), None);
        assert_eq!(p.original_topic("A.B.foo"), "foo");
        assert_eq!(p.original_topic("foo"), "foo");
    }

    #[test]
    fn internal_topics() {
        let p = default();
        assert_eq!(p.checkpoints_topic("A"), "A.checkpoints.internal");
        assert_eq!(p.offset_syncs_topic("B"), "mm2-offset-syncs.B.internal");
        assert!(p.is_checkpoints_topic("A.checkpoints.internal"));
        for t in [
            "__consumer_offsets",
            ".hidden",
            "mm2-offsets.A.internal",
            "connect-internal",
            "x.internal",
            "strait.clock",
            "strait.conflicts",
        ] {
            assert!(p.is_internal_topic(t), "{t}");
        }
        for t in [
            "orders",
            "A.orders",
            "heartbeats",
            "A.heartbeats",
            "straits",
        ] {
            assert!(!p.is_internal_topic(t), "{t}");
        }
        assert!(p.is_heartbeats_topic("heartbeats"));
        assert!(p.is_heartbeats_topic("A.B.heartbeats"));
        assert!(!p.is_heartbeats_topic("heartbeats2"));
    }

    #[test]
    fn custom_separator_applies_to_internal_topics_only_when_enabled() {
        let p = ReplicationPolicy::new(PolicyKind::Default, Some("_"), true, None);
        assert_eq!(p.format_remote_topic("A", "t"), "A_t");
        assert_eq!(p.checkpoints_topic("A"), "A_checkpoints_internal");
        assert_eq!(p.offset_syncs_topic("B"), "mm2-offset-syncs_B_internal");
        let p = ReplicationPolicy::new(PolicyKind::Default, Some("_"), false, None);
        assert_eq!(p.checkpoints_topic("A"), "A.checkpoints.internal");
        // A multi-character separator.
        let p = ReplicationPolicy::new(PolicyKind::Default, Some("__"), true, None);
        assert_eq!(p.topic_source("A__orders"), Some("A"));
        assert_eq!(p.upstream_topic("A__orders").as_deref(), Some("orders"));
    }

    #[test]
    fn identity_keeps_names_but_prefixes_heartbeats() {
        let p = identity("us-east");
        assert_eq!(p.format_remote_topic("us-east", "orders"), "orders");
        assert_eq!(
            p.format_remote_topic("us-east", "heartbeats"),
            "us-east.heartbeats"
        );
        assert_eq!(p.topic_source("orders"), Some("us-east"));
        assert_eq!(p.topic_source("us-east.heartbeats"), Some("us-east"));
        assert_eq!(p.original_topic("orders"), "orders");
        assert!(
            !p.is_cycle("orders", "us-west"),
            "identity cannot detect cycles"
        );
        assert!(p.is_cycle("us-west.heartbeats", "us-west"));
        assert_eq!(
            PolicyKind::from_class_name(
                "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
            ),
            Some(PolicyKind::Identity)
        );
        assert_eq!(
            PolicyKind::from_class_name("identity"),
            Some(PolicyKind::Identity)
        );
        assert_eq!(PolicyKind::from_class_name("com.example.Custom"), None);
    }

    #[test]
    fn cycles_in_active_active_and_mesh() {
        let p = default();
        // A<->B: A.foo on B must not go back to A.
        assert!(p.is_cycle("A.foo", "A"));
        assert!(!p.is_cycle("foo", "A"));
        // Mesh A,B,C: B.A.foo must never reach A, but A.foo may go from B to C.
        assert!(p.is_cycle("B.A.foo", "A"));
        assert!(!p.is_cycle("A.foo", "C"));
        // A local topic whose name contains the separator is taken for a remote one.
        assert!(p.is_cycle("B.orders", "B"));
    }

    #[test]
    fn java_split_semantics() {
        assert_eq!(java_split("a.b", "."), vec!["a", "b"]);
        assert_eq!(java_split("a.b..", "."), vec!["a", "b"]);
        assert_eq!(java_split(".a", "."), vec!["", "a"]);
        assert_eq!(java_split("...", "."), Vec::<&str>::new());
        assert_eq!(java_split("", "."), vec![""]);
    }

    proptest! {
        #[test]
        fn remote_topic_source_round_trip(alias in "[a-zA-Z0-9_-]{1,12}", topic in "[a-zA-Z0-9_-]{1,20}") {
            let p = default();
            let remote = p.format_remote_topic(&alias, &topic);
            prop_assert_eq!(p.topic_source(&remote), Some(alias.as_str()));
            prop_assert_eq!(p.upstream_topic(&remote), Some(topic.clone()));
            prop_assert_eq!(p.original_topic(&remote), topic.clone());
            prop_assert!(p.is_cycle(&remote, &alias));
        }

        #[test]
        fn hops_are_unwound(aliases in proptest::collection::vec("[a-z]{1,5}", 1..5), topic in "[a-z]{1,10}") {
            let p = default();
            let mut name = topic.clone();
            for a in &aliases {
                name = p.format_remote_topic(a, &name);
            }
            prop_assert_eq!(p.original_topic(&name), topic);
            for a in &aliases {
                prop_assert!(p.is_cycle(&name, a));
            }
        }
    }
}
