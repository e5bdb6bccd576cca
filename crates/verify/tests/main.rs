//! The crate as a flow uses it: methods driven through the `Method` trait, with the throttle
//! policy around each attempt and the "two methods from different channels" rule at the end.

use std::sync::Arc;

use latchkey_types::{FlowId, ObjectId, Secret};
use latchkey_verify::{
    AuthenticatorApp, Clock, CodeConfig, CodeIssuer, CodeKey, Decision, Destination, EmailCode,
    FailureCounter, ManualClock, Method, MethodKind, Outcome, Subject, ThrottlePolicy, TotpConfig,
    TotpEnrollment, requirement_met,
};
use time::Duration;
use time::macros::datetime;

/// One verification attempt the way `web/` is expected to do it: consume an attempt, verify,
/// refund on success. Returns whether the method is now verified.
async fn attempt<M: Method>(
    method: &M,
    policy: &ThrottlePolicy,
    failures: &mut FailureCounter,
    subject: &Subject,
    stored: &mut M::Stored,
    answer: M::Answer,
    clock: &dyn Clock,
) -> Result<bool, Decision> {
    let now = clock.now();
    match policy.failures_per_method.begin_attempt(failures, now) {
        Decision::Allowed => {}
        denied => return Err(denied),
    }
    let outcome = method
        .verify(subject, stored, answer, now)
        .await
        .expect("verification ran");
    if outcome.is_accepted() {
        policy.failures_per_method.record_success(failures);
    }
    Ok(outcome.is_accepted())
}

#[tokio::test]
async fn email_code_and_authenticator_app_complete_a_reset_requirement() {
    let clock = ManualClock::new(datetime!(2026-11-21 09:00:10 UTC));
    let policy = ThrottlePolicy::default();
    let subject = Subject {
        flow: FlowId::new_random(),
        user: ObjectId::new_random(),
    };
    let issuer =
        Arc::new(CodeIssuer::new(CodeKey::generate().unwrap(), CodeConfig::default()).unwrap());
    let email = EmailCode::new(issuer);
    let app = AuthenticatorApp::new(TotpConfig::new("Contoso")).unwrap();
    let mut verified = Vec::new();

    // Email code: send (throttled per user and channel), one typo, then the right code.
    let mut sends = Vec::new();
    assert!(
        policy
            .sends_per_channel
            .consume(&mut sends, clock.now())
            .is_allowed()
    );
    let destination = Destination::Email("adele.vance@contoso.com".parse().unwrap());
    let (code, mut sent) = email
        .issue(&subject, destination, None, clock.now())
        .unwrap();
    let mut email_failures = FailureCounter::default();
    let typo = Secret::new("0000 000".to_string());
    assert!(
        !attempt(
            &email,
            &policy,
            &mut email_failures,
            &subject,
            &mut sent,
            typo,
            &clock
        )
        .await
        .unwrap()
    );
    clock.advance(Duration::seconds(20));
    assert!(
        attempt(
            &email,
            &policy,
            &mut email_failures,
            &subject,
            &mut sent,
            code.clone(),
            &clock
        )
        .await
        .unwrap()
    );
    assert_eq!(email_failures.consecutive, 0);
    verified.push(email.kind());
    assert!(!requirement_met(2, &verified), "one method is not two");

    // Submitting the same code again (a second tab, a replayed request) fails.
    assert!(
        !attempt(
            &email,
            &policy,
            &mut email_failures,
            &subject,
            &mut sent,
            code,
            &clock
        )
        .await
        .unwrap()
    );

    // Authenticator app.
    let setup = app
        .begin_enrollment(&"adele.vance@contoso.com".parse().unwrap())
        .unwrap();
    let mut enrollment = TotpEnrollment {
        seed: setup.seed,
        last_step: None,
    };
    let totp_code = app.code_at(&enrollment.seed, clock.now()).unwrap();
    let mut totp_failures = FailureCounter::default();
    assert!(
        attempt(
            &app,
            &policy,
            &mut totp_failures,
            &subject,
            &mut enrollment,
            totp_code.clone(),
            &clock
        )
        .await
        .unwrap()
    );
    verified.push(app.kind());
    assert!(requirement_met(2, &verified));
    assert_eq!(verified, [MethodKind::Email, MethodKind::Totp]);

    // The same TOTP code again within its window: replay, refused.
    clock.advance(Duration::seconds(5));
    assert!(
        !attempt(
            &app,
            &policy,
            &mut totp_failures,
            &subject,
            &mut enrollment,
            totp_code,
            &clock
        )
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn guessing_is_slowed_then_stopped() {
    let clock = ManualClock::new(datetime!(2026-11-21 09:00 UTC));
    let policy = ThrottlePolicy::default();
    let subject = Subject {
        flow: FlowId::new_random(),
        user: ObjectId::new_random(),
    };
    let app = AuthenticatorApp::new(TotpConfig::new("Contoso")).unwrap();
    let setup = app
        .begin_enrollment(&"megan.bowen@contoso.com".parse().unwrap())
        .unwrap();
    let mut enrollment = TotpEnrollment {
        seed: setup.seed,
        last_step: None,
    };
    let mut failures = FailureCounter::default();
    let mut allowed = 0;
    let mut denied_with_wait = 0;
    // An attacker hammering once a second for ten minutes.
    for _ in 0..600 {
        let guess = Secret::new("123456".to_string());
        match attempt(
            &app,
            &policy,
            &mut failures,
            &subject,
            &mut enrollment,
            guess,
            &clock,
        )
        .await
        {
            Ok(_) => allowed += 1,
            Err(Decision::Denied { retry_after }) => {
                assert!(retry_after > Duration::ZERO);
                denied_with_wait += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
        clock.advance(Duration::SECOND);
    }
    assert_eq!(allowed, 5, "5 failures per hour");
    assert_eq!(denied_with_wait, 595);
}
