//! Delegated sign-in: authorization code flow with PKCE (RFC 7636, S256).
//!
//! The portal: (1) creates a [`PendingAuthorization`] (random `state`, `nonce`, PKCE verifier),
//! keeps it server-side in the admin's session and redirects the browser to
//! [`PendingAuthorization::authorize_url`]; (2) on the callback, checks `state` with
//! [`PendingAuthorization::check_state`] and calls [`redeem_code`]; (3) stores the refresh token
//! encrypted and later builds a client with [`crate::GraphClient::with_delegated`], whose rotate
//! hook receives every new refresh token.
//!
//! The ID token is returned as is: this module does not validate it. Whoever uses it to sign
//! someone in validates it with [`crate::oidc`] (signature against the tenant's keys, issuer,
//! audience, `nonce`, tenant, lifetime).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use url::Url;

use crate::config::GraphConfig;
use crate::error::GraphError;
use crate::http::Http;
use crate::token::{client_auth_fields, request_token};
use latchkey_types::Secret;
use latchkey_types::random::NoRandomness;

/// 32 random bytes, base64url (43 characters, 256 bits).
fn random_token() -> Result<String, NoRandomness> {
    Ok(URL_SAFE_NO_PAD.encode(latchkey_types::random::bytes::<32>()?))
}

/// A PKCE verifier and its S256 challenge.
#[derive(Clone)]
pub struct Pkce {
    verifier: Secret<String>,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh verifier (43 characters from the unreserved set, 256 bits).
    pub fn generate() -> Result<Self, NoRandomness> {
        Ok(Self::from_verifier(Secret::new(random_token()?)))
    }

    /// Rebuilds the pair from a stored verifier.
    pub fn from_verifier(verifier: Secret<String>) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.expose().as_bytes());
        Self {
            challenge: URL_SAFE_NO_PAD.encode(digest),
            verifier,
        }
    }

    pub fn verifier(&self) -> &Secret<String> {
        &self.verifier
    }

    /// `BASE64URL(SHA256(verifier))`, sent with `code_challenge_method=S256`.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// A fresh `state` value (256 random bits, base64url).
pub fn new_state() -> Result<String, NoRandomness> {
    random_token()
}

/// A fresh OpenID Connect `nonce` (256 random bits, base64url).
pub fn new_nonce() -> Result<String, NoRandomness> {
    random_token()
}

/// Builds the `/authorize` URL (`response_type=code`, `response_mode=query`, S256 PKCE).
/// `scopes` are sent space-separated; include `offline_access` to get a refresh token and
/// `openid` to get an ID token.
pub fn authorize_url(
    config: &GraphConfig,
    redirect_uri: &str,
    scopes: &[String],
    pkce: &Pkce,
    state: &str,
    nonce: &str,
) -> Result<Url, GraphError> {
    let endpoints = config.validate()?;
    check_redirect_uri(redirect_uri)?;
    if scopes.is_empty() {
        return Err(GraphError::InvalidInput("no scopes requested".into()));
    }
    let mut url = endpoints.authorize_url;
    url.query_pairs_mut()
        .append_pair("client_id", config.client_id.trim())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_mode", "query")
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", pkce.challenge())
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

fn check_redirect_uri(redirect_uri: &str) -> Result<(), GraphError> {
    let u = Url::parse(redirect_uri)
        .map_err(|_| GraphError::InvalidInput("redirect_uri is not an absolute URL".into()))?;
    let ok = u.scheme() == "https" || (u.scheme() == "http" && crate::config::is_loopback(&u));
    if !ok || u.fragment().is_some() {
        return Err(GraphError::InvalidInput(
            "redirect_uri must be https (http only on loopback) without a fragment".into(),
        ));
    }
    Ok(())
}

/// Everything to keep server-side between the redirect to `/authorize` and the callback.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub state: String,
    pub nonce: String,
    pub pkce: Pkce,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
}

impl PendingAuthorization {
    /// Fresh state, nonce and PKCE verifier.
    pub fn new(redirect_uri: impl Into<String>, scopes: Vec<String>) -> Result<Self, NoRandomness> {
        Ok(Self {
            state: new_state()?,
            nonce: new_nonce()?,
            pkce: Pkce::generate()?,
            redirect_uri: redirect_uri.into(),
            scopes,
        })
    }

    pub fn authorize_url(&self, config: &GraphConfig) -> Result<Url, GraphError> {
        authorize_url(
            config,
            &self.redirect_uri,
            &self.scopes,
            &self.pkce,
            &self.state,
            &self.nonce,
        )
    }

