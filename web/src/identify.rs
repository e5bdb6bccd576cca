//! Step 1 of self-service: the user says who they are. Whatever they type, the answer is the same
//! redirect after the same time (docs/security.md, principle 1); the decision whether this account may
//! use self-service is made here, recorded in the server-side flow, and revealed only after a
//! verification succeeds.

use std::collections::HashSet;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use latchkey_policy::{Action, Subject, evaluate};
use latchkey_store::{EnrollmentState, FlowLifetime, NewFlow, Outcome};
use latchkey_types::{MethodKind, ObjectId, Upn};
use serde::{Deserialize, Serialize};

use crate::app::Portal;
use crate::flow::{self, FlowData, PURPOSE, STEP_VERIFY, limits};
use crate::guard::with_deadline;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/start", web::post().to(start));
}

/// Name of the pre-flow cookie that anchors the identify form's CSRF token.
fn pre_cookie_name(portal: &Portal) -> String {
    portal.services.cookies.name("latchkey-pre")
}

#[derive(Serialize, Default)]
struct IndexPage {
    enabled: bool,
    csrf: String,
    login: String,
    login_error: Option<String>,
    errors: Vec<FieldError>,
}

/// An entry of a page's error summary, linked to its field.
#[derive(Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

async fn index(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let (pre, fresh) = match req.cookie(&pre_cookie_name(&portal)) {
        Some(c) if c.value().len() >= 22 => (c.value().to_string(), false),
        _ => match random_id() {
            Ok(id) => (id, true),
            Err(e) => {
                tracing::error!(error = %e, "no randomness for the form's anchor");
                let lang = flow::lang(&req, None);
                return portal.error_page(
                    &req,
                    lang,
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "error_generic",
                );
            }
        },
    };
    let page = IndexPage {
        enabled: true,
        csrf: portal.services.csrf.token(&pre),
        ..IndexPage::default()
    };
    let lang = flow::lang(&req, None);
    let mut resp = portal.render_in(&req, lang, "index.html", &page);
    if fresh {
        resp = crate::app::with_cookie(resp, &pre_cookie(&portal, pre));
    }
    resp
}

