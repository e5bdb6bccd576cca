//! The password checks as a user meets them: Microsoft's documented examples of the scoring
//! rule, the examples the portal must refuse (each with its own reason), and the breached
//! lookup against a local range server (answer, timeout, failure, both configured outcomes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use
)]

use std::time::Duration;

use latchkey_password::banned::{BannedTerms, MIN_POINTS};
use latchkey_password::{BreachedLookup, Candidate, Rejection, WhenUnavailable, check};
use latchkey_policy::PasswordRules;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rules(min_length: usize) -> PasswordRules {
    PasswordRules {
        min_length,
        banned_words: vec![],
        forbid_user_names: true,
    }
}

fn verdict(password: &str, min: usize, tenant: &[&str]) -> Result<(), Rejection> {
    let banned = BannedTerms::global_with(tenant.iter().copied());
    check(&Candidate {
        password,
        confirm: Some(password),
        rules: &rules(min),
        user_names: &["Adele Vance", "adele.vance", "AdeleV"],
        banned: &banned,
    })
}

#[test]
fn microsofts_scoring_examples_behave_as_documented() {
    // concept-password-ban-bad: "contoso" on the custom list, "blank" on the global list.
    let terms = BannedTerms::global_with(["contoso", "blank"]);
    // [contoso] + [blank] + [1] + [2] = 4 points: rejected.
    assert_eq!(terms.points("C0ntos0Blank12"), 4);
    assert!(terms.refuses("C0ntos0Blank12"));
    // [contoso] + [blank] + [f] + [9] + [!] = 5 points: accepted.
    assert_eq!(terms.points("ContoS0Bl@nkf9!"), 5);
    assert!(!terms.refuses("ContoS0Bl@nkf9!"));
    // "Bl@nK" normalizes to the banned "blank": one point.
    assert_eq!(terms.points("Bl@nK"), 1);
    // Fuzzy: with "abcdef" banned, one edit away still counts as the term.
    let fuzzy = BannedTerms::global_with(["zyxwvu"]);
    for p in ["zyxwvt", "zyxwv", "zyxQwvu"] {
        assert_eq!(fuzzy.points(p), 1, "{p}");
    }
    // A character added at the end: the term, then one point for the character.
    assert_eq!(fuzzy.points("zyxwvuq"), 2);
    assert_eq!(MIN_POINTS, 5);
}

#[test]
fn the_documented_name_example_is_refused() {
    // "p0LL23fb" for a user named Poll: normalized "poll23fb" contains the first name.
    let banned = BannedTerms::global_with([]);
    let r = check(&Candidate {
        password: "p0LL23fb",
        confirm: None,
        rules: &rules(8),
        user_names: &["Poll Smith"],
        banned: &banned,
    });
    assert_eq!(r, Err(Rejection::ContainsName));
}

#[test]
fn weak_passwords_are_refused_each_with_its_reason() {
    assert_eq!(
        verdict("Password1234567!", 15, &["contoso"]),
        Err(Rejection::BannedTerms)
    );
    assert_eq!(
        verdict("Contoso2024!", 8, &["contoso"]),
        Err(Rejection::BannedTerms)
    );
    assert_eq!(
        verdict("P@ssw0rd-Summer", 8, &["contoso"]),
        Err(Rejection::BannedTerms)
    );
    assert_eq!(
        verdict("AdeleVance2024!!", 8, &[]),
        Err(Rejection::ContainsName)
    );
    assert_eq!(verdict("baseball", 8, &[]), Err(Rejection::CommonList));
    assert_eq!(verdict("TRUSTNO1", 8, &[]), Err(Rejection::CommonList));
    assert_eq!(
        verdict("Sh0rt!", 15, &[]),
        Err(Rejection::TooShort { min: 15 })
    );
    assert_eq!(
        verdict("Grüße-aus-Köln-2024", 8, &[]),
        Err(Rejection::Characters)
    );
    assert_eq!(
        verdict("only lower case words here", 8, &[]),
        Err(Rejection::Classes)
    );
    assert!(matches!(
        verdict("Summer2024Summer2024!", 8, &[]),
        Err(Rejection::Guessable { .. })
    ));
}

