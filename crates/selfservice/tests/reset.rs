//! The change itself: reset (app-only, unknown outcome, refusals), unlock and a Temporary Access
//! Pass, each settled once, audited, and followed by the one after-change step.

use std::time::Duration;

use latchkey_entra_sim::SignInOutcome;
use latchkey_entra_sim::faults::{Fault, FaultKind, Method};
use latchkey_policy::Action;
use latchkey_selfservice::act::{self, Acting};
use latchkey_selfservice::flow::Current;
use latchkey_selfservice::password::Rejection;
use latchkey_selfservice::reset::{self, ResetOutcome, WritePath};
use latchkey_selfservice::signout::SignOut;
use latchkey_selfservice::tap::{self, TapOutcome};
use latchkey_selfservice::unlock::{self, UnlockOutcome, UnlockResult};
use latchkey_store::FlowStep;
use latchkey_types::Secret;

use crate::lab::{ADELE, ADELE_MAIL, CARLA, Lab};

const NEW: &str = "Quiet-Maple-Harbour-77";

async fn claim(lab: &Lab, current: Current, action: Action) -> Acting {
    act::claim(&lab.s, current, action).await.expect("claimed")
}

fn patch_fault(lab: &Lab, kind: FaultKind, times: u32) {
    let user = lab.user(ADELE);
    lab.sim.add_fault(Fault {
        method: Some(Method::PATCH),
        path_contains: format!("/users/{user}"),
        kind,
        times,
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_user_sets_a_new_password_once_and_everything_after_it_happens() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let current = lab.verified_adele().await;
    let (token, cid) = (current.token.clone(), current.data.correlation_id.clone());
    let mails_before = lab.sent.to(ADELE_MAIL).len();
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    let ResetOutcome::Changed {
        path,
        sign_out,
        notified,
        risk_cleared,
    } = outcome
    else {
        panic!("not changed: {outcome:?}");
    };
    assert_eq!(path, WritePath::AppOnly);
    assert_eq!(sign_out, Some(SignOut::Revoked));
    assert!(notified);
    assert!(!risk_cleared, "Adele is not at risk");
    assert_eq!(lab.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
    assert_eq!(lab.password_writes(), 1);
    let trail = lab.trail(&cid).await;
    let reset_events: Vec<_> = trail.iter().filter(|(e, _)| e == "reset").collect();
    assert_eq!(
        reset_events,
        vec![
            &("reset".to_string(), "started".to_string()),
            &("reset".to_string(), "success".to_string())
        ]
    );
    assert!(trail.contains(&("sessions.revoke".into(), "success".into())));
    // The flow ended with the change; the notice went out through the outbox.
    assert!(Current::load(&lab.s, token).await.unwrap().is_none());
    for _ in 0..300 {
        if lab.sent.to(ADELE_MAIL).len() > mails_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        lab.sent.to(ADELE_MAIL).len() > mails_before,
        "the user is told"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_password_gives_the_verification_back_for_another_try() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.verified_adele().await;
    let token = current.token.clone();
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new("short".into()), "short").await;
    assert!(
        matches!(outcome, ResetOutcome::Rejected(Rejection::TooShort { .. })),
        "{outcome:?}"
    );
    let mismatch = {
        let acting = claim(&lab, lab.load(token.clone()).await, Action::Reset).await;
        reset::reset(&lab.s, acting, Secret::new(NEW.into()), "other").await
    };
    assert!(matches!(
        mismatch,
        ResetOutcome::Rejected(Rejection::Mismatch)
    ));
    assert_eq!(lab.password_writes(), 0, "nothing reached the directory");
    let again = lab.load(token).await;
    assert_eq!(again.flow.step, FlowStep::Retry);
    let acting = claim(&lab, again, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(
        matches!(outcome, ResetOutcome::Changed { .. }),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_that_is_down_changes_nothing_and_says_try_again() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.verified_adele().await;
    let (token, cid) = (current.token.clone(), current.data.correlation_id.clone());
    patch_fault(&lab, FaultKind::Status(503), 0);
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(
        matches!(outcome, ResetOutcome::TryAgain(Ok(()))),
        "{outcome:?}"
    );
    assert_eq!(lab.outcomes(&cid, "reset").await, ["started", "error"]);
    assert_eq!(lab.sim.sign_in(ADELE, NEW), SignInOutcome::InvalidPassword);
    lab.sim.clear_faults();
    let acting = claim(&lab, lab.load(token).await, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(
        matches!(outcome, ResetOutcome::Changed { .. }),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_applied_without_an_answer_is_confirmed_by_reading_the_user_back() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.verified_adele().await;
    patch_fault(&lab, FaultKind::DropResponse, 1);
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(
        matches!(outcome, ResetOutcome::Changed { .. }),
        "{outcome:?}"
    );
    assert_eq!(lab.password_writes(), 1, "never written twice");
    assert_eq!(lab.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_whose_outcome_cannot_be_told_is_recorded_as_unknown_and_ends_the_flow() {
    let lab = Lab::start(r#""reset""#).await;
    let current = lab.verified_adele().await;
    let (token, cid) = (current.token.clone(), current.data.correlation_id.clone());
    let acting = claim(&lab, current, Action::Reset).await;
    patch_fault(&lab, FaultKind::DropResponse, 1);
    // Reading the user back fails too.
    let user = lab.user(ADELE);
    lab.sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: format!("/users/{user}"),
        kind: FaultKind::Status(503),
        times: 0,
    });
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    let ResetOutcome::Unknown { reference } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reference, cid);
    assert_eq!(lab.password_writes(), 1);
    assert_eq!(lab.outcomes(&cid, "reset").await, ["started", "error"]);
    assert!(Current::load(&lab.s, token).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synced_user_without_writeback_or_gateway_is_told_it_cannot_be_done_here() {
    let lab = Lab::start(r#""reset""#).await;
    lab.enroll(CARLA, Some("carla@example.org"), Some("+351912345678"))
        .await;
    let current = lab.start_flow(CARLA).await;
    let current = lab
        .prove(
            current,
            latchkey_types::MethodKind::Email,
            "carla@example.org",
        )
        .await;
    let current = lab
        .prove(current, latchkey_types::MethodKind::Sms, "+351912345678")
        .await;
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(
        matches!(outcome, ResetOutcome::NoPath(Ok(()))),
        "{outcome:?}"
    );
    assert_eq!(lab.password_writes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_unlock_changes_nothing_says_why_and_leaves_the_reset_open() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let current = lab.verified_adele().await;
    let (token, cid) = (current.token.clone(), current.data.correlation_id.clone());
    let acting = claim(&lab, current, Action::Unlock).await;
    let outcome = unlock::unlock(&lab.s, acting).await;
    // The tenant's smart lockout (Entra's defaults in the demo tenant): nothing to unlock.
    let UnlockOutcome::NothingToUnlock {
        lockout,
        recorded: Ok(()),
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!((lockout.threshold, lockout.duration_seconds), (10, 60));
    // Not counted as an unlock; the claim was given back.
    assert_eq!(lab.outcomes(&cid, "unlock").await, ["denied"]);
    let again = lab.load(token).await;
    let acting = claim(&lab, again, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(
        matches!(outcome, ResetOutcome::Changed { .. }),
        "{outcome:?}"
    );
    assert_eq!(lab.sim.sign_in(ADELE, NEW), SignInOutcome::Success);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_risk_flag_is_dismissed_at_unlock_and_that_spends_the_verification() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    assert!(lab.sim.tenant().set_risk(ADELE, "high", "atRisk"));
    let current = lab.verified_adele().await;
    let (token, cid) = (current.token.clone(), current.data.correlation_id.clone());
    let acting = claim(&lab, current, Action::Unlock).await;
    let outcome = unlock::unlock(&lab.s, acting).await;
    assert!(
        matches!(
            outcome,
            UnlockOutcome::Done {
                result: UnlockResult::Cloud,
                risk_cleared: true,
                recorded: Ok(()),
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        lab.outcomes(&cid, "risk.dismiss").await,
        ["started", "success"]
    );
    assert!(Current::load(&lab.s, token).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_cloud_reset_the_user_is_no_longer_at_risk() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    assert!(lab.sim.tenant().set_risk(ADELE, "high", "atRisk"));
    let current = lab.verified_adele().await;
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    // Entra remediates the risk of a password it sets itself; nothing is left to dismiss (a
    // password set on-premises is dismissed by the portal: tests/gateway.rs).
    assert!(
        matches!(
            outcome,
            ResetOutcome::Changed {
                risk_cleared: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    let adele = lab.user(ADELE);
    assert!(!lab.s.directory.is_at_risk(&adele).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_access_pass_is_issued_once_and_audited_without_the_pass() {
    let lab = Lab::start(r#""reset", "temporary_access_pass""#).await;
    let current = lab.verified_adele().await;
    let cid = current.data.correlation_id.clone();
    let acting = claim(&lab, current, Action::TemporaryAccessPass).await;
    let TapOutcome::Issued(pass) = tap::tap(&lab.s, acting).await else {
        panic!("no pass");
    };
    let secret = pass.pass.expose().clone();
    assert!(!secret.is_empty());
    let events = lab.audit(&cid).await;
    // The pass's own events (the delivery of the notice is recorded beside them, whenever it is
    // sent): the intent, then the success.
    let pass_events: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type == "temporary_access_pass")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(pass_events, ["started", "success"]);
    for e in &events {
        let text = format!("{:?} {:?} {}", e.reason, e.details, e.event_type);
        assert!(!text.contains(&secret), "the pass is never audited");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn password_submissions_and_unlock_requests_are_limited_per_flow() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let current = lab.verified_adele().await;
    let token = current.token.clone();
    // Twenty submissions that are refused (the confirmation differs) are answered; then the
    // flow must wait, without a check or a Graph call.
    let mut current = current;
    for _ in 0..20 {
        let acting = claim(&lab, current, Action::Reset).await;
        let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), "other").await;
        assert!(matches!(outcome, ResetOutcome::Rejected(_)), "{outcome:?}");
        current = lab.load(token.clone()).await;
    }
    let acting = claim(&lab, current, Action::Reset).await;
    let outcome = reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await;
    assert!(matches!(outcome, ResetOutcome::Throttled(_)), "{outcome:?}");
    assert_eq!(lab.password_writes(), 0);
    // A cloud unlock changes nothing and gives the flow back: five requests, then a wait.
    let mut current = lab.load(token.clone()).await;
    for _ in 0..5 {
        let acting = claim(&lab, current, Action::Unlock).await;
        let outcome = unlock::unlock(&lab.s, acting).await;
        assert!(
            matches!(outcome, UnlockOutcome::NothingToUnlock { .. }),
            "{outcome:?}"
        );
        current = lab.load(token.clone()).await;
    }
    let acting = claim(&lab, current, Action::Unlock).await;
    let outcome = unlock::unlock(&lab.s, acting).await;
    assert!(
        matches!(outcome, UnlockOutcome::Throttled(_)),
        "{outcome:?}"
    );
}
