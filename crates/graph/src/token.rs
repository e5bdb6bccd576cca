//! Access tokens: acquisition (client credentials, refresh token), caching and single flight.
//!
//! One `tokio::sync::Mutex` guards the cache and is held across a refresh, so any number of
//! concurrent callers that find the token stale cause exactly one token request; the others wait
//! and reuse its result. A token is reused until `expires_at - margin`, where the margin is
//! 5 minutes, or 10 % of the lifetime for tokens shorter than 50 minutes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::config::{Credential, GraphConfig, ValidatedEndpoints};
use crate::error::GraphError;
use crate::http::{Body, Endpoint, Http, Request};
use latchkey_types::Secret;

/// Called with the new refresh token whenever the token endpoint rotates it, so the portal can
/// persist it (encrypted). Keep it quick: it runs while other callers wait for the token (hand
/// the value to a channel or task if storage is slow).
pub type RotateHook = Arc<dyn Fn(Secret<String>) + Send + Sync>;

/// Largest reuse margin before expiry.
pub const MAX_EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// When a token with `lifetime` should be replaced, counted back from its expiry.
pub fn expiry_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_EXPIRY_MARGIN)
}

/// The token endpoint's success body.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: Secret<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds; v2 sends a number, v1 a string.
    #[serde(deserialize_with = "num_or_string")]
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: Option<Secret<String>>,
    #[serde(default)]
    pub id_token: Option<Secret<String>>,
    #[serde(default)]
    pub scope: Option<String>,
}

fn num_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(u64),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// Client authentication fields for the token endpoint (secret or signed assertion).
pub(crate) fn client_auth_fields(
    config: &GraphConfig,
    endpoints: &ValidatedEndpoints,
) -> Result<Vec<(&'static str, Secret<String>)>, GraphError> {
    let mut f = vec![(
        "client_id",
        Secret::new(config.client_id.trim().to_string()),
    )];
    match &config.credential {
        Credential::ClientSecret(s) => f.push(("client_secret", s.clone())),
        Credential::Certificate(cert) => {
            let jwt = cert.assertion(
                config.client_id.trim(),
                endpoints.token_url.as_str(),
                config.clock.now(),
            )?;
            f.push((
                "client_assertion_type",
                Secret::new("urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
            ));
            f.push(("client_assertion", Secret::new(jwt)));
        }
    }
    Ok(f)
}

/// POSTs a grant to the token endpoint and parses the answer.
pub(crate) async fn request_token(
    http: &Http,
    endpoints: &ValidatedEndpoints,
    fields: Vec<(&'static str, Secret<String>)>,
    idempotent: bool,
) -> Result<TokenResponse, GraphError> {
    let mut req = Request::new(Method::POST, endpoints.token_url.clone(), Endpoint::Token)
        .idempotent(idempotent);
    req.body = Body::Form(fields);
    let resp = http.execute(&req).await?;
    let tr: TokenResponse = resp.json()?;
    if let Some(t) = &tr.token_type
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(GraphError::UnexpectedResponse {
            status: resp.status.as_u16(),
            message: format!("token_type {t:?} is not Bearer"),
            client_request_id: resp.client_request_id,
        });
    }
    if tr.access_token.expose().is_empty() {
        return Err(GraphError::UnexpectedResponse {
            status: resp.status.as_u16(),
            message: "empty access_token".into(),
            client_request_id: resp.client_request_id,
        });
    }
    Ok(tr)
}

/// How this client gets its tokens.
pub(crate) enum Grant {
    /// App-only: `client_credentials` with `{graph}/.default`.
    ClientCredentials,
    /// Delegated: `refresh_token` grant; the refresh token lives in the cache state and rotates.
    Refresh {
        scopes: Vec<String>,
        on_rotate: Option<RotateHook>,
    },
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::ClientCredentials => f.write_str("ClientCredentials"),
            Grant::Refresh { scopes, on_rotate } => f
                .debug_struct("Refresh")
                .field("scopes", scopes)
                .field("on_rotate", &on_rotate.is_some())
                .finish(),
        }
    }
}

#[derive(Clone)]
struct Cached {
    token: Secret<String>,
    refresh_at: OffsetDateTime,
}

