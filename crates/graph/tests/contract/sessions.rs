//! `revokeSignInSessions`: the request Graph documents, its permission, and its effect on the
//! user's refresh tokens.

use latchkey_entra_sim::{Fault, FaultKind, Method};
use latchkey_graph::{GraphClient, GraphError};

use super::support::*;

#[tokio::test]
async fn revoke_posts_without_a_body_and_succeeds_on_200() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.revoke_sign_in_sessions(&oid(TARGET)).await.unwrap();
    let calls = requests_to(&sim, "/revokeSignInSessions");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let r = &calls[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/v1.0/users/{TARGET}/revokeSignInSessions"));
    assert!(r.body.is_empty(), "no request body: {:?}", r.body);
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn revoke_needs_the_permission_and_an_existing_user() {
    let (sim, f) = start().await;
    let e = weak_client(&sim, &f)
        .revoke_sign_in_sessions(&oid(TARGET))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e:?}");
    assert_eq!(e.code(), Some("Authorization_RequestDenied"), "{e:?}");

    let unknown = oid("0b000000-0000-4000-8000-0000000000ff");
    let e = app_client(&sim, &f)
        .revoke_sign_in_sessions(&unknown)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e:?}");
}

#[tokio::test]
async fn revoke_is_a_write_and_not_repeated_after_504() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap(); // token fetched before the fault is armed
    sim.add_fault(Fault {
        method: Some(Method::POST),
        path_contains: "/revokeSignInSessions".into(),
        kind: FaultKind::Status(504),
        times: 1,
    });
    let e = c.revoke_sign_in_sessions(&oid(TARGET)).await.unwrap_err();
    assert_eq!(e.status(), Some(504), "{e:?}");
    assert_eq!(requests_to(&sim, "/revokeSignInSessions").len(), 1);
}

#[tokio::test]
async fn refresh_tokens_issued_before_the_revocation_are_refused() {
    let (sim, f) = start().await;
    let before = admin_refresh_token(&sim, &f).await;
    // Still good before the revocation.
    GraphClient::with_delegated(
        config(&sim, &f, secret()),
        before.clone(),
        delegated_scopes(),
        None,
    )
    .unwrap()
    .token_claims()
    .await
    .unwrap();

    app_client(&sim, &f)
        .revoke_sign_in_sessions(&oid(ADMIN))
        .await
        .unwrap();

    let e =
        GraphClient::with_delegated(config(&sim, &f, secret()), before, delegated_scopes(), None)
            .unwrap()
            .token_claims()
            .await
            .unwrap_err();
    match e.root() {
        GraphError::Token(t) => {
            assert_eq!(t.error, "invalid_grant", "{t:?}");
            assert!(t.has_code(50173), "{t:?}");
        }
        other => panic!("expected a token error, got {other:?}"),
    }
    // A fresh sign-in works again.
    GraphClient::with_delegated(
        config(&sim, &f, secret()),
        admin_refresh_token(&sim, &f).await,
        delegated_scopes(),
        None,
    )
    .unwrap()
    .token_claims()
    .await
    .unwrap();
}
