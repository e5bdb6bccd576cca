//! Everything the self-service flows talk to, built once at start-up and shared by every worker.
//! Each I/O seam is a trait object (store, directory, notifier transports) so tests and the demo
//! plug in their own; time comes from a [`Clock`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_notify::Notifier;
use latchkey_policy::PolicySet;
use latchkey_store::{Cipher, Store};
use latchkey_types::MethodKind;
use latchkey_verify::{
    AuthenticatorApp, Clock, CodeIssuer, Hasher, HasherConfig, QuestionId, QuestionsConfig,
    SecurityQuestions,
};

use crate::directory::Directory;
use crate::guard::{Csrf, TrustedProxies};

/// How cookies are named and flagged: `__Host-` + `Secure` behind HTTPS; plain names only when
/// the portal is served over http on loopback (the demo), where browsers drop `Secure` cookies.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn name(&self, base: &'static str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }
}

/// The self-service back end.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    /// A delegated client (an Authentication Administrator's refresh token, `latchkey delegate`)
    /// for `resetPassword` with writeback; synced users cannot reset without it. Behind a lock
    /// because the admin console's connection page installs a new one at run time: read it
    /// with [`Services::writeback`].
    pub writeback: RwLock<Option<Arc<dyn Directory>>>,
    /// The running policy set; replaced whole on a valid reload, never edited in place.
    pub policies: RwLock<Arc<PolicySet>>,
    pub codes: Arc<CodeIssuer>,
    pub totp: AuthenticatorApp,
    /// Security questions (offered only where a policy lists them).
    pub questions: SecurityQuestions,
    /// The directory-attribute check (offered only where a policy lists `attribute`).
    pub attributes: latchkey_verify::DirectoryAttributes,
    pub notifier: Notifier,
    /// Notices that security depends on go through here (stored, then delivered).
    pub outbox: Arc<crate::notices::Outbox>,
    pub csrf: Csrf,
    /// The at-rest key's AEAD, for what the web layer must keep in a flow although it is secret
    /// (a sign-in attempt's state, nonce and PKCE verifier: [`crate::signin::attempt`]).
    pub cipher: Cipher,
    pub proxies: TrustedProxies,
    pub clock: Arc<dyn Clock>,
    pub cookies: CookiePolicy,
    /// Every answer before the first verification takes at least this long (enumeration safety).
    pub deadline: Duration,
    /// The Graph time budget of one self-service request ([`latchkey_graph::deadline`]).
    pub graph_budget: Duration,
    /// Where users sign in after a reset (shown on the result page).
    pub signin_url: String,
}

