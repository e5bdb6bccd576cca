//! The tokens the STS issues. Claims follow real v1.0 Graph access tokens (Graph always gets
//! v1 tokens: `iss` = `https://sts.windows.net/{tid}/`) and v2.0 id tokens.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::roles;
use crate::state::{App, State, User};
use crate::tokens::{Keys, b64, random_token};

/// Access tokens live 3599 s from the response's point of view (`expires_in`).
pub const ACCESS_TOKEN_SECONDS: i64 = 3599;

/// How the client proved itself (`appidacr`): 0 public, 1 secret, 2 certificate.
#[derive(Debug, Clone, Copy)]
pub enum ClientAuth {
    Public,
    Secret,
    Certificate,
}

impl ClientAuth {
    fn acr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Certificate => "2",
        }
    }
}

fn uti() -> String {
    random_token(16)
}

/// A pairwise `sub`: stable per user and app, not the object id.
fn pairwise_sub(user: Uuid, app: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, format!("{user}:{app}").as_bytes());
    b64(d.as_ref())
}

pub fn app_token(keys: &Keys, state: &State, app: &App, auth: ClientAuth, now: i64) -> String {
    let tid = state.tenant_id.to_string();
    let mut wids: Vec<String> = app.roles.iter().cloned().collect();
    wids.push(roles::DEFAULT_APP_WID.to_owned());
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now,
        "nbf": now,
        "exp": now + ACCESS_TOKEN_SECONDS + 1,
        "aio": random_token(24),
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": auth.acr(),
        "idp": format!("https://sts.windows.net/{tid}/"),
        "idtyp": "app",
        "oid": app.sp_id.to_string(),
        "rh": random_token(12),
        "roles": app.permissions.iter().collect::<Vec<_>>(),
        "sub": app.sp_id.to_string(),
        "tenant_region_scope": "EU",
        "tid": tid,
        "uti": uti(),
        "ver": "1.0",
        "wids": wids,
        "xms_tcdt": state.created.unix_timestamp(),
    });
    keys.sign(&claims)
}

/// Delegated access token for Graph with `scp` = the Graph scopes granted.
pub fn user_token(
    keys: &Keys,
    state: &State,
    app: &App,
    user: &User,
    graph_scopes: &[String],
    auth: ClientAuth,
    now: i64,
) -> String {
    let tid = state.tenant_id.to_string();
    let mut wids: Vec<String> = user.roles.iter().cloned().collect();
    wids.push(roles::DEFAULT_USER_ROLE.to_owned());
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now,
        "nbf": now,
        "exp": now + ACCESS_TOKEN_SECONDS + 1,
        "acct": 0,
        "acr": "1",
        "aio": random_token(24),
        "amr": ["pwd"],
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": auth.acr(),
        "family_name": user.surname,
        "given_name": user.given_name,
        "idtyp": "user",
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.id.to_string(),
        "platf": "3",
        "rh": random_token(12),
        "scp": graph_scopes.join(" "),
        "sid": Uuid::new_v4().to_string(),
        "sub": pairwise_sub(user.id, "00000003-0000-0000-c000-000000000000"),
        "tenant_region_scope": "EU",
        "tid": tid,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": uti(),
        "ver": "1.0",
        "wids": wids,
        "xms_tcdt": state.created.unix_timestamp(),
    });
    keys.sign(&claims)
}

#[allow(clippy::too_many_arguments)]
pub fn id_token(
    keys: &Keys,
    base_url: &str,
    state: &State,
    app: &App,
    user: &User,
    nonce: Option<&str>,
    with_email: bool,
    now: i64,
) -> String {
    let tid = state.tenant_id.to_string();
    let mut claims = json!({
        "aud": app.client_id,
        "iss": format!("{base_url}/{tid}/v2.0"),
        "iat": now,
        "nbf": now,
        "exp": now + ACCESS_TOKEN_SECONDS + 1,
        "aio": random_token(24),
        "name": user.display_name,
        "oid": user.id.to_string(),
        "preferred_username": user.upn,
        "rh": random_token(12),
        "sid": Uuid::new_v4().to_string(),
        "sub": pairwise_sub(user.id, &app.client_id),
        "tid": tid,
        "uti": uti(),
        "ver": "2.0",
    });
    if let Some(n) = nonce {
        claims["nonce"] = Value::String(n.to_owned());
    }
    if with_email && let Some(m) = &user.mail {
        claims["email"] = Value::String(m.clone());
    }
    keys.sign(&claims)
}
