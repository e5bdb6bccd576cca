//! Finding a caller by name: "Adele", "van", "Adele Vance" (helpdesk staff often have only a
//! name on the phone). The exact lookup (address, `DOMAIN\name`, object id) comes first; when it
//! finds nobody the text is searched as a name prefix ([`Directory::search_users`]) and only
//! the users the helpdesk may serve are listed, so a search tells no more than a lookup does.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_types::ObjectId;

use super::page;
use crate::console::ConsoleUser;
use crate::portal::Portal;

/// Users read from the directory per search (before the scope check).
const FETCH: u32 = 25;
/// Users shown: refine the search for more.
pub const SHOWN: usize = 10;

/// Whether `q` may be searched as a name: not an address, an account with its domain or an
/// object id, and at least two characters.
pub fn is_name(q: &str) -> bool {
    let q = q.trim();
    q.chars().count() >= 2
        && !q.contains('@')
        && !q.contains('\\')
        && q.parse::<ObjectId>().is_err()
}

/// The results page for `q`: the served users whose name starts with it, at most [`SHOWN`].
pub async fn results(portal: &Portal, req: &HttpRequest, m: &ConsoleUser, q: &str) -> HttpResponse {
    let started = tokio::time::Instant::now();
    let s = &portal.services;
    let Some(consoles) = portal.part::<crate::console::Consoles>() else {
        return super::lookup::not_found(portal, req, m, q);
    };
    let found = match s.directory.search_users(q, FETCH).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: search failed");
            return portal.error_page(
                req,
                m.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    // The scope checks run side by side, and every answer waits out the deadline: how long a
    // search takes says nothing about how many out-of-scope namesakes it met.
    let mut checks = tokio::task::JoinSet::new();
    for (i, u) in found.iter().enumerate() {
        let (directory, serves, id) = (
            std::sync::Arc::clone(&s.directory),
            consoles.serves.clone(),
            u.id,
        );
        checks.spawn(async move { (i, directory.check_member_groups(&id, &serves).await) });
    }
    let mut in_scope = vec![false; found.len()];
    while let Some(joined) = checks.join_next().await {
        match joined {
            Ok((i, Ok(groups))) => in_scope[i] = !groups.is_empty(),
            Ok((_, Err(e))) => {
                tracing::error!(error = %e, "helpdesk: scope check failed");
                return portal.error_page(
                    req,
                    m.lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error_generic",
                );
            }
            Err(_) => {
                return portal.error_page(
                    req,
                    m.lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error_generic",
                );
            }
        }
    }
    tokio::time::sleep_until(started + s.deadline).await;
    let mut served: Vec<_> = found
        .into_iter()
        .zip(in_scope)
        .filter_map(|(u, ok)| ok.then_some(u))
        .collect();
    let more = served.len() > SHOWN;
    served.truncate(SHOWN);
    let audited = m
        .audit(
            portal,
            "helpdesk.search",
            None,
            latchkey_store::Outcome::Success,
            None,
            // The count, not the text: a search may name someone the member may not serve.
            serde_json::json!({ "shown": served.len() }),
        )
        .await;
    if audited.is_err() {
        return super::case::unavailable(portal, req, m);
    }
    if served.is_empty() {
        return super::lookup::not_found(portal, req, m, q);
    }
    let rows: Vec<serde_json::Value> = served
        .iter()
        .map(|u| {
            serde_json::json!({
                "id": u.id.to_string(),
                "name": u.display_name.clone().unwrap_or_default(),
                "upn": u.user_principal_name.clone().unwrap_or_default(),
                "disabled": u.account_enabled == Some(false),
            })
        })
        .collect();
    page(
        portal,
        req,
        m,
        "helpdesk_index.html",
        serde_json::json!({
            "section": "search",
            "q": q.chars().take(320).collect::<String>(),
            "errors": [],
            "results": rows,
            "more": more,
        }),
        StatusCode::OK,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_searched_addresses_and_ids_are_looked_up() {
        use super::is_name;
        assert!(is_name("Adele"));
        assert!(is_name("adele van"));
        assert!(!is_name("a"));
        assert!(!is_name("adele@contoso.com"));
        assert!(!is_name("CORP\\cmendes"));
        assert!(!is_name("87d349ed-44d7-43e1-9a83-5f2406dee5bd"));
    }
}
