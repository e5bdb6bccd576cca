//! Secrets at rest (docs/security.md): an OpenID Connect sign-in attempt's `state`, `nonce` and PKCE
//! verifier wait server-side in a store flow, sealed with the at-rest key, never in `flows.data`
//! in clear; a sealed attempt copied into another flow's row does not open. Read from the raw
//! SQLite file the demo portal writes, for the enrollment sign-in and the console sign-in.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::demo::{self, Demo};
use latchkey_graph::delegated::Pkce;
use rusqlite::Connection;
use url::Url;

use crate::portal::Browser;

const BEN: (&str, &str) = ("ben.okafor@contoso.com", "Ben-Demo-2024!");
const EVA: (&str, &str) = ("it.admin@contoso.com", "Eva-Demo-2024!");

async fn demo() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("demo starts")
}

/// The demo's SQLite file (next to its configuration).
fn database(demo: &Demo) -> PathBuf {
    demo.config_path.parent().unwrap().join("latchkey.db")
}

async fn connect(demo: &Demo) -> Connection {
    let db = Connection::open(database(demo)).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db
}

/// One raw `flows` row: its id and every text column joined (what a copy of the database shows).
struct RawFlow {
    id: String,
    data: String,
    text: String,
}

/// The raw rows of the flows of `purpose`, oldest first.
async fn raw_flows(demo: &Demo, purpose: &str) -> Vec<RawFlow> {
    let db = connect(demo).await;
    let mut stmt = db
        .prepare(
            "SELECT id, subject, purpose, step, verified, data FROM flows \
             WHERE purpose = ? ORDER BY created_at_ms, rowid",
        )
        .unwrap();
    stmt.query_map([purpose], |r| {
        let cols: Vec<String> = (0..6)
            .map(|i| r.get::<_, String>(i))
            .collect::<Result<_, _>>()?;
        Ok(RawFlow {
            id: cols[0].clone(),
            data: cols[5].clone(),
            text: cols.join("\n"),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Whether `text` holds a PKCE verifier whose S256 challenge is `challenge`: every run of the
/// verifier alphabet (RFC 7636: 43 to 128 unreserved characters) is hashed and compared.
fn holds_verifier(text: &str, challenge: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-._~".contains(c)))
        .filter(|run| (43..=128).contains(&run.len()))
        .any(|run| {
            let digest = ring::digest::digest(&ring::digest::SHA256, run.as_bytes());
            URL_SAFE_NO_PAD.encode(digest) == challenge
        })
}

fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Submits the simulator's sign-in form for `authorize` as `who`; returns the portal path (with
/// query) the simulator redirects back to.
async fn idp_sign_in(authorize: &Url, who: (&str, &str)) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut fields: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    fields.push(("username".into(), who.0.into()));
    fields.push(("password".into(), who.1.into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let resp = http.post(action).form(&fields).send().await.unwrap();
    assert_eq!(resp.status(), 302, "sign-in at the simulator failed");
    let back = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    format!("{}?{}", back.path(), back.query().unwrap_or_default())
}

#[test]
fn the_verifier_detector_finds_a_verifier_in_clear() {
    // Guards the test below against passing vacuously: the old layout is caught.
    let pkce = Pkce::generate().unwrap();
    let old = serde_json::json!({ "state": "s", "verifier": pkce.verifier().expose() });
    assert!(holds_verifier(&old.to_string(), pkce.challenge()));
    assert!(!holds_verifier(
        &old.to_string(),
        Pkce::generate().unwrap().challenge()
    ));
}

#[tokio::test]
async fn signin_attempt_secrets_are_sealed_in_the_flows_row() {
    let demo = demo().await;
    for (home, purpose, who) in [
        ("/enroll", "signin", BEN),
        ("/admin", "console-signin", EVA),
    ] {
        let mut b = Browser::new(&demo);
        let start = b.get(home).await;
        assert_eq!(start.status, 303, "{home}: {}", start.body);
        let authorize = Url::parse(start.location.as_deref().unwrap()).unwrap();
        let q = query_of(&authorize);
        let (state, nonce, challenge) = (&q["state"], &q["nonce"], &q["code_challenge"]);
        assert!(state.len() >= 20 && nonce.len() >= 20, "{q:?}");

        let rows = raw_flows(&demo, purpose).await;
        assert_eq!(rows.len(), 1, "{home}: one attempt row");
        let row = &rows[0];
        assert!(!row.text.contains(nonce.as_str()), "{home}: nonce in clear");
        assert!(!row.text.contains(state.as_str()), "{home}: state in clear");
        assert!(
            !holds_verifier(&row.text, challenge),
            "{home}: PKCE verifier in clear"
        );
        let data: serde_json::Value = serde_json::from_str(&row.data).unwrap();
        for key in ["state", "nonce", "verifier"] {
            assert!(data.get(key).is_none(), "{home}: {key} in {data}");
        }
        assert!(data["sealed"].is_string(), "{home}: {data}");

        // The sealed attempt still carries the sign-in through, and it is single use.
        let back = idp_sign_in(&authorize, who).await;
        let page = b.get(&back).await;
        assert_eq!(page.status, 200, "{home}: {}", page.body);
        assert!(raw_flows(&demo, purpose).await.is_empty(), "{home}: ended");
        assert_eq!(b.get(&back).await.status, 400, "{home}: replayed callback");
    }
    demo.stop().await;
}

#[tokio::test]
async fn a_sealed_attempt_copied_to_another_row_does_not_open() {
    let demo = demo().await;
    // Two console sign-ins; the attacker copies B's sealed attempt into A's row and brings A's
    // cookie to the callback B's sign-in produces.
    let mut a = Browser::new(&demo);
    assert_eq!(a.get("/admin").await.status, 303);
    let a_id = raw_flows(&demo, "console-signin").await[0].id.clone();
    let mut b = Browser::new(&demo);
    let start = b.get("/admin").await;
    assert_eq!(start.status, 303);
    let authorize = Url::parse(start.location.as_deref().unwrap()).unwrap();
    let rows = raw_flows(&demo, "console-signin").await;
    assert_eq!(rows.len(), 2);
    let b_row = rows.iter().find(|r| r.id != a_id).unwrap();

    let db = connect(&demo).await;
    let copied = db
        .execute(
            "UPDATE flows SET data = ? WHERE id = ?",
            [&b_row.data, &a_id],
        )
        .unwrap();
    assert_eq!(copied, 1);

    let back = idp_sign_in(&authorize, EVA).await;
    let refused = a.get(&back).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(!a.has_cookie("latchkey-admin"), "A got a session");
    // B's own attempt is intact and its code unspent: the refusal was the binding's.
    let page = b.get(&back).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(b.get("/admin").await.status, 200);
    demo.stop().await;
}
