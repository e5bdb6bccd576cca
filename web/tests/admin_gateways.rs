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
    crate::helpers::audit_of(demo, kind).await
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
                kind: latchkey_store::JobKind::Reset,
                subject: latchkey_types::ObjectId::new_random(),
                target: serde_json::from_value(
                    serde_json::json!({ "sam_account_name": "cmendes", "must_change": false }),
                )
                .unwrap(),
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

/// Queues a reset job (new password sealed) as the reset flow does; its id.
async fn queue_reset(demo: &Demo, now: time::OffsetDateTime, correlation_id: &str) -> String {
    demo.store
        .enqueue_job(
            latchkey_store::NewJob {
                kind: latchkey_store::JobKind::Reset,
                subject: latchkey_types::ObjectId::new_random(),
                target: serde_json::from_value(
                    serde_json::json!({ "sam_account_name": "cmendes", "must_change": false }),
                )
                .unwrap(),
                secret: Some(latchkey_types::Secret::new("Amber-Lantern-58".to_string())),
                correlation_id: correlation_id.into(),
                expires_at: now + time::Duration::minutes(2),
            },
            now,
        )
        .await
        .unwrap()
        .id
}

async fn allowed_kinds(demo: &Demo, name: &str) -> Vec<String> {
    demo.store
        .gateways()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == name && g.revoked_at.is_none())
        .map(|g| g.allowed_kinds)
        .unwrap_or_default()
}

