//! Tenant configuration: domains, organization, on-premises synchronization.

use reqwest::Method;
use serde::Deserialize;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use crate::model::{DOMAIN_SELECT, Domain, ORGANIZATION_SELECT, OnPremisesSync, Organization};

/// A federated domain's configuration (`internalDomainFederation`): where its IdP signs users in.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalDomainFederation {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub issuer_uri: Option<String>,
    /// AD FS: `https://sts.contoso.com/adfs/ls/`.
    #[serde(default)]
    pub passive_sign_in_uri: Option<String>,
    #[serde(default)]
    pub active_sign_in_uri: Option<String>,
    #[serde(default)]
    pub preferred_authentication_protocol: Option<String>,
}

#[derive(Deserialize)]
struct Collection<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
}

fn valid_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.contains('.')
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl GraphClient {
    /// `GET /domains` (all pages).
    pub async fn list_domains(&self) -> Result<Vec<Domain>, GraphError> {
        let url = self.url_with_query(&["domains"], &[("$select", DOMAIN_SELECT)]);
        self.get_paged(url, &[]).await
    }

    /// `GET /domains/{name}`.
    pub async fn get_domain(&self, name: &str) -> Result<Domain, GraphError> {
        let name = name.trim();
        if !valid_domain_name(name) {
            return Err(GraphError::InvalidInput("not a domain name".into()));
        }
        let url = self.url_with_query(&["domains", name], &[("$select", DOMAIN_SELECT)]);
        self.get_json(url).await
    }

    /// `GET /domains/{name}/federationConfiguration` (`Domain.Read.All`): the domain's
    /// federation with its IdP (AD FS), one object for a federated domain, none for a managed one.
    pub async fn federation_configuration(
        &self,
        name: &str,
    ) -> Result<Vec<InternalDomainFederation>, GraphError> {
        let name = name.trim();
        if !valid_domain_name(name) {
            return Err(GraphError::InvalidInput("not a domain name".into()));
        }
        let url = self.url(&["domains", name, "federationConfiguration"]);
        Ok(self
            .get_json::<Collection<InternalDomainFederation>>(url)
            .await?
            .value)
    }

    /// `GET /organization` → the tenant.
    pub async fn organization(&self) -> Result<Organization, GraphError> {
        let url = self.url_with_query(&["organization"], &[("$select", ORGANIZATION_SELECT)]);
        let resp = self
            .send(Request::new(Method::GET, url, Endpoint::Graph))
            .await?;
        let c: Collection<Organization> = resp.json()?;
        c.value
            .into_iter()
            .next()
            .ok_or(GraphError::UnexpectedResponse {
                status: resp.status.as_u16(),
                message: "/organization returned no object".into(),
                client_request_id: resp.client_request_id,
            })
    }

    /// `GET /directory/onPremisesSynchronization`: `None` when the tenant has no
    /// synchronization object (never connected to AD). `features.passwordWritebackEnabled`
    /// tells whether password writeback is on. Microsoft documents this read as delegated-only.
    pub async fn on_premises_sync(&self) -> Result<Option<OnPremisesSync>, GraphError> {
        let url = self.url(&["directory", "onPremisesSynchronization"]);
        match self.get_json::<Collection<OnPremisesSync>>(url).await {
            Ok(c) => Ok(c.value.into_iter().next()),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
