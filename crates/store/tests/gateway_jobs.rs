//! A succeeded job's after-change steps are claimed exactly once; jobs that ended long ago are
//! purged while recent and open ones stay; jobs are counted by kind and state (metrics).

use std::sync::Arc;
use std::time::Duration;

use latchkey_store::{JOB_RETENTION, JobKind, JobState, NewJob, Store};
use latchkey_types::Secret;
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

fn kinds(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_string()).collect()
}

fn reset_job(expires_in: Duration) -> NewJob {
    NewJob {
        kind: JobKind::Reset,
        subject: user(),
        target: crate::support::target(),
        secret: Some(Secret::new("Amber-Lantern-58".to_string())),
        correlation_id: "corr-after".into(),
        expires_at: t0() + expires_in,
    }
}

/// A gateway and one reset job it claimed and reported as `succeeded` at `t0 + 10 s`.
async fn succeeded_job(store: &Arc<dyn Store>, gateway: &str, succeeded: bool) -> String {
    let g = store
        .register_gateway(gateway, &[7; 32], &kinds(&["unlock", "reset"]), t0())
        .await
        .unwrap();
    let queued = store.enqueue_job(reset_job(mins(2)), t0()).await.unwrap();
    let claimed = store
        .claim_job(&g.id, &kinds(&["reset"]), t0() + secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, queued.id);
    store
        .finish_job(
            &queued.id,
            &g.id,
            succeeded,
            &json!({ "outcome": "done" }),
            t0() + secs(10),
        )
        .await
        .unwrap();
    queued.id
}

async fn concurrent_claims_of_the_after_change_steps_give_exactly_one_winner(
    store: Arc<dyn Store>,
) {
    let id = succeeded_job(&store, "gw", true).await;
    // The waiting page and the result handler (and, in a cluster, more portal instances).
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let (s, id) = (Arc::clone(&store), id.clone());
        tasks.push(tokio::spawn(async move {
            s.claim_after_change(&id, t0() + secs(11 + i))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one claimant runs the steps");
    // Claimed for good: a later attempt loses too.
    assert!(!store.claim_after_change(&id, t0() + mins(1)).await.unwrap());
}

async fn only_a_known_succeeded_job_has_after_change_steps_to_claim(store: Arc<dyn Store>) {
    assert!(!store.claim_after_change("no-such-job", t0()).await.unwrap());
    // Failed: the password did not change, there is nothing to do after it.
    let failed = succeeded_job(&store, "gw-failed", false).await;
    assert!(
        !store
            .claim_after_change(&failed, t0() + secs(11))
            .await
            .unwrap()
    );
    let ok = succeeded_job(&store, "gw-ok", true).await;
    // Queued, not finished: not yet.
    let open = store.enqueue_job(reset_job(mins(2)), t0()).await.unwrap();
    assert!(
        !store
            .claim_after_change(&open.id, t0() + secs(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_after_change(&ok, t0() + secs(11))
            .await
            .unwrap()
    );
}

async fn purge_deletes_jobs_that_ended_long_ago_and_keeps_recent_and_open_ones(
    store: Arc<dyn Store>,
) {
    // Finished at t0 + 10 s.
    let finished = succeeded_job(&store, "gw", true).await;
    // Never taken: expired at its deadline, t0 + 2 min.
    let unclaimed = store.enqueue_job(reset_job(mins(2)), t0()).await.unwrap();
    store.expire_jobs(t0() + mins(3)).await.unwrap();
    assert_eq!(
        store
            .job(&unclaimed.id, t0() + mins(3))
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Expired
    );
    // Past the retention of both: the expired one ended at its deadline (t0 + 2 min).
    let later = t0() + JOB_RETENTION + mins(5);
    // Queued just before the purge (open), and one finished recently.
    let open = store
        .enqueue_job(
            NewJob {
                expires_at: later + mins(2),
                ..reset_job(mins(2))
            },
            later - secs(5),
        )
        .await
        .unwrap();
    let g = store
        .register_gateway("gw-recent", &[8; 32], &kinds(&["unlock"]), later - mins(10))
        .await
        .unwrap();
    let recent = store
        .enqueue_job(
            NewJob {
                kind: JobKind::Unlock,
                secret: None,
                expires_at: later + mins(2),
                ..reset_job(mins(2))
            },
            later - mins(10),
        )
        .await
        .unwrap();
    let claimed = store
        .claim_job(&g.id, &kinds(&["unlock"]), later - mins(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, recent.id);
    store
        .finish_job(&recent.id, &g.id, true, &json!({}), later - mins(8))
        .await
        .unwrap();

    // Just inside the retention, nothing goes.
    let early = t0() + secs(10) + JOB_RETENTION - secs(1);
    assert_eq!(store.purge_expired(early).await.unwrap().jobs, 0);
    assert!(store.job(&finished, early).await.unwrap().is_some());

    let report = store.purge_expired(later).await.unwrap();
    assert_eq!(report.jobs, 2, "the old finished and the old expired job");
    assert!(store.job(&finished, later).await.unwrap().is_none());
    assert!(store.job(&unclaimed.id, later).await.unwrap().is_none());
    assert_eq!(
        store.job(&open.id, later).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(
        store.job(&recent.id, later).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    // The open job is still handed out, with its secret, after the purge.
    let g2 = store
        .register_gateway("gw-reset", &[9; 32], &kinds(&["reset"]), later)
        .await
        .unwrap();
    let taken = store
        .claim_job(&g2.id, &kinds(&["reset"]), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.job.id, open.id);
    assert_eq!(taken.secret.unwrap().expose(), "Amber-Lantern-58");
    // A second run finds nothing more.
    assert_eq!(store.purge_expired(later).await.unwrap().jobs, 0);
}

async fn jobs_are_counted_by_kind_and_state(store: Arc<dyn Store>) {
    assert!(store.job_counts().await.unwrap().is_empty());
    succeeded_job(&store, "gw-count", true).await;
    store.enqueue_job(reset_job(mins(2)), t0()).await.unwrap();
    store.enqueue_job(reset_job(mins(2)), t0()).await.unwrap();
    let mut counts: Vec<(JobKind, JobState, u64)> = store
        .job_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.state, c.count))
        .collect();
    counts.sort_by_key(|c| c.1.as_str());
    assert_eq!(
        counts,
        [
            (JobKind::Reset, JobState::Queued, 2),
            (JobKind::Reset, JobState::Succeeded, 1)
        ]
    );
}

backend_tests!(
    jobs_are_counted_by_kind_and_state,
    concurrent_claims_of_the_after_change_steps_give_exactly_one_winner,
    only_a_known_succeeded_job_has_after_change_steps_to_claim,
    purge_deletes_jobs_that_ended_long_ago_and_keeps_recent_and_open_ones,
);
