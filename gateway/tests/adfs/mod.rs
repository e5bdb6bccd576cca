//! `adfs_endpoints`: a local HTTPS server plays AD FS (the lab DC's certificate, valid for
//! 127.0.0.1 and issued by the lab CA): one endpoint enabled, one disabled (503, as AD FS
//! answers for a disabled endpoint), and a second "host" nobody listens on.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::{Scenario, check, status};

/// Serves HTTPS on a free loopback port until the test process ends; `disabled` paths get 503.
fn fake_adfs(dir: &Path, disabled: &'static [&'static str]) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                let path = text.split_whitespace().nth(1).unwrap_or("/");
                let status = if disabled.contains(&path) {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    tls,
                    "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

fn run_check(s: &Scenario, federation: &str) -> serde_json::Value {
    let path = s.config();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(federation);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-gateway"))
        .args(["check", "--json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn adfs_endpoints_are_reported_enabled_disabled_or_unreachable() {
    let s = Scenario::new("adfs").await;
    let tls_dir = s.lab.ca_file.parent().unwrap().to_path_buf();
    let ca = s.lab.ca_file.display().to_string();

    let all_on = fake_adfs(&tls_dir, &[]);
    let r = run_check(
        &s,
        &format!("[federation]\nadfs = [\"https://127.0.0.1:{all_on}\"]\nca_file = \"{ca}\"\n"),
    );
    assert_eq!(
        status(&r, "adfs_endpoints"),
        "pass",
        "{:#}",
        check(&r, "adfs_endpoints")
    );

    let ls_off = fake_adfs(&tls_dir, &["/adfs/ls/"]);
    let pw_off = fake_adfs(&tls_dir, &["/adfs/portal/updatepassword/"]);
    // A port nobody listens on (bound, then released).
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = run_check(
        &s,
        &format!("[federation]\nadfs = [\"https://127.0.0.1:{ls_off}\"]\nca_file = \"{ca}\"\n"),
    );
    let c = check(&r, "adfs_endpoints");
    assert_eq!(c["status"], "warn", "{c:#}");
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains("/adfs/ls/: disabled (HTTP 503)"),
        "{evidence}"
    );
    assert!(
        evidence.contains("/adfs/portal/updatepassword/: enabled"),
        "{evidence}"
    );
    assert!(c["fix"].as_str().unwrap().contains("Enable-AdfsEndpoint"));

    let r = run_check(
        &s,
        &format!(
            "[federation]\nadfs = [\"https://127.0.0.1:{pw_off}\", \"127.0.0.1:{dead}\"]\nca_file = \"{ca}\"\n"
        ),
    );
    let c = check(&r, "adfs_endpoints");
    assert_eq!(c["status"], "fail", "{c:#}");
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains("updatepassword/: disabled (HTTP 503)"),
        "{evidence}"
    );
    assert!(
        evidence.contains(&format!("127.0.0.1:{dead}/adfs/ls/: unreachable")),
        "{evidence}"
    );

    // Not trusted (system store only): unreachable, never silently accepted.
    let r = run_check(
        &s,
        &format!("[federation]\nadfs = [\"https://127.0.0.1:{all_on}\"]\n"),
    );
    let c = check(&r, "adfs_endpoints");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["evidence"].to_string().contains("unreachable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn federated_domains_and_their_adfs_host_come_from_entra() {
    use latchkey_ad::ldap::TrustSource;
    use latchkey_gateway::checks::Status;
    use latchkey_gateway::checks::adfs;
    use latchkey_gateway::checks::entra::EntraSettings;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let lab = crate::support::Lab::from_env();
    let port = fake_adfs(lab.ca_file.parent().unwrap(), &[]);
    let mut fixture = latchkey_entra_sim::Fixture::test();
    let fabrikam = fixture
        .domains
        .iter_mut()
        .find(|d| d.authentication_type == "Federated")
        .expect("the test tenant has a federated domain");
    let domain = fabrikam.name.clone();
    fabrikam.passive_sign_in_uri = Some(format!("https://127.0.0.1:{port}/adfs/ls/"));
    let sim = latchkey_entra_sim::Sim::start(fixture).await.unwrap();
    let entra = EntraSettings {
        tenant_id: sim.tenant_id(),
        client_id: "11111111-1111-1111-1111-111111111111".into(),
        client_secret: Some(latchkey_types::Secret::new("test-secret-value".into())),
        certificate: None,
        authority_host: Some(sim.base_url()),
        graph_base_url: Some(sim.graph_base_url()),
    };
    let found = adfs::federated_hosts(&entra).await.unwrap();
    assert_eq!(found, vec![(domain.clone(), format!("127.0.0.1:{port}"))]);
    assert!(
        sim.requests().iter().any(|r| r
            .path
            .ends_with(&format!("/domains/{domain}/federationConfiguration"))),
        "asked Graph for the federation configuration"
    );
    let c = adfs::check(
        &[],
        Some(Ok(found)),
        &TrustSource::CaFile(lab.ca_file.clone()),
    )
    .await;
    let evidence = c.evidence.join("\n");
    assert_eq!(c.status, Status::Pass, "{evidence}");
    assert!(evidence.contains(&format!(
        "Entra: {domain} is federated with 127.0.0.1:{port}"
    )));
    assert!(
        evidence.contains("/adfs/portal/updatepassword/: enabled"),
        "{evidence}"
    );
    // Entra unreadable and nothing configured: a warning that says what to grant.
    let c = adfs::check(&[], Some(Err("403".into())), &TrustSource::System).await;
    assert_eq!(c.status, Status::Warn);
    assert!(c.fix.unwrap().contains("Domain.Read.All"));
    sim.stop().await;
}
