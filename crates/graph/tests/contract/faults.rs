//! Throttling, 5xx, latency and dropped connections: retried within the budget, idempotent only
//! where the server may have acted.

use std::time::{Duration, Instant};

use latchkey_entra_sim::{Fault, FaultKind, Method};
use latchkey_graph::{GraphClient, GraphError, TapRequest, TransportKind, UserRef};

use super::support::*;

fn fault(method: Option<Method>, path: &str, kind: FaultKind, times: u32) -> Fault {
    Fault {
        method,
        path_contains: path.into(),
        kind,
        times,
    }
}

async fn warmed(sim: &latchkey_entra_sim::Sim, f: &latchkey_entra_sim::Fixture) -> GraphClient {
    let c = app_client(sim, f);
    c.token_claims().await.unwrap(); // token fetched before the fault is armed
    c
}

fn user_gets(sim: &latchkey_entra_sim::Sim) -> Vec<latchkey_entra_sim::RecordedRequest> {
    requests_to(sim, &format!("/users/{OBRIEN}"))
}

#[tokio::test]
async fn throttled_with_fractional_retry_after_waits_that_long() {
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::TooManyRequests {
            retry_after: Some("0.3".into()),
        },
        1,
    ));
    let t = Instant::now();
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let calls = user_gets(&sim);
    assert_eq!(
        calls.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert_ne!(
        calls[0].header("client-request-id"),
        calls[1].header("client-request-id")
    );
}

#[tokio::test]
async fn throttled_without_retry_after_backs_off_and_http_dates_work() {
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::TooManyRequests { retry_after: None },
        2,
    ));
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(
        user_gets(&sim).iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 429, 200]
    );
    // An HTTP-date in the past means "retry now".
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::TooManyRequests {
            retry_after: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()),
        },
        1,
    ));
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(user_gets(&sim).len(), 5);
}

#[tokio::test]
async fn service_unavailable_and_gateway_timeout_are_retried_for_reads() {
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::Status(503),
        1,
    ));
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::Status(504),
        1,
    ));
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(
        user_gets(&sim).iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![503, 504, 200]
    );
}

#[tokio::test]
async fn writes_are_retried_after_503_but_not_after_504() {
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    let req = TapRequest {
        lifetime_in_minutes: Some(60),
        ..Default::default()
    };
    sim.add_fault(fault(
        Some(Method::POST),
        "/temporaryAccessPassMethods",
        FaultKind::Status(503),
        1,
    ));
    c.create_temporary_access_pass(&oid(TARGET), &req)
        .await
        .unwrap();
    assert_eq!(requests_to(&sim, "/temporaryAccessPassMethods").len(), 2);
    sim.add_fault(fault(
        Some(Method::POST),
        "/temporaryAccessPassMethods",
        FaultKind::Status(504),
        1,
    ));
    let e = c
        .create_temporary_access_pass(&oid(TARGET), &req)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(504), "{e:?}");
    assert_eq!(requests_to(&sim, "/temporaryAccessPassMethods").len(), 3);
}

#[tokio::test]
async fn timeouts_are_retried_for_reads_only() {
    let (sim, f) = start().await;
    let mut cfg = config(&sim, &f, secret());
    cfg.timeouts.request = Duration::from_millis(400);
    let c = GraphClient::new(cfg).unwrap();
    c.token_claims().await.unwrap();
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::Latency(Duration::from_millis(1200)),
        1,
    ));
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(user_gets(&sim).len(), 2);

    sim.add_fault(fault(
        Some(Method::POST),
        "/temporaryAccessPassMethods",
        FaultKind::Latency(Duration::from_millis(1200)),
        1,
    ));
    let e = c
        .create_temporary_access_pass(
            &oid(TARGET),
            &TapRequest {
                lifetime_in_minutes: Some(60),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            GraphError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.client_request_id().is_some());
    assert_eq!(requests_to(&sim, "/temporaryAccessPassMethods").len(), 1);
}

#[tokio::test]
async fn dropped_connections_are_retried_for_reads_only() {
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::DropConnection,
        1,
    ));
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(
        user_gets(&sim).iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![0, 200]
    );

    sim.add_fault(fault(
        Some(Method::POST),
        "/temporaryAccessPassMethods",
        FaultKind::DropConnection,
        1,
    ));
    let e = c
        .create_temporary_access_pass(
            &oid(TARGET),
            &TapRequest {
                lifetime_in_minutes: Some(60),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            GraphError::Transport {
                kind: TransportKind::Dropped,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(requests_to(&sim, "/temporaryAccessPassMethods").len(), 1);
}

#[tokio::test]
async fn budget_exhaustion_is_a_typed_error() {
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    // Always throttled: max_attempts (4) ends it.
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::TooManyRequests {
            retry_after: Some("0.05".into()),
        },
        0,
    ));
    let e = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap_err();
    let GraphError::RetriesExhausted { attempts, last, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*attempts, 4);
    assert!(matches!(**last, GraphError::Api(_)));
    assert!(e.is_throttled());
    assert_eq!(e.code(), Some("TooManyRequests"));
    assert_eq!(user_gets(&sim).len(), 4);

    // A Retry-After beyond the total wait budget (5 s) ends it at once.
    let (sim, f) = start().await;
    let c = warmed(&sim, &f).await;
    sim.add_fault(fault(
        Some(Method::GET),
        "/users/",
        FaultKind::TooManyRequests {
            retry_after: Some("30".into()),
        },
        0,
    ));
    let t = Instant::now();
    let e = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(e, GraphError::RetriesExhausted { attempts: 1, .. }),
        "{e:?}"
    );
    let GraphError::RetriesExhausted { last, .. } = &e else {
        unreachable!()
    };
    let GraphError::Api(api) = &**last else {
        panic!()
    };
    assert_eq!(api.retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn token_endpoint_unavailability_is_retried() {
    let (sim, f) = start().await;
    sim.add_fault(fault(
        Some(Method::POST),
        "/oauth2/v2.0/token",
        FaultKind::Status(503),
        1,
    ));
    let c = app_client(&sim, &f);
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(requests_to(&sim, "/oauth2/v2.0/token").len(), 2);
}
