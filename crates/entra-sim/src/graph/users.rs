//! `/users`: get, list with `$filter`/`$search`/`$count`, create, update (incl. passwordProfile).

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use crate::app::Shared;
use crate::clock::fmt;
use crate::odata::filter::{self, Expr, Func, Literal, Record};
use crate::odata::{ODataQuery, paging};
use crate::password;
use crate::state::{State, User};

pub const USER_READ: Perms = Perms {
    app: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "User.Read",
        "User.ReadWrite",
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const USER_WRITE: Perms = Perms {
    app: &["User.ReadWrite.All", "Directory.ReadWrite.All"],
    delegated: &[
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const PASSWORD_WRITE: Perms = Perms {
    app: &[
        "User-PasswordProfile.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "User-PasswordProfile.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

/// Returned without `$select` (user-get.md).
const DEFAULT_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// v1.0 `user` properties the simulator does not model; selecting them yields `null` (unless
/// the fixture's `extra` gives a value) instead of an unknown-property error.
const OTHER_SCHEMA_PROPERTIES: &[&str] = &[
    "aboutMe",
    "ageGroup",
    "assignedLicenses",
    "assignedPlans",
    "birthday",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "creationType",
    "deletedDateTime",
    "department",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "hireDate",
    "imAddresses",
    "interests",
    "isResourceAccount",
    "legalAgeGroupClassification",
    "licenseAssignmentStates",
    "mailboxSettings",
    "mySite",
    "onPremisesDistinguishedName",
    "onPremisesExtensionAttributes",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSecurityIdentifier",
    "onPremisesUserPrincipalName",
    "pastProjects",
    "postalCode",
    "preferredDataLocation",
    "preferredName",
    "provisionedPlans",
    "responsibilities",
    "schools",
    "securityIdentifier",
    "showInAddressList",
    "signInActivity",
    "signInSessionsValidFromDateTime",
    "skills",
    "state",
    "streetAddress",
];

/// Every property the simulator knows for a user, by its Graph name.
pub fn user_properties(u: &User, initial_domain: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("id", json!(u.id.to_string()));
    put("businessPhones", json!(u.business_phones));
    put("displayName", json!(u.display_name));
    put("givenName", json!(u.given_name));
    put("jobTitle", json!(u.job_title));
    put("mail", json!(u.mail));
    put("mobilePhone", json!(u.mobile_phone));
    put("officeLocation", json!(u.office_location));
    put("preferredLanguage", json!(u.preferred_language));
    put("surname", json!(u.surname));
    put("userPrincipalName", json!(u.upn));
    put("accountEnabled", json!(u.account_enabled));
    put("createdDateTime", json!(fmt::graph(u.created)));
    put("employeeId", json!(u.employee_id));
    put(
        "employeeHireDate",
        json!(u.employee_hire_date.map(fmt::graph)),
    );
    put(
        "lastPasswordChangeDateTime",
        json!(fmt::graph(u.last_password_change)),
    );
    put(
        "signInSessionsValidFromDateTime",
        json!(fmt::graph(u.sign_in_sessions_valid_from)),
    );
    put("mailNickname", json!(u.mail_nickname));
    put("otherMails", json!(u.other_mails));
    put("proxyAddresses", json!(u.proxy_addresses));
    put("onPremisesSyncEnabled", json!(u.on_premises_sync_enabled));
    put(
        "onPremisesSamAccountName",
        json!(u.on_premises_sam_account_name),
    );
    put("onPremisesDomainName", json!(u.on_premises_domain_name));
    put("onPremisesImmutableId", json!(u.on_premises_immutable_id));
    put("passwordPolicies", json!(u.password_policies));
    put("passwordProfile", Value::Null);
    put("usageLocation", json!(u.usage_location));
    put("userType", json!(u.user_type));
    put(
        "identities",
        json!([{
            "signInType": "userPrincipalName",
            "issuer": initial_domain,
            "issuerAssignedId": u.upn,
        }]),
    );
    for (k, v) in &u.extra {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// Applies `$select` semantics: the default set without it, exactly the selected properties
/// (canonical names, in the requested order) with it.
pub fn project(
    full: &Map<String, Value>,
    select: Option<&[String]>,
) -> GraphResult<Map<String, Value>> {
    let mut out = Map::new();
    match select {
        None => {
            for k in DEFAULT_PROPERTIES {
                out.insert(k.to_owned(), full.get(k).cloned().unwrap_or(Value::Null));
            }
        }
        Some(names) => {
            for n in names {
                if n == "*" {
                    out.extend(full.clone());
                    continue;
                }
                if let Some((k, v)) = full.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
                    out.insert(k.clone(), v.clone());
                } else if let Some(k) = OTHER_SCHEMA_PROPERTIES
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(n))
                {
                    out.insert((*k).to_owned(), Value::Null);
                } else {
                    return Err(GraphError::odata_bad_request(format!(
                        "Could not find a property named '{n}' on type 'microsoft.graph.user'."
                    )));
                }
            }
        }
    }
    Ok(out)
}

pub fn render_user(
    state: &State,
    u: &User,
    select: Option<&[String]>,
) -> GraphResult<Map<String, Value>> {
    project(&user_properties(u, &state.tenant.initial_domain), select)
}

/// `#users(a,b)` / `#users` context fragment.
fn context_fragment(entity_set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(s) => format!("{entity_set}({})", s.join(",")),
        None => entity_set.to_owned(),
    }
}

/// Resolves `/users/{id|upn}` (also `users('upn')`-style quoting) to an index.
pub fn find_user(state: &State, key: &str) -> GraphResult<usize> {
    let key = key
        .strip_prefix("('")
        .and_then(|k| k.strip_suffix("')"))
        .unwrap_or(key);
    state
        .user_index(key)
        .ok_or_else(|| GraphError::not_found(key))
}

/// Delegated `User.Read`/`User.ReadWrite` only reach the signed-in user.
fn check_read(caller: &Caller, target: uuid::Uuid) -> GraphResult<()> {
    caller.require(USER_READ)?;
    if caller.is_delegated()
        && !caller.is_self(target)
        && caller
            .require(Perms {
                app: &[],
                delegated: &USER_READ.delegated[2..],
            })
            .is_err()
    {
        return Err(GraphError::forbidden());
    }
    Ok(())
}

pub async fn get(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    let q = ODataQuery::from_request(&req)?;
    let state = shared.state();
    let i = find_user(&state, &path)?;
    let u = &state.users[i];
    check_read(&caller, u.id)?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#{}/$entity",
            shared.metadata(),
            context_fragment("users", q.select.as_deref())
        )),
    );
    body.extend(render_user(&state, u, q.select.as_deref())?);
    Ok(HttpResponse::Ok().json(body))
}

pub async fn me(req: HttpRequest, shared: Data<Shared>, caller: Caller) -> GraphResult {
    let Some(id) = caller.user else {
        return Err(GraphError::bad_request(
            "/me request is only valid with delegated authentication flow.",
        ));
    };
    get(req, shared, caller, web::Path::from(id.to_string())).await
}

/// How a property may be filtered on (filter-directory-objects.md).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    List,
    Bool,
    Date,
}

