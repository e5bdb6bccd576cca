//! Users: read by id/UPN, find by what a person typed, create, update, set password.

use reqwest::Method;
use serde::Deserialize;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use crate::model::{NewUser, PasswordProfile, USER_SELECT, User, UserRef, UserUpdate};
use latchkey_types::{EmailAddress, ObjectId, Secret};

/// An OData string literal: `'` doubled and the whole value quoted.
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl GraphClient {
    /// `GET /users/{id | upn}?$select=…` ([`USER_SELECT`]).
    pub async fn get_user(&self, user: &UserRef) -> Result<User, GraphError> {
        let segment;
        let segments: Vec<&str> = match user {
            UserRef::Id(id) => {
                segment = id.to_string();
                vec!["users", &segment]
            }
            // Graph needs the key syntax for UPNs that start with `$`.
            UserRef::Upn(upn) if upn.as_str().starts_with('$') => {
                segment = format!("users({})", odata_string(upn.as_str()));
                vec![&segment]
            }
            UserRef::Upn(upn) => {
                segment = upn.as_str().to_string();
                vec!["users", &segment]
            }
        };
        let url = self.url_with_query(&segments, &[("$select", USER_SELECT)]);
        self.get_json(url).await
    }

    /// Finds the one user whose UPN, mail, otherMails or SMTP proxy address equals `login`
    /// (case-insensitive in Entra). One request: a combined `$filter` with `$top=2`.
    ///
    /// `login` must have the shape of an email address (checked before anything is sent); the
    /// value is lower-cased, OData-escaped and URL-encoded. No match → [`GraphError::NotFound`];
    /// two or more distinct objects → [`GraphError::Ambiguous`] (nothing is guessed).
    pub async fn find_user(&self, login: &str) -> Result<User, GraphError> {
        let addr: EmailAddress = login.trim().parse().map_err(|_| {
            GraphError::InvalidInput(
                "expected a sign-in name or email address (name@domain)".into(),
            )
        })?;
        let v = addr.as_str();
        let lit = odata_string(v);
        let smtp = odata_string(&format!("smtp:{v}"));
        let filter = format!(
            "userPrincipalName eq {lit} or mail eq {lit} or otherMails/any(m:m eq {lit}) \
             or proxyAddresses/any(p:p eq {smtp})"
        );
        let url = self.url_with_query(
            &["users"],
            &[
                ("$filter", &filter),
                ("$select", USER_SELECT),
                ("$top", "2"),
            ],
        );
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            value: Vec<User>,
        }
        // One page only: $top=2 is all that is needed to tell one from many.
        let resp = self
            .send(Request::new(Method::GET, url, Endpoint::Graph))
            .await?;
        let page: Page = resp.json()?;
        let mut users = page.value;
        users.sort_by_key(|u| u.id);
        users.dedup_by_key(|u| u.id);
        match users.len() {
            0 => Err(GraphError::NotFound {
                client_request_id: resp.client_request_id,
            }),
            1 => Ok(users.remove(0)),
            _ => Err(GraphError::Ambiguous {
                client_request_id: resp.client_request_id,
            }),
        }
    }

    /// Finds the one synced user whose on-premises account name is `name` (in `domain`, when
    /// given: the user's `onPremisesDomainName`, or its first label as a NetBIOS name such as
    /// `CORP` for `corp.contoso.com`, or — a NetBIOS name that is no such label — the only
    /// account of that name). `onPremisesSamAccountName` is filterable only as an
    /// advanced query (`ConsistencyLevel: eventual` + `$count=true`). Not found, or several:
    /// [`GraphError::NotFound`] / [`GraphError::Ambiguous`], as [`GraphClient::find_user`].
    pub async fn find_user_by_account(
        &self,
        domain: Option<&str>,
        name: &str,
    ) -> Result<User, GraphError> {
        if name.is_empty() || name.chars().count() > latchkey_types::signin::MAX_SAM_ACCOUNT_NAME {
            return Err(GraphError::InvalidInput("not an account name".into()));
        }
        let filter = format!("onPremisesSamAccountName eq {}", odata_string(name));
        let url = self.url_with_query(
            &["users"],
            &[
                ("$filter", &filter),
                ("$select", USER_SELECT),
                ("$count", "true"),
                // The domain is filtered here, not by Graph: one page of every namesake.
                ("$top", "999"),
            ],
        );
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            value: Vec<User>,
        }
        let resp = self
            .send(
                Request::new(Method::GET, url, Endpoint::Graph)
                    .header("ConsistencyLevel", "eventual"),
            )
            .await?;
        let page: Page = resp.json()?;
        let mut users = accounts_in_domain(domain, page.value);
        users.sort_by_key(|u| u.id);
        users.dedup_by_key(|u| u.id);
        match users.len() {
            0 => Err(GraphError::NotFound {
                client_request_id: resp.client_request_id,
            }),
            1 => Ok(users.remove(0)),
            _ => Err(GraphError::Ambiguous {
                client_request_id: resp.client_request_id,
            }),
        }
    }

    /// `POST /users` → the created user (Graph returns its default properties only).
    pub async fn create_user(&self, user: &NewUser) -> Result<User, GraphError> {
        if user.password_profile.password.is_none() {
            return Err(GraphError::InvalidInput(
                "a new user needs passwordProfile.password".into(),
            ));
        }
        let resp = self
            .post_json(self.url(&["users"]), user.to_json(), false)
            .await?;
        resp.json()
    }

    /// `PATCH /users/{id}` with only the fields that are set (204 expected).
    pub async fn update_user(&self, id: &ObjectId, update: &UserUpdate) -> Result<(), GraphError> {
        if update.is_empty() {
            return Err(GraphError::InvalidInput("nothing to update".into()));
        }
        let id = id.to_string();
        // A password change is not repeated after a timeout or a dropped connection: the
        // directory may have applied it, and a second write would be a second change (password
        // history, notices) reported as one. The caller resolves an unknown outcome by reading
        // the user ([`GraphError::outcome_unknown`]). 429/503 (not processed) are still retried.
        let idempotent = update.password_profile.is_none();
        self.send(
            Request::new(Method::PATCH, self.url(&["users", &id]), Endpoint::Graph)
                .json(update.to_json())
                .idempotent(idempotent),
        )
        .await?;
        Ok(())
    }

    /// Sets the password with `PATCH /users/{id}` (`passwordProfile`). App-only capable (needs
    /// `User-PasswordProfile.ReadWrite.All` and a directory role). No writeback: for synced
    /// users Graph answers 400 ([`GraphError::is_on_premises_mastered`]); use
    /// [`GraphClient::reset_password`] there.
    pub async fn set_password(
        &self,
        id: &ObjectId,
        password: &Secret<String>,
        force_change: bool,
    ) -> Result<(), GraphError> {
        if password.expose().is_empty() {
            return Err(GraphError::InvalidInput("empty password".into()));
        }
        self.update_user(
            id,
            &UserUpdate {
                password_profile: Some(PasswordProfile {
                    password: Some(password.clone()),
                    force_change_password_next_sign_in: Some(force_change),
                    force_change_password_next_sign_in_with_mfa: None,
                }),
                ..Default::default()
            },
        )
        .await
    }
}

