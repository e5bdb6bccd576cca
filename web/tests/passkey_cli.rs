//! `latchkey passkey list|remove|provision` and the passkey rows of `latchkey check`, against the
//! simulated tenant: models from the shipped AAGUID table, removal audited, provisioning without
//! a key refused with a clear message (and audited), the FIDO2 method policy read and explained.

use latchkey_entra_sim::Fixture;
use latchkey_entra_sim::fixture::Fido2PolicyFixture;

use crate::helpers::*;

const MANY: &str = "many.methods@contoso.com";
/// YubiKey 5 Series with NFC (the shipped table's first row).
const YUBIKEY_5_NFC: &str = "2fc0579f-8113-47ea-b116-bb5a8db9202a";

/// The test tenant, with many.methods' security key reporting a real model id and no model name
/// (Entra leaves `model` empty for keys it has no metadata for).
fn fixture() -> Fixture {
    let mut f = Fixture::test();
    let user = f.users.iter_mut().find(|u| u.upn == MANY).unwrap();
    let key = &mut user.methods.fido2[0];
    key.aaguid = Some(YUBIKEY_5_NFC.into());
    key.model = None;
    f
}

/// The portal's store in the test directory, so the CLI's audit events can be read back.
fn store_config(dir: &TempDir) -> String {
    format!(
        "[store]\ndatabase_url = \"sqlite://{}\"\nkey_file = \"{}\"\n",
        dir.0.join("latchkey.db").display(),
        dir.0.join("latchkey.key").display()
    )
}

async fn audit_types(dir: &TempDir) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.0.join("latchkey.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT event_type || ':' || outcome FROM audit_events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_models_and_remove_deletes_and_audits() {
    let sim = sim(fixture()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, &store_config(&dir));
    let cfg = cfg.to_str().unwrap();
    let out = latchkey(&["passkey", "list", MANY, "--config", cfg, "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed[0]["display_name"], "Red key");
    assert_eq!(listed[0]["model"], "YubiKey 5 Series with NFC");
    let id = listed[0]["id"].as_str().unwrap().to_string();

    let wrong = latchkey(
        &["passkey", "remove", MANY, "not-an-id", "--config", cfg],
        &[],
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("no passkey with the id"),
        "{}",
        stderr(&wrong)
    );
    let removed = latchkey(&["passkey", "remove", MANY, &id, "--config", cfg], &[]).await;
    assert_eq!(removed.status.code(), Some(0), "{}", stderr(&removed));
    assert!(
        stdout(&removed).contains("YubiKey 5 Series with NFC"),
        "{}",
        stdout(&removed)
    );
    let after = latchkey(&["passkey", "list", MANY, "--config", cfg], &[]).await;
    assert!(
        stdout(&after).contains("has no passkeys"),
        "{}",
        stdout(&after)
    );
    assert_eq!(
        audit_types(&dir).await,
        [
            "passkey.removed:denied",
            "passkey.removed:started",
            "passkey.removed:success"
        ]
    );

    let nobody = latchkey(
        &["passkey", "list", "nobody@contoso.com", "--config", cfg],
        &[],
    )
    .await;
    assert_eq!(nobody.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_without_a_security_key_says_so_and_is_audited() {
    let sim = sim(fixture()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, &store_config(&dir));
    let out = latchkey(
        &[
            "passkey",
            "provision",
            MANY,
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // With USB support (feature hid, as tests/run builds it) there is no key on this machine;
    // without, the build says how to get it. Either way nothing reached Entra.
    assert!(
        err.contains("no FIDO2 security key found")
            || err.contains("without USB security-key support"),
        "{err}"
    );
    assert_eq!(
        audit_types(&dir).await,
        ["passkey.provisioned:started", "passkey.provisioned:failure"]
    );
    let listed = latchkey(
        &["passkey", "list", MANY, "--config", cfg.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(stdout(&listed).contains("Red key"), "{}", stdout(&listed));
}

#[tokio::test(flavor = "multi_thread")]
async fn privileged_accounts_need_allow_privileged() {
    let sim = sim(fixture()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, &store_config(&dir));
    let cfg = cfg.to_str().unwrap();
    // A Global Administrator in the test tenant.
    let admin = "admin@contoso.com";
    let out = latchkey(&["passkey", "provision", admin, "--config", cfg], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--allow-privileged"),
        "{}",
        stderr(&out)
    );
    // Refused before anything started, and recorded as such.
    assert_eq!(audit_types(&dir).await, ["passkey.provisioned:denied"]);
    let out = latchkey(
        &[
            "passkey",
            "provision",
            admin,
            "--config",
            cfg,
            "--allow-privileged",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !stderr(&out).contains("--allow-privileged"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_the_passkey_policy_and_names_the_switch_when_self_service_is_off() {
    let sim = sim(fixture()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "[features]\npasskey_provisioning = true\n");
    let cfg = cfg.to_str().unwrap();
    let row = |report: &serde_json::Value, id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no row {id}"))
    };
    let out = latchkey(&["check", "--config", cfg, "--json"], &[]).await;
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(row(&report, "passkeys.provision")["status"], "ok");
    assert_eq!(row(&report, "passkeys.policy")["status"], "ok");
    assert_eq!(row(&report, "passkeys.policy")["probe"], "confirmed");

    sim.tenant()
        .set_fido2_policy(Fido2PolicyFixture {
            self_service_registration_allowed: false,
            ..Fido2PolicyFixture::default()
        })
        .unwrap();
    let out = latchkey(&["check", "--config", cfg, "--json"], &[]).await;
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let policy = row(&report, "passkeys.policy");
    assert_eq!(policy["status"], "missing");
    let fix = policy["fix"].as_str().unwrap();
    assert!(fix.contains("Allow self-service set up = Yes"), "{fix}");

    // Without the feature the rows are not required.
    let off = config_for(&sim, &dir, "");
    let out = latchkey(&["check", "--config", off.to_str().unwrap(), "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
