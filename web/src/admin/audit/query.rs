//! The audit search form and the store query it becomes: sign-in names resolved through the
//! directory, every other field checked against what the store can hold; errors name the field.

use latchkey_store::{AuditId, AuditQuery, Outcome};
use latchkey_types::ObjectId;
use serde::{Deserialize, Serialize};
use time::{Duration, Time};

use crate::config::parse_date;
use crate::portal::Portal;

/// The search form as typed (every field optional; the query string of a bookmark).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SearchForm {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default, rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub correlation: String,
    /// `YYYY-MM-DD`, inclusive (UTC).
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD`, inclusive (UTC).
    #[serde(default)]
    pub to: String,
    #[serde(default, skip_serializing)]
    pub before: Option<String>,
    #[serde(default, skip_serializing)]
    pub after: Option<String>,
}

impl SearchForm {
    /// The query string of this search (paging parameters excluded), for links.
    pub fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user", &self.user),
            ("actor", &self.actor),
            ("type", &self.event_type),
            ("outcome", &self.outcome),
            ("correlation", &self.correlation),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.finish()
    }
}

fn plain(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Field errors: the field and a message key.
pub(super) type FieldErrors = Vec<(&'static str, &'static str)>;

/// Turns the form into a store query, resolving sign-in names through the directory. Field
/// errors name the field and a message key.
pub async fn to_query(portal: &Portal, form: &SearchForm) -> Result<AuditQuery, FieldErrors> {
    let mut errors = Vec::new();
    let mut q = AuditQuery::default();
    people(portal, form, &mut q, &mut errors).await;
    filters(form, &mut q, &mut errors);
    dates(form, &mut q, &mut errors);
    let id = |s: &Option<String>| {
        s.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<i64>().map(AuditId).map_err(|_| ()))
            .transpose()
    };
    match (id(&form.before), id(&form.after)) {
        (Ok(b), Ok(a)) => {
            q.before = b;
            q.after = a;
        }
        // Not a field of the form: the summary links to the form itself.
        _ => errors.push(("search", "audit_error_page")),
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(errors)
    }
}

/// The user the events are about and who acted, by object id or sign-in name (resolved through
/// the directory), or an actor's plain name (`system`, `gateway:…`).
async fn people(portal: &Portal, form: &SearchForm, q: &mut AuditQuery, errors: &mut FieldErrors) {
    let resolve = async |text: &str| -> Result<ObjectId, &'static str> {
        if let Ok(id) = text.parse::<ObjectId>() {
            return Ok(id);
        }
        if !text.contains('@') {
            return Err("audit_error_user");
        }
        match portal.services.directory.find_user(text).await {
            Ok(Some(u)) => Ok(u.id),
            Ok(None) => Err("audit_error_no_user"),
            Err(e) => {
                tracing::error!(error = %e, "audit search: cannot resolve a user");
                Err("audit_error_directory")
            }
        }
    };
    let user = form.user.trim();
    if !user.is_empty() {
        match resolve(user).await {
            Ok(id) => q.subject = Some(id),
            Err(key) => errors.push(("user", key)),
        }
    }
    let actor = form.actor.trim();
    if actor.is_empty() {
        return;
    }
    if actor.contains('@') || actor.parse::<ObjectId>().is_ok() {
        match resolve(actor).await {
            // Console events name the person by object id; other writers prefix a role.
            Ok(id) => {
                q.actors = vec![
                    id.to_string(),
                    format!("user:{id}"),
                    format!("helpdesk:{id}"),
                    format!("admin:{id}"),
                ]
            }
            Err(key) => errors.push(("actor", key)),
        }
    } else if plain(actor, 100, b":._-") {
        q.actors = vec![actor.to_string()];
    } else {
        errors.push(("actor", "audit_error_actor"));
    }
}

/// The event type, outcome and correlation id filters.
fn filters(form: &SearchForm, q: &mut AuditQuery, errors: &mut FieldErrors) {
    let t = form.event_type.trim();
    if !t.is_empty() {
        if plain(t, 64, b"._-") {
            q.event_type = Some(t.to_string());
        } else {
            errors.push(("type", "audit_error_type"));
        }
    }
    let o = form.outcome.trim();
    if !o.is_empty() {
        match Outcome::parse(o) {
            Some(o) => q.outcome = Some(o),
            None => errors.push(("outcome", "audit_error_outcome")),
        }
    }
    let c = form.correlation.trim();
    if !c.is_empty() {
        if plain(c, 100, b"-_.:") {
            q.correlation_id = Some(c.to_string());
        } else {
            errors.push(("correlation", "audit_error_correlation"));
        }
    }
}

/// The day range (both ends inclusive, UTC days).
fn dates(form: &SearchForm, q: &mut AuditQuery, errors: &mut FieldErrors) {
    let from = form.from.trim();
    let to = form.to.trim();
    let from_day = (!from.is_empty()).then(|| parse_date(from));
    let to_day = (!to.is_empty()).then(|| parse_date(to));
    match from_day {
        Some(Some(d)) => q.since = Some(d.with_time(Time::MIDNIGHT).assume_utc()),
        Some(None) => errors.push(("from", "audit_error_date")),
        None => {}
    }
    match to_day {
        Some(Some(d)) => {
            q.until = Some(
                (d + Duration::days(1))
                    .with_time(Time::MIDNIGHT)
                    .assume_utc(),
            )
        }
        Some(None) => errors.push(("to", "audit_error_date")),
        None => {}
    }
    if let (Some(Some(f)), Some(Some(t))) = (from_day, to_day)
        && f > t
    {
        errors.push(("to", "audit_error_range"));
    }
}
