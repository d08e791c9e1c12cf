//! Active-active conflict rules, read from the same MM2 file under `strait.conflicts.`.
//!
//! MirrorMaker 2 keeps only the settings it knows from a file (MirrorMakerConfig retains its own
//! config names), so keys under a prefix of strait's change nothing for MM2 and the file stays
//! a drop-in. The prefix is strait's own namespace: a key under it that strait does not know is
//! an error, not a warning, because a typo there silently turns conflict handling off.
//!
//! ```properties
//! strait.conflicts.rules = orders, events
//! strait.conflicts.regions = us-east, us-west          # tie-break order; default: `clusters`
//! strait.conflicts.orders.topics = orders
//! strait.conflicts.orders.strategy = authority
//! strait.conflicts.orders.authority.us-east = US-.*
//! strait.conflicts.orders.authority.us-west = EU-.*
//! strait.conflicts.orders.violations = quarantine      # or report (the default)
//! strait.conflicts.events.topics = order-events
//! strait.conflicts.events.strategy = events
//! strait.conflicts.events.event.id.header = event-id
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::error::{KeyRef, Problem};
use super::filter::{parse_list, NameFilter};
use super::model::Sourced;

/// The prefix of every key of strait's own.
pub(crate) const PREFIX: &str = "strait.";
const CONFLICTS: &str = "strait.conflicts.";

/// How a rule settles conflicting writes (a closed set: one is chosen per rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Each region owns the keys matching its pattern; a write from another region is a
    /// violation.
    Authority {
        /// Region alias and key pattern (matched whole), in file order.
        owners: Vec<(String, String)>,
        /// What happens to a violation.
        violations: Violations,
    },
    /// A resolved view keeps each key's latest version; every version that loses is recorded.
    LastWriterWins,
    /// A merged stream holds both regions' events in one order, the same in every region.
    Events {
        /// The header holding an event's id, for dropping repeats (none: no dropping).
        id_header: Option<String>,
        /// How far behind its stream's progress an event's timestamp may be before it is raised.
        lateness: Duration,
    },
}

impl Strategy {
    /// The name used in the file, metrics and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::Authority { .. } => "authority",
            Strategy::LastWriterWins => "last-writer-wins",
            Strategy::Events { .. } => "events",
        }
    }
}

/// What happens to a write to a key its region does not own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violations {
    /// Recorded, and replicated as any write.
    Report,
    /// Recorded, and written to the quarantine topic beside the owner's remote topic instead.
    Quarantine,
}

/// One rule: which topics, settled how.
#[derive(Clone, Debug)]
pub struct ConflictRule {
    /// Its name, as listed in `strait.conflicts.rules`.
    pub name: String,
    /// The topics it covers (a list of regexes, matched whole, as `topics`).
    pub topics: NameFilter,
    /// Its strategy.
    pub strategy: Strategy,
    /// Where it is listed, for messages.
    pub at: KeyRef,
}

/// Every conflict rule of a file.
#[derive(Clone, Debug)]
pub struct Conflicts {
    /// Region aliases in tie-break order (first wins ties).
    pub regions: Vec<String>,
    /// The rules, in the order listed.
    pub rules: Vec<ConflictRule>,
    /// How far the clocks of every region's writers and of strait's processes may be from each
    /// other (`strait.conflicts.clock.tolerance.ms`): concurrency is judged within it.
    pub clock_tolerance: Duration,
    /// How long after its timestamp a write may be appended at most
    /// (`strait.conflicts.write.delay.max.ms`, the writers' delivery timeout): detection keeps
    /// each delivery that much longer than the replication lag.
    pub write_delay_max: Duration,
}

impl Default for Conflicts {
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            rules: Vec::new(),
            clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
            write_delay_max: DEFAULT_WRITE_DELAY_MAX,
        }
    }
}

impl Conflicts {
    /// The rule covering `topic`, if any (the first listed).
    pub fn rule_for(&self, topic: &str) -> Option<&ConflictRule> {
        self.rules.iter().find(|r| r.topics.matches(topic))
    }

