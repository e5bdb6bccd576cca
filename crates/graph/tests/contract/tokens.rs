//! Token acquisition, caching, single flight, certificate assertions, token claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_entra_sim::{Fault, FaultKind, Method};
use latchkey_graph::{AssertionAlgorithm, Clock, Credential, GraphClient, UserRef};
use time::OffsetDateTime;

use super::support::*;

const TOKEN_PATH: &str = "/oauth2/v2.0/token";

fn jwt_header(jwt: &str) -> serde_json::Value {
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

fn jwt_claims(jwt: &str) -> serde_json::Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

#[tokio::test]
async fn client_secret_token_is_requested_once_and_cached() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    for _ in 0..3 {
        c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    }
    let tokens = requests_to(&sim, TOKEN_PATH);
    assert_eq!(tokens.len(), 1);
    let t = &tokens[0];
    assert_eq!(t.method, "POST");
    assert_eq!(
        t.form_param("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(t.form_param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        t.form_param("client_secret").as_deref(),
        Some(CLIENT_SECRET)
    );
    assert_eq!(
        t.form_param("scope").as_deref(),
        Some("https://graph.microsoft.com/.default")
    );
    assert!(
        t.path
            .ends_with(&format!("/{}/oauth2/v2.0/token", f.tenant.id))
    );
    // Graph calls carry the bearer token.
    let graph = requests_to(&sim, "/users/");
    assert!(graph.iter().all(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_callers_share_one_token_request() {
    let (sim, f) = start().await;
    // Slow token endpoint: all callers arrive while the first refresh is in flight.
    sim.add_fault(Fault {
        method: Some(Method::POST),
        path_contains: TOKEN_PATH.into(),
        kind: FaultKind::Latency(Duration::from_millis(300)),
        times: 1,
    });
    let c = app_client(&sim, &f);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let c = c.clone();
        set.spawn(async move { c.get_user(&UserRef::Id(oid(OBRIEN))).await.map(|u| u.id) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), oid(OBRIEN));
    }
    assert_eq!(requests_to(&sim, TOKEN_PATH).len(), 1);
    assert_eq!(requests_to(&sim, "/users/").len(), 20);
}

#[tokio::test]
async fn token_is_renewed_shortly_before_expiry() {
    let (sim, f) = start().await;
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let mut cfg = config(&sim, &f, secret());
    cfg.clock = Clock::from_fn(move || {
        OffsetDateTime::now_utc() + time::Duration::seconds(o.load(Ordering::SeqCst))
    });
    let c = GraphClient::new(cfg).unwrap();
    let claims = c.token_claims().await.unwrap();
    let lifetime = claims.exp.unwrap() - OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        lifetime > 600,
        "simulator issues hour-long tokens, got {lifetime}s"
    );
    // 6 minutes before expiry: still cached (margin is 5 minutes).
    offset.store(lifetime - 360, Ordering::SeqCst);
    c.token_claims().await.unwrap();
    assert_eq!(requests_to(&sim, TOKEN_PATH).len(), 1);
    // 4 minutes before expiry: renewed.
    offset.store(lifetime - 240, Ordering::SeqCst);
    c.token_claims().await.unwrap();
    assert_eq!(requests_to(&sim, TOKEN_PATH).len(), 2);
}

async fn certificate_works(alg: AssertionAlgorithm) {
    let (sim, f) = start().await;
    let cert = certificate("app-cert").with_algorithm(alg);
    let c = GraphClient::new(config(&sim, &f, Credential::Certificate(cert.clone()))).unwrap();
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    let t = &requests_to(&sim, TOKEN_PATH)[0];
    assert!(t.form_param("client_secret").is_none());
    assert_eq!(
        t.form_param("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    let jwt = t.form_param("client_assertion").unwrap();
    let h = jwt_header(&jwt);
    let claims = jwt_claims(&jwt);
    match alg {
        AssertionAlgorithm::Ps256 => {
            assert_eq!(h["alg"], "PS256");
            assert_eq!(h["x5t#S256"], cert.thumbprint_sha256());
        }
        AssertionAlgorithm::Rs256 => {
            assert_eq!(h["alg"], "RS256");
            assert_eq!(h["x5t"], cert.thumbprint_sha1());
        }
    }
    assert_eq!(
        claims["aud"],
        format!(
            "{}/{}/oauth2/v2.0/token",
            sim.base_url().trim_end_matches('/'),
            f.tenant.id
        )
    );
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn certificate_assertion_ps256_is_accepted() {
    certificate_works(AssertionAlgorithm::Ps256).await;
}

#[tokio::test]
async fn certificate_assertion_rs256_is_accepted() {
    certificate_works(AssertionAlgorithm::Rs256).await;
}

#[tokio::test]
async fn unregistered_certificate_is_rejected_with_a_typed_error() {
    let (sim, f) = start().await;
    let c = GraphClient::new(config(
        &sim,
        &f,
        Credential::Certificate(certificate("other-cert")),
    ))
    .unwrap();
    let e = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap_err();
    let latchkey_graph::GraphError::Token(t) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(t.error, "invalid_client");
    assert!(!t.error_codes.is_empty(), "{t:?}");
    assert!(e.is_unauthorized());
    assert!(e.client_request_id().is_some());
    // No Graph request was attempted without a token.
    assert!(requests_to(&sim, "/users/").is_empty());
}

#[tokio::test]
async fn token_claims_report_roles_wids_and_ids() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let claims = c.token_claims().await.unwrap();
    assert!(claims.has_permission("User.ReadWrite.All"), "{claims:?}");
    assert!(claims.has_permission("UserAuthenticationMethod.ReadWrite.All"));
    // Privileged Authentication Administrator's template id.
    assert!(
        claims.has_role_template("7be44c8a-adaf-4e2a-84d6-ab2649e08a13"),
        "{claims:?}"
    );
    assert_eq!(claims.tid.as_deref(), Some(f.tenant.id.as_str()));
    assert_eq!(claims.appid.as_deref(), Some(CLIENT_ID));
    assert!(claims.oid.is_some());
    assert!(claims.scp.is_none());
    assert!(claims.exp.unwrap() > OffsetDateTime::now_utc().unix_timestamp());
}
