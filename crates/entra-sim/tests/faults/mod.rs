//! Fault injection and request recording.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;
use latchkey_entra_sim::{Fault, FaultKind, Method};

#[tokio::test]
async fn throttling_status_latency_and_dropped_connections() {
    let sim = start().await;
    let t = app_token(&sim).await;
    sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: "/users/".into(),
        kind: FaultKind::TooManyRequests {
            retry_after: Some("0.2".into()),
        },
        times: 1,
    });
    let (s, h, b) = graph_get(&sim, &t, &format!("/users/{ADELE}")).await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "0.2");
    assert_eq!(b["error"]["code"], "TooManyRequests");
    assert_eq!(b["error"]["innerError"]["status"], "429");
    assert_eq!(
        graph_get(&sim, &t, &format!("/users/{ADELE}")).await.0,
        200,
        "times = 1"
    );

    sim.add_fault(Fault {
        method: None,
        path_contains: "/users".into(),
        kind: FaultKind::TooManyRequests { retry_after: None },
        times: 1,
    });
    let (s, h, _) = graph_get(&sim, &t, "/users").await;
    assert_eq!(s, 429);
    assert!(!h.contains_key("retry-after"));

    for (code, name) in [
        (503, "serviceNotAvailable"),
        (504, "gatewayTimeout"),
        (500, "generalException"),
    ] {
        sim.add_fault(Fault {
            method: None,
            path_contains: "/domains".into(),
            kind: FaultKind::Status(code),
            times: 1,
        });
        let (s, _, b) = graph_get(&sim, &t, "/domains").await;
        assert_eq!(s, code);
        assert_eq!(b["error"]["code"], name);
        assert!(b["error"]["innerError"]["request-id"].is_string());
    }

    sim.add_fault(Fault {
        method: None,
        path_contains: "/organization".into(),
        kind: FaultKind::Latency(Duration::from_millis(300)),
        times: 1,
    });
    let started = Instant::now();
    assert_eq!(graph_get(&sim, &t, "/organization").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: "/organization".into(),
        kind: FaultKind::DropConnection,
        times: 1,
    });
    let err = client()
        .get(format!("{}/organization", sim.graph_base_url()))
        .bearer_auth(&t)
        .send()
        .await;
    assert!(
        err.is_err(),
        "connection closed without a response: {err:?}"
    );
    assert_eq!(
        graph_get(&sim, &t, "/organization").await.0,
        200,
        "the server is fine afterwards"
    );

    // Token endpoint can be faulted too; faults can be cleared.
    sim.add_fault(Fault {
        method: None,
        path_contains: "/oauth2/v2.0/token".into(),
        kind: FaultKind::Status(503),
        times: 0,
    });
    let (s, _) = post_form(
        &sim,
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", GRAPH_DEFAULT),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(s, 503);
    sim.clear_faults();
    let (s, _) = post_form(
        &sim,
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", GRAPH_DEFAULT),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    sim.stop().await;
}

#[tokio::test]
async fn recording_and_control_endpoints() {
    let sim = start().await;
    let t = app_token(&sim).await;
    sim.clear_requests();
    let _ = graph(
        &sim,
        &t,
        reqwest::Method::GET,
        "/users?$select=id,mail&$top=2",
        None,
        &[("client-request-id", "abc-123")],
    )
    .await;
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v1.0/users");
    assert_eq!(r.query_param("$select").as_deref(), Some("id,mail"));
    assert_eq!(r.header("client-request-id"), Some("abc-123"));
    assert_eq!(r.status, 200);

    // Control endpoints (not recorded themselves).
    let base = sim.base_url();
    let fault = json!({"method": "GET", "path_contains": "/domains", "times": 1, "kind": {"type": "status", "status": 503}});
    assert_eq!(
        client()
            .post(format!("{base}/_sim/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(graph_get(&sim, &t, "/domains").await.0, 503);
    let fault =
        json!({"kind": {"type": "drop_connection"}, "path_contains": "/domains", "times": 0});
    assert_eq!(
        client()
            .post(format!("{base}/_sim/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        client()
            .delete(format!("{base}/_sim/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(graph_get(&sim, &t, "/domains").await.0, 200);
    let log: serde_json::Value = client()
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 503, 200]);
    assert_eq!(
        client()
            .delete(format!("{base}/_sim/requests"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(sim.requests().is_empty());
    sim.stop().await;
}
