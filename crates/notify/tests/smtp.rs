use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use latchkey_notify::{EmailTransport, Notice, NotifyError, SmtpConfig, SmtpMailer, SmtpSecurity};
use latchkey_types::{EmailAddress, Secret};

use crate::support::{SinkTls, SmtpSink, fixture, install_crypto_provider, renderer};

fn to() -> EmailAddress {
    "megan.bowen@contoso.com".parse().unwrap()
}

fn code_email() -> latchkey_notify::RenderedEmail {
    let n = Notice::Code {
        code: Secret::new("48213907".into()),
        valid_for: Duration::from_secs(600),
    };
    renderer().email(&n, None).unwrap()
}

fn config(sink: &SmtpSink, security: SmtpSecurity) -> SmtpConfig {
    let mut c = SmtpConfig::new("127.0.0.1", "Contoso password reset <no-reply@contoso.com>");
    c.port = Some(sink.port);
    c.security = security;
    c.timeout = Duration::from_secs(5);
    if security != SmtpSecurity::Plain {
        c.extra_ca_pem = Some(std::fs::read(fixture("ca.pem")).unwrap());
    }
    c
}

fn assert_code_message(m: &serde_json::Value) {
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["megan.bowen@contoso.com"])
    );
    assert_eq!(m["mail_from"], "no-reply@contoso.com");
    assert_eq!(m["from"], "Contoso password reset <no-reply@contoso.com>");
    assert_eq!(
        m["subject"],
        "Your Contoso password reset verification code"
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(m["auto_submitted"], "auto-generated");
    let text = m["text"].as_str().unwrap();
    let html = m["html"].as_str().unwrap();
    assert!(
        text.contains("Your verification code is: 48213907"),
        "{text}"
    );
    assert!(!text.contains('<'), "the text part is not HTML");
    assert!(
        html.contains("48213907") && html.contains("<!DOCTYPE html>"),
        "{html}"
    );
}

#[tokio::test]
async fn starttls_with_authentication_delivers_a_multipart_message() {
    install_crypto_provider();
    let sink = SmtpSink::start(SinkTls::StartTls, Some(("relay-user", "relay-pass")), 0);
    let mut c = config(&sink, SmtpSecurity::StartTls);
    c.username = Some("relay-user".into());
    c.password = Some(Secret::new("relay-pass".into()));
    assert!(!format!("{c:?}").contains("relay-pass"));
    let mailer = SmtpMailer::new(&c).unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    let m = &sink.messages(1).await[0];
    assert_code_message(m);
    assert_eq!(m["tls"], true);
    assert_eq!(m["auth_login"], "relay-user");
}

#[tokio::test]
async fn implicit_tls_delivers_on_one_reused_connection() {
    install_crypto_provider();
    let sink = SmtpSink::start(SinkTls::Implicit, None, 0);
    let mailer = SmtpMailer::new(&config(&sink, SmtpSecurity::ImplicitTls)).unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    let messages = sink.messages(2).await;
    assert_code_message(&messages[0]);
    assert!(messages.iter().all(|m| m["tls"] == true));
    assert_eq!(connections_used(&messages).len(), 1);
    assert_eq!(sink.connections(|_, _| true).await, (1, 0));
}

