//! Shared test support: temp folders, certificates (openssl, as an operator makes them), stores,
//! audit events, and waiting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use latchkey_forward::{Forwarder, Output, Settings};
use latchkey_store::{
    AuditEvent, Cipher, EncryptionKey, Outcome, SqliteOptions, SqliteStore, Store,
};
use latchkey_verify::SystemClock;

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("latchkey-forward-{tag}-{}", uuid_like()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{n}", std::process::id())
}

fn openssl(args: &[&str], dir: &Path) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA (`ca.pem`), a server certificate for 127.0.0.1 and localhost signed by it
/// (`server.pem`, `server.key`), and a client certificate (`client.pem`, `client.key`).
pub fn make_certs(dir: &Path) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Latchkey Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
        dir,
    );
    leaf(
        dir,
        "server",
        "/CN=localhost",
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    leaf(
        dir,
        "client",
        "/CN=latchkey-forwarder",
        "extendedKeyUsage=clientAuth\n",
    );
}

/// `NAME.key` and `NAME.pem`, signed by the CA in `dir`, with these extensions.
fn leaf(dir: &Path, name: &str, subject: &str, extensions: &str) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
        dir,
    );
    std::fs::write(
        dir.join(&ext),
        format!("basicConstraints=CA:FALSE\n{extensions}"),
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
        dir,
    );
}

pub fn cipher() -> Cipher {
    Cipher::new(&EncryptionKey::generate().unwrap())
}

pub async fn sqlite(dir: &Path) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(&SqliteOptions::file(dir.join("latchkey.db")), cipher())
            .await
            .unwrap(),
    )
}

pub fn event(n: usize, writer: &str) -> AuditEvent {
    AuditEvent {
        at: time::OffsetDateTime::now_utc(),
        correlation_id: format!("{writer}-{n}"),
        actor: "anonymous".into(),
        subject: None,
        event_type: "verify".into(),
        method: Some("email".into()),
        outcome: if n.is_multiple_of(3) {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        reason: None,
        details: serde_json::json!({ "writer": writer, "n": n }),
    }
}

pub async fn append(
    store: &Arc<dyn Store>,
    range: std::ops::Range<usize>,
    writer: &str,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for n in range {
        ids.push(store.append_audit(&event(n, writer)).await.unwrap().0);
    }
    ids
}

/// Quick loops for tests: small batches, 50 ms poll, short backoff, and a short lease.
pub fn settings(holder: &str) -> Settings {
    let mut s = Settings::new("sspr.contoso.test", holder);
    s.start = latchkey_store::ForwardStart::Beginning;
    s.batch_size = 20;
    s.poll = Duration::from_millis(50);
    s.max_backoff = Duration::from_millis(500);
    s.lease = Duration::from_secs(2);
    s.delivery_timeout = Duration::from_millis(1500);
    s
}

/// A running forwarder and how to stop it.
pub struct Running {
    pub stop: tokio::sync::watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the forwarder stops")
            .unwrap();
    }
}

pub fn start(store: Arc<dyn Store>, output: Arc<dyn Output>, settings: Settings) -> Running {
    let f = Arc::new(Forwarder::new(
        store,
        Arc::new(SystemClock),
        output,
        settings,
    ));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(f.run(rx));
    Running { stop, task }
}

/// Waits up to `secs` for `check`, polling every 50 ms.
pub async fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids in first-arrival order, and how many arrived more than once.
pub fn first_arrivals(ids: &[i64]) -> (Vec<i64>, usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut order = Vec::new();
    for id in ids {
        if seen.insert(*id) {
            order.push(*id);
        }
    }
    (order.clone(), ids.len() - order.len())
}

/// A free loopback port (TCP and UDP).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh schema in the test PostgreSQL database (`LATCHKEY_TEST_POSTGRES_URL`).
pub struct PgSchema {
    pub name: String,
    pub url: String,
}

fn postgres_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").expect(
        "LATCHKEY_TEST_POSTGRES_URL is not set: run tests/run (starts PostgreSQL), or \
         `bash tests/postgres/pg.sh install up` and `eval \"$(bash tests/postgres/pg.sh env)\"`",
    )
}

impl PgSchema {
    pub async fn create() -> Self {
        use sqlx::Connection as _;
        let base = postgres_url();
        let name = format!("t_forward_{}", uuid_like().replace('-', "_"));
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Self { name, url }
    }

    /// Who holds `output`'s lease now.
    pub async fn holder(&self, output: &str) -> String {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_scalar("SELECT holder FROM audit_forwarding WHERE output = $1")
            .bind(output)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    /// (tx, id) of these events and the forwarding row, for a failure message.
    pub async fn positions(&self, ids: &[i64]) -> String {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT tx::text, id FROM audit_events WHERE id = ANY($1) ORDER BY id")
                .bind(ids)
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let cursor: (i64, i64, i64) = sqlx::query_as(
            "SELECT cursor_tx, cursor_id, delivered FROM audit_forwarding WHERE output = 'webhook'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        format!("{rows:?}, cursor/delivered {cursor:?}")
    }

    pub async fn drop_now(self) {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}
