//! Enrollment at `/enroll` over HTTP against the demo (simulated tenant, SQLite store, outbox):
//! OpenID Connect sign-in at the simulator's authorize page, adding, confirming and removing
//! methods, notifications, CSRF, codes that do not cross between enrollment and reset, policy
//! re-confirmation, and a reset with the methods enrolled here.

use std::time::Duration;

use latchkey::demo::{self, Demo};
use latchkey_store::{EnrollmentState, NewEnrollment};
use latchkey_types::ObjectId;
use latchkey_verify::{AuthenticatorApp, TotpConfig, TotpSeed};
use url::Url;

use crate::portal::{Browser, Page};

const BEN: &str = "ben.okafor@contoso.com";
const BEN_PASSWORD: &str = "Ben-Demo-2024!";
const BEN_MAIL: &str = "ben.okafor@contoso.com";
const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";

async fn demo() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("demo starts")
}

fn idp() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET /enroll` without a session: the redirect to the tenant's authorize endpoint.
async fn authorize_url(demo: &Demo, b: &mut Browser) -> Url {
    let start = b.get("/enroll").await;
    assert_eq!(start.status, 303, "{}", start.body);
    assert!(b.has_cookie("latchkey-signin"), "no sign-in cookie");
    let set = start.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let url = Url::parse(start.location.as_deref().unwrap()).unwrap();
    assert!(url.as_str().starts_with(&demo.sim.base_url()), "{url}");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "openid profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/enroll/callback", demo.portal_url())
    );
    url
}

/// Shows the simulator's sign-in page for `authorize` and submits its form; returns the portal
/// path (with query) the simulator redirects back to.
async fn sign_in_at_idp(authorize: &Url, upn: &str, password: &str) -> String {
    let http = idp();
    let form = http.get(authorize.clone()).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    assert!(
        html.contains("<form") && html.contains("name=\"password\""),
        "{html}"
    );
    // The form carries the request's parameters as hidden fields.
    let mut fields: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    fields.push(("username".into(), upn.into()));
    fields.push(("password".into(), password.into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let resp = http.post(action).form(&fields).send().await.unwrap();
    assert_eq!(resp.status(), 302, "sign-in at the simulator failed");
    let back = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/enroll/callback");
    format!("{}?{}", back.path(), back.query().unwrap_or_default())
}

/// Signs in to `/enroll` and returns the enrollment page.
pub(crate) async fn sign_in(demo: &Demo, b: &mut Browser, upn: &str, password: &str) -> Page {
    let authorize = authorize_url(demo, b).await;
    let callback = sign_in_at_idp(&authorize, upn, password).await;
    let landed = b.get(&callback).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert!(
        landed
            .body
            .contains("http-equiv=\"refresh\" content=\"0;url=/enroll\"")
    );
    assert!(b.has_cookie("latchkey-enroll"), "no session cookie");
    assert!(!b.has_cookie("latchkey-signin"), "sign-in cookie kept");
    let set: Vec<String> = landed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("latchkey-enroll=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")),
        "{set:?}"
    );
    let page = b.get("/enroll").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    page
}

/// Messages the outbox holds for `to`, oldest first.
pub(crate) fn messages_to(demo: &Demo, to: &str) -> Vec<latchkey::outbox::Message> {
    let mut v: Vec<_> = demo
        .outbox
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .collect();
    v.reverse();
    v
}

/// Waits until `to` has more than `before` messages; returns the newest one's body.
pub(crate) async fn next_message(demo: &Demo, to: &str, before: usize) -> String {
    for _ in 0..100 {
        let v = messages_to(demo, to);
        if v.len() > before {
            return v.last().unwrap().body.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no new message to {to}");
}

pub(crate) fn digits(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|s| s.len() >= 6)
        .unwrap_or_default()
        .to_string()
}

/// How many "methods changed" notices `to` has received so far (waits briefly for the queue).
async fn change_notices(demo: &Demo, to: &str, at_least: usize) -> usize {
    let count = || {
        messages_to(demo, to)
            .iter()
            .filter(|m| m.body.contains("verification methods") && m.body.contains("changed"))
            .count()
    };
    for _ in 0..100 {
        if count() >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    count()
}

/// RFC 4648 base32 (the manual key), spaces ignored.
fn base32(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = alphabet.iter().position(|a| *a == c).expect("base32 digit") as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    body.split(start)
        .nth(1)
        .and_then(|r| r.split(end).next())
        .unwrap_or_default()
}

fn app() -> AuthenticatorApp {
    AuthenticatorApp::new(TotpConfig::new("test")).unwrap()
}

pub(crate) fn code_at(seed: &TotpSeed, offset_seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_seconds);
    app().code_at(seed, at).unwrap().expose().clone()
}

async fn active(demo: &Demo, upn: &str, method: &str) -> Option<latchkey_store::Enrollment> {
    let id: ObjectId = demo.sim.tenant().user_id(upn).unwrap().parse().unwrap();
    demo.store
        .enrollment(&id, method, EnrollmentState::Active)
        .await
        .unwrap()
}

/// Adds an authenticator on the enrollment page; returns its seed (from the manual key shown).
async fn add_totp(b: &mut Browser) -> TotpSeed {
    let csrf = b.get("/enroll").await.csrf();
    let setup = b.post("/enroll/totp", &[("csrf", &csrf)]).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert!(setup.body.contains("src=\"data:image/svg+xml;base64,"));
    assert!(
        !setup.body.contains("<svg"),
        "the QR SVG must not be inlined as markup"
    );
    let key = between(
        &setup.body,
        "<code class=\"key\" id=\"manual-key\">",
        "</code>",
    );
    let seed = TotpSeed::from_bytes(latchkey_types::Secret::new(base32(key))).unwrap();
    let csrf = setup.csrf();
    // A wrong code first: refused, with the error linked to the field.
    let wrong = b
        .post(
            "/enroll/totp/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    if wrong.status != 303 {
        assert_eq!(wrong.status, 400);
        assert!(wrong.body.contains("href=\"#totp-code\""), "{}", wrong.body);
        // The same QR code and key again: no starting over after a typo.
        assert!(wrong.body.contains("src=\"data:image/svg+xml;base64,"));
        assert_eq!(
            between(
                &wrong.body,
                "<code class=\"key\" id=\"manual-key\">",
                "</code>"
            ),
            key
        );
    }
    let ok = b
        .post(
            "/enroll/totp/confirm",
            &[("csrf", &csrf), ("code", &code_at(&seed, 0))],
        )
        .await;
    assert_eq!(ok.location.as_deref(), Some("/enroll"), "{}", ok.body);
    seed
}

/// Adds an email address: a code goes to the new address and only counts once confirmed.
async fn add_email(demo: &Demo, b: &mut Browser, upn: &str, address: &str) {
    let csrf = b.get("/enroll").await.csrf();
    let before = messages_to(demo, address).len();
    let sent = b
        .post("/enroll/email", &[("csrf", &csrf), ("address", address)])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let code = digits(&next_message(demo, address, before).await);
    let page = b.get("/enroll").await;
    assert!(
        page.body
            .contains(&format!("We have sent a code to {address}"))
    );
    // Staged, not active, until the code is confirmed.
    assert_ne!(
        active(demo, upn, "email")
            .await
            .and_then(|e| e.data["address"].as_str().map(str::to_string))
            .as_deref(),
        Some(address)
    );
    let confirmed = b
        .post(
            "/enroll/email/confirm",
            &[("csrf", &page.csrf()), ("code", &code)],
        )
        .await;
    assert_eq!(
        confirmed.location.as_deref(),
        Some("/enroll"),
        "{}",
        confirmed.body
    );
    assert_eq!(
        active(demo, upn, "email").await.unwrap().data["address"],
        address
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_email_totp_and_phone_then_remove_and_reset_with_the_enrolled_methods() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    let page = sign_in(&demo, &mut b, BEN, BEN_PASSWORD).await;
    assert!(
        page.body
            .contains("Signed in as Ben Okafor (ben.okafor@contoso.com)")
    );
    assert!(
        page.body
            .contains("You have not set up any verification methods yet.")
    );
    // The demo policy requires two methods: said prominently.
    assert!(page.body.contains("Action needed"), "{}", page.body);
    assert!(
        page.body
            .contains("requires 2 verification methods and you have set up 0")
    );

    // An invalid address is refused with an error summary linked to the field.
    let bad = b
        .post(
            "/enroll/email",
            &[("csrf", &page.csrf()), ("address", "not-an-address")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("href=\"#address\"") && bad.body.contains("aria-invalid=\"true\""));

    let personal = "ben.okafor@home.example";
    add_email(&demo, &mut b, BEN, personal).await;
    let page = b.get("/enroll").await;
    assert!(page.body.contains("Added: Email address"), "{}", page.body);
    assert!(page.body.contains("We have told you about this change"));
    assert!(
        !b.get("/enroll").await.body.contains("Added: Email address"),
        "the message is shown once"
    );
    assert!(page.body.contains(personal));
    // The directory mail, known before the change, heard about it; the new address did not.
    assert_eq!(change_notices(&demo, BEN_MAIL, 1).await, 1);
    assert_eq!(change_notices(&demo, personal, 0).await, 0);

    let seed = add_totp(&mut b).await;
    let page = b.get("/enroll").await;
    assert!(page.body.contains("Added: Authenticator app"));
    assert!(!page.body.contains("Action needed"), "two methods now");
    let totp = active(&demo, BEN, "totp").await.unwrap();
    assert_eq!(totp.secret.unwrap().expose(), seed.expose_bytes());
    assert!(
        totp.last_used_step.is_some(),
        "the confirming code's step is spent"
    );
    assert_eq!(change_notices(&demo, BEN_MAIL, 2).await, 2);
    assert_eq!(change_notices(&demo, personal, 1).await, 1);

    // A phone, then remove it: every channel known before the removal (including the phone
    // itself) is told.
    let csrf = page.csrf();
    let before = messages_to(&demo, "+447700900123").len();
    let sent = b
        .post(
            "/enroll/sms",
            &[("csrf", &csrf), ("phone", "+44 7700 900123")],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let code = digits(&next_message(&demo, "+447700900123", before).await);
    let confirmed = b
        .post("/enroll/sms/confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(confirmed.location.as_deref(), Some("/enroll"));
    assert_eq!(
        active(&demo, BEN, "sms").await.unwrap().data["phone"],
        "+447700900123"
    );
    // An active method is removed only after a confirmation page.
    let asked = b.post("/enroll/sms/remove", &[("csrf", &csrf)]).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(
        asked.body.contains("Remove Mobile phone (text message)?"),
        "{}",
        asked.body
    );
    assert!(active(&demo, BEN, "sms").await.is_some(), "not removed yet");
    let removed = b
        .post(
            "/enroll/sms/remove",
            &[("csrf", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(removed.location.as_deref(), Some("/enroll"));
    assert!(active(&demo, BEN, "sms").await.is_none());
    let page = b.get("/enroll").await;
    assert!(page.body.contains("Removed: Mobile phone (text message)"));
    assert!(!page.body.contains("+447700900123"));
    assert_eq!(change_notices(&demo, "+447700900123", 1).await, 1);
    assert_eq!(change_notices(&demo, personal, 3).await, 3);
    assert_eq!(change_notices(&demo, BEN_MAIL, 4).await, 4);

    let events = demo.audit_types().await;
    for e in [
        "enroll.signin",
        "enroll.code.send",
        "enroll.confirm",
        "enroll.activate",
        "enroll.stage",
        "enroll.remove",
    ] {
        assert!(events.iter().any(|x| x == e), "no {e} in {events:?}");
    }
    // No code, seed or token in the audit trail.
    let all = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let text = format!("{all:?}");
    assert!(!text.contains(&code));

    // Sign out ends the session.
    let out = b.post("/enroll/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 200);
    assert!(!b.has_cookie("latchkey-enroll"));
    assert_eq!(
        b.get("/enroll").await.status,
        303,
        "signed out: sign in again"
    );

    // Ben resets his password through the existing flow with what he enrolled here.
    let mut r = Browser::new(&demo);
    assert_eq!(r.identify(BEN).await.location.as_deref(), Some("/verify"));
    let before = messages_to(&demo, personal).len();
    assert_eq!(r.ask_code("email").await.status, 200);
    let code = digits(&next_message(&demo, personal, before).await);
    assert_eq!(
        r.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    // The step used to confirm the app is spent: the next one is within the allowed skew.
    assert_eq!(
        r.submit_code("totp", &code_at(&seed, 30))
            .await
            .location
            .as_deref(),
        Some("/action")
    );
    let form = r.get("/reset").await;
    assert_eq!(form.status, 200);
    let new = "Tidal-Harbour-Lantern-92";
    let done = r
        .post(
            "/reset",
            &[("csrf", &form.csrf()), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(
        demo.sim.sign_in(BEN, new),
        latchkey_entra_sim::SignInOutcome::Success
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_refuses_a_wrong_nonce_a_wrong_state_and_a_replayed_callback() {
    let demo = demo().await;

    // The nonce in the authorization request is changed: the ID token carries the wrong one.
    let mut b = Browser::new(&demo);
    let mut url = authorize_url(&demo, &mut b).await;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "nonce" {
                (k, "attacker-nonce".into())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = sign_in_at_idp(&url, BEN, BEN_PASSWORD).await;
    let refused = b.get(&callback).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("We could not sign you in"));
    assert!(!b.has_cookie("latchkey-enroll"));
    assert_eq!(b.get("/enroll").await.status, 303, "no session");

    // The state in the callback is not ours.
    let mut b = Browser::new(&demo);
    let url = authorize_url(&demo, &mut b).await;
    let callback = sign_in_at_idp(&url, BEN, BEN_PASSWORD).await;
    let mut forged = Url::parse(&format!("http://x{callback}")).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, "forged".into())
            } else {
                (k, v)
            }
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = b
        .get(&format!("{}?{}", forged.path(), forged.query().unwrap()))
        .await;
    assert_eq!(refused.status, 400);
    assert!(!b.has_cookie("latchkey-enroll"));
    // The attempt is single use: the genuine callback no longer works either.
    let replay = b.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert!(!b.has_cookie("latchkey-enroll"));

    // A callback delivered to another browser (no sign-in cookie) is refused.
    let mut victim = Browser::new(&demo);
    let url = authorize_url(&demo, &mut victim).await;
    let callback = sign_in_at_idp(&url, BEN, BEN_PASSWORD).await;
    let mut attacker = Browser::new(&demo);
    assert_eq!(attacker.get(&callback).await.status, 400);
    assert!(!attacker.has_cookie("latchkey-enroll"));
    // ... and the genuine browser still signs in with it.
    assert_eq!(victim.get(&callback).await.status, 200);
    assert!(victim.has_cookie("latchkey-enroll"));

    let failures = crate::helpers::audit_of(&demo, "enroll.signin")
        .await
        .into_iter()
        .map(|e| e.reason.unwrap_or_default())
        .collect::<Vec<_>>();
    assert!(failures.iter().any(|r| r.contains("nonce")), "{failures:?}");
    assert!(failures.iter().any(|r| r.contains("state")), "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|r| r.contains("no sign-in in progress")),
        "{failures:?}"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_codes_and_reset_codes_do_not_cross() {
    let demo = demo().await;
    let new_address = "adele@new.example";
    // Enrollment: a confirmation code to a new address (C).
    let mut e = Browser::new(&demo);
    let page = sign_in(&demo, &mut e, ADELE, "Adele-Demo-2024!").await;
    let before = messages_to(&demo, new_address).len();
    e.post(
        "/enroll/email",
        &[("csrf", &page.csrf()), ("address", new_address)],
    )
    .await;
    let c = digits(&next_message(&demo, new_address, before).await);
    // Reset: a verification code by text message (R), open at the same time.
    let mut r = Browser::new(&demo);
    r.identify(ADELE).await;
    let phone = "+14255550109";
    let before = messages_to(&demo, phone).len();
    assert_eq!(r.ask_code("sms").await.status, 200);
    let code_r = digits(&next_message(&demo, phone, before).await);
    assert_ne!(c, code_r);

    // C is no reset verification, for either channel.
    assert_eq!(r.submit_code("email", &c).await.status, 400);
    assert_eq!(r.submit_code("sms", &c).await.status, 400);
    // R confirms no enrollment.
    let csrf = e.get("/enroll").await.csrf();
    let refused = e
        .post(
            "/enroll/email/confirm",
            &[("csrf", &csrf), ("code", &code_r)],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("That code is not right"));
    assert_eq!(
        active(&demo, ADELE, "email").await.unwrap().data["address"],
        ADELE_MAIL,
        "a reset code changed the enrolled address"
    );
    assert_eq!(
        e.post("/enroll/sms/confirm", &[("csrf", &csrf), ("code", &code_r)])
            .await
            .status,
        400
    );
    // Each still works where it belongs.
    let ok = e
        .post("/enroll/email/confirm", &[("csrf", &csrf), ("code", &c)])
        .await;
    assert_eq!(ok.location.as_deref(), Some("/enroll"));
    assert_eq!(
        active(&demo, ADELE, "email").await.unwrap().data["address"],
        new_address
    );
    assert_eq!(
        r.submit_code("sms", &code_r).await.location.as_deref(),
        Some("/verify")
    );
    // The old address, known before the change, was told.
    assert_eq!(change_notices(&demo, ADELE_MAIL, 1).await, 1);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_missing_wrong_or_cross_origin_is_refused_and_changes_nothing() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    let page = sign_in(&demo, &mut b, ADELE, "Adele-Demo-2024!").await;
    let good = page.csrf();
    let sent_before = demo.outbox.messages().len();
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/enroll/email", vec![("address", "evil@attacker.example")]),
        (
            "/enroll/email",
            vec![("csrf", "forged"), ("address", "evil@attacker.example")],
        ),
        ("/enroll/sms", vec![("phone", "+15555550100")]),
        ("/enroll/totp", vec![]),
        ("/enroll/email/remove", vec![]),
        ("/enroll/totp/remove", vec![("csrf", "")]),
        ("/enroll/reconfirm", vec![]),
        ("/enroll/signout", vec![]),
    ];
    for (path, form) in attempts {
        let r = b.post(path, &form).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    // A valid token from another origin.
    b.origin = Some("https://evil.example".into());
    let r = b
        .post(
            "/enroll/email",
            &[("csrf", &good), ("address", "evil@attacker.example")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b.post("/enroll/email/remove", &[("csrf", &good)]).await;
    assert_eq!(r.status, 403);
    b.origin = Some(demo.portal_url().to_string());
    // A token of another session.
    let mut other = Browser::new(&demo);
    let other_page = sign_in(&demo, &mut other, BEN, BEN_PASSWORD).await;
    let r = b
        .post("/enroll/email/remove", &[("csrf", &other_page.csrf())])
        .await;
    assert_eq!(r.status, 403);

    // Nothing changed: the same methods, nothing pending, nothing sent.
    let id: ObjectId = demo.sim.tenant().user_id(ADELE).unwrap().parse().unwrap();
    let list = demo.store.enrollments(&id).await.unwrap();
    assert!(
        list.iter().all(|e| e.state == EnrollmentState::Active),
        "{list:?}"
    );
    let mut methods: Vec<&str> = list.iter().map(|e| e.method.as_str()).collect();
    methods.sort();
    assert_eq!(methods, ["email", "sms", "totp"]);
    assert_eq!(
        list.iter().find(|e| e.method == "email").unwrap().data["address"],
        ADELE_MAIL
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(demo.outbox.messages().len(), sent_before);
    // The session is still usable with the right token.
    assert_eq!(b.get("/enroll").await.status, 200);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_confirmed_longer_ago_than_the_policy_allows_are_asked_about() {
    let demo = demo().await;
    // Ben's email was confirmed 200 days ago; the demo policy asks again after 180.
    let id: ObjectId = demo.sim.tenant().user_id(BEN).unwrap().parse().unwrap();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(200);
    demo.store
        .stage_enrollment(
            NewEnrollment {
                subject: id,
                method: "email".into(),
                data: serde_json::json!({ "address": "ben@old.example" }),
                secret: None,
            },
            long_ago,
        )
        .await
        .unwrap();
    assert!(
        demo.store
            .activate_enrollment(&id, "email", long_ago)
            .await
            .unwrap()
    );

    let mut b = Browser::new(&demo);
    let page = sign_in(&demo, &mut b, BEN, BEN_PASSWORD).await;
    assert!(
        page.body.contains("Are these still yours?"),
        "{}",
        page.body
    );
    assert!(page.body.contains("more than 180 days ago"));
    let done = b.post("/enroll/reconfirm", &[("csrf", &page.csrf())]).await;
    assert_eq!(done.location.as_deref(), Some("/enroll"));
    let page = b.get("/enroll").await;
    assert!(!page.body.contains("Are these still yours?"));
    assert!(
        page.body
            .contains("your verification methods are confirmed")
    );
    let e = active(&demo, BEN, "email").await.unwrap();
    assert!(
        e.confirmed_at.unwrap() > time::OffsetDateTime::now_utc() - time::Duration::minutes(5),
        "not re-confirmed"
    );
    assert!(
        demo.audit_types()
            .await
            .iter()
            .any(|t| t == "enroll.reconfirm")
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_without_an_enrollment_policy_get_a_plain_not_available_page() {
    let demo = demo().await;
    // Lena is an administrator outside "SSPR Enabled": no policy applies.
    let mut b = Browser::new(&demo);
    let authorize = authorize_url(&demo, &mut b).await;
    let callback = sign_in_at_idp(&authorize, "lena.novak@contoso.com", "Lena-Demo-2024!").await;
    assert_eq!(b.get(&callback).await.status, 200);
    let page = b.get("/enroll").await;
    assert_eq!(page.status, 403);
    assert!(
        page.body
            .contains("Setting up verification methods is not available for your account")
    );
    assert!(!page.body.contains("action=\"/enroll/email\""));
    assert!(!b.has_cookie("latchkey-enroll"), "the session ends");
    assert!(
        demo.audit_types()
            .await
            .iter()
            .any(|t| t == "enroll.denied")
    );
    demo.stop().await;
}
