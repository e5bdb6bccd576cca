//! Kiosk mode over HTTP (docs/kiosk.md): a browser that entered at `/kiosk` gets pages with no
//! way out of the portal, never stored, that start over by themselves; starting over ends its
//! flow server-side; the final page says how to sign in on this screen and never shows the
//! password. The Chromium side (idle countdown, links, high contrast) is in tests/e2e.

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_entra_sim::SignInOutcome;

use crate::portal::{Browser, Page, code_for, totp_for};

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";
const NEW_PASSWORD: &str = "kiosk-Ledger-Quartz-81";

/// The demo with kiosk mode on (its default).
async fn started() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// An HTTP client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Every `href`, `action` and `src` of a page.
fn targets(body: &str) -> Vec<String> {
    ["href=\"", "action=\"", "src=\""]
        .iter()
        .flat_map(|attr| body.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The kiosk rules every kiosk page keeps.
fn assert_kiosk_page(page: &Page, what: &str) {
    assert_eq!(
        page.headers.get("cache-control").unwrap(),
        "no-store",
        "{what}"
    );
    assert!(page.body.contains("<body class=\"kiosk\">"), "{what}");
    assert!(
        page.body
            .contains("<a class=\"restart\" href=\"/kiosk\">Start over</a>"),
        "{what}: no visible start over"
    );
    for target in targets(&page.body) {
        assert!(
            target.starts_with('#') || (target.starts_with('/') && !target.starts_with("//")),
            "{what}: {target} leads out of the portal"
        );
        assert!(!target.starts_with("/enroll"), "{what}: enrollment link");
    }
    let text = page.body.to_ascii_lowercase();
    assert!(
        !text.contains("://") && !text.contains("www."),
        "{what}: a web address in the text"
    );
    assert!(
        !page.body.contains("autocomplete=\"username\"")
            && !page.body.contains("autocomplete=\"new-password\"")
            && !page.body.contains("autocomplete=\"one-time-code\""),
        "{what}: the browser is asked to remember"
    );
}

/// Adele verified (email code, then authenticator) in a kiosk browser.
async fn kiosk_verified(demo: &Demo) -> Browser {
    let mut b = Browser::new(demo);
    let start = b.get("/kiosk").await;
    assert_eq!(start.status, 200);
    assert!(b.has_cookie("latchkey-kiosk"));
    assert_kiosk_page(&start, "start");
    // Without script, the page goes back to the start by itself after the idle time.
    assert!(
        start.body.contains(
            "<noscript><meta http-equiv=\"refresh\" content=\"120;url=/kiosk\"></noscript>"
        ),
        "{}",
        start.body
    );
    assert_eq!(b.identify(ADELE).await.status, 303);
    let code_page = b.ask_code("email").await;
    assert_kiosk_page(&code_page, "code page");
    let code = code_for(demo, ADELE_MAIL).await.unwrap();
    b.submit_code("email", &code).await;
    // The outbox is a demo page, not for kiosks: read it from another browser.
    let totp = totp_for(&mut Browser::new(demo), ADELE).await;
    assert_eq!(
        b.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_reset_ends_on_a_page_that_starts_over_and_says_how_to_sign_in_here() {
    let demo = started().await;
    let mut b = kiosk_verified(&demo).await;
    assert_kiosk_page(&b.get("/action").await, "actions");
    let form = b.get("/reset").await;
    assert_kiosk_page(&form, "reset form");
    let done = b
        .post(
            "/reset",
            &[
                ("csrf", &form.csrf()),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        demo.sim.sign_in(ADELE, NEW_PASSWORD),
        SignInOutcome::Success
    );
    assert_kiosk_page(&done, "final page");
    assert!(done.body.contains("Your password has been changed"));
    assert!(
        done.body
            .contains("choose Other user and sign in with your work account"),
        "{}",
        done.body
    );
    assert!(
        !done.body.contains(NEW_PASSWORD),
        "the password on the page"
    );
    assert!(
        !done.body.contains("myaccount"),
        "the sign-in link on a kiosk"
    );
    // The final page goes back by itself after done_seconds, activity or not.
    assert!(
        done.body.contains("content=\"30;url=/kiosk\""),
        "{}",
        done.body
    );
    assert!(done.body.contains("data-after=\"30\""));
    assert!(
        !b.has_cookie("latchkey-flow"),
        "the flow cookie outlived the flow"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_over_ends_the_flow_and_forgets_the_language() {
    let demo = started().await;
    let mut b = kiosk_verified(&demo).await;
    assert_eq!(b.get("/language?set=de&next=%2Faction").await.status, 303);
    assert!(b.get("/action").await.body.contains("<html lang=\"de\">"));
    let cookie = b.cookie("latchkey-flow").expect("a flow cookie");
    let again = b.get("/kiosk").await;
    assert_eq!(again.location.as_deref(), Some("/kiosk?again"));
    assert!(!b.has_cookie("latchkey-flow") && !b.has_cookie("lang"));
    let start = b.get("/kiosk").await;
    assert!(start.body.contains("<html lang=\"en\">"), "language kept");
    // The same cookie, replayed by whoever copied it, finds no flow: it ended server-side.
    let mut replay = Browser::new(&demo);
    replay.get("/kiosk").await;
    let replayed = client()
        .get(format!("{}/action", demo.portal_url()))
        .header("cookie", format!("latchkey-flow={cookie}"))
        .send()
        .await
        .unwrap();
    let status = replayed.status().as_u16();
    let body = replayed.text().await.unwrap();
    assert!(
        !body.contains("/reset\""),
        "the ended flow still offers a reset: {body}"
    );
    assert_ne!(status, 200, "{body}");
    // The language switch on the kiosk's start returns to the first page, not to a start over.
    assert!(
        start
            .body
            .contains("href=\"/language?set=de&amp;next=%2F\""),
        "{}",
        start.body
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_browser_cannot_reach_the_consoles_or_enrollment() {
    let demo = started().await;
    let mut b = Browser::new(&demo);
    b.get("/kiosk").await;
    for path in [
        "/enroll",
        "/admin",
        "/helpdesk",
        "/demo/outbox",
        "/enroll/signin",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location.as_deref(), Some("/kiosk"), "{path}");
    }
    // Other browsers are not kiosks: the same pages as ever.
    let mut other = Browser::new(&demo);
    let home = other.get("/").await;
    assert!(home.body.contains("href=\"/enroll\""));
    assert!(!home.body.contains("class=\"kiosk\""));
    assert_eq!(other.get("/demo/outbox").await.status, 200);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kiosk_mode_is_off_unless_configured() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start_with(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            kiosk: Default::default(),
            ..DemoOptions::default()
        },
    )
    .await
    .unwrap();
    let mut b = Browser::new(&demo);
    assert_eq!(b.get("/kiosk").await.status, 404);
    assert!(!b.has_cookie("latchkey-kiosk"));
    // A browser that claims to be a kiosk gets the ordinary pages.
    let plain = reqwest::Client::new()
        .get(format!("{}/", demo.portal_url()))
        .header("cookie", "latchkey-kiosk=1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!plain.contains("class=\"kiosk\""));
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_on_another_site_neither_makes_a_kiosk_nor_ends_a_flow() {
    let demo = started().await;
    let mut b = Browser::new(&demo);
    assert_eq!(b.identify(ADELE).await.status, 303);
    let flow = b.cookie("latchkey-flow").expect("a flow");
    let cross = client()
        .get(format!("{}/kiosk", demo.portal_url()))
        .header("cookie", b.cookie_header())
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 303);
    assert_eq!(cross.headers()["location"], "/");
    assert!(
        cross.headers().get("set-cookie").is_none(),
        "cookies changed"
    );
    // The flow is still there: the same cookie still opens it.
    assert_eq!(b.get("/verify").await.status, 200);
    assert_eq!(b.cookie("latchkey-flow").as_deref(), Some(flow.as_str()));
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_access_pass_on_a_kiosk_leaves_the_screen_by_itself() {
    let demo = started().await;
    crate::tap::set_actions(&demo, "\"reset\", \"temporary_access_pass\"");
    let mut b = kiosk_verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    let page = b.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_kiosk_page(&page, "pass");
    // The final page's time, whatever the person does; no copy button on a shared screen.
    assert!(
        page.body.contains("content=\"30;url=/kiosk\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"tap-copy\""));
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn encoded_paths_do_not_get_a_kiosk_out_and_a_stuck_cookie_does_not_loop() {
    let demo = started().await;
    let mut b = Browser::new(&demo);
    b.get("/kiosk").await;
    for path in [
        "/%65nroll",
        "/enrol%6C",
        "/%64emo/outbox",
        "/d%65mo/outbox",
        "/%45NROLL/signin",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location.as_deref(), Some("/kiosk"), "{path}");
    }
    // A language cookie the portal cannot delete (set for another path): one redirect, then the
    // start page, never a loop.
    let client = client();
    let ask = |path: &'static str| {
        client
            .get(format!("{}{path}", demo.portal_url()))
            .header("cookie", "latchkey-kiosk=1; lang=de")
            .send()
    };
    assert_eq!(
        ask("/kiosk").await.unwrap().headers()["location"],
        "/kiosk?again"
    );
    assert_eq!(ask("/kiosk?again").await.unwrap().status(), 200);
    // Only the portal's own marker value makes a kiosk.
    let page = client
        .get(format!("{}/", demo.portal_url()))
        .header("cookie", "latchkey-kiosk=0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("class=\"kiosk\""));
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_over_ends_an_enrollment_session_left_in_the_browser() {
    let demo = started().await;
    let mut b = Browser::new(&demo);
    crate::enroll::sign_in(&demo, &mut b, "ben.okafor@contoso.com", "Ben-Demo-2024!").await;
    let session = b.cookie("latchkey-enroll").expect("an enrollment session");
    assert_eq!(
        b.get("/kiosk").await.location.as_deref(),
        Some("/kiosk?again")
    );
    assert!(!b.has_cookie("latchkey-enroll"));
    // The session ended server-side: its cookie, replayed outside the kiosk, signs nobody in.
    let replay = client()
        .get(format!("{}/enroll", demo.portal_url()))
        .header("cookie", format!("latchkey-enroll={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!replay.contains("Ben Okafor"), "{replay}");
    demo.stop().await;
}
