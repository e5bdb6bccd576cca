//! The language of the browser session wins, for pages and for what a flow sends; a switch on
//! every page changes both.

use std::time::Duration;

use latchkey::demo::{self, Demo};

use crate::portal::Browser;

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_MAIL: &str = "adele.vance@outlook.example";

async fn subjects_to(demo: &Demo, to: &str) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    demo.outbox
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_german_browser_gets_german_pages_and_codes_until_it_switches() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = Browser::new(&demo).in_language("de-DE,de;q=0.9,en;q=0.5");
    let home = b.get("/").await;
    assert!(home.body.contains("<html lang=\"de\">"), "{}", home.body);
    // Every page offers the other language, returning to the page.
    assert!(
        home.body.contains("href=\"/language?set=en&amp;next=%2F\""),
        "{}",
        home.body
    );
    assert_eq!(b.identify(ADELE).await.status, 303);
    // Adele's directory language is en-US; her browser says German: the code comes in German.
    b.ask_code("email").await;
    assert_eq!(
        subjects_to(&demo, ADELE_MAIL).await,
        ["Ihr Bestätigungscode für Latchkey demo"]
    );
    // The switch: back to the page it was chosen on, in English from now on, for the pages and
    // for what the flow sends.
    let switched = b.get("/language?set=en&next=%2Fverify").await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location.as_deref(), Some("/verify"));
    let verify = b.get("/verify").await;
    assert!(
        verify.body.contains("<html lang=\"en\">"),
        "{}",
        verify.body
    );
    b.ask_code("email").await;
    let subjects = subjects_to(&demo, ADELE_MAIL).await;
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .any(|s| s == "Your Latchkey demo verification code"),
        "{subjects:?}"
    );
    // Only paths of the portal are returned to.
    let away = b.get("/language?set=de&next=%2F%2Fevil.example").await;
    assert_eq!(away.location.as_deref(), Some("/"));
    demo.stop().await;
}
