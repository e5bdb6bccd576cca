//! Where a code goes: the destinations a policy's sources supply (docs/methods.md).
//!
//! - `latchkey`: what the user enrolled and confirmed at `/enroll` (the store);
//! - `entra`: the email address and mobile numbers registered as authentication methods in Entra
//!   (`emailMethods`, `phoneMethods` mobile then alternate mobile; an office phone takes voice
//!   calls only, Microsoft says, so it never gets a text) — read live when needed, never stored;
//! - `profile`: the directory profile's `otherMails` and `mobilePhone` (explicit opt-in: whoever
//!   may edit profiles can redirect them).
//!
//! The first source in the policy's order that has a destination for the method wins. Pages show
//! where a code went only masked ([`mask`]); a flow that sends nowhere (a decoy, or a method the
//! account has no destination for) shows a mask derived from a keyed HMAC of the flow's key (the
//! object id, or an unknown account's [`crate::identify::decoy_key`]; [`decoy_mask`]), so the page
//! reads the same whoever typed what.

use latchkey_graph::{GraphError, PhoneType, User};
use latchkey_policy::MethodSource;
use latchkey_store::{EnrollmentState, StoreError};
use latchkey_types::{EmailAddress, MethodKind, ObjectId};
use latchkey_verify::Destination;

use crate::SelfService;
use crate::codes;

/// A source could not be read: the flow must not pretend the account has nothing.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("directory: {0}")]
    Directory(#[from] GraphError),
}

