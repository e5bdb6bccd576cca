//! Memberships: `/users/{id}/memberOf`, `/transitiveMemberOf`, `/groups/{id}/members`,
//! `/transitiveMembers` (with OData casts and `/$count`), `checkMemberGroups`,
//! `checkMemberObjects`, and `GET /groups/{id}`.

use std::collections::BTreeSet;

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use super::users::{find_user, project, render_user};
use crate::app::Shared;
use crate::clock::fmt;
use crate::odata::filter::{self, Record};
use crate::odata::{ODataQuery, paging};
use crate::roles;
use crate::state::{Group, Member, State};

const MEMBERSHIP_READ: Perms = Perms {
    app: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "User.Read",
        "User.ReadBasic.All",
        "User.Read.All",
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const GROUP_READ: Perms = Perms {
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
        "Directory.AccessAsUser.All",
    ],
};

const USER_READ_ALL: Perms = Perms {
    app: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "User.Read",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const GROUP_MEMBER_READ: Perms = Perms {
    app: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

pub fn group_json(g: &Group) -> Map<String, Value> {
    let v = json!({
        "@odata.type": "#microsoft.graph.group",
        "id": g.id.to_string(),
        "deletedDateTime": null,
        "createdDateTime": fmt::graph(g.created),
        "description": g.description,
        "displayName": g.display_name,
        "groupTypes": [],
        "mail": null,
        "mailEnabled": g.mail_enabled,
        "mailNickname": g.mail_nickname,
        "securityEnabled": g.security_enabled,
        "isAssignableToRole": null,
        "onPremisesSyncEnabled": null,
        "visibility": null,
    });
    v.as_object().cloned().unwrap_or_default()
}

fn role_json(state: &State, template: &str) -> Map<String, Value> {
    let v = json!({
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": state.directory_role_object_id(template).to_string(),
        "deletedDateTime": null,
        "description": roles::display_name(template).unwrap_or("Directory role"),
        "displayName": roles::display_name(template).unwrap_or("Directory role"),
        "roleTemplateId": template,
    });
    v.as_object().cloned().unwrap_or_default()
}

fn member_json(state: &State, m: Member) -> Option<Map<String, Value>> {
    match m {
        Member::Group(id) => state.groups.iter().find(|g| g.id == id).map(group_json),
        Member::User(id) => {
            let u = state.user_by_id(id)?;
            let mut out = Map::new();
            out.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            // Every property: `$select` may ask for any of them (accountEnabled, ...); without
            // `$select`, [`select`] cuts users back to Graph's default set.
            out.extend(render_user(state, u, Some(&["*".to_string()])).ok()?);
            Some(out)
        }
    }
}

/// `$select` on directory objects: keeps `@odata.type` so clients can still discriminate.
fn select(obj: Map<String, Value>, sel: Option<&[String]>) -> Map<String, Value> {
    let Some(sel) = sel else {
        if obj.get("@odata.type").and_then(Value::as_str) != Some("#microsoft.graph.user") {
            return obj;
        }
        let mut out = Map::new();
        out.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        out.extend(project(&obj, None).unwrap_or_default());
        return out;
    };
    let mut out = Map::new();
    if let Some(t) = obj.get("@odata.type") {
        out.insert("@odata.type".into(), t.clone());
    }
    for n in sel {
        let hit = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(n));
        match hit {
            Some((k, v)) => out.insert(k.clone(), v.clone()),
            None => out.insert(n.clone(), Value::Null),
        };
    }
    out
}

struct JsonRecord<'a>(&'a Map<String, Value>);

impl Record for JsonRecord<'_> {
    fn get(&self, p: &str) -> Option<filter::Value<'_>> {
        let v = self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(p))?.1;
        Some(match v {
            Value::String(s) => filter::Value::Str(Some(s.as_str().into())),
            Value::Bool(b) => filter::Value::Bool(Some(*b)),
            Value::Array(a) => filter::Value::List(
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
                    .into(),
            ),
            _ => filter::Value::Str(None),
        })
    }
}

