//! [`TenantHandle`]: what tests use to look at and change the live tenant without going
//! through HTTP (setting risk, removing a permission, moving the clock ...).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::app::Shared;
use crate::roles;

/// A copy of one user's state at the time of the call.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSnapshot {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    pub account_enabled: bool,
    pub on_premises_sync_enabled: Option<bool>,
    pub last_password_change: OffsetDateTime,
    pub force_change_password_next_sign_in: bool,
    /// Directory role template ids.
    pub roles: Vec<String>,
    pub risk_level: Option<String>,
    pub risk_state: Option<String>,
    pub risk_detail: Option<String>,
    /// Smart lockout: locked until this time (if in the future).
    pub locked_until: Option<OffsetDateTime>,
    /// Failed sign-ins counted toward the next lockout.
    pub failed_sign_ins: u32,
    /// The user's methods as `GET /authentication/methods` lists them.
    pub methods: Vec<serde_json::Value>,
}

#[derive(Clone)]
pub struct TenantHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for TenantHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantHandle").finish_non_exhaustive()
    }
}

impl TenantHandle {
    pub fn tenant_id(&self) -> String {
        self.shared.state().tenant_id.to_string()
    }

    /// The simulated "now".
    pub fn now(&self) -> OffsetDateTime {
        self.shared.clock.now()
    }

    /// Moves simulated time forward: tokens, codes, lockouts and TAPs age accordingly.
    pub fn advance_time(&self, by: std::time::Duration) {
        self.shared
            .clock
            .advance(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
    }

    /// A user by UPN or object id.
    pub fn user(&self, upn_or_id: &str) -> Option<UserSnapshot> {
        let now = self.now();
        let state = self.shared.state();
        let u = state.user(upn_or_id)?;
        Some(UserSnapshot {
            id: u.id.to_string(),
            upn: u.upn.clone(),
            display_name: u.display_name.clone(),
            mail: u.mail.clone(),
            other_mails: u.other_mails.clone(),
            account_enabled: u.account_enabled,
            on_premises_sync_enabled: u.on_premises_sync_enabled,
            last_password_change: u.last_password_change,
            force_change_password_next_sign_in: u.force_change_password_next_sign_in,
            roles: u.roles.iter().cloned().collect(),
            risk_level: u.risk.as_ref().map(|r| r.level.clone()),
            risk_state: u.risk.as_ref().map(|r| r.state.clone()),
            risk_detail: u.risk.as_ref().map(|r| r.detail.clone()),
            locked_until: u.lockout.locked_until.filter(|t| *t > now),
            failed_sign_ins: u.lockout.failures,
            methods: u.methods.all(now),
        })
    }

    /// Object id of a user, for building URLs in tests.
    pub fn user_id(&self, upn: &str) -> Option<String> {
        self.shared.state().user(upn).map(|u| u.id.to_string())
    }

    pub fn group_id(&self, display_name: &str) -> Option<String> {
        self.shared
            .state()
            .groups
            .iter()
            .find(|g| g.display_name.eq_ignore_ascii_case(display_name))
            .map(|g| g.id.to_string())
    }

    /// The `oid` of app-only tokens for this client.
    pub fn service_principal_id(&self, client_id: &str) -> Option<String> {
        self.shared
            .state()
            .app(client_id)
            .map(|a| a.sp_id.to_string())
    }

    /// Does `password` match the user's current password? (No lockout side effects.)
    pub fn check_password(&self, upn_or_id: &str, password: &str) -> bool {
        self.shared
            .state()
            .user(upn_or_id)
            .is_some_and(|u| u.password.expose() == password)
    }

    /// Sets a password directly (no policy check, no risk change).
    pub fn set_password(&self, upn_or_id: &str, password: &str) -> bool {
        self.with_user(upn_or_id, |u, now| {
            u.password = latchkey_types::Secret::new(password.to_owned());
            u.last_password_change = now;
        })
    }

    /// Sets user risk (`level`: low/medium/high/none; `state`: atRisk, dismissed ...).
    pub fn set_risk(&self, upn_or_id: &str, level: &str, state: &str) -> bool {
        self.with_user(upn_or_id, |u, now| {
            u.risk = Some(super::Risk {
                level: level.to_owned(),
                state: state.to_owned(),
                detail: "none".to_owned(),
                last_updated: now,
            });
        })
    }

    pub fn set_account_enabled(&self, upn_or_id: &str, enabled: bool) -> bool {
        let mut state = self.shared.state();
        match state.user_index(upn_or_id) {
            Some(i) => {
                state.users[i].account_enabled = enabled;
                state.touch_user(i);
                true
            }
            None => false,
        }
    }

    /// Replaces a user's directory roles (display names, as the fixture's `directory_roles`);
    /// `/directoryRoles/delta` reports the member changes. `false` for an unknown user or role.
    pub fn set_user_directory_roles(&self, upn_or_id: &str, role_names: &[&str]) -> bool {
        let Some(ids) = role_names
            .iter()
            .map(|n| roles::by_name(n).map(str::to_owned))
            .collect::<Option<std::collections::BTreeSet<String>>>()
        else {
            return false;
        };
        let mut state = self.shared.state();
        match state.user_index(upn_or_id) {
            Some(i) => {
                state.set_user_roles(i, ids);
                true
            }
            None => false,
        }
    }

    /// Soft-deletes a user, as `DELETE /users/{id}` does.
    pub fn delete_user(&self, upn_or_id: &str) -> bool {
        let now = self.now();
        let mut state = self.shared.state();
        match state.user_index(upn_or_id) {
            Some(i) => {
                state.soft_delete_user(i, now);
                true
            }
            None => false,
        }
    }

    /// `count` random directory changes (see [`crate::state::churn`]).
    pub fn churn(&self, count: usize, seed: u64) -> super::churn::ChurnSummary {
        let now = self.now();
        self.shared.state().churn(count, seed, now)
    }

    /// Makes every issued delta token stale (the next use gets the resync answer).
    pub fn reset_delta_tokens(&self) {
        self.shared.state().changes.epoch += 1;
    }

    /// Number of live users and groups.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.shared.state();
        (s.users.len(), s.groups.len())
    }

