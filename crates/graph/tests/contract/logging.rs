//! The HTTP debug log: useful (method, URL, status, ids, bodies) and free of secrets.

use std::io::Write;
use std::sync::{Arc, Mutex};

use latchkey_graph::{GraphClient, TapRequest, UserRef};
use latchkey_types::Secret;

use super::support::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn debug_log_shows_the_exchange_but_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (sim, f) = start().await;
    let mut cfg = config(&sim, &f, secret());
    cfg.http_debug = true;
    let c = GraphClient::new(cfg).unwrap();
    let chosen = "Chosen-Passw0rd-For-Log-Test";
    c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    c.find_user("paddy.home@example.org").await.unwrap();
    c.set_password(&oid(TARGET), &Secret::new(chosen.into()), false)
        .await
        .unwrap();
    let tap = c
        .create_temporary_access_pass(
            &oid(TARGET),
            &TapRequest {
                lifetime_in_minutes: Some(60),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Delegated: code redemption, refresh, reset with a generated password.
    let upn = format!("auth.admin@{}", domain(&f));
    let (pending, code, _) = sign_in(&sim, &f, &upn, ADMIN_PASSWORD).await;
    let mut dcfg = config(&sim, &f, secret());
    dcfg.http_debug = true;
    let tokens = pending.redeem(&dcfg, &code).await.unwrap();
    let rt = tokens.refresh_token.clone().unwrap();
    let d = GraphClient::with_delegated(dcfg, rt.clone(), delegated_scopes(), None).unwrap();
    let out = d.reset_password(&oid(TARGET), None).await.unwrap();
    let generated = out.new_password.unwrap();

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The secrets, as the simulator saw them on the wire.
    let mut secrets: Vec<String> = vec![
        CLIENT_SECRET.into(),
        chosen.into(),
        tap.pass.expose().clone(),
        code.expose().clone(),
        pending.pkce.verifier().expose().clone(),
        rt.expose().clone(),
        tokens.access_token.expose().clone(),
        generated.expose().clone(),
    ];
    if let Some(id) = &tokens.id_token {
        secrets.push(id.expose().clone());
    }
    for r in sim.requests() {
        if let Some(a) = r.header("authorization") {
            secrets.push(a.trim_start_matches("Bearer ").to_string());
        }
        if let Some(rt) = r.form_param("refresh_token") {
            secrets.push(rt);
        }
    }
    for s in &secrets {
        assert!(s.len() >= 6);
        assert!(
            !log.contains(s.as_str()),
            "secret leaked into the debug log: {}…",
            &s[..4]
        );
    }
    // Contact data is masked.
    for pii in [
        "paddy.home@",
        &format!("o'brien@{}", domain(&f)),
        "+353 871234567",
    ] {
        assert!(!log.contains(pii), "personal data in the debug log: {pii}");
    }
    assert!(log.contains("p***@example.org"));
    // And it is still a useful log.
    assert!(log.contains("latchkey_graph::http"), "{log}");
    assert!(log.contains("client_request_id"));
    assert!(log.contains("status=204"));
    assert!(log.contains("[redacted]"));
    assert!(log.contains(&format!("/users/{OBRIEN}")));
    assert!(log.contains("elapsed_ms"));
}
