//! The helpdesk console over HTTP against the demo: scope, reset links, caller verification,
//! actions after verification, the second approval for privileged targets, CSRF, access.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use latchkey::demo::Demo;
use latchkey_store::{AuditQuery, NewEnrollment};
use latchkey_types::ObjectId;

use crate::admin::{BEN, FARID, demo_with_clock, sign_in};
use crate::portal::{Browser, Page, code_for, totp_for};

pub(crate) const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";
const LENA: &str = "lena.novak@contoso.com";
pub(crate) const KOFI: (&str, &str) = ("kofi.mensah@contoso.com", "Kofi-Demo-2024!");

/// The demo's "Staff" policy with `actions`, privileged accounts allowed.
pub(crate) fn set_policy(demo: &Demo, actions: &str) {
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [{actions}]\nmethods = [\"email\", \"totp\", \"sms\"]\nmethods_required = 2\n\
         allow_privileged = true\n"
    );
    let set = latchkey_policy::parse_sources(&[(PathBuf::from("test.toml"), text)]).unwrap();
    *demo.services.policies.write().unwrap() = Arc::new(set);
}

pub(crate) fn oid(demo: &Demo, upn: &str) -> String {
    demo.sim.tenant().user_id(upn).unwrap()
}

pub(crate) async fn farid(demo: &Demo) -> Browser {
    let mut b = Browser::new(demo);
    sign_in(demo, &mut b, "/helpdesk", FARID).await;
    b
}