#[tokio::test]
async fn an_admin_grants_and_takes_back_reset_and_the_gateway_follows_at_once() {
    let (demo, clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let csrf = eva.get("/admin/gateways").await.csrf();
    let issued = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-k")],
        )
        .await;
    let credential = credential_of(&issued);
    let first = queue_reset(&demo, clock.now(), "corr-k1").await;
    assert_eq!(
        poll_for(&demo, &credential, "unlock,reset").await,
        (204, None)
    );

    // The list links each live gateway's change page; it says what granting reset means.
    let list = eva.get("/admin/gateways").await;
    assert!(
        list.body
            .contains("href=\"/admin/gateways/kinds?name=site-k\" aria-label=\"Change: site-k\""),
        "{}",
        list.body
    );
    let form = eva.get("/admin/gateways/kinds?name=site-k").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("may now: unlock."), "{}", form.body);
    assert!(
        form.body
            .contains("Reset jobs carry users&#39; new passwords to this gateway&#39;s host."),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains("name=\"allow_reset\" value=\"1\" aria-describedby=\"h-allow-reset\">"),
        "not ticked: {}",
        form.body
    );

    // Granted: same credential, the next poll gets the waiting reset job and its password.
    let done = eva
        .post(
            "/admin/gateways/kinds",
            &[
                ("csrf", form.csrf().as_str()),
                ("name", "site-k"),
                ("allow_reset", "1"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let to = done.location.clone().unwrap();
    assert_eq!(to, "/admin/gateways?changed=site-k");
    let list = eva.get(&to).await;
    assert!(
        list.body
            .contains("Gateway &quot;site-k&quot; may now: unlock, reset."),
        "{}",
        list.body
    );
    assert_eq!(allowed_kinds(&demo, "site-k").await, ["unlock", "reset"]);
    assert_eq!(
        poll_for(&demo, &credential, "unlock,reset").await,
        (200, Some("reset".to_string()))
    );
    let job = demo.store.job(&first, clock.now()).await.unwrap().unwrap();
    assert_eq!(job.state, latchkey_store::JobState::Claimed);

    // The page shows it ticked now; unticking takes reset away: the next reset job waits.
    let form = eva.get("/admin/gateways/kinds?name=site-k").await;
    assert!(
        form.body.contains(
            "name=\"allow_reset\" value=\"1\" aria-describedby=\"h-allow-reset\" checked>"
        ),
        "{}",
        form.body
    );
    let done = eva
        .post(
            "/admin/gateways/kinds",
            &[("csrf", form.csrf().as_str()), ("name", "site-k")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(allowed_kinds(&demo, "site-k").await, ["unlock"]);
    let second = queue_reset(&demo, clock.now(), "corr-k2").await;
    assert_eq!(
        poll_for(&demo, &credential, "unlock,reset").await,
        (204, None)
    );
    let job = demo.store.job(&second, clock.now()).await.unwrap().unwrap();
    assert_eq!(job.state, latchkey_store::JobState::Queued);

    // Both changes audited with the admin and the kinds before and after.
    let changes = events(&demo, "admin.gateway.kinds").await;
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let eva_id = demo.sim.tenant().user_id(EVA.0).unwrap();
    let granted = changes
        .iter()
        .find(|e| e.details["grants_reset"] == true)
        .unwrap();
    assert_eq!(granted.actor, eva_id);
    assert_eq!(granted.outcome, latchkey_store::Outcome::Success);
    assert_eq!(granted.details["gateway"], "site-k");
    assert_eq!(granted.details["before"], serde_json::json!(["unlock"]));
    assert_eq!(
        granted.details["after"],
        serde_json::json!(["unlock", "reset"])
    );
    let removed = changes
        .iter()
        .find(|e| e.details["grants_reset"] == false)
        .unwrap();
    assert_eq!(removed.actor, eva_id);
    assert_eq!(
        removed.details["before"],
        serde_json::json!(["unlock", "reset"])
    );
    assert_eq!(removed.details["after"], serde_json::json!(["unlock"]));

    // A revoked gateway cannot be changed: no page, the POST changes nothing and is audited.
    let confirm = eva.get("/admin/gateways/revoke?name=site-k").await;
    let revoked = eva
        .post(
            "/admin/gateways/revoke",
            &[
                ("csrf", confirm.csrf().as_str()),
                ("name", "site-k"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        eva.get("/admin/gateways/kinds?name=site-k").await.status,
        404
    );
    let list = eva.get("/admin/gateways").await;
    assert!(!list.body.contains("/admin/gateways/kinds?name=site-k"));
    let refused = eva
        .post(
            "/admin/gateways/kinds",
            &[
                ("csrf", list.csrf().as_str()),
                ("name", "site-k"),
                ("allow_reset", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    let g = demo.store.gateways().await.unwrap();
    assert_eq!(
        g[0].allowed_kinds,
        ["unlock"],
        "the revoked row is untouched"
    );
    let changes = events(&demo, "admin.gateway.kinds").await;
    assert_eq!(changes.len(), 3);
    assert!(
        changes
            .iter()
            .any(|e| e.outcome == latchkey_store::Outcome::Failure
                && e.details["gateway"] == "site-k")
    );
    demo.stop().await;
}

#[tokio::test]
async fn changing_a_gateways_kinds_needs_csrf_and_an_admin() {
    let (demo, _clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let csrf = eva.get("/admin/gateways").await.csrf();
    let issued = eva
        .post(
            "/admin/gateways/register",
            &[("csrf", csrf.as_str()), ("name", "site-u")],
        )
        .await;
    assert_eq!(issued.status, 200);

    // No or a wrong CSRF token: refused, reset not granted, nothing audited.
    for token in ["", "not-the-token"] {
        let r = eva
            .post(
                "/admin/gateways/kinds",
                &[("csrf", token), ("name", "site-u"), ("allow_reset", "1")],
            )
            .await;
        assert_eq!(r.status, 403);
    }
    let r = eva
        .post(
            "/admin/gateways/kinds",
            &[("name", "site-u"), ("allow_reset", "1")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(allowed_kinds(&demo, "site-u").await, ["unlock"]);
    assert!(events(&demo, "admin.gateway.kinds").await.is_empty());

    // A signed-in non-member: 403 on the page and the POST (with a valid token of another
    // session), nothing changed.
    let mut ben = Browser::new(&demo);
    sign_in(&demo, &mut ben, "/admin", BEN).await;
    assert_eq!(
        ben.get("/admin/gateways/kinds?name=site-u").await.status,
        403
    );
    let r = ben
        .post(
            "/admin/gateways/kinds",
            &[
                ("csrf", csrf.as_str()),
                ("name", "site-u"),
                ("allow_reset", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(allowed_kinds(&demo, "site-u").await, ["unlock"]);
    assert!(events(&demo, "admin.gateway.kinds").await.is_empty());
    // Anonymous: no session, no change.
    let mut anon = Browser::new(&demo);
    let r = anon
        .post(
            "/admin/gateways/kinds",
            &[
                ("csrf", csrf.as_str()),
                ("name", "site-u"),
                ("allow_reset", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(allowed_kinds(&demo, "site-u").await, ["unlock"]);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_changes_a_gateways_kinds_and_keeps_its_credential() {
    use crate::helpers::{TempDir, config_for, latchkey, sim, stderr, stdout};
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("policies")).unwrap();
    let config = config_for(
        &sim,
        &dir,
        "[store]\ndatabase_url = \"sqlite://gw.db\"\nkey_file = \"gw.key\"\n[policies]\ndir = \"policies\"\n",
    );
    let config = config.to_str().unwrap();
    let out = latchkey(&["gateway", "register", "site-a", "--config", config], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let credential = stdout(&out).trim().to_string();
    let allow = async |name: &str, kinds: &[&str]| {
        let mut args = vec!["gateway", "allow", name];
        for k in kinds {
            args.extend(["--allow", k]);
        }
        args.extend(["--config", config]);
        latchkey(&args, &[]).await
    };
    let line = async || {
        let list = latchkey(&["gateway", "list", "--config", config], &[]).await;
        stdout(&list)
            .lines()
            .find(|l| l.starts_with("site-a"))
            .unwrap_or("")
            .to_string()
    };

    // Granted (comma-separated like the flag's help says), with what it means on stderr.
    let out = allow("site-a", &["unlock,reset"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("may now: unlock, reset (was: unlock)"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("new passwords"), "{}", stderr(&out));
    assert!(line().await.contains("allowed: unlock, reset"));
    // `--allow reset` alone keeps unlock; `--allow unlock` takes reset away.
    let out = allow("site-a", &["reset"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(line().await.contains("allowed: unlock, reset"));
    let out = allow("site-a", &["unlock"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("may now: unlock (was: unlock, reset)"),
        "{}",
        stdout(&out)
    );
    let l = line().await;
    assert!(
        l.contains("allowed: unlock ") && !l.contains("reset"),
        "{l}"
    );

    // Refused: no kind given, an unknown kind, an unknown gateway; nothing changes.
    assert!(!allow("site-a", &[]).await.status.success());
    assert!(!allow("site-a", &["all"]).await.status.success());
    assert_eq!(allow("nobody", &["unlock"]).await.status.code(), Some(1));
    assert!(line().await.contains("allowed: unlock "));

    // A revoked gateway cannot be changed.
    let revoke = latchkey(&["gateway", "revoke", "site-a", "--config", config], &[]).await;
    assert!(revoke.status.success());
    let out = allow("site-a", &["unlock,reset"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));

    // The store: the credential stayed the one issued (until the revoke), the revoked row kept
    // its last kinds, and each change is audited with the kinds before and after.
    let settings = latchkey::config::Settings::load(std::path::Path::new(config)).unwrap();
    let key = latchkey_store::EncryptionKey::load_or_create(&settings.store.key_file).unwrap();
    let store = latchkey::serve::open_store(&settings, &key).await.unwrap();
    let (id, _) = latchkey::gateway::credential::parse(&credential).unwrap();
    let rows = store.gateways().await.unwrap();
    assert_eq!(rows.len(), 1, "changed in place, never registered anew");
    assert_eq!(rows[0].id, id);
    assert_eq!(rows[0].allowed_kinds, ["unlock"]);
    let changes: Vec<_> = store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.event_type == "gateway.kinds_changed")
        .collect();
    assert_eq!(changes.len(), 3, "{changes:#?}");
    assert!(changes.iter().all(|e| e.actor == "admin:cli"));
    assert!(changes.iter().any(|e| {
        e.details["before"] == serde_json::json!(["unlock"])
            && e.details["after"] == serde_json::json!(["unlock", "reset"])
    }));
    assert!(changes.iter().any(|e| {
        e.details["before"] == serde_json::json!(["unlock", "reset"])
            && e.details["after"] == serde_json::json!(["unlock"])
    }));
    sim.stop().await;
}
