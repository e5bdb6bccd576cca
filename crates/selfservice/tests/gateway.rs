//! A synced user's reset through the on-premises gateway, played here by a task that claims and
//! reports jobs through the store as the gateway API would: the answer while the flow waits, a
//! refusal by AD's password policy, and a result reported after the wait, finished exactly once.

use std::sync::Arc;
use std::time::Duration;

use latchkey_jobs::{FailureReason, JobOutcome, JobReport};
use latchkey_policy::Action;
use latchkey_selfservice::SelfService;
use latchkey_selfservice::act;
use latchkey_selfservice::flow::Current;
use latchkey_selfservice::gateway;
use latchkey_selfservice::reset::{self, ResetOutcome, WritePath};
use latchkey_store::{FlowStep, Job};
use latchkey_types::{MethodKind, Secret};

use crate::lab::{CARLA, Lab};

const CARLA_MAIL: &str = "carla@example.org";
const CARLA_PHONE: &str = "+351912345678";
const NEW: &str = "Quiet-Maple-Harbour-77";

/// Registers a gateway allowed to reset and marks it as polling now; returns its id.
async fn connect_gateway(s: &SelfService) -> String {
    let kinds = ["unlock".to_string(), "reset".to_string()];
    let now = s.clock.now();
    let g = s
        .store
        .register_gateway("branch-office", &[1; 32], &kinds, now)
        .await
        .unwrap();
    s.store.gateway_seen(&g.id, &kinds, now).await.unwrap();
    g.id
}

/// Plays the gateway: takes the next reset job after `delay`, reports `outcome`; returns the job.
fn gateway_answers(
    s: Arc<SelfService>,
    gateway: String,
    delay: Duration,
    outcome: JobOutcome,
) -> tokio::task::JoinHandle<Job> {
    tokio::spawn(async move {
        let kinds = ["reset".to_string()];
        let claimed = loop {
            if let Some(job) = s
                .store
                .claim_job(&gateway, &kinds, s.clock.now())
                .await
                .unwrap()
            {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(claimed.secret.is_some(), "the gateway gets the password");
        tokio::time::sleep(delay).await;
        let succeeded = outcome == JobOutcome::Succeeded;
        let report = serde_json::to_value(JobReport {
            outcome,
            object_dn: None,
        })
        .unwrap();
        s.store
            .finish_job(&claimed.job.id, &gateway, succeeded, &report, s.clock.now())
            .await
            .unwrap();
        s.store
            .job(&claimed.job.id, s.clock.now())
            .await
            .unwrap()
            .unwrap()
    })
}

async fn verified_carla(lab: &Lab) -> Current {
    lab.enroll(CARLA, Some(CARLA_MAIL), Some(CARLA_PHONE)).await;
    let current = lab.start_flow(CARLA).await;
    let current = lab.prove(current, MethodKind::Email, CARLA_MAIL).await;
    lab.prove(current, MethodKind::Sms, CARLA_PHONE).await
}

async fn reset_through_gateway(lab: &Lab, current: Current) -> ResetOutcome {
    let acting = act::claim(&lab.s, current, Action::Reset)
        .await
        .ok()
        .unwrap();
    reset::reset(&lab.s, acting, Secret::new(NEW.into()), NEW).await
}

fn count(trail: &[(String, String)], event: &str, outcome: &str) -> usize {
    trail
        .iter()
        .filter(|(e, o)| e == event && o == outcome)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_answers_while_the_flow_waits_finishes_the_reset() {
    let lab = Lab::start(r#""reset""#).await;
    // At risk: a password set in on-premises AD does not remediate it in Entra, so the portal
    // dismisses it after the change (the policy's `dismiss_risk`, on by default).
    assert!(lab.sim.tenant().set_risk(CARLA, "high", "atRisk"));
    let current = verified_carla(&lab).await;
    let cid = current.data.correlation_id.clone();
    let gw = connect_gateway(&lab.s).await;
    let answer = gateway_answers(
        Arc::clone(&lab.s),
        gw,
        Duration::ZERO,
        JobOutcome::Succeeded,
    );
    let outcome = reset_through_gateway(&lab, current).await;
    let job = answer.await.unwrap();
    let ResetOutcome::Changed {
        path,
        sign_out,
        risk_cleared,
        ..
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(path, WritePath::Gateway);
    assert!(risk_cleared);
    assert!(
        sign_out.is_some(),
        "the waiting flow ran the steps after the change"
    );
    // The result handler comes too late to run them again.
    gateway::reported(&lab.s, &job).await;
    let trail = lab.trail(&cid).await;
    assert_eq!(count(&trail, "reset", "success"), 1, "{trail:?}");
    assert_eq!(count(&trail, "sessions.revoke", "success"), 1, "{trail:?}");
    assert_eq!(count(&trail, "risk.dismiss", "success"), 1, "{trail:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_by_the_on_premises_password_policy_lets_the_user_choose_another() {
    let lab = Lab::start(r#""reset""#).await;
    let current = verified_carla(&lab).await;
    let token = current.token.clone();
    let gw = connect_gateway(&lab.s).await;
    let refused = JobOutcome::Failed {
        reason: FailureReason::PasswordPolicy,
        detail: "history".into(),
    };
    let answer = gateway_answers(Arc::clone(&lab.s), gw, Duration::ZERO, refused);
    let outcome = reset_through_gateway(&lab, current).await;
    answer.await.unwrap();
    assert!(
        matches!(outcome, ResetOutcome::OnPremisesPolicy),
        "{outcome:?}"
    );
    assert_eq!(lab.load(token).await.flow.step, FlowStep::Retry);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_reported_after_the_wait_is_finished_once_by_the_result_handler() {
    let lab = Lab::start(r#""reset""#).await;
    let current = verified_carla(&lab).await;
    let (token, cid) = (current.token.clone(), current.data.correlation_id.clone());
    let gw = connect_gateway(&lab.s).await;
    // Reports after the flow stopped waiting (gateway_wait is 1.5 s in the lab).
    let answer = gateway_answers(
        Arc::clone(&lab.s),
        gw,
        Duration::from_millis(2500),
        JobOutcome::Succeeded,
    );
    let outcome = reset_through_gateway(&lab, current).await;
    assert!(matches!(outcome, ResetOutcome::Pending), "{outcome:?}");
    assert!(Current::load(&lab.s, token).await.unwrap().is_none());
    let trail = lab.trail(&cid).await;
    assert_eq!(count(&trail, "reset.pending", "success"), 1, "{trail:?}");
    assert_eq!(
        count(&trail, "reset", "success"),
        0,
        "not before the result"
    );
    let job = answer.await.unwrap();
    // Two instances' result handlers at once: the job's state transition picks one.
    let (a, b) = tokio::join!(
        gateway::reported(&lab.s, &job),
        gateway::reported(&lab.s, &job)
    );
    let ((), ()) = (a, b);
    let trail = lab.trail(&cid).await;
    assert_eq!(count(&trail, "reset", "success"), 1, "{trail:?}");
    assert_eq!(count(&trail, "sessions.revoke", "success"), 1, "{trail:?}");
}
