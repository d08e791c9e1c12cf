//! The sandbox's group coordinator is patched (third_party/tansu-broker): a member that leads a
//! forming group and leaves it gives up leadership. Without that, the members that stay join and
//! sync forever with "rebalance in progress" and never get partitions: a second `strait run`
//! that joined just as the first one stopped copied nothing (a CI run waited 120 s for it).
//! The broker's request handling pauses followers for seconds, which hides the race from tests
//! through real clients, so this drives the coordinator's state machine directly.

use bytes::Bytes;
use std::time::SystemTime;
use tansu_broker::coordinator::group::administrator::{Group, Wrapper};
use tansu_sans_io::join_group_request::JoinGroupRequestProtocol;
use tansu_sans_io::join_group_response::JoinGroupResponse;
use tansu_sans_io::sync_group_request::SyncGroupRequestAssignment;
use tansu_sans_io::Body;
use tansu_storage::{GroupDetail, GroupState, StorageContainer};
use url::Url;

const GROUP: &str = "g";

async fn join(
    s: Wrapper<StorageContainer>,
    member: &str,
) -> (Wrapper<StorageContainer>, JoinGroupResponse) {
    let protocols = [JoinGroupRequestProtocol::default()
        .name("range".into())
        .metadata(Bytes::from_static(b"meta"))];
    let (s, body) = s
        .join(
            SystemTime::now(),
            Some("c"),
            GROUP,
            45_000,
            Some(300_000),
            member,
            None,
            "consumer",
            Some(&protocols[..]),
            None,
        )
        .await;
    match body {
        Body::JoinGroupResponse(r) => (s, r),
        other => panic!("not a join response: {other:?}"),
    }
}

#[tokio::test]
async fn a_leader_that_leaves_a_forming_group_gives_up_leadership() {
    let storage = StorageContainer::builder()
        .cluster_id("c")
        .node_id(0)
        .advertised_listener(Url::parse("tcp://127.0.0.1:9092/").unwrap())
        .schema_registry(None)
        .storage(Url::parse("memory://").unwrap())
        .build()
        .await
        .unwrap();
    // A new group, as the broker makes one (no protocol chosen yet).
    let new_group = GroupDetail {
        state: GroupState::Forming {
            protocol_type: None,
            protocol_name: None,
            leader: None,
        },
        ..GroupDetail::default()
    };
    let s = Wrapper::with_storage_group_detail(storage, new_group);

    // "a" forms the group and leads it.
    let (s, joined) = join(s, "a").await;
    assert_eq!(joined.leader, "a", "{joined:?}");
    let assignments = [SyncGroupRequestAssignment::default()
        .member_id("a".into())
        .assignment(Bytes::from_static(b"all"))];
    let (s, _) = s
        .sync(
            SystemTime::now(),
            GROUP,
            joined.generation_id,
            "a",
            None,
            Some("consumer"),
            Some("range"),
            Some(&assignments[..]),
        )
        .await;
    assert_eq!(s.leader(), Some("a"));

    // "b" joins: the group forms again, still led by "a", which leaves before it rejoins.
    let (s, joined) = join(s, "b").await;
    assert_eq!(joined.leader, "a");
    let (s, _) = s.leave(SystemTime::now(), GROUP, Some("a"), None).await;
    assert_eq!(s.leader(), None, "a member that left still leads the group");

    // "b" rejoins and leads, with itself as the member to assign to.
    let (_, joined) = join(s, "b").await;
    assert_eq!(joined.leader, "b");
    let members: Vec<_> = joined
        .members
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.member_id)
        .collect();
    assert_eq!(members, ["b"]);
}
