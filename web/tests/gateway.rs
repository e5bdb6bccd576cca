//! The on-premises gateway end to end against the real Samba AD DC that `tests/run` starts
//! (tests/samba/lab.sh; LATCHKEY_TEST_* variables): the portal (demo app over HTTP) queues jobs,
//! the agent (`latchkey_gateway::agent`, in-process) long-polls for them with its credential and
//! does them over LDAPS as the delegated connector account; the outcome shows on the user's page
//! and in AD. Without the lab these tests fail: a missing directory is a failure, never a skip.
//!
//! Each test has its own demo portal, its own gateway credential, and its own AD account (unique
//! sAMAccountName in its own OU), so they run in parallel on one domain.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_ad::ldap::{Directory, LdapSettings, TrustSource};
use latchkey_entra_sim::Fixture;
use latchkey_gateway::config::AgentConfig;
use latchkey_jobs::{FailureReason, JobOutcome, JobReport};
use latchkey_store::{JobState, NewJob};
use latchkey_types::Secret;

use crate::portal::{Browser, code_for};

const CARLA: &str = "carla.mendes@contoso.com";
const CARLA_MAIL: &str = "carla.mendes@outlook.example";
pub(crate) const PASSWORD: &str = "Lab-Unl0ck!Passw0rd";

pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run tests/run (starts Samba), or `tests/samba/lab.sh install up \
             seed delegate` and `eval \"$(tests/samba/lab.sh env)\"`"
        )
    })
}

pub(crate) fn file(name: &str) -> String {
    std::fs::read_to_string(var(name))
        .unwrap()
        .trim_end()
        .to_string()
}

fn settings(bind_dn: &str, password: &str) -> LdapSettings {
    LdapSettings {
        url: var("LATCHKEY_TEST_LDAP_URL"),
        bind_dn: bind_dn.to_string(),
        password: Secret::new(password.to_string()),
        trust: TrustSource::CaFile(PathBuf::from(var("LATCHKEY_TEST_CA_FILE"))),
        timeout: Duration::from_secs(20),
        page_size: 100,
    }
}

fn realm() -> String {
    var("LATCHKEY_TEST_BASE_DN")
        .split(',')
        .filter_map(|r| r.strip_prefix("DC="))
        .collect::<Vec<_>>()
        .join(".")
}

