use latchkey_store::{AuditEvent, AuditQuery, Outcome, SqliteOptions, SqliteStore, Store};
use latchkey_types::ObjectId;
use serde_json::json;
use sqlx::sqlite::SqlitePoolOptions;

use crate::support::{TempDir, both, cipher, mins, t0, user};

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

#[tokio::test]
async fn events_round_trip_and_are_queried_by_subject_type_and_time() {
    for (_dir, store) in both("audit-query").await {
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

    let raw = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let upd = sqlx::query("UPDATE audit_events SET outcome = 'failure'")
        .execute(&raw)
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM audit_events").execute(&raw).await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
    raw.close().await;
    assert_eq!(
        store
            .audit_events(&AuditQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}
