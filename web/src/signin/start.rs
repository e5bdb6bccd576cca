//! The start of an OpenID Connect sign-in that the enrollment sign-in ([`crate::signin`]) and the
//! consoles' ([`crate::console`]) share: the per-client limit on starts, the authorize URL and the
//! stored attempt. One piece of code so both count starts and keep attempts the same way.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};
use latchkey_graph::delegated;
use latchkey_store::{FlowPurpose, FlowToken};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::SignIn;
use super::attempt::Attempt;
use crate::flow::RefusalPage as _;
use crate::i18n::Lang;
use crate::portal::Portal;

/// The "too many sign-in starts" page (429) when this client is over its limit, else `None`.
pub async fn throttled(portal: &Portal, req: &HttpRequest, lang: Lang) -> Option<HttpResponse> {
    let client = portal
        .services
        .proxies
        .client_ip(req)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let wait = latchkey_selfservice::flow::hit(
        &portal.services,
        "signin:client",
        &client,
        &portal.services.limits.starts(),
    )
    .await
    .err()?;
    let mut r = portal.render_in(
        req,
        lang,
        "error.html",
        &serde_json::json!({ "message": wait.message(portal, lang) }),
    );
    *r.status_mut() = wait.status();
    Some(r)
}

impl SignIn {
    /// The authorize URL for `attempt` (asking for `scopes`, coming back to the address `req` was
    /// sent to) and the token of the flow that now keeps the attempt (`kept`: its purpose and
    /// lifetime); `None` when either fails (logged under `who`): the caller answers
    /// "unavailable".
    pub async fn authorize<P: Serialize + DeserializeOwned>(
        &self,
        portal: &Portal,
        req: &HttpRequest,
        attempt: &Attempt<P>,
        scopes: &[String],
        kept: (FlowPurpose, Duration),
        who: &str,
    ) -> Option<(Url, FlowToken)> {
        let (purpose, lifetime) = kept;
        let url = delegated::authorize_url(
            self.provider().config(),
            self.redirect_uri_for(req),
            scopes,
            &attempt.pkce,
            &attempt.state,
            &attempt.nonce,
        )
        .inspect_err(|e| tracing::error!(error = %e, "{who}: cannot build the authorize URL"))
        .ok()?;
        let token = attempt
            .store(portal, purpose, lifetime)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "{who}: cannot store the sign-in attempt"))
            .ok()?;
        Some((url, token))
    }
}
