//! Email and text message: the new address or number is staged (pending) and a code with
//! purpose [`CodePurpose::EnrollmentConfirmation`] goes to it, bound to this session, the user,
//! the method and that destination. Only a confirmed code (see [`super::confirm`]) makes it
//! active (replacing the old one); until then the previous one keeps working. Such a code never
//! counts as a reset verification and a reset code never confirms an enrollment: different flow,
//! different purpose in the keyed hash.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{EnrollmentState, NewEnrollment, Outcome};
use latchkey_types::{EmailAddress, MethodKind};
use latchkey_verify::{CodePurpose, Destination};

use super::page::{Problems, render};
use super::{AddForm, CsrfForm, Ctx, parse_kind, post_context, see_other};
use crate::flow::RefusalPage as _;
use crate::portal::Portal;
use latchkey_selfservice::codes;
use latchkey_selfservice::flow::Unrecorded as _;

/// Why a code was not sent.
enum SendError {
    /// Too many sends: the message to show.
    Throttled(String),
    /// The store or the code issuer failed.
    Failed,
}

/// Issues a confirmation code to `dest` (throttled per user and channel, shared with the reset
/// flow's sends), stores its keyed hash bound to this session, queues the message, audits.
async fn send_code(
    portal: &Portal,
    ctx: &Ctx,
    kind: MethodKind,
    dest: &Destination,
) -> Result<(), SendError> {
    let subject = ctx.flow.subject;
    if let Err(wait) = latchkey_selfservice::flow::hit(
        &portal.services,
        // Its own budget, apart from the public reset flow's `send:` one: anyone can spend
        // that by typing the account; only the signed-in user spends this one.
        &format!("enroll-send:{kind}"),
        &subject.to_string(),
        &portal.services.limits.sends(),
    )
    .await
    {
        ctx.audit(
            portal,
            "enroll.code.send",
            Some(kind),
            Outcome::Denied,
            Some("throttled"),
        )
        .await
        .or_log();
        return Err(SendError::Throttled(wait.message(portal, ctx.lang)));
    }
    let lang = ctx.session.preferred_language.clone();
    let purpose = CodePurpose::EnrollmentConfirmation;
    if let Err(e) = codes::issue(
        &portal.services,
        &ctx.flow,
        kind,
        purpose,
        dest,
        true,
        lang,
        &ctx.session.correlation_id,
    )
    .await
    {
        tracing::error!(error = %e, "enroll: confirmation code");
        return Err(SendError::Failed);
    }
    if ctx
        .audit(
            portal,
            "enroll.code.send",
            Some(kind),
            Outcome::Success,
            None,
        )
        .await
        .is_err()
    {
        return Err(SendError::Failed);
    }
    Ok(())
}

/// `POST /enroll/{kind}` for email and phone: stages the address or number and sends a code.
pub(super) async fn add(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    kind: MethodKind,
    form: &AddForm,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let (typed, dest) = match kind {
        MethodKind::Email => {
            let typed: String = form.address.trim().chars().take(320).collect();
            (
                typed.clone(),
                typed.parse::<EmailAddress>().ok().map(Destination::Email),
            )
        }
        _ => {
            let typed: String = form.phone.trim().chars().take(40).collect();
            (typed.clone(), Destination::phone(&typed).ok())
        }
    };
    let problem = |message: String| match kind {
        MethodKind::Email => Problems {
            address: Some((typed.clone(), message)),
            ..Problems::default()
        },
        _ => Problems {
            phone: Some((typed.clone(), message)),
            ..Problems::default()
        },
    };
    let Some(dest) = dest else {
        let key = if kind == MethodKind::Email {
            "enroll_error_address"
        } else {
            "enroll_error_phone"
        };
        let p = problem(catalogs.get(ctx.lang, key).to_string());
        return render(portal, req, ctx, p, None, StatusCode::BAD_REQUEST).await;
    };
    let data = match &dest {
        Destination::Email(e) => serde_json::json!({ "address": e.as_str() }),
        Destination::Phone(p) => serde_json::json!({ "phone": p }),
    };
    let now = portal.services.clock.now();
    if let Err(e) = portal
        .services
        .store
        .stage_enrollment(
            NewEnrollment {
                subject: ctx.flow.subject,
                method: kind.as_str().into(),
                data,
                secret: None,
            },
            now,
        )
        .await
    {
        tracing::error!(error = %e, "enroll: cannot stage");
        return ctx.unavailable(portal, req);
    }
    match send_code(portal, ctx, kind, &dest).await {
        Ok(()) => see_other(&format!("/enroll#{kind}-code")),
        Err(SendError::Throttled(message)) => {
            // Nothing was sent: the new address is not left waiting for a code.
            let subject = &ctx.flow.subject;
            let unstaged = portal
                .services
                .store
                .remove_pending_enrollment(subject, kind.as_str());
            if let Err(e) = unstaged.await {
                tracing::error!(error = %e, "enroll: cannot unstage after a refused send");
            }
            render(
                portal,
                req,
                ctx,
                problem(message),
                None,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(SendError::Failed) => ctx.unavailable(portal, req),
    }
}

/// `POST /enroll/{kind}/resend`: a new code for the pending address or number.
pub(super) async fn resend(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(kind) = parse_kind(&path).filter(|k| ctx.allows(*k) && *k != MethodKind::Totp) else {
        return portal.error_page(&req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    let pending = portal
        .services
        .store
        .enrollment(&ctx.flow.subject, kind.as_str(), EnrollmentState::Pending)
        .await
        .ok()
        .flatten();
    let Some(dest) = pending
        .as_ref()
        .and_then(|e| codes::enrolled_destination(kind, &e.data))
    else {
        return see_other("/enroll");
    };
    match send_code(&portal, &ctx, kind, &dest).await {
        Ok(()) => see_other(&format!("/enroll#{kind}-code")),
        Err(SendError::Throttled(message)) => {
            let p = Problems {
                code: Some((kind, message)),
                ..Problems::default()
            };
            render(&portal, &req, &ctx, p, None, StatusCode::TOO_MANY_REQUESTS).await
        }
        Err(SendError::Failed) => ctx.unavailable(&portal, &req),
    }
}
