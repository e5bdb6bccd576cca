//! Verification: codes bound to the flow, charged before they are checked, decoys that never
//! verify.

use std::time::Duration;

use latchkey_selfservice::flow::Refusal;
use latchkey_selfservice::verify::{self, VerifyError};
use latchkey_types::{MethodKind, Secret};

use crate::lab::{ADELE, ADELE_MAIL, CLIENT, Lab};

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
    assert!(matches!(e, VerifyError::Wrong), "{e}");
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
    for _ in 0..3 {
        let wrong = Secret::new("000000".into());
        let e = verify::check_code(&lab.s, &current, MethodKind::Email, &wrong, CLIENT).await;
        assert!(matches!(e, Err(VerifyError::Wrong)), "{e:?}");
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
