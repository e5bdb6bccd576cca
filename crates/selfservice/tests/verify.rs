//! Verification: codes bound to the flow, charged before they are checked, decoys that never
//! verify.

use std::time::Duration;

use latchkey_selfservice::flow::Refusal;
use latchkey_selfservice::verify::{self, VerifyError};
use latchkey_types::{MethodKind, Secret};

use crate::lab::{ADELE, ADELE_MAIL, CARLA, CLIENT, KOFI, KOFI_MAIL, KOFI_PHONE, Lab};

#[tokio::test(flavor = "multi_thread")]
async fn a_decoy_flow_does_the_same_work_sends_nothing_and_never_verifies() {
    let lab = Lab::start(r#""reset""#).await;
    let decoy = lab.start_flow("nobody@contoso.com").await;
    verify::send_code(&lab.s, &decoy, MethodKind::Email)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lab.sent.count(), 0, "a decoy's code goes nowhere");
    let e = verify::check_code(
        &lab.s,
        &decoy,
        MethodKind::Email,
        &Secret::new("123456".into()),
        CLIENT,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, VerifyError::Wrong { tries_left: 2 }), "{e}");
    let trail = lab.trail(&decoy.data.correlation_id).await;
    assert!(trail.contains(&("code.send".into(), "denied".into())));
    assert!(trail.contains(&("verify".into(), "failure".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_proves_one_method_once_and_rotates_the_flow_token() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.start_flow(ADELE).await;
    verify::send_code(&lab.s, &current, MethodKind::Email)
        .await
        .unwrap();
    let code = Secret::new(lab.code_for(ADELE_MAIL).await);
    let v = verify::check_code(&lab.s, &current, MethodKind::Email, &code, CLIENT)
        .await
        .unwrap();
    assert!(!v.complete, "one method of two");
    assert_ne!(v.token, current.token);
    // The same code again (the old token's request replayed): refused, the method not counted
    // twice.
    let again = verify::check_code(&lab.s, &current, MethodKind::Email, &code, CLIENT).await;
    assert!(again.is_err());
    let now = lab.load(v.token).await;
    assert_eq!(now.verified(), vec![MethodKind::Email]);
    assert!(!now.is_complete());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_are_charged_and_then_throttled_and_nothing_typed_is_not_charged() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.start_flow(ADELE).await;
    verify::send_code(&lab.s, &current, MethodKind::Email)
        .await
        .unwrap();
    let empty = verify::check_code(
        &lab.s,
        &current,
        MethodKind::Email,
        &Secret::new(" ".into()),
        CLIENT,
    )
    .await;
    assert!(matches!(empty, Err(VerifyError::Missing)));
    // Not a code at all (too long, or not digits): a slip, not charged either.
    for slip in ["1".repeat(70), "12ab56".to_string()] {
        let typed = Secret::new(slip);
        let e = verify::check_code(&lab.s, &current, MethodKind::Email, &typed, CLIENT).await;
        assert!(matches!(e, Err(VerifyError::Malformed)), "{e:?}");
    }
    // Each wrong code says how many tries are left before the account must wait.
    for left in [2, 1, 0] {
        let wrong = Secret::new("000000".into());
        let e = verify::check_code(&lab.s, &current, MethodKind::Email, &wrong, CLIENT).await;
        assert!(
            matches!(e, Err(VerifyError::Wrong { tries_left }) if tries_left == left),
            "{e:?}"
        );
    }
    // The right code after the burst limit: throttled, not checked.
    let code = Secret::new(lab.code_for(ADELE_MAIL).await);
    let e = verify::check_code(&lab.s, &current, MethodKind::Email, &code, CLIENT).await;
    assert!(
        matches!(e, Err(VerifyError::Refused(Refusal::Throttled(_)))),
        "{e:?}"
    );
    let trail = lab.trail(&current.data.correlation_id).await;
    assert!(trail.contains(&("verify.throttled".into(), "denied".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_are_limited_per_account_and_channel() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.start_flow(ADELE).await;
    for _ in 0..5 {
        verify::send_code(&lab.s, &current, MethodKind::Email)
            .await
            .unwrap();
    }
    let e = verify::send_code(&lab.s, &current, MethodKind::Email).await;
    assert!(
        matches!(e, Err(VerifyError::Refused(Refusal::Throttled(_)))),
        "{e:?}"
    );
    // The other channel has its own count.
    verify::send_code(&lab.s, &current, MethodKind::Sms)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn only_methods_a_policy_lists_are_offered() {
    let lab = Lab::start(r#""reset""#).await;
    assert_eq!(verify::offered(&lab.s, "email"), Some(MethodKind::Email));
    assert_eq!(verify::offered(&lab.s, "questions"), None);
    assert_eq!(verify::offered(&lab.s, "attribute"), None);
    assert_eq!(verify::offered(&lab.s, "carrier-pigeon"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_registered_in_entra_verify_a_user_who_never_enrolled() {
    let lab = Lab::start(r#""reset""#).await;
    // Latchkey enrollments only (the default): Kofi has none, so his flow is a decoy.
    let decoy = lab.start_flow(KOFI).await;
    assert!(decoy.data.decoy);
    // A policy that accepts what users registered in Entra: his phone and email count.
    lab.set_sources(r#""latchkey", "entra""#);
    let current = lab.start_flow(KOFI).await;
    assert!(!current.data.decoy, "Kofi has an Entra phone and email");
    let masked = verify::send_code(&lab.s, &current, MethodKind::Email)
        .await
        .unwrap();
    assert_eq!(masked, "k•••@p•••");
    let current = lab.load(current.token).await;
    assert_eq!(
        current
            .data
            .sent_to
            .get(&MethodKind::Email)
            .map(String::as_str),
        Some("k•••@p•••"),
        "kept for the code page"
    );
    let current = lab.prove(current, MethodKind::Email, KOFI_MAIL).await;
    let current = lab.prove(current, MethodKind::Sms, KOFI_PHONE).await;
    assert!(current.is_complete(), "two Entra-registered methods");
    // Adele's enrolled addresses still come first where she has both.
    let adele = lab.start_flow(ADELE).await;
    let masked = verify::send_code(&lab.s, &adele, MethodKind::Email)
        .await
        .unwrap();
    assert_eq!(masked, "a•••@o•••");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_that_sends_nothing_shows_a_stable_plausible_mask() {
    let lab = Lab::start(r#""reset""#).await;
    let first = lab.start_flow("nobody@contoso.com").await;
    let a = verify::send_code(&lab.s, &first, MethodKind::Email)
        .await
        .unwrap();
    // Every spelling of that account (as a real account's spellings all show one mask).
    for spelling in [
        "Nobody@Contoso.com",
        "CORP\\nobody",
        "nobody",
        "nobody@corp.contoso.com",
    ] {
        let again = lab.start_flow(spelling).await;
        let b = verify::send_code(&lab.s, &again, MethodKind::Email)
            .await
            .unwrap();
        assert_eq!(a, b, "{spelling}: one account, one mask");
    }
    assert!(a.contains("•••@") && a.ends_with("•••"), "{a}");
    // A domain that is not the tenant's names nobody here: its stand-in shares nothing with the
    // tenant's spelling (a real account's spellings would not resolve there either).
    let foreign = lab.start_flow("nobody@elsewhere.example").await;
    let f = verify::send_code(&lab.s, &foreign, MethodKind::Sms)
        .await
        .unwrap();
    let home = verify::send_code(&lab.s, &first, MethodKind::Sms)
        .await
        .unwrap();
    assert_ne!(f, home, "a foreign domain's decoy is keyed apart");
    assert_ne!(foreign.data.throttle_key, first.data.throttle_key);
    let sms = verify::send_code(&lab.s, &first, MethodKind::Sms)
        .await
        .unwrap();
    assert!(
        sms.starts_with("••• ••• •• ") && sms.len() == "••• ••• •• 00".len(),
        "{sms}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lab.sent.count(), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_profile_source_is_read_only_where_a_policy_names_it() {
    use latchkey_policy::MethodSource;
    use latchkey_selfservice::channels;
    let lab = Lab::start(r#""reset""#).await;
    let carla = lab.user(CARLA);
    // Carla's profile has a mobile phone; she enrolled nothing in Latchkey.
    let none = channels::destination(&lab.s, &carla, MethodKind::Sms, &[MethodSource::Latchkey])
        .await
        .unwrap();
    assert!(none.is_none());
    let profile = channels::destination(&lab.s, &carla, MethodKind::Sms, &[MethodSource::Profile])
        .await
        .unwrap()
        .expect("the profile's mobilePhone");
    assert_eq!(channels::mask(&profile), "••• ••• •• 78");
    // Authenticator apps never come from the directory.
    let totp = channels::destination(&lab.s, &carla, MethodKind::Totp, &[MethodSource::Entra])
        .await
        .unwrap();
    assert!(totp.is_none());
}
