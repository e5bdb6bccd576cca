//! Collections read one page at a time, for callers that must not hold a whole tenant in memory
//! (reports over every user, inventories): the caller handles a page, then asks for the next.

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use latchkey_types::ObjectId;

/// Largest `$top` Graph accepts on users and membership collections.
pub const MAX_PAGE_SIZE: u32 = 999;

/// Where the next page of a collection is: an `@odata.nextLink`, checked to point at the Graph
/// origin the client was configured with (the bearer token never goes elsewhere). Opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPage(Url);

impl NextPage {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// One user's entry in the registration report (`userRegistrationDetails`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationDetails {
    pub id: ObjectId,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// `mobilePhone`, `alternateMobilePhone`, `officePhone`, `email`,
    /// `microsoftAuthenticatorPush`, `softwareOneTimePasscode`, `windowsHelloForBusiness`, …
    #[serde(default)]
    pub methods_registered: Vec<String>,
}

/// One page of a collection.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next: Option<NextPage>,
}

impl GraphClient {
    /// A stored nextLink read back (a paged read resumed after a restart): it must still point
    /// at the configured Graph origin.
    pub fn next_page(&self, text: &str) -> Result<NextPage, GraphError> {
        let url = Url::parse(text)
            .map_err(|_| GraphError::InvalidInput("a stored next link is not a URL".into()))?;
        self.check_link(&url)?;
        Ok(NextPage(url))
    }

    /// One page of `GET /users?$select={select}&$top={top}` (first page when `next` is `None`).
    pub async fn users_page<T: DeserializeOwned>(
        &self,
        select: &str,
        top: u32,
        next: Option<&NextPage>,
    ) -> Result<Page<T>, GraphError> {
        let first = || {
            self.url_with_query(
                &["users"],
                &[("$select", select), ("$top", &clamp(top).to_string())],
            )
        };
        self.page(next.map_or_else(first, |n| n.0.clone())).await
    }

    /// One page of the users among a group's members, nested groups resolved by Graph:
    /// `GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select={select}&$top={top}&$count=true`
    /// with `ConsistencyLevel: eventual` (an OData cast on a membership is an advanced query).
    pub async fn group_users_page<T: DeserializeOwned>(
        &self,
        group: &ObjectId,
        select: &str,
        top: u32,
        next: Option<&NextPage>,
    ) -> Result<Page<T>, GraphError> {
        let group = group.to_string();
        let first = || {
            self.url_with_query(
                &[
                    "groups",
                    &group,
                    "transitiveMembers",
                    "microsoft.graph.user",
                ],
                &[
                    ("$select", select),
                    ("$top", &clamp(top).to_string()),
                    ("$count", "true"),
                ],
            )
        };
        self.page_with(
            next.map_or_else(first, |n| n.0.clone()),
            &[("ConsistencyLevel", "eventual")],
        )
        .await
    }

