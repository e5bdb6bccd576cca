use std::time::Duration;

use base64::Engine;
use latchkey_notify::{
    PhoneNumber, SmsProvider, TwilioConfig, TwilioProvider, TwilioSender, WebhookAuth,
    WebhookConfig, WebhookProvider,
};
use latchkey_types::Secret;

use crate::support::{HttpRecorder, Reply, install_crypto_provider};

fn phone() -> PhoneNumber {
    "+41 44 668 18 00".parse().unwrap()
}

fn body() -> Secret<String> {
    Secret::new("48213907 is your code".into())
}

pub fn twilio(base: &str, sender: TwilioSender) -> TwilioProvider {
    install_crypto_provider();
    TwilioProvider::new(TwilioConfig {
        base_url: base.parse().unwrap(),
        account_sid: "AC0123456789abcdef".into(),
        username: "SK_api_key_sid".replace('_', ""),
        secret: Secret::new("twilio-secret".into()),
        sender,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn twilio_gets_a_form_post_with_basic_auth() {
    let server = HttpRecorder::start(
        Reply::new(201, r#"{"sid":"SM1","status":"queued"}"#),
        vec![],
    )
    .await;
    let p = twilio(&server.base, TwilioSender::From("+15005550006".into()));
    p.send(&phone(), &body()).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    );
    let expected = base64::engine::general_purpose::STANDARD.encode("SKapikeysid:twilio-secret");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = r.form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("To"), Some("+41446681800"));
    assert_eq!(get("From"), Some("+15005550006"));
    assert_eq!(get("Body"), Some("48213907 is your code"));
    assert_eq!(get("MessagingServiceSid"), None);
}

#[tokio::test]
async fn twilio_with_a_messaging_service_and_a_base_path() {
    let server = HttpRecorder::start(Reply::new(201, "{}"), vec![]).await;
    let p = twilio(
        &format!("{}/proxy/", server.base),
        TwilioSender::MessagingService("MG42".into()),
    );
    p.send(&phone(), &body()).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        r.path,
        "/proxy/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    );
    let form = r.form();
    assert!(form.contains(&("MessagingServiceSid".into(), "MG42".into())));
    assert!(!form.iter().any(|(k, _)| k == "From"));
}

#[tokio::test]
async fn twilio_errors_are_classified_without_quoting_the_provider() {
    let err_body = r#"{"code":21211,"message":"The 'To' number +41446681800 is not a valid phone number.","status":400}"#;
    let server = HttpRecorder::start(
        Reply::new(201, "{}"),
        vec![Reply::new(400, err_body), Reply::new(503, "")],
    )
    .await;
    let p = twilio(&server.base, TwilioSender::From("+15005550006".into()));
    let e = p.send(&phone(), &body()).await.unwrap_err();
    assert!(!e.retryable);
    assert_eq!(e.reason, "twilio: HTTP 400 (error 21211)");
    let e = p.send(&phone(), &body()).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert_eq!(e.reason, "twilio: HTTP 503");
}

#[tokio::test]
async fn webhook_gets_json_and_a_bearer_token() {
    install_crypto_provider();
    let server = HttpRecorder::start(Reply::new(202, ""), vec![]).await;
    let p = WebhookProvider::new(WebhookConfig {
        url: format!("{}/sms/send", server.base).parse().unwrap(),
        auth: WebhookAuth::Bearer(Secret::new("hook-token".into())),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    p.send(&phone(), &body()).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/sms/send"));
    assert_eq!(r.header("authorization"), Some("Bearer hook-token"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"to": "+41446681800", "body": "48213907 is your code"})
    );
}

#[tokio::test]
async fn webhook_with_a_custom_header_and_error_classes() {
    install_crypto_provider();
    let server = HttpRecorder::start(
        Reply::new(200, ""),
        vec![Reply::new(429, ""), Reply::new(422, "")],
    )
    .await;
    let p = WebhookProvider::new(WebhookConfig {
        url: server.base.parse().unwrap(),
        auth: WebhookAuth::Header {
            name: "X-Api-Key".into(),
            value: Secret::new("k-123".into()),
        },
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert!(
        p.send(&phone(), &body()).await.unwrap_err().retryable,
        "429 is temporary"
    );
    assert!(
        !p.send(&phone(), &body()).await.unwrap_err().retryable,
        "422 is permanent"
    );
    p.send(&phone(), &body()).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs[2].header("x-api-key"), Some("k-123"));
    assert_eq!(reqs[2].header("authorization"), None);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_temporary_failure() {
    // A port nothing listens on: bind, learn the port, close.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let p = twilio(
        &format!("http://{addr}"),
        TwilioSender::From("+15005550006".into()),
    );
    let e = p.send(&phone(), &body()).await.unwrap_err();
    assert!(e.retryable && e.reason.starts_with("twilio:"), "{e:?}");
}

#[test]
fn plain_http_is_refused_unless_loopback() {
    install_crypto_provider();
    let mk = |url: &str| TwilioConfig {
        base_url: url.parse().unwrap(),
        account_sid: "AC1".into(),
        username: "AC1".into(),
        secret: Secret::new("s".into()),
        sender: TwilioSender::From("+15005550006".into()),
        timeout: Duration::from_secs(5),
    };
    assert!(TwilioProvider::new(mk("http://api.twilio.com")).is_err());
    assert!(TwilioProvider::new(mk("https://api.twilio.com")).is_ok());
    assert!(TwilioProvider::new(mk("http://localhost:9")).is_ok());
    let cfg = mk("https://api.twilio.com");
    assert!(
        !format!("{cfg:?}").contains("\"s\""),
        "secret redacted: {cfg:?}"
    );
    let hook = |url: &str| WebhookConfig {
        url: url.parse().unwrap(),
        auth: WebhookAuth::Bearer(Secret::new("t".into())),
        timeout: Duration::from_secs(5),
    };
    assert!(WebhookProvider::new(hook("http://sms.contoso.com/send")).is_err());
    assert!(WebhookProvider::new(hook("https://sms.contoso.com/send")).is_ok());
    let mut bad = mk("https://api.twilio.com");
    bad.account_sid = "AC1/../../x".into();
    assert!(TwilioProvider::new(bad).is_err());
}
