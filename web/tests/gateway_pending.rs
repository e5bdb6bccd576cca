//! A gateway reset that outlives the page's wait (no Samba: a fake agent drives the gateway API
//! over HTTP). The page ends the flow and says "in progress"; when the agent later reports
//! success, the portal runs the steps after a password change once: open flows and codes void,
//! the notice on the channels known before the change, sign-out everywhere per policy, and one
//! `reset` audit success, and the policy's security contacts are told. A result that arrives
//! while the page still waits gets the same steps, once, whichever side claims them.

use std::time::Duration;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_entra_sim::Fixture;
use latchkey_jobs::{Ack, CAPABILITIES_HEADER, JobOffer, JobOutcome, JobReport, NEXT_PATH};
use latchkey_types::Secret;

use crate::portal::{Browser, code_for};
use crate::signout::set_policy;

const CARLA: &str = "carla.mendes@contoso.com";
const CARLA_MAIL: &str = "carla.mendes@outlook.example";
const SECOPS: &str = "secops@contoso.com";

/// The demo policy's rules (email, TOTP, text; two of them) with a security contact.
fn with_security_contact(demo: &Demo) {
    set_policy(
        demo,
        "\n[policy.notifications]\nsecurity_contacts = [\"SecOps@Contoso.com\"]\n",
    );
}

/// The security contact's notices; each checked to name Carla and carry no password.
fn contact_notices(demo: &Demo, password: &str) -> usize {
    let carla = demo.sim.tenant().user_id(CARLA).unwrap().to_string();
    let to_contact: Vec<_> = demo
        .outbox
        .messages()
        .into_iter()
        .filter(|m| m.to == SECOPS)
        .collect();
    for m in &to_contact {
        assert!(
            m.subject.contains("password reset for Carla Mendes"),
            "{}",
            m.subject
        );
        assert!(m.body.contains("User: Carla Mendes"), "{}", m.body);
        assert!(m.body.contains(&carla), "{}", m.body);
        assert!(m.body.contains("Outcome: succeeded"), "{}", m.body);
        assert!(
            !m.body.contains(password) && !m.subject.contains(password),
            "never the password"
        );
    }
    to_contact.len()
}

async fn portal() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut fixture = Fixture::demo();
    let carla = fixture
        .users
        .iter_mut()
        .find(|u| u.upn == CARLA)
        .expect("Carla is in the demo tenant");
    carla.on_premises_sam_account_name = Some("carla.late".to_string());
    carla.on_premises_domain_name = Some("corp.contoso.example".to_string());
    demo::start_without_writeback(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            fixture,
            ..DemoOptions::default()
        },
    )
    .await
    .expect("demo starts")
}

/// Registers a gateway allowed to reset and marks it as having just polled; its credential.
async fn connected_gateway(demo: &Demo) -> Secret<String> {
    let issued = latchkey::gateway::credential::generate().unwrap();
    let allowed = ["reset".to_string()];
    let now = time::OffsetDateTime::now_utc();
    let g = demo
        .store
        .register_gateway("late", &issued.hash, &allowed, now)
        .await
        .unwrap();
    demo.store.gateway_seen(&g.id, &allowed, now).await.unwrap();
    latchkey::gateway::credential::format(&g.id, &issued.secret)
}

/// Carla identified and verified by email and text: the browser on the action page.
async fn carla_verified(demo: &Demo) -> Browser {
    let mut b = Browser::new(demo);
    assert_eq!(b.identify(CARLA).await.status, 303);
    b.ask_code("email").await;
    let code = code_for(demo, CARLA_MAIL).await.unwrap();
    assert_eq!(
        b.submit_code("email", &code).await.location.as_deref(),
        Some("/verify")
    );
    b.ask_code("sms").await;
    let mut sms = None;
    for to in ["+351912345678", "+351 912345678"] {
        sms = sms.or(code_for(demo, to).await);
    }
    assert_eq!(
        b.submit_code("sms", &sms.expect("a text message code"))
            .await
            .location
            .as_deref(),
        Some("/action")
    );
    b
}