    /// Constant-time comparison of the callback's `state` with ours.
    pub fn check_state(&self, returned: &str) -> bool {
        let (a, b) = (self.state.as_bytes(), returned.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Redeems the callback's `code`.
    pub async fn redeem(
        &self,
        config: &GraphConfig,
        code: &Secret<String>,
    ) -> Result<DelegatedTokens, GraphError> {
        redeem_code(
            config,
            code,
            &self.redirect_uri,
            self.pkce.verifier(),
            &self.scopes,
        )
        .await
    }
}

/// Tokens from a code redemption.
#[derive(Debug, Clone)]
pub struct DelegatedTokens {
    pub access_token: Secret<String>,
    /// Present when `offline_access` was granted. Store encrypted.
    pub refresh_token: Option<Secret<String>>,
    /// Present when `openid` was requested. Not validated here.
    pub id_token: Option<Secret<String>>,
    pub expires_at: OffsetDateTime,
    /// Granted scopes, space-separated, as the token endpoint returned them.
    pub scope: String,
}

impl DelegatedTokens {
    /// The granted scopes.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.split_whitespace().collect()
    }
}

/// Redeems an authorization code (`grant_type=authorization_code` with `code_verifier`), using
/// the configured client credential. Codes are single use, so this request is never retried
/// after a timeout or a dropped connection (only after 429/503 or a failed connect).
pub async fn redeem_code(
    config: &GraphConfig,
    code: &Secret<String>,
    redirect_uri: &str,
    code_verifier: &Secret<String>,
    scopes: &[String],
) -> Result<DelegatedTokens, GraphError> {
    let endpoints = config.validate()?;
    check_redirect_uri(redirect_uri)?;
    if code.expose().is_empty() {
        return Err(GraphError::InvalidInput("empty authorization code".into()));
    }
    let http = Http::new(
        config.retry.clone(),
        config.timeouts.clone(),
        config.http_debug,
        config.clock.clone(),
    )?;
    let mut fields = client_auth_fields(config, &endpoints)?;
    fields.push(("grant_type", Secret::new("authorization_code".into())));
    fields.push(("code", code.clone()));
    fields.push(("redirect_uri", Secret::new(redirect_uri.to_string())));
    fields.push(("code_verifier", code_verifier.clone()));
    if !scopes.is_empty() {
        fields.push(("scope", Secret::new(scopes.join(" "))));
    }
    let tr = request_token(&http, &endpoints, fields, false).await?;
    Ok(DelegatedTokens {
        expires_at: config.clock.now() + std::time::Duration::from_secs(tr.expires_in),
        access_token: tr.access_token,
        refresh_token: tr.refresh_token,
        id_token: tr.id_token,
        scope: tr.scope.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credential;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        let p = Pkce::from_verifier(Secret::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        ));
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let g = Pkce::generate().unwrap();
        assert_eq!(g.verifier().expose().len(), 43);
        assert_ne!(
            g.verifier().expose(),
            Pkce::generate().unwrap().verifier().expose()
        );
        assert!(!format!("{g:?}").contains(g.verifier().expose()));
    }

    #[test]
    fn authorize_url_has_all_parameters() {
        let cfg = GraphConfig::new(
            "contoso.onmicrosoft.com",
            "11111111-1111-1111-1111-111111111111",
            Credential::ClientSecret(Secret::new("s".into())),
        );
        let pending = PendingAuthorization::new(
            "https://portal.contoso.com/admin/connect/callback",
            vec![
                "offline_access".into(),
                "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All".into(),
            ],
        )
        .unwrap();
        let url = pending.authorize_url(&cfg).unwrap();
        assert!(url.as_str().starts_with(
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?"
        ));
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "11111111-1111-1111-1111-111111111111");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["response_mode"], "query");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pending.pkce.challenge());
        assert_eq!(q["state"], pending.state);
        assert_eq!(q["nonce"], pending.nonce);
        assert_eq!(
            q["redirect_uri"],
            "https://portal.contoso.com/admin/connect/callback"
        );
        assert!(q["scope"].contains("offline_access "));
        assert!(
            !url.as_str()
                .contains(pending.pkce.verifier().expose().as_str())
        );
        assert!(pending.check_state(&pending.state.clone()));
        assert!(!pending.check_state("forged"));
        assert!(
            authorize_url(
                &cfg,
                "http://evil.example/cb",
                &["openid".into()],
                &pending.pkce,
                "s",
                "n"
            )
            .is_err()
        );
    }
}
