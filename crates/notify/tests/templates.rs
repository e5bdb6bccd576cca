use std::time::Duration;

use latchkey_notify::{Branding, ChangeKind, ContactAction, MethodChange, Notice, Renderer};
use latchkey_types::Secret;
use time::macros::datetime;

use crate::support::renderer;

fn code() -> Notice {
    Notice::Code {
        code: Secret::new("48213907".into()),
        valid_for: Duration::from_secs(600),
    }
}

fn notices() -> Vec<Notice> {
    vec![
        code(),
        Notice::PasswordChanged {
            at: datetime!(2027-01-15 08:00 UTC),
        },
        Notice::MethodsChanged {
            at: datetime!(2027-01-15 08:00 UTC),
            changes: vec![
                MethodChange {
                    method: "sms".into(),
                    change: ChangeKind::Added,
                },
                MethodChange {
                    method: "totp".into(),
                    change: ChangeKind::Removed,
                },
            ],
        },
    ]
}

#[test]
fn every_notice_renders_in_every_language() {
    let r = renderer();
    for lang in latchkey_notify::LANGUAGES {
        for n in notices() {
            let e = r.email(&n, Some(lang)).unwrap();
            assert!(!e.subject.is_empty() && !e.subject.contains('\n'));
            assert!(e.html.expose().contains(&format!("<html lang=\"{lang}\">")));
            assert!(e.text.expose().contains("Contoso password reset") || n.kind() == "code");
            let sms = r.sms(&n, Some(lang)).unwrap();
            assert!(
                sms.expose().chars().count() <= 160,
                "{lang} {} SMS too long: {}",
                n.kind(),
                sms.expose().len()
            );
        }
    }
}

#[test]
fn the_code_and_its_lifetime_are_in_every_body() {
    let r = renderer();
    let e = r.email(&code(), None).unwrap();
    assert_eq!(e.subject, "Your Contoso password reset verification code");
    for body in [e.text.expose(), e.html.expose()] {
        assert!(
            body.contains("48213907") && body.contains("10 minutes"),
            "{body}"
        );
    }
    assert!(format!("{e:?}").contains("[redacted]") && !format!("{e:?}").contains("48213907"));
    assert_eq!(
        r.sms(&code(), None).unwrap().expose(),
        "48213907 is your Contoso password reset code. It expires in 10 min. Never share it."
    );
}

#[test]
fn change_notices_say_when_and_how_to_report() {
    let r = renderer();
    let [_, pw, methods] = <[Notice; 3]>::try_from(notices()).unwrap();
    let e = r.email(&pw, Some("en")).unwrap();
    assert_eq!(e.subject, "Your password was changed");
    let text = e.text.expose();
    assert!(text.contains("2027-01-15 08:00 UTC"));
    assert!(text.contains("the IT service desk (+41 44 668 18 00)"));
    assert!(text.contains("https://reset.contoso.com/"));
    let e = r.email(&methods, Some("en")).unwrap();
    assert!(
        e.text.expose().contains("- Text message (SMS): added"),
        "{}",
        e.text.expose()
    );
    assert!(
        e.html
            .expose()
            .contains("<li>Authenticator app: removed</li>"),
        "{}",
        e.html.expose()
    );
}

#[test]
fn languages_fall_back_to_english() {
    assert_eq!(Renderer::language_for(Some("de-CH")), "de");
    assert_eq!(Renderer::language_for(Some("DE")), "de");
    assert_eq!(Renderer::language_for(Some("fr-FR")), "en");
    assert_eq!(Renderer::language_for(Some("")), "en");
    assert_eq!(Renderer::language_for(None), "en");
    let r = renderer();
    assert_eq!(
        r.email(&code(), Some("de-AT")).unwrap().subject,
        "Ihr Bestätigungscode für Contoso password reset"
    );
    assert_eq!(
        r.email(&code(), Some("fr")).unwrap().subject,
        "Your Contoso password reset verification code"
    );
}

#[test]
fn html_is_autoescaped_text_is_not_and_subjects_stay_one_line() {
    let r = Renderer::new(Branding {
        product_name: "<script>alert(1)</script> & Co\r\nBcc: evil@example.com".into(),
        helpdesk: Some("<b>desk</b>".into()),
        portal_url: None,
    })
    .unwrap();
    let e = r.email(&code(), None).unwrap();
    let html = e.html.expose();
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;desk&lt;/b&gt;") || html.contains("&lt;b&gt;desk&lt;&#x2F;b&gt;"),
        "{html}"
    );
    assert!(
        e.text.expose().contains("<b>desk</b>"),
        "plain text is not HTML-escaped"
    );
    assert!(
        !e.subject.contains('\n') && !e.subject.contains('\r'),
        "{:?}",
        e.subject
    );
}

