//! Identity Protection: `riskyUsers` get/list, `dismiss`, `confirmCompromised`.
//! Throttled per tenant (default 1 request/second) with a 429 that carries no `Retry-After`,
//! as throttling-limits.md says.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};
use time::Duration;

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use crate::app::Shared;
use crate::clock::fmt;
use crate::odata::filter::{self, Record};
use crate::odata::{ODataQuery, paging};
use crate::roles::{
    GLOBAL_ADMINISTRATOR, GLOBAL_READER, SECURITY_ADMINISTRATOR, SECURITY_OPERATOR, SECURITY_READER,
};
use crate::state::{State, User};

const READ: Perms = Perms {
    app: &[
        "IdentityRiskyUser.Read.All",
        "IdentityRiskyUser.ReadWrite.All",
    ],
    delegated: &[
        "IdentityRiskyUser.Read.All",
        "IdentityRiskyUser.ReadWrite.All",
    ],
};
const WRITE: Perms = Perms {
    app: &["IdentityRiskyUser.ReadWrite.All"],
    delegated: &["IdentityRiskyUser.ReadWrite.All"],
};

fn throttle(state: &mut State, now: time::OffsetDateTime) -> GraphResult<()> {
    let limit = state.throttling.identity_protection_per_second as usize;
    if limit == 0 {
        return Ok(());
    }
    state
        .identity_protection_hits
        .retain(|t| now - *t < Duration::seconds(1));
    if state.identity_protection_hits.len() >= limit {
        return Err(GraphError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        ));
    }
    state.identity_protection_hits.push(now);
    Ok(())
}

fn check_roles(caller: &Caller, write: bool) -> GraphResult<()> {
    if !caller.is_delegated() {
        return Ok(());
    }
    let ok = if write {
        caller.has_role(&[SECURITY_ADMINISTRATOR, GLOBAL_ADMINISTRATOR])
    } else {
        caller.has_role(&[
            SECURITY_ADMINISTRATOR,
            SECURITY_OPERATOR,
            SECURITY_READER,
            GLOBAL_READER,
            GLOBAL_ADMINISTRATOR,
        ])
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

fn risky_json(u: &User) -> Option<Map<String, Value>> {
    let r = u.risk.as_ref()?;
    json!({
        "id": u.id.to_string(),
        "isDeleted": false,
        "isProcessing": false,
        "riskLastUpdatedDateTime": fmt::graph_precise(r.last_updated),
        "riskLevel": r.level,
        "riskState": r.state,
        "riskDetail": r.detail,
        "userDisplayName": u.display_name,
        "userPrincipalName": u.upn,
    })
    .as_object()
    .cloned()
}

pub async fn get(shared: Data<Shared>, caller: Caller, path: web::Path<String>) -> GraphResult {
    caller.require(READ)?;
    check_roles(&caller, false)?;
    let now = shared.clock.now();
    let mut state = shared.state();
    throttle(&mut state, now)?;
    let obj = path
        .parse::<uuid::Uuid>()
        .ok()
        .and_then(|id| state.user_by_id(id))
        .and_then(risky_json)
        .ok_or_else(|| GraphError::not_found(&path))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#identityProtection/riskyUsers/$entity",
            shared.metadata()
        )),
    );
    body.extend(obj);
    Ok(HttpResponse::Ok().json(body))
}

struct JsonRecord<'a>(&'a Map<String, Value>);

impl Record for JsonRecord<'_> {
    fn get(&self, p: &str) -> Option<filter::Value<'_>> {
        let v = self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(p))?.1;
        Some(match v {
            Value::String(s) => filter::Value::Str(Some(s.as_str().into())),
            Value::Bool(b) => filter::Value::Bool(Some(*b)),
            _ => filter::Value::Str(None),
        })
    }
}

pub async fn list(req: HttpRequest, shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(READ)?;
    check_roles(&caller, false)?;
    let q = ODataQuery::from_request(&req)?;
    let expr = q
        .filter
        .as_deref()
        .map(filter::parse)
        .transpose()
        .map_err(|e| GraphError::bad_request(e.to_string()))?;
    let now = shared.clock.now();
    let items: Vec<Value> = {
        let mut state = shared.state();
        throttle(&mut state, now)?;
        state
            .users
            .iter()
            .filter_map(risky_json)
            .filter(|o| expr.as_ref().is_none_or(|e| e.eval(&JsonRecord(o))))
            .map(Value::Object)
            .collect()
    };
    let (page, next) = paging::page(
        items,
        &q,
        &shared.graph_base(),
        "/identityProtection/riskyUsers",
    )?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#identityProtection/riskyUsers",
            shared.metadata()
        )),
    );
    if let Some(n) = next {
        body.insert("@odata.nextLink".into(), json!(n));
    }
    body.insert("value".into(), Value::Array(page));
    Ok(HttpResponse::Ok().json(body))
}

fn user_ids(body: &Map<String, Value>) -> GraphResult<Vec<uuid::Uuid>> {
    body.get("userIds")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .ok_or_else(|| GraphError::bad_request("Invalid value specified for property 'userIds'."))
}

async fn set_risk(
    shared: Data<Shared>,
    caller: Caller,
    body: Json<Map<String, Value>>,
    (level, state_name, detail): (&str, &str, &str),
) -> GraphResult {
    caller.require(WRITE)?;
    check_roles(&caller, true)?;
    let ids = user_ids(&body)?;
    let now = shared.clock.now();
    let mut state = shared.state();
    throttle(&mut state, now)?;
    for u in state.users.iter_mut().filter(|u| ids.contains(&u.id)) {
        let r = u.risk.get_or_insert_with(|| crate::state::Risk {
            level: "none".into(),
            state: "none".into(),
            detail: "none".into(),
            last_updated: now,
        });
        r.level = level.into();
        r.state = state_name.into();
        r.detail = detail.into();
        r.last_updated = now;
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn dismiss(
    shared: Data<Shared>,
    caller: Caller,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    set_risk(
        shared,
        caller,
        body,
        ("none", "dismissed", "adminDismissedAllRiskForUser"),
    )
    .await
}

pub async fn confirm_compromised(
    shared: Data<Shared>,
    caller: Caller,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    set_risk(
        shared,
        caller,
        body,
        (
            "high",
            "confirmedCompromised",
            "adminConfirmedUserCompromised",
        ),
    )
    .await
}