    /// A region's place in the tie-break order.
    pub fn rank(&self, region: &str) -> Option<u16> {
        self.regions
            .iter()
            .position(|r| r == region)
            .and_then(|i| u16::try_from(i).ok())
    }
}

/// What a last-writer-wins view is named after its topic: `orders` -> `orders.resolved`.
pub const VIEW_SUFFIX: &str = ".resolved";

/// What a merged event stream is named after its topic: `order-events` -> `order-events.merged`.
pub const MERGED_SUFFIX: &str = ".merged";

/// The topic on each region's cluster where strait marks the progress of that region's event
/// topics (see `conflicts::merge::marks`). Internal by name, so no flow's filter takes it.
pub const MARKS_TOPIC: &str = "strait.marks";

/// The resolved view of `topic` (`orders.resolved`), kept in every region by a last-writer-wins
/// rule.
pub fn view_topic(topic: &str) -> String {
    format!("{topic}{VIEW_SUFFIX}")
}

/// The merged stream of `topic` (`order-events.merged`), kept in every region by an events
/// rule.
pub fn merged_topic(topic: &str) -> String {
    format!("{topic}{MERGED_SUFFIX}")
}

/// The topics strait derives in each region from the rules' topics: each region computes its
/// own from every region's writes, so they are never replicated (a copy of another region's
/// would only be a stale duplicate of what the region keeps itself). The one place that says
/// which they are: resolved views of last-writer-wins topics, merged streams of event topics,
/// and the marks topic.
#[derive(Clone, Debug, Default)]
pub struct Derived {
    last_writer_wins: NameFilter,
    events: NameFilter,
}

impl Derived {
    /// Whether strait derives `topic` in each region (`orders.resolved` for a last-writer-wins
    /// `orders`, `order-events.merged` for an events `order-events`, the marks topic).
    pub fn contains(&self, topic: &str) -> bool {
        topic == MARKS_TOPIC
            || topic
                .strip_suffix(VIEW_SUFFIX)
                .is_some_and(|base| self.last_writer_wins.matches(base))
            || topic
                .strip_suffix(MERGED_SUFFIX)
                .is_some_and(|base| self.events.matches(base))
    }
}

impl Conflicts {
    /// The topics of every rule whose strategy `pick` accepts, as one filter (empty when
    /// there is none).
    fn topics_of(&self, pick: impl Fn(&Strategy) -> bool) -> NameFilter {
        let patterns: Vec<String> = self
            .rules
            .iter()
            .filter(|r| pick(&r.strategy))
            .flat_map(|r| r.topics.patterns().iter().cloned())
            .collect();
        // Each pattern compiled on its own when its rule was read: together they compile too.
        NameFilter::new(patterns).unwrap_or_default()
    }

    /// The topics strait derives from these rules (see [`Derived`]).
    pub fn derived(&self) -> Derived {
        Derived {
            last_writer_wins: self.topics_of(|s| *s == Strategy::LastWriterWins),
            events: self.topics_of(|s| matches!(s, Strategy::Events { .. })),
        }
    }
}

/// What a quarantine topic is named after the remote topic it stands beside:
/// `us-west.orders` -> `us-west.orders.quarantine`.
pub const QUARANTINE_SUFFIX: &str = ".quarantine";

/// The quarantine topic beside the remote topic `remote`, where a flow writes the violations of
/// an authority rule with `violations = quarantine` instead of into `remote`.
pub fn quarantine_topic(remote: &str) -> String {
    format!("{remote}{QUARANTINE_SUFFIX}")
}

impl Conflicts {
    /// The topic patterns of every authority rule, as one filter (empty when there is none): what
    /// [`is_quarantine`] is asked with.
    pub fn authority_topics(&self) -> NameFilter {
        let patterns: Vec<String> = self
            .rules
            .iter()
            .filter(|r| matches!(r.strategy, Strategy::Authority { .. }))
            .flat_map(|r| r.topics.patterns().iter().cloned())
            .collect();
        NameFilter::new(patterns).unwrap_or_default()
    }
}

