//! Topic ACL sync decisions (MM2-SPEC §5): which target ACL bindings to create from a source's
//! topic ACLs. Additive only, as in MM2: bindings removed upstream are never removed downstream.

use std::collections::BTreeSet;

use tracing::debug;

pub(crate) use crate::kafka::acls::{AclBinding, Operation, PatternType, Permission, ResourceType};
use crate::kafka::{AclError, Admin};

/// Kafka's wildcard resource name.
const WILDCARD: &str = "*";

/// The bindings to create on the target for a flow, from the source's bindings (MM2's topic ACL
/// sync):
/// - only LITERAL TOPIC bindings; prefixed patterns and the `*` wildcard are ignored (mapped to
///   a remote name, the wildcard would either name a meaningless literal topic `us-east.*` or,
///   under the identity policy, cover every topic of the target);
/// - `ALLOW WRITE` is dropped, so that only the replicator writes remote topics;
/// - only topics `should_replicate_topic` accepts;
/// - each is mapped to a literal binding on `remote_name(topic)`; `ALLOW ALL` becomes
///   `ALLOW READ` (again so nobody else writes), DENY entries are copied unchanged.
///
/// The result is sorted and free of duplicates (two source bindings can map to one, e.g.
/// `ALLOW ALL` and `ALLOW READ` for the same principal and host).
pub(crate) fn acls_to_create(
    source_bindings: &[AclBinding],
    should_replicate_topic: &dyn Fn(&str) -> bool,
    remote_name: &dyn Fn(&str) -> String,
) -> Vec<AclBinding> {
    source_bindings
        .iter()
        .filter(|b| b.resource_type == ResourceType::Topic)
        .filter(|b| b.pattern_type == PatternType::Literal && b.name != WILDCARD)
        .filter(|b| !(b.permission == Permission::Allow && b.operation == Operation::Write))
        .filter(|b| should_replicate_topic(&b.name))
        .map(|b| {
            let operation = if b.permission == Permission::Allow && b.operation == Operation::All {
                Operation::Read
            } else {
                b.operation
            };
            AclBinding {
                name: remote_name(&b.name),
                operation,
                ..b.clone()
            }
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// One ACL sync pass for a flow (MM2-SPEC §5): describe the source's topic ACLs, keep and map
/// them with `acls_to_create`, and create the result on the target. Returns how many bindings
/// were sent (creating an existing binding is a no-op for Kafka).
///
/// A cluster without an authorizer (SecurityDisabled) or without the ACL API comes back as an
/// error for which [`AclError::means_no_acls`] holds: MM2 logs that once and skips ACL sync, so
/// the caller should not warn about it every interval.
///
/// Nothing is created when the source has no bindings to copy, which is always the case with a
/// Tansu (sandbox) source; a Kafka source with topic ACLs must not be synced into a Tansu target
/// (see [`Admin::create_acls`]).
pub async fn sync_topic_acls(
    source: &Admin,
    target: &Admin,
    should_replicate_topic: &(dyn Fn(&str) -> bool + Sync),
    remote_name: &(dyn Fn(&str) -> String + Sync),
) -> Result<usize, AclError> {
    let upstream = source.describe_topic_acls().await?;
    let bindings = acls_to_create(&upstream, should_replicate_topic, remote_name);
    target.create_acls(&bindings).await?;
    debug!(
        source = %source.endpoint().alias,
        target = %target.endpoint().alias,
        described = upstream.len(),
        created = bindings.len(),
        "synced topic ACLs"
    );
    Ok(bindings.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Operation::*;
    use Permission::*;

    fn remote(t: &str) -> String {
        format!("us-east.{t}")
    }

    fn not_internal(t: &str) -> bool {
        !t.starts_with("__")
    }

    #[test]
    fn maps_literal_topic_bindings_per_mm2() {
        let src = vec![
            AclBinding::topic("orders", "User:alice", Read, Allow),
            AclBinding::topic("orders", "User:alice", Write, Allow),
            AclBinding::topic("orders", "User:bob", All, Allow),
            AclBinding::topic("orders", "User:eve", Write, Deny),
            AclBinding::topic("orders", "User:eve", All, Deny),
            AclBinding::topic("__consumer_offsets", "User:alice", Read, Allow),
            AclBinding::topic("*", "User:ops", Describe, Allow),
            AclBinding {
                pattern_type: PatternType::Prefixed,
                ..AclBinding::topic("ord", "User:carol", Read, Allow)
            },
            AclBinding {
                resource_type: ResourceType::Group,
                ..AclBinding::topic("orders", "User:alice", Read, Allow)
            },
        ];
        let got = acls_to_create(&src, &not_internal, &remote);
        let mut want = vec![
            AclBinding::topic("us-east.orders", "User:alice", Read, Allow),
            AclBinding::topic("us-east.orders", "User:bob", Read, Allow),
            AclBinding::topic("us-east.orders", "User:eve", Write, Deny),
            AclBinding::topic("us-east.orders", "User:eve", All, Deny),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn allow_all_and_allow_read_collapse_into_one() {
        let src = vec![
            AclBinding::topic("orders", "User:bob", All, Allow),
            AclBinding::topic("orders", "User:bob", Read, Allow),
        ];
        assert_eq!(
            acls_to_create(&src, &|_| true, &remote),
            vec![AclBinding::topic("us-east.orders", "User:bob", Read, Allow)]
        );
    }

    fn any_binding() -> impl Strategy<Value = AclBinding> {
        let rt = prop_oneof![
            4 => Just(ResourceType::Topic),
            1 => Just(ResourceType::Group),
            1 => Just(ResourceType::Cluster),
            1 => Just(ResourceType::TransactionalId),
        ];
        let pt = prop_oneof![
            3 => Just(PatternType::Literal),
            1 => Just(PatternType::Prefixed),
        ];
        let op = prop_oneof![
            Just(All),
            Just(Read),
            Just(Write),
            Just(Create),
            Just(Describe),
            Just(AlterConfigs),
        ];
        let perm = prop_oneof![Just(Allow), Just(Deny)];
        (
            rt,
            pt,
            "(\\*|[ab]|__c)",
            "User:[xy]",
            "(\\*|10\\.0\\.0\\.1)",
            op,
            perm,
        )
            .prop_map(
                |(resource_type, pattern_type, name, principal, host, operation, permission)| {
                    AclBinding {
                        resource_type,
                        pattern_type,
                        name,
                        principal,
                        host,
                        operation,
                        permission,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn created_bindings_never_widen_access(src in prop::collection::vec(any_binding(), 0..20)) {
            let got = acls_to_create(&src, &not_internal, &remote);
            for b in &got {
                prop_assert_eq!(b.resource_type, ResourceType::Topic);
                prop_assert_eq!(b.pattern_type, PatternType::Literal);
                prop_assert!(b.name.starts_with("us-east."), "remote name: {:?}", b);
                prop_assert!(!b.name.starts_with("us-east.__"), "filtered topic: {:?}", b);
                prop_assert!(b.name != "us-east.*", "wildcard: {:?}", b);
                if b.permission == Allow {
                    prop_assert!(b.operation != Write && b.operation != All, "widening: {:?}", b);
                }
                // Each comes from a source binding with the same principal, host and permission.
                let upstream = &b.name["us-east.".len()..];
                prop_assert!(src.iter().any(|s| s.name == upstream
                    && s.principal == b.principal
                    && s.host == b.host
                    && s.permission == b.permission));
            }
            // Sorted, no duplicates.
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn deny_bindings_are_all_copied(src in prop::collection::vec(any_binding(), 0..20)) {
            let got = acls_to_create(&src, &not_internal, &remote);
            for s in &src {
                if s.permission == Deny
                    && s.resource_type == ResourceType::Topic
                    && s.pattern_type == PatternType::Literal
                    && s.name != "*"
                    && not_internal(&s.name)
                {
                    let want = AclBinding { name: remote(&s.name), ..s.clone() };
                    prop_assert!(got.contains(&want), "{:?} missing", want);
                }
            }
        }
    }
}