fn unicode_pwd(pw: &str) -> Vec<u8> {
    format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// One test's AD side: an OU and a user in it.
pub(crate) struct AdUser {
    pub(crate) sam: String,
    pub(crate) dn: String,
    ou: String,
}

impl AdUser {
    async fn admin() -> Directory {
        Directory::connect(&settings(
            &var("LATCHKEY_TEST_ADMIN_DN"),
            &file("LATCHKEY_TEST_ADMIN_PASSWORD_FILE"),
        ))
        .await
        .expect("admin bind to the lab")
    }

    pub(crate) async fn create(tag: &str) -> AdUser {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}{}",
            std::process::id() % 10_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let sam: String = format!("lk{tag}{id}").chars().take(20).collect();
        let ou = format!("OU=lk-gw-{tag}-{id},{}", var("LATCHKEY_TEST_BASE_DN"));
        let dn = format!("CN={sam},{ou}");
        let mut admin = Self::admin().await;
        admin
            .add(
                &ou,
                &[("objectClass", vec![b"organizationalUnit".to_vec()])],
            )
            .await
            .unwrap();
        admin
            .add(
                &dn,
                &[
                    ("objectClass", vec![b"user".to_vec()]),
                    ("sAMAccountName", vec![sam.as_bytes().to_vec()]),
                    ("unicodePwd", vec![unicode_pwd(PASSWORD)]),
                    ("userAccountControl", vec![b"512".to_vec()]),
                ],
            )
            .await
            .unwrap();
        admin.unbind().await;
        AdUser { sam, dn, ou }
    }

    /// Simple bind as the user; `Err` carries AD's reason (e.g. "locked out").
    pub(crate) async fn bind(&self, password: &str) -> Result<(), String> {
        match Directory::connect(&settings(&format!("{}@{}", self.sam, realm()), password)).await {
            Ok(d) => {
                d.unbind().await;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Three bad passwords (the lab's lockout threshold), then even the right one is refused.
    pub(crate) async fn lock(&self) {
        for _ in 0..3 {
            let _ = self.bind("wrong-password-1!").await;
        }
        let e = self.bind(PASSWORD).await.unwrap_err();
        assert!(
            e.contains("locked out"),
            "the account should be locked: {e}"
        );
    }

    async fn attr(&self, name: &str) -> i64 {
        let mut admin = Self::admin().await;
        let e = admin.read(&self.dn, &[name], None).await.unwrap().unwrap();
        admin.unbind().await;
        e.i64(name).unwrap_or(0)
    }

    pub(crate) async fn lockout_time(&self) -> i64 {
        self.attr("lockoutTime").await
    }

    pub(crate) async fn remove(self) {
        let mut admin = Self::admin().await;
        let _ = admin.delete(&self.dn).await;
        let _ = admin.delete(&self.ou).await;
        admin.unbind().await;
    }
}

/// The demo portal with Carla (synced, enrolled email + text) mapped to `sam` in the lab domain.
pub(crate) async fn portal_for(sam: &str) -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut fixture = Fixture::demo();
    let carla = fixture
        .users
        .iter_mut()
        .find(|u| u.upn == CARLA)
        .expect("Carla is in the demo tenant");
    carla.on_premises_sam_account_name = Some(sam.to_string());
    carla.on_premises_domain_name = Some(realm());
    demo::start_with(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            fixture,
            ..DemoOptions::default()
        },
    )
    .await
    .expect("demo starts")
}

/// [`portal_for`] without the delegated writeback credential: synced users reset through a
/// gateway or not at all.
async fn portal_without_writeback_for(sam: &str) -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut fixture = Fixture::demo();
    let carla = fixture
        .users
        .iter_mut()
        .find(|u| u.upn == CARLA)
        .expect("Carla is in the demo tenant");
    carla.on_premises_sam_account_name = Some(sam.to_string());
    carla.on_premises_domain_name = Some(realm());
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

/// Registers a gateway in the portal's store, allowed to unlock and reset; returns its
/// credential.
pub(crate) async fn register(demo: &Demo, name: &str) -> Secret<String> {
    let issued = latchkey::gateway::credential::generate().unwrap();
    let allowed = ["unlock".to_string(), "reset".to_string()];
    let g = demo
        .store
        .register_gateway(
            name,
            &issued.hash,
            &allowed,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    latchkey::gateway::credential::format(&g.id, &issued.secret)
}

/// An agent configuration bound as `bind_dn` (default: the lab's delegated connector).
fn agent_config(
    demo: &Demo,
    credential: Secret<String>,
    service: Option<(&str, &str)>,
) -> AgentConfig {
    let (dn, pw) = match service {
        Some((dn, pw)) => (dn.to_string(), pw.to_string()),
        None => (
            var("LATCHKEY_TEST_CONNECTOR_DN"),
            file("LATCHKEY_TEST_CONNECTOR_PASSWORD_FILE"),
        ),
    };
    AgentConfig {
        ldap: settings(&dn, &pw),
        base_dn: None,
        portal_url: demo.portal_url().to_string(),
        credential,
        portal_trust: TrustSource::System,
        poll_seconds: 2,
        unlock: true,
        reset: true,
        must_change_after_reset: false,
        domains: vec![],
    }
}

/// A running agent; stopped (between jobs) by [`Agent::stop`].
struct Agent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), latchkey_gateway::agent::AgentError>>,
}

impl Agent {
    fn start(cfg: AgentConfig) -> Agent {
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(latchkey_gateway::agent::run(cfg, async move {
            let _ = rx.await;
        }));
        Agent { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// Waits until a gateway has polled (so the portal counts it as connected).
pub(crate) async fn until_connected(demo: &Demo) {
    for _ in 0..100 {
        let gws = demo.store.gateways().await.unwrap();
        if gws.iter().any(|g| g.last_seen_at.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the agent never polled the portal");
}

/// Carla verified (email + text): the browser on the action page.
async fn carla_verified(demo: &Demo) -> Browser {
    carla_verified_in(demo, Browser::new(demo)).await
}

/// [`carla_verified`] in the browser `b` (a kiosk's, say).
async fn carla_verified_in(demo: &Demo, mut b: Browser) -> Browser {
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

/// Carla verified, then "Unlock my account" posted: the result page.
pub(crate) async fn carla_unlocks(demo: &Demo) -> crate::portal::Page {
    let mut b = carla_verified(demo).await;
    let csrf = b.get("/action").await.csrf();
    b.post("/unlock", &[("csrf", &csrf)]).await
}

/// Carla verified, then a new password submitted: the result page.
async fn carla_resets(demo: &Demo, password: &str) -> crate::portal::Page {
    let mut b = carla_verified(demo).await;
    let csrf = b.get("/reset").await.csrf();
    b.post(
        "/reset",
        &[
            ("csrf", &csrf),
            ("password", password),
            ("confirm", password),
        ],
    )
    .await
}

/// The audit events of `event_type` that record an outcome (not the `started` record a change
/// writes before it is made: [`started`]).
pub(crate) async fn audit(demo: &Demo, event_type: &str) -> Vec<latchkey_store::AuditEvent> {
    all_audit(demo, event_type)
        .await
        .into_iter()
        .filter(|e| e.outcome != latchkey_store::Outcome::Started)
        .collect()
}

/// The `started` records of `event_type`.
async fn started(demo: &Demo, event_type: &str) -> Vec<latchkey_store::AuditEvent> {
    all_audit(demo, event_type)
        .await
        .into_iter()
        .filter(|e| e.outcome == latchkey_store::Outcome::Started)
        .collect()
}

async fn all_audit(demo: &Demo, event_type: &str) -> Vec<latchkey_store::AuditEvent> {
    crate::helpers::audit_of(demo, event_type).await
}

/// Queues a job directly (what the reset/unlock pages do) and waits for it to finish.
async fn run_job(
    demo: &Demo,
    kind: &str,
    sam: &str,
    password: Option<&str>,
) -> latchkey_store::Job {
    let target = serde_json::json!({ "sam_account_name": sam, "domain": realm() });
    run_job_on(demo, kind, target, password).await
}

/// [`run_job`] with the job target as given.
async fn run_job_on(
    demo: &Demo,
    kind: &str,
    target: serde_json::Value,
    password: Option<&str>,
) -> latchkey_store::Job {
    let now = time::OffsetDateTime::now_utc();
    let job = demo
        .store
        .enqueue_job(
            NewJob {
                kind: latchkey_store::JobKind::parse(kind).unwrap(),
                subject: latchkey_types::ObjectId::new_random(),
                // The stored layout, as a portal writes it.
                target: serde_json::from_value(target).unwrap(),
                secret: password.map(|p| Secret::new(p.to_string())),
                correlation_id: "test".into(),
                expires_at: now + Duration::from_secs(60),
            },
            now,
        )
        .await
        .unwrap();
    for _ in 0..300 {
        let j = demo
            .store
            .job(&job.id, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .unwrap();
        if j.state.is_finished() {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the job did not finish");
}

fn report(job: &latchkey_store::Job) -> JobReport {
    serde_json::from_value(job.result.clone().expect("a result")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_synced_user_is_unlocked_through_the_portal_and_can_bind_again() {
    let user = AdUser::create("unl").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let agent = Agent::start(agent_config(&demo, register(&demo, "site-a").await, None));
    until_connected(&demo).await;

    let page = carla_unlocks(&demo).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("has been unlocked in your organisation"),
        "{}",
        page.body
    );
    assert_eq!(user.lockout_time().await, 0);
    user.bind(PASSWORD)
        .await
        .expect("the right password works again");

    let unlock = audit(&demo, "unlock").await;
    assert_eq!(unlock.len(), 1);
    assert_eq!(unlock[0].outcome, latchkey_store::Outcome::Success);
    // Recorded as started before the job was queued, under the same correlation id.
    let begun = started(&demo, "unlock").await;
    assert_eq!(begun.len(), 1);
    assert_eq!(begun[0].correlation_id, unlock[0].correlation_id);
    let claimed = audit(&demo, "gateway.job.claimed").await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].actor, "gateway:site-a");
    assert_eq!(claimed[0].correlation_id, unlock[0].correlation_id);
    let result = audit(&demo, "gateway.job.result").await;
    assert_eq!(result[0].outcome, latchkey_store::Outcome::Success);
    assert_eq!(result[0].details["object_dn"], user.dn.as_str());
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_helpdesk_unlocks_a_verified_callers_account_through_the_gateway() {
    let user = AdUser::create("hdu").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let agent = Agent::start(agent_config(&demo, register(&demo, "site-h").await, None));
    until_connected(&demo).await;

    let mut b = Browser::new(&demo);
    crate::admin::sign_in(&demo, &mut b, "/helpdesk", crate::admin::FARID).await;
    crate::helpdesk::verify_caller(&demo, &mut b, CARLA, CARLA_MAIL).await;
    let id = crate::helpdesk::oid(&demo, CARLA);
    let page = b.get(&format!("/helpdesk/user?q={id}")).await;
    assert!(
        page.body
            .contains("Unlock the account in the on-premises directory"),
        "{}",
        page.body
    );
    let done = b
        .post("/helpdesk/unlock", &[("csrf", &page.csrf()), ("q", &id)])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("has been unlocked in your organisation"),
        "{}",
        done.body
    );
    assert_eq!(user.lockout_time().await, 0);
    user.bind(PASSWORD)
        .await
        .expect("the right password works again");
    let unlocked = audit(&demo, "helpdesk.unlock").await;
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0].outcome, latchkey_store::Outcome::Success);
    assert_eq!(
        unlocked[0].actor,
        crate::helpdesk::oid(&demo, crate::admin::FARID.0)
    );
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_connected_gateway_the_page_says_so_and_nothing_is_queued() {
    let user = AdUser::create("none").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    // Registered but never polled: not connected.
    let _ = register(&demo, "idle").await;
    let page = carla_unlocks(&demo).await;
    assert!(
        page.body
            .contains("unlocking it from here is not available"),
        "{}",
        page.body
    );
    let unlock = audit(&demo, "unlock").await;
    assert_eq!(unlock[0].outcome, latchkey_store::Outcome::Denied);
    assert!(
        user.bind(PASSWORD)
            .await
            .unwrap_err()
            .contains("locked out")
    );
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_job_sets_the_new_password_in_ad_and_unlocks() {
    let user = AdUser::create("rst").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let agent = Agent::start(agent_config(&demo, register(&demo, "site-r").await, None));
    let before = user.attr("pwdLastSet").await;
    let new = "Amber-Lantern-Orchard-58";
    let job = run_job(&demo, "reset", &user.sam, Some(new)).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.result);
    user.bind(new).await.expect("the new password works");
    // (The old password is not tested: like Windows for NTLM, Samba keeps accepting it for the
    // "old password allowed period" after a reset.)
    assert!(user.attr("pwdLastSet").await > before, "pwdLastSet moved");
    assert_eq!(
        user.lockout_time().await,
        0,
        "and the reset unlocked the account"
    );
    // The password appears nowhere in the audit trail or the stored result.
    let all = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!format!("{all:?}").contains(new));
    assert!(!job.result.unwrap().to_string().contains(new));

    // Too short for the domain's policy: 0000052D becomes a plain reason, nothing changes.
    let job = run_job(&demo, "reset", &user.sam, Some("x1!")).await;
    assert_eq!(job.state, JobState::Failed);
    match report(&job).outcome {
        JobOutcome::Failed { reason, detail } => {
            assert_eq!(reason, FailureReason::PasswordPolicy, "{detail}");
            assert!(detail.contains("0000052D"), "{detail}");
        }
        o => panic!("{o:?}"),
    }
    user.bind(new)
        .await
        .expect("unchanged after a refused reset");

    // An account that does not exist.
    let job = run_job(&demo, "unlock", "nobody-here-1", None).await;
    assert!(matches!(
        report(&job).outcome,
        JobOutcome::Failed {
            reason: FailureReason::NotFound,
            ..
        }
    ));
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_account_without_the_right_gets_insufficient_rights_in_plain_words() {
    let user = AdUser::create("deny").await;
    user.lock().await;
    // An ordinary account as the gateway's service account: no delegated rights.
    let weak = AdUser::create("weak").await;
    let demo = portal_for(&user.sam).await;
    let weak_dn = format!("{}@{}", weak.sam, realm());
    let agent = Agent::start(agent_config(
        &demo,
        register(&demo, "site-weak").await,
        Some((&weak_dn, PASSWORD)),
    ));
    until_connected(&demo).await;
    let page = carla_unlocks(&demo).await;
    assert!(
        page.body.contains("not permitted to unlock it"),
        "{}",
        page.body
    );
    let result = audit(&demo, "gateway.job.result").await;
    let reason = result[0].reason.clone().unwrap_or_default();
    assert!(reason.starts_with("insufficient_rights"), "{reason}");
    assert_eq!(
        audit(&demo, "unlock").await[0].outcome,
        latchkey_store::Outcome::Failure
    );
    assert!(
        user.bind(PASSWORD)
            .await
            .unwrap_err()
            .contains("locked out")
    );
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
    weak.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_job_is_never_run() {
    let user = AdUser::create("exp").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let now = time::OffsetDateTime::now_utc();
    let job = demo
        .store
        .enqueue_job(
            NewJob {
                kind: latchkey_store::JobKind::Unlock,
                subject: latchkey_types::ObjectId::new_random(),
                target: serde_json::from_value(
                    serde_json::json!({ "sam_account_name": user.sam, "domain": realm() }),
                )
                .unwrap(),
                secret: None,
                correlation_id: "test-expiry".into(),
                expires_at: now + Duration::from_millis(300),
            },
            now,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The gateway connects only after the deadline.
    let agent = Agent::start(agent_config(&demo, register(&demo, "late").await, None));
    until_connected(&demo).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let j = demo
        .store
        .job(&job.id, time::OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.state, JobState::Expired);
    assert!(j.gateway_id.is_none(), "never handed out");
    assert!(user.lockout_time().await != 0, "still locked");
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_never_run_one_job_twice_and_a_repeated_report_changes_nothing() {
    let user = AdUser::create("once").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let cred_a = register(&demo, "a").await;
    let cred_b = register(&demo, "b").await;
    let a = Agent::start(agent_config(&demo, cred_a.clone(), None));
    let b = Agent::start(agent_config(&demo, cred_b, None));
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(run_job(&demo, "unlock", &user.sam, None).await.id);
    }
    let claimed = audit(&demo, "gateway.job.claimed").await;
    assert_eq!(claimed.len(), 4, "each job handed out exactly once");
    assert_eq!(audit(&demo, "gateway.job.result").await.len(), 4);
    assert_eq!(user.lockout_time().await, 0);
    a.stop().await;
    b.stop().await;

    // Replaying a report: same result -> recorded: false; another result -> 409; another
    // gateway's job -> 404.
    let http = reqwest::Client::new();
    let job = demo
        .store
        .job(&ids[0], time::OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    let owner = demo
        .store
        .gateways()
        .await
        .unwrap()
        .into_iter()
        .find(|g| Some(&g.id) == job.gateway_id.as_ref())
        .unwrap();
    let mine = if owner.name == "a" {
        cred_a.clone()
    } else {
        register(&demo, "spare").await
    };
    let url = format!(
        "{}{}",
        demo.portal_url(),
        latchkey_jobs::result_path(&ids[0])
    );
    let same = serde_json::from_value::<JobReport>(job.result.clone().unwrap()).unwrap();
    let r = http
        .post(&url)
        .bearer_auth(mine.expose())
        .json(&same)
        .send()
        .await
        .unwrap();
    if owner.name == "a" {
        assert_eq!(r.status(), 200);
        let ack: latchkey_jobs::Ack = r.json().await.unwrap();
        assert!(!ack.recorded);
        let other = JobReport {
            outcome: JobOutcome::Failed {
                reason: FailureReason::Other,
                detail: "x".into(),
            },
            object_dn: None,
        };
        let r = http
            .post(&url)
            .bearer_auth(mine.expose())
            .json(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
    } else {
        assert_eq!(
            r.status(),
            404,
            "a gateway cannot report another gateway's job"
        );
    }
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_revoked_gateway_credential_is_refused_and_audited() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let good = register(&demo, "site").await;
    let http = reqwest::Client::new();
    let next = format!("{}{}?wait=0", demo.portal_url(), latchkey_jobs::NEXT_PATH);
    let r = http
        .get(&next)
        .bearer_auth(good.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Same id, another secret; garbage; none at all.
    let (id, _) = good.expose().rsplit_once('.').unwrap();
    let forged = format!("{id}.{}", "A".repeat(43));
    for auth in [Some(forged.as_str()), Some("lkgw_nope.xyz"), None] {
        let mut req = http.get(&next);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
    }
    let denied = audit(&demo, "gateway.auth").await;
    assert_eq!(denied.len(), 3);
    assert!(
        denied
            .iter()
            .all(|e| e.outcome == latchkey_store::Outcome::Denied)
    );
    assert!(
        !format!("{denied:?}").contains(&"A".repeat(43)),
        "no credential in the audit"
    );
    // Revoked: refused at once, and the agent stops with an error instead of retrying forever.
    assert!(
        demo.store
            .revoke_gateway("site", time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    let r = http
        .get(&next)
        .bearer_auth(good.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let agent = Agent::start(agent_config(&demo, good, None));
    let ended = tokio::time::timeout(Duration::from_secs(10), agent.task)
        .await
        .expect("the agent gives up on a refused credential")
        .unwrap();
    assert!(matches!(
        ended,
        Err(latchkey_gateway::agent::AgentError::Unauthorized)
    ));
    // Wrong credentials from one address are throttled: 429 after ten.
    let mut last = 0;
    for _ in 0..12 {
        last = http
            .get(&next)
            .bearer_auth("lkgw_nope.xyz")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_not_done_in_time_is_reported_as_in_progress() {
    let demo = portal_for("nobody-polls").await;
    // A gateway that polled a moment ago (so it counts as connected) but takes nothing now.
    let _ = register(&demo, "stalled").await;
    let g = demo.store.gateways().await.unwrap().remove(0);
    demo.store
        .gateway_seen(
            &g.id,
            &["unlock".to_string()],
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let page = carla_unlocks(&demo).await;
    assert!(
        page.body.contains("has not confirmed it yet"),
        "{}",
        page.body
    );
    // The page waited for the result, but only a bounded time.
    let waited = started.elapsed();
    assert!(
        waited >= latchkey_selfservice::gateway::RESULT_WAIT
            && waited < latchkey_selfservice::gateway::RESULT_WAIT * 2,
        "{waited:?}"
    );
    let unlock = audit(&demo, "unlock").await;
    assert!(
        unlock[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("no result within the wait"),
        "{unlock:?}"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_delegated_writeback_a_synced_user_resets_through_the_gateway() {
    let user = AdUser::create("prs").await;
    user.lock().await;
    let demo = portal_without_writeback_for(&user.sam).await;
    let agent = Agent::start(agent_config(
        &demo,
        register(&demo, "site-reset").await,
        None,
    ));
    until_connected(&demo).await;
    let new = "Quartz-Meadow-Lantern-93";
    let page = carla_resets(&demo, new).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("has been set in your organisation"),
        "{}",
        page.body
    );
    user.bind(new)
        .await
        .expect("the chosen password works in AD");
    assert_eq!(user.lockout_time().await, 0);
    let reset = audit(&demo, "reset").await;
    assert_eq!(reset[0].outcome, latchkey_store::Outcome::Success);
    assert!(
        reset[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("gateway")
    );
    let everything = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !format!("{everything:?}").contains(new),
        "no password in the audit trail"
    );
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_may_only_unlock_does_not_reset() {
    let user = AdUser::create("nrs").await;
    let demo = portal_without_writeback_for(&user.sam).await;
    let mut cfg = agent_config(&demo, register(&demo, "unlock-only").await, None);
    cfg.reset = false;
    let agent = Agent::start(cfg);
    until_connected(&demo).await;
    let page = carla_resets(&demo, "Quartz-Meadow-Lantern-94").await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("not available"), "{}", page.body);
    user.bind(PASSWORD).await.expect("unchanged");
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_registers_lists_and_revokes_gateways() {
    use crate::helpers::{TempDir, config_for, latchkey, sim, stderr, stdout};
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("policies")).unwrap();
    let config = config_for(
        &sim,
        &dir,
        "[store]\ndatabase_url = \"sqlite://gw.db\"\nkey_file = \"gw.key\"\n[policies]\ndir = \"policies\"\n",
    );
    let config = config.to_str().unwrap();
    let out = latchkey(&["gateway", "register", "site-a", "--config", config], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let credential = stdout(&out).trim().to_string();
    assert!(credential.starts_with("lkgw_"), "{credential}");
    assert!(
        !stderr(&out).contains(&credential),
        "printed once, on stdout only"
    );
    let again = latchkey(&["gateway", "register", "site-a", "--config", config], &[]).await;
    assert!(
        !again.status.success(),
        "a live name cannot be registered twice"
    );
    // Resets (new passwords) only when granted: `--allow reset`; site-a may only unlock.
    let reset = latchkey(
        &[
            "gateway", "register", "site-b", "--allow", "reset", "--config", config,
        ],
        &[],
    )
    .await;
    assert!(reset.status.success(), "{}", stderr(&reset));
    let bad = latchkey(
        &[
            "gateway", "register", "site-c", "--allow", "all", "--config", config,
        ],
        &[],
    )
    .await;
    assert!(!bad.status.success(), "an unknown kind is refused");
    let list = latchkey(&["gateway", "list", "--config", config], &[]).await;
    let text = stdout(&list);
    assert!(
        text.contains("site-a") && text.contains("not connected"),
        "{text}"
    );
    let line = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or("");
    assert!(line("site-a").contains("allowed: unlock "), "{text}");
    assert!(line("site-b").contains("allowed: unlock, reset"), "{text}");
    assert!(!text.contains("site-c"), "{text}");
    assert!(
        !text.contains(&credential),
        "the list never shows a credential"
    );
    let revoke = latchkey(&["gateway", "revoke", "site-a", "--config", config], &[]).await;
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    let list = latchkey(&["gateway", "list", "--config", config], &[]).await;
    assert!(stdout(&list).contains("revoked"), "{}", stdout(&list));
    let twice = latchkey(&["gateway", "revoke", "site-a", "--config", config], &[]).await;
    assert_eq!(twice.status.code(), Some(1));
    // The store keeps only the hash: the credential's secret is nowhere in the database file.
    let (_, secret) = credential.rsplit_once('.').unwrap();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_privileged_account_is_refused_unless_the_policy_allows_it() {
    let user = AdUser::create("adm").await;
    // What SDProp stamps on members of protected groups; the DACL is left as is, so only the
    // gateway's own check can refuse (the connector has the right).
    let mut admin = AdUser::admin().await;
    admin.replace(&user.dn, "adminCount", &["1"]).await.unwrap();
    admin.unbind().await;
    let demo = portal_for(&user.sam).await;
    let agent = Agent::start(agent_config(&demo, register(&demo, "site-p").await, None));
    let new = "Privileged-Refused-77";
    let refused = run_job(&demo, "reset", &user.sam, Some(new)).await;
    assert_eq!(refused.state, JobState::Failed);
    match report(&refused).outcome {
        JobOutcome::Failed { reason, detail } => {
            assert_eq!(reason, FailureReason::NotAllowed, "{detail}");
            assert!(detail.contains("adminCount"), "{detail}");
        }
        o => panic!("refused expected: {o:?}"),
    }
    assert!(
        user.bind(new).await.is_err(),
        "the password was not changed"
    );
    user.bind(PASSWORD)
        .await
        .expect("the old password still works");
    // A policy that names privileged accounts: the same job goes through.
    let target = serde_json::json!({
        "sam_account_name": user.sam,
        "domain": realm(),
        "allow_privileged": true,
    });
    let allowed = run_job_on(&demo, "reset", target, Some(new)).await;
    assert_eq!(allowed.state, JobState::Succeeded, "{:?}", allowed.result);
    user.bind(new).await.expect("the new password works");
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_unlock_ends_on_a_page_that_says_to_sign_in_here_with_the_current_password() {
    let user = AdUser::create("kio").await;
    user.lock().await;
    let demo = portal_for(&user.sam).await;
    let agent = Agent::start(agent_config(&demo, register(&demo, "site-k").await, None));
    until_connected(&demo).await;
    let mut kiosk = Browser::new(&demo);
    assert_eq!(kiosk.get("/kiosk").await.status, 200);
    let mut b = carla_verified_in(&demo, kiosk).await;
    let csrf = b.get("/action").await.csrf();
    let page = b.post("/unlock", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<body class=\"kiosk\">"));
    assert!(
        page.body.contains("has been unlocked in your organisation"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("with your work account and your current password"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("new password"), "{}", page.body);
    assert!(
        page.body.contains("content=\"30;url=/kiosk\""),
        "the final page's time"
    );
    assert_eq!(user.lockout_time().await, 0);
    agent.stop().await;
    demo.stop().await;
    user.remove().await;
}