/// The methods `user` can verify with under `sources` (each listed method once), for the plan's
/// "enough methods" check. Reads the store for Latchkey enrollments and, where the sources say
/// so, the user's Entra methods; the profile's values come with `user`.
pub async fn available(
    s: &SelfService,
    user: &User,
    methods: &[MethodKind],
    sources: &[MethodSource],
) -> Result<Vec<MethodKind>, SourceError> {
    let mut out: Vec<MethodKind> = Vec::new();
    if sources.contains(&MethodSource::Latchkey) {
        for e in s.store.enrollments(&user.id).await? {
            if e.state != EnrollmentState::Active {
                continue;
            }
            if let Ok(kind) = e.method.parse::<MethodKind>()
                && methods.contains(&kind)
                && !out.contains(&kind)
            {
                out.push(kind);
            }
        }
    }
    // Passkeys are registered in the portal only (a passkey in Entra belongs to Microsoft's
    // relying party and cannot answer the portal's challenge).
    if sources.contains(&MethodSource::Latchkey)
        && methods.contains(&MethodKind::Passkey)
        && s.passkeys.is_some()
        && !s.store.passkeys(&user.id).await?.is_empty()
    {
        out.push(MethodKind::Passkey);
    }
    let registered = if sources.contains(&MethodSource::Entra) {
        registered_in_mirror(s, &user.id).await
    } else {
        None
    };
    for kind in [MethodKind::Email, MethodKind::Sms] {
        if !methods.contains(&kind) || out.contains(&kind) {
            continue;
        }
        if registered.as_ref().is_some_and(|r| r.contains(&kind)) {
            out.push(kind);
            continue;
        }
        for source in sources.iter().filter(|s| **s != MethodSource::Latchkey) {
            match directory_destination(s, &user.id, Some(user), kind, *source).await {
                Ok(Some(_)) => {
                    out.push(kind);
                    break;
                }
                Ok(None) => {}
                // Counted as there. Failing here would answer differently for an account in
                // scope (its methods are read) than for one that is not (nothing to read): an
                // account test whenever this read fails. A method that is in fact missing is
                // found so when a code is sent, and the code then goes nowhere, as a decoy's.
                Err(e) => {
                    tracing::warn!(error = %e, "identification: Entra methods unreadable; counted");
                    out.push(kind);
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The code methods the directory mirror's copy of Microsoft's registration report lists for
/// the user, when the mirror is current and has a recent report (`None`: it cannot say). Only
/// ever a reason to count a method without reading Graph: a method the report does not list is
/// still read live (the report lags, and must never hide a method); one it lists but the user
/// removed since is found missing when a code is sent (live), and goes nowhere like any method
/// the account lacks.
async fn registered_in_mirror(s: &SelfService, user: &ObjectId) -> Option<Vec<MethodKind>> {
    let mirror = s.mirror.as_ref()?;
    if !mirror.freshness().await.ok()?.usable() {
        return None;
    }
    let methods = mirror.registered_methods(user).await.ok()??;
    Some(entra_kinds_registered(&methods))
}

/// Where a code for `kind` goes for `user` under `sources`: the first source with a destination.
pub async fn destination(
    s: &SelfService,
    user: &ObjectId,
    kind: MethodKind,
    sources: &[MethodSource],
) -> Result<Option<Destination>, SourceError> {
    let mut profile: Option<User> = None;
    for source in sources {
        let found = match source {
            MethodSource::Latchkey => s
                .store
                .enrollment(user, kind.as_str(), EnrollmentState::Active)
                .await?
                .and_then(|e| codes::enrolled_destination(kind, &e.data)),
            MethodSource::Entra | MethodSource::Profile => {
                if !source.supplies(kind) {
                    continue;
                }
                // The profile source needs the user's current values: read them now, once.
                if *source == MethodSource::Profile && profile.is_none() {
                    profile = Some(s.directory.user(user).await?);
                }
                directory_destination(s, user, profile.as_ref(), kind, *source).await?
            }
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The destination one directory source has for `kind`.
async fn directory_destination(
    s: &SelfService,
    id: &ObjectId,
    profile: Option<&User>,
    kind: MethodKind,
    source: MethodSource,
) -> Result<Option<Destination>, GraphError> {
    Ok(match (source, kind) {
        (MethodSource::Entra, MethodKind::Email) => s
            .directory
            .email_methods(id)
            .await?
            .into_iter()
            .find_map(|m| m.email_address.parse::<EmailAddress>().ok())
            .map(Destination::Email),
        (MethodSource::Entra, MethodKind::Sms) => {
            let phones = s.directory.phone_methods(id).await?;
            [PhoneType::Mobile, PhoneType::AlternateMobile]
                .iter()
                .find_map(|t| {
                    phones
                        .iter()
                        .filter(|p| p.phone_type == Some(*t))
                        .find_map(|p| Destination::phone(&p.phone_number).ok())
                })
        }
        (MethodSource::Profile, MethodKind::Email) => profile
            .and_then(|u| u.other_mails.first().cloned())
            .map(Destination::Email),
        (MethodSource::Profile, MethodKind::Sms) => profile
            .and_then(|u| u.mobile_phone.as_deref())
            .and_then(|p| Destination::phone(p).ok()),
        _ => None,
    })
}

/// The code methods `user` registered in Entra, read live (two requests): for reports that
/// count what a policy with the `entra` source accepts.
pub async fn entra_kinds(
    directory: &dyn crate::directory::Directory,
    user: &ObjectId,
) -> Result<Vec<MethodKind>, GraphError> {
    let mut out = Vec::new();
    if directory
        .email_methods(user)
        .await?
        .iter()
        .any(|m| m.email_address.parse::<EmailAddress>().is_ok())
    {
        out.push(MethodKind::Email);
    }
    if directory.phone_methods(user).await?.iter().any(|p| {
        matches!(
            p.phone_type,
            Some(PhoneType::Mobile | PhoneType::AlternateMobile)
        ) && Destination::phone(&p.phone_number).is_ok()
    }) {
        out.push(MethodKind::Sms);
    }
    Ok(out)
}

/// The same from the registration report's `methodsRegistered` (one paged read for a tenant).
pub fn entra_kinds_registered(methods_registered: &[String]) -> Vec<MethodKind> {
    let mut out = Vec::new();
    if methods_registered.iter().any(|m| m == "email") {
        out.push(MethodKind::Email);
    }
    if methods_registered
        .iter()
        .any(|m| m == "mobilePhone" || m == "alternateMobilePhone")
    {
        out.push(MethodKind::Sms);
    }
    out
}

/// The code methods the directory profile has for `user` (`otherMails`, `mobilePhone`).
pub fn profile_kinds(user: &User) -> Vec<MethodKind> {
    let mut out = Vec::new();
    if !user.other_mails.is_empty() {
        out.push(MethodKind::Email);
    }
    if user
        .mobile_phone
        .as_deref()
        .is_some_and(|p| Destination::phone(p).is_ok())
    {
        out.push(MethodKind::Sms);
    }
    out
}

/// How a page shows where a code went: the first letter of the mailbox and of the domain
/// (`a•••@o•••`, a digit or symbol as `•`); the last two digits of a number (`••• ••• •• 42`).
/// No top-level domain: a stand-in ([`decoy_mask`]) could not match its spread. Stand-ins draw
/// their letters (and `•`) from the spread real ones have; someone who knows a person's initial
/// and provider still learns something from a mask that matches — the price of showing where a
/// code went at all (docs/methods.md).
pub fn mask(destination: &Destination) -> String {
    match destination {
        Destination::Email(e) => {
            let (local, domain) = e.as_str().rsplit_once('@').unwrap_or((e.as_str(), ""));
            email_mask(first(local), first(domain))
        }
        Destination::Phone(p) => {
            let digits: String = p.as_str().chars().filter(char::is_ascii_digit).collect();
            phone_mask(&digits[digits.len().saturating_sub(2)..])
        }
    }
}

/// The mask shown when nothing was sent: as plausible as a real one and always the same for the
/// same account and method, whichever way the account was spelled. `key` is the flow's
/// throttle key: the object id of a real account, [`crate::identify::decoy_key`] of an unknown
/// one. Keyed with the portal's secret, so nobody can compute it.
pub fn decoy_mask(s: &SelfService, key: &str, kind: MethodKind) -> String {
    let tag = s.decoy_key.bytes(&format!("mask\0{key}\0{kind}"));
    let pick = |table: &[(char, u16)], b: [u8; 2]| {
        let total: u16 = table.iter().map(|(_, w)| w).sum();
        let mut at = u16::from_le_bytes(b) % total;
        for (c, w) in table {
            if at < *w {
                return c.to_string();
            }
            at -= w;
        }
        "•".to_string()
    };
    match kind {
        MethodKind::Sms => phone_mask(&format!("{}{}", tag[0] % 10, tag[1] % 10)),
        _ => email_mask(
            pick(MAILBOX_INITIALS, [tag[2], tag[3]]),
            pick(DOMAIN_INITIALS, [tag[4], tag[5]]),
        ),
    }
}

/// How often a mailbox starts with each letter (people's initials; `•`: a digit or symbol), in
/// tenths of a percent, roughly: a stand-in drawn from this looks like the real ones.
const MAILBOX_INITIALS: &[(char, u16)] = &[
    ('a', 80),
    ('b', 50),
    ('c', 60),
    ('d', 60),
    ('e', 40),
    ('f', 30),
    ('g', 30),
    ('h', 30),
    ('i', 20),
    ('j', 70),
    ('k', 50),
    ('l', 50),
    ('m', 80),
    ('n', 30),
    ('o', 20),
    ('p', 40),
    ('q', 3),
    ('r', 50),
    ('s', 80),
    ('t', 50),
    ('u', 5),
    ('v', 20),
    ('w', 20),
    ('x', 2),
    ('y', 10),
    ('z', 10),
    ('•', 20),
];

/// How often a recovery mailbox's domain starts with each letter: the large providers
/// (`g`mail, `o`utlook, `h`otmail, `y`ahoo, `i`cloud, `g`mx, `w`eb.de) dominate.
const DOMAIN_INITIALS: &[(char, u16)] = &[
    ('g', 300),
    ('o', 150),
    ('h', 100),
    ('y', 80),
    ('i', 50),
    ('w', 30),
    ('a', 40),
    ('b', 20),
    ('c', 40),
    ('d', 20),
    ('e', 20),
    ('f', 20),
    ('k', 10),
    ('l', 20),
    ('m', 40),
    ('n', 20),
    ('p', 30),
    ('q', 2),
    ('r', 10),
    ('s', 30),
    ('t', 30),
    ('u', 10),
    ('v', 10),
    ('x', 5),
    ('z', 5),
    ('j', 5),
    ('•', 15),
];

/// The first character when it is a letter (lower case), else a dot like the rest.
fn first(s: &str) -> String {
    match s.chars().next() {
        Some(c) if c.is_alphabetic() => c.to_lowercase().collect(),
        _ => "•".to_string(),
    }
}

fn email_mask(local: String, host: String) -> String {
    format!("{local}•••@{host}•••")
}

fn phone_mask(last_two: &str) -> String {
    format!("••• ••• •• {last_two}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_little() {
        let e = Destination::Email("Adele.V@Outlook.example".parse().unwrap());
        assert_eq!(mask(&e), "a•••@o•••");
        let digit = Destination::Email("1adele@2mail.example".parse().unwrap());
        assert_eq!(mask(&digit), "••••@••••");
        let p = Destination::phone("+41 79 123 45 67").unwrap();
        assert_eq!(mask(&p), "••• ••• •• 67");
    }
}