/// The newest helpdesk caller code sent to `to`.
async fn caller_code(demo: &Demo, to: &str) -> String {
    for _ in 0..100 {
        if let Some(m) = demo
            .outbox
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.to == to && m.body.contains("helpdesk asked for this code"))
        {
            return m
                .body
                .split(|c: char| !c.is_ascii_digit())
                .find(|s| s.len() >= 6)
                .unwrap()
                .to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no caller code for {to}");
}

/// Farid verifies the caller of `upn` by the email channel.
pub(crate) async fn verify_caller(demo: &Demo, b: &mut Browser, upn: &str, to: &str) {
    let id = oid(demo, upn);
    let page = b.get(&format!("/helpdesk/user?q={id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let sent = b
        .post(
            "/helpdesk/verify/start",
            &[("csrf", &csrf), ("q", &id), ("channel", "email")],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let code = caller_code(demo, to).await;
    let ok = b
        .post(
            "/helpdesk/verify",
            &[("csrf", &csrf), ("q", &id), ("code", &code)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let page = b.get(&format!("/helpdesk/user?q={id}")).await;
    assert!(
        page.body.contains("The caller is verified"),
        "{}",
        page.body
    );
}

pub(crate) fn count(demo: &Demo, method: &str, suffix: &str) -> usize {
    demo.sim
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.contains(suffix))
        .count()
}

pub(crate) async fn events(demo: &Demo, event_type: &str) -> Vec<latchkey_store::AuditRecord> {
    demo.store
        .audit_events(&AuditQuery {
            event_type: Some(event_type.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn non_members_get_403_and_anonymous_posts_401() {
    let (demo, _clock) = demo_with_clock().await;
    let mut ben = Browser::new(&demo);
    sign_in(&demo, &mut ben, "/helpdesk", BEN).await;
    let denied = ben.get("/helpdesk").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let user = ben.get(&format!("/helpdesk/user?q={ADELE}")).await;
    assert_eq!(user.status, 403);
    assert!(!user.body.contains("Adele"));
    let mut anon = Browser::new(&demo);
    for path in [
        "/helpdesk/link",
        "/helpdesk/tap",
        "/helpdesk/verify/start",
        "/helpdesk/approval/approve",
    ] {
        let r = anon.post(path, &[("csrf", "x"), ("q", ADELE)]).await;
        assert_eq!(r.status, 401, "{path}");
    }
    demo.stop().await;
}

/// The body without the echoed query (the search box shows what was typed).
fn without(body: &str, query: &str) -> String {
    body.replace(query, "QUERY")
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_scope_users_look_exactly_like_unknown_ones() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = farid(&demo).await;
    let found = b.get(&format!("/helpdesk/user?q={ADELE}")).await;
    assert_eq!(found.status, 200);
    assert!(found.body.contains("Adele Vance") && found.body.contains("Staff"));
    // Lena exists but is not in "SSPR Enabled"; "nobody" does not exist.
    let t0 = std::time::Instant::now();
    let lena = b.get(&format!("/helpdesk/user?q={LENA}")).await;
    let lena_took = t0.elapsed();
    let nobody_q = "nobody.here@contoso.com";
    let t0 = std::time::Instant::now();
    let nobody = b.get(&format!("/helpdesk/user?q={nobody_q}")).await;
    let nobody_took = t0.elapsed();
    // Both wait out the deadline: the time taken does not tell them apart.
    assert!(lena_took >= latchkey::demo::DEMO_DEADLINE, "{lena_took:?}");
    assert!(
        nobody_took >= latchkey::demo::DEMO_DEADLINE,
        "{nobody_took:?}"
    );
    assert_eq!(lena.status, 404);
    assert_eq!(nobody.status, 404);
    assert!(!lena.body.contains("Lena Novak"));
    let norm = |p: &Page, q: &str| {
        without(&p.body, q)
            .split('"')
            .map(|part| {
                if part.len() >= 20
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    "<random>".to_string()
                } else {
                    part.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\"")
    };
    assert_eq!(norm(&lena, LENA), norm(&nobody, nobody_q));
    // By object id too.
    let by_id = b
        .get(&format!("/helpdesk/user?q={}", oid(&demo, LENA)))
        .await;
    assert_eq!(by_id.status, 404);
    // Acting on an out-of-scope user is the same 404.
    let csrf = found.csrf();
    let link = b
        .post(
            "/helpdesk/link",
            &[("csrf", &csrf), ("q", LENA), ("delivery", "copy")],
        )
        .await;
    assert_eq!(link.status, 404);
    assert!(events(&demo, "helpdesk.link.issued").await.is_empty());
    demo.stop().await;
}

/// Farid issues a link for Adele by `delivery`; returns the path `/link/...` (copy only).
pub(crate) async fn issue_link(demo: &Demo, b: &mut Browser, delivery: &str) -> Page {
    let page = b.get(&format!("/helpdesk/user?q={ADELE}")).await;
    let csrf = page.csrf();
    let r = b
        .post(
            "/helpdesk/link",
            &[
                ("csrf", &csrf),
                ("q", &oid(demo, ADELE)),
                ("delivery", delivery),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

fn link_path(page: &Page) -> String {
    let url = page
        .body
        .split("id=\"reset-link\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap();
    format!("/link/{}", url.rsplit('/').next().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_prefills_once_never_verifies_and_is_audited_with_the_member() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = farid(&demo).await;
    let issued = issue_link(&demo, &mut b, "copy").await;
    let path = link_path(&issued);
    assert!(
        issued.body.contains(demo.portal_url()),
        "absolute link from the public URL"
    );
    // The member is the actor.
    let farid_id = oid(&demo, FARID.0);
    let ev = events(&demo, "helpdesk.link.issued").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event.actor, farid_id);
    assert_eq!(ev[0].event.subject.unwrap().to_string(), oid(&demo, ADELE));
    assert!(
        !format!("{ev:?}").contains(path.trim_start_matches("/link/")),
        "token in audit"
    );
    // Opening the page changes nothing (mail scanners), and shows whose link it is.
    let mut user = Browser::new(&demo);
    let open = user.get(&path).await;
    assert_eq!(open.status, 200);
    assert!(open.body.contains(ADELE));
    let open_again = user.get(&path).await;
    assert_eq!(open_again.status, 200);
    // HEAD answers as GET does (scanners probe with it), and changes nothing either.
    let head = reqwest::Client::new()
        .head(format!("{}{path}", demo.portal_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(user.get(&path).await.status, 200);
    let csrf = open.csrf();
    let token = path.trim_start_matches("/link/");
    // CSRF is checked.
    let forged = user
        .post("/link", &[("csrf", "forged"), ("token", token)])
        .await;
    assert_eq!(forged.status, 403);
    let go = user
        .post("/link", &[("csrf", &csrf), ("token", token)])
        .await;
    assert_eq!(go.location.as_deref(), Some("/verify"), "{}", go.body);
    // Not a verification: the flow still needs the user's own methods.
    assert_eq!(
        user.get("/action").await.location.as_deref(),
        Some("/verify")
    );
    let csrf_flow = user.get("/verify").await.csrf();
    assert_eq!(
        user.post("/tap", &[("csrf", &csrf_flow)])
            .await
            .location
            .as_deref(),
        Some("/verify")
    );
    // Single use.
    let mut other = Browser::new(&demo);
    assert_eq!(other.get(&path).await.status, 410);
    let again = other
        .post("/link", &[("csrf", &csrf), ("token", token)])
        .await;
    assert_eq!(again.status, 410);
    // Bound to Adele: her methods complete the flow.
    user.ask_code("email").await;
    let code = code_for(&demo, ADELE_MAIL).await.unwrap();
    user.submit_code("email", &code).await;
    let totp = totp_for(&mut user, ADELE).await;
    assert_eq!(
        user.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );
    let used = events(&demo, "helpdesk.link.used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].event.details["issued_by"], farid_id);
    // A password change voids every other open link of the user.
    let second = link_path(&issue_link(&demo, &mut b, "copy").await);
    assert_eq!(other.get(&second).await.status, 200);
    let csrf = user.get("/reset").await.csrf();
    let done = user
        .post(
            "/reset",
            &[
                ("csrf", &csrf),
                ("password", "Harbour-Quartz-Meadow-84"),
                ("confirm", "Harbour-Quartz-Meadow-84"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        other.get(&second).await.status,
        410,
        "link survived a reset"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn links_expire_and_emailed_links_reach_the_known_address_and_the_user_is_told() {
    let (demo, clock) = demo_with_clock().await;
    let mut b = farid(&demo).await;
    let issued = issue_link(&demo, &mut b, "copy").await;
    let path = link_path(&issued);
    let emailed = issue_link(&demo, &mut b, "email").await;
    assert!(
        !emailed.body.contains("/link/"),
        "emailed link shown to the member"
    );
    let mut mail = None;
    for _ in 0..100 {
        mail = demo
            .outbox
            .messages()
            .into_iter()
            .find(|m| m.to == ADELE && m.body.contains("/link/"));
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mail = mail.expect("link emailed to the directory mail");
    assert!(mail.body.contains(demo.portal_url()));
    // Her other channel hears that a link was issued, without the link.
    let mut told = false;
    for _ in 0..100 {
        told = demo.outbox.messages().into_iter().any(|m| {
            m.to == ADELE_MAIL && m.body.contains("issued a link") && !m.body.contains("/link/")
        });
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(told, "{:?}", demo.outbox.messages());
    // 60 minutes by default.
    let mut user = Browser::new(&demo);
    assert_eq!(user.get(&path).await.status, 200);
    clock.advance(time::Duration::minutes(59));
    assert_eq!(user.get(&path).await.status, 200, "expired early");
    clock.advance(time::Duration::minutes(2));
    assert_eq!(user.get(&path).await.status, 410, "expired link still open");
    let token = path.trim_start_matches("/link/");
    let r = user.post("/link", &[("csrf", "x"), ("token", token)]).await;
    assert_eq!(r.status, 410);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_need_a_verified_caller_and_wrong_codes_are_throttled() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    let mut b = farid(&demo).await;
    let id = oid(&demo, ADELE);
    let page = b.get(&format!("/helpdesk/user?q={id}")).await;
    let csrf = page.csrf();
    assert!(!page.body.contains("action=\"/helpdesk/tap\""));
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403);
    let del = b
        .post(
            "/helpdesk/method/delete",
            &[
                ("csrf", &csrf),
                ("q", &id),
                ("segment", "phoneMethods"),
                ("id", latchkey_entra_sim::MOBILE_PHONE_ID),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(del.status, 403);
    let re = b
        .post("/helpdesk/reenroll", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(re.status, 403);
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 0);
    assert_eq!(count(&demo, "DELETE", "/authentication/"), 0);
    assert!(
        !demo
            .store
            .enrollments(&id.parse::<ObjectId>().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    // A code is sent; wrong answers are charged and throttled, then even the right one waits.
    b.post(
        "/helpdesk/verify/start",
        &[("csrf", &csrf), ("q", &id), ("channel", "email")],
    )
    .await;
    let code = caller_code(&demo, ADELE_MAIL).await;
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = b
            .post(
                "/helpdesk/verify",
                &[("csrf", &csrf), ("q", &id), ("code", wrong)],
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![400, 400, 400, 429]);
    let right = b
        .post(
            "/helpdesk/verify",
            &[("csrf", &csrf), ("q", &id), ("code", &code)],
        )
        .await;
    assert_eq!(right.status, 429);
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403, "unverified after throttling");
    assert!(!events(&demo, "helpdesk.caller.throttled").await.is_empty());
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_caller_gets_a_pass_a_lost_method_deleted_and_re_enrollment() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    let mut b = farid(&demo).await;
    verify_caller(&demo, &mut b, ADELE, ADELE_MAIL).await;
    let id = oid(&demo, ADELE);
    let page = b.get(&format!("/helpdesk/user?q={id}")).await;
    assert!(
        page.body.contains("action=\"/helpdesk/method/delete\""),
        "methods listed"
    );
    let csrf = page.csrf();
    // A caller case is bound to the member: another member's browser has none.
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 200, "{}", tap.body);
    assert!(tap.body.contains("id=\"tap-pass\""));
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 1);
    let ev = events(&demo, "helpdesk.tap").await;
    assert_eq!(ev[0].event.actor, oid(&demo, FARID.0));
    // Entra refuses to delete the method her default sign-in method relies on: a clear page,
    // an audited failure, nothing deleted.
    assert!(demo.sim.tenant().set_default_method(ADELE, Some("sms")));
    let refused = b
        .post(
            "/helpdesk/method/delete",
            &[
                ("csrf", &csrf),
                ("q", &id),
                ("segment", "phoneMethods"),
                ("id", latchkey_entra_sim::MOBILE_PHONE_ID),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("Entra refused to delete this method"));
    assert_eq!(
        events(&demo, "helpdesk.method.delete").await[0]
            .event
            .outcome,
        latchkey_store::Outcome::Failure
    );
    assert!(demo.sim.tenant().set_default_method(ADELE, None));
    // Delete her mobile phone in Entra: a confirmation first, and nothing deleted before it.
    let deletes = || {
        demo.sim
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count()
    };
    let before = deletes();
    let asked = b
        .post(
            "/helpdesk/method/delete",
            &[
                ("csrf", &csrf),
                ("q", &id),
                ("segment", "phoneMethods"),
                ("id", latchkey_entra_sim::MOBILE_PHONE_ID),
            ],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("Delete Phone?"), "{}", asked.body);
    assert_eq!(deletes(), before, "nothing deleted before the confirmation");
    let del = b
        .post(
            "/helpdesk/method/delete",
            &[
                ("csrf", &csrf),
                ("q", &id),
                ("segment", "phoneMethods"),
                ("id", latchkey_entra_sim::MOBILE_PHONE_ID),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(del.status, 303, "{}", del.body);
    let statuses: Vec<u16> = demo
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/phoneMethods/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        vec![400, 204],
        "refused while the default, then deleted"
    );
    assert_eq!(
        events(&demo, "helpdesk.method.delete").await[0]
            .event
            .outcome,
        latchkey_store::Outcome::Success
    );
    // The password method cannot be deleted (not even offered; refused when forged).
    let pw = b
        .post(
            "/helpdesk/method/delete",
            &[
                ("csrf", &csrf),
                ("q", &id),
                ("segment", "passwordMethods"),
                ("id", latchkey_graph::PASSWORD_METHOD_ID),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(pw.status, 404);
    // A portal passkey of hers is listed with its name...
    let adele: ObjectId = id.parse().unwrap();
    let key = latchkey_store::NewPasskey {
        subject: adele,
        credential_id: vec![42; 16],
        user_handle: vec![7; 32],
        name: "Laptop".into(),
        public_key: vec![0xa5],
        sign_count: 0,
        aaguid: [0; 16],
        backup_eligible: false,
        backed_up: false,
    };
    let now = time::OffsetDateTime::now_utc();
    demo.store.add_passkey(key, 10, now).await.unwrap();
    let page = b.get(&format!("/helpdesk/user?q={id}")).await;
    assert!(page.body.contains("Passkey: Laptop"), "{}", page.body);
    // ...and re-enrollment removes her Latchkey methods, passkeys included, and ends the case.
    let re = b
        .post("/helpdesk/reenroll", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(re.status, 303);
    assert!(demo.store.enrollments(&adele).await.unwrap().is_empty());
    assert!(demo.store.passkeys(&adele).await.unwrap().is_empty());
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403, "the case ended with the re-enrollment");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_policy_action_a_verified_caller_gets_no_pass() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = farid(&demo).await;
    verify_caller(&demo, &mut b, ADELE, ADELE_MAIL).await;
    let id = oid(&demo, ADELE);
    let csrf = b.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403);
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_privileged_target_needs_a_second_member_who_is_not_the_requester() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    let tenant = demo.sim.tenant();
    assert!(tenant.add_group_member("SSPR Enabled", LENA));
    assert!(tenant.add_group_member("Helpdesk", KOFI.0));
    let lena: ObjectId = oid(&demo, LENA).parse().unwrap();
    let now = time::OffsetDateTime::now_utc();
    demo.store
        .stage_enrollment(
            NewEnrollment {
                subject: lena,
                method: "email".into(),
                data: serde_json::json!({ "address": "lena@home.example" }),
                secret: None,
            },
            now,
        )
        .await
        .unwrap();
    demo.store
        .activate_enrollment(&lena, "email", now)
        .await
        .unwrap();
    let mut b = farid(&demo).await;
    verify_caller(&demo, &mut b, LENA, "lena@home.example").await;
    let id = lena.to_string();
    let csrf = b.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403);
    assert!(tap.body.contains("Ask for approval"), "{}", tap.body);
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 0);
    let asked = b
        .post(
            "/helpdesk/approval/request",
            &[("csrf", &csrf), ("q", &id), ("action", "tap")],
        )
        .await;
    assert_eq!(asked.status, 200);
    let request = events(&demo, "helpdesk.approval.requested").await[0]
        .event
        .correlation_id
        .clone();
    // Not by the requester.
    let own = b
        .post(
            "/helpdesk/approval/approve",
            &[("csrf", &csrf), ("request", &request)],
        )
        .await;
    assert_eq!(own.status, 403);
    let still = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(still.status, 403);
    // Kofi approves.
    let mut kofi = Browser::new(&demo);
    sign_in(&demo, &mut kofi, "/helpdesk", KOFI).await;
    let list = kofi.get("/helpdesk/approvals").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&request));
    let kcsrf = list.csrf();
    let forged = kofi
        .post(
            "/helpdesk/approval/approve",
            &[("csrf", "forged"), ("request", &request)],
        )
        .await;
    assert_eq!(forged.status, 403);
    let ok = kofi
        .post(
            "/helpdesk/approval/approve",
            &[("csrf", &kcsrf), ("request", &request)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // Once approved, Farid can do it exactly once.
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 200, "{}", tap.body);
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 1);
    let again = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(again.status, 403);
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 1);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_helpdesk_post_needs_the_session_csrf_token() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    let mut b = farid(&demo).await;
    verify_caller(&demo, &mut b, ADELE, ADELE_MAIL).await;
    let id = oid(&demo, ADELE);
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/helpdesk/link", vec![("q", &id), ("delivery", "copy")]),
        (
            "/helpdesk/verify/start",
            vec![("q", &id), ("channel", "email")],
        ),
        ("/helpdesk/verify", vec![("q", &id), ("code", "12345678")]),
        ("/helpdesk/tap", vec![("q", &id)]),
        (
            "/helpdesk/method/delete",
            vec![
                ("q", &id),
                ("segment", "phoneMethods"),
                ("id", latchkey_entra_sim::MOBILE_PHONE_ID),
            ],
        ),
        ("/helpdesk/reenroll", vec![("q", &id)]),
        (
            "/helpdesk/approval/request",
            vec![("q", &id), ("action", "tap")],
        ),
        ("/helpdesk/approval/approve", vec![("request", "x")]),
        ("/helpdesk/signout", vec![]),
    ];
    let before = demo.sim.requests().len();
    for (path, fields) in &forms {
        for bad in ["", "forged"] {
            let mut f = fields.clone();
            f.push(("csrf", bad));
            let r = b.post(path, &f).await;
            assert_eq!(r.status, 403, "{path} with csrf {bad:?}");
        }
    }
    // A valid token from another origin's form (Fetch Metadata) is refused too.
    let csrf = b.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    b.origin = Some("https://evil.example".into());
    let r = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(r.status, 403);
    let writes = demo.sim.requests()[before..]
        .iter()
        .filter(|r| r.method == "DELETE" || r.path.ends_with("temporaryAccessPassMethods"))
        .count();
    assert_eq!(writes, 0);
    assert!(events(&demo, "helpdesk.link.issued").await.is_empty());
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_cannot_act_on_their_own_account() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    assert!(demo.sim.tenant().add_group_member("SSPR Enabled", FARID.0));
    let mut b = farid(&demo).await;
    let me = oid(&demo, FARID.0);
    let page = b.get(&format!("/helpdesk/user?q={me}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    for (path, fields) in [
        (
            "/helpdesk/link",
            vec![("q", me.as_str()), ("delivery", "copy")],
        ),
        (
            "/helpdesk/verify/start",
            vec![("q", me.as_str()), ("channel", "email")],
        ),
        ("/helpdesk/tap", vec![("q", me.as_str())]),
        ("/helpdesk/reenroll", vec![("q", me.as_str())]),
    ] {
        let mut f = fields.clone();
        f.push(("csrf", &csrf));
        let r = b.post(path, &f).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("on your own account"), "{path}");
    }
    assert!(
        events(&demo, "helpdesk.link.issued")
            .await
            .iter()
            .all(|e| e.event.outcome == latchkey_store::Outcome::Denied)
    );
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_lifetime_beyond_24_hours_is_refused_at_start() {
    use crate::helpers::{TempDir, config_for, latchkey, sim, stderr};
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    let group = ObjectId::new_random();
    let cfg = config_for(
        &sim,
        &dir,
        &format!("[helpdesk]\ngroup = \"{group}\"\nlink_lifetime_minutes = 1441\n"),
    );
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("helpdesk.link_lifetime_minutes"),
        "{}",
        stderr(&out)
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_the_helpdesk_issues_is_told_to_the_policy_security_contacts_without_the_pass() {
    const SECOPS: &str = "secops@contoso.com";
    let (demo, _clock) = demo_with_clock().await;
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"temporary_access_pass\"]\nmethods = [\"email\", \"totp\", \"sms\"]\n\
         methods_required = 2\nallow_privileged = true\n\
         [policy.notifications]\nsecurity_contacts = [\"{SECOPS}\"]\n"
    );
    let set = latchkey_policy::parse_sources(&[(PathBuf::from("test.toml"), text)]).unwrap();
    *demo.services.policies.write().unwrap() = Arc::new(set);
    let mut b = farid(&demo).await;
    verify_caller(&demo, &mut b, ADELE, ADELE_MAIL).await;
    let id = oid(&demo, ADELE);
    let csrf = b.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    // Verifying the caller told the contact nothing.
    assert!(!demo.outbox.messages().iter().any(|m| m.to == SECOPS));
    let tap = b
        .post("/helpdesk/tap", &[("csrf", &csrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 200, "{}", tap.body);
    let pass = tap
        .body
        .split("id=\"tap-pass\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert!(pass.len() >= 8, "{pass}");
    for _ in 0..100 {
        if demo.outbox.messages().iter().any(|m| m.to == SECOPS) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything queued behind the first notice has had time to arrive too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let told: Vec<_> = demo
        .outbox
        .messages()
        .into_iter()
        .filter(|m| m.to == SECOPS)
        .collect();
    assert_eq!(told.len(), 1, "{told:#?}");
    let m = &told[0];
    assert!(m.body.contains("User: Adele Vance"), "{}", m.body);
    assert!(m.body.contains(&format!("object id {id}")), "{}", m.body);
    assert!(
        m.body.contains("Action: Temporary Access Pass issued"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("By: Farid Haddad (helpdesk@contoso.com) (helpdesk)"),
        "{}",
        m.body
    );
    let audited = events(&demo, "helpdesk.tap").await;
    assert!(
        m.body.contains(&audited[0].event.correlation_id),
        "the notice leads to the audit event: {}",
        m.body
    );
    assert!(!m.body.contains(&pass) && !m.subject.contains(&pass));
    // The user is still told on her own channels.
    assert!(
        demo.outbox
            .messages()
            .iter()
            .any(|m| m.to != SECOPS && m.body.contains("Temporary Access Pass")),
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_is_found_by_name_and_out_of_scope_users_never_show() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/helpdesk", FARID).await;
    let adele = oid(&demo, ADELE);
    // A first name, its beginning, a surname, two words: the served users whose name starts so.
    for q in ["Adele", "ade", "Vance", "adele%20van"] {
        let page = b.get(&format!("/helpdesk/user?q={q}")).await;
        assert_eq!(page.status, 200, "{q}: {}", page.body);
        assert!(
            page.body
                .contains(&format!("href=\"/helpdesk/user?q={adele}\"")),
            "{q}: {}",
            page.body
        );
    }
    // Lena is in the tenant but not in a group the helpdesk serves: like nobody at all.
    let lena = b.get("/helpdesk/user?q=Lena").await;
    let nobody = b.get("/helpdesk/user?q=Zyxwvut").await;
    assert_eq!((lena.status, nobody.status), (404, 404));
    assert!(!lena.body.contains("Lena Novak") && !lena.body.contains("lena.novak"));
    // The audit trail records that a search happened, not what was typed.
    let searches = events(&demo, "helpdesk.search").await;
    assert!(!searches.is_empty());
    assert!(
        searches
            .iter()
            .all(|e| !e.event.details.to_string().to_lowercase().contains("lena"))
    );
    demo.stop().await;
}