struct State {
    cached: Option<Cached>,
    refresh_token: Option<Secret<String>>,
}

/// The cache. See the module docs.
pub(crate) struct TokenSource {
    grant: Grant,
    state: tokio::sync::Mutex<State>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn app_only() -> Self {
        Self {
            grant: Grant::ClientCredentials,
            state: tokio::sync::Mutex::new(State {
                cached: None,
                refresh_token: None,
            }),
        }
    }

    pub fn delegated(
        refresh_token: Secret<String>,
        scopes: Vec<String>,
        on_rotate: Option<RotateHook>,
    ) -> Self {
        Self {
            grant: Grant::Refresh { scopes, on_rotate },
            state: tokio::sync::Mutex::new(State {
                cached: None,
                refresh_token: Some(refresh_token),
            }),
        }
    }

    pub fn is_delegated(&self) -> bool {
        matches!(self.grant, Grant::Refresh { .. })
    }

    /// A valid access token, from the cache or fetched (one fetch for all concurrent callers).
    pub async fn token(
        &self,
        http: &Http,
        config: &GraphConfig,
        endpoints: &ValidatedEndpoints,
    ) -> Result<Secret<String>, GraphError> {
        let mut state = self.state.lock().await;
        let now = config.clock.now();
        if let Some(c) = &state.cached
            && now < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let mut fields = client_auth_fields(config, endpoints)?;
        let idempotent = true; // both grants may be repeated safely
        match &self.grant {
            Grant::ClientCredentials => {
                fields.push(("scope", Secret::new(endpoints.app_scope.clone())));
                fields.push(("grant_type", Secret::new("client_credentials".into())));
            }
            Grant::Refresh { scopes, .. } => {
                let rt = state.refresh_token.clone().ok_or_else(|| {
                    GraphError::Config("no refresh token for the delegated credential".into())
                })?;
                fields.push(("grant_type", Secret::new("refresh_token".into())));
                fields.push(("refresh_token", rt));
                fields.push(("scope", Secret::new(scopes.join(" "))));
            }
        }
        let tr = request_token(http, endpoints, fields, idempotent).await?;
        // Stamp the expiry from the time of the answer, not of the request.
        let now = config.clock.now();
        let lifetime = Duration::from_secs(tr.expires_in);
        let expires_at = now + lifetime;
        let refresh_at = expires_at - expiry_margin(lifetime);
        if let Grant::Refresh { on_rotate, .. } = &self.grant
            && let Some(new_rt) = tr.refresh_token.clone()
        {
            let changed = state
                .refresh_token
                .as_ref()
                .is_none_or(|old| old.expose() != new_rt.expose());
            state.refresh_token = Some(new_rt.clone());
            if changed && let Some(hook) = on_rotate {
                tracing::info!(target: "latchkey_graph", "refresh token rotated");
                hook(new_rt);
            }
        }
        state.cached = Some(Cached {
            token: tr.access_token.clone(),
            refresh_at,
        });
        Ok(tr.access_token)
    }

    /// Forgets the cached token if it is `rejected` (Graph answered 401 with it).
    pub async fn invalidate(&self, rejected: &Secret<String>) {
        let mut state = self.state.lock().await;
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.expose() == rejected.expose())
        {
            state.cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_five_minutes_or_ten_percent() {
        assert_eq!(
            expiry_margin(Duration::from_secs(3599)),
            Duration::from_secs(300)
        );
        assert_eq!(
            expiry_margin(Duration::from_secs(86400)),
            Duration::from_secs(300)
        );
        assert_eq!(
            expiry_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(expiry_margin(Duration::from_secs(0)), Duration::ZERO);
    }

    #[test]
    fn token_response_accepts_documented_shapes() {
        let tr: TokenResponse = serde_json::from_str(include_str!(
            "../../../tests/fixtures/graph-examples/token-authcode-200.json"
        ))
        .unwrap();
        assert_eq!(tr.expires_in, 3599);
        assert!(tr.refresh_token.is_some());
        assert!(tr.id_token.is_some());
        let tr: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","access_token":"x"}"#,
        )
        .unwrap();
        assert_eq!(tr.expires_in, 3599);
        assert!(tr.refresh_token.is_none());
    }
}
