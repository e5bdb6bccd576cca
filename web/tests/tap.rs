//! Self-service Temporary Access Pass: offered only where the policy allows the action, issued
//! once after full verification, shown once, audited, notified, and the flow ends.

use std::path::PathBuf;
use std::sync::Arc;

use latchkey::demo::{self, Demo, DemoOptions};

use crate::portal::{Browser, code_for, totp_for};

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";

async fn start(options: DemoOptions) -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("demo starts")
}

/// Replaces the running policy set: the demo's "Staff" policy with `actions`.
pub fn set_actions(demo: &Demo, actions: &str) {
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [{actions}]\nmethods = [\"email\", \"totp\", \"sms\"]\nmethods_required = 2\n"
    );
    let set = latchkey_policy::parse_sources(&[(PathBuf::from("test.toml"), text)]).unwrap();
    *demo.services.policies.write().unwrap() = Arc::new(set);
}

/// Adele through email + TOTP: the browser at /action.
pub async fn verified(demo: &Demo) -> Browser {
    let mut b = Browser::new(demo);
    assert_eq!(b.identify(ADELE).await.status, 303);
    b.ask_code("email").await;
    let code = code_for(demo, ADELE_MAIL).await.unwrap();
    b.submit_code("email", &code).await;
    let totp = totp_for(&mut b, ADELE).await;
    assert_eq!(
        b.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );
    b
}

fn tap_requests(demo: &Demo) -> usize {
    demo.sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/temporaryAccessPassMethods"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_user_gets_a_one_time_pass_shown_once_audited_and_notified() {
    let demo = start(DemoOptions::default()).await;
    set_actions(&demo, "\"reset\", \"temporary_access_pass\"");
    let mut b = verified(&demo).await;
    let action = b.get("/action").await;
    assert!(action.body.contains("action=\"/tap\""), "{}", action.body);
    let csrf = action.csrf();
    let page = b.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let pass = page
        .body
        .split("id=\"tap-pass\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert!(pass.len() >= 8, "{}", page.body);
    assert_eq!(tap_requests(&demo), 1);
    // One-time use, the tenant's default lifetime: exactly what Graph was asked.
    let req = demo
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/temporaryAccessPassMethods"))
        .unwrap();
    assert_eq!(req.body, r#"{"isUsableOnce":true}"#);
    // Audited without the pass; the flow is over (its cookie is gone, /action starts over).
    let events = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let tap = events
        .iter()
        .find(|e| e.event.event_type == "temporary_access_pass")
        .expect("audited");
    assert_eq!(tap.event.outcome, latchkey_store::Outcome::Success);
    assert!(
        !format!("{events:?}").contains(&pass),
        "the pass reached the audit trail"
    );
    assert_eq!(b.get("/action").await.location.as_deref(), Some("/"));
    let again = b.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 303, "a second pass from the same flow");
    assert_eq!(tap_requests(&demo), 1);
    // The user is told on their channels, without the pass.
    let mut told = None;
    for _ in 0..100 {
        told = demo
            .outbox
            .messages()
            .into_iter()
            .find(|m| m.to == ADELE_MAIL && m.body.contains("Temporary Access Pass"));
        if told.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let told = told.expect("TAP notice");
    assert!(!told.body.contains(&pass));
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_action_the_pass_is_neither_offered_nor_issued() {
    let demo = start(DemoOptions::default()).await;
    let mut b = verified(&demo).await;
    let action = b.get("/action").await;
    assert!(!action.body.contains("action=\"/tap\""));
    let csrf = action.csrf();
    let refused = b.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(tap_requests(&demo), 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_is_checked_again_right_before_the_pass_is_issued() {
    let demo = start(DemoOptions::default()).await;
    set_actions(&demo, "\"reset\", \"temporary_access_pass\"");
    let mut b = verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    // The admin withdraws the action while the user is on the page.
    set_actions(&demo, "\"reset\"");
    assert_eq!(b.post("/tap", &[("csrf", &csrf)]).await.status, 403);
    assert_eq!(tap_requests(&demo), 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_and_verification_are_required() {
    let demo = start(DemoOptions::default()).await;
    set_actions(&demo, "\"reset\", \"temporary_access_pass\"");
    let mut b = verified(&demo).await;
    assert_eq!(b.post("/tap", &[("csrf", "forged")]).await.status, 403);
    // Half verified: back to /verify, nothing issued.
    let mut half = Browser::new(&demo);
    half.identify(ADELE).await;
    let csrf = half.get("/verify").await.csrf();
    let r = half.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(r.location.as_deref(), Some("/verify"));
    assert_eq!(tap_requests(&demo), 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_that_disabled_the_pass_gets_a_clear_page_and_an_audited_failure() {
    let mut fixture = latchkey_entra_sim::Fixture::demo();
    fixture.tap_policy.enabled = false;
    let demo = start(DemoOptions {
        fixture,
        ..DemoOptions::default()
    })
    .await;
    set_actions(&demo, "\"reset\", \"temporary_access_pass\"");
    let mut b = verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    let page = b.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("cannot be issued"), "{}", page.body);
    assert!(
        demo.audit_types()
            .await
            .contains(&"temporary_access_pass".to_string())
    );
    demo.stop().await;
}
