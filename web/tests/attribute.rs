//! The directory-attribute method (employee id + hire date): off unless a policy lists it; right
//! values verify, wrong ones and decoy flows never do.

use latchkey::demo::{self, DemoOptions};

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
