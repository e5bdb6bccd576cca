//! Delta queries (docs/directory-mirror.md): `/users/delta`, `/groups/delta` with `members@delta`
//! and `/directoryRoles/delta`, one page at a time. A round starts from the collection's first
//! URL (or a stored deltaLink), follows `@odata.nextLink`s and ends on the page that carries an
//! `@odata.deltaLink`, where the next round starts. Links are opaque: they carry the `$select`
//! of the first request, so they are followed as given and never rebuilt.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use crate::model::{USER_SELECT, User};
use latchkey_types::ObjectId;

/// A directory collection that delta queries track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeltaCollection {
    Users,
    Groups,
    DirectoryRoles,
}

impl DeltaCollection {
    pub const ALL: [DeltaCollection; 3] = [Self::Users, Self::Groups, Self::DirectoryRoles];

    /// Stable name (store keys, metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
            Self::DirectoryRoles => "directoryRoles",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The `$select` of a first request: what the portal reads of users (the same properties
    /// as a live read), and what membership needs of groups and roles.
    fn select(self) -> &'static str {
        match self {
            Self::Users => USER_SELECT,
            Self::Groups => "displayName,members",
            Self::DirectoryRoles => "displayName,roleTemplateId,members",
        }
    }
}

/// Where a delta request goes: the first request of a full round, or a link Graph gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaCursor {
    /// A full round from the collection's first page.
    Start,
    Link(DeltaLink),
}

/// A nextLink or deltaLink, checked to point at the configured Graph origin (the bearer token
/// never goes elsewhere). Stored as text between rounds; re-checked when read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaLink(Url);

