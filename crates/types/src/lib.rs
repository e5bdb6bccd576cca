//! Latchkey's domain vocabulary. Every identifier that crosses a crate boundary is one of these
//! types, parsed once where it enters the program (HTTP form, config file, Graph response), so the
//! rest of the code never handles an unchecked string.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod random;
pub mod signin;

pub use signin::SignInName;

/// Why a value could not be parsed into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "not a directory object id (expected a GUID such as 00000000-0000-0000-0000-000000000000)"
    )]
    ObjectId,
    #[error("not a user principal name (expected name@domain)")]
    Upn,
    #[error("not an email address (expected name@domain)")]
    Email,
    #[error("not a verification method (expected email, sms, totp, questions or attribute)")]
    MethodKind,
    #[error(
        "not an international phone number (expected +<country code><number>, e.g. +41446681800)"
    )]
    Phone,
    #[error("not an account name (expected name@domain, DOMAIN\\name or name)")]
    SignInName,
}

/// An Entra directory object id (a GUID). Stable for the life of the object, unlike UPN or mail,
/// which is why every throttle and every piece of flow state is keyed on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(uuid::Uuid);

impl ObjectId {
    /// A fresh random id, for what only looks like a directory object (a decoy flow's subject,
    /// a correlation id). Entra assigns the real ones.
    pub fn random() -> Result<Self, random::NoRandomness> {
        random::uuid().map(Self)
    }

    /// [`ObjectId::random`] for tests and the simulator: panics when the system has no
    /// randomness (product code uses `random` and handles that).
    #[allow(clippy::disallowed_methods)] // tests and the simulator
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl From<uuid::Uuid> for ObjectId {
    fn from(u: uuid::Uuid) -> Self {
        Self(u)
    }
}

impl FromStr for ObjectId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical hyphenated form: Graph never emits braces or URNs, and accepting them
        // would make two spellings of one id.
        if s.len() != 36 {
            return Err(ParseError::ObjectId);
        }
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ParseError::ObjectId)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.0.hyphenated())
    }
}

/// The stable identity of one self-service flow (identify → verify → act), fixed when the flow
/// starts. Codes and verifications are bound to it. It is a storage key, not a bearer secret: the
/// browser holds a separate session id (at least 128 random bits) that is replaced after every
/// verified step, while the flow id stays the same for the life of the flow.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(uuid::Uuid);

impl FlowId {
    /// A fresh random id for a new flow.
    pub fn random() -> Result<Self, random::NoRandomness> {
        random::uuid().map(Self)
    }

