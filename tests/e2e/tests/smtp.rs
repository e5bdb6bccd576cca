//! The SMTP sink is a real SMTP server: a message sent with lettre arrives, parsed.

use latchkey_e2e::{SmtpSink, WAIT, extract_code};
use lettre::message::MultiPart;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[tokio::test(flavor = "multi_thread")]
async fn sink_receives_a_message_and_the_code_is_extracted() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let message = Message::builder()
        .from("Latchkey <no-reply@contoso.test>".parse()?)
        .to("Adele Vance <adele.vance@contoso.com>".parse()?)
        .subject("Your verification code: ☂")
        .multipart(MultiPart::alternative_plain_html(
            "Your code is 04718293 (ticket 12345, valid 10 minutes).\n".to_owned(),
            "<p>Your code is <b>04718293</b>.</p>".to_owned(),
        ))?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host())
        .port(sink.port())
        .build();
    mailer.send(message).await?;

    let got = sink
        .wait_for_message("ADELE.VANCE@contoso.com", WAIT)
        .await?;
    assert_eq!(got.mail_from, "no-reply@contoso.test");
    assert_eq!(got.rcpt_tos, ["adele.vance@contoso.com"]);
    // Decoded by the sink (RFC 2047 on the wire).
    assert_eq!(got.subject, "Your verification code: ☂");
    // Raw headers, as lettre wrote them.
    assert_eq!(
        got.header("To"),
        Some("\"Adele Vance\" <adele.vance@contoso.com>")
    );
    let from = got.extra["from"].as_str().unwrap_or_default();
    assert!(
        from.contains("no-reply@contoso.test"),
        "decoded From: {from}"
    );
    let html = got.html.as_deref().unwrap_or_default();
    assert!(html.contains("<b>04718293</b>"), "{html}");
    assert_eq!(extract_code(&got).as_deref(), Some("04718293"));
    let raw = String::from_utf8(got.raw()?)?;
    assert!(raw.contains("Subject: "), "raw message:\n{raw}");

    // Each message is returned once: a second wait finds nothing new.
    let again = sink
        .wait_for_message(
            "adele.vance@contoso.com",
            std::time::Duration::from_millis(300),
        )
        .await;
    assert!(again.is_err(), "the same message came back twice");
    Ok(())
}

#[test]
fn extract_code_takes_the_first_run_of_six_to_eight_digits() {
    let mail = |text: &str| latchkey_e2e::Email {
        seq: 1,
        mail_from: String::new(),
        rcpt_tos: vec![],
        subject: String::new(),
        text: Some(text.to_owned()),
        html: None,
        headers: vec![],
        extra: Default::default(),
        raw_path: Default::default(),
    };
    assert_eq!(
        extract_code(&mail("Ticket 12345, code 654321.")).as_deref(),
        Some("654321")
    );
    assert_eq!(
        extract_code(&mail("ref 123456789 then 1234567")).as_deref(),
        Some("1234567")
    );
    assert_eq!(extract_code(&mail("no code 12345")), None);
}