/// Shared tail of the relationship lists: cast, `$filter`, `$search`, `$count`, paging.
fn respond_list(
    req: &HttpRequest,
    shared: &Shared,
    objects: Vec<Map<String, Value>>,
    cast: Option<&str>,
    path: &str,
) -> GraphResult {
    let q = ODataQuery::from_request(req)?;
    q.check_search_allowed()?;
    let count_only = cast == Some("$count");
    let cast_type = match cast {
        None | Some("$count") => None,
        Some(c) => {
            let t = c.strip_prefix("microsoft.graph.").unwrap_or(c);
            if !["group", "user", "directoryRole", "administrativeUnit"].contains(&t) {
                return Err(GraphError::odata_bad_request(format!(
                    "Resource not found for the segment '{c}'."
                )));
            }
            if !q.is_advanced() {
                return Err(GraphError::unsupported_query());
            }
            Some(t.to_owned())
        }
    };
    if count_only && !q.eventual {
        return Err(GraphError::bad_request(
            "$count is not currently supported.",
        ));
    }
    if (q.filter.is_some() || q.orderby.is_some()) && !q.is_advanced() && !count_only {
        return Err(GraphError::unsupported_query());
    }
    let expr = q
        .filter
        .as_deref()
        .map(filter::parse)
        .transpose()
        .map_err(|e| GraphError::bad_request(e.to_string()))?;
    let search = q.search.as_deref().map(|s| {
        s.trim_matches('"')
            .split_once(':')
            .map(|(p, v)| (p.to_owned(), v.to_lowercase()))
    });
    let mut items: Vec<Map<String, Value>> = objects
        .into_iter()
        .filter(|o| {
            cast_type.as_deref().is_none_or(|t| {
                o.get("@odata.type").and_then(Value::as_str) == Some(&format!("#microsoft.graph.{t}"))
            })
        })
        .filter(|o| expr.as_ref().is_none_or(|e| e.eval(&JsonRecord(o))))
        .filter(|o| match &search {
            None => true,
            Some(None) => false,
            Some(Some((p, v))) => JsonRecord(o)
                .get(p)
                .is_some_and(|x| matches!(x, filter::Value::Str(Some(s)) if s.to_lowercase().split(' ').any(|w| w.starts_with(v.as_str())))),
        })
        .collect();
    if count_only {
        return Ok(HttpResponse::Ok()
            .content_type("text/plain")
            .body(items.len().to_string()));
    }
    let total = items.len();
    let values: Vec<Value> = items
        .drain(..)
        .map(|o| Value::Object(select(o, q.select.as_deref())))
        .collect();
    let (page, next) = paging::page(values, &q, &shared.graph_base(), path)?;
    let context = match (&cast_type, &q.select) {
        (Some(t), Some(s)) => format!("{}s({})", t, s.join(",")),
        (Some(t), None) => format!("{t}s"),
        (None, _) => "directoryObjects".to_owned(),
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}#{context}", shared.metadata())),
    );
    if q.wants_count() && q.skiptoken.is_none() {
        body.insert("@odata.count".into(), json!(total));
    }
    if let Some(n) = next {
        body.insert("@odata.nextLink".into(), json!(n));
    }
    body.insert("value".into(), Value::Array(page));
    Ok(HttpResponse::Ok().json(body))
}

/// Direct (`transitive == false`) or transitive memberships of a user: groups, then roles.
fn memberships(state: &State, index: usize, transitive: bool) -> Vec<Map<String, Value>> {
    let u = &state.users[index];
    let groups = if transitive {
        state.transitive_groups_of(Member::User(u.id))
    } else {
        state.direct_groups_of(Member::User(u.id))
    };
    let mut out: Vec<Map<String, Value>> = groups.into_iter().map(group_json).collect();
    out.extend(u.roles.iter().map(|r| role_json(state, r)));
    out
}

async fn user_memberships(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    id: String,
    cast: Option<String>,
    transitive: bool,
) -> GraphResult {
    caller.require(MEMBERSHIP_READ)?;
    let (objects, user_id) = {
        let state = shared.state();
        let i = find_user(&state, &id)?;
        (memberships(&state, i, transitive), state.users[i].id)
    };
    if caller.is_delegated()
        && !caller.is_self(user_id)
        && caller.permissions.iter().all(|p| p == "User.Read")
    {
        return Err(GraphError::forbidden());
    }
    let rel = if transitive {
        "transitiveMemberOf"
    } else {
        "memberOf"
    };
    let path = match &cast {
        Some(c) => format!("/users/{id}/{rel}/{c}"),
        None => format!("/users/{id}/{rel}"),
    };
    respond_list(&req, &shared, objects, cast.as_deref(), &path)
}

pub async fn member_of(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    user_memberships(req, shared, caller, path.into_inner(), None, false).await
}

pub async fn transitive_member_of(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    user_memberships(req, shared, caller, path.into_inner(), None, true).await
}

pub async fn member_of_cast(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    let (id, cast) = path.into_inner();
    user_memberships(req, shared, caller, id, Some(cast), false).await
}

pub async fn transitive_member_of_cast(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    let (id, cast) = path.into_inner();
    user_memberships(req, shared, caller, id, Some(cast), true).await
}

fn find_group<'a>(state: &'a State, id: &str) -> GraphResult<&'a Group> {
    state.group(id).ok_or_else(|| GraphError::not_found(id))
}

