//! Delta state tokens (`$skiptoken` of a nextLink, `$deltatoken` of a deltaLink).
//!
//! Opaque to clients, as Graph's are: base64url of a small JSON document, a dot, and a
//! truncated HMAC-SHA256 of it under the simulator's random key. A token that does not verify
//! (edited, truncated, from another simulator run) is a 400 like a bad skiptoken; one that
//! verifies but is older than `[delta] token_lifetime_days`, or from before
//! `POST /_sim/delta/reset`, gets the resync answer (410 or 400, see `super::resync`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// What a token carries. Field names are short: tokens travel in every URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenState {
    /// Resource: `users`, `groups`, `directoryRoles`.
    pub r: String,
    /// First round (`true`: every live object up to `upto`) or a later round (changes after
    /// `since` up to `upto`).
    pub init: bool,
    pub since: u64,
    /// The sequence this round reports up to (fixed when the round starts).
    pub upto: u64,
    /// Paging cursor: the next log sequence to look at, and the member chunk within it.
    pub at: u64,
    pub chunk: usize,
    /// The container a split member list continues with (`chunk > 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cont: Option<String>,
    /// `$select` of the first request (`None` = default properties).
    pub sel: Option<Vec<String>>,
    /// `$filter=id eq ...` ids of the first request.
    pub ids: Option<Vec<String>>,
    /// When this token was issued (simulator clock, Unix seconds).
    pub iat: i64,
    /// Token epoch (see `Changes::epoch`).
    pub ep: u64,
}

fn mac(key: &[u8; 32], payload: &str) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&k, payload.as_bytes());
    URL_SAFE_NO_PAD.encode(&tag.as_ref()[..12])
}

/// Leads every token's bytes: a format version, and it keeps the encoding from starting like a
/// JWT (`eyJ`, a bare JSON object) — Graph's tokens are opaque, and log checks look for JWTs.
const VERSION: u8 = 1;

pub fn encode(key: &[u8; 32], t: &TokenState) -> String {
    let mut bytes = vec![VERSION];
    bytes.extend(serde_json::to_vec(t).unwrap_or_default());
    let payload = URL_SAFE_NO_PAD.encode(bytes);
    let tag = mac(key, &payload);
    format!("{payload}.{tag}")
}

/// `None` when the token is not one this simulator issued unchanged.
pub fn decode(key: &[u8; 32], token: &str) -> Option<TokenState> {
    let (payload, tag) = token.split_once('.')?;
    let expected = mac(key, payload);
    if expected != tag {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let (&VERSION, json) = bytes.split_first()? else {
        return None;
    };
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_edits() {
        let key = [7u8; 32];
        let t = TokenState {
            r: "users".into(),
            init: true,
            since: 0,
            upto: 42,
            at: 10,
            chunk: 0,
            cont: None,
            sel: Some(vec!["displayName".into()]),
            ids: None,
            iat: 1_700_000_000,
            ep: 0,
        };
        let s = encode(&key, &t);
        assert_eq!(decode(&key, &s), Some(t));
        let mut bad = s.clone();
        bad.replace_range(0..1, if s.starts_with('e') { "f" } else { "e" });
        assert_eq!(decode(&key, &bad), None);
        assert_eq!(decode(&[8u8; 32], &s), None);
        assert_eq!(decode(&key, "garbage"), None);
    }
}
