//! `members/$ref` add and remove, `DELETE /users/{id}`, deleted items: status codes, errors,
//! permissions, and the membership reads that must follow at once.

use reqwest::Method;
use serde_json::json;

use super::*;

fn reference(id: &str) -> serde_json::Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")})
}

#[tokio::test]
async fn add_and_remove_members() {
    let (sim, t) = start_delta().await;
    let add = format!("/groups/{GROUP_A}/members/$ref");
    let (s, _, _) = graph(&sim, &t, Method::POST, &add, Some(reference(MEGAN)), &[]).await;
    assert_eq!(s, 204);
    let (s, _, b) = graph(&sim, &t, Method::POST, &add, Some(reference(MEGAN)), &[]).await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let unknown = "00000000-0000-4000-8000-0000000000ff";
    let (s, _, b) = graph(&sim, &t, Method::POST, &add, Some(reference(unknown)), &[]).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["error"]["code"], "Request_ResourceNotFound");
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/groups/{unknown}/members/$ref"),
        Some(reference(MEGAN)),
        &[],
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::POST,
        &add,
        Some(json!({"@odata.id": "nonsense"})),
        &[],
    )
    .await;
    assert_eq!(s, 400);
    // A group as a member (nesting).
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/groups/{ALL_STAFF}/members/$ref"),
        Some(reference(GROUP_C)),
        &[],
    )
    .await;
    assert_eq!(s, 204);

    // Reads follow at once.
    assert!(
        member_ids(&sim, &t, GROUP_A)
            .await
            .contains(&MEGAN.to_owned())
    );
    let (_, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/users/{ADELE}/checkMemberGroups"),
        Some(json!({"groupIds": [ALL_STAFF]})),
        &[],
    )
    .await;
    assert_eq!(b["value"], json!([ALL_STAFF]));

    let remove = format!("/groups/{GROUP_A}/members/{MEGAN}/$ref");
    let (s, _, _) = graph(&sim, &t, Method::DELETE, &remove, None, &[]).await;
    assert_eq!(s, 204);
    let (s, _, b) = graph(&sim, &t, Method::DELETE, &remove, None, &[]).await;
    assert_eq!(s, 404, "no longer a member: {b}");
    assert!(
        !member_ids(&sim, &t, GROUP_A)
            .await
            .contains(&MEGAN.to_owned())
    );
    let (_, _, b) = graph_get(&sim, &t, &format!("/users/{MEGAN}/transitiveMemberOf")).await;
    let groups = ids(b["value"].as_array().unwrap());
    assert!(!groups.contains(&GROUP_A.to_owned()));

    // Without GroupMember.ReadWrite.All (the plain test app): 403.
    let plain = start().await;
    plain
        .tenant()
        .remove_app_permission(APP, "RoleManagement.Read.Directory");
    let pt = app_token(&plain).await;
    let (s, _, _) = graph(&plain, &pt, Method::POST, &add, Some(reference(MEGAN)), &[]).await;
    assert_eq!(s, 403);
    let (s, _, _) = graph(
        &plain,
        &pt,
        Method::DELETE,
        &format!("/groups/{GROUP_A}/members/{ADELE}/$ref"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = graph(
        &plain,
        &pt,
        Method::DELETE,
        &format!("/users/{ADELE}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = graph_get(&plain, &pt, "/directoryRoles/delta").await;
    assert_eq!(s, 403);
    let ro = app_token_for(&plain, READONLY_APP, READONLY_SECRET).await;
    let (s, _, _) = graph_get(&plain, &ro, "/groups/delta").await;
    assert_eq!(s, 403, "User.Read.All does not read groups");
    let (s, _, _) = graph_get(&plain, &ro, "/users/delta").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn deleting_a_user_hides_it_everywhere() {
    let (sim, t) = start_delta().await;
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/users/{ADELE}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/users/{ADELE}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = graph_get(&sim, &t, &format!("/users/{ADELE}")).await;
    assert_eq!(s, 404);
    assert!(!all_user_ids(&sim, &t).await.contains(&ADELE.to_owned()));
    assert!(
        !member_ids(&sim, &t, GROUP_A)
            .await
            .contains(&ADELE.to_owned())
    );
    let (_, _, b) = graph_get(
        &sim,
        &t,
        &format!("/groups/{GROUP_C}/transitiveMembers?$select=id"),
    )
    .await;
    assert!(!ids(b["value"].as_array().unwrap()).contains(&ADELE.to_owned()));
    assert_eq!(
        sim.sign_in("adele.vance@contoso.com", "Adele-Pa55word!")
            .aadsts(),
        Some(50034)
    );
    // Permanent delete: 204, then 404; the id is no longer restorable.
    let purge = format!("/directory/deletedItems/{ADELE}");
    let (s, _, _) = graph(&sim, &t, Method::DELETE, &purge, None, &[]).await;
    assert_eq!(s, 204);
    let (s, _, _) = graph(&sim, &t, Method::DELETE, &purge, None, &[]).await;
    assert_eq!(s, 404);
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("{purge}/restore"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 404);
}
