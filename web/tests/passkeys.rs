//! Passkeys over HTTP against the demo served as `http://localhost:PORT` (a host name: the only
//! kind of relying party browsers accept). A software authenticator answers the prompts as a
//! browser with a passkey would: registration at `/enroll`, a reset with the passkey alone and
//! as one of two methods, and what must be refused — another origin, a replayed or concurrent
//! answer, a cloned key (counter), another account's passkey, an unknown account (which must
//! look like a known one).

use std::path::PathBuf;
use std::sync::Arc;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{Ceremony, client_data_json};

use crate::enroll::sign_in;
use crate::portal::{Browser, Page};

const BEN: &str = "ben.okafor@contoso.com";
const BEN_PASSWORD: &str = "Ben-Demo-2024!";

async fn demo() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = DemoOptions {
        localhost: true,
        ..DemoOptions::default()
    };
    demo::start_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("demo starts")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    latchkey_webauthn::decode_base64_lenient(text).unwrap()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .unwrap()
}

/// The JSON of the page's `data-options` attribute (Tera escaped it for the attribute).
fn options(page: &Page) -> serde_json::Value {
    let raw = page
        .body
        .split("data-options=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no options in {}", page.body));
    let json = raw
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap()
}

/// Registers a passkey named `name` for the signed-in session of `b`; returns the answer page.
async fn register(b: &mut Browser, key: &mut SoftAuthenticator, name: &str, origin: &str) -> Page {
    let csrf = b.get("/enroll").await.csrf();
    let prompt = b
        .post("/enroll/passkey/begin", &[("csrf", &csrf), ("name", name)])
        .await;
    assert_eq!(prompt.status, 200, "{}", prompt.body);
    let o = options(&prompt);
    assert_eq!(o["mode"], "create");
    assert_eq!(o["rp_id"], "localhost");
    let challenge = unb64(o["challenge"].as_str().unwrap());
    let user = unb64(o["user_id"].as_str().unwrap());
    let exclude: Vec<Vec<u8>> = o["exclude"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| unb64(v.as_str().unwrap()))
        .collect();
    let client_data = client_data_json(Ceremony::Create, &challenge, origin);
    let made = key
        .make_credential(
            "localhost",
            &sha256(&client_data),
            &user,
            true,
            &exclude,
            SoftAttestation::PackedSelf,
        )
        .unwrap();
    let attestation = made.attestation_object().unwrap();
    b.post(
        "/enroll/passkey",
        &[
            ("csrf", &prompt.csrf()),
            ("client_data_json", &b64(&client_data)),
            ("attestation_object", &b64(&attestation)),
        ],
    )
    .await
}