/// (name, kind, needs advanced query for every operator)
const FILTERABLE: &[(&str, Kind, bool)] = &[
    ("id", Kind::Str, false),
    ("userPrincipalName", Kind::Str, false),
    ("mail", Kind::Str, false),
    ("displayName", Kind::Str, false),
    ("givenName", Kind::Str, false),
    ("surname", Kind::Str, false),
    ("jobTitle", Kind::Str, false),
    ("mailNickname", Kind::Str, false),
    ("employeeId", Kind::Str, false),
    ("userType", Kind::Str, false),
    ("usageLocation", Kind::Str, false),
    ("preferredLanguage", Kind::Str, false),
    ("onPremisesImmutableId", Kind::Str, false),
    ("accountEnabled", Kind::Bool, false),
    ("onPremisesSyncEnabled", Kind::Bool, false),
    ("otherMails", Kind::List, false),
    ("proxyAddresses", Kind::List, false),
    ("businessPhones", Kind::List, false),
    ("mobilePhone", Kind::Str, true),
    ("onPremisesSamAccountName", Kind::Str, true),
    ("employeeHireDate", Kind::Date, true),
    ("createdDateTime", Kind::Date, true),
    ("lastPasswordChangeDateTime", Kind::Date, true),
];

fn filterable(p: &str) -> Option<(&'static str, Kind, bool)> {
    FILTERABLE
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(p))
        .copied()
}

