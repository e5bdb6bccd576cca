//! The admin console's reports and audit trail over HTTP against the demo (simulated tenant,
//! SQLite store): coverage counted from the simulator's fixture, per-day activity after real
//! resets and failures through the portal, every audit filter, paging, the CSV exports (content,
//! quoting, formula injection), and who may see any of it.

use std::collections::{BTreeMap, BTreeSet};

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_entra_sim::Fixture;
use latchkey_store::{AuditEvent, AuditQuery, NewEnrollment, Outcome};
use latchkey_types::ObjectId;

use crate::admin::{BEN, EVA, FARID, demo_with_clock, sign_in};
use crate::portal::{Browser, code_for, totp_for};

/// The group and policy the demo's access policy uses (`demo.rs`).
const SCOPE_GROUP: &str = "SSPR Enabled";
const POLICY: &str = "Staff";
/// The demo policy's methods and how many distinct ones it requires.
const POLICY_METHODS: [&str; 3] = ["email", "totp", "sms"];
const REQUIRED: usize = 2;

fn oid(demo: &Demo, upn: &str) -> ObjectId {
    demo.sim.tenant().user_id(upn).unwrap().parse().unwrap()
}

/// Users (UPNs) of a fixture group, nested groups resolved, generated members included.
fn fixture_members(f: &Fixture, group: &str) -> BTreeSet<String> {
    let g = f
        .groups
        .iter()
        .find(|g| g.display_name == group)
        .unwrap_or_else(|| panic!("fixture has no group {group}"));
    let mut out = BTreeSet::new();
    for m in &g.members {
        if m.contains('@') {
            out.insert(m.to_lowercase());
        } else {
            out.extend(fixture_members(f, m));
        }
    }
    for i in 1..=g.generated_members {
        out.insert(format!("gen-user-{i:04}@{}", f.tenant.initial_domain));
    }
    out
}

