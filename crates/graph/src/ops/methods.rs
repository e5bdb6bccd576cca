//! Authentication methods: list, delete per type, add phone and email.

use reqwest::Method;
use serde_json::json;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use crate::model::{AuthMethod, EmailMethod, PhoneMethod, PhoneNumber, PhoneType};
use latchkey_types::{EmailAddress, ObjectId};

impl GraphClient {
    /// `GET /users/{id}/authentication/methods` (all pages), each decoded by `@odata.type`.
    pub async fn list_auth_methods(&self, id: &ObjectId) -> Result<Vec<AuthMethod>, GraphError> {
        let id = id.to_string();
        let url = self.url(&["users", &id, "authentication", "methods"]);
        self.get_paged_with(url, &[], |v| {
            AuthMethod::from_json(v).map_err(|e| format!("authentication method: {e}"))
        })
        .await
    }

    /// `GET /users/{id}/authentication/phoneMethods`: at most three (mobile, alternate mobile,
    /// office). Least privileged application permission `UserAuthMethod-Phone.Read.All`
    /// (`UserAuthenticationMethod.Read.All` also serves).
    pub async fn list_phone_methods(&self, id: &ObjectId) -> Result<Vec<PhoneMethod>, GraphError> {
        let id = id.to_string();
        let url = self.url(&["users", &id, "authentication", "phoneMethods"]);
        self.get_paged_with(url, &[], |v| {
            serde_json::from_value(v).map_err(|e| format!("phone method: {e}"))
        })
        .await
    }

    /// `GET /users/{id}/authentication/emailMethods`: at most one. Least privileged application
    /// permission `UserAuthMethod-Email.Read.All` (`UserAuthenticationMethod.Read.All` also serves).
    pub async fn list_email_methods(&self, id: &ObjectId) -> Result<Vec<EmailMethod>, GraphError> {
        let id = id.to_string();
        let url = self.url(&["users", &id, "authentication", "emailMethods"]);
        self.get_paged_with(url, &[], |v| {
            serde_json::from_value(v).map_err(|e| format!("email method: {e}"))
        })
        .await
    }

    /// Deletes a method through its type's collection (`/phoneMethods/{id}`, `/fido2Methods/{id}`,
    /// …). The password method (and types unknown to this client) cannot be deleted:
    /// [`GraphError::MethodNotDeletable`], without a request.
    pub async fn delete_auth_method(
        &self,
        user: &ObjectId,
        method: &AuthMethod,
    ) -> Result<(), GraphError> {
        let segment = method
            .delete_segment()
            .ok_or_else(|| GraphError::MethodNotDeletable {
                odata_type: method.odata_type(),
            })?;
        let method_id = method
            .id()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| GraphError::InvalidInput("method has no id".into()))?;
        let user = user.to_string();
        let url = self.url(&["users", &user, "authentication", segment, method_id]);
        self.send(Request::new(Method::DELETE, url, Endpoint::Graph))
            .await?;
        Ok(())
    }

    /// `POST /users/{id}/authentication/phoneMethods`. One phone per type; `alternateMobile`
    /// needs an existing `mobile` (Graph enforces both).
    pub async fn add_phone_method(
        &self,
        user: &ObjectId,
        number: &PhoneNumber,
        phone_type: PhoneType,
    ) -> Result<PhoneMethod, GraphError> {
        if phone_type == PhoneType::UnknownFutureValue {
            return Err(GraphError::InvalidInput(
                "phone type must be mobile, alternateMobile or office".into(),
            ));
        }
        let user = user.to_string();
        let body = json!({ "phoneNumber": number.as_str(), "phoneType": phone_type });
        let resp = self
            .post_json(
                self.url(&["users", &user, "authentication", "phoneMethods"]),
                body,
                false,
            )
            .await?;
        resp.json()
    }

    /// `POST /users/{id}/authentication/emailMethods` (one per user; SSPR only).
    pub async fn add_email_method(
        &self,
        user: &ObjectId,
        email: &EmailAddress,
    ) -> Result<EmailMethod, GraphError> {
        let user = user.to_string();
        let body = json!({ "emailAddress": email.as_str() });
        let resp = self
            .post_json(
                self.url(&["users", &user, "authentication", "emailMethods"]),
                body,
                false,
            )
            .await?;
        resp.json()
    }
}
