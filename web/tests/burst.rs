//! One verification authorizes exactly one change, even under concurrent requests: a
//! synchronized burst of the same POST (same flow cookie, same CSRF token) — every request sent
//! but its last byte, then all last bytes at once — gives one change, one audit success, one set
//! of notices, and a clear 409 for the others. Against reset, unlock and TAP on SQLite here; on
//! PostgreSQL with two instances in `postgres.rs`.

use std::time::Duration;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_store::{AuditQuery, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::portal::Browser;
use crate::tap::{set_actions, verified};

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";
const BURST: usize = 8;

/// What one request of a burst got.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
}

/// Sends the same form POST to `path` once per base URL in `bases` (repeat a base for several
/// requests to one instance), with `browser`'s cookies and Origin: every request but its last
/// byte first, then all the last bytes together, then reads every answer.
pub async fn burst(bases: &[String], browser: &Browser, path: &str, form: &str) -> Vec<Answer> {
    let mut streams = Vec::new();
    for base in bases {
        let host = base.trim_start_matches("http://").trim_end_matches('/');
        let origin = browser.origin.clone().unwrap_or_default();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {}\r\nOrigin: {origin}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            browser.cookie_header(),
            form.len()
        );
        let bytes = request.into_bytes();
        let mut stream = TcpStream::connect(host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(&bytes[..bytes.len() - 1]).await.unwrap();
        stream.flush().await.unwrap();
        streams.push((stream, bytes[bytes.len() - 1]));
    }
    // Let the server read every request up to its last byte.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (stream, last) in &mut streams {
        stream.write_all(&[*last]).await.unwrap();
    }
    let mut answers = Vec::new();
    for (mut stream, _) in streams {
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        answers.push(Answer { status, text });
    }
    answers
}

/// A form body with the CSRF token (and more fields).
pub fn form(csrf: &str, more: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("csrf", csrf);
    for (k, v) in more {
        s.append_pair(k, v);
    }
    s.finish()
}

/// How many audit events of `event_type` ended with `outcome`.
pub async fn audited(
    store: &dyn latchkey_store::Store,
    event_type: &str,
    outcome: Outcome,
) -> usize {
    store
        .audit_events(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|r| r.event.event_type == event_type && r.event.outcome == outcome)
        .count()
}

/// Exactly one request got `ok` (with `marker` in its page); every other one either the 409 that
/// says the verification was used (it found the flow claimed), or, when it arrived after the
/// winner had ended the flow, the way back to the start with the flow cookie removed.
pub fn one_winner(answers: &[Answer], marker: &str) {
    let won: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(won.len(), 1, "{answers:#?}");
    assert!(won[0].text.contains(marker), "{}", won[0].text);
    for a in answers.iter().filter(|a| a.status != 200) {
        match a.status {
            409 => assert!(a.text.contains("already been used"), "{}", a.text),
            303 => assert!(
                a.text.contains("\r\nlocation: /\r\n") && a.text.contains("Max-Age=0"),
                "{}",
                a.text
            ),
            _ => panic!("{a:#?}"),
        }
    }
}

async fn start() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start_with("127.0.0.1:0".parse().unwrap(), DemoOptions::default())
        .await
        .expect("demo starts")
}

fn graph_writes(demo: &Demo, method: &str, path_end: &str) -> usize {
    demo.sim
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(path_end))
        .count()
}

