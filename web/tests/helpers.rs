//! Runs the real `latchkey` binary against a simulator started in this process.

use std::path::{Path, PathBuf};
use std::process::Output;

use latchkey_entra_sim::{Fixture, Sim};

pub const TEST_CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const TEST_SECRET: &str = "test-secret-value";

/// A temp folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let d = std::env::temp_dir().join(format!(
            "latchkey-web-test-{}",
            latchkey_types::ObjectId::new_random()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn sim(fixture: Fixture) -> Sim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sim::start(fixture).await.expect("simulator starts")
}

/// A configuration file for the test app, with a secret file beside it. `extra` is appended.
pub fn config_for(sim: &Sim, dir: &TempDir, extra: &str) -> PathBuf {
    dir.write("secret.txt", &format!("{TEST_SECRET}\n"));
    dir.write(
        "latchkey.toml",
        &format!(
            "[entra]\ntenant_id = \"{}\"\nclient_id = \"{TEST_CLIENT_ID}\"\nclient_secret_file = \"secret.txt\"\n\
             authority_host = \"{}\"\ngraph_base_url = \"{}\"\n\n[graph]\nmax_attempts = 2\n{extra}\n",
            sim.tenant_id(),
            sim.base_url(),
            sim.graph_base_url()
        ),
    )
}

/// The repository's test key material (registered and unregistered certificates).
pub fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/entra-sim/keys")
}

/// Runs `latchkey ARGS` off the async runtime (the simulator keeps serving meanwhile).
pub async fn latchkey(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(&args)
            .env_remove("LATCHKEY_LOG")
            .envs(env)
            .output()
            .expect("latchkey runs")
    })
    .await
    .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A loopback port nothing listens on right now (for a `latchkey serve` the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process (a `latchkey serve`) killed when the test ends, passed or failed.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The audit events of one type a demo's store holds (among the first 1,000 the store lists).
pub async fn audit_of(
    demo: &latchkey::demo::Demo,
    event_type: &str,
) -> Vec<latchkey_store::AuditEvent> {
    demo.store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.event_type == event_type)
        .collect()
}
