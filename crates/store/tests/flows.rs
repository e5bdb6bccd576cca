use std::sync::Arc;

use latchkey_store::{
    FlowLifetime, FlowPurpose, FlowStep, FlowToken, FlowUpdate, NewFlow, Store, StoreError,
    Verification,
};
use latchkey_types::MethodKind;
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

fn new_flow(subject: latchkey_types::ObjectId) -> NewFlow {
    NewFlow {
        subject,
        purpose: FlowPurpose::SelfService,
        step: FlowStep::Verify,
        data: json!({"lang": "en"}),
        lifetime: FlowLifetime::default(),
    }
}

async fn a_flow_is_found_by_its_token_and_bound_to_its_subject(store: Arc<dyn Store>) {
    let who = user();
    let (token, flow) = store.create_flow(new_flow(who), t0()).await.unwrap();
    assert_eq!(token.expose().len(), 43, "256-bit token, base64url");
    assert_eq!(flow.subject, who);
    assert_eq!(flow.verified, Vec::<Verification>::new());
    assert_eq!(flow.expires_at, t0() + mins(15));
    assert!(format!("{token:?}").contains("redacted"));

    let found = store.flow(&token, t0() + secs(10)).await.unwrap().unwrap();
    assert_eq!(found.id, flow.id);
    assert_eq!(found.data, json!({"lang": "en"}));
    assert_eq!(found.last_seen_at, t0() + secs(10));

    // A token that was never issued, and malformed cookie values, find nothing.
    let other = FlowToken::parse(&"A".repeat(43)).unwrap();
    assert!(store.flow(&other, t0()).await.unwrap().is_none());
    assert!(FlowToken::parse("short").is_none());
    assert!(FlowToken::parse(&format!("{}=", "A".repeat(42))).is_none());
}

