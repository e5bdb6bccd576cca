//! Policy files → a validated [`PolicySet`].
//!
//! Two passes: TOML and types (serde; unknown keys, unknown methods or actions are errors located
//! by the parser), then the rules that need the whole policy or the whole set (duplicate
//! priorities, more methods required than allowed, privileged scope with one method, ...),
//! located with the spans kept during parsing.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use latchkey_types::{EmailAddress, MethodKind, ObjectId};
use serde::Deserialize;
use toml::Spanned;

use crate::model::*;

/// A problem in a policy file, located for the human who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not in a file (e.g. it cannot be read).
    pub line: usize,
    pub column: usize,
    /// The key concerned, e.g. `policy[2].methods_required`, when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    policy: Vec<Spanned<RawPolicy>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    priority: Spanned<u32>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    applies_to: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    excludes: Vec<Spanned<RawGroup>>,
    actions: Spanned<BTreeSet<Action>>,
    methods: Spanned<Vec<MethodKind>>,
    #[serde(default)]
    sources: Option<Spanned<Vec<MethodSource>>>,
    methods_required: Spanned<usize>,
    #[serde(default)]
    passkey_satisfies: Option<Spanned<PasskeySatisfies>>,
    #[serde(default)]
    enrollment: RawEnrollment,
    #[serde(default)]
    password: RawPassword,
    #[serde(default)]
    allow_privileged: bool,
    #[serde(default = "yes")]
    revoke_sessions: bool,
    #[serde(default = "yes")]
    dismiss_risk: bool,
    #[serde(default)]
    notifications: RawNotifications,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    security_contacts: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: Spanned<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEnrollment {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    reconfirm_after_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPassword {
    min_length: Option<Spanned<usize>>,
    #[serde(default)]
    banned_words: Vec<String>,
    #[serde(default = "yes")]
    forbid_user_names: bool,
}

impl Default for RawPassword {
    /// An absent `[policy.password]` table means the defaults, names forbidden included.
    fn default() -> Self {
        Self {
            min_length: None,
            banned_words: Vec::new(),
            forbid_user_names: true,
        }
    }
}

/// Longest re-confirmation interval Entra offers (730 days); more is almost certainly a typo.
const MAX_RECONFIRM_DAYS: u32 = 730;

/// Loads every `*.toml` file in `dir` (sorted by name) as one set. All errors are returned, not
/// just the first, so one run of `latchkey policy check` shows everything to fix.
pub fn load_dir(dir: &Path) -> Result<PolicySet, Vec<PolicyError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| vec![io_error(dir, e)])?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => sources.push((f, text)),
            Err(e) => errors.push(io_error(&f, e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    parse_sources(&sources)
}

fn io_error(path: &Path, e: std::io::Error) -> PolicyError {
    PolicyError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: None,
        message: format!("cannot read: {e}"),
    }
}

