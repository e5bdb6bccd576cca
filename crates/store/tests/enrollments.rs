use std::sync::Arc;

use latchkey_store::{EnrollmentState, NewEnrollment, Store};
use latchkey_types::{ObjectId, Secret};
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{mins, t0, user};

fn totp(who: ObjectId, seed: &[u8]) -> NewEnrollment {
    NewEnrollment {
        subject: who,
        method: "totp".into(),
        data: json!({"label": "phone app"}),
        secret: Some(Secret::new(seed.to_vec())),
    }
}

fn email(who: ObjectId, addr: &str) -> NewEnrollment {
    NewEnrollment {
        subject: who,
        method: "email".into(),
        data: json!({"address": addr}),
        secret: None,
    }
}

async fn a_staged_method_counts_only_after_activation(store: Arc<dyn Store>) {
    let who = user();
    store
        .stage_enrollment(totp(who, b"seed-one-20-bytes!!!"), t0())
        .await
        .unwrap();
    assert!(
        store
            .enrollment(&who, "totp", EnrollmentState::Active)
            .await
            .unwrap()
            .is_none()
    );
    let pending = store
        .enrollment(&who, "totp", EnrollmentState::Pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.secret.unwrap().expose(), b"seed-one-20-bytes!!!");
    assert_eq!(pending.confirmed_at, None);

    assert!(
        store
            .activate_enrollment(&who, "totp", t0() + mins(1))
            .await
            .unwrap()
    );
    let active = store
        .enrollment(&who, "totp", EnrollmentState::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        active.secret.as_ref().unwrap().expose(),
        b"seed-one-20-bytes!!!"
    );
    assert_eq!(active.confirmed_at, Some(t0() + mins(1)));
    assert_eq!(active.data, json!({"label": "phone app"}));
    assert!(
        format!("{active:?}").contains("[redacted]"),
        "secrets never print"
    );
    assert!(
        !store.activate_enrollment(&who, "totp", t0()).await.unwrap(),
        "nothing pending"
    );
}

async fn a_new_destination_replaces_the_old_one_only_when_confirmed(store: Arc<dyn Store>) {
    let who = user();
    store
        .stage_enrollment(email(who, "old@contoso.com"), t0())
        .await
        .unwrap();
    store
        .activate_enrollment(&who, "email", t0())
        .await
        .unwrap();
    store
        .stage_enrollment(email(who, "new@contoso.com"), t0() + mins(1))
        .await
        .unwrap();

    // Until confirmed, the old address is the active one.
    let all = store.enrollments(&who).await.unwrap();
    assert_eq!(all.len(), 2);
    let active = store
        .enrollment(&who, "email", EnrollmentState::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.data["address"], "old@contoso.com");

    assert!(
        store
            .activate_enrollment(&who, "email", t0() + mins(2))
            .await
            .unwrap()
    );
    let all = store.enrollments(&who).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].data["address"], "new@contoso.com");
    assert_eq!(all[0].state, EnrollmentState::Active);

    assert!(
        store
            .reconfirm_enrollment(&who, "email", t0() + mins(60))
            .await
            .unwrap()
    );
    let active = store
        .enrollment(&who, "email", EnrollmentState::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.confirmed_at, Some(t0() + mins(60)));

    // A change staged and then cancelled: the pending one goes, the active one stays.
    store
        .stage_enrollment(
            NewEnrollment {
                subject: who,
                method: "email".into(),
                data: serde_json::json!({ "address": "newer@contoso.com" }),
                secret: None,
            },
            t0() + mins(61),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .remove_pending_enrollment(&who, "email")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .remove_pending_enrollment(&who, "email")
            .await
            .unwrap(),
        0
    );
    let left = store.enrollments(&who).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].state, EnrollmentState::Active);
    assert_eq!(left[0].data["address"], "new@contoso.com");

    assert_eq!(store.remove_enrollment(&who, "email").await.unwrap(), 1);
    assert!(store.enrollments(&who).await.unwrap().is_empty());
    assert!(
        !store
            .reconfirm_enrollment(&who, "email", t0())
            .await
            .unwrap()
    );
}

async fn a_totp_step_is_never_accepted_twice(store: Arc<dyn Store>) {
    let who = user();
    store
        .stage_enrollment(totp(who, b"01234567890123456789"), t0())
        .await
        .unwrap();
    store.activate_enrollment(&who, "totp", t0()).await.unwrap();
    assert!(
        store
            .mark_used(&who, "totp", Some(1000), t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_used(&who, "totp", Some(1000), t0())
            .await
            .unwrap(),
        "same step"
    );
    assert!(
        !store
            .mark_used(&who, "totp", Some(999), t0())
            .await
            .unwrap(),
        "older step"
    );
    assert!(
        store
            .mark_used(&who, "totp", Some(1001), t0() + mins(1))
            .await
            .unwrap()
    );
    let e = store
        .enrollment(&who, "totp", EnrollmentState::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.last_used_step, Some(1001));
    assert_eq!(e.last_used_at, Some(t0() + mins(1)));

    // Concurrent submissions of one code: exactly one passes.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .mark_used(&who, "totp", Some(1002), t0())
                .await
                .unwrap()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);

    // Methods without steps just record the use; pending-only methods are not usable.
    store
        .stage_enrollment(email(who, "a@contoso.com"), t0())
        .await
        .unwrap();
    assert!(!store.mark_used(&who, "email", None, t0()).await.unwrap());
    store
        .activate_enrollment(&who, "email", t0())
        .await
        .unwrap();
    assert!(store.mark_used(&who, "email", None, t0()).await.unwrap());
}

async fn methods_of_many_users_come_in_one_call_without_secrets(store: Arc<dyn Store>) {
    let (a, b, nobody) = (user(), user(), user());
    store
        .stage_enrollment(email(a, "a@x.example"), t0())
        .await
        .unwrap();
    store.activate_enrollment(&a, "email", t0()).await.unwrap();
    store
        .stage_enrollment(totp(a, b"seed-one-20-bytes!!!"), t0())
        .await
        .unwrap();
    store
        .stage_enrollment(email(b, "b@x.example"), t0())
        .await
        .unwrap();
    store.activate_enrollment(&b, "email", t0()).await.unwrap();
    store
        .stage_enrollment(email(b, "b2@x.example"), t0() + mins(1))
        .await
        .unwrap();
    // Many more subjects than one query takes, most of them without methods.
    let mut subjects: Vec<ObjectId> = (0..1200).map(|_| user()).collect();
    subjects.extend([nobody, b, a]);
    let got = store.enrolled_methods(&subjects).await.unwrap();
    let mut expected = vec![
        (a, "email", EnrollmentState::Active, Some(t0())),
        (a, "totp", EnrollmentState::Pending, None),
        (b, "email", EnrollmentState::Active, Some(t0())),
        (b, "email", EnrollmentState::Pending, None),
    ];
    expected.sort_by(|x, y| (x.0, x.1, x.2.as_str()).cmp(&(y.0, y.1, y.2.as_str())));
    assert_eq!(
        got.iter()
            .map(|m| (m.subject, m.method.as_str(), m.state, m.confirmed_at))
            .collect::<Vec<_>>(),
        expected
    );
    assert!(store.enrolled_methods(&[]).await.unwrap().is_empty());
}

backend_tests!(
    a_staged_method_counts_only_after_activation,
    a_new_destination_replaces_the_old_one_only_when_confirmed,
    a_totp_step_is_never_accepted_twice,
    methods_of_many_users_come_in_one_call_without_secrets,
);
