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

#[tokio::test]
async fn collections_can_be_read_one_page_at_a_time() {
    #[derive(serde::Deserialize)]
    struct Row {
        id: String,
    }
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let big = oid(GROUP_BIG);
    let mut seen = Vec::new();
    let mut next = None;
    let mut pages = 0;
    loop {
        let page: latchkey_graph::Page<Row> = c
            .group_users_page(&big, "id", 5, next.as_ref())
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 5, "one page holds at most $top items");
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 + 5 + 2");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12);
    let sent = requests_to(
        &sim,
        &format!("/groups/{GROUP_BIG}/transitiveMembers/microsoft.graph.user"),
    );
    assert_eq!(sent.len(), 3);
    assert!(
        sent[0].query.contains("%24select=id") || sent[0].query.contains("$select=id"),
        "{:?}",
        sent[0].query
    );

    // Nested groups are resolved by Graph: the outer group's users include the inner group's.
    let outer: latchkey_graph::Page<Row> = c
        .group_users_page(&oid(GROUP_OUTER), "id", 999, None)
        .await
        .unwrap();
    assert_eq!(
        outer
            .items
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [OBRIEN]
    );
    assert!(outer.next.is_none());
    assert_eq!(
        c.group_display_name(&oid(GROUP_OUTER))
            .await
            .unwrap()
            .as_deref(),
        Some("LK Outer")
    );

    // Every user of the tenant, page by page.
    let mut users = 0;
    let mut next = None;
    loop {
        let page: latchkey_graph::Page<Row> = c.users_page("id", 7, next.as_ref()).await.unwrap();
        users += page.items.len();
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    let generated: usize = f.groups.iter().map(|g| g.generated_members as usize).sum();
    assert_eq!(users, f.users.len() + generated);
}
