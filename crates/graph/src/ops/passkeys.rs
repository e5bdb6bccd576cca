//! Passkey (FIDO2) provisioning: creation options, registration, list, delete, and the tenant's
//! FIDO2 method policy.
//!
//! Permissions (v1.0 pages): creation options and registration need
//! `UserAuthMethod-Passkey.ReadWrite.All` (least privileged, delegated or application) or
//! `UserAuthenticationMethod.ReadWrite.All`; listing also accepts the read permissions; the
//! policy needs `Policy.Read.AuthenticationMethod` or `Policy.Read.All`. A delegated admin acting
//! on another user needs the Authentication Administrator or Privileged Authentication
//! Administrator role; self-service (a user on their own account) is not supported by Graph.
//!
//! Refusals: a missing permission or role is 403 `Authorization_RequestDenied`
//! ([`GraphError::is_forbidden`]). Everything Graph refuses about the passkey itself — expired,
//! reused or foreign challenge, attestation that does not verify, a format other than `packed`
//! or `none`, a key already registered, and the FIDO2 policy (method disabled, "Allow
//! self-service setup" off, attestation enforced, AAGUID restrictions) — is a 400
//! ([`GraphError::is_bad_request`]) whose code does not tell them apart, so read
//! [`GraphClient::fido2_configuration`] first to explain a policy refusal before it happens.

use reqwest::Method;
use serde_json::Value;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use crate::model::Fido2Method;
use crate::passkey_model::{Fido2CreationOptions, Fido2Registration};
use crate::passkey_policy::{Fido2Configuration, RawFido2Configuration};
use latchkey_types::ObjectId;

impl GraphClient {
    /// `GET /users/{id}/authentication/fido2Methods/creationOptions` (v1.0: the challenge is
    /// valid 5 minutes, once). Each call issues a new challenge.
    pub async fn fido2_creation_options(
        &self,
        user: &ObjectId,
    ) -> Result<Fido2CreationOptions, GraphError> {
        let user = user.to_string();
        let url = self.url(&[
            "users",
            &user,
            "authentication",
            "fido2Methods",
            "creationOptions",
        ]);
        let resp = self
            .send(Request::new(Method::GET, url, Endpoint::Graph))
            .await?;
        let v: Value = resp.json()?;
        Fido2CreationOptions::from_json(v).map_err(|message| GraphError::UnexpectedResponse {
            status: resp.status.as_u16(),
            message,
            client_request_id: resp.client_request_id.clone(),
        })
    }

    /// Whether the challenge of `options` has timed out by this client's [`crate::Clock`]: Graph
    /// would refuse a registration made with it (400), so ask for new options instead.
    pub fn fido2_challenge_expired(&self, options: &Fido2CreationOptions) -> bool {
        options.expired_at(time::OffsetDateTime::from(self.wall_now()))
    }

    /// `POST /users/{id}/authentication/fido2Methods`: registers the passkey the authenticator
    /// created from [`GraphClient::fido2_creation_options`]; `201` with the new method. Never
    /// retried after an unclear failure: the challenge is single-use, so a blind retry could only
    /// fail, and a list read tells whether the first attempt landed.
    pub async fn add_fido2_method(
        &self,
        user: &ObjectId,
        registration: &Fido2Registration,
    ) -> Result<Fido2Method, GraphError> {
        registration
            .validate()
            .map_err(|m| GraphError::InvalidInput(m.into()))?;
        let user = user.to_string();
        let url = self.url(&["users", &user, "authentication", "fido2Methods"]);
        let resp = self.post_json(url, registration.to_json(), false).await?;
        resp.json()
    }

    /// `GET /users/{id}/authentication/fido2Methods` (all pages).
    pub async fn list_fido2_methods(
        &self,
        user: &ObjectId,
    ) -> Result<Vec<Fido2Method>, GraphError> {
        let user = user.to_string();
        let url = self.url(&["users", &user, "authentication", "fido2Methods"]);
        self.get_paged_with(url, &[], |v| {
            serde_json::from_value(v).map_err(|e| format!("fido2 method: {e}"))
        })
        .await
    }

    /// `DELETE /users/{id}/authentication/fido2Methods/{methodId}` (`204`).
    pub async fn delete_fido2_method(
        &self,
        user: &ObjectId,
        method_id: &str,
    ) -> Result<(), GraphError> {
        let method_id = method_id.trim();
        if method_id.is_empty() {
            return Err(GraphError::InvalidInput("method id is empty".into()));
        }
        let user = user.to_string();
        let url = self.url(&["users", &user, "authentication", "fido2Methods", method_id]);
        self.send(Request::new(Method::DELETE, url, Endpoint::Graph))
            .await?;
        Ok(())
    }

    /// `GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2`.
    pub async fn fido2_configuration(&self) -> Result<Fido2Configuration, GraphError> {
        let url = self.url(&[
            "policies",
            "authenticationMethodsPolicy",
            "authenticationMethodConfigurations",
            "fido2",
        ]);
        let raw: RawFido2Configuration = self.get_json(url).await?;
        Ok(raw.into())
    }
}
