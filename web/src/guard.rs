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
    /// `scheme://host[:port]` of the public URL: the Origin accepted on a POST.
    origin: String,
    /// Other origins of the same portal ([`Csrf::also_at`]).
    aliases: Vec<String>,
}

impl Csrf {
    pub fn new(key_material: &[u8], public_origin: &str) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_material),
            origin: public_origin.trim_end_matches('/').to_string(),
            aliases: Vec::new(),
        }
    }

    /// The portal is also served at `origin` (the demo's `http://localhost:PORT`): POSTs from
    /// its pages are accepted too.
    pub fn also_at(mut self, origin: &str) -> Self {
        self.aliases.push(origin.trim_end_matches('/').to_string());
        self
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
        let foreign = |origin: &str| {
            origin != "null" && origin != self.origin && !self.aliases.iter().any(|a| a == origin)
        };
        if header("origin").is_some_and(foreign) {
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
pub struct TrustedProxies(pub Vec<IpNet>);

/// An address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is the
/// range of that one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The range of one address.
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            // An IPv4 peer seen as an IPv4-mapped IPv6 address is the same peer.
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(&IpAddr::V4(v4))),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{s}\": the prefix length must be 0 to {max}"))?,
        };
        if prefix == 0 {
            return Err(format!(
                "\"{s}\" would trust every address: name the proxies' own range"
            ));
        }
        Ok(Self { addr, prefix })
    }
}

impl TrustedProxies {
    /// From configuration text (checked when the configuration is loaded).
    pub fn parse(ranges: &[String]) -> Result<Self, String> {
        ranges
            .iter()
            .map(|r| r.parse())
            .collect::<Result<Vec<IpNet>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client address for throttling: the TCP peer, unless the peer is a trusted proxy, in
    /// which case the right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
    /// Headers from untrusted peers are ignored (anyone can send them).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(&peer) {
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
            .find(|ip| !self.trusts(ip))
            .or(Some(peer))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn cidr_ranges_contain_their_addresses_only() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(&"10.1.255.3".parse().unwrap()));
        assert!(!net.contains(&"10.2.0.1".parse().unwrap()));
        assert!(net.contains(&"::ffff:10.1.2.3".parse().unwrap()));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(&"2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains(&"2001:db9::5".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(&"192.0.2.7".parse().unwrap()));
        assert!(!one.contains(&"192.0.2.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "0.0.0.0/0", "::/0", "proxy", "10.0.0.0/x"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        // Through a trusted range, the forwarded client counts.
        let tp = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let via = TestRequest::get()
            .peer_addr("10.9.8.7:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9, 10.2.3.4"))
            .to_http_request();
        assert_eq!(tp.client_ip(&via), Some("203.0.113.9".parse().unwrap()));
    }

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
        let tp = TrustedProxies(vec![IpNet::host(proxy)]);
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
