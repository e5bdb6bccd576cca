//! Delegated credential: authorization code + PKCE, refresh-token rotation.

use std::sync::{Arc, Mutex};

use latchkey_graph::delegated::redeem_code;
use latchkey_graph::{GraphClient, GraphError, RotateHook};
use latchkey_types::Secret;

use super::support::*;

#[tokio::test]
async fn code_with_pkce_is_redeemed_for_tokens() {
    let (sim, f) = start().await;
    let upn = format!("auth.admin@{}", domain(&f));
    let (pending, code, state) = sign_in(&sim, &f, &upn, ADMIN_PASSWORD).await;
    assert!(pending.check_state(&state));
    let authorize = requests_to(&sim, "/oauth2/v2.0/authorize");
    let first = &authorize[0];
    assert_eq!(
        first.query_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        first.query_param("code_challenge").as_deref(),
        Some(pending.pkce.challenge())
    );

    let tokens = pending
        .redeem(&config(&sim, &f, secret()), &code)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.id_token.is_some());
    assert!(tokens.expires_at > time::OffsetDateTime::now_utc());
    assert!(
        tokens
            .scopes()
            .iter()
            .any(|s| s.contains("UserAuthenticationMethod.ReadWrite.All")),
        "{}",
        tokens.scope
    );
    let t = requests_to(&sim, "/oauth2/v2.0/token").pop().unwrap();
    assert_eq!(
        t.form_param("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(
        t.form_param("code_verifier").as_deref(),
        Some(pending.pkce.verifier().expose().as_str())
    );
    assert_eq!(t.form_param("redirect_uri").as_deref(), Some(REDIRECT_URI));

    // A code is single use.
    let e = pending
        .redeem(&config(&sim, &f, secret()), &code)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_grant"), "{e:?}");
}

#[tokio::test]
async fn wrong_verifier_is_refused() {
    let (sim, f) = start().await;
    let upn = format!("auth.admin@{}", domain(&f));
    let (pending, code, _) = sign_in(&sim, &f, &upn, ADMIN_PASSWORD).await;
    let wrong = Secret::new("x".repeat(43));
    let e = redeem_code(
        &config(&sim, &f, secret()),
        &code,
        REDIRECT_URI,
        &wrong,
        &pending.scopes,
    )
    .await
    .unwrap_err();
    let GraphError::Token(t) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(t.error, "invalid_grant");
    assert!(!t.description.contains(code.expose().as_str()));
    assert!(!format!("{e}").contains(code.expose().as_str()));
}

#[tokio::test]
async fn refresh_token_rotates_and_the_new_one_is_used() {
    let (sim, f) = start().await;
    let original = admin_refresh_token(&sim, &f).await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let hook: RotateHook =
        Arc::new(move |rt: Secret<String>| s.lock().unwrap().push(rt.expose().clone()));
    let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let o = offset.clone();
    let mut cfg = config(&sim, &f, secret());
    cfg.clock = latchkey_graph::Clock::from_fn(move || {
        time::OffsetDateTime::now_utc()
            + time::Duration::seconds(o.load(std::sync::atomic::Ordering::SeqCst))
    });
    let c =
        GraphClient::with_delegated(cfg, original.clone(), delegated_scopes(), Some(hook)).unwrap();
    assert!(c.is_delegated());
    let claims = c.token_claims().await.unwrap();
    assert!(
        claims
            .scopes()
            .contains(&"UserAuthenticationMethod.ReadWrite.All"),
        "{claims:?}"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "rotated once");
        assert_ne!(&seen[0], original.expose());
    }
    let first_refresh = requests_to(&sim, "/oauth2/v2.0/token").pop().unwrap();
    assert_eq!(
        first_refresh.form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        first_refresh.form_param("refresh_token").as_deref(),
        Some(original.expose().as_str())
    );

    // Force the next refresh by moving past expiry: it must present the rotated token.
    offset.store(7200, std::sync::atomic::Ordering::SeqCst);
    c.token_claims().await.unwrap();
    let second_refresh = requests_to(&sim, "/oauth2/v2.0/token").pop().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        second_refresh.form_param("refresh_token").as_deref(),
        Some(seen[0].as_str())
    );
    assert_eq!(seen.len(), 2);
}