impl Services {
    /// The current policy set (cheap: one Arc clone under a read lock).
    pub fn policies(&self) -> Arc<PolicySet> {
        match self.policies.read() {
            Ok(p) => Arc::clone(&p),
            // A panic while holding the lock cannot leave a half-written set (we swap whole Arcs).
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The delegated writeback client in force now, if any (cheap: one Arc clone).
    pub fn writeback(&self) -> Option<Arc<dyn Directory>> {
        match self.writeback.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `client` in force for every reset that starts from now on (flows already holding
    /// the previous one finish with it).
    pub fn set_writeback(&self, client: Arc<dyn Directory>) {
        *self.writeback.write().unwrap_or_else(|p| p.into_inner()) = Some(client);
    }

    /// The methods offered on the "prove it's you" page: the same list for everybody (what a given
    /// account has enrolled or may use is not revealed before a verification succeeds), in the
    /// order policies list them.
    pub fn offered_methods(&self) -> Vec<MethodKind> {
        let mut out = Vec::new();
        for p in self.policies().policies().iter().filter(|p| p.enabled) {
            for m in &p.methods {
                if !out.contains(m) {
                    out.push(*m);
                }
            }
        }
        out
    }
}

/// The fixed catalogue of security questions (texts in the message files as `question_<id>`).
pub const QUESTION_IDS: [&str; 8] = ["q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8"];

/// The security-questions method: argon2id on a bounded pool of hashing threads. Building it
/// computes the dummy hash unknown accounts are checked against (one argon2 run at start-up).
pub fn security_questions() -> anyhow::Result<SecurityQuestions> {
    let hasher = Hasher::new(HasherConfig::default())?;
    Ok(SecurityQuestions::new(hasher, QuestionsConfig::default())?)
}

impl Services {
    /// The questions shown to `account` when it has none enrolled (or is unknown): chosen from the
    /// catalogue by a keyed HMAC of the typed account, so the same account always sees the same
    /// questions and nobody can tell them from a real enrollment.
    pub fn decoy_questions(&self, account: &str, count: usize) -> Vec<QuestionId> {
        let account = account.trim().to_lowercase();
        let mut ranked: Vec<(String, &str)> = QUESTION_IDS
            .iter()
            .map(|id| {
                let tag = self.csrf.token(&format!("questions\0{account}\0{id}"));
                (tag, *id)
            })
            .collect();
        ranked.sort();
        let mut chosen: Vec<&str> = ranked.into_iter().take(count).map(|(_, id)| id).collect();
        // Catalogue order on the page, like an enrollment's.
        chosen.sort_by_key(|id| QUESTION_IDS.iter().position(|q| q == id));
        chosen
            .into_iter()
            .filter_map(|id| QuestionId::new(id).ok())
            .collect()
    }
}

/// Writes every delivery outcome to the audit trail ("send" events), and finishes the stored
/// notice a delivery was for ([`crate::notices`]).
pub struct AuditObserver {
    pub store: Arc<dyn Store>,
    pub pending: Arc<crate::notices::Pending>,
    pub clock: Arc<dyn Clock>,
}

impl latchkey_notify::DeliveryObserver for AuditObserver {
    fn report(
        &self,
        report: latchkey_notify::DeliveryReport,
    ) -> latchkey_notify::BoxFuture<'_, ()> {
        Box::pin(async move {
            let (outcome, reason) = match &report.outcome {
                latchkey_notify::DeliveryOutcome::Delivered => {
                    (latchkey_store::Outcome::Success, None)
                }
                latchkey_notify::DeliveryOutcome::Failed { reason, .. } => {
                    (latchkey_store::Outcome::Error, Some(reason.clone()))
                }
                latchkey_notify::DeliveryOutcome::Abandoned => (
                    latchkey_store::Outcome::Error,
                    Some("abandoned at shutdown".into()),
                ),
            };
            let event = latchkey_store::AuditEvent {
                at: self.clock.now(),
                correlation_id: report.correlation_id.clone(),
                actor: "system".into(),
                subject: report.subject,
                event_type: format!("notify.{}", report.kind),
                method: Some(report.channel.as_str().to_string()),
                outcome,
                reason,
                // Masked recipient only: full addresses stay out of the audit trail.
                details: serde_json::json!({ "to": report.recipient_masked, "attempts": report.attempts }),
            };
            let audited = self.store.append_audit(&event).await;
            self.pending
                .delivered(&*self.store, report.id, &report.outcome, event.at)
                .await;
            if let Err(e) = audited {
                tracing::error!(error = %e, "cannot audit a delivery");
            }
        })
    }
}

/// Starts the notification queue with the given transports, auditing every delivery.
/// The send queue and the outbox in front of it (its deliverer starts with the portal).
pub fn start_notifier(
    store: Arc<dyn Store>,
    branding: latchkey_notify::Branding,
    channels: latchkey_notify::Channels,
    clock: Arc<dyn Clock>,
    lease: Duration,
) -> anyhow::Result<(
    Notifier,
    latchkey_notify::NotifierHandle,
    Arc<crate::notices::Outbox>,
)> {
    let renderer = latchkey_notify::Renderer::new(branding)?;
    let pending = Arc::new(crate::notices::Pending::default());
    let (notifier, handle) = Notifier::start(
        renderer,
        channels,
        Arc::new(AuditObserver {
            store: Arc::clone(&store),
            pending: Arc::clone(&pending),
            clock: Arc::clone(&clock),
        }),
        latchkey_notify::QueueConfig::default(),
    );
    let outbox = crate::notices::Outbox::new(store, notifier.clone(), pending, clock, lease);
    Ok((notifier, handle, outbox))
}

/// A fresh 256-bit key (CSRF, code hashing) for a process that keeps no state across restarts.
pub fn random_key() -> anyhow::Result<Vec<u8>> {
    Ok(latchkey_types::random::bytes::<32>()?.to_vec())
}
