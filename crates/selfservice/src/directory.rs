//! The directory as the self-service flows see it: the few Graph operations they need, behind a
//! trait so flows can be tested without a tenant (and so a second directory — the on-premises
//! gateway — can stand in for synced users later).

use std::future::Future;
use std::pin::Pin;

use latchkey_graph::{
    AuthMethod, EmailMethod, GraphClient, GraphError, Memberships, NextPage, Organization, Page,
    PasswordRuleSettings, PhoneMethod, RegistrationDetails, RiskState, TapRequest,
    TemporaryAccessPass, User, UserRef, UserWithMemberships,
};
use latchkey_types::{ObjectId, Secret, SignInName};

/// Boxed, `Send` future returned by [`Directory`] methods.
pub type DirFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GraphError>> + Send + 'a>>;

/// Directory operations used by the flows.
pub trait Directory: Send + Sync + 'static {
    /// Whether the directory can be used now: an access token can be had (the cached one while
    /// it is valid: no request then). For readiness probes.
    fn ready(&self) -> DirFuture<'_, ()>;
    /// The one user `login` names — a UPN, mail, other mail or proxy address; `DOMAIN\\name` or a
    /// bare `name` (on-premises account name, synced users); `name@on-premises-domain` — or
    /// `None` when none or several match (the flow treats both alike).
    fn find_user<'a>(&'a self, login: &'a str) -> DirFuture<'a, Option<User>>;
    fn user<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, User>;
    /// Transitive groups and directory roles, fully paged.
    fn memberships<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Memberships>;
    /// The account as it is now and its transitive groups and roles, read together (one
    /// `$batch` request to Graph): the check right before a change. `Err` is about the account;
    /// a failed membership read is inside.
    fn user_with_memberships<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, UserWithMemberships>;
    /// Which of `groups` the user is a transitive member of (`checkMemberGroups`).
    fn check_member_groups<'a>(
        &'a self,
        id: &'a ObjectId,
        groups: &'a [ObjectId],
    ) -> DirFuture<'a, Vec<ObjectId>>;
    /// Sets a cloud user's password (app-only `passwordProfile`).
    fn set_password<'a>(
        &'a self,
        id: &'a ObjectId,
        password: &'a Secret<String>,
    ) -> DirFuture<'a, ()>;
    /// Resets a synced (on-premises-mastered) user's password through the delegated
    /// `resetPassword`, which writes back to on-premises AD, and waits for its long-running
    /// operation. Only a delegated client (an Authentication Administrator's credential) may.
    fn reset_password_writeback<'a>(
        &'a self,
        id: &'a ObjectId,
        password: &'a Secret<String>,
    ) -> DirFuture<'a, ()>;
    /// Whether Identity Protection currently considers the user at risk.
    fn is_at_risk<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, bool>;
    fn dismiss_risk<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, ()>;
    /// Signs the user out of every app and browser (`revokeSignInSessions`, app-only).
    fn revoke_sign_in_sessions<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, ()>;
    /// Issues a Temporary Access Pass (replacing a valid one, Graph's rule). The pass is in the
    /// answer only this once.
    fn create_temporary_access_pass<'a>(
        &'a self,
        id: &'a ObjectId,
        request: &'a TapRequest,
    ) -> DirFuture<'a, TemporaryAccessPass>;
    /// The phone numbers the user registered as authentication methods (`phoneMethods`).
    fn phone_methods<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Vec<PhoneMethod>>;
    /// The email address the user registered as an authentication method (`emailMethods`).
    fn email_methods<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Vec<EmailMethod>>;
    /// The user's registered authentication methods (all types, fully paged).
    fn auth_methods<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Vec<AuthMethod>>;
    /// Deletes one method through its type's collection.
    fn delete_auth_method<'a>(
        &'a self,
        id: &'a ObjectId,
        method: &'a AuthMethod,
    ) -> DirFuture<'a, ()>;
    /// One page of every user of the tenant ([`UserSummary`] fields only); `next` from the
    /// previous page. Reports read the tenant this way, one page in memory at a time.
    fn users_page<'a>(&'a self, next: Option<&'a NextPage>) -> DirFuture<'a, Page<UserSummary>>;
    /// One page of the users in `group`, nested groups resolved.
    fn group_users_page<'a>(
        &'a self,
        group: &'a ObjectId,
        next: Option<&'a NextPage>,
    ) -> DirFuture<'a, Page<UserSummary>>;
    /// A group's display name.
    fn group_name<'a>(&'a self, group: &'a ObjectId) -> DirFuture<'a, Option<String>>;
    /// At most `top` users whose name or address starts with `text` (the helpdesk's search).
    fn search_users<'a>(&'a self, text: &'a str, top: u32) -> DirFuture<'a, Vec<UserSummary>>;
    /// One page of the registration report (`userRegistrationDetails`); `next` from the
    /// previous page.
    fn registration_details_page<'a>(
        &'a self,
        next: Option<&'a NextPage>,
    ) -> DirFuture<'a, Page<RegistrationDetails>>;
    /// The tenant's "Password Rule Settings" (custom banned list, smart lockout), or Entra's
    /// defaults when it has none.
    fn password_rule_settings(&self) -> DirFuture<'_, PasswordRuleSettings>;
    /// The organization: its display name and verified domains.
    fn organization(&self) -> DirFuture<'_, Organization>;
}

