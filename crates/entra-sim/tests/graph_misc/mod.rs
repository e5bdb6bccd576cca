//! Identity Protection, domains, organization, on-premises synchronization, unknown segments.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn risky_users_get_dismiss_and_throttle() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, &format!("/identityProtection/riskyUsers/{RISKY}")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["riskLevel"], "high");
    assert_eq!(b["riskState"], "atRisk");
    assert_eq!(b["userPrincipalName"], "risky.user@contoso.com");
    // Second request within the same second: 429 without Retry-After.
    let (s, h, b) = graph_get(&sim, &t, &format!("/identityProtection/riskyUsers/{RISKY}")).await;
    assert_eq!(s, 429);
    assert!(!h.contains_key("retry-after"));
    assert_eq!(error_code(&b), "TooManyRequests");
    sim.tenant()
        .advance_time(std::time::Duration::from_millis(1100));
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        "/identityProtection/riskyUsers/dismiss",
        Some(json!({"userIds": [RISKY]})),
        &[],
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let u = sim.tenant().user(RISKY).unwrap();
    assert_eq!(
        (
            u.risk_level.as_deref(),
            u.risk_state.as_deref(),
            u.risk_detail.as_deref()
        ),
        (
            Some("none"),
            Some("dismissed"),
            Some("adminDismissedAllRiskForUser")
        )
    );
    // Not risky → 404; unthrottled from here on.
    sim.tenant().set_identity_protection_limit(0);
    let (s, _, b) = graph_get(&sim, &t, &format!("/identityProtection/riskyUsers/{ADELE}")).await;
    assert_eq!((s, error_code(&b)), (404, "Request_ResourceNotFound"));
    sim.tenant().set_risk(ADELE, "medium", "atRisk");
    let (s, _, b) = graph_get(
        &sim,
        &t,
        "/identityProtection/riskyUsers?$filter=riskLevel%20eq%20microsoft.graph.riskLevel'medium'",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, _) = graph(
        &sim,
        &readonly,
        Method::POST,
        "/identityProtection/riskyUsers/dismiss",
        Some(json!({"userIds": [ADELE]})),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    sim.stop().await;
}

#[tokio::test]
async fn tenant_resources() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, "/domains").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["contoso.onmicrosoft.com", "contoso.com", "fabrikam.com"]
    );
    let (s, _, b) = graph_get(&sim, &t, "/domains/fabrikam.com").await;
    assert_eq!(s, 200);
    assert_eq!(b["authenticationType"], "Federated");
    assert_eq!(graph_get(&sim, &t, "/domains/nope.example").await.0, 404);
    let (s, _, b) = graph_get(&sim, &t, "/organization").await;
    assert_eq!(s, 200);
    let org = &b["value"][0];
    assert_eq!(org["id"], sim.tenant_id());
    assert_eq!(org["onPremisesSyncEnabled"], true);
    assert!(
        org["verifiedDomains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["isDefault"] == true && d["name"] == "contoso.com")
    );
    // Delegated only.
    let (s, _, b) = graph_get(&sim, &t, "/directory/onPremisesSynchronization").await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    let scope = "openid OnPremDirectorySynchronization.Read.All";
    let ga = user_tokens(&sim, "admin@contoso.com", "Admin-Pa55word!", scope).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, b) = graph_get(&sim, &ga, "/directory/onPremisesSynchronization").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"][0]["features"]["passwordWritebackEnabled"], true);
    let (s, _, b) = graph_get(&sim, &t, "/no/such/thing").await;
    assert_eq!((s, error_code(&b)), (400, "BadRequest"));
    assert_eq!(
        b["error"]["message"],
        "Resource not found for the segment 'no'."
    );
    sim.stop().await;
}

#[tokio::test]
async fn demo_tenant_serves_the_demo_app() {
    let sim = start_with(latchkey_entra_sim::Fixture::demo()).await;
    let t = app_token_for(
        &sim,
        "22222222-2222-2222-2222-222222222222",
        "demo-secret-value",
    )
    .await;
    let (s, _, b) = graph_get(
        &sim,
        &t,
        "/users/adele.vance@contoso.com?$select=id,onPremisesSyncEnabled",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = graph_get(&sim, &t, "/users?$select=id").await;
    assert_eq!(s, 200);
    assert!(b["value"].as_array().unwrap().len() >= 12);
    sim.stop().await;
}
