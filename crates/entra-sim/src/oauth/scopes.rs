//! Scope strings: `https://graph.microsoft.com/.default` for apps; for users, OpenID Connect
//! scopes plus Graph scopes (with or without the resource prefix).

use super::error::StsError;
use crate::state::App;

const GRAPH_PREFIXES: [&str; 2] = [
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000/",
];
const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];

fn strip_graph(s: &str) -> Option<&str> {
    GRAPH_PREFIXES.iter().find_map(|p| {
        s.get(..p.len())
            .filter(|h| h.eq_ignore_ascii_case(p))
            .map(|_| &s[p.len()..])
    })
}

/// Client credentials: exactly one resource, as `{resource}/.default`.
pub fn check_app_scope(scope: &str, tenant_name: &str) -> Result<(), StsError> {
    let parts: Vec<&str> = scope.split_whitespace().collect();
    if parts.is_empty() {
        return Err(StsError::missing("scope"));
    }
    let mut resources = Vec::new();
    for p in &parts {
        let Some((resource, rest)) = p.rsplit_once('/') else {
            return Err(StsError::invalid_scope(p));
        };
        if rest != ".default" {
            return Err(StsError::invalid_scope(p));
        }
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    if resources.len() > 1 {
        return Err(StsError::invalid_scope(scope));
    }
    if strip_graph(&format!("{}/", resources[0])).is_none() {
        return Err(StsError::new(
            400,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {} was not found in the tenant named {tenant_name}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                resources[0]
            ),
        ));
    }
    Ok(())
}

/// A delegated scope request.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    /// As requested (for the refresh-token grant).
    pub raw: Vec<String>,
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub offline_access: bool,
    pub default: bool,
    pub graph: Vec<String>,
}

impl Requested {
    pub fn parse(scope: &str) -> Result<Requested, StsError> {
        let mut r = Requested::default();
        for s in scope.split_whitespace() {
            r.raw.push(s.to_owned());
            match s.to_ascii_lowercase().as_str() {
                "openid" => r.openid = true,
                "profile" => r.profile = true,
                "email" => r.email = true,
                "offline_access" => r.offline_access = true,
                _ => {
                    let name = strip_graph(s).unwrap_or(s);
                    if name == ".default" {
                        r.default = true;
                    } else if name.contains("://") || name.contains('/') || name.is_empty() {
                        return Err(StsError::invalid_scope(s));
                    } else {
                        r.graph.push(name.to_owned());
                    }
                }
            }
        }
        Ok(r)
    }

    /// The Graph scopes to grant (`.default` = everything consented; only OpenID scopes =
    /// `User.Read`, as Entra adds it for sign-in).
    pub fn graph_scopes(&self, app: &App) -> Vec<String> {
        let canonical = |s: &str| {
            app.delegated_scopes
                .iter()
                .find(|c| c.eq_ignore_ascii_case(s))
                .cloned()
                .unwrap_or_else(|| s.to_owned())
        };
        let mut out: Vec<String> = if self.default {
            app.delegated_scopes
                .iter()
                .filter(|s| !OIDC.iter().any(|o| o.eq_ignore_ascii_case(s)))
                .cloned()
                .collect()
        } else {
            self.graph.iter().map(|s| canonical(s)).collect()
        };
        if out.is_empty() {
            out.push(canonical("User.Read"));
        }
        out.dedup();
        out
    }

    /// `scp` of the access token: Graph scopes plus the OpenID ones (not `offline_access`).
    pub fn scp_list(&self, graph: &[String]) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (on, name) in [
            (self.openid, "openid"),
            (self.profile, "profile"),
            (self.email, "email"),
        ] {
            if on {
                v.push(name.to_owned());
            }
        }
        v.extend(graph.iter().cloned());
        v
    }

    /// The `scope` value of the token response.
    pub fn response_scope(&self, graph: &[String]) -> String {
        let mut v = self.scp_list(graph);
        if self.offline_access {
            v.push("offline_access".into());
        }
        v.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_scope_rules() {
        assert!(check_app_scope("https://graph.microsoft.com/.default", "T").is_ok());
        assert_eq!(
            check_app_scope("https://graph.microsoft.com/User.Read.All", "T")
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(
            check_app_scope(
                "https://graph.microsoft.com/.default https://management.azure.com/.default",
                "T"
            )
            .unwrap_err()
            .code,
            70011
        );
        assert_eq!(
            check_app_scope("https://foo.microsoft.com/.default", "T")
                .unwrap_err()
                .code,
            500011
        );
    }

    #[test]
    fn delegated_parsing() {
        let r = Requested::parse("openid profile offline_access https://graph.microsoft.com/User.Read UserAuthenticationMethod.ReadWrite.All").unwrap();
        assert!(r.openid && r.profile && r.offline_access && !r.email);
        assert_eq!(
            r.graph,
            vec!["User.Read", "UserAuthenticationMethod.ReadWrite.All"]
        );
        assert!(Requested::parse("api://other/thing").is_err());
    }
}
