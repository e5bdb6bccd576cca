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
async fn implicit_tls_delivers() {
    install_crypto_provider();
    let sink = SmtpSink::start(SinkTls::Implicit, None, 0);
    let mailer = SmtpMailer::new(&config(&sink, SmtpSecurity::ImplicitTls)).unwrap();
    mailer.send(&to(), &code_email()).await.unwrap();
    let m = &sink.messages(1).await[0];
    assert_code_message(m);
    assert_eq!(m["tls"], true);
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
}
