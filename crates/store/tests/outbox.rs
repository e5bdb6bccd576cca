use std::collections::BTreeSet;
use std::sync::Arc;

use latchkey_store::{NewNotice, NoticeOutcome, Store};
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

fn notice(n: u32) -> NewNotice {
    NewNotice {
        subject: Some(user()),
        correlation_id: format!("corr-{n}"),
        kind: "password_changed".into(),
        payload: json!({ "to": format!("user{n}@contoso.com"), "n": n }),
    }
}

async fn a_notice_is_claimed_for_a_lease_and_gone_once_done(store: Arc<dyn Store>) {
    let new = notice(1);
    let id = store.enqueue_notice(new.clone(), t0()).await.unwrap();
    let got = store.claim_notices(t0(), mins(1), 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].payload, new.payload, "opened as sealed");
    assert_eq!(got[0].subject, new.subject);
    assert_eq!(got[0].correlation_id, "corr-1");
    assert_eq!(got[0].attempts, 1);
    // Leased: nobody else gets it meanwhile ...
    assert!(
        store
            .claim_notices(t0() + secs(59), mins(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // ... until its deliverer is presumed dead.
    let again = store
        .claim_notices(t0() + mins(1), mins(1), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert!(store.finish_notice(&id, NoticeOutcome::Done).await.unwrap());
    assert!(!store.finish_notice(&id, NoticeOutcome::Done).await.unwrap());
    assert!(
        store
            .claim_notices(t0() + mins(10), mins(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_notice_given_back_is_due_again_at_its_time(store: Arc<dyn Store>) {
    let id = store.enqueue_notice(notice(1), t0()).await.unwrap();
    assert_eq!(
        store.claim_notices(t0(), mins(5), 10).await.unwrap().len(),
        1
    );
    let later = t0() + secs(30);
    assert!(
        store
            .finish_notice(&id, NoticeOutcome::RetryAt(later))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_notices(t0() + secs(29), mins(5), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_notices(later, mins(5), 10).await.unwrap().len(),
        1
    );
}

async fn concurrent_claimants_take_different_notices_oldest_first(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            store
                .enqueue_notice(notice(n), t0() + secs(u64::from(n)))
                .await
                .unwrap(),
        );
    }
    let first = store
        .claim_notices(t0() + mins(1), mins(1), 2)
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        ids[..2],
        "oldest first"
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_notices(t0() + mins(1), mins(1), 1)
                .await
                .unwrap()
        }));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        for n in t.await.unwrap() {
            total += 1;
            seen.insert(n.id);
        }
    }
    assert_eq!(total, 4, "the four left, each once");
    assert_eq!(seen.len(), 4);
}

backend_tests!(
    a_notice_is_claimed_for_a_lease_and_gone_once_done,
    a_notice_given_back_is_due_again_at_its_time,
    concurrent_claimants_take_different_notices_oldest_first,
);
