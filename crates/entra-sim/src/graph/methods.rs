//! `/users/{id}/authentication/...`: list all methods, per-type lists, get one, create phone /
//! email / Temporary Access Pass, delete per type.
//!
//! Delegated callers acting on someone else need a role (reads: Global Reader, Authentication
//! Administrator, Privileged Authentication Administrator, Global Administrator; writes: the
//! last three, within "Who can reset passwords"). Authentication Administrators see masked
//! phone numbers, as the docs say.

use actix_web::HttpResponse;
use actix_web::web::{self, Data, Json};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use super::users::find_user;
use crate::app::Shared;
use crate::clock::fmt;
use crate::roles::{
    AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
};
use crate::state::methods::{self, MethodKind, PhoneMethod, PhoneType, TapMethod};
use crate::state::{State, User};

const READ_OWN: &[&str] = &[
    "UserAuthenticationMethod.Read",
    "UserAuthenticationMethod.ReadWrite",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];
const READ_ALL: &[&str] = &[
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];
const WRITE_OWN: &[&str] = &[
    "UserAuthenticationMethod.ReadWrite",
    "UserAuthenticationMethod.ReadWrite.All",
];
const WRITE_ALL: &[&str] = &["UserAuthenticationMethod.ReadWrite.All"];

/// Granular per-type permissions that also grant access to one collection.
fn granular(kind: Option<MethodKind>, write: bool) -> &'static [&'static str] {
    match (kind, write) {
        (Some(MethodKind::Phone), false) => &[
            "UserAuthMethod-Phone.Read.All",
            "UserAuthMethod-Phone.ReadWrite.All",
        ],
        (Some(MethodKind::Phone), true) => &["UserAuthMethod-Phone.ReadWrite.All"],
        (Some(MethodKind::Email), false) => &[
            "UserAuthMethod-Email.Read.All",
            "UserAuthMethod-Email.ReadWrite.All",
        ],
        (Some(MethodKind::Email), true) => &["UserAuthMethod-Email.ReadWrite.All"],
        (Some(MethodKind::TemporaryAccessPass), false) => &[
            "UserAuthMethod-TAP.Read.All",
            "UserAuthMethod-TAP.ReadWrite.All",
        ],
        (Some(MethodKind::TemporaryAccessPass), true) => &["UserAuthMethod-TAP.ReadWrite.All"],
        (Some(MethodKind::Fido2), false) => &[
            "UserAuthMethod-Passkey.Read.All",
            "UserAuthMethod-Passkey.ReadWrite.All",
        ],
        (Some(MethodKind::Fido2), true) => &["UserAuthMethod-Passkey.ReadWrite.All"],
        _ => &[],
    }
}

fn allowed(
    caller: &Caller,
    base: &'static [&'static str],
    kind: Option<MethodKind>,
    write: bool,
) -> bool {
    let extra = granular(kind, write);
    caller
        .require(Perms {
            app: base,
            delegated: base,
        })
        .is_ok()
        || caller
            .require(Perms {
                app: extra,
                delegated: extra,
            })
            .is_ok()
}

/// Read check; returns whether phone numbers must be masked.
fn check_read(caller: &Caller, target: &User, kind: Option<MethodKind>) -> GraphResult<bool> {
    if !caller.is_delegated() {
        return if allowed(caller, READ_ALL, kind, false) {
            Ok(false)
        } else {
            Err(GraphError::forbidden())
        };
    }
    if caller.is_self(target.id) {
        return if allowed(caller, READ_OWN, kind, false) {
            Ok(false)
        } else {
            Err(GraphError::forbidden())
        };
    }
    if !allowed(caller, READ_ALL, kind, false)
        || !caller.has_role(&[
            GLOBAL_READER,
            AUTHENTICATION_ADMINISTRATOR,
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            GLOBAL_ADMINISTRATOR,
        ])
    {
        return Err(GraphError::forbidden());
    }
    Ok(!caller.has_role(&[
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        GLOBAL_ADMINISTRATOR,
    ]))
}

