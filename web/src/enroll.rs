//! Enrollment at `/enroll`: a signed-in user (see [`crate::signin`]) registers, changes and
//! removes the methods the reset flow verifies with.
//!
//! - **Email / text message**: the new address or number is staged (pending) and a code with
//!   purpose [`CodePurpose::EnrollmentConfirmation`] goes to it, bound to this session, the user,
//!   the method and that destination. Only a confirmed code makes it active (replacing the old
//!   one); until then the previous one keeps working. Such a code never counts as a reset
//!   verification and a reset code never confirms an enrollment: different flow, different
//!   purpose in the keyed hash.
//! - **Authenticator app**: a new seed is staged (encrypted at rest) and shown once as a QR code
//!   (an `<img>` with an SVG `data:` URI: the SVG never becomes markup of the page) and as a
//!   manual key; a current code activates it and marks its time step used.
//! - **Security questions** (only when the policy lists `questions`): the user picks 3 questions
//!   from the fixed catalogue and answers them; the answers are checked (length, no two the same
//!   after normalisation), hashed with argon2id on the bounded pool and stored as the enrollment
//!   secret (a JSON array of PHC strings, encrypted at rest), the question ids in its data. Saving
//!   again replaces the set. They never count toward the methods a reset requires.
//! - **Remove**: removes the active and pending enrollment of a method.
//!
//! Every change is audited before the answer, re-checks the policy (`enroll` action, allowed
//! methods) with fresh group membership right before the write, and is announced with
//! [`Notice::MethodsChanged`] to every channel known *before* the change (active email and phone
//! enrollments and the directory mail). Policies may require enrollment (the page says so
//! prominently while methods are missing) and re-confirmation after N days (the page asks "still
//! yours?" and [`Store::reconfirm_enrollment`](latchkey_store::Store::reconfirm_enrollment)
//! stamps them). Every POST carries a CSRF token bound to the session's stable id.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use latchkey_notify::{ChangeKind, MethodChange, Notice, Notification, Recipient};
use latchkey_policy::{Action, Policy};
use latchkey_store::{
    Enrollment, EnrollmentState, Flow, FlowToken, FlowUpdate, NewEnrollment, Outcome,
};
use latchkey_types::{EmailAddress, MethodKind, Secret, Upn};
use latchkey_verify::{
    CodePurpose, Destination, HashError, QuestionError, QuestionId, QuestionsConfig, TotpSeed,
};
use serde::{Deserialize, Serialize};

use crate::app::Portal;
use crate::codes;
use crate::flow::{self, limits};
use crate::i18n::Lang;
use crate::identify::FieldError;
use crate::reset::{current_policy, known_channels};
use crate::services::QUESTION_IDS;
use crate::signin::{self, Session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(signin::configure)
        .route("/enroll", web::get().to(index))
        .route("/enroll/reconfirm", web::post().to(reconfirm))
        .route("/enroll/{kind}", web::post().to(add))
        .route("/enroll/{kind}/confirm", web::post().to(confirm))
        .route("/enroll/{kind}/resend", web::post().to(resend))
        .route("/enroll/{kind}/remove", web::post().to(remove));
}

/// Methods that can be enrolled here with a code or seed to confirm, in page order.
const KINDS: [MethodKind; 3] = [MethodKind::Email, MethodKind::Sms, MethodKind::Totp];
/// Methods the page lists and can remove: [`KINDS`] and security questions.
const PAGE_KINDS: [MethodKind; 4] = [
    MethodKind::Email,
    MethodKind::Sms,
    MethodKind::Totp,
    MethodKind::Questions,
];

/// Everything a request inside a signed-in session needs.
struct Ctx {
    token: FlowToken,
    flow: Flow,
    session: Session,
    policy: Policy,
    lang: Lang,
}

impl Ctx {
    fn allows(&self, kind: MethodKind) -> bool {
        self.policy.methods.contains(&kind) && KINDS.contains(&kind)
    }

