//! Step 2 of self-service, the pages: the user proves who they are with the methods they enrolled.
//! What is checked, charged and audited is `latchkey_selfservice::verify`; every page here looks
//! the same for real and decoy flows until a method succeeds ("Step N of M" only then).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_selfservice::flow::{Current, FlowData};
use latchkey_selfservice::verify::{self, VerifyError};
use latchkey_store::Flow;
use latchkey_types::{MethodKind, Secret};
use latchkey_verify::QuestionId;
use serde::{Deserialize, Serialize};

use crate::error::WebError;
use crate::extract::Posted;
use crate::flow::{self, CsrfForm, RefusalPage as _, Step, csrf_token, not_verified, verified};
use crate::i18n::Lang;
use crate::portal::Portal;
use crate::render::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/verify", web::get().to(choose))
        .route("/verify/{kind}/start", web::post().to(begin))
        // Before `{kind}`: the answers form has its own fields.
        .route("/verify/questions", web::post().to(submit_questions))
        .route(
            "/verify/passkey",
            web::post().to(crate::passkey::verify::submit),
        )
        .route(
            "/verify/attribute",
            web::post().to(crate::attribute::submit),
        )
        .route("/verify/{kind}", web::post().to(submit));
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

crate::with_csrf!(CodeForm, AnswersForm);

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
    /// "Didn't get a code?": the ways forward, the same for everyone.
    help: Vec<String>,
    resend: bool,
    step: String,
    total: String,
    code_error: Option<String>,
    errors: Vec<FieldError>,
}

/// "Step N of M", but only once the first method succeeded: before that, M would reveal which
/// policy (and so whether an account) matched.
/// Security questions never count toward the methods required, so they do not advance the
/// step either (no "Step 3 of 2").
pub(crate) fn step_numbers(flow: &Flow, data: &FlowData) -> (String, String) {
    if flow.verified.is_empty() {
        return ((1).to_string(), String::new());
    }
    let counted = latchkey_selfservice::flow::verified_kinds(flow)
        .into_iter()
        .filter(|k| k.counts_toward_required())
        .count();
    let current = (counted + 1).min(data.required.max(1));
    (current.to_string(), data.required.to_string())
}

async fn choose(req: HttpRequest, portal: web::Data<Portal>) -> Result<HttpResponse, WebError> {
    let Current { flow, data, .. } = flow::live(&portal, &req).await?;
    if latchkey_selfservice::flow::is_complete(&flow, &data) {
        return Err(WebError::SeeOther("/action"));
    }
    let lang = flow::lang(&req, Some((&flow, &data)));
    let done = latchkey_selfservice::flow::verified_kinds(&flow);
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
    Ok(portal.render_in(&req, lang, "verify_choose.html", &page))
}

/// Parses the `{kind}` path segment into a method the portal offers; 404 otherwise.
pub(crate) fn offered_kind(portal: &Portal, raw: &str, lang: Lang) -> Result<MethodKind, WebError> {
    verify::offered(&portal.services, raw)
        .ok_or_else(|| WebError::page(StatusCode::NOT_FOUND, "error_not_found", lang))
}

async fn begin(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    posted: Posted<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let step = posted.step;
    let kind = offered_kind(&portal, &path, step.lang)?;
    let page = |sent_to: Option<String>, error, status| {
        code_page(
            &portal,
            &req,
            &step,
            kind,
            sent_to.as_deref(),
            error,
            status,
        )
    };
    Ok(match kind {
        MethodKind::Totp => page(None, None, StatusCode::OK),
        MethodKind::Passkey => crate::passkey::verify::page(&portal, &req, &step).await?,
        MethodKind::Attribute => crate::attribute::page(&portal, &req, &step, None, StatusCode::OK),
        MethodKind::Questions => {
            let asked = verify::asked_questions(&portal.services, &step).await;
            questions_page(&portal, &req, &step, &asked.questions, None, StatusCode::OK)
        }
        MethodKind::Email | MethodKind::Sms => {
            match verify::send_code(&portal.services, &step, kind).await {
                Ok(masked) => page(Some(masked), None, StatusCode::OK),
                Err(VerifyError::Refused(wait)) => {
                    let sent_to = step.data.sent_to.get(&kind).cloned();
                    page(
                        sent_to,
                        Some(wait.message(&portal, step.lang)),
                        wait.status(),
                    )
                }
                Err(VerifyError::Store(e)) => return Err(WebError::Store(step.lang, e)),
                Err(_) => return Err(WebError::unavailable(step.lang)),
            }
        }
    })
}

