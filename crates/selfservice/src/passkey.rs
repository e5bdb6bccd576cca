//! Passkeys: registering one for the portal (at `/enroll`) and proving who you are with it in a
//! reset or unlock flow. The WebAuthn checks themselves are `latchkey_webauthn`; this module holds
//! what the portal decides around them (docs/passkeys.md):
//!
//! - **Challenges** are 32 random bytes, valid [`CHALLENGE_LIFETIME`], one at a time per flow or
//!   enrollment session, and taken by the first answer that uses them, before it is checked
//!   ([`take`]: the store's atomic counter, one use per challenge, across instances): an answer
//!   can never be replayed, even one that failed, and of concurrent answers to one prompt only
//!   one is checked.
//! - **No enumeration**: the prompt is the same for everybody, with an empty allow-list (the
//!   browser offers the passkeys it has for the portal); the answer is looked up by credential
//!   id and must belong to the flow's user (and carry that user's handle). Unknown, foreign and
//!   decoy answers are "wrong" like any wrong code, charged and audited alike.
//! - **Counters**: a signature counter that did not move forward is a possibly cloned key:
//!   refused and audited as `passkey.clone_suspected`. The new counter is stored with a
//!   compare-and-set.
//! - **One verification, one change**: success goes through the same token rotation as every
//!   method ([`crate::verify`]); two concurrent submissions of one assertion cannot both count.

use std::time::Duration;

use latchkey_store::{
    FlowUpdate, Limit, NewPasskey, Outcome, Passkey, PasskeyAdded, StoreError, ThrottleKey,
};
use latchkey_types::{MethodKind, ObjectId};
use latchkey_webauthn::{
    Algorithm, AssertionCheck, AssertionResponse, Challenge, RegistrationCheck, RelyingParty,
    StoredCredential,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::SelfService;
use crate::flow::Current;
use crate::verify::{self, Verified, VerifyError};

/// How long a prompt's challenge stays valid: the browser's own timeout plus time to find the
/// key and type its PIN.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// What the browser is told to wait for the person (milliseconds).
pub const PROMPT_TIMEOUT_MS: u64 = 180_000;
/// Most passkeys one user may register (a person has a few keys and devices, not dozens).
pub const MAX_PASSKEYS: u32 = 10;
/// Longest name a passkey may have (characters).
pub const MAX_NAME_CHARS: usize = 60;

/// A challenge handed to the browser, kept server-side until an answer takes it. `Debug` does not
/// show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedChallenge {
    /// Base64url of the 32 bytes, as the browser gets it.
    pub value: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

impl std::fmt::Debug for IssuedChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedChallenge")
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// Takes `issued` for good: `true` for the first caller anywhere (the store's atomic hit on a
/// counter named by the challenge, allowing one), `false` for every later one, concurrent ones
/// included. The counter outlives the challenge's validity, after which it is refused anyway.
pub async fn take(
    s: &SelfService,
    issued: &IssuedChallenge,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let key = ThrottleKey::new("webauthn:challenge", &issued.value);
    let once = Limit::new(1, CHALLENGE_LIFETIME);
    Ok(s.store.hit(&key, &[once], now).await?.is_allowed())
}

impl IssuedChallenge {
    /// A new random challenge.
    pub fn new(now: OffsetDateTime) -> Result<Self, latchkey_types::random::NoRandomness> {
        Ok(Self {
            value: Challenge::random()?.to_base64url(),
            issued_at: now,
        })
    }

    /// The challenge if it is still valid at `now`.
    fn valid_at(&self, now: OffsetDateTime) -> Option<Challenge> {
        let age = now - self.issued_at;
        let fresh = age >= time::Duration::ZERO && age <= CHALLENGE_LIFETIME;
        fresh
            .then(|| Challenge::from_base64url(&self.value).ok())
            .flatten()
    }
}

/// What `navigator.credentials.get` needs (the page passes it to the browser).
#[derive(Debug, Clone, Serialize)]
pub struct AssertionOptions {
    pub challenge: String,
    pub rp_id: String,
    pub timeout_ms: u64,
}

/// An assertion as the browser returned it, every binary field base64url (parsed at the edge).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssertionAnswer {
    pub credential_id: String,
    pub client_data_json: String,
    pub authenticator_data: String,
    pub signature: String,
    #[serde(default)]
    pub user_handle: String,
}

struct Decoded {
    credential_id: Vec<u8>,
    client_data_json: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
    user_handle: Option<Vec<u8>>,
}

