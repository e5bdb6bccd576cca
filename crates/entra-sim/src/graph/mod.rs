//! Microsoft Graph v1.0 under `/v1.0`. Handlers are thin: read the request, check permissions
//! ([`auth`]), act on the tenant state, render the documented JSON.

pub mod auth;
pub mod batch;
pub mod delta;
pub mod error;
pub mod groups;
pub mod ids;
pub mod members;
pub mod methods;
pub mod passkeys;
pub mod reports;
pub mod reset;
pub mod risk;
pub mod sessions;
pub mod tenant;
pub mod users;

use actix_web::middleware::from_fn;
use actix_web::web::{self, delete, get, patch, post};
use actix_web::{HttpRequest, HttpResponse};

use error::GraphError;

/// Unknown paths: Graph answers 400 "Resource not found for the segment ...".
async fn unknown_segment(req: HttpRequest) -> Result<HttpResponse, GraphError> {
    let seg = req
        .path()
        .trim_start_matches("/v1.0/")
        .split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("");
    Err(GraphError::odata_bad_request(format!(
        "Resource not found for the segment '{seg}'."
    )))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let json_config = web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _| {
            GraphError::bad_request(format!("Invalid request body: {err}")).into()
        });
    let auth_base = "/users/{id}/authentication";
    cfg.service(
        web::scope("/v1.0")
            .app_data(json_config)
            .wrap(from_fn(ids::graph_ids))
            // JSON batching: each part goes back through this scope as its own HTTP request.
            .route("/$batch", post().to(batch::batch))
            .route("/users", get().to(users::list))
            .route("/users", post().to(users::create))
            .route("/users/$count", get().to(users::count))
            // Before `/users/{id}` and `/groups/{id}`, which would take these paths.
            .route("/users/delta", get().to(delta::users::users_delta))
            .route("/groups/delta", get().to(delta::groups::groups_delta))
            .route(
                "/directoryRoles/delta",
                get().to(delta::groups::roles_delta),
            )
            .route("/users/{id}", delete().to(members::delete_user))
            .route("/groups/{id}", delete().to(members::delete_group))
            .route("/groups/{id}/members/$ref", post().to(members::add_member))
            .route(
                "/groups/{id}/members/{mid}/$ref",
                delete().to(members::remove_member),
            )
            .route("/directory/deletedItems/{id}", delete().to(members::purge))
            .route(
                "/directory/deletedItems/{id}/restore",
                post().to(members::restore),
            )
            .route("/me", get().to(users::me))
            .route("/users/{id}", get().to(users::get))
            .route("/users/{id}", patch().to(users::update))
            .route("/users/{id}/memberOf", get().to(groups::member_of))
            .route(
                "/users/{id}/memberOf/{cast}",
                get().to(groups::member_of_cast),
            )
            .route(
                "/users/{id}/transitiveMemberOf",
                get().to(groups::transitive_member_of),
            )
            .route(
                "/users/{id}/transitiveMemberOf/{cast}",
                get().to(groups::transitive_member_of_cast),
            )
            .route(
                "/users/{id}/checkMemberGroups",
                post().to(groups::check_member_groups),
            )
            .route(
                "/users/{id}/revokeSignInSessions",
                post().to(sessions::revoke_sign_in_sessions),
            )
            .route(
                "/users/{id}/checkMemberObjects",
                post().to(groups::check_member_objects),
            )
            .route("/groups", get().to(groups::list_groups))
            .route("/groups/{id}", get().to(groups::get_group))
            .route("/groups/{id}/members", get().to(groups::members))
            .route(
                "/groups/{id}/members/{cast}",
                get().to(groups::members_cast),
            )
            .route(
                "/groups/{id}/transitiveMembers",
                get().to(groups::transitive_members),
            )
            .route(
                "/groups/{id}/transitiveMembers/{cast}",
                get().to(groups::transitive_members_cast),
            )
            .route(&format!("{auth_base}/methods"), get().to(methods::list_all))
            .route(
                &format!("{auth_base}/methods/{{mid}}/resetPassword"),
                post().to(reset::reset_password),
            )
            .route(
                &format!("{auth_base}/operations/{{op}}"),
                get().to(reset::get_operation),
            )
            // Before the generic `{kind}` routes, which would take these paths.
            .route(
                &format!("{auth_base}/fido2Methods/creationOptions"),
                get().to(passkeys::creation_options),
            )
            .route(
                &format!("{auth_base}/fido2Methods"),
                post().to(passkeys::register),
            )
            .route(
                &format!("{auth_base}/{{kind}}"),
                get().to(methods::list_kind),
            )
            .route(&format!("{auth_base}/{{kind}}"), post().to(methods::create))
            .route(
                &format!("{auth_base}/{{kind}}/{{mid}}"),
                get().to(methods::get_one),
            )
            .route(
                &format!("{auth_base}/{{kind}}/{{mid}}"),
                delete().to(methods::delete),
            )
            .route("/identityProtection/riskyUsers", get().to(risk::list))
            .route(
                "/identityProtection/riskyUsers/dismiss",
                post().to(risk::dismiss),
            )
            .route(
                "/identityProtection/riskyUsers/confirmCompromised",
                post().to(risk::confirm_compromised),
            )
            .route("/identityProtection/riskyUsers/{id}", get().to(risk::get))
            .route("/domains", get().to(tenant::list_domains))
            .route("/domains/{name}", get().to(tenant::get_domain))
            .route(
                "/domains/{name}/federationConfiguration",
                get().to(tenant::list_federation_configuration),
            )
            .route("/organization", get().to(tenant::list_organization))
            .route("/groupSettings", get().to(tenant::list_group_settings))
            .route(
                "/reports/authenticationMethods/userRegistrationDetails",
                get().to(reports::user_registration_details),
            )
            .route("/organization/{id}", get().to(tenant::get_organization))
            .route(
                "/directory/onPremisesSynchronization",
                get().to(tenant::list_sync),
            )
            .route(
                "/directory/onPremisesSynchronization/{id}",
                get().to(tenant::get_sync),
            )
            .route(
                "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{id}",
                get().to(tenant::get_method_configuration),
            )
            .default_service(web::to(unknown_segment)),
    );
}
