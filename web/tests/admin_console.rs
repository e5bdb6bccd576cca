//! The admin console's pages over HTTP against the demo: policy edit (valid, invalid, enable /
//! disable), simulation and blast radius checked against the demo fixture, the connection
//! page's test and debug toggle, and CSRF on every admin POST.
//!
//! Demo fixture facts used here: "SSPR Enabled" = Sales (adele, anna, ben) + Operations (carla,
//! david, kofi) + grace, hiro, julia, ivan (disabled); "IT Admins" = it.admin (Global
//! Administrator), helpdesk (Authentication Administrator), lena (User Administrator). The demo
//! policy "Staff" (priority 10) applies to "SSPR Enabled" with reset, unlock, enroll.

use std::path::PathBuf;

use latchkey::demo::Demo;

use crate::admin::{EVA, FARID, demo_with_clock, idp_sign_in, sign_in};
use crate::portal::{Browser, Page};

const DEMO_CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";

async fn admin(demo: &Demo) -> Browser {
    let mut b = Browser::new(demo);
    sign_in(demo, &mut b, "/admin", EVA).await;
    b
}

pub(crate) fn policies_dir(demo: &Demo) -> PathBuf {
    demo.config_path.parent().unwrap().join("policies")
}

/// Every policy file's bytes, sorted by name.
pub(crate) fn snapshot(demo: &Demo) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(policies_dir(demo))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The edit form of `name` as name/value pairs, as a browser would submit it unchanged.
pub(crate) fn form_of(page: &Page) -> Vec<(String, String)> {
    let body = &page.body;
    let form = body
        .split("<form method=\"post\" action=\"/admin/policies/save\"")
        .nth(1)
        .unwrap()
        .split("</form>")
        .next()
        .unwrap();
    let mut out = Vec::new();
    for tag in form.split('<').skip(1) {
        let attr = |a: &str| -> Option<String> {
            tag.split(&format!(" {a}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(unescape)
        };
        if tag.starts_with("input") {
            let name = attr("name").unwrap_or_default();
            let kind = attr("type").unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            if kind == "checkbox" && !tag.contains(" checked") {
                continue;
            }
            out.push((name, attr("value").unwrap_or_default()));
        } else if tag.starts_with("textarea") {
            let name = attr("name").unwrap_or_default();
            let text = tag.split_once('>').map(|(_, t)| t).unwrap_or_default();
            out.push((name, unescape(text)));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

pub(crate) fn set(form: &mut Vec<(String, String)>, name: &str, value: &str) {
    form.retain(|(n, _)| n != name);
    form.push((name.into(), value.into()));
}

pub(crate) async fn post(b: &mut Browser, path: &str, form: &[(String, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    b.post(path, &pairs).await
}

pub(crate) async fn staff_form(b: &mut Browser) -> Vec<(String, String)> {
    let page = b.get("/admin/policies/edit?name=Staff").await;
    assert_eq!(page.status, 200, "{}", page.body);
    form_of(&page)
}

#[tokio::test]
async fn a_valid_edit_is_previewed_then_written_audited_and_in_force() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let list = b.get("/admin/policies").await;
    assert_eq!(list.status, 200);
    let staff = list.body.find(">Staff</a>").unwrap();
    let default = list.body.find(">Default</a>").unwrap();
    assert!(
        staff < default,
        "priority order: Staff (10) before Default (1000)"
    );

    let operations = demo.sim.tenant().group_id("Operations").unwrap();
    let before = snapshot(&demo);
    let mut form = staff_form(&mut b).await;
    set(&mut form, "excludes", &format!("{operations} Operations"));
    set(&mut form, "simulate_user", "carla.mendes@contoso.com");
    set(&mut form, "op", "preview");
    let preview = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    // Operations = carla, david, kofi: all three can reset now and would not.
    assert!(
        preview
            .body
            .contains("This change stops 3 users who can reset now, and lets 0 new users reset."),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains("carla.mendes@contoso.com, david.kim@contoso.com, kofi.mensah@contoso.com")
    );
    assert!(
        preview.body.contains("excluded by group Operations"),
        "draft simulation"
    );
    assert!(
        preview.body.contains("+excludes = [{ id = &quot;"),
        "diff shown"
    );
    assert_eq!(snapshot(&demo), before, "a preview writes nothing");

    set(&mut form, "op", "save");
    let saved = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let after = snapshot(&demo);
    assert_eq!(after[0], before[0], "default.toml untouched byte for byte");
    let demo_toml = String::from_utf8(after[1].1.clone()).unwrap();
    assert!(
        demo_toml.contains(&format!(
            "excludes = [{{ id = \"{operations}\", name = \"Operations\" }}]"
        )),
        "{demo_toml}"
    );
    // In force at once.
    let policy = demo.services.policies();
    assert_eq!(
        policy.get("Staff").unwrap().excludes[0].id.to_string(),
        operations
    );
    let list = b.get(saved.location.as_deref().unwrap()).await;
    assert!(
        list.body.contains("Policy &#39;Staff&#39; saved"),
        "{}",
        list.body
    );
    let sim = b
        .get("/admin/simulate?user=kofi.mensah%40contoso.com")
        .await;
    assert!(
        sim.body.contains("excluded by group Operations"),
        "{}",
        sim.body
    );
    // Audited with the diff, actor = the admin's object id.
    let events = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let save = events
        .iter()
        .find(|e| e.event.event_type == "admin.policy.save")
        .expect("audited");
    assert_eq!(save.event.actor, demo.sim.tenant().user_id(EVA.0).unwrap());
    assert!(
        save.event.details["diff"]
            .as_str()
            .unwrap()
            .contains("+excludes")
    );
    demo.stop().await;
}

#[tokio::test]
async fn an_invalid_edit_shows_errors_by_the_fields_and_changes_nothing() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let before = snapshot(&demo);
    let running = demo.services.policies();
    let mut form = staff_form(&mut b).await;
    set(&mut form, "methods_required", "5");
    set(&mut form, "op", "save");
    let page = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("href=\"#f-methods_required\""),
        "summary links the field"
    );
    assert!(
        page.body.contains("id=\"e-methods_required\""),
        "error next to the field"
    );
    assert!(page.body.contains("requires 5 methods"), "{}", page.body);
    // A priority already taken (Default's), a bad group id, a non-number.
    let mut form = staff_form(&mut b).await;
    set(&mut form, "priority", "1000");
    set(&mut form, "op", "save");
    let page = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("already the priority of"),
        "{}",
        page.body
    );
    let mut form = staff_form(&mut b).await;
    set(&mut form, "applies_to", "not-a-guid Sales");
    set(&mut form, "reconfirm_after_days", "soon");
    set(&mut form, "op", "save");
    let page = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("id=\"e-reconfirm_after_days\""),
        "{}",
        page.body
    );
    let mut form = staff_form(&mut b).await;
    set(&mut form, "applies_to", "not-a-guid Sales");
    set(&mut form, "op", "save");
    let page = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"e-applies_to\""), "{}", page.body);
    // A well-formed id that is no group in the tenant.
    let mut form = staff_form(&mut b).await;
    set(
        &mut form,
        "excludes",
        "c0000000-0000-4000-8000-0000000000ff Contractors",
    );
    set(&mut form, "op", "save");
    let page = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains(
            "No group with this object id in the tenant: c0000000-0000-4000-8000-0000000000ff"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"e-excludes\""));
    // A new policy with the name of an existing one.
    let new = form_of(&b.get("/admin/policies/edit").await);
    let mut new = new;
    set(&mut new, "name", "Staff");
    set(&mut new, "priority", "20");
    set(&mut new, "op", "save");
    let page = post(&mut b, "/admin/policies/save", &new).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("already the name"), "{}", page.body);

    assert_eq!(snapshot(&demo), before, "nothing written");
    assert_eq!(
        *demo.services.policies(),
        *running,
        "the running set is unchanged"
    );
    assert!(
        demo.audit_types()
            .await
            .contains(&"admin.policy.save".to_string())
    );
    demo.stop().await;
}

