//! An OpenID Connect sign-in attempt kept server-side in a short-lived store flow, shared by the
//! enrollment sign-in ([`crate::signin`]) and the consoles' ([`crate::console`]).
//!
//! Flow data never holds secrets ([`latchkey_store::NewFlow`]), yet the callback needs the
//! attempt's `state`, `nonce` and PKCE verifier. They are sealed with the at-rest key
//! ([`crate::services::Services::cipher`], the store's XChaCha20-Poly1305) and only the
//! ciphertext goes into `flows.data`: a copy of the database alone reveals none of them. The
//! associated data names the table, the flow's purpose and its subject, a random placeholder
//! drawn for this attempt alone and fixed for the flow's life, so a sealed value copied into
//! another flow's row does not open. Every portal instance behind a load balancer reads the same
//! key file, so the callback may land on any of them.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_graph::delegated::{self, Pkce};
use latchkey_store::{Flow, FlowLifetime, FlowPurpose, FlowToken, NewFlow, StoreError, aad};
use latchkey_types::random::NoRandomness;
use latchkey_types::{ObjectId, Secret};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

/// What kind of secret the cipher's errors name.
const WHAT: &str = "sign-in attempt";
/// The "table" part of the associated data (the enrollment and job secrets use theirs).
const TABLE: &str = "flows.signin";

/// The attempt's secret parts: never in the flow's data in clear.
#[derive(Serialize, Deserialize)]
struct Sealed {
    state: String,
    nonce: String,
    verifier: String,
}

/// The flow's data: the sealed secrets, the correlation id, and what the caller keeps in clear.
#[derive(Serialize, Deserialize)]
struct Stored<P> {
    correlation_id: String,
    /// Base64 of the sealed [`Sealed`] JSON.
    sealed: String,
    public: P,
}

/// A sign-in attempt: fresh secrets plus the caller's non-secret part `P` (e.g. which console).
pub struct Attempt<P> {
    /// Goes in the authorize URL and must come back unchanged on the callback.
    pub state: String,
    /// Goes in the authorize URL and must be in the ID token.
    pub nonce: String,
    /// Redeems the code (its challenge is in the authorize URL).
    pub pkce: Pkce,
    pub correlation_id: String,
    pub public: P,
}

impl<P: Serialize + DeserializeOwned> Attempt<P> {
    /// A new attempt with fresh `state`, `nonce`, PKCE verifier and correlation id.
    pub fn new(public: P) -> Result<Self, NoRandomness> {
        Ok(Self {
            state: delegated::new_state()?,
            nonce: delegated::new_nonce()?,
            pkce: Pkce::generate()?,
            correlation_id: ObjectId::random()?.to_string(),
            public,
        })
    }

    /// The PKCE verifier the code is redeemed with.
    pub fn verifier(&self) -> &Secret<String> {
        self.pkce.verifier()
    }

    /// Whether the callback's `state` is this attempt's (constant time).
    pub fn state_matches(&self, returned: Option<&str>) -> bool {
        returned.is_some_and(|st| ct_eq(st, &self.state))
    }

    /// Keeps the attempt in a new flow of `purpose` that lives `lifetime`; the token goes in the
    /// sign-in cookie.
    pub async fn store(
        &self,
        portal: &Portal,
        purpose: FlowPurpose,
        lifetime: Duration,
    ) -> Result<FlowToken, StoreError> {
        // Nobody is known yet: a placeholder subject that matches no user and names this attempt.
        let subject = ObjectId::random()?;
        let secrets = Sealed {
            state: self.state.clone(),
            nonce: self.nonce.clone(),
            verifier: self.pkce.verifier().expose().clone(),
        };
        let plain = Secret::new(
            serde_json::to_vec(&secrets).map_err(|_| StoreError::Encrypt { what: WHAT })?,
        );
        let blob = portal.services.cipher.seal(
            plain.expose(),
            &aad(TABLE, &subject, purpose.as_str()),
            WHAT,
        )?;
        let stored = Stored {
            correlation_id: self.correlation_id.clone(),
            sealed: STANDARD.encode(blob),
            public: &self.public,
        };
        let new = NewFlow {
            subject,
            purpose,
            step: latchkey_store::FlowStep::Authorize,
            data: serde_json::to_value(&stored).map_err(|_| StoreError::Encrypt { what: WHAT })?,
            lifetime: FlowLifetime {
                absolute: lifetime,
                idle: lifetime,
            },
        };
        let (token, _) = portal
            .services
            .store
            .create_flow(new, portal.services.clock.now())
            .await?;
        Ok(token)
    }

    /// The attempt of `token`'s flow if it is a live flow of `purpose`. The flow ends here
    /// whatever the outcome: an attempt is single use. `None` for no token, no such flow, another
    /// purpose, or data that does not open (tampered, moved from another row, another key).
    pub async fn take(
        portal: &Portal,
        token: Option<&FlowToken>,
        purpose: FlowPurpose,
    ) -> Option<Self> {
        let token = token?;
        let s = &portal.services;
        let flow = s.store.flow(token, s.clock.now()).await.ok().flatten();
        s.store.end_flow(token).await.or_log();
        let flow = flow.filter(|f| f.purpose == purpose)?;
        let attempt = Self::open(portal, &flow);
        if attempt.is_none() {
            tracing::warn!(flow = %flow.id, "sign-in attempt does not open");
        }
        attempt
    }

    fn open(portal: &Portal, flow: &Flow) -> Option<Self> {
        let stored: Stored<P> = serde_json::from_value(flow.data.clone()).ok()?;
        let blob = STANDARD.decode(stored.sealed.as_bytes()).ok()?;
        let plain = portal
            .services
            .cipher
            .open(
                &blob,
                &aad(TABLE, &flow.subject, flow.purpose.as_str()),
                WHAT,
            )
            .ok()?;
        let secrets: Sealed = serde_json::from_slice(plain.expose()).ok()?;
        Some(Self {
            state: secrets.state,
            nonce: secrets.nonce,
            pkce: Pkce::from_verifier(Secret::new(secrets.verifier)),
            correlation_id: stored.correlation_id,
            public: stored.public,
        })
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
