//! A cloud account asked to be unlocked: the page says what Entra does, with the tenant's own
//! smart lockout, and leads to a new password in the same flow without a second verification.

use latchkey::demo;
use latchkey_entra_sim::SignInOutcome;
use latchkey_store::{AuditQuery, Outcome};

use crate::security::verified;

const ADELE: &str = "adele.vance@contoso.com";

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_unlock_says_what_entra_does_and_leads_to_a_reset() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    let page = b.post("/unlock", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The demo tenant keeps Entra's smart lockout defaults: 10 wrong passwords, one minute.
    assert!(
        page.body
            .contains("lock for a minute after 10 wrong passwords"),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/reset\""), "{}", page.body);
    // Nothing was unlocked, so nothing is counted as an unlock.
    let events = demo
        .store
        .audit_events(&AuditQuery {
            event_type: Some("unlock".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.outcome, Outcome::Denied);
    // The same verification sets a new password.
    let form = b.get("/reset").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let new = "Quiet-Maple-Harbour-77";
    let done = b
        .post(
            "/reset",
            &[("csrf", &form.csrf()), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(demo.sim.sign_in(ADELE, new), SignInOutcome::Success);
    // The sign-in page is a link now, not text.
    assert!(
        done.body
            .contains("href=\"https://myaccount.microsoft.com\""),
        "{}",
        done.body
    );
    demo.stop().await;
}
