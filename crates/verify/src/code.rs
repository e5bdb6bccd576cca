//! One-time codes sent by email or SMS.
//!
//! Rules (`docs/security.md`): CSPRNG, 8 digits by default (at least 6), stored only as a keyed hash,
//! 10 minutes at most, 5 wrong tries then the code is void, single use, and a new code voids the
//! older ones. Each code is bound to flow, user, method, purpose and destination.
//!
//! ## How it fits together
//! - [`CodeIssuer::issue`] draws a code, returns it once (to hand to the mailer / SMS provider)
//!   and an [`IssuedCode`] record to persist. The record holds only an HMAC-SHA256 of the code
//!   under a server key ([`CodeKey`]), computed over a canonical, length-prefixed encoding of
//!   (purpose, flow id, user object id, method, destination, sequence number, code). A database
//!   leak therefore reveals nothing usable, and a hash moved to another flow, user, method,
//!   destination or record does not verify.
//! - [`CodeIssuer::verify`] checks a typed code against the record, in constant time, and updates
//!   the record: consumed on success (single use), one try fewer on failure.
//!
//! ## Store contract
//! - Persist every field of [`IssuedCode`] as a plain column (`hash` is 32 bytes).
//! - When issuing, pass the newest existing record for the same (flow, method, purpose) as
//!   `previous`; it is marked superseded. Persist both in one transaction (or keep one row per
//!   (flow, method, purpose) and replace it: an older code then simply no longer verifies).
//! - Verification is read → [`CodeIssuer::verify`] → conditional write of the changed record:
//!   `UPDATE codes SET tries_left = :new_tries, consumed = :new_consumed WHERE id = :id AND
//!   tries_left = :old_tries AND consumed = false`. Zero rows updated means a concurrent attempt
//!   won: treat the attempt as failed (re-read and show the new state). Only act on
//!   [`CodeOutcome::Ok`] after the write succeeded: that is what makes two simultaneous correct
//!   submissions succeed once.
//! - When the user is unknown or has no such destination, the flow issues a code exactly the same
//!   way (bound to the flow's placeholder user) and simply does not send it: every later step then
//!   behaves identically, in content and timing (`docs/security.md`, principle 1).

use std::fmt;
use std::sync::Arc;

use latchkey_types::{EmailAddress, FlowId, ObjectId, PhoneNumber, Secret};
use ring::hmac;
use ring::rand::SystemRandom;
use time::{Duration, OffsetDateTime};

use crate::method::{Method, MethodKind, Outcome, Subject};
use crate::rng::{self, RngError};

/// The longest lifetime a code may have (`docs/security.md`).
pub const MAX_LIFETIME: Duration = Duration::minutes(10);
/// The most wrong tries a code may allow (`docs/security.md`).
pub const MAX_TRIES: u8 = 5;
/// The fewest digits a code may have (`docs/security.md`).
pub const MIN_DIGITS: u8 = 6;
/// The most digits a code may have (longer codes are hard to type and add nothing).
pub const MAX_DIGITS: u8 = 10;
/// The shortest accepted HMAC key, in bytes (the output size of SHA-256).
pub const MIN_KEY_BYTES: usize = 32;

/// Why codes could not be configured or issued. Never contains a code or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The configuration breaks a rule.
    #[error("invalid code configuration: {0}")]
    Config(&'static str),
    /// The key is too short.
    #[error("the code key must be at least {MIN_KEY_BYTES} bytes")]
    KeyTooShort,
    /// A method was paired with a destination it cannot send to.
    #[error("{method} codes cannot be sent to this kind of destination")]
    DestinationMismatch {
        /// The method.
        method: MethodKind,
    },
    /// The phone number is not in international form.
    #[error("not a phone number in international form (+ country code and 7 to 15 digits)")]
    InvalidPhone,
    /// The random number generator failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// How codes look and live. [`Default`] is the `docs/security.md` default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeConfig {
    /// Number of decimal digits ([`MIN_DIGITS`]..=[`MAX_DIGITS`], default 8).
    pub digits: u8,
    /// How long a code is valid (at most [`MAX_LIFETIME`], default 10 minutes).
    pub lifetime: Duration,
    /// How many wrong tries a code allows (1..=[`MAX_TRIES`], default 5).
    pub tries: u8,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            digits: 8,
            lifetime: MAX_LIFETIME,
            tries: MAX_TRIES,
        }
    }
}