fn unknown_property(p: &str) -> GraphError {
    if OTHER_SCHEMA_PROPERTIES
        .iter()
        .chain(["passwordPolicies", "passwordProfile", "identities"].iter())
        .any(|k| k.eq_ignore_ascii_case(p))
    {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "The request uses a filter property that is not indexed",
        )
    } else {
        GraphError::bad_request(format!(
            "Property '{p}' does not exist as a declared property or extension property."
        ))
    }
}

fn invalid_filter(e: impl std::fmt::Display) -> GraphError {
    GraphError::bad_request(e.to_string())
}

/// Checks properties and operators; returns whether the filter needs an advanced query.
fn check_filter(e: &Expr, lambda_var: Option<&str>) -> GraphResult<bool> {
    let is_var = |p: &str| lambda_var == Some(p);
    Ok(match e {
        Expr::Or(a, b) | Expr::And(a, b) => {
            check_filter(a, lambda_var)? | check_filter(b, lambda_var)?
        }
        Expr::Not(a) => {
            check_filter(a, lambda_var)?;
            true
        }
        Expr::Cmp(p, op, lit) => {
            let advanced_op = *op != filter::CmpOp::Eq || *lit == Literal::Null;
            if is_var(p) {
                advanced_op
            } else {
                let (_, kind, adv) = filterable(p).ok_or_else(|| unknown_property(p))?;
                if kind == Kind::List {
                    return Err(invalid_filter(format!(
                        "Invalid filter clause: '{p}' is a collection; use '{p}/any(x:x eq ...)'."
                    )));
                }
                adv || advanced_op || (kind == Kind::Date)
            }
        }
        Expr::Func(func, p, _) => {
            let endswith = *func == Func::EndsWith;
            if is_var(p) {
                endswith
            } else {
                let (_, kind, adv) = filterable(p).ok_or_else(|| unknown_property(p))?;
                if kind != Kind::Str {
                    return Err(invalid_filter(format!(
                        "Invalid filter clause: function not supported on '{p}'."
                    )));
                }
                adv || endswith
            }
        }
        Expr::Any(p, var, body) => {
            let (_, kind, adv) = filterable(p).ok_or_else(|| unknown_property(p))?;
            if kind != Kind::List {
                return Err(invalid_filter(format!(
                    "Invalid filter clause: '{p}' is not a collection."
                )));
            }
            adv | check_filter(body, Some(var))?
        }
    })
}

struct UserRecord<'a>(&'a User);