pub(crate) fn check_write(
    caller: &Caller,
    target: &User,
    kind: Option<MethodKind>,
) -> GraphResult<()> {
    let ok = if !caller.is_delegated() {
        allowed(caller, WRITE_ALL, kind, true)
    } else if caller.is_self(target.id) {
        allowed(caller, WRITE_OWN, kind, true)
    } else {
        allowed(caller, WRITE_ALL, kind, true)
            && caller.has_role(&[
                AUTHENTICATION_ADMINISTRATOR,
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
                GLOBAL_ADMINISTRATOR,
            ])
            && caller.may_reset_password_of(&target.roles)
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

/// `+1 2065555555` → `+1 XXXXXXXX55`.
fn mask(number: &str) -> String {
    match number.split_once(' ') {
        Some((cc, rest)) => {
            let keep = rest.len().saturating_sub(2);
            format!("{cc} {}{}", "X".repeat(keep), &rest[keep..])
        }
        None => number.to_owned(),
    }
}

fn masked(mut items: Vec<Value>, mask_phones: bool) -> Vec<Value> {
    if mask_phones {
        for v in &mut items {
            if let Some(Value::String(n)) = v.get_mut("phoneNumber") {
                *n = mask(n);
            }
        }
    }
    items
}

fn kind_of(segment: &str) -> GraphResult<MethodKind> {
    MethodKind::from_segment(segment).ok_or_else(|| {
        GraphError::odata_bad_request(format!("Resource not found for the segment '{segment}'."))
    })
}

fn list_body(shared: &Shared, user: &User, segment: &str, items: Vec<Value>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#users('{}')/authentication/{segment}", shared.metadata(), user.id),
        "value": items,
    }))
}

pub async fn list_all(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    let now = shared.clock.now();
    let state = shared.state();
    let u = &state.users[find_user(&state, &path)?];
    let mask_phones = check_read(&caller, u, None)?;
    let items = masked(u.methods.all(now), mask_phones);
    Ok(list_body(&shared, u, "methods", items))
}

pub async fn list_kind(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> GraphResult {
    let (id, segment) = path.into_inner();
    let kind = kind_of(&segment)?;
    let now = shared.clock.now();
    let state = shared.state();
    let u = &state.users[find_user(&state, &id)?];
    let mask_phones = check_read(&caller, u, Some(kind))?;
    let items = masked(u.methods.list(kind, now), mask_phones);
    Ok(list_body(&shared, u, &segment, items))
}

pub async fn get_one(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> GraphResult {
    let (id, segment, mid) = path.into_inner();
    let kind = if segment == "methods" {
        None
    } else {
        Some(kind_of(&segment)?)
    };
    let now = shared.clock.now();
    let state = shared.state();
    let u = &state.users[find_user(&state, &id)?];
    let mask_phones = check_read(&caller, u, kind)?;
    let items = match kind {
        Some(k) => u.methods.list(k, now),
        None => u.methods.all(now),
    };
    let item = masked(items, mask_phones)
        .into_iter()
        .find(|m| {
            m.get("id")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(&mid))
        })
        .ok_or_else(|| GraphError::not_found(&mid))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#users('{}')/authentication/{segment}/$entity",
            shared.metadata(),
            u.id
        )),
    );
    if let Value::Object(o) = item {
        body.extend(o);
    }
    Ok(HttpResponse::Ok().json(body))
}

pub async fn create(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    let (id, segment) = path.into_inner();
    let kind = kind_of(&segment)?;
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &id)?;
    check_write(&caller, &state.users[i], Some(kind))?;
    let created = match kind {
        MethodKind::Phone => create_phone(&mut state, i, &body)?,
        MethodKind::Email => create_email(&mut state, i, &body)?,
        MethodKind::TemporaryAccessPass => create_tap(&mut state, i, &body, now)?,
        _ => {
            return Err(GraphError::bad_request(format!(
                "Creating {segment} is not supported by this simulator."
            )));
        }
    };
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#users('{}')/authentication/{segment}/$entity",
            shared.metadata(),
            state.users[i].id
        )),
    );
    if let Value::Object(o) = created {
        out.extend(o);
    }
    Ok(HttpResponse::Created().json(out))
}

fn create_phone(state: &mut State, i: usize, body: &Map<String, Value>) -> GraphResult<Value> {
    if body.contains_key("smsSignInState") {
        return Err(GraphError::bad_request(
            "Property 'smsSignInState' is read-only and cannot be set.",
        ));
    }
    let number = body
        .get("phoneNumber")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("Property 'phoneNumber' is required."))?;
    let phone_type = body
        .get("phoneType")
        .and_then(Value::as_str)
        .and_then(PhoneType::parse)
        .ok_or_else(|| {
            GraphError::bad_request(
                "Invalid value specified for property 'phoneType'. Expected mobile, alternateMobile or office.",
            )
        })?;
    if !methods::valid_phone_number(number) {
        return Err(GraphError::bad_request(
            "Invalid phone number. Use the format '+{country code} {number}x{extension}'.",
        ));
    }
    let m = &mut state.users[i].methods;
    if m.phones.iter().any(|p| p.phone_type == phone_type) {
        return Err(GraphError::bad_request(format!(
            "A phone method of type '{}' already exists for this user.",
            phone_type.as_str()
        )));
    }
    if phone_type == PhoneType::AlternateMobile
        && !m.phones.iter().any(|p| p.phone_type == PhoneType::Mobile)
    {
        return Err(GraphError::bad_request(
            "An alternateMobile phone method requires a mobile phone method.",
        ));
    }
    let phone = PhoneMethod {
        phone_type,
        number: number.to_owned(),
        sms_sign_in_state: if phone_type == PhoneType::Mobile {
            "ready".into()
        } else {
            "notSupported".into()
        },
    };
    let out = json!({
        "id": phone_type.id(),
        "phoneNumber": phone.number,
        "phoneType": phone_type.as_str(),
        "smsSignInState": phone.sms_sign_in_state,
    });
    m.phones.push(phone);
    Ok(out)
}

