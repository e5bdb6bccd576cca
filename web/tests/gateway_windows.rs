//! The gateway's Windows build, as hybrid customers run it: `latchkey-gateway.exe`, cross-built
//! by tests/windows/build.sh, run under Wine against the Samba AD DC over LDAPS and against a
//! test portal. Its paths are Windows paths (`Z:\…`, Wine's view of `/`). tests/run sets
//! LATCHKEY_TEST_GATEWAY_EXE (the exe, with the test-only `bcryptprimitives.dll` shim beside it:
//! Wine 8 lacks it), LATCHKEY_TEST_WINE and LATCHKEY_TEST_WINEPREFIX; without them these tests
//! fail, never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::gateway::{
    AdUser, audit, carla_unlocks, file, portal_for, register, until_connected, var,
};
use crate::helpers::TempDir;

fn must(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run tests/run (it builds the Windows gateway and prepares Wine)")
    })
}

/// `wine64 latchkey-gateway.exe ARGS` in the prepared prefix, quiet.
fn exe(args: &[&str]) -> Command {
    let mut c = Command::new(must("LATCHKEY_TEST_WINE"));
    c.arg(must("LATCHKEY_TEST_GATEWAY_EXE"))
        .args(args)
        .env("WINEPREFIX", must("LATCHKEY_TEST_WINEPREFIX"))
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .stdin(Stdio::null());
    c
}

/// `path` as the Windows program sees it (Wine maps `/` to drive Z:).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// The `[ad]` table for the lab's delegated connector, in Windows paths ('literal' strings).
fn ad_table(dir: &TempDir) -> String {
    let password = dir.write("ad.pw", &file("LATCHKEY_TEST_CONNECTOR_PASSWORD_FILE"));
    let ca = PathBuf::from(var("LATCHKEY_TEST_CA_FILE"));
    format!(
        "[ad]\nurl = \"{}\"\nbind_dn = \"{}\"\npassword_file = '{}'\nca_file = '{}'\nconnector_account = \"{}\"\n",
        var("LATCHKEY_TEST_LDAP_URL"),
        var("LATCHKEY_TEST_CONNECTOR_DN"),
        windows_path(&password),
        windows_path(&ca),
        var("LATCHKEY_TEST_CONNECTOR"),
    )
}

/// The gateway under Wine, killed when a failed assertion ends the test early.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn output(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("wine runs"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_windows_gateway_checks_the_domain_over_ldaps() {
    let help = output(exe(&["--help"])).await;
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("Latchkey on-premises gateway"),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
    let dir = TempDir::new();
    // Scoped to the lab's seeded OU: other tests add OUs with broken inheritance on purpose.
    let scoped = format!(
        "{}base_dn = \"OU=LabUsers,{}\"\n",
        ad_table(&dir),
        var("LATCHKEY_TEST_BASE_DN")
    );
    let config = dir.write("gateway.toml", &scoped);
    let check = output(exe(&[
        "check",
        "--json",
        "--config",
        &windows_path(&config),
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let status = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].as_str().unwrap_or_default().to_string())
    };
    // The certificate was verified against the CA file named by its Windows path.
    assert_eq!(
        status("ldaps_certificate").as_deref(),
        Some("pass"),
        "{stdout}"
    );
    assert_eq!(
        status("reset_password").as_deref(),
        Some("pass"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_windows_gateway_takes_an_unlock_job_from_the_portal() {
    let user = AdUser::create("win").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let dir = TempDir::new();
    let credential = register(&demo, "site-win").await;
    let credential_file = dir.write("gateway.credential", credential.expose());
    let config = dir.write(
        "gateway.toml",
        &format!(
            "{}\n[portal]\nurl = \"{}\"\ncredential_file = '{}'\npoll_seconds = 2\n\n[jobs]\nunlock = true\n",
            ad_table(&dir),
            demo.portal_url(),
            windows_path(&credential_file),
        ),
    );
    let mut agent = Running(Some(
        exe(&["run", "--config", &windows_path(&config)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wine starts the gateway"),
    ));
    until_connected(&demo).await;

    let page = carla_unlocks(&demo).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("has been unlocked in your organisation"),
        "{}",
        page.body
    );
    assert_eq!(user.lockout_time().await, 0);
    user.bind(crate::gateway::PASSWORD)
        .await
        .expect("the right password works again");
    let result = audit(&demo, "gateway.job.result").await;
    assert_eq!(result.len(), 1);
    assert_eq!(result[0].outcome, latchkey_store::Outcome::Success);
    assert_eq!(result[0].actor, "gateway:site-win");

    let mut child = agent.0.take().expect("still running");
    child.kill().expect("the gateway stops");
    let stopped = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&stopped.stderr);
    // What it logged is about jobs, never the credential or the directory password.
    assert!(!log.contains(credential.expose()), "{log}");
    assert!(
        !log.contains(&file("LATCHKEY_TEST_CONNECTOR_PASSWORD_FILE")),
        "{log}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    demo.stop().await;
    user.remove().await;
}
