//! Directory roles: the real Microsoft role template ids, and the "Who can reset passwords"
//! matrix from `privileged-roles-permissions.md` (graph.md §3), which also governs the other
//! sensitive user actions and authentication-method writes on behalf of others.

/// Template id of a built-in directory role. Tokens carry these in `wids`.
pub type RoleId = &'static str;

pub const GLOBAL_ADMINISTRATOR: RoleId = "62e90394-69f5-4237-9190-012177145e10";
pub const USER_ADMINISTRATOR: RoleId = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const HELPDESK_ADMINISTRATOR: RoleId = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
pub const PASSWORD_ADMINISTRATOR: RoleId = "966707d0-3269-4727-9be2-8c3a10f19b9d";
pub const AUTHENTICATION_ADMINISTRATOR: RoleId = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: RoleId = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
pub const PRIVILEGED_ROLE_ADMINISTRATOR: RoleId = "e8611ab8-c189-46e8-94e1-60213ab1f814";
pub const GROUPS_ADMINISTRATOR: RoleId = "fdd7a751-b60b-444a-984c-02652fe8fa1c";
pub const SECURITY_ADMINISTRATOR: RoleId = "194ae4cb-b126-40b2-bd5b-6091b380977d";
pub const SECURITY_OPERATOR: RoleId = "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f";
pub const SECURITY_READER: RoleId = "5d6b6bb7-de71-4623-b4af-96380a352509";
pub const GLOBAL_READER: RoleId = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
pub const DIRECTORY_READERS: RoleId = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
pub const GUEST_INVITER: RoleId = "95e79109-95c0-4d8e-aee3-d01accf2d47b";
pub const MESSAGE_CENTER_READER: RoleId = "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b";
pub const REPORTS_READER: RoleId = "4a5d8f65-41da-4de4-8968-e035b65339cf";
pub const USAGE_SUMMARY_REPORTS_READER: RoleId = "75934031-6c7e-415a-99d7-48dbd49e875e";
pub const USER_EXPERIENCE_SUCCESS_MANAGER: RoleId = "27460883-1df1-4691-b032-3b79643e5e63";

/// Every member user's token carries this "default user role" template id in `wids`
/// (seen in real v1 Graph tokens next to the user's admin roles).
pub const DEFAULT_USER_ROLE: RoleId = "b79fbf4d-3ef9-4689-8143-76b194e85509";
/// App-only Graph tokens carry this id in `wids` (observed; it is not a directory role template:
/// no role definition has it).
pub const DEFAULT_APP_WID: RoleId = "0997a1d0-0d1d-4acb-b408-d5ca73121e90";

/// (display name, template id) for the roles a fixture may assign by name.
pub const CATALOGUE: &[(&str, RoleId)] = &[
    ("Global Administrator", GLOBAL_ADMINISTRATOR),
    ("User Administrator", USER_ADMINISTRATOR),
    ("Helpdesk Administrator", HELPDESK_ADMINISTRATOR),
    ("Password Administrator", PASSWORD_ADMINISTRATOR),
    ("Authentication Administrator", AUTHENTICATION_ADMINISTRATOR),
    (
        "Privileged Authentication Administrator",
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    ),
    (
        "Privileged Role Administrator",
        PRIVILEGED_ROLE_ADMINISTRATOR,
    ),
    ("Groups Administrator", GROUPS_ADMINISTRATOR),
    ("Security Administrator", SECURITY_ADMINISTRATOR),
    ("Security Operator", SECURITY_OPERATOR),
    ("Security Reader", SECURITY_READER),
    ("Global Reader", GLOBAL_READER),
    ("Directory Readers", DIRECTORY_READERS),
    ("Guest Inviter", GUEST_INVITER),
    ("Message Center Reader", MESSAGE_CENTER_READER),
    ("Reports Reader", REPORTS_READER),
    ("Usage Summary Reports Reader", USAGE_SUMMARY_REPORTS_READER),
    (
        "User Experience Success Manager",
        USER_EXPERIENCE_SUCCESS_MANAGER,
    ),
];

/// Template id for a role display name (case-insensitive).
pub fn by_name(name: &str) -> Option<RoleId> {
    CATALOGUE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, id)| *id)
}

pub fn display_name(id: &str) -> Option<&'static str> {
    CATALOGUE.iter().find(|(_, r)| *r == id).map(|(n, _)| *n)
}