pub async fn get_group(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(GROUP_READ)?;
    let q = ODataQuery::from_request(&req)?;
    let state = shared.state();
    let g = find_group(&state, &path)?;
    let mut obj = group_json(g);
    obj.remove("@odata.type");
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}#groups/$entity", shared.metadata())),
    );
    body.extend(select(obj, q.select.as_deref()));
    Ok(HttpResponse::Ok().json(body))
}

pub async fn list_groups(req: HttpRequest, shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(GROUP_READ)?;
    let q = ODataQuery::from_request(&req)?;
    let objects: Vec<Map<String, Value>> = shared.state().groups.iter().map(group_json).collect();
    // Plain `$filter` on groups (displayName eq / startsWith) is a default query.
    let expr = q
        .filter
        .as_deref()
        .map(filter::parse)
        .transpose()
        .map_err(|e| GraphError::bad_request(e.to_string()))?;
    let values: Vec<Value> = objects
        .into_iter()
        .filter(|o| expr.as_ref().is_none_or(|e| e.eval(&JsonRecord(o))))
        .map(|mut o| {
            o.remove("@odata.type");
            Value::Object(select(o, q.select.as_deref()))
        })
        .collect();
    let (page, next) = paging::page(values, &q, &shared.graph_base(), "/groups")?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}#groups", shared.metadata())),
    );
    if let Some(n) = next {
        body.insert("@odata.nextLink".into(), json!(n));
    }
    body.insert("value".into(), Value::Array(page));
    Ok(HttpResponse::Ok().json(body))
}

async fn group_members(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    id: String,
    cast: Option<String>,
    transitive: bool,
) -> GraphResult {
    caller.require(GROUP_READ)?;
    let objects = {
        let state = shared.state();
        let g = find_group(&state, &id)?;
        let members = if transitive {
            state.transitive_members(g)
        } else {
            g.members.clone()
        };
        members
            .into_iter()
            .filter_map(|m| member_json(&state, m))
            .collect()
    };
    let rel = if transitive {
        "transitiveMembers"
    } else {
        "members"
    };
    let path = match &cast {
        Some(c) => format!("/groups/{id}/{rel}/{c}"),
        None => format!("/groups/{id}/{rel}"),
    };
    respond_list(&req, &shared, objects, cast.as_deref(), &path)
}

pub async fn members(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    group_members(req, shared, caller, path.into_inner(), None, false).await
}

pub async fn transitive_members(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    group_members(req, shared, caller, path.into_inner(), None, true).await
}

pub async fn members_cast(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    let (id, cast) = path.into_inner();
    group_members(req, shared, caller, id, Some(cast), false).await
}

pub async fn transitive_members_cast(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    let (id, cast) = path.into_inner();
    group_members(req, shared, caller, id, Some(cast), true).await
}

/// Reads the id list of a check action (≤ 20 ids).
fn id_list(body: &Map<String, Value>, key: &str) -> GraphResult<Vec<String>> {
    let ids: Vec<String> = body
        .get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| {
            GraphError::bad_request(format!(
                "Invalid value specified for property '{key}' of resource 'Collection(Edm.String)'."
            ))
        })?;
    if ids.len() > 20 {
        return Err(GraphError::bad_request(format!(
            "The number of values in '{key}' exceeds the limit of 20."
        )));
    }
    Ok(ids)
}

fn collection_response(shared: &Shared, values: Vec<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#Collection(Edm.String)", shared.metadata()),
        "value": values,
    }))
}

pub async fn check_member_groups(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    // Both User.Read.All and GroupMember.Read.All (Directory.Read.All covers both).
    caller.require(USER_READ_ALL)?;
    caller.require(GROUP_MEMBER_READ)?;
    let ids = id_list(&body, "groupIds")?;
    let state = shared.state();
    let i = find_user(&state, &path)?;
    let mine: BTreeSet<String> = state
        .transitive_groups_of(Member::User(state.users[i].id))
        .iter()
        .filter(|g| g.security_enabled || g.mail_enabled)
        .map(|g| g.id.to_string())
        .collect();
    let hits = ids
        .into_iter()
        .filter(|id| mine.contains(&id.to_ascii_lowercase()))
        .collect();
    Ok(collection_response(&shared, hits))
}

pub async fn check_member_objects(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    caller.require(USER_READ_ALL)?;
    let ids = id_list(&body, "ids")?;
    let state = shared.state();
    let i = find_user(&state, &path)?;
    let u = &state.users[i];
    let mut mine: BTreeSet<String> = state
        .transitive_groups_of(Member::User(u.id))
        .iter()
        .map(|g| g.id.to_string())
        .collect();
    for r in &u.roles {
        // Directory roles match by object id or by template id.
        mine.insert(r.clone());
        mine.insert(state.directory_role_object_id(r).to_string());
    }
    let hits = ids
        .into_iter()
        .filter(|id| mine.contains(&id.to_ascii_lowercase()))
        .collect();
    Ok(collection_response(&shared, hits))
}
