//! The claim: one verification, one change, whatever arrives at once.

use latchkey_policy::Action;
use latchkey_selfservice::act::{self, ClaimError};
use latchkey_store::FlowStep;

use crate::lab::{ADELE, Lab};

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_not_verified_enough_cannot_act() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let current = lab.start_flow(ADELE).await;
    let e = act::claim(&lab.s, current, Action::Reset)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClaimError::NotVerified), "{e}");
    let decoy = lab.start_flow("nobody@contoso.com").await;
    let e = act::claim(&lab.s, decoy, Action::Reset)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClaimError::NotVerified), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn of_sixteen_simultaneous_claims_of_one_verification_exactly_one_acts() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let verified = lab.verified_adele().await;
    let token = verified.token.clone();
    let mut tasks = Vec::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    for i in 0..16 {
        let s = std::sync::Arc::clone(&lab.s);
        let current = lab.load(token.clone()).await;
        let start = std::sync::Arc::clone(&start);
        let action = if i % 2 == 0 {
            Action::Reset
        } else {
            Action::Unlock
        };
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            match act::claim(&s, current, action).await {
                Ok(acting) => {
                    acting.finish(&s).await;
                    true
                }
                Err(ClaimError::AlreadyUsed) => false,
                Err(e) => panic!("unexpected: {e}"),
            }
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one claim wins");
    let trail = lab.trail(&verified.data.correlation_id).await;
    let refused = trail
        .iter()
        .filter(|(_, outcome)| outcome == "denied")
        .count();
    assert_eq!(refused, 15, "every losing claim is on record: {trail:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_no_longer_allows_the_action_ends_the_flow() {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let verified = lab.verified_adele().await;
    let token = verified.token.clone();
    lab.set_actions(r#""unlock""#);
    let e = act::claim(&lab.s, verified, Action::Reset)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClaimError::NotAllowed(Ok(()))), "{e}");
    let gone = latchkey_selfservice::flow::Current::load(&lab.s, token)
        .await
        .unwrap();
    assert!(gone.is_none(), "the flow ended: it can never act");
}

/// A membership read refused with `status` (for good: `times` 0, or once) at the check before a
/// change: a fault, audited as an error; the verification comes back and acts once Graph
/// answers again.
async fn a_membership_fault_gives_the_verification_back(status: u16, times: u32) {
    let lab = Lab::start(r#""reset", "unlock""#).await;
    let verified = lab.verified_adele().await;
    let token = verified.token.clone();
    let cid = verified.data.correlation_id.clone();
    lab.sim.add_fault(latchkey_entra_sim::faults::Fault {
        method: None,
        path_contains: "transitiveMemberOf".into(),
        kind: latchkey_entra_sim::faults::FaultKind::Status(status),
        times,
    });
    let e = act::claim(&lab.s, verified, Action::Reset)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClaimError::TryAgain(Ok(()))), "{status}: {e}");
    assert_eq!(
        lab.outcomes(&cid, "reset").await,
        ["error"],
        "a fault is audited as an error, not a denial"
    );
    let again = lab.load(token).await;
    assert_eq!(again.flow.step, FlowStep::Retry);
    lab.sim.clear_faults();
    let acting = act::claim(&lab.s, again, Action::Reset)
        .await
        .expect("claimed");
    acting.finish(&lab.s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_fault_at_the_policy_check_gives_the_verification_back() {
    a_membership_fault_gives_the_verification_back(503, 0).await;
}

/// Graph answering the memberships part 404 while the account part is read (replica lag) is a
/// fault, not "the account no longer exists".
#[tokio::test(flavor = "multi_thread")]
async fn a_memberships_read_not_found_is_a_fault_not_a_deleted_account() {
    a_membership_fault_gives_the_verification_back(404, 1).await;
}
