//! docs/security.md, principle 8, "After a change": a password reset signs the user out everywhere
//! (Graph `revokeSignInSessions`) unless the policy turns it off; a refusal is audited and shown,
//! but the reset stands.

use std::path::PathBuf;
use std::sync::Arc;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_entra_sim::{Fixture, SignInOutcome};
use latchkey_graph::delegated::PendingAuthorization;
use latchkey_graph::{Credential, GraphClient, GraphConfig, GraphError};
use latchkey_types::Secret;

use crate::portal::{Browser, code_for, totp_for};

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";
pub const NEW: &str = "Quiet-Maple-Harbour-77";

pub async fn start(fixture: Fixture) -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = DemoOptions {
        fixture,
        ..Default::default()
    };
    demo::start_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("demo starts")
}

/// Replaces the running policy set: the demo's "Staff" policy plus `extra` lines.
pub fn set_policy(demo: &Demo, extra: &str) {
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"reset\", \"unlock\"]\nmethods = [\"email\", \"totp\", \"sms\"]\n\
         methods_required = 2\n{extra}"
    );
    let set = latchkey_policy::parse_sources(&[(PathBuf::from("test.toml"), text)]).unwrap();
    *demo.services.policies.write().unwrap() = Arc::new(set);
}

/// Adele verifies with email + TOTP and sets a new password; returns the result page's body.
pub async fn reset(demo: &Demo) -> String {
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
    let csrf = b.get("/reset").await.csrf();
    let done = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", NEW), ("confirm", NEW)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(demo.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
    done.body
}

const DEMO_APP: &str = "22222222-2222-2222-2222-222222222222";
const DEMO_SECRET: &str = "demo-secret-value";
const REDIRECT: &str = "http://localhost/";

fn app_config(demo: &Demo) -> GraphConfig {
    let mut c = GraphConfig::new(
        Fixture::demo().tenant.id,
        DEMO_APP,
        Credential::ClientSecret(Secret::new(DEMO_SECRET.into())),
    );
    c.authority_host = demo.sim.base_url();
    c.graph_base_url = demo.sim.graph_base_url();
    c
}

fn scopes() -> Vec<String> {
    vec!["openid".into(), "offline_access".into(), "User.Read".into()]
}

/// Adele signs in to an app at the simulator's sign-in page (as a browser would) and the app
/// keeps her refresh token: one of the sessions a reset should end.
async fn adele_refresh_token(demo: &Demo, password: &str) -> Secret<String> {
    let cfg = app_config(demo);
    let pending = PendingAuthorization::new(REDIRECT, scopes()).unwrap();
    let url = pending.authorize_url(&cfg).unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("username".into(), ADELE.into()));
    form.push(("password".into(), password.into()));
    let mut post = url.clone();
    post.set_query(None);
    let resp = browser.post(post).form(&form).send().await.unwrap();
    assert!(resp.status().is_redirection(), "sign-in: {}", resp.status());
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    pending
        .redeem(&cfg, &Secret::new(code))
        .await
        .unwrap()
        .refresh_token
        .expect("offline_access gives a refresh token")
}

/// Redeems `rt` for a new access token.
async fn redeem(demo: &Demo, rt: Secret<String>) -> Result<(), GraphError> {
    GraphClient::with_delegated(app_config(demo), rt, scopes(), None)
        .unwrap()
        .token_claims()
        .await
        .map(|_| ())
}

fn revocations(demo: &Demo) -> Vec<latchkey_entra_sim::RecordedRequest> {
    demo.sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/revokeSignInSessions") && !r.batch_part)
        .collect()
}

/// `(outcome, reason)` of the `sessions.revoke` audit events.
async fn revoke_events(demo: &Demo) -> Vec<(String, Option<String>)> {
    crate::helpers::audit_of(demo, "sessions.revoke")
        .await
        .into_iter()
        .map(|e| (format!("{:?}", e.outcome), e.reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn principle_8_a_reset_signs_the_user_out_everywhere_by_default() {
    let demo = start(Fixture::demo()).await;
    let before = adele_refresh_token(&demo, "Adele-Demo-2024!").await;
    redeem(&demo, before.clone())
        .await
        .expect("good before the reset");
    let body = reset(&demo).await;
    let adele = demo.sim.tenant().user_id(ADELE).unwrap();
    let calls = revocations(&demo);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(
        calls[0].path,
        format!("/v1.0/users/{adele}/revokeSignInSessions")
    );
    assert_eq!(calls[0].status, 200);
    assert!(body.contains("signed out of your other apps"), "{body}");
    let events = revoke_events(&demo).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "Success", "{events:?}");
    // The app holding Adele's old refresh token can no longer use it; a new sign-in works.
    let e = redeem(&demo, before).await.unwrap_err();
    match e.root() {
        GraphError::Token(t) => assert!(t.has_code(50173), "{t:?}"),
        other => panic!("expected a token error, got {other:?}"),
    }
    let after = adele_refresh_token(&demo, NEW).await;
    redeem(&demo, after).await.expect("a fresh sign-in works");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_with_revoke_sessions_off_does_not_sign_out() {
    let demo = start(Fixture::demo()).await;
    set_policy(&demo, "revoke_sessions = false\n");
    let body = reset(&demo).await;
    assert!(revocations(&demo).is_empty(), "{:?}", revocations(&demo));
    assert!(revoke_events(&demo).await.is_empty());
    assert!(!body.contains("signed out"), "{body}");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_permission_the_reset_stands_and_the_failure_is_audited() {
    let mut fixture = Fixture::demo();
    for app in &mut fixture.apps {
        app.application_permissions
            .retain(|p| p != "User.RevokeSessions.All");
    }
    let demo = start(fixture).await;
    let body = reset(&demo).await;
    let calls = revocations(&demo);
    assert_eq!(calls.len(), 1, "tried once, not retried: {calls:?}");
    assert_eq!(calls[0].status, 403);
    assert!(
        body.contains("could not sign you out of your other apps"),
        "{body}"
    );
    let events = revoke_events(&demo).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "Failure", "{events:?}");
    let reason = events[0].1.as_deref().unwrap_or_default();
    assert!(
        reason.contains("403") && reason.contains("Authorization_RequestDenied"),
        "{reason}"
    );
    // The reset itself is audited as a success.
    assert!(demo.audit_types().await.contains(&"reset".to_string()));
    demo.stop().await;
}
