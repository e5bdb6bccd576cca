use std::sync::Arc;

use latchkey_store::{Flow, FlowLifetime, FlowPurpose, NewCode, NewFlow, Store};
use latchkey_types::ObjectId;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

async fn flow(store: &dyn Store, who: ObjectId) -> Flow {
    let new = NewFlow {
        subject: who,
        purpose: FlowPurpose::SelfService,
        step: latchkey_store::FlowStep::Verify,
        data: serde_json::json!({}),
        lifetime: FlowLifetime::default(),
    };
    store.create_flow(new, t0()).await.unwrap().1
}

fn code(flow: &Flow, method: &str, hash: u8) -> NewCode {
    NewCode {
        flow: flow.id,
        subject: flow.subject,
        method: method.into(),
        code_hash: vec![hash; 32],
        binding: b"dest-hash".to_vec(),
        lifetime: mins(10),
        tries: 5,
    }
}

async fn a_code_is_returned_with_its_binding_and_succeeds_once(store: Arc<dyn Store>) {
    let f = flow(&*store, user()).await;
    let issued = store.issue_code(code(&f, "email", 7), t0()).await.unwrap();
    assert_eq!(issued.seq, 1);
    assert_eq!(issued.expires_at, t0() + mins(10));

    let attempt = store
        .take_code_attempt(&f.id, "email", t0() + secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempt.id, issued.id);
    assert_eq!(attempt.code_hash, vec![7; 32]);
    assert_eq!(attempt.binding, b"dest-hash");
    assert_eq!(attempt.tries_left, 4);

    assert!(
        store
            .consume_code(attempt.id, t0() + secs(6))
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_code(attempt.id, t0() + secs(7))
            .await
            .unwrap(),
        "single use"
    );
    assert!(
        store
            .take_code_attempt(&f.id, "email", t0() + secs(8))
            .await
            .unwrap()
            .is_none()
    );
    // Other methods of the flow are separate.
    assert!(
        store
            .take_code_attempt(&f.id, "sms", t0())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_code_allows_its_tries_and_then_is_void(store: Arc<dyn Store>) {
    let f = flow(&*store, user()).await;
    store.issue_code(code(&f, "sms", 1), t0()).await.unwrap();
    for left in (0..5).rev() {
        let a = store
            .take_code_attempt(&f.id, "sms", t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.tries_left, left);
    }
    assert!(
        store
            .take_code_attempt(&f.id, "sms", t0())
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent_guesses_never_exceed_the_tries(store: Arc<dyn Store>) {
    let f = flow(&*store, user()).await;
    store.issue_code(code(&f, "sms", 1), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, id) = (store.clone(), f.id);
        tasks.push(tokio::spawn(async move {
            store
                .take_code_attempt(&id, "sms", t0())
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 5);
}

async fn a_code_expires(store: Arc<dyn Store>) {
    let f = flow(&*store, user()).await;
    let issued = store.issue_code(code(&f, "email", 1), t0()).await.unwrap();
    assert!(
        store
            .take_code_attempt(&f.id, "email", t0() + mins(10))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .consume_code(issued.id, t0() + mins(10))
            .await
            .unwrap()
    );
}

async fn a_new_code_voids_older_ones_of_the_same_user_and_method(store: Arc<dyn Store>) {
    let who = user();
    let (f1, f2) = (flow(&*store, who).await, flow(&*store, who).await);
    let first = store.issue_code(code(&f1, "email", 1), t0()).await.unwrap();
    let sms = store.issue_code(code(&f1, "sms", 3), t0()).await.unwrap();
    // A second code for the same user and channel, even from another flow ...
    let second = store
        .issue_code(code(&f2, "email", 2), t0() + secs(30))
        .await
        .unwrap();
    assert_eq!(second.seq, first.seq + 1);
    // ... voids the first: no attempt, no consumption.
    assert!(
        store
            .take_code_attempt(&f1.id, "email", t0() + secs(31))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.consume_code(first.id, t0() + secs(31)).await.unwrap());
    let a = store
        .take_code_attempt(&f2.id, "email", t0() + secs(31))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.code_hash, vec![2; 32]);
    // The SMS code is another method: still open.
    let s = store
        .take_code_attempt(&f1.id, "sms", t0() + secs(31))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.id, sms.id);
}

async fn voiding_a_users_codes_and_ending_flows_kill_them(store: Arc<dyn Store>) {
    let (alice, bob) = (user(), user());
    let (fa, fb) = (flow(&*store, alice).await, flow(&*store, bob).await);
    store.issue_code(code(&fa, "email", 1), t0()).await.unwrap();
    store.issue_code(code(&fa, "sms", 1), t0()).await.unwrap();
    store.issue_code(code(&fb, "email", 1), t0()).await.unwrap();
    assert_eq!(store.void_codes_of(&alice, t0()).await.unwrap(), 2);
    assert!(
        store
            .take_code_attempt(&fa.id, "email", t0())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_code_attempt(&fb.id, "email", t0())
            .await
            .unwrap()
            .is_some()
    );

    // Ending a flow deletes its codes with it.
    assert_eq!(store.end_flows_of(&bob).await.unwrap(), 1);
    assert!(
        store
            .take_code_attempt(&fb.id, "email", t0())
            .await
            .unwrap()
            .is_none()
    );
}

async fn invalid_codes_are_refused(store: Arc<dyn Store>) {
    let f = flow(&*store, user()).await;
    let mut c = code(&f, "email", 1);
    c.tries = 0;
    assert!(store.issue_code(c, t0()).await.is_err());
}

backend_tests!(
    a_code_is_returned_with_its_binding_and_succeeds_once,
    a_code_allows_its_tries_and_then_is_void,
    concurrent_guesses_never_exceed_the_tries,
    a_code_expires,
    a_new_code_voids_older_ones_of_the_same_user_and_method,
    voiding_a_users_codes_and_ending_flows_kill_them,
    invalid_codes_are_refused,
);
