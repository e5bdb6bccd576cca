//! `latchkey check`: the permission table, its fixes, and its exit codes.

use latchkey_entra_sim::Fixture;

use crate::helpers::*;

fn test_app(f: &mut Fixture) -> &mut latchkey_entra_sim::fixture::AppFixture {
    f.apps
        .iter_mut()
        .find(|a| a.client_id == TEST_CLIENT_ID)
        .expect("test app in fixture")
}

#[tokio::test(flavor = "multi_thread")]
async fn passes_with_the_test_app_and_confirms_grants_with_real_calls() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("Result: everything required is granted."),
        "{text}"
    );
    for op in [
        "Look up users",
        "Read transitive group membership",
        "Read authentication methods",
        "Set passwords",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(op))
            .unwrap_or_else(|| panic!("no row for {op}:\n{text}"));
        assert!(line.starts_with("ok "), "{line}");
    }
    assert!(text.contains("role User Administrator"), "{text}");

    // The probes really went to Graph, each with its own client-request-id.
    let graph: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1.0/"))
        .collect();
    assert!(
        graph
            .iter()
            .any(|r| r.path == "/v1.0/users" && r.query.contains("filter")),
        "no user lookup probe"
    );
    assert!(
        graph
            .iter()
            .any(|r| r.path.ends_with("/transitiveMemberOf")),
        "no membership probe"
    );
    assert!(
        graph
            .iter()
            .any(|r| r.path.ends_with("/authentication/methods")),
        "no methods probe"
    );
    let mut ids: Vec<String> = graph
        .iter()
        .map(|r| header(r, "client-request-id").expect("client-request-id sent"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), graph.len(), "client-request-id reused");

    // The report's request count is what the simulator saw (token + Graph).
    let made: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests made: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("request count printed");
    let token_requests = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert_eq!(token_requests, 1, "one token for the whole check");
    assert_eq!(made, graph.len() + token_requests, "{text}");
}

