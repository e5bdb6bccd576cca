//! Synced (on-premises-mastered) users reset through the delegated `resetPassword` with its
//! long-running operation; `latchkey delegate` keeps the refresh token encrypted and rotated.

use latchkey::demo::{self, Demo};
use latchkey_entra_sim::SignInOutcome;

use crate::portal::Browser;

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

const CARLA_PHONES: [&str; 2] = ["+351912345678", "+351 912345678"];

/// The code in a message to one of `to` that arrived after the outbox held `seen` messages (a
/// test may verify Carla twice; the earlier codes are used up).
async fn fresh_code(demo: &Demo, to: &[&str], seen: usize) -> String {
    for _ in 0..100 {
        let all = demo.outbox.messages(); // newest first
        let new = all.len().saturating_sub(seen);
        if let Some(m) = all
            .iter()
            .take(new)
            .find(|m| to.contains(&m.to.as_str()) && m.body.contains("code"))
        {
            return m
                .body
                .split(|c: char| !c.is_ascii_digit())
                .find(|s| s.len() >= 6)
                .unwrap_or_default()
                .to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no new code to {to:?}: {:?}", demo.outbox.messages());
}

/// Carla (synced, enrolled email + text) verified, then the new password submitted.
async fn carla_resets(demo: &Demo) -> crate::portal::Page {
    let mut b = Browser::new(demo);
    assert_eq!(b.identify(CARLA).await.status, 303);
    let seen = demo.outbox.messages().len();
    b.ask_code("email").await;
    let code = fresh_code(demo, &[CARLA_MAIL], seen).await;
    assert_eq!(
        b.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    let seen = demo.outbox.messages().len();
    b.ask_code("sms").await;
    let code = fresh_code(demo, &CARLA_PHONES, seen).await;
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

/// A portal whose `[delegated]` token file does not exist yet runs without writeback (synced
/// users are refused); an admin's delegated sign-in on the console's connection page stores the
/// credential and puts it in force at once: the next synced reset goes through the delegated
/// `resetPassword`, without a restart.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_delegated_sign_in_enables_writeback_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start_without_writeback("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .expect("demo starts");
    let token_file = demo.config_path.parent().unwrap().join("delegated.token");
    assert!(!token_file.exists());

    // Not set up: Carla's reset is refused and nothing reaches the directory.
    demo.sim.clear_requests();
    let refused = carla_resets(&demo).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        !demo
            .sim
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/resetPassword")),
        "no resetPassword without the delegated credential"
    );
    assert!(
        audit_reasons(&demo)
            .await
            .iter()
            .any(|r| r.contains("no writeback path")),
        "the refusal is audited"
    );
    assert_eq!(demo.sim.sign_in(CARLA, CARLA_OLD), SignInOutcome::Success);

    // The admin sees "not set up" and signs the Authentication Administrator in.
    let mut admin = Browser::new(&demo);
    crate::admin::sign_in(&demo, &mut admin, "/admin", crate::admin::EVA).await;
    let page = admin.get("/admin/connection").await;
    assert!(page.body.contains("Not set up"), "{}", page.body);
    let start = admin
        .post("/admin/connection/delegate", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = url::Url::parse(start.location.as_deref().unwrap()).unwrap();
    let back = crate::admin::idp_sign_in(&authorize, crate::admin::FARID).await;
    let done = admin.get(&back).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("synced users can reset"),
        "{}",
        done.body
    );
    assert!(token_file.exists());
    let page = admin.get("/admin/connection").await;
    assert!(!page.body.contains("Not set up"), "{}", page.body);

    // Same process, no restart: the reset now goes through the delegated resetPassword.
    demo.sim.clear_requests();
    let changed = carla_resets(&demo).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(
        changed.body.contains("written back to your organisation"),
        "{}",
        changed.body
    );
    assert!(
        demo.sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/resetPassword") && r.status == 202),
        "resetPassword was not called"
    );
    assert_eq!(demo.sim.sign_in(CARLA, NEW), SignInOutcome::Success);
    assert!(
        audit_reasons(&demo)
            .await
            .iter()
            .any(|r| r.contains("delegated resetPassword")),
        "the path used is audited"
    );
    demo.stop().await;
}