/// Distinct client ports the messages came from: one per connection.
fn connections_used(messages: &[serde_json::Value]) -> BTreeSet<u64> {
    messages
        .iter()
        .map(|m| m["peer_port"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn starttls_with_authentication_sends_one_message_after_another_on_one_connection() {
    install_crypto_provider();
    let sink = SmtpSink::start(SinkTls::StartTls, Some(("relay-user", "relay-pass")), 0);
    let mut c = config(&sink, SmtpSecurity::StartTls);
    c.username = Some("relay-user".into());
    c.password = Some(Secret::new("relay-pass".into()));
    let mailer = SmtpMailer::new(&c).unwrap();
    for _ in 0..5 {
        mailer.send(&to(), &code_email()).await.unwrap();
    }
    let messages = sink.messages(5).await;
    assert!(
        messages
            .iter()
            .all(|m| m["tls"] == true && m["auth_login"] == "relay-user"),
        "{messages:?}"
    );
    assert_eq!(connections_used(&messages).len(), 1);
    assert_eq!(sink.connections(|_, _| true).await, (1, 0));
}

#[tokio::test]
async fn concurrent_sends_use_at_most_max_connections() {
    let sink = SmtpSink::start(SinkTls::None, None, 0);
    let mut c = config(&sink, SmtpSecurity::Plain);
    c.max_connections = 3;
    let mailer = Arc::new(SmtpMailer::new(&c).unwrap());
    assert_eq!(mailer.parallel_sends(), Some(3));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let mailer = Arc::clone(&mailer);
        sends.spawn(async move { mailer.send(&to(), &code_email()).await });
    }
    while let Some(sent) = sends.join_next().await {
        sent.unwrap().unwrap();
    }
    let messages = sink.messages(24).await;
    assert_eq!(messages.len(), 24);
    let used = connections_used(&messages).len();
    assert!((1..=3).contains(&used), "{used} connections");
    let (opened, closed) = sink.connections(|_, _| true).await;
    assert!(
        opened <= 3 && closed == 0,
        "{opened} opened, {closed} closed"
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced() {
    let sink = SmtpSink::start_with_idle_timeout(SinkTls::None, None, 0, Some(0.3));
    let mailer = SmtpMailer::new(&config(&sink, SmtpSecurity::Plain)).unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    // The server ends the idle session; the mailer still holds it (its own idle timeout is 30 s).
    sink.connections(|opened, closed| opened == 1 && closed == 1)
        .await;
    mailer.send(&to(), &code_email()).await.unwrap();
    let messages = sink.messages(2).await;
    assert_eq!(connections_used(&messages).len(), 2);
    assert_eq!(sink.connections(|_, _| true).await.0, 2);
}

#[tokio::test]
async fn connections_idle_longer_than_the_idle_timeout_are_not_reused() {
    let sink = SmtpSink::start(SinkTls::None, None, 0);
    let mut c = config(&sink, SmtpSecurity::Plain);
    c.idle_timeout = Duration::from_millis(100);
    let mailer = SmtpMailer::new(&c).unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    mailer.send(&to(), &code_email()).await.unwrap();
    // The expired connection was closed when the second send looked for one.
    assert_eq!(
        sink.connections(|opened, closed| opened == 2 && closed == 1)
            .await,
        (2, 1)
    );
    assert_eq!(connections_used(&sink.messages(2).await).len(), 2);
}

#[tokio::test]
async fn plain_smtp_to_a_loopback_relay_delivers() {
    let sink = SmtpSink::start(SinkTls::None, None, 0);
    let mailer = SmtpMailer::new(&config(&sink, SmtpSecurity::Plain)).unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    let m = &sink.messages(1).await[0];
    assert_code_message(m);
    assert_eq!(m["tls"], false);
}

#[tokio::test]
async fn plain_smtp_to_any_other_host_is_refused_at_configuration() {
    for host in [
        "smtp.contoso.com",
        "10.1.2.3",
        "192.168.0.25",
        "localhost.contoso.com",
    ] {
        let mut c = SmtpConfig::new(host, "x <no-reply@contoso.com>");
        c.security = SmtpSecurity::Plain;
        let err = SmtpMailer::new(&c).unwrap_err();
        assert!(
            matches!(err, NotifyError::Config(ref m) if m.contains("loopback")),
            "{host}: {err}"
        );
    }
    for host in ["localhost", "127.0.0.1", "::1"] {
        let mut c = SmtpConfig::new(host, "x <no-reply@contoso.com>");
        c.security = SmtpSecurity::Plain;
        SmtpMailer::new(&c).unwrap();
    }
}

#[tokio::test]
async fn other_bad_settings_are_refused() {
    install_crypto_provider();
    let mut c = SmtpConfig::new("smtp.contoso.com", "not a mailbox");
    assert!(SmtpMailer::new(&c).is_err());
    c.from = "x <no-reply@contoso.com>".into();
    c.username = Some("u".into());
    assert!(SmtpMailer::new(&c).is_err(), "username without password");
    c.username = None;
    for n in [0, 65] {
        c.max_connections = n;
        let err = SmtpMailer::new(&c).unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
    }
    c.max_connections = 64;
    SmtpMailer::new(&c).unwrap();
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_and_nothing_is_sent() {
    install_crypto_provider();
    let sink = SmtpSink::start(SinkTls::StartTls, None, 0);
    let mut c = config(&sink, SmtpSecurity::StartTls);
    c.extra_ca_pem = None; // only the system's roots: the test CA is not among them
    let err = SmtpMailer::new(&c)
        .unwrap()
        .send(&to(), &code_email())
        .await
        .unwrap_err();
    assert!(err.retryable && err.reason.contains("TLS"), "{err:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.messages(0).await.len(), 0);
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_failure_without_the_servers_text() {
    install_crypto_provider();
    let sink = SmtpSink::start(SinkTls::StartTls, Some(("relay-user", "relay-pass")), 0);
    let mut c = config(&sink, SmtpSecurity::StartTls);
    c.username = Some("relay-user".into());
    c.password = Some(Secret::new("wrong".into()));
    let err = SmtpMailer::new(&c)
        .unwrap()
        .send(&to(), &code_email())
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("535"), "{err:?}");
    assert!(!err.reason.contains("wrong"));
}

#[tokio::test]
async fn a_temporary_refusal_is_retryable() {
    let sink = SmtpSink::start(SinkTls::None, None, 1);
    let mailer = SmtpMailer::new(&config(&sink, SmtpSecurity::Plain)).unwrap();
    let err = mailer.send(&to(), &code_email()).await.unwrap_err();
    assert!(err.retryable && err.reason.contains("451"), "{err:?}");
    mailer.send(&to(), &code_email()).await.unwrap();
    assert_eq!(sink.messages(1).await.len(), 1);
    // A connection whose transaction failed is not reused.
    assert_eq!(sink.connections(|opened, _| opened >= 2).await.0, 2);
}
