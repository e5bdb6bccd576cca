//! `latchkey serve` with its own TLS (`[server] tls_cert_file`, `tls_key_file`): HTTPS with HSTS,
//! a replaced certificate served from the next connection on, and a broken replacement that
//! leaves the previous certificate in use.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::helpers::*;

/// A self-signed P-256 certificate for 127.0.0.1 (openssl, as an operator would make one).
fn make_pair(dir: &Path, cert: &str, key: &str) {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // A server certificate, not a CA (clients refuse a CA as the end entity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(dir.join(key))
        .arg("-out")
        .arg(dir.join(cert))
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

/// A fresh client (a new connection, so a new handshake) trusting `cert`; the certificate the
/// server presented and the response.
async fn fetch(port: u16, cert: &Path, path: &str) -> Option<(Vec<u8>, reqwest::Response)> {
    let root = reqwest::Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .tls_info(true)
        .build()
        .unwrap();
    let r = match client
        .get(format!("https://127.0.0.1:{port}{path}"))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fetch {path}: {e:?}");
            return None;
        }
    };
    let peer = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec)?;
    Some((peer, r))
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_speaks_https_and_follows_a_replaced_certificate() {
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let dir = TempDir::new();
    make_pair(&dir.0, "tls.pem", "tls.key");
    make_pair(&dir.0, "next.pem", "next.key");
    let (port, redirect_port) = (free_port(), free_port());
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntls_cert_file = \"tls.pem\"\ntls_key_file = \"tls.key\"\n\
             http_redirect_listen = \"127.0.0.1:{redirect_port}\"\n\
             [portal]\npublic_url = \"https://127.0.0.1:{port}\"\n\
             [store]\ndatabase_url = \"sqlite://latchkey.db\"\nkey_file = \"latchkey.key\"\n[policies]\ndir = \"{}\"\n",
            policies.display()
        ),
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let _serve = KillOnDrop(child);
    let first = dir.0.join("tls.pem");
    let mut up = None;
    for _ in 0..100 {
        up = fetch(port, &first, "/healthz").await;
        if up.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap_or_default();
    let (peer, health) = up.unwrap_or_else(|| panic!("serve answers over HTTPS:\n{log}"));
    assert_eq!(health.status(), 200);
    assert_eq!(peer, der(&first));
    let (_, home) = fetch(port, &first, "/").await.unwrap();
    assert!(
        home.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age="),
        "{:?}",
        home.headers()
    );
    // The redirect listener sends plain HTTP to the configured https:// origin, path and query
    // kept, whatever Host the request names; it serves nothing itself.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, want) in [
        (
            "/start?lang=de",
            format!("https://127.0.0.1:{port}/start?lang=de"),
        ),
        ("//evil.example/x", format!("https://127.0.0.1:{port}/")),
    ] {
        let r = no_follow
            .post(format!("http://127.0.0.1:{redirect_port}{path}"))
            .header("Host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308, "{path}");
        assert_eq!(r.headers()["location"].to_str().unwrap(), want, "{path}");
    }
    // Plain HTTP on the TLS port is no way in.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // A renewal replaces both files (as an ACME client does: new files moved into place).
    std::fs::rename(dir.0.join("next.key"), dir.0.join("tls.key")).unwrap();
    std::fs::rename(dir.0.join("next.pem"), dir.0.join("tls.pem")).unwrap();
    let (peer, health) = fetch(port, &first, "/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(peer, der(&first), "the new certificate is served");

    // A broken replacement: the previous certificate stays in use, and the log says so.
    let good = der(&first);
    std::fs::write(&first, "not a certificate").unwrap();
    let root = reqwest::Certificate::from_der(&good).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .tls_info(true)
        .build()
        .unwrap();
    let r = client
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("still served with the previous certificate");
    assert_eq!(r.status(), 200);
    let log = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    assert!(log.contains("TLS certificate not reloaded"), "{log}");
}
