//! `POST /users/{id}/revokeSignInSessions`: sets the user's `signInSessionsValidFromDateTime`
//! to now; the token endpoint then refuses that user's refresh tokens issued before it
//! (see `oauth::token`).
//!
//! Permissions as Microsoft's table lists them: application `User.RevokeSessions.All`;
//! delegated `User.RevokeSessions.All`, or the higher `User.ReadWrite.All` /
//! `Directory.ReadWrite.All`. A delegated caller acting on someone else also needs an admin role
//! that may act on the target (the sensitive-actions matrix in `roles`); anyone may revoke their
//! own sessions.

use actix_web::HttpResponse;
use actix_web::web::{self, Data};
use serde_json::json;

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use super::users::find_user;
use crate::app::Shared;

const REVOKE: Perms = Perms {
    app: &["User.RevokeSessions.All"],
    delegated: &[
        "User.RevokeSessions.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};

/// v1.0 answers 200 with an `Edm.Boolean` (`"value": true`).
pub async fn revoke_sign_in_sessions(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(REVOKE)?;
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &path)?;
    let target = &state.users[i];
    if caller.is_delegated()
        && !caller.is_self(target.id)
        && !caller.may_reset_password_of(&target.roles)
    {
        return Err(GraphError::forbidden());
    }
    state.users[i].sign_in_sessions_valid_from = now;
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#Edm.Boolean", shared.metadata()),
        "value": true,
    })))
}