fn decode(answer: &AssertionAnswer) -> Result<Decoded, VerifyError> {
    if answer.credential_id.is_empty() || answer.client_data_json.is_empty() {
        return Err(VerifyError::Missing);
    }
    let b = |s: &str| {
        // Bounded before decoding: nothing a browser sends is near 64 KiB.
        if s.len() > 65_536 {
            return Err(VerifyError::Malformed);
        }
        latchkey_webauthn::decode_base64_lenient(s).map_err(|_| VerifyError::Malformed)
    };
    Ok(Decoded {
        credential_id: b(&answer.credential_id)?,
        client_data_json: b(&answer.client_data_json)?,
        authenticator_data: b(&answer.authenticator_data)?,
        signature: b(&answer.signature)?,
        user_handle: if answer.user_handle.is_empty() {
            None
        } else {
            Some(b(&answer.user_handle)?)
        },
    })
}

fn relying_party(s: &SelfService) -> Result<&RelyingParty, VerifyError> {
    s.passkeys
        .as_ref()
        .ok_or_else(|| VerifyError::Fault("passkeys need a public URL with a host name".into()))
}

/// A new prompt for the flow: a fresh challenge, kept with the flow (replacing an earlier one).
/// The same for every flow, real or decoy.
pub async fn assertion_options(
    s: &SelfService,
    current: &Current,
) -> Result<AssertionOptions, VerifyError> {
    let rp = relying_party(s)?;
    let now = s.clock.now();
    let issued = IssuedChallenge::new(now).map_err(|e| VerifyError::Fault(e.to_string()))?;
    let mut kept = current.data.clone();
    kept.passkey_challenge = Some(issued.clone());
    store_data(s, current, &kept).await?;
    Ok(AssertionOptions {
        challenge: issued.value,
        rp_id: rp.id.clone(),
        timeout_ms: PROMPT_TIMEOUT_MS,
    })
}

async fn store_data(
    s: &SelfService,
    current: &Current,
    data: &crate::flow::FlowData,
) -> Result<(), VerifyError> {
    let update = FlowUpdate {
        step: None,
        data: Some(serde_json::to_value(data).map_err(|e| VerifyError::Fault(e.to_string()))?),
    };
    s.store
        .update_flow(&current.token, update, s.clock.now())
        .await?;
    Ok(())
}

/// One passkey answer, charged before it is checked. The flow's challenge is taken first, so
/// the same answer (or any answer to that prompt) cannot be tried again.
pub async fn check_assertion(
    s: &SelfService,
    current: &Current,
    answer: &AssertionAnswer,
    client: &str,
) -> Result<Verified, VerifyError> {
    let kind = MethodKind::Passkey;
    let rp = relying_party(s)?;
    let decoded = decode(answer)?;
    let left = verify::charge(s, current, kind, client).await?;
    let now = s.clock.now();
    let issued = current.data.passkey_challenge.clone();
    if issued.is_some() {
        let mut kept = current.data.clone();
        kept.passkey_challenge = None;
        store_data(s, current, &kept).await?;
    }
    let taken = match &issued {
        Some(i) => take(s, i, now).await?,
        None => false,
    };
    let Some(challenge) = issued.filter(|_| taken).and_then(|i| i.valid_at(now)) else {
        return Err(verify::failed(s, current, kind, "no valid prompt", left).await);
    };
    let owned = owned_passkey(s, current, &decoded.credential_id).await?;
    let Some(stored) = owned else {
        return Err(verify::failed(s, current, kind, "not a passkey of this account", left).await);
    };
    let public_key = match latchkey_webauthn::CoseKey::from_bytes(&stored.public_key) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "a stored passkey's public key does not parse");
            return Err(verify::failed(s, current, kind, "stored key unreadable", left).await);
        }
    };
    let check = AssertionCheck {
        rp,
        challenge: &challenge,
        user_verification_required: true,
        user_handle: Some(&stored.user_handle),
    };
    let credential = StoredCredential {
        id: &stored.credential_id,
        public_key: &public_key,
        sign_count: stored.sign_count,
        backup_eligible: stored.backup_eligible,
    };
    let response = AssertionResponse {
        credential_id: &decoded.credential_id,
        client_data_json: &decoded.client_data_json,
        authenticator_data: &decoded.authenticator_data,
        signature: &decoded.signature,
        user_handle: decoded.user_handle.as_deref(),
    };
    let asserted = match latchkey_webauthn::verify_assertion(&check, &credential, &response) {
        Ok(a) => a,
        Err(e) => {
            if let latchkey_webauthn::Error::SignCountRegressed {
                stored: was,
                received,
            } = &e
            {
                // Which passkey: its name and its credential id's start, so the admin knows
                // which key to take away.
                let id =
                    latchkey_webauthn::CredentialId(stored.credential_id.clone()).to_base64url();
                let short: String = id.chars().take(12).collect();
                let why = format!(
                    "signature counter {received} after {was} (passkey {:?}, credential {short}…)",
                    stored.name
                );
                current
                    .audit(
                        s,
                        "passkey.clone_suspected",
                        Some(kind),
                        Outcome::Denied,
                        Some(&why),
                    )
                    .await?;
            }
            return Err(verify::failed(s, current, kind, e.reason(), left).await);
        }
    };
    let moved = s
        .store
        .use_passkey(
            &stored.credential_id,
            stored.sign_count,
            asserted.sign_count,
            asserted.backed_up,
            now,
        )
        .await?;
    if !moved {
        return Err(verify::failed(s, current, kind, "used concurrently", left).await);
    }
    verify::succeed(s, current, kind).await
}

