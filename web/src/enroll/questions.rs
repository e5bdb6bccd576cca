//! Security questions (only when the policy lists `questions`): the user picks 3 questions from
//! the fixed catalogue and answers them; the answers are checked (length, no two the same after
//! normalisation), hashed with argon2id on the bounded pool and stored as the enrollment secret (a
//! JSON array of PHC strings, encrypted at rest), the question ids in its data. Saving again
//! replaces the set. Unlike the other methods there is nothing to confirm, so the whole change
//! happens in one request. They never count toward the methods a reset requires.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_policy::Action;
use latchkey_store::NewEnrollment;
use latchkey_types::{MethodKind, Secret};
use latchkey_verify::{HashError, QuestionError, QuestionId};

use super::page::{Problems, render};
use super::{AddForm, Ctx, activated, channels_before, unavailable};
use crate::portal::Portal;
use latchkey_selfservice::QUESTION_IDS;
use latchkey_selfservice::act::current_policy;

/// `POST /enroll/questions`: checks, hashes (argon2id, bounded pool) and stores a full set of
/// answers, replacing any earlier set; audited, announced to the earlier channels.
pub(super) async fn add_questions(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    form: &AddForm,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let subject = ctx.flow.subject;
    let chosen: Vec<String> = [&form.question_1, &form.question_2, &form.question_3]
        .iter()
        .map(|q| q.trim().chars().take(64).collect())
        .collect();
    let with_error = async |key: &str, status| {
        let p = Problems {
            questions: Some((chosen.clone(), catalogs.get(ctx.lang, key).to_string())),
            ..Problems::default()
        };
        render(portal, req, ctx, p, None, status).await
    };
    let method = &portal.services.questions;
    let ids: Option<Vec<QuestionId>> = chosen
        .iter()
        .map(|q| {
            QUESTION_IDS
                .contains(&q.as_str())
                .then(|| QuestionId::new(q).ok())
                .flatten()
        })
        .collect();
    let Some(ids) = ids else {
        return with_error("enroll_questions_error_invalid", StatusCode::BAD_REQUEST).await;
    };
    let answers: Vec<(QuestionId, Secret<String>)> = ids
        .into_iter()
        .zip([&form.answer_1, &form.answer_2, &form.answer_3])
        .map(|(q, a)| (q, Secret::new(a.chars().take(1000).collect::<String>())))
        .collect();
    let enrolled = match method.enroll(&answers).await {
        Ok(e) => e,
        Err(e) => {
            return match refusal_key(&e) {
                Ok(key) => with_error(key, StatusCode::BAD_REQUEST).await,
                Err(busy) => refused(portal, req, ctx, busy, &e),
            };
        }
    };
    let kind = MethodKind::Questions;
    let data = serde_json::json!({
        "questions": enrolled.iter().map(|a| a.question.as_str()).collect::<Vec<_>>(),
    });
    let hashes: Vec<&str> = enrolled.iter().map(|a| a.hash.as_str()).collect();
    let Ok(secret) = serde_json::to_vec(&hashes) else {
        return ctx.unavailable(portal, req);
    };
    let channels = channels_before(portal, ctx).await;
    let had_active = ctx.has_active(portal, kind).await;
    // Policy again, right before the write (fresh membership; fails closed).
    if current_policy(&portal.services, &subject, Action::Enroll)
        .await
        .ok()
        .flatten()
        .is_none_or(|p| !p.methods.contains(&kind))
    {
        return unavailable(portal, req, &ctx.token, &ctx.flow, &ctx.session).await;
    }
    if !store(portal, &subject, data, secret).await {
        return ctx.unavailable(portal, req);
    }
    activated(portal, req, ctx, kind, had_active, channels).await
}

/// The message key for answers the method refused, or (`Err`) whether the refusal was the
/// hashing pool being busy (`true`) or a fault (`false`).
fn refusal_key(e: &QuestionError) -> Result<&'static str, bool> {
    match e {
        QuestionError::TooShort(_) | QuestionError::WrongCount { .. } => {
            Ok("enroll_questions_error_short")
        }
        QuestionError::TooLong(_) => Ok("enroll_questions_error_long"),
        QuestionError::DuplicateAnswer(..) => Ok("enroll_questions_error_duplicate_answer"),
        QuestionError::DuplicateQuestion(_) => Ok("enroll_questions_error_duplicate_question"),
        QuestionError::Hash(HashError::Busy) => Err(true),
        _ => Err(false),
    }
}

/// "Busy, try again in a few seconds" (503, `Retry-After`), or the generic error for a fault.
fn refused(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    busy: bool,
    e: &QuestionError,
) -> HttpResponse {
    if !busy {
        tracing::error!(error = %e, "enroll: security questions");
        return ctx.unavailable(portal, req);
    }
    let mut r = portal.error_page(req, ctx.lang, StatusCode::SERVICE_UNAVAILABLE, "error_busy");
    r.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("5"),
    );
    r
}

/// Stages and activates the set (replacing an earlier one); `false` (logged) when the store
/// did not take it.
async fn store(
    portal: &Portal,
    subject: &latchkey_types::ObjectId,
    data: serde_json::Value,
    secret: Vec<u8>,
) -> bool {
    let s = &portal.services;
    let kind = MethodKind::Questions;
    let now = s.clock.now();
    let new = NewEnrollment {
        subject: *subject,
        method: kind.as_str().into(),
        data,
        secret: Some(Secret::new(secret)),
    };
    let stored = match s.store.stage_enrollment(new, now).await {
        Ok(_) => {
            s.store
                .activate_enrollment(subject, kind.as_str(), now)
                .await
        }
        Err(e) => Err(e),
    };
    let ok = matches!(stored, Ok(true));
    if !ok {
        tracing::error!("enroll: cannot store security questions");
    }
    ok
}
