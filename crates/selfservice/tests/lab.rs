//! The test bench: the simulated tenant, an in-memory store, a policy set, and a notifier whose
//! transports keep what they send, wired into one [`SelfService`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use latchkey_entra_sim::{Fixture, Sim};
use latchkey_graph::{Credential, GraphClient, GraphConfig};
use latchkey_notify::{
    BoxFuture, Branding, Channels, DeliveryError, EmailTransport, NotifierHandle, PhoneNumber,
    RenderedEmail, SmsProvider,
};
use latchkey_selfservice::flow::Current;
use latchkey_selfservice::notices::start_notifier;
use latchkey_selfservice::verify;
use latchkey_selfservice::{DecoyKey, SelfService};
use latchkey_store::{AuditEvent, AuditQuery, Cipher, EncryptionKey, NewEnrollment};
use latchkey_types::{EmailAddress, MethodKind, ObjectId, Secret};
use latchkey_verify::{AuthenticatorApp, CodeConfig, CodeIssuer, CodeKey, SystemClock, TotpConfig};

pub const ADELE: &str = "adele.vance@contoso.com";
pub const ADELE_MAIL: &str = "adele.vance@outlook.example";
pub const ADELE_PHONE: &str = "+14255550109";
pub const CARLA: &str = "carla.mendes@contoso.com";
/// Never enrolled in Latchkey; phone and email registered in Entra.
pub const KOFI: &str = "kofi.mensah@contoso.com";
pub const KOFI_MAIL: &str = "kofi.mensah@proton.example";
pub const KOFI_PHONE: &str = "+233241234567";
pub const CLIENT: &str = "192.0.2.10";

/// What the transports were asked to send: (recipient, text).
#[derive(Default)]
pub struct Sent(Mutex<Vec<(String, String)>>);

impl Sent {
    pub fn to(&self, recipient: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| to == recipient)
            .map(|(_, text)| text.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct Capture(Arc<Sent>);

impl EmailTransport for Capture {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let text = format!("{}\n{}", email.subject, email.text.expose());
        self.0.0.lock().unwrap().push((to.to_string(), text));
        Box::pin(std::future::ready(Ok(())))
    }
}

impl SmsProvider for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    fn send<'a>(
        &'a self,
        to: &'a PhoneNumber,
        body: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let text = body.expose().clone();
        self.0
            .0
            .lock()
            .unwrap()
            .push((to.as_str().to_string(), text));
        Box::pin(std::future::ready(Ok(())))
    }
}

pub struct Lab {
    pub sim: Sim,
    pub s: Arc<SelfService>,
    pub sent: Arc<Sent>,
    _queue: NotifierHandle,
}

/// The demo app's registration in the simulated tenant.
const CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
const CLIENT_SECRET: &str = "demo-secret-value";

impl Lab {
    /// The demo tenant; one policy for "SSPR Enabled" allowing `actions` with email and text
    /// (two required); Adele enrolled in both.
    pub async fn start(actions: &str) -> Lab {
        Self::start_limited(actions, latchkey_selfservice::flow::Limits::default()).await
    }

    /// [`Lab::start`] with other throttle limits (the configuration's `[limits]`).
    pub async fn start_limited(actions: &str, limits: latchkey_selfservice::flow::Limits) -> Lab {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = Sim::start(Fixture::demo()).await.expect("simulator starts");
        let mut config = GraphConfig::new(
            sim.tenant_id(),
            CLIENT_ID,
            Credential::ClientSecret(Secret::new(CLIENT_SECRET.into())),
        );
        config.authority_host = sim.base_url().trim_end_matches('/').to_string();
        config.graph_base_url = sim.graph_base_url().trim_end_matches('/').to_string();
        config.timeouts.request = Duration::from_secs(2);
        let graph = GraphClient::new(config).expect("graph client");
        let key = EncryptionKey::generate().unwrap();
        let store = latchkey_store::open("sqlite::memory:", Cipher::new(&key))
            .await
            .expect("store");
        let sent = Arc::new(Sent::default());
        let clock: Arc<dyn latchkey_verify::Clock> = Arc::new(SystemClock);
        let (notifier, queue, outbox) = start_notifier(
            Arc::clone(&store),
            Branding {
                product_name: "Latchkey test".into(),
                helpdesk: None,
                portal_url: None,
            },
            Channels {
                email: Some(Arc::new(Capture(Arc::clone(&sent)))),
                sms: Some(Arc::new(Capture(Arc::clone(&sent)))),
            },
            Arc::clone(&clock),
            latchkey_selfservice::notices::DEFAULT_LEASE,
        )
        .unwrap();
        outbox.spawn();
        let s = Arc::new(SelfService {
            store,
            directory: Arc::new(graph),
            mirror: None,
            writeback: RwLock::new(None),
            policies: RwLock::new(Arc::new(policy_set(&sim, actions))),
            codes: Arc::new(
                CodeIssuer::new(
                    CodeKey::from_bytes(&Secret::new(vec![7; 32])).unwrap(),
                    CodeConfig::default(),
                )
                .unwrap(),
            ),
            totp: AuthenticatorApp::new(TotpConfig::new("Latchkey test")).unwrap(),
            questions: questions(),
            attributes: latchkey_selfservice::attribute::method().unwrap(),
            notifier,
            outbox,
            cipher: Cipher::new(&key),
            clock,
            decoy_key: DecoyKey::new(&[9; 32]),
            deadline: Duration::from_millis(10),
            graph_budget: Duration::from_secs(20),
            gateway_wait: Duration::from_millis(1500),
            passwords: latchkey_selfservice::password::PasswordChecks::new(None),
            limits,
            passkeys: None,
        });
        let lab = Lab {
            sim,
            s,
            sent,
            _queue: queue,
        };
        lab.enroll(ADELE, Some(ADELE_MAIL), Some(ADELE_PHONE)).await;
        lab
    }