/// The passkey with this credential id if it belongs to the flow's user and the flow may use
/// passkeys; `None` for everything else (decoys included), which the caller answers "wrong".
async fn owned_passkey(
    s: &SelfService,
    current: &Current,
    credential_id: &[u8],
) -> Result<Option<Passkey>, StoreError> {
    let (flow, data) = (&current.flow, &current.data);
    // Looked up for every flow, decoys included: the same work whoever typed the account.
    let found = s.store.passkey(credential_id).await?;
    if data.decoy || !data.methods.contains(&MethodKind::Passkey) {
        return Ok(None);
    }
    Ok(found.filter(|p| p.subject == flow.subject))
}

// ---- registration ------------------------------------------------------------------------------

/// Why a passkey could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("passkeys need a public URL with a host name")]
    NotAvailable,
    #[error("give the passkey a name of at most {MAX_NAME_CHARS} characters")]
    Name,
    #[error("the prompt expired or was used already")]
    Expired,
    #[error("the browser's answer was refused: {}", .0.reason())]
    Refused(latchkey_webauthn::Error),
    #[error("this passkey is registered already")]
    Duplicate,
    #[error("at most {MAX_PASSKEYS} passkeys")]
    Full,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Random(#[from] latchkey_types::random::NoRandomness),
}

/// What `navigator.credentials.create` needs.
#[derive(Debug, Clone, Serialize)]
pub struct CreationOptions {
    pub challenge: String,
    pub rp_id: String,
    pub rp_name: String,
    /// Base64url of the user's WebAuthn handle.
    pub user_id: String,
    pub user_name: String,
    pub user_display_name: String,
    /// COSE algorithm numbers, preferred first.
    pub algorithms: Vec<i64>,
    /// The user's passkeys (base64url ids): the browser refuses to register one twice.
    pub exclude: Vec<String>,
    pub timeout_ms: u64,
}

/// A registration under way, kept with the enrollment session until the browser answers: the
/// challenge, the name the user gave, the user handle the options named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRegistration {
    pub challenge: IssuedChallenge,
    pub name: String,
    /// Base64url.
    pub user_handle: String,
}

/// Options for registering a passkey named `name` for `subject`, with what the caller keeps with
/// the session. The user handle is the one the user's passkeys have, or a new random one.
pub async fn creation_options(
    s: &SelfService,
    subject: &ObjectId,
    name: &str,
    (user_name, display_name, rp_name): (&str, &str, &str),
) -> Result<(CreationOptions, PendingRegistration), RegisterError> {
    let rp = s.passkeys.as_ref().ok_or(RegisterError::NotAvailable)?;
    let existing = s.store.passkeys(subject).await?;
    let handle = match existing.first() {
        Some(p) => p.user_handle.clone(),
        None => latchkey_types::random::bytes::<32>()?.to_vec(),
    };
    let issued = IssuedChallenge::new(s.clock.now())?;
    let options = CreationOptions {
        challenge: issued.value.clone(),
        rp_id: rp.id.clone(),
        rp_name: rp_name.to_string(),
        user_id: latchkey_webauthn::CredentialId(handle).to_base64url(),
        user_name: user_name.to_string(),
        user_display_name: display_name.to_string(),
        algorithms: Algorithm::ALL.iter().map(|a| a.cose()).collect(),
        exclude: existing
            .iter()
            .map(|p| latchkey_webauthn::CredentialId(p.credential_id.clone()).to_base64url())
            .collect(),
        timeout_ms: PROMPT_TIMEOUT_MS,
    };
    let pending = PendingRegistration {
        user_handle: options.user_id.clone(),
        challenge: issued,
        name: name.trim().to_string(),
    };
    Ok((options, pending))
}

