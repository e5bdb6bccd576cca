//! `resetPassword` (delegated only) and its long-running operation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;
use latchkey_entra_sim::{Fixture, PASSWORD_METHOD_ID};

fn reset_path(user: &str) -> String {
    format!("/users/{user}/authentication/methods/{PASSWORD_METHOD_ID}/resetPassword")
}

async fn poll(sim: &latchkey_entra_sim::Sim, token: &str, location: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (s, _, b) = graph_get(sim, token, location).await;
        assert_eq!(s, 200, "{b}");
        let done = b["status"] != "running";
        seen.push(b);
        if done {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn admin_provided_password_then_poll_to_success() {
    let mut f = Fixture::test();
    f.lro.retry_after_seconds = 2;
    let sim = start_with(f).await;
    let aa = user_token(&sim, "authadmin@contoso.com", "Alex-Pa55word!").await;
    let (s, h, b) = graph(
        &sim,
        &aa,
        Method::POST,
        &reset_path(ADELE),
        Some(json!({"newPassword": "Br4nd-New-Secret"})),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b, json!({}));
    let location = h["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "{}/users/{ADELE}/authentication/operations/",
            sim.graph_base_url()
        )),
        "{location}"
    );
    assert!(location.contains("?aadgdc=") && location.contains("&aadgsu="));
    assert_eq!(h["retry-after"], "2");
    let polls = poll(&sim, &aa, &location).await;
    let statuses: Vec<&str> = polls
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["running", "running", "succeeded"]);
    let last = polls.last().unwrap();
    for k in [
        "id",
        "createdDateTime",
        "lastActionDateTime",
        "resourceLocation",
    ] {
        assert!(last[k].is_string(), "{k}");
    }
    assert!(last["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    time::OffsetDateTime::parse(
        last["createdDateTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("valid ISO timestamp");
    assert!(sim.tenant().check_password(ADELE, "Br4nd-New-Secret"));
    assert!(
        sim.tenant()
            .user(ADELE)
            .unwrap()
            .force_change_password_next_sign_in,
        "the user is prompted to change it"
    );
    // App tokens can't poll.
    let app = app_token(&sim).await;
    let (s, _, _) = graph_get(&sim, &app, &location).await;
    assert_eq!(s, 403);
    sim.stop().await;
}

#[tokio::test]
async fn system_generated_password() {
    let sim = start().await;
    let aa = user_token(&sim, "authadmin@contoso.com", "Alex-Pa55word!").await;
    let (s, _, b) = graph(
        &sim,
        &aa,
        Method::POST,
        &reset_path(ADELE),
        None,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(
        b["@odata.context"],
        format!(
            "{}/$metadata#microsoft.graph.passwordResetResponse",
            sim.graph_base_url()
        )
    );
    let pw = b["newPassword"].as_str().unwrap();
    assert!(sim.tenant().check_password(ADELE, pw));
    sim.stop().await;
}

#[tokio::test]
async fn reset_permissions_and_failures() {
    let sim = start().await;
    let body = Some(json!({"newPassword": "Br4nd-New-Secret"}));
    // App-only: not supported.
    let app = app_token(&sim).await;
    let (s, _, b) = graph(
        &sim,
        &app,
        Method::POST,
        &reset_path(ADELE),
        body.clone(),
        &[],
    )
    .await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    // Own account: refused (documented simulator choice: 403).
    let aa = user_token(&sim, "authadmin@contoso.com", "Alex-Pa55word!").await;
    let (s, _, b) = graph(
        &sim,
        &aa,
        Method::POST,
        &reset_path(AUTH_ADMIN),
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        b["error"]["message"],
        "The operation cannot be performed on the caller's own account."
    );
    // An Authentication Administrator can't reset a Global Administrator or a Helpdesk Administrator.
    for target in [ADMIN, HELPDESK] {
        let (s, _, _) = graph(
            &sim,
            &aa,
            Method::POST,
            &reset_path(target),
            body.clone(),
            &[],
        )
        .await;
        assert_eq!(s, 403, "{target}");
    }
    // A user without a suitable role (User Administrator isn't enough for resetPassword).
    let ua = user_token(&sim, "useradmin@contoso.com", "Lee-Pa55word!").await;
    let (s, _, _) = graph(
        &sim,
        &ua,
        Method::POST,
        &reset_path(ADELE),
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    // Global Administrator can reset another admin.
    let ga = user_token(&sim, "admin@contoso.com", "Admin-Pa55word!").await;
    let (s, _, _) = graph(
        &sim,
        &ga,
        Method::POST,
        &reset_path(AUTH_ADMIN),
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(s, 202);
    // Weak password: accepted, then the operation fails.
    let (s, h, _) = graph(
        &sim,
        &ga,
        Method::POST,
        &reset_path(ADELE),
        Some(json!({"newPassword": "password1"})),
        &[],
    )
    .await;
    assert_eq!(s, 202);
    let polls = poll(&sim, &ga, h["location"].to_str().unwrap()).await;
    let last = polls.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert!(last["statusDetail"].as_str().unwrap().contains("password"));
    assert!(!sim.tenant().check_password(ADELE, "password1"));
    // Synced user: needs newPassword; with writeback it works, without it the operation fails.
    let (s, _, _) = graph(
        &sim,
        &ga,
        Method::POST,
        &reset_path(MEGAN),
        None,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, 400);
    let (s, h, _) = graph(
        &sim,
        &ga,
        Method::POST,
        &reset_path(MEGAN),
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(
        poll(&sim, &ga, h["location"].to_str().unwrap())
            .await
            .last()
            .unwrap()["status"],
        "succeeded"
    );
    sim.tenant().set_password_writeback(false);
    let (_, h, _) = graph(
        &sim,
        &ga,
        Method::POST,
        &reset_path(MEGAN),
        Some(json!({"newPassword": "Another-Br4nd-New"})),
        &[],
    )
    .await;
    let last = poll(&sim, &ga, h["location"].to_str().unwrap())
        .await
        .pop()
        .unwrap();
    assert_eq!(last["status"], "failed");
    assert!(last["statusDetail"].as_str().unwrap().contains("writeback"));
    // Unknown operation id.
    let (s, _, _) = graph_get(
        &sim,
        &ga,
        &format!(
            "/users/{ADELE}/authentication/operations/{}",
            uuid::Uuid::new_v4()
        ),
    )
    .await;
    assert_eq!(s, 404);
    sim.stop().await;
}