impl CodeConfig {
    /// Checks the configuration against the `docs/security.md` ceilings.
    pub fn validate(&self) -> Result<(), CodeError> {
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&self.digits) {
            return Err(CodeError::Config("digits must be between 6 and 10"));
        }
        if self.lifetime <= Duration::ZERO || self.lifetime > MAX_LIFETIME {
            return Err(CodeError::Config(
                "lifetime must be more than 0 and at most 10 minutes",
            ));
        }
        if !(1..=MAX_TRIES).contains(&self.tries) {
            return Err(CodeError::Config("tries must be between 1 and 5"));
        }
        Ok(())
    }
}

/// The server's HMAC key for codes. Comes from a file or the environment, never the database
/// (a database leak alone must not allow checking guesses offline).
pub struct CodeKey(hmac::Key);

impl CodeKey {
    /// A key from at least [`MIN_KEY_BYTES`] secret random bytes.
    pub fn from_bytes(bytes: &Secret<Vec<u8>>) -> Result<Self, CodeError> {
        if bytes.expose().len() < MIN_KEY_BYTES {
            return Err(CodeError::KeyTooShort);
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, bytes.expose())))
    }

    /// A fresh random key (tests, demo mode; production keys are generated once and kept).
    pub fn generate() -> Result<Self, CodeError> {
        let mut bytes = vec![0u8; MIN_KEY_BYTES];
        rng::fill(&latchkey_types::random::generator(), &mut bytes)?;
        Self::from_bytes(&Secret::new(bytes))
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey([redacted])")
    }
}

/// Where a code is sent. Part of the binding: a code sent to one address does not verify for
/// another. Always taken from the directory or enrolled data, never from the request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// An email address.
    Email(EmailAddress),
    /// A phone number (E.164, so every spelling of one number binds the same way).
    Phone(PhoneNumber),
}

impl Destination {
    /// A phone destination from any usual spelling (`+1 206 555 0100`, `+1 (206) 555-0100`,
    /// Graph's `+1 2065550100`); extensions are refused, as a text message cannot reach one.
    pub fn phone(s: &str) -> Result<Self, CodeError> {
        s.parse::<PhoneNumber>()
            .map(Self::Phone)
            .map_err(|_| CodeError::InvalidPhone)
    }

    /// The method that sends to this destination.
    pub fn method(&self) -> MethodKind {
        match self {
            Destination::Email(_) => MethodKind::Email,
            Destination::Phone(_) => MethodKind::Sms,
        }
    }

    /// Masked for logs and pages: `j***@contoso.com`, `+1******0100`.
    pub fn masked(&self) -> String {
        match self {
            Destination::Email(e) => e.masked(),
            Destination::Phone(p) => p.masked(),
        }
    }

    fn tag_and_value(&self) -> (&'static [u8], &[u8]) {
        match self {
            Destination::Email(e) => (b"email", e.as_str().as_bytes()),
            Destination::Phone(p) => (b"phone", p.as_str().as_bytes()),
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({})", self.masked())
    }
}

/// Why a code was sent. A code sent to confirm a new address at enrollment must never count as a
/// verification in a reset flow, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    /// A verification step of a self-service flow.
    Verification,
    /// Confirming a new email address or phone number at enrollment.
    EnrollmentConfirmation,
    /// A helpdesk member verifying a caller: the caller reads the code back on the phone.
    HelpdeskCaller,
}

impl CodePurpose {
    fn tag(self) -> &'static [u8] {
        match self {
            CodePurpose::Verification => b"verification",
            CodePurpose::EnrollmentConfirmation => b"enrollment-confirmation",
            CodePurpose::HelpdeskCaller => b"helpdesk-caller",
        }
    }
}

