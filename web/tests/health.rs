//! `/healthz`, `/readyz` and the JSON log of `latchkey serve` on PostgreSQL: readiness fails,
//! naming the store, while the database cannot be reached, and recovers by itself when it is
//! back; every log line is one JSON object, the lines a request writes carry its id, and no line
//! holds the database password, the app's secret or a typed account.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use latchkey_entra_sim::Fixture;

use crate::helpers::*;

fn postgres_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").expect(
        "LATCHKEY_TEST_POSTGRES_URL is not set: run tests/run (starts PostgreSQL), or \
         `bash tests/postgres/pg.sh install up` and `eval \"$(bash tests/postgres/pg.sh env)\"`",
    )
}

/// A TCP relay to PostgreSQL that can be cut (refusing and dropping connections) and restored:
/// the database "goes away" for the portal without touching the shared test cluster.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = outbound.split();
                    let watch = async {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        () = watch => {}
                    }
                });
            }
        });
        Relay { port, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

/// `/readyz`'s status and body; status 0 while nothing listens yet (the portal is starting).
async fn readyz(port: u16) -> (u16, serde_json::Value) {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await else {
        return (0, serde_json::Value::Null);
    };
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// Polls `/readyz` until its status is `want` (the answer is reused for up to 5 s).
async fn wait_ready(port: u16, want: u16) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..60 {
        let (status, body) = readyz(port).await;
        if status == want {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("/readyz never answered {want}: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_store_and_the_json_log_carries_request_ids_and_no_secrets() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let base = url::Url::parse(&postgres_url()).unwrap();
    let password = base
        .password()
        .expect("test URL has a password")
        .to_string();
    let target = format!(
        "{}:{}",
        base.host_str().unwrap(),
        base.port().unwrap_or(5432)
    );
    let relay = Relay::start(target.parse().unwrap()).await;
    let mut url = base.clone();
    url.set_password(None).unwrap();
    url.set_port(Some(relay.port)).unwrap();
    dir.write("db-password", &format!("{password}\n"));
    let port = free_port();
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[portal]\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [store]\ndatabase_url = \"{url}\"\npassword_file = \"db-password\"\nkey_file = \"latchkey.key\"\n\
             [policies]\ndir = \"{}\"\n[log]\nformat = \"json\"\n",
            policies.display()
        ),
    );
    let stderr_path = dir.0.join("stderr.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("LATCHKEY_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let _serve = KillOnDrop(child);

    let ready = wait_ready(port, 200).await;
    assert_eq!(ready["ready"], true, "{ready}");
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["store", "policies", "graph", "key_file"]);
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // A flow for a real account (the shipped policy matches nobody: a decoy), typed as a user
    // would; then a page, with its id in the answer.
    let mut b = crate::portal::Browser::at(&format!("http://127.0.0.1:{port}"));
    assert_eq!(b.identify("adele.vance@contoso.com").await.status, 303);
    let http = reqwest::Client::new();
    let home = http
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    let request_id = home.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(request_id.len(), 16);

    // The database goes away: not ready, the store named; /healthz still answers.
    relay.set(false);
    let down = wait_ready(port, 503).await;
    let store = &down["checks"][0];
    assert_eq!(
        (store["name"].as_str(), store["ok"].as_bool()),
        (Some("store"), Some(false)),
        "{down}"
    );
    assert!(!down.to_string().contains(&password), "{down}");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // ...and comes back: ready again by itself.
    relay.set(true);
    wait_ready(port, 200).await;

    // The log: one JSON object per line; lines written while serving a request carry its id;
    // no secret and no typed account.
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!log.is_empty());
    let mut with_id = 0;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["span"]["request_id"].is_string() {
            with_id += 1;
        }
    }
    assert!(with_id > 0, "no line carries a request id:\n{log}");
    for secret in [password.as_str(), TEST_SECRET, "adele.vance@contoso.com"] {
        assert!(!log.contains(secret), "{secret:?} in the log");
    }
}

