//! `GET /v1.0/users/delta` (api/user-delta, delta-query-users): users with the selected
//! properties (the shape `GET /users?$select=` gives, plus `id` always), removed users as
//! `{"id", "@removed": {"reason": "changed" | "deleted"}}`.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::{Begin, begin, removed, respond, with_id};
use crate::app::Shared;
use crate::graph::auth::{Caller, Perms};
use crate::graph::error::GraphResult;
use crate::graph::users::{project, render_user};
use crate::state::build_user;

/// user-delta permissions table.
const USERS_DELTA: Perms = Perms {
    app: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "User.Read",
        "User.ReadBasic.All",
        "User.ReadWrite",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};

const PATH: &str = "/users/delta";

pub async fn users_delta(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
) -> GraphResult<HttpResponse> {
    caller.require(USERS_DELTA)?;
    let now = shared.clock.now();
    let state = shared.state();
    let (t, size, applied) = match begin(&req, &shared, &state, "users", PATH, now)? {
        Begin::Done(r) => return Ok(r),
        Begin::Page { t, size, applied } => (t, size, applied),
    };
    if t.init && t.at == 0 {
        // Unknown properties fail on the first request, as `GET /users?$select=` does.
        let probe = build_user(
            &crate::fixture::UserFixture {
                upn: "probe@example.com".into(),
                ..Default::default()
            },
            now,
        )
        .map_err(crate::graph::error::GraphError::bad_request)?;
        project(
            &crate::graph::users::user_properties(&probe, ""),
            t.sel.as_deref(),
        )?;
    }
    let mut items: Vec<Value> = Vec::new();
    let mut next = None;
    for (seq, id) in state.changes.users.range(t.at, t.upto) {
        let sid = id.to_string();
        if t.ids.as_ref().is_some_and(|ids| !ids.contains(&sid)) {
            continue;
        }
        let item = match state.changes.users.removed(id) {
            Some(_) if t.init => continue,
            Some(reason) => removed(&sid, reason.as_str()),
            None => match state.user_pos(*id) {
                Some(i) => Value::Object(with_id(
                    &sid,
                    render_user(&state, &state.users[i], t.sel.as_deref())?,
                )),
                None => continue,
            },
        };
        if items.len() == size {
            next = Some((seq, 0, None));
            break;
        }
        items.push(item);
    }
    Ok(respond(&shared, &state, PATH, &t, items, next, applied))
}