impl Record for UserRecord<'_> {
    fn get(&self, property: &str) -> Option<filter::Value<'_>> {
        use filter::Value as V;
        use std::borrow::Cow;
        let u = self.0;
        let (name, _, _) = filterable(property)?;
        Some(match name {
            "id" => V::Str(Some(Cow::Owned(u.id.to_string()))),
            "userPrincipalName" => V::Str(Some(Cow::Borrowed(&u.upn))),
            "mail" => opt(&u.mail),
            "displayName" => V::Str(Some(Cow::Borrowed(&u.display_name))),
            "givenName" => opt(&u.given_name),
            "surname" => opt(&u.surname),
            "jobTitle" => opt(&u.job_title),
            "mailNickname" => opt(&u.mail_nickname),
            "employeeId" => opt(&u.employee_id),
            "userType" => V::Str(Some(Cow::Borrowed(&u.user_type))),
            "usageLocation" => opt(&u.usage_location),
            "preferredLanguage" => opt(&u.preferred_language),
            "onPremisesImmutableId" => opt(&u.on_premises_immutable_id),
            "accountEnabled" => V::Bool(Some(u.account_enabled)),
            "onPremisesSyncEnabled" => V::Bool(u.on_premises_sync_enabled),
            "otherMails" => V::List(Cow::Borrowed(&u.other_mails)),
            "proxyAddresses" => V::List(Cow::Borrowed(&u.proxy_addresses)),
            "businessPhones" => V::List(Cow::Borrowed(&u.business_phones)),
            "mobilePhone" => opt(&u.mobile_phone),
            "onPremisesSamAccountName" => opt(&u.on_premises_sam_account_name),
            "employeeHireDate" => V::Date(u.employee_hire_date.map(|d| Cow::Owned(fmt::graph(d)))),
            "createdDateTime" => V::Date(Some(Cow::Owned(fmt::graph(u.created)))),
            "lastPasswordChangeDateTime" => {
                V::Date(Some(Cow::Owned(fmt::graph(u.last_password_change))))
            }
            _ => return None,
        })
    }
}

/// Whether `property eq 'text'` (or an element of a list property equal to it) can hold for
/// `u`: exact for the properties sign-in names are looked up by, `true` (evaluate fully) for
/// any other.
fn may_equal(u: &User, property: &str, text: &str) -> bool {
    let is = |v: &str| filter::eq_ignore_case(v, text);
    let p = property;
    if p.eq_ignore_ascii_case("userPrincipalName") {
        is(&u.upn)
    } else if p.eq_ignore_ascii_case("mail") {
        u.mail.as_deref().is_some_and(is)
    } else if p.eq_ignore_ascii_case("otherMails") {
        u.other_mails.iter().any(|m| is(m))
    } else if p.eq_ignore_ascii_case("proxyAddresses") {
        u.proxy_addresses.iter().any(|m| is(m))
    } else {
        true
    }
}

/// A borrowed optional text property.
fn opt(v: &Option<String>) -> filter::Value<'_> {
    filter::Value::Str(v.as_deref().map(std::borrow::Cow::Borrowed))
}

/// `$search="displayName:adele" AND "mail:contoso"`: each clause matches a word prefix of the
/// property (Graph tokenises on spaces and punctuation).
fn search_matches(u: &User, search: &str) -> GraphResult<bool> {
    let mut any_or = false;
    let mut all = true;
    let mut saw_or = false;
    for part in search.split('"').filter(|p| !p.trim().is_empty()) {
        let t = part.trim();
        if t.eq_ignore_ascii_case("and") {
            continue;
        }
        if t.eq_ignore_ascii_case("or") {
            saw_or = true;
            continue;
        }
        let (prop, needle) = t.split_once(':').ok_or_else(|| {
            GraphError::bad_request("Invalid $search query: expected \"property:value\".")
        })?;
        let value = match prop.to_ascii_lowercase().as_str() {
            "displayname" => Some(u.display_name.clone()),
            "mail" => u.mail.clone(),
            "userprincipalname" => Some(u.upn.clone()),
            "givenname" => u.given_name.clone(),
            "surname" => u.surname.clone(),
            "mailnickname" => u.mail_nickname.clone(),
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Unsupported $search property '{prop}'."
                )));
            }
        };
        let needle = needle.to_lowercase();
        let hit = value.is_some_and(|v| {
            v.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.starts_with(&needle))
                || v.to_lowercase().starts_with(&needle)
        });
        any_or |= hit;
        all &= hit;
    }
    Ok(if saw_or { any_or } else { all })
}

