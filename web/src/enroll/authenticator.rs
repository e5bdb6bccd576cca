//! Authenticator app: a new seed is staged (encrypted at rest) and shown once as a QR code (an
//! `<img>` with an SVG `data:` URI: the SVG never becomes markup of the page) and as a manual
//! key; a current code (see [`super::confirm`]) activates it and marks its time step used.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use latchkey_store::{NewEnrollment, Outcome};
use latchkey_types::{MethodKind, Secret, Upn};
use serde::Serialize;

use super::Ctx;
use crate::portal::Portal;

#[derive(Serialize)]
struct TotpPage {
    csrf: String,
    qr: String,
    manual_key: String,
}

/// Stages a new authenticator seed and shows it once (QR code and manual key).
pub(super) async fn begin_totp(portal: &Portal, req: &HttpRequest, ctx: &Ctx) -> HttpResponse {
    let s = &portal.services;
    let lang = ctx.lang;
    let Ok(upn) = ctx.session.upn.parse::<Upn>() else {
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    let setup = match s.totp.begin_enrollment(&upn) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot create an authenticator seed");
            return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    let svg = setup.qr_svg.expose();
    if !svg.contains("<svg") {
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    let now = s.clock.now();
    let staged = s
        .store
        .stage_enrollment(
            NewEnrollment {
                subject: ctx.flow.subject,
                method: MethodKind::Totp.as_str().into(),
                data: serde_json::json!({}),
                secret: Some(Secret::new(setup.seed.expose_bytes().to_vec())),
            },
            now,
        )
        .await;
    if let Err(e) = staged {
        tracing::error!(error = %e, "enroll: cannot stage an authenticator");
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    if ctx
        .audit(
            portal,
            "enroll.stage",
            Some(MethodKind::Totp),
            Outcome::Success,
            None,
        )
        .await
        .is_err()
    {
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    // Groups of four, as authenticator apps show keys.
    let key: Vec<char> = setup.manual_key.expose().chars().collect();
    let manual_key = key
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    let page = TotpPage {
        csrf: s.csrf.token(&ctx.flow.id.to_string()),
        qr: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(svg.as_bytes())
        ),
        manual_key,
    };
    portal.render_in(req, lang, "enroll_totp.html", &page)
}
