//! Latency of the main store operations on each backend, one caller at a time (what one request
//! waits for), and the throughput of throttle hits with concurrent callers.
//!
//! ```sh
//! eval "$(bash tests/postgres/pg.sh env)"     # or any PostgreSQL URL you may create a schema in
//! cargo run --release -p latchkey-store --example latency [-- ITERATIONS]
//! ```
//! SQLite runs on a file in the temp folder (WAL, as `latchkey serve` uses it). PostgreSQL runs
//! in a fresh schema of `LATCHKEY_TEST_POSTGRES_URL`, dropped at the end; without the variable
//! only SQLite is measured. Not part of the test suite: it prints figures, it asserts nothing.
#![allow(clippy::disallowed_methods)]
// tests read the system clock and randomness directly
// Test code: a failing test stops right there (unwrap, expect, panic), and what a test drops it
// does not need.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_store::{
    AuditEvent, Cipher, EncryptionKey, FlowLifetime, FlowUpdate, Limit, NewCode, NewFlow, Outcome,
    PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, ThrottleKey,
};
use latchkey_types::ObjectId;
use sqlx::Connection;
use time::OffsetDateTime;

struct Samples(Vec<Duration>);

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i].as_secs_f64() * 1e6
    }
}

async fn measure(name: &str, store: &Arc<dyn Store>, n: usize) {
    let now = OffsetDateTime::now_utc();
    let mut ops: Vec<(&str, Samples)> = [
        "create_flow",
        "flow",
        "update_flow",
        "issue_code",
        "take_code_attempt",
        "consume_code",
        "record_verification",
        "hit (2 limits)",
        "append_audit",
    ]
    .iter()
    .map(|n| (*n, Samples(Vec::new())))
    .collect();
    let limits = [
        Limit::new(5, Duration::from_secs(3600)),
        Limit::new(20, Duration::from_secs(86_400)),
    ];
    for i in 0..n {
        let who = ObjectId::new_random();
        let t = Instant::now();
        let (token, flow) = store
            .create_flow(
                NewFlow {
                    subject: who,
                    purpose: latchkey_store::FlowPurpose::SelfService,
                    step: latchkey_store::FlowStep::Verify,
                    data: serde_json::json!({"lang": "en"}),
                    lifetime: FlowLifetime::default(),
                },
                now,
            )
            .await
            .unwrap();
        ops[0].1.0.push(t.elapsed());
        let t = Instant::now();
        store.flow(&token, now).await.unwrap().unwrap();
        ops[1].1.0.push(t.elapsed());
        let t = Instant::now();
        store
            .update_flow(
                &token,
                FlowUpdate {
                    step: Some(latchkey_store::FlowStep::Verified),
                    data: None,
                },
                now,
            )
            .await
            .unwrap()
            .unwrap();
        ops[2].1.0.push(t.elapsed());
        let t = Instant::now();
        store
            .issue_code(
                NewCode {
                    flow: flow.id,
                    subject: who,
                    method: "email".into(),
                    code_hash: vec![1; 32],
                    binding: vec![2; 32],
                    lifetime: Duration::from_secs(600),
                    tries: 5,
                },
                now,
            )
            .await
            .unwrap();
        ops[3].1.0.push(t.elapsed());
        let t = Instant::now();
        let attempt = store
            .take_code_attempt(&flow.id, "email", now)
            .await
            .unwrap()
            .unwrap();
        ops[4].1.0.push(t.elapsed());
        let t = Instant::now();
        assert!(store.consume_code(attempt.id, now).await.unwrap());
        ops[5].1.0.push(t.elapsed());
        let t = Instant::now();
        store
            .record_verification(
                &token,
                latchkey_store::Verification::Method(latchkey_types::MethodKind::Email),
                latchkey_store::FlowStep::Verify,
                now,
            )
            .await
            .unwrap()
            .unwrap();
        ops[6].1.0.push(t.elapsed());
        let t = Instant::now();
        store
            .hit(&ThrottleKey::new("send:email", who), &limits, now)
            .await
            .unwrap();
        ops[7].1.0.push(t.elapsed());
        let t = Instant::now();
        store
            .append_audit(&AuditEvent {
                at: now,
                correlation_id: format!("bench-{i}"),
                actor: "anonymous".into(),
                subject: Some(who),
                event_type: "verify".into(),
                method: Some("email".into()),
                outcome: Outcome::Success,
                reason: None,
                details: serde_json::json!({"flow": flow.id.to_string()}),
            })
            .await
            .unwrap();
        ops[8].1.0.push(t.elapsed());
    }
    println!("\n{name}: {n} sequential calls per operation, microseconds");
    println!("{:<22}{:>10}{:>10}", "operation", "p50", "p99");
    for (op, s) in &mut ops {
        println!("{op:<22}{:>10.0}{:>10.0}", s.pct(0.5), s.pct(0.99));
    }

    // Throughput of hits from 32 concurrent callers on 32 keys (one key each, like 32 users).
    for callers in [1usize, 32] {
        let per = 200;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                let key = ThrottleKey::new("ip:start", ObjectId::new_random());
                let limit = [Limit::new(1_000_000, Duration::from_secs(3600))];
                for _ in 0..per {
                    store.hit(&key, &limit, now).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let total = callers * per;
        println!(
            "hit throughput, {callers:>2} concurrent callers: {:>7.0} hits/s",
            total as f64 / t.elapsed().as_secs_f64()
        );
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let cipher = Cipher::new(&EncryptionKey::generate().unwrap());

    let dir = std::env::temp_dir().join(format!("latchkey-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(&SqliteOptions::file(dir.join("bench.db")), cipher.clone())
        .await
        .unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(sqlite);
    measure("SQLite (file, WAL)", &sqlite, n).await;
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);

    let Ok(base) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
        println!("\nLATCHKEY_TEST_POSTGRES_URL not set: PostgreSQL not measured");
        return;
    };
    let schema = format!("bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    // The name is made of [a-z0-9_] above; identifiers cannot be bound.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let pg = PostgresStore::open(
        &PostgresOptions::new(format!("{base}{sep}options[search_path]={schema}")),
        cipher,
    )
    .await
    .unwrap();
    let pg: Arc<dyn Store> = Arc::new(pg);
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    measure(&format!("PostgreSQL {version} (loopback TCP)"), &pg, n).await;
    drop(pg);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}
