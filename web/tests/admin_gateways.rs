//! The admin console's Gateways page against the demo: registering shows the credential once
//! (no-store) and the gateway API accepts it, revoking (after confirmation) makes the API
//! refuse it, CSRF and membership are enforced, and every change is audited without the secret.

use latchkey::demo::Demo;
use latchkey_verify::Clock;

use crate::admin::{BEN, EVA, demo_with_clock, sign_in};
use crate::portal::{Browser, Page};

/// `GET /gateway/v1/jobs/next?wait=0` with `credential` as the bearer: the status.
async fn poll(demo: &Demo, credential: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/gateway/v1/jobs/next?wait=0", demo.portal_url()))
        .header("authorization", format!("Bearer {credential}"))
        .header(latchkey_jobs::CAPABILITIES_HEADER, "unlock")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The credential shown on the "registered" page.
fn credential_of(page: &Page) -> String {
    page.body
        .split("id=\"credential\"")
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split('<').next())
        .unwrap()
        .trim()
        .to_string()
}

async fn events(demo: &Demo, kind: &str) -> Vec<latchkey_store::AuditEvent> {
    demo.store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .filter(|e| e.event_type == kind)
        .collect()
}

#[tokio::test]
async fn a_registered_gateway_works_until_it_is_revoked() {
    let (demo, _clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let list = eva.get("/admin/gateways").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("No gateway is registered."));
    assert!(
        eva.get("/admin")
            .await
            .body
            .contains("href=\"/admin/gateways\"")
    );

    // Register: the credential is on the answer only, never cached.
    let csrf = list.csrf();
    let issued = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-hq")],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.headers["cache-control"], "no-store");
    let credential = credential_of(&issued);
    assert!(credential.starts_with("lkgw_"), "{credential}");
    let list = eva.get("/admin/gateways").await;
    assert!(list.body.contains("site-hq"));
    assert!(!list.body.contains(&credential), "shown once only");
    assert!(list.body.contains("not connected"));

    // The agent API takes it, and the page then says connected.
    assert_eq!(poll(&demo, &credential).await, 204);
    let list = eva.get("/admin/gateways").await;
    assert!(
        list.body.contains("<span class=\"ok\">connected</span>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("unlock"));

    // Only the hash is kept; the audit trail names the gateway, never the credential.
    let registered = events(&demo, "admin.gateway.register").await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].details["gateway"], "site-hq");
    assert_eq!(
        registered[0].actor,
        demo.sim.tenant().user_id(EVA.0).unwrap()
    );
    let secret = credential.rsplit('.').next().unwrap();
    let all = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        all.iter()
            .all(|e| !e.event.details.to_string().contains(secret)
                && !e.event.reason.as_deref().unwrap_or("").contains(secret))
    );

    // The same name again is refused with a clear error, nothing registered.
    let dup = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-hq")],
        )
        .await;
    assert_eq!(dup.status, 422, "{}", dup.body);
    assert!(dup.body.contains("A gateway with this name is registered."));
    let bad = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "<script>")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("aria-invalid=\"true\""));
    assert_eq!(demo.store.gateways().await.unwrap().len(), 1);

    // Revoke: a confirmation page, then the POST; the API refuses the credential at once.
    let confirm = eva.get("/admin/gateways/revoke?name=site-hq").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Revoke gateway &quot;site-hq&quot;?"));
    // Without the confirmation field nothing happens.
    let unconfirmed = eva
        .post(
            "/admin/gateways/revoke",
            &[("csrf", csrf.as_str()), ("name", "site-hq")],
        )
        .await;
    assert_eq!(unconfirmed.status, 400);
    assert_eq!(poll(&demo, &credential).await, 204);
    let done = eva
        .post(
            "/admin/gateways/revoke",
            &[
                ("csrf", confirm.csrf().as_str()),
                ("name", "site-hq"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(poll(&demo, &credential).await, 401);
    let to = done.location.clone().unwrap();
    assert_eq!(to, "/admin/gateways?revoked=site-hq");
    let list = eva.get(&to).await;
    assert!(
        list.body.contains("site-hq&quot; is revoked.") && list.body.contains("revoked 20"),
        "{}",
        list.body
    );
    let revoked = events(&demo, "admin.gateway.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].details["gateway"], "site-hq");
    demo.stop().await;
}

#[tokio::test]
async fn gateway_posts_need_csrf_and_an_admin() {
    let (demo, _clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let page = eva.get("/admin/gateways").await;
    let csrf = page.csrf();

    // No or a wrong CSRF token: refused, nothing registered.
    for token in ["", "not-the-token"] {
        let r = eva
            .post(
                "/admin/gateways/register",
                &[("csrf", token), ("name", "site-x")],
            )
            .await;
        assert_eq!(r.status, 403);
        assert!(!r.body.contains("lkgw_"));
    }
    assert!(demo.store.gateways().await.unwrap().is_empty());
    assert!(events(&demo, "admin.gateway.register").await.is_empty());

    // A live gateway survives a revoke without CSRF.
    let issued = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-x")],
        )
        .await;
    let credential = credential_of(&issued);
    let r = eva
        .post(
            "/admin/gateways/revoke",
            &[("name", "site-x"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(poll(&demo, &credential).await, 204);

    // A signed-in non-member gets 403 on every gateway route and changes nothing.
    let mut ben = Browser::new(&demo);
    sign_in(&demo, &mut ben, "/admin", BEN).await;
    assert_eq!(ben.get("/admin/gateways").await.status, 403);
    assert_eq!(
        ben.get("/admin/gateways/revoke?name=site-x").await.status,
        403
    );
    let r = ben
        .post(
            "/admin/gateways/revoke",
            &[
                ("csrf", csrf.as_str()),
                ("name", "site-x"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = ben
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-y")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(poll(&demo, &credential).await, 204);
    assert_eq!(demo.store.gateways().await.unwrap().len(), 1);
    assert!(events(&demo, "admin.gateway.revoke").await.is_empty());
    demo.stop().await;
}

/// `GET /gateway/v1/jobs/next?wait=0` declaring `capabilities`: the status and the offered job
/// kind, if any.
async fn poll_for(demo: &Demo, credential: &str, capabilities: &str) -> (u16, Option<String>) {
    let r = reqwest::Client::new()
        .get(format!("{}/gateway/v1/jobs/next?wait=0", demo.portal_url()))
        .header("authorization", format!("Bearer {credential}"))
        .header(latchkey_jobs::CAPABILITIES_HEADER, capabilities)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let kind = if status == 200 {
        let offer: serde_json::Value = r.json().await.unwrap();
        offer["kind"].as_str().map(str::to_string)
    } else {
        None
    };
    (status, kind)
}

#[tokio::test]
async fn an_unlock_only_gateway_asking_for_resets_gets_none() {
    let (demo, clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let list = eva.get("/admin/gateways").await;
    assert!(list.body.contains("name=\"allow_reset\""), "{}", list.body);

    // Registered without the box ticked: unlock only.
    let csrf = list.csrf();
    let issued = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-unlock")],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let unlock_only = credential_of(&issued);

    // A reset job waits (as the reset flow queues it, new password sealed).
    let now = clock.now();
    let reset = demo
        .store
        .enqueue_job(
            latchkey_store::NewJob {
                kind: "reset".into(),
                subject: latchkey_types::ObjectId::new_random(),
                target: serde_json::json!({ "sam_account_name": "cmendes", "must_change": false }),
                secret: Some(latchkey_types::Secret::new("Amber-Lantern-58".to_string())),
                correlation_id: "corr-m1".into(),
                expires_at: now + time::Duration::minutes(2),
            },
            now,
        )
        .await
        .unwrap();

    // The gateway declares reset in its header: no job, and it is not taken as able to reset.
    assert_eq!(
        poll_for(&demo, &unlock_only, "unlock,reset").await,
        (204, None)
    );
    let job = demo.store.job(&reset.id, now).await.unwrap().unwrap();
    assert_eq!(job.state, latchkey_store::JobState::Queued);
    let gateways = demo.store.gateways().await.unwrap();
    let g = gateways.iter().find(|g| g.name == "site-unlock").unwrap();
    assert_eq!(g.allowed_kinds, ["unlock"]);
    assert!(g.serves("unlock"));
    // What `jobs::connected(Reset)` asks: no gateway would take a reset, so resets do not go
    // through the gateway.
    assert!(!gateways.iter().any(|g| {
        g.is_connected(clock.now(), latchkey::gateway::CONNECTED_WINDOW) && g.serves("reset")
    }));
    let page = eva.get("/admin/gateways").await;
    assert!(page.body.contains("<td>unlock</td>"), "{}", page.body);

    // Reset granted explicitly (the box): that gateway gets the job and its password.
    let csrf = page.csrf();
    let issued = eva
        .post(
            "/admin/gateways/register",
            &[
                ("csrf", csrf.as_str()),
                ("name", "site-reset"),
                ("allow_reset", "1"),
            ],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let both = credential_of(&issued);
    assert_eq!(
        poll_for(&demo, &both, "unlock,reset").await,
        (200, Some("reset".to_string()))
    );
    let page = eva.get("/admin/gateways").await;
    assert!(
        page.body.contains("<td>unlock, reset</td>"),
        "{}",
        page.body
    );
    // A refused registration shows the form again as it was sent, the box still ticked.
    let csrf = page.csrf();
    let dup = eva
        .post(
            "/admin/gateways/register",
            &[
                ("csrf", csrf.as_str()),
                ("name", "site-reset"),
                ("allow_reset", "1"),
            ],
        )
        .await;
    assert_eq!(dup.status, 422, "{}", dup.body);
    assert!(
        dup.body.contains(
            "name=\"allow_reset\" value=\"1\" aria-describedby=\"h-allow-reset\" checked>"
        ),
        "{}",
        dup.body
    );
    let allowed = |name: &str, events: &[latchkey_store::AuditEvent]| {
        events
            .iter()
            .find(|e| e.details["gateway"] == name && e.outcome == latchkey_store::Outcome::Success)
            .map(|e| e.details["allowed"].clone())
    };
    let registered = events(&demo, "admin.gateway.register").await;
    assert_eq!(
        allowed("site-reset", &registered),
        Some(serde_json::json!(["unlock", "reset"]))
    );
    assert_eq!(
        allowed("site-unlock", &registered),
        Some(serde_json::json!(["unlock"]))
    );
}
