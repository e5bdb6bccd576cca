//! Gateway credentials: `lkgw_<gateway id>.<43 characters of base64url>` (256 random bits).
//! The id says which row to check; the store compares SHA-256 of the secret in constant time.
//! A fast hash is right here: the secret is random and long, so there is nothing to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_jobs::CREDENTIAL_PREFIX;
use latchkey_types::Secret;
use ring::rand::{SecureRandom, SystemRandom};

/// A freshly generated credential: what to print once, and the hash to store.
pub struct Issued {
    pub secret: Secret<Vec<u8>>,
    pub hash: [u8; 32],
}

/// 256 random bits.
pub fn generate() -> anyhow::Result<Issued> {
    let mut s = vec![0u8; 32];
    SystemRandom::new()
        .fill(&mut s)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
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
}