/// A passkey's name: 1 to [`MAX_NAME_CHARS`] characters, no control characters and none of the
/// invisible or direction-changing ones (a name the user and the helpdesk read must be the name
/// it is: `\u{202e}yeKibuY` shows as "YubiKey").
pub fn check_name(name: &str) -> Result<(), RegisterError> {
    let name = name.trim();
    let hidden = |c: char| {
        c.is_control()
            || matches!(c,
                '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}')
    };
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(hidden) {
        return Err(RegisterError::Name);
    }
    Ok(())
}

/// A registration the browser answered, every binary field base64url. (The user handle is the
/// session's, never what the browser sends back.)
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistrationAnswer {
    pub client_data_json: String,
    pub attestation_object: String,
}

/// Checks a registration against what the session kept (the caller has taken it out of the
/// session already; its challenge is taken here, once) and stores the passkey. Not audited here:
/// the caller audits the outcome with its session's correlation id.
pub async fn register(
    s: &SelfService,
    subject: &ObjectId,
    pending: Option<PendingRegistration>,
    answer: &RegistrationAnswer,
) -> Result<Passkey, RegisterError> {
    let rp = s.passkeys.as_ref().ok_or(RegisterError::NotAvailable)?;
    let Some(pending) = pending else {
        return Err(RegisterError::Expired);
    };
    let name = pending.name.trim();
    check_name(name)?;
    let now = s.clock.now();
    let taken = take(s, &pending.challenge, now).await?;
    let challenge = Some(&pending.challenge)
        .filter(|_| taken)
        .and_then(|i| i.valid_at(now))
        .ok_or(RegisterError::Expired)?;
    let malformed = |_| RegisterError::Refused(latchkey_webauthn::Error::Malformed("encoding"));
    let client_data =
        latchkey_webauthn::decode_base64_lenient(&answer.client_data_json).map_err(malformed)?;
    let attestation =
        latchkey_webauthn::decode_base64_lenient(&answer.attestation_object).map_err(malformed)?;
    let user_handle =
        latchkey_webauthn::decode_base64_lenient(&pending.user_handle).map_err(malformed)?;
    let check = RegistrationCheck {
        rp,
        challenge: challenge.as_bytes(),
        user_verification_required: true,
        algorithms: &Algorithm::ALL,
    };
    let registered = latchkey_webauthn::verify_registration(&check, &client_data, &attestation)
        .map_err(RegisterError::Refused)?;
    // The handle the options named: the user's existing one, or a new one for a first passkey.
    let existing = s.store.passkeys(subject).await?;
    if let Some(p) = existing.first()
        && p.user_handle != user_handle
    {
        return Err(RegisterError::Refused(latchkey_webauthn::Error::UserHandle));
    }
    if user_handle.len() != 32 {
        return Err(RegisterError::Refused(latchkey_webauthn::Error::UserHandle));
    }
    let new = NewPasskey {
        subject: *subject,
        credential_id: registered.credential_id.0.clone(),
        user_handle,
        name: name.to_string(),
        public_key: registered.public_key.as_bytes().to_vec(),
        sign_count: registered.sign_count,
        aaguid: registered.aaguid,
        backup_eligible: registered.backup_eligible,
        backed_up: registered.backed_up,
    };
    match s.store.add_passkey(new, MAX_PASSKEYS, now).await? {
        PasskeyAdded::Added => {}
        PasskeyAdded::Duplicate => return Err(RegisterError::Duplicate),
        PasskeyAdded::Full => return Err(RegisterError::Full),
    }
    let stored = s.store.passkey(&registered.credential_id.0).await?;
    stored.ok_or(RegisterError::Duplicate).inspect_err(|_| {
        tracing::error!("a passkey just registered cannot be read back");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_valid_for_five_minutes_from_issue_and_never_before() {
        let t0 = time::macros::datetime!(2026-12-07 10:00 UTC);
        let issued = IssuedChallenge::new(t0).unwrap();
        assert!(issued.valid_at(t0).is_some());
        assert!(issued.valid_at(t0 + time::Duration::minutes(5)).is_some());
        let late = t0 + time::Duration::minutes(5) + time::Duration::seconds(1);
        assert!(issued.valid_at(late).is_none());
        assert!(issued.valid_at(t0 - time::Duration::seconds(1)).is_none());
        // Debug never shows the challenge.
        assert!(!format!("{issued:?}").contains(&issued.value));
    }

    #[test]
    fn names_are_what_they_show() {
        assert!(check_name("YubiKey on my keyring").is_ok());
        assert!(check_name("Clé USB – bureau").is_ok());
        for bad in [
            "",
            "   ",
            "\u{200b}",
            "\u{202e}yeKibuY",
            "a\u{2028}b",
            "a\nb",
            "a\u{feff}",
            &"x".repeat(61),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
