//! `[policy.notifications] security_contacts`: after a completed reset the policy's contacts get
//! a short notice (who, what, when, correlation id; no password or code); a policy without
//! contacts sends none. The user is told either way.

use std::time::Duration;

use latchkey::demo::Demo;
use latchkey::outbox::Message;
use latchkey_entra_sim::Fixture;

use crate::signout::{NEW, reset, set_policy, start};
use crate::tap::verified;

const SECOPS: &str = "secops@contoso.com";

/// Waits until the user's "password changed" notice is delivered, then a little longer for any
/// notice queued after it; returns every message.
async fn settled(demo: &Demo) -> Vec<Message> {
    for _ in 0..100 {
        if demo.outbox.messages().iter().any(|m| {
            m.to == "adele.vance@contoso.com" && m.subject.contains("password was changed")
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    demo.outbox.messages()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_security_contact_hears_of_a_reset_without_any_secret() {
    let demo = start(Fixture::demo()).await;
    set_policy(
        &demo,
        "\n[policy.notifications]\nsecurity_contacts = [\"SecOps@Contoso.com\"]\n",
    );
    reset(&demo).await;
    let adele = demo
        .sim
        .tenant()
        .user_id("adele.vance@contoso.com")
        .unwrap();
    let all = settled(&demo).await;
    let to_contact: Vec<&Message> = all.iter().filter(|m| m.to == SECOPS).collect();
    assert_eq!(to_contact.len(), 1, "{all:#?}");
    let m = to_contact[0];
    assert_eq!(m.channel, "email");
    assert!(
        m.subject.contains("password reset for Adele Vance"),
        "{}",
        m.subject
    );
    assert!(m.body.contains("User: Adele Vance"), "{}", m.body);
    assert!(m.body.contains(&adele.to_string()), "{}", m.body);
    assert!(m.body.contains("Action: password reset"), "{}", m.body);
    assert!(m.body.contains("Outcome: succeeded"), "{}", m.body);
    assert!(m.body.contains("Correlation id: "), "{}", m.body);
    assert!(
        !m.body.contains(NEW) && !m.subject.contains(NEW),
        "never the password"
    );
    // No verification code of the flow either.
    let codes: Vec<String> = all
        .iter()
        .filter(|x| x.to != SECOPS && x.body.contains("code"))
        .flat_map(|x| {
            x.body
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| s.len() >= 6)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!codes.is_empty(), "the flow sent codes: {all:#?}");
    for c in &codes {
        assert!(!m.body.contains(c.as_str()), "code {c} in {}", m.body);
    }
    // The user is still told, as always.
    assert!(
        all.iter().any(
            |x| x.to == "adele.vance@contoso.com" && x.subject.contains("password was changed")
        )
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_without_security_contacts_sends_no_contact_notice() {
    let demo = start(Fixture::demo()).await;
    set_policy(&demo, "");
    reset(&demo).await;
    let all = settled(&demo).await;
    assert!(
        all.iter().any(
            |m| m.to == "adele.vance@contoso.com" && m.subject.contains("password was changed")
        ),
        "{all:#?}"
    );
    assert!(
        !all.iter().any(|m| m.body.contains("security contact")),
        "{all:#?}"
    );
    demo.stop().await;
}

/// The one notice to the contact, once delivered.
async fn contact_notice(demo: &Demo) -> Message {
    for _ in 0..100 {
        if let Some(m) = demo.outbox.messages().into_iter().find(|m| m.to == SECOPS) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no notice to {SECOPS}: {:#?}", demo.outbox.messages());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_security_contact_hears_of_an_unlock_and_a_pass_but_never_sees_the_pass() {
    let demo = start(Fixture::demo()).await;
    set_policy(
        &demo,
        "\n[policy.notifications]\nsecurity_contacts = [\"secops@contoso.com\"]\n",
    );
    // A cloud unlock is a change only when it dismisses a risk flag: Adele is at risk.
    assert!(
        demo.sim
            .tenant()
            .set_risk("adele.vance@contoso.com", "high", "atRisk")
    );
    let mut b = verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    let done = b.post("/unlock", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let m = contact_notice(&demo).await;
    assert!(m.body.contains("Action: account unlock"), "{}", m.body);
    assert!(m.body.contains("User: Adele Vance"), "{}", m.body);

    let demo = {
        demo.stop().await;
        start(Fixture::demo()).await
    };
    let group = demo.sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\" }}]\n\
         actions = [\"temporary_access_pass\"]\nmethods = [\"email\", \"totp\"]\n\
         methods_required = 2\n[policy.notifications]\nsecurity_contacts = [\"{SECOPS}\"]\n"
    );
    let set = latchkey_policy::parse_sources(&[("t.toml".into(), text)]).unwrap();
    *demo.services.policies.write().unwrap() = std::sync::Arc::new(set);
    let mut b = verified(&demo).await;
    let csrf = b.get("/action").await.csrf();
    let page = b.post("/tap", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let pass = page
        .body
        .split("id=\"tap-pass\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert!(pass.len() >= 8);
    let m = contact_notice(&demo).await;
    assert!(
        m.body.contains("Action: Temporary Access Pass issued"),
        "{}",
        m.body
    );
    assert!(!m.body.contains(&pass) && !m.subject.contains(&pass));
    demo.stop().await;
}
