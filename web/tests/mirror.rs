//! The directory mirror in the running portal (docs/directory-mirror.md): identification reads
//! it instead of Graph, a reset then costs three Graph requests (account and memberships checked
//! live in one `$batch`, the write, the sign-out), a change in the tenant reaches it within one
//! interval, a flow started before the change is refused at the write, and the admin console
//! shows its state and syncs on demand.

use std::time::{Duration, Instant};

use latchkey::config::DirectorySettings;
use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_entra_sim::SignInOutcome;
use latchkey_types::ObjectId;

use crate::portal::{Browser, code_for, totp_for};
use crate::signout::{NEW, set_policy};
use crate::tap::verified;

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";
const INTERVAL: u64 = 10;

async fn start() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = DemoOptions {
        mirror: Some(DirectorySettings {
            sync_interval_seconds: INTERVAL,
            ..Default::default()
        }),
        ..Default::default()
    };
    let demo = demo::start_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("demo starts");
    // Only Latchkey enrollments count: identification then needs nothing but the directory.
    // No risk dismissal: it reads Identity Protection after the change (one more request,
    // when a policy asks for it).
    set_policy(&demo, "dismiss_risk = false\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !usable(&demo).await {
        assert!(
            Instant::now() < deadline,
            "the first full round never completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    demo
}

async fn usable(demo: &Demo) -> bool {
    let mirror = demo.services.mirror.as_ref().expect("the mirror is on");
    mirror.touch();
    mirror.freshness().await.unwrap().usable()
}

/// Graph requests (method and path, ids replaced) recorded since the last clear.
fn graph_requests(demo: &Demo) -> Vec<String> {
    recorded(demo, false)
}

/// The requests `$batch` requests carried (each still counts against Graph's throttling).
fn batch_parts(demo: &Demo) -> Vec<String> {
    recorded(demo, true)
}

fn recorded(demo: &Demo, batch_parts: bool) -> Vec<String> {
    demo.sim
        .requests()
        .into_iter()
        .filter(|r| {
            r.path.starts_with("/v1.0/")
                && !r.path.contains("/delta")
                && r.batch_part == batch_parts
        })
        .map(|r| {
            let path: Vec<String> = r
                .path
                .split('/')
                .map(|s| {
                    if s.parse::<ObjectId>().is_ok() {
                        "{id}".to_string()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            format!("{} {}", r.method, path.join("/"))
        })
        .collect()
}

/// The audit trail's `reset` event (the refusal the tests provoke).
async fn reset_event(demo: &Demo) -> latchkey_store::AuditEvent {
    crate::helpers::audit_of(demo, "reset")
        .await
        .into_iter()
        .next()
        .expect("the refusal is audited")
}

async fn submit_reset(b: &mut Browser) -> crate::portal::Page {
    let csrf = b.get("/reset").await.csrf();
    b.post(
        "/reset",
        &[("csrf", &csrf), ("password", NEW), ("confirm", NEW)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn identification_reads_the_mirror_and_a_reset_costs_three_graph_requests() {
    let demo = start().await;
    // Warm the tenant's password rules (read once, then cached) as any earlier flow would.
    Browser::new(&demo).identify("nobody@contoso.com").await;
    demo.sim.clear_requests();
    let mut b = Browser::new(&demo);
    assert_eq!(b.identify(ADELE).await.status, 303);
    assert_eq!(graph_requests(&demo), Vec::<String>::new(), "identify");
    // An unknown account costs the same: nothing.
    Browser::new(&demo).identify("nobody@contoso.com").await;
    assert_eq!(
        graph_requests(&demo),
        Vec::<String>::new(),
        "unknown account"
    );

    demo.sim.clear_requests();
    b.ask_code("email").await;
    let code = code_for(&demo, ADELE_MAIL).await.unwrap();
    b.submit_code("email", &code).await;
    let totp = totp_for(&mut b, ADELE).await;
    b.submit_code("totp", &totp).await;
    let done = submit_reset(&mut b).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(demo.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
    let mut requests = graph_requests(&demo);
    requests.sort();
    assert_eq!(
        requests,
        vec![
            "PATCH /v1.0/users/{id}",
            "POST /v1.0/$batch",
            "POST /v1.0/users/{id}/revokeSignInSessions",
        ],
        "a completed app-only reset: the live check, the write, the sign-out"
    );
    let mut parts = batch_parts(&demo);
    parts.sort();
    assert_eq!(
        parts,
        vec![
            "GET /v1.0/users/{id}",
            "GET /v1.0/users/{id}/transitiveMemberOf",
        ],
        "the live check: the account and its groups, in one request"
    );
    demo.stop().await;
}

/// A policy that accepts phones and email registered in Entra: the mirror's copy of the
/// registration report says what Kofi registered, so identification still asks Graph nothing;
/// the code's destination is read live when it is sent.
#[tokio::test(flavor = "multi_thread")]
async fn entra_registered_methods_come_from_the_mirrored_registration_report() {
    let demo = start().await;
    set_policy(
        &demo,
        "sources = [\"latchkey\", \"entra\"]\ndismiss_risk = false\n",
    );
    Browser::new(&demo).identify("nobody@contoso.com").await;
    demo.sim.clear_requests();
    let mut b = Browser::new(&demo);
    assert_eq!(b.identify("kofi.mensah@contoso.com").await.status, 303);
    assert_eq!(graph_requests(&demo), Vec::<String>::new(), "identify");
    b.ask_code("email").await;
    assert!(
        code_for(&demo, "kofi.mensah@proton.example")
            .await
            .is_some(),
        "a real flow: the code went to the address registered in Entra"
    );
    assert_eq!(
        graph_requests(&demo),
        vec!["GET /v1.0/users/{id}/authentication/emailMethods".to_string()],
        "the destination, read live at the send"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_change_reaches_the_mirror_and_an_older_flow_is_refused_at_the_write() {
    let demo = start().await;
    let admins = demo.sim.tenant().group_id("IT Admins").unwrap();
    set_policy(
        &demo,
        &format!(
            "excludes = [{{ id = \"{admins}\", name = \"IT Admins\" }}]\ndismiss_risk = false\n"
        ),
    );
    // Adele verifies while she may reset...
    let mut b = verified(&demo).await;
    // ...then joins an excluded group.
    assert!(demo.sim.tenant().add_group_member("IT Admins", ADELE));
    let adele: ObjectId = demo.sim.tenant().user_id(ADELE).unwrap().parse().unwrap();
    let group: ObjectId = admins.parse().unwrap();
    let mirror = demo.services.mirror.clone().unwrap();
    let changed = Instant::now();
    loop {
        let m = mirror.memberships(&adele).await.unwrap();
        if m.groups.iter().any(|g| g.id == group) {
            break;
        }
        // One interval, plus the round itself.
        assert!(
            changed.elapsed() < Duration::from_secs(INTERVAL + 5),
            "the change did not reach the mirror within one interval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The write checks membership live: refused, nothing changed.
    let refused = submit_reset(&mut b).await;
    assert_ne!(refused.status, 200, "{}", refused.body);
    assert!(!refused.body.contains("Your password has been changed"));
    assert_ne!(demo.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
    let refusal = reset_event(&demo).await;
    assert_eq!(refusal.outcome, latchkey_store::Outcome::Denied);
    assert_eq!(
        refusal.reason.as_deref(),
        Some("policy no longer allows it"),
        "refused by the live check: {refusal:?}"
    );
    // A new flow is decided from the mirror: Adele is out of scope now (a decoy: the same
    // answer, and no code is sent to her).
    let before = demo.outbox.messages().len();
    let mut again = Browser::new(&demo);
    assert_eq!(again.identify(ADELE).await.status, 303);
    again.ask_code("email").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(demo.outbox.messages().len(), before, "no code for a decoy");
    demo.stop().await;
}

/// Found by the attack run: an account disabled after identification read the mirror (or
/// while the mirror lags) must not change its password: the claim reads the account live.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_disabled_after_identification_is_refused_at_the_write() {
    let demo = start().await;
    let mut b = verified(&demo).await;
    assert!(demo.sim.tenant().set_account_enabled(ADELE, false));
    let refused = submit_reset(&mut b).await;
    assert!(!refused.body.contains("Your password has been changed"));
    let refusal = reset_event(&demo).await;
    assert_eq!(refusal.outcome, latchkey_store::Outcome::Denied);
    assert_eq!(refusal.reason.as_deref(), Some("account is disabled"));
    // Nothing was written: enabling the account again shows the old password still works.
    assert!(demo.sim.tenant().set_account_enabled(ADELE, true));
    assert_ne!(demo.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_page_shows_the_mirror_and_syncs_on_demand() {
    let demo = start().await;
    let mut admin = Browser::new(&demo);
    crate::admin::sign_in(&demo, &mut admin, "/admin", crate::admin::EVA).await;
    let page = admin.get("/admin/directory").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Current: in use"), "{}", page.body);
    assert!(page.body.contains("users"), "{}", page.body);
    let csrf = page.csrf();
    // Without the form's token: refused, nothing requested.
    let forged = admin.post("/admin/directory/sync", &[("csrf", "x")]).await;
    assert_eq!(forged.status, 403);
    assert!(
        demo.store.mirror_requested().await.unwrap().is_none(),
        "a refused request changes nothing"
    );
    demo.sim.clear_requests();
    let asked = admin
        .post("/admin/directory/sync", &[("csrf", &csrf)])
        .await;
    assert_eq!(asked.status, 303);
    assert!(demo.store.mirror_requested().await.unwrap().is_some());
    // A round runs at once, not after the interval.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !demo
        .sim
        .requests()
        .iter()
        .any(|r| r.path.contains("/users/delta"))
    {
        assert!(Instant::now() < deadline, "no round after 'sync now'");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        demo.audit_types()
            .await
            .contains(&"admin.directory.sync".to_string())
    );
    demo.stop().await;
}