/// The number in `<td data-col="{col}">N</td>` of the table row that carries `marker`.
fn cell(body: &str, marker: &str, col: &str) -> usize {
    let row = body
        .split(marker)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row {marker}"));
    row.split(&format!("data-col=\"{col}\">"))
        .nth(1)
        .and_then(|r| r.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {col} in row {marker}: {row}"))
}

/// The count of `method` in the "by method" cell of the row that carries `marker`.
fn method_cell(body: &str, marker: &str, method: &str) -> usize {
    let row = body
        .split(marker)
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    row.split(&format!("data-method=\"{method}\">"))
        .nth(1)
        .and_then(|r| r.split('<').next())
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {method} in row {marker}: {row}"))
}

/// Every value of `attr="..."` in `body`.
fn attr_values(body: &str, attr: &str) -> BTreeSet<String> {
    body.split(&format!("{attr}=\""))
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .map(str::to_string)
        .collect()
}

/// RFC 4180 parsing (quoted cells, doubled quotes, CRLF), for checking exports.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

async fn enroll(demo: &Demo, upn: &str, methods: &[(&str, serde_json::Value)]) {
    let id = oid(demo, upn);
    let now = time::OffsetDateTime::now_utc();
    for (method, data) in methods {
        demo.store
            .stage_enrollment(
                NewEnrollment {
                    subject: id,
                    method: method.to_string(),
                    data: data.clone(),
                    secret: None,
                },
                now,
            )
            .await
            .unwrap();
        assert!(
            demo.store
                .activate_enrollment(&id, method, now)
                .await
                .unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn coverage_and_the_unable_list_match_the_fixture() {
    let (demo, _clock) = demo_with_clock().await;
    // Enroll more users through the store: David two methods. Ben stays without any (nothing
    // in Entra either): the "none" column. Kofi loses his Entra email: one method, "partial".
    assert!(
        demo.sim
            .tenant()
            .set_email_method("kofi.mensah@contoso.com", None)
    );
    enroll(
        &demo,
        "david.kim@contoso.com",
        &[
            (
                "email",
                serde_json::json!({ "address": "david@mail.example" }),
            ),
            ("sms", serde_json::json!({ "phone": "+1 2065550123" })),
        ],
    )
    .await;

    // What the fixture and the enrollments say, counted here.
    let fixture = Fixture::demo();
    let mut methods: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for e in DemoOptions::default().enroll {
        let m = methods.entry(e.upn.to_lowercase()).or_default();
        if e.email.is_some() {
            m.insert("email");
        }
        if e.phone.is_some() {
            m.insert("sms");
        }
        if e.totp {
            m.insert("totp");
        }
    }
    // The demo policy also accepts what users registered in Entra (`sources = ["latchkey",
    // "entra"]`): an email method, a mobile or alternate mobile phone.
    for u in &fixture.users {
        let m = methods.entry(u.upn.to_lowercase()).or_default();
        if u.methods.email.is_some() && u.upn != "kofi.mensah@contoso.com" {
            m.insert("email");
        }
        if u.methods
            .phones
            .iter()
            .any(|p| p.phone_type == "mobile" || p.phone_type == "alternateMobile")
        {
            m.insert("sms");
        }
    }
    methods
        .entry("david.kim@contoso.com".into())
        .or_default()
        .extend(["email", "sms"]);
    let user = |upn: &str| {
        fixture
            .users
            .iter()
            .find(|u| u.upn.to_lowercase() == upn)
            .unwrap()
    };
    let members = fixture_members(&fixture, SCOPE_GROUP);
    let enabled: Vec<&String> = members
        .iter()
        .filter(|u| user(u).account_enabled != Some(false))
        .collect();
    let disabled = members.len() - enabled.len();
    let privileged: Vec<&&String> = enabled
        .iter()
        .filter(|u| !user(u).directory_roles.is_empty())
        .collect();
    let in_scope: Vec<&String> = enabled
        .iter()
        .copied()
        .filter(|u| user(u).directory_roles.is_empty())
        .collect();
    let accepted = |upn: &str| -> BTreeSet<&str> {
        methods
            .get(upn)
            .map(|m| {
                m.iter()
                    .copied()
                    .filter(|k| POLICY_METHODS.contains(k))
                    .collect()
            })
            .unwrap_or_default()
    };
    // email, sms and totp are three different channels: distinct methods = distinct channels.
    let ready: Vec<&String> = in_scope
        .iter()
        .copied()
        .filter(|u| accepted(u).len() >= REQUIRED)
        .collect();
    let none = in_scope.iter().filter(|u| accepted(u).is_empty()).count();
    let partial = in_scope.len() - ready.len() - none;
    assert!(
        !ready.is_empty() && partial > 0 && none > 0 && disabled > 0,
        "the fixture should exercise every column: ready {} partial {partial} none {none} disabled {disabled}: {:?}",
        ready.len(),
        in_scope
            .iter()
            .map(|u| (u.as_str(), accepted(u)))
            .collect::<Vec<_>>()
    );

    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    let page = b.get("/admin/reports").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    // Without the mirror the page says it read Graph.
    assert!(body.contains("data-source=\"graph\""), "{body}");
    let policy_row = format!("data-policy=\"{POLICY}\"");
    assert_eq!(cell(body, &policy_row, "total"), in_scope.len());
    assert_eq!(cell(body, &policy_row, "ready"), ready.len());
    assert_eq!(cell(body, &policy_row, "partial"), partial);
    assert_eq!(cell(body, &policy_row, "none"), none);
    for m in POLICY_METHODS {
        let expected = in_scope.iter().filter(|u| accepted(u).contains(m)).count();
        assert_eq!(method_cell(body, &policy_row, m), expected, "{m}");
    }
    let group_row = format!(
        "data-group=\"{}\"",
        demo.sim.tenant().group_id(SCOPE_GROUP).unwrap()
    );
    assert_eq!(cell(body, &group_row, "total"), enabled.len());
    assert_eq!(cell(body, &group_row, "ready"), ready.len());
    assert_eq!(cell(body, &group_row, "out_of_scope"), privileged.len());
    // The disabled accounts are named in the hint, not counted.
    assert!(
        body.contains(&format!("({disabled} disabled")),
        "disabled count missing"
    );

    // Who will be unable to reset: everyone in scope who is not ready.
    let expected_unable: BTreeSet<String> = in_scope
        .iter()
        .filter(|u| !ready.contains(u))
        .map(|u| oid(&demo, u).to_string())
        .collect();
    assert_eq!(attr_values(body, "data-user"), expected_unable);
    assert!(body.contains(&format!("{} users are in scope", expected_unable.len())));

    let csv = b.get("/admin/reports/unable.csv").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let rows = parse_csv(csv.body.trim_start_matches('\u{feff}'));
    assert_eq!(rows[0][0], "object_id");
    let ids: BTreeSet<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, expected_unable);
    let kofi = rows
        .iter()
        .find(|r| r[1] == "kofi.mensah@contoso.com")
        .expect("Kofi has one method (his Entra phone): unable");
    assert_eq!(
        (kofi[3].as_str(), kofi[4].as_str(), kofi[5].as_str()),
        (POLICY, "2", "sms")
    );
    assert!(body.contains("registration report (userRegistrationDetails)"));

    // A tenant without Entra ID P1/P2 refuses the registration report: the same numbers come
    // from per-user reads, and the page says so.
    demo.sim.tenant().set_premium(false);
    let per_user = b.get("/admin/reports").await;
    assert_eq!(per_user.status, 200, "{}", per_user.body);
    for column in ["total", "ready", "partial", "none"] {
        assert_eq!(
            cell(&per_user.body, &policy_row, column),
            cell(body, &policy_row, column),
            "{column}"
        );
    }
    assert_eq!(attr_values(&per_user.body, "data-user"), expected_unable);
    assert!(per_user.body.contains("read per user"));
    demo.stop().await;
}

/// Identifies, asks for a code by `kind` and submits it; `to` lists where the code may arrive.
async fn verify_with_code(demo: &Demo, b: &mut Browser, kind: &str, to: &[&str]) {
    b.ask_code(kind).await;
    let mut code = None;
    for t in to {
        code = code.or(code_for(demo, t).await);
    }
    let page = b.submit_code(kind, &code.expect("a code")).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn activity_per_day_counts_real_resets_unlocks_and_failures() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();

    // Adele: a rejected password (a failed reset), then a reset.
    let mut adele = Browser::new(&demo);
    assert_eq!(adele.identify("adele.vance@contoso.com").await.status, 303);
    verify_with_code(&demo, &mut adele, "email", &["adele.vance@outlook.example"]).await;
    let totp = totp_for(&mut adele, "adele.vance@contoso.com").await;
    assert_eq!(
        adele.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );
    let csrf = adele.get("/reset").await.csrf();
    let weak = adele
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", "short"), ("confirm", "short")],
        )
        .await;
    assert_eq!(weak.status, 400);
    let new = "Quiet-Maple-Harbour-77";
    let done = adele
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);

    // Anna (cloud-only; email + text message) asks to unlock: a cloud account has nothing to
    // unlock (smart lockout ends by itself), so it is not counted as one.
    let mut anna = Browser::new(&demo);
    assert_eq!(anna.identify("anna.jensen@contoso.com").await.status, 303);
    verify_with_code(&demo, &mut anna, "email", &["anna.jensen@outlook.example"]).await;
    verify_with_code(&demo, &mut anna, "sms", &["+4520123456", "+45 20123456"]).await;
    let csrf = anna.get("/action").await.csrf();
    let unlocked = anna.post("/unlock", &[("csrf", &csrf)]).await;
    assert_eq!(unlocked.status, 200, "{}", unlocked.body);

    // Julia: two wrong codes.
    let mut julia = Browser::new(&demo);
    assert_eq!(
        julia.identify("julia.schmidt@contoso.com").await.status,
        303
    );
    julia.ask_code("email").await;
    for _ in 0..2 {
        let wrong = julia.submit_code("email", "00000000").await;
        assert_eq!(wrong.status, 400, "{}", wrong.body);
    }

    let mut admin = Browser::new(&demo);
    sign_in(&demo, &mut admin, "/admin", EVA).await;
    let page = admin.get("/admin/reports?days=7").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let total = "data-day=\"total\"";
    assert_eq!(cell(&page.body, total, "resets"), 1);
    assert_eq!(cell(&page.body, total, "unlocks"), 0);
    assert_eq!(cell(&page.body, total, "failed_verifications"), 2);
    assert_eq!(cell(&page.body, total, "failed_actions"), 1);
    // The day the events were recorded on (UTC) carries them; seven days are listed.
    let recorded = demo
        .store
        .audit_events(&AuditQuery {
            event_type: Some("reset".into()),
            outcome: Some(Outcome::Success),
            ..Default::default()
        })
        .await
        .unwrap();
    let d = recorded[0].event.at.date();
    let day = format!(
        "data-day=\"{:04}-{:02}-{:02}\"",
        d.year(),
        u8::from(d.month()),
        d.day()
    );
    assert_eq!(cell(&page.body, &day, "resets"), 1);
    assert_eq!(page.body.matches("<tr data-day=\"20").count(), 7);
    // An unknown period falls back to 30 days.
    let page = admin.get("/admin/reports?days=5").await;
    assert_eq!(page.body.matches("<tr data-day=\"20").count(), 30);
    demo.stop().await;
}

fn event(
    at: &str,
    subject: Option<ObjectId>,
    actor: &str,
    kind: &str,
    outcome: Outcome,
    correlation: &str,
    reason: Option<&str>,
) -> AuditEvent {
    AuditEvent {
        at: time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap(),
        correlation_id: correlation.into(),
        actor: actor.into(),
        subject,
        event_type: kind.into(),
        method: None,
        outcome,
        reason: reason.map(str::to_string),
        details: serde_json::Value::Null,
    }
}

/// The event ids listed on an audit page.
fn listed(body: &str) -> BTreeSet<i64> {
    attr_values(body, "<tr data-id")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_search_filters_each_narrow_and_pages_and_exports_safely() {
    let (demo, _clock) = demo_with_clock().await;
    let adele = oid(&demo, "adele.vance@contoso.com");
    let ben = oid(&demo, "ben.okafor@contoso.com");
    let eva = oid(&demo, EVA.0);
    let injection = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let seeded = [
        event(
            "2026-01-10T09:00:00Z",
            Some(adele),
            "self",
            "verify",
            Outcome::Failure,
            "corr-a",
            Some(injection),
        ),
        event(
            "2026-01-10T09:01:00Z",
            Some(adele),
            "self",
            "reset",
            Outcome::Success,
            "corr-a",
            None,
        ),
        event(
            "2026-01-11T10:00:00Z",
            Some(ben),
            &eva.to_string(),
            "helpdesk.tap",
            Outcome::Success,
            "corr-b",
            Some("Jürgen, \"quoted\""),
        ),
        event(
            "2026-01-12T11:00:00Z",
            None,
            "system",
            "notify.code",
            Outcome::Error,
            "corr-c",
            Some("-1 bounced"),
        ),
    ];
    let mut ids = Vec::new();
    for e in &seeded {
        ids.push(demo.store.append_audit(e).await.unwrap().0);
    }
    let [e1, e2, e3, e4] = [ids[0], ids[1], ids[2], ids[3]];
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    let all: BTreeSet<i64> = ids.iter().copied().collect();
    let check = async |b: &mut Browser, query: &str, expected: &[i64]| {
        let page = b.get(&format!("/admin/audit?{query}")).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let got: BTreeSet<i64> = listed(&page.body).intersection(&all).copied().collect();
        assert_eq!(
            got,
            expected.iter().copied().collect::<BTreeSet<_>>(),
            "{query}"
        );
        page
    };
    let page = check(&mut b, "", &[e1, e2, e3, e4]).await;
    assert!(
        page.body.contains("corr-a") && page.body.contains("corr-c"),
        "correlation ids shown"
    );
    check(&mut b, "user=adele.vance%40contoso.com", &[e1, e2]).await;
    check(&mut b, &format!("user={adele}"), &[e1, e2]).await;
    check(&mut b, "actor=it.admin%40contoso.com", &[e3]).await;
    check(&mut b, "actor=system", &[e4]).await;
    check(&mut b, "type=reset", &[e2]).await;
    check(&mut b, "outcome=failure", &[e1]).await;
    check(&mut b, "outcome=error", &[e4]).await;
    check(&mut b, "correlation=corr-a", &[e1, e2]).await;
    check(&mut b, "from=2026-01-11&to=2026-01-11", &[e3]).await;
    check(&mut b, "from=2026-01-11", &[e3, e4]).await;
    check(&mut b, "to=2026-01-10", &[e1, e2]).await;
    check(&mut b, "user=adele.vance%40contoso.com&type=verify", &[e1]).await;
    // The correlation link of a row narrows to its request.
    assert!(
        page.body
            .contains("href=\"/admin/audit?correlation=corr-b\"")
    );

    // Bad input: the form again with a linked error summary, no results.
    for (query, field) in [
        ("from=2026-01-12&to=2026-01-10", "to"),
        ("from=10.01.2026", "from"),
        ("user=nobody%40contoso.com", "user"),
        ("user=not-a-user", "user"),
        ("type=%3Cscript%3E", "type"),
        ("outcome=maybe", "outcome"),
        ("actor=a%20b", "actor"),
        ("before=x", "search"),
    ] {
        let p = b.get(&format!("/admin/audit?{query}")).await;
        assert_eq!(p.status, 400, "{query}");
        assert!(p.body.contains("class=\"error-summary\""), "{query}");
        assert!(p.body.contains(&format!("href=\"#{field}\"")), "{query}");
        // Each summary entry points at the field's own error message (or, for a broken page
        // link, at the form).
        let target = if field == "search" {
            "id=\"search\"".to_string()
        } else {
            format!("id=\"{field}-error\"")
        };
        assert!(p.body.contains(&target), "{query}: no {target}");
        assert!(listed(&p.body).is_empty(), "{query}: results shown");
        assert!(
            !p.body.contains("<script>"),
            "{query}: input echoed unescaped"
        );
    }

    // Paging: 60 events of one type, 50 a page, newest first, both ways.
    let mut paged = Vec::new();
    for i in 0..60 {
        let e = event(
            "2026-01-13T08:00:00Z",
            None,
            "system",
            "test.paging",
            Outcome::Success,
            &format!("p-{i}"),
            None,
        );
        paged.push(demo.store.append_audit(&e).await.unwrap().0);
    }
    let first = b.get("/admin/audit?type=test.paging").await;
    let first_ids = listed(&first.body);
    assert_eq!(first_ids.len(), 50);
    assert_eq!(*first_ids.iter().max().unwrap(), paged[59], "newest first");
    let older = first
        .body
        .split("rel=\"next\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        older.contains("type=test.paging") && older.contains("before="),
        "{older}"
    );
    let second = b.get(&older).await;
    let second_ids = listed(&second.body);
    assert_eq!(second_ids.len(), 10);
    assert!(second_ids.is_disjoint(&first_ids));
    assert!(
        !second.body.contains("rel=\"next\""),
        "no page after the last"
    );
    let newer = second
        .body
        .split("rel=\"prev\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(newer.contains("after="), "{newer}");
    assert_eq!(
        listed(&b.get(&newer).await.body),
        first_ids,
        "back to the first page"
    );

    // CSV export of a search: every matching event, RFC 4180, UTF-8, formulas neutralized.
    let before = count_type(&demo, "admin.audit.export").await;
    let export = b.get("/admin/audit/export.csv?correlation=corr-a").await;
    assert_eq!(export.status, 200);
    assert_eq!(export.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"latchkey-audit-")
    );
    assert_eq!(
        export.headers["cache-control"], "no-store",
        "never kept by a cache"
    );
    assert!(export.body.starts_with('\u{feff}'), "UTF-8 byte-order mark");
    assert!(export.body.contains("\r\n"), "CRLF line ends");
    let rows = parse_csv(export.body.trim_start_matches('\u{feff}'));
    assert_eq!(
        rows[0],
        [
            "id",
            "time_utc",
            "event_type",
            "outcome",
            "actor",
            "subject",
            "method",
            "reason",
            "correlation_id",
            "details"
        ]
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1][0], e2.to_string(), "newest first");
    assert_eq!(rows[2][7], format!("'{injection}"), "formula neutralized");
    assert!(
        export
            .body
            .contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\"")
    );
    assert_eq!(rows[2][1], "2026-01-10 09:00:00");
    assert_eq!(rows[2][5], adele.to_string());
    let export = b.get("/admin/audit/export.csv?type=helpdesk.tap").await;
    let rows = parse_csv(export.body.trim_start_matches('\u{feff}'));
    assert_eq!(rows[1][7], "Jürgen, \"quoted\"");
    assert_eq!(rows[1][4], eva.to_string());
    let export = b
        .get("/admin/audit/export.csv?actor=system&type=notify.code")
        .await;
    let rows = parse_csv(export.body.trim_start_matches('\u{feff}'));
    assert_eq!(rows[1][7], "'-1 bounced");
    // The whole search, past one page, in one file.
    let export = b.get("/admin/audit/export.csv?type=test.paging").await;
    assert_eq!(
        parse_csv(export.body.trim_start_matches('\u{feff}')).len(),
        61
    );
    assert_eq!(
        count_type(&demo, "admin.audit.export").await,
        before + 4,
        "exports are audited"
    );
    // A bad search exports nothing.
    assert_eq!(
        b.get("/admin/audit/export.csv?from=yesterday").await.status,
        400
    );
    demo.stop().await;
}

