//! Helpdesk review fixes: an approver cannot approve an action on their own account, console
//! group members are privileged targets, and emailed reset links are capped per user.

use latchkey_store::{NewEnrollment, Outcome};
use latchkey_types::ObjectId;

use crate::admin::{FARID, demo_with_clock, sign_in};
use crate::helpdesk::{
    ADELE, KOFI, count, events, farid, issue_link, oid, set_policy, verify_caller,
};
use crate::portal::Browser;

/// An active email enrollment at `address` for `upn` (the caller-verification channel).
async fn enroll_email(demo: &latchkey::demo::Demo, upn: &str, address: &str) {
    let subject: ObjectId = oid(demo, upn).parse().unwrap();
    let now = time::OffsetDateTime::now_utc();
    demo.store
        .stage_enrollment(
            NewEnrollment {
                subject,
                method: "email".into(),
                data: serde_json::json!({ "address": address }),
                secret: None,
            },
            now,
        )
        .await
        .unwrap();
    demo.store
        .activate_enrollment(&subject, "email", now)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_cannot_approve_an_action_on_their_own_account() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    let tenant = demo.sim.tenant();
    // Farid (Authentication Administrator: privileged) becomes someone the helpdesk serves;
    // Kofi, a second member, asks for a pass for Farid.
    assert!(tenant.add_group_member("SSPR Enabled", FARID.0));
    assert!(tenant.add_group_member("Helpdesk", KOFI.0));
    let mut kofi = Browser::new(&demo);
    sign_in(&demo, &mut kofi, "/helpdesk", KOFI).await;
    enroll_email(&demo, FARID.0, "farid@home.example").await;
    verify_caller(&demo, &mut kofi, FARID.0, "farid@home.example").await;
    let id = oid(&demo, FARID.0);
    let kcsrf = kofi.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    let tap = kofi
        .post("/helpdesk/tap", &[("csrf", &kcsrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403, "{}", tap.body);
    let asked = kofi
        .post(
            "/helpdesk/approval/request",
            &[("csrf", &kcsrf), ("q", &id), ("action", "tap")],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let request = events(&demo, "helpdesk.approval.requested").await[0]
        .event
        .correlation_id
        .clone();
    // Farid is not the requester, but the pass would be his own: refused and audited.
    let mut b = farid(&demo).await;
    let csrf = b.get("/helpdesk/approvals").await.csrf();
    let own = b
        .post(
            "/helpdesk/approval/approve",
            &[("csrf", &csrf), ("request", &request)],
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(own.body.contains("on your own account"), "{}", own.body);
    assert!(events(&demo, "helpdesk.approval.granted").await.is_empty());
    let refused = events(&demo, "helpdesk.approval.refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.outcome, Outcome::Denied);
    assert_eq!(refused[0].event.details["reason"], "own account");
    assert_eq!(refused[0].event.actor, id);
    // Kofi still cannot issue the pass.
    let tap = kofi
        .post("/helpdesk/tap", &[("csrf", &kcsrf), ("q", &id)])
        .await;
    assert_eq!(tap.status, 403);
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_group_member_without_a_directory_role_needs_approval() {
    let (demo, _clock) = demo_with_clock().await;
    set_policy(&demo, "\"reset\", \"temporary_access_pass\", \"enroll\"");
    // Kofi holds no directory role; "Identity Team" is nested in "Latchkey Admins" (the admin
    // group), so he is an admin-console member only transitively.
    assert!(demo.sim.tenant().add_group_member("Identity Team", KOFI.0));
    let kofi: ObjectId = oid(&demo, KOFI.0).parse().unwrap();
    let mut b = farid(&demo).await;
    enroll_email(&demo, KOFI.0, "kofi@home.example").await;
    verify_caller(&demo, &mut b, KOFI.0, "kofi@home.example").await;
    let id = kofi.to_string();
    let csrf = b.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    for (path, fields) in [
        ("/helpdesk/tap", vec![("q", id.as_str())]),
        ("/helpdesk/reenroll", vec![("q", id.as_str())]),
    ] {
        let mut f = fields.clone();
        f.push(("csrf", &csrf));
        let r = b.post(path, &f).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.body.contains("Ask for approval"), "{path}: {}", r.body);
    }
    assert_eq!(count(&demo, "POST", "temporaryAccessPassMethods"), 0);
    let needed = events(&demo, "helpdesk.approval.needed").await;
    assert_eq!(needed.len(), 2);
    assert!(needed.iter().all(|e| e.event.subject == Some(kofi)));
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn emailed_links_are_capped_per_user() {
    let (demo, clock) = demo_with_clock().await;
    let mut b = farid(&demo).await;
    for _ in 0..5 {
        issue_link(&demo, &mut b, "email").await;
    }
    let id = oid(&demo, ADELE);
    let csrf = b.get(&format!("/helpdesk/user?q={id}")).await.csrf();
    let sixth = b
        .post(
            "/helpdesk/link",
            &[("csrf", &csrf), ("q", &id), ("delivery", "email")],
        )
        .await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    assert!(
        sixth.body.contains("Too many reset links were emailed"),
        "{}",
        sixth.body
    );
    let issued = events(&demo, "helpdesk.link.issued").await;
    assert_eq!(
        issued
            .iter()
            .filter(|e| e.event.outcome == Outcome::Success)
            .count(),
        5
    );
    let denied: Vec<_> = issued
        .iter()
        .filter(|e| e.event.outcome == Outcome::Denied)
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied[0].event.reason.as_deref(),
        Some("too many emailed links for this user")
    );
    // Copying a link (nothing lands in the mailbox) is not capped by it.
    issue_link(&demo, &mut b, "copy").await;
    // An hour later emailing works again.
    clock.advance(time::Duration::minutes(61));
    let mut b = farid(&demo).await;
    issue_link(&demo, &mut b, "email").await;
    demo.stop().await;
}
