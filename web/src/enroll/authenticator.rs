//! Authenticator app: a new seed is staged (encrypted at rest) and shown once as a QR code (an
//! `<img>` with an SVG `data:` URI: the SVG never becomes markup of the page) and as a manual
//! key; a current code (see [`super::confirm`]) activates it and marks its time step used.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use latchkey_store::{EnrollmentState, NewEnrollment, Outcome};
use latchkey_types::{MethodKind, Secret, Upn};
use latchkey_verify::{TotpSeed, TotpSetup};
use serde::Serialize;

use super::Ctx;
use crate::portal::Portal;

#[derive(Serialize)]
struct TotpPage {
    csrf: String,
    qr: String,
    manual_key: String,
    code_error: Option<String>,
    errors: Vec<crate::render::FieldError>,
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
    if !setup.qr_svg.expose().contains("<svg") {
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
    totp_page(portal, req, ctx, &setup, None, StatusCode::OK)
}

/// The staged authenticator again (QR code and key) with why the code was refused: a wrong
/// first code does not send the user back to scanning a new seed. `None` when nothing is staged.
pub(super) async fn show_again(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    error: String,
    status: StatusCode,
) -> Option<HttpResponse> {
    let s = &portal.services;
    let pending = s
        .store
        .enrollment(
            &ctx.flow.subject,
            MethodKind::Totp.as_str(),
            EnrollmentState::Pending,
        )
        .await
        .ok()
        .flatten()?;
    let seed = TotpSeed::from_bytes(pending.secret?).ok()?;
    let upn = ctx.session.upn.parse::<Upn>().ok()?;
    let setup = s.totp.setup_for(seed, &upn).ok()?;
    Some(totp_page(portal, req, ctx, &setup, Some(error), status))
}

fn totp_page(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    setup: &TotpSetup,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    // Groups of four, as authenticator apps show keys.
    let key: Vec<char> = setup.manual_key.expose().chars().collect();
    let manual_key = key
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    let page = TotpPage {
        csrf: portal.services.csrf.token(&ctx.flow.id.to_string()),
        qr: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(setup.qr_svg.expose().as_bytes())
        ),
        manual_key,
        errors: error
            .iter()
            .map(|m| crate::render::FieldError {
                field: "totp-code",
                message: m.clone(),
            })
            .collect(),
        code_error: error,
    };
    let mut r = portal.render_in(req, ctx.lang, "enroll_totp.html", &page);
    *r.status_mut() = status;
    r
}
