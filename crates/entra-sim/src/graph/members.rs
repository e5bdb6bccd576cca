//! Directory writes that delta queries report: group member add/remove (`members/$ref`),
//! `DELETE /users/{id}` and `DELETE /groups/{id}` (soft delete), and
//! `/directory/deletedItems/{id}` (permanent delete, restore).
//! Permissions: group-post-members, group-delete-members, user-delete, group-delete,
//! directory-deleteditem-delete, directory-deleteditem-restore.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Json};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use super::users::{find_user, render_user};
use crate::app::Shared;
use crate::roles;
use crate::state::directory::MemberError;

const MEMBERS_WRITE: Perms = Perms {
    app: &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const USER_DELETE: Perms = Perms {
    app: &["User.DeleteRestore.All", "User.ReadWrite.All"],
    delegated: &[
        "User.DeleteRestore.All",
        "User.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const GROUP_DELETE: Perms = Perms {
    app: &["Group.ReadWrite.All", "Directory.ReadWrite.All"],
    delegated: &[
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

fn group_id(key: &str) -> GraphResult<Uuid> {
    key.parse().map_err(|_| GraphError::not_found(key))
}

/// `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}` → the id (also
/// `/users/{id}`, `/groups/{id}`, any host).
fn reference(body: &Map<String, Value>) -> GraphResult<Uuid> {
    let bad = || {
        GraphError::bad_request(
            "Invalid object identifier in '@odata.id'; expected https://graph.microsoft.com/v1.0/directoryObjects/{id}.",
        )
    };
    let url = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let (head, id) = path.rsplit_once('/').ok_or_else(bad)?;
    if !["directoryObjects", "users", "groups"]
        .iter()
        .any(|s| head.ends_with(&format!("/{s}")))
    {
        return Err(bad());
    }
    id.trim_matches(|c| c == '(' || c == ')' || c == '\'')
        .parse()
        .map_err(|_| bad())
}

/// `POST /groups/{id}/members/$ref`: 204; 400 when already a member; 404 for an unknown group
/// or object.
pub async fn add_member(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    caller.require(MEMBERS_WRITE)?;
    let g = group_id(&path)?;
    let target = reference(&body)?;
    let mut state = shared.state();
    let m = state
        .directory_object(target)
        .ok_or_else(|| GraphError::not_found(&target.to_string()))?;
    match state.add_member(g, m) {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(MemberError::AlreadyMember) => Err(GraphError::bad_request(
            "One or more added object references already exist for the following modified properties: 'members'.",
        )),
        Err(MemberError::NoMember) => Err(GraphError::not_found(&target.to_string())),
        Err(_) => Err(GraphError::not_found(&path)),
    }
}

/// `DELETE /groups/{id}/members/{member}/$ref`: 204; 404 when it is not a direct member.
pub async fn remove_member(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    caller.require(MEMBERS_WRITE)?;
    let (gkey, mkey) = path.into_inner();
    let g = group_id(&gkey)?;
    let mid: Uuid = mkey.parse().map_err(|_| GraphError::not_found(&mkey))?;
    let mut state = shared.state();
    let m = state
        .groups
        .iter()
        .find(|x| x.id == g)
        .ok_or_else(|| GraphError::not_found(&gkey))?
        .members
        .iter()
        .copied()
        .find(|m| m.id() == mid)
        .ok_or_else(|| GraphError::not_found(&mkey))?;
    state
        .remove_member(g, m)
        .map_err(|_| GraphError::not_found(&mkey))?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /users/{id}`: 204; the user moves to deleted items (restorable).
pub async fn delete_user(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(USER_DELETE)?;
    if caller.is_delegated()
        && !caller.has_role(&[
            roles::USER_ADMINISTRATOR,
            roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            roles::GLOBAL_ADMINISTRATOR,
        ])
    {
        return Err(GraphError::forbidden());
    }
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &path)?;
    // Deleting an administrator is a sensitive action: same rule as resetting their password.
    if !caller.may_reset_password_of(&state.users[i].roles) && caller.is_delegated() {
        return Err(GraphError::forbidden());
    }
    state.soft_delete_user(i, now);
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /groups/{id}`: 204; the group moves to deleted items.
pub async fn delete_group(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(GROUP_DELETE)?;
    let g = group_id(&path)?;
    let now = shared.clock.now();
    if shared.state().soft_delete_group(g, now) {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(GraphError::not_found(&path))
    }
}

/// Which deleted-items permission set applies to `id` (a user's or a group's).
fn deleted_item_perms(shared: &Shared, id: Uuid) -> Option<Perms> {
    let state = shared.state();
    if state.deleted_users.contains_key(&id) {
        Some(USER_DELETE)
    } else if state.deleted_groups.contains_key(&id) {
        Some(GROUP_DELETE)
    } else {
        None
    }
}

/// `DELETE /directory/deletedItems/{id}`: 204; gone for good.
pub async fn purge(shared: Data<Shared>, caller: Caller, path: web::Path<String>) -> GraphResult {
    let id: Uuid = path.parse().map_err(|_| GraphError::not_found(&path))?;
    let perms = deleted_item_perms(&shared, id);
    // Permission first when the item is unknown too, so a 404 does not leak to the unauthorised.
    caller.require(perms.unwrap_or(USER_DELETE))?;
    if perms.is_none() || !shared.state().purge(id) {
        return Err(GraphError::not_found(&path));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /directory/deletedItems/{id}/restore` (users): 200 with the user, memberships back.
pub async fn restore(shared: Data<Shared>, caller: Caller, path: web::Path<String>) -> GraphResult {
    let id: Uuid = path.parse().map_err(|_| GraphError::not_found(&path))?;
    caller.require(USER_DELETE)?;
    let mut state = shared.state();
    if !state.restore_user(id) {
        return Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or is not a deleted user."),
        ));
    }
    let i = state
        .user_pos(id)
        .ok_or_else(|| GraphError::not_found(&path))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}#directoryObjects/$entity", shared.metadata())),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    body.extend(render_user(&state, &state.users[i], None)?);
    Ok(HttpResponse::Ok().json(body))
}