/// Whether `topic` is the quarantine topic beside a remote copy of a topic an authority rule
/// covers (`us-west.orders.quarantine` for `orders`): strait writes it in the owner's region,
/// and it is never replicated further (its records are the ones kept from the owner's readers).
pub fn is_quarantine(
    authority_topics: &NameFilter,
    policy: &crate::policy::ReplicationPolicy,
    topic: &str,
) -> bool {
    topic.strip_suffix(QUARANTINE_SUFFIX).is_some_and(|remote| {
        policy.topic_source(remote).is_some()
            && authority_topics.matches(&policy.original_topic(remote))
    })
}

/// Default for `lateness.ms`.
const DEFAULT_LATENESS: Duration = Duration::from_secs(5);
/// Default for `strait.conflicts.clock.tolerance.ms`: clocks kept by NTP agree far better.
const DEFAULT_CLOCK_TOLERANCE: Duration = Duration::from_millis(50);
const CLOCK_TOLERANCE_KEY: &str = "strait.conflicts.clock.tolerance.ms";
/// Default for `strait.conflicts.write.delay.max.ms`: the Java producer's `delivery.timeout.ms`.
pub const DEFAULT_WRITE_DELAY_MAX: Duration = Duration::from_secs(120);
const WRITE_DELAY_KEY: &str = "strait.conflicts.write.delay.max.ms";
/// Rule names taken by the settings above (a rule's keys are `strait.conflicts.<name>.`).
const RESERVED_NAMES: [(&str, &str); 2] =
    [("clock", CLOCK_TOLERANCE_KEY), ("write", WRITE_DELAY_KEY)];

/// A setting in milliseconds (`src`, where given), or its default.
fn millis(src: Option<&Sourced>, default: Duration) -> Result<Duration, (KeyRef, Problem)> {
    let Some(src) = src else {
        return Ok(default);
    };
    src.value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            (
                src.at.clone(),
                Problem::NotANumber {
                    value: src.value.trim().to_string(),
                    expected: "a number of milliseconds",
                },
            )
        })
}

fn bad(at: &KeyRef, message: String) -> (KeyRef, Problem) {
    (at.clone(), Problem::Conflicts(message))
}

/// Read the `strait.` keys (full keys, as written) against the file's cluster aliases.
pub(crate) fn parse(
    keys: &BTreeMap<String, Sourced>,
    aliases: &[String],
) -> Result<Conflicts, (KeyRef, Problem)> {
    for (key, src) in keys {
        if !key.starts_with(CONFLICTS) {
            return Err(bad(
                &src.at,
                "strait knows no such setting; its own settings are `strait.data.path` and those under `strait.conflicts.` and `strait.region.`"
                    .into(),
            ));
        }
    }
    let Some(listed) = keys.get("strait.conflicts.rules") else {
        if let Some(src) = keys.values().next() {
            return Err(bad(
                &src.at,
                "conflict settings without `strait.conflicts.rules`, which names the rules they belong to".into(),
            ));
        }
        return Ok(Conflicts::default());
    };

    let regions = match keys.get("strait.conflicts.regions") {
        Some(src) => {
            let regions = parse_list(&src.value);
            let mut seen = BTreeSet::new();
            for r in &regions {
                if !aliases.contains(r) {
                    return Err(bad(
                        &src.at,
                        format!(
                            "`{r}` is not a cluster of `clusters` ({})",
                            aliases.join(", ")
                        ),
                    ));
                }
                if !seen.insert(r) {
                    return Err(bad(&src.at, format!("`{r}` is listed twice")));
                }
            }
            if regions.len() < 2 {
                return Err(bad(&src.at, "conflicts need at least two regions".into()));
            }
            regions
        }
        None => aliases.to_vec(),
    };

    let names = parse_list(&listed.value);
    if names.is_empty() {
        return Err(bad(&listed.at, "lists no rule".into()));
    }
    let mut rules = Vec::new();
    let clock_tolerance = millis(keys.get(CLOCK_TOLERANCE_KEY), DEFAULT_CLOCK_TOLERANCE)?;
    let write_delay_max = millis(keys.get(WRITE_DELAY_KEY), DEFAULT_WRITE_DELAY_MAX)?;
    let mut used: BTreeSet<&str> = [
        "strait.conflicts.rules",
        "strait.conflicts.regions",
        CLOCK_TOLERANCE_KEY,
        WRITE_DELAY_KEY,
    ]
    .into();
    for name in &names {
        if let Some((_, key)) = RESERVED_NAMES.iter().find(|(n, _)| n == name) {
            return Err(bad(
                &listed.at,
                format!("rule name `{name}` is taken by `{key}`; name the rule otherwise"),
            ));
        }
        if name.is_empty() || name.contains('.') || name.contains(char::is_whitespace) {
            return Err(bad(
                &listed.at,
                format!(
                "rule name `{name}` must be a word without dots or spaces (it is part of its keys)"
            ),
            ));
        }
        if rules.iter().any(|r: &ConflictRule| &r.name == name) {
            return Err(bad(&listed.at, format!("rule `{name}` is listed twice")));
        }
        let prefix = format!("{CONFLICTS}{name}.");
        let own: BTreeMap<&str, &Sourced> = keys
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest, v)))
            .collect();
        used.extend(
            keys.keys()
                .filter(|k| k.starts_with(&prefix))
                .map(String::as_str),
        );
        rules.push(rule(name, &own, &listed.at, &regions)?);
    }
    if let Some((_, src)) = keys.iter().find(|(k, _)| !used.contains(k.as_str())) {
        return Err(bad(
            &src.at,
            format!(
                "belongs to no rule of `strait.conflicts.rules` ({})",
                names.join(", ")
            ),
        ));
    }
    Ok(Conflicts {
        regions,
        rules,
        clock_tolerance,
        write_delay_max,
    })
}

