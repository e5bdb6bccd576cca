//! Response hardening for every page: a per-request CSP nonce, framing forbidden, no referrer,
//! no caching of flow pages, HSTS when the public URL is HTTPS.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

pub use crate::portal::CspNonce;
use base64::Engine;

/// A fresh nonce; an error when the system has no randomness (never a predictable value).
fn fresh_nonce() -> Result<String, Error> {
    let bytes = latchkey_types::random::bytes::<18>().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a CSP nonce");
        actix_web::error::ErrorInternalServerError("no system randomness")
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Middleware: sets the nonce before the handler runs and the headers after.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let nonce = fresh_nonce()?;
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    // HTTPS is what the operator configured as the public URL, never what a request claims: a
    // client-supplied `X-Forwarded-Proto` (which `connection_info().scheme()` believes from
    // anyone) must not decide a security header.
    let https = req
        .app_data::<actix_web::web::Data<crate::portal::Portal>>()
        .is_some_and(|p| p.services.cookies.secure);
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'self' data: https:; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let set = |h: &mut header::HeaderMap, name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_SECURITY_POLICY, &csp);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if https {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    Ok(res)
}
