//! Gateway credentials: `lkgw_<gateway id>.<43 characters of base64url>` (256 random bits).
//! The id says which row to check; the store compares SHA-256 of the secret in constant time.
//! A fast hash is right here: the secret is random and long, so there is nothing to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_jobs::{CREDENTIAL_PREFIX, JobKind};
use latchkey_types::Secret;

/// A freshly generated credential: what to print once, and the hash to store.
pub struct Issued {
    pub secret: Secret<Vec<u8>>,
    pub hash: [u8; 32],
}

/// 256 random bits.
pub fn generate() -> anyhow::Result<Issued> {
    let s = latchkey_types::random::bytes::<32>()?.to_vec();
    let hash = digest(&s);
    Ok(Issued {
        secret: Secret::new(s),
        hash,
    })
}

/// The text the gateway's configuration holds.
pub fn format(gateway_id: &str, secret: &Secret<Vec<u8>>) -> Secret<String> {
    Secret::new(format!(
        "{CREDENTIAL_PREFIX}{gateway_id}.{}",
        URL_SAFE_NO_PAD.encode(secret.expose())
    ))
}

/// Why a gateway name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a gateway name has 1 to 64 characters")]
    Length,
    #[error("a gateway name has letters, digits, spaces, dots, dashes and underscores only")]
    Characters,
}

/// The longest gateway name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a gateway name (trimmed): 1 to [`MAX_NAME_LEN`] characters, letters, digits, space,
/// `.`, `-`, `_` (it is shown in lists and audit events, so nothing that could pass for markup
/// or a control sequence).
pub fn validate_name(name: &str) -> Result<&str, NameError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(NameError::Length);
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_'))
    {
        return Err(NameError::Characters);
    }
    Ok(name)
}

/// Registers a gateway named `name` (validated) with a fresh credential; returns the row and
/// the credential text, to be shown once (only its hash is stored). Shared by the CLI and the
/// admin console. The gateway may unlock; it gets reset jobs (which carry users' new
/// passwords) only when `allow_reset`, an operator's explicit decision.
pub async fn register(
    store: &dyn latchkey_store::Store,
    name: &str,
    allow_reset: bool,
    now: time::OffsetDateTime,
) -> Result<(latchkey_store::Gateway, Secret<String>), RegisterError> {
    let name = validate_name(name)?;
    let issued = generate().map_err(|_| RegisterError::Randomness)?;
    let mut allowed = vec![JobKind::Unlock.as_str().to_string()];
    if allow_reset {
        allowed.push(JobKind::Reset.as_str().to_string());
    }
    let g = store
        .register_gateway(name, &issued.hash, &allowed, now)
        .await?;
    let text = format(&g.id, &issued.secret);
    Ok((g, text))
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no system randomness")]
    Randomness,
    /// Includes a taken name ([`latchkey_store::StoreError::Invalid`]).
    #[error(transparent)]
    Store(#[from] latchkey_store::StoreError),
}

fn digest(secret: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Splits a presented credential into (gateway id, SHA-256 of the secret); `None` when it is
/// not of the right shape.
pub fn parse(presented: &str) -> Option<(String, [u8; 32])> {
    let rest = presented.trim().strip_prefix(CREDENTIAL_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(secret).ok()?;
    (bytes.len() == 32).then(|| (id.to_string(), digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_credentials_parse_back_to_their_hash() {
        let i = generate().unwrap();
        let text = format("abc123", &i.secret);
        assert!(text.expose().starts_with("lkgw_abc123."));
        let (id, hash) = parse(text.expose()).unwrap();
        assert_eq!((id.as_str(), hash), ("abc123", i.hash));
        assert!(parse("lkgw_abc123.short").is_none());
        assert!(parse("Bearer something").is_none());
        assert!(parse("lkgw_a b.AAAA").is_none());
    }

    #[test]
    fn gateway_names_are_checked() {
        assert_eq!(validate_name("  site-a.hq_1 "), Ok("site-a.hq_1"));
        assert_eq!(validate_name(" "), Err(NameError::Length));
        assert_eq!(validate_name(&"a".repeat(65)), Err(NameError::Length));
        assert_eq!(validate_name("a<b>"), Err(NameError::Characters));
        assert_eq!(validate_name("a\nb"), Err(NameError::Characters));
    }
}
