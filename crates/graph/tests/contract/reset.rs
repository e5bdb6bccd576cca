//! resetPassword (delegated) with its long-running operation.

use latchkey_graph::GraphError;
use latchkey_types::Secret;

use super::support::*;

#[tokio::test]
async fn reset_with_a_chosen_password_polls_until_succeeded() {
    let (sim, f) = start().await;
    let c = delegated_client(&sim, &f).await;
    let out = c
        .reset_password(
            &oid(TARGET),
            Some(&Secret::new("Chosen-Passw0rd-2025!".into())),
        )
        .await
        .unwrap();
    assert!(out.new_password.is_none());
    let post = requests_to(&sim, "/resetPassword").pop().unwrap();
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.path,
        format!(
            "/v1.0/users/{TARGET}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"
        )
    );
    assert_eq!(post.status, 202);
    let v: serde_json::Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(v["newPassword"], "Chosen-Passw0rd-2025!");
    let polls = requests_to(&sim, "/authentication/operations/");
    // The test tenant answers `running` twice, then `succeeded`.
    assert_eq!(polls.len(), 3, "{polls:?}");
    let location_query = polls[0].query.clone();
    assert!(
        polls.iter().all(|p| p.query == location_query),
        "Location followed as is"
    );
    assert!(
        polls
            .iter()
            .all(|p| p.method == "GET" && p.header("authorization").is_some())
    );
}

#[tokio::test]
async fn reset_without_a_password_returns_the_generated_one_as_a_secret() {
    let (sim, f) = start().await;
    let c = delegated_client(&sim, &f).await;
    let out = c.reset_password(&oid(TARGET), None).await.unwrap();
    let pw = out.new_password.expect("system-generated password");
    assert!(!pw.expose().is_empty());
    assert_eq!(format!("{pw:?}"), "[redacted]");
    let post = requests_to(&sim, "/resetPassword").pop().unwrap();
    assert_eq!(post.body, "{}");
}

#[tokio::test]
async fn reset_that_fails_is_a_typed_error_with_the_status_detail() {
    let mut fx = fixture();
    fx.sync.password_writeback_enabled = false;
    let (sim, f) = start_with(fx).await;
    let c = delegated_client(&sim, &f).await;
    // Accepted (202), then the operation ends `failed` (password policy).
    let e = c
        .reset_password(&oid(TARGET), Some(&Secret::new("short".into())))
        .await
        .unwrap_err();
    let GraphError::ResetFailed {
        status_detail,
        client_request_id,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(
        status_detail
            .as_deref()
            .unwrap_or("")
            .contains("complexity"),
        "{e:?}"
    );
    let last_poll = requests_to(&sim, "/authentication/operations/")
        .pop()
        .unwrap();
    assert_eq!(
        last_poll.header("client-request-id"),
        Some(client_request_id.as_str())
    );
    assert!(!format!("{e} {e:?}").contains("short\""));
    // Synced user while writeback is off: accepted, then failed.
    let e = c
        .reset_password(
            &oid(SYNCED),
            Some(&Secret::new("Chosen-Passw0rd-2025!".into())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::ResetFailed { status_detail: Some(d), .. } if d.contains("writeback")),
        "{e:?}"
    );
}

#[tokio::test]
async fn reset_of_a_synced_user_succeeds_with_writeback() {
    let mut fx = fixture();
    fx.sync.on_premises_sync_enabled = true;
    fx.sync.password_writeback_enabled = true;
    let (sim, f) = start_with(fx).await;
    let c = delegated_client(&sim, &f).await;
    c.reset_password(
        &oid(SYNCED),
        Some(&Secret::new("Chosen-Passw0rd-2025!".into())),
    )
    .await
    .unwrap();
    // Graph needs the password for hybrid users: without one, 400.
    let e = c.reset_password(&oid(SYNCED), None).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
}

#[tokio::test]
async fn reset_is_not_available_app_only() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let e = c.reset_password(&oid(TARGET), None).await.unwrap_err();
    assert!(e.is_forbidden() || e.status() == Some(401), "{e:?}");
    assert_eq!(
        requests_to(&sim, "/resetPassword").len(),
        1,
        "a 403 is not retried"
    );
}

#[tokio::test]
async fn lro_deadline_is_enforced() {
    let mut fx = fixture();
    fx.lro.retry_after_seconds = 1;
    let (sim, f) = start_with(fx).await;
    let rt = admin_refresh_token(&sim, &f).await;
    let mut cfg = config(&sim, &f, secret());
    cfg.timeouts.lro_deadline = std::time::Duration::from_millis(300);
    let c = latchkey_graph::GraphClient::with_delegated(cfg, rt, delegated_scopes(), None).unwrap();
    // The simulator asks for Retry-After: 1 (seconds), beyond the 300 ms deadline.
    let e = c
        .reset_password(
            &oid(TARGET),
            Some(&Secret::new("Chosen-Passw0rd-2025!".into())),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GraphError::OperationTimedOut { .. }), "{e:?}");
}
