//! Synced (on-premises-mastered) users reset through the delegated `resetPassword` with its
//! long-running operation; `latchkey delegate` keeps the refresh token encrypted and rotated.

use latchkey::demo::{self, Demo};
use latchkey_entra_sim::SignInOutcome;

use crate::portal::{Browser, code_for};

const CARLA: &str = "carla.mendes@contoso.com";
const CARLA_MAIL: &str = "carla.mendes@outlook.example";
const CARLA_OLD: &str = "Carla-Demo-2024!";
const NEW: &str = "Amber-Lantern-Orchard-58";

async fn demo() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("demo starts")
}

async fn sms_code(demo: &Demo) -> String {
    for to in ["+351912345678", "+351 912345678"] {
        if let Some(c) = code_for(demo, to).await {
            return c;
        }
    }
    panic!("no text message code: {:?}", demo.outbox.messages());
}

/// Carla (synced, enrolled email + text) verified, then the new password submitted.
async fn carla_resets(demo: &Demo) -> crate::portal::Page {
    let mut b = Browser::new(demo);
    assert_eq!(b.identify(CARLA).await.status, 303);
    b.ask_code("email").await;
    let code = code_for(demo, CARLA_MAIL).await.unwrap();
    assert_eq!(
        b.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    b.ask_code("sms").await;
    let code = sms_code(demo).await;
    assert_eq!(
        b.submit_code("sms", &code).await.location.as_deref(),
        Some("/action")
    );
    let csrf = b.get("/reset").await.csrf();
    b.post(
        "/reset",
        &[("csrf", &csrf), ("password", NEW), ("confirm", NEW)],
    )
    .await
}

async fn audit_reasons(demo: &Demo) -> Vec<String> {
    let query = latchkey_store::AuditQuery {
        limit: 1000,
        ..Default::default()
    };
    demo.store
        .audit_events(&query)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.event_type == "reset")
        .filter_map(|r| r.event.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synced_user_resets_through_delegated_reset_password_with_writeback() {
    let demo = demo().await;
    demo.sim.clear_requests();
    let done = carla_resets(&demo).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert!(
        done.body.contains("written back to your organisation"),
        "{}",
        done.body
    );
    let requests = demo.sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/resetPassword") && r.status == 202),
        "resetPassword was not called"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/authentication/operations/")),
        "the long-running operation was not polled"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "PATCH" && r.body.contains("passwordProfile")),
        "passwordProfile must not be used for a synced user"
    );
    assert_eq!(demo.sim.sign_in(CARLA, NEW), SignInOutcome::Success);
    assert_ne!(demo.sim.sign_in(CARLA, CARLA_OLD), SignInOutcome::Success);
    assert!(
        audit_reasons(&demo)
            .await
            .iter()
            .any(|r| r.contains("delegated resetPassword")),
        "the path used is audited"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_writeback_shows_a_clear_page_and_changes_nothing() {
    let demo = demo().await;
    demo.sim.tenant().set_password_writeback(false);
    let failed = carla_resets(&demo).await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(
        failed
            .body
            .contains("could not be written to your organisation"),
        "{}",
        failed.body
    );
    assert!(!failed.body.contains("Your password has been changed"));
    assert_eq!(demo.sim.sign_in(CARLA, CARLA_OLD), SignInOutcome::Success);
    assert_ne!(demo.sim.sign_in(CARLA, NEW), SignInOutcome::Success);
    assert!(
        audit_reasons(&demo)
            .await
            .iter()
            .any(|r| r.contains("operation failed")),
        "the failure is audited"
    );
    demo.stop().await;
}

/// A configuration for the demo's tenant with a key file and a token file in `dir`.
fn delegated_config(demo: &Demo, dir: &std::path::Path) -> latchkey::config::Settings {
    let base = std::fs::read_to_string(&demo.config_path).unwrap();
    let path = dir.join("latchkey.toml");
    std::fs::write(
        &path,
        format!(
            "{base}\n[store]\nkey_file = \"latchkey.key\"\n\n[delegated]\ntoken_file = \"delegated.token\"\n"
        ),
    )
    .unwrap();
    latchkey::config::Settings::load(&path).unwrap()
}

/// Plays the admin's browser: opens the authorize URL, signs in, follows the redirect to the
/// command's loopback listener.
async fn admin_browser(url: url::Url) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(browser.get(url.clone()).send().await.unwrap().status(), 200);
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("username".into(), "helpdesk@contoso.com".into()));
    form.push(("password".into(), "Farid-Demo-2024!".into()));
    let mut post = url.clone();
    post.set_query(None);
    let resp = browser.post(post).form(&form).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let back = browser
        .get(location.replace("http://localhost:", "http://127.0.0.1:"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn delegate_stores_the_refresh_token_encrypted_and_rotation_replaces_it() {
    let demo = demo().await;
    let dir = std::env::temp_dir().join(format!(
        "latchkey-delegate-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = delegated_config(&demo, &dir);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let browser = tokio::spawn(async move { admin_browser(rx.await.unwrap()).await });
    let path = latchkey::delegate::obtain(&settings, 0, |url| {
        tx.send(url.clone()).unwrap();
    })
    .await
    .unwrap();
    browser.await.unwrap();
    assert_eq!(path, dir.join("delegated.token"));

    // The redeemed refresh token, as the simulator issued it, is nowhere in the file.
    let token_response = demo
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .unwrap();
    assert!(token_response.body.contains("authorization_code"));
    let file = latchkey::delegate::TokenFile::of(&settings)
        .unwrap()
        .unwrap();
    let stored = file.load().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!stored.expose().is_empty());
    assert!(!text.contains(stored.expose().as_str()), "plaintext token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    // Another key cannot open it.
    std::fs::remove_file(dir.join("latchkey.key")).unwrap();
    assert!(
        latchkey::delegate::TokenFile::of(&settings)
            .unwrap()
            .unwrap()
            .load()
            .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let settings = delegated_config(&demo, &dir);

    // Rotation: the first refresh returns a new refresh token, which replaces the stored one.
    let file = latchkey::delegate::TokenFile::of(&settings)
        .unwrap()
        .unwrap();
    let _ = stored_token_from_fresh_sign_in(&settings).await;
    let before = file.load().unwrap();
    let client = latchkey::delegate::client(&settings).unwrap().unwrap();
    client.token_claims().await.unwrap();
    let after = file.load().unwrap();
    assert_ne!(
        before.expose(),
        after.expose(),
        "the rotated token is stored"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(after.expose().as_str()));
    let refresh = demo
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .unwrap();
    assert!(refresh.body.contains("refresh_token"));
    let _ = std::fs::remove_dir_all(&dir);
    demo.stop().await;
}

/// A fresh refresh token through the delegate command's own flow.
async fn stored_token_from_fresh_sign_in(
    settings: &latchkey::config::Settings,
) -> latchkey_types::Secret<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let browser = tokio::spawn(async move { admin_browser(rx.await.unwrap()).await });
    latchkey::delegate::obtain(settings, 0, |url| {
        tx.send(url.clone()).unwrap();
    })
    .await
    .unwrap();
    browser.await.unwrap();
    latchkey::delegate::TokenFile::of(settings)
        .unwrap()
        .unwrap()
        .load()
        .unwrap()
}
