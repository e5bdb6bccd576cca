use std::sync::Arc;

use latchkey_store::{NewPasskey, PasskeyAdded, Store};
use latchkey_types::ObjectId;

use crate::backends::backend_tests;
use crate::support::{mins, t0, user};

fn key(who: ObjectId, id: &[u8]) -> NewPasskey {
    NewPasskey {
        subject: who,
        credential_id: id.to_vec(),
        user_handle: vec![7; 32],
        name: "YubiKey".into(),
        public_key: vec![0xa5, 1, 2],
        sign_count: 5,
        aaguid: [0xcb; 16],
        backup_eligible: false,
        backed_up: false,
    }
}

async fn a_passkey_is_registered_listed_found_and_removed(store: Arc<dyn Store>) {
    let (a, b) = (user(), user());
    let added = store
        .add_passkey(key(a, b"cred-1"), 10, t0())
        .await
        .unwrap();
    assert_eq!(added, PasskeyAdded::Added);
    let mut second = key(a, b"cred-2");
    second.name = "Phone".into();
    second.backup_eligible = true;
    store.add_passkey(second, 10, t0() + mins(1)).await.unwrap();
    // A credential id belongs to one user: the same id for another user changes nothing.
    assert_eq!(
        store
            .add_passkey(key(b, b"cred-1"), 10, t0())
            .await
            .unwrap(),
        PasskeyAdded::Duplicate
    );
    let listed = store.passkeys(&a).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["YubiKey", "Phone"]
    );
    assert_eq!(listed[0].aaguid, [0xcb; 16]);
    assert_eq!(listed[0].sign_count, 5);
    assert!(listed[1].backup_eligible && !listed[1].backed_up);
    assert_eq!(listed[0].created_at, t0());
    assert_eq!(listed[0].last_used_at, None);
    assert!(store.passkeys(&b).await.unwrap().is_empty());
    // Reports count a user's passkeys as one active method, confirmed with the first.
    let methods = store.enrolled_methods(&[b, a]).await.unwrap();
    assert_eq!(
        methods
            .iter()
            .map(|m| (m.subject, m.method.as_str(), m.state, m.confirmed_at))
            .collect::<Vec<_>>(),
        [(
            a,
            "passkey",
            latchkey_store::EnrollmentState::Active,
            Some(t0())
        )]
    );
    let found = store.passkey(b"cred-1").await.unwrap().unwrap();
    assert_eq!(found.subject, a);
    assert_eq!(found.public_key, vec![0xa5, 1, 2]);
    assert!(store.passkey(b"cred-9").await.unwrap().is_none());
    // Only its owner removes it.
    assert!(!store.remove_passkey(&b, b"cred-1").await.unwrap());
    assert!(store.remove_passkey(&a, b"cred-1").await.unwrap());
    assert!(!store.remove_passkey(&a, b"cred-1").await.unwrap());
    assert_eq!(store.passkeys(&a).await.unwrap().len(), 1);
}

async fn the_counter_moves_only_by_compare_and_set(store: Arc<dyn Store>) {
    let a = user();
    store.add_passkey(key(a, b"c"), 10, t0()).await.unwrap();
    assert!(
        store
            .use_passkey(b"c", 5, 6, true, t0() + mins(1))
            .await
            .unwrap()
    );
    // A second use that read the old counter loses.
    assert!(
        !store
            .use_passkey(b"c", 5, 7, false, t0() + mins(2))
            .await
            .unwrap()
    );
    let p = store.passkey(b"c").await.unwrap().unwrap();
    assert_eq!((p.sign_count, p.backed_up), (6, true));
    assert_eq!(p.last_used_at, Some(t0() + mins(1)));
    // Concurrent uses of one counter value: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .use_passkey(b"c", 6, 7 + i, false, t0())
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

async fn concurrent_registrations_never_exceed_the_limit(store: Arc<dyn Store>) {
    let a = user();
    let mut tasks = Vec::new();
    for i in 0..12u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.add_passkey(key(a, &[i; 16]), 5, t0()).await.unwrap()
        }));
    }
    let mut added = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!(
            matches!(r, PasskeyAdded::Added | PasskeyAdded::Full),
            "{r:?}"
        );
        added += usize::from(r == PasskeyAdded::Added);
    }
    assert_eq!(added, 5);
    assert_eq!(store.passkeys(&a).await.unwrap().len(), 5);
}

backend_tests!(
    a_passkey_is_registered_listed_found_and_removed,
    the_counter_moves_only_by_compare_and_set,
    concurrent_registrations_never_exceed_the_limit,
);
