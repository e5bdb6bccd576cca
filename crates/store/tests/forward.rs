//! Audit forwarding bookkeeping: leases, fenced cursors, backlog, and on PostgreSQL the events
//! of a transaction still running (they are never skipped).

use std::sync::Arc;

use latchkey_store::{AuditEvent, AuditPosition, ForwardStart, Outcome, Store};
use serde_json::json;

use crate::backends::{PgSchema, backend_tests};
use crate::support::{cipher, mins, secs, t0, user};

fn event(n: u32) -> AuditEvent {
    AuditEvent {
        at: t0(),
        correlation_id: format!("req-{n}"),
        actor: "anonymous".into(),
        subject: Some(user()),
        event_type: "verify".into(),
        method: Some("email".into()),
        outcome: Outcome::Success,
        reason: None,
        details: json!({ "n": n }),
    }
}

/// The final events after `from`, waiting (up to 10 s) until there are at least `n`: on
/// PostgreSQL an event is final only once every older transaction on the server ended, and
/// other tests share the server.
async fn settled(
    store: &Arc<dyn Store>,
    from: AuditPosition,
    max: u32,
    n: usize,
) -> Vec<latchkey_store::ForwardItem> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let items = store.audit_after(from, max).await.unwrap();
        if items.len() >= n || std::time::Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn settled_ids(store: &Arc<dyn Store>, from: AuditPosition, n: usize) -> Vec<i64> {
    settled(store, from, 1000, n)
        .await
        .iter()
        .map(|i| i.record.id.0)
        .collect()
}

async fn ids_after(store: &Arc<dyn Store>, from: AuditPosition) -> Vec<i64> {
    store
        .audit_after(from, 1000)
        .await
        .unwrap()
        .iter()
        .map(|i| i.record.id.0)
        .collect()
}

async fn one_instance_holds_an_output_and_moves_its_cursor(store: Arc<dyn Store>) {
    let (mut ids, mut events) = (Vec::new(), Vec::new());
    for n in 0..3 {
        events.push(event(n));
        ids.push(store.append_audit(&events[n as usize]).await.unwrap().0);
    }
    let ttl = secs(30);
    let a = store
        .lease_forwarding("syslog", "a", ForwardStart::Beginning, t0(), ttl)
        .await
        .unwrap()
        .expect("the first lease");
    assert!(
        store
            .lease_forwarding("syslog", "b", ForwardStart::Beginning, t0() + secs(29), ttl)
            .await
            .unwrap()
            .is_none(),
        "another instance waits while the lease runs"
    );
    // Another output is independent.
    assert!(
        store
            .lease_forwarding("webhook", "b", ForwardStart::Beginning, t0(), ttl)
            .await
            .unwrap()
            .is_some()
    );
    let items = settled(&store, a, 2, 2).await;
    assert_eq!(items.len(), 2, "at most `max`");
    assert_eq!(
        items.iter().map(|i| i.record.id.0).collect::<Vec<_>>(),
        ids[..2]
    );
    assert_eq!(items[0].record.event, events[0], "the event as written");
    assert_eq!(store.forward_backlog("syslog", 100).await.unwrap(), Some(3));
    assert!(
        store
            .advance_forwarding("syslog", "a", items[1].position, 2, t0() + secs(1))
            .await
            .unwrap()
    );
    assert_eq!(store.forward_backlog("syslog", 100).await.unwrap(), Some(1));
    assert_eq!(
        store.forward_backlog("syslog", 0).await.unwrap(),
        Some(0),
        "capped"
    );
    assert_eq!(store.forward_backlog("nobody", 100).await.unwrap(), None);
    // Renewing returns the moved cursor.
    let again = store
        .lease_forwarding("syslog", "a", ForwardStart::Beginning, t0() + secs(10), ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, items[1].position);
    assert_eq!(settled_ids(&store, again, 1).await, ids[2..]);
    // The cursor never moves back.
    assert!(
        !store
            .advance_forwarding("syslog", "a", items[0].position, 1, t0() + secs(11))
            .await
            .unwrap()
    );
}

