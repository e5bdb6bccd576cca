//! Delta queries: `GET /users/delta`, `/groups/delta`, `/directoryRoles/delta`
//! (delta-query-overview, user-delta, group-delta, directoryrole-delta).
//!
//! Behaviour choices where Microsoft documents none (also in `fixtures/test.toml`):
//! - page size: `[delta] page_size` (200) objects, or `Prefer: odata.maxpagesize=N` (1..=999,
//!   answered with `Preference-Applied`); a page never ends empty with a nextLink.
//! - a group (or role) carries at most `[delta] members_per_object` entries of `members@delta`
//!   per page; one with more ends its page and the next page starts with the same id and the
//!   next entries. First rounds list members in a stable order (users, then groups, by id), as
//!   they were when the round started; later rounds list the net change per member.
//!   `members@delta` is always present in a first round (maybe `[]`), only when non-empty in a
//!   later one.
//! - tokens carry `$select` and `$filter`: a request with a token and a *different* `$select`
//!   or `$filter` is refused (400), since Graph says not to repeat them; the same ones pass.
//! - an expired (older than `[delta] token_lifetime_days`) or reset (`POST /_sim/delta/reset`)
//!   token: 410 `resyncRequired` with `Location` = the initial delta URL with the same
//!   `$select`/`$filter`, or (`[delta] expired_status = 400`) 400 `syncStateNotFound`.
//! - `$filter`: only `id eq '...'` joined by `or` (≤ 50); `$top`, `$orderby`, `$expand`,
//!   `$search`, `$count`, `$skip`: 400 `Request_UnsupportedQuery`.

pub mod groups;
pub mod token;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::error::{GraphError, GraphResult};
use crate::app::Shared;
use crate::odata::filter::{self, CmpOp, Expr, Literal};
use crate::state::State;
use token::TokenState;

/// Where the next page resumes: log sequence, member chunk, the split container's key.
pub type Resume = (u64, usize, Option<String>);

/// The request's delta options.
#[derive(Debug, Default)]
struct Options {
    select: Option<Vec<String>>,
    ids: Option<Vec<String>>,
    skiptoken: Option<String>,
    deltatoken: Option<String>,
}

fn unsupported(option: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        format!("The query option '${option}' is not supported with delta query."),
    )
}

/// `id eq 'a' or id eq 'b'` → the ids; anything else is unsupported.
fn filter_ids(text: &str) -> GraphResult<Vec<String>> {
    fn walk(e: &Expr, out: &mut Vec<String>) -> bool {
        match e {
            Expr::Or(a, b) => walk(a, out) && walk(b, out),
            Expr::Cmp(p, CmpOp::Eq, Literal::Str(v)) if p.eq_ignore_ascii_case("id") => {
                out.push(v.to_ascii_lowercase());
                true
            }
            _ => false,
        }
    }
    let e = filter::parse(text).map_err(|e| GraphError::bad_request(e.to_string()))?;
    let mut ids = Vec::new();
    if !walk(&e, &mut ids) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Delta query only supports $filter on 'id' with 'eq' and 'or'.",
        ));
    }
    if ids.len() > 50 {
        return Err(GraphError::bad_request(
            "The number of ids in the filter exceeds the limit of 50.",
        ));
    }
    Ok(ids)
}

