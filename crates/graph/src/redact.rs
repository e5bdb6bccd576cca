//! Redaction for the HTTP debug log. Everything that leaves this crate as log text goes through
//! here: JSON bodies, form bodies and URLs have the values of sensitive keys replaced, and any
//! string that looks like a JWT is replaced wherever it appears.

use serde_json::Value;
use url::Url;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Keys (JSON properties, form fields, query parameters) whose values are never shown.
/// Compared case-insensitively.
pub const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "newPassword",
    "currentPassword",
    "temporaryAccessPass",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "secretKey",
    "otp",
    "verificationCode",
];

/// True when the value of `key` must be redacted.
pub fn is_sensitive_key(key: &str) -> bool {
    SENSITIVE_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// True for strings shaped like a JWS/JWT (`eyJ…` header, three base64url segments).
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 3
        && s.starts_with("eyJ")
        && parts[..2].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A copy of `value` with sensitive values replaced, recursively.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive_key(k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::String(s) if looks_like_jwt(s) => Value::String(REDACTED.into()),
        other => other.clone(),
    }
}

/// An `application/x-www-form-urlencoded` body with sensitive fields replaced.
pub fn redact_form(body: &str) -> String {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| {
            let v = if is_sensitive_key(&k) || looks_like_jwt(&v) {
                REDACTED.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A URL as text with sensitive query parameters replaced; the fragment is dropped.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    if u.query().is_some() {
        let q = redact_form(u.query().unwrap_or_default());
        u.set_query(Some(&q));
    }
    u.to_string()
}

/// A body for the log: JSON and form bodies redacted, anything else summarised by its size.
pub fn redact_body(content_type: Option<&str>, body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    if ct.contains("json") || (ct.is_empty() && body.first() == Some(&b'{')) {
        return match serde_json::from_slice::<Value>(body) {
            Ok(v) => redact_json(&v).to_string(),
            Err(_) => format!("[{} bytes of unparseable JSON not shown]", body.len()),
        };
    }
    if ct.contains("x-www-form-urlencoded") {
        return match std::str::from_utf8(body) {
            Ok(s) => redact_form(s),
            Err(_) => format!("[{} bytes not shown]", body.len()),
        };
    }
    format!(
        "[{} bytes of {} not shown]",
        body.len(),
        if ct.is_empty() { "unknown type" } else { &ct }
    )
}

/// Removes every occurrence of each (non-trivial) secret from `text`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_keys_are_redacted_recursively_and_case_insensitively() {
        let v = json!({
            "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d", "forceChangePasswordNextSignIn": true},
            "newPassword": "Cuyo5459",
            "NEWPASSWORD": "Cuyo5459",
            "temporaryAccessPass": "+drkzqAD",
            "access_token": "abc", "refresh_token": "def", "id_token": "ghi",
            "secretKey": null,
            "value": [{"currentPassword": "old"}],
            "displayName": "Adele Vance",
            "note": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        });
        let r = redact_json(&v).to_string();
        for secret in [
            "xWwvJ", "Cuyo5459", "+drkzqAD", "\"abc\"", "\"def\"", "\"ghi\"", "old", "eyJhbGci",
        ] {
            assert!(!r.contains(secret), "{secret} leaked in {r}");
        }
        assert!(r.contains("Adele Vance"));
        assert!(r.contains("forceChangePasswordNextSignIn"));
        assert!(r.contains("\"secretKey\":null"), "null stays null: {r}");
    }

    #[test]
    fn form_fields_are_redacted() {
        let body = "client_id=1111&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=qWgd%2BYAm&grant_type=client_credentials&code=AwAB&code_verifier=vvv&refresh_token=rt&client_assertion=eyJh.eyJi.sig&client_assertion_type=urn%3Aietf";
        let r = redact_form(body);
        for secret in ["qWgd", "AwAB", "vvv", "=rt", "eyJh"] {
            assert!(!r.contains(secret), "{secret} leaked in {r}");
        }
        assert!(r.contains("client_id=1111"));
        assert!(r.contains("grant_type=client_credentials"));
        assert!(r.contains("client_assertion_type=urn%3Aietf"));
    }

    #[test]
    fn urls_lose_codes_and_fragments() {
        let u =
            Url::parse("https://app.example/cb?code=AwABsecret&state=123#access_token=x").unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("AwABsecret"));
        assert!(!r.contains("access_token=x"));
        assert!(r.contains("state=123"));
        let plain = Url::parse("https://graph.microsoft.com/v1.0/users?$top=2").unwrap();
        assert!(redact_url(&plain).contains("top=2"));
    }

    #[test]
    fn bodies_by_content_type() {
        assert!(
            !redact_body(
                Some("application/json; charset=utf-8"),
                br#"{"newPassword":"p4ss"}"#
            )
            .contains("p4ss")
        );
        assert!(
            !redact_body(
                Some("application/x-www-form-urlencoded"),
                b"client_secret=p4ss"
            )
            .contains("p4ss")
        );
        assert!(!redact_body(Some("text/plain"), b"p4ss").contains("p4ss"));
        assert!(!redact_body(Some("application/json"), b"{not json p4ss").contains("p4ss"));
        assert!(!redact_body(None, br#"{"password":"p4ss"}"#).contains("p4ss"));
        assert_eq!(redact_body(None, b""), "");
    }

    #[test]
    fn scrub_removes_known_secrets() {
        let s = scrub(
            "AADSTS7000215: bad secret 'hunter22' for app",
            &["hunter22", ""],
        );
        assert!(!s.contains("hunter22"));
        assert!(s.contains(REDACTED));
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJ0eXAi.eyJhdWQi.sig"));
        assert!(!looks_like_jwt("eyJ0eXAi"));
        assert!(!looks_like_jwt("hello.world.x"));
    }
}