    /// Smart-locks the account now (as if the threshold had just been reached).
    pub fn lock_out(&self, upn_or_id: &str) -> bool {
        let secs = self.shared.state().smart_lockout.duration_seconds as i64;
        self.with_user(upn_or_id, |u, now| {
            u.lockout.lockouts += 1;
            u.lockout.locked_until = Some(now + time::Duration::seconds(secs));
        })
    }

    pub fn is_locked_out(&self, upn_or_id: &str) -> bool {
        self.user(upn_or_id)
            .is_some_and(|u| u.locked_until.is_some())
    }

    /// Removes an application permission; tokens issued afterwards no longer carry it.
    pub fn remove_app_permission(&self, client_id: &str, permission: &str) -> bool {
        self.with_app(client_id, |a| a.permissions.remove(permission))
    }

    pub fn add_app_permission(&self, client_id: &str, permission: &str) -> bool {
        self.with_app(client_id, |a| {
            a.permissions.insert(permission.to_owned());
            true
        })
    }

    /// Replaces the directory roles (by display name) of the app's service principal.
    pub fn set_app_directory_roles(&self, client_id: &str, role_names: &[&str]) -> bool {
        let ids: Option<Vec<String>> = role_names
            .iter()
            .map(|n| roles::by_name(n).map(str::to_owned))
            .collect();
        let Some(ids) = ids else { return false };
        self.with_app(client_id, |a| {
            a.roles = ids.into_iter().collect();
            true
        })
    }

    /// Removes a direct member (a user by UPN or id, or a group by display name) from the group
    /// named `group`, as `DELETE /groups/{id}/members/{id}/$ref` would. `false` when either is
    /// unknown or it was not a direct member.
    pub fn remove_group_member(&self, group: &str, member: &str) -> bool {
        self.with_group_member(group, member, |state, g, m| {
            state.remove_member(g, m).is_ok()
        })
    }

    /// Sets (or clears) a user's default sign-in method (see `MethodsFixture::default_method`).
    pub fn set_default_method(&self, user: &str, method: Option<&str>) -> bool {
        self.with_user(user, |u, _| {
            u.methods.default_method = method.map(str::to_owned);
        })
    }

    /// Sets (or removes) the email address a user registered as an authentication method.
    pub fn set_email_method(&self, user: &str, address: Option<&str>) -> bool {
        self.with_user(user, |u, _| {
            u.methods.email = address.map(str::to_owned);
        })
    }

    /// Whether the tenant holds Entra ID P1/P2 (the authentication methods reports need it).
    pub fn set_premium(&self, premium: bool) {
        self.shared.state().tenant.premium = premium;
    }

    /// Adds a direct member (as [`TenantHandle::remove_group_member`] names them).
    pub fn add_group_member(&self, group: &str, member: &str) -> bool {
        self.with_group_member(group, member, |state, g, m| state.add_member(g, m).is_ok())
    }

    /// Resolves the names, then applies `f` (which logs the change for delta).
    fn with_group_member(
        &self,
        group: &str,
        member: &str,
        f: impl FnOnce(&mut super::State, uuid::Uuid, super::Member) -> bool,
    ) -> bool {
        let mut state = self.shared.state();
        let m = if let Some(u) = state.user(member) {
            super::Member::User(u.id)
        } else if let Some(g) = state
            .groups
            .iter()
            .find(|g| g.display_name.eq_ignore_ascii_case(member))
        {
            super::Member::Group(g.id)
        } else {
            return false;
        };
        match state
            .groups
            .iter()
            .find(|g| g.display_name.eq_ignore_ascii_case(group))
            .map(|g| g.id)
        {
            Some(g) => f(&mut state, g, m),
            None => false,
        }
    }

    /// The FIDO2 (passkey) method policy now in force.
    pub fn fido2_policy(&self) -> crate::fixture::Fido2PolicyFixture {
        self.shared.state().fido2_policy.clone()
    }

    /// Replaces the FIDO2 (passkey) method policy, as an admin saving the policy blade would.
    /// `Err` names the invalid field (the fixture's rules).
    pub fn set_fido2_policy(
        &self,
        policy: crate::fixture::Fido2PolicyFixture,
    ) -> Result<(), crate::FixtureError> {
        policy.validate()?;
        self.shared.state().fido2_policy = policy;
        Ok(())
    }

    pub fn set_password_writeback(&self, enabled: bool) {
        self.shared.state().sync.password_writeback_enabled = enabled;
    }

    /// Identity Protection requests per second (0 = no throttle).
    pub fn set_identity_protection_limit(&self, per_second: u32) {
        let mut s = self.shared.state();
        s.throttling.identity_protection_per_second = per_second;
        s.identity_protection_hits.clear();
    }

    fn with_user(&self, key: &str, f: impl FnOnce(&mut super::User, OffsetDateTime)) -> bool {
        let now = self.now();
        let mut state = self.shared.state();
        match state.user_index(key) {
            Some(i) => {
                f(&mut state.users[i], now);
                true
            }
            None => false,
        }
    }

    fn with_app(&self, client_id: &str, f: impl FnOnce(&mut super::App) -> bool) -> bool {
        let mut state = self.shared.state();
        state
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .is_some_and(f)
    }
}
