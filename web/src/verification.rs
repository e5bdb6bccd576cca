//! Step 2 of self-service: the user proves who they are with the methods they enrolled.
//!
//! Every answer here is the same for real and decoy flows until a code or TOTP is accepted: the
//! same pages, the same throttles (keyed on the object id, or on the typed account for decoys),
//! the same work (a decoy gets a code issued to nowhere and a TOTP check against a seed nobody
//! holds). Codes are bound to flow, user, method and destination, single use, newest only; TOTP
//! steps are never accepted twice.
//!
//! Security questions (when a policy lists them) are only ever an additional method: they never
//! count toward the methods required ([`MethodKind::counts_toward_required`], enforced by
//! [`latchkey_verify::requirement_met`]), so answering them never completes a flow on its own.
//! Before a verification succeeds the questions page does not reveal whether the account has
//! questions enrolled: decoys and accounts without an enrollment see questions chosen from the
//! catalogue by a keyed HMAC of the typed account (always the same ones for that account) and are
//! checked against the hasher's dummy hash, so the page and the time taken are the same.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{EnrollmentState, Flow, Outcome};
use latchkey_types::{MethodKind, Secret};
use latchkey_verify::{
    CodePurpose, Destination, EnrolledAnswer, HashError, PhcHash, QuestionId, QuestionOutcome,
    TotpEnrollment, TotpOutcome, TotpSeed,
};
use serde::{Deserialize, Serialize};

use crate::app::Portal;
use crate::app::Unrecorded as _;
use crate::codes;
use crate::flow::{self, FlowData, STEP_VERIFIED, STEP_VERIFY, Step, limits};
use crate::identify::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/verify", web::get().to(choose))
        .route("/verify/{kind}/start", web::post().to(begin))
        // Before `{kind}`: the answers form has its own fields.
        .route("/verify/questions", web::post().to(submit_questions))
        .route(
            "/verify/attribute",
            web::post().to(crate::attribute::submit),
        )
        .route("/verify/{kind}", web::post().to(submit));
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

#[derive(Serialize)]
struct MethodButton {
    kind: &'static str,
    label: String,
}

