//! The audit trail in the admin console: `GET /admin/audit` searches (user, actor, event type,
//! outcome, correlation id, time range), newest first, 50 a page with keyset paging on the event
//! id (`before` / `after`), every event with its correlation id; `GET /admin/audit/export.csv`
//! exports every event of the same search as CSV, streamed page by page.
//!
//! The search is a GET form, so a search is a bookmarkable URL. Bad input gets the form back with
//! an error summary linked to the fields (400) and no results. A user or actor can be given as a
//! sign-in name (resolved to the object id through Graph) or an object id; an actor can also be
//! one of the portal's own actors (`self`, `system`, `anonymous`). Exports are audited
//! (`admin.audit.export`) before the first byte is sent.

mod query;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{AuditQuery, AuditRecord, Outcome};
use query::FieldErrors;
pub use query::{SearchForm, to_query};
use serde::Serialize;

use super::reports::csv;
use crate::console::ConsoleUser;
use crate::extract::{AdminConsole, Member};

use crate::portal::Portal;
use crate::render::FieldError;

/// Events per page.
pub const PAGE: u32 = 50;
/// Events per store query while exporting.
const EXPORT_BATCH: u32 = 1000;

/// Event types the form suggests (free text is accepted too).
pub const KNOWN_TYPES: &[&str] = &[
    "flow.start",
    "code.send",
    "verify",
    "verify.throttled",
    "reset",
    "unlock",
    "temporary_access_pass",
    "sessions.revoke",
    "enroll.signin",
    "enroll.signout",
    "enroll.stage",
    "enroll.code.send",
    "enroll.activate",
    "enroll.confirm",
    "enroll.reconfirm",
    "enroll.remove",
    "enroll.denied",
    "notify.code",
    "notify.changed",
    "policy.reload",
    "admin.signin",
    "admin.signout",
    "admin.denied",
    "admin.policy.save",
    "admin.policy.toggle",
    "admin.policy.delete",
    "admin.connection.test",
    "admin.connection.debug",
    "admin.delegated.setup",
    "admin.gateway.register",
    "admin.gateway.revoke",
    "admin.directory.sync",
    "admin.report.export",
    "admin.audit.export",
    "helpdesk.signin",
    "helpdesk.signout",
    "helpdesk.denied",
    "helpdesk.lookup",
    "helpdesk.link.issued",
    "helpdesk.link.used",
    "helpdesk.caller.code_sent",
    "helpdesk.caller.verify",
    "helpdesk.caller.throttled",
    "helpdesk.tap",
    "helpdesk.method.delete",
    "helpdesk.reenroll",
    "helpdesk.approval.requested",
    "helpdesk.approval.granted",
    "helpdesk.approval.refused",
    "gateway.registered",
    "gateway.revoked",
    "gateway.auth",
    "gateway.job.claimed",
    "gateway.job.result",
];

/// The audit pages' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/audit", web::get().to(search))
        .route("/admin/audit/export.csv", web::get().to(export));
}

/// One event as the page shows it.
#[derive(Serialize)]
struct Row {
    id: i64,
    at: String,
    event_type: String,
    outcome: &'static str,
    actor: String,
    /// The console user's sign-in name, when the event recorded it (`details.actor_upn`).
    actor_upn: Option<String>,
    subject: Option<String>,
    method: Option<String>,
    reason: Option<String>,
    correlation_id: String,
    /// This search narrowed to the event's correlation id.
    correlation_link: String,
    details: Option<String>,
}

/// `2026-11-22 03:04:05` (UTC).
pub fn utc(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02}",
        super::reports::iso_date(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn details_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Object(m) if m.is_empty() => None,
        other => Some(other.to_string()),
    }
}

fn row(r: &AuditRecord) -> Row {
    let e = &r.event;
    Row {
        id: r.id.0,
        at: utc(e.at),
        event_type: e.event_type.clone(),
        outcome: e.outcome.as_str(),
        actor: e.actor.clone(),
        actor_upn: e
            .details
            .get("actor_upn")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        subject: e.subject.map(|s| s.to_string()),
        method: e.method.clone(),
        reason: e.reason.clone(),
        correlation_id: e.correlation_id.clone(),
        correlation_link: format!(
            "/admin/audit?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("correlation", &e.correlation_id)
                .finish()
        ),
        details: details_text(&e.details),
    }
}

/// The form's errors for the summary, and the first message of each field.
fn field_errors(
    portal: &Portal,
    user: &ConsoleUser,
    errors: FieldErrors,
) -> (Vec<FieldError>, serde_json::Map<String, serde_json::Value>) {
    let catalogs = portal.templates.catalogs();
    let errors: Vec<FieldError> = errors
        .into_iter()
        .map(|(field, key)| FieldError {
            field,
            message: catalogs.get(user.lang, key).to_string(),
        })
        .collect();
    let mut by_field = serde_json::Map::new();
    for e in &errors {
        by_field
            .entry(e.field)
            .or_insert_with(|| e.message.clone().into());
    }
    (errors, by_field)
}