/// Of the users whose on-premises account name matched, those `domain` (NetBIOS or DNS name, as
/// typed; `None`: any) names: a DNS domain equal to it or whose first label is it. A NetBIOS name
/// that is no label of any namesake's domain (`CONTOSO` for `ad.contoso.com`) keeps the one
/// namesake when there is exactly one. Shared by the live lookup and the directory mirror, so
/// both resolve `DOMAIN\name` alike.
pub fn accounts_in_domain(domain: Option<&str>, namesakes: Vec<User>) -> Vec<User> {
    let in_domain = |u: &User| match (domain, u.on_premises_domain_name.as_deref()) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(want), Some(dns)) => {
            dns.eq_ignore_ascii_case(want)
                || dns
                    .split('.')
                    .next()
                    .is_some_and(|netbios| netbios.eq_ignore_ascii_case(want))
        }
    };
    let users: Vec<User> = namesakes.iter().filter(|u| in_domain(u)).cloned().collect();
    if users.is_empty() && domain.is_some_and(|d| !d.contains('.')) && namesakes.len() == 1 {
        return namesakes;
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_literals_double_quotes() {
        assert_eq!(
            odata_string("o'brien@contoso.com"),
            "'o''brien@contoso.com'"
        );
        assert_eq!(odata_string("x' or 1 eq 1 or 'a"), "'x'' or 1 eq 1 or ''a'");
        assert_eq!(odata_string(""), "''");
    }
}
