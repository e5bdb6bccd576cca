//! The language switch on every page (`GET /language?set=de&next=/verify`): remembers the choice
//! in a cookie, makes it the language of what a live flow sends from now on, and returns to the
//! page it was chosen on (a local path only).

use actix_web::cookie::{SameSite, time::Duration as CookieAge};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::FlowUpdate;
use serde::Deserialize;

use crate::i18n::{CHOICE_COOKIE, Lang};
use crate::portal::Portal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/language", web::get().to(switch));
}

#[derive(Deserialize)]
struct Switch {
    set: String,
    #[serde(default)]
    next: String,
}

/// `next` when it is a path of this portal (not `//host`, `/\host`, a scheme, or control
/// characters), else the start page.
fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 512
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if ok { next } else { "/" }
}

async fn switch(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<Switch>,
) -> HttpResponse {
    let next = local_path(&query.next).to_string();
    let Some(lang) = Lang::from_tag(&query.set) else {
        return crate::flow::see_other_to(&next);
    };
    // A live flow writes what it sends from now on in the chosen language.
    if let Ok(Some(mut current)) = crate::flow::load(&portal, &req).await {
        current.data.language = Some(lang.tag().to_string());
        if let Ok(data) = serde_json::to_value(&current.data) {
            let update = FlowUpdate {
                step: None,
                data: Some(data),
            };
            let now = portal.services.clock.now();
            if let Err(e) = portal
                .services
                .store
                .update_flow(&current.token, update, now)
                .await
            {
                tracing::warn!(error = %e, "language switch: the flow keeps its language");
            }
        }
    }
    let mut cookie = portal.services.cookies.cookie(
        CHOICE_COOKIE,
        lang.tag().to_string(),
        // Lax: the choice must survive a link into the portal from elsewhere.
        SameSite::Lax,
    );
    cookie.set_max_age(CookieAge::days(365));
    let resp = crate::flow::see_other_to(&next);
    crate::portal::with_cookie(resp, &cookie)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_returned_to() {
        use super::local_path;
        assert_eq!(local_path("/verify"), "/verify");
        assert_eq!(local_path("/admin/reports?days=7"), "/admin/reports?days=7");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
            "verify",
            "/a\nb",
        ] {
            assert_eq!(local_path(bad), "/", "{bad:?}");
        }
    }
}
