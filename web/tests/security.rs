//! The security principles of docs/security.md, each attacked over HTTP against the real portal
//! (demo mode: simulated tenant, SQLite store, outbox). Each test names its principle.

use std::time::{Duration, Instant};

use latchkey::demo::{self, Demo};

use crate::portal::{Browser, code_for, totp_for};

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";
const KOFI: &str = "kofi.mensah@contoso.com";
const KOFI_MAIL: &str = "kofi.mensah@proton.example";

async fn demo() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("demo starts")
}

/// Replaces the masked destination a code page shows (`a•••@o•••`: each account has its own, a
/// real one or a keyed stand-in) with one placeholder.
fn strip_masks(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("•••@") {
        // One character (the mailbox's first letter) before the mask.
        let start = rest[..at].char_indices().last().map_or(at, |(i, _)| i);
        out.push_str(&rest[..start]);
        // The domain's first letter, then "•••".
        let after = &rest[at + "•••@".len()..];
        let tail = after.char_indices().nth(4).map_or(after.len(), |(i, _)| i);
        out.push_str("MASK");
        rest = &after[tail..];
    }
    out.push_str(rest);
    out
}

/// Strips what legitimately differs between two renderings of one page (tokens, nonces).
fn normalize(body: &str) -> String {
    let mut out = String::new();
    for part in body.split('"') {
        let looks_random = part.len() >= 20
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        out.push_str(if looks_random { "<random>" } else { part });
        out.push('"');
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn principle_1_no_enumeration_same_answer_for_every_kind_of_account() {
    let demo = demo().await;
    // Enrolled and in scope; unknown; disabled; in scope but not enrolled; admin (out of scope);
    // never enrolled but with phone and email registered in Entra (which the policy accepts).
    let accounts = [
        ADELE,
        "nobody@contoso.com",
        "ivan.petrov@contoso.com",
        "ben.okafor@contoso.com",
        "it.admin@contoso.com",
        KOFI,
    ];
    let mut seen = Vec::new();
    for login in accounts {
        let mut b = Browser::new(&demo);
        let started = Instant::now();
        let start = b.identify(login).await;
        let took = started.elapsed();
        let verify = b.get("/verify").await;
        let code = b.ask_code("email").await;
        let cookies: Vec<String> = start
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split('=').next().unwrap().to_string())
            .collect();
        seen.push((
            login,
            start.status,
            start.location.clone(),
            cookies,
            normalize(&verify.body),
            code.status,
            normalize(&strip_masks(&code.body.replace(login, "ACCOUNT"))),
            took,
        ));
    }
    let (_, status, location, cookies, verify, code_status, code_body, _) = &seen[0];
    assert_eq!(*status, 303);
    for (login, s, l, c, v, cs, cb, took) in &seen {
        assert_eq!(
            (s, l, c),
            (status, location, cookies),
            "identify differs for {login}"
        );
        assert_eq!(v, verify, "verify page differs for {login}");
        assert_eq!(
            (cs, cb),
            (code_status, code_body),
            "code page differs for {login}"
        );
        assert!(
            *took >= Duration::from_millis(400),
            "{login} answered in {took:?}, before the deadline"
        );
    }
    let times: Vec<Duration> = seen.iter().map(|s| s.7).collect();
    let spread = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    assert!(
        spread < Duration::from_millis(200),
        "timing spread {spread:?}: {times:?}"
    );
    // Only the real accounts got a message: Adele at her enrolled address, Kofi at the one he
    // registered in Entra.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sent: Vec<String> = demo.outbox.messages().into_iter().map(|m| m.to).collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![ADELE_MAIL.to_string(), KOFI_MAIL.to_string()],
        "messages went to {sent:?}"
    );
    // And the masks they were shown are where the codes went; the others' are stand-ins.
    assert!(seen[0].6.contains("MASK"), "the code page shows a mask");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn principle_2_throttles_sends_and_starts_per_account_and_client() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    b.identify(ADELE).await;
    for i in 0..5 {
        assert_eq!(b.ask_code("email").await.status, 200, "send {i}");
    }
    let sixth = b.ask_code("email").await;
    assert_eq!(sixth.status, 429);
    assert!(sixth.body.contains("Too many attempts"), "{}", sixth.body);
    // A new flow does not reset a per-account limit (keyed on the object id, not the flow)...
    let mut again = Browser::new(&demo);
    again.identify("ADELE.VANCE@contoso.com").await;
    assert_eq!(again.ask_code("email").await.status, 429);
    // ...and an unknown account is throttled exactly like a real one.
    let mut ghost = Browser::new(&demo);
    ghost.identify("ghost@contoso.com").await;
    for _ in 0..5 {
        assert_eq!(ghost.ask_code("email").await.status, 200);
    }
    assert_eq!(ghost.ask_code("email").await.status, 429);
    // Flow starts per client address: 20 per 10 minutes (3 used above).
    let mut starts = 3;
    let mut last = 303;
    while starts < 21 {
        last = Browser::new(&demo)
            .identify("someone@contoso.com")
            .await
            .status;
        starts += 1;
    }
    assert_eq!(
        last, 429,
        "the 21st start from one address was not throttled"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_are_single_use_limited_in_tries_and_newest_only() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    b.identify(ADELE).await;
    b.ask_code("email").await;
    let first = code_for(&demo, ADELE_MAIL).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.ask_code("email").await;
    let second = loop {
        let c = code_for(&demo, ADELE_MAIL).await.unwrap();
        if c != first || demo.outbox.messages().len() >= 2 {
            break c;
        }
    };
    assert_ne!(first, second);
    // Newest only: the first code no longer works.
    assert_eq!(b.submit_code("email", &first).await.status, 400);
    // The newest works once...
    assert_eq!(b.submit_code("email", &second).await.status, 303);
    // ...and never again (email is now verified; a replay in a new flow of the same user fails).
    let mut other = Browser::new(&demo);
    other.identify(ADELE).await;
    assert_eq!(
        other.submit_code("email", &second).await.status,
        400,
        "a used code verified another flow"
    );

    // Guessing: after 3 wrong codes in 5 minutes even the right code is refused (another user,
    // as Adele's failure streak above already counts against her).
    let mut c = Browser::new(&demo);
    c.identify("anna.jensen@contoso.com").await;
    c.ask_code("email").await;
    let right = code_for(&demo, "anna.jensen@outlook.example")
        .await
        .unwrap();
    let wrong = if right == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for _ in 0..2 {
        assert_eq!(c.submit_code("email", wrong).await.status, 400);
    }
    // The failure throttle (3 in 5 minutes) stops guessing before the code's own 5 tries run out.
    let third = c.submit_code("email", wrong).await;
    assert_eq!(third.status, 400);
    let blocked = c.submit_code("email", &right).await;
    assert_eq!(
        blocked.status, 429,
        "guessing was not throttled: {}",
        blocked.status
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn principle_4_codes_are_bound_to_their_flow() {
    let demo = demo().await;
    let mut a = Browser::new(&demo);
    a.identify(ADELE).await;
    a.ask_code("email").await;
    let code = code_for(&demo, ADELE_MAIL).await.unwrap();
    // Another flow of the same user cannot use flow A's code.
    let mut b = Browser::new(&demo);
    b.identify(ADELE).await;
    assert_eq!(b.submit_code("email", &code).await.status, 400);
    // A flow for an unknown account cannot either, and never leads further.
    let mut ghost = Browser::new(&demo);
    ghost.identify("ghost@contoso.com").await;
    assert_eq!(ghost.submit_code("email", &code).await.status, 400);
    // An unverified flow is sent back to its methods, like any other: never further.
    assert_eq!(
        ghost.get("/action").await.location.as_deref(),
        Some("/verify")
    );
    assert_eq!(
        ghost.get("/reset").await.location.as_deref(),
        Some("/verify")
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_steps_are_never_accepted_twice() {
    let demo = demo().await;
    let mut a = Browser::new(&demo);
    a.identify(ADELE).await;
    let code = totp_for(&mut a, ADELE).await;
    assert_eq!(a.submit_code("totp", &code).await.status, 303);
    let mut b = Browser::new(&demo);
    b.identify(ADELE).await;
    assert_eq!(
        b.submit_code("totp", &code).await.status,
        400,
        "a TOTP code was replayed"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn principle_6_csrf_origin_headers_and_cookies() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    let home = b.get("/").await;
    let csp = home.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-"),
        "{csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        home.body.contains(&format!("nonce=\"{nonce}\"")),
        "page style lacks the CSP nonce"
    );
    assert_eq!(home.headers["cache-control"], "no-store");
    assert_eq!(home.headers["referrer-policy"], "no-referrer");
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    let cookie = home.headers["set-cookie"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=strict"),
        "{cookie}"
    );

    // No token, a wrong token, a foreign origin: refused, and no flow is created.
    let csrf = home.csrf();
    assert_eq!(
        b.post("/start", &[("login", ADELE)]).await.status,
        400,
        "a form without csrf is malformed"
    );
    assert_eq!(
        b.post("/start", &[("csrf", "forged"), ("login", ADELE)])
            .await
            .status,
        403
    );
    b.origin = Some("https://evil.example".into());
    assert_eq!(
        b.post("/start", &[("csrf", &csrf), ("login", ADELE)])
            .await
            .status,
        403
    );
    assert!(!b.has_cookie("latchkey-flow"));
    // A token from another browser (another pre-session) does not work here.
    let mut other = Browser::new(&demo);
    let theirs = other.get("/").await.csrf();
    b.origin = Some(b.base.clone());
    assert_eq!(
        b.post("/start", &[("csrf", &theirs), ("login", ADELE)])
            .await
            .status,
        403
    );
    // Oversized forms are refused before any handler runs.
    let big = "a".repeat(20 * 1024);
    assert_eq!(
        b.post("/start", &[("csrf", &csrf), ("login", &big)])
            .await
            .status,
        413
    );
    demo.stop().await;
}

/// Walks Adele through email + TOTP verification; returns the browser at /action.
pub(crate) async fn verified(demo: &Demo) -> Browser {
    let mut b = Browser::new(demo);
    assert_eq!(b.identify(ADELE).await.status, 303);
    b.ask_code("email").await;
    let code = code_for(demo, ADELE_MAIL).await.unwrap();
    assert_eq!(
        b.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    let totp = totp_for(&mut b, ADELE).await;
    assert_eq!(
        b.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complete_reset_changes_the_password_voids_other_flows_and_notifies() {
    let demo = demo().await;
    let mut pending = Browser::new(&demo);
    pending.identify(ADELE).await;
    let mut b = verified(&demo).await;
    let form = b.get("/reset").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    // A weak password is refused with its reason, nothing changes.
    let weak = b
        .post(
            "/reset",
            &[
                ("csrf", &csrf),
                ("password", "Adele-Vance-2024!"),
                ("confirm", "Adele-Vance-2024!"),
            ],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert!(
        weak.body.contains("must not contain your name"),
        "{}",
        weak.body
    );
    assert!(
        (demo.sim.sign_in(ADELE, "Adele-Demo-2024!") == latchkey_entra_sim::SignInOutcome::Success)
    );
    let new = "Quiet-Maple-Harbour-77";
    let done = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert!(
        (demo.sim.sign_in(ADELE, new) == latchkey_entra_sim::SignInOutcome::Success),
        "the simulator does not accept the new password"
    );
    assert!(
        !(demo.sim.sign_in(ADELE, "Adele-Demo-2024!")
            == latchkey_entra_sim::SignInOutcome::Success)
    );
    // Principle 8: the other open flow of this user is gone, and the user was told everywhere.
    assert_eq!(pending.get("/verify").await.location.as_deref(), Some("/"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let notices: Vec<(String, String)> = demo
        .outbox
        .messages()
        .into_iter()
        .filter(|m| {
            m.subject.contains("password was changed")
                || (m.channel == "sms" && m.body.contains("password"))
        })
        .map(|m| (m.channel.to_string(), m.to))
        .collect();
    assert!(
        notices.contains(&("email".into(), ADELE_MAIL.into())),
        "{notices:?}"
    );
    assert!(
        notices.contains(&("email".into(), ADELE.into())),
        "{notices:?}"
    );
    assert!(notices.iter().any(|(c, _)| c == "sms"), "{notices:?}");
    // Principle 10: the audit trail has the story, in order.
    let events = demo.audit_types().await;
    for e in ["flow.start", "code.send", "verify", "reset"] {
        assert!(
            events.contains(&e.to_string()),
            "{e} not audited: {events:?}"
        );
    }
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_method_is_not_enough_when_the_policy_requires_two() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    b.identify(ADELE).await;
    b.ask_code("email").await;
    let code = code_for(&demo, ADELE_MAIL).await.unwrap();
    assert_eq!(
        b.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    assert_eq!(
        b.get("/reset").await.location.as_deref(),
        Some("/verify"),
        "reset reachable after one method"
    );
    assert_eq!(b.get("/action").await.location.as_deref(), Some("/verify"));
    // The verified channel is not offered again (a second email code would prove the same thing)...
    let page = b.get("/verify").await;
    assert!(
        !page.body.contains("/verify/email/start"),
        "email offered twice"
    );
    assert!(page.body.contains("Step 2 of 2"));
    // ...and the early visits above did not end the flow: a second method completes it.
    let totp = totp_for(&mut b, ADELE).await;
    assert_eq!(
        b.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_claim_https_with_a_forwarded_header() {
    // The demo's public URL is plain http on loopback: no HSTS, whatever a client says.
    let demo = demo().await;
    let page = reqwest::Client::new()
        .get(format!("{}/", demo.portal_url()))
        .header("x-forwarded-proto", "https")
        .header("forwarded", "proto=https")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers().get("strict-transport-security").is_none(),
        "{:?}",
        page.headers()
    );
    demo.stop().await;
}

/// What the framework itself refuses (an unknown path, a form that does not parse or is too
/// large) is answered like every other error: the portal's page, in the browser's language, with
/// the security headers; never the framework's own words.
#[tokio::test(flavor = "multi_thread")]
async fn requests_the_portal_cannot_read_get_its_own_error_pages() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    let index = b.get("/").await;
    let csrf = index.csrf();
    let own_page = |p: &crate::portal::Page, status: u16| {
        assert_eq!(p.status, status, "{}", p.body);
        let ct = p.headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with("text/html"), "{ct}");
        assert!(
            p.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("nonce-")
        );
        assert_eq!(p.headers["cache-control"], "no-store");
        for framework in [
            "Parse error",
            "missing field",
            "payload",
            "Content type error",
        ] {
            assert!(!p.body.contains(framework), "{framework}: {}", p.body);
        }
    };
    let unknown = b.get("/no/such/page").await;
    own_page(&unknown, 404);
    assert!(unknown.body.contains("This page does not exist"));
    // A form without its token field, and a form over the 16 KiB limit.
    let missing = b.post("/start", &[("login", ADELE)]).await;
    own_page(&missing, 400);
    assert!(missing.body.contains("The form could not be read"));
    let huge = "a".repeat(17 * 1024);
    let large = b.post("/start", &[("csrf", &csrf), ("login", &huge)]).await;
    own_page(&large, 413);
    assert!(large.body.contains("too large"));
    demo.stop().await;
}

/// Something that cannot be a code (longer than any code, or not digits) is a slip, not a
/// guess: it is refused with its own message and costs no try.
#[tokio::test(flavor = "multi_thread")]
async fn a_typed_text_that_cannot_be_a_code_costs_no_try() {
    let demo = demo().await;
    let mut b = Browser::new(&demo);
    assert_eq!(b.identify(ADELE).await.status, 303);
    b.ask_code("email").await;
    let code = code_for(&demo, ADELE_MAIL).await.unwrap();
    for typed in ["1".repeat(70).as_str(), "my code is 1234"] {
        let page = b.submit_code("email", typed).await;
        assert_eq!(page.status, 400);
        assert!(page.body.contains("not a code we sent"), "{}", page.body);
    }
    // Three wrong guesses are the burst limit: the slips above did not count.
    for _ in 0..2 {
        assert_eq!(b.submit_code("email", "00000000").await.status, 400);
    }
    let page = b.submit_code("email", &code).await;
    assert_eq!(page.location.as_deref(), Some("/verify"), "{}", page.body);
    demo.stop().await;
}
