//! The overview page at `GET /enroll`, which every enrollment answer comes back to (with the
//! previous POST's problems, or the one-time message after a change). Kept apart from the
//! handlers so they only say *what* went wrong ([`Problems`]) and this module alone decides how
//! the page shows it: the enrolled and pending methods, the forms the policy allows, the
//! "enrollment required" and "still yours?" notices and the error summary linked to fields.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Policy;
use latchkey_store::{Enrollment, EnrollmentState};
use latchkey_types::MethodKind;
use latchkey_verify::QuestionsConfig;
use serde::Serialize;

use super::{Ctx, PAGE_KINDS, context};
use crate::flow;
use crate::i18n::Lang;
use crate::portal::Portal;
use crate::render::FieldError;
use crate::signin;
use latchkey_selfservice::QUESTION_IDS;
use latchkey_selfservice::flow::Unrecorded as _;

fn label(portal: &Portal, lang: Lang, kind: MethodKind) -> String {
    let key = match kind {
        MethodKind::Email => "enroll_method_email",
        MethodKind::Sms => "enroll_method_sms",
        MethodKind::Questions => "enroll_method_questions",
        MethodKind::Passkey => "enroll_method_passkey",
        _ => "enroll_method_totp",
    };
    portal.templates.catalogs().get(lang, key).to_string()
}

#[derive(Serialize)]
struct MethodRow {
    kind: &'static str,
    label: String,
    detail: String,
    confirmed: String,
    remove: String,
}

