//! `@odata.nextLink` paging, with headers re-sent on every page.

use super::support::*;

#[tokio::test]
async fn next_links_are_followed_and_consistency_level_is_resent() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let items = c
        .list_raw(
            &format!("groups/{GROUP_BIG}/members?$select=id,userPrincipalName&$top=5"),
            &[("ConsistencyLevel", "eventual")],
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 12);
    let mut ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "no duplicates across pages");
    let pages = requests_to(&sim, &format!("/groups/{GROUP_BIG}/members"));
    assert_eq!(pages.len(), 3, "5 + 5 + 2");
    for p in &pages {
        assert_eq!(p.header("consistencylevel"), Some("eventual"), "{p:?}");
        assert!(p.header("client-request-id").is_some());
    }
    assert_ne!(
        pages[0].query, pages[1].query,
        "second page uses the nextLink"
    );
}

#[tokio::test]
async fn raw_paths_cannot_leave_the_graph_base() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    for p in ["https://evil.example/v1.0/users", "../../other"] {
        assert!(c.list_raw(p, &[]).await.is_err(), "{p}");
    }
    assert!(requests_to(&sim, "evil").is_empty());
}
