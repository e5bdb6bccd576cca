//! Memberships, group members, check actions, paging of relationships.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

fn types_and_ids(b: &Value) -> Vec<(String, String)> {
    b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["@odata.type"].as_str().unwrap_or("").to_owned(),
                o["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn member_of_and_transitive_member_of() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, &format!("/users/{ADELE}/memberOf")).await;
    assert_eq!(s, 200);
    assert_eq!(
        b["@odata.context"],
        format!("{}/$metadata#directoryObjects", sim.graph_base_url())
    );
    let direct: Vec<String> = types_and_ids(&b).into_iter().map(|(_, id)| id).collect();
    assert!(direct.contains(&GROUP_A.to_owned()) && direct.contains(&ALL_STAFF.to_owned()));
    assert!(!direct.contains(&GROUP_B.to_owned()));
    let (_, _, b) = graph_get(&sim, &t, &format!("/users/{ADELE}/transitiveMemberOf")).await;
    let transitive: Vec<String> = types_and_ids(&b).into_iter().map(|(_, id)| id).collect();
    for g in [GROUP_A, GROUP_B, GROUP_C, ALL_STAFF] {
        assert!(transitive.contains(&g.to_owned()), "{g} (A ⊂ B ⊂ C)");
    }
    assert_eq!(transitive.len(), 4, "each group once");
    // Directory roles appear with their template id.
    let (_, _, b) = graph_get(&sim, &t, &format!("/users/{ADMIN}/transitiveMemberOf")).await;
    let role = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["@odata.type"] == "#microsoft.graph.directoryRole")
        .unwrap();
    assert_eq!(
        role["roleTemplateId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    assert_eq!(role["displayName"], "Global Administrator");
    // Group objects carry the documented properties.
    let (_, _, b) = graph_get(&sim, &t, &format!("/users/{ADELE}/memberOf")).await;
    let g = &b["value"][0];
    assert_eq!(g["@odata.type"], "#microsoft.graph.group");
    for k in [
        "displayName",
        "mailEnabled",
        "securityEnabled",
        "mailNickname",
    ] {
        assert!(g.get(k).is_some(), "{k}");
    }
    // Cast and $count need the advanced-query header.
    let (s, _, _) = graph_get(
        &sim,
        &t,
        &format!("/users/{ADMIN}/transitiveMemberOf/microsoft.graph.group"),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        &format!("/users/{ADMIN}/transitiveMemberOf/microsoft.graph.group?$count=true"),
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        types_and_ids(&b)
            .iter()
            .all(|(t, _)| t == "#microsoft.graph.group")
    );
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        &format!("/users/{ADELE}/memberOf/$count"),
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b, json!(2));
    let (s, _, _) = graph_get(
        &sim,
        &t,
        &format!("/users/{ADELE}/memberOf?$filter=displayName%20eq%20'Pilot%20Wave%201'"),
    )
    .await;
    assert_eq!(s, 400, "filter on memberOf is advanced");
    let (s, _, b) = graph(&sim, &t, Method::GET, &format!("/users/{ADELE}/transitiveMemberOf?$count=true&$filter=displayName%20eq%20'SSPR%20Pilot'"), None, &[("ConsistencyLevel", "eventual")]).await;
    assert_eq!(s, 200);
    assert_eq!(b["@odata.count"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn group_members_page_and_nest() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, &format!("/groups/{ALL_STAFF}/members")).await;
    assert_eq!(s, 200);
    assert_eq!(
        b["value"].as_array().unwrap().len(),
        100,
        "default page size"
    );
    let mut all = types_and_ids(&b);
    let mut next = b["@odata.nextLink"].as_str().map(str::to_owned);
    while let Some(n) = next {
        let (s, _, b) = graph_get(&sim, &t, &n).await;
        assert_eq!(s, 200);
        all.extend(types_and_ids(&b));
        next = b["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(all.len(), 153, "150 generated + 2 users + 1 nested group");
    assert!(all.contains(&("#microsoft.graph.group".to_owned(), GROUP_B.to_owned())));
    let (_, _, b) = graph_get(&sim, &t, &format!("/groups/{GROUP_C}/transitiveMembers")).await;
    let ids: Vec<String> = types_and_ids(&b).into_iter().map(|(_, id)| id).collect();
    for id in [GROUP_B, GROUP_A, ADELE, ALIAS, MEGAN, MANY] {
        assert!(ids.contains(&id.to_owned()), "{id}");
    }
    let (_, _, b) = graph_get(
        &sim,
        &t,
        &format!("/groups/{GROUP_C}/members?$select=id,displayName"),
    )
    .await;
    assert!(b["value"][0].get("mail").is_none());
    let (s, _, b) = graph_get(&sim, &t, &format!("/groups/{GROUP_A}")).await;
    assert_eq!(s, 200);
    assert_eq!(b["displayName"], "Pilot Wave 1");
    let (s, _, b) = graph_get(
        &sim,
        &t,
        "/groups/00000000-0000-0000-0000-00000000dead/members",
    )
    .await;
    assert_eq!((s, error_code(&b)), (404, "Request_ResourceNotFound"));
    // A token without group permissions.
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, b) = graph_get(&sim, &readonly, &format!("/groups/{GROUP_A}/members")).await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    sim.stop().await;
}

#[tokio::test]
async fn check_member_groups_and_objects() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/users/{ADELE}/checkMemberGroups"),
        Some(json!({"groupIds": [GROUP_C, "f448435d-3ca7-4073-8152-a1fd73c0fd09"]})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"], json!([GROUP_C]), "transitive");
    assert_eq!(
        b["@odata.context"],
        format!("{}/$metadata#Collection(Edm.String)", sim.graph_base_url())
    );
    let too_many: Vec<String> = (0..21)
        .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
        .collect();
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/users/{ADELE}/checkMemberGroups"),
        Some(json!({ "groupIds": too_many })),
        &[],
    )
    .await;
    assert_eq!((s, error_code(&b)), (400, "Request_BadRequest"));
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/users/{ADMIN}/checkMemberObjects"),
        Some(json!({"ids": ["62e90394-69f5-4237-9190-012177145e10", GROUP_A]})),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"], json!(["62e90394-69f5-4237-9190-012177145e10"]));
    // checkMemberGroups needs GroupMember.Read.All as well as User.Read.All.
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, _) = graph(
        &sim,
        &readonly,
        Method::POST,
        &format!("/users/{ADELE}/checkMemberGroups"),
        Some(json!({"groupIds": [GROUP_C]})),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = graph(
        &sim,
        &readonly,
        Method::POST,
        &format!("/users/{ADELE}/checkMemberObjects"),
        Some(json!({"ids": [GROUP_C]})),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    sim.stop().await;
}

#[tokio::test]
async fn members_select_any_user_property_and_default_to_the_default_set() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(
        &sim,
        &t,
        &format!("/groups/{GROUP_A}/members?$select=id,accountEnabled,onPremisesSyncEnabled"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let adele = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == ADELE)
        .unwrap();
    assert_eq!(adele["accountEnabled"], json!(true), "{adele}");
    assert_eq!(adele["@odata.type"], "#microsoft.graph.user");
    // Without $select: Graph's default user properties only.
    let (_, _, b) = graph_get(&sim, &t, &format!("/groups/{GROUP_A}/members")).await;
    let adele = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == ADELE)
        .unwrap();
    assert_eq!(adele["userPrincipalName"], "adele.vance@contoso.com");
    assert!(adele.get("accountEnabled").is_none(), "{adele}");
}
