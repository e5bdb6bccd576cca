//! The webhook output against an HTTPS receiver in this process: batches with the bearer token,
//! a receiver stopped mid-stream and started again, 503 with Retry-After, a wrong token, and
//! several instances on one PostgreSQL database forwarding through one lease holder.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use latchkey_forward::TlsMaterial;
use latchkey_forward::webhook::{WebhookConfig, WebhookOutput};
use latchkey_store::{PostgresOptions, PostgresStore, Store};
use latchkey_types::Secret;
use rustls_pki_types::pem::PemObject as _;

use crate::support::*;

const TOKEN: &str = "receiver-token-1";

/// What the receiver saw: every event id in arrival order, with the `writer` of its details.
#[derive(Default)]
struct Received {
    events: Vec<(i64, String)>,
    /// Answer 503 (Retry-After: 1) to this many requests first.
    unavailable: usize,
    refused_tokens: usize,
}

type Shared = Arc<Mutex<Received>>;

async fn ingest(
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
    seen: web::Data<Shared>,
) -> HttpResponse {
    let mut seen = seen.lock().unwrap();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        seen.refused_tokens += 1;
        return HttpResponse::Unauthorized().finish();
    }
    if seen.unavailable > 0 {
        seen.unavailable -= 1;
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .finish();
    }
    assert_eq!(body["source"], "sspr.contoso.test");
    for e in body["events"].as_array().unwrap() {
        seen.events.push((
            e["id"].as_i64().unwrap(),
            e["details"]["writer"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    HttpResponse::Ok().finish()
}

fn server_tls(dir: &Path) -> rustls::ServerConfig {
    let chain = rustls_pki_types::CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

/// The receiver on `port` until the handle is stopped.
fn receiver(dir: &Path, port: u16, seen: Shared) -> actix_web::dev::ServerHandle {
    let tls = server_tls(dir);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(seen.clone()))
            .route("/ingest", web::post().to(ingest))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .bind_rustls_0_23(("127.0.0.1", port), tls)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

fn config(dir: &Path, port: u16, token: &str) -> WebhookConfig {
    WebhookConfig {
        url: format!("https://localhost:{port}/ingest"),
        bearer_token: Some(Secret::new(token.to_string())),
        tls: TlsMaterial {
            ca_pem: Some(std::fs::read(dir.join("ca.pem")).unwrap()),
            ..Default::default()
        },
        timeout: Duration::from_secs(5),
    }
}

fn ids(seen: &Shared) -> Vec<i64> {
    seen.lock().unwrap().events.iter().map(|e| e.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_every_event_across_a_receiver_outage() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("webhook");
    make_certs(&dir.0);
    let port = free_port();
    let seen: Shared = Arc::new(Mutex::new(Received {
        unavailable: 2,
        ..Default::default()
    }));
    let handle = receiver(&dir.0, port, seen.clone());
    let store = sqlite(&dir.0).await;
    let output = Arc::new(WebhookOutput::new(&config(&dir.0, port, TOKEN)).unwrap());
    let running = start(store.clone(), output, settings("instance-1"));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..300 {
                ids.extend(append(&store, n..n + 1, "w").await);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        })
    };
    wait_for(30, "the first events", || ids(&seen).len() >= 40).await;
    handle.stop(false).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _restarted = receiver(&dir.0, port, seen.clone());
    let written = writer.await.unwrap();
    wait_for(60, "every event", || {
        let got: std::collections::BTreeSet<i64> = ids(&seen).into_iter().collect();
        written.iter().all(|id| got.contains(id))
    })
    .await;
    running.stop().await;
    let (order, repeats) = first_arrivals(&ids(&seen));
    assert_eq!(order, written, "every event, in audit order");
    eprintln!("webhook: {} events, {repeats} sent again", written.len());
    assert_eq!(
        seen.lock().unwrap().unavailable,
        0,
        "503 + Retry-After was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_delivers_nothing_and_keeps_everything_queued() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("webhook-token");
    make_certs(&dir.0);
    let port = free_port();
    let seen: Shared = Arc::default();
    let _h = receiver(&dir.0, port, seen.clone());
    let store = sqlite(&dir.0).await;
    append(&store, 0..10, "t").await;
    let output = Arc::new(WebhookOutput::new(&config(&dir.0, port, "wrong")).unwrap());
    let running = start(store.clone(), output, settings("instance-1"));
    wait_for(30, "two refusals", || {
        seen.lock().unwrap().refused_tokens >= 2
    })
    .await;
    running.stop().await;
    assert!(ids(&seen).is_empty());
    assert_eq!(
        store.forward_backlog("webhook", 100).await.unwrap(),
        Some(10)
    );
    // Then with the right token, from the same cursor.
    let output = Arc::new(WebhookOutput::new(&config(&dir.0, port, TOKEN)).unwrap());
    let running = start(store.clone(), output, settings("instance-1"));
    wait_for(30, "the queued events", || ids(&seen).len() >= 10).await;
    running.stop().await;
}

#[test]
fn webhook_settings_that_would_leak_or_break_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("webhook-config");
    make_certs(&dir.0);
    for (url, why) in [
        ("http://siem.contoso.com/ingest", "unencrypted"),
        ("ftp://siem.contoso.com/", "https"),
        ("https://user:pw@siem.contoso.com/", "credentials"),
    ] {
        let mut c = config(&dir.0, 1, TOKEN);
        c.url = url.into();
        let err = WebhookOutput::new(&c).err().unwrap().to_string();
        assert!(err.contains(why), "{url}: {err}");
    }
    let mut c = config(&dir.0, 1, TOKEN);
    c.url = "http://127.0.0.1:8080/ingest".into();
    assert!(WebhookOutput::new(&c).is_ok(), "plain HTTP to this host");
    // A token file with a line break in it would fail every delivery: refused at start.
    for token in ["abc\r\nX-Injected: 1", ""] {
        let c = config(&dir.0, 1, token);
        let err = WebhookOutput::new(&c).err().unwrap().to_string();
        assert!(err.contains("bearer token"), "{err}");
    }
}

/// Nobody listens: the failure names the cause, not only "error sending request".
#[tokio::test]
async fn a_webhook_failure_says_what_failed() {
    use latchkey_forward::Output as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("webhook-cause");
    make_certs(&dir.0);
    let port = free_port();
    let output = WebhookOutput::new(&config(&dir.0, port, TOKEN)).unwrap();
    let record = latchkey_store::AuditRecord {
        id: latchkey_store::AuditId(1),
        event: event(1, "x"),
    };
    let err = output
        .deliver(&[record], "s")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("localhost:{port}/ingest")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

/// Three instances share one PostgreSQL database; writers append through each of them. One
/// instance holds the lease at a time; when it dies (its task aborted, lease not released),
/// another takes over after the lease runs out. Every event arrives, and each writer's events
/// arrive in the order written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_instances_on_postgresql_forward_through_one_and_survive_its_death() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("webhook-pg");
    make_certs(&dir.0);
    let port = free_port();
    let seen: Shared = Arc::default();
    let _h = receiver(&dir.0, port, seen.clone());
    let schema = PgSchema::create().await;
    let cipher = cipher();
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..3 {
        let pg = PostgresStore::open(&PostgresOptions::new(&schema.url), cipher.clone())
            .await
            .unwrap();
        stores.push(Arc::new(pg));
    }
    let mut running: Vec<Option<Running>> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let output = Arc::new(WebhookOutput::new(&config(&dir.0, port, TOKEN)).unwrap());
            Some(start(s.clone(), output, settings(&format!("instance-{i}"))))
        })
        .collect();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let store = stores[w % 3].clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..60 {
                    ids.extend(append(&store, n..n + 1, &format!("w{w}")).await);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                ids
            })
        })
        .collect();
    wait_for(30, "the first events", || ids(&seen).len() >= 50).await;
    // The holder dies without giving its lease up; another takes over once it runs out.
    let holder = schema.holder("webhook").await;
    let index: usize = holder.trim_start_matches("instance-").parse().unwrap();
    running[index].take().unwrap().task.abort();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while schema.holder("webhook").await == holder {
        assert!(
            std::time::Instant::now() < deadline,
            "nobody took over from {holder}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    // Written after the takeover, through every instance (the dead one's store included: only
    // its forwarder died).
    for (i, store) in stores.iter().enumerate() {
        written.extend(append(store, 0..5, &format!("late{i}")).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: std::collections::BTreeSet<i64> = ids(&seen).into_iter().collect();
        let missing: Vec<i64> = written
            .iter()
            .copied()
            .filter(|id| !got.contains(id))
            .collect();
        if missing.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "missing {missing:?}; holder {}; positions {}",
                schema.holder("webhook").await,
                schema.positions(&missing).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in running.into_iter().flatten() {
        r.stop().await;
    }
    let events = seen.lock().unwrap().events.clone();
    let (order, repeats) = first_arrivals(&events.iter().map(|e| e.0).collect::<Vec<_>>());
    assert_eq!(order.len(), written.len());
    for name in (0..6).map(|w| format!("w{w}")) {
        let mine: Vec<i64> = order
            .iter()
            .copied()
            .filter(|id| events.iter().any(|(i, n)| i == id && *n == name))
            .collect();
        assert!(
            mine.windows(2).all(|p| p[0] < p[1]),
            "{name} in the order written"
        );
        assert_eq!(mine.len(), 60);
    }
    for i in 0..3 {
        let late = events
            .iter()
            .filter(|(_, n)| *n == format!("late{i}"))
            .count();
        assert!(late >= 5, "late{i}");
    }
    eprintln!(
        "webhook/PostgreSQL: {} events from 3 instances, {repeats} sent again after the takeover",
        written.len()
    );
    schema.drop_now().await;
}