#[tokio::test]
async fn a_new_policy_gets_its_own_file_and_disable_enable_touch_one_line() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let it = demo.sim.tenant().group_id("IT Admins").unwrap();
    let mut form = form_of(&b.get("/admin/policies/edit").await);
    set(&mut form, "name", "IT staff");
    set(&mut form, "priority", "5");
    // The id alone: the name comes from the directory.
    set(&mut form, "applies_to", &it);
    set(&mut form, "allow_privileged", "on");
    set(&mut form, "op", "save");
    let saved = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let file = policies_dir(&demo).join("it-staff.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("name = \"IT staff\"") && text.contains("allow_privileged = true"));
    assert!(
        text.contains(&format!(
            "applies_to = [{{ id = \"{it}\", name = \"IT Admins\" }}]"
        )),
        "{text}"
    );
    // The list warns about settings below the security defaults, and the save audited them.
    let list = b.get("/admin/policies").await;
    assert!(
        list.body
            .contains("Privileged accounts (directory roles) may reset here.")
    );
    let events = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let save = events
        .iter()
        .find(|e| e.event.event_type == "admin.policy.save")
        .unwrap();
    assert_eq!(
        save.event.details["below_security_defaults"],
        serde_json::json!(["allow_privileged = true"])
    );
    let sim = b.get("/admin/simulate?user=lena.novak%40contoso.com").await;
    assert!(
        sim.body.contains("matched &#39;IT staff&#39;"),
        "{}",
        sim.body
    );

    // Disable "Staff": one line of demo.toml changes.
    let demo_file = policies_dir(&demo).join("demo.toml");
    let old = std::fs::read_to_string(&demo_file).unwrap();
    let csrf = b.get("/admin/policies").await.csrf();
    let p = b
        .post(
            "/admin/policies/toggle",
            &[("csrf", &csrf), ("name", "Staff"), ("enabled", "false")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let new = std::fs::read_to_string(&demo_file).unwrap();
    assert_eq!(
        new,
        old.replacen("[[policy]]\n", "[[policy]]\nenabled = false\n", 1)
    );
    assert!(!demo.services.policies().get("Staff").unwrap().enabled);
    let sim = b
        .get("/admin/simulate?user=adele.vance%40contoso.com")
        .await;
    assert!(sim.body.contains("skipped: disabled"), "{}", sim.body);
    let p = b
        .post(
            "/admin/policies/toggle",
            &[("csrf", &csrf), ("name", "Staff"), ("enabled", "true")],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(demo.services.policies().get("Staff").unwrap().enabled);
    assert!(
        std::fs::read_to_string(&demo_file)
            .unwrap()
            .contains("enabled = true")
    );
    assert!(
        demo.audit_types()
            .await
            .contains(&"admin.policy.toggle".to_string())
    );
    demo.stop().await;
}

#[tokio::test]
async fn simulation_explains_nested_groups_privileged_accounts_and_unknown_users() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    // Adele is in Sales, nested in SSPR Enabled.
    let p = b
        .get("/admin/simulate?user=adele.vance%40contoso.com")
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("via group SSPR Enabled"), "{}", p.body);
    assert!(p.body.contains("reset, unlock, enroll"));
    // Eva is a Global Administrator: privileged, and no policy names privileged accounts.
    let p = b.get("/admin/simulate?user=it.admin%40contoso.com").await;
    assert!(p.body.contains("Global Administrator"), "{}", p.body);
    assert!(p.body.contains("no policy applies"));
    // Ivan is disabled.
    let p = b
        .get("/admin/simulate?user=ivan.petrov%40contoso.com")
        .await;
    assert!(
        p.body.contains("Disabled: self-service never starts"),
        "{}",
        p.body
    );
    let p = b.get("/admin/simulate?user=nobody%40contoso.com").await;
    assert!(p.body.contains("No single user matches"), "{}", p.body);
    demo.stop().await;
}

