//! Passkey provisioning state: the challenges `creationOptions` handed out (each bound to one
//! user, valid 5 minutes, usable once), the relying party Entra registers passkeys for, the
//! per-user WebAuthn user handle and a small AAGUID → model table.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The RP ID of Entra passkeys. The v1.0 doc example says `login.microsoftonline.com`, but its
/// own example authenticator data is for another RP; a captured tenant response (DSInternals'
/// tests) and the beta example both say `login.microsoft.com`.
pub const RP_ID: &str = "login.microsoft.com";
/// The origin clientDataJSON must name: what a browser on the RP's host produces.
pub const ORIGIN: &str = "https://login.microsoft.com";
/// v1.0: "a system-defined challenge timeout of 5 minutes".
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(5);

/// Expired challenges are kept this long after expiry, so a late registration is told its
/// challenge expired rather than that it was never issued; then they are forgotten.
const KEEP_EXPIRED: Duration = Duration::hours(1);
/// A bound on outstanding challenges (load runs call `creationOptions` in a loop).
const MAX_PENDING: usize = 10_000;

/// One challenge handed out by `creationOptions`.
#[derive(Debug, Clone)]
pub struct PendingChallenge {
    pub user: Uuid,
    pub bytes: [u8; 32],
    pub expires: OffsetDateTime,
}

/// The outstanding challenges of the tenant.
#[derive(Debug, Default)]
pub struct PasskeyChallenges {
    pending: Vec<PendingChallenge>,
}

impl PasskeyChallenges {
    /// Records a new challenge for `user`; returns when it expires.
    pub fn issue(&mut self, user: Uuid, bytes: [u8; 32], now: OffsetDateTime) -> OffsetDateTime {
        self.pending.retain(|p| p.expires + KEEP_EXPIRED > now);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        let expires = now + CHALLENGE_LIFETIME;
        self.pending.push(PendingChallenge {
            user,
            bytes,
            expires,
        });
        expires
    }

    /// Removes and returns the challenge whose base64url form is `encoded` (as clientDataJSON
    /// carries it). Taken whatever happens next: a challenge is presented once.
    pub fn take(&mut self, encoded: &str) -> Option<PendingChallenge> {
        let pos = self
            .pending
            .iter()
            .position(|p| URL_SAFE_NO_PAD.encode(p.bytes) == encoded)?;
        Some(self.pending.remove(pos))
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The WebAuthn user handle Entra gives a user: opaque and stable, derived here from the
/// object id (real handles are opaque 51-byte values).
pub fn user_handle(user: Uuid) -> [u8; 32] {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("fido2-user-handle:{user}").as_bytes(),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A credential id as clients spell it: base64url or standard base64, padded or not.
pub fn decode_id(text: &str) -> Option<Vec<u8>> {
    latchkey_webauthn::decode_base64_lenient(text)
        .ok()
        .filter(|b| !b.is_empty())
}

/// Model names Entra shows for some authenticators (`model`; `null` for the rest). The first
/// is the registration doc example's pair; the others are Yubico's published AAGUIDs.
const MODELS: &[(&str, &str)] = &[
    (
        "de1e552d-db1d-4423-a619-566b625cdc84",
        "Security Key NFC by Yubico",
    ),
    ("cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"),
    ("ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"),
    (
        "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
        "YubiKey 5 Series with NFC",
    ),
    (
        "2fc0579f-8113-47ea-b116-bb5a8db9202a",
        "YubiKey 5 Series with NFC",
    ),
    ("c5ef55ff-ad9a-4b9f-b580-adebafe026d0", "YubiKey 5Ci"),
    ("d8522d9f-575b-4866-88a9-ba99fa02f35b", "YubiKey Bio Series"),
    (
        "b92c3f9a-c014-4056-887f-140a2501163b",
        "Security Key by Yubico",
    ),
    (
        "149a2021-8ef6-4133-96b8-81f8d5b7f1f5",
        "Security Key by Yubico with NFC",
    ),
];

pub fn model_of(aaguid: &Uuid) -> Option<&'static str> {
    MODELS
        .iter()
        .find(|(id, _)| id.parse::<Uuid>().ok().as_ref() == Some(aaguid))
        .map(|(_, name)| *name)
}

/// `attestationCertificates` lists certificates by thumbprint: SHA-1 of the DER, lower-case hex
/// (`dbe793efdf1945e2df25d93653a1e8a3268a9075` in the documented list example).
pub fn thumbprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_taken_once_and_expired_ones_forgotten() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let mut c = PasskeyChallenges::default();
        let user = Uuid::from_u128(7);
        let exp = c.issue(user, [1; 32], now);
        assert_eq!(exp - now, Duration::minutes(5));
        c.issue(user, [2; 32], now);
        let p = c.take(&URL_SAFE_NO_PAD.encode([1u8; 32])).unwrap();
        assert_eq!((p.user, p.bytes), (user, [1; 32]));
        assert!(c.take(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_none());
        assert_eq!(c.len(), 1);
        c.issue(user, [3; 32], now + Duration::hours(2));
        assert_eq!(c.len(), 1, "the old one is gone");
    }

    #[test]
    fn helpers() {
        assert_eq!(user_handle(Uuid::nil()), user_handle(Uuid::nil()));
        assert_ne!(user_handle(Uuid::nil()), user_handle(Uuid::from_u128(1)));
        assert_eq!(decode_id("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_id("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_id(""), None);
        let yk: Uuid = "CB69481E-8FF7-4039-93EC-0A2729A154A8".parse().unwrap();
        assert_eq!(model_of(&yk), Some("YubiKey 5 Series"));
        assert_eq!(model_of(&Uuid::nil()), None);
        assert_eq!(thumbprint(b"").len(), 40);
    }
}
