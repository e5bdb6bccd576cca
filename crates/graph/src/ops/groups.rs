//! Group and role membership.

use serde::Deserialize;
use serde_json::json;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::Response;
use crate::model::{
    DirectoryRoleRef, GroupRef, Memberships, OtherDirectoryObject, RawDirectoryObject, USER_SELECT,
    User,
};
use latchkey_types::ObjectId;

/// Most ids `checkMemberGroups` accepts per call.
pub const CHECK_MEMBER_GROUPS_MAX: usize = 20;

impl GraphClient {
    /// Every group and directory role the user belongs to, directly or through nesting:
    /// `GET /users/{id}/transitiveMemberOf?$select=id,displayName,roleTemplateId&$top=999`,
    /// all pages. Objects are sorted into groups, roles and others by `@odata.type`.
    pub async fn transitive_memberships(&self, id: &ObjectId) -> Result<Memberships, GraphError> {
        let raw: Vec<RawDirectoryObject> = self.get_paged(self.memberships_url(id), &[]).await?;
        Ok(sort_memberships(raw))
    }

    /// The account as it is now ([`GraphClient::get_user`]) and its transitive groups and roles
    /// ([`transitive_memberships`](Self::transitive_memberships)), read together in one `$batch`
    /// request: the check right before a change, in one round trip. A membership list longer
    /// than one page is read on with its next links.
    ///
    /// `Err` is about the account (not found: it does not exist, the memberships part saying
    /// so too) or the batch as a whole; a membership read that failed while the account was read is in
    /// [`UserWithMemberships::memberships`], so a fault there is never taken for a deleted
    /// account.
    pub async fn user_with_memberships(
        &self,
        id: &ObjectId,
    ) -> Result<UserWithMemberships, GraphError> {
        let user = self.url_with_query(&["users", &id.to_string()], &[("$select", USER_SELECT)]);
        let mut parts = self
            .get_batch(&[user, self.memberships_url(id)])
            .await?
            .into_iter();
        let (Some(user), Some(memberships)) = (parts.next(), parts.next()) else {
            // `get_batch` answers every part or fails; this cannot happen.
            return Err(GraphError::UnexpectedResponse {
                status: 200,
                message: "batch answer: a part is missing".into(),
                client_request_id: String::new(),
            });
        };
        let user = the_account(user, &memberships)?;
        let memberships = match memberships {
            Ok(first) => self
                .pages_from(first, &[], |v| {
                    serde_json::from_value::<RawDirectoryObject>(v).map_err(|e| e.to_string())
                })
                .await
                .map(sort_memberships),
            Err(e) => Err(e),
        };
        Ok(UserWithMemberships { user, memberships })
    }

    fn memberships_url(&self, id: &ObjectId) -> url::Url {
        self.url_with_query(
            &["users", &id.to_string(), "transitiveMemberOf"],
            &[
                ("$select", "id,displayName,roleTemplateId"),
                ("$top", "999"),
            ],
        )
    }

    /// The directory roles the user holds (same request as [`transitive_memberships`](Self::transitive_memberships)).
    pub async fn directory_roles(
        &self,
        id: &ObjectId,
    ) -> Result<Vec<DirectoryRoleRef>, GraphError> {
        Ok(self.transitive_memberships(id).await?.roles)
    }

