//! New-password checks over HTTP, as a user meets them on the reset page of the demo (tenant
//! "Contoso", custom banned list `contoso, password, welcome, latchkey`): each refusal has its own
//! message and changes nothing, a good passphrase goes through, and the live check while typing
//! answers with the same rules.

use latchkey::demo;
use latchkey_entra_sim::SignInOutcome;

use crate::security::verified;

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_PASSWORD: &str = "Adele-Demo-2024!";

#[tokio::test(flavor = "multi_thread")]
async fn weak_passwords_are_refused_each_with_its_own_message() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    for (password, message) in [
        ("Password1234567!", "built mostly from words and patterns"),
        ("P@ssw0rd-Summer", "built mostly from words and patterns"),
        ("Contoso2024Spring!", "built mostly from words and patterns"),
        ("baseball", "one of the most common passwords"),
        ("Vance-Family-Trip-99", "must not contain your name"),
    ] {
        let page = b
            .post(
                "/reset",
                &[
                    ("csrf", &csrf),
                    ("password", password),
                    ("confirm", password),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{password}");
        assert!(page.body.contains(message), "{password}: {}", page.body);
        assert_eq!(
            demo.sim.sign_in(ADELE, ADELE_PASSWORD),
            SignInOutcome::Success,
            "{password}: nothing changed"
        );
    }
    // The live check while typing says the same, and that a good passphrase meets every rule.
    for (password, ok, message) in [
        (
            "P@ssw0rd-Summer",
            false,
            "built mostly from words and patterns",
        ),
        ("baseball", false, "one of the most common passwords"),
        ("Quiet-Maple-Harbour-77", true, "meets every rule"),
    ] {
        let live = b
            .post("/reset/check", &[("csrf", &csrf), ("password", password)])
            .await;
        assert_eq!(live.status, 200, "{password}");
        let v: serde_json::Value = serde_json::from_str(&live.body).unwrap();
        assert_eq!(v["ok"], ok, "{password}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(message),
            "{password}: {v}"
        );
    }
    // Without the flow's form token the live check is refused like any other post.
    let forged = b
        .post("/reset/check", &[("csrf", "forged"), ("password", "x")])
        .await;
    assert_ne!(forged.status, 200);
    let good = "Quiet-Maple-Harbour-77";
    let done = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", good), ("confirm", good)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(demo.sim.sign_in(ADELE, good), SignInOutcome::Success);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_german_browser_is_told_why_in_german() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = verified(&demo).await;
    // The switch sets the session's language; the refusals come in it.
    assert_eq!(b.get("/language?set=de&next=%2Freset").await.status, 303);
    let csrf = b.get("/reset").await.csrf();
    for (password, message) in [
        (
            "Password1234567!",
            "überwiegend aus leicht zu erratenden Wörtern",
        ),
        ("baseball", "eines der häufigsten Passwörter"),
        (
            "Vance-Family-Trip-99",
            "darf Ihren Namen oder Kontonamen nicht enthalten",
        ),
    ] {
        let page = b
            .post(
                "/reset",
                &[
                    ("csrf", &csrf),
                    ("password", password),
                    ("confirm", password),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{password}");
        assert!(page.body.contains(message), "{password}: {}", page.body);
    }
    let live = b
        .post(
            "/reset/check",
            &[("csrf", &csrf), ("password", "P@ssw0rd-Summer")],
        )
        .await;
    assert!(live.body.contains("leicht zu erratenden"), "{}", live.body);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_check_needs_a_verified_flow() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut b = crate::portal::Browser::new(&demo);
    b.identify(ADELE).await;
    let csrf = b.get("/verify").await.csrf();
    let live = b
        .post(
            "/reset/check",
            &[("csrf", &csrf), ("password", "Quiet-Maple-Harbour-77")],
        )
        .await;
    assert_eq!(live.status, 200);
    let v: serde_json::Value = serde_json::from_str(&live.body).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["message"], "", "{v}");
    demo.stop().await;
}
