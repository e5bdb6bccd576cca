//! `POST /enroll/{kind}/confirm`: the one step every staged method with something to confirm
//! goes through (email and phone: the code sent to them; authenticator: a current code). One
//! place for the attempt throttle, the policy re-check right before activation and the change
//! notice, whichever method is confirmed.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Action;
use latchkey_store::{EnrollmentState, Outcome};
use latchkey_types::{MethodKind, Secret};
use latchkey_verify::{CodePurpose, TotpSeed};

use super::page::{Problems, render};
use super::{CodeForm, activated, channels_before, parse_kind, post_context, unavailable};
use crate::flow;
use crate::flow::RefusalPage as _;
use crate::portal::Portal;
use latchkey_selfservice::act::current_policy;
use latchkey_selfservice::codes;
use latchkey_selfservice::flow::Unrecorded as _;

/// `POST /enroll/{kind}/confirm`: the code that makes a pending method active.
pub(super) async fn confirm(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(kind) = parse_kind(&path).filter(|k| ctx.allows(*k)) else {
        return portal.error_page(&req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    let s = &portal.services;
    let catalogs = portal.templates.catalogs();
    let subject = ctx.flow.subject;
    let with_error = async |key_or_message: Result<&str, String>, status| {
        let message = match key_or_message {
            Ok(key) => catalogs.get(ctx.lang, key).to_string(),
            Err(m) => m,
        };
        let p = Problems {
            code: Some((kind, message)),
            ..Problems::default()
        };
        render(&portal, &req, &ctx, p, None, status).await
    };
    let typed = Secret::new(form.code.chars().take(64).collect::<String>());
    if latchkey_verify::normalize_typed_code(typed.expose()).is_empty() {
        return with_error(Ok("error_code_missing"), StatusCode::BAD_REQUEST).await;
    }
    let failures = format!("enroll-fail:{kind}");
    let account = subject.to_string();
    if let Err(refusal) = flow::charge(&portal, &req, &failures, &account).await {
        let message = refusal.message(&portal, ctx.lang);
        ctx.audit(
            &portal,
            "enroll.confirm",
            Some(kind),
            Outcome::Denied,
            Some("throttled"),
        )
        .await
        .or_log();
        return with_error(Err(message), refusal.status()).await;
    }
    let now = s.clock.now();
    let pending = s
        .store
        .enrollment(&subject, kind.as_str(), EnrollmentState::Pending)
        .await
        .ok()
        .flatten();
    // TOTP: the accepted time step, recorded after activation so the code cannot be replayed.
    let mut step = None;
    let accepted = match (&pending, kind) {
        (None, _) => false,
        (Some(p), MethodKind::Totp) => {
            let seed = p.secret.clone().and_then(|b| TotpSeed::from_bytes(b).ok());
            match seed.map(|seed| s.totp.confirm_enrollment(seed, &typed, now)) {
                Some(Ok(Some(enrollment))) => {
                    step = enrollment.last_step;
                    true
                }
                _ => false,
            }
        }
        (Some(p), _) => match codes::enrolled_destination(kind, &p.data) {
            Some(expected) => {
                let purpose = CodePurpose::EnrollmentConfirmation;
                codes::check(
                    &portal.services,
                    &ctx.flow,
                    kind,
                    purpose,
                    Some(&expected),
                    &typed,
                )
                .await
            }
            None => false,
        },
    };
    if !accepted {
        if ctx
            .audit(
                &portal,
                "enroll.confirm",
                Some(kind),
                Outcome::Failure,
                Some("wrong or expired"),
            )
            .await
            .is_err()
        {
            return ctx.unavailable(&portal, &req);
        }
        return with_error(Ok("error_code_wrong"), StatusCode::BAD_REQUEST).await;
    }
    // Known before the change: these hear about it.
    let channels = channels_before(&portal, &ctx).await;
    let had_active = ctx.has_active(&portal, kind).await;
    // Policy again, right before the write (fresh membership; fails closed).
    if current_policy(&portal.services, &subject, Action::Enroll)
        .await
        .ok()
        .flatten()
        .is_none_or(|p| !p.methods.contains(&kind))
    {
        return unavailable(&portal, &req, &ctx.token, &ctx.flow, &ctx.session).await;
    }
    match s
        .store
        .activate_enrollment(&subject, kind.as_str(), now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return with_error(Ok("error_code_wrong"), StatusCode::BAD_REQUEST).await,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot activate");
            return ctx.unavailable(&portal, &req);
        }
    }
    if let Some(step) = step.and_then(|st| i64::try_from(st).ok()) {
        s.store
            .mark_used(&subject, kind.as_str(), Some(step), now)
            .await
            .or_log();
    }
    latchkey_selfservice::flow::reset_throttle(&portal.services, &failures, &subject.to_string())
        .await;
    activated(&portal, &req, &ctx, kind, had_active, channels).await
}