async fn count_type(demo: &Demo, kind: &str) -> usize {
    demo.store
        .audit_events(&AuditQuery {
            event_type: Some(kind.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_lists_every_user_with_groups_policy_and_both_kinds_of_methods() {
    let (demo, _clock) = demo_with_clock().await;
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    let csv = b.get("/admin/reports/inventory.csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let rows = parse_csv(csv.body.trim_start_matches('\u{feff}'));
    assert_eq!(
        rows[0][..3],
        ["object_id", "user_principal_name", "display_name"]
    );
    let fixture = Fixture::demo();
    let generated: u32 = fixture.groups.iter().map(|g| g.generated_members).sum();
    assert_eq!(rows.len() - 1, fixture.users.len() + generated as usize);
    let by_upn: BTreeMap<&str, &Vec<String>> =
        rows[1..].iter().map(|r| (r[1].as_str(), r)).collect();
    let adele = by_upn["adele.vance@contoso.com"];
    assert_eq!(adele[0], oid(&demo, "adele.vance@contoso.com").to_string());
    assert!(
        adele[5].split("; ").any(|g| g == "Sales") && adele[5].contains(SCOPE_GROUP),
        "{adele:?}"
    );
    assert_eq!(adele[7], POLICY);
    assert_eq!(adele[8], "email; sms; totp", "Latchkey's enrolled methods");
    // Entra's methods as the fixture registers them.
    let f = fixture
        .users
        .iter()
        .find(|u| u.upn == "adele.vance@contoso.com")
        .unwrap();
    for (present, name) in [
        (f.methods.email.is_some(), "email"),
        (!f.methods.phones.is_empty(), "phone"),
        (true, "password"),
    ] {
        assert_eq!(
            adele[9].split("; ").any(|m| m == name),
            present,
            "{name}: {}",
            adele[9]
        );
    }
    let eva = by_upn[EVA.0];
    assert!(eva[6].contains("Global Administrator"), "{eva:?}");
    assert_eq!(eva[7], "", "privileged: the demo policy does not apply");
    assert!(eva[9].contains("microsoftAuthenticator"), "{eva:?}");
    let ivan = by_upn["ivan.petrov@contoso.com"];
    assert_eq!(ivan[3], "false");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_audit_and_exports_are_for_admins_only() {
    let (demo, _clock) = demo_with_clock().await;
    let paths = [
        "/admin/reports",
        "/admin/reports/unable.csv",
        "/admin/reports/inventory.csv",
        "/admin/audit",
        "/admin/audit?type=reset",
        "/admin/audit/export.csv",
    ];
    let mut anonymous = Browser::new(&demo);
    for p in paths {
        let page = anonymous.get(p).await;
        assert_eq!(page.status, 303, "{p}");
        assert!(
            page.location.unwrap().starts_with(&demo.sim.base_url()),
            "{p}: not sent to sign-in"
        );
        assert!(!page.body.contains("object_id"), "{p}");
    }
    let exports_before = count_type(&demo, "admin.report.export").await
        + count_type(&demo, "admin.audit.export").await;
    let mut ben = Browser::new(&demo);
    sign_in(&demo, &mut ben, "/admin", BEN).await;
    for p in paths {
        let page = ben.get(p).await;
        assert_eq!(page.status, 403, "{p}");
        assert!(
            !page.headers["content-type"]
                .to_str()
                .unwrap()
                .contains("csv"),
            "{p}"
        );
        assert!(
            !page.body.contains("object_id") && !page.body.contains("data-day"),
            "{p}"
        );
    }
    // A helpdesk member: signed in to the helpdesk console, that session opens no admin page;
    // signed in at /admin, the admin group check refuses.
    let mut farid = Browser::new(&demo);
    sign_in(&demo, &mut farid, "/helpdesk", FARID).await;
    for p in paths {
        let page = farid.get(p).await;
        assert_eq!(
            page.status, 303,
            "{p}: a helpdesk session is not an admin session"
        );
    }
    sign_in(&demo, &mut farid, "/admin", FARID).await;
    for p in paths {
        assert_eq!(farid.get(p).await.status, 403, "{p}");
    }
    assert_eq!(
        count_type(&demo, "admin.report.export").await
            + count_type(&demo, "admin.audit.export").await,
        exports_before,
        "a refused export is not an export"
    );
    demo.stop().await;
}

/// Graph requests the simulator saw whose path contains `part`.
fn graph_requests(demo: &Demo, part: &str) -> usize {
    demo.sim
        .requests()
        .iter()
        .filter(|r| r.path.contains(part))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_big_tenant_is_read_page_by_page_with_one_request_per_user() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    const EXTRA: u32 = 1500;
    let mut fixture = Fixture::demo();
    fixture
        .groups
        .iter_mut()
        .find(|g| g.display_name == SCOPE_GROUP)
        .unwrap()
        .generated_members = EXTRA;
    let members = fixture_members(&fixture, SCOPE_GROUP);
    let demo = demo::start_with(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            fixture,
            ..DemoOptions::default()
        },
    )
    .await
    .unwrap();
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    demo.sim.clear_requests();
    let started = std::time::Instant::now();
    let page = b.get("/admin/reports").await;
    let took = started.elapsed();
    assert_eq!(page.status, 200);
    let group_row = format!(
        "data-group=\"{}\"",
        demo.sim.tenant().group_id(SCOPE_GROUP).unwrap()
    );
    let disabled = 1; // Ivan, from the fixture
    assert_eq!(
        cell(&page.body, &group_row, "total"),
        members.len() - disabled
    );
    // Members come 999 to a page; each enabled member costs one membership request.
    let pages = members.len().div_ceil(999);
    assert_eq!(
        graph_requests(&demo, "/transitiveMembers/microsoft.graph.user"),
        pages
    );
    assert_eq!(
        graph_requests(&demo, "/transitiveMemberOf"),
        members.len() - disabled
    );
    eprintln!(
        "coverage of {} users: {took:?}, {} Graph requests",
        members.len(),
        demo.sim.requests().len()
    );
    // The page lists the first 200 of the users unable to reset; the CSV has them all.
    assert_eq!(page.body.matches("<tr data-user=").count(), 200);
    let csv = b.get("/admin/reports/unable.csv").await;
    let unable = parse_csv(csv.body.trim_start_matches('\u{feff}')).len() - 1;
    assert!(unable >= EXTRA as usize, "{unable}");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_failures_show_no_numbers_and_missing_permissions_are_named() {
    use latchkey_entra_sim::{Fault, FaultKind};
    let (demo, _clock) = demo_with_clock().await;
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    // Graph refuses the member list: no coverage numbers (a partial count would mislead), the
    // activity from the store is still there.
    demo.sim.add_fault(Fault {
        method: None,
        path_contains: "/transitiveMembers".into(),
        kind: FaultKind::Status(403),
        times: 0,
    });
    let page = b.get("/admin/reports").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Enrollment coverage cannot be computed right now")
    );
    assert!(!page.body.contains("data-policy="));
    assert!(page.body.contains("data-day=\"total\""));
    assert_eq!(b.get("/admin/reports/unable.csv").await.status, 503);
    demo.sim.clear_faults();

    // Without permission to read authentication methods the inventory says so, and stops asking.
    demo.sim.add_fault(Fault {
        method: None,
        path_contains: "/authentication/methods".into(),
        kind: FaultKind::Status(403),
        times: 0,
    });
    demo.sim.clear_requests();
    let csv = b.get("/admin/reports/inventory.csv").await;
    assert_eq!(csv.status, 200);
    let rows = parse_csv(csv.body.trim_start_matches('\u{feff}'));
    assert_eq!(rows.len() - 1, Fixture::demo().users.len());
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[9] == "not permitted (UserAuthenticationMethod.Read.All)"),
        "{rows:?}"
    );
    assert!(
        graph_requests(&demo, "/authentication/methods") <= 8,
        "kept asking after a 403"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_that_fails_midway_breaks_the_download_instead_of_looking_complete() {
    use latchkey_entra_sim::{Fault, FaultKind};
    let (demo, _clock) = demo_with_clock().await;
    let mut b = Browser::new(&demo);
    let landed = sign_in(&demo, &mut b, "/admin", EVA).await;
    let session = landed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("latchkey-admin="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    // Graph fails (not a throttle: no retry) once the export is under way.
    demo.sim.add_fault(Fault {
        method: None,
        path_contains: "/authentication/methods".into(),
        kind: FaultKind::Status(500),
        times: 0,
    });
    let resp = reqwest::Client::new()
        .get(format!("{}/admin/reports/inventory.csv", demo.portal_url()))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the export had started");
    assert!(
        resp.text().await.is_err(),
        "a broken export must not end like a complete file"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_group_deleted_from_the_directory_counts_as_empty_and_is_flagged() {
    let (demo, _clock) = demo_with_clock().await;
    let ghost = ObjectId::new_random();
    let scope = demo.sim.tenant().group_id(SCOPE_GROUP).unwrap();
    let text = format!(
        "[[policy]]\nname = \"Ghost\"\npriority = 5\napplies_to = [{{ id = \"{ghost}\" }}]\n\
         actions = [\"reset\"]\nmethods = [\"email\", \"totp\"]\nmethods_required = 2\n\n\
         [[policy]]\nname = \"{POLICY}\"\npriority = 10\n\
         applies_to = [{{ id = \"{scope}\", name = \"{SCOPE_GROUP}\" }}]\n\
         actions = [\"reset\", \"unlock\"]\nmethods = [\"email\", \"totp\", \"sms\"]\nmethods_required = 2\n"
    );
    let set = latchkey_policy::parse_sources(&[(std::path::PathBuf::from("t.toml"), text)])
        .expect("valid policies");
    *demo.services.policies.write().unwrap() = std::sync::Arc::new(set);
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    let page = b.get("/admin/reports").await;
    assert_eq!(page.status, 200);
    assert_eq!(cell(&page.body, "data-policy=\"Ghost\"", "total"), 0);
    let ghost_row = format!("data-group=\"{ghost}\"");
    assert_eq!(cell(&page.body, &ghost_row, "total"), 0);
    let row = page
        .body
        .split(&ghost_row)
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains("data-missing=\"true\""), "{row}");
    // The other policy's numbers are still there.
    assert!(cell(&page.body, &format!("data-policy=\"{POLICY}\""), "total") > 0);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn coverage_stops_at_its_user_limit_and_says_so() {
    use latchkey::admin::reports::coverage;
    let (demo, _clock) = demo_with_clock().await;
    let s = &demo.services;
    let all = coverage::compute(
        std::sync::Arc::clone(&s.directory),
        std::sync::Arc::clone(&s.store),
        s.policies(),
    )
    .await
    .unwrap();
    assert!(!all.truncated);
    let members = fixture_members(&Fixture::demo(), SCOPE_GROUP).len();
    assert_eq!(all.users + all.disabled, members);
    let limit = members - 3;
    let some = coverage::compute_at_most(
        std::sync::Arc::clone(&s.directory),
        std::sync::Arc::clone(&s.store),
        s.policies(),
        limit,
    )
    .await
    .unwrap();
    assert!(some.truncated);
    assert_eq!(some.users + some.disabled, limit);
    demo.stop().await;
}

/// A demo of `fixture` with the directory mirror on, once the mirror is usable.
pub(crate) async fn mirrored(fixture: Fixture) -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start_with(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            fixture,
            mirror: Some(latchkey::config::DirectorySettings {
                sync_interval_seconds: 10,
                ..Default::default()
            }),
            ..DemoOptions::default()
        },
    )
    .await
    .unwrap();
    let mirror = demo.services.mirror.as_ref().unwrap();
    for _ in 0..600 {
        if mirror.freshness().await.unwrap().usable() {
            return demo;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the mirror did not complete its first round within a minute");
}

/// The demo fixture with a generated tenant of `users` users on top.
pub(crate) fn generated(users: usize) -> Fixture {
    let mut fixture = Fixture::demo();
    fixture.generate = Some(latchkey_entra_sim::fixture::GenerateFixture {
        users,
        groups: 200,
        seed: 1,
        ..Default::default()
    });
    fixture
}

/// Policies over the generated tenant: a division (one project excluded) with profile methods
/// and one required, everyone else with Entra methods and two required, privileged included.
pub(crate) fn generated_policies(demo: &Demo) -> latchkey_policy::PolicySet {
    let g = |name: &str| demo.sim.tenant().group_id(name).unwrap();
    let text = format!(
        "[[policy]]\nname = \"Division\"\npriority = 5\n\
         applies_to = [{{ id = \"{}\" }}]\nexcludes = [{{ id = \"{}\" }}]\n\
         actions = [\"reset\"]\nmethods = [\"email\", \"sms\", \"totp\"]\n\
         sources = [\"latchkey\", \"profile\"]\nmethods_required = 1\n\n\
         [[policy]]\nname = \"Everyone\"\npriority = 20\n\
         applies_to = [{{ id = \"{}\", name = \"All Employees\" }}, {{ id = \"{}\" }}]\n\
         actions = [\"reset\", \"unlock\"]\nmethods = [\"email\", \"totp\", \"sms\"]\n\
         sources = [\"latchkey\", \"entra\"]\nmethods_required = 2\nallow_privileged = true\n",
        g("Division 01"),
        g("Project 00001"),
        g("All Employees"),
        g(SCOPE_GROUP),
    );
    latchkey_policy::parse_sources(&[(std::path::PathBuf::from("t.toml"), text)])
        .expect("valid policies")
}

/// The coverage from Graph and from the mirror (pages of `page` users), as JSON.
async fn both_coverages(demo: &Demo, page: u32) -> (serde_json::Value, serde_json::Value) {
    use latchkey::admin::reports::{coverage, coverage_mirror, source};
    let s = &demo.services;
    let graph = coverage::compute(
        std::sync::Arc::clone(&s.directory),
        std::sync::Arc::clone(&s.store),
        s.policies(),
    )
    .await
    .unwrap();
    let used = source::usable(s.mirror.as_ref()).await.expect("usable");
    let mirror = coverage_mirror::compute(
        &used,
        std::sync::Arc::clone(&s.directory),
        s.policies(),
        page,
    )
    .await
    .unwrap();
    assert!(!graph.truncated);
    (
        serde_json::to_value(graph).unwrap(),
        serde_json::to_value(mirror).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn coverage_from_the_mirror_equals_graph_on_the_demo_tenant_and_says_its_source() {
    let demo = mirrored(Fixture::demo()).await;
    let (graph, mirror) = both_coverages(&demo, 7).await;
    assert_eq!(graph, mirror);
    // Not a vacuous comparison: users in scope, some unable.
    assert!(graph["users"].as_u64().unwrap() > 5, "{graph}");
    assert!(!graph["unable"].as_array().unwrap().is_empty(), "{graph}");
    // Pages of 7 and one page give the same: nothing is capped or dropped between pages.
    assert_eq!(both_coverages(&demo, 5_000).await.1, mirror);

    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    let page = b.get("/admin/reports").await;
    assert!(
        page.body.contains("data-source=\"mirror\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Read from the directory mirror, last synchronized")
    );
    let csv = b.get("/admin/reports/unable.csv").await;
    let rows = parse_csv(csv.body.trim_start_matches('\u{feff}'));
    assert_eq!(rows.len() - 1, graph["unable"].as_array().unwrap().len());
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn coverage_from_the_mirror_equals_graph_on_a_generated_tenant() {
    let demo = mirrored(generated(3000)).await;
    *demo.services.policies.write().unwrap() = std::sync::Arc::new(generated_policies(&demo));
    let started = std::time::Instant::now();
    let (graph, mirror) = both_coverages(&demo, 500).await;
    eprintln!("both coverages of 3,000 users: {:?}", started.elapsed());
    assert_eq!(graph, mirror);
    assert!(
        graph["users"].as_u64().unwrap() > 2900,
        "{}",
        graph["users"]
    );
    assert!(graph["disabled"].as_u64().unwrap() > 0);
    let rows = graph["groups"].as_array().unwrap();
    assert!(
        rows.iter().all(|r| r["total"].as_u64().unwrap() > 0),
        "{rows:?}"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inventory_from_the_mirror_has_the_rows_graph_gives() {
    let demo = mirrored(Fixture::demo()).await;
    let mut b = Browser::new(&demo);
    sign_in(&demo, &mut b, "/admin", EVA).await;
    let from_mirror = b.get("/admin/reports/inventory.csv").await;
    assert_eq!(from_mirror.status, 200);
    let mirror_rows: BTreeSet<Vec<String>> =
        parse_csv(from_mirror.body.trim_start_matches('\u{feff}'))
            .into_iter()
            .collect();
    // The same export from Graph: the mirror switched off for this instance.
    let (directory, store, set) = (
        std::sync::Arc::clone(&demo.services.directory),
        std::sync::Arc::clone(&demo.services.store),
        demo.services.policies(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(latchkey::admin::reports::inventory::produce(
        directory, store, set, tx,
    ));
    let mut text = Vec::new();
    while let Some(chunk) = rx.recv().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(text).unwrap();
    let graph_rows: BTreeSet<Vec<String>> = parse_csv(text.trim_start_matches('\u{feff}'))
        .into_iter()
        .collect();
    assert_eq!(graph_rows, mirror_rows);
    demo.stop().await;
}
