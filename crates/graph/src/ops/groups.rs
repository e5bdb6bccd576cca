//! Group and role membership.

use serde::Deserialize;
use serde_json::json;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::model::{
    DirectoryRoleRef, GroupRef, Memberships, OtherDirectoryObject, RawDirectoryObject,
};
use latchkey_types::ObjectId;

/// Most ids `checkMemberGroups` accepts per call.
pub const CHECK_MEMBER_GROUPS_MAX: usize = 20;

impl GraphClient {
    /// Every group and directory role the user belongs to, directly or through nesting:
    /// `GET /users/{id}/transitiveMemberOf?$select=id,displayName,roleTemplateId&$top=999`,
    /// all pages. Objects are sorted into groups, roles and others by `@odata.type`.
    pub async fn transitive_memberships(&self, id: &ObjectId) -> Result<Memberships, GraphError> {
        let id = id.to_string();
        let url = self.url_with_query(
            &["users", &id, "transitiveMemberOf"],
            &[
                ("$select", "id,displayName,roleTemplateId"),
                ("$top", "999"),
            ],
        );
        let raw: Vec<RawDirectoryObject> = self.get_paged(url, &[]).await?;
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
        Ok(m)
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
