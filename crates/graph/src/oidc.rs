//! OpenID Connect sign-in: validating the ID token the token endpoint returns after an
//! authorization code redemption ([`crate::delegated::redeem_code`] with scope `openid`).
//!
//! [`validate_id_token`] is pure: RS256 signature against a key of the tenant's JWKS (the key
//! named by the token's `kid`), then the claims: `iss` equal to the tenant's v2.0 issuer
//! (`{authority}/{tenant GUID}/v2.0`), `aud` equal to the client id, `exp`/`nbf`/`iat` within a
//! small clock skew, `nonce` equal to the one sent (constant time), `tid` equal to the tenant,
//! and an `oid` (the user's object id, the only identifier the portal uses).
//!
//! [`OidcProvider`] fetches and caches what validation needs: the tenant's OpenID configuration
//! (issuer, `jwks_uri`) and its JWKS. Keys are refetched when a token names a key we do not have
//! (Entra rolls its keys), at most once per [`REFETCH_INTERVAL`], and at the latest after
//! [`MAX_KEY_AGE`].

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_types::ObjectId;
use reqwest::Method;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use url::Url;

use crate::config::GraphConfig;
use crate::error::GraphError;
use crate::http::{Endpoint, Http, Request};

/// Clock skew accepted on `exp`, `nbf` and `iat`.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(120);
/// Unknown `kid`: refetch the JWKS at most this often (a forged `kid` must not make us hammer
/// the identity platform).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(300);
/// Cached keys and configuration are refreshed after this long.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(24 * 3600);

/// Why an ID token was refused. Never carries the token or any claim value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a well-formed JWT")]
    Malformed,
    #[error("the ID token's algorithm is not RS256")]
    Algorithm,
    #[error("the ID token is signed with a key the tenant does not publish")]
    UnknownKey,
    #[error("the ID token's signature is invalid")]
    Signature,
    #[error("the ID token was issued by another issuer")]
    Issuer,
    #[error("the ID token is for another application")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet")]
    NotYetValid,
    #[error("the ID token's nonce does not match the sign-in request")]
    Nonce,
    #[error("the ID token is from another tenant")]
    Tenant,
    #[error("the ID token lacks the claim `{0}`")]
    MissingClaim(&'static str),
    #[error("the tenant's signing keys could not be read: {0}")]
    Keys(String),
}

/// One RSA signing key of the JWKS.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk").field("kid", &self.kid).finish()
    }
}

/// The tenant's published signing keys (RSA keys for signatures only; others are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys":[{"kty":"RSA","kid":..,"n":..,"e":..}]}`).
    pub fn parse(json: &[u8]) -> Result<Jwks, IdTokenError> {
        let doc: Value = serde_json::from_slice(json)
            .map_err(|_| IdTokenError::Keys("the JWKS is not JSON".into()))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| IdTokenError::Keys("the JWKS has no `keys`".into()))?;
        let keys = list
            .iter()
            .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
            .filter(|k| {
                k.get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
            })
            .filter_map(|k| {
                let b = |name: &str| {
                    k.get(name)
                        .and_then(Value::as_str)
                        .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
                };
                Some(Jwk {
                    kid: k.get("kid").and_then(Value::as_str).map(str::to_string),
                    n: b("n")?,
                    e: b("e")?,
                })
            })
            .collect();
        Ok(Jwks { keys })
    }

    /// The key a token header names; without a `kid`, the only key (if there is exactly one).
    fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

/// What a valid ID token must say.
#[derive(Debug, Clone)]
pub struct IdTokenExpectations<'a> {
    /// `{authority}/{tenant GUID}/v2.0`.
    pub issuer: &'a str,
    /// The application (client) id.
    pub client_id: &'a str,
    /// The tenant's GUID (`tid`).
    pub tenant_id: &'a str,
    /// The nonce sent with the authorization request.
    pub nonce: &'a str,
    pub now: OffsetDateTime,
    pub skew: Duration,
}