#[derive(Serialize)]
struct PendingRow {
    kind: &'static str,
    title: String,
    intro: String,
    resend: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct EnrollPage {
    csrf: String,
    signed_in_as: String,
    flash: Option<String>,
    required_notice: Option<String>,
    reconfirm: Option<String>,
    methods: Vec<MethodRow>,
    pending: Vec<PendingRow>,
    allow_email: bool,
    allow_sms: bool,
    allow_totp: bool,
    allow_questions: bool,
    question_options: Vec<QuestionOption>,
    question_fields: Vec<QuestionField>,
    questions_error: Option<String>,
    address: String,
    address_error: Option<String>,
    phone: String,
    phone_error: Option<String>,
    allow_passkey: bool,
    passkeys: Vec<super::passkey::PasskeyRow>,
    passkey_name: String,
    passkey_error: Option<String>,
    errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct QuestionOption {
    id: &'static str,
    text: String,
}

/// One question/answer pair of the enrollment form (`question_N` / `answer_N`).
#[derive(Serialize)]
struct QuestionField {
    n: usize,
    question_label: String,
    answer_label: String,
    selected: String,
}

/// What went wrong on the previous POST, to show on the page.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) address: Option<(String, String)>,
    pub(super) phone: Option<(String, String)>,
    /// The chosen question ids and the message (answers are never shown back).
    pub(super) questions: Option<(Vec<String>, String)>,
    pub(super) code: Option<(MethodKind, String)>,
    /// The name typed for a new passkey and the message.
    pub(super) passkey: Option<(String, String)>,
}

fn detail(e: &Enrollment) -> String {
    match e.method.as_str() {
        "email" => e.data["address"].as_str().unwrap_or_default().to_string(),
        "sms" => e.data["phone"].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

pub(super) fn date(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    t.format(&f).unwrap_or_default()
}

/// The active enrollments (of methods this page manages) whose confirmation is older than the
/// policy's re-confirmation period.
fn stale(policy: &Policy, active: &[&Enrollment], now: time::OffsetDateTime) -> bool {
    let days = policy.enrollment.reconfirm_after_days;
    days > 0
        && active.iter().any(|e| {
            e.confirmed_at
                .is_none_or(|c| now - c > time::Duration::days(i64::from(days)))
        })
}

/// The kind of an enrollment this page manages, if it is one.
fn page_kind(e: &Enrollment) -> Option<MethodKind> {
    e.method
        .parse::<MethodKind>()
        .ok()
        .filter(|k| PAGE_KINDS.contains(k))
}

/// The enrolled methods' rows.
fn method_rows(portal: &Portal, lang: Lang, active: &[&Enrollment]) -> Vec<MethodRow> {
    let catalogs = portal.templates.catalogs();
    active
        .iter()
        .filter_map(|e| {
            let kind = page_kind(e)?;
            let l = label(portal, lang, kind);
            let confirmed = e.confirmed_at.map(|c| {
                catalogs
                    .get(lang, "enroll_confirmed_on")
                    .replace("{date}", &date(c))
            });
            Some(MethodRow {
                kind: kind.as_str(),
                detail: detail(e),
                confirmed: confirmed.unwrap_or_default(),
                remove: catalogs.get(lang, "enroll_remove").replace("{method}", &l),
                label: l,
            })
        })
        .collect()
}

/// The pending methods' rows (each with its code form), and the code errors for the summary.
fn pending_rows(
    portal: &Portal,
    lang: Lang,
    all: &[Enrollment],
    problems: &Problems,
    errors: &mut Vec<FieldError>,
) -> Vec<PendingRow> {
    let catalogs = portal.templates.catalogs();
    all.iter()
        .filter(|e| e.state == EnrollmentState::Pending)
        .filter_map(|e| {
            let kind = page_kind(e)?;
            let l = label(portal, lang, kind);
            let (key, field) = match kind {
                MethodKind::Email => ("enroll_pending_email", "email-code"),
                MethodKind::Sms => ("enroll_pending_sms", "sms-code"),
                _ => ("enroll_pending_totp", "totp-code"),
            };
            let error = problems
                .code
                .as_ref()
                .filter(|(k, _)| *k == kind)
                .map(|(_, m)| m.clone());
            if let Some(message) = &error {
                errors.push(FieldError {
                    field,
                    message: message.clone(),
                });
            }
            Some(PendingRow {
                kind: kind.as_str(),
                title: catalogs
                    .get(lang, "enroll_pending_title")
                    .replace("{method}", &l),
                intro: catalogs.get(lang, key).replace("{destination}", &detail(e)),
                resend: kind != MethodKind::Totp,
                error,
            })
        })
        .collect()
}

/// The security-questions form: its question/answer pairs (the previous choice kept) and the
/// catalogue to choose from.
fn question_form(
    portal: &Portal,
    lang: Lang,
    problems: &Problems,
) -> (Vec<QuestionField>, Vec<QuestionOption>) {
    let catalogs = portal.templates.catalogs();
    let chosen = problems
        .questions
        .as_ref()
        .map(|(q, _)| q.clone())
        .unwrap_or_default();
    let fields = (1..=QuestionsConfig::default().enroll_count)
        .map(|n| QuestionField {
            n,
            question_label: catalogs
                .get(lang, "enroll_questions_question")
                .replace("{n}", &n.to_string()),
            answer_label: catalogs
                .get(lang, "enroll_questions_answer")
                .replace("{n}", &n.to_string()),
            // Three different questions to start from (not the first one three times).
            selected: chosen
                .get(n - 1)
                .cloned()
                .or_else(|| QUESTION_IDS.get(n - 1).map(|q| q.to_string()))
                .unwrap_or_default(),
        })
        .collect();
    let options = QUESTION_IDS
        .iter()
        .map(|id| QuestionOption {
            id,
            text: catalogs.get(lang, &format!("question_{id}")).to_string(),
        })
        .collect();
    (fields, options)
}

/// The "enrollment required" and "still yours?" notices, where they apply.
fn notices(
    portal: &Portal,
    ctx: &Ctx,
    active: &[&Enrollment],
    has_passkey: bool,
    now: time::OffsetDateTime,
) -> (Option<String>, Option<String>) {
    let (catalogs, lang, policy) = (portal.templates.catalogs(), ctx.lang, &ctx.policy);
    let mut enrolled: Vec<MethodKind> = active
        .iter()
        .filter_map(|e| page_kind(e))
        .filter(|k| policy.methods.contains(k))
        .collect();
    if has_passkey {
        enrolled.push(MethodKind::Passkey);
    }
    let alone = policy.passkey_satisfies == latchkey_policy::PasskeySatisfies::All;
    let required = (policy.enrollment.required
        && !latchkey_selfservice::flow::enough(policy.methods_required, alone, &enrolled))
    .then(|| {
        catalogs
            .get(lang, "enroll_required")
            .replace("{required}", &policy.methods_required.to_string())
            .replace("{count}", &enrolled.len().to_string())
    });
    let reconfirm = stale(policy, active, now).then(|| {
        catalogs.get(lang, "enroll_reconfirm_body").replace(
            "{days}",
            &policy.enrollment.reconfirm_after_days.to_string(),
        )
    });
    (required, reconfirm)
}

pub(super) async fn render(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    problems: Problems,
    flash: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let s = &portal.services;
    let lang = ctx.lang;
    let catalogs = portal.templates.catalogs();
    let all = match s.store.enrollments(&ctx.flow.subject).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot read enrollments");
            return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    let active: Vec<&Enrollment> = all
        .iter()
        .filter(|e| e.state == EnrollmentState::Active && page_kind(e).is_some())
        .collect();
    let mut errors = Vec::new();
    let pending = pending_rows(portal, lang, &all, &problems, &mut errors);
    let fields = [("address", &problems.address), ("phone", &problems.phone)];
    for (field, problem) in fields {
        if let Some((_, message)) = problem {
            errors.push(FieldError {
                field,
                message: message.clone(),
            });
        }
    }
    if let Some((_, message)) = &problems.questions {
        errors.push(FieldError {
            field: "question_1",
            message: message.clone(),
        });
    }
    if let Some((_, message)) = &problems.passkey {
        errors.push(FieldError {
            field: "passkey-name",
            message: message.clone(),
        });
    }
    let allow_passkey = super::passkey::allowed(portal, ctx);
    // Listed (and removable) even when the policy no longer offers passkeys: nobody should keep
    // a way in they cannot see.
    let keys = if portal.services.passkeys.is_some() {
        match s.store.passkeys(&ctx.flow.subject).await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "enroll: cannot read passkeys");
                return portal.error_page(
                    req,
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error_generic",
                );
            }
        }
    } else {
        Vec::new()
    };
    let (question_fields, question_options) = question_form(portal, lang, &problems);
    let now = s.clock.now();
    let (required_notice, reconfirm) = notices(portal, ctx, &active, !keys.is_empty(), now);
    let name = ctx.session.display_name.clone().map_or_else(
        || ctx.session.upn.clone(),
        |n| format!("{n} ({})", ctx.session.upn),
    );
    let (address, address_error) = problems.address.unzip();
    let (phone, phone_error) = problems.phone.unzip();
    let (passkey_name, passkey_error) = problems.passkey.unzip();
    let page = EnrollPage {
        csrf: s.csrf.token(&ctx.flow.id.to_string()),
        signed_in_as: catalogs
            .get(lang, "enroll_signed_in_as")
            .replace("{name}", &name),
        flash,
        required_notice,
        reconfirm,
        methods: method_rows(portal, lang, &active),
        pending,
        allow_email: ctx.allows(MethodKind::Email),
        allow_sms: ctx.allows(MethodKind::Sms),
        allow_totp: ctx.allows(MethodKind::Totp),
        allow_questions: ctx.policy.methods.contains(&MethodKind::Questions),
        question_options,
        question_fields,
        questions_error: problems.questions.map(|(_, m)| m),
        address: address.unwrap_or_default(),
        address_error,
        phone: phone.unwrap_or_default(),
        phone_error,
        allow_passkey,
        passkeys: super::passkey::rows(portal, ctx, &keys),
        passkey_name: passkey_name.unwrap_or_default(),
        passkey_error,
        errors,
    };
    let mut r = portal.render_in(req, lang, "enroll.html", &page);
    *r.status_mut() = status;
    r
}

pub(super) async fn index(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let Some(signin) = portal.part::<crate::signin::SignIn>() else {
        let lang = flow::lang(&req, None);
        return portal.error_page(&req, lang, StatusCode::NOT_FOUND, "enroll_not_configured");
    };
    if signin::load_session(&portal, &req).await.is_none() {
        return signin::begin(&portal, &req, &signin).await;
    }
    let ctx = match context(&portal, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let flash = match ctx.session.flash.clone() {
        Some((key, kind, notified)) => {
            let mut session = ctx.session.clone();
            session.flash = None;
            ctx.keep(&portal, &session).await.or_log();
            let method = kind
                .and_then(|k| k.parse::<MethodKind>().ok())
                .map(|k| label(&portal, ctx.lang, k))
                .unwrap_or_default();
            let catalogs = portal.templates.catalogs();
            let mut text = catalogs.get(ctx.lang, &key).replace("{method}", &method);
            if notified {
                text.push(' ');
                text.push_str(catalogs.get(ctx.lang, "enroll_flash_notified"));
            }
            Some(text)
        }
        None => None,
    };
    render(
        &portal,
        &req,
        &ctx,
        Problems::default(),
        flash,
        StatusCode::OK,
    )
    .await
}