/// Parses and validates policy sources given as (file name, text) pairs.
pub fn parse_sources(sources: &[(PathBuf, String)]) -> Result<PolicySet, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let mut policies = Vec::new();
    // priority → (file, line, name) of the first policy that used it.
    let mut priorities: HashMap<u32, (PathBuf, usize, String)> = HashMap::new();
    let mut names: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for (file, text) in sources {
        let at = Locator { file, text };
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(at.error(e.span(), None, e.message().to_string()));
                continue;
            }
        };
        for (i, spanned) in raw.policy.into_iter().enumerate() {
            let span = spanned.span();
            let raw = spanned.into_inner();
            let field = |k: &str| Some(format!("policy[{i}].{k}"));
            let before = errors.len();
            let (line, _) = at.line_col(span.start);
            let name = raw.name.get_ref().trim().to_string();
            if name.is_empty() {
                errors.push(at.error(
                    Some(raw.name.span()),
                    field("name"),
                    "must not be empty".into(),
                ));
            } else if let Some((f, l)) = names.get(&name) {
                errors.push(at.error(
                    Some(raw.name.span()),
                    field("name"),
                    format!(
                        "'{name}' is already the name of the policy at {}:{l}",
                        f.display()
                    ),
                ));
            } else {
                names.insert(name.clone(), (file.clone(), line));
            }
            let priority = *raw.priority.get_ref();
            if let Some((f, l, other)) = priorities.get(&priority) {
                errors.push(at.error(
                    Some(raw.priority.span()),
                    field("priority"),
                    format!("{priority} is already the priority of '{other}' at {}:{l}; priorities must be unique", f.display()),
                ));
            } else {
                priorities.insert(priority, (file.clone(), line, name.clone()));
            }
            let applies_to = groups(
                &at,
                &raw.applies_to,
                &format!("policy[{i}].applies_to"),
                &mut errors,
            );
            let excludes = groups(
                &at,
                &raw.excludes,
                &format!("policy[{i}].excludes"),
                &mut errors,
            );
            if raw.actions.get_ref().is_empty() {
                errors.push(at.error(
                    Some(raw.actions.span()),
                    field("actions"),
                    "must name at least one action".into(),
                ));
            }
            let methods = raw.methods.get_ref().clone();
            let distinct: BTreeSet<_> = methods.iter().collect();
            if distinct.len() != methods.len() {
                errors.push(at.error(
                    Some(raw.methods.span()),
                    field("methods"),
                    "lists a method twice".into(),
                ));
            }
            let sources = match &raw.sources {
                None => vec![MethodSource::Latchkey],
                Some(list) => {
                    let v = list.get_ref().clone();
                    let distinct: BTreeSet<_> = v.iter().collect();
                    if v.is_empty() {
                        errors.push(at.error(
                            Some(list.span()),
                            field("sources"),
                            "must name at least one source (\"latchkey\", \"entra\", \"profile\")".into(),
                        ));
                    } else if distinct.len() != v.len() {
                        errors.push(at.error(
                            Some(list.span()),
                            field("sources"),
                            "lists a source twice".into(),
                        ));
                    } else if let Some(m) =
                        methods.iter().find(|m| !v.iter().any(|s| s.supplies(**m)))
                    {
                        errors.push(at.error(
                            Some(list.span()),
                            field("sources"),
                            format!("method `{}` needs the source \"latchkey\" (\"entra\" and \"profile\" supply only email and sms)", m.as_str()),
                        ));
                    }
                    v
                }
            };
            let required = *raw.methods_required.get_ref();
            let req_span = Some(raw.methods_required.span());
            // Security questions are never one of two required methods (docs/security.md), so they do
            // not count towards what a 2-method policy can offer.
            let strong = distinct
                .iter()
                .filter(|m| ***m != MethodKind::Questions)
                .count();
            if required == 0 {
                errors.push(at.error(
                    req_span.clone(),
                    field("methods_required"),
                    "must be at least 1".into(),
                ));
            } else if required > distinct.len() {
                errors.push(at.error(
                    req_span.clone(),
                    field("methods_required"),
                    format!(
                        "requires {required} methods but `methods` allows only {}",
                        distinct.len()
                    ),
                ));
            } else if required >= 2 && strong < required {
                errors.push(at.error(
                    req_span.clone(),
                    field("methods_required"),
                    format!("requires {required} methods but only {strong} allowed method(s) other than security questions, which never count as one of several"),
                ));
            }
            let passkey_satisfies = match &raw.passkey_satisfies {
                None => PasskeySatisfies::One,
                Some(v) => {
                    if !distinct.iter().any(|m| **m == MethodKind::Passkey) {
                        errors.push(at.error(
                            Some(v.span()),
                            field("passkey_satisfies"),
                            "needs \"passkey\" in `methods`".into(),
                        ));
                    }
                    *v.get_ref()
                }
            };
            if raw.allow_privileged && required < 2 {
                errors.push(
                    at.error(
                        req_span.clone(),
                        field("methods_required"),
                        "a policy that allows privileged accounts must require at least 2 methods"
                            .into(),
                    ),
                );
            }
            let min_length = match &raw.password.min_length {
                None => DEFAULT_MIN_PASSWORD_LENGTH,
                Some(m) => {
                    let v = *m.get_ref();
                    if !(MIN_PASSWORD_LENGTH_FLOOR..=MAX_PASSWORD_LENGTH).contains(&v) {
                        errors.push(at.error(
                            Some(m.span()),
                            field("password.min_length"),
                            format!("must be between {MIN_PASSWORD_LENGTH_FLOOR} and {MAX_PASSWORD_LENGTH}"),
                        ));
                    }
                    v
                }
            };
            if raw.enrollment.reconfirm_after_days > MAX_RECONFIRM_DAYS {
                errors.push(at.error(
                    Some(span.clone()),
                    field("enrollment.reconfirm_after_days"),
                    format!("must be at most {MAX_RECONFIRM_DAYS} (0 = never)"),
                ));
            }
            let security_contacts = contacts(
                &at,
                raw.notifications.security_contacts.as_ref(),
                &format!("policy[{i}].notifications.security_contacts"),
                &mut errors,
            );
            if errors.len() > before {
                continue;
            }
            policies.push(Policy {
                name,
                description: raw.description,
                priority,
                enabled: raw.enabled,
                applies_to,
                excludes,
                actions: raw.actions.into_inner(),
                methods,
                sources,
                methods_required: required,
                passkey_satisfies,
                enrollment: Enrollment {
                    required: raw.enrollment.required,
                    reconfirm_after_days: raw.enrollment.reconfirm_after_days,
                },
                password: PasswordRules {
                    min_length,
                    banned_words: raw
                        .password
                        .banned_words
                        .iter()
                        .map(|w| w.to_lowercase())
                        .collect(),
                    forbid_user_names: raw.password.forbid_user_names,
                },
                allow_privileged: raw.allow_privileged,
                revoke_sessions: raw.revoke_sessions,
                dismiss_risk: raw.dismiss_risk,
                notifications: Notifications { security_contacts },
                file: file.clone(),
                line,
            });
        }
    }
    if errors.is_empty() {
        Ok(PolicySet::new(policies))
    } else {
        Err(errors)
    }
}

