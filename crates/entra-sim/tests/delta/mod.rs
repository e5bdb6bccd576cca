//! Delta queries (`/users/delta`, `/groups/delta`, `/directoryRoles/delta`), the writes they
//! report, token expiry and reset, the generator and churn.

mod generate;
mod groups;
mod tokens;
mod users;
mod writes;

use latchkey_entra_sim::{Fixture, Sim};
use reqwest::Method;
use serde_json::Value;

use crate::support::*;

/// The test tenant with the permissions these tests need on the test app.
pub fn fixture() -> Fixture {
    let mut f = Fixture::test();
    f.apps[0].application_permissions.extend(
        [
            "RoleManagement.Read.Directory",
            "GroupMember.ReadWrite.All",
            "User.ReadWrite.All",
            "User.DeleteRestore.All",
            "Group.ReadWrite.All",
        ]
        .map(str::to_owned),
    );
    f
}

pub async fn start_delta() -> (Sim, String) {
    let sim = start_with(fixture()).await;
    let t = app_token(&sim).await;
    (sim, t)
}

/// One delta round from `url` to its deltaLink: (every item, deltaLink, pages).
pub async fn walk(
    sim: &Sim,
    token: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut url = url.to_owned();
    let mut pages = 0;
    loop {
        let (s, _, b) = graph(sim, token, Method::GET, &url, None, headers).await;
        assert_eq!(s, 200, "{url}: {b}");
        pages += 1;
        items.extend(b["value"].as_array().unwrap().iter().cloned());
        match (b.get("@odata.nextLink"), b.get("@odata.deltaLink")) {
            (Some(n), None) => url = n.as_str().unwrap().to_owned(),
            (None, Some(d)) => return (items, d.as_str().unwrap().to_owned(), pages),
            _ => panic!("exactly one of nextLink/deltaLink: {b}"),
        }
    }
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every user id `GET /users` lists.
pub async fn all_user_ids(sim: &Sim, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = "/users?$select=id&$top=999".to_owned();
    loop {
        let (s, _, b) = graph_get(sim, token, &url).await;
        assert_eq!(s, 200, "{b}");
        out.extend(ids(b["value"].as_array().unwrap()));
        match b.get("@odata.nextLink") {
            Some(n) => url = n.as_str().unwrap().to_owned(),
            None => return out,
        }
    }
}

/// Direct member ids of a group, as `GET /groups/{id}/members` lists them.
pub async fn member_ids(sim: &Sim, token: &str, group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = format!("/groups/{group}/members?$select=id&$top=999");
    loop {
        let (s, _, b) = graph_get(sim, token, &url).await;
        assert_eq!(s, 200, "{b}");
        out.extend(ids(b["value"].as_array().unwrap()));
        match b.get("@odata.nextLink") {
            Some(n) => url = n.as_str().unwrap().to_owned(),
            None => {
                out.sort();
                return out;
            }
        }
    }
}
