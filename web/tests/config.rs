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

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_proxy_ranges_out_of_bounds_are_refused_with_their_key() {
    let dir = TempDir::new();
    let base = "[entra]\ntenant_id = \"11111111-1111-1111-1111-111111111111\"\n\
                client_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"x\"\n";
    for (extra, key) in [
        (
            "[limits]\nstarts_per_client = 2\n",
            "limits.starts_per_client",
        ),
        (
            "[limits]\nfailures_per_5_minutes = 50\n",
            "limits.failures_per_5_minutes",
        ),
        (
            "[limits]\ncodes_per_hour = 5\ncodes_per_day = 3\n",
            "limits.codes_per_day",
        ),
        (
            "[portal]\ntrusted_proxies = [\"0.0.0.0/0\"]\n",
            "portal.trusted_proxies",
        ),
        (
            "[portal]\ntrusted_proxies = [\"proxy.local\"]\n",
            "portal.trusted_proxies",
        ),
        (
            "[passwords]\nbreached_url = \"http://pwned.example.com\"\n",
            "passwords.breached_url",
        ),
        (
            "[portal]\nsignin_url = \"javascript:alert(1)\"\n",
            "portal.signin_url",
        ),
        ("[kiosk]\nidle_seconds = 5\n", "kiosk.idle_seconds"),
        ("[kiosk]\ndone_seconds = 3600\n", "kiosk.done_seconds"),
        (
            "[kiosk]\nhelpdesk = \"https://help.contoso.com\"\n",
            "kiosk.helpdesk",
        ),
        ("[kiosk]\nidle = 60\n", "idle"),
    ] {
        let cfg = dir.write("limits.toml", &format!("{base}{extra}"));
        let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{extra}");
        let err = stderr(&out);
        assert!(err.contains(key), "{extra}: {err}");
    }
}