    /// [`FlowId::random`] for tests: panics when the system has no randomness.
    #[allow(clippy::disallowed_methods)] // tests
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl From<uuid::Uuid> for FlowId {
    fn from(u: uuid::Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowId({})", self.0.hyphenated())
    }
}

/// Checks the `local@domain` shape shared by UPNs and email addresses. Deliberately strict on
/// characters that would matter in OData literals, URLs or mail headers; the directory remains the
/// authority on whether such an account exists.
fn valid_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 113
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+'!#$%&*/=?^`{|}~".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let domain_ok = !domain.is_empty()
        && domain.len() <= 255
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok && s.len() <= 320
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $err:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The part after the `@`.
            pub fn domain(&self) -> &str {
                self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                if valid_address(s) {
                    // Entra compares both case-insensitively; one canonical spelling keeps keys stable.
                    Ok(Self(s.to_ascii_lowercase()))
                } else {
                    Err($err)
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

address_type!(
    /// A user principal name, lower-cased (Entra treats UPNs case-insensitively).
    Upn,
    ParseError::Upn
);
address_type!(
    /// An email address, lower-cased. Recipients always come from the directory or enrolled data.
    EmailAddress,
    ParseError::Email
);

impl EmailAddress {
    /// `nobody@example.invalid`: an address no mail can reach (RFC 2606 reserves `.invalid`).
    pub fn unroutable() -> Self {
        Self("nobody@example.invalid".to_string())
    }

    /// `j***@contoso.com`: for logs and pages that must not reveal the full address.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

macro_rules! serde_via_str {
    ($($name:ident),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_via_str!(ObjectId, Upn, EmailAddress, PhoneNumber);

/// A way a user proves who they are in the self-service flow. Shared by policies (which methods are
/// allowed), verification (how each is checked) and the store (what is enrolled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// A one-time code sent to an enrolled email address.
    Email,
    /// A one-time code sent by text message to an enrolled phone.
    Sms,
    /// A code from an authenticator app (TOTP, RFC 6238).
    Totp,
    /// Answers to security questions. Never one of two required methods.
    Questions,
    /// Directory attributes the user knows (e.g. employee id and hire date).
    Attribute,
    /// A passkey or security key registered for the portal (WebAuthn, user verification
    /// required): phishing-resistant, so a policy may let it stand alone.
    Passkey,
}

impl MethodKind {
    pub const ALL: [MethodKind; 6] = [
        Self::Email,
        Self::Sms,
        Self::Totp,
        Self::Questions,
        Self::Attribute,
        Self::Passkey,
    ];

    /// The channel the proof travels through. Two methods on the same channel (say, two codes to
    /// two mailboxes) prove the same thing twice, so they count once.
    pub fn channel(self) -> Channel {
        match self {
            Self::Email => Channel::Email,
            Self::Sms => Channel::Phone,
            Self::Totp => Channel::AuthenticatorApp,
            Self::Questions | Self::Attribute => Channel::Knowledge,
            Self::Passkey => Channel::Passkey,
        }
    }

    /// Whether a success may count toward the number of methods a policy requires. Security
    /// questions never do (docs/security.md): answers are guessable and often public.
    pub fn counts_toward_required(self) -> bool {
        !matches!(self, Self::Questions)
    }

    /// The name used in policy files, URLs and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Totp => "totp",
            Self::Questions => "questions",
            Self::Attribute => "attribute",
            Self::Passkey => "passkey",
        }
    }
}

/// What an attacker would have to control to pass a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A mailbox.
    Email,
    /// A phone number (SIM).
    Phone,
    /// A device holding a TOTP seed.
    AuthenticatorApp,
    /// Something the person knows (answers, directory facts).
    Knowledge,
    /// A private key bound to the portal's origin, on a security key or in a passkey manager,
    /// unlocked by the person's PIN or biometric.
    Passkey,
}

impl Channel {
    /// The stable name (`email`, `phone`, `authenticator_app`, `knowledge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::AuthenticatorApp => "authenticator_app",
            Channel::Knowledge => "knowledge",
            Channel::Passkey => "passkey",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MethodKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(ParseError::MethodKind)
    }
}

/// A phone number in E.164 form (`+` and 8 to 15 digits, the first not zero): the only form SMS
/// providers accept unambiguously, and the form every spelling of one number is compared in.
/// Spaces, dashes, dots and parentheses are dropped when parsing; anything else (letters, an
/// extension) is refused, since a text message cannot reach it. National formats need a
/// numbering plan and a default region, so they are refused too. `Debug` masks the number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// `+99900000000`: country code 999 is unassigned (ITU-T E.164), so no message can arrive.
    pub fn unassigned() -> Self {
        Self("+99900000000".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+41*******00`: the first two digits and the last two, for logs and pages.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let head: String = digits.chars().take(2).collect();
        let tail: String = digits
            .chars()
            .skip(digits.len().saturating_sub(2))
            .collect();
        format!(
            "+{head}{}{tail}",
            "*".repeat(digits.len().saturating_sub(4))
        )
    }
}

impl FromStr for PhoneNumber {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix('+').ok_or(ParseError::Phone)?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ParseError::Phone),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(ParseError::Phone);
        }
        Ok(Self(format!("+{digits}")))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// A value that must never be printed: passwords, client secrets, tokens, codes, answers.
/// `Debug` and `Display` show `[redacted]`; the value is reached only through [`Secret::expose`],
/// which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_round_trips_and_rejects_other_spellings() {
        let s = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
        let id: ObjectId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert!(
            "{87d349ed-44d7-43e1-9a83-5f2406dee5bd}"
                .parse::<ObjectId>()
                .is_err()
        );
        assert!(
            "87d349ed44d743e19a835f2406dee5bd"
                .parse::<ObjectId>()
                .is_err()
        );
        assert!("not-a-guid".parse::<ObjectId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<ObjectId>(&json).unwrap(), id);
    }

    #[test]
    fn upn_is_lowercased_and_validated() {
        let upn: Upn = " AdeleV@Contoso.com ".parse().unwrap();
        assert_eq!(upn.as_str(), "adelev@contoso.com");
        assert_eq!(upn.domain(), "contoso.com");
        for bad in [
            "",
            "adele",
            "@contoso.com",
            "adele@",
            "adele@contoso",
            "a b@contoso.com",
            "adele@contoso..com",
            "adele@-contoso.com",
            "o'brien@x.com' or 1 eq 1",
        ] {
            assert!(bad.parse::<Upn>().is_err(), "{bad:?} accepted");
        }
        // An apostrophe is legal in a local part and must survive (OData escaping is the client's job).
        assert!("o'brien@contoso.com".parse::<Upn>().is_ok());
    }

    #[test]
    fn the_placeholder_destinations_are_valid_values() {
        assert_eq!(
            EmailAddress::unroutable().as_str().parse::<EmailAddress>(),
            Ok(EmailAddress::unroutable())
        );
        assert_eq!(
            PhoneNumber::unassigned().as_str().parse::<PhoneNumber>(),
            Ok(PhoneNumber::unassigned())
        );
    }

    #[test]
    fn email_masking_hides_the_local_part() {
        let e: EmailAddress = "megan.bowen@contoso.com".parse().unwrap();
        assert_eq!(e.masked(), "m***@contoso.com");
    }

    #[test]
    fn phone_numbers_are_e164_and_masked() {
        let p: PhoneNumber = " +41 (44) 668-18.00 ".parse().unwrap();
        assert_eq!(p.as_str(), "+41446681800");
        assert_eq!(p.masked(), "+41*******00");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+41*******00)");
        for bad in [
            "0446681800",
            "+0446681800",
            "+4144abc",
            "+1234567",
            "+1234567890123456",
            "+1 206 555 0100x12",
            "",
        ] {
            assert!(bad.parse::<PhoneNumber>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
