//! Identity Protection risky users and Temporary Access Pass.

use std::time::Duration;

use latchkey_graph::{
    GraphClient, GraphError, MethodUsabilityReason, RetryPolicy, RiskLevel, RiskState, TapRequest,
};

use super::support::*;

fn unthrottled() -> latchkey_entra_sim::Fixture {
    let mut f = fixture();
    f.throttling.identity_protection_per_second = 0;
    f
}

#[tokio::test]
async fn risky_user_get_and_dismiss() {
    let (sim, f) = start_with(unthrottled()).await;
    let c = app_client(&sim, &f);
    let r = c.get_risky_user(&oid(RISKY)).await.unwrap().expect("risky");
    assert_eq!(r.id, oid(RISKY));
    assert_eq!(r.risk_level, Some(RiskLevel::High));
    assert!(r.is_at_risk());
    assert!(
        c.get_risky_user(&oid(TARGET)).await.unwrap().is_none(),
        "404 → None"
    );

    c.dismiss_risky_users(&[oid(RISKY)]).await.unwrap();
    let d = requests_to(&sim, "/riskyUsers/dismiss").pop().unwrap();
    assert_eq!(d.body, format!(r#"{{"userIds":["{RISKY}"]}}"#));
    assert_eq!(d.status, 204);
    let r = c.get_risky_user(&oid(RISKY)).await.unwrap().unwrap();
    assert_eq!(r.risk_state, Some(RiskState::Dismissed));
    assert!(!r.is_at_risk());
    let n = sim.requests().len();
    c.dismiss_risky_users(&[]).await.unwrap();
    assert_eq!(sim.requests().len(), n);
}

#[tokio::test]
async fn identity_protection_throttle_without_retry_after_is_backed_off() {
    let (sim, f) = start().await; // 1 request per second per tenant
    let mut cfg = config(&sim, &f, secret());
    cfg.retry = RetryPolicy {
        max_attempts: 8,
        max_total_wait: Duration::from_secs(10),
        base_delay: Duration::from_millis(300),
        max_delay: Duration::from_millis(1500),
    };
    let c = GraphClient::new(cfg).unwrap();
    for _ in 0..3 {
        c.get_risky_user(&oid(RISKY)).await.unwrap();
    }
    let calls = requests_to(&sim, "/riskyUsers/");
    assert!(
        calls.iter().any(|r| r.status == 429),
        "throttled at least once: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .filter(|r| r.status == 429)
            .all(|r| r.header("retry-after").is_none())
    );

    // With a tiny budget the throttle surfaces as a typed error.
    let mut cfg = config(&sim, &f, secret());
    cfg.retry.max_attempts = 1;
    let impatient = GraphClient::new(cfg).unwrap();
    impatient.get_risky_user(&oid(RISKY)).await.ok();
    let e = impatient.get_risky_user(&oid(RISKY)).await.unwrap_err();
    assert!(e.is_throttled(), "{e:?}");
    assert!(
        matches!(e, GraphError::RetriesExhausted { attempts: 1, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn temporary_access_pass_is_returned_once_as_a_secret() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let req = TapRequest {
        lifetime_in_minutes: Some(120),
        is_usable_once: Some(true),
        start_date_time: None,
    };
    let tap = c
        .create_temporary_access_pass(&oid(TARGET), &req)
        .await
        .unwrap();
    assert!(tap.pass.expose().len() >= 8);
    assert_eq!(tap.lifetime_in_minutes, Some(120));
    assert_eq!(tap.is_usable_once, Some(true));
    assert!(matches!(
        tap.method_usability_reason,
        Some(MethodUsabilityReason::EnabledByPolicy) | None
    ));
    assert!(!format!("{tap:?}").contains(tap.pass.expose().as_str()));
    let r = requests_to(&sim, "/temporaryAccessPassMethods")
        .pop()
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"isUsableOnce": true, "lifetimeInMinutes": 120})
    );
    // Out of the policy's range (60–480 in the test tenant): Graph says 400.
    let e = c
        .create_temporary_access_pass(
            &oid(TARGET),
            &TapRequest {
                lifetime_in_minutes: Some(30),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    // Out of Graph's range: refused locally.
    let n = sim.requests().len();
    let e = c
        .create_temporary_access_pass(
            &oid(TARGET),
            &TapRequest {
                lifetime_in_minutes: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GraphError::InvalidInput(_)));
    assert_eq!(sim.requests().len(), n);
}
