//! Security questions over HTTP against the demo with a policy that lists them: enrollment at
//! `/enroll` (rules, argon2id hashes stored, removal), verification with right, wrong and
//! differently written answers, stable decoy questions for unknown accounts, and the rule that
//! questions are only ever an additional method: they never complete a flow on their own.

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_store::EnrollmentState;
use latchkey_types::ObjectId;

use crate::enroll::{code_at, digits, messages_to, next_message, sign_in};
use crate::portal::Browser;

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_PASSWORD: &str = "Adele-Demo-2024!";
const ADELE_MAIL: &str = "adele.vance@outlook.example";

async fn demo_with_questions() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start_with_methods(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions::default(),
        &["questions"],
    )
    .await
    .expect("demo starts")
}

/// The question texts a verification page asks, in order.
fn asked(body: &str) -> Vec<String> {
    body.split("<label for=\"answer_")
        .skip(1)
        .filter_map(|r| r.split_once('>').and_then(|(_, t)| t.split('<').next()))
        .map(str::to_string)
        .collect()
}

/// Identifies `login` and opens the questions page.
async fn questions_page(b: &mut Browser, login: &str) -> Vec<String> {
    assert_eq!(b.identify(login).await.location.as_deref(), Some("/verify"));
    let choose = b.get("/verify").await;
    assert!(
        choose.body.contains("/verify/questions/start"),
        "{}",
        choose.body
    );
    let page = b
        .post("/verify/questions/start", &[("csrf", &choose.csrf())])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    asked(&page.body)
}

