//! State tokens: tampering, `$select` with a token, expiry (410 / 400) and reset.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn tampered_or_foreign_tokens_are_400() {
    let (sim, t) = start_delta().await;
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        "/users/delta",
        None,
        &[("Prefer", "odata.maxpagesize=2")],
    )
    .await;
    assert_eq!(s, 200);
    let next = b["@odata.nextLink"].as_str().unwrap().to_owned();
    let token = next.split("$skiptoken=").nth(1).unwrap();
    let flipped: String = token
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 5 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    let (s, _, b) = graph_get(&sim, &t, &format!("/users/delta?$skiptoken={flipped}")).await;
    assert_eq!(s, 400, "{b}");
    let (s, _, _) = graph_get(&sim, &t, "/users/delta?$deltatoken=nonsense").await;
    assert_eq!(s, 400);
    // A users token on groups.
    let (s, _, _) = graph_get(&sim, &t, &format!("/groups/delta?$skiptoken={token}")).await;
    assert_eq!(s, 400);
    // The same $select again passes; a different one is refused.
    let (_, _, b) = graph_get(
        &sim,
        &t,
        "/users/delta?$select=displayName&$deltatoken=latest",
    )
    .await;
    let delta = b["@odata.deltaLink"].as_str().unwrap().to_owned();
    let (s, _, _) = graph_get(&sim, &t, &format!("{delta}&$select=displayName")).await;
    assert_eq!(s, 200);
    let (s, _, b) = graph_get(&sim, &t, &format!("{delta}&$select=mail")).await;
    assert_eq!(s, 400, "{b}");
    // Tokens of another simulator run are not this one's.
    let (other, ot) = start_delta().await;
    let (s, _, _) = graph_get(
        &other,
        &ot,
        &delta.replace(&sim.graph_base_url(), &other.graph_base_url()),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn expired_delta_link_is_410_with_the_initial_url() {
    let (sim, t) = start_delta().await;
    let url = "/users/delta?$select=displayName,mail";
    let (_, delta, _) = walk(&sim, &t, url, &[]).await;
    sim.tenant().advance_time(Duration::from_secs(6 * 86_400));
    let t = app_token(&sim).await;
    let (_, delta, _) = walk(&sim, &t, &delta, &[]).await;
    sim.tenant()
        .advance_time(Duration::from_secs(7 * 86_400 + 60));
    let t = app_token(&sim).await;
    let (s, h, b) = graph_get(&sim, &t, &delta).await;
    assert_eq!(s, 410, "{b}");
    assert_eq!(b["error"]["code"], "resyncRequired");
    let location = h["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!(
            "{}/users/delta?%24select=displayName%2Cmail",
            sim.graph_base_url()
        )
    );
    // The Location starts a full round with the same $select.
    let (items, _, _) = walk(&sim, &t, location, &[]).await;
    assert_eq!(items.len(), all_user_ids(&sim, &t).await.len());
    assert_eq!(items[0].as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn reset_makes_every_token_stale_and_the_400_variant() {
    let (sim, t) = start_delta().await;
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        "/groups/delta?$select=members",
        None,
        &[("Prefer", "odata.maxpagesize=1")],
    )
    .await;
    assert_eq!(s, 200);
    let next = b["@odata.nextLink"].as_str().unwrap().to_owned();
    let (_, delta, _) = walk(&sim, &t, "/users/delta", &[]).await;
    let c = client();
    let r = c
        .post(format!("{}/_sim/delta/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, h, b) = graph_get(&sim, &t, &next).await;
    assert_eq!(s, 410, "a nextLink too: {b}");
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("{}/groups/delta?%24select=members", sim.graph_base_url())
    );
    let (s, _, _) = graph_get(&sim, &t, &delta).await;
    assert_eq!(s, 410);

    // The older documented answer, switched on at run time.
    let r = c
        .put(format!("{}/_sim/delta", sim.base_url()))
        .json(&json!({"expired_status": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, h, b) = graph_get(&sim, &t, &delta).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], "syncStateNotFound");
    assert!(h.get("location").is_none());
    let r = c
        .get(format!("{}/_sim/delta", sim.base_url()))
        .send()
        .await
        .unwrap();
    let settings: serde_json::Value = r.json().await.unwrap();
    assert_eq!(settings["expired_status"], 400);
    assert_eq!(settings["page_size"], 200);
    // Fresh tokens work again.
    let (_, delta, _) = walk(&sim, &t, "/users/delta", &[]).await;
    let (s, _, _) = graph_get(&sim, &t, &delta).await;
    assert_eq!(s, 200);
}