impl DeltaLink {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Why Graph says an object left the collection (`@removed.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Soft-deleted (restorable) or otherwise no longer in the collection.
    Changed,
    /// Deleted for good.
    Deleted,
}

/// One entry of a delta page.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaItem<T> {
    /// Created or changed: the object with every selected property Graph has for it.
    Present(T),
    Removed {
        id: ObjectId,
        reason: Removal,
    },
}

/// What kind of object a membership entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
    /// Devices, service principals, contacts, ...: kept so a later removal matches, never
    /// counted as a user.
    Other,
}

/// One `members@delta` entry: added (or, in a first round, present), or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberChange {
    pub id: ObjectId,
    pub kind: MemberKind,
    pub removed: bool,
}

/// A group or directory role from a delta page. `display_name` is `None` when the page did not
/// carry it (a large group's later member chunks); `members` are changes to apply, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaGroup {
    pub id: ObjectId,
    pub display_name: Option<String>,
    pub role_template_id: Option<ObjectId>,
    pub members: Vec<MemberChange>,
}

/// One page of a round; exactly one of the two links ends it.
#[derive(Debug, Clone)]
pub struct DeltaPage<T> {
    pub items: Vec<DeltaItem<T>>,
    pub next: DeltaNext,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaNext {
    /// More pages in this round (`@odata.nextLink`).
    More(DeltaLink),
    /// The round is complete; the next one starts here (`@odata.deltaLink`).
    Done(DeltaLink),
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(rename = "@odata.context", default)]
    context: Option<String>,
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
struct RawRemoved {
    reason: String,
}

#[derive(Deserialize)]
struct RawMember {
    id: ObjectId,
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    #[serde(rename = "@removed", default)]
    removed: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroup {
    id: ObjectId,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role_template_id: Option<ObjectId>,
    #[serde(rename = "members@delta", default)]
    members: Vec<RawMember>,
}

impl GraphClient {
    /// A stored link read back: it must still point at the configured Graph origin.
    pub fn delta_link(&self, text: &str) -> Result<DeltaLink, GraphError> {
        let url = Url::parse(text)
            .map_err(|_| GraphError::InvalidInput("a stored delta link is not a URL".into()))?;
        self.check_link(&url)?;
        Ok(DeltaLink(url))
    }

    /// One page of users (`/users/delta?$select=` the portal's user properties).
    pub async fn users_delta(&self, at: &DeltaCursor) -> Result<DeltaPage<User>, GraphError> {
        self.delta_page(at, DeltaCollection::Users, |v| {
            serde_json::from_value::<User>(v).map_err(|e| e.to_string())
        })
        .await
    }

    /// One page of groups or directory roles with `members@delta`.
    pub async fn groups_delta(
        &self,
        at: &DeltaCursor,
        collection: DeltaCollection,
    ) -> Result<DeltaPage<DeltaGroup>, GraphError> {
        self.delta_page(at, collection, |v| {
            let raw: RawGroup = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok(DeltaGroup {
                id: raw.id,
                display_name: raw.display_name,
                role_template_id: raw.role_template_id,
                members: raw.members.into_iter().map(member_change).collect(),
            })
        })
        .await
    }

    async fn delta_page<T>(
        &self,
        at: &DeltaCursor,
        collection: DeltaCollection,
        decode: impl Fn(Value) -> Result<T, String>,
    ) -> Result<DeltaPage<T>, GraphError> {
        let url = match at {
            DeltaCursor::Start => self.url_with_query(
                &[collection.as_str(), "delta"],
                &[("$select", collection.select())],
            ),
            DeltaCursor::Link(link) => {
                self.check_link(&link.0)?;
                if !is_delta_of(&link.0, collection) {
                    return Err(GraphError::InvalidInput(format!(
                        "a stored link is not a {} delta link",
                        collection.as_str()
                    )));
                }
                link.0.clone()
            }
        };
        let resp = self
            .send(Request::new(Method::GET, url, Endpoint::Graph))
            .await?;
        let unexpected = |message: String| GraphError::UnexpectedResponse {
            status: resp.status.as_u16(),
            message,
            client_request_id: resp.client_request_id.clone(),
        };
        let raw: RawPage = resp.json()?;
        // The answer must be the collection asked for (a link that led elsewhere on the Graph
        // host would otherwise store users as groups).
        if raw
            .context
            .as_deref()
            .is_some_and(|c| !c.contains(&format!("#{}", collection.as_str())))
        {
            return Err(unexpected(format!(
                "the page is not of the {} collection",
                collection.as_str()
            )));
        }
        let mut items = Vec::with_capacity(raw.value.len());
        for v in raw.value {
            items.push(match removed(&v) {
                Some(Ok(removal)) => removal,
                Some(Err(message)) => return Err(unexpected(message)),
                None => DeltaItem::Present(decode(v).map_err(|e| {
                    unexpected(format!(
                        "delta item does not match the documented shape: {}",
                        crate::http::without_quoted(&e)
                    ))
                })?),
            });
        }
        let link = |text: String| -> Result<DeltaLink, GraphError> {
            let url = Url::parse(&text)
                .map_err(|_| unexpected("a delta page link is not an absolute URL".into()))?;
            self.check_link(&url)?;
            if !is_delta_of(&url, collection) {
                return Err(unexpected(format!(
                    "a page link does not lead to {}/delta",
                    collection.as_str()
                )));
            }
            Ok(DeltaLink(url))
        };
        let next = match (raw.next_link, raw.delta_link) {
            (Some(next), None) => DeltaNext::More(link(next)?),
            (None, Some(delta)) => DeltaNext::Done(link(delta)?),
            _ => {
                return Err(unexpected(
                    "a delta page must carry exactly one of @odata.nextLink and @odata.deltaLink"
                        .into(),
                ));
            }
        };
        Ok(DeltaPage { items, next })
    }
}

/// Whether `url`'s path ends in `/{collection}/delta` (nextLinks and deltaLinks both do).
fn is_delta_of(url: &Url, collection: DeltaCollection) -> bool {
    let mut segments = url.path_segments().into_iter().flatten().rev();
    segments.next() == Some("delta") && segments.next() == Some(collection.as_str())
}

/// `Some` when the entry is `{"id": …, "@removed": {"reason": …}}`.
fn removed<T>(v: &Value) -> Option<Result<DeltaItem<T>, String>> {
    let marker = v.get("@removed")?;
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ObjectId>().ok());
    let reason = serde_json::from_value::<RawRemoved>(marker.clone())
        .ok()
        .map(|r| r.reason);
    Some(match (id, reason.as_deref()) {
        (Some(id), Some("deleted")) => Ok(DeltaItem::Removed {
            id,
            reason: Removal::Deleted,
        }),
        // "changed" and any reason Graph adds later: the object left the collection; treating
        // it as gone is the safe reading (a mirror that lacks a user only refuses).
        (Some(id), Some(_)) => Ok(DeltaItem::Removed {
            id,
            reason: Removal::Changed,
        }),
        _ => Err("@removed entry without an object id or reason".into()),
    })
}

fn member_change(raw: RawMember) -> MemberChange {
    let kind = match raw.odata_type.as_deref() {
        Some("#microsoft.graph.user") => MemberKind::User,
        Some("#microsoft.graph.group") => MemberKind::Group,
        _ => MemberKind::Other,
    };
    MemberChange {
        id: raw.id,
        kind,
        removed: raw.removed.is_some(),
    }
}

impl GraphError {
    /// Graph no longer knows the round's state: start a full round again. `410 Gone`
    /// (`resyncRequired`, docs "synchronization reset") or the older `400 syncStateNotFound`.
    pub fn is_sync_reset(&self) -> bool {
        match (self.status(), self.code()) {
            (Some(410), _) => true,
            (Some(400), Some(code)) => {
                code.eq_ignore_ascii_case("syncStateNotFound")
                    || code.eq_ignore_ascii_case("resyncRequired")
            }
            _ => false,
        }
    }
}