/// `latchkey gateway list` opens the portal's store as `serve` does: its start-up errors are
/// the store's.
async fn open_store_with(
    sim: &latchkey_entra_sim::Sim,
    dir: &TempDir,
    store: &str,
) -> (i32, String) {
    let cfg = config_for(
        sim,
        dir,
        &format!("[store]\n{store}key_file = \"latchkey.key\"\n"),
    );
    let out = latchkey(&["gateway", "list", "--config", cfg.to_str().unwrap()], &[]).await;
    (out.status.code().unwrap_or(-1), stderr(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_postgres_is_named_with_its_cause() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    // Port 1 on loopback: nothing listens there.
    let started = std::time::Instant::now();
    let (code, err) = open_store_with(
        &sim,
        &dir,
        "database_url = \"postgres://latchkey:hunter2@127.0.0.1:1/latchkey\"\n",
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("PostgreSQL at latchkey@127.0.0.1:1/latchkey"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_on_another_host_needs_verified_tls() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    for url in [
        "postgres://latchkey:hunter2@db.contoso.invalid/latchkey",
        "postgres://latchkey@10.1.2.3/latchkey?sslmode=disable",
        "postgres://latchkey@db.contoso.invalid/latchkey?sslmode=require",
        "postgres://latchkey@db.contoso.invalid/latchkey?sslmode=verify-ca",
    ] {
        let (code, err) = open_store_with(&sim, &dir, &format!("database_url = \"{url}\"\n")).await;
        assert_ne!(code, 0, "{url}");
        assert!(err.contains("sslmode=verify-full"), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_sqlite_database_is_refused_at_start_naming_the_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    // First start: the database and the key are made.
    let (code, err) =
        open_store_with(&sim, &dir, "database_url = \"sqlite://latchkey.db\"\n").await;
    assert_eq!(code, 0, "{err}");
    let db = dir.0.join("latchkey.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let cfg = dir.0.join("latchkey.toml");
    // Root writes any file whatever its mode: then the portal runs as an unprivileged account
    // that owns only the key (the database stays root's), as a service account would.
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.uid() == 0
    });
    let out = if root.unwrap_or(false) {
        std::os::unix::fs::chown(dir.0.join("latchkey.key"), Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = env!("CARGO_BIN_EXE_latchkey");
        let cfg = cfg.to_str().unwrap().to_string();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin])
                .args(["gateway", "list", "--config", &cfg])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    } else {
        latchkey(&["gateway", "list", "--config", cfg.to_str().unwrap()], &[]).await
    };
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(err.contains("read-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_answers_and_audit_events_with_bounded_labels() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let (port, metrics_port) = (free_port(), free_port());
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[portal]\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n\
             [policies]\ndir = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
            policies.display()
        ),
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _serve = KillOnDrop(child);
    wait_ready(port, 200).await;
    // Flows for accounts that do not exist (each a different typed account): they must not
    // become label values.
    let mut b = crate::portal::Browser::at(&format!("http://127.0.0.1:{port}"));
    for i in 0..5 {
        let r = b.identify(&format!("nobody{i}@contoso.com")).await;
        assert_eq!(r.status, 303);
    }
    b.get("/no/such/page/123456").await;
    // The metrics are not on the portal's own listener.
    let public = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("latchkey_build_info{version=\""), "{text}");
    assert!(
        text.contains(
            "latchkey_http_requests_total{route=\"/start\",method=\"POST\",status=\"303\"} 5"
        ),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(
        text.contains("latchkey_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("latchkey_audit_events_total{event=\""),
        "{text}"
    );
    // Graph traffic by operation: the token, and the look-ups (the typed accounts are in the
    // query, which never becomes a label).
    assert!(
        text.contains("latchkey_graph_requests_total{operation=\"token\",status=\"200\"}"),
        "{text}"
    );
    // The look-ups go to Graph (`GET /users`) until the directory mirror's first round is
    // done, to the mirror after it; the mirror's own reads are labelled by path alone (its
    // links' tokens are in the query).
    assert!(text.contains("operation=\"GET /users/delta\""), "{text}");
    assert!(text.contains("operation=\"GET /groups/delta\""), "{text}");
    assert!(
        text.contains("operation=\"GET /directoryRoles/delta\""),
        "{text}"
    );
    assert!(
        !text.contains("deltatoken") && !text.contains("skiptoken"),
        "{text}"
    );
    assert!(text.contains("latchkey_directory_mirror_usable "), "{text}");
    assert!(
        text.contains("latchkey_graph_request_duration_seconds_bucket{"),
        "{text}"
    );
    // Store calls timed by operation (the store's method names, a fixed set).
    assert!(
        text.contains("latchkey_store_call_duration_seconds_count{operation=\"create_flow\"} 5"),
        "{text}"
    );
    // Gateways (none registered here), read from the store.
    assert!(
        text.contains("latchkey_gateways{state=\"connected\"} 0"),
        "{text}"
    );
    // Bounded: no account, no path beyond the route templates, no id.
    for forbidden in ["nobody", "@", "123456", "/no/such", "contoso", "$filter"] {
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} in the metrics:\n{text}"
        );
    }
}
