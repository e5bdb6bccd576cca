//! The validated policy model.

use std::collections::BTreeSet;
use std::path::PathBuf;

use latchkey_types::{EmailAddress, MethodKind, ObjectId};

/// What a policy lets a user do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Set a new password after verification.
    Reset,
    /// Unlock a locked account without changing the password.
    Unlock,
    /// Receive a Temporary Access Pass after verification.
    TemporaryAccessPass,
    /// Enroll and manage verification methods.
    Enroll,
}

impl Action {
    /// The name in policy files, the admin console and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reset => "reset",
            Action::Unlock => "unlock",
            Action::TemporaryAccessPass => "temporary_access_pass",
            Action::Enroll => "enroll",
        }
    }
}

/// Where the destinations of codes (email addresses, phone numbers) come from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MethodSource {
    /// What the user enrolled in Latchkey (`/enroll`): confirmed by a code when set up.
    Latchkey,
    /// The phone numbers (mobile, alternate mobile) and email address the user registered as
    /// authentication methods in Entra (`phoneMethods`, `emailMethods`), read live when needed.
    /// Only the user or an authentication administrator can change them.
    Entra,
    /// The directory profile's `mobilePhone` and `otherMails`. Anyone who may edit user profiles
    /// in the tenant (User Administrators, HR provisioning, often the user in some apps) can point
    /// them somewhere else, so a policy must name this source explicitly.
    Profile,
}

impl MethodSource {
    pub const ALL: [MethodSource; 3] = [Self::Latchkey, Self::Entra, Self::Profile];

    /// The name in policy files and the admin console.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latchkey => "latchkey",
            Self::Entra => "entra",
            Self::Profile => "profile",
        }
    }

    /// Whether this source can supply a destination for `kind` (only codes to an address or a
    /// number come from the directory; an authenticator seed or answers never do).
    pub fn supplies(self, kind: MethodKind) -> bool {
        match self {
            Self::Latchkey => true,
            Self::Entra | Self::Profile => matches!(kind, MethodKind::Email | MethodKind::Sms),
        }
    }
}

/// What a passkey assertion (WebAuthn with user verification, bound to the portal's origin)
/// proves under a policy.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PasskeySatisfies {
    /// One of the required methods, like any other (the default).
    #[default]
    One,
    /// Every required method: a passkey alone completes verification. It cannot be phished
    /// (the browser binds it to the portal's origin) and user verification makes it two factors
    /// in itself (the key, and the PIN or biometric that unlocks it).
    All,
}

impl PasskeySatisfies {
    /// The name in policy files and the admin console.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::One => "one",
            Self::All => "all",
        }
    }
}

/// A group by object id, with the display name kept for humans (ids are what counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: ObjectId,
    pub name: Option<String>,
}

impl GroupRef {
    /// The name when known, else the id: for messages.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.id.to_string())
    }
}

/// Enrollment rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// Users in scope must enroll (the portal asks them at sign-in).
    pub required: bool,
    /// Ask users to re-confirm their methods after this many days (0 = never).
    pub reconfirm_after_days: u32,
}

/// Rules a new password must meet, on top of Entra's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRules {
    /// Default 15 (docs/security.md); never below 8.
    pub min_length: usize,
    /// Words that may not appear in the password (case-insensitive).
    pub banned_words: Vec<String>,
    /// Reject passwords containing the user's own names or account name.
    pub forbid_user_names: bool,
}

/// Extra recipients of a short notice after each completed reset, unlock or Temporary Access Pass
/// under the policy (who, what, when, outcome, correlation id; never a password or code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notifications {
    /// E.g. a security operations mailbox; at most [`MAX_SECURITY_CONTACTS`], no duplicates.
    pub security_contacts: Vec<EmailAddress>,
}

/// Most security contacts a policy may name: a notice list, not a mailing list.
pub const MAX_SECURITY_CONTACTS: usize = 20;

/// Smallest minimum length an admin may configure (NIST SP 800-63B floor).
pub const MIN_PASSWORD_LENGTH_FLOOR: usize = 8;
/// Default minimum length (docs/security.md).
pub const DEFAULT_MIN_PASSWORD_LENGTH: usize = 15;
/// Entra accepts at most 256 characters.
pub const MAX_PASSWORD_LENGTH: usize = 256;

/// One validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub description: String,
    /// Unique across the set; the lowest number is evaluated first.
    pub priority: u32,
    pub enabled: bool,
    /// Members of any of these groups (nested membership counts) are in scope.
    pub applies_to: Vec<GroupRef>,
    /// Members of any of these groups are out of scope, even if also in `applies_to`.
    pub excludes: Vec<GroupRef>,
    pub actions: BTreeSet<Action>,
    /// Methods a user may verify with, in the order the portal offers them.
    pub methods: Vec<MethodKind>,
    /// Where codes may be sent: Latchkey enrollments (default), Entra-registered methods, the
    /// directory profile. Never empty, no duplicates.
    pub sources: Vec<MethodSource>,
    /// How many different methods must succeed.
    pub methods_required: usize,
    /// Whether a passkey counts as one method or as all of them (only with `passkey` in
    /// `methods`).
    pub passkey_satisfies: PasskeySatisfies,
    pub enrollment: Enrollment,
    pub password: PasswordRules,
    /// Privileged accounts (directory roles, on-premises adminCount=1) match only when true.
    pub allow_privileged: bool,
    /// After a reset or at an unlock request through the portal, dismiss the user's Identity
    /// Protection risk flag (the user just proved who they are). On unless turned off.
    pub dismiss_risk: bool,
    /// After a password change through the portal, sign the user out of every app and browser
    /// (Graph `revokeSignInSessions`). On unless the policy turns it off (docs/security.md, 8).
    pub revoke_sessions: bool,
    /// Who else hears about completed actions. The user is always told on every known channel
    /// (docs/security.md, 8); this only adds recipients, it never replaces that.
    pub notifications: Notifications,
    /// Where it was defined, for messages.
    pub file: PathBuf,
    pub line: usize,
}

impl Policy {
    pub fn allows(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }
}

/// A complete, valid set of policies, sorted by priority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

impl PolicySet {
    /// Builds a set from validated policies (see [`crate::load`]); sorts by priority.
    pub(crate) fn new(mut policies: Vec<Policy>) -> Self {
        policies.sort_by_key(|p| p.priority);
        Self { policies }
    }

    /// In evaluation order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}
