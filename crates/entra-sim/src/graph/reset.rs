//! `resetPassword` (delegated only) and the long-running operation it returns.
//!
//! Choices where Microsoft documents nothing (graph.md §6, §14), so clients can rely on them:
//! - app-only token → 403 `Authorization_RequestDenied`;
//! - the caller's own account → 403 `Authorization_RequestDenied` with the message
//!   "The operation cannot be performed on the caller's own account.";
//! - a synced user without `newPassword` → 400 `Request_BadRequest`;
//! - a policy violation, or a synced user while password writeback is off → 202 as usual, then the
//!   operation ends `failed` with a `statusDetail` sentence;
//! - a successful reset takes effect immediately (the operation then reports `running` for
//!   `lro.running_polls` polls before `succeeded`).

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use super::users::find_user;
use crate::app::Shared;
use crate::clock::fmt;
use crate::password;
use crate::roles::{
    AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
};
use crate::state::Operation;
use crate::state::methods::PASSWORD_METHOD_ID;

const RESET: Perms = Perms {
    app: &[],
    delegated: &["UserAuthenticationMethod.ReadWrite.All"],
};

const READ_OPERATION: Perms = Perms {
    app: &[],
    delegated: &[
        "UserAuthenticationMethod.Read",
        "UserAuthenticationMethod.ReadWrite",
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    ],
};

pub async fn reset_password(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> GraphResult {
    let (id, method_id) = path.into_inner();
    caller.require(RESET)?;
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &id)?;
    if !method_id.eq_ignore_ascii_case(PASSWORD_METHOD_ID) {
        return Err(GraphError::not_found(&method_id));
    }
    let target = state.users[i].clone();
    if caller.is_self(target.id) {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "The operation cannot be performed on the caller's own account.",
        ));
    }
    if !caller.has_role(&[
        AUTHENTICATION_ADMINISTRATOR,
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        GLOBAL_ADMINISTRATOR,
    ]) || !caller.may_reset_password_of(&target.roles)
    {
        return Err(GraphError::forbidden());
    }
    let content_type_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !content_type_json {
        return Err(GraphError::bad_request(
            "The Content-Type header must be 'application/json'.",
        ));
    }
    let parsed: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| GraphError::bad_request("The request body is not valid JSON."))?
    };
    let supplied = match parsed.get("newPassword") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(GraphError::bad_request(
                "Invalid value specified for property 'newPassword'.",
            ));
        }
    };
    if target.is_synced() && supplied.is_none() {
        return Err(GraphError::bad_request(
            "A newPassword is required for users whose password is managed on-premises.",
        ));
    }
    let new_password = supplied.clone().unwrap_or_else(password::generate);
    let failure = if target.is_synced() && !state.sync.password_writeback_enabled {
        Some(
            "Password writeback is not enabled for this tenant; the password of an on-premises synchronized user cannot be reset in the cloud."
                .to_owned(),
        )
    } else if password::check(&state.password_policy, &new_password).is_err() {
        Some("The password does not comply with the password complexity requirements or is a banned password.".to_owned())
    } else {
        None
    };
    if failure.is_none() {
        state.apply_password(
            i,
            &new_password,
            true,
            "adminGeneratedTemporaryPassword",
            now,
        );
    }
    let op = Operation {
        id: Uuid::new_v4(),
        user_id: target.id,
        created: now,
        last_action: now,
        polls: 0,
        failure,
    };
    let location = format!(
        "{}/users/{}/authentication/operations/{}?aadgdc=SIM01P&aadgsu=ssprprod-a",
        shared.graph_base(),
        target.id,
        op.id
    );
    state.operations.insert(op.id, op);
    let retry_after = state.lro.retry_after_seconds.to_string();
    let mut resp = HttpResponse::Accepted();
    resp.insert_header(("Location", location))
        .insert_header(("Retry-After", retry_after));
    Ok(match supplied {
        Some(_) => resp.json(json!({})),
        None => resp.json(json!({
            "@odata.context": format!("{}#microsoft.graph.passwordResetResponse", shared.metadata()),
            "newPassword": new_password,
        })),
    })
}

pub async fn get_operation(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    let (id, op_id) = path.into_inner();
    caller.require(READ_OPERATION)?;
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &id)?;
    let user_id = state.users[i].id;
    if !caller.is_self(user_id)
        && !caller.has_role(&[
            GLOBAL_READER,
            AUTHENTICATION_ADMINISTRATOR,
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            GLOBAL_ADMINISTRATOR,
        ])
    {
        return Err(GraphError::forbidden());
    }
    let running_polls = state.lro.running_polls;
    let retry_after = state.lro.retry_after_seconds;
    let op = op_id
        .parse::<Uuid>()
        .ok()
        .and_then(|o| state.operations.get_mut(&o))
        .filter(|o| o.user_id == user_id)
        .ok_or_else(|| GraphError::not_found(&op_id))?;
    op.polls += 1;
    let (status, detail) = if op.polls <= running_polls {
        ("running", None)
    } else {
        if op.polls == running_polls + 1 {
            op.last_action = now;
        }
        match &op.failure {
            None => ("succeeded", None),
            Some(d) => ("failed", Some(d.clone())),
        }
    };
    let body = json!({
        "@odata.context": format!("{}#users('{user_id}')/authentication/operations/$entity", shared.metadata()),
        "id": op.id.to_string(),
        "createdDateTime": fmt::graph_precise(op.created),
        "lastActionDateTime": fmt::graph_precise(op.last_action),
        "resourceLocation": format!("{}/users/{user_id}/authentication/methods/{PASSWORD_METHOD_ID}", shared.graph_base()),
        "status": status,
        "statusDetail": detail,
    });
    let mut resp = HttpResponse::Ok();
    if status == "running" {
        resp.insert_header(("Retry-After", retry_after.to_string()));
    }
    Ok(resp.json(body))
}
