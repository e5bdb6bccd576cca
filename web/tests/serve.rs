//! `latchkey serve` starts and answers its health check.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_healthz() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[portal]\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n[policies]\ndir = \"{}\"\n",
            policies.display()
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut body = None;
    for _ in 0..100 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            body = Some((r.status().as_u16(), r.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let index = http.get(format!("http://127.0.0.1:{port}/")).send().await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(body, Some((200, "ok".to_string())));
    let index = index.unwrap();
    assert_eq!(index.headers()["cache-control"], "no-store");
    assert!(
        index.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_to_start_with_an_invalid_policy_and_says_where() {
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("policies")).unwrap();
    dir.write("policies/staff.toml", "[[policy]]\nname = \"Staff\"\npriority = 1\nactions = [\"reset\"]\nmethods = [\"email\"]\nmethods_required = 2\n");
    let cfg = config_for(
        &sim,
        &dir,
        "[store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n",
    );
    let out = latchkey(&["serve", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("staff.toml:6:") && err.contains("methods_required"),
        "{err}"
    );
    // The key file was created private before the policies were read.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.0.join("latchkey.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A `[delegated]` table whose token file does not exist yet (nobody has signed in for it) does
/// not stop the start: the portal runs without writeback and says once how to set it up.
#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_while_the_delegated_token_file_is_missing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[portal]\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n[policies]\ndir = \"{}\"\n\
             [delegated]\ntoken_file = \"delegated.token\"\n",
            policies.display()
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut body = None;
    for _ in 0..100 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            body = Some((r.status().as_u16(), r.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(body, Some((200, "ok".to_string())), "{err}");
    assert!(!dir.0.join("delegated.token").exists());
    let warning: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("delegated credential is not set up"))
        .collect();
    assert_eq!(warning.len(), 1, "{err}");
    assert!(
        warning[0].contains("WARN")
            && warning[0].contains("/admin/connection")
            && warning[0].contains("latchkey delegate"),
        "{err}"
    );
}
