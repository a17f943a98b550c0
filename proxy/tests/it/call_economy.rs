//! What features cost in Graph calls, counted by graph-sim: identical reads in flight at once
//! make one call, repeated reads within the cache lifetime make one call.

use crate::common::*;
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn a_hundred_concurrent_identical_reads_cost_one_call() {
    let s = stack(world("demo"), &["--cache-ttl-ms", "3000"]);
    // Warm the token check, then make Graph slow so all hundred overlap.
    let url = s.url("/graph/102289599326934?fields=id,account_review_status");
    let warm = s.url("/graph/102289599326934?fields=id");
    assert_eq!(get(&warm, Some(FINISH)).await.status, StatusCode::OK);
    let before = s.sim.calls("waba");
    s.sim.state.set_latency(Duration::from_millis(300));
    let reads = (0..100).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { get(&url, Some(FINISH)).await })
    });
    for r in futures_util::future::join_all(reads).await {
        let a = r.unwrap();
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.json()["account_review_status"], "APPROVED");
    }
    assert_eq!(
        s.sim.calls("waba") - before,
        1,
        "coalesced into one Graph call"
    );
}

#[tokio::test]
async fn a_hundred_polls_within_the_cache_lifetime_cost_one_call() {
    let s = stack(world("demo"), &["--cache-ttl-ms", "3000"]);
    let url =
        s.url("/graph/101569239400667?fields=id,account_review_status,phone_numbers{id,status}");
    // One client with keep-alive, as a polling page would have.
    let c = client();
    for _ in 0..100 {
        let a = send(c.get(&url).bearer_auth(FINISH)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    assert_eq!((s.sim.calls("debug_token"), s.sim.calls("waba")), (1, 1));
    // After the lifetime the next poll asks Graph again.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(get(&url, Some(FINISH)).await.status, StatusCode::OK);
    assert_eq!(s.sim.calls("waba"), 2);
    // A caller without the grant never gets the shared answer.
    let a = get(&url, Some(BIG_ID)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}
