//! JSON batching (`POST /v1.0/$batch`): parts answered as the direct requests would be, each
//! with its own status (permissions, 404s, faults), out of order, `dependsOn`, and the record.
//! Refused batches are in `refusals`.

mod refusals;

use std::collections::HashMap;

use latchkey_entra_sim::{Fault, FaultKind, Method, Sim};
use serde_json::{Value, json};

use crate::support::*;

/// POSTs a batch; the status and the JSON answer.
pub async fn batch(sim: &Sim, token: &str, body: &Value) -> (u16, Value) {
    let (s, _, b) = graph(
        sim,
        token,
        reqwest::Method::POST,
        "/$batch",
        Some(body.clone()),
        &[],
    )
    .await;
    (s, b)
}

/// The answers by id; each id answered exactly once.
pub fn by_id(answer: &Value) -> HashMap<String, Value> {
    let list = answer["responses"].as_array().expect("responses array");
    let map: HashMap<String, Value> = list
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    assert_eq!(map.len(), list.len(), "ids answered once: {answer}");
    map
}

fn order(answer: &Value) -> Vec<&str> {
    answer["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn reads_answer_as_the_direct_requests_do_out_of_order_and_are_recorded_as_parts() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let user = format!("/users/{ADELE}?$select=id,displayName,userPrincipalName");
    let groups = format!("/users/{ADELE}/transitiveMemberOf");
    let (_, _, direct_user) = graph_get(&sim, &t, &user).await;
    let (_, _, direct_groups) = graph_get(&sim, &t, &groups).await;
    sim.clear_requests();
    let (s, _, b) = graph(
        &sim,
        &t,
        reqwest::Method::POST,
        "/$batch",
        Some(json!({"requests": [
            {"id": "1", "method": "GET", "url": user},
            // Without the leading slash, as Graph also accepts.
            {"id": "2", "method": "get", "url": groups.trim_start_matches('/'),
             "headers": {"client-request-id": "part-2-crid"}},
        ]})),
        &[("client-request-id", "batch-crid")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(order(&b), ["2", "1"], "not in request order");
    let r = by_id(&b);
    for (id, direct) in [("1", &direct_user), ("2", &direct_groups)] {
        assert_eq!(r[id]["status"], 200, "{b}");
        assert_eq!(&r[id]["body"], direct, "part {id} as the direct request");
        let ct = r[id]["headers"]["Content-Type"].as_str().unwrap();
        assert!(ct.starts_with("application/json"), "{ct}");
        assert!(
            r[id]["headers"].get("request-id").is_none()
                && r[id]["headers"].get("Request-Id").is_none(),
            "ids of the inner exchange are not part headers: {b}"
        );
    }

    let reqs = sim.requests();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    let outer = &reqs[0];
    assert_eq!(
        (outer.method.as_str(), outer.path.as_str()),
        ("POST", "/v1.0/$batch")
    );
    assert!(!outer.batch_part);
    assert_eq!(outer.status, 200);
    let parts: Vec<_> = reqs.iter().filter(|r| r.batch_part).collect();
    assert_eq!(parts.len(), 2);
    let get_user = parts
        .iter()
        .find(|p| p.path == format!("/v1.0/users/{ADELE}"))
        .expect("user part recorded");
    assert_eq!(
        get_user.query_param("$select").as_deref(),
        Some("id,displayName,userPrincipalName")
    );
    assert_eq!(
        get_user.header("authorization"),
        Some(&*format!("Bearer {t}"))
    );
    // A part without its own client-request-id carries the batch's.
    assert_eq!(get_user.header("client-request-id"), Some("batch-crid"));
    let get_groups = parts
        .iter()
        .find(|p| p.path.ends_with("/transitiveMemberOf"))
        .expect("groups part recorded");
    assert_eq!(get_groups.header("client-request-id"), Some("part-2-crid"));
    for p in &parts {
        assert_eq!((p.method.as_str(), p.status), ("GET", 200));
        assert!(
            p.headers.iter().all(|(n, _)| !n.contains("batch-part")),
            "the marker is not recorded: {p:?}"
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn parts_are_judged_one_by_one() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let missing = "00000000-0000-4000-8000-0000000000ff";
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [
            {"id": "found", "method": "GET", "url": format!("/users/{ADELE}?$select=id")},
            {"id": "missing", "method": "GET", "url": format!("/users/{missing}")},
            {"id": "unknown-segment", "method": "GET", "url": "/noSuchThing"},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = by_id(&b);
    assert_eq!(r["found"]["status"], 200);
    assert_eq!(r["found"]["body"]["id"], ADELE);
    assert_eq!(r["missing"]["status"], 404);
    assert_eq!(
        error_code(&r["missing"]["body"]),
        "Request_ResourceNotFound"
    );
    assert!(r["missing"]["body"]["error"]["innerError"]["request-id"].is_string());
    assert_eq!(r["unknown-segment"]["status"], 400);

    // User.Read.All only: the user reads, the group is refused.
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, b) = batch(
        &sim,
        &readonly,
        &json!({"requests": [
            {"id": "1", "method": "GET", "url": format!("/users/{ADELE}?$select=id")},
            {"id": "2", "method": "GET", "url": format!("/groups/{GROUP_A}")},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = by_id(&b);
    assert_eq!(r["1"]["status"], 200);
    assert_eq!(r["2"]["status"], 403);
    assert_eq!(error_code(&r["2"]["body"]), "Authorization_RequestDenied");

    // A bad token refuses the batch itself (401, nothing run), as any Graph request: a client
    // sees the same answer it sees alone and fetches a new token.
    let before = sim.requests().len();
    let (s, b) = batch(
        &sim,
        "not-a-token",
        &json!({"requests": [{"id": "1", "method": "GET", "url": "/organization"}]}),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(error_code(&b), "InvalidAuthenticationToken");
    assert_eq!(sim.requests().len(), before + 1, "no part ran");
    sim.stop().await;
}

#[tokio::test]
async fn a_write_part_changes_the_tenant_and_a_dependent_read_sees_it() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let before = sim.tenant().user(RISKY).unwrap().last_password_change;
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [
            {"id": "write", "method": "PATCH", "url": format!("/users/{RISKY}"),
             "headers": {"Content-Type": "application/json"},
             "body": {"passwordProfile": {"forceChangePasswordNextSignIn": false,
                                          "password": "N3w-Secure-Passphrase"}}},
            {"id": "read", "method": "GET", "dependsOn": ["write"],
             "url": format!("/users/{RISKY}?$select=lastPasswordChangeDateTime")},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = by_id(&b);
    assert_eq!(r["write"]["status"], 204, "{b}");
    assert!(r["write"].get("body").is_none(), "no body on 204: {b}");
    assert_eq!(r["read"]["status"], 200);
    assert!(sim.tenant().check_password(RISKY, "N3w-Secure-Passphrase"));
    let after = sim.tenant().user(RISKY).unwrap().last_password_change;
    assert!(after > before);
    assert!(r["read"]["body"]["lastPasswordChangeDateTime"].is_string());

    // A write part is judged as a direct write: the same weak password is refused.
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [
            {"id": "1", "method": "PATCH", "url": format!("/users/{ADELE}"),
             "headers": {"content-type": "application/json"},
             "body": {"passwordProfile": {"password": "short1A"}}},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(by_id(&b)["1"]["status"], 400);
    sim.stop().await;
}

#[tokio::test]
async fn a_failed_dependency_is_424_and_never_reaches_the_tenant() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let missing = "00000000-0000-4000-8000-0000000000ff";
    sim.clear_requests();
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [
            {"id": "1", "method": "GET", "url": format!("/users/{missing}")},
            {"id": "2", "method": "POST", "dependsOn": ["1"],
             "url": format!("/users/{ADELE}/revokeSignInSessions")},
            // Transitively: 2 did not succeed either.
            {"id": "3", "method": "GET", "dependsOn": ["2"], "url": "/organization"},
            {"id": "4", "method": "GET", "url": "/domains"},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = by_id(&b);
    assert_eq!(r["1"]["status"], 404);
    for id in ["2", "3"] {
        assert_eq!(r[id]["status"], 424, "{b}");
        assert_eq!(error_code(&r[id]["body"]), "FailedDependency");
        assert!(r[id]["body"]["error"]["innerError"]["date"].is_string());
    }
    assert_eq!(r["4"]["status"], 200);
    let reached: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.batch_part)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(reached.len(), 2, "{reached:?}");
    assert!(
        reached
            .iter()
            .all(|p| !p.contains("revokeSignInSessions") && !p.contains("organization")),
        "{reached:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn faults_land_on_their_part_and_the_batch_still_succeeds() {
    let sim = start().await;
    let t = app_token(&sim).await;
    // Through the fault control API, as scripts inject them.
    let fault = json!({"method": "GET", "path_contains": "/transitiveMemberOf", "times": 1,
                       "kind": {"type": "too_many_requests", "retry_after": "7"}});
    let status = client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&fault)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: "/organization".into(),
        kind: FaultKind::DropConnection,
        times: 1,
    });
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [
            {"id": "user", "method": "GET", "url": format!("/users/{ADELE}?$select=id")},
            {"id": "groups", "method": "GET", "url": format!("/users/{ADELE}/transitiveMemberOf")},
            {"id": "org", "method": "GET", "url": "/organization"},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = by_id(&b);
    assert_eq!(r["user"]["status"], 200);
    assert_eq!(r["groups"]["status"], 429, "{b}");
    assert_eq!(r["groups"]["headers"]["Retry-After"], "7");
    assert_eq!(error_code(&r["groups"]["body"]), "TooManyRequests");
    assert_eq!(
        r["org"]["status"], 504,
        "no answer is the part's gateway timeout"
    );
    assert_eq!(error_code(&r["org"]["body"]), "gatewayTimeout");

    // A fault on the batch itself is the batch's.
    sim.add_fault(Fault {
        method: None,
        path_contains: "/$batch".into(),
        kind: FaultKind::Status(503),
        times: 1,
    });
    let (s, _) = batch(
        &sim,
        &t,
        &json!({"requests": [{"id": "1", "method": "GET", "url": "/organization"}]}),
    )
    .await;
    assert_eq!(s, 503);
    sim.stop().await;
}

#[tokio::test]
async fn a_forged_marker_does_not_make_a_batch_part() {
    let sim = start().await;
    let t = app_token(&sim).await;
    sim.clear_requests();
    let (s, _, _) = graph(
        &sim,
        &t,
        reqwest::Method::GET,
        "/organization",
        None,
        &[("x-latchkey-sim-batch-part", "guessed")],
    )
    .await;
    assert_eq!(s, 200);
    // Inside a batch, a part's own marker is dropped in favour of the simulator's.
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [{"id": "1", "method": "GET", "url": "/domains",
                              "headers": {"X-Latchkey-Sim-Batch-Part": "guessed"}}]}),
    )
    .await;
    assert_eq!((s, &by_id(&b)["1"]["status"]), (200, &json!(200)), "{b}");
    let reqs = sim.requests();
    let direct = &reqs[0];
    assert!(!direct.batch_part);
    assert_eq!(direct.header("x-latchkey-sim-batch-part"), Some("guessed"));
    let flags: Vec<(&str, bool)> = reqs
        .iter()
        .map(|r| (r.path.as_str(), r.batch_part))
        .collect();
    assert_eq!(
        flags,
        [
            ("/v1.0/organization", false),
            ("/v1.0/$batch", false),
            ("/v1.0/domains", true)
        ]
    );
    assert_eq!(reqs[2].header("x-latchkey-sim-batch-part"), None);

    // The summary record keeps the flag: load runs count requests by it.
    sim.record_summary_only(true);
    sim.clear_requests();
    let (s, b) = batch(
        &sim,
        &t,
        &json!({"requests": [{"id": "1", "method": "GET", "url": "/domains"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let flags: Vec<bool> = sim.requests().iter().map(|r| r.batch_part).collect();
    assert_eq!(flags, [false, true]);
    sim.stop().await;
}