fn rule(
    name: &str,
    own: &BTreeMap<&str, &Sourced>,
    listed: &KeyRef,
    regions: &[String],
) -> Result<ConflictRule, (KeyRef, Problem)> {
    let key = |rest: &str| format!("{CONFLICTS}{name}.{rest}");
    let topics_src = own.get("topics").ok_or_else(|| {
        bad(
            listed,
            format!(
                "rule `{name}` has no `{}` (the topics it covers)",
                key("topics")
            ),
        )
    })?;
    let patterns = parse_list(&topics_src.value);
    if patterns.is_empty() {
        return Err(bad(&topics_src.at, "lists no topic".into()));
    }
    let topics = NameFilter::new(patterns).map_err(|e| {
        (
            topics_src.at.clone(),
            Problem::InvalidRegex {
                pattern: e.pattern,
                reason: e.reason,
            },
        )
    })?;
    let strategy_src = own.get("strategy").ok_or_else(|| {
        bad(
            listed,
            format!(
                "rule `{name}` has no `{}` (authority, last-writer-wins or events)",
                key("strategy")
            ),
        )
    })?;

    let mut allowed: Vec<&str> = vec!["topics", "strategy"];
    let strategy = match strategy_src.value.trim() {
        "authority" => {
            let mut owners = Vec::new();
            for (rest, src) in own {
                let Some(region) = rest.strip_prefix("authority.") else {
                    continue;
                };
                if !regions.iter().any(|r| r == region) {
                    return Err(bad(
                        &src.at,
                        format!(
                            "`{region}` is not one of the regions ({})",
                            regions.join(", ")
                        ),
                    ));
                }
                let pattern = src.value.trim().to_string();
                strait_conflicts::authority::Authority::new(&[(0, pattern.clone())]).map_err(
                    |e| {
                        (
                            src.at.clone(),
                            Problem::InvalidRegex {
                                pattern: e.pattern,
                                reason: e.reason,
                            },
                        )
                    },
                )?;
                owners.push((src.at.line, region.to_string(), pattern));
                allowed.push(rest);
            }
            if owners.is_empty() {
                return Err(bad(
                    &strategy_src.at,
                    format!(
                        "authority needs at least one `{}` (the keys a region owns, as a regex)",
                        key("authority.<region>")
                    ),
                ));
            }
            owners.sort();
            overlap(&owners, &strategy_src.at)?;
            let violations = match own.get("violations") {
                None => Violations::Report,
                Some(src) => match src.value.trim() {
                    "report" => Violations::Report,
                    "quarantine" => Violations::Quarantine,
                    other => {
                        return Err(bad(
                            &src.at,
                            format!("`{other}` must be `report` or `quarantine`"),
                        ))
                    }
                },
            };
            allowed.push("violations");
            Strategy::Authority {
                owners: owners.into_iter().map(|(_, r, p)| (r, p)).collect(),
                violations,
            }
        }
        "last-writer-wins" => Strategy::LastWriterWins,
        "events" => {
            allowed.extend(["event.id.header", "lateness.ms"]);
            let id_header = own
                .get("event.id.header")
                .map(|s| s.value.trim().to_string())
                .filter(|s| !s.is_empty());
            let lateness = millis(own.get("lateness.ms").copied(), DEFAULT_LATENESS)?;
            Strategy::Events {
                id_header,
                lateness,
            }
        }
        other => {
            return Err(bad(
                &strategy_src.at,
                format!("`{other}` must be `authority`, `last-writer-wins` or `events`"),
            ))
        }
    };
    if let Some((rest, src)) = own.iter().find(|(rest, _)| !allowed.contains(rest)) {
        let known = [
            "topics",
            "strategy",
            "authority.<region>",
            "violations",
            "event.id.header",
            "lateness.ms",
        ];
        let why = if known
            .iter()
            .any(|k| k == rest || (k.starts_with("authority.") && rest.starts_with("authority.")))
        {
            format!("does not apply to strategy `{}`", strategy.as_str())
        } else {
            format!("is not a rule setting (those are {})", known.join(", "))
        };
        return Err(bad(&src.at, why));
    }
    Ok(ConflictRule {
        name: name.to_string(),
        topics,
        strategy,
        at: listed.clone(),
    })
}