/// Trims the extra event that tells whether a further page exists (`events` holds one more than
/// a page) and returns the links to the older and newer pages.
fn page_links(
    query: &AuditQuery,
    events: &mut Vec<AuditRecord>,
    base: &str,
) -> (Option<String>, Option<String>) {
    let paging_back = query.after.is_some() && query.before.is_none();
    let more = events.len() > PAGE as usize;
    if more {
        if paging_back {
            events.remove(0);
        } else {
            events.pop();
        }
    }
    let (has_older, has_newer) = if paging_back {
        (true, more)
    } else {
        (more, query.before.is_some())
    };
    let link = |k: &str, id: i64| {
        if base.is_empty() {
            format!("/admin/audit?{k}={id}")
        } else {
            format!("/admin/audit?{base}&{k}={id}")
        }
    };
    let older = has_older
        .then(|| events.last().map(|e| link("before", e.id.0)))
        .flatten();
    let newer = has_newer
        .then(|| events.first().map(|e| link("after", e.id.0)))
        .flatten();
    (older, newer)
}

async fn search(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Query<SearchForm>,
    user: Member<AdminConsole>,
) -> HttpResponse {
    let form = form.into_inner();
    let base = form.query_string();
    let mut ctx = serde_json::json!({
        "form": &form,
        "types": KNOWN_TYPES,
        "outcomes": Outcome::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "export": if base.is_empty() { "/admin/audit/export.csv".to_string() } else { format!("/admin/audit/export.csv?{base}") },
        "searched": !base.is_empty(),
        "field_errors": {},
    });
    let mut query = match to_query(&portal, &form).await {
        Ok(q) => q,
        Err(errors) => {
            let (errors, by_field) = field_errors(&portal, &user, errors);
            ctx["errors"] = serde_json::to_value(&errors).unwrap_or_default();
            ctx["field_errors"] = serde_json::Value::Object(by_field);
            let mut r = super::page(&portal, &req, &user, "admin_audit.html", "audit", ctx);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
    };
    // One more than a page tells whether there is a further page in the direction of travel.
    query.limit = PAGE + 1;
    let mut events = match portal.services.store.audit_events(&query).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "audit search failed");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return portal.error_page(&req, user.lang, status, "error_generic");
        }
    };
    let (older, newer) = page_links(&query, &mut events, &base);
    ctx["rows"] =
        serde_json::to_value(events.iter().map(row).collect::<Vec<_>>()).unwrap_or_default();
    ctx["older"] = older.into();
    ctx["newer"] = newer.into();
    ctx["newest"] = if base.is_empty() {
        "/admin/audit".to_string()
    } else {
        format!("/admin/audit?{base}")
    }
    .into();
    super::page(&portal, &req, &user, "admin_audit.html", "audit", ctx)
}

/// The header of the audit export.
pub const COLUMNS: [&str; 10] = [
    "id",
    "time_utc",
    "event_type",
    "outcome",
    "actor",
    "subject",
    "method",
    "reason",
    "correlation_id",
    "details",
];

/// One event as a row of the export, in [`COLUMNS`] order.
fn csv_row(r: &AuditRecord) -> [String; 10] {
    let e = &r.event;
    [
        r.id.0.to_string(),
        utc(e.at),
        e.event_type.clone(),
        e.outcome.as_str().to_string(),
        e.actor.clone(),
        e.subject.map(|s| s.to_string()).unwrap_or_default(),
        e.method.clone().unwrap_or_default(),
        e.reason.clone().unwrap_or_default(),
        e.correlation_id.clone(),
        details_text(&e.details).unwrap_or_default(),
    ]
}

async fn export(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Query<SearchForm>,
    user: Member<AdminConsole>,
) -> HttpResponse {
    let mut form = form.into_inner();
    // The export is the whole search, not one page of it.
    form.before = None;
    form.after = None;
    let query = match to_query(&portal, &form).await {
        Ok(q) => q,
        Err(errors) => {
            let key = errors.first().map_or("error_generic", |(_, k)| *k);
            return portal.error_page(&req, user.lang, StatusCode::BAD_REQUEST, key);
        }
    };
    if let Err(e) = user
        .audit(
            &portal,
            "admin.audit.export",
            query.subject,
            Outcome::Success,
            None,
            serde_json::json!({ "search": form.query_string() }),
        )
        .await
    {
        tracing::error!(error = %e, "audit export: cannot audit the export");
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return portal.error_page(&req, user.lang, status, "error_generic");
    }
    let store = std::sync::Arc::clone(&portal.services.store);
    let day = portal.services.clock.now().date();
    let name = format!(
        "latchkey-audit-{}.csv",
        super::reports::iso_date(day).replace('-', "")
    );
    csv::stream(&name, move |sink| async move {
        let mut chunk = String::from(csv::BOM);
        csv::push_row(&mut chunk, &COLUMNS);
        let mut query = query;
        query.limit = EXPORT_BATCH;
        loop {
            let batch = match store.audit_events(&query).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed midway");
                    return csv::fail(&sink, "store unavailable").await;
                }
            };
            for r in &batch {
                csv::push_row(&mut chunk, &csv_row(r));
                if !csv::flush_if_big(&sink, &mut chunk).await {
                    return;
                }
            }
            match batch.last() {
                Some(last) if batch.len() == EXPORT_BATCH as usize => query.before = Some(last.id),
                _ => break,
            }
        }
        csv::flush(&sink, &mut chunk).await;
    })
}
