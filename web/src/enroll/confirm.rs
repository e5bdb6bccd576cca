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

/// The audit event of a confirmation.
const EVENT: &str = "enroll.confirm";

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
        // An authenticator being set up: its QR code again, with the reason.
        if kind == MethodKind::Totp
            && status == StatusCode::BAD_REQUEST
            && let Some(page) =
                super::authenticator::show_again(&portal, &req, &ctx, message.clone(), status).await
        {
            return page;
        }
        let p = Problems {
            code: Some((kind, message)),
            ..Problems::default()
        };
        render(&portal, &req, &ctx, p, None, status).await
    };
    let typed = Secret::new(form.code.chars().take(64).collect::<String>());
    if let Err(e) = latchkey_selfservice::verify::code_shape(&typed) {
        let key = match e {
            latchkey_selfservice::verify::VerifyError::Malformed => "error_code_format",
            _ => "error_code_missing",
        };
        return with_error(Ok(key), StatusCode::BAD_REQUEST).await;
    }
    let failures = format!("enroll-fail:{kind}");
    let account = subject.to_string();
    if let Err(refusal) = flow::charge(&portal, &req, &failures, &account).await {
        let message = refusal.message(&portal, ctx.lang);
        let throttled = Some("throttled");
        let audited = ctx.audit(&portal, EVENT, Some(kind), Outcome::Denied, throttled);
        audited.await.or_log();
        return with_error(Err(message), refusal.status()).await;
    }
    let now = s.clock.now();
    // TOTP: the accepted time step, recorded after activation so the code cannot be replayed.
    let (accepted, step) = check_pending(&portal, &ctx, kind, &typed, now).await;
    if !accepted {
        let wrong = Some("wrong or expired");
        let audited = ctx.audit(&portal, EVENT, Some(kind), Outcome::Failure, wrong);
        if audited.await.is_err() {
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
        let used = s.store.mark_used(&subject, kind.as_str(), Some(step), now);
        used.await.or_log();
    }
    latchkey_selfservice::flow::reset_throttle(s, &failures, &account).await;
    activated(&portal, &req, &ctx, kind, had_active, channels).await
}

/// Checks `typed` against the pending enrollment of `kind`: the code sent to its address or
/// number, or a current code of the authenticator's seed (then with its time step).
async fn check_pending(
    portal: &Portal,
    ctx: &super::Ctx,
    kind: MethodKind,
    typed: &Secret<String>,
    now: time::OffsetDateTime,
) -> (bool, Option<u64>) {
    let s = &portal.services;
    let pending = s
        .store
        .enrollment(&ctx.flow.subject, kind.as_str(), EnrollmentState::Pending)
        .await
        .ok()
        .flatten();
    match (&pending, kind) {
        (None, _) => (false, None),
        (Some(p), MethodKind::Totp) => {
            let seed = p.secret.clone().and_then(|b| TotpSeed::from_bytes(b).ok());
            match seed.map(|seed| s.totp.confirm_enrollment(seed, typed, now)) {
                Some(Ok(Some(enrollment))) => (true, enrollment.last_step),
                _ => (false, None),
            }
        }
        (Some(p), _) => match codes::enrolled_destination(kind, &p.data) {
            Some(expected) => {
                let purpose = CodePurpose::EnrollmentConfirmation;
                let flow = &ctx.flow;
                let ok = codes::check(s, flow, kind, purpose, Some(&expected), typed).await;
                (ok, None)
            }
            None => (false, None),
        },
    }
}
