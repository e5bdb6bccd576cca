//! The part of an OpenID Connect callback that the enrollment sign-in ([`crate::signin`]) and the
//! consoles' ([`crate::console`]) share: what the identity platform sent back, the code
//! redemption and the ID token's validation, and reading the signed-in user. One piece of code so
//! both check the same things in the same order; each caller audits a [`Refused`] its own way.

use actix_web::HttpRequest;
use latchkey_graph::User;
use latchkey_graph::delegated;
use latchkey_graph::oidc::IdTokenClaims;
use latchkey_store::{FlowPurpose, FlowToken};
use latchkey_types::{ObjectId, Secret};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::SignIn;
use super::attempt::Attempt;
use crate::portal::Portal;

/// The identity platform's answer on the redirect URI.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a callback is refused: the reason for the audit trail and, once the ID token named one,
/// the user.
pub struct Refused {
    pub reason: String,
    pub subject: Option<ObjectId>,
}

impl Refused {
    fn anonymous(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            subject: None,
        }
    }
}

impl<P: Serialize + DeserializeOwned> Attempt<P> {
    /// The attempt of the flow named in the sign-in cookie `cookie` (taken: it is single use and
    /// ends here whatever the outcome) and the correlation id the callback audits under: the
    /// attempt's, or a fresh one when there is none.
    pub async fn take_for_callback(
        portal: &Portal,
        req: &HttpRequest,
        cookie: &'static str,
        purpose: FlowPurpose,
    ) -> (Option<Self>, String) {
        let token = req
            .cookie(&portal.services.cookies.name(cookie))
            .and_then(|c| FlowToken::parse(c.value()));
        let attempt = Self::take(portal, token.as_ref(), purpose).await;
        // Without an attempt there is nothing to correlate with; a fresh id names this request
        // (or, without randomness, a fixed one that says so).
        let correlation_id = attempt.as_ref().map_or_else(
            || ObjectId::random().map_or_else(|_| "no-randomness".into(), |id| id.to_string()),
            |a| a.correlation_id.clone(),
        );
        (attempt, correlation_id)
    }
}

impl CallbackQuery {
    /// The authorization code sent back for `attempt`: refused when the identity platform
    /// answered an error, the `state` is not the attempt's, or there is no code.
    pub fn code<P: Serialize + DeserializeOwned>(
        &self,
        attempt: &Attempt<P>,
    ) -> Result<&str, Refused> {
        if let Some(error) = &self.error {
            // Only the error code, as a short token: it came through the browser.
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(Refused::anonymous(format!(
                "identity platform answered {code}"
            )));
        }
        if !attempt.state_matches(self.state.as_deref()) {
            return Err(Refused::anonymous("state does not match"));
        }
        self.code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Refused::anonymous("no authorization code"))
    }
}

impl SignIn {
    /// Redeems `code` with the attempt's PKCE verifier, validates the ID token (nonce of the
    /// attempt, at `now`) and reads the signed-in user fresh from the directory. `who` names the
    /// caller in the log line when the directory cannot be read.
    pub async fn signed_in<P: Serialize + DeserializeOwned>(
        &self,
        portal: &Portal,
        req: &HttpRequest,
        attempt: &Attempt<P>,
        code: &str,
        now: OffsetDateTime,
        who: &str,
    ) -> Result<(IdTokenClaims, User), Refused> {
        let scopes: Vec<String> = super::SCOPES.iter().map(|s| s.to_string()).collect();
        let tokens = delegated::redeem_code(
            self.provider().config(),
            &Secret::new(code.to_string()),
            self.redirect_uri_for(req),
            attempt.verifier(),
            &scopes,
        )
        .await
        .map_err(|e| Refused::anonymous(format!("code redemption failed: {e}")))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| Refused::anonymous("no ID token"))?;
        let claims = self
            .provider()
            .validate(id_token.expose(), &attempt.nonce, now)
            .await
            .map_err(|e| Refused::anonymous(format!("ID token refused: {e}")))?;
        match portal.services.directory.user(&claims.oid).await {
            Ok(user) => Ok((claims, user)),
            Err(e) => {
                tracing::error!(error = %e, "{who}: cannot read the signed-in user");
                Err(Refused {
                    reason: "directory unavailable".into(),
                    subject: Some(claims.oid),
                })
            }
        }
    }
}