    /// Audits an enrollment event of this session's user.
    async fn audit(
        &self,
        portal: &Portal,
        event_type: &str,
        method: Option<MethodKind>,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Result<(), latchkey_store::StoreError> {
        let (correlation, subject) = (&self.session.correlation_id, Some(self.flow.subject));
        flow::audit(
            portal,
            correlation,
            subject,
            event_type,
            method,
            outcome,
            reason,
        )
        .await
    }

    /// The service-unavailable page in this session's language.
    fn unavailable(&self, portal: &Portal, req: &HttpRequest) -> HttpResponse {
        portal.error_page(
            req,
            self.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        )
    }
}

fn label(portal: &Portal, lang: Lang, kind: MethodKind) -> String {
    let key = match kind {
        MethodKind::Email => "enroll_method_email",
        MethodKind::Sms => "enroll_method_sms",
        MethodKind::Questions => "enroll_method_questions",
        _ => "enroll_method_totp",
    };
    portal.templates.catalogs().get(lang, key).to_string()
}

/// A 303 to a local path.
fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", path.to_string()))
        .finish()
}

/// "Not available for your account": no policy, or a policy without `enroll`. Ends the session.
async fn unavailable(
    portal: &Portal,
    req: &HttpRequest,
    token: &FlowToken,
    flow: &Flow,
    session: &Session,
) -> HttpResponse {
    let lang = session.lang(req);
    let _ = flow::audit(
        portal,
        &session.correlation_id,
        Some(flow.subject),
        "enroll.denied",
        None,
        Outcome::Denied,
        Some("no policy allows enrollment"),
    )
    .await;
    let _ = portal.services.store.end_flow(token).await;
    let catalogs = portal.templates.catalogs();
    let mut r = portal.render_in(
        req,
        lang,
        "result.html",
        &serde_json::json!({
            "title": catalogs.get(lang, "enroll_unavailable_title"),
            "paragraphs": [catalogs.get(lang, "enroll_unavailable_body")],
        }),
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    let _ = r.add_cookie(&signin::clear_session_cookie(portal));
    r
}

/// Loads the session and the policy that applies now. `Err` is the answer to send.
async fn context(portal: &Portal, req: &HttpRequest) -> Result<Ctx, HttpResponse> {
    let Some((token, flow, session)) = signin::load_session(portal, req).await else {
        // Signed out (or expired): start over at the page, which signs in again.
        let mut r = see_other("/enroll");
        let _ = r.add_cookie(&signin::clear_session_cookie(portal));
        return Err(r);
    };
    let lang = session.lang(req);
    match current_policy(portal, &flow.subject, Action::Enroll).await {
        Some(policy) => Ok(Ctx {
            token,
            flow,
            session,
            policy,
            lang,
        }),
        None => Err(unavailable(portal, req, &token, &flow, &session).await),
    }
}

/// [`context`] for a POST: also checks the CSRF token (and Origin) first.
async fn post_context(portal: &Portal, req: &HttpRequest, csrf: &str) -> Result<Ctx, HttpResponse> {
    let Some((_, flow, session)) = signin::load_session(portal, req).await else {
        return context(portal, req).await;
    };
    if !portal.services.csrf.check(req, &flow.id.to_string(), csrf) {
        let lang = session.lang(req);
        return Err(portal.error_page(req, lang, StatusCode::FORBIDDEN, "error_csrf"));
    }
    context(portal, req).await
}

fn parse_kind(raw: &str) -> Option<MethodKind> {
    raw.parse::<MethodKind>().ok().filter(|k| KINDS.contains(k))
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
struct Problems {
    address: Option<(String, String)>,
    phone: Option<(String, String)>,
    /// The chosen question ids and the message (answers are never shown back).
    questions: Option<(Vec<String>, String)>,
    code: Option<(MethodKind, String)>,
}

fn detail(e: &Enrollment) -> String {
    match e.method.as_str() {
        "email" => e.data["address"].as_str().unwrap_or_default().to_string(),
        "sms" => e.data["phone"].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

fn date(t: time::OffsetDateTime) -> String {
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

async fn render(
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
    let of_kind = |e: &&Enrollment| {
        e.method
            .parse::<MethodKind>()
            .ok()
            .and_then(|k| PAGE_KINDS.contains(&k).then_some(k))
    };
    let active: Vec<&Enrollment> = all
        .iter()
        .filter(|e| e.state == EnrollmentState::Active && of_kind(e).is_some())
        .collect();
    let methods = active
        .iter()
        .filter_map(|e| {
            let kind = of_kind(e)?;
            let l = label(portal, lang, kind);
            Some(MethodRow {
                kind: kind.as_str(),
                detail: detail(e),
                confirmed: e
                    .confirmed_at
                    .map(|c| {
                        catalogs
                            .get(lang, "enroll_confirmed_on")
                            .replace("{date}", &date(c))
                    })
                    .unwrap_or_default(),
                remove: catalogs.get(lang, "enroll_remove").replace("{method}", &l),
                label: l,
            })
        })
        .collect();
    let mut errors = Vec::new();
    let pending = all
        .iter()
        .filter(|e| e.state == EnrollmentState::Pending)
        .filter_map(|e| {
            let kind = of_kind(&e)?;
            let l = label(portal, lang, kind);
            let key = match kind {
                MethodKind::Email => "enroll_pending_email",
                MethodKind::Sms => "enroll_pending_sms",
                _ => "enroll_pending_totp",
            };
            let error = problems
                .code
                .as_ref()
                .filter(|(k, _)| *k == kind)
                .map(|(_, m)| m.clone());
            if let Some(m) = &error {
                errors.push(FieldError {
                    field: match kind {
                        MethodKind::Email => "email-code",
                        MethodKind::Sms => "sms-code",
                        _ => "totp-code",
                    },
                    message: m.clone(),
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
        .collect();
    if let Some((_, m)) = &problems.address {
        errors.push(FieldError {
            field: "address",
            message: m.clone(),
        });
    }
    if let Some((_, m)) = &problems.phone {
        errors.push(FieldError {
            field: "phone",
            message: m.clone(),
        });
    }
    if let Some((_, m)) = &problems.questions {
        errors.push(FieldError {
            field: "question_1",
            message: m.clone(),
        });
    }
    let chosen = problems
        .questions
        .as_ref()
        .map(|(q, _)| q.clone())
        .unwrap_or_default();
    let question_fields = (1..=QuestionsConfig::default().enroll_count)
        .map(|n| QuestionField {
            n,
            question_label: catalogs
                .get(lang, "enroll_questions_question")
                .replace("{n}", &n.to_string()),
            answer_label: catalogs
                .get(lang, "enroll_questions_answer")
                .replace("{n}", &n.to_string()),
            selected: chosen.get(n - 1).cloned().unwrap_or_default(),
        })
        .collect();
    let question_options = QUESTION_IDS
        .iter()
        .map(|id| QuestionOption {
            id,
            text: catalogs.get(lang, &format!("question_{id}")).to_string(),
        })
        .collect();
    let enrolled: Vec<MethodKind> = active
        .iter()
        .filter_map(of_kind)
        .filter(|k| ctx.policy.methods.contains(k))
        .collect();
    let required_notice = (ctx.policy.enrollment.required
        && !latchkey_verify::requirement_met(ctx.policy.methods_required, &enrolled))
    .then(|| {
        catalogs
            .get(lang, "enroll_required")
            .replace("{required}", &ctx.policy.methods_required.to_string())
            .replace("{count}", &enrolled.len().to_string())
    });
    let reconfirm = stale(&ctx.policy, &active, s.clock.now()).then(|| {
        catalogs.get(lang, "enroll_reconfirm_body").replace(
            "{days}",
            &ctx.policy.enrollment.reconfirm_after_days.to_string(),
        )
    });
    let name = ctx.session.display_name.clone().map_or_else(
        || ctx.session.upn.clone(),
        |n| format!("{n} ({})", ctx.session.upn),
    );
    let page = EnrollPage {
        csrf: s.csrf.token(&ctx.flow.id.to_string()),
        signed_in_as: catalogs
            .get(lang, "enroll_signed_in_as")
            .replace("{name}", &name),
        flash,
        required_notice,
        reconfirm,
        methods,
        pending,
        allow_email: ctx.allows(MethodKind::Email),
        allow_sms: ctx.allows(MethodKind::Sms),
        allow_totp: ctx.allows(MethodKind::Totp),
        allow_questions: ctx.policy.methods.contains(&MethodKind::Questions),
        question_options,
        question_fields,
        questions_error: problems.questions.map(|(_, m)| m),
        address: problems
            .address
            .as_ref()
            .map(|(v, _)| v.clone())
            .unwrap_or_default(),
        address_error: problems.address.map(|(_, m)| m),
        phone: problems
            .phone
            .as_ref()
            .map(|(v, _)| v.clone())
            .unwrap_or_default(),
        phone_error: problems.phone.map(|(_, m)| m),
        errors,
    };
    let mut r = portal.render_in(req, lang, "enroll.html", &page);
    *r.status_mut() = status;
    r
}

/// Stores a one-time message for the next page.
/// `notified`: a change notice went to at least one earlier channel (the page says so).
async fn set_flash(
    portal: &Portal,
    ctx: &Ctx,
    key: &str,
    kind: Option<MethodKind>,
    notified: bool,
) {
    let mut session = ctx.session.clone();
    session.flash = Some((
        key.to_string(),
        kind.map(|k| k.as_str().to_string()),
        notified,
    ));
    let update = FlowUpdate {
        step: None,
        data: serde_json::to_value(&session).ok(),
    };
    let now = portal.services.clock.now();
    if let Err(e) = portal
        .services
        .store
        .update_flow(&ctx.token, update, now)
        .await
    {
        tracing::warn!(error = %e, "enroll: cannot store a message");
    }
}

async fn index(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let Some(signin) = portal.signin.clone() else {
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
            let update = FlowUpdate {
                step: None,
                data: serde_json::to_value(&session).ok(),
            };
            let _ = portal
                .services
                .store
                .update_flow(&ctx.token, update, portal.services.clock.now())
                .await;
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

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    question_1: String,
    #[serde(default)]
    question_2: String,
    #[serde(default)]
    question_3: String,
    #[serde(default)]
    answer_1: String,
    #[serde(default)]
    answer_2: String,
    #[serde(default)]
    answer_3: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

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
    if let Err(wait) = flow::hit(
        portal,
        &format!("send:{kind}"),
        &subject.to_string(),
        limits::SENDS_PER_ACCOUNT,
    )
    .await
    {
        let _ = ctx
            .audit(
                portal,
                "enroll.code.send",
                Some(kind),
                Outcome::Denied,
                Some("throttled"),
            )
            .await;
        return Err(SendError::Throttled(flow::throttled_message(
            portal, ctx.lang, wait,
        )));
    }
    let lang = ctx.session.preferred_language.clone();
    let purpose = CodePurpose::EnrollmentConfirmation;
    if let Err(e) = codes::issue(
        portal,
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

/// `POST /enroll/{kind}`: add or change a method (email and phone: stage and send a code;
/// authenticator: stage a new seed and show it).
async fn add(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<AddForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if path.as_str() == MethodKind::Questions.as_str()
        && ctx.policy.methods.contains(&MethodKind::Questions)
    {
        return add_questions(&portal, &req, &ctx, &form).await;
    }
    let Some(kind) = parse_kind(&path).filter(|k| ctx.allows(*k)) else {
        return portal.error_page(&req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    if kind == MethodKind::Totp {
        return begin_totp(&portal, &req, &ctx).await;
    }
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
        return render(&portal, &req, &ctx, p, None, StatusCode::BAD_REQUEST).await;
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
        return ctx.unavailable(&portal, &req);
    }
    match send_code(&portal, &ctx, kind, &dest).await {
        Ok(()) => see_other(&format!("/enroll#{kind}-code")),
        Err(SendError::Throttled(message)) => {
            render(
                &portal,
                &req,
                &ctx,
                problem(message),
                None,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(SendError::Failed) => ctx.unavailable(&portal, &req),
    }
}

/// `POST /enroll/questions`: checks, hashes (argon2id, bounded pool) and stores a full set of
/// answers, replacing any earlier set; audited, announced to the earlier channels.
async fn add_questions(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    form: &AddForm,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let s = &portal.services;
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
            let key = match e {
                QuestionError::TooShort(_) | QuestionError::WrongCount { .. } => {
                    "enroll_questions_error_short"
                }
                QuestionError::TooLong(_) => "enroll_questions_error_long",
                QuestionError::DuplicateAnswer(..) => "enroll_questions_error_duplicate_answer",
                QuestionError::DuplicateQuestion(_) => "enroll_questions_error_duplicate_question",
                QuestionError::Hash(HashError::Busy) => {
                    let mut r = portal.error_page(
                        req,
                        ctx.lang,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "error_busy",
                    );
                    r.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from_static("5"),
                    );
                    return r;
                }
                _ => {
                    tracing::error!(error = %e, "enroll: security questions");
                    return ctx.unavailable(portal, req);
                }
            };
            return with_error(key, StatusCode::BAD_REQUEST).await;
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
    let had_active = s
        .store
        .enrollment(&subject, kind.as_str(), EnrollmentState::Active)
        .await
        .ok()
        .flatten()
        .is_some();
    // Policy again, right before the write (fresh membership; fails closed).
    if current_policy(portal, &subject, Action::Enroll)
        .await
        .is_none_or(|p| !p.methods.contains(&kind))
    {
        return unavailable(portal, req, &ctx.token, &ctx.flow, &ctx.session).await;
    }
    let now = s.clock.now();
    let new = NewEnrollment {
        subject,
        method: kind.as_str().into(),
        data,
        secret: Some(Secret::new(secret)),
    };
    let stored = match s.store.stage_enrollment(new, now).await {
        Ok(_) => {
            s.store
                .activate_enrollment(&subject, kind.as_str(), now)
                .await
        }
        Err(e) => Err(e),
    };
    if !matches!(stored, Ok(true)) {
        tracing::error!("enroll: cannot store security questions");
        return ctx.unavailable(portal, req);
    }
    let (change, reason, key) = if had_active {
        (ChangeKind::Changed, "changed", "enroll_flash_changed")
    } else {
        (ChangeKind::Added, "added", "enroll_flash_added")
    };
    if ctx
        .audit(
            portal,
            "enroll.activate",
            Some(kind),
            Outcome::Success,
            Some(reason),
        )
        .await
        .is_err()
    {
        return ctx.unavailable(portal, req);
    }
    let notified = !channels.is_empty();
    announce(portal, ctx, channels, kind, change).await;
    set_flash(portal, ctx, key, Some(kind), notified).await;
    see_other("/enroll")
}

#[derive(Serialize)]
struct TotpPage {
    csrf: String,
    qr: String,
    manual_key: String,
}

/// Stages a new authenticator seed and shows it once (QR code and manual key).
async fn begin_totp(portal: &Portal, req: &HttpRequest, ctx: &Ctx) -> HttpResponse {
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

/// `POST /enroll/{kind}/resend`: a new code for the pending address or number.
async fn resend(
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

/// Tells every channel known before a change about it (queued).
async fn announce(
    portal: &Portal,
    ctx: &Ctx,
    channels: Vec<Recipient>,
    kind: MethodKind,
    change: ChangeKind,
) {
    let now = portal.services.clock.now();
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::MethodsChanged {
                at: now,
                changes: vec![MethodChange {
                    method: kind.as_str().to_string(),
                    change,
                }],
            },
            lang: ctx.session.preferred_language.clone(),
            correlation_id: ctx.session.correlation_id.clone(),
            subject: Some(ctx.flow.subject),
        };
        if let Err(e) = portal.services.notifier.enqueue(n) {
            tracing::error!(error = %e, "enroll: cannot queue a change notice");
        }
    }
}

/// Every channel the user had before a change: active email and phone, and the directory mail.
async fn channels_before(portal: &Portal, ctx: &Ctx) -> Vec<Recipient> {
    let mail = ctx
        .session
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    known_channels(portal, &ctx.flow.subject, mail.as_ref()).await
}

/// `POST /enroll/{kind}/confirm`: the code that makes a pending method active.
async fn confirm(
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
    if let Err(message) = flow::charge_attempt(&portal, &req, &failures, &account, ctx.lang).await {
        let _ = ctx
            .audit(
                &portal,
                "enroll.confirm",
                Some(kind),
                Outcome::Denied,
                Some("throttled"),
            )
            .await;
        return with_error(Err(message), StatusCode::TOO_MANY_REQUESTS).await;
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
                codes::check(&portal, &ctx.flow, kind, purpose, Some(&expected), &typed).await
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
    let had_active = s
        .store
        .enrollment(&subject, kind.as_str(), EnrollmentState::Active)
        .await
        .ok()
        .flatten()
        .is_some();
    // Policy again, right before the write (fresh membership; fails closed).
    if current_policy(&portal, &subject, Action::Enroll)
        .await
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
        let _ = s
            .store
            .mark_used(&subject, kind.as_str(), Some(step), now)
            .await;
    }
    flow::reset_throttle(&portal, &failures, &subject.to_string()).await;
    let change = if had_active {
        ChangeKind::Changed
    } else {
        ChangeKind::Added
    };
    let reason = if had_active { "changed" } else { "added" };
    if ctx
        .audit(
            &portal,
            "enroll.activate",
            Some(kind),
            Outcome::Success,
            Some(reason),
        )
        .await
        .is_err()
    {
        return ctx.unavailable(&portal, &req);
    }
    let notified = !channels.is_empty();
    announce(&portal, &ctx, channels, kind, change).await;
    let key = if had_active {
        "enroll_flash_changed"
    } else {
        "enroll_flash_added"
    };
    set_flash(&portal, &ctx, key, Some(kind), notified).await;
    see_other("/enroll")
}

/// `POST /enroll/{kind}/remove`: removes the method (active and pending).
async fn remove(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(kind) = path
        .parse::<MethodKind>()
        .ok()
        .filter(|k| PAGE_KINDS.contains(k))
    else {
        return portal.error_page(&req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    let s = &portal.services;
    let subject = ctx.flow.subject;
    let had_active = s
        .store
        .enrollment(&subject, kind.as_str(), EnrollmentState::Active)
        .await
        .ok()
        .flatten()
        .is_some();
    let channels = channels_before(&portal, &ctx).await;
    let removed = match s.store.remove_enrollment(&subject, kind.as_str()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot remove");
            return ctx.unavailable(&portal, &req);
        }
    };
    if removed == 0 {
        return see_other("/enroll");
    }
    let reason = if had_active { "active" } else { "pending only" };
    if ctx
        .audit(
            &portal,
            "enroll.remove",
            Some(kind),
            Outcome::Success,
            Some(reason),
        )
        .await
        .is_err()
    {
        return ctx.unavailable(&portal, &req);
    }
    if had_active {
        let notified = !channels.is_empty();
        announce(&portal, &ctx, channels, kind, ChangeKind::Removed).await;
        set_flash(&portal, &ctx, "enroll_flash_removed", Some(kind), notified).await;
    }
    see_other("/enroll")
}

/// `POST /enroll/reconfirm`: "yes, these are still mine" for every active method.
async fn reconfirm(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let s = &portal.services;
    let subject = ctx.flow.subject;
    let now = s.clock.now();
    let active: Vec<String> = match s.store.enrollments(&subject).await {
        Ok(list) => list
            .into_iter()
            .filter(|e| e.state == EnrollmentState::Active)
            .map(|e| e.method)
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot read enrollments");
            return ctx.unavailable(&portal, &req);
        }
    };
    for method in &active {
        if let Err(e) = s.store.reconfirm_enrollment(&subject, method, now).await {
            tracing::error!(error = %e, "enroll: cannot re-confirm");
            return ctx.unavailable(&portal, &req);
        }
    }
    if ctx
        .audit(
            &portal,
            "enroll.reconfirm",
            None,
            Outcome::Success,
            Some(&active.join(",")),
        )
        .await
        .is_err()
    {
        return ctx.unavailable(&portal, &req);
    }
    set_flash(&portal, &ctx, "enroll_flash_reconfirmed", None, false).await;
    see_other("/enroll")
}