#[tokio::test]
async fn blast_radius_counts_match_the_fixture_for_privileged_accounts() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let it = demo.sim.tenant().group_id("IT Admins").unwrap();
    let sspr = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let mut form = staff_form(&mut b).await;
    set(
        &mut form,
        "applies_to",
        &format!("{sspr} SSPR Enabled\n{it} IT Admins"),
    );
    set(&mut form, "op", "preview");
    // All three IT Admins hold directory roles: without allow_privileged nobody new gets in.
    let p = post(&mut b, "/admin/policies/save", &form).await;
    assert!(
        p.body
            .contains("stops 0 users who can reset now, and lets 0 new users reset"),
        "{}",
        p.body
    );
    // Without the mirror the preview says it read Graph.
    assert!(p.body.contains("data-source=\"graph\""), "{}", p.body);
    // 9 enabled in SSPR Enabled + 3 IT Admins; Ivan disabled; 3 role look-ups.
    assert!(
        p.body.contains("12 enabled users in 2 groups named by the policies (1 disabled accounts left out); 0 users keep reset under another policy; 3 privileged-account lookups"),
        "{}",
        p.body
    );
    set(&mut form, "allow_privileged", "on");
    let p = post(&mut b, "/admin/policies/save", &form).await;
    assert!(p.body.contains("lets 3 new users reset"), "{}", p.body);
    // Looser than the security bar: said on the page.
    assert!(
        p.body
            .contains("Privileged accounts (directory roles) may reset here.")
    );
    assert!(
        p.body
            .contains("helpdesk@contoso.com, it.admin@contoso.com, lena.novak@contoso.com")
    );
    demo.stop().await;
}

