//! PostgreSQL only: the schema and its guards, and the atomic operations under concurrent access
//! from several portal instances (each instance is its own connection pool on the same schema).
//! The behaviour every backend shares runs on PostgreSQL through `backend_tests!` in the other
//! modules.

use std::sync::Arc;

use latchkey_store::prelude::*;
use latchkey_store::{
    AuditEvent, AuditQuery, Cipher, EncryptionKey, EnrollmentState, FlowLifetime, FlowPurpose,
    JobKind, Limit, NewCode, NewEnrollment, NewFlow, NewJob, Outcome, PostgresOptions,
    SqliteOptions, SqliteStore, Store, StoreError, ThrottleKey, Verification,
};
use latchkey_types::{MethodKind, Secret};
use sqlx::{Connection, Row};

use crate::backends::{PgSchema, postgres_url};
use crate::support::{TempDir, cipher, mins, t0, user};

/// Two "instances" on one schema, sharing the at-rest key as a real deployment does.
async fn two_instances(tag: &str) -> (PgSchema, Arc<dyn Store>, Arc<dyn Store>) {
    let schema = PgSchema::create(tag).await;
    let key = EncryptionKey::generate().unwrap();
    let a = schema.store(Cipher::new(&key)).await;
    let b = schema.store(Cipher::new(&key)).await;
    (schema, Arc::new(a), Arc::new(b))
}

async fn new_flow(store: &dyn Store) -> latchkey_store::Flow {
    store
        .create_flow(
            NewFlow {
                subject: user(),
                purpose: FlowPurpose::SelfService,
                step: latchkey_store::FlowStep::Verify,
                data: serde_json::json!({}),
                lifetime: FlowLifetime::default(),
            },
            t0(),
        )
        .await
        .unwrap()
        .1
}

fn code_for(flow: &latchkey_store::Flow, tries: u32) -> NewCode {
    NewCode {
        flow: flow.id,
        subject: flow.subject,
        method: "email".into(),
        code_hash: vec![7; 32],
        binding: vec![8; 32],
        lifetime: mins(10),
        tries,
    }
}