#[derive(Serialize)]
struct ChoosePage {
    csrf: String,
    methods: Vec<MethodButton>,
    step: String,
    total: String,
    errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct CodePage {
    csrf: String,
    kind: &'static str,
    intro: String,
    resend: bool,
    step: String,
    total: String,
    code_error: Option<String>,
    errors: Vec<FieldError>,
}

/// The CSRF token of a flow: bound to its stable id, so it survives token rotation.
pub fn csrf_token(portal: &Portal, flow: &Flow) -> String {
    portal.services.csrf.token(&flow.id.to_string())
}

/// "Step N of M", but only once the first method succeeded: before that, M would reveal which
/// policy (and so whether an account) matched.
fn step_numbers(flow: &Flow, data: &FlowData) -> (String, String) {
    let done = flow.verified.len();
    let total = if done == 0 {
        String::new()
    } else {
        data.required.to_string()
    };
    ((done + 1).to_string(), total)
}

async fn choose(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let (flow, data) = match flow::load(&portal, &req).await {
        Ok(Some((_, flow, data))) => (flow, data),
        Ok(None) => return flow::expired(&portal),
        Err(e) => return flow::store_unavailable(&portal, &req, flow::lang(&req, None), &e),
    };
    if flow::is_complete(&flow, &data) {
        return flow::see_other("/action");
    }
    let lang = flow::lang(&req, Some((&flow, &data)));
    let done = flow::verified_kinds(&flow);
    let methods = portal
        .services
        .offered_methods()
        .into_iter()
        .filter(|m| !done.contains(m))
        .map(|m| MethodButton {
            kind: m.as_str(),
            label: flow::method_label(&portal, lang, m),
        })
        .collect();
    let (step, total) = step_numbers(&flow, &data);
    let page = ChoosePage {
        csrf: csrf_token(&portal, &flow),
        methods,
        step,
        total,
        errors: vec![],
    };
    portal.render_in(&req, lang, "verify_choose.html", &page)
}

/// Parses the `{kind}` path segment into a method the portal offers.
fn offered_kind(portal: &Portal, raw: &str) -> Option<MethodKind> {
    raw.parse::<MethodKind>()
        .ok()
        .filter(|k| portal.services.offered_methods().contains(k))
}

/// Where a code for `kind` goes for this flow: the enrolled, confirmed address — or, for decoys and
/// for methods the account has not enrolled or its policy does not allow, nowhere (the code is
/// issued and never sent, so the work and the answer are the same).
async fn destination(
    portal: &Portal,
    flow: &Flow,
    data: &FlowData,
    kind: MethodKind,
) -> (Destination, bool) {
    let enrolled = if data.decoy || !data.methods.contains(&kind) {
        None
    } else {
        portal
            .services
            .store
            .enrollment(&flow.subject, kind.as_str(), EnrollmentState::Active)
            .await
            .ok()
            .flatten()
    };
    match enrolled.and_then(|e| codes::enrolled_destination(kind, &e.data)) {
        Some(d) => (d, true),
        None => (codes::nowhere(kind), false),
    }
}

async fn begin(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let step = match Step::post(&portal, &req, &form.csrf).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(kind) = offered_kind(&portal, &path) else {
        return portal.error_page(&req, step.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    if kind == MethodKind::Totp {
        return code_page(&portal, &req, &step, kind, None, StatusCode::OK);
    }
    if kind == MethodKind::Attribute {
        return crate::attribute::page(&portal, &req, &step, None, StatusCode::OK);
    }
    if kind == MethodKind::Questions {
        let (asked, _) = asked_questions(&portal, &step.flow, &step.data).await;
        return questions_page(&portal, &req, &step, &asked, None, StatusCode::OK);
    }
    let (flow, data) = (&step.flow, &step.data);
    let scope = format!("send:{kind}");
    if let Err(wait) = flow::hit(
        &portal,
        &scope,
        &data.throttle_key,
        limits::SENDS_PER_ACCOUNT,
    )
    .await
    {
        let msg = wait.message(&portal, step.lang);
        return code_page(&portal, &req, &step, kind, Some(msg), wait.status());
    }
    let (dest, deliver) = destination(&portal, flow, data, kind).await;
    let lang = data.preferred_language.clone();
    let issued = codes::issue(
        &portal,
        flow,
        kind,
        CodePurpose::Verification,
        &dest,
        deliver,
        lang,
        &data.correlation_id,
    )
    .await;
    if let Err(e) = issued {
        tracing::error!(error = %e, "verification code");
        return step.unavailable(&portal, &req);
    }
    let (outcome, reason) = if deliver {
        (Outcome::Success, None)
    } else {
        (Outcome::Denied, Some("no enrolled destination"))
    };
    if step
        .audit(&portal, "code.send", Some(kind), outcome, reason)
        .await
        .is_err()
    {
        return step.unavailable(&portal, &req);
    }
    code_page(&portal, &req, &step, kind, None, StatusCode::OK)
}

/// The page where the user types a code (or reads where one went).
fn code_page(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    kind: MethodKind,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let key = match kind {
        MethodKind::Email => "code_sent_email",
        MethodKind::Sms => "code_sent_sms",
        _ => "code_totp",
    };
    let intro = portal
        .templates
        .catalogs()
        .get(step.lang, key)
        .replace("{account}", &step.data.account);
    let (current, total) = step_numbers(&step.flow, &step.data);
    let errors = error
        .iter()
        .map(|m| FieldError {
            field: "code",
            message: m.clone(),
        })
        .collect();
    let page = CodePage {
        csrf: csrf_token(portal, &step.flow),
        kind: kind.as_str(),
        intro,
        resend: kind != MethodKind::Totp,
        step: current,
        total,
        code_error: error,
        errors,
    };
    let mut r = portal.render_in(req, step.lang, "verify_code.html", &page);
    *r.status_mut() = status;
    r
}

async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let step = match Step::post(&portal, &req, &form.csrf).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = step.lang;
    let Some(kind) = offered_kind(&portal, &path) else {
        return portal.error_page(&req, lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    let typed = Secret::new(form.code.chars().take(64).collect::<String>());
    if latchkey_verify::normalize_typed_code(typed.expose()).is_empty() {
        let msg = portal
            .templates
            .catalogs()
            .get(lang, "error_code_missing")
            .to_string();
        return code_page(
            &portal,
            &req,
            &step,
            kind,
            Some(msg),
            StatusCode::BAD_REQUEST,
        );
    }
    let failures = format!("fail:{kind}");
    if let Err(refusal) =
        flow::charge_attempt(&portal, &req, &failures, &step.data.throttle_key).await
    {
        let msg = refusal.message(&portal, lang);
        step.audit(
            &portal,
            "verify.throttled",
            Some(kind),
            Outcome::Denied,
            None,
        )
        .await
        .or_log();
        return code_page(&portal, &req, &step, kind, Some(msg), refusal.status());
    }
    let accepted = match kind {
        MethodKind::Totp => check_totp(&portal, &step.flow, &step.data, &typed).await,
        _ => {
            codes::check(
                &portal,
                &step.flow,
                kind,
                CodePurpose::Verification,
                None,
                &typed,
            )
            .await
        }
    };
    if !accepted {
        if step
            .audit(
                &portal,
                "verify",
                Some(kind),
                Outcome::Failure,
                Some("wrong or expired"),
            )
            .await
            .is_err()
        {
            return step.unavailable(&portal, &req);
        }
        let msg = portal
            .templates
            .catalogs()
            .get(lang, "error_code_wrong")
            .to_string();
        return code_page(
            &portal,
            &req,
            &step,
            kind,
            Some(msg),
            StatusCode::BAD_REQUEST,
        );
    }
    succeed(&portal, &req, &step, kind).await
}

#[derive(Deserialize)]
pub struct AnswersForm {
    csrf: String,
    #[serde(default)]
    answer_1: String,
    #[serde(default)]
    answer_2: String,
    #[serde(default)]
    answer_3: String,
}

#[derive(Serialize)]
struct AskedQuestion {
    /// Form field and element id: `answer_1`, ...
    field: String,
    text: String,
}

#[derive(Serialize)]
struct QuestionsPage {
    csrf: String,
    intro: String,
    questions: Vec<AskedQuestion>,
    step: String,
    total: String,
    answers_error: Option<String>,
    errors: Vec<FieldError>,
}

/// The questions this flow is asked and, for an account with an active enrollment its policy
/// allows, the stored answers. Everybody else (decoys, no enrollment, questions not allowed)
/// gets the account's HMAC-chosen questions and `None` (checked against the dummy hash).
async fn asked_questions(
    portal: &Portal,
    flow: &Flow,
    data: &FlowData,
) -> (Vec<QuestionId>, Option<Vec<EnrolledAnswer>>) {
    let ask = portal.services.questions.config().ask_count;
    if !data.decoy && data.methods.contains(&MethodKind::Questions) {
        let enrolled = portal
            .services
            .store
            .enrollment(
                &flow.subject,
                MethodKind::Questions.as_str(),
                EnrollmentState::Active,
            )
            .await
            .ok()
            .flatten()
            .and_then(|e| {
                let ids: Vec<QuestionId> = e.data["questions"]
                    .as_array()?
                    .iter()
                    .filter_map(|v| v.as_str().and_then(|id| QuestionId::new(id).ok()))
                    .collect();
                let secret = e.secret?;
                let hashes: Vec<String> = serde_json::from_slice(secret.expose()).ok()?;
                let answers: Vec<EnrolledAnswer> = ids
                    .iter()
                    .zip(&hashes)
                    .filter_map(|(question, h)| {
                        Some(EnrolledAnswer {
                            question: question.clone(),
                            hash: PhcHash::parse(h.as_str()).ok()?,
                        })
                    })
                    .collect();
                (answers.len() == hashes.len() && answers.len() >= ask).then_some(answers)
            });
        if let Some(answers) = enrolled {
            let asked = answers
                .iter()
                .take(ask)
                .map(|a| a.question.clone())
                .collect();
            return (asked, Some(answers));
        }
    }
    (portal.services.decoy_questions(&data.account, ask), None)
}

/// The page asking the security questions.
fn questions_page(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    asked: &[QuestionId],
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let questions = asked
        .iter()
        .enumerate()
        .map(|(i, q)| AskedQuestion {
            field: format!("answer_{}", i + 1),
            text: catalogs
                .get(step.lang, &format!("question_{q}"))
                .to_string(),
        })
        .collect();
    let intro = catalogs
        .get(step.lang, "questions_intro")
        .replace("{account}", &step.data.account);
    let (current, total) = step_numbers(&step.flow, &step.data);
    let errors = error
        .iter()
        .map(|m| FieldError {
            field: "answer_1",
            message: m.clone(),
        })
        .collect();
    let page = QuestionsPage {
        csrf: csrf_token(portal, &step.flow),
        intro,
        questions,
        step: current,
        total,
        answers_error: error,
        errors,
    };
    let mut r = portal.render_in(req, step.lang, "verify_code.html", &page);
    *r.status_mut() = status;
    r
}

/// `POST /verify/questions`: checks the answers (always `ask_count` argon2 runs, against the
/// enrolled hashes or the dummy). Success records an additional method; it never completes the
/// flow by itself.
async fn submit_questions(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<AnswersForm>,
) -> HttpResponse {
    let step = match Step::post(&portal, &req, &form.csrf).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = step.lang;
    let kind = MethodKind::Questions;
    if offered_kind(&portal, kind.as_str()).is_none() {
        return portal.error_page(&req, lang, StatusCode::NOT_FOUND, "error_not_found");
    }
    let method = &portal.services.questions;
    let (asked, enrolled) = asked_questions(&portal, &step.flow, &step.data).await;
    let catalogs = portal.templates.catalogs();
    let typed: Vec<String> = [&form.answer_1, &form.answer_2, &form.answer_3]
        .into_iter()
        .take(asked.len())
        .map(|a| a.chars().take(256).collect())
        .collect();
    if typed.iter().any(|a| a.trim().is_empty()) {
        let msg = catalogs.get(lang, "error_answers_missing").to_string();
        return questions_page(
            &portal,
            &req,
            &step,
            &asked,
            Some(msg),
            StatusCode::BAD_REQUEST,
        );
    }
    let busy = || {
        let mut r = portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_busy");
        r.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("5"),
        );
        r
    };
    // A hashing permit first: when every hashing thread is taken the answer is "busy, try
    // again" and the attempt is not charged (a loaded server must not throttle its users).
    let reservation = match method.reserve().await {
        Ok(r) => r,
        Err(HashError::Busy) => return busy(),
        Err(e) => {
            tracing::error!(error = %e, "security questions");
            return step.unavailable(&portal, &req);
        }
    };
    let failures = format!("fail:{kind}");
    if let Err(refusal) =
        flow::charge_attempt(&portal, &req, &failures, &step.data.throttle_key).await
    {
        let msg = refusal.message(&portal, lang);
        step.audit(
            &portal,
            "verify.throttled",
            Some(kind),
            Outcome::Denied,
            None,
        )
        .await
        .or_log();
        return questions_page(&portal, &req, &step, &asked, Some(msg), refusal.status());
    }
    let given = asked
        .iter()
        .cloned()
        .zip(typed.into_iter().map(Secret::new))
        .collect();
    let outcome = match method
        .check_reserved(reservation, enrolled.as_deref(), given)
        .await
    {
        Ok(o) => o,
        Err(HashError::Busy) => return busy(),
        Err(e) => {
            tracing::error!(error = %e, "security questions");
            return step.unavailable(&portal, &req);
        }
    };
    if outcome != QuestionOutcome::Ok {
        if step
            .audit(
                &portal,
                "verify",
                Some(kind),
                Outcome::Failure,
                Some("wrong"),
            )
            .await
            .is_err()
        {
            return step.unavailable(&portal, &req);
        }
        let msg = catalogs.get(lang, "error_answers_wrong").to_string();
        return questions_page(
            &portal,
            &req,
            &step,
            &asked,
            Some(msg),
            StatusCode::BAD_REQUEST,
        );
    }
    succeed(&portal, &req, &step, kind).await
}

/// Records a verified method: rotates the flow token, resets the failure streak, audits.
pub(crate) async fn succeed(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    kind: MethodKind,
) -> HttpResponse {
    let mut verified = flow::verified_kinds(&step.flow);
    verified.push(kind);
    let complete = latchkey_verify::requirement_met(step.data.required, &verified);
    let next = if complete { STEP_VERIFIED } else { STEP_VERIFY };
    let now = portal.services.clock.now();
    let rotated = portal
        .services
        .store
        .record_verification(&step.token, kind.as_str(), next, now)
        .await;
    let new_token = match rotated {
        Ok(Some((new_token, _))) => new_token,
        // Someone else used this token first (a replayed request), or the flow is acting on
        // its one change: start over.
        Ok(None) => return flow::expired(portal),
        Err(e) => return flow::store_unavailable(portal, req, step.lang, &e),
    };
    flow::reset_throttle(portal, &format!("fail:{kind}"), &step.data.throttle_key).await;
    if step
        .audit(portal, "verify", Some(kind), Outcome::Success, None)
        .await
        .is_err()
    {
        return step.unavailable(portal, req);
    }
    let mut resp = flow::see_other(if complete { "/action" } else { "/verify" });
    resp = crate::app::with_cookie(resp, &flow::flow_cookie(portal, &new_token));
    resp
}

/// A TOTP check against the enrolled seed (or, for decoys, a seed nobody holds), with the replay
/// guard applied atomically by the store.
async fn check_totp(portal: &Portal, flow: &Flow, data: &FlowData, typed: &Secret<String>) -> bool {
    let s = &portal.services;
    let now = s.clock.now();
    let enrolled = if data.decoy || !data.methods.contains(&MethodKind::Totp) {
        None
    } else {
        s.store
            .enrollment(
                &flow.subject,
                MethodKind::Totp.as_str(),
                EnrollmentState::Active,
            )
            .await
            .ok()
            .flatten()
    };
    let seed = enrolled
        .as_ref()
        .and_then(|e| e.secret.clone())
        .and_then(|b| TotpSeed::from_bytes(b).ok());
    let real = seed.is_some();
    let mut enrollment = match seed {
        Some(seed) => TotpEnrollment {
            seed,
            last_step: enrolled
                .as_ref()
                .and_then(|e| e.last_used_step)
                .and_then(|s| u64::try_from(s).ok()),
        },
        None => match s.totp.decoy_enrollment() {
            Ok(d) => d,
            Err(_) => return false,
        },
    };
    match s.totp.check(&mut enrollment, typed, now) {
        Ok(TotpOutcome::Ok { step }) if real => {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            s.store
                .mark_used(&flow.subject, MethodKind::Totp.as_str(), Some(step), now)
                .await
                .unwrap_or(false)
        }
        _ => false,
    }
}