#[tokio::test]
async fn test_connection_shows_a_removed_permission_and_debug_is_time_boxed() {
    let (demo, clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let page = b.get("/admin/connection").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&demo.sim.tenant_id()));
    assert!(
        page.body.contains("Client secret")
            && page.body.contains("Not known: set [admin] secret_expires")
    );
    assert!(
        page.body.contains("delegated.token"),
        "the token file is named"
    );
    let csrf = page.csrf();
    let p = b.post("/admin/connection/test", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303);
    let page = b.get("/admin/connection").await;
    assert!(
        page.body.contains("everything required is granted"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Signed in as <strong>helpdesk@contoso.com</strong>"),
        "{}",
        page.body
    );
    // An admin removes the risk permission in the tenant: the next test shows it missing.
    assert!(
        demo.sim
            .tenant()
            .remove_app_permission(DEMO_CLIENT_ID, "IdentityRiskyUser.ReadWrite.All")
    );
    let p = b.post("/admin/connection/test", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303);
    let page = b.get("/admin/connection").await;
    assert!(
        page.body.contains("something required is missing"),
        "{}",
        page.body
    );
    let row = page
        .body
        .split("<tr>")
        .find(|r| r.contains("IdentityRiskyUser.ReadWrite.All") && r.contains("Missing"));
    assert!(row.is_some(), "{}", page.body);
    let events = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().any(|e| {
        e.event.event_type == "admin.connection.test"
            && e.event
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("risk"))
    }));

    // HTTP debug: on for 15 minutes by the portal's clock, then off by itself.
    assert!(page.body.contains("Off."));
    let p = b
        .post(
            "/admin/connection/debug",
            &[("csrf", &csrf), ("enable", "true")],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(b.get("/admin/connection").await.body.contains("On until"));
    clock.advance(time::Duration::minutes(14));
    assert!(b.get("/admin/connection").await.body.contains("On until"));
    clock.advance(time::Duration::minutes(2));
    assert!(b.get("/admin/connection").await.body.contains("Off."));
    demo.stop().await;
}