fn create_email(state: &mut State, i: usize, body: &Map<String, Value>) -> GraphResult<Value> {
    let addr = body
        .get("emailAddress")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("Property 'emailAddress' is required."))?;
    if addr.parse::<latchkey_types::EmailAddress>().is_err() {
        return Err(GraphError::bad_request("Invalid email address."));
    }
    let m = &mut state.users[i].methods;
    if m.email.is_some() {
        return Err(GraphError::bad_request(
            "An email authentication method already exists for this user.",
        ));
    }
    m.email = Some(addr.to_owned());
    Ok(json!({ "id": methods::EMAIL_METHOD_ID, "emailAddress": addr }))
}

/// A pass like the documented `+drkzqAD`.
fn generate_pass(len: u32) -> String {
    const SET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789+!#$%&";
    let mut b = vec![0u8; len as usize];
    SystemRandom::new()
        .fill(&mut b)
        .expect("system randomness is available");
    b.iter()
        .map(|x| SET[*x as usize % SET.len()] as char)
        .collect()
}

fn create_tap(
    state: &mut State,
    i: usize,
    body: &Map<String, Value>,
    now: time::OffsetDateTime,
) -> GraphResult<Value> {
    let policy = state.tap_policy.clone();
    if !policy.enabled {
        // Undocumented error body (graph.md §7): reported as a 400 in the directory shape.
        return Err(GraphError::bad_request(
            "The Temporary Access Pass authentication method is disabled by policy.",
        ));
    }
    let lifetime = match body.get("lifetimeInMinutes") {
        None | Some(Value::Null) => policy.default_lifetime_minutes,
        Some(v) => v.as_u64().map(|n| n as u32).ok_or_else(|| {
            GraphError::bad_request("Invalid value specified for property 'lifetimeInMinutes'.")
        })?,
    };
    let min = policy.minimum_lifetime_minutes.max(10);
    let max = policy.maximum_lifetime_minutes.min(43200);
    if lifetime < min || lifetime > max {
        return Err(GraphError::bad_request(format!(
            "The lifetimeInMinutes must be between {min} and {max} as configured by policy."
        )));
    }
    let usable_once = match body.get("isUsableOnce") {
        None | Some(Value::Null) => policy.is_usable_once,
        Some(v) => v.as_bool().ok_or_else(|| {
            GraphError::bad_request("Invalid value specified for property 'isUsableOnce'.")
        })?,
    };
    if policy.is_usable_once && !usable_once {
        return Err(GraphError::bad_request(
            "A multi-use Temporary Access Pass is not allowed by policy.",
        ));
    }
    let start = match body.get("startDateTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(fmt::parse(s).ok_or_else(|| {
            GraphError::bad_request("Invalid value specified for property 'startDateTime'.")
        })?),
        Some(_) => {
            return Err(GraphError::bad_request(
                "Invalid value specified for property 'startDateTime'.",
            ));
        }
    };
    let tap = TapMethod {
        id: methods::new_method_id(),
        created: now,
        start,
        lifetime_minutes: lifetime,
        is_usable_once: usable_once,
        used: false,
    };
    let pass = generate_pass(policy.default_length);
    let out = tap.to_json(now, Some(&pass));
    // One TAP per user: a new one replaces the old.
    state.users[i].methods.temporary_access_pass = Some(tap);
    Ok(out)
}

pub async fn delete(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> GraphResult {
    let (id, segment, mid) = path.into_inner();
    let kind = kind_of(&segment)?;
    let mut state = shared.state();
    let i = find_user(&state, &id)?;
    check_write(&caller, &state.users[i], Some(kind))?;
    match state.users[i].methods.delete(kind, &mid) {
        Ok(true) => Ok(HttpResponse::NoContent().finish()),
        Ok(false) => Err(GraphError::not_found(&mid)),
        Err(msg) => Err(GraphError::bad_request(msg)),
    }
}