async fn events(demo: &Demo, event_type: &str) -> Vec<latchkey_store::AuditEvent> {
    crate::helpers::audit_of(demo, event_type)
        .await
        .into_iter()
        // The `started` record written before a change is not an outcome.
        .filter(|e| e.outcome != latchkey_store::Outcome::Started)
        .collect()
}

fn password_notices(demo: &Demo) -> usize {
    demo.outbox
        .messages()
        .into_iter()
        .filter(|m| {
            m.subject.contains("password was changed")
                || (m.channel == "sms" && m.body.contains("password") && !m.body.contains("code"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_reported_after_the_page_gave_up_still_ends_flows_notifies_and_signs_out() {
    let demo = portal().await;
    with_security_contact(&demo);
    let credential = connected_gateway(&demo).await;
    let new = "Quartz-Meadow-Lantern-93";
    let mut b = carla_verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    let page = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert!(
        page.body.contains("has not confirmed it yet"),
        "{}",
        page.body
    );
    let pending = events(&demo, "reset.pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    // The flow ended with the page: no second reset job can be queued from it.
    assert_eq!(b.get("/reset").await.location.as_deref(), Some("/"));
    assert!(events(&demo, "reset").await.is_empty());
    // Nobody is told of a change that has not happened.
    assert_eq!(contact_notices(&demo, new), 0);

    // Another flow of Carla's, opened while the job waits, with a code sent.
    let mut other = Browser::new(&demo);
    assert_eq!(other.identify(CARLA).await.status, 303);
    other.ask_code("email").await;
    let notices_before = password_notices(&demo);
    let revocations_before = revocations(&demo);

    // The agent takes the job late and reports success.
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", credential.expose());
    let offer: JobOffer = http
        .get(format!("{}{NEXT_PATH}?wait=5", demo.portal_url()))
        .header("authorization", &auth)
        .header(CAPABILITIES_HEADER, "reset")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("the queued reset job is offered");
    assert_eq!(offer.new_password.as_deref(), Some(new));
    // The demo policy does not name privileged accounts: the gateway must refuse adminCount=1.
    assert!(!offer.target.allow_privileged);
    // The record for the steps after the change is in the job, the password is not.
    let stored = demo
        .store
        .job(&offer.id, time::OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    let stored_target = serde_json::to_value(&stored.target).unwrap();
    assert_eq!(stored_target["after_change"]["revoke_sessions"], true);
    assert!(!stored_target.to_string().contains(new));
    let report = JobReport {
        outcome: JobOutcome::Succeeded,
        object_dn: Some("CN=Carla,OU=Lab,DC=corp,DC=contoso,DC=example".into()),
    };
    let url = format!("{}/gateway/v1/jobs/{}/result", demo.portal_url(), offer.id);
    let ack: Ack = http
        .post(&url)
        .header("authorization", &auth)
        .json(&report)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ack.recorded);
    // A repeated report changes nothing (the steps run once).
    let again: Ack = http
        .post(&url)
        .header("authorization", &auth)
        .json(&report)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!again.recorded);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The other flow is gone.
    assert_eq!(other.get("/verify").await.location.as_deref(), Some("/"));
    // Told on the channels known before the change, once each: the directory mail, the
    // enrolled email and the enrolled phone.
    assert_eq!(
        password_notices(&demo) - notices_before,
        3,
        "{:?}",
        demo.outbox
            .messages()
            .iter()
            .map(|m| (&m.channel, &m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    // The policy's security contact hears of it once, as after any reset.
    assert_eq!(contact_notices(&demo, new), 1);
    // Signed out everywhere (the policy's default).
    assert_eq!(revocations(&demo) - revocations_before, 1);
    let reset = events(&demo, "reset").await;
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(reset[0].outcome, latchkey_store::Outcome::Success);
    assert_eq!(reset[0].correlation_id, pending[0].correlation_id);
    assert_eq!(events(&demo, "sessions.revoke").await.len(), 1);
    let everything = format!("{:?}", events(&demo, "reset").await);
    assert!(!everything.contains(new), "no password in the audit trail");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_reported_while_the_page_waits_runs_the_steps_once() {
    let demo = portal().await;
    with_security_contact(&demo);
    let credential = connected_gateway(&demo).await;
    let new = "Birch-Lantern-Quartz-41";
    let mut b = carla_verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    let revocations_before = revocations(&demo);
    let notices_before = password_notices(&demo);

    // The agent takes the job while the page waits and reports success at once: the result
    // handler and the waiting page both reach for the steps after the change.
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", credential.expose());
    let agent = async {
        let offer: JobOffer = http
            .get(format!("{}{NEXT_PATH}?wait=10", demo.portal_url()))
            .header("authorization", &auth)
            .header(CAPABILITIES_HEADER, "reset")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .expect("the queued reset job is offered");
        assert_eq!(offer.new_password.as_deref(), Some(new));
        let report = JobReport {
            outcome: JobOutcome::Succeeded,
            object_dn: Some("CN=Carla,OU=Lab,DC=corp,DC=contoso,DC=example".into()),
        };
        let ack: Ack = http
            .post(format!(
                "{}/gateway/v1/jobs/{}/result",
                demo.portal_url(),
                offer.id
            ))
            .header("authorization", &auth)
            .json(&report)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(ack.recorded);
    };
    let form = [("csrf", csrf.as_str()), ("password", new), ("confirm", new)];
    let page = b.post("/reset", &form);
    let (page, ()) = tokio::join!(page, agent);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("has been set in your organisation"),
        "{}",
        page.body
    );
    // The page was there to see it: it ran the steps and says how the sign-out went.
    assert!(
        page.body.contains("You have been signed out"),
        "{}",
        page.body
    );
    assert!(events(&demo, "reset.pending").await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Once: one audit event, one notice per channel, one sign-out, one contact notice.
    let reset = events(&demo, "reset").await;
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(reset[0].outcome, latchkey_store::Outcome::Success);
    assert_eq!(password_notices(&demo) - notices_before, 3);
    assert_eq!(revocations(&demo) - revocations_before, 1);
    assert_eq!(events(&demo, "sessions.revoke").await.len(), 1);
    assert_eq!(contact_notices(&demo, new), 1);
    demo.stop().await;
}

fn revocations(demo: &Demo) -> usize {
    demo.sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/revokeSignInSessions"))
        .count()
}

/// A first report that was recorded but never reached the steps after the change (its audit or
/// job read failed, or the agent hung up): the agent's repeated report runs them, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_report_runs_the_steps_the_first_one_never_reached() {
    let demo = portal().await;
    let credential = connected_gateway(&demo).await;
    let new = "Harbor-Quill-Saffron-58";
    let mut b = carla_verified(&demo).await;
    let csrf = b.get("/reset").await.csrf();
    let page = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert!(
        page.body.contains("has not confirmed it yet"),
        "{}",
        page.body
    );
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", credential.expose());
    let offer: JobOffer = http
        .get(format!("{}{NEXT_PATH}?wait=5", demo.portal_url()))
        .header("authorization", &auth)
        .header(CAPABILITIES_HEADER, "reset")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("the queued reset job is offered");
    let notices_before = password_notices(&demo);
    let revocations_before = revocations(&demo);
    let report = JobReport {
        outcome: JobOutcome::Succeeded,
        object_dn: Some("CN=Carla,OU=Lab,DC=corp,DC=contoso,DC=example".into()),
    };
    // The first report, recorded in the store and nothing more.
    let gateway_id = credential
        .expose()
        .trim_start_matches("lkgw_")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let recorded = demo
        .store
        .finish_job(
            &offer.id,
            &gateway_id,
            true,
            &serde_json::to_value(&report).unwrap(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(recorded, latchkey_store::FinishOutcome::Recorded);
    assert!(events(&demo, "reset").await.is_empty());

    let url = format!("{}/gateway/v1/jobs/{}/result", demo.portal_url(), offer.id);
    for _ in 0..2 {
        let again: Ack = http
            .post(&url)
            .header("authorization", &auth)
            .json(&report)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!again.recorded);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reset = events(&demo, "reset").await;
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(password_notices(&demo) - notices_before, 3);
    assert_eq!(revocations(&demo) - revocations_before, 1);
    demo.stop().await;
}