/// The six actor columns of the matrix.
const PW: RoleId = PASSWORD_ADMINISTRATOR;
const HD: RoleId = HELPDESK_ADMINISTRATOR;
const AA: RoleId = AUTHENTICATION_ADMINISTRATOR;
const UA: RoleId = USER_ADMINISTRATOR;
const PAA: RoleId = PRIVILEGED_AUTHENTICATION_ADMINISTRATOR;
const GA: RoleId = GLOBAL_ADMINISTRATOR;

/// Which actor roles may reset the password of a holder of `target_role`.
fn allowed_actors(target_role: &str) -> &'static [RoleId] {
    match target_role {
        DIRECTORY_READERS | GUEST_INVITER | PASSWORD_ADMINISTRATOR => &[PW, HD, AA, UA, PAA, GA],
        HELPDESK_ADMINISTRATOR => &[HD, UA, PAA, GA],
        MESSAGE_CENTER_READER
        | REPORTS_READER
        | USAGE_SUMMARY_REPORTS_READER
        | USER_EXPERIENCE_SUCCESS_MANAGER => &[HD, AA, UA, PAA, GA],
        AUTHENTICATION_ADMINISTRATOR => &[AA, PAA, GA],
        GROUPS_ADMINISTRATOR | USER_ADMINISTRATOR => &[UA, PAA, GA],
        // Privileged Authentication Administrator, Privileged Role Administrator, Global
        // Administrator and "all other roles".
        _ => &[PAA, GA],
    }
}

/// "Who can reset passwords": may an actor holding `actor_roles` reset the password of (or do
/// another sensitive action on) a user holding `target_roles`? Every role of the target must be
/// covered; a target without roles needs any one of the six password-capable roles.
pub fn can_reset_password<A, T>(actor_roles: A, target_roles: T) -> bool
where
    A: IntoIterator,
    A::Item: AsRef<str>,
    T: IntoIterator,
    T::Item: AsRef<str>,
{
    let actor: Vec<String> = actor_roles
        .into_iter()
        .map(|r| r.as_ref().to_owned())
        .collect();
    let holds = |allowed: &[RoleId]| allowed.iter().any(|a| actor.iter().any(|r| r == a));
    let targets: Vec<String> = target_roles
        .into_iter()
        .map(|r| r.as_ref().to_owned())
        .filter(|r| r != DEFAULT_USER_ROLE && r != DEFAULT_APP_WID)
        .collect();
    if targets.is_empty() {
        return holds(&[PW, HD, AA, UA, PAA, GA]);
    }
    targets.iter().all(|t| holds(allowed_actors(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [&str; 0] = [];

    #[test]
    fn matrix_matches_the_documented_table() {
        // Non-admin targets: any of the six columns.
        for actor in [PW, HD, AA, UA, PAA, GA] {
            assert!(can_reset_password([actor], NONE), "{actor}");
        }
        assert!(!can_reset_password([GLOBAL_READER], NONE));
        assert!(!can_reset_password(NONE, NONE));
        // User Administrator cannot touch a Global Administrator or an Authentication Administrator.
        assert!(!can_reset_password([UA], [GA]));
        assert!(!can_reset_password([UA], [AA]));
        assert!(can_reset_password([UA], [HD]));
        assert!(can_reset_password([UA], [UA]));
        // Authentication Administrator: not Helpdesk admins, yes other Auth admins.
        assert!(!can_reset_password([AA], [HD]));
        assert!(can_reset_password([AA], [AA]));
        assert!(can_reset_password([AA], [REPORTS_READER]));
        // Privileged roles and "all other roles" need PAA or GA.
        for target in [
            PAA,
            PRIVILEGED_ROLE_ADMINISTRATOR,
            GA,
            SECURITY_ADMINISTRATOR,
        ] {
            assert!(can_reset_password([PAA], [target]));
            assert!(can_reset_password([GA], [target]));
            assert!(!can_reset_password([UA, AA, HD], [target]));
        }
        // Every target role must be covered.
        assert!(!can_reset_password([HD], [HD, AA]));
        assert!(can_reset_password([HD, AA], [HD]));
    }

    #[test]
    fn names_resolve_case_insensitively() {
        assert_eq!(by_name("user administrator"), Some(USER_ADMINISTRATOR));
        assert_eq!(display_name(GLOBAL_READER), Some("Global Reader"));
        assert_eq!(by_name("Chief Coffee Officer"), None);
    }
}
