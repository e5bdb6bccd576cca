//! Gateways and their job queue: credentials, atomic single claim, sealed secrets deleted when
//! taken, expiry, idempotent reports.

use std::sync::Arc;

use latchkey_store::prelude::*;
use latchkey_store::{FinishOutcome, JobKind, JobState, NewJob, Store};
use latchkey_types::Secret;
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{file_store, mins, secs, t0, user};

fn hash(b: u8) -> Vec<u8> {
    vec![b; 32]
}

fn job(kind: &str, secret: Option<&str>) -> NewJob {
    NewJob {
        kind: JobKind::parse(kind).unwrap(),
        subject: user(),
        target: crate::support::target(),
        secret: secret.map(|s| Secret::new(s.to_string())),
        correlation_id: "corr-1".into(),
        expires_at: t0() + mins(2),
    }
}

fn kinds(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_string()).collect()
}

async fn a_credential_authenticates_only_its_gateway_until_revoked(store: Arc<dyn Store>) {
    let g = store
        .register_gateway("dc-site-a", &hash(1), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    assert!(
        store
            .register_gateway("dc-site-a", &hash(2), &kinds(&["unlock", "reset"]), t0())
            .await
            .is_err()
    );
    assert_eq!(
        store
            .authenticate_gateway(&g.id, &hash(1))
            .await
            .unwrap()
            .unwrap()
            .name,
        "dc-site-a"
    );
    assert!(
        store
            .authenticate_gateway(&g.id, &hash(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate_gateway("nope", &hash(1))
            .await
            .unwrap()
            .is_none()
    );
    store
        .gateway_seen(&g.id, &kinds(&["unlock"]), t0() + secs(5))
        .await
        .unwrap();
    let listed = store.gateways().await.unwrap();
    assert_eq!(listed[0].capabilities, vec!["unlock".to_string()]);
    assert!(listed[0].is_connected(t0() + secs(30), secs(60)));
    assert!(!listed[0].is_connected(t0() + secs(90), secs(60)));
    assert!(store.revoke_gateway("dc-site-a", t0()).await.unwrap());
    assert!(
        store
            .authenticate_gateway(&g.id, &hash(1))
            .await
            .unwrap()
            .is_none()
    );
    // The name is free again.
    store
        .register_gateway("dc-site-a", &hash(3), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
}

async fn a_job_is_claimed_once_with_its_secret_which_then_leaves_the_store(store: Arc<dyn Store>) {
    let g = store
        .register_gateway("gw", &hash(1), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    let queued = store
        .enqueue_job(job("reset", Some("Amber-Lantern-58")), t0())
        .await
        .unwrap();
    // A gateway that only unlocks does not get a reset job.
    assert!(
        store
            .claim_job(&g.id, &kinds(&["unlock"]), t0())
            .await
            .unwrap()
            .is_none()
    );
    let claimed = store
        .claim_job(&g.id, &kinds(&["unlock", "reset"]), t0() + secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, queued.id);
    assert_eq!(claimed.job.state, JobState::Claimed);
    assert_eq!(claimed.secret.unwrap().expose(), "Amber-Lantern-58");
    // Never handed out twice.
    assert!(
        store
            .claim_job(&g.id, &kinds(&["reset"]), t0() + secs(2))
            .await
            .unwrap()
            .is_none()
    );
    let stored = store
        .job(&queued.id, t0() + secs(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.gateway_id.as_deref(), Some(g.id.as_str()));
}

async fn concurrent_claims_hand_each_job_to_exactly_one_gateway(store: Arc<dyn Store>) {
    let a = store
        .register_gateway("a", &hash(1), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    let b = store
        .register_gateway("b", &hash(2), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    for _ in 0..10 {
        store.enqueue_job(job("unlock", None), t0()).await.unwrap();
    }
    let mut tasks = Vec::new();
    for g in [a.id.clone(), b.id.clone(), a.id, b.id] {
        let s = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = s.claim_job(&g, &kinds(&["unlock"]), t0()).await.unwrap() {
                got.push(c.job.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (10, 10), "every job claimed exactly once");
}

#[tokio::test]
async fn the_secret_is_sealed_at_rest_and_gone_after_the_claim() {
    let (dir, store) = file_store("gw-seal").await;
    let g = store
        .register_gateway("gw", &hash(1), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    store
        .enqueue_job(job("reset", Some("Plaintext-Canary-9913")), t0())
        .await
        .unwrap();
    let scan = |dir: &std::path::Path| {
        let mut found = false;
        for e in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            found |= bytes.windows(21).any(|w| w == b"Plaintext-Canary-9913");
        }
        found
    };
    assert!(
        !scan(dir.path()),
        "the password must not be stored in clear"
    );
    let claimed = store
        .claim_job(&g.id, &kinds(&["reset"]), t0())
        .await
        .unwrap()
        .unwrap();
    assert!(claimed.secret.is_some());
    // A second store on the same file with the same key still finds no secret to open.
    let again = store.job(&claimed.job.id, t0()).await.unwrap().unwrap();
    assert_eq!(again.state, JobState::Claimed);
    assert!(
        store
            .claim_job(&g.id, &kinds(&["reset"]), t0())
            .await
            .unwrap()
            .is_none()
    );
}

async fn jobs_expire_and_are_then_never_handed_out(store: Arc<dyn Store>) {
    let g = store
        .register_gateway("gw", &hash(1), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    let j = store
        .enqueue_job(job("reset", Some("x-Secret-1")), t0())
        .await
        .unwrap();
    let late = t0() + mins(3);
    assert_eq!(
        store.job(&j.id, late).await.unwrap().unwrap().state,
        JobState::Expired
    );
    assert!(
        store
            .claim_job(&g.id, &kinds(&["reset"]), late)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.expire_jobs(late).await.unwrap(), 1);
    assert_eq!(
        store.job(&j.id, late).await.unwrap().unwrap().state,
        JobState::Expired
    );
    // A job that must expire in the past is refused.
    let mut stale = job("unlock", None);
    stale.expires_at = t0();
    assert!(store.enqueue_job(stale, t0()).await.is_err());
}

async fn reports_are_idempotent_and_bound_to_the_claiming_gateway(store: Arc<dyn Store>) {
    let a = store
        .register_gateway("a", &hash(1), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    let b = store
        .register_gateway("b", &hash(2), &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    let j = store.enqueue_job(job("unlock", None), t0()).await.unwrap();
    let ok = json!({ "outcome": { "status": "succeeded" } });
    // Not claimed yet: nobody may report it.
    assert_eq!(
        store
            .finish_job(&j.id, &a.id, true, &ok, t0())
            .await
            .unwrap(),
        FinishOutcome::NotFound
    );
    store
        .claim_job(&a.id, &kinds(&["unlock"]), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .finish_job(&j.id, &b.id, true, &ok, t0())
            .await
            .unwrap(),
        FinishOutcome::NotFound
    );
    assert_eq!(
        store
            .finish_job(&j.id, &a.id, true, &ok, t0())
            .await
            .unwrap(),
        FinishOutcome::Recorded
    );
    assert_eq!(
        store
            .finish_job(&j.id, &a.id, true, &ok, t0())
            .await
            .unwrap(),
        FinishOutcome::AlreadyRecorded
    );
    let bad = json!({ "outcome": { "status": "failed", "reason": "other", "detail": "" } });
    assert_eq!(
        store
            .finish_job(&j.id, &a.id, false, &bad, t0())
            .await
            .unwrap(),
        FinishOutcome::Conflict
    );
    let done = store.job(&j.id, t0()).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.result, Some(ok));
}

async fn a_gateway_allowed_only_unlock_never_claims_a_reset_job(store: Arc<dyn Store>) {
    let g = store
        .register_gateway("unlock-only", &hash(1), &kinds(&["unlock"]), t0())
        .await
        .unwrap();
    assert_eq!(g.allowed_kinds, kinds(&["unlock"]));
    // Unknown kinds are refused at registration.
    assert!(
        store
            .register_gateway("odd", &hash(2), &kinds(&["format-c"]), t0())
            .await
            .is_err()
    );
    let reset = store
        .enqueue_job(job("reset", Some("Amber-Lantern-58")), t0())
        .await
        .unwrap();
    // It asks for resets (its own header), the store still does not hand one out.
    for k in [kinds(&["reset"]), kinds(&["unlock", "reset"])] {
        assert!(
            store
                .claim_job(&g.id, &k, t0() + secs(1))
                .await
                .unwrap()
                .is_none()
        );
    }
    // The reset job is untouched, its secret still there for an allowed gateway.
    let stored = store.job(&reset.id, t0() + secs(1)).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Queued);
    // An unlock job queued behind it is still served to this gateway.
    let unlock = store
        .enqueue_job(job("unlock", None), t0() + secs(2))
        .await
        .unwrap();
    let claimed = store
        .claim_job(&g.id, &kinds(&["unlock", "reset"]), t0() + secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, unlock.id);
    // What it may do is what it was registered with, as read back from the store.
    let listed = store.gateways().await.unwrap();
    assert_eq!(listed[0].allowed_kinds, kinds(&["unlock"]));
    let both = store
        .register_gateway("both", &hash(3), &kinds(&["reset", "unlock"]), t0())
        .await
        .unwrap();
    let claimed = store
        .claim_job(&both.id, &kinds(&["reset"]), t0() + secs(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, reset.id);
    assert_eq!(claimed.secret.unwrap().expose(), "Amber-Lantern-58");
}

backend_tests!(
    a_gateway_allowed_only_unlock_never_claims_a_reset_job,
    concurrent_claims_hand_each_job_to_exactly_one_gateway,
    a_credential_authenticates_only_its_gateway_until_revoked,
    a_job_is_claimed_once_with_its_secret_which_then_leaves_the_store,
    jobs_expire_and_are_then_never_handed_out,
    reports_are_idempotent_and_bound_to_the_claiming_gateway,
);