async fn a_lease_that_ran_out_is_taken_over_and_fences_the_old_holder(store: Arc<dyn Store>) {
    let first = store.append_audit(&event(0)).await.unwrap();
    let ttl = secs(30);
    let a = store
        .lease_forwarding("webhook", "a", ForwardStart::Beginning, t0(), ttl)
        .await
        .unwrap()
        .unwrap();
    let items = settled(&store, a, 10, 1).await;
    assert_eq!(items[0].record.id, first);
    // "a" stalls past its lease; "b" takes over from the same cursor ...
    let b = store
        .lease_forwarding("webhook", "b", ForwardStart::Beginning, t0() + ttl, ttl)
        .await
        .unwrap()
        .expect("taken over after the lease ran out");
    assert_eq!(b, a);
    // ... and "a" can no longer move the cursor (what it sent is sent again by "b").
    assert!(
        !store
            .advance_forwarding("webhook", "a", items[0].position, 1, t0() + ttl)
            .await
            .unwrap()
    );
    assert!(
        store
            .advance_forwarding("webhook", "b", items[0].position, 1, t0() + ttl)
            .await
            .unwrap()
    );
    // A released lease is free at once.
    store.release_forwarding("webhook", "b").await.unwrap();
    let c = store
        .lease_forwarding(
            "webhook",
            "c",
            ForwardStart::Beginning,
            t0() + ttl + secs(1),
            ttl,
        )
        .await
        .unwrap()
        .expect("released");
    assert_eq!(c, items[0].position);
    // Names are checked.
    assert!(
        store
            .lease_forwarding("Sys log", "c", ForwardStart::Now, t0(), ttl)
            .await
            .is_err()
    );
}

