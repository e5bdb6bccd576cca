//! The directory-attribute method (employee id + hire date): off unless a policy lists it; right
//! values verify, wrong ones and decoy flows never do. The expected values wait in the flow
//! sealed with the at-rest key: the raw SQLite row does not hold them, and a sealed copy moved
//! into another user's flow does not open.

use latchkey::demo::{self, DemoOptions};
use rusqlite::Connection;

use crate::portal::{Browser, code_for};

async fn demo_with_attribute() -> demo::Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start_with_methods(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions::default(),
        &["attribute"],
    )
    .await
    .expect("demo starts")
}

async fn submit(b: &mut Browser, employee_id: &str, hire_date: &str) -> crate::portal::Page {
    let csrf = b.get("/verify").await.csrf();
    b.post(
        "/verify/attribute",
        &[
            ("csrf", &csrf),
            ("employee_id", employee_id),
            ("hire_date", hire_date),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn employee_details_verify_as_one_method_and_a_code_completes_the_flow() {
    let demo = demo_with_attribute().await;
    let mut b = Browser::new(&demo);
    b.identify("adele.vance@contoso.com").await;
    let csrf = b.get("/verify").await.csrf();
    let form = b.post("/verify/attribute/start", &[("csrf", &csrf)]).await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("Employee ID") && form.body.contains("Start date"),
        "{}",
        form.body
    );
    assert_eq!(
        submit(&mut b, "E1002", "2021-09-01").await.status,
        400,
        "a wrong id verified"
    );
    assert_eq!(
        submit(&mut b, "E1001", "2021-09-02").await.status,
        400,
        "a wrong date verified"
    );
    // Case and spacing do not matter; the date must be the directory's.
    let ok = submit(&mut b, " e 1001 ", "2021-09-01").await;
    assert_eq!(ok.location.as_deref(), Some("/verify"), "{}", ok.body);
    // Another channel completes the flow (attribute = knowledge, email = mailbox).
    b.ask_code("email").await;
    let code = code_for(&demo, "adele.vance@outlook.example")
        .await
        .unwrap();
    assert_eq!(
        b.submit_code("email", &code).await.location.as_deref(),
        Some("/action")
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_accounts_never_pass_and_the_method_is_off_by_default() {
    let demo = demo_with_attribute().await;
    let mut ghost = Browser::new(&demo);
    ghost.identify("nobody@contoso.com").await;
    assert_eq!(submit(&mut ghost, "E1001", "2021-09-01").await.status, 400);
    assert_eq!(submit(&mut ghost, "", "").await.status, 400);
    demo.stop().await;

    let plain = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = Browser::new(&plain);
    b.identify("adele.vance@contoso.com").await;
    assert!(
        !b.get("/verify")
            .await
            .body
            .contains("/verify/attribute/start")
    );
    assert_eq!(submit(&mut b, "E1001", "2021-09-01").await.status, 404);
    plain.stop().await;
}

async fn connect(demo: &demo::Demo) -> Connection {
    let path = demo.config_path.parent().unwrap().join("latchkey.db");
    let db = Connection::open(path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db
}

/// The newest self-service flow's id and its raw text columns (what a copy of the database shows).
async fn newest_flow(db: &mut Connection) -> (String, String) {
    let cols: Vec<String> = db
        .query_row(
            "SELECT id, subject, purpose, step, verified, data FROM flows \
             WHERE purpose = 'self-service' ORDER BY created_at_ms DESC, rowid DESC LIMIT 1",
            [],
            |row| (0..6).map(|i| row.get::<_, String>(i)).collect(),
        )
        .unwrap();
    (cols[0].clone(), cols.join("\n"))
}

async fn sealed_of(db: &mut Connection, id: &str) -> String {
    db.query_row(
        "SELECT json_extract(data, '$.attributes_sealed') FROM flows WHERE id = ?",
        [id],
        |row| row.get::<_, String>(0),
    )
    .unwrap()
}

async fn put_sealed(db: &mut Connection, id: &str, sealed: &str) {
    let done = db
        .execute(
            "UPDATE flows SET data = json_set(data, '$.attributes_sealed', ?) WHERE id = ?",
            [sealed, id],
        )
        .unwrap();
    assert_eq!(done, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_values_are_sealed_at_rest_and_bound_to_the_flows_user() {
    let demo = demo_with_attribute().await;
    let mut db = connect(&demo).await;
    let mut adele = Browser::new(&demo);
    adele.identify("adele.vance@contoso.com").await;
    let (adele_flow, raw) = newest_flow(&mut db).await;
    let lower = raw.to_lowercase();
    for value in ["e1001", "2021-09-01", "2021", "1001"] {
        assert!(
            !lower.contains(value),
            "{value} in clear in the flow row: {raw}"
        );
    }
    let sealed = sealed_of(&mut db, &adele_flow).await;
    assert!(sealed.len() > 40, "nothing sealed: {raw}");

    // Another real (not decoy) user's flow carrying Adele's sealed values: they do not open
    // there, so Adele's answers do not verify it.
    let mut anna = Browser::new(&demo);
    anna.identify("anna.jensen@contoso.com").await;
    let (anna_flow, anna_raw) = newest_flow(&mut db).await;
    assert_ne!(anna_flow, adele_flow);
    assert!(anna_raw.contains("\"decoy\":false"), "{anna_raw}");
    assert!(
        anna_raw.contains("\"attribute\""),
        "policy without the method: {anna_raw}"
    );
    put_sealed(&mut db, &anna_flow, &sealed).await;
    let csrf = anna.get("/verify").await.csrf();
    anna.post("/verify/attribute/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(submit(&mut anna, "E1001", "2021-09-01").await.status, 400);

    // A second flow of Adele's own (same subject) opens the copy: the binding, not the copy
    // itself, is what stopped Anna's.
    let mut again = Browser::new(&demo);
    again.identify("adele.vance@contoso.com").await;
    let (again_flow, _) = newest_flow(&mut db).await;
    put_sealed(&mut db, &again_flow, &sealed).await;
    let csrf = again.get("/verify").await.csrf();
    again
        .post("/verify/attribute/start", &[("csrf", &csrf)])
        .await;
    let ok = submit(&mut again, "E1001", "2021-09-01").await;
    assert_eq!(ok.location.as_deref(), Some("/verify"), "{}", ok.body);
    // Tampered: does not open, fails closed.
    let mut tampered = Browser::new(&demo);
    tampered.identify("adele.vance@contoso.com").await;
    let (tampered_flow, _) = newest_flow(&mut db).await;
    let mut bad = sealed.clone().into_bytes();
    let mid = bad.len() / 2;
    bad[mid] = if bad[mid] == b'A' { b'B' } else { b'A' };
    put_sealed(&mut db, &tampered_flow, &String::from_utf8(bad).unwrap()).await;
    let csrf = tampered.get("/verify").await.csrf();
    tampered
        .post("/verify/attribute/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        submit(&mut tampered, "E1001", "2021-09-01").await.status,
        400
    );
    demo.stop().await;
}