#[tokio::test]
async fn migrations_match_sqlites_and_apply_once() {
    let schema = PgSchema::create("migrate").await;
    let store = schema.store(cipher()).await;
    store.close().await;
    // A second start (another instance, or a restart) applies nothing and does not fail.
    let store = schema.store(cipher()).await;
    store.close().await;

    let mut pg = schema.connect().await;
    let pg_versions: Vec<i64> =
        sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut pg)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("version"))
            .collect();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text AS t FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%' \
         ORDER BY 1",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("t"))
    .collect();
    pg.close().await.unwrap();

    // The same numbered set, and the same tables, as the SQLite backend.
    let dir = TempDir::new("pg-vs-sqlite");
    let path = dir.path().join("db.sqlite");
    SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap()
        .close()
        .await;
    let lite = rusqlite::Connection::open(&path).unwrap();
    let lite_versions: Vec<i64> = lite
        .prepare("SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get("version"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lite_tables: Vec<String> = lite
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get("name"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(lite);
    assert_eq!(pg_versions, lite_versions);
    assert_eq!(tables, lite_tables);
    schema.drop_now().await;
}

#[tokio::test]
async fn the_audit_table_refuses_updates_deletes_and_truncate() {
    let schema = PgSchema::create("audit-append-only").await;
    let store = schema.store(cipher()).await;
    store
        .append_audit(&AuditEvent {
            at: t0(),
            correlation_id: "req-1".into(),
            actor: "anonymous".into(),
            subject: Some(user()),
            event_type: "password.reset".into(),
            method: None,
            outcome: Outcome::Success,
            reason: None,
            details: serde_json::json!({}),
        })
        .await
        .unwrap();
    // The portal's own role (the table's owner) is refused too: the trigger, not a grant.
    let mut raw = schema.connect().await;
    for sql in [
        "UPDATE audit_events SET outcome = 'failure'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    raw.close().await.unwrap();
    assert_eq!(
        store
            .audit_events(&AuditQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
    schema.drop_now().await;
}

#[tokio::test]
async fn a_secret_moved_to_another_users_row_does_not_decrypt() {
    let schema = PgSchema::create("aad-swap").await;
    let store = schema.store(cipher()).await;
    let (victim, attacker) = (user(), user());
    for (who, seed) in [
        (victim, b"victim-seed-xxxxxxxx"),
        (attacker, b"attacker-seed-xxxxxx"),
    ] {
        store
            .stage_enrollment(
                NewEnrollment {
                    subject: who,
                    method: "totp".into(),
                    data: serde_json::json!({}),
                    secret: Some(Secret::new(seed.to_vec())),
                },
                t0(),
            )
            .await
            .unwrap();
        store.activate_enrollment(&who, "totp", t0()).await.unwrap();
    }
    let mut raw = schema.connect().await;
    sqlx::query(
        "UPDATE enrollments SET secret = (SELECT secret FROM enrollments WHERE subject = $1) \
         WHERE subject = $2",
    )
    .bind(victim.to_string())
    .bind(attacker.to_string())
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    let err = store
        .enrollment(&attacker, "totp", EnrollmentState::Active)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err}");
    store.close().await;
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_throttle_and_never_exceed_it() {
    let (schema, a, b) = two_instances("throttle-2").await;
    let limits = [
        Limit::new(5, std::time::Duration::from_secs(3600)),
        Limit::new(8, std::time::Duration::from_secs(86_400)),
    ];
    let key = ThrottleKey::new("send:email", user());
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store
                .hit(&key, &limits, t0() + std::time::Duration::from_millis(i))
                .await
                .unwrap()
                .is_allowed()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 5, "60 concurrent hits from two instances");
    // Each instance sees the other's attempts: both are now denied ...
    for s in [&a, &b] {
        assert!(
            !s.hit(&key, &limits, t0() + mins(1))
                .await
                .unwrap()
                .is_allowed()
        );
    }
    // ... and a reset on one instance opens the key on the other.
    a.reset(&key).await.unwrap();
    assert!(
        b.hit(&key, &limits, t0() + mins(2))
            .await
            .unwrap()
            .is_allowed()
    );
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_is_consumed_once_and_its_tries_hold_across_instances() {
    let (schema, a, b) = two_instances("code-2").await;
    let flow = new_flow(&*a).await;
    a.issue_code(code_for(&flow, 5), t0()).await.unwrap();

    // 40 concurrent guesses through both instances: exactly 5 get a try.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = flow.id;
        tasks.push(tokio::spawn(async move {
            store
                .take_code_attempt(&id, "email", t0() + mins(1))
                .await
                .unwrap()
        }));
    }
    let mut attempts = Vec::new();
    for t in tasks {
        attempts.extend(t.await.unwrap());
    }
    assert_eq!(attempts.len(), 5);
    let mut left: Vec<u32> = attempts.iter().map(|a| a.tries_left).collect();
    left.sort_unstable();
    assert_eq!(left, [0, 1, 2, 3, 4], "each try charged once");

    // A fresh code, 20 concurrent consumers on both instances: exactly one succeeds.
    let flow = new_flow(&*a).await;
    let issued = a.issue_code(code_for(&flow, 5), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store.consume_code(issued.id, t0() + mins(1)).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issues_number_codes_uniquely_and_leave_only_the_newest_open() {
    let (schema, a, b) = two_instances("issue-2").await;
    let flow = new_flow(&*a).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let new = code_for(&flow, 5);
        tasks.push(tokio::spawn(async move {
            store.issue_code(new, t0()).await.unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=16).collect::<Vec<i64>>());
    // Newest only: the one open code is the highest seq.
    let attempt = b
        .take_code_attempt(&flow.id, "email", t0() + mins(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempt.seq, 16);
    let mut raw = schema.connect().await;
    let open: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM codes WHERE consumed_at_ms IS NULL AND voided_at_ms IS NULL",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap()
    .get("n");
    raw.close().await.unwrap();
    assert_eq!(open, 1);
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flow_token_rotates_once_and_a_totp_step_is_accepted_once_across_instances() {
    let (schema, a, b) = two_instances("flow-2").await;
    let (token, _) = a
        .create_flow(
            NewFlow {
                subject: user(),
                purpose: FlowPurpose::SelfService,
                step: latchkey_store::FlowStep::Verify,
                data: serde_json::json!({}),
                lifetime: FlowLifetime::default(),
            },
            t0(),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_verification(
                    &token,
                    Verification::Method(MethodKind::Email),
                    latchkey_store::FlowStep::Verify,
                    t0() + mins(1),
                )
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);

    let who = user();
    a.stage_enrollment(
        NewEnrollment {
            subject: who,
            method: "totp".into(),
            data: serde_json::json!({}),
            secret: Some(Secret::new(b"seed".to_vec())),
        },
        t0(),
    )
    .await
    .unwrap();
    assert!(a.activate_enrollment(&who, "totp", t0()).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .mark_used(&who, "totp", Some(60_000_001), t0() + mins(1))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1, "one TOTP step, accepted once");
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verified_flow_is_claimed_once_across_instances() {
    let (schema, a, b) = two_instances("flow-claim-2").await;
    let (token, _) = a
        .create_flow(
            NewFlow {
                subject: user(),
                purpose: FlowPurpose::SelfService,
                step: latchkey_store::FlowStep::Verified,
                data: serde_json::json!({}),
                lifetime: FlowLifetime::default(),
            },
            t0(),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_flow(&token, t0() + mins(1))
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(
        wins, 1,
        "one verification, one change, whichever instance asks"
    );
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimants_on_two_instances_each_get_a_different_job() {
    let (schema, a, b) = two_instances("jobs-2").await;
    let gw1 = a
        .register_gateway("site-a", &[1; 32], &["unlock".to_string()], t0())
        .await
        .unwrap();
    let gw2 = b
        .register_gateway("site-b", &[2; 32], &["unlock".to_string()], t0())
        .await
        .unwrap();
    for _ in 0..10 {
        a.enqueue_job(
            NewJob {
                kind: JobKind::Unlock,
                subject: user(),
                target: crate::support::target(),
                secret: None,
                correlation_id: "c".into(),
                expires_at: t0() + mins(5),
            },
            t0(),
        )
        .await
        .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, gw) = if i % 2 == 0 {
            (a.clone(), gw1.id.clone())
        } else {
            (b.clone(), gw2.id.clone())
        };
        tasks.push(tokio::spawn(async move {
            store
                .claim_job(&gw, &["unlock".to_string()], t0() + mins(1))
                .await
                .unwrap()
                .map(|c| c.job.id)
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "a job handed out twice");
    // SKIP LOCKED: claimants do not come back empty while jobs are queued.
    assert_eq!(claimed.len(), 10);
    schema.drop_now().await;
}

#[tokio::test]
async fn open_selects_postgres_from_the_url_and_a_password_can_come_separately() {
    let schema = PgSchema::create("open-url").await;
    let url = url::Url::parse(&schema.url).unwrap();
    let password = url
        .password()
        .expect("the test URL carries the password")
        .to_string();
    let mut without = url.clone();
    without.set_password(None).unwrap();

    // Through the URL, as `[store] database_url` gives it: the flows get an `Arc<dyn Store>`.
    let store = latchkey_store::open(&schema.url, cipher()).await.unwrap();
    let flow = new_flow(&*store).await;
    // The password kept out of the URL (password_file): the same database.
    let other = latchkey_store::open_with(
        without.as_str(),
        Some(Secret::new(password.clone())),
        cipher(),
    )
    .await
    .unwrap();
    other
        .issue_code(code_for(&flow, 3), t0())
        .await
        .expect("the second instance sees the first one's flow");
    // A wrong password is refused by the server, and the error does not echo it.
    let err = latchkey_store::open_with(
        without.as_str(),
        Some(Secret::new("not-the-password-4711".into())),
        cipher(),
    )
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(!msg.contains("4711") && !msg.contains(&password), "{msg}");
    // Options print without the password.
    let shown = format!("{:?}", PostgresOptions::new(&schema.url));
    assert!(!shown.contains(&password), "{shown}");
    drop((store, other));
    schema.drop_now().await;
}

#[tokio::test]
async fn the_test_cluster_is_reachable() {
    // The other PostgreSQL tests need it; this one says plainly when it is missing.
    let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let v: String = sqlx::query("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert!(!v.is_empty());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn looking_a_flow_up_writes_only_when_its_idle_deadline_moved_by_seconds() {
    let schema = PgSchema::create("flow-touch").await;
    let store = schema.store(cipher()).await;
    let (token, _) = store
        .create_flow(
            NewFlow {
                subject: user(),
                purpose: FlowPurpose::SelfService,
                step: latchkey_store::FlowStep::Verify,
                data: serde_json::json!({}),
                lifetime: FlowLifetime::default(),
            },
            t0(),
        )
        .await
        .unwrap();
    // xmin names the transaction that wrote the row version: unchanged means no write.
    let mut raw = schema.connect().await;
    let version = async |raw: &mut sqlx::PgConnection| -> String {
        sqlx::query("SELECT xmin::text AS v FROM flows")
            .fetch_one(raw)
            .await
            .unwrap()
            .get("v")
    };
    let created = version(&mut raw).await;
    let seen = store
        .flow(&token, t0() + std::time::Duration::from_secs(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_seen_at, t0(), "a lookup 2 s later is a read");
    assert_eq!(version(&mut raw).await, created);
    let seen = store.flow(&token, t0() + mins(1)).await.unwrap().unwrap();
    assert_eq!(
        seen.last_seen_at,
        t0() + mins(1),
        "a minute later it is refreshed"
    );
    assert_ne!(version(&mut raw).await, created);
    raw.close().await.unwrap();
    store.close().await;
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_method_is_activated_once_across_instances() {
    let (schema, a, b) = two_instances("activate-2").await;
    let who = user();
    a.stage_enrollment(
        NewEnrollment {
            subject: who,
            method: "sms".into(),
            data: serde_json::json!({ "phone": "+41446681800" }),
            secret: None,
        },
        t0(),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store.activate_enrollment(&who, "sms", t0()).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let all = b.enrollments(&who).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, EnrollmentState::Active);
    schema.drop_now().await;
}