/// The users matching the request's `$filter`/`$search`/`$orderby`, after the advanced-query rules.
fn select_users<'a>(state: &'a State, q: &ODataQuery) -> GraphResult<Vec<&'a User>> {
    q.check_search_allowed()?;
    let expr = match &q.filter {
        Some(f) => {
            let e = filter::parse(f).map_err(invalid_filter)?;
            if check_filter(&e, None)? && !q.is_advanced() {
                return Err(GraphError::unsupported_query());
            }
            Some(e)
        }
        None => None,
    };
    if q.orderby.is_some() && q.filter.is_some() && !q.is_advanced() {
        return Err(GraphError::unsupported_query());
    }
    // A lookup by name or address (the common case) checks a few fields per user before the
    // whole expression: the evaluator's cost per user made every sign-in name lookup scan
    // thousands of users the slow way.
    let equalities = expr.as_ref().and_then(Expr::required_equalities);
    let mut users: Vec<&User> = Vec::new();
    for u in &state.users {
        if let Some(eqs) = &equalities
            && !eqs.iter().any(|(p, l)| may_equal(u, p, l))
        {
            continue;
        }
        if let Some(e) = &expr
            && !e.eval(&UserRecord(u))
        {
            continue;
        }
        if let Some(s) = &q.search
            && !search_matches(u, s)?
        {
            continue;
        }
        users.push(u);
    }
    if let Some(ob) = &q.orderby {
        let mut parts = ob.split_whitespace();
        let prop = parts.next().unwrap_or("");
        let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        match prop.to_ascii_lowercase().as_str() {
            "displayname" => users.sort_by_key(|u| u.display_name.to_lowercase()),
            "userprincipalname" => users.sort_by_key(|u| u.upn.to_lowercase()),
            _ => return Err(GraphError::unsupported_query()),
        }
        if desc {
            users.reverse();
        }
    }
    Ok(users)
}

const USER_LIST: Perms = Perms {
    app: USER_READ.app,
    delegated: &[
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

pub async fn list(req: HttpRequest, shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(USER_LIST)?;
    let q = ODataQuery::from_request(&req)?;
    let state = shared.state();
    let users = select_users(&state, &q)?;
    let total = users.len();
    let items = users
        .into_iter()
        .map(|u| render_user(&state, u, q.select.as_deref()).map(Value::Object))
        .collect::<GraphResult<Vec<_>>>()?;
    let (page, next) = paging::page(items, &q, &shared.graph_base(), "/users")?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#{}",
            shared.metadata(),
            context_fragment("users", q.select.as_deref())
        )),
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

/// `GET /users/$count`: needs `ConsistencyLevel: eventual`; answers `text/plain`.
pub async fn count(req: HttpRequest, shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(USER_LIST)?;
    let mut q = ODataQuery::from_request(&req)?;
    if !q.eventual {
        return Err(GraphError::bad_request(
            "$count is not currently supported.",
        ));
    }
    // `/$count` is itself the count request: treat it as advanced.
    q.count = true;
    let state = shared.state();
    let n = select_users(&state, &q)?.len();
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body(n.to_string()))
}

fn str_field(body: &Map<String, Value>, k: &str) -> GraphResult<Option<String>> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::bad_request(format!(
            "Invalid value specified for property '{k}' of resource 'User'."
        ))),
    }
}

fn str_list(v: &Value, k: &str) -> GraphResult<Vec<String>> {
    v.as_array()
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| {
            GraphError::bad_request(format!(
                "Invalid value specified for property '{k}' of resource 'User'."
            ))
        })
}