/// Messages to Adele's mail whose subject or body contains `text`: waits (up to 10 s) for the
/// first one to come through the outbox and the send queue, then a little more for any copy.
async fn notices(demo: &Demo, text: &str) -> usize {
    let count = || {
        demo.outbox
            .messages()
            .iter()
            .filter(|m| m.to == ADELE_MAIL && (m.subject.contains(text) || m.body.contains(text)))
            .count()
    };
    for _ in 0..200 {
        if count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_resets_on_one_verification_changes_the_password_once() {
    let demo = start().await;
    let adele = demo
        .sim
        .tenant()
        .user_id("adele.vance@contoso.com")
        .unwrap();
    let mut b = verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    let new = "Quiet-Maple-Harbour-77";
    let bases = vec![demo.portal_url().to_string(); BURST];
    let body = form(&csrf, &[("password", new), ("confirm", new)]);
    let answers = burst(&bases, &b, "/reset", &body).await;
    one_winner(&answers, "Your password has been changed");
    assert_eq!(graph_writes(&demo, "PATCH", &format!("/users/{adele}")), 1);
    assert_eq!(audited(&*demo.store, "reset", Outcome::Success).await, 1);
    assert_eq!(audited(&*demo.store, "reset", Outcome::Started).await, 1);
    // Every request that found the flow claimed is on record as refused.
    let refused = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!(
        audited(&*demo.store, "reset", Outcome::Denied).await,
        refused
    );
    assert_eq!(notices(&demo, "password was changed").await, 1);
    demo.stop().await;
}

/// A demo whose policy allows `actions`, Adele verified at /action, and a burst of the action
/// page's form (`path`) on that one verification: the browser, its CSRF token and the answers.
async fn burst_from_action(actions: &str, path: &str) -> (Demo, Browser, String, Vec<Answer>) {
    burst_from_action_with(actions, path, |_| {}).await
}

/// [`burst_from_action`], with `prepare` run on the demo before Adele verifies.
async fn burst_from_action_with(
    actions: &str,
    path: &str,
    prepare: impl FnOnce(&Demo),
) -> (Demo, Browser, String, Vec<Answer>) {
    let demo = start().await;
    set_actions(&demo, actions);
    prepare(&demo);
    let mut b = verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    let bases = vec![demo.portal_url().to_string(); BURST];
    let answers = burst(&bases, &b, path, &form(&csrf, &[])).await;
    (demo, b, csrf, answers)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_unlocks_on_one_verification_unlocks_once_and_spends_it() {
    // A cloud account changes only when it has a risk flag to dismiss (smart lockout ends by
    // itself): Adele is at risk, so the unlock is a change, and only one may happen.
    let (demo, mut b, csrf, answers) =
        burst_from_action_with("\"reset\", \"unlock\"", "/unlock", |d| {
            assert!(d.sim.tenant().set_risk(ADELE, "high", "atRisk"));
        })
        .await;
    one_winner(&answers, "flagged as at risk");
    assert_eq!(
        audited(&*demo.store, "risk.dismiss", Outcome::Success).await,
        1
    );
    // The verification is spent: no reset (nor another unlock) from the same flow afterwards.
    let new = "Quiet-Maple-Harbour-77";
    let after = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_ne!(after.status, 200, "{}", after.body);
    assert_eq!(audited(&*demo.store, "reset", Outcome::Success).await, 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_pass_requests_on_one_verification_issues_one_pass() {
    let (demo, _, _, answers) =
        burst_from_action("\"reset\", \"temporary_access_pass\"", "/tap").await;
    one_winner(&answers, "id=\"tap-pass\"");
    assert_eq!(
        graph_writes(&demo, "POST", "/temporaryAccessPassMethods"),
        1
    );
    assert_eq!(
        audited(&*demo.store, "temporary_access_pass", Outcome::Success).await,
        1
    );
    assert_eq!(notices(&demo, "Temporary Access Pass").await, 1);
    demo.stop().await;
}

// ---- faults at the last step: what the user sees and what the audit trail says ----------------

use latchkey_entra_sim::faults::{Fault, FaultKind};

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_fault_in_the_last_policy_check_says_try_again_and_keeps_the_verification() {
    let demo = start().await;
    let mut b = verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    let new = "Quiet-Maple-Harbour-77";
    demo.sim.add_fault(Fault {
        method: None,
        path_contains: "transitiveMemberOf".into(),
        kind: FaultKind::TooManyRequests {
            retry_after: Some("0".into()),
        },
        times: 0,
    });
    let page = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("nothing was changed"), "{}", page.body);
    assert!(
        !page.body.contains("helpdesk"),
        "a fault is not a refusal: {}",
        page.body
    );
    // Audited as an error, never as a policy denial.
    assert_eq!(audited(&*demo.store, "reset", Outcome::Error).await, 1);
    assert_eq!(audited(&*demo.store, "reset", Outcome::Denied).await, 0);
    // Once the directory answers again, the same verification goes on: no second verification.
    demo.sim.clear_faults();
    let done = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(audited(&*demo.store, "reset", Outcome::Success).await, 1);
    demo.stop().await;
}

/// Adele verified on a fresh demo, at the reset form.
struct AtReset {
    demo: Demo,
    browser: Browser,
    csrf: String,
    /// The path of Adele's user object, which the password PATCH goes to.
    user_path: String,
}

impl AtReset {
    async fn start() -> AtReset {
        let demo = start().await;
        let adele = demo
            .sim
            .tenant()
            .user_id("adele.vance@contoso.com")
            .unwrap();
        let mut browser = verified(&demo).await;
        let csrf = browser.get("/reset").await.csrf();
        AtReset {
            demo,
            browser,
            csrf,
            user_path: format!("/users/{adele}"),
        }
    }

    /// The next `times` password writes (0: every one until cleared) meet `kind`.
    fn fault_writes(&self, kind: FaultKind, times: u32) {
        self.demo.sim.add_fault(Fault {
            method: Some(latchkey_entra_sim::faults::Method::PATCH),
            path_contains: self.user_path.clone(),
            kind,
            times,
        });
    }

    async fn reset(&mut self, password: &str) -> crate::portal::Page {
        let form = [
            ("csrf", self.csrf.as_str()),
            ("password", password),
            ("confirm", password),
        ];
        self.browser.post("/reset", &form).await
    }

    fn writes(&self) -> usize {
        graph_writes(&self.demo, "PATCH", &self.user_path)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_write_applied_without_an_answer_is_confirmed_by_a_read_not_repeated() {
    let mut r = AtReset::start().await;
    let new = "Quiet-Maple-Harbour-77";
    r.fault_writes(FaultKind::DropResponse, 1);
    let done = r.reset(new).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(
        r.demo.sim.sign_in("adele.vance@contoso.com", new),
        latchkey_entra_sim::SignInOutcome::Success
    );
    // Written once: a write whose answer was lost is never sent again.
    assert_eq!(r.writes(), 1);
    assert_eq!(audited(&*r.demo.store, "reset", Outcome::Started).await, 1);
    assert_eq!(audited(&*r.demo.store, "reset", Outcome::Success).await, 1);
    // The steps after a change ran: the user is told.
    assert_eq!(notices(&r.demo, "password was changed").await, 1);
    r.demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_write_lost_on_the_way_is_reported_as_unknown_and_never_retried() {
    let mut r = AtReset::start().await;
    let new = "Quiet-Maple-Harbour-77";
    r.fault_writes(FaultKind::DropConnection, 0);
    let page = r.reset(new).await;
    r.demo.sim.clear_faults();
    // Honest: not "changed", not "failed"; a reference to give the helpdesk.
    assert_eq!(page.status, 202, "{}", page.body);
    assert!(page.body.contains("cannot tell yet"), "{}", page.body);
    assert_eq!(r.writes(), 1);
    let trail = r
        .demo
        .store
        .audit_events(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let reset: Vec<_> = trail
        .iter()
        .filter(|e| e.event.event_type == "reset")
        .map(|e| (e.event.outcome, e.event.reason.clone().unwrap_or_default()))
        .collect();
    assert!(
        reset.iter().any(|(o, _)| *o == Outcome::Started),
        "{reset:?}"
    );
    assert!(
        reset
            .iter()
            .any(|(o, why)| *o == Outcome::Error && why.contains("outcome unknown")),
        "{reset:?}"
    );
    let reference = &trail[0].event.correlation_id;
    assert!(page.body.contains(reference.as_str()), "{}", page.body);
    // The verification is spent: a second write could be a second change.
    assert_eq!(r.reset(new).await.status, 303);
    assert_eq!(r.writes(), 1);
    r.demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_write_the_directory_did_not_process_is_tried_again_on_the_same_verification() {
    // 503 means "not processed": try again in a minute, same verification.
    let mut r = AtReset::start().await;
    let new = "Quiet-Maple-Harbour-77";
    r.fault_writes(FaultKind::Status(503), 0);
    let busy = r.reset(new).await;
    r.demo.sim.clear_faults();
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert!(busy.body.contains("nothing was changed"), "{}", busy.body);
    let done = r.reset(new).await;
    assert_eq!(done.status, 200, "{}", done.body);
    r.demo.stop().await;
    // 500 may have been applied: never tried again on that verification. (A new demo: the
    // authenticator code of this 30-second step was used above and is never accepted twice.)
    let mut r = AtReset::start().await;
    r.fault_writes(FaultKind::Status(500), 0);
    let unknown = r.reset(new).await;
    r.demo.sim.clear_faults();
    assert_eq!(unknown.status, 202, "{}", unknown.body);
    assert_eq!(r.reset(new).await.status, 303);
    assert_eq!(r.writes(), 1);
    r.demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_directory_cannot_hold_a_page_longer_than_the_requests_budget() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start_with(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            graph_budget: Duration::from_secs(2),
            ..DemoOptions::default()
        },
    )
    .await
    .unwrap();
    let mut b = verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    // Every group read now takes 10 s (the per-attempt timeout is 30 s, with retries).
    demo.sim.add_fault(Fault {
        method: None,
        path_contains: "transitiveMemberOf".into(),
        kind: FaultKind::Latency(Duration::from_secs(10)),
        times: 0,
    });
    let new = "Quiet-Maple-Harbour-77";
    let started = std::time::Instant::now();
    let page = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    let took = started.elapsed();
    demo.sim.clear_faults();
    // The page says "try again" when the 2-second budget is spent, not after the directory.
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("nothing was changed"), "{}", page.body);
    assert!(took < Duration::from_secs(8), "{took:?}");
    demo.stop().await;
}