#[tokio::test]
async fn every_admin_post_checks_csrf_and_changes_nothing_without_it() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let before = snapshot(&demo);
    let mut form = staff_form(&mut b).await;
    set(&mut form, "methods_required", "1");
    set(&mut form, "op", "save");
    let good = b.get("/admin").await.csrf();
    let posts: Vec<(&str, Vec<(String, String)>)> = vec![
        ("/admin/policies/save", form.clone()),
        (
            "/admin/policies/toggle",
            vec![
                ("name".into(), "Staff".into()),
                ("enabled".into(), "false".into()),
            ],
        ),
        ("/admin/connection/test", vec![]),
        (
            "/admin/connection/debug",
            vec![("enable".into(), "true".into())],
        ),
        ("/admin/connection/delegate", vec![]),
        ("/admin/signout", vec![]),
    ];
    for (path, fields) in &posts {
        // No token, a forged one.
        for token in ["", "forged"] {
            let mut f = fields.clone();
            set(&mut f, "csrf", token);
            let p = post(&mut b, path, &f).await;
            assert_eq!(p.status, 403, "{path} with csrf={token:?}");
        }
        // The right token from another site.
        b.origin = Some("https://evil.example".into());
        let mut f = fields.clone();
        set(&mut f, "csrf", &good);
        let p = post(&mut b, path, &f).await;
        assert_eq!(p.status, 403, "{path} cross-origin");
        b.origin = Some(demo.portal_url().to_string());
    }
    assert_eq!(snapshot(&demo), before);
    assert!(demo.services.policies().get("Staff").unwrap().enabled);
    assert!(
        b.get("/admin/connection")
            .await
            .body
            .contains("Not tested since")
    );
    assert_eq!(b.get("/admin").await.status, 200, "still signed in");
    demo.stop().await;
}

#[tokio::test]
async fn the_delegated_credential_is_set_up_from_the_connection_page() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let page = b.get("/admin/connection").await;
    assert!(page.body.contains("Sign in for the delegated credential"));
    let start = b
        .post("/admin/connection/delegate", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = url::Url::parse(start.location.as_deref().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert!(q["scope"].contains("offline_access"), "{}", q["scope"]);
    assert!(q["scope"].contains("UserAuthenticationMethod.ReadWrite.All"));
    // The dedicated Authentication Administrator signs in.
    let back = idp_sign_in(&authorize, FARID).await;
    let done = b.get(&back).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("helpdesk@contoso.com"), "{}", done.body);
    assert!(!b.has_cookie("latchkey-console-signin"), "attempt used up");
    // The file holds a working refresh token of that account, encrypted.
    let mut settings = latchkey::config::Settings::load(&demo.config_path).unwrap();
    let token_file = demo.config_path.parent().unwrap().join("delegated.token");
    let raw = std::fs::read(&token_file).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("refresh"),
        "not plain text"
    );
    settings.delegated = Some(latchkey::config::DelegatedSettings { token_file });
    let file = latchkey::delegate::TokenFile::of(&settings)
        .unwrap()
        .unwrap();
    let client = latchkey_graph::GraphClient::with_delegated(
        latchkey::entra::graph_config(&settings).unwrap(),
        file.load().unwrap(),
        latchkey::delegate::scopes(),
        None,
    )
    .unwrap();
    let claims = client.token_claims().await.unwrap();
    assert_eq!(claims.upn.as_deref(), Some("helpdesk@contoso.com"));
    let page = b.get("/admin/connection").await;
    assert!(
        page.body
            .contains("Delegated credential of helpdesk@contoso.com stored")
    );
    assert!(
        demo.audit_types()
            .await
            .contains(&"admin.delegated.setup".to_string())
    );
    // The callback cannot be replayed.
    let again = b.get(&back).await;
    assert_eq!(again.status, 400);
    demo.stop().await;
}

#[tokio::test]
async fn an_oversized_admin_post_gets_413_and_changes_nothing() {
    // The admin POSTs read raw bytes (repeated fields), so the 16 KiB form cap must hold for
    // them too, not actix's 256 KiB payload default.
    let (demo, _clock) = demo_with_clock().await;
    let mut b = admin(&demo).await;
    let before = snapshot(&demo);
    let mut form = staff_form(&mut b).await;
    let csrf = form.iter().find(|(n, _)| n == "csrf").unwrap().1.clone();
    set(&mut form, "description", &"x".repeat(20 * 1024));
    set(&mut form, "op", "save");
    let saved = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(saved.status, 413, "{}", saved.body);
    let big = "x".repeat(20 * 1024);
    for path in [
        "/admin/policies/toggle",
        "/admin/policies/delete",
        "/admin/connection/debug",
    ] {
        let r = b
            .post(
                path,
                &[
                    ("csrf", csrf.as_str()),
                    ("name", "Staff"),
                    ("enabled", "false"),
                    ("confirm", "yes"),
                    ("pad", big.as_str()),
                ],
            )
            .await;
        assert_eq!(r.status, 413, "{path}");
    }
    assert_eq!(snapshot(&demo), before, "an oversized POST writes nothing");
    // The same form at its normal size still saves: the cap does not get in the way.
    set(&mut form, "description", "Staff accounts");
    let ok = post(&mut b, "/admin/policies/save", &form).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    demo.stop().await;
}