/// `passwordProfile` from a request body: (password, forceChangePasswordNextSignIn).
fn password_profile(v: &Value) -> GraphResult<(Option<String>, bool)> {
    let o = v.as_object().ok_or_else(|| {
        GraphError::bad_request(
            "Invalid value specified for property 'passwordProfile' of resource 'User'.",
        )
    })?;
    let pw = o.get("password").and_then(Value::as_str).map(str::to_owned);
    let force = o
        .get("forceChangePasswordNextSignIn")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((pw, force))
}

pub async fn create(
    shared: Data<Shared>,
    caller: Caller,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    caller.require(USER_WRITE)?;
    if caller.is_delegated()
        && !caller.has_role(&[
            crate::roles::USER_ADMINISTRATOR,
            crate::roles::GLOBAL_ADMINISTRATOR,
        ])
    {
        return Err(GraphError::forbidden());
    }
    let now = shared.clock.now();
    let mut state = shared.state();
    for required in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "userPrincipalName",
        "passwordProfile",
    ] {
        if body.get(required).is_none_or(Value::is_null) {
            return Err(GraphError::bad_request(format!(
                "Property '{required}' is required when creating the user."
            )));
        }
    }
    let upn = str_field(&body, "userPrincipalName")?.unwrap_or_default();
    let domain_ok = upn.rsplit_once('@').is_some_and(|(_, d)| {
        d.eq_ignore_ascii_case(&state.tenant.initial_domain)
            || state
                .domains
                .iter()
                .any(|x| x.is_verified && x.name.eq_ignore_ascii_case(d))
    });
    if upn.parse::<latchkey_types::Upn>().is_err() || !domain_ok {
        return Err(GraphError::bad_request(
            "Property userPrincipalName is invalid.",
        ));
    }
    if state.user_index(&upn).is_some() {
        return Err(GraphError::bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
        ));
    }
    let (pw, force) = password_profile(&body["passwordProfile"])?;
    let pw = pw.ok_or_else(|| {
        GraphError::bad_request(
            "Property 'passwordProfile.password' is required when creating the user.",
        )
    })?;
    password::check(&state.password_policy, &pw).map_err(|_| GraphError::password_complexity())?;
    let fixture = crate::fixture::UserFixture {
        upn: upn.clone(),
        display_name: str_field(&body, "displayName")?.unwrap_or_default(),
        given_name: str_field(&body, "givenName")?,
        surname: str_field(&body, "surname")?,
        mail: str_field(&body, "mail")?,
        mail_nickname: str_field(&body, "mailNickname")?,
        mobile_phone: str_field(&body, "mobilePhone")?,
        job_title: str_field(&body, "jobTitle")?,
        employee_id: str_field(&body, "employeeId")?,
        usage_location: str_field(&body, "usageLocation")?,
        preferred_language: str_field(&body, "preferredLanguage")?,
        account_enabled: body.get("accountEnabled").and_then(Value::as_bool),
        id: Some(uuid::Uuid::new_v4().to_string()),
        password: pw,
        created: Some(fmt::graph(now)),
        ..Default::default()
    };
    let mut user = crate::state::build_user(&fixture, now).map_err(GraphError::bad_request)?;
    user.force_change_password_next_sign_in = force;
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(format!("{}#users/$entity", shared.metadata())),
    );
    out.extend(render_user(&state, &user, None)?);
    state.insert_user(user);
    Ok(HttpResponse::Created().json(out))
}

/// Properties an update may set (others: 400 "Invalid property").
const UPDATABLE: &[&str] = &[
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "usageLocation",
    "employeeId",
    "otherMails",
    "businessPhones",
    "passwordProfile",
    "passwordPolicies",
];

/// Properties a synced user still takes from the cloud.
const CLOUD_MASTERED_ON_SYNCED: &[&str] = &["usageLocation", "preferredLanguage"];

/// Sensitive actions (privileged-roles-permissions.md): delegated callers need a role that may
/// reset the target's password.
const SENSITIVE: &[&str] = &[
    "accountEnabled",
    "businessPhones",
    "mobilePhone",
    "otherMails",
    "passwordProfile",
];

