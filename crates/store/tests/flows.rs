use std::sync::Arc;

use latchkey_store::{FlowLifetime, FlowToken, FlowUpdate, NewFlow, Store};
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

fn new_flow(subject: latchkey_types::ObjectId) -> NewFlow {
    NewFlow {
        subject,
        purpose: "reset".into(),
        step: "choose-method".into(),
        data: json!({"lang": "en"}),
        lifetime: FlowLifetime::default(),
    }
}

async fn a_flow_is_found_by_its_token_and_bound_to_its_subject(store: Arc<dyn Store>) {
    let who = user();
    let (token, flow) = store.create_flow(new_flow(who), t0()).await.unwrap();
    assert_eq!(token.expose().len(), 43, "256-bit token, base64url");
    assert_eq!(flow.subject, who);
    assert_eq!(flow.verified, Vec::<String>::new());
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
            .record_verification(&token, "email", "x", t0() + mins(16))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_verified_step_rotates_the_token_and_records_the_method_once(store: Arc<dyn Store>) {
    let who = user();
    let (t1, flow) = store.create_flow(new_flow(who), t0()).await.unwrap();
    let (t2, after) = store
        .record_verification(&t1, "email", "second-method", t0() + secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(t1, t2);
    assert_eq!(after.id, flow.id, "the internal id is stable");
    assert_eq!(after.subject, who);
    assert_eq!(after.step, "second-method");
    assert_eq!(after.verified, ["email"]);

    // The old token is dead: a replayed cookie finds nothing and cannot verify again.
    assert!(store.flow(&t1, t0() + secs(31)).await.unwrap().is_none());
    assert!(
        store
            .record_verification(&t1, "totp", "done", t0() + secs(31))
            .await
            .unwrap()
            .is_none()
    );

    let (t3, after) = store
        .record_verification(&t2, "totp", "act", t0() + secs(40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.verified, ["email", "totp"]);
    let (_, after) = store
        .record_verification(&t3, "totp", "act", t0() + secs(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.verified, ["email", "totp"], "no duplicates");
}

async fn concurrent_verifications_with_one_token_succeed_once(store: Arc<dyn Store>) {
    let (token, _) = store.create_flow(new_flow(user()), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, token) = (store.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            store
                .record_verification(&token, "email", "next", t0() + secs(1))
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
                step: Some("verify-email".into()),
                data: None,
            },
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (f.step.as_str(), f.data.clone()),
        ("verify-email", json!({"lang": "en"}))
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
        (f.step.as_str(), f.data.clone()),
        ("verify-email", json!({"lang": "de"}))
    );
    assert_eq!(f.subject, who);
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
);