fn groups(
    at: &Locator<'_>,
    raw: &[Spanned<RawGroup>],
    field: &str,
    errors: &mut Vec<PolicyError>,
) -> Vec<GroupRef> {
    let mut out = Vec::new();
    for (j, g) in raw.iter().enumerate() {
        let g = g.get_ref();
        match g.id.get_ref().parse::<ObjectId>() {
            Ok(id) => out.push(GroupRef {
                id,
                name: g.name.clone(),
            }),
            Err(_) => errors.push(at.error(
                Some(g.id.span()),
                Some(format!("{field}[{j}].id")),
                format!("'{}' is not a group object id (a GUID)", g.id.get_ref()),
            )),
        }
    }
    out
}

fn contacts(
    at: &Locator<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    field: &str,
    errors: &mut Vec<PolicyError>,
) -> Vec<EmailAddress> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.get_ref().len() > MAX_SECURITY_CONTACTS {
        errors.push(at.error(
            Some(raw.span()),
            Some(field.to_string()),
            format!("lists more than {MAX_SECURITY_CONTACTS} addresses"),
        ));
    }
    let mut out: Vec<EmailAddress> = Vec::new();
    for (j, a) in raw.get_ref().iter().enumerate() {
        match a.get_ref().trim().parse::<EmailAddress>() {
            Ok(e) if out.contains(&e) => errors.push(at.error(
                Some(a.span()),
                Some(format!("{field}[{j}]")),
                format!("'{e}' is listed twice"),
            )),
            Ok(e) => out.push(e),
            Err(_) => errors.push(at.error(
                Some(a.span()),
                Some(format!("{field}[{j}]")),
                format!("'{}' is not an email address", a.get_ref()),
            )),
        }
    }
    out
}

struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn error(
        &self,
        span: Option<Range<usize>>,
        field: Option<String>,
        message: String,
    ) -> PolicyError {
        let (line, column) = span.map_or((0, 0), |s| self.line_col(s.start));
        PolicyError {
            file: self.file.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAFF: &str = r#"
[[policy]]
name = "Staff"
description = "Everyone employed"
priority = 10
applies_to = [{ id = "11111111-0000-0000-0000-000000000001", name = "All employees" }]
excludes = [{ id = "11111111-0000-0000-0000-000000000002", name = "Contractors" }]
actions = ["reset", "unlock"]
methods = ["email", "totp", "sms"]
methods_required = 2
enrollment = { required = true, reconfirm_after_days = 180 }
password = { min_length = 16, banned_words = ["Contoso"] }
"#;

    fn parse(text: &str) -> Result<PolicySet, Vec<PolicyError>> {
        parse_sources(&[(PathBuf::from("policies/test.toml"), text.to_string())])
    }

    fn one_policy(text: &str) -> Policy {
        parse(text).unwrap().policies()[0].clone()
    }

    fn one_error(text: &str) -> PolicyError {
        let errs = parse(text).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        errs.into_iter().next().unwrap()
    }

    #[test]
    fn a_valid_policy_parses_with_defaults() {
        let set = parse(STAFF).unwrap();
        let p = set.get("Staff").unwrap();
        assert_eq!(p.priority, 10);
        assert!(p.enabled && p.allows(Action::Reset) && !p.allows(Action::TemporaryAccessPass));
        assert_eq!(
            p.methods,
            vec![MethodKind::Email, MethodKind::Totp, MethodKind::Sms]
        );
        assert_eq!(p.password.min_length, 16);
        assert_eq!(p.password.banned_words, vec!["contoso"]);
        assert!(p.password.forbid_user_names);
        assert!(!p.allow_privileged);
        assert_eq!(p.applies_to[0].label(), "All employees");
        assert_eq!(p.line, 2);
    }

    #[test]
    fn sources_default_to_latchkey_and_are_validated() {
        let p = parse(STAFF).unwrap().policies()[0].clone();
        assert_eq!(p.sources, vec![MethodSource::Latchkey]);
        let with = |line: &str| {
            STAFF.replace(
                "methods_required = 2",
                &format!("methods_required = 2\n{line}"),
            )
        };
        let p = parse(&with(r#"sources = ["entra", "latchkey"]"#))
            .unwrap()
            .policies()[0]
            .clone();
        assert_eq!(p.sources, vec![MethodSource::Entra, MethodSource::Latchkey]);
        for (line, says) in [
            (r#"sources = []"#, "at least one source"),
            (r#"sources = ["entra", "entra", "latchkey"]"#, "twice"),
            // totp is in the methods: an authenticator seed never comes from the directory.
            (
                r#"sources = ["entra"]"#,
                "method `totp` needs the source \"latchkey\"",
            ),
        ] {
            let e = one_error(&with(line));
            assert_eq!(e.field.as_deref(), Some("policy[0].sources"), "{line}");
            assert!(e.message.contains(says), "{line}: {}", e.message);
        }
        assert!(
            parse(&with(r#"sources = ["sms"]"#)).is_err(),
            "unknown source"
        );
    }

    #[test]
    fn sessions_are_revoked_after_a_change_unless_turned_off() {
        assert!(parse(STAFF).unwrap().policies()[0].revoke_sessions);
        let off = format!("{STAFF}revoke_sessions = false\n");
        assert!(!parse(&off).unwrap().policies()[0].revoke_sessions);
        let e = one_error(&format!("{STAFF}revoke_sessions = \"no\"\n"));
        assert!(e.message.contains("bool"), "{e}");
    }

    #[test]
    fn security_contacts_are_optional_and_validated() {
        assert!(
            parse(STAFF).unwrap().policies()[0]
                .notifications
                .security_contacts
                .is_empty()
        );
        let with = format!(
            "{STAFF}\n[policy.notifications]\nsecurity_contacts = [\"SecOps@contoso.com\", \"it@contoso.com\"]\n"
        );
        let p = parse(&with).unwrap().policies()[0].clone();
        let got: Vec<&str> = p
            .notifications
            .security_contacts
            .iter()
            .map(|e| e.as_str())
            .collect();
        assert_eq!(got, vec!["secops@contoso.com", "it@contoso.com"]);
        // Line 15, column 44: the second address of the list.
        let bad = format!(
            "{STAFF}\n[policy.notifications]\nsecurity_contacts = [\"secops@contoso.com\", \"not-an-address\"]\n"
        );
        let e = one_error(&bad);
        assert_eq!(
            e.field.as_deref(),
            Some("policy[0].notifications.security_contacts[1]")
        );
        assert_eq!((e.line, e.column), (15, 44), "{e}");
        assert!(e.message.contains("not-an-address"), "{e}");
        assert!(e.to_string().starts_with("policies/test.toml:15:44"), "{e}");
        let twice = with.replace("it@contoso.com", "secops@contoso.com");
        assert!(one_error(&twice).message.contains("twice"));
        let many: Vec<String> = (0..21).map(|n| format!("\"a{n}@contoso.com\"")).collect();
        let e = one_error(&format!(
            "{STAFF}\n[policy.notifications]\nsecurity_contacts = [{}]\n",
            many.join(", ")
        ));
        assert!(e.message.contains("more than 20"), "{e}");
        let e = one_error(&format!("{STAFF}\n[policy.notifications]\ncc = []\n"));
        assert!(e.message.contains("cc"), "{e}");
    }

    #[test]
    fn an_absent_password_table_means_the_safe_defaults() {
        let text = STAFF.replace(
            "password = { min_length = 16, banned_words = [\"Contoso\"] }\n",
            "",
        );
        let p = parse(&text).unwrap().policies()[0].clone();
        assert_eq!(p.password.min_length, 15);
        assert!(p.password.forbid_user_names);
    }

    #[test]
    fn an_unknown_key_is_located() {
        let e = one_error(&STAFF.replace("description", "descripton"));
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.message.contains("descripton"), "{e}");
        assert!(e.to_string().starts_with("policies/test.toml:4:1"), "{e}");
    }

    #[test]
    fn an_unknown_method_is_located() {
        let e = one_error(&STAFF.replace("\"sms\"]", "\"carrier-pigeon\"]"));
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("carrier-pigeon"), "{e}");
    }

    #[test]
    fn requiring_more_methods_than_allowed_is_an_error() {
        let e = one_error(&STAFF.replace("methods_required = 2", "methods_required = 4"));
        assert_eq!(e.field.as_deref(), Some("policy[0].methods_required"));
        assert_eq!(e.line, 10);
        assert!(e.message.contains("allows only 3"), "{e}");
    }

    #[test]
    fn a_passkey_may_satisfy_every_required_method_only_when_allowed() {
        let p = &one_policy(
            &STAFF
                .replace(
                    "methods_required = 2",
                    "methods_required = 2\npasskey_satisfies = \"all\"",
                )
                .replace(r#""sms"]"#, r#""sms", "passkey"]"#),
        );
        assert_eq!(p.passkey_satisfies, PasskeySatisfies::All);
        assert_eq!(one_policy(STAFF).passkey_satisfies, PasskeySatisfies::One);
        let e = one_error(&STAFF.replace(
            "methods_required = 2",
            "methods_required = 2\npasskey_satisfies = \"all\"",
        ));
        assert_eq!(e.field.as_deref(), Some("policy[0].passkey_satisfies"));
        assert!(e.message.contains("\"passkey\" in `methods`"), "{e}");
        let e = one_error(&STAFF.replace(
            "methods_required = 2",
            "methods_required = 2\npasskey_satisfies = \"most\"",
        ));
        assert!(e.message.contains("most"), "{e}");
    }

    #[test]
    fn security_questions_never_make_up_a_second_method() {
        let text = STAFF.replace(
            r#"methods = ["email", "totp", "sms"]"#,
            r#"methods = ["email", "questions"]"#,
        );
        let e = one_error(&text);
        assert!(e.message.contains("security questions"), "{e}");
    }

    #[test]
    fn a_privileged_scope_needs_two_methods() {
        let text = STAFF.replace(
            "methods_required = 2",
            "methods_required = 1\nallow_privileged = true",
        );
        let e = one_error(&text);
        assert!(e.message.contains("privileged"), "{e}");
    }

    #[test]
    fn duplicate_priorities_across_files_name_both_places() {
        let other = STAFF.replace("\"Staff\"", "\"Students\"");
        let errs = parse_sources(&[
            (PathBuf::from("a.toml"), STAFF.to_string()),
            (PathBuf::from("b.toml"), other),
        ])
        .unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, PathBuf::from("b.toml"));
        assert!(
            errs[0].message.contains("'Staff' at a.toml:2"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn bad_group_ids_and_lengths_are_all_reported() {
        let text = STAFF
            .replace("11111111-0000-0000-0000-000000000001", "Sales")
            .replace("min_length = 16", "min_length = 6");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.field.as_deref() == Some("policy[0].applies_to[0].id"))
        );
        assert!(
            errs.iter()
                .any(|e| e.field.as_deref() == Some("policy[0].password.min_length"))
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = one_error("[[policy]]\nname = = \"x\"\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn the_shipped_policy_files_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let set = load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!set.policies().is_empty());
    }
}
