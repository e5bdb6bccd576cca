//! `GET /v1.0/groups/delta` (api/group-delta, delta-query-groups) and
//! `GET /v1.0/directoryRoles/delta` (api/directoryrole-delta): containers with `members@delta`
//! when `members` is selected. See the module above for the splitting of large member lists.

use std::hash::Hash;

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use super::token::TokenState;
use super::{Begin, Resume, begin, removed, respond, with_id};
use crate::app::Shared;
use crate::graph::auth::{Caller, Perms};
use crate::graph::error::GraphResult;
use crate::graph::groups::group_json;
use crate::roles;
use crate::state::Member;
use crate::state::changes::Tracker;

/// group-delta permissions table.
const GROUPS_DELTA: Perms = Perms {
    app: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};

/// directoryrole-delta permissions table.
const ROLES_DELTA: Perms = Perms {
    app: &[
        "RoleManagement.Read.Directory",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "RoleManagement.Read.Directory",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};

fn member_json(m: Member, removed: bool) -> Value {
    let (t, id) = match m {
        Member::User(id) => ("#microsoft.graph.user", id),
        Member::Group(id) => ("#microsoft.graph.group", id),
    };
    if removed {
        json!({"@odata.type": t, "id": id.to_string(), "@removed": {"reason": "deleted"}})
    } else {
        json!({"@odata.type": t, "id": id.to_string()})
    }
}

/// `$select` without `members` (which only switches `members@delta` on).
fn wants_members(sel: &Option<Vec<String>>) -> (bool, Option<Vec<String>>) {
    match sel {
        None => (false, None),
        Some(s) => {
            let members = s.iter().any(|x| x.eq_ignore_ascii_case("members"));
            let rest = s
                .iter()
                .filter(|x| !x.eq_ignore_ascii_case("members"))
                .cloned()
                .collect();
            (members, Some(rest))
        }
    }
}

/// Projects a container onto the selected names (unknown ones are `null`, as `GET /groups`).
fn project(obj: Map<String, Value>, sel: &Option<Vec<String>>) -> Map<String, Value> {
    let Some(sel) = sel else { return obj };
    let mut out = Map::new();
    for n in sel {
        match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
            Some((k, v)) => out.insert(k.clone(), v.clone()),
            None => out.insert(n.clone(), Value::Null),
        };
    }
    out
}

/// What a container kind supplies to the shared pager.
struct Kind<'a, K> {
    tracker: &'a Tracker<K>,
    /// The object's JSON, `None` when it no longer exists.
    render: &'a dyn Fn(&K) -> Option<Map<String, Value>>,
    /// Its direct members now (first rounds rebuild them as of the round start).
    members_now: &'a dyn Fn(&K) -> Vec<Member>,
    /// Members outside the change log (service principals holding a role), first rounds only.
    extra: &'a dyn Fn(&K) -> Vec<Value>,
    id: &'a dyn Fn(&K) -> String,
    /// The key as the token carries it, and back.
    key_str: &'a dyn Fn(&K) -> String,
    parse: &'a dyn Fn(&str) -> Option<K>,
}

