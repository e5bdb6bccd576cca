//! Configuration errors reach the user with the file and the key, and exit code 2.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_is_named_with_its_file() {
    let dir = TempDir::new();
    let cfg = dir.write(
        "broken.toml",
        "[entra]\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"x\"\n",
    );
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("broken.toml") && err.contains("entra.tenant_id"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_is_named() {
    let out = latchkey(
        &[
            "user",
            "show",
            "x@contoso.com",
            "--config",
            "/nonexistent/latchkey.toml",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/latchkey.toml"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_is_refused_for_a_remote_host() {
    let dir = TempDir::new();
    dir.write("secret.txt", "x");
    let cfg = dir.write(
        "remote.toml",
        "[entra]\ntenant_id = \"t\"\nclient_id = \"11111111-1111-1111-1111-111111111111\"\n\
         client_secret_file = \"secret.txt\"\nauthority_host = \"http://login.example.com\"\n",
    );
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("http"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_variables_override_the_file() {
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    // The file's secret is right; the environment's wrong one must win.
    let out = latchkey(
        &["check", "--config", cfg.to_str().unwrap()],
        &[(
            "LATCHKEY__ENTRA__CLIENT_SECRET_FILE",
            dir.write("wrong.txt", "wrong").to_str().unwrap(),
        )],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("AADSTS7000215"));
}