async fn a_new_output_started_now_skips_what_was_written_before(store: Arc<dyn Store>) {
    for n in 0..3 {
        store.append_audit(&event(n)).await.unwrap();
    }
    let at = store
        .lease_forwarding("syslog", "a", ForwardStart::Now, t0(), mins(1))
        .await
        .unwrap()
        .unwrap();
    // SQLite: nothing before is delivered. PostgreSQL: "now" is just below the oldest running
    // transaction on the server, so events of transactions running then (other tests share
    // the server) may still come; never more than what was written before.
    let before = ids_after(&store, at).await;
    assert!(before.len() <= 3, "{before:?}");
    let backlog = store.forward_backlog("syslog", 100).await.unwrap().unwrap();
    assert!(backlog <= 3, "{backlog}");
    let next = store.append_audit(&event(3)).await.unwrap();
    let after = settled_ids(&store, at, before.len() + 1).await;
    assert_eq!(after.last(), Some(&next.0));
    // The start only applies to the first lease.
    let again = store
        .lease_forwarding("syslog", "a", ForwardStart::Beginning, t0(), mins(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, at);
}

backend_tests!(
    one_instance_holds_an_output_and_moves_its_cursor,
    a_lease_that_ran_out_is_taken_over_and_fences_the_old_holder,
    a_new_output_started_now_skips_what_was_written_before,
);

/// The case ids alone get wrong: a transaction takes id N, another takes N+1 and commits first.
/// Reading by id would deliver N+1 and move past N before N is visible; positions hold back
/// every event behind the running transaction until it ends, then deliver both in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_never_skips_an_event_of_a_transaction_still_running() {
    use sqlx::Connection as _;
    let schema = PgSchema::create("forward_gap").await;
    let pg = schema.store(cipher()).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let before = store.append_audit(&event(0)).await.unwrap();

    let mut raw = schema.connect().await;
    let mut tx = raw.begin().await.unwrap();
    let held: i64 = sqlx::query_scalar(
        "INSERT INTO audit_events (at_ms, correlation_id, actor, event_type, outcome) \
         VALUES (0, 'held', 'system', 'verify', 'success') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let after = store.append_audit(&event(2)).await.unwrap();
    assert!(after.0 > held);

    // While the transaction runs, nothing behind it is final: the event before it comes (once
    // the server's older transactions ended), the two after it do not.
    let seen = settled_ids(&store, AuditPosition::START, 1).await;
    assert_eq!(
        seen,
        vec![before.0],
        "nothing behind the running transaction is final"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = ids_after(&store, AuditPosition::START).await;
    assert_eq!(seen, vec![before.0], "still nothing behind it");
    tx.commit().await.unwrap();
    raw.close().await.unwrap();
    let seen = settled_ids(&store, AuditPosition::START, 3).await;
    assert_eq!(seen, vec![before.0, held, after.0]);
    pg.close().await;
    schema.drop_now().await;
}

/// Writers on several pools (instances) append as fast as they can while a reader follows the
/// positions: the reader sees every event exactly once, whatever order the commits land in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_reader_following_positions_sees_every_concurrent_event_once() {
    let schema = PgSchema::create("forward_race").await;
    let mut pools = Vec::new();
    for _ in 0..4 {
        pools.push(schema.store(cipher()).await);
    }
    let reader: Arc<dyn Store> = Arc::new(pools[0].clone());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store: Arc<dyn Store> = Arc::new(pools[w % pools.len()].clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..150 {
                    ids.push(store.append_audit(&event(n)).await.unwrap().0);
                }
                ids
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = AuditPosition::START;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Follow until every writer finished and every event was seen (8 x 150).
    while !(writers.iter().all(|h| h.is_finished()) && seen.len() >= 8 * 150) {
        assert!(std::time::Instant::now() < deadline, "saw {}", seen.len());
        let batch = reader.audit_after(cursor, 7).await.unwrap();
        if let Some(last) = batch.last() {
            cursor = last.position;
        }
        seen.extend(batch.iter().map(|i| i.record.id.0));
    }
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    written.sort_unstable();
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, written, "every event exactly once");
    for p in pools {
        p.close().await;
    }
    schema.drop_now().await;
}

/// A database restored from pg_dump into another server keeps the old server's transaction
/// ids: new events would sort before the cursor and never be delivered. Forwarding refuses,
/// and the rebase README gives ("Backups") makes it go on from where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_positions_from_another_server_until_rebased() {
    use sqlx::Connection as _;
    let schema = PgSchema::create("forward_restore").await;
    let pg = schema.store(cipher()).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let mut raw = schema.connect().await;
    // As a restore writes them: the old server's (higher) transaction ids.
    sqlx::query(
        "INSERT INTO audit_events (at_ms, correlation_id, actor, event_type, outcome, tx) \
         VALUES (0, 'restored', 'system', 'verify', 'success', '4000000000'::xid8)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let err = store
        .lease_forwarding("webhook", "a", ForwardStart::Beginning, t0(), mins(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, latchkey_store::StoreError::RestoredPositions),
        "{err}"
    );
    // The rebase (README, "Backups"), then forwarding goes on, in id order.
    sqlx::raw_sql(
        "BEGIN; \
         ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update; \
         UPDATE audit_events SET tx = '1'; \
         ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update; \
         UPDATE audit_forwarding SET cursor_tx = LEAST(cursor_tx, 1); \
         COMMIT;",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    let next = store.append_audit(&event(1)).await.unwrap();
    let at = store
        .lease_forwarding("webhook", "a", ForwardStart::Beginning, t0(), mins(1))
        .await
        .unwrap()
        .unwrap();
    let ids = settled_ids(&store, at, 2).await;
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], next.0);
    pg.close().await;
    schema.drop_now().await;
}

/// Positions order by transaction id as a number: 9 before 10, whatever their text says (a
/// text order once sent 1000 before 999 and moved the cursor past the 9xx events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_positions_order_transaction_ids_as_numbers() {
    use sqlx::Connection as _;
    let schema = PgSchema::create("forward_order").await;
    let pg = schema.store(cipher()).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let mut raw = schema.connect().await;
    let mut ids = Vec::new();
    for tx in ["9", "10", "99", "100"] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_events (at_ms, correlation_id, actor, event_type, outcome, tx) \
             VALUES (0, 'c', 'system', 'verify', 'success', $1::text::xid8) RETURNING id",
        )
        .bind(tx)
        .fetch_one(&mut raw)
        .await
        .unwrap();
        ids.push(id);
    }
    raw.close().await.unwrap();
    // One at a time, as a forwarder with a batch of 1 would move.
    let mut cursor = AuditPosition::START;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let batch = store.audit_after(cursor, 1).await.unwrap();
        cursor = batch[0].position;
        seen.push(batch[0].record.id.0);
    }
    assert_eq!(seen, ids);
    assert!(store.audit_after(cursor, 10).await.unwrap().is_empty());
    pg.close().await;
    schema.drop_now().await;
}
