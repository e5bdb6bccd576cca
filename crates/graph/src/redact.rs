//! Redaction for the HTTP debug log. Everything that leaves this crate as log text goes through
//! here: JSON bodies, form bodies and URLs have the values of sensitive keys replaced, and any
//! string that looks like a JWT is replaced wherever it appears. Personal data that the log
//! needs less than the reader's privacy (email addresses, phone numbers) is masked
//! (`j***@contoso.com`, `+1 20******55`).

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

/// Keys whose values are personal contact data: masked, not removed.
pub const PII_KEYS: &[&str] = &[
    "userPrincipalName",
    "mail",
    "otherMails",
    "proxyAddresses",
    "emailAddress",
    "mobilePhone",
    "businessPhones",
    "phoneNumber",
    "username",
    "login_hint",
];

fn is_pii_key(key: &str) -> bool {
    PII_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn is_local_part_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-+'!#$%&*=?^`{|}~".contains(c)
}

/// Masks the local part of every email address in `text`: `adele.vance@contoso.com` →
/// `a***@contoso.com`.
pub fn mask_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut start_of_pending = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut j = i;
            while j > start_of_pending && is_local_part_char(chars[j - 1]) {
                j -= 1;
            }
            // An OData quote before the address is not part of it.
            while j < i && chars[j] == '\'' {
                j += 1;
            }
            if j < i {
                out.extend(&chars[start_of_pending..j]);
                out.push(chars[j]);
                out.push_str("***@");
                start_of_pending = i + 1;
            }
        }
        i += 1;
    }
    out.extend(&chars[start_of_pending.min(chars.len())..]);
    out
}

/// Masks a phone number, keeping the country code and the last two digits.
pub fn mask_phone(s: &str) -> String {
    let (head, rest) = match s.split_once(' ') {
        Some((cc, rest)) if cc.starts_with('+') => (format!("{cc} "), rest),
        _ => (String::new(), s),
    };
    let n = rest.chars().count();
    let masked: String = rest
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if c.is_ascii_digit() && i >= 2 && i + 2 < n {
                '*'
            } else {
                c
            }
        })
        .collect();
    format!("{head}{masked}")
}

fn mask_pii_value(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains('@') => Value::String(mask_emails(s)),
        Value::String(s) if s.chars().filter(char::is_ascii_digit).count() >= 6 => {
            Value::String(mask_phone(s))
        }
        Value::Array(items) => Value::Array(items.iter().map(mask_pii_value).collect()),
        other => other.clone(),
    }
}

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
                    } else if is_pii_key(k) {
                        mask_pii_value(v)
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
            } else if is_pii_key(&k) {
                mask_emails(&v)
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

/// A URL for the log: percent-decoded for reading, sensitive query parameters replaced, email
/// addresses masked (also inside `$filter`), fragment dropped.
pub fn redact_url(url: &Url) -> String {
    let mut out = url.origin().ascii_serialization();
    out.push_str(&redact_path(url.path()));
    if let Some(q) = url.query() {
        let pairs: Vec<String> = url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| {
                if is_sensitive_key(&k) || looks_like_jwt(&v) {
                    format!("{k}={REDACTED}")
                } else {
                    format!("{k}={}", mask_emails(&v))
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A URL path for the log: percent-decoded, email addresses (UPNs) masked.
pub fn redact_path(path: &str) -> String {
    let decoded: String = url::form_urlencoded::parse(path.replace('+', "%2B").as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    mask_emails(&decoded)
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
    fn personal_data_is_masked() {
        assert_eq!(mask_emails("adele.vance@contoso.com"), "a***@contoso.com");
        assert_eq!(
            mask_emails("userPrincipalName eq 'o''brien@x.com' or mail eq 'b@x.com'"),
            "userPrincipalName eq 'o***@x.com' or mail eq 'b***@x.com'"
        );
        assert_eq!(mask_emails("no address"), "no address");
        assert_eq!(mask_phone("+1 2065550100"), "+1 20******00");
        let v = redact_json(&json!({
            "userPrincipalName": "adele@contoso.com", "otherMails": ["a.home@example.org"],
            "mobilePhone": "+1 425 555 0109", "displayName": "Adele", "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
        }))
        .to_string();
        for leak in ["adele@", "a.home@", "555 01"] {
            assert!(!v.contains(leak), "{leak} in {v}");
        }
        assert!(v.contains("87d349ed-44d7-43e1-9a83-5f2406dee5bd"));
        let u = Url::parse("https://graph.microsoft.com/v1.0/users/adele.vance%40contoso.com?$filter=mail%20eq%20%27adele.vance%40contoso.com%27&$top=2").unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("adele.vance"), "{r}");
        assert!(
            r.contains("$top=2") && r.contains("mail eq 'a***@contoso.com'"),
            "{r}"
        );
        assert_eq!(
            redact_path("/v1.0/users/o'brien@x.com"),
            "/v1.0/users/o***@x.com"
        );
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJ0eXAi.eyJhdWQi.sig"));
        assert!(!looks_like_jwt("eyJ0eXAi"));
        assert!(!looks_like_jwt("hello.world.x"));
    }
}