    /// At most `top` users whose name or address starts with `text`: one word is a `startsWith`
    /// filter on displayName, givenName, surname, mail and userPrincipalName (supported without
    /// advanced query parameters); several words are a `$search` on displayName (word prefixes,
    /// `ConsistencyLevel: eventual`). One page only: a helpdesk search names a person, it does
    /// not list a tenant.
    pub async fn search_users<T: DeserializeOwned>(
        &self,
        text: &str,
        select: &str,
        top: u32,
    ) -> Result<Vec<T>, GraphError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 100 || text.chars().any(char::is_control) {
            return Err(GraphError::InvalidInput("not a name to search for".into()));
        }
        let top = clamp(top).to_string();
        let (url, headers): (Url, &[(&'static str, &str)]) = if text.contains(char::is_whitespace) {
            // $search phrases are double-quoted: a quote or backslash in the text is escaped.
            let phrase = text.replace('\\', "\\\\").replace('"', "\\\"");
            let search = format!("\"displayName:{phrase}\"");
            let url = self.url_with_query(
                &["users"],
                &[("$search", &search), ("$select", select), ("$top", &top)],
            );
            (url, &[("ConsistencyLevel", "eventual")])
        } else {
            let lit = crate::ops::odata_string(text);
            let filter = [
                "displayName",
                "givenName",
                "surname",
                "mail",
                "userPrincipalName",
            ]
            .iter()
            .map(|p| format!("startsWith({p},{lit})"))
            .collect::<Vec<_>>()
            .join(" or ");
            let url = self.url_with_query(
                &["users"],
                &[("$filter", &filter), ("$select", select), ("$top", &top)],
            );
            (url, &[])
        };
        let page: Page<T> = self.page_with(url, headers).await?;
        Ok(page.items)
    }

    /// One page of `GET /reports/authenticationMethods/userRegistrationDetails`: which methods
    /// each user registered in Entra, for the whole tenant in one paged read. Needs
    /// `AuditLog.Read.All` and an Entra ID P1/P2 tenant (403
    /// `Authentication_RequestFromNonPremiumTenantOrB2CTenant` otherwise).
    pub async fn registration_details_page(
        &self,
        next: Option<&NextPage>,
    ) -> Result<Page<RegistrationDetails>, GraphError> {
        let first = || {
            self.url_with_query(
                &[
                    "reports",
                    "authenticationMethods",
                    "userRegistrationDetails",
                ],
                &[("$select", "id,userPrincipalName,methodsRegistered")],
            )
        };
        self.page(next.map_or_else(first, |n| n.0.clone())).await
    }

    /// `GET /groups/{id}?$select=id,displayName`: the group's display name (`None` when it has
    /// none); [`GraphError::NotFound`] when the group does not exist.
    pub async fn group_display_name(&self, group: &ObjectId) -> Result<Option<String>, GraphError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct G {
            #[serde(default)]
            display_name: Option<String>,
        }
        let id = group.to_string();
        let url = self.url_with_query(&["groups", &id], &[("$select", "id,displayName")]);
        let g: G = self.get_json(url).await?;
        Ok(g.display_name)
    }

    async fn page<T: DeserializeOwned>(&self, url: Url) -> Result<Page<T>, GraphError> {
        self.page_with(url, &[]).await
    }

    /// One page; `headers` are sent with it (callers resend them for every page).
    async fn page_with<T: DeserializeOwned>(
        &self,
        url: Url,
        headers: &[(&'static str, &str)],
    ) -> Result<Page<T>, GraphError> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            value: Vec<Value>,
            #[serde(rename = "@odata.nextLink", default)]
            next_link: Option<String>,
        }
        self.check_link(&url)?;
        let mut req = Request::new(Method::GET, url, Endpoint::Graph);
        for (k, v) in headers {
            req = req.header(k, *v);
        }
        let resp = self.send(req).await?;
        let raw: Raw = resp.json()?;
        let mut items = Vec::with_capacity(raw.value.len());
        for v in raw.value {
            items.push(
                serde_json::from_value(v).map_err(|e| GraphError::UnexpectedResponse {
                    status: resp.status.as_u16(),
                    message: format!(
                        "collection item does not match the documented shape: {}",
                        crate::http::without_quoted(&e.to_string())
                    ),
                    client_request_id: resp.client_request_id.clone(),
                })?,
            );
        }
        let next = match raw.next_link {
            None => None,
            Some(link) => {
                let url = Url::parse(&link).map_err(|_| GraphError::UnexpectedResponse {
                    status: resp.status.as_u16(),
                    message: "@odata.nextLink is not an absolute URL".into(),
                    client_request_id: resp.client_request_id.clone(),
                })?;
                self.check_link(&url)?;
                Some(NextPage(url))
            }
        };
        Ok(Page { items, next })
    }
}

fn clamp(top: u32) -> u32 {
    top.clamp(1, MAX_PAGE_SIZE)
}
