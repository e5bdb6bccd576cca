//! The crate as a flow uses it: methods driven through the `Method` trait and the "two methods
//! from different channels" rule at the end. Throttling lives in the store (`Store::hit`), which
//! the portal charges before each attempt; its tests are in crates/store and web/tests/security.rs.
#![allow(clippy::disallowed_methods)]
// tests read the system clock and randomness directly
// Test code: a failing test stops right there (unwrap, expect, panic), and what a test drops it
// does not need.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future
)]

use std::sync::Arc;

use latchkey_types::{FlowId, ObjectId, Secret};
use latchkey_verify::{
    AuthenticatorApp, Clock, CodeConfig, CodeIssuer, CodeKey, Destination, EmailCode, ManualClock,
    Method, MethodKind, Outcome, Subject, TotpConfig, TotpEnrollment, requirement_met,
};
use time::Duration;
use time::macros::datetime;

/// One verification attempt: verify, and report whether the method is now verified.
async fn attempt<M: Method>(
    method: &M,
    subject: &Subject,
    stored: &mut M::Stored,
    answer: M::Answer,
    clock: &dyn Clock,
) -> bool {
    let outcome = method
        .verify(subject, stored, answer, clock.now())
        .await
        .expect("verification ran");
    outcome.is_accepted()
}

#[tokio::test]
async fn email_code_and_authenticator_app_complete_a_reset_requirement() {
    let clock = ManualClock::new(datetime!(2026-11-21 09:00:10 UTC));
    let subject = Subject {
        flow: FlowId::new_random(),
        user: ObjectId::new_random(),
    };
    let issuer =
        Arc::new(CodeIssuer::new(CodeKey::generate().unwrap(), CodeConfig::default()).unwrap());
    let email = EmailCode::new(issuer);
    let app = AuthenticatorApp::new(TotpConfig::new("Contoso")).unwrap();
    let mut verified = Vec::new();

    // Email code: one typo, then the right code.
    let destination = Destination::Email("adele.vance@contoso.com".parse().unwrap());
    let (code, mut sent) = email
        .issue(&subject, destination, None, clock.now())
        .unwrap();
    let typo = Secret::new("0000 000".to_string());
    assert!(!attempt(&email, &subject, &mut sent, typo, &clock).await);
    clock.advance(Duration::seconds(20));
    assert!(attempt(&email, &subject, &mut sent, code.clone(), &clock).await);
    verified.push(email.kind());
    assert!(!requirement_met(2, &verified), "one method is not two");

    // Submitting the same code again (a second tab, a replayed request) fails.
    assert!(!attempt(&email, &subject, &mut sent, code, &clock).await);

    // Authenticator app.
    let setup = app
        .begin_enrollment(&"adele.vance@contoso.com".parse().unwrap())
        .unwrap();
    let mut enrollment = TotpEnrollment {
        seed: setup.seed,
        last_step: None,
    };
    let totp_code = app.code_at(&enrollment.seed, clock.now()).unwrap();
    assert!(attempt(&app, &subject, &mut enrollment, totp_code.clone(), &clock).await);
    verified.push(app.kind());
    assert!(requirement_met(2, &verified));
    assert_eq!(verified, [MethodKind::Email, MethodKind::Totp]);

    // The same TOTP code again within its window: replay, refused.
    clock.advance(Duration::seconds(5));
    assert!(!attempt(&app, &subject, &mut enrollment, totp_code, &clock).await);
}
