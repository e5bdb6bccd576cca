//! The flow cookie: the bearer token of a self-service flow in the browser (docs/security.md,
//! principle 4). The pages of a flow set it, the error answers clear it when the flow ended.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse};
use latchkey_store::FlowToken;

use crate::portal::Portal;

/// The flow cookie: HttpOnly, SameSite=Strict, Secure and `__Host-` behind HTTPS, no Max-Age
/// (the server decides when a flow ends).
pub fn flow_cookie(portal: &Portal, token: &FlowToken) -> Cookie<'static> {
    base_cookie(portal, token.expose().to_string())
}

/// A cookie that removes the flow cookie.
pub fn clear_flow_cookie(portal: &Portal) -> Cookie<'static> {
    let mut c = base_cookie(portal, String::new());
    c.make_removal();
    c
}

fn base_cookie(portal: &Portal, value: String) -> Cookie<'static> {
    (portal.services.cookies).cookie("latchkey-flow", value, SameSite::Strict)
}

/// The flow token from the request's cookie, if well-formed.
pub fn token(portal: &Portal, req: &HttpRequest) -> Option<FlowToken> {
    req.cookie(&portal.services.cookies.name("latchkey-flow"))
        .and_then(|c| FlowToken::parse(c.value()))
}

/// `response` with the flow cookie removed (the flow ended server-side).
pub fn with_cleared_cookie(portal: &Portal, mut response: HttpResponse) -> HttpResponse {
    if let Err(e) = response.add_cookie(&clear_flow_cookie(portal)) {
        // Only an invalid header value fails here; the flow is gone server-side anyway.
        tracing::error!(error = %e, "cannot clear the flow cookie");
    }
    response
}