/// Everything a code is bound to. Built from server-side flow state, never from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBinding {
    /// The flow (or enrollment session) the code belongs to.
    pub flow: FlowId,
    /// The user the code was sent for.
    pub user: ObjectId,
    /// The method ([`MethodKind::Email`] or [`MethodKind::Sms`]; a voice call would be
    /// another method to the same phone number).
    pub method: MethodKind,
    /// Why it was sent.
    pub purpose: CodePurpose,
    /// Where it was sent.
    pub destination: Destination,
}

/// The keyed hash of a code. Deliberately has no `PartialEq`: the only comparison is the
/// constant-time one inside [`CodeIssuer::verify`].
///
/// ```compile_fail
/// # use latchkey_verify::CodeHash;
/// let a = CodeHash::from_bytes([0; 32]);
/// let b = CodeHash::from_bytes([0; 32]);
/// let _ = a == b; // does not compile: no variable-time comparison
/// ```
#[derive(Clone)]
pub struct CodeHash([u8; 32]);

impl CodeHash {
    /// From the 32 bytes the store kept.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The 32 bytes to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash([redacted])")
    }
}

/// An issued code as the store persists it: plain fields, no code.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// 1 for the first code of a (flow, method, purpose), +1 for each new one.
    pub sequence: u32,
    /// HMAC-SHA256 of the code and its binding.
    pub hash: CodeHash,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
    /// Wrong tries left; at 0 the code is void.
    pub tries_left: u8,
    /// It was used successfully (single use).
    pub consumed: bool,
    /// A newer code replaced it.
    pub superseded: bool,
}

impl IssuedCode {
    /// Whether the code could still be accepted at `now` (not used, replaced, expired or out of tries).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        !self.consumed && !self.superseded && now < self.expires_at && self.tries_left > 0
    }
}

/// The result of checking a typed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Correct; the record is now consumed.
    Ok,
    /// Not the code; `tries_left` more wrong tries are allowed (0: the code is now void).
    Wrong {
        /// Wrong tries left for this code.
        tries_left: u8,
    },
    /// The code's lifetime is over.
    Expired,
    /// No tries were left.
    Exhausted,
    /// A newer code was issued; only the newest is accepted.
    Superseded,
    /// The code was already used.
    AlreadyUsed,
}

impl Outcome for CodeOutcome {
    fn is_accepted(&self) -> bool {
        matches!(self, CodeOutcome::Ok)
    }
    fn reason(&self) -> &'static str {
        match self {
            CodeOutcome::Ok => "ok",
            CodeOutcome::Wrong { .. } => "wrong",
            CodeOutcome::Expired => "expired",
            CodeOutcome::Exhausted => "exhausted",
            CodeOutcome::Superseded => "superseded",
            CodeOutcome::AlreadyUsed => "already_used",
        }
    }
}

/// What a user typed, reduced to the characters that matter: spaces (including non-breaking and
/// other Unicode spaces) and dashes are dropped, so `1234 5678` and `1234-5678` are the code
/// `12345678`. Anything else is kept, so a letter makes the code wrong rather than silently
/// different.
pub fn normalize_typed_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}'))
        .collect()
}

/// Issues and verifies codes with one key and one configuration. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct CodeIssuer {
    key: CodeKey,
    config: CodeConfig,
    rng: SystemRandom,
}