/// The page where the user types a code: where it went (masked; a flow that sent nothing shows
/// the plausible mask `send_code` chose), how long it is, and the ways forward if it never comes.
fn code_page(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    kind: MethodKind,
    sent_to: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let lang = step.lang;
    let config = portal.services.codes.config();
    let digits = config.digits.to_string();
    let minutes = (config.lifetime.whole_seconds() / 60).max(1).to_string();
    let destination = sent_to.unwrap_or("…");
    let intro = match kind {
        MethodKind::Email => catalogs.get(lang, "code_sent_email"),
        MethodKind::Sms => catalogs.get(lang, "code_sent_sms"),
        _ => catalogs.get(lang, "code_totp"),
    }
    .replace("{account}", &step.data.account)
    .replace("{destination}", destination)
    .replace("{digits}", &digits)
    .replace("{minutes}", &minutes);
    let help = if kind == MethodKind::Totp {
        vec![]
    } else {
        code_help(portal, lang, destination)
    };
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
        help,
        resend: kind != MethodKind::Totp,
        step: current,
        total,
        code_error: error,
        errors,
    };
    let mut r = portal.render_in(req, lang, "verify_code.html", &page);
    *r.status_mut() = status;
    r
}

/// "Didn't get a code?": the same lines for everyone, so they say nothing about the account.
fn code_help(portal: &Portal, lang: Lang, destination: &str) -> Vec<String> {
    let catalogs = portal.templates.catalogs();
    let mut lines = vec![
        catalogs.get(lang, "code_help_wait").to_string(),
        catalogs
            .get(lang, "code_help_unknown")
            .replace("{destination}", destination),
        catalogs.get(lang, "code_help_enroll").to_string(),
    ];
    lines.push(match portal.brand.helpdesk.as_deref() {
        Some(contact) => catalogs
            .get(lang, "code_help_helpdesk")
            .replace("{helpdesk}", contact),
        None => catalogs.get(lang, "code_help_helpdesk_none").to_string(),
    });
    lines
}

async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    posted: Posted<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let Posted { step, form } = posted;
    let kind = offered_kind(&portal, &path, step.lang)?;
    let typed = Secret::new(form.code.chars().take(64).collect::<String>());
    let client = flow::client(&portal, &req);
    match verify::check_code(&portal.services, &step, kind, &typed, &client).await {
        Ok(v) => Ok(verified(&portal, v)),
        Err(e) => {
            let sent_to = step.data.sent_to.get(&kind).cloned();
            let again = |msg, status| {
                code_page(
                    &portal,
                    &req,
                    &step,
                    kind,
                    sent_to.as_deref(),
                    Some(msg),
                    status,
                )
            };
            let (wrong, missing) = ("error_code_wrong", "error_code_missing");
            not_verified(&portal, &step, e, again, wrong, missing)
        }
    }
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
    posted: Posted<AnswersForm>,
) -> Result<HttpResponse, WebError> {
    let Posted { step, form } = posted;
    offered_kind(&portal, MethodKind::Questions.as_str(), step.lang)?;
    let client = flow::client(&portal, &req);
    let answers = [&*form.answer_1, &*form.answer_2, &*form.answer_3];
    let asked = verify::asked_questions(&portal.services, &step).await;
    match verify::check_questions(&portal.services, &step, &asked, &answers, &client).await {
        Ok(v) => Ok(verified(&portal, v)),
        Err(e) => {
            let asked = &asked.questions;
            let again =
                |msg, status| questions_page(&portal, &req, &step, asked, Some(msg), status);
            let (wrong, missing) = ("error_answers_wrong", "error_answers_missing");
            not_verified(&portal, &step, e, again, wrong, missing)
        }
    }
}