/// The few user properties reports list ([`USER_SUMMARY_SELECT`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub id: ObjectId,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
}

/// `$select` for [`UserSummary`].
pub const USER_SUMMARY_SELECT: &str =
    "id,userPrincipalName,displayName,accountEnabled,onPremisesSyncEnabled";
/// Users per page when reports read the tenant (Graph's maximum: fewest requests).
const REPORT_PAGE: u32 = latchkey_graph::MAX_PAGE_SIZE;

impl Directory for GraphClient {
    fn ready(&self) -> DirFuture<'_, ()> {
        Box::pin(async move { self.token_claims().await.map(|_| ()) })
    }

    fn find_user<'a>(&'a self, login: &'a str) -> DirFuture<'a, Option<User>> {
        Box::pin(async move {
            // What cannot be an account name matches nobody (the flow treats it like an unknown
            // account); an address that names nobody may still be `name@on-premises-domain`.
            let Ok(typed) = login.parse::<SignInName>() else {
                return Ok(None);
            };
            let found = match &typed {
                SignInName::Address(address) => {
                    match GraphClient::find_user(self, address.as_str()).await {
                        Err(GraphError::NotFound { .. }) => match typed.as_account() {
                            Some((domain, name)) => {
                                self.find_user_by_account(Some(&domain), &name).await
                            }
                            None => return Ok(None),
                        },
                        other => other,
                    }
                }
                SignInName::Account { domain, name } => {
                    self.find_user_by_account(domain.as_deref(), name).await
                }
            };
            match found {
                Ok(u) => Ok(Some(u)),
                Err(
                    GraphError::NotFound { .. }
                    | GraphError::Ambiguous { .. }
                    | GraphError::InvalidInput(_),
                ) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn user<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, User> {
        Box::pin(async move { self.get_user(&UserRef::Id(*id)).await })
    }

    fn memberships<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Memberships> {
        Box::pin(self.transitive_memberships(id))
    }

    fn user_with_memberships<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, UserWithMemberships> {
        Box::pin(GraphClient::user_with_memberships(self, id))
    }

    fn check_member_groups<'a>(
        &'a self,
        id: &'a ObjectId,
        groups: &'a [ObjectId],
    ) -> DirFuture<'a, Vec<ObjectId>> {
        Box::pin(GraphClient::check_member_groups(self, id, groups))
    }

    fn set_password<'a>(
        &'a self,
        id: &'a ObjectId,
        password: &'a Secret<String>,
    ) -> DirFuture<'a, ()> {
        // The user chose this password after proving who they are: no forced change at next sign-in.
        Box::pin(GraphClient::set_password(self, id, password, false))
    }

    fn reset_password_writeback<'a>(
        &'a self,
        id: &'a ObjectId,
        password: &'a Secret<String>,
    ) -> DirFuture<'a, ()> {
        Box::pin(async move {
            if !self.is_delegated() {
                return Err(GraphError::Config(
                    "resetPassword needs a delegated credential".into(),
                ));
            }
            // newPassword is required for hybrid users; the outcome's generated password is None.
            self.reset_password(id, Some(password)).await.map(|_| ())
        })
    }

    fn is_at_risk<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.get_risky_user(id).await?.is_some_and(|r| {
                matches!(
                    r.risk_state,
                    Some(RiskState::AtRisk | RiskState::ConfirmedCompromised)
                )
            }))
        })
    }

    fn dismiss_risk<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, ()> {
        Box::pin(async move { self.dismiss_risky_users(std::slice::from_ref(id)).await })
    }

    fn revoke_sign_in_sessions<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, ()> {
        Box::pin(GraphClient::revoke_sign_in_sessions(self, id))
    }

    fn create_temporary_access_pass<'a>(
        &'a self,
        id: &'a ObjectId,
        request: &'a TapRequest,
    ) -> DirFuture<'a, TemporaryAccessPass> {
        Box::pin(GraphClient::create_temporary_access_pass(self, id, request))
    }

    fn auth_methods<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Vec<AuthMethod>> {
        Box::pin(self.list_auth_methods(id))
    }

    fn delete_auth_method<'a>(
        &'a self,
        id: &'a ObjectId,
        method: &'a AuthMethod,
    ) -> DirFuture<'a, ()> {
        Box::pin(GraphClient::delete_auth_method(self, id, method))
    }

    fn users_page<'a>(&'a self, next: Option<&'a NextPage>) -> DirFuture<'a, Page<UserSummary>> {
        Box::pin(GraphClient::users_page(
            self,
            USER_SUMMARY_SELECT,
            REPORT_PAGE,
            next,
        ))
    }

    fn group_users_page<'a>(
        &'a self,
        group: &'a ObjectId,
        next: Option<&'a NextPage>,
    ) -> DirFuture<'a, Page<UserSummary>> {
        Box::pin(GraphClient::group_users_page(
            self,
            group,
            USER_SUMMARY_SELECT,
            REPORT_PAGE,
            next,
        ))
    }

    fn group_name<'a>(&'a self, group: &'a ObjectId) -> DirFuture<'a, Option<String>> {
        Box::pin(self.group_display_name(group))
    }

    fn registration_details_page<'a>(
        &'a self,
        next: Option<&'a NextPage>,
    ) -> DirFuture<'a, Page<RegistrationDetails>> {
        Box::pin(GraphClient::registration_details_page(self, next))
    }

    fn search_users<'a>(&'a self, text: &'a str, top: u32) -> DirFuture<'a, Vec<UserSummary>> {
        Box::pin(GraphClient::search_users(
            self,
            text,
            USER_SUMMARY_SELECT,
            top,
        ))
    }

    fn phone_methods<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Vec<PhoneMethod>> {
        Box::pin(self.list_phone_methods(id))
    }

    fn email_methods<'a>(&'a self, id: &'a ObjectId) -> DirFuture<'a, Vec<EmailMethod>> {
        Box::pin(self.list_email_methods(id))
    }

    fn password_rule_settings(&self) -> DirFuture<'_, PasswordRuleSettings> {
        Box::pin(GraphClient::password_rule_settings(self))
    }

    fn organization(&self) -> DirFuture<'_, Organization> {
        Box::pin(GraphClient::organization(self))
    }
}
