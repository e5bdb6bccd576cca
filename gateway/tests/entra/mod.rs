//! `entra_writeback` against the Entra simulator (which, like Graph, serves
//! onPremisesSynchronization only to delegated callers and counts users with an advanced query).

use latchkey_entra_sim::{Fixture, Sim};
use latchkey_gateway::checks::Status;
use latchkey_gateway::checks::entra::{EntraSettings, check};
use latchkey_types::Secret;

const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "test-secret-value";

async fn sim() -> (Sim, usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fixture = Fixture::test();
    let synced = fixture
        .users
        .iter()
        .filter(|u| u.on_premises_sync_enabled == Some(true))
        .count();
    (Sim::start(fixture).await.expect("simulator starts"), synced)
}

fn settings(sim: &Sim, secret: &str) -> EntraSettings {
    EntraSettings {
        tenant_id: sim.tenant_id(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(Secret::new(secret.into())),
        certificate: None,
        authority_host: Some(sim.base_url()),
        graph_base_url: Some(sim.graph_base_url()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writeback_state_needs_a_delegated_read_and_synced_users_are_counted() {
    let (sim, synced) = sim().await;
    assert!(synced > 0, "the test tenant has synced users");
    let c = check(Some(&Ok(settings(&sim, SECRET)))).await;
    let evidence = c.evidence.join("\n");
    assert_eq!(c.status, Status::Warn, "{evidence}");
    assert!(evidence.contains("only delegated"), "{evidence}");
    assert!(
        evidence.contains(&format!("{synced} synced users in the tenant")),
        "{evidence}"
    );
    assert!(c.fix.unwrap().contains("On-premises integration"));
    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/directory/onPremisesSynchronization") && r.status == 403),
        "asked Graph, which refused the app-only read"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_app_secret_fails_the_check_and_no_table_skips_it() {
    let (sim, _) = sim().await;
    let c = check(Some(&Ok(settings(&sim, "not-the-secret")))).await;
    assert_eq!(c.status, Status::Fail, "{:?}", c.evidence);
    assert_eq!(check(None).await.status, Status::Skip);
    let bad = check(Some(&Err("entra.client_id is required".into()))).await;
    assert_eq!(bad.status, Status::Fail);
    sim.stop().await;
}

#[test]
fn the_entra_table_is_read_like_the_portal_reads_it() {
    let dir = std::env::temp_dir().join(format!("latchkey-gw-entra-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret.txt"), "s3cret\n").unwrap();
    let t: toml::Table = toml::from_str(
        "tenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"x\"\nclient_secret_file = \"secret.txt\"\n\
         graph_base_url = \"http://127.0.0.1:1/v1.0\"\n[extra]\nignored = true\n",
    )
    .unwrap();
    let s = EntraSettings::from_table(&t, &dir).unwrap();
    assert_eq!(s.client_secret.unwrap().expose(), "s3cret");
    assert_eq!(s.graph_base_url.as_deref(), Some("http://127.0.0.1:1/v1.0"));
    let t: toml::Table = toml::from_str("tenant_id = \"t\"\nclient_id = \"x\"\n").unwrap();
    assert!(EntraSettings::from_table(&t, &dir).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
