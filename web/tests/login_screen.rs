//! `latchkey login-screen assets` from a real configuration file: lock-screen images whose QR
//! code (read back with zbarimg) opens the configured portal, the logon message naming its
//! address, and — only with `[kiosk]` on — the kiosk account's Assigned Access configurations on
//! the portal's kiosk page (their schema check is in crates/loginscreen).

use latchkey_entra_sim::Fixture;

use crate::helpers::{TempDir, config_for, latchkey, sim, stderr, stdout};

const PORTAL: &str = "https://reset.contoso.com";

async fn assets(extra: &str, args: &[&str]) -> (TempDir, std::path::PathBuf, String) {
    let sim = sim(Fixture::demo()).await;
    let dir = TempDir::new();
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[portal]\npublic_url = \"{PORTAL}/\"\n\n[branding]\nname = \"Contoso\"\ncolour = \"#7a1f5c\"\n{extra}"
        ),
    );
    let out = dir.0.join("assets");
    let mut all = vec![
        "login-screen",
        "assets",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let run = latchkey(&all, &[]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    (dir, out, stdout(&run))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_assets_lead_to_the_configured_portal() {
    let (_dir, out, listed) = assets(
        "\n[kiosk]\nenabled = true\nidle_seconds = 90\n",
        &["--kiosk-account", "CONTOSO\\kiosk-reset"],
    )
    .await;
    for name in [
        "lockscreen-1920x1080.png",
        "lockscreen-3840x2160.png",
        "lockscreen-1280x1024.png",
        "logon-message.txt",
        "logon-message.reg",
        "assigned-access-shared-pc.xml",
        "assigned-access-kiosk-device.xml",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
        assert!(listed.contains(name), "{name} not listed: {listed}");
    }
    let decoded = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(out.join("lockscreen-1920x1080.png"))
        .output()
        .expect("zbarimg (Debian's zbar-tools) runs");
    assert_eq!(
        String::from_utf8_lossy(&decoded.stdout).trim(),
        format!("{PORTAL}/")
    );
    let message = std::fs::read_to_string(out.join("logon-message.txt")).unwrap();
    assert!(message.contains("Forgot your password or locked out?"));
    assert!(
        message.contains("open reset.contoso.com on your phone"),
        "{message}"
    );
    let shared = std::fs::read_to_string(out.join("assigned-access-shared-pc.xml")).unwrap();
    assert!(shared.contains("--kiosk https://reset.contoso.com/kiosk --edge-kiosk-type=fullscreen --kiosk-idle-timeout-minutes=3"), "{shared}");
    assert!(shared.contains("<Account>CONTOSO\\kiosk-reset</Account>"));
    let device = std::fs::read_to_string(out.join("assigned-access-kiosk-device.xml")).unwrap();
    assert!(device.contains("<AutoLogonAccount rs5:DisplayName=\"Reset password\" />"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_kiosk_mode_there_is_no_kiosk_configuration_and_german_words_on_request() {
    let (_dir, out, listed) = assets("", &["--language", "de"]).await;
    assert!(!out.join("assigned-access-shared-pc.xml").exists());
    assert!(listed.contains("[kiosk] is not enabled"), "{listed}");
    let message = std::fs::read_to_string(out.join("logon-message.txt")).unwrap();
    assert!(
        message.contains("Passwort vergessen oder Konto gesperrt?"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_portal_address_phones_cannot_open_or_a_bad_account_is_refused() {
    let sim = sim(Fixture::demo()).await;
    let dir = TempDir::new();
    let out = dir.0.join("assets");
    for (extra, args, expect) in [
        (
            "[portal]\npublic_url = \"http://reset.contoso.com\"\n",
            vec![],
            "portal.public_url",
        ),
        ("", vec![], "portal.public_url"),
        (
            "[portal]\npublic_url = \"https://reset.contoso.com\"\n[branding]\ncolour = \"#ffd700\"\n",
            vec![],
            "branding.colour",
        ),
        (
            "[portal]\npublic_url = \"https://reset.contoso.com\"\n",
            vec!["--kiosk-account", "CONTOSO\\ki<osk"],
            "kiosk account",
        ),
    ] {
        let cfg = config_for(&sim, &dir, extra);
        let mut all = vec![
            "login-screen",
            "assets",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        all.extend(args);
        let run = latchkey(&all, &[]).await;
        assert!(!run.status.success(), "{extra}");
        assert!(stderr(&run).contains(expect), "{extra}: {}", stderr(&run));
        assert!(
            !out.join("lockscreen-1920x1080.png").exists(),
            "{extra}: written anyway"
        );
    }
}
