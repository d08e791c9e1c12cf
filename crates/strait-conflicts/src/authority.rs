//! Regional authority: a region owns some keys (order ids `US-.*` belong to us-east), and a
//! write to a key from a region that does not own it is a violation.
//!
//! Ownership is by regular expression on the key, matched whole (as MM2 matches topic names, in
//! Java's syntax). A key no region claims is free for all; a key two regions claim is a mistake
//! in the configuration, which [`Authority::overlaps`] finds on sample keys (two regular
//! expressions cannot in general be proven disjoint).

use crate::Rank;

/// Who owns a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// One region claims it.
    Region(Rank),
    /// No region claims it: any may write it.
    Nobody,
    /// Several regions claim it (a configuration mistake): no write is judged a violation.
    Contested(Vec<Rank>),
    /// The key is not text, so no pattern can claim it.
    NotText,
}

/// A write judged against the owner of its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// The writer owns the key, or nobody does.
    Allowed,
    /// Another region owns the key.
    Violation {
        /// The owner.
        owner: Rank,
    },
}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the key pattern `{pattern}` of region {region} is not a valid regular expression: {reason}"
)]
pub struct BadPattern {
    /// The region it was given for.
    pub region: Rank,
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The ownership map of one conflict rule.
#[derive(Clone, Debug)]
pub struct Authority {
    owners: Vec<(Rank, fancy_regex::Regex)>,
}

impl Authority {
    /// Regions and the keys each owns, as regular expressions matched against the whole key.
    pub fn new(owners: &[(Rank, String)]) -> Result<Self, BadPattern> {
        let owners = owners
            .iter()
            .map(|(region, p)| {
                fancy_regex::Regex::new(&format!("^(?:{p})$"))
                    .map(|re| (*region, re))
                    .map_err(|e| BadPattern {
                        region: *region,
                        pattern: p.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { owners })
    }

    /// Who owns `key`.
    pub fn owner(&self, key: &[u8]) -> Owner {
        let Ok(key) = std::str::from_utf8(key) else {
            return Owner::NotText;
        };
        // A pattern too costly to evaluate (fancy-regex's backtracking limit) claims nothing.
        let mut claims: Vec<Rank> = self
            .owners
            .iter()
            .filter(|(_, re)| re.is_match(key).unwrap_or(false))
            .map(|(r, _)| *r)
            .collect();
        claims.dedup();
        match claims.as_slice() {
            [] => Owner::Nobody,
            [one] => Owner::Region(*one),
            _ => Owner::Contested(claims),
        }
    }

    /// A write to `key` made in region `writer`.
    pub fn judge(&self, writer: Rank, key: &[u8]) -> Judgement {
        match self.owner(key) {
            Owner::Region(owner) if owner != writer => Judgement::Violation { owner },
            _ => Judgement::Allowed,
        }
    }

    /// The sample keys more than one region claims, with the regions.
    pub fn overlaps<'s>(&self, samples: &[&'s str]) -> Vec<(&'s str, Vec<Rank>)> {
        samples
            .iter()
            .filter_map(|s| match self.owner(s.as_bytes()) {
                Owner::Contested(rs) => Some((*s, rs)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us_eu() -> Authority {
        Authority::new(&[(0, "US-.*".into()), (1, "EU-.*".into())]).unwrap()
    }

    #[test]
    fn a_write_to_a_key_another_region_owns_is_a_violation() {
        let a = us_eu();
        assert_eq!(a.judge(0, b"US-123"), Judgement::Allowed);
        assert_eq!(a.judge(1, b"US-123"), Judgement::Violation { owner: 0 });
        assert_eq!(a.judge(1, b"APAC-1"), Judgement::Allowed);
        assert_eq!(
            a.owner(b"xUS-1"),
            Owner::Nobody,
            "matched whole, as MM2 matches"
        );
        assert_eq!(a.owner(&[0xff, 0xfe]), Owner::NotText);
    }

    #[test]
    fn overlapping_patterns_are_found_on_samples_and_judge_nothing() {
        let a = Authority::new(&[(0, "US-.*".into()), (1, ".*-123".into())]).unwrap();
        assert_eq!(
            a.overlaps(&["US-123", "US-1", "EU-123"]),
            vec![("US-123", vec![0, 1])]
        );
        assert_eq!(a.judge(1, b"US-123"), Judgement::Allowed);
    }

    #[test]
    fn a_bad_pattern_names_its_region() {
        let e = Authority::new(&[(1, "US-(".into())]).unwrap_err();
        assert_eq!((e.region, e.pattern.as_str()), (1, "US-("));
    }
}
