//! What `latchkey check` checks: each capability a feature needs, the permissions and roles
//! that grant it, and the read that confirms it.

use crate::config::Settings;

/// A real call that confirms a capability.
#[derive(Clone, Copy)]
pub(super) enum Probe {
    None,
    FindUser,
    Memberships,
    AuthMethods,
    RiskyUser,
    Domains,
    Organization,
    PasswordRules,
    /// The tenant's passkey (FIDO2) method policy: on, and self-service set-up allowed.
    Fido2Policy,
    /// The first page of `directoryRoles/delta` (the directory mirror).
    DirectoryRolesDelta,
}

/// One capability a feature needs.
pub(super) struct Requirement {
    pub(super) id: &'static str,
    pub(super) operation: &'static str,
    /// `None`: always required. Otherwise required when this returns true.
    pub(super) feature: Option<fn(&Settings) -> bool>,
    /// Application permissions, any one suffices; the first is the least privileged.
    pub(super) permissions: &'static [&'static str],
    /// Directory roles of the app's service principal, any one suffices (empty: none needed).
    pub(super) roles: &'static [&'static str],
    pub(super) probe: Probe,
    pub(super) why: &'static str,
}

const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const PRIV_AUTH_ADMIN: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

pub(super) const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        id: "users.read",
        operation: "Look up users by UPN, mail and aliases",
        feature: None,
        permissions: &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::FindUser,
        why: "every flow starts by resolving the user",
    },
    Requirement {
        id: "groups.read",
        operation: "Read transitive group membership and roles",
        feature: None,
        permissions: &[
            "GroupMember.Read.All",
            "Group.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::Memberships,
        why: "access policies are group-based; privileged users are recognised by their roles",
    },
    Requirement {
        id: "mirror.roles",
        operation: "Track directory roles for the directory mirror (delta query)",
        feature: Some(|s| s.directory.mirror),
        permissions: &[
            "RoleManagement.Read.Directory",
            "RoleManagement.ReadWrite.Directory",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::DirectoryRolesDelta,
        why: "the mirror knows who is privileged; without it the portal reads Graph live",
    },
    Requirement {
        id: "methods.read",
        operation: "Read authentication methods",
        feature: None,
        permissions: &[
            "UserAuthenticationMethod.Read.All",
            "UserAuthenticationMethod.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::AuthMethods,
        why: "enrollment state and the helpdesk view",
    },
    Requirement {
        id: "password.write",
        operation: "Set passwords of cloud users (app-only reset)",
        feature: Some(|s| s.features.app_only_reset),
        permissions: &[
            "User-PasswordProfile.ReadWrite.All",
            "User.ReadWrite.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[USER_ADMIN, PRIV_AUTH_ADMIN, GLOBAL_ADMIN],
        probe: Probe::None,
        why: "app-only password writes need a permission AND at least the User Administrator role",
    },
    Requirement {
        id: "risk.dismiss",
        operation: "Read and dismiss user risk",
        feature: Some(|s| s.features.dismiss_risk),
        permissions: &["IdentityRiskyUser.ReadWrite.All"],
        roles: &[],
        probe: Probe::RiskyUser,
        why: "at-risk users are unblocked after a verified reset",
    },
    Requirement {
        id: "tap.create",
        operation: "Issue Temporary Access Passes",
        feature: Some(|s| s.features.temporary_access_pass),
        permissions: &[
            "UserAuthMethod-TAP.ReadWrite.All",
            "UserAuthenticationMethod.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::None,
        why: "feature `temporary_access_pass`",
    },
    Requirement {
        id: "methods.write",
        operation: "Delete lost authentication methods",
        feature: Some(|s| s.features.manage_methods),
        permissions: &["UserAuthenticationMethod.ReadWrite.All"],
        roles: &[],
        probe: Probe::None,
        why: "feature `manage_methods` (helpdesk)",
    },
    Requirement {
        id: "sessions.revoke",
        operation: "Sign users out everywhere after a reset (revokeSignInSessions)",
        feature: None,
        permissions: &["User.RevokeSessions.All"],
        roles: &[],
        // A write: not probed, so the check stays read-only.
        probe: Probe::None,
        why: "policies revoke sign-in sessions after a password reset unless `revoke_sessions = false`",
    },
    Requirement {
        id: "domains.read",
        operation: "Read domains (managed / federated)",
        feature: Some(|s| s.features.hybrid),
        permissions: &[
            "Domain.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::Domains,
        why: "federated users finish password changes at AD FS",
    },
    Requirement {
        id: "organization.read",
        operation: "Read the organization (sync state)",
        feature: Some(|s| s.features.hybrid),
        permissions: &[
            "Organization.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::Organization,
        why: "hybrid tenants: whether directory sync is on",
    },
    Requirement {
        id: "registration_report.read",
        operation: "Read the authentication methods registration report (userRegistrationDetails)",
        // Optional: without it (or without Entra ID P1/P2) the coverage report reads each
        // user's Entra methods one by one.
        feature: Some(|_| false),
        permissions: &["AuditLog.Read.All"],
        roles: &[],
        probe: Probe::None,
        why: "coverage reports count methods users registered in Entra in one paged read instead of two requests per user",
    },
    Requirement {
        id: "password_rules.read",
        operation: "Read the tenant's password rules (custom banned passwords, smart lockout) and name",
        feature: None,
        permissions: &[
            "GroupSettings.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        roles: &[],
        probe: Probe::PasswordRules,
        why: "new passwords are checked against the tenant's custom banned password list and name before they are written; the unlock page states the tenant's lockout duration (without it: Entra's defaults, and the tenant's list is only applied by Entra itself)",
    },
    Requirement {
        id: "passkeys.provision",
        operation: "Provision passkeys (FIDO2 security keys) for users (`latchkey passkey provision`)",
        feature: Some(|s| s.features.passkey_provisioning),
        permissions: &[
            "UserAuthMethod-Passkey.ReadWrite.All",
            "UserAuthenticationMethod.ReadWrite.All",
        ],
        roles: &[],
        // A write: not probed, so the check stays read-only.
        probe: Probe::None,
        why: "feature `passkey_provisioning`: creation options and the new passkey go through Graph",
    },
    Requirement {
        id: "passkeys.policy",
        operation: "Read the passkey (FIDO2) method policy",
        feature: Some(|s| s.features.passkey_provisioning),
        permissions: &[
            "Policy.Read.AuthenticationMethod",
            "Policy.Read.All",
            "Policy.ReadWrite.AuthenticationMethod",
        ],
        roles: &[],
        probe: Probe::Fido2Policy,
        why: "feature `passkey_provisioning`: Microsoft's provisioning API works only with the passkey method on and \"Allow self-service set up\" on; `latchkey passkey provision` checks it before the key is touched",
    },
];