/// Two regions claiming one key is a mistake (the key would have two owners). Two regexes
/// cannot in general be proven disjoint, so each pattern is tried on keys made from every
/// pattern's literal start: `US-.*` and `.*-123` are caught on `US-` + `123`-like keys, an
/// overlap needing an unusual key may not be.
fn overlap(owners: &[(usize, String, String)], at: &KeyRef) -> Result<(), (KeyRef, Problem)> {
    let indexed: Vec<(u16, String)> = owners
        .iter()
        .enumerate()
        .map(|(i, (_, _, p))| (i as u16, p.clone()))
        .collect();
    let Ok(authority) = strait_conflicts::authority::Authority::new(&indexed) else {
        return Ok(()); // each pattern was checked on its own already
    };
    let literal = |p: &str| -> String {
        p.chars()
            .take_while(|c| !".[]()*+?{}|^$\\".contains(*c))
            .collect()
    };
    let prefixes: Vec<String> = owners.iter().map(|(_, _, p)| literal(p)).collect();
    let suffixes = ["", "0", "1", "123", "a", "A", "x", "-1", "_1", ":1", "/1"];
    let mut samples = Vec::new();
    for a in &prefixes {
        for b in &prefixes {
            for s in suffixes {
                samples.push(format!("{a}{s}{b}"));
                samples.push(format!("{a}{s}"));
            }
        }
    }
    let refs: Vec<&str> = samples.iter().map(String::as_str).collect();
    if let Some((key, claimants)) = authority.overlaps(&refs).into_iter().next() {
        let names: Vec<&str> = claimants
            .iter()
            .map(|&i| owners[usize::from(i)].1.as_str())
            .collect();
        return Err(bad(
            at,
            format!(
                "the key patterns of {} all match the key `{key}`: each key must have one owner",
                names.join(" and ")
            ),
        ));
    }
    Ok(())
}

