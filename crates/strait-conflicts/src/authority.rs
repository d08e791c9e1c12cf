//! Regional authority: a region owns some keys (order ids `US-.*` belong to us-east), and a
//! write to a key from a region that does not own it is a violation.
//!
//! Ownership is by regular expression on the key, matched whole (as MM2 matches topic names, in
//! Java's syntax). A key no region claims is free for all: writing it is never a violation (nor
//! is a record without a key, or with a key that is not text). A key two regions claim is a
//! mistake in the configuration, which [`Authority::overlaps`] finds on sample keys (two regular
//! expressions cannot in general be proven disjoint); such a key judges no write a violation.
//!
//! [`Authority::decide`] is what a flow `S->T` does with one record: the writer is the region
//! that wrote it (S for S's own topic, the upstream region for a remote topic in a chain), and
//! only the owner's copy is ever held back: a violation is quarantined when the rule says so
//! *and* T owns the key (the owner's consumers must not see it); anywhere else it is copied and
//! reported, so that a third region still gets every write.

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

/// What a flow does with one record of a topic under an authority rule (a closed set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a violation: copied as any record.
    Copy,
    /// A violation, copied as any record and recorded.
    CopyAndReport {
        /// The key's owner.
        owner: Rank,
    },
    /// A violation kept out of the owner's remote topic: written beside it, and recorded.
    Quarantine {
        /// The key's owner (the flow's target).
        owner: Rank,
    },
}

impl Decision {
    /// The owner whose key was written, when the record is a violation.
    pub fn violated_owner(self) -> Option<Rank> {
        match self {
            Decision::Copy => None,
            Decision::CopyAndReport { owner } | Decision::Quarantine { owner } => Some(owner),
        }
    }
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

    /// What a flow into region `target` does with a record of key `key` written in region
    /// `writer` (`None`: a region outside the rule's regions, which owns nothing; so is a target
    /// outside them). `quarantine`: the rule's `violations = quarantine`.
    pub fn decide(
        &self,
        writer: Option<Rank>,
        target: Option<Rank>,
        quarantine: bool,
        key: Option<&[u8]>,
    ) -> Decision {
        let Some(key) = key else {
            return Decision::Copy;
        };
        match self.owner(key) {
            Owner::Region(owner) if Some(owner) != writer => {
                if quarantine && Some(owner) == target {
                    Decision::Quarantine { owner }
                } else {
                    Decision::CopyAndReport { owner }
                }
            }
            _ => Decision::Copy,
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
    fn only_the_owners_copy_of_a_violation_is_quarantined() {
        let a = us_eu();
        let (east, west, central) = (Some(0), Some(1), Some(2));
        // west writes a US key: into east (the owner) it is quarantined, or reported.
        assert_eq!(
            a.decide(west, east, true, Some(b"US-1")),
            Decision::Quarantine { owner: 0 }
        );
        assert_eq!(
            a.decide(west, east, false, Some(b"US-1")),
            Decision::CopyAndReport { owner: 0 }
        );
        // Into a third region it is copied and reported.
        assert_eq!(
            a.decide(west, central, true, Some(b"US-1")),
            Decision::CopyAndReport { owner: 0 }
        );
        // The owner's own writes, free keys, no key, binary keys: copied.
        assert_eq!(a.decide(east, west, true, Some(b"US-1")), Decision::Copy);
        assert_eq!(a.decide(west, east, true, Some(b"APAC-1")), Decision::Copy);
        assert_eq!(a.decide(west, east, true, None), Decision::Copy);
        assert_eq!(a.decide(west, east, true, Some(&[0xff])), Decision::Copy);
        // A writer outside the rule's regions owns nothing.
        assert_eq!(
            a.decide(None, east, true, Some(b"US-1")),
            Decision::Quarantine { owner: 0 }
        );
    }

    proptest::proptest! {
        /// Against the definition, on keys of every kind (owned by either region, free,
        /// contested, near misses), every writer, target and mode.
        #[test]
        fn decide_follows_the_definition(
            prefix in proptest::sample::select(vec!["US-", "EU-", "AP-", "xUS-", "US", ""]),
            rest in "[A-Z0-9-]{0,4}",
            writer in proptest::option::of(0u16..3),
            target in proptest::option::of(0u16..3),
            quarantine: bool,
            contested: bool,
            keyless: bool,
        ) {
            let mut owners = vec![(0, "US-.*".to_string()), (1, "EU-.*".to_string())];
            if contested {
                owners.push((2, ".*-1".to_string()));
            }
            let a = Authority::new(&owners).unwrap();
            let key = format!("{prefix}{rest}");
            let key = (!keyless).then_some(key.as_bytes());
            let d = a.decide(writer, target, quarantine, key);
            // Who claims the key, by each pattern on its own, matched whole.
            let claims: Vec<u16> = owners
                .iter()
                .filter(|(_, p)| {
                    key.is_some_and(|k| {
                        fancy_regex::Regex::new(&format!("^(?:{p})$"))
                            .unwrap()
                            .is_match(std::str::from_utf8(k).unwrap())
                            .unwrap()
                    })
                })
                .map(|(r, _)| *r)
                .collect();
            let violated = match claims.as_slice() {
                [one] if Some(*one) != writer => Some(*one),
                _ => None,
            };
            proptest::prop_assert_eq!(d.violated_owner(), violated);
            let quarantined = matches!(d, Decision::Quarantine { .. });
            proptest::prop_assert_eq!(
                quarantined,
                violated.is_some() && quarantine && violated == target
            );
            // Never the writer's own key, never a key nobody (or everybody) owns.
            if let Some(owner) = d.violated_owner() {
                proptest::prop_assert!(Some(owner) != writer && claims == vec![owner]);
            }
        }
    }

    #[test]
    fn a_bad_pattern_names_its_region() {
        let e = Authority::new(&[(1, "US-(".into())]).unwrap_err();
        assert_eq!((e.region, e.pattern.as_str()), (1, "US-("));
    }
}
