use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_notify::{
    Channel, Channels, DeliveryOutcome, DeliveryReport, EmailTransport, Notice, Notification,
    Notifier, NotifierHandle, NotifyError, QueueConfig, Recipient, RetryPolicy, SmsProvider,
    SmtpConfig, SmtpMailer, SmtpSecurity, TwilioSender,
};
use latchkey_types::{ObjectId, Secret};
use tokio::sync::mpsc;

use crate::sms::twilio;
use crate::support::{HttpRecorder, LogCapture, Reply, SinkTls, SmtpSink, renderer};

const CODE: &str = "48213907";

fn fast(max_attempts: u32) -> QueueConfig {
    QueueConfig {
        capacity: 16,
        concurrency: 4,
        retry: RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
    }
}

fn sms_notification(n: u32) -> Notification {
    Notification {
        recipient: Recipient::Sms("+41446681800".parse().unwrap()),
        notice: Notice::Code {
            code: Secret::new(CODE.into()),
            valid_for: Duration::from_secs(600),
        },
        lang: None,
        correlation_id: format!("req-{n}"),
        subject: Some(ObjectId::new_random()),
    }
}

fn start_sms(
    server: &HttpRecorder,
    config: QueueConfig,
) -> (
    Notifier,
    NotifierHandle,
    mpsc::UnboundedReceiver<DeliveryReport>,
) {
    let provider: Arc<dyn SmsProvider> = Arc::new(twilio(
        &server.base,
        TwilioSender::From("+15005550006".into()),
    ));
    let (tx, rx) = mpsc::unbounded_channel();
    let (n, h) = Notifier::start(
        renderer(),
        Channels {
            email: None,
            sms: Some(provider),
        },
        Arc::new(tx),
        config,
    );
    (n, h, rx)
}

async fn wait_for_requests(server: &HttpRecorder, n: usize) {
    let start = Instant::now();
    while server.requests().len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no request arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<DeliveryReport>) -> DeliveryReport {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no report in time")
        .unwrap()
}

