use std::sync::Arc;

use latchkey_store::prelude::*;
use latchkey_store::{AuditEvent, AuditQuery, Outcome, SqliteOptions, SqliteStore, Store};
use latchkey_types::ObjectId;
use serde_json::json;

use crate::backends::backend_tests;
use crate::support::{TempDir, cipher, mins, t0, user};

fn event(at_min: u64, subject: Option<ObjectId>, kind: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent {
        at: t0() + mins(at_min),
        correlation_id: format!("req-{at_min}"),
        actor: "anonymous".into(),
        subject,
        event_type: kind.into(),
        method: Some("email".into()),
        outcome,
        reason: (outcome != Outcome::Success).then(|| "wrong code".to_string()),
        details: json!({"flow": "f-1", "to": "m***@contoso.com"}),
    }
}

async fn events_round_trip_and_are_queried_by_subject_type_and_time(store: Arc<dyn Store>) {
    let (alice, bob) = (user(), user());
    let e0 = event(0, Some(alice), "flow.start", Outcome::Success);
    let id0 = store.append_audit(&e0).await.unwrap();
    store
        .append_audit(&event(1, Some(alice), "verify", Outcome::Failure))
        .await
        .unwrap();
    store
        .append_audit(&event(2, Some(bob), "verify", Outcome::Success))
        .await
        .unwrap();
    store
        .append_audit(&event(3, None, "throttle", Outcome::Denied))
        .await
        .unwrap();
    let id4 = store
        .append_audit(&event(4, Some(alice), "verify", Outcome::Success))
        .await
        .unwrap();
    assert!(id4 > id0);

    let all = store.audit_events(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].id, id4, "newest first");
    assert_eq!(all[4].event, e0, "every field survives the round trip");

    let q = AuditQuery {
        subject: Some(alice),
        ..Default::default()
    };
    assert_eq!(store.audit_events(&q).await.unwrap().len(), 3);

    let q = AuditQuery {
        subject: Some(alice),
        event_type: Some("verify".into()),
        ..Default::default()
    };
    let got = store.audit_events(&q).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.event.outcome).collect::<Vec<_>>(),
        [Outcome::Success, Outcome::Failure]
    );

    let q = AuditQuery {
        since: Some(t0() + mins(1)),
        until: Some(t0() + mins(3)),
        ..Default::default()
    };
    let got = store.audit_events(&q).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|r| r.event.correlation_id.as_str())
            .collect::<Vec<_>>(),
        ["req-2", "req-1"]
    );

    // Paging.
    let page1 = store
        .audit_events(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let page2 = store
        .audit_events(&AuditQuery {
            limit: 2,
            before: Some(page1[1].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2[0].event.correlation_id, "req-2");
    assert_eq!(page2.len(), 2);
}

#[tokio::test]
async fn the_audit_table_refuses_updates_and_deletes() {
    let dir = TempDir::new("audit-append-only");
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap();
    store
        .append_audit(&event(0, Some(user()), "password.reset", Outcome::Success))
        .await
        .unwrap();

    let raw = rusqlite::Connection::open(&path).unwrap();
    let upd = raw.execute("UPDATE audit_events SET outcome = 'failure'", []);
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = raw.execute("DELETE FROM audit_events", []);
    assert!(del.unwrap_err().to_string().contains("append-only"));
    drop(raw);
    assert_eq!(
        store
            .audit_events(&AuditQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn audit_search_filters_by_actor_outcome_and_correlation_and_pages_both_ways(
    store: Arc<dyn Store>,
) {
    let alice = user();
    let helpdesk = format!("helpdesk:{}", user());
    let mut ids = Vec::new();
    for i in 0..6u64 {
        let mut e = event(
            i,
            Some(alice),
            "verify",
            if i % 2 == 0 {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        );
        if i >= 4 {
            e.actor = helpdesk.clone();
        }
        ids.push(store.append_audit(&e).await.unwrap());
    }
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let corr = |v: Vec<latchkey_store::AuditRecord>| {
        v.into_iter()
            .map(|r| r.event.correlation_id)
            .collect::<Vec<_>>()
    };
    let by_actor = store
        .audit_events(&q(&|q| q.actors = vec![helpdesk.clone()]))
        .await
        .unwrap();
    assert_eq!(corr(by_actor), ["req-5", "req-4"]);
    let either = store
        .audit_events(&q(&|q| {
            q.actors = vec![helpdesk.clone(), "anonymous".into()]
        }))
        .await
        .unwrap();
    assert_eq!(either.len(), 6, "IN over several actors");
    let failures = store
        .audit_events(&q(&|q| q.outcome = Some(Outcome::Failure)))
        .await
        .unwrap();
    assert_eq!(corr(failures), ["req-5", "req-3", "req-1"]);
    let one = store
        .audit_events(&q(&|q| q.correlation_id = Some("req-2".into())))
        .await
        .unwrap();
    assert_eq!(corr(one), ["req-2"]);
    // A value that looks like SQL is just a value.
    let none = store
        .audit_events(&q(&|q| q.actors = vec!["x' OR '1'='1".into()]))
        .await
        .unwrap();
    assert!(none.is_empty());

    // Page back: the two events just newer than req-1, newest first.
    let newer = store
        .audit_events(&q(&|q| {
            q.after = Some(ids[1]);
            q.limit = 2;
        }))
        .await
        .unwrap();
    assert_eq!(corr(newer), ["req-3", "req-2"]);
    let window = store
        .audit_events(&q(&|q| {
            q.after = Some(ids[1]);
            q.before = Some(ids[4]);
        }))
        .await
        .unwrap();
    assert_eq!(corr(window), ["req-3", "req-2"]);
}

async fn daily_counts_group_by_utc_day_type_and_outcome(store: Arc<dyn Store>) {
    let day = |d: u64, min: u64| {
        let mut e = event(0, Some(user()), "reset", Outcome::Success);
        e.at = t0() + mins(d * 24 * 60 + min);
        e
    };
    // t0 is 08:00 UTC: 17 hours later is 01:00 on the next UTC day.
    store.append_audit(&day(0, 0)).await.unwrap();
    store.append_audit(&day(0, 60)).await.unwrap();
    store.append_audit(&day(0, 17 * 60)).await.unwrap(); // 01:00 next day
    let mut unlock = day(1, 0);
    unlock.event_type = "unlock".into();
    store.append_audit(&unlock).await.unwrap();
    let mut failed = day(1, 5);
    failed.outcome = Outcome::Failure;
    store.append_audit(&failed).await.unwrap();
    let mut other = day(1, 6);
    other.event_type = "code.send".into();
    store.append_audit(&other).await.unwrap();
    // Outside the range.
    store.append_audit(&day(5, 0)).await.unwrap();

    let counts = store
        .audit_daily_counts(t0(), t0() + mins(3 * 24 * 60), &["reset", "unlock"])
        .await
        .unwrap();
    let d0 = t0().date();
    let d1 = d0.next_day().unwrap();
    let got: Vec<(time::Date, &str, Outcome, u64)> = counts
        .iter()
        .map(|c| (c.day, c.event_type.as_str(), c.outcome, c.count))
        .collect();
    assert_eq!(
        got,
        [
            (d0, "reset", Outcome::Success, 2),
            // Outcomes sort by their stored names: "failure" before "success".
            (d1, "reset", Outcome::Failure, 1),
            (d1, "reset", Outcome::Success, 1),
            (d1, "unlock", Outcome::Success, 1),
        ]
    );
    let all = store
        .audit_daily_counts(t0(), t0() + mins(3 * 24 * 60), &[])
        .await
        .unwrap();
    assert_eq!(all.iter().map(|c| c.count).sum::<u64>(), 6);
}

backend_tests!(
    events_round_trip_and_are_queried_by_subject_type_and_time,
    audit_search_filters_by_actor_outcome_and_correlation_and_pages_both_ways,
    daily_counts_group_by_utc_day_type_and_outcome,
);
