//! `/users/delta`: paging, rounds, `@removed`, query options, page size.

use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn first_round_pages_to_the_end_with_the_selected_shape() {
    let (sim, t) = start_delta().await;
    let prefer = [("Prefer", "odata.maxpagesize=7")];
    let url = "/users/delta?$select=displayName,accountEnabled";
    let (s, h, b) = graph(&sim, &t, Method::GET, url, None, &prefer).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["preference-applied"], "odata.maxpagesize=7");
    assert_eq!(b["value"].as_array().unwrap().len(), 7);
    assert_eq!(
        b["@odata.context"],
        format!(
            "{}/$metadata#users(displayName,accountEnabled)",
            sim.graph_base_url()
        )
    );
    let next = b["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/users/delta?$skiptoken=", sim.graph_base_url())),
        "{next}"
    );
    assert!(b.get("@odata.deltaLink").is_none());
    let first = &b["value"][0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "id + the 2 selected: {first}");
    assert!(first["accountEnabled"].is_boolean());

    let (items, delta, pages) = walk(&sim, &t, url, &prefer).await;
    let mut got = ids(&items);
    got.sort();
    let mut want = all_user_ids(&sim, &t).await;
    want.sort();
    assert_eq!(got, want, "every user exactly once");
    assert_eq!(pages, want.len().div_ceil(7));
    assert!(delta.contains("$deltatoken="));
    // The same object as GET /users?$select= (plus id).
    let (_, _, one) = graph_get(
        &sim,
        &t,
        &format!("/users/{ADELE}?$select=displayName,accountEnabled"),
    )
    .await;
    let mine = items.iter().find(|i| i["id"] == ADELE).unwrap();
    assert_eq!(mine["displayName"], one["displayName"]);
    assert_eq!(mine["accountEnabled"], one["accountEnabled"]);
}

#[tokio::test]
async fn default_page_size_comes_from_the_fixture_and_no_select_gives_default_properties() {
    let mut f = fixture();
    f.delta.page_size = 50;
    let sim = start_with(f).await;
    let t = app_token(&sim).await;
    let (s, h, b) = graph_get(&sim, &t, "/users/delta").await;
    assert_eq!(s, 200);
    assert!(h.get("preference-applied").is_none());
    assert_eq!(b["value"].as_array().unwrap().len(), 50);
    let u = &b["value"][0];
    assert!(
        u.get("userPrincipalName").is_some() && u.get("accountEnabled").is_none(),
        "{u}"
    );
}