/// The blast radius of replacing the running set by `new`, from Graph and from the mirror (pages
/// of `page` users), as JSON.
async fn both_blasts(
    demo: &Demo,
    new: &latchkey_policy::PolicySet,
    page: u32,
) -> (serde_json::Value, serde_json::Value) {
    use latchkey::admin::simulate::{blast_mirror, blast_radius};
    let settings = latchkey::config::Settings::load(&demo.config_path).unwrap();
    let graph = latchkey::entra::client(&settings).unwrap();
    let old = demo.services.policies();
    let from_graph = blast_radius(&graph, &old, new).await.unwrap();
    assert!(!from_graph.truncated);
    let store = demo.services.mirror.as_ref().unwrap().store();
    let from_mirror = blast_mirror::from_mirror(store, &old, new, page)
        .await
        .unwrap();
    (
        serde_json::to_value(from_graph).unwrap(),
        serde_json::to_value(from_mirror).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn blast_radius_from_the_mirror_equals_graph_and_the_preview_says_its_source() {
    use latchkey_entra_sim::Fixture;
    let demo = crate::admin_reports::mirrored(Fixture::demo()).await;
    let it = demo.sim.tenant().group_id("IT Admins").unwrap();
    let sspr = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    for privileged in [false, true] {
        let text = format!(
            "[[policy]]\nname = \"Wider\"\npriority = 10\n\
             applies_to = [{{ id = \"{sspr}\" }}, {{ id = \"{it}\" }}]\n\
             actions = [\"reset\"]\nmethods = [\"email\", \"totp\"]\nmethods_required = 2\n\
             allow_privileged = {privileged}\n"
        );
        let new = latchkey_policy::parse_sources(&[(PathBuf::from("t.toml"), text)]).unwrap();
        let (graph, mirror) = both_blasts(&demo, &new, 3).await;
        assert_eq!(graph, mirror);
        assert_eq!(graph["users"], 12, "{graph}");
        // Privilege decides for some: looked up in Graph, known in the mirror, counted alike.
        assert!(graph["role_lookups"].as_u64().unwrap() > 0, "{graph}");
    }
    // The preview reads the mirror and says so.
    let mut b = admin(&demo).await;
    let mut form = staff_form(&mut b).await;
    set(
        &mut form,
        "applies_to",
        &format!("{sspr} SSPR Enabled\n{it} IT Admins"),
    );
    set(&mut form, "op", "preview");
    let p = post(&mut b, "/admin/policies/save", &form).await;
    assert!(p.body.contains("data-source=\"mirror\""), "{}", p.body);
    assert!(
        p.body.contains("12 enabled users in 2 groups named by the policies (1 disabled accounts left out); 0 users keep reset under another policy; 3 privileged-account lookups"),
        "{}",
        p.body
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blast_radius_from_the_mirror_equals_graph_on_a_generated_tenant() {
    let demo = crate::admin_reports::mirrored(crate::admin_reports::generated(3000)).await;
    let new = crate::admin_reports::generated_policies(&demo);
    let started = std::time::Instant::now();
    let (graph, mirror) = both_blasts(&demo, &new, 500).await;
    eprintln!("both blast radii over 3,000 users: {:?}", started.elapsed());
    assert_eq!(graph, mirror);
    assert!(graph["admitted"].as_u64().unwrap() > 2900, "{graph}");
    assert!(graph["moved"].as_u64().unwrap() > 0, "{graph}");
    demo.stop().await;
}