impl CodeIssuer {
    /// An issuer; fails if `config` breaks a `docs/security.md` rule.
    pub fn new(key: CodeKey, config: CodeConfig) -> Result<Self, CodeError> {
        config.validate()?;
        Ok(Self {
            key,
            config,
            rng: latchkey_types::random::generator(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CodeConfig {
        &self.config
    }

    /// Draws a new code bound to `binding`. Returns the code (to send, then drop) and the record
    /// to persist. `previous` is the newest earlier record for the same (flow, method, purpose):
    /// it is marked superseded and the new record takes the next sequence number.
    pub fn issue(
        &self,
        binding: &CodeBinding,
        previous: Option<&mut IssuedCode>,
        now: OffsetDateTime,
    ) -> Result<(Secret<String>, IssuedCode), CodeError> {
        if binding.destination.method() != binding.method {
            return Err(CodeError::DestinationMismatch {
                method: binding.method,
            });
        }
        let sequence = match previous {
            Some(prev) => {
                prev.superseded = true;
                prev.sequence.saturating_add(1)
            }
            None => 1,
        };
        let code = rng::digits(&self.rng, self.config.digits)?;
        let tag = hmac::sign(&self.key.0, &encode(binding, sequence, &code));
        let mut hash = [0u8; 32];
        hash.copy_from_slice(tag.as_ref());
        let record = IssuedCode {
            sequence,
            hash: CodeHash(hash),
            issued_at: now,
            expires_at: now + self.config.lifetime,
            tries_left: self.config.tries,
            consumed: false,
            superseded: false,
        };
        Ok((Secret::new(code), record))
    }

    /// Checks `typed` against `record` for `binding` at `now`, and updates `record` (consumed on
    /// success, one try fewer on a wrong code). States are checked in this order: already used,
    /// superseded, expired, exhausted; only a live code is compared, in constant time
    /// (`ring::hmac::verify`).
    pub fn verify(
        &self,
        record: &mut IssuedCode,
        typed: &Secret<String>,
        binding: &CodeBinding,
        now: OffsetDateTime,
    ) -> CodeOutcome {
        if record.consumed {
            return CodeOutcome::AlreadyUsed;
        }
        if record.superseded {
            return CodeOutcome::Superseded;
        }
        if now >= record.expires_at {
            return CodeOutcome::Expired;
        }
        if record.tries_left == 0 {
            return CodeOutcome::Exhausted;
        }
        let typed = normalize_typed_code(typed.expose());
        let message = encode(binding, record.sequence, &typed);
        if hmac::verify(&self.key.0, &message, record.hash.as_bytes()).is_ok() {
            record.consumed = true;
            CodeOutcome::Ok
        } else {
            record.tries_left -= 1;
            CodeOutcome::Wrong {
                tries_left: record.tries_left,
            }
        }
    }
}

/// Canonical encoding of everything a code is bound to: a version tag, then each field as a
/// 4-byte big-endian length and its bytes, so no two different bindings encode the same way.
fn encode(binding: &CodeBinding, sequence: u32, code: &str) -> Vec<u8> {
    let (dest_tag, dest_value) = binding.destination.tag_and_value();
    let fields: [&[u8]; 9] = [
        b"latchkey-verify/code/v1",
        binding.purpose.tag(),
        binding.flow.as_uuid().as_bytes(),
        binding.user.as_uuid().as_bytes(),
        binding.method.as_str().as_bytes(),
        dest_tag,
        dest_value,
        &sequence.to_be_bytes(),
        code.as_bytes(),
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for f in fields {
        // Every field is far below 4 GiB; saturating keeps this total without a panic path.
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A code as the verification step sees it: where it was sent (from flow state) and its record.
#[derive(Debug, Clone)]
pub struct SentCode {
    /// Where the code was sent.
    pub destination: Destination,
    /// The persisted record.
    pub record: IssuedCode,
}

macro_rules! code_method {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            issuer: Arc<CodeIssuer>,
        }

        impl $name {
            /// The method, issuing through `issuer` (which may be shared by both code methods).
            pub fn new(issuer: Arc<CodeIssuer>) -> Self {
                Self { issuer }
            }

            /// Issues a verification code for `subject` to `destination`; `previous` is the newest
            /// earlier code of this method in this flow (marked superseded).
            pub fn issue(
                &self,
                subject: &Subject,
                destination: Destination,
                previous: Option<&mut SentCode>,
                now: OffsetDateTime,
            ) -> Result<(Secret<String>, SentCode), CodeError> {
                let binding = self.binding(subject, destination);
                let (code, record) =
                    self.issuer.issue(&binding, previous.map(|p| &mut p.record), now)?;
                Ok((code, SentCode { destination: binding.destination, record }))
            }

            fn binding(&self, subject: &Subject, destination: Destination) -> CodeBinding {
                CodeBinding {
                    flow: subject.flow,
                    user: subject.user,
                    method: $kind,
                    purpose: CodePurpose::Verification,
                    destination,
                }
            }
        }

        impl Method for $name {
            type Stored = SentCode;
            type Answer = Secret<String>;
            type Outcome = CodeOutcome;
            type Error = std::convert::Infallible;

            fn kind(&self) -> MethodKind {
                $kind
            }

            async fn verify(
                &self,
                subject: &Subject,
                stored: &mut SentCode,
                answer: Secret<String>,
                now: OffsetDateTime,
            ) -> Result<CodeOutcome, Self::Error> {
                let binding = self.binding(subject, stored.destination.clone());
                Ok(self.issuer.verify(&mut stored.record, &answer, &binding, now))
            }
        }
    };
}

code_method!(
    /// Verification by a one-time code sent by email.
    EmailCode,
    MethodKind::Email
);
code_method!(
    /// Verification by a one-time code sent by text message.
    SmsCode,
    MethodKind::Sms
);

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-21 09:00 UTC);

    fn issuer() -> CodeIssuer {
        CodeIssuer::new(CodeKey::generate().unwrap(), CodeConfig::default()).unwrap()
    }

    fn binding() -> CodeBinding {
        CodeBinding {
            flow: FlowId::new_random(),
            user: ObjectId::new_random(),
            method: MethodKind::Email,
            purpose: CodePurpose::Verification,
            destination: Destination::Email("adele.vance@contoso.com".parse().unwrap()),
        }
    }

    fn secret(s: &str) -> Secret<String> {
        Secret::new(s.to_string())
    }

    #[test]
    fn correct_code_verifies_once() {
        let iss = issuer();
        let b = binding();
        let (code, mut rec) = iss.issue(&b, None, T0).unwrap();
        assert_eq!(code.expose().len(), 8);
        assert_eq!(rec.sequence, 1);
        assert_eq!(rec.tries_left, 5);
        assert_eq!(rec.expires_at - rec.issued_at, Duration::minutes(10));
        assert_eq!(
            iss.verify(&mut rec, &code, &b, T0 + Duration::minutes(1)),
            CodeOutcome::Ok
        );
        assert!(rec.consumed);
        assert_eq!(
            iss.verify(&mut rec, &code, &b, T0 + Duration::minutes(2)),
            CodeOutcome::AlreadyUsed
        );
    }

    #[test]
    fn code_is_bound_to_flow_user_method_purpose_and_destination() {
        let iss = issuer();
        let b = binding();
        let (code, rec) = iss.issue(&b, None, T0).unwrap();
        let phone_b = CodeBinding {
            method: MethodKind::Sms,
            destination: Destination::phone("+1 206 555 0100").unwrap(),
            ..b.clone()
        };
        let (sms_code, sms_rec) = iss.issue(&phone_b, None, T0).unwrap();

        let mismatches = [
            CodeBinding {
                flow: FlowId::new_random(),
                ..b.clone()
            },
            CodeBinding {
                user: ObjectId::new_random(),
                ..b.clone()
            },
            CodeBinding {
                purpose: CodePurpose::EnrollmentConfirmation,
                ..b.clone()
            },
            CodeBinding {
                destination: Destination::Email("megan.bowen@contoso.com".parse().unwrap()),
                ..b.clone()
            },
            // Same address, other method: the hash covers the method as well as the destination.
            CodeBinding {
                method: MethodKind::Sms,
                ..b.clone()
            },
        ];
        for wrong in &mismatches {
            let mut r = rec.clone();
            assert_eq!(
                iss.verify(&mut r, &code, wrong, T0),
                CodeOutcome::Wrong { tries_left: 4 },
                "accepted under {wrong:?}"
            );
        }
        // Same phone number, other method (a future voice call), and another number.
        for wrong in [
            CodeBinding {
                method: MethodKind::Email,
                ..phone_b.clone()
            },
            CodeBinding {
                destination: Destination::phone("+1 206 555 0101").unwrap(),
                ..phone_b.clone()
            },
        ] {
            let mut r = sms_rec.clone();
            assert!(matches!(
                iss.verify(&mut r, &sms_code, &wrong, T0),
                CodeOutcome::Wrong { .. }
            ));
        }
        // A record's hash moved into another record (other sequence number) does not verify.
        let mut moved = IssuedCode {
            sequence: 2,
            ..rec.clone()
        };
        assert!(matches!(
            iss.verify(&mut moved, &code, &b, T0),
            CodeOutcome::Wrong { .. }
        ));
        // Another issuer key does not verify either (the key is part of the hash).
        let mut r = rec.clone();
        assert!(matches!(
            issuer().verify(&mut r, &code, &b, T0),
            CodeOutcome::Wrong { .. }
        ));
        // And the right binding still does.
        let mut r = rec.clone();
        assert_eq!(iss.verify(&mut r, &code, &b, T0), CodeOutcome::Ok);
        let mut r = sms_rec.clone();
        // Spelling of the phone number does not matter: it is canonicalised.
        let respelled = CodeBinding {
            destination: Destination::phone("+1 (206) 555-0100").unwrap(),
            ..phone_b
        };
        assert_eq!(
            iss.verify(&mut r, &sms_code, &respelled, T0),
            CodeOutcome::Ok
        );
    }

    #[test]
    fn code_expires_after_its_lifetime() {
        let iss = issuer();
        let b = binding();
        let (code, rec) = iss.issue(&b, None, T0).unwrap();
        let mut r = rec.clone();
        assert_eq!(
            iss.verify(
                &mut r,
                &code,
                &b,
                T0 + Duration::minutes(10) - Duration::SECOND
            ),
            CodeOutcome::Ok
        );
        let mut r = rec.clone();
        assert_eq!(
            iss.verify(&mut r, &code, &b, T0 + Duration::minutes(10)),
            CodeOutcome::Expired
        );
        assert_eq!(
            r.tries_left, 5,
            "an expired attempt does not touch the record"
        );
        let short = CodeIssuer::new(
            CodeKey::generate().unwrap(),
            CodeConfig {
                lifetime: Duration::minutes(3),
                ..CodeConfig::default()
            },
        )
        .unwrap();
        let (code, mut rec) = short.issue(&b, None, T0).unwrap();
        assert_eq!(
            short.verify(&mut rec, &code, &b, T0 + Duration::minutes(3)),
            CodeOutcome::Expired
        );
    }

    #[test]
    fn five_wrong_tries_void_the_code() {
        let iss = issuer();
        let b = binding();
        let (code, mut rec) = iss.issue(&b, None, T0).unwrap();
        let wrong = if code.expose() == "00000000" {
            "11111111"
        } else {
            "00000000"
        };
        for left in (0..5).rev() {
            assert_eq!(
                iss.verify(&mut rec, &secret(wrong), &b, T0),
                CodeOutcome::Wrong { tries_left: left }
            );
        }
        assert!(!rec.is_live(T0));
        assert_eq!(iss.verify(&mut rec, &code, &b, T0), CodeOutcome::Exhausted);
        assert!(!rec.consumed);
    }

    #[test]
    fn a_new_code_voids_the_older_one() {
        let iss = issuer();
        let b = binding();
        let (old_code, mut old) = iss.issue(&b, None, T0).unwrap();
        let (new_code, mut new) = iss
            .issue(&b, Some(&mut old), T0 + Duration::minutes(1))
            .unwrap();
        assert!(old.superseded);
        assert_eq!(new.sequence, 2);
        assert_eq!(
            iss.verify(&mut old, &old_code, &b, T0 + Duration::minutes(2)),
            CodeOutcome::Superseded
        );
        if old_code.expose() != new_code.expose() {
            let mut n = new.clone();
            assert!(matches!(
                iss.verify(&mut n, &old_code, &b, T0),
                CodeOutcome::Wrong { .. }
            ));
        }
        assert_eq!(
            iss.verify(&mut new, &new_code, &b, T0 + Duration::minutes(2)),
            CodeOutcome::Ok
        );
    }

    #[test]
    fn typed_codes_are_normalised() {
        let iss = issuer();
        let b = binding();
        let (code, rec) = iss.issue(&b, None, T0).unwrap();
        let c = code.expose();
        let (a, z) = c.split_at(4);
        for typed in [
            format!("{a} {z}"),
            format!("{a}-{z}"),
            format!(" {a}\u{a0}{z}\n"),
            format!("{a}\u{2013}{z}"),
        ] {
            let mut r = rec.clone();
            assert_eq!(
                iss.verify(&mut r, &secret(&typed), &b, T0),
                CodeOutcome::Ok,
                "{typed:?}"
            );
        }
        assert_eq!(normalize_typed_code("12a4 5678"), "12a45678");
    }

    #[test]
    fn configuration_limits_are_enforced() {
        let ok = CodeConfig::default();
        assert_eq!(
            (ok.digits, ok.tries, ok.lifetime),
            (8, 5, Duration::minutes(10))
        );
        for bad in [
            CodeConfig { digits: 5, ..ok },
            CodeConfig { digits: 11, ..ok },
            CodeConfig {
                lifetime: Duration::minutes(11),
                ..ok
            },
            CodeConfig {
                lifetime: Duration::ZERO,
                ..ok
            },
            CodeConfig { tries: 6, ..ok },
            CodeConfig { tries: 0, ..ok },
        ] {
            assert!(
                CodeIssuer::new(CodeKey::generate().unwrap(), bad).is_err(),
                "{bad:?}"
            );
        }
        let six =
            CodeIssuer::new(CodeKey::generate().unwrap(), CodeConfig { digits: 6, ..ok }).unwrap();
        assert_eq!(six.issue(&binding(), None, T0).unwrap().0.expose().len(), 6);
        assert_eq!(
            CodeKey::from_bytes(&Secret::new(vec![7u8; 31])).unwrap_err(),
            CodeError::KeyTooShort
        );
        let mismatched = CodeBinding {
            method: MethodKind::Sms,
            ..binding()
        };
        assert!(matches!(
            issuer().issue(&mismatched, None, T0),
            Err(CodeError::DestinationMismatch { .. })
        ));
    }

    #[test]
    fn phone_destinations_are_canonical() {
        assert_eq!(
            Destination::phone("+1 (206) 555-0100").unwrap(),
            Destination::Phone("+12065550100".parse().unwrap())
        );
        assert_eq!(
            Destination::phone("+44 20 7946 0958").unwrap().masked(),
            "+44********58"
        );
        for bad in [
            "206 555 0100",
            "+1 206 555 0100 x12",
            "+0123456789",
            "+12",
            "+1 206 555 01001234567",
        ] {
            assert!(Destination::phone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_secret_in_debug_output() {
        let iss = issuer();
        let b = binding();
        let (code, rec) = iss.issue(&b, None, T0).unwrap();
        let dump = format!("{iss:?} {rec:?} {code:?} {b:?}");
        assert!(!dump.contains(code.expose().as_str()), "{dump}");
        assert!(dump.contains("[redacted]"));
        assert!(
            !dump.contains("adele.vance"),
            "destinations are masked: {dump}"
        );
    }

    #[tokio::test]
    async fn methods_verify_through_the_trait() {
        let issuer = Arc::new(issuer());
        let email = EmailCode::new(issuer.clone());
        let sms = SmsCode::new(issuer);
        let subject = Subject {
            flow: FlowId::new_random(),
            user: ObjectId::new_random(),
        };
        let (code, mut sent) = email
            .issue(
                &subject,
                Destination::Email("adele.vance@contoso.com".parse().unwrap()),
                None,
                T0,
            )
            .unwrap();
        // The SMS method refuses to send to an email address.
        assert!(
            sms.issue(&subject, sent.destination.clone(), None, T0)
                .is_err()
        );
        // A code verified under another subject fails and costs a try.
        let other = Subject {
            user: ObjectId::new_random(),
            ..subject
        };
        let outcome = email
            .verify(&other, &mut sent, code.clone(), T0)
            .await
            .unwrap();
        assert_eq!(outcome, CodeOutcome::Wrong { tries_left: 4 });
        let outcome = email.verify(&subject, &mut sent, code, T0).await.unwrap();
        assert!(outcome.is_accepted());
        assert_eq!(outcome.reason(), "ok");
        assert_eq!(email.kind(), MethodKind::Email);
        assert_eq!(sms.channel(), crate::Channel::Phone);
    }
}