fn header(r: &latchkey_entra_sim::RecordedRequest, name: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_permission_fails_with_the_fix() {
    let mut fixture = Fixture::test();
    test_app(&mut fixture)
        .application_permissions
        .retain(|p| !p.starts_with("UserAuthenticationMethod"));
    let sim = sim(fixture).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("Read authentication methods"))
        .expect("methods row");
    assert!(row.starts_with("MISSING"), "{row}");
    assert!(
        text.contains("Application permissions > UserAuthenticationMethod.Read.All, then \"Grant admin consent\""),
        "{text}"
    );
    assert!(
        text.contains("Result: something required is missing"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_directory_role_fails_with_the_fix() {
    let mut fixture = Fixture::test();
    test_app(&mut fixture).directory_roles.clear();
    let sim = sim(fixture).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap(), "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let row = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "password.write")
        .unwrap();
    assert_eq!(row["status"], "missing");
    assert_eq!(row["required"], true);
    assert!(
        row["fix"]
            .as_str()
            .unwrap()
            .contains("Roles and administrators > User Administrator"),
        "{row}"
    );
    assert_eq!(report["ok"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_optional_feature_that_is_off_does_not_fail_the_check() {
    let mut fixture = Fixture::test();
    test_app(&mut fixture)
        .application_permissions
        .retain(|p| p != "IdentityRiskyUser.ReadWrite.All");
    let sim = sim(fixture).await;
    let dir = TempDir::new();
    let off = config_for(&sim, &dir, "[features]\ndismiss_risk = false\n");
    let out = latchkey(&["check", "--config", off.to_str().unwrap(), "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let on = config_for(&sim, &dir, "");
    let out = latchkey(&["check", "--config", on.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("IdentityRiskyUser.ReadWrite.All"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_explained_and_never_printed() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    dir.write("secret.txt", "not-the-secret-xyz\n");
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Token       FAILED"), "{text}");
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(text.contains("client secret of app"), "{text}");
    assert!(!text.contains("not-the-secret-xyz") && !stderr(&out).contains("not-the-secret-xyz"));
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_credentials_work_with_ps256_and_rs256() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let keys = keys_dir();
    for alg in ["PS256", "RS256"] {
        let cfg = dir.write(
            "cert.toml",
            &format!(
                "[entra]\ntenant_id = \"{}\"\nclient_id = \"{TEST_CLIENT_ID}\"\ncertificate_file = \"{}\"\n\
                 private_key_file = \"{}\"\nauthority_host = \"{}\"\ngraph_base_url = \"{}\"\n[graph]\nassertion_algorithm = \"{alg}\"\n",
                sim.tenant_id(),
                keys.join("app-cert.pem").display(),
                keys.join("app-cert.key.pem").display(),
                sim.base_url(),
                sim.graph_base_url()
            ),
        );
        let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{alg}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains("(certificate)"));
    }
    let token_bodies: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .map(|r| r.body)
        .collect();
    assert_eq!(token_bodies.len(), 2);
    assert!(
        token_bodies
            .iter()
            .all(|b| b.contains("client_assertion=") && !b.contains("client_secret"))
    );

    // A certificate the app does not know is refused, with the fix.
    let cfg = dir.write(
        "other.toml",
        &format!(
            "[entra]\ntenant_id = \"{}\"\nclient_id = \"{TEST_CLIENT_ID}\"\ncertificate_file = \"{}\"\n\
             private_key_file = \"{}\"\nauthority_host = \"{}\"\ngraph_base_url = \"{}\"\n",
            sim.tenant_id(),
            keys.join("other-cert.pem").display(),
            keys.join("other-cert.key.pem").display(),
            sim.base_url(),
            sim.graph_base_url()
        ),
    );
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("upload the certificate"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_debug_log_shows_requests_but_no_secret_or_token() {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "http_debug = true\n");
    let out = latchkey(
        &["check", "--config", cfg.to_str().unwrap()],
        &[("LATCHKEY_LOG", "latchkey_graph=debug")],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let log = stderr(&out);
    assert!(
        log.contains("client-request-id") || log.contains("client_request_id"),
        "no debug log:\n{log}"
    );
    assert!(
        log.contains("/oauth2/v2.0/token"),
        "token request not logged:\n{log}"
    );
    assert!(!log.contains(TEST_SECRET), "secret in log");
    // Access tokens are JWTs: base64url JSON headers start with "eyJ".
    assert!(!log.contains("eyJ"), "token in log:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_within_the_budget() {
    use latchkey_entra_sim::{Fault, FaultKind};
    let sim = sim(Fixture::test()).await;
    sim.add_fault(Fault {
        method: None,
        path_contains: "/transitiveMemberOf".into(),
        kind: FaultKind::TooManyRequests {
            retry_after: Some("0".into()),
        },
        times: 1,
    });
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let calls = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/transitiveMemberOf"))
        .count();
    assert_eq!(calls, 2, "the 429 was retried once");
}

/// With `[forwarding]`, the check reaches each SIEM output without sending an event: a
/// webhook that takes an empty batch with the token is ok; a syslog receiver nobody runs fails
/// the check, named.
#[tokio::test(flavor = "multi_thread")]
async fn the_siem_outputs_are_reached_without_sending_an_event() {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let (siem_port, syslog_port) = (free_port(), free_port());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/ingest",
            web::post().to(move |req: HttpRequest, body: String| {
                let seen = seen.clone();
                async move {
                    let auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok());
                    if auth != Some("Bearer t0ken") {
                        return HttpResponse::Unauthorized().finish();
                    }
                    seen.lock().unwrap().push(body);
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", siem_port))
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    dir.write("siem-token", "t0ken\n");
    let cfg = config_for(
        &sim,
        &dir,
        &format!(
            "[forwarding.webhook]\nurl = \"http://127.0.0.1:{siem_port}/ingest\"\n\
             bearer_token_file = \"siem-token\"\n\
             [forwarding.syslog]\nurl = \"relp://127.0.0.1:{syslog_port}\"\n"
        ),
    );
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{text}"))
            .to_string()
    };
    assert!(line("webhook").starts_with("ok "), "{text}");
    let syslog = line("syslog");
    assert!(
        syslog.starts_with("FAILED ") && syslog.contains("refused"),
        "{text}"
    );
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["events"], serde_json::json!([]), "no event sent");
    handle.stop(false).await;
}
