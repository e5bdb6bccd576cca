//! Passkeys registered for the portal (WebAuthn credentials), several per user.
//!
//! Nothing here is secret: a credential's public key and counter are what a verifier needs and
//! what an authenticator shows anyone who asks, so rows are stored in clear. What matters is
//! that a credential id belongs to exactly one user (the primary key), that a user cannot pile
//! up keys without bound ([`PasskeyStore::add_passkey`]'s limit, checked in the same statement),
//! and that the signature counter only moves forward through a compare-and-set
//! ([`PasskeyStore::use_passkey`]).

use latchkey_types::ObjectId;
use time::OffsetDateTime;

/// A credential to register (already verified by the portal).
#[derive(Clone, Debug)]
pub struct NewPasskey {
    pub subject: ObjectId,
    /// The WebAuthn credential id (raw bytes, at most 1023).
    pub credential_id: Vec<u8>,
    /// The WebAuthn user handle the credential was created for: random, the same for every
    /// passkey of one user, never personal data.
    pub user_handle: Vec<u8>,
    /// What the user called it ("YubiKey on my keyring").
    pub name: String,
    /// The COSE_Key as the authenticator sent it.
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    /// The authenticator model (all zeros when the authenticator does not say).
    pub aaguid: [u8; 16],
    /// Backup eligible (a synced passkey) and backed up, from the registration's flags.
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// A registered passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passkey {
    pub subject: ObjectId,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub name: String,
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub aaguid: [u8; 16],
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// What [`PasskeyStore::add_passkey`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyAdded {
    Added,
    /// The credential id is registered already (to this or another user): nothing changed.
    Duplicate,
    /// The user has the most passkeys allowed: nothing changed.
    Full,
}

pub(crate) const TABLE: &str = "passkeys";

/// Hex of an AAGUID, the form the column holds.
pub(crate) fn aaguid_hex(aaguid: &[u8; 16]) -> String {
    aaguid.iter().map(|b| format!("{b:02x}")).collect()
}

/// The AAGUID back from its column.
pub(crate) fn parse_aaguid(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
