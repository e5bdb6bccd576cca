//! Request guards shared by every flow: CSRF (token + Origin), the client address as seen through
//! a trusted proxy, and the constant-time deadline that keeps response timing from revealing
//! whether an account exists.

use std::net::IpAddr;

use actix_web::HttpRequest;
use base64::Engine;
use ring::hmac;

/// Keyed CSRF tokens: `HMAC(key, purpose || session id)`. Bound to the server-side session (or
/// pre-session cookie) they were issued for, so a token from one browser is useless in another.
#[derive(Clone)]
pub struct Csrf {
    key: hmac::Key,
    /// `scheme://host[:port]` of the public URL: the only Origin accepted on a POST.
    origin: String,
}

impl Csrf {
    pub fn new(key_material: &[u8], public_origin: &str) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_material),
            origin: public_origin.trim_end_matches('/').to_string(),
        }
    }

    /// The public URL's `scheme://host[:port]`: absolute links the portal hands out start here.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The token to embed in forms of `session`.
    pub fn token(&self, session: &str) -> String {
        let tag = hmac::sign(&self.key, format!("csrf\0{session}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Checks a POST: the form token must match the session's (constant time), and the request
    /// must come from our own pages. Two browser signals, each checked when sent:
    /// - `Sec-Fetch-Site` (Fetch Metadata, sent by current browsers on every request) must be
    ///   `same-origin`;
    /// - `Origin` must be ours. Because our pages use `Referrer-Policy: no-referrer`, browsers
    ///   send `Origin: null` on our own form posts (Fetch: a non-GET request's origin is
    ///   serialized as `null` under that policy), so `null` proves nothing either way and the
    ///   token and `Sec-Fetch-Site` decide.
    pub fn check(&self, req: &HttpRequest, session: &str, form_token: &str) -> bool {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or("invalid"))
        };
        if header("sec-fetch-site").is_some_and(|site| site != "same-origin") {
            return false;
        }
        if header("origin").is_some_and(|origin| origin != "null" && origin != self.origin) {
            return false;
        }
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(form_token.trim())
        else {
            return false;
        };
        hmac::verify(&self.key, format!("csrf\0{session}").as_bytes(), &tag).is_ok()
    }
}

/// Which peer addresses are reverse proxies whose `X-Forwarded-For` we believe.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpAddr>);

impl TrustedProxies {
    /// The client address for throttling: the TCP peer, unless the peer is a trusted proxy, in
    /// which case the right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
    /// Headers from untrusted peers are ignored (anyone can send them).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.0.contains(&peer) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        forwarded
            .rsplit(',')
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .find(|ip| !self.0.contains(ip))
            .or(Some(peer))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_origin() {
        let c = Csrf::new(b"k", "https://reset.contoso.com/");
        let t = c.token("session-a");
        let ok = TestRequest::post()
            .insert_header(("origin", "https://reset.contoso.com"))
            .to_http_request();
        assert!(c.check(&ok, "session-a", &t));
        assert!(
            !c.check(&ok, "session-b", &t),
            "token of another session accepted"
        );
        assert!(!c.check(&ok, "session-a", "garbage"));
        assert!(!c.check(&ok, "session-a", ""));
        let evil = TestRequest::post()
            .insert_header(("origin", "https://evil.example"))
            .to_http_request();
        assert!(!c.check(&evil, "session-a", &t), "foreign origin accepted");
        let no_origin = TestRequest::post().to_http_request();
        assert!(c.check(&no_origin, "session-a", &t));
        // What Chromium sends on our own forms under Referrer-Policy: no-referrer.
        let own = TestRequest::post()
            .insert_header(("origin", "null"))
            .insert_header(("sec-fetch-site", "same-origin"))
            .to_http_request();
        assert!(c.check(&own, "session-a", &t));
        // A form on another site posting here, even with a stolen token.
        for site in ["cross-site", "same-site", "none"] {
            let other = TestRequest::post()
                .insert_header(("origin", "null"))
                .insert_header(("sec-fetch-site", site))
                .to_http_request();
            assert!(
                !c.check(&other, "session-a", &t),
                "Sec-Fetch-Site: {site} accepted"
            );
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let tp = TrustedProxies(vec![proxy]);
        let direct = TestRequest::get()
            .peer_addr("192.0.2.7:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(
            tp.client_ip(&direct),
            Some("192.0.2.7".parse().unwrap()),
            "spoofed header believed"
        );
        let via = TestRequest::get()
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.1"))
            .to_http_request();
        assert_eq!(tp.client_ip(&via), Some("203.0.113.9".parse().unwrap()));
    }
}
