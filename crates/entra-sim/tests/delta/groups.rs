//! `/groups/delta` and `/directoryRoles/delta`: `members@delta`, diffs, split member lists.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// group id → member ids, merged over every appearance of the group in `items`.
fn merged_members(items: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in items {
        let e = out.entry(i["id"].as_str().unwrap().to_owned()).or_default();
        for m in i["members@delta"].as_array().into_iter().flatten() {
            e.push(m["id"].as_str().unwrap().to_owned());
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[tokio::test]
async fn first_round_lists_direct_members_and_splits_large_groups() {
    let (sim, t) = start_delta().await;
    let (items, _, _) = walk(&sim, &t, "/groups/delta?$select=displayName,members", &[]).await;
    let merged = merged_members(&items);
    for g in [GROUP_A, GROUP_B, GROUP_C, ALL_STAFF] {
        assert_eq!(merged[g], member_ids(&sim, &t, g).await, "{g}");
    }
    // All Staff has 153 members: 100 on one page (which ends there), 53 at the top of the next.
    let pages: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i["id"] == ALL_STAFF)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(pages.len(), 2, "split over two pages");
    let sizes: Vec<usize> = pages
        .iter()
        .map(|&n| items[n]["members@delta"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 53]);
    assert_eq!(items[pages[0]]["displayName"], "All Staff");
    let a = items.iter().find(|i| i["id"] == GROUP_B).unwrap();
    assert!(
        a["members@delta"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.group" && m["id"] == GROUP_A)
    );
    // Split pages, page by page: the split group ends one page and starts the next.
    let mut url = "/groups/delta?$select=displayName,members".to_owned();
    let mut last_of_prev: Option<Value> = None;
    loop {
        let (_, _, b) = graph_get(&sim, &t, &url).await;
        let v = b["value"].as_array().unwrap();
        if let Some(prev) = &last_of_prev
            && prev["id"] == ALL_STAFF
            && prev["members@delta"].as_array().unwrap().len() == 100
        {
            assert_eq!(v[0]["id"], ALL_STAFF);
        }
        last_of_prev = v.last().cloned();
        match b.get("@odata.nextLink") {
            Some(n) => url = n.as_str().unwrap().to_owned(),
            None => break,
        }
    }
    // Without members in $select, no members@delta.
    let (items, _, _) = walk(&sim, &t, "/groups/delta?$select=displayName", &[]).await;
    assert!(items.iter().all(|i| i.get("members@delta").is_none()));
    assert_eq!(items[0].as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn later_round_lists_added_and_removed_members_and_removed_groups() {
    let (sim, t) = start_delta().await;
    let (_, delta, _) = walk(&sim, &t, "/groups/delta?$select=displayName,members", &[]).await;
    let body =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{MEGAN}")});
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/groups/{GROUP_A}/members/$ref"),
        Some(body),
        &[],
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/groups/{GROUP_A}/members/{ADELE}/$ref"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/groups/{GROUP_C}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (items, delta, _) = walk(&sim, &t, &delta, &[]).await;
    let a = items.iter().find(|i| i["id"] == GROUP_A).unwrap();
    assert_eq!(
        a["members@delta"],
        json!([
            {"@odata.type": "#microsoft.graph.user", "id": MEGAN},
            {"@odata.type": "#microsoft.graph.user", "id": ADELE, "@removed": {"reason": "deleted"}},
        ])
    );
    assert_eq!(a["displayName"], "Pilot Wave 1");
    let c = items.iter().find(|i| i["id"] == GROUP_C).unwrap();
    assert_eq!(c["@removed"], json!({"reason": "changed"}));
    // Deleting a user removes it from its groups: a member change of those groups.
    assert!(sim.tenant().delete_user(MEGAN));
    let (items, _, _) = walk(&sim, &t, &delta, &[]).await;
    let groups: Vec<&Value> = items
        .iter()
        .filter(|i| {
            i["members@delta"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x["id"] == MEGAN))
        })
        .collect();
    assert!(groups.iter().any(|g| g["id"] == GROUP_A) && groups.iter().any(|g| g["id"] == GROUP_B));
    assert!(
        groups
            .iter()
            .all(|g| g["members@delta"][0]["@removed"]["reason"] == "deleted")
    );
}

#[tokio::test]
async fn later_round_splits_a_large_member_diff() {
    let mut f = fixture();
    f.delta.members_per_object = 2;
    let sim = start_with(f).await;
    let t = app_token(&sim).await;
    let (_, delta, _) = walk(&sim, &t, "/groups/delta?$select=members", &[]).await;
    for u in [MEGAN, ADMIN, AUTH_ADMIN, DISABLED, RISKY] {
        assert!(sim.tenant().add_group_member("Helpdesk", u));
    }
    let (items, _, pages) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(items.len(), 3, "5 added members in chunks of 2: {items:?}");
    assert_eq!(pages, 3, "each chunk but the last ends its page");
    let merged = merged_members(&items);
    let helpdesk = sim.tenant().group_id("Helpdesk").unwrap();
    let mut want: Vec<String> = [MEGAN, ADMIN, AUTH_ADMIN, DISABLED, RISKY]
        .map(str::to_owned)
        .to_vec();
    want.sort();
    assert_eq!(merged[&helpdesk], want);
}

#[tokio::test]
async fn directory_roles_delta() {
    let sim = start().await;
    // Permissions come from the token: take the permission away before asking for one.
    sim.tenant()
        .remove_app_permission(APP, "RoleManagement.Read.Directory");
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, "/directoryRoles/delta").await;
    assert_eq!(s, 403, "without RoleManagement.Read.Directory: {b}");
    sim.stop().await;

    let (sim, t) = start_delta().await;
    let url = "/directoryRoles/delta?$select=displayName,roleTemplateId,members";
    let (items, delta, _) = walk(&sim, &t, url, &[]).await;
    let helpdesk = items
        .iter()
        .find(|i| i["displayName"] == "Helpdesk Administrator")
        .unwrap();
    assert_eq!(
        helpdesk["roleTemplateId"],
        "729827e3-9c14-49f7-bb1b-9608f156bbb8"
    );
    assert_eq!(
        helpdesk["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": HELPDESK}])
    );
    let user_admin = items
        .iter()
        .find(|i| i["displayName"] == "User Administrator")
        .unwrap();
    let members = user_admin["members@delta"].as_array().unwrap();
    assert!(
        members
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.servicePrincipal"),
        "the test app's service principal"
    );
    assert!(
        items
            .iter()
            .any(|i| i["displayName"] == "Global Administrator")
    );
    // GET memberOf gives the same directoryRole object ids.
    let (_, _, mo) = graph_get(&sim, &t, &format!("/users/{HELPDESK}/memberOf")).await;
    assert!(
        mo["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == helpdesk["id"])
    );

    assert!(
        sim.tenant()
            .set_user_directory_roles(ADELE, &["Helpdesk Administrator"])
    );
    assert!(sim.tenant().set_user_directory_roles(HELPDESK, &[]));
    let (items, _, _) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0]["members@delta"],
        json!([
            {"@odata.type": "#microsoft.graph.user", "id": ADELE},
            {"@odata.type": "#microsoft.graph.user", "id": HELPDESK, "@removed": {"reason": "deleted"}},
        ])
    );
}