    /// Which of `groups` the user is a (transitive) member of:
    /// `POST /users/{id}/checkMemberGroups` in chunks of at most 20 ids, results united.
    /// No request when `groups` is empty.
    pub async fn check_member_groups(
        &self,
        id: &ObjectId,
        groups: &[ObjectId],
    ) -> Result<Vec<ObjectId>, GraphError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            value: Vec<String>,
        }
        let mut unique: Vec<ObjectId> = Vec::new();
        for g in groups {
            if !unique.contains(g) {
                unique.push(*g);
            }
        }
        let id = id.to_string();
        let mut out: Vec<ObjectId> = Vec::new();
        for chunk in unique.chunks(CHECK_MEMBER_GROUPS_MAX) {
            let body =
                json!({ "groupIds": chunk.iter().map(|g| g.to_string()).collect::<Vec<_>>() });
            // A read despite POST: safe to repeat.
            let resp = self
                .post_json(self.url(&["users", &id, "checkMemberGroups"]), body, true)
                .await?;
            let a: Answer = resp.json()?;
            for s in a.value {
                // Only ids that were asked about count (never trust extra ids).
                if let Ok(g) = s.parse::<ObjectId>()
                    && chunk.contains(&g)
                    && !out.contains(&g)
                {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }
}

/// The account part of [`GraphClient::user_with_memberships`]. "Not found" only when the
/// memberships part says so too: an account missing from one part while the other read it, or
/// failed for another reason, is a fault to try again (a replica behind the other, say), never
/// "the account does not exist", which ends a verified flow.
fn the_account(
    user: Result<Response, GraphError>,
    memberships: &Result<Response, GraphError>,
) -> Result<User, GraphError> {
    match user {
        Ok(part) => part.json(),
        Err(e) if e.is_not_found() && !matches!(memberships, Err(m) if m.is_not_found()) => {
            Err(GraphError::UnexpectedResponse {
                status: 200,
                message: "batch answer: the account was not found by one part only".into(),
                client_request_id: e.client_request_id().unwrap_or_default().to_string(),
            })
        }
        Err(e) => Err(e),
    }
}

/// [`GraphClient::user_with_memberships`]: the account, and its groups and roles or why they
/// could not be read.
#[derive(Debug)]
pub struct UserWithMemberships {
    pub user: User,
    pub memberships: Result<Memberships, GraphError>,
}

/// Directory objects sorted into groups, roles and others by `@odata.type`, each once.
fn sort_memberships(raw: Vec<RawDirectoryObject>) -> Memberships {
    let mut m = Memberships::default();
    for o in raw {
        match o.odata_type.as_deref() {
            Some("#microsoft.graph.group") => {
                if !m.groups.iter().any(|g| g.id == o.id) {
                    m.groups.push(GroupRef {
                        id: o.id,
                        display_name: o.display_name,
                    });
                }
            }
            Some("#microsoft.graph.directoryRole") => {
                if !m.roles.iter().any(|r| r.id == o.id) {
                    m.roles.push(DirectoryRoleRef {
                        id: o.id,
                        display_name: o.display_name,
                        role_template_id: o.role_template_id,
                    });
                }
            }
            other => m.other.push(OtherDirectoryObject {
                id: o.id,
                odata_type: other.unwrap_or_default().to_string(),
                display_name: o.display_name,
            }),
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found() -> GraphError {
        GraphError::NotFound {
            client_request_id: "c".into(),
        }
    }

    fn unavailable() -> GraphError {
        GraphError::UnexpectedResponse {
            status: 503,
            message: "x".into(),
            client_request_id: "c".into(),
        }
    }

    fn ok(body: &str) -> Result<Response, GraphError> {
        Ok(Response {
            status: reqwest::StatusCode::OK,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            client_request_id: "c".into(),
        })
    }

    #[test]
    fn only_both_parts_not_found_is_a_missing_account() {
        let members = ok(r#"{"value":[]}"#);
        // Deleted: both parts agree.
        assert!(
            the_account(Err(not_found()), &Err(not_found()))
                .unwrap_err()
                .is_not_found()
        );
        // One part only: a fault, whatever the other part's answer.
        for other in [members, Err(unavailable())] {
            let e = the_account(Err(not_found()), &other).unwrap_err();
            assert!(!e.is_not_found(), "{e:?}");
        }
        // Another failure of the account part stays what it is.
        let e = the_account(Err(unavailable()), &Err(not_found())).unwrap_err();
        assert_eq!(e.status(), Some(503));
        let user = the_account(
            ok(r#"{"id":"0b000000-0000-4000-8000-000000000001","userPrincipalName":"a@b.c"}"#),
            &Err(unavailable()),
        )
        .unwrap();
        assert_eq!(user.user_principal_name.as_str(), "a@b.c");
    }
}