/// An answer to a flow's passkey prompt.
struct Answer {
    fields: Vec<(&'static str, String)>,
}

/// Shows the passkey prompt of `b`'s flow and answers it with `key` from `origin`.
async fn answer(b: &mut Browser, key: &mut SoftAuthenticator, origin: &str) -> Answer {
    answers(b, key, &[origin]).await.remove(0)
}

/// Shows one passkey prompt and makes one answer to it per origin (all to the same challenge).
async fn answers(b: &mut Browser, key: &mut SoftAuthenticator, origins: &[&str]) -> Vec<Answer> {
    let csrf = b.get("/verify").await.csrf();
    let prompt = b.post("/verify/passkey/start", &[("csrf", &csrf)]).await;
    assert_eq!(prompt.status, 200, "{}", prompt.body);
    let o = options(&prompt);
    assert_eq!(o["mode"], "get");
    let challenge = unb64(o["challenge"].as_str().unwrap());
    origins
        .iter()
        .map(|origin| {
            let client_data = client_data_json(Ceremony::Get, &challenge, origin);
            let got = key
                .get_assertion("localhost", &sha256(&client_data), &[])
                .unwrap();
            Answer {
                fields: vec![
                    ("csrf", prompt.csrf()),
                    ("credential_id", b64(&got.credential_id)),
                    ("client_data_json", b64(&client_data)),
                    ("authenticator_data", b64(&got.auth_data)),
                    ("signature", b64(&got.signature)),
                    ("user_handle", b64(&got.user_handle.unwrap_or_default())),
                ],
            }
        })
        .collect()
}

/// The reasons of the audit trail's events, newest first.
async fn audit_reasons(demo: &Demo) -> Vec<String> {
    let query = latchkey_store::AuditQuery {
        limit: 1000,
        ..Default::default()
    };
    let events = demo.store.audit_events(&query).await.unwrap();
    events.into_iter().filter_map(|r| r.event.reason).collect()
}

async fn submit(b: &mut Browser, a: &Answer) -> Page {
    let form: Vec<(&str, &str)> = a.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post("/verify/passkey", &form).await
}

/// Ben, signed in at `/enroll`, registers a passkey held by `key`.
async fn ben_with_passkey(demo: &Demo, key: &mut SoftAuthenticator) {
    let mut b = Browser::new(demo);
    sign_in(demo, &mut b, BEN, BEN_PASSWORD).await;
    let done = register(&mut b, key, "YubiKey", demo.portal_url()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = b.get("/enroll").await;
    assert!(page.body.contains("YubiKey"), "{}", page.body);
    assert!(page.body.contains("not used yet"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_passkey_alone_resets_under_a_policy_that_allows_it() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    ben_with_passkey(&demo, &mut key).await;
    assert!(
        demo.audit_types()
            .await
            .contains(&"enroll.activate".to_string())
    );

    let mut b = Browser::new(&demo);
    assert_eq!(b.identify(BEN).await.status, 303);
    let choose = b.get("/verify").await;
    assert!(
        choose.body.contains("Use a passkey or security key"),
        "{}",
        choose.body
    );
    let a = answer(&mut b, &mut key, demo.portal_url()).await;
    let done = submit(&mut b, &a).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/action"));
    let action = b.get("/action").await;
    assert_eq!(action.status, 200, "{}", action.body);

    // The same answer again is refused: its challenge was taken, and the flow moved on.
    let again = submit(&mut b, &a).await;
    assert_ne!(again.location.as_deref(), Some("/action"), "{}", again.body);
    assert!(again.status >= 400, "{}: {}", again.status, again.body);
    // The list shows the use.
    let mut e = Browser::new(&demo);
    let page = sign_in(&demo, &mut e, BEN, BEN_PASSWORD).await;
    assert!(page.body.contains("last used"), "{}", page.body);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_one_of_two_methods_under_a_policy_that_says_so() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    ben_with_passkey(&demo, &mut key).await;
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"reset\", \"enroll\"]\nmethods = [\"email\", \"passkey\"]\n\
         sources = [\"latchkey\", \"entra\"]\nmethods_required = 2\n"
    );
    let set = latchkey_policy::parse_sources(&[(PathBuf::from("t.toml"), text)]).unwrap();
    *demo.services.policies.write().unwrap() = Arc::new(set);
    // Ben needs a second method for a two-method policy to match him (else he would get a
    // flow that can never be verified): an email address enrolled here.
    let ben: latchkey_types::ObjectId = demo.sim.tenant().user_id(BEN).unwrap().parse().unwrap();
    let email = latchkey_store::NewEnrollment {
        subject: ben,
        method: "email".into(),
        data: serde_json::json!({ "address": "ben.home@example.net" }),
        secret: None,
    };
    let now = time::OffsetDateTime::now_utc();
    demo.store.stage_enrollment(email, now).await.unwrap();
    assert!(
        demo.store
            .activate_enrollment(&ben, "email", now)
            .await
            .unwrap()
    );
    let mut b = Browser::new(&demo);
    assert_eq!(b.identify(BEN).await.status, 303);
    let a = answer(&mut b, &mut key, demo.portal_url()).await;
    let first = submit(&mut b, &a).await;
    assert_eq!(first.location.as_deref(), Some("/verify"), "{}", first.body);
    let next = b.get("/verify").await;
    assert!(next.body.contains("Step 2 of 2"), "{}", next.body);
    assert!(
        !next.body.contains("/verify/passkey/start"),
        "{}",
        next.body
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_origins_clones_and_other_accounts_are_refused_alike() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    ben_with_passkey(&demo, &mut key).await;
    let wrong = "That passkey was not accepted for this account.";

    // Another origin (a phishing site relaying the prompt).
    let mut b = Browser::new(&demo);
    b.identify(BEN).await;
    let a = answer(&mut b, &mut key, "https://login-contoso.example").await;
    let refused = submit(&mut b, &a).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains(wrong), "{}", refused.body);

    // A failed answer takes its prompt with it: a good answer to the same prompt, sent after
    // it, is refused too (the challenge is single use, whatever the outcome).
    let mut b = Browser::new(&demo);
    b.identify(BEN).await;
    let both = answers(
        &mut b,
        &mut key,
        &["https://evil.example", demo.portal_url()],
    )
    .await;
    assert_eq!(submit(&mut b, &both[0]).await.status, 400);
    let late = submit(&mut b, &both[1]).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains(wrong), "{}", late.body);
    let reasons = audit_reasons(&demo).await;
    // The page after the failure showed a new prompt; the late answer names the old one.
    assert_eq!(
        reasons.first().map(String::as_str),
        Some("challenge"),
        "{reasons:?}"
    );

    // Ben's passkey in Adele's flow, and in an unknown account's: the same answer.
    for account in ["adele.vance@contoso.com", "nobody.here@contoso.com"] {
        let mut b = Browser::new(&demo);
        b.identify(account).await;
        let a = answer(&mut b, &mut key, demo.portal_url()).await;
        let refused = submit(&mut b, &a).await;
        assert_eq!(refused.status, 400, "{account}: {}", refused.body);
        assert!(refused.body.contains(wrong), "{account}: {}", refused.body);
    }

    demo.stop().await;
}

/// (Its own demo: the failures above count against this client's address, as they should.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloned_key_is_refused_and_audited() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    ben_with_passkey(&demo, &mut key).await;
    // A counter that went back: a cloned key. Refused and audited.
    let id = {
        let mut b = Browser::new(&demo);
        b.identify(BEN).await;
        let a = answer(&mut b, &mut key, demo.portal_url()).await;
        let id = unb64(&a.fields[1].1);
        let ok = submit(&mut b, &a).await;
        assert_eq!(ok.location.as_deref(), Some("/action"), "{}", ok.body);
        id
    };
    key.set_counter(&id, 0).unwrap();
    let mut b = Browser::new(&demo);
    b.identify(BEN).await;
    let a = answer(&mut b, &mut key, demo.portal_url()).await;
    let refused = submit(&mut b, &a).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        demo.audit_types()
            .await
            .contains(&"passkey.clone_suspected".to_string())
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_looks_the_same_for_every_account() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    ben_with_passkey(&demo, &mut key).await;
    let prompt = |login: &'static str| {
        let demo = &demo;
        async move {
            let mut b = Browser::new(demo);
            b.identify(login).await;
            let csrf = b.get("/verify").await.csrf();
            let page = b.post("/verify/passkey/start", &[("csrf", &csrf)]).await;
            let o = options(&page);
            let scrub = |s: &str| {
                s.replace(&page.csrf(), "CSRF")
                    .replace(o["challenge"].as_str().unwrap(), "CHALLENGE")
                    .split("nonce=\"")
                    .map(|p| p.split_once('"').map_or(p, |(_, rest)| rest).to_string())
                    .collect::<Vec<_>>()
                    .join("nonce")
            };
            (page.status, scrub(&page.body))
        }
    };
    let ben = prompt(BEN).await;
    assert_eq!(ben, prompt("nobody.here@contoso.com").await);
    assert_eq!(ben, prompt("adele.vance@contoso.com").await);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_answers_with_one_assertion_verify_once() {
    // A security key (its counter moves) and a synced passkey (its counter stays 0, so only the
    // single-use challenge stands between one assertion and two verifications).
    for counting in [true, false] {
        concurrent_answers(counting).await;
    }
}

async fn concurrent_answers(counting: bool) {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    key.flags.counter = counting;
    ben_with_passkey(&demo, &mut key).await;
    let mut b = Browser::new(&demo);
    b.identify(BEN).await;
    let a = answer(&mut b, &mut key, demo.portal_url()).await;
    let cookie = b.cookie_header();
    let form: Vec<(String, String)> = a
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let url = format!("{}/verify/passkey", demo.portal_url());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url, cookie, form, barrier) = (
            http.clone(),
            url.clone(),
            cookie.clone(),
            form.clone(),
            barrier.clone(),
        );
        let origin = demo.portal_url().to_string();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = http
                .post(url)
                .header("cookie", cookie)
                .header("origin", origin)
                .form(&form)
                .send()
                .await
                .unwrap();
            r.headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string())
        }));
    }
    let mut verified = 0;
    for t in tasks {
        if t.await.unwrap().as_deref() == Some("/action") {
            verified += 1;
        }
    }
    assert_eq!(verified, 1, "counting: {counting}");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_named_listed_and_removed_after_confirmation() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, BEN, BEN_PASSWORD).await;
    // A name is required; an answer to another origin or without a prompt is refused.
    let csrf = b.get("/enroll").await.csrf();
    let blank = b
        .post("/enroll/passkey/begin", &[("csrf", &csrf), ("name", "  ")])
        .await;
    assert_eq!(blank.status, 400);
    assert!(blank.body.contains("1 to 60 characters"), "{}", blank.body);
    let phished = register(&mut b, &mut key, "Phone", "https://evil.example").await;
    assert_eq!(phished.status, 400, "{}", phished.body);
    let done = register(&mut b, &mut key, "Phone", demo.portal_url()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    // The same authenticator cannot register twice (the options exclude it).
    let page = b.get("/enroll").await;
    let id = page
        .body
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let ask = b
        .post(
            "/enroll/passkey/remove",
            &[("csrf", &page.csrf()), ("id", &id)],
        )
        .await;
    assert_eq!(ask.status, 200);
    assert!(
        ask.body.contains("Remove the passkey “Phone”?"),
        "{}",
        ask.body
    );
    let gone = b
        .post(
            "/enroll/passkey/remove",
            &[("csrf", &page.csrf()), ("id", &id), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert!(!b.get("/enroll").await.body.contains("Phone"));
    let types = demo.audit_types().await;
    assert!(types.contains(&"enroll.passkey".to_string()), "{types:?}");
    assert!(types.contains(&"enroll.remove".to_string()), "{types:?}");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_alone_no_longer_counts_once_the_policy_stops_saying_so() {
    let demo = demo().await;
    let mut key = SoftAuthenticator::new([0xcb; 16]);
    ben_with_passkey(&demo, &mut key).await;
    let mut b = Browser::new(&demo);
    b.identify(BEN).await;
    let a = answer(&mut b, &mut key, demo.portal_url()).await;
    assert_eq!(
        submit(&mut b, &a).await.location.as_deref(),
        Some("/action")
    );
    // The admin switches "all" off while Ben is on the password page.
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"reset\", \"unlock\", \"enroll\"]\nmethods = [\"email\", \"passkey\"]\n\
         sources = [\"latchkey\", \"entra\"]\nmethods_required = 2\n"
    );
    let set = latchkey_policy::parse_sources(&[(PathBuf::from("t.toml"), text)]).unwrap();
    let csrf = b.get("/reset").await.csrf();
    *demo.services.policies.write().unwrap() = Arc::new(set);
    let new = "Quiet-Maple-Harbour-77";
    let refused = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_ne!(refused.status, 200, "{}", refused.body);
    assert_ne!(
        demo.sim.sign_in(BEN, new),
        latchkey_entra_sim::SignInOutcome::Success,
        "the password was changed"
    );
    let reasons = audit_reasons(&demo).await;
    assert!(
        reasons
            .iter()
            .any(|r| r == "verification no longer enough for the policy"),
        "{reasons:?}"
    );
    demo.stop().await;
}
