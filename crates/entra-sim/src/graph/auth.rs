//! Who is calling Graph: the bearer token, checked the way Graph checks it (signature, audience,
//! lifetime, tenant), and the permission tests handlers apply.
//!
//! Permissions come from the token (`roles` for app-only, `scp` for delegated), as in Entra:
//! changing an app's permissions affects tokens issued afterwards, not tokens already out.

use std::collections::BTreeSet;
use std::future::{Ready, ready};

use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use uuid::Uuid;

use super::error::GraphError;
use crate::app::Shared;
use crate::roles;

/// Audiences Graph accepts.
const GRAPH_AUDIENCES: [&str; 3] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
];

#[derive(Debug, Clone)]
pub struct Caller {
    pub app_id: String,
    /// `Some(user id)` for delegated tokens, `None` for app-only.
    pub user: Option<Uuid>,
    /// Application permissions (`roles`) or delegated scopes (`scp`).
    pub permissions: BTreeSet<String>,
    /// Directory role template ids (`wids`).
    pub wids: BTreeSet<String>,
}

/// Permissions accepted for an operation, per token kind. An empty list means "not supported"
/// for that kind (e.g. `resetPassword` has no application permission).
#[derive(Debug, Clone, Copy)]
pub struct Perms {
    pub app: &'static [&'static str],
    pub delegated: &'static [&'static str],
}

impl Caller {
    pub fn is_delegated(&self) -> bool {
        self.user.is_some()
    }

    fn has_any(&self, list: &[&str]) -> bool {
        list.iter()
            .any(|p| self.permissions.iter().any(|h| h.eq_ignore_ascii_case(p)))
    }

    /// 403 unless the token carries one of the permissions for its kind.
    pub fn require(&self, perms: Perms) -> Result<(), GraphError> {
        let list = if self.is_delegated() {
            perms.delegated
        } else {
            perms.app
        };
        if self.has_any(list) {
            Ok(())
        } else {
            Err(GraphError::forbidden())
        }
    }

    /// Delegated caller acting on their own account?
    pub fn is_self(&self, user_id: Uuid) -> bool {
        self.user == Some(user_id)
    }

    pub fn has_role(&self, any_of: &[&str]) -> bool {
        any_of.iter().any(|r| self.wids.contains(*r))
    }

    /// "Who can reset passwords" between the caller's roles and the target's.
    pub fn may_reset_password_of(&self, target_roles: &BTreeSet<String>) -> bool {
        roles::can_reset_password(&self.wids, target_roles)
    }

    fn from_request_inner(req: &HttpRequest) -> Result<Caller, GraphError> {
        let shared = req
            .app_data::<Data<Shared>>()
            .expect("Shared is registered");
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        if token.is_empty() {
            return Err(GraphError::unauthorized("Access token is empty."));
        }
        let jwt = shared.keys.verify(token).map_err(|e| {
            GraphError::unauthorized(match e {
                crate::tokens::JwtError::Malformed => {
                    "IDX14100: JWT is not well formed, there are no dots (.).".to_owned()
                }
                _ => "Access token validation failure. Invalid signature.".to_owned(),
            })
        })?;
        let aud = jwt.claim_str("aud").unwrap_or("");
        if !GRAPH_AUDIENCES.contains(&aud) {
            return Err(GraphError::unauthorized(
                "Access token validation failure. Invalid audience.",
            ));
        }
        let now = shared.clock.unix();
        let exp = jwt.claim_i64("exp").unwrap_or(0);
        let nbf = jwt.claim_i64("nbf").unwrap_or(0);
        if now >= exp || now + 300 < nbf {
            return Err(GraphError::unauthorized(
                "Lifetime validation failed, the token is expired.",
            ));
        }
        let tid = shared.state().tenant_id.to_string();
        if jwt.claim_str("tid") != Some(tid.as_str()) {
            return Err(GraphError::unauthorized(
                "Access token validation failure. Invalid issuer.",
            ));
        }
        let strings = |k: &str| -> BTreeSet<String> {
            jwt.claims
                .get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let delegated = jwt.claim_str("idtyp") == Some("user");
        let user = if delegated {
            Some(
                jwt.claim_str("oid")
                    .and_then(|o| o.parse().ok())
                    .ok_or_else(|| GraphError::unauthorized("Access token has no oid."))?,
            )
        } else {
            None
        };
        let permissions = if delegated {
            jwt.claim_str("scp")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        } else {
            strings("roles")
        };
        Ok(Caller {
            app_id: jwt.claim_str("appid").unwrap_or("").to_owned(),
            user,
            permissions,
            wids: strings("wids"),
        })
    }
}

impl FromRequest for Caller {
    type Error = GraphError;
    type Future = Ready<Result<Caller, GraphError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Caller::from_request_inner(req))
    }
}
