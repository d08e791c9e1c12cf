//! MM2's LIST values and name filters (MM2-SPEC §1.7): `topics`, `topics.exclude`, `groups`,
//! `groups.exclude` and `config.properties.exclude` are each one regex made of the list
//! elements joined with `|`, and a name passes only if the whole name matches.
//!
//! The regexes are compiled with `fancy-regex`, not `regex`: MM2 compiles them as Java regexes,
//! and people moving an existing mm2.properties over have lookarounds (`(?!__).*`), backreferences
//! or possessive quantifiers in them. `fancy-regex` accepts those, and hands every pattern
//! without such features to the `regex` crate's linear-time engine, so the common case costs
//! nothing extra. Names are short (topic names are at most 249 bytes), so the bounded
//! backtracking of the rest is no risk.

use std::fmt;

/// Split a LIST value as Kafka's ConfigDef does: trim, then split on `\s*,\s*`; an empty value
/// is an empty list (and `a,` keeps its trailing empty element, as Java's `split(.., -1)` does).
pub fn parse_list(value: &str) -> Vec<String> {
    let trimmed = value.trim_matches(|c: char| c <= ' ');
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(',')
        .map(|s| s.trim_matches(is_java_space).to_string())
        .collect()
}

/// `\s` in a Java regex.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// A compiled MM2 name filter. An empty list matches nothing: an empty include list lets no
/// topic through, an empty exclude list excludes nothing.
#[derive(Clone)]
pub struct NameFilter {
    patterns: Vec<String>,
    regex: Option<fancy_regex::Regex>,
}

/// A list element that is not a valid regex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

impl NameFilter {
    /// Compile list elements into `^(?:e1|e2|…)$`.
    pub fn new(patterns: Vec<String>) -> Result<Self, FilterError> {
        if patterns.is_empty() {
            return Ok(Self {
                patterns,
                regex: None,
            });
        }
        // Check each element on its own first, so the error names the element that is wrong.
        for p in &patterns {
            if let Err(e) = fancy_regex::Regex::new(&format!("^(?:{p})$")) {
                return Err(FilterError {
                    pattern: p.clone(),
                    reason: e.to_string(),
                });
            }
        }
        let joined = patterns.join("|");
        let regex =
            fancy_regex::Regex::new(&format!("^(?:{joined})$")).map_err(|e| FilterError {
                pattern: joined.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            patterns,
            regex: Some(regex),
        })
    }

    /// Parse a LIST value and compile it.
    pub fn from_list(value: &str) -> Result<Self, FilterError> {
        Self::new(parse_list(value))
    }

    /// Whether the whole of `name` matches one of the patterns (Java's `Matcher.matches`).
    /// A pattern that gives up (backtracking limit) counts as no match, and says so in the log.
    pub fn matches(&self, name: &str) -> bool {
        let Some(re) = &self.regex else {
            return false;
        };
        match re.is_match(name) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(name, patterns = %self, "name filter gave up: {e}");
                false
            }
        }
    }

    /// The list elements as written, for display.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// True for an empty list (which matches nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// The empty list: matches nothing.
impl Default for NameFilter {
    fn default() -> Self {
        Self {
            patterns: Vec::new(),
            regex: None,
        }
    }
}

impl fmt::Display for NameFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patterns.is_empty() {
            f.write_str("(empty: matches nothing)")
        } else {
            f.write_str(&self.patterns.join(", "))
        }
    }
}

impl fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NameFilter").field(&self.patterns).finish()
    }
}

impl PartialEq for NameFilter {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(list: &str) -> NameFilter {
        NameFilter::from_list(list).unwrap()
    }

    #[test]
    fn lists_split_and_trim_like_configdef() {
        assert_eq!(parse_list(" a , b,c\t"), vec!["a", "b", "c"]);
        assert_eq!(parse_list("   "), Vec::<String>::new());
        assert_eq!(parse_list(""), Vec::<String>::new());
        assert_eq!(parse_list("a,"), vec!["a", ""]);
        assert_eq!(parse_list("one"), vec!["one"]);
    }

    #[test]
    fn whole_name_must_match() {
        let t = f("orders, pay.*");
        assert!(t.matches("orders"));
        assert!(t.matches("payments"));
        assert!(!t.matches("orders2"));
        assert!(!t.matches("my-orders"));
        assert!(!t.matches("xpayments"));
    }

    #[test]
    fn alternation_inside_an_element_is_not_grouped_per_element() {
        // Joined with `|` and no grouping, as MM2 does: `a|b` inside one element still works.
        let t = f("a|b, c");
        assert!(t.matches("a") && t.matches("b") && t.matches("c"));
        assert!(!t.matches("ab"));
    }

    #[test]
    fn empty_list_matches_nothing() {
        let t = f("");
        assert!(t.is_empty());
        assert!(!t.matches("orders"));
        assert!(!t.matches(""));
        assert_eq!(t.to_string(), "(empty: matches nothing)");
    }

    #[test]
    fn mm2_default_excludes() {
        let t = f(r".*[\-\.]internal, .*\.replica, __.*");
        assert!(t.matches("mm2-offsets.A.internal"));
        assert!(t.matches("connect-internal"));
        assert!(t.matches("x.replica"));
        assert!(t.matches("__consumer_offsets"));
        assert!(!t.matches("orders"));
        assert!(!t.matches("internal"));
    }

    #[test]
    fn java_lookarounds_work() {
        let t = f("(?!test-).*");
        assert!(t.matches("orders"));
        assert!(!t.matches("test-orders"));
    }

    #[test]
    fn invalid_regex_names_the_element() {
        let e = NameFilter::from_list("ok, bad(").unwrap_err();
        assert_eq!(e.pattern, "bad(");
        assert!(!e.reason.is_empty());
    }

    proptest! {
        /// Literal names (no regex metacharacters) match exactly themselves.
        #[test]
        fn literal_lists_match_exactly_their_elements(
            names in proptest::collection::vec("[a-z0-9_-]{1,12}", 0..5),
            probe in "[a-z0-9_-]{1,12}",
        ) {
            let filter = NameFilter::new(names.clone()).unwrap();
            prop_assert_eq!(filter.matches(&probe), names.contains(&probe));
            for n in &names {
                prop_assert!(filter.matches(n));
            }
        }

        /// Splitting ignores the whitespace around commas.
        #[test]
        fn whitespace_around_commas_is_ignored(names in proptest::collection::vec("[a-z]{1,8}", 1..5), ws in "[ \t]{0,3}") {
            let text = names.join(&format!("{ws},{ws}"));
            prop_assert_eq!(parse_list(&format!("{ws}{text}{ws}")), names);
        }
    }
}
