//! Changing what a live gateway may do (`set_gateway_kinds`): the next claim follows the new
//! kinds with the same credential, the old kinds come back for the audit trail, a revoked or
//! unknown gateway is not changed, and unknown or no kinds are refused.

use std::sync::Arc;

use latchkey_store::{JobKind, NewJob, Store};
use latchkey_types::Secret;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

fn kinds(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_string()).collect()
}

fn reset_job() -> NewJob {
    NewJob {
        kind: JobKind::Reset,
        subject: user(),
        target: crate::support::target(),
        secret: Some(Secret::new("Amber-Lantern-58".to_string())),
        correlation_id: "corr-k1".into(),
        expires_at: t0() + mins(2),
    }
}

async fn granting_and_removing_reset_changes_what_the_gateway_can_claim(store: Arc<dyn Store>) {
    let g = store
        .register_gateway("site-b", &[7u8; 32], &kinds(&["unlock"]), t0())
        .await
        .unwrap();
    let job = store.enqueue_job(reset_job(), t0()).await.unwrap();
    let both = kinds(&["unlock", "reset"]);
    assert!(
        store
            .claim_job(&g.id, &both, t0() + secs(1))
            .await
            .unwrap()
            .is_none()
    );

    // Granted: the old kinds come back, the same credential now claims the reset job.
    let before = store
        .set_gateway_kinds(" site-b ", &kinds(&["reset", "unlock"]))
        .await
        .unwrap();
    assert_eq!(before, Some(kinds(&["unlock"])));
    let listed = store.gateways().await.unwrap();
    assert_eq!(listed[0].allowed_kinds, both, "stored in JOB_KINDS order");
    assert!(
        store
            .authenticate_gateway(&g.id, &[7u8; 32])
            .await
            .unwrap()
            .is_some(),
        "the credential is unchanged"
    );
    let claimed = store
        .claim_job(&g.id, &both, t0() + secs(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, job.id);
    assert_eq!(claimed.secret.unwrap().expose(), "Amber-Lantern-58");

    // Removed again: the next reset job stays queued.
    assert_eq!(
        store
            .set_gateway_kinds("site-b", &kinds(&["unlock"]))
            .await
            .unwrap(),
        Some(both.clone())
    );
    let next = store
        .enqueue_job(reset_job(), t0() + secs(3))
        .await
        .unwrap();
    assert!(
        store
            .claim_job(&g.id, &both, t0() + secs(4))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .job(&next.id, t0() + secs(4))
            .await
            .unwrap()
            .unwrap()
            .state,
        latchkey_store::JobState::Queued
    );
    assert_eq!(
        store.gateways().await.unwrap()[0].allowed_kinds,
        kinds(&["unlock"])
    );
}

async fn only_a_live_gateway_with_known_kinds_is_changed(store: Arc<dyn Store>) {
    // Unknown name: nothing to change.
    assert_eq!(
        store
            .set_gateway_kinds("nobody", &kinds(&["unlock"]))
            .await
            .unwrap(),
        None
    );
    let g = store
        .register_gateway("site-c", &[8u8; 32], &kinds(&["unlock"]), t0())
        .await
        .unwrap();
    // Unknown or no kinds: refused, nothing changed.
    assert!(
        store
            .set_gateway_kinds("site-c", &kinds(&["unlock", "format-c"]))
            .await
            .is_err()
    );
    assert!(store.set_gateway_kinds("site-c", &[]).await.is_err());
    assert_eq!(
        store.gateways().await.unwrap()[0].allowed_kinds,
        kinds(&["unlock"])
    );

    // Revoked: cannot be changed (and a new gateway of the same name is its own row).
    assert!(
        store
            .revoke_gateway("site-c", t0() + secs(1))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .set_gateway_kinds("site-c", &kinds(&["unlock", "reset"]))
            .await
            .unwrap(),
        None
    );
    let again = store
        .register_gateway("site-c", &[9u8; 32], &kinds(&["unlock"]), t0() + secs(2))
        .await
        .unwrap();
    assert_eq!(
        store
            .set_gateway_kinds("site-c", &kinds(&["unlock", "reset"]))
            .await
            .unwrap(),
        Some(kinds(&["unlock"]))
    );
    let listed = store.gateways().await.unwrap();
    let old = listed.iter().find(|x| x.id == g.id).unwrap();
    let new = listed.iter().find(|x| x.id == again.id).unwrap();
    assert_eq!(
        old.allowed_kinds,
        kinds(&["unlock"]),
        "the revoked row is untouched"
    );
    assert_eq!(new.allowed_kinds, kinds(&["unlock", "reset"]));
}

backend_tests!(
    granting_and_removing_reset_changes_what_the_gateway_can_claim,
    only_a_live_gateway_with_known_kinds_is_changed,
);
