//! The active-region record (groundwork for failover): written to and read back from sandbox
//! clusters, the newest version wins, and a cluster without the topic reads as "no decision".

use std::time::Duration;

use crate::common::*;
use strait::failover::active::{self, ActiveRegion};
use strait_sandbox::Sandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn active_region_is_written_to_both_sides_and_read_back() {
    let sb = Sandbox::start(&["us-east", "us-west"]).await.unwrap();
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let t = Duration::from_secs(10);
    let read = |c: &strait_sandbox::Cluster| {
        let ep = endpoint(c);
        async move { Ok::<_, ()>(active::read(&ep, t).await.unwrap()) }
    };
    assert!(
        read(east).await.unwrap().is_empty(),
        "no topic yet: no decision"
    );

    let first = ActiveRegion::switch(
        None,
        "us-east",
        "us-west",
        "us-west",
        now_ms(),
        "failover from us-east",
    );
    for c in [east, west] {
        active::write(&admin(c), &endpoint(c), &first, 1, t)
            .await
            .unwrap();
    }
    let back = ActiveRegion::switch(
        Some(&first),
        "us-west",
        "us-east",
        "us-east",
        now_ms(),
        "failback to us-east",
    );
    active::write(&admin(west), &endpoint(west), &back, 1, t)
        .await
        .unwrap();

    let on_east = read(east).await.unwrap();
    let on_west = read(west).await.unwrap();
    assert_eq!(
        active::for_pair(&on_east, "us-west", "us-east"),
        Some(&first)
    );
    assert_eq!(
        active::for_pair(&on_west, "us-east", "us-west"),
        Some(&back)
    );
    let both: Vec<ActiveRegion> = on_east.into_iter().chain(on_west).collect();
    assert_eq!(
        active::for_pair(&both, "us-east", "us-west")
            .unwrap()
            .active,
        "us-east"
    );
    assert_eq!(active::for_pair(&both, "us-east", "eu-west"), None);
}