#[tokio::test]
async fn later_round_reports_edits_creations_and_removals() {
    let (sim, t) = start_delta().await;
    let (_, delta, _) = walk(
        &sim,
        &t,
        "/users/delta?$select=displayName,accountEnabled",
        &[],
    )
    .await;
    // Nothing changed: an empty round with a new deltaLink.
    let (items, delta, _) = walk(&sim, &t, &delta, &[]).await;
    assert!(items.is_empty(), "{items:?}");

    let (s, _, _) = graph(
        &sim,
        &t,
        Method::PATCH,
        &format!("/users/{ADELE}"),
        Some(json!({"displayName": "Adele V."})),
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, created) = graph(
        &sim,
        &t,
        Method::POST,
        "/users",
        Some(json!({
            "accountEnabled": true, "displayName": "New Person", "mailNickname": "newp",
            "userPrincipalName": "new.person@contoso.com",
            "passwordProfile": {"password": "Xy7!newperson-pw"}
        })),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let new_id = created["id"].as_str().unwrap().to_owned();
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/users/{OBRIEN}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    // A password change alone is not a change delta reports.
    assert!(sim.tenant().set_password(MEGAN, "Another-Pa55word!"));

    let (items, delta, _) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(items.len(), 3, "{items:?}");
    let megan = items.iter().find(|i| i["id"] == ADELE).unwrap();
    assert_eq!(megan["displayName"], "Adele V.");
    assert_eq!(
        megan["accountEnabled"], true,
        "all selected properties, not only the changed one"
    );
    let new = items.iter().find(|i| i["id"] == new_id.as_str()).unwrap();
    assert_eq!(new["displayName"], "New Person");
    let gone = items.iter().find(|i| i["id"] == OBRIEN).unwrap();
    assert_eq!(gone["@removed"], json!({"reason": "changed"}));
    assert_eq!(gone.as_object().unwrap().len(), 2);

    // Permanently deleted: reason "deleted".
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/directory/deletedItems/{OBRIEN}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (items, delta, _) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(
        items,
        vec![json!({"id": OBRIEN, "@removed": {"reason": "deleted"}})]
    );

    // A restored user comes back as a normal object.
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
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &format!("/directory/deletedItems/{ADELE}/restore"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (items, _, _) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ADELE);
    assert_eq!(items[0]["displayName"], "Adele V.");
    assert!(items[0].get("@removed").is_none());
}

#[tokio::test]
async fn deltatoken_latest_starts_from_now() {
    let (sim, t) = start_delta().await;
    let (s, _, b) = graph_get(
        &sim,
        &t,
        "/users/delta?$select=displayName&$deltatoken=latest",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"], json!([]));
    assert!(b.get("@odata.nextLink").is_none());
    let delta = b["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert!(sim.tenant().set_account_enabled(ADELE, false));
    let (items, _, _) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(
        items,
        vec![json!({"id": ADELE, "displayName": "Adele Vance"})]
    );
}

#[tokio::test]
async fn filter_by_ids_and_refused_options() {
    let (sim, t) = start_delta().await;
    let url =
        format!("/users/delta?$select=displayName&$filter=id eq '{ADELE}' or id eq '{MEGAN}'");
    let (items, delta, _) = walk(&sim, &t, &url, &[]).await;
    let mut got = ids(&items);
    got.sort();
    assert_eq!(got, vec![ADELE.to_owned(), MEGAN.to_owned()]);
    // The filter holds in later rounds.
    assert!(sim.tenant().set_account_enabled(ALIAS, false));
    assert!(sim.tenant().set_account_enabled(MEGAN, false));
    let (items, _, _) = walk(&sim, &t, &delta, &[]).await;
    assert_eq!(ids(&items), vec![MEGAN.to_owned()]);

    for q in [
        "$top=5",
        "$orderby=displayName",
        "$expand=manager",
        "$filter=displayName eq 'x'",
        "$select=nosuchproperty",
    ] {
        let (s, _, b) = graph_get(&sim, &t, &format!("/users/delta?{q}")).await;
        assert_eq!(s, 400, "{q}: {b}");
    }
    let many: Vec<String> = (0..51)
        .map(|i| format!("id eq '{}'", uuid::Uuid::from_u128(i)))
        .collect();
    let (s, _, _) = graph_get(
        &sim,
        &t,
        &format!("/users/delta?$filter={}", many.join(" or ")),
    )
    .await;
    assert_eq!(s, 400, "at most 50 ids");
}

#[tokio::test]
async fn permission_and_throttling() {
    let sim = start_with(fixture()).await;
    let public = user_token(&sim, "adele.vance@contoso.com", "Adele-Pa55word!").await;
    // Delegated User.Read is the documented least privilege: allowed.
    let (s, _, _) = graph_get(&sim, &public, "/users/delta?$deltatoken=latest").await;
    assert_eq!(s, 200);
    let t = app_token(&sim).await;
    sim.add_fault(latchkey_entra_sim::Fault {
        method: None,
        path_contains: "/users/delta".into(),
        kind: latchkey_entra_sim::FaultKind::TooManyRequests {
            retry_after: Some("2".into()),
        },
        times: 1,
    });
    let (s, h, b) = graph_get(&sim, &t, "/users/delta").await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(h["retry-after"], "2");
    let (s, _, _) = graph_get(&sim, &t, "/users/delta").await;
    assert_eq!(s, 200);
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path == "/v1.0/users/delta" && r.status == 429)
    );
}
