//! Error mapping: token endpoint errors, Graph 401 handling, client-request-id everywhere,
//! the request counter.

use latchkey_entra_sim::{Fault, FaultKind, Method};
use latchkey_graph::{Credential, GraphClient, GraphError, UserRef};
use latchkey_types::Secret;

use super::support::*;

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_without_echoing_the_secret() {
    let (sim, f) = start().await;
    let wrong = "definitely-not-the-secret-value";
    let c = GraphClient::new(config(
        &sim,
        &f,
        Credential::ClientSecret(Secret::new(wrong.into())),
    ))
    .unwrap();
    let e = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap_err();
    let GraphError::Token(t) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(t.status, 401);
    assert_eq!(t.error, "invalid_client");
    assert!(t.has_code(7000215), "{t:?}");
    assert!(t.correlation_id.is_some());
    assert!(
        t.description.starts_with("AADSTS7000215"),
        "{}",
        t.description
    );
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains("Trace ID"));
    assert!(e.is_unauthorized());
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn unknown_app_and_unknown_tenant() {
    let (sim, f) = start().await;
    let mut cfg = config(&sim, &f, secret());
    cfg.client_id = "66666666-6666-6666-6666-666666666666".into();
    let e = GraphClient::new(cfg)
        .unwrap()
        .token_claims()
        .await
        .unwrap_err();
    let GraphError::Token(t) = &e else {
        panic!("{e:?}")
    };
    assert!(t.has_code(700016), "{t:?}");
    assert_eq!(t.error, "unauthorized_client");

    let mut cfg = config(&sim, &f, secret());
    cfg.tenant_id = "no-such-tenant.onmicrosoft.com".into();
    let e = GraphClient::new(cfg)
        .unwrap()
        .token_claims()
        .await
        .unwrap_err();
    let GraphError::Token(t) = &e else {
        panic!("{e:?}")
    };
    assert!(t.has_code(90002), "{t:?}");
}

#[tokio::test]
async fn graph_401_drops_the_token_and_retries_once() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: "/users/".into(),
        kind: FaultKind::Status(401),
        times: 1,
    });
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(requests_to(&sim, "/oauth2/v2.0/token").len(), 2);
    // A persistent 401 is reported, not looped on.
    sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: "/users/".into(),
        kind: FaultKind::Status(401),
        times: 0,
    });
    let e = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(e.is_unauthorized());
}

#[tokio::test]
async fn every_request_carries_a_fresh_client_request_id_and_is_counted() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    c.find_user(&format!("o'brien@{}", domain(&f)))
        .await
        .unwrap();
    c.transitive_memberships(&oid(OBRIEN)).await.unwrap();
    c.list_auth_methods(&oid(METHODS)).await.unwrap();
    c.list_domains().await.unwrap();
    let _ = c
        .get_user(&UserRef::Id(oid("0b000000-0000-4000-8000-0000000000ff")))
        .await;
    let all = sim.requests();
    assert!(!all.is_empty());
    let mut ids = std::collections::HashSet::new();
    for r in &all {
        let id = r
            .header("client-request-id")
            .unwrap_or_else(|| panic!("missing on {} {}", r.method, r.path));
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert!(ids.insert(id.to_string()), "reused {id}");
    }
    assert_eq!(c.request_count(), all.len() as u64);
    // Clones share the counter.
    let c2 = c.clone();
    c2.organization().await.unwrap();
    assert_eq!(c.request_count(), all.len() as u64 + 1);
}

#[tokio::test]
async fn http_is_refused_for_non_loopback_hosts() {
    let (sim, f) = start().await;
    let mut cfg = config(&sim, &f, secret());
    cfg.graph_base_url = "http://graph.example.com/v1.0".into();
    assert!(matches!(GraphClient::new(cfg), Err(GraphError::Config(_))));
}
