//! The consoles' sign-in and access control, and the admin console, over HTTP against the demo
//! (simulated tenant with "Latchkey Admins" ⊃ "Identity Team" and "Helpdesk").

use std::sync::Arc;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_verify::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::portal::{Browser, Page};

pub const EVA: (&str, &str) = ("it.admin@contoso.com", "Eva-Demo-2024!");
pub const LENA: (&str, &str) = ("lena.novak@contoso.com", "Lena-Demo-2024!");
pub const FARID: (&str, &str) = ("helpdesk@contoso.com", "Farid-Demo-2024!");
pub const BEN: (&str, &str) = ("ben.okafor@contoso.com", "Ben-Demo-2024!");

pub async fn demo_with_clock() -> (Demo, Arc<ManualClock>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let demo = demo::start_with_clock(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions::default(),
        clock.clone(),
    )
    .await
    .expect("demo starts");
    (demo, clock)
}

/// Signs `who` in to the console at `home` (`/admin`, `/helpdesk`) the way a browser does:
/// the portal's redirect, the simulator's sign-in form, the callback. Returns the callback page.
pub async fn sign_in(demo: &Demo, b: &mut Browser, home: &str, who: (&str, &str)) -> Page {
    let start = b.get(home).await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = Url::parse(start.location.as_deref().unwrap()).unwrap();
    assert!(
        authorize.as_str().starts_with(&demo.sim.base_url()),
        "{authorize}"
    );
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(
        q["redirect_uri"],
        format!("{}/console/callback", demo.portal_url())
    );
    assert_eq!(q["code_challenge_method"], "S256");
    let back = idp_sign_in(&authorize, who).await;
    let page = b.get(&back).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

/// Submits the simulator's sign-in form for `authorize` as `who`; returns the portal path (with
/// query) the simulator redirects back to (`/console/callback?...`).
pub async fn idp_sign_in(authorize: &Url, who: (&str, &str)) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut fields: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    fields.push(("username".into(), who.0.into()));
    fields.push(("password".into(), who.1.into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let resp = http.post(action).form(&fields).send().await.unwrap();
    assert_eq!(resp.status(), 302, "sign-in at the simulator failed");
    let back = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/console/callback");
    format!("{}?{}", back.path(), back.query().unwrap_or_default())
}

/// Sends `GET raw_path` byte for byte (HTTP clients normalize `..` and `%2e%2e` away).
async fn raw_get(base: &str, raw_path: &str, cookie: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {raw_path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn location(raw: &str) -> Option<String> {
    raw.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .map(|l| l[9..].trim().to_string())
}

#[tokio::test]
async fn unauthenticated_requests_are_sent_to_sign_in_and_posts_refused() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = Browser::new(&demo);
    for path in ["/admin", "/admin/policies", "/helpdesk"] {
        let p = b.get(path).await;
        assert_eq!(p.status, 303, "{path}: {}", p.body);
        assert!(
            p.location
                .as_deref()
                .unwrap()
                .starts_with(&demo.sim.base_url()),
            "{path}"
        );
        let set = p.headers.get("set-cookie").unwrap().to_str().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );
    }
    let p = b.post("/admin/signout", &[("csrf", "x")]).await;
    assert_eq!(p.status, 401, "{}", p.body);
    // A callback without an attempt of ours is refused.
    let p = b.get("/console/callback?code=x&state=y").await;
    assert_eq!(p.status, 400);
    demo.stop().await;
}

#[tokio::test]
async fn members_get_the_console_non_members_a_403_and_the_session_cookie_is_strict() {
    let (demo, _clock) = demo_with_clock().await;
    // Direct member.
    let mut eva = Browser::new(&demo);
    let signed_in = sign_in(&demo, &mut eva, "/admin", EVA).await;
    let set: Vec<String> = signed_in
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("latchkey-admin="))
        .expect("admin session cookie");
    assert!(
        session.contains("SameSite=Strict") && session.contains("HttpOnly"),
        "{session}"
    );
    let home = eva.get("/admin").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Administration") && home.body.contains("Eva Lindqvist"));
    assert_eq!(home.headers["cache-control"], "no-store");
    // Nested member (Latchkey Admins ⊃ Identity Team ∋ Lena).
    let mut lena = Browser::new(&demo);
    sign_in(&demo, &mut lena, "/admin", LENA).await;
    assert_eq!(lena.get("/admin").await.status, 200);
    // Not a member: a signed-in user gets the 403 page, audited.
    let mut ben = Browser::new(&demo);
    sign_in(&demo, &mut ben, "/admin", BEN).await;
    let denied = ben.get("/admin").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(denied.body.contains("not allowed to use this console"));
    assert!(!denied.body.contains("Administration</h1>"));
    assert!(
        demo.audit_types()
            .await
            .contains(&"admin.denied".to_string())
    );
    // A helpdesk member is not an admin, and an admin session does not open the helpdesk.
    let mut farid = Browser::new(&demo);
    sign_in(&demo, &mut farid, "/admin", FARID).await;
    assert_eq!(farid.get("/admin").await.status, 403);
    assert_eq!(
        eva.get("/helpdesk").await.status,
        303,
        "admin session used for helpdesk"
    );
    demo.stop().await;
}

#[tokio::test]
async fn path_tricks_never_reach_a_console_page_unguarded() {
    let (demo, _clock) = demo_with_clock().await;
    let mut ben = Browser::new(&demo);
    sign_in(&demo, &mut ben, "/admin", BEN).await;
    let cookie = format!(
        "latchkey-admin={}",
        ben_cookie(&ben).expect("ben has an admin session")
    );
    let base = demo.portal_url().to_string();
    for raw in [
        "/Admin",
        "//admin",
        "/admin/",
        "/admin/../admin",
        "/x/../admin",
        "/%61dmin",
        "/admin/%2e%2e/admin",
        "/admin/%2E%2E/admin/",
        "/./admin",
        "/ADMIN/policies",
        "/admin//policies",
        "/admin/policies/",
    ] {
        let (status, text) = raw_get(&base, raw, &cookie).await;
        assert_eq!(status, 308, "{raw}: {text}");
        let to = location(&text).unwrap();
        assert!(to == "/admin" || to == "/admin/policies", "{raw} -> {to}");
        // Where it leads, the non-member is refused.
        let (status, _) = raw_get(&base, &to, &cookie).await;
        assert_eq!(status, 403, "{raw} -> {to}");
    }
    // Without a session, the canonical path asks for sign-in.
    let (status, text) = raw_get(&base, "/admin", "").await;
    assert_eq!(status, 303, "{text}");
    demo.stop().await;
}

fn ben_cookie(b: &Browser) -> Option<String> {
    b.cookie("latchkey-admin")
}

#[tokio::test]
async fn removing_a_member_in_the_tenant_ends_access_after_the_cache_window() {
    let (demo, clock) = demo_with_clock().await;
    let mut lena = Browser::new(&demo);
    sign_in(&demo, &mut lena, "/admin", LENA).await;
    assert_eq!(lena.get("/admin").await.status, 200);
    // Lena leaves "Identity Team" (her path into "Latchkey Admins").
    assert!(
        demo.sim
            .tenant()
            .remove_group_member("Identity Team", LENA.0)
    );
    // Within the documented window the cached answer may still admit her ...
    clock.advance(time::Duration::seconds(30));
    assert_eq!(lena.get("/admin").await.status, 200);
    // ... and once it has passed, the next request asks Graph again and is refused.
    clock.advance(time::Duration::seconds(31));
    let denied = lena.get("/admin").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    // Added back: access returns on the next check.
    assert!(demo.sim.tenant().add_group_member("Identity Team", LENA.0));
    clock.advance(time::Duration::seconds(61));
    assert_eq!(lena.get("/admin").await.status, 200);
    demo.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle_and_on_sign_out_which_needs_csrf() {
    let (demo, clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let home = eva.get("/admin").await;
    let csrf = home.csrf();
    assert!(!csrf.is_empty());
    // Sign-out without the token, with a foreign Origin, or cross-site: refused, still signed in.
    let p = eva.post("/admin/signout", &[("csrf", "forged")]).await;
    assert_eq!(p.status, 403);
    eva.origin = Some("https://evil.example".into());
    let p = eva.post("/admin/signout", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 403);
    eva.origin = Some(demo.portal_url().to_string());
    assert_eq!(eva.get("/admin").await.status, 200);
    let p = eva.post("/admin/signout", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("signed out"));
    assert_eq!(
        eva.get("/admin").await.status,
        303,
        "signed out, back to sign-in"
    );
    assert!(
        demo.audit_types()
            .await
            .contains(&"admin.signout".to_string())
    );
    // Idle for longer than the idle lifetime: the session is gone.
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    assert_eq!(eva.get("/admin").await.status, 200);
    clock.advance(time::Duration::seconds(16 * 60));
    assert_eq!(eva.get("/admin").await.status, 303);
    demo.stop().await;
}

#[tokio::test]
async fn a_membership_check_that_fails_refuses_access() {
    let (demo, clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    assert_eq!(eva.get("/admin").await.status, 200);
    // Graph refuses every membership check (forbidden, then unavailable): fail closed.
    for status in [403, 503] {
        demo.sim.add_fault(latchkey_entra_sim::Fault {
            method: None,
            path_contains: "checkMemberGroups".into(),
            kind: latchkey_entra_sim::FaultKind::Status(status),
            times: 0,
        });
        clock.advance(time::Duration::seconds(61));
        let p = eva.get("/admin").await;
        assert_eq!(p.status, 503, "Graph {status}: {}", p.body);
        assert!(p.body.contains("cannot be checked right now"));
        demo.sim.clear_faults();
    }
    clock.advance(time::Duration::seconds(61));
    assert_eq!(eva.get("/admin").await.status, 200);
    // Every check went to Graph once per window, not once per request.
    demo.sim.clear_requests();
    for _ in 0..5 {
        assert_eq!(eva.get("/admin").await.status, 200);
    }
    let checks = demo
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("checkMemberGroups"))
        .count();
    assert_eq!(checks, 0, "answered from the 60-second cache");
    demo.stop().await;
}

/// `latchkey serve` with `[admin] group`: the production wiring of the console (test tenant,
/// "Latchkey Admins" ⊃ "Identity Team" ∋ useradmin@).
#[tokio::test(flavor = "multi_thread")]
async fn serve_with_an_admin_group_guards_the_console() {
    use crate::helpers::*;
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let admins = sim.tenant().group_id("Latchkey Admins").unwrap();
    let dir = TempDir::new();
    // A bad group id stops the start and names the key.
    let cfg = config_for(&sim, &dir, "[admin]\ngroup = \"Latchkey Admins\"\n");
    let out = latchkey(&["serve", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("admin.group"), "{}", stderr(&out));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let base = format!("http://127.0.0.1:{port}");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[portal]\npublic_url = \"{base}\"\n\
             [store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n\
             [policies]\ndir = \"{}\"\n[admin]\ngroup = \"{admins}\"\nsecret_expires = \"2099-01-31\"\n",
            policies.display()
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let result = async move {
        let mut b = Browser::at(&base);
        let mut start = None;
        for _ in 0..100 {
            if reqwest::get(format!("{base}/healthz")).await.is_ok() {
                start = Some(b.get("/admin").await);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let start = start.expect("serve answers");
        assert_eq!(start.status, 303);
        let authorize = Url::parse(start.location.as_deref().unwrap()).unwrap();
        let q: std::collections::HashMap<String, String> =
            authorize.query_pairs().into_owned().collect();
        assert_eq!(q["redirect_uri"], format!("{base}/console/callback"));
        // useradmin@ is a member through the nested "Identity Team".
        let back = idp_sign_in(&authorize, ("useradmin@contoso.com", "Lee-Pa55word!")).await;
        assert_eq!(b.get(&back).await.status, 200);
        let home = b.get("/admin").await;
        assert_eq!(home.status, 200, "{}", home.body);
        let connection = b.get("/admin/connection").await;
        assert!(
            connection.body.contains("2099-01-31"),
            "{}",
            connection.body
        );
        // Not a member.
        let mut other = Browser::at(&base);
        let start = other.get("/admin").await;
        let authorize = Url::parse(start.location.as_deref().unwrap()).unwrap();
        let back = idp_sign_in(&authorize, ("megan.bowen@contoso.com", "Megan-Pa55word!")).await;
        other.get(&back).await;
        assert_eq!(other.get("/admin").await.status, 403);
        // No [helpdesk] table: that console is not served.
        assert_eq!(b.get("/helpdesk").await.status, 404);
    };
    // Run it on its own task so a failed assertion still lets the server be stopped.
    let outcome = tokio::spawn(result).await;
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
