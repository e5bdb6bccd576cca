use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn smoke_token_get_user_filter_membership_methods() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, h, body) = graph_get(&sim, &t, "/users/adele.vance@contoso.com").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["id"], ADELE);
    assert!(h.contains_key("request-id"));
    let (s, _, body) = graph_get(
        &sim,
        &t,
        "/users?$filter=otherMails/any(x:x%20eq%20'shared.family@outlook.com')&$select=id,userPrincipalName",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let (s, _, body) = graph_get(&sim, &t, &format!("/users/{ADELE}/transitiveMemberOf")).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["value"].as_array().unwrap().len() >= 4, "{body}");
    let (s, _, body) = graph_get(&sim, &t, &format!("/users/{MANY}/authentication/methods")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 11, "{body}");
    let _ = json!({});
    sim.stop().await;
}