fn options(req: &HttpRequest) -> GraphResult<Options> {
    let mut o = Options::default();
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        let key = k.trim_start_matches('$').to_ascii_lowercase();
        match key.as_str() {
            "select" => {
                o.select = Some(
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "filter" => o.ids = Some(filter_ids(&v)?),
            "skiptoken" => o.skiptoken = Some(v.into_owned()),
            "deltatoken" => o.deltatoken = Some(v.into_owned()),
            "top" | "orderby" | "expand" | "search" | "count" | "skip" => {
                return Err(unsupported(&key));
            }
            _ => {}
        }
    }
    Ok(o)
}

/// `Prefer: odata.maxpagesize=N`.
fn max_page_size(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .find_map(|n| n.trim().parse::<usize>().ok())
        .map(|n| n.clamp(1, 999))
}

fn same_names(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    let norm = |v: &Option<Vec<String>>| {
        v.as_ref().map(|v| {
            let mut s: Vec<String> = v.iter().map(|x| x.to_ascii_lowercase()).collect();
            s.sort();
            s
        })
    };
    norm(a) == norm(b)
}

/// Where a request starts.
pub enum Begin {
    /// Serve a page from this state.
    Page {
        t: TokenState,
        size: usize,
        applied: Option<usize>,
    },
    /// Already answered (`$deltatoken=latest`, a resync).
    Done(HttpResponse),
}

/// The initial delta URL for a `$select`/`$filter` (a resync's `Location`).
fn initial_url(
    shared: &Shared,
    path: &str,
    sel: &Option<Vec<String>>,
    ids: &Option<Vec<String>>,
) -> String {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    if let Some(s) = sel {
        params.append_pair("$select", &s.join(","));
    }
    if let Some(ids) = ids {
        let f: Vec<String> = ids.iter().map(|i| format!("id eq '{i}'")).collect();
        params.append_pair("$filter", &f.join(" or "));
    }
    let q = params.finish();
    if q.is_empty() {
        format!("{}{path}", shared.graph_base())
    } else {
        format!("{}{path}?{q}", shared.graph_base())
    }
}

/// The answer to an expired or reset token.
fn resync(shared: &Shared, state: &State, path: &str, t: &TokenState) -> HttpResponse {
    let err = if state.delta.expired_status == 400 {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "syncStateNotFound",
            "The sync state is not found. Start a new synchronization round without a token.",
        )
    } else {
        GraphError::new(
            StatusCode::GONE,
            "resyncRequired",
            "Resync required: replace any local cached copies of the resources with the ones returned by the URL in the Location header.",
        )
    };
    let mut r = err.error_response();
    if err.status == StatusCode::GONE
        && let Ok(v) = HeaderValue::from_str(&initial_url(shared, path, &t.sel, &t.ids))
    {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Reads the request and the token it carries. `resource` names the token kind, `path` the
/// delta URL under `/v1.0`.
pub fn begin(
    req: &HttpRequest,
    shared: &Shared,
    state: &State,
    resource: &str,
    path: &str,
    now: OffsetDateTime,
) -> GraphResult<Begin> {
    let o = options(req)?;
    let applied = max_page_size(req);
    let size = applied.unwrap_or(state.delta.page_size);
    let key = &state.changes.key;
    let fresh = |init: bool, since: u64| TokenState {
        r: resource.to_owned(),
        init,
        since,
        upto: state.changes.seq,
        at: if init { 0 } else { since + 1 },
        chunk: 0,
        cont: None,
        sel: o.select.clone(),
        ids: o.ids.clone(),
        iat: now.unix_timestamp(),
        ep: state.changes.epoch,
    };
    let raw = match (&o.skiptoken, &o.deltatoken) {
        (Some(_), Some(_)) => {
            return Err(GraphError::bad_request(
                "A request cannot carry both $skiptoken and $deltatoken.",
            ));
        }
        (None, Some(d)) if d.eq_ignore_ascii_case("latest") => {
            let t = fresh(false, state.changes.seq);
            return Ok(Begin::Done(respond(
                shared,
                state,
                path,
                &t,
                Vec::new(),
                None,
                applied,
            )));
        }
        (None, None) => {
            return Ok(Begin::Page {
                t: fresh(true, 0),
                size,
                applied,
            });
        }
        (Some(s), None) => s,
        (None, Some(d)) => d,
    };
    let bad = || GraphError::bad_request("The specified delta token or skip token is invalid.");
    let t = token::decode(key, raw).ok_or_else(bad)?;
    if t.r != resource || (o.deltatoken.is_some() && t.init) {
        return Err(bad());
    }
    if o.select.is_some() && !same_names(&o.select, &t.sel) {
        return Err(GraphError::bad_request(
            "$select differs from the one encoded in the token; do not repeat query parameters with a token.",
        ));
    }
    if o.ids.is_some() && !same_names(&o.ids, &t.ids) {
        return Err(GraphError::bad_request(
            "$filter differs from the one encoded in the token; do not repeat query parameters with a token.",
        ));
    }
    let lifetime = i64::from(state.delta.token_lifetime_days) * 86_400;
    if t.ep != state.changes.epoch || now.unix_timestamp() - t.iat > lifetime {
        return Ok(Begin::Done(resync(shared, state, path, &t)));
    }
    let t = if o.deltatoken.is_some() {
        // A deltaLink starts a new round of changes after the one it closed.
        TokenState {
            sel: t.sel.clone(),
            ids: t.ids.clone(),
            ..fresh(false, t.since)
        }
    } else {
        t
    };
    Ok(Begin::Page { t, size, applied })
}

/// A page: `@odata.context`, `value`, and a nextLink (`next` = the state to resume from) or a
/// deltaLink (the round is over).
pub fn respond(
    shared: &Shared,
    state: &State,
    path: &str,
    t: &TokenState,
    items: Vec<Value>,
    next: Option<Resume>,
    applied: Option<usize>,
) -> HttpResponse {
    let key = &state.changes.key;
    let entity = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let context = match &t.sel {
        Some(s) => format!("{}#{entity}({})", shared.metadata(), s.join(",")),
        None => format!("{}#{entity}", shared.metadata()),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context));
    let iat = shared.clock.now().unix_timestamp();
    match next {
        Some((at, chunk, cont)) => {
            let n = TokenState {
                at,
                chunk,
                cont,
                iat,
                ..t.clone()
            };
            body.insert(
                "@odata.nextLink".into(),
                json!(format!(
                    "{}{path}?$skiptoken={}",
                    shared.graph_base(),
                    token::encode(key, &n)
                )),
            );
        }
        None => {
            let d = TokenState {
                init: false,
                since: t.upto,
                at: 0,
                chunk: 0,
                cont: None,
                iat,
                ..t.clone()
            };
            body.insert(
                "@odata.deltaLink".into(),
                json!(format!(
                    "{}{path}?$deltatoken={}",
                    shared.graph_base(),
                    token::encode(key, &d)
                )),
            );
        }
    }
    body.insert("value".into(), Value::Array(items));
    let mut r = HttpResponse::Ok();
    if let Some(n) = applied {
        r.insert_header(("Preference-Applied", format!("odata.maxpagesize={n}")));
    }
    r.json(body)
}

/// `{"id": ..., "@removed": {"reason": ...}}`.
pub fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// Keeps `id` first in a projected object, as delta always returns it.
pub fn with_id(id: &str, obj: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    for (k, v) in obj {
        if k != "id" {
            out.insert(k, v);
        }
    }
    out
}