fn pre_cookie(portal: &Portal, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(pre_cookie_name(portal), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(portal.services.cookies.secure);
    c.set_same_site(SameSite::Strict);
    c
}

/// The anchor of the identify form's CSRF token (256 random bits); never a predictable value.
fn random_id() -> Result<String, latchkey_types::random::NoRandomness> {
    let b = latchkey_types::random::bytes::<32>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    login: String,
}

async fn start(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<StartForm>,
) -> HttpResponse {
    let lang = flow::lang(&req, None);
    let pre = req
        .cookie(&pre_cookie_name(&portal))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if pre.is_empty() || !portal.services.csrf.check(&req, &pre, &form.csrf) {
        return portal.error_page(
            &req,
            lang,
            actix_web::http::StatusCode::FORBIDDEN,
            "error_csrf",
        );
    }
    let client = portal
        .services
        .proxies
        .client_ip(&req)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let retry = |message: String, status| {
        let page = IndexPage {
            enabled: true,
            csrf: portal.services.csrf.token(&pre),
            login: form.login.chars().take(320).collect(),
            login_error: Some(message.clone()),
            errors: vec![FieldError {
                field: "login",
                message,
            }],
        };
        let mut r = portal.render_in(&req, lang, "index.html", &page);
        *r.status_mut() = status;
        r
    };
    if let Err(wait) = flow::hit(&portal, "start:client", &client, limits::STARTS_PER_CLIENT).await
    {
        return retry(wait.message(&portal, lang), wait.status());
    }
    let login = form.login.trim();
    if login.parse::<Upn>().is_err() {
        let message = portal
            .templates
            .catalogs()
            .get(lang, "error_login_invalid")
            .to_string();
        return retry(message, actix_web::http::StatusCode::BAD_REQUEST);
    }
    let login = login.to_ascii_lowercase();
    let planned = with_deadline(portal.services.deadline, plan(&portal, &login)).await;
    let (data, subject, reason) = match planned {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "identify: cannot plan the flow");
            return portal.error_page(
                &req,
                lang,
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let now = portal.services.clock.now();
    let correlation_id = data.correlation_id.clone();
    let decoy = data.decoy;
    let new = NewFlow {
        subject,
        purpose: PURPOSE.into(),
        step: STEP_VERIFY,
        data: serde_json::to_value(&data).unwrap_or_default(),
        lifetime: FlowLifetime::default(),
    };
    let (token, _) = match portal.services.store.create_flow(new, now).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "identify: cannot create flow");
            return portal.error_page(
                &req,
                lang,
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let outcome = if decoy {
        Outcome::Denied
    } else {
        Outcome::Success
    };
    let audit_subject = (!decoy).then_some(subject);
    if flow::audit(
        &portal,
        &correlation_id,
        audit_subject,
        "flow.start",
        None,
        outcome,
        reason.as_deref(),
    )
    .await
    .is_err()
    {
        return portal.error_page(
            &req,
            lang,
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    let mut resp = flow::see_other("/verify");
    resp = crate::app::with_cookie(resp, &flow::flow_cookie(&portal, &token));
    resp
}

/// Why an account could not be planned: a fault, never a decoy (a decoy would tell the user
/// "we sent a code" and send nothing).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    #[error("directory: {0}")]
    Directory(#[from] latchkey_graph::GraphError),
    #[error("store: {0}")]
    Store(#[from] latchkey_store::StoreError),
    #[error("{0}")]
    NoRandomness(#[from] latchkey_types::random::NoRandomness),
}

/// Resolves the account and decides, returning the flow data, its subject and (for the audit
/// trail only) why a flow is a decoy. Every branch does its Graph calls before deciding, so the
/// deadline hides the rest.
pub(crate) async fn plan(
    portal: &Portal,
    login: &str,
) -> Result<(FlowData, ObjectId, Option<String>), PlanError> {
    let s = &portal.services;
    let correlation_id = ObjectId::random()?.to_string();
    // A decoy's subject is random: it matches no user, and each decoy flow has its own.
    let decoy_subject = ObjectId::random()?;
    let decoy = |reason: String| {
        let subject = decoy_subject;
        let data = FlowData {
            decoy: true,
            account: login.to_string(),
            throttle_key: format!("login:{login}"),
            required: 2,
            // Sealed like a real flow's values: the same work whoever typed the account.
            attributes_sealed: crate::attribute::seal(s, &subject, &Default::default()),
            correlation_id: correlation_id.clone(),
            ..FlowData::default()
        };
        Ok((data, subject, Some(reason)))
    };
    let Some(user) = s.directory.find_user(login).await? else {
        return decoy("no single account matches".into());
    };
    if user.account_enabled == Some(false) {
        return decoy(format!("account {} is disabled", user.id));
    }
    let memberships = s.directory.memberships(&user.id).await?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let set = s.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged: !memberships.roles.is_empty(),
        },
    );
    let Some(policy) = evaluation.policy else {
        return decoy(format!("account {}: {}", user.id, evaluation.explain()));
    };
    if !policy.allows(Action::Reset)
        && !policy.allows(Action::Unlock)
        && !policy.allows(Action::TemporaryAccessPass)
    {
        return decoy(format!(
            "account {}: policy '{}' allows no self-service action",
            user.id, policy.name
        ));
    }
    // A store error fails closed with an honest 503: treating it as "nothing enrolled" would
    // give a decoy flow that says "we sent a code" and sends nothing.
    let enrolled: Vec<MethodKind> = s
        .store
        .enrollments(&user.id)
        .await?
        .iter()
        .filter(|e| e.state == EnrollmentState::Active)
        .filter_map(|e| e.method.parse::<MethodKind>().ok())
        .filter(|m| policy.methods.contains(m))
        .collect();
    if !latchkey_verify::requirement_met(policy.methods_required, &enrolled) {
        return decoy(format!(
            "account {}: not enough enrolled methods for policy '{}'",
            user.id, policy.name
        ));
    }
    let data = FlowData {
        decoy: false,
        account: login.to_string(),
        throttle_key: user.id.to_string(),
        policy: Some(policy.name.clone()),
        required: policy.methods_required,
        methods: policy.methods.clone(),
        display_name: user.display_name.clone(),
        names: [
            user.display_name.clone(),
            user.given_name.clone(),
            user.surname.clone(),
            user.user_principal_name
                .as_str()
                .split('@')
                .next()
                .map(str::to_string),
            user.on_premises_sam_account_name.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        mail: user.mail.as_ref().map(ToString::to_string),
        attributes_sealed: crate::attribute::seal(
            s,
            &user.id,
            &if policy.methods.contains(&MethodKind::Attribute) {
                crate::attribute::directory_values(&user)
            } else {
                Default::default()
            },
        ),
        preferred_language: user.preferred_language.clone(),
        synced: user.on_premises_sync_enabled == Some(true),
        password_changed_at: user.last_password_change_date_time,
        correlation_id,
    };
    Ok((data, user.id, Some(evaluation.explain())))
}
