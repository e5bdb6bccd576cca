//! Everything the self-service flows talk to, built once at start-up and shared by every request.
//! Each I/O seam is a trait object (store, directory, notifier transports) so tests and the demo
//! plug in their own; time comes from a [`Clock`], randomness from `latchkey_types::random`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use latchkey_notify::Notifier;
use latchkey_policy::PolicySet;
use latchkey_store::{Cipher, Store};
use latchkey_types::MethodKind;
use latchkey_verify::{
    AuthenticatorApp, Clock, CodeIssuer, DirectoryAttributes, QuestionId, SecurityQuestions,
};
use ring::hmac;

use crate::directory::Directory;
use crate::notices::Outbox;

/// The self-service back end: the seams and the settings every flow reads.
pub struct SelfService {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    /// The directory mirror (`[directory] mirror`), read at identification while it is current;
    /// `None`: every read goes to Graph.
    pub mirror: Option<Arc<latchkey_mirror::Mirror>>,
    /// A delegated client (an Authentication Administrator's refresh token, `latchkey delegate`)
    /// for `resetPassword` with writeback; synced users cannot reset without it. Behind a lock
    /// because the admin console's connection page installs a new one at run time: read it
    /// with [`SelfService::writeback`].
    pub writeback: RwLock<Option<Arc<dyn Directory>>>,
    /// The running policy set; replaced whole on a valid reload, never edited in place.
    pub policies: RwLock<Arc<PolicySet>>,
    pub codes: Arc<CodeIssuer>,
    pub totp: AuthenticatorApp,
    /// Security questions (offered only where a policy lists them).
    pub questions: SecurityQuestions,
    /// The directory-attribute check (offered only where a policy lists `attribute`).
    pub attributes: DirectoryAttributes,
    /// The in-memory send queue: codes and links (secrets, never stored) go straight here.
    pub notifier: Notifier,
    /// Notices that security depends on go through here (stored, then delivered).
    pub outbox: Arc<Outbox>,
    /// The at-rest key's AEAD, for what a flow must keep although it is secret (the directory
    /// attributes a knowledge check compares against; a sign-in attempt's PKCE verifier).
    pub cipher: Cipher,
    pub clock: Arc<dyn Clock>,
    /// Keyed choice of the questions shown to accounts without questions ([`Self::decoy_questions`]).
    pub decoy_key: DecoyKey,
    /// Every answer before the first verification takes at least this long (enumeration safety).
    pub deadline: Duration,
    /// The Graph time budget of one self-service request ([`latchkey_graph::deadline`]).
    pub graph_budget: Duration,
    /// How long a change waits for the on-premises gateway's result before it says "in
    /// progress" ([`crate::gateway::RESULT_WAIT`] unless a test shortens it).
    pub gateway_wait: Duration,
    /// The tenant's password rules (cached) and the optional breached-password lookup.
    pub passwords: crate::password::PasswordChecks,
    /// Throttle limits (configuration `[limits]`).
    pub limits: crate::flow::Limits,
    /// The WebAuthn relying party passkeys are registered with and asserted to: the portal's
    /// public origin. `None` when that origin cannot be one (an IP address): passkeys are not
    /// offered then.
    pub passkeys: Option<latchkey_webauthn::RelyingParty>,
}

impl SelfService {
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
                // Passkeys need a relying party: a public URL browsers accept as one.
                let usable = *m != MethodKind::Passkey || self.passkeys.is_some();
                if usable && !out.contains(m) {
                    out.push(*m);
                }
            }
        }
        out
    }

    /// The questions shown to `account` when it has none enrolled (or is unknown): chosen from the
    /// catalogue by a keyed HMAC of the typed account, so the same account always sees the same
    /// questions and nobody can tell them from a real enrollment.
    pub fn decoy_questions(&self, account: &str, count: usize) -> Vec<QuestionId> {
        // `account` is the flow's throttle key (the object id, or an unknown account's
        // `identify::decoy_key`): every spelling of one account is asked the same questions,
        // as a real enrollment is.
        let account = account.to_lowercase();
        let mut ranked: Vec<(String, &str)> = QUESTION_IDS
            .iter()
            .map(|id| (self.decoy_key.tag(&account, id), *id))
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

/// The fixed catalogue of security questions (texts in the message files as `question_<id>`).
pub const QUESTION_IDS: [&str; 8] = ["q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8"];

/// The key that picks an unknown account's questions (and stand-in masks). Built from the same key
/// material as the portal's form tokens, so its choices stay the same across restarts and
/// instances. Since issue 11 the choice is keyed on the flow's key (the object id, or an unknown
/// account's `identify::decoy_key`) rather than the typed text: the stand-in questions changed
/// once with that upgrade (docs/methods.md says what that reveals to someone who compared).
pub struct DecoyKey(hmac::Key);

impl DecoyKey {
    pub fn new(key_material: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key_material))
    }

    /// A keyed digest of `message` (for choices that must look random and stay the same for the
    /// same input, such as the masked destination a flow that sent nothing shows).
    pub fn bytes(&self, message: &str) -> Vec<u8> {
        hmac::sign(&self.0, message.as_bytes()).as_ref().to_vec()
    }

    fn tag(&self, account: &str, question: &str) -> String {
        let message = format!("csrf\0questions\0{account}\0{question}");
        let tag = hmac::sign(&self.0, message.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }
}