async fn answer(b: &mut Browser, answers: [&str; 3]) -> crate::portal::Page {
    let csrf = b.get("/verify").await.csrf();
    b.post(
        "/verify/questions",
        &[
            ("csrf", csrf.as_str()),
            ("answer_1", answers[0]),
            ("answer_2", answers[1]),
            ("answer_3", answers[2]),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_enroll_verify_normalised_and_never_complete_a_flow_alone() {
    let demo = demo_with_questions().await;
    let adele: ObjectId = demo.sim.tenant().user_id(ADELE).unwrap().parse().unwrap();
    let mut b = Browser::new(&demo);
    let page = sign_in(&demo, &mut b, ADELE, ADELE_PASSWORD).await;
    assert!(page.body.contains("action=\"/enroll/questions\""));
    assert!(page.body.contains("What was the name of your first pet?"));
    // Three different questions preselected, not the first one three times.
    for (n, q) in [(1, "q1"), (2, "q2"), (3, "q3")] {
        let select = page
            .body
            .split(&format!("id=\"question_{n}\""))
            .nth(1)
            .and_then(|rest| rest.split("</select>").next())
            .unwrap();
        assert!(
            select.contains(&format!("value=\"{q}\" selected")),
            "question {n}: {select}"
        );
    }
    let csrf = page.csrf();
    let enroll = |answers: [&str; 3]| {
        let csrf = csrf.clone();
        let mut form: Vec<(String, String)> = vec![("csrf".into(), csrf)];
        for (i, (q, a)) in ["q1", "q4", "q7"].iter().zip(answers).enumerate() {
            form.push((format!("question_{}", i + 1), (*q).into()));
            form.push((format!("answer_{}", i + 1), a.into()));
        }
        form
    };
    let post = async |b: &mut Browser, form: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.post("/enroll/questions", &pairs).await
    };
    // The rules: no two answers the same (after normalisation), at least 3 characters.
    let dup = post(&mut b, enroll(["Fluffy", "FLUFFY!", "Elm Street"])).await;
    assert_eq!(dup.status, 400);
    assert!(dup.body.contains("Give each question a different answer."));
    assert!(!dup.body.contains("Fluffy"), "answers are never shown back");
    let short = post(&mut b, enroll(["Fluffy", "ab", "Elm Street"])).await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("at least 3 characters"));
    let mut same_question = enroll(["Fluffy", "Marie", "Elm Street"]);
    same_question[3].1 = "q1".into();
    assert_eq!(post(&mut b, same_question).await.status, 400);
    let mut unknown = enroll(["Fluffy", "Marie", "Elm Street"]);
    unknown[3].1 = "q99".into();
    assert_eq!(post(&mut b, unknown).await.status, 400);
    assert!(
        demo.store
            .enrollment(&adele, "questions", EnrollmentState::Active)
            .await
            .unwrap()
            .is_none()
    );

    let before = messages_to(&demo, ADELE_MAIL).len();
    let saved = post(&mut b, enroll(["Fluffy", "Marie Curie", "Elm Street"])).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/enroll"));
    // The change is announced on the channels known before it.
    next_message(&demo, ADELE_MAIL, before).await;
    let stored = demo
        .store
        .enrollment(&adele, "questions", EnrollmentState::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data,
        serde_json::json!({ "questions": ["q1", "q4", "q7"] })
    );
    let hashes: Vec<String> =
        serde_json::from_slice(stored.secret.as_ref().unwrap().expose()).unwrap();
    assert_eq!(hashes.len(), 3);
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"))
    );
    let listed = b.get("/enroll").await;
    assert!(listed.body.contains("/enroll/questions/remove"));
    assert!(
        demo.audit_types()
            .await
            .iter()
            .any(|e| e == "enroll.activate")
    );

    // Verification asks exactly the enrolled questions.
    let mut r = Browser::new(&demo);
    let questions = questions_page(&mut r, ADELE).await;
    assert_eq!(questions.len(), 3, "{questions:?}");
    assert_eq!(questions[0], "What was the name of your first pet?");
    assert!(questions[1].contains("oldest cousin"));
    assert_eq!(questions[2], "In which street did you live as a child?");
    // One wrong answer fails the set (which one is not said).
    let wrong = answer(&mut r, ["Fluffy", "Marie Curie", "Oak Street"]).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("At least one answer is not right"));
    // Case, spaces and edge punctuation do not matter. Right answers verify the method but do
    // not complete the flow: questions never count toward the methods required.
    let right = answer(&mut r, ["  FLUFFY! ", "marie   CURIE", "elm street."]).await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.location.as_deref(), Some("/verify"));
    let choose = r.get("/verify").await;
    assert!(!choose.body.contains("/verify/questions/start"));
    // Email code + authenticator app still complete the flow.
    let before = messages_to(&demo, ADELE_MAIL).len();
    let sent = r.ask_code("email").await;
    assert_eq!(sent.status, 200, "{:?} {}", sent.location, sent.body);
    let code = digits(&next_message(&demo, ADELE_MAIL, before).await);
    assert_eq!(
        r.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    let totp = code_at(demo.totp_seed(ADELE).unwrap(), 0);
    assert_eq!(
        r.submit_code("totp", &totp).await.location.as_deref(),
        Some("/action")
    );

    // Remove works like the other methods.
    let removed = b
        .post(
            "/enroll/questions/remove",
            &[("csrf", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert!(
        demo.store
            .enrollment(&adele, "questions", EnrollmentState::Active)
            .await
            .unwrap()
            .is_none()
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_for_unknown_and_unenrolled_accounts_are_stable_and_never_succeed() {
    let demo = demo_with_questions().await;
    let mut seen = Vec::new();
    for login in [
        "nobody.here@contoso.com",
        "nobody.here@contoso.com",
        "anna.jensen@contoso.com",
        "anna.jensen@contoso.com",
    ] {
        let mut b = Browser::new(&demo);
        let questions = questions_page(&mut b, login).await;
        assert_eq!(questions.len(), 3, "{questions:?}");
        let wrong = answer(&mut b, ["Fluffy", "Marie Curie", "Elm Street"]).await;
        assert_eq!(wrong.status, 400);
        assert!(wrong.body.contains("At least one answer is not right"));
        seen.push(questions);
    }
    // The same account always sees the same questions.
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[2], seen[3]);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_are_off_unless_a_policy_lists_them() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = Browser::new(&demo);
    assert_eq!(b.identify(ADELE).await.location.as_deref(), Some("/verify"));
    let choose = b.get("/verify").await;
    assert!(!choose.body.contains("/verify/questions"));
    let start = b
        .post("/verify/questions/start", &[("csrf", &choose.csrf())])
        .await;
    assert_eq!(start.status, 404);
    let submit = answer(&mut b, ["Fluffy", "Marie Curie", "Elm Street"]).await;
    assert_eq!(submit.status, 404);
    let mut e = Browser::new(&demo);
    let page = sign_in(&demo, &mut e, ADELE, ADELE_PASSWORD).await;
    assert!(!page.body.contains("/enroll/questions\""));
    demo.stop().await;
}