/// The claims the portal uses from a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// The user's object id in the tenant (`oid`).
    pub oid: ObjectId,
    /// The tenant (`tid`).
    pub tid: String,
    /// `preferred_username` (usually the UPN; display only, never an identifier).
    pub preferred_username: Option<String>,
    /// `name`.
    pub name: Option<String>,
    pub expires_at: OffsetDateTime,
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A decoded JWT: header, claims, the signed input and the signature.
struct Parts {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

fn decode(token: &str) -> Result<Parts, IdTokenError> {
    let mut it = token.trim().split('.');
    let (Some(h), Some(c), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(IdTokenError::Malformed);
    };
    let json = |p: &str| -> Result<Map<String, Value>, IdTokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| IdTokenError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)
    };
    Ok(Parts {
        header: json(h)?,
        claims: json(c)?,
        signing_input: format!("{h}.{c}"),
        signature: URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| IdTokenError::Malformed)?,
    })
}

/// The `kid` of a token's header (to decide whether the keys need a refresh).
fn header_kid(token: &str) -> Option<String> {
    decode(token)
        .ok()?
        .header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Validates an ID token: signature first (nothing in an unsigned token is looked at), then the
/// claims. See the module documentation for the rules.
pub fn validate_id_token(
    token: &str,
    jwks: &Jwks,
    expect: &IdTokenExpectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let parts = decode(token)?;
    if parts.header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(IdTokenError::Algorithm);
    }
    let key = jwks
        .find(parts.header.get("kid").and_then(Value::as_str))
        .ok_or(IdTokenError::UnknownKey)?;
    ring::signature::RsaPublicKeyComponents {
        n: key.n.as_slice(),
        e: key.e.as_slice(),
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        parts.signing_input.as_bytes(),
        &parts.signature,
    )
    .map_err(|_| IdTokenError::Signature)?;

    let c = &parts.claims;
    let s = |k: &'static str| c.get(k).and_then(Value::as_str);
    let n = |k: &'static str| c.get(k).and_then(Value::as_i64);
    if s("iss") != Some(expect.issuer) {
        return Err(IdTokenError::Issuer);
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == expect.client_id,
        // Several audiences only with ourselves as the authorized party (OIDC Core 3.1.3.7).
        Some(Value::Array(list)) => {
            list.iter().any(|a| a.as_str() == Some(expect.client_id))
                && (list.len() == 1 || s("azp") == Some(expect.client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(IdTokenError::Audience);
    }
    let now = expect.now.unix_timestamp();
    let skew = i64::try_from(expect.skew.as_secs()).unwrap_or(0);
    let exp = n("exp").ok_or(IdTokenError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(skew) {
        return Err(IdTokenError::Expired);
    }
    if let Some(nbf) = n("nbf")
        && now < nbf.saturating_sub(skew)
    {
        return Err(IdTokenError::NotYetValid);
    }
    if let Some(iat) = n("iat")
        && now < iat.saturating_sub(skew)
    {
        return Err(IdTokenError::NotYetValid);
    }
    let nonce = s("nonce").ok_or(IdTokenError::Nonce)?;
    if expect.nonce.is_empty() || !ct_eq(nonce.as_bytes(), expect.nonce.as_bytes()) {
        return Err(IdTokenError::Nonce);
    }
    let tid = s("tid").ok_or(IdTokenError::MissingClaim("tid"))?;
    if !tid.eq_ignore_ascii_case(expect.tenant_id) {
        return Err(IdTokenError::Tenant);
    }
    let oid = s("oid")
        .and_then(|o| o.parse::<ObjectId>().ok())
        .ok_or(IdTokenError::MissingClaim("oid"))?;
    Ok(IdTokenClaims {
        oid,
        tid: tid.to_ascii_lowercase(),
        preferred_username: s("preferred_username").map(str::to_string),
        name: s("name").map(str::to_string),
        expires_at: OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|_| IdTokenError::MissingClaim("exp"))?,
    })
}

/// What the tenant's OpenID configuration and JWKS told us, and when.
#[derive(Debug, Clone)]
struct Cached {
    issuer: String,
    tenant_id: String,
    jwks: Jwks,
    fetched: Instant,
}

/// The tenant as an OpenID provider: fetches and caches its issuer and keys, validates ID tokens.
#[derive(Debug)]
pub struct OidcProvider {
    config: GraphConfig,
    http: Http,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl OidcProvider {
    /// A provider for the configured tenant and authority host (nothing is fetched yet).
    pub fn new(config: GraphConfig) -> Result<Self, GraphError> {
        config.validate()?;
        let http = Http::new(
            config.retry.clone(),
            config.timeouts.clone(),
            config.http_debug,
            config.clock.clone(),
        )?;
        Ok(Self {
            config,
            http,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The configuration used to build the authorization request and redeem codes.
    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    fn authority(&self) -> String {
        self.config
            .authority_host
            .trim()
            .trim_end_matches('/')
            .to_string()
    }

    async fn get_json(&self, url: Url) -> Result<Vec<u8>, IdTokenError> {
        let resp = self
            .http
            .execute(&Request::new(Method::GET, url, Endpoint::Token))
            .await
            .map_err(|e| IdTokenError::Keys(e.to_string()))?;
        Ok(resp.body)
    }

    /// Reads the OpenID configuration (issuer, `jwks_uri`) and the JWKS.
    async fn fetch(&self) -> Result<Cached, IdTokenError> {
        let authority = self.authority();
        let tenant = self.config.tenant_id.trim();
        let discovery = Url::parse(&format!(
            "{authority}/{tenant}/v2.0/.well-known/openid-configuration"
        ))
        .map_err(|_| IdTokenError::Keys("cannot build the discovery URL".into()))?;
        let doc: Value = serde_json::from_slice(&self.get_json(discovery).await?)
            .map_err(|_| IdTokenError::Keys("the OpenID configuration is not JSON".into()))?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| IdTokenError::Keys("the OpenID configuration has no issuer".into()))?;
        // `{authority}/{tenant GUID}/v2.0`; with a GUID configured it must be that GUID.
        let tid = issuer
            .strip_prefix(&format!("{authority}/"))
            .and_then(|rest| rest.strip_suffix("/v2.0"))
            .filter(|t| uuid::Uuid::try_parse(t).is_ok())
            .ok_or_else(|| {
                IdTokenError::Keys(format!(
                    "the tenant's issuer {issuer:?} is not {authority}/{{tenant id}}/v2.0"
                ))
            })?
            .to_ascii_lowercase();
        if uuid::Uuid::try_parse(tenant).is_ok() && !tenant.eq_ignore_ascii_case(&tid) {
            return Err(IdTokenError::Keys(
                "the OpenID configuration belongs to another tenant".into(),
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| IdTokenError::Keys("the OpenID configuration has no jwks_uri".into()))?;
        // Keys only from the authority itself.
        if !jwks_uri.starts_with(&format!("{authority}/")) {
            return Err(IdTokenError::Keys(
                "the jwks_uri is not on the authority host".into(),
            ));
        }
        let jwks_url = Url::parse(jwks_uri)
            .map_err(|_| IdTokenError::Keys("the jwks_uri is not a URL".into()))?;
        let jwks = Jwks::parse(&self.get_json(jwks_url).await?)?;
        Ok(Cached {
            issuer: issuer.to_string(),
            tenant_id: tid,
            jwks,
            fetched: Instant::now(),
        })
    }

    /// Validates `id_token` against the tenant's current keys, our client id and `nonce`.
    pub async fn validate(
        &self,
        id_token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let kid = header_kid(id_token);
        let cached = {
            let mut guard = self.cache.lock().await;
            let stale = match guard.as_ref() {
                None => true,
                Some(c) => {
                    let age = c.fetched.elapsed();
                    let unknown = c.jwks.find(kid.as_deref()).is_none();
                    age > MAX_KEY_AGE || (unknown && age > REFETCH_INTERVAL)
                }
            };
            if stale {
                match self.fetch().await {
                    Ok(c) => *guard = Some(c),
                    Err(e) if guard.is_none() => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot refresh the tenant's signing keys")
                    }
                }
            }
            guard.clone().ok_or(IdTokenError::UnknownKey)?
        };
        validate_id_token(
            id_token,
            &cached.jwks,
            &IdTokenExpectations {
                issuer: &cached.issuer,
                client_id: self.config.client_id.trim(),
                tenant_id: &cached.tenant_id,
                nonce,
                now,
                skew: DEFAULT_SKEW,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_entra_sim::tokens::Keys;
    use serde_json::json;

    const TID: &str = "6d0e4a1f-3b2c-4d5e-8f90-1a2b3c4d5e6f";
    const CLIENT: &str = "22222222-2222-2222-2222-222222222222";
    const ISS: &str = "https://login.microsoftonline.com/6d0e4a1f-3b2c-4d5e-8f90-1a2b3c4d5e6f/v2.0";
    const OID: &str = "aaaaaaaa-0000-4000-8000-000000000001";

    fn keys() -> Keys {
        Keys::from_pem(latchkey_entra_sim::fixture::EMBEDDED_SIGNING_KEY).unwrap()
    }

    fn jwks(k: &Keys) -> Jwks {
        Jwks::parse(k.jwks(ISS).to_string().as_bytes()).unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn claims() -> Value {
        let t = now().unix_timestamp();
        json!({
            "iss": ISS, "aud": CLIENT, "tid": TID, "oid": OID, "nonce": "n-123",
            "iat": t - 10, "nbf": t - 10, "exp": t + 3600,
            "preferred_username": "ben.okafor@contoso.com", "name": "Ben Okafor",
        })
    }

    fn expect(nonce: &str) -> IdTokenExpectations<'_> {
        IdTokenExpectations {
            issuer: ISS,
            client_id: CLIENT,
            tenant_id: TID,
            nonce,
            now: now(),
            skew: DEFAULT_SKEW,
        }
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut c = claims();
        change(&mut c);
        keys().sign(&c)
    }

    #[test]
    fn a_valid_token_yields_the_object_id() {
        let k = keys();
        let c = validate_id_token(&k.sign(&claims()), &jwks(&k), &expect("n-123")).unwrap();
        assert_eq!(c.oid.to_string(), OID);
        assert_eq!(c.tid, TID);
        assert_eq!(
            c.preferred_username.as_deref(),
            Some("ben.okafor@contoso.com")
        );
    }

    #[test]
    fn a_tampered_payload_or_signature_is_refused() {
        let k = keys();
        let j = jwks(&k);
        let token = k.sign(&claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut forged = claims();
        forged["oid"] = json!("aaaaaaaa-0000-4000-8000-000000000002");
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert_eq!(
            validate_id_token(&parts.join("."), &j, &expect("n-123")),
            Err(IdTokenError::Signature)
        );
        let mut sig = URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap();
        sig[10] ^= 1;
        let (head, _) = token.rsplit_once('.').unwrap();
        let bad_sig = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(
            validate_id_token(&bad_sig, &j, &expect("n-123")),
            Err(IdTokenError::Signature)
        );
        // `alg: none` with no signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        assert_eq!(
            validate_id_token(&none, &j, &expect("n-123")),
            Err(IdTokenError::Algorithm)
        );
        assert_eq!(
            validate_id_token("not.a-jwt", &j, &expect("n-123")),
            Err(IdTokenError::Malformed)
        );
        // A key the tenant does not publish.
        assert_eq!(
            validate_id_token(&token, &Jwks::default(), &expect("n-123")),
            Err(IdTokenError::UnknownKey)
        );
    }

    #[test]
    fn wrong_audience_issuer_tenant_or_nonce_is_refused() {
        let j = jwks(&keys());
        type Change = Box<dyn FnOnce(&mut Value)>;
        let cases: [(Change, IdTokenError); 6] = [
            (
                Box::new(|c| c["aud"] = json!("33333333-3333-3333-3333-333333333333")),
                IdTokenError::Audience,
            ),
            (
                Box::new(|c| c["aud"] = json!([CLIENT, "other"])),
                IdTokenError::Audience,
            ),
            (
                Box::new(|c| c["iss"] = json!("https://login.microsoftonline.com/common/v2.0")),
                IdTokenError::Issuer,
            ),
            (
                Box::new(|c| c["tid"] = json!("00000000-0000-0000-0000-000000000000")),
                IdTokenError::Tenant,
            ),
            (
                Box::new(|c| c["nonce"] = json!("n-124")),
                IdTokenError::Nonce,
            ),
            (
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                }),
                IdTokenError::Nonce,
            ),
        ];
        for (change, want) in cases {
            assert_eq!(
                validate_id_token(&with(change), &j, &expect("n-123")),
                Err(want.clone()),
                "{want:?}"
            );
        }
        // An empty expected nonce never matches, not even an empty claim.
        assert_eq!(
            validate_id_token(&with(|c| c["nonce"] = json!("")), &j, &expect("")),
            Err(IdTokenError::Nonce)
        );
        assert_eq!(
            validate_id_token(
                &with(|c| {
                    c.as_object_mut().unwrap().remove("oid");
                }),
                &j,
                &expect("n-123")
            ),
            Err(IdTokenError::MissingClaim("oid"))
        );
    }

    #[test]
    fn expiry_and_not_before_allow_only_a_small_skew() {
        let j = jwks(&keys());
        let t = now().unix_timestamp();
        assert_eq!(
            validate_id_token(&with(|c| c["exp"] = json!(t - 121)), &j, &expect("n-123")),
            Err(IdTokenError::Expired)
        );
        assert!(
            validate_id_token(&with(|c| c["exp"] = json!(t - 60)), &j, &expect("n-123")).is_ok(),
            "within the skew"
        );
        assert_eq!(
            validate_id_token(
                &with(|c| c
                    .as_object_mut()
                    .unwrap()
                    .remove("exp")
                    .map(|_| ())
                    .unwrap()),
                &j,
                &expect("n-123")
            ),
            Err(IdTokenError::MissingClaim("exp"))
        );
        assert_eq!(
            validate_id_token(&with(|c| c["nbf"] = json!(t + 600)), &j, &expect("n-123")),
            Err(IdTokenError::NotYetValid)
        );
        assert_eq!(
            validate_id_token(&with(|c| c["iat"] = json!(t + 600)), &j, &expect("n-123")),
            Err(IdTokenError::NotYetValid)
        );
    }

    #[tokio::test]
    async fn the_provider_reads_the_simulated_tenants_keys() {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        let sim = latchkey_entra_sim::Sim::start(latchkey_entra_sim::Fixture::demo())
            .await
            .unwrap();
        let mut cfg = GraphConfig::new(
            sim.tenant_id(),
            CLIENT,
            crate::config::Credential::ClientSecret(latchkey_types::Secret::new("x".into())),
        );
        cfg.authority_host = sim.base_url();
        let provider = OidcProvider::new(cfg).unwrap();
        let k = keys();
        let t = OffsetDateTime::now_utc().unix_timestamp();
        let iss = format!("{}/{}/v2.0", sim.base_url(), sim.tenant_id());
        let token = k.sign(&json!({
            "iss": iss, "aud": CLIENT, "tid": sim.tenant_id(), "oid": OID, "nonce": "abc",
            "iat": t, "nbf": t, "exp": t + 600,
        }));
        let claims = provider
            .validate(&token, "abc", OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(claims.oid.to_string(), OID);
        assert_eq!(
            provider
                .validate(&token, "abd", OffsetDateTime::now_utc())
                .await,
            Err(IdTokenError::Nonce)
        );
        // A token claiming the public cloud's issuer is refused against this authority.
        let foreign = k.sign(&json!({
            "iss": ISS, "aud": CLIENT, "tid": sim.tenant_id(), "oid": OID, "nonce": "abc",
            "exp": t + 600,
        }));
        assert_eq!(
            provider
                .validate(&foreign, "abc", OffsetDateTime::now_utc())
                .await,
            Err(IdTokenError::Issuer)
        );
        sim.stop().await;
    }
}
