//! Malformed batches: 400 for the whole batch in Graph's error shape, and not one part runs.

use serde_json::{Value, json};

use super::batch;
use crate::support::*;

fn get(id: &str, url: &str) -> Value {
    json!({"id": id, "method": "GET", "url": url})
}

/// A write that would show if a refused batch ran anything.
fn write(id: &str) -> Value {
    json!({"id": id, "method": "POST", "url": format!("/users/{ADELE}/revokeSignInSessions")})
}

#[tokio::test]
async fn malformed_batches_are_400_and_run_nothing() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let twenty_one: Vec<Value> = (0..21).map(|i| get(&i.to_string(), "/domains")).collect();
    let twenty: Vec<Value> = (0..20).map(|i| get(&i.to_string(), "/domains")).collect();
    let cases: Vec<(&str, Value)> = vec![
        ("more than 20 requests", json!({ "requests": twenty_one })),
        ("no requests", json!({"value": [get("1", "/domains")]})),
        ("requests not a list", json!({"requests": {"id": "1"}})),
        ("empty requests", json!({"requests": []})),
        (
            "duplicate ids, case aside",
            json!({"requests": [write("a"), get("A", "/domains")]}),
        ),
        (
            "absolute url",
            json!({"requests": [write("1"), get("2", "https://graph.microsoft.com/v1.0/users")]}),
        ),
        (
            "url with the version",
            json!({"requests": [write("1"), get("2", "/v1.0/users")]}),
        ),
        (
            "network-path url",
            json!({"requests": [write("1"), get("2", "//graph.microsoft.com/users")]}),
        ),
        (
            "url leaving /v1.0",
            json!({"requests": [write("1"), get("2", "/users/../../_sim/health")]}),
        ),
        (
            "nested batch",
            json!({"requests": [write("1"), {"id": "2", "method": "POST", "url": "/$batch",
                   "headers": {"Content-Type": "application/json"}, "body": {"requests": []}}]}),
        ),
        (
            "dependsOn a later id",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/domains", "dependsOn": ["2"]},
                write("2"),
            ]}),
        ),
        (
            "dependsOn an unknown id",
            json!({"requests": [write("1"), {"id": "2", "method": "GET", "url": "/domains",
                   "dependsOn": ["9"]}]}),
        ),
        (
            "dependsOn itself",
            json!({"requests": [write("1"), {"id": "2", "method": "GET", "url": "/domains",
                   "dependsOn": ["2"]}]}),
        ),
        (
            "dependsOn not a list",
            json!({"requests": [write("1"), {"id": "2", "method": "GET", "url": "/domains",
                   "dependsOn": "1"}]}),
        ),
        (
            "body without headers",
            json!({"requests": [write("1"), {"id": "2", "method": "PATCH",
                   "url": format!("/users/{ADELE}"), "body": {"displayName": "x"}}]}),
        ),
        (
            "body without Content-Type",
            json!({"requests": [write("1"), {"id": "2", "method": "PATCH",
                   "url": format!("/users/{ADELE}"), "headers": {"Prefer": "return=minimal"},
                   "body": {"displayName": "x"}}]}),
        ),
        (
            "missing id",
            json!({"requests": [write("1"), {"method": "GET", "url": "/domains"}]}),
        ),
        (
            "numeric id",
            json!({"requests": [write("1"), {"id": 2, "method": "GET", "url": "/domains"}]}),
        ),
        (
            "missing method",
            json!({"requests": [write("1"), {"id": "2", "url": "/domains"}]}),
        ),
        (
            "unsupported method",
            json!({"requests": [write("1"), {"id": "2", "method": "TRACE", "url": "/domains"}]}),
        ),
        (
            "missing url",
            json!({"requests": [write("1"), {"id": "2", "method": "GET"}]}),
        ),
        (
            "header value not a string",
            json!({"requests": [write("1"), {"id": "2", "method": "GET", "url": "/domains",
                   "headers": {"ConsistencyLevel": 1}}]}),
        ),
    ];
    sim.clear_requests();
    for (what, body) in &cases {
        let (s, b) = batch(&sim, &t, body).await;
        assert_eq!(s, 400, "{what}: {b}");
        assert_eq!(error_code(&b), "BadRequest", "{what}: {b}");
        assert!(b["error"]["message"].is_string(), "{what}: {b}");
        assert!(
            b["error"]["innerError"]["request-id"].is_string(),
            "{what}: {b}"
        );
    }
    // Not JSON at all.
    let r = client()
        .post(format!("{}/$batch", sim.graph_base_url()))
        .bearer_auth(&t)
        .header("Content-Type", "application/json")
        .body("{\"requests\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(error_code(&b), "BadRequest");

    let reqs = sim.requests();
    assert_eq!(reqs.len(), cases.len() + 1, "only the batches themselves");
    assert!(reqs.iter().all(|r| !r.batch_part && r.status == 400));

    // Twenty is the limit, not over it.
    let (s, b) = batch(&sim, &t, &json!({ "requests": twenty })).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["responses"].as_array().unwrap().len(), 20);
    sim.stop().await;
}
