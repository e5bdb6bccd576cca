//! `latchkey serve` with `[forwarding.webhook]`: audit events reach the receiver as they are
//! written, wait while it is down (the backlog and failures show in the metrics), and all arrive
//! once it is back; settings that would send events in clear over the network are refused.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use latchkey_entra_sim::Fixture;

use crate::helpers::*;

type Seen = Arc<Mutex<Vec<serde_json::Value>>>;

async fn ingest(req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>) -> HttpResponse {
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some("Bearer siem-token-42")
    {
        return HttpResponse::Unauthorized().finish();
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    seen.lock()
        .unwrap()
        .extend(v["events"].as_array().unwrap().iter().cloned());
    HttpResponse::NoContent().finish()
}

fn receiver(port: u16, seen: Seen) -> actix_web::dev::ServerHandle {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(seen.clone()))
            .route("/ingest", web::post().to(ingest))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// The value of the series `name`; `None` when it is not exported.
async fn metric(port: u16, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
}

async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_forwards_every_audit_event_to_the_webhook_across_an_outage() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let (port, metrics_port, siem_port) = (free_port(), free_port(), free_port());
    dir.write("siem-token", "siem-token-42\n");
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[portal]\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n\
             [policies]\ndir = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [forwarding]\nstart = \"beginning\"\nsource = \"sspr.contoso.test\"\n\
             [forwarding.webhook]\nurl = \"http://127.0.0.1:{siem_port}/ingest\"\n\
             bearer_token_file = \"siem-token\"\n",
            policies.display()
        ),
    );
    let seen: Seen = Arc::default();
    let siem = receiver(siem_port, seen.clone());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("LATCHKEY_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let _serve = KillOnDrop(child);
    let mut b = crate::portal::Browser::at(&format!("http://127.0.0.1:{port}"));
    eventually(30, "the portal answers", async || {
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
    })
    .await;
    for i in 0..3 {
        assert_eq!(
            b.identify(&format!("first{i}@contoso.com")).await.status,
            303
        );
    }
    eventually(30, "the first events", async || {
        seen.lock().unwrap().len() >= 3
    })
    .await;
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first["source"], "sspr.contoso.test");
    assert!(first["id"].is_i64() && first["event"].is_string() && first["at"].is_string());

    // The receiver goes away; events keep being written and wait.
    siem.stop(false).await;
    let before = seen.lock().unwrap().len();
    for i in 0..3 {
        assert_eq!(
            b.identify(&format!("second{i}@contoso.com")).await.status,
            303
        );
    }
    eventually(
        30,
        "the backlog and the failures in the metrics",
        async || {
            metric(
                metrics_port,
                "latchkey_audit_forward_backlog{output=\"webhook\"}",
            )
            .await
            .is_some_and(|v| v >= 3.0)
                && metric(
                    metrics_port,
                    "latchkey_audit_forward_failures_total{output=\"webhook\"}",
                )
                .await
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    assert_eq!(seen.lock().unwrap().len(), before);

    // Back: everything arrives, in order, none missing (SQLite ids have no gaps).
    let _siem = receiver(siem_port, seen.clone());
    eventually(90, "the backlog drains", async || {
        metric(
            metrics_port,
            "latchkey_audit_forward_backlog{output=\"webhook\"}",
        )
        .await
            == Some(0.0)
            && seen.lock().unwrap().len() > before
    })
    .await;
    let ids: Vec<i64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let mut first_seen = Vec::new();
    for id in &ids {
        if !first_seen.contains(id) {
            first_seen.push(*id);
        }
    }
    let expected: Vec<i64> = (1..=*first_seen.iter().max().unwrap()).collect();
    assert_eq!(first_seen, expected, "every event, in order");
    assert!(
        metric(
            metrics_port,
            "latchkey_audit_forwarded_total{output=\"webhook\"}"
        )
        .await
        .is_some_and(|v| v >= expected.len() as f64)
    );
    // What the SIEM got holds no typed account, and the log no token.
    let body = serde_json::to_string(&*seen.lock().unwrap()).unwrap();
    assert!(!body.contains("first0@contoso.com") && !body.contains("second2@contoso.com"));
    let log = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap();
    assert!(!log.contains("siem-token-42"), "{log}");
    assert!(log.contains("audit forwarding failed"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_in_clear_over_the_network_is_refused_at_start() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for (table, why) in [
        (
            "[forwarding.syslog]\nurl = \"udp://siem.contoso.com:514\"\n",
            "only to a relay on this host",
        ),
        (
            "[forwarding.webhook]\nurl = \"http://siem.contoso.com/ingest\"\n",
            "unencrypted",
        ),
        (
            "[forwarding.syslog]\nurl = \"tls://siem.contoso.com\"\nfacility = \"kern\"\n",
            "forwarding.syslog.facility",
        ),
    ] {
        let cfg = config_for(
            &sim,
            &dir,
            &format!(
                "[server]\nlisten = \"127.0.0.1:{}\"\n[store]\ndatabase_url = \"sqlite://latchkey.db\"\n\
                 key_file = \"latchkey.key\"\n[policies]\ndir = \"{}\"\n{table}",
                free_port(),
                policies.display()
            ),
        );
        let out = latchkey(&["serve", "--config", cfg.to_str().unwrap()], &[]).await;
        assert!(!out.status.success());
        assert!(stderr(&out).contains(why), "{table}: {}", stderr(&out));
    }
}