/// Each rule's topics must be replicated both ways between every two regions, or strait never
/// sees one side's writes. Checked for topics named literally (a pattern like `orders-.*` may
/// cover topics that do not exist yet; those are checked as they appear).
pub(crate) fn check_flows(
    conflicts: &Conflicts,
    flows: &[super::model::Flow],
) -> Result<(), (KeyRef, Problem)> {
    for rule in &conflicts.rules {
        let literal = rule.topics.patterns().iter().filter(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        for topic in literal {
            for s in &conflicts.regions {
                for t in &conflicts.regions {
                    if s == t {
                        continue;
                    }
                    let flow = flows.iter().find(|f| &f.source == s && &f.target == t);
                    let why = match flow {
                        Some(f) if !(f.runs() && f.enabled) => Some(format!("the flow {s}->{t} does not replicate (`{s}->{t}.enabled` is not true)")),
                        Some(f) if !f.should_replicate_topic(topic) => {
                            Some(format!("the flow {s}->{t} does not replicate it (see its `topics` and `topics.exclude`)"))
                        }
                        Some(_) => None,
                        None => Some(format!("there is no flow {s}->{t}")),
                    };
                    if let Some(why) = why {
                        return Err(bad(&rule.at, format!(
                            "rule `{}` covers topic `{topic}`, but {why}; a conflict topic must be replicated both ways between its regions",
                            rule.name
                        )));
                    }
                }
            }
        }
    }
    // The conflict jobs read the flows' receipts and quarantines, which are written outside any
    // transaction: not yet for an exactly-once flow.
    if let Some(rule) = conflicts.rules.first() {
        let between = |f: &&super::model::Flow| {
            conflicts.regions.contains(&f.source) && conflicts.regions.contains(&f.target)
        };
        if let Some(f) = flows
            .iter()
            .filter(between)
            .find(|f| f.exactly_once.is_some())
        {
            let eo = f.exactly_once.as_ref().expect("found with it");
            return Err((
                eo.because.clone(),
                Problem::ExactlyOnce(format!(
                    "the flow {} copies exactly once ({}), but it runs between the regions of conflict rule `{}`; \
                     conflict rules need at-least-once flows for now: set `{}.exactly.once.support = disabled`",
                    f.name(),
                    eo.because.key,
                    rule.name,
                    f.name()
                )),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    #[test]
    fn an_exactly_once_flow_between_conflict_regions_is_refused() {
        let e = error(
            "east->west.exactly.once.support = required\nstrait.conflicts.rules = r\n\
             strait.conflicts.regions = east, west\nstrait.conflicts.r.topics = orders\n\
             strait.conflicts.r.strategy = last-writer-wins\n",
        );
        assert!(e.contains("east->west.exactly.once.support"), "{e}");
        assert!(e.contains("conflict rule `r`"), "{e}");
    }

    const BASE: &str =
        "clusters = east, west\neast.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
                        east->west.enabled = true\nwest->east.enabled = true\n";

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{BASE}{extra}"), "mm2.properties")
    }

    fn error(extra: &str) -> String {
        parse(extra).unwrap_err().to_string()
    }

    #[test]
    fn a_file_without_rules_has_none() {
        let c = parse("").unwrap();
        assert!(c.conflicts.rules.is_empty());
    }

    #[test]
    fn the_three_strategies_are_read() {
        let c = parse(
            "strait.conflicts.rules = orders, ledger, log\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.orders.topics = orders\n\
             strait.conflicts.orders.strategy = authority\n\
             strait.conflicts.orders.authority.east = US-.*\n\
             strait.conflicts.orders.authority.west = EU-.*\n\
             strait.conflicts.orders.violations = quarantine\n\
             strait.conflicts.ledger.topics = ledger, ledger-v2\n\
             strait.conflicts.ledger.strategy = last-writer-wins\n\
             strait.conflicts.log.topics = order-events\n\
             strait.conflicts.log.strategy = events\n\
             strait.conflicts.log.event.id.header = event-id\n\
             strait.conflicts.log.lateness.ms = 2000\n",
        )
        .unwrap();
        let cf = &c.conflicts;
        assert_eq!(cf.regions, ["west", "east"]);
        assert_eq!(cf.rank("east"), Some(1));
        assert_eq!(
            cf.rule_for("orders").unwrap().strategy,
            Strategy::Authority {
                owners: vec![
                    ("east".into(), "US-.*".into()),
                    ("west".into(), "EU-.*".into())
                ],
                violations: Violations::Quarantine,
            }
        );
        assert_eq!(
            cf.rule_for("ledger-v2").unwrap().strategy,
            Strategy::LastWriterWins
        );
        assert_eq!(
            cf.rule_for("order-events").unwrap().strategy,
            Strategy::Events {
                id_header: Some("event-id".into()),
                lateness: Duration::from_secs(2)
            }
        );
        assert!(cf.rule_for("payments").is_none());
    }

    /// Each mistake is one sentence naming the line and the key.
    #[test]
    fn mistakes_name_line_and_key() {
        let cases = [
            ("strait.conflict.rules = a\n", "line 6, key `strait.conflict.rules`: strait knows no such setting"),
            ("strait.conflicts.orders.topics = o\n", "line 6, key `strait.conflicts.orders.topics`: conflict settings without `strait.conflicts.rules`"),
            ("strait.conflicts.rules = orders\n", "line 6, key `strait.conflicts.rules`: rule `orders` has no `strait.conflicts.orders.topics`"),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = newest\n",
                "line 8, key `strait.conflicts.orders.strategy`: `newest` must be `authority`, `last-writer-wins` or `events`",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = authority\n",
                "authority needs at least one `strait.conflicts.orders.authority.<region>`",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = authority\nstrait.conflicts.orders.authority.south = S-.*\n",
                "line 9, key `strait.conflicts.orders.authority.south`: `south` is not one of the regions (east, west)",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = authority\n\
                 strait.conflicts.orders.authority.east = US-.*\nstrait.conflicts.orders.authority.west = .*-123\n",
                "the key patterns of east and west all match the key `US-123`",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = last-writer-wins\nstrait.conflicts.orders.violations = report\n",
                "line 9, key `strait.conflicts.orders.violations`: does not apply to strategy `last-writer-wins`",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = last-writer-wins\nstrait.conflicts.order.topics = x\n",
                "key `strait.conflicts.order.topics`: belongs to no rule of `strait.conflicts.rules` (orders)",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders(\nstrait.conflicts.orders.strategy = last-writer-wins\n",
                "line 7, key `strait.conflicts.orders.topics`: invalid regex `orders(`",
            ),
            (
                "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = last-writer-wins\nwest->east.topics = payments\n",
                "rule `orders` covers topic `orders`, but the flow west->east does not replicate it",
            ),
        ];
        for (extra, expected) in cases {
            let e = error(extra);
            assert!(
                e.contains(expected),
                "for\n{extra}\ngot: {e}\nwanted: {expected}"
            );
            assert!(e.starts_with("mm2.properties, line "), "{e}");
        }
    }

    /// A last-writer-wins view (`orders.resolved`) is kept in each region by strait and never
    /// replicated; other topics named `.resolved` are replicated as any.
    #[test]
    fn a_last_writer_wins_view_is_never_replicated() {
        let c = parse(
            "strait.conflicts.rules = orders, owned
             strait.conflicts.orders.topics = orders, ledger-.*
             strait.conflicts.orders.strategy = last-writer-wins
             strait.conflicts.owned.topics = accounts
             strait.conflicts.owned.strategy = authority
             strait.conflicts.owned.authority.east = E-.*
",
        )
        .unwrap();
        let enabled: Vec<_> = c.enabled_flows().collect();
        assert_eq!(enabled.len(), 2);
        for f in enabled {
            assert!(f.should_replicate_topic("orders"));
            assert!(!f.should_replicate_topic("orders.resolved"), "{}", f.name());
            assert!(f.should_replicate_topic("ledger-eu"));
            assert!(!f.should_replicate_topic("ledger-eu.resolved"));
            assert!(
                f.should_replicate_topic("accounts.resolved"),
                "an authority rule keeps no view"
            );
            assert!(
                f.should_replicate_topic("payments.resolved"),
                "no rule covers payments"
            );
            assert!(f.should_replicate_topic("orders.resolved-old"));
            assert!(!f.should_replicate_topic("strait.receipts"));
            assert!(!f.should_replicate_topic("strait.conflicts"));
            let other = if f.source == "east" { "west" } else { "east" };
            assert!(
                !f.should_replicate_topic(&format!("{other}.accounts.quarantine")),
                "cycle"
            );
            assert!(
                !f.topic_filter_matches("south.accounts.quarantine"),
                "a quarantine topic of an authority topic is never replicated"
            );
            assert!(
                f.topic_filter_matches("south.orders.quarantine"),
                "no authority rule"
            );
            assert!(
                f.topic_filter_matches("accounts.quarantine"),
                "a local topic"
            );
        }
        let warnings: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            warnings.iter().any(|w| w.contains(
                "last-writer-wins rules (`orders`) keep a resolved view `<topic>.resolved` in each region"
            )),
            "{warnings:?}"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("(`owned`)")),
            "authority rules are acted on: {warnings:?}"
        );

        let plain = parse("").unwrap();
        assert!(plain
            .enabled_flows()
            .all(|f| f.should_replicate_topic("orders.resolved")));
    }

    /// A merged stream (`order-events.merged`) and the marks topic are kept in each region by
    /// strait and never replicated, as views are; an events rule's warning is gone.
    #[test]
    fn merged_streams_and_marks_are_never_replicated() {
        let c = parse(
            "strait.conflicts.rules = log
             strait.conflicts.log.topics = order-events, audit-.*
             strait.conflicts.log.strategy = events
",
        )
        .unwrap();
        for f in c.enabled_flows() {
            assert!(f.should_replicate_topic("order-events"));
            assert!(
                !f.should_replicate_topic("order-events.merged"),
                "{}",
                f.name()
            );
            assert!(!f.should_replicate_topic("audit-eu.merged"));
            assert!(!f.should_replicate_topic(MARKS_TOPIC));
            assert!(
                f.should_replicate_topic("order-events.resolved"),
                "not a last-writer-wins topic"
            );
            assert!(
                f.should_replicate_topic("payments.merged"),
                "no rule covers payments"
            );
        }
        assert_eq!(merged_topic("order-events"), "order-events.merged");
        assert!(
            !c.warnings
                .iter()
                .any(|w| w.message.contains("does not act on them")),
            "{:?}",
            c.warnings
        );
    }

    /// The settings of every rule, in milliseconds: read, defaulted, refused when not a number,
    /// and their names not taken by a rule.
    #[test]
    fn the_millisecond_settings_are_read_and_defaulted() {
        const RULE: &str = "strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = last-writer-wins\n";
        type Get = fn(&Conflicts) -> Duration;
        let settings: [(&str, &str, Get, u64); 2] = [
            (
                "strait.conflicts.clock.tolerance.ms",
                "clock",
                |c| c.clock_tolerance,
                50,
            ),
            (
                "strait.conflicts.write.delay.max.ms",
                "write",
                |c| c.write_delay_max,
                120_000,
            ),
        ];
        for (key, word, get, default) in settings {
            let ms = |c: &Config| get(&c.conflicts).as_millis() as u64;
            assert_eq!(ms(&parse(RULE).unwrap()), default, "{key}");
            assert_eq!(ms(&parse(&format!("{RULE}{key} = 250\n")).unwrap()), 250);
            let e = error(&format!("{RULE}{key} = soon\n"));
            assert!(
                e.contains(&format!("key `{key}`")) && e.contains("soon"),
                "{e}"
            );
            let e = error(&format!(
                "strait.conflicts.rules = {word}\nstrait.conflicts.{word}.topics = o\nstrait.conflicts.{word}.strategy = events\n"
            ));
            assert!(
                e.contains(&format!("rule name `{word}` is taken by `{key}`")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_flow_that_is_off_is_named() {
        let text = "clusters = east, west\neast.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
                    east->west.enabled = true\n\
                    strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = last-writer-wins\n";
        let e = Config::parse(text, "mm2.properties")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the flow west->east does not replicate (`west->east.enabled` is not true)"),
            "{e}"
        );
    }
}