#[test]
fn helpdesk_and_tap_notices_render_in_every_language() {
    let r = renderer();
    let link = "https://reset.contoso.com/h/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE";
    let notices = [
        Notice::CallerCode {
            code: Secret::new("48213907".into()),
            valid_for: Duration::from_secs(600),
        },
        Notice::TemporaryAccessPassIssued {
            at: datetime!(2027-01-15 08:00 UTC),
        },
        Notice::ResetLink {
            link: Secret::new(link.into()),
            valid_for: Duration::from_secs(3600),
        },
        Notice::ResetLinkIssued {
            at: datetime!(2027-01-15 08:00 UTC),
        },
    ];
    for lang in latchkey_notify::LANGUAGES {
        for n in &notices {
            let e = r.email(n, Some(lang)).unwrap();
            assert!(!e.subject.is_empty() && !e.subject.contains('\n'));
            assert!(
                e.text.expose().contains("Contoso password reset"),
                "{lang} {}",
                n.kind()
            );
            let sms = r.sms(n, Some(lang)).unwrap();
            assert!(
                sms.expose().chars().count() <= 160,
                "{lang} {}: {}",
                n.kind(),
                sms.expose()
            );
        }
    }
    let e = r.email(&notices[0], Some("en")).unwrap();
    assert!(e.text.expose().contains("48213907") && e.text.expose().contains("10 minutes"));
    let e = r.email(&notices[2], Some("en")).unwrap();
    assert!(e.text.expose().contains(link) && e.text.expose().contains("60 minutes"));
    assert!(
        e.html.expose().contains(&format!("href=\"{link}\"")),
        "{}",
        e.html.expose()
    );
    assert!(!format!("{e:?}").contains(link), "the link is a secret");
    // The "a link was issued" notice never carries the link.
    for n in [&notices[1], &notices[3]] {
        let e = r.email(n, Some("en")).unwrap();
        assert!(e.text.expose().contains("2027-01-15 08:00 UTC"));
        assert!(
            e.text
                .expose()
                .contains("the IT service desk (+41 44 668 18 00)")
        );
    }
}

#[test]
fn security_contact_notices_say_who_what_when_and_never_a_secret() {
    let r = renderer();
    for action in [
        ContactAction::PasswordReset,
        ContactAction::AccountUnlock,
        ContactAction::TemporaryAccessPass,
    ] {
        let n = Notice::SecurityContact {
            action,
            user: "Megan <Bowen>".into(),
            user_id: "c0000000-0000-4000-8000-000000000001".into(),
            at: datetime!(2027-01-15 08:00 UTC),
            correlation_id: "corr-4711".into(),
            by: None,
        };
        for lang in latchkey_notify::LANGUAGES {
            let e = r.email(&n, Some(lang)).unwrap();
            assert!(e.subject.contains("Megan <Bowen>"), "{}", e.subject);
            for body in [e.text.expose(), e.html.expose()] {
                assert!(body.contains("2027-01-15 08:00 UTC"), "{lang} {action:?}");
                assert!(
                    body.contains("corr-4711")
                        && body.contains("c0000000-0000-4000-8000-000000000001")
                );
            }
            assert!(e.text.expose().contains("Megan <Bowen>"));
            assert!(
                e.html.expose().contains("Megan &lt;Bowen&gt;"),
                "directory data is escaped in HTML"
            );
            let sms = r.sms(&n, Some(lang)).unwrap();
            assert!(
                sms.expose().chars().count() <= 160,
                "{lang}: {}",
                sms.expose()
            );
        }
        let en = r.email(&n, Some("en")).unwrap();
        let what = match action {
            ContactAction::PasswordReset => "password reset",
            ContactAction::AccountUnlock => "account unlock",
            ContactAction::TemporaryAccessPass => "Temporary Access Pass issued",
        };
        assert!(
            en.text.expose().contains(&format!("Action: {what}")),
            "{}",
            en.text.expose()
        );
        assert!(en.text.expose().contains("Outcome: succeeded"));
        assert!(en.text.expose().contains("By: the user (self-service)"));
        assert_eq!(n.kind(), "security_contact");
    }
}

#[test]
fn a_security_contact_notice_names_the_helpdesk_member_who_acted() {
    let r = renderer();
    let n = Notice::SecurityContact {
        action: ContactAction::TemporaryAccessPass,
        user: "Adele Vance".into(),
        user_id: "c0000000-0000-4000-8000-000000000001".into(),
        at: datetime!(2027-01-15 08:00 UTC),
        correlation_id: "corr-4712".into(),
        by: Some("Farid <Helpdesk> (farid@contoso.com)".into()),
    };
    let en = r.email(&n, Some("en")).unwrap();
    assert!(
        en.text
            .expose()
            .contains("By: Farid <Helpdesk> (farid@contoso.com) (helpdesk)"),
        "{}",
        en.text.expose()
    );
    assert!(!en.text.expose().contains("self-service)"));
    assert!(
        en.html
            .expose()
            .contains("Farid &lt;Helpdesk&gt; (farid@contoso.com) (helpdesk)"),
        "escaped in HTML"
    );
    let de = r.email(&n, Some("de")).unwrap();
    assert!(
        de.text
            .expose()
            .contains("Durch: Farid <Helpdesk> (farid@contoso.com) (Helpdesk)")
    );
    for lang in latchkey_notify::LANGUAGES {
        assert!(r.sms(&n, Some(lang)).unwrap().expose().chars().count() <= 160);
    }
}