#[tokio::test]
async fn enqueue_returns_before_delivery_and_the_outcome_is_reported() {
    let server = HttpRecorder::start(
        Reply::new(201, "{}").delayed(Duration::from_millis(500)),
        vec![],
    )
    .await;
    let (notifier, handle, mut reports) = start_sms(&server, fast(3));
    let n = sms_notification(1);
    let subject = n.subject;
    let started = Instant::now();
    let id = notifier.enqueue(n).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "enqueue waited {:?}",
        started.elapsed()
    );
    assert!(reports.try_recv().is_err(), "nothing delivered yet");

    let r = next(&mut reports).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(r.id, id);
    assert_eq!(r.outcome, DeliveryOutcome::Delivered);
    assert_eq!((r.attempts, r.channel, r.kind), (1, Channel::Sms, "code"));
    assert_eq!((r.correlation_id.as_str(), r.subject), ("req-1", subject));
    assert_eq!(r.recipient_masked, "+41*******00");
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn temporary_failures_are_retried_and_permanent_ones_are_not() {
    let server = HttpRecorder::start(
        Reply::new(201, "{}"),
        vec![
            Reply::new(500, ""),
            Reply::new(503, ""),
            Reply::new(201, "{}"),
        ],
    )
    .await;
    let (notifier, handle, mut reports) = start_sms(&server, fast(5));
    notifier.enqueue(sms_notification(1)).unwrap();
    let r = next(&mut reports).await;
    assert_eq!(
        (r.outcome.clone(), r.attempts),
        (DeliveryOutcome::Delivered, 3)
    );
    assert_eq!(server.requests().len(), 3);

    server.push_script(Reply::new(400, r#"{"code":21211}"#));
    notifier.enqueue(sms_notification(2)).unwrap();
    let r = next(&mut reports).await;
    assert_eq!(r.attempts, 1);
    assert_eq!(
        r.outcome,
        DeliveryOutcome::Failed {
            reason: "twilio: HTTP 400 (error 21211)".into(),
            retryable: false,
        }
    );
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit() {
    let server = HttpRecorder::start(Reply::new(503, ""), vec![]).await;
    let (notifier, handle, mut reports) = start_sms(&server, fast(3));
    notifier.enqueue(sms_notification(1)).unwrap();
    let r = next(&mut reports).await;
    assert_eq!(r.attempts, 3);
    assert_eq!(
        r.outcome,
        DeliveryOutcome::Failed {
            reason: "twilio: HTTP 503".into(),
            retryable: true,
        }
    );
    assert_eq!(server.requests().len(), 3);
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_queue_is_bounded() {
    let server = HttpRecorder::start(
        Reply::new(201, "{}").delayed(Duration::from_millis(800)),
        vec![],
    )
    .await;
    let config = QueueConfig {
        capacity: 1,
        concurrency: 1,
        ..fast(1)
    };
    let (notifier, handle, mut reports) = start_sms(&server, config);
    notifier.enqueue(sms_notification(1)).unwrap();
    // Once the first is in delivery (its request arrived), the second waits in the channel.
    wait_for_requests(&server, 1).await;
    notifier.enqueue(sms_notification(2)).unwrap();
    assert!(matches!(
        notifier.enqueue(sms_notification(3)),
        Err(NotifyError::QueueFull)
    ));
    assert_eq!(next(&mut reports).await.correlation_id, "req-1");
    assert_eq!(next(&mut reports).await.correlation_id, "req-2");
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_drains_the_queue_then_refuses_new_work() {
    let server = HttpRecorder::start(
        Reply::new(201, "{}").delayed(Duration::from_millis(100)),
        vec![],
    )
    .await;
    let (notifier, handle, mut reports) = start_sms(
        &server,
        QueueConfig {
            concurrency: 1,
            ..fast(3)
        },
    );
    for i in 0..4 {
        notifier.enqueue(sms_notification(i)).unwrap();
    }
    handle.shutdown(Duration::from_secs(5)).await;
    let mut delivered = 0;
    while let Ok(r) = reports.try_recv() {
        assert_eq!(r.outcome, DeliveryOutcome::Delivered);
        delivered += 1;
    }
    assert_eq!(
        delivered, 4,
        "every queued message was delivered before shutdown returned"
    );
    assert!(matches!(
        notifier.enqueue(sms_notification(9)),
        Err(NotifyError::Stopped)
    ));
}

#[tokio::test]
async fn shutdown_abandons_what_cannot_finish_within_the_grace_period() {
    let server = HttpRecorder::start(Reply::new(503, ""), vec![]).await;
    let config = QueueConfig {
        retry: RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
        },
        ..fast(10)
    };
    let (notifier, handle, mut reports) = start_sms(&server, config);
    notifier.enqueue(sms_notification(1)).unwrap();
    wait_for_requests(&server, 1).await; // the first attempt fails, the long backoff starts
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    handle.shutdown(Duration::from_millis(300)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = reports.try_recv().unwrap();
    assert_eq!((r.outcome, r.attempts), (DeliveryOutcome::Abandoned, 1));
}

#[tokio::test]
async fn a_channel_without_a_transport_is_refused_at_enqueue() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let (notifier, handle) = Notifier::start(
        renderer(),
        Channels {
            email: None,
            sms: None,
        },
        Arc::new(tx),
        fast(1),
    );
    let err = notifier.enqueue(sms_notification(1)).unwrap_err();
    assert!(matches!(err, NotifyError::ChannelUnavailable("sms")));
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn email_through_the_queue_is_retried_against_a_real_smtp_server() {
    let sink = SmtpSink::start(SinkTls::None, None, 1); // the first DATA gets 451
    let mut c = SmtpConfig::new("127.0.0.1", "Contoso password reset <no-reply@contoso.com>");
    c.port = Some(sink.port);
    c.security = SmtpSecurity::Plain;
    let mailer: Arc<dyn EmailTransport> = Arc::new(SmtpMailer::new(&c).unwrap());
    let (tx, mut reports) = mpsc::unbounded_channel();
    let (notifier, handle) = Notifier::start(
        renderer(),
        Channels {
            email: Some(mailer),
            sms: None,
        },
        Arc::new(tx),
        fast(3),
    );
    notifier
        .enqueue(Notification {
            recipient: Recipient::Email("adele.vance@contoso.com".parse().unwrap()),
            notice: Notice::PasswordChanged {
                at: time::macros::datetime!(2027-01-15 08:00 UTC),
            },
            lang: Some("de-CH".into()),
            correlation_id: "req-7".into(),
            subject: None,
        })
        .unwrap();
    let r = next(&mut reports).await;
    assert_eq!(
        (r.outcome, r.attempts, r.channel),
        (DeliveryOutcome::Delivered, 2, Channel::Email)
    );
    assert_eq!(r.recipient_masked, "a***@contoso.com");
    let m = &sink.messages(1).await[0];
    assert_eq!(m["subject"], "Ihr Passwort wurde geändert");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["adele.vance@contoso.com"])
    );
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn logs_never_contain_the_code_the_number_or_the_address() {
    let logs = LogCapture::global();
    let server = HttpRecorder::start(Reply::new(201, "{}"), vec![Reply::new(500, "")]).await;
    let (notifier, handle, mut reports) = start_sms(&server, fast(3));
    let mut n = sms_notification(1);
    n.correlation_id = "req-logs-sms".into();
    notifier.enqueue(n).unwrap();
    assert_eq!(next(&mut reports).await.outcome, DeliveryOutcome::Delivered);

    let sink = SmtpSink::start(SinkTls::None, None, 1);
    let mut c = SmtpConfig::new("127.0.0.1", "x <no-reply@contoso.com>");
    c.port = Some(sink.port);
    c.security = SmtpSecurity::Plain;
    let mailer: Arc<dyn EmailTransport> = Arc::new(SmtpMailer::new(&c).unwrap());
    let (tx, mut mail_reports) = mpsc::unbounded_channel();
    let (mail_notifier, mail_handle) = Notifier::start(
        renderer(),
        Channels {
            email: Some(mailer),
            sms: None,
        },
        Arc::new(tx),
        fast(3),
    );
    let mut n = sms_notification(2);
    n.recipient = Recipient::Email("megan.bowen@contoso.com".parse().unwrap());
    n.correlation_id = "req-logs-mail".into();
    mail_notifier.enqueue(n).unwrap();
    assert_eq!(
        next(&mut mail_reports).await.outcome,
        DeliveryOutcome::Delivered
    );
    handle.shutdown(Duration::from_secs(1)).await;
    mail_handle.shutdown(Duration::from_secs(1)).await;

    let text = logs.text();
    let ours = |id: &str| {
        text.lines()
            .filter(|l| l.contains(id))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (sms, mail) = (ours("req-logs-sms"), ours("req-logs-mail"));
    assert!(
        sms.contains("will retry") && sms.contains("notification delivered"),
        "{text}"
    );
    assert!(
        sms.contains("+41*******00") && mail.contains("m***@contoso.com"),
        "{text}"
    );
    for secret in [CODE, "41446681800", "megan.bowen", "twilio-secret"] {
        assert!(
            !text.contains(secret),
            "{secret:?} appears in the logs:\n{text}"
        );
    }
}

/// An email transport that takes `parallel` messages at once and delivers only when that many
/// are in its hands together.
struct AllAtOnce {
    parallel: usize,
    together: tokio::sync::Barrier,
}

impl EmailTransport for AllAtOnce {
    fn send<'a>(
        &'a self,
        _to: &'a latchkey_types::EmailAddress,
        _email: &'a latchkey_notify::RenderedEmail,
    ) -> latchkey_notify::BoxFuture<'a, Result<(), latchkey_notify::DeliveryError>> {
        Box::pin(async move {
            tokio::time::timeout(Duration::from_secs(10), self.together.wait())
                .await
                .map(|_| ())
                .map_err(|_| latchkey_notify::DeliveryError::permanent("sent one at a time"))
        })
    }
    fn parallel_sends(&self) -> Option<usize> {
        Some(self.parallel)
    }
}

#[tokio::test]
async fn the_queue_runs_as_many_deliveries_at_once_as_the_email_transport_takes() {
    let transport = Arc::new(AllAtOnce {
        parallel: 6,
        together: tokio::sync::Barrier::new(6),
    });
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut config = fast(1);
    config.concurrency = 1;
    let (notifier, handle) = Notifier::start(
        renderer(),
        Channels {
            email: Some(transport),
            sms: None,
        },
        Arc::new(tx),
        config,
    );
    for n in 0..6 {
        let mut m = sms_notification(n);
        m.recipient = Recipient::Email("megan.bowen@contoso.com".parse().unwrap());
        notifier.enqueue(m).unwrap();
    }
    for _ in 0..6 {
        assert_eq!(next(&mut reports).await.outcome, DeliveryOutcome::Delivered);
    }
    handle.shutdown(Duration::from_secs(1)).await;
}

/// Records who each email was for, in order; holds the first send until `release`.
#[derive(Default)]
struct InOrder {
    seen: std::sync::Mutex<Vec<String>>,
    release: tokio::sync::Notify,
}

impl EmailTransport for InOrder {
    fn send<'a>(
        &'a self,
        to: &'a latchkey_types::EmailAddress,
        _email: &'a latchkey_notify::RenderedEmail,
    ) -> latchkey_notify::BoxFuture<'a, Result<(), latchkey_notify::DeliveryError>> {
        Box::pin(async move {
            let first = {
                let mut seen = self.seen.lock().unwrap();
                seen.push(to.to_string());
                seen.len() == 1
            };
            if first {
                self.release.notified().await;
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn codes_are_sent_before_notices_that_were_queued_earlier() {
    let transport = Arc::new(InOrder::default());
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut config = fast(1);
    config.concurrency = 1;
    let (notifier, handle) = Notifier::start(
        renderer(),
        Channels {
            email: Some(transport.clone()),
            sms: None,
        },
        Arc::new(tx),
        config,
    );
    let notice = |to: &str| Notification {
        recipient: Recipient::Email(to.parse().unwrap()),
        notice: Notice::PasswordChanged {
            at: time::macros::datetime!(2027-01-15 08:00 UTC),
        },
        lang: None,
        correlation_id: "req-order".into(),
        subject: None,
    };
    notifier.enqueue(notice("first@contoso.com")).unwrap();
    // The first notice is in delivery (and held there) before the others queue.
    let start = Instant::now();
    while transport.seen.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "nothing sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    notifier.enqueue(notice("second@contoso.com")).unwrap();
    notifier.enqueue(notice("third@contoso.com")).unwrap();
    let mut code = sms_notification(1);
    code.recipient = Recipient::Email("code@contoso.com".parse().unwrap());
    notifier.enqueue(code).unwrap();
    transport.release.notify_one();
    for _ in 0..4 {
        assert_eq!(next(&mut reports).await.outcome, DeliveryOutcome::Delivered);
    }
    assert_eq!(
        *transport.seen.lock().unwrap(),
        [
            "first@contoso.com",
            "code@contoso.com",
            "second@contoso.com",
            "third@contoso.com"
        ]
    );
    handle.shutdown(Duration::from_secs(1)).await;
}