pub async fn update(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    let now = shared.clock.now();
    let only_password = body.keys().all(|k| k == "passwordProfile");
    if only_password {
        caller.require(PASSWORD_WRITE)?;
    } else {
        caller.require(USER_WRITE)?;
    }
    let mut state = shared.state();
    let i = find_user(&state, &path)?;
    for k in body.keys() {
        if !UPDATABLE.contains(&k.as_str()) {
            return Err(GraphError::bad_request(format!("Invalid property '{k}'.")));
        }
    }
    let target = state.users[i].clone();
    if body.contains_key("passwordProfile") {
        // App-only: the app's service principal needs at least User Administrator, and a role
        // that outranks the target's ("Who can reset passwords").
        if !caller.may_reset_password_of(&target.roles) {
            return Err(GraphError::forbidden());
        }
    } else if caller.is_delegated()
        && body.keys().any(|k| SENSITIVE.contains(&k.as_str()))
        && !caller.may_reset_password_of(&target.roles)
    {
        return Err(GraphError::forbidden());
    }
    if target.is_synced()
        && body
            .keys()
            .any(|k| !CLOUD_MASTERED_ON_SYNCED.contains(&k.as_str()))
    {
        return Err(GraphError::on_prem_mastered());
    }
    let mut new_password = None;
    if let Some(pp) = body.get("passwordProfile") {
        let (pw, force) = password_profile(pp)?;
        if let Some(pw) = pw {
            password::check(&state.password_policy, &pw)
                .map_err(|_| GraphError::password_complexity())?;
            new_password = Some((pw, force));
        } else {
            state.users[i].force_change_password_next_sign_in = force;
        }
    }
    // Validate everything before changing anything.
    let mut updated = state.users[i].clone();
    for (k, v) in body.iter() {
        match k.as_str() {
            "accountEnabled" => {
                updated.account_enabled = v.as_bool().ok_or_else(|| {
                    GraphError::bad_request(
                        "Invalid value specified for property 'accountEnabled' of resource 'User'.",
                    )
                })?
            }
            "displayName" => {
                updated.display_name = str_field(&body, k)?.ok_or_else(|| {
                    GraphError::bad_request(
                        "Invalid value specified for property 'displayName' of resource 'User'.",
                    )
                })?
            }
            "givenName" => updated.given_name = str_field(&body, k)?,
            "surname" => updated.surname = str_field(&body, k)?,
            "jobTitle" => updated.job_title = str_field(&body, k)?,
            "mail" => updated.mail = str_field(&body, k)?,
            "mobilePhone" => updated.mobile_phone = str_field(&body, k)?,
            "officeLocation" => updated.office_location = str_field(&body, k)?,
            "preferredLanguage" => updated.preferred_language = str_field(&body, k)?,
            "usageLocation" => updated.usage_location = str_field(&body, k)?,
            "employeeId" => updated.employee_id = str_field(&body, k)?,
            "passwordPolicies" => updated.password_policies = str_field(&body, k)?,
            "otherMails" => updated.other_mails = str_list(v, k)?,
            "businessPhones" => updated.business_phones = str_list(v, k)?,
            _ => {}
        }
    }
    let force_now = updated.force_change_password_next_sign_in;
    state.users[i] = updated;
    state.users[i].force_change_password_next_sign_in = force_now;
    // A property change is a change for delta; a password change alone is not (Graph tracks
    // no password property a delta client could select).
    if body.keys().any(|k| k != "passwordProfile") {
        state.touch_user(i);
    }
    if let Some((pw, force)) = new_password {
        // An admin-set temporary password vs. a password the user chose through SSPR.
        let detail = if force {
            "adminGeneratedTemporaryPassword"
        } else {
            "userPerformedSecuredPasswordReset"
        };
        state.apply_password(i, &pw, force, detail, now);
    }
    Ok(HttpResponse::NoContent().finish())
}