fn page<K: Hash + Eq + Clone>(
    k: &Kind<'_, K>,
    t: &TokenState,
    size: usize,
    chunk_size: usize,
) -> (Vec<Value>, Option<Resume>) {
    let (with_members, sel) = wants_members(&t.sel);
    let mut items = Vec::new();
    // A split container continues first, found by key: it may have changed (and moved in the
    // log) since the previous page, but its members as of this round are still known.
    let pending = match (&t.cont, t.chunk) {
        (Some(c), n) if n > 0 => (k.parse)(c).map(|key| (t.at, key, n)),
        _ => None,
    };
    let from = if pending.is_some() { t.at + 1 } else { t.at };
    // Past `upto` too: a container that changes during the round moves to the end of the log;
    // stopping at `upto` would skip it, and the next round only carries what changed after
    // `upto`, so its members as of this round would never be sent. Listed later (or twice,
    // which merging by id absorbs), it carries them.
    let rest = k
        .tracker
        .range(from, u64::MAX)
        .map(|(s, key)| (s, key.clone(), 0));
    for (seq, key, first) in pending.into_iter().chain(rest) {
        let id = (k.id)(&key);
        if t.ids.as_ref().is_some_and(|ids| !ids.contains(&id)) {
            continue;
        }
        if let Some(reason) = k.tracker.removed(&key) {
            if t.init || first > 0 {
                continue;
            }
            if items.len() == size {
                return (items, Some((seq, 0, None)));
            }
            items.push(removed(&id, reason.as_str()));
            continue;
        }
        let Some(obj) = (k.render)(&key) else {
            continue;
        };
        let obj = with_id(&id, project(obj, &sel));
        if items.len() == size {
            return (items, Some((seq, first, Some((k.key_str)(&key)))));
        }
        if !with_members {
            items.push(Value::Object(obj));
            continue;
        }
        let members: Vec<Value> = if t.init {
            let mut v: Vec<Value> = k
                .tracker
                .members_as_of(&key, &(k.members_now)(&key), t.upto)
                .into_iter()
                .map(|m| member_json(m, false))
                .collect();
            v.extend((k.extra)(&key));
            v
        } else {
            k.tracker
                .member_diff(&key, t.since, t.upto)
                .into_iter()
                .map(|(m, added)| member_json(m, !added))
                .collect()
        };
        if members.is_empty() {
            let mut o = obj;
            if t.init {
                o.insert("members@delta".into(), json!([]));
            }
            items.push(Value::Object(o));
            continue;
        }
        let chunks: Vec<&[Value]> = members.chunks(chunk_size).collect();
        for (ci, c) in chunks.iter().enumerate().skip(first) {
            let mut o = obj.clone();
            o.insert("members@delta".into(), Value::Array(c.to_vec()));
            items.push(Value::Object(o));
            if ci + 1 < chunks.len() {
                // A split container ends its page; the next page repeats its id.
                return (items, Some((seq, ci + 1, Some((k.key_str)(&key)))));
            }
        }
    }
    (items, None)
}

pub async fn groups_delta(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
) -> GraphResult<HttpResponse> {
    caller.require(GROUPS_DELTA)?;
    const PATH: &str = "/groups/delta";
    let state = shared.state();
    let now = shared.clock.now();
    let (t, size, applied) = match begin(&req, &shared, &state, "groups", PATH, now)? {
        Begin::Done(r) => return Ok(r),
        Begin::Page { t, size, applied } => (t, size, applied),
    };
    let find = |id: &uuid::Uuid| state.groups.iter().find(|g| g.id == *id);
    let render = |id: &uuid::Uuid| {
        find(id).map(|g| {
            let mut o = group_json(g);
            o.remove("@odata.type");
            o
        })
    };
    let members_now = |id: &uuid::Uuid| find(id).map(|g| g.members.clone()).unwrap_or_default();
    let kind = Kind {
        tracker: &state.changes.groups,
        render: &render,
        members_now: &members_now,
        extra: &|_| Vec::new(),
        id: &|id: &uuid::Uuid| id.to_string(),
        key_str: &|id: &uuid::Uuid| id.to_string(),
        parse: &|s: &str| s.parse().ok(),
    };
    let (items, next) = page(&kind, &t, size, state.delta.members_per_object);
    Ok(respond(&shared, &state, PATH, &t, items, next, applied))
}

pub async fn roles_delta(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
) -> GraphResult<HttpResponse> {
    caller.require(ROLES_DELTA)?;
    const PATH: &str = "/directoryRoles/delta";
    let state = shared.state();
    let now = shared.clock.now();
    let (t, size, applied) = match begin(&req, &shared, &state, "directoryRoles", PATH, now)? {
        Begin::Done(r) => return Ok(r),
        Begin::Page { t, size, applied } => (t, size, applied),
    };
    let render = |template: &String| {
        let name = roles::display_name(template).unwrap_or("Directory role");
        json!({
            "id": state.directory_role_object_id(template).to_string(),
            "deletedDateTime": null,
            "description": name,
            "displayName": name,
            "roleTemplateId": template,
        })
        .as_object()
        .cloned()
    };
    let members_now = |template: &String| {
        state
            .users
            .iter()
            .filter(|u| u.roles.contains(template))
            .map(|u| Member::User(u.id))
            .collect()
    };
    let extra = |template: &String| {
        state
            .apps
            .iter()
            .filter(|a| a.roles.contains(template))
            .map(|a| json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": a.sp_id.to_string()}))
            .collect()
    };
    let id = |template: &String| state.directory_role_object_id(template).to_string();
    let kind = Kind {
        tracker: &state.changes.roles,
        render: &render,
        members_now: &members_now,
        extra: &extra,
        id: &id,
        key_str: &|r: &String| r.clone(),
        parse: &|s: &str| Some(s.to_owned()),
    };
    let (items, next) = page(&kind, &t, size, state.delta.members_per_object);
    Ok(respond(&shared, &state, PATH, &t, items, next, applied))
}