async fn flows_expire_after_five_idle_minutes(store: Arc<dyn Store>) {
    let (token, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    // Each visit refreshes the idle deadline ...
    assert!(store.flow(&token, t0() + mins(4)).await.unwrap().is_some());
    assert!(store.flow(&token, t0() + mins(8)).await.unwrap().is_some());
    // ... but 5 minutes of silence end it.
    let (other, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    assert!(
        store
            .flow(&other, t0() + mins(5) - secs(1))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.flow(&token, t0() + mins(13)).await.unwrap().is_none());
    assert!(store.flow(&other, t0() + mins(10)).await.unwrap().is_none());
}

async fn flows_expire_fifteen_minutes_after_creation_however_active(store: Arc<dyn Store>) {
    let (token, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    let mut at = t0();
    for _ in 0..7 {
        at += mins(2);
        assert!(store.flow(&token, at).await.unwrap().is_some());
    }
    // 14 minutes in and active every two minutes; one more minute passes the 15-minute mark.
    assert!(store.flow(&token, t0() + mins(15)).await.unwrap().is_none());
    assert!(
        store
            .update_flow(&token, FlowUpdate::default(), t0() + mins(15))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .record_verification(
                &token,
                Verification::Method(MethodKind::Email),
                FlowStep::Verified,
                t0() + mins(16)
            )
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_verified_step_rotates_the_token_and_records_the_method_once(store: Arc<dyn Store>) {
    let who = user();
    let (t1, flow) = store.create_flow(new_flow(who), t0()).await.unwrap();
    let (t2, after) = store
        .record_verification(
            &t1,
            Verification::Method(MethodKind::Email),
            FlowStep::Verify,
            t0() + secs(30),
        )
        .await
        .unwrap()
        .unwrap();
    assert_ne!(t1, t2);
    assert_eq!(after.id, flow.id, "the internal id is stable");
    assert_eq!(after.subject, who);
    assert_eq!(after.step, FlowStep::Verify);
    assert_eq!(after.verified, [Verification::Method(MethodKind::Email)]);

    // The old token is dead: a replayed cookie finds nothing and cannot verify again.
    assert!(store.flow(&t1, t0() + secs(31)).await.unwrap().is_none());
    assert!(
        store
            .record_verification(
                &t1,
                Verification::Method(MethodKind::Totp),
                FlowStep::Verified,
                t0() + secs(31)
            )
            .await
            .unwrap()
            .is_none()
    );

    let (t3, after) = store
        .record_verification(
            &t2,
            Verification::Method(MethodKind::Totp),
            FlowStep::Verified,
            t0() + secs(40),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.verified,
        [
            Verification::Method(MethodKind::Email),
            Verification::Method(MethodKind::Totp)
        ]
    );
    let (_, after) = store
        .record_verification(
            &t3,
            Verification::Method(MethodKind::Totp),
            FlowStep::Verified,
            t0() + secs(50),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.verified,
        [
            Verification::Method(MethodKind::Email),
            Verification::Method(MethodKind::Totp)
        ],
        "no duplicates"
    );
}

async fn concurrent_verifications_with_one_token_succeed_once(store: Arc<dyn Store>) {
    let (token, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, token) = (store.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            store
                .record_verification(
                    &token,
                    Verification::Method(MethodKind::Email),
                    FlowStep::Verified,
                    t0() + secs(1),
                )
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(wins, 1);
}

async fn update_changes_step_and_data_but_never_the_subject(store: Arc<dyn Store>) {
    let who = user();
    let (token, _) = store.create_flow(new_flow(who), t0()).await.unwrap();
    let f = store
        .update_flow(
            &token,
            FlowUpdate {
                step: Some(FlowStep::Verified),
                data: None,
            },
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (f.step, f.data.clone()),
        (FlowStep::Verified, json!({"lang": "en"}))
    );
    let f = store
        .update_flow(
            &token,
            FlowUpdate {
                step: None,
                data: Some(json!({"lang": "de"})),
            },
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (f.step, f.data.clone()),
        (FlowStep::Verified, json!({"lang": "de"}))
    );
    assert_eq!(f.subject, who);
}

/// A flow proven far enough to act (one verification to `Verified`) and its current token.
async fn verified_flow(store: &Arc<dyn Store>) -> FlowToken {
    let (token, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    let (token, flow) = store
        .record_verification(
            &token,
            Verification::Method(MethodKind::Email),
            FlowStep::Verified,
            t0() + secs(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(flow.may_act());
    token
}

async fn concurrent_claims_of_one_verified_flow_give_exactly_one_winner(store: Arc<dyn Store>) {
    let token = verified_flow(&store).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, token) = (store.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            store.claim_flow(&token, t0() + secs(2)).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "one verification, one change");
    assert_eq!(winners[0].step, FlowStep::Acting);
    // The flow is still live (pages can say "in progress") but can never be claimed again.
    let seen = store.flow(&token, t0() + secs(3)).await.unwrap().unwrap();
    assert_eq!(seen.step, FlowStep::Acting);
    assert!(
        store
            .claim_flow(&token, t0() + secs(3))
            .await
            .unwrap()
            .is_none()
    );
}

async fn only_a_flow_that_may_act_can_be_claimed(store: Arc<dyn Store>) {
    // Still verifying: nothing to claim.
    let (token, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    assert!(store.claim_flow(&token, t0()).await.unwrap().is_none());
    // Ended (done): nothing to claim.
    let token = verified_flow(&store).await;
    assert!(
        store
            .claim_flow(&token, t0() + secs(2))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.end_flow(&token).await.unwrap());
    assert!(
        store
            .claim_flow(&token, t0() + secs(3))
            .await
            .unwrap()
            .is_none()
    );
    // Expired: nothing to claim.
    let token = verified_flow(&store).await;
    assert!(
        store
            .claim_flow(&token, t0() + mins(16))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_released_flow_may_act_once_more_and_only_an_acting_flow_is_released(
    store: Arc<dyn Store>,
) {
    let token = verified_flow(&store).await;
    assert!(
        !store.release_flow(&token, t0() + secs(2)).await.unwrap(),
        "not acting: nothing to release"
    );
    assert!(
        store
            .claim_flow(&token, t0() + secs(2))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.release_flow(&token, t0() + secs(3)).await.unwrap());
    let f = store.flow(&token, t0() + secs(3)).await.unwrap().unwrap();
    assert_eq!(f.step, FlowStep::Retry);
    assert!(!store.release_flow(&token, t0() + secs(3)).await.unwrap());
    let again = store.claim_flow(&token, t0() + secs(4)).await.unwrap();
    assert_eq!(again.map(|f| f.step), Some(FlowStep::Acting));
}

async fn nothing_but_a_claim_enters_or_leaves_the_acting_step(store: Arc<dyn Store>) {
    let token = verified_flow(&store).await;
    assert!(
        store
            .claim_flow(&token, t0() + secs(2))
            .await
            .unwrap()
            .is_some()
    );
    // A verification racing the change cannot re-open the flow ...
    assert!(
        store
            .record_verification(
                &token,
                Verification::Method(MethodKind::Totp),
                FlowStep::Verified,
                t0() + secs(3)
            )
            .await
            .unwrap()
            .is_none()
    );
    // ... nor can an update move it out of Acting.
    let f = store
        .update_flow(
            &token,
            FlowUpdate {
                step: Some(FlowStep::Verified),
                data: None,
            },
            t0() + secs(3),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.step, FlowStep::Acting);
    assert!(
        store
            .claim_flow(&token, t0() + secs(4))
            .await
            .unwrap()
            .is_none()
    );
    // And nothing enters it but a claim.
    let (other, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    let refused = store
        .update_flow(
            &other,
            FlowUpdate {
                step: Some(FlowStep::Acting),
                data: None,
            },
            t0(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let refused = store
        .record_verification(
            &other,
            Verification::Method(MethodKind::Email),
            FlowStep::Acting,
            t0(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let mut acting = new_flow(user());
    acting.step = FlowStep::Acting;
    let refused = store.create_flow(acting, t0()).await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
}

async fn ending_flows_one_by_one_or_per_user(store: Arc<dyn Store>) {
    let (alice, bob) = (user(), user());
    let (a1, _) = store.create_flow(new_flow(alice), t0()).await.unwrap();
    let (a2, _) = store.create_flow(new_flow(alice), t0()).await.unwrap();
    let (b1, _) = store.create_flow(new_flow(bob), t0()).await.unwrap();
    assert!(store.end_flow(&a1).await.unwrap());
    assert!(!store.end_flow(&a1).await.unwrap());
    let (a3, _) = store.create_flow(new_flow(alice), t0()).await.unwrap();
    assert_eq!(store.end_flows_of(&alice).await.unwrap(), 2);
    assert!(store.flow(&a2, t0()).await.unwrap().is_none());
    assert!(store.flow(&a3, t0()).await.unwrap().is_none());
    assert!(
        store.flow(&b1, t0()).await.unwrap().is_some(),
        "other users untouched"
    );
}

async fn purge_removes_expired_flows_only(store: Arc<dyn Store>) {
    let (old, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    let (fresh, _) = store
        .create_flow(new_flow(user()), t0() + mins(4))
        .await
        .unwrap();
    let report = store.purge_expired(t0() + mins(6)).await.unwrap();
    assert_eq!(report.flows, 1);
    assert!(
        store.flow(&old, t0() + mins(1)).await.unwrap().is_none(),
        "gone for good"
    );
    assert!(store.flow(&fresh, t0() + mins(6)).await.unwrap().is_some());
}

backend_tests!(
    a_flow_is_found_by_its_token_and_bound_to_its_subject,
    flows_expire_after_five_idle_minutes,
    flows_expire_fifteen_minutes_after_creation_however_active,
    a_verified_step_rotates_the_token_and_records_the_method_once,
    concurrent_verifications_with_one_token_succeed_once,
    update_changes_step_and_data_but_never_the_subject,
    ending_flows_one_by_one_or_per_user,
    purge_removes_expired_flows_only,
    concurrent_claims_of_one_verified_flow_give_exactly_one_winner,
    only_a_flow_that_may_act_can_be_claimed,
    a_released_flow_may_act_once_more_and_only_an_acting_flow_is_released,
    nothing_but_a_claim_enters_or_leaves_the_acting_step,
);