    pub fn user(&self, upn: &str) -> ObjectId {
        self.sim.tenant().user_id(upn).unwrap().parse().unwrap()
    }

    /// Puts a policy set allowing `actions` in force (as a reload would).
    pub fn set_actions(&self, actions: &str) {
        *self.s.policies.write().unwrap() = Arc::new(policy_set(&self.sim, actions));
    }

    /// The same policy with `sources = [sources]` (e.g. `"\"entra\""`).
    pub fn set_sources(&self, sources: &str) {
        let set = policy_set_with(&self.sim, r#""reset""#, &format!("sources = [{sources}]\n"));
        *self.s.policies.write().unwrap() = Arc::new(set);
    }

    pub async fn enroll(&self, upn: &str, email: Option<&str>, phone: Option<&str>) {
        let id = self.user(upn);
        let now = self.s.clock.now();
        let methods = [
            ("email", email.map(|e| serde_json::json!({ "address": e }))),
            ("sms", phone.map(|p| serde_json::json!({ "phone": p }))),
        ];
        for (method, data) in methods {
            let Some(data) = data else { continue };
            let new = NewEnrollment {
                subject: id,
                method: method.into(),
                data,
                secret: None,
            };
            self.s.store.stage_enrollment(new, now).await.unwrap();
            self.s
                .store
                .activate_enrollment(&id, method, now)
                .await
                .unwrap();
        }
    }

    /// A started flow of `login`, loaded as a request would.
    pub async fn start_flow(&self, login: &str) -> Current {
        let started = latchkey_selfservice::identify::start(&self.s, login, CLIENT)
            .await
            .expect("a flow starts");
        self.load(started.token).await
    }

    pub async fn load(&self, token: latchkey_store::FlowToken) -> Current {
        Current::load(&self.s, token)
            .await
            .unwrap()
            .expect("the flow lives")
    }

    /// The newest code sent to `recipient` (waits for the send queue).
    pub async fn code_for(&self, recipient: &str) -> String {
        for _ in 0..200 {
            if let Some(code) = self.sent.to(recipient).last().and_then(|t| code_in(t)) {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no code was sent to {recipient}");
    }

    /// Proves one code method of `current`; returns the flow as it is afterwards.
    pub async fn prove(&self, current: Current, kind: MethodKind, to: &str) -> Current {
        let before = self.sent.to(to).len();
        verify::send_code(&self.s, &current, kind).await.unwrap();
        for _ in 0..200 {
            if self.sent.to(to).len() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let code = Secret::new(self.code_for(to).await);
        let v = verify::check_code(&self.s, &current, kind, &code, CLIENT)
            .await
            .expect("the code is accepted");
        self.load(v.token).await
    }

    /// Adele's flow, verified with email and text.
    pub async fn verified_adele(&self) -> Current {
        let current = self.start_flow(ADELE).await;
        let current = self.prove(current, MethodKind::Email, ADELE_MAIL).await;
        let current = self.prove(current, MethodKind::Sms, ADELE_PHONE).await;
        assert!(current.is_complete());
        current
    }

    /// The audit events of `correlation_id`, oldest first.
    pub async fn audit(&self, correlation_id: &str) -> Vec<AuditEvent> {
        let query = AuditQuery {
            correlation_id: Some(correlation_id.to_string()),
            ..AuditQuery::default()
        };
        let mut records = self.s.store.audit_events(&query).await.unwrap();
        records.reverse();
        records.into_iter().map(|r| r.event).collect()
    }

    /// `(event type, outcome)` of the audit events of `correlation_id`, oldest first.
    pub async fn trail(&self, correlation_id: &str) -> Vec<(String, String)> {
        self.audit(correlation_id)
            .await
            .into_iter()
            .map(|e| (e.event_type, e.outcome.as_str().to_string()))
            .collect()
    }

    /// The outcomes of the `event` audit events of `correlation_id`, oldest first (delivery
    /// records of notices land beside them whenever the queue sends: they are left out).
    pub async fn outcomes(&self, correlation_id: &str, event: &str) -> Vec<String> {
        self.trail(correlation_id)
            .await
            .into_iter()
            .filter(|(e, _)| e == event)
            .map(|(_, outcome)| outcome)
            .collect()
    }

    /// How many password writes reached the tenant.
    pub fn password_writes(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/users/"))
            .count()
    }
}

fn policy_set(sim: &Sim, actions: &str) -> latchkey_policy::PolicySet {
    policy_set_with(sim, actions, "")
}

fn policy_set_with(sim: &Sim, actions: &str, extra: &str) -> latchkey_policy::PolicySet {
    let group = sim.tenant().group_id("SSPR Enabled").unwrap();
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [{actions}]\nmethods = [\"email\", \"sms\", \"totp\"]\nmethods_required = 2\n{extra}"
    );
    latchkey_policy::parse_sources(&[(PathBuf::from("test.toml"), text)]).unwrap()
}

fn questions() -> latchkey_verify::SecurityQuestions {
    let hasher = latchkey_verify::Hasher::new(latchkey_verify::HasherConfig::default()).unwrap();
    latchkey_verify::SecurityQuestions::new(hasher, latchkey_verify::QuestionsConfig::default())
        .unwrap()
}

/// The first run of six or more digits in a message.
fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 6)
        .map(str::to_string)
}
