//! The seam metrics use to see Graph traffic ([`GraphObserver`], set with
//! [`crate::GraphClient::observe`]): every attempt, token requests included, with a bounded
//! operation name — the method and the path with every id, address or name replaced by `{id}`
//! (`GET /users/{id}/authentication/methods`), never the path itself.

use std::time::Duration;

use reqwest::Method;
use url::Url;

/// One HTTP attempt as an observer sees it, or one request a `$batch` attempt carried
/// ([`Attempt::part`]).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// `GET /users/{id}/transitiveMemberOf`, or `token` for the identity platform.
    pub operation: &'a str,
    /// The HTTP status; `None` when no answer came (connect error, timeout).
    pub status: Option<u16>,
    pub elapsed: Duration,
    /// A retry of the same request (429, 503, a lost answer).
    pub retry: bool,
    /// A request a `$batch` carried: a request against the tenant's limits with its own
    /// status, but no HTTP attempt of its own (`elapsed` and `retry` are the batch's, so count
    /// it, do not time it).
    pub part: bool,
}

/// Told about every attempt, on the caller's task: quick, and never failing.
pub trait GraphObserver: Send + Sync + 'static {
    fn attempt(&self, attempt: &Attempt<'_>);
}

impl std::fmt::Debug for dyn GraphObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphObserver")
    }
}

/// The operation name of a request (see the module docs).
pub(crate) fn operation(token: bool, method: &Method, url: &Url) -> String {
    if token {
        return "token".to_string();
    }
    let mut out = format!("{} ", method.as_str());
    for segment in url.path_segments().into_iter().flatten() {
        // The API version is configuration, not the operation.
        if VERSIONS.contains(&segment) {
            continue;
        }
        out.push('/');
        out.push_str(if is_name(segment) { segment } else { "{id}" });
    }
    if out.ends_with(' ') {
        out.push('/');
    }
    out
}

const VERSIONS: &[&str] = &["v1.0", "beta"];

/// The collections and actions this crate calls: only these may appear in a label; every other
/// segment (an object id, a UPN, a domain, a method id — some are plain letters) is `{id}`.
const NAMES: &[&str] = &[
    "users",
    "groups",
    "authentication",
    "methods",
    "phoneMethods",
    "emailMethods",
    "fido2Methods",
    "microsoftAuthenticatorMethods",
    "softwareOathMethods",
    "temporaryAccessPassMethods",
    "windowsHelloForBusinessMethods",
    "passwordMethods",
    "platformCredentialMethods",
    "externalAuthenticationMethods",
    "creationOptions",
    "transitiveMemberOf",
    "transitiveMembers",
    "delta",
    "directoryRoles",
    "checkMemberGroups",
    "revokeSignInSessions",
    "resetPassword",
    "identityProtection",
    "riskyUsers",
    "dismiss",
    "domains",
    "federationConfiguration",
    "organization",
    "groupSettings",
    "directory",
    "onPremisesSynchronization",
    "policies",
    "authenticationMethodsPolicy",
    "authenticationMethodConfigurations",
    "fido2",
    "reports",
    "authenticationMethods",
    "userRegistrationDetails",
    "operations",
    "me",
    "$batch",
];

fn is_name(segment: &str) -> bool {
    NAMES.contains(&segment) || segment.starts_with("microsoft.graph.") && segment.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, url: &str) -> String {
        operation(false, &method, &Url::parse(url).unwrap())
    }

    #[test]
    fn operations_name_collections_never_objects() {
        let g = "https://graph.microsoft.com/v1.0";
        assert_eq!(
            op(
                Method::GET,
                &format!(
                    "{g}/users/87d349ed-44d7-43e1-9a83-5f2406dee5bd/authentication/fido2Methods"
                )
            ),
            "GET /users/{id}/authentication/fido2Methods"
        );
        assert_eq!(
            op(
                Method::GET,
                &format!("{g}/users/adele.vance@contoso.com?$select=id")
            ),
            "GET /users/{id}"
        );
        assert_eq!(op(Method::POST, &format!("{g}/$batch")), "POST /$batch");
        assert_eq!(
            op(
                Method::POST,
                &format!("{g}/users/x/microsoft.graph.checkMemberGroups")
            ),
            "POST /users/{id}/microsoft.graph.checkMemberGroups"
        );
        assert_eq!(
            op(
                Method::DELETE,
                &format!(
                    "{g}/users/u1/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7"
                )
            ),
            "DELETE /users/{id}/authentication/phoneMethods/{id}"
        );
        // A passkey's method id can be letters only; a domain has dots: both are objects.
        assert_eq!(
            op(
                Method::DELETE,
                &format!("{g}/users/u/authentication/fido2Methods/AbCdEfGhIjKlMn")
            ),
            "DELETE /users/{id}/authentication/fido2Methods/{id}"
        );
        assert_eq!(
            op(
                Method::GET,
                &format!("{g}/domains/contoso.com/federationConfiguration")
            ),
            "GET /domains/{id}/federationConfiguration"
        );
        // Delta links carry their state in the query, never in the label.
        assert_eq!(
            op(
                Method::GET,
                &format!("{g}/directoryRoles/delta?$deltatoken=AbCdEf")
            ),
            "GET /directoryRoles/delta"
        );
        assert_eq!(
            operation(
                true,
                &Method::POST,
                &Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap()
            ),
            "token"
        );
    }
}