#[test]
fn repeated_keys_add_length_not_strength() {
    let terms = BannedTerms::global_with([]);
    // "summer" + "2o26" + one run of "!": 3 points.
    assert_eq!(terms.points("Summer2026!!!!!!"), 3);
    assert_eq!(
        verdict("Summer2026!!!!!!", 15, &[]),
        Err(Rejection::BannedTerms)
    );
    assert_eq!(
        verdict("Aaaaaaaaaaaaaaa1!", 15, &[]),
        Err(Rejection::BannedTerms)
    );
}

#[test]
fn good_passphrases_pass() {
    for p in [
        "Correct-Horse-Battery-42",
        "Violet tractors hum at 7 dawn",
        "Kettle!Orbit9Marmalade",
    ] {
        assert_eq!(verdict(p, 15, &["contoso"]), Ok(()), "{p}");
    }
}

#[test]
fn the_policy_banned_words_and_confirmation() {
    let banned = BannedTerms::global_with([]);
    let strict = PasswordRules {
        min_length: 8,
        banned_words: vec!["fabrikam".into()],
        forbid_user_names: true,
    };
    let c = |p: &'static str, confirm: &'static str| {
        check(&Candidate {
            password: p,
            confirm: Some(confirm),
            rules: &strict,
            user_names: &[],
            banned: &banned,
        })
    };
    assert_eq!(
        c("F@brikam-Quiet-Violet-Hills", "F@brikam-Quiet-Violet-Hills"),
        Err(Rejection::BannedWord)
    );
    assert_eq!(
        c("Correct-Horse-Battery-42", "Correct-Horse-Battery-43"),
        Err(Rejection::Mismatch)
    );
}

/// A Pwned-Passwords-compatible range server on loopback: answers `/range/{prefix}` with the
/// given body after `delay`, or with `status`.
async fn range_server(body: &'static str, status: u16, delay: Duration) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                // Only the first five hex characters of the SHA-1 leave the portal.
                let prefix = request
                    .strip_prefix("GET /range/")
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or_default();
                assert!(
                    prefix.len() == 5 && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{request}"
                );
                assert!(request.to_ascii_lowercase().contains("add-padding: true"));
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    url::Url::parse(&format!("http://{addr}/")).unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

const RANGE: &str = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD8:52256179\r\n011053FD0102E94D6AE2F8B83D76FAF94F6:0\r\n";

#[tokio::test]
async fn a_breached_password_is_refused_and_an_unseen_one_passes() {
    let base = range_server(RANGE, 200, Duration::ZERO).await;
    let lookup = BreachedLookup::new(
        client(),
        base,
        Duration::from_secs(2),
        WhenUnavailable::Allow,
    );
    assert_eq!(lookup.times_seen("password").await.unwrap(), 52256179);
    assert_eq!(lookup.check("password").await, Err(Rejection::Breached));
    // A password whose hash suffix is not in the answer was never seen.
    assert_eq!(
        lookup
            .times_seen("Violet-Tractor-Humming-61")
            .await
            .unwrap(),
        0
    );
    assert_eq!(lookup.check("Violet-Tractor-Humming-61").await, Ok(()));
}

#[tokio::test]
async fn a_slow_or_failing_service_follows_the_configured_outcome() {
    let slow = range_server(RANGE, 200, Duration::from_secs(5)).await;
    for (mode, expected) in [
        (WhenUnavailable::Allow, Ok(())),
        (
            WhenUnavailable::Refuse,
            Err(Rejection::BreachCheckUnavailable),
        ),
    ] {
        let lookup = BreachedLookup::new(client(), slow.clone(), Duration::from_millis(300), mode);
        let started = std::time::Instant::now();
        assert_eq!(lookup.check("password").await, expected);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bounded by the timeout"
        );
    }
    let failing = range_server("", 503, Duration::ZERO).await;
    let lookup = BreachedLookup::new(
        client(),
        failing,
        Duration::from_secs(2),
        WhenUnavailable::Refuse,
    );
    assert_eq!(
        lookup.check("password").await,
        Err(Rejection::BreachCheckUnavailable)
    );
    let down = url::Url::parse("http://127.0.0.1:9/").unwrap();
    let lookup = BreachedLookup::new(
        client(),
        down,
        Duration::from_secs(2),
        WhenUnavailable::Allow,
    );
    assert_eq!(lookup.check("password").await, Ok(()));
}
