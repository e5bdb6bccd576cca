//! Effective rights: does a principal hold a directory right on an object, or on a user object
//! not created yet under a container? Follows the Windows access check for directory objects
//! (MS-DTYP 2.5.3.2 with an object-type list, MS-ADTS 5.1.3) and ACE inheritance
//! (MS-DTYP 2.5.3.4, ComputeInheritedACLfromParent), reduced to what the writeback checks ask:
//! one control access right, or writing one attribute (possibly through its property set).
//!
//! Rules implemented, each with a unit test below:
//! - ACEs are evaluated in stored order; the first ACE that names the requested access bit for
//!   the requested object type decides (so a deny placed first wins, an allow placed first wins
//!   over a later deny; canonical order puts explicit denies first and inherited ACEs last).
//! - inherit-only ACEs do not apply to the object itself;
//! - an object ACE applies when its object type is the right / attribute asked for, or the
//!   attribute's property set; without an object type it applies to every right and property,
//!   and so does a plain ACE (GA or WP "on everything");
//! - generic bits are mapped (GA = every right);
//! - the trustee must be one of the principal's SIDs (user, tokenGroups - nested groups - and
//!   the well-known SIDs every network logon carries);
//! - a new child inherits the parent's ACEs that have CI; NP stops propagation below the child;
//!   an inherited-object-type other than the child's class makes the inherited copy inherit-only;
//! - a protected DACL (SE_DACL_PROTECTED) receives nothing from its parent.

use std::collections::HashSet;
use std::fmt;

use crate::ace::{AccessMask, Ace, AceFlags};
use crate::acl::Acl;
use crate::guid::Guid;
use crate::sd::SecurityDescriptor;
use crate::sddl::ace_to_sddl;
use crate::sid::{Sid, well_known};

/// Who is asking: the account SID plus every group SID in its token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub sid: Sid,
    sids: HashSet<Sid>,
}

impl Principal {
    /// A principal from its objectSid and its `tokenGroups` (which AD computes transitively,
    /// so rights granted to nested groups count). The SIDs any network logon adds to the
    /// token (Everyone, Authenticated Users, Network, This Organization) are added here,
    /// because `tokenGroups` does not list them but the access check sees them.
    pub fn from_token_groups(sid: Sid, groups: impl IntoIterator<Item = Sid>) -> Principal {
        let mut sids: HashSet<Sid> = groups.into_iter().collect();
        sids.insert(sid.clone());
        sids.insert(well_known::everyone());
        sids.insert(well_known::authenticated_users());
        for extra in ["S-1-5-2", "S-1-5-15"] {
            if let Ok(s) = extra.parse() {
                sids.insert(s);
            }
        }
        Principal { sid, sids }
    }

    /// Exactly these SIDs, nothing implied (for tests of the matching rule itself).
    pub fn exact(sid: Sid, groups: impl IntoIterator<Item = Sid>) -> Principal {
        let mut sids: HashSet<Sid> = groups.into_iter().collect();
        sids.insert(sid.clone());
        Principal { sid, sids }
    }

    pub fn has_sid(&self, sid: &Sid) -> bool {
        self.sids.contains(sid)
    }

    pub fn sids(&self) -> impl Iterator<Item = &Sid> {
        self.sids.iter()
    }
}

/// A right to check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Right {
    /// A control access right (CR) identified by its rightsGuid.
    ControlAccess(Guid),
    /// Writing an attribute (WP), identified by its schemaIDGUID; `property_set` is its
    /// attributeSecurityGUID, if any (a grant on the set grants the attribute).
    WriteProperty {
        attribute: Guid,
        property_set: Option<Guid>,
    },
}

impl Right {
    fn bit(self) -> u32 {
        match self {
            Right::ControlAccess(_) => AccessMask::CONTROL_ACCESS,
            Right::WriteProperty { .. } => AccessMask::WRITE_PROPERTY,
        }
    }

    /// Whether an ACE's object type (None = all) covers this right.
    fn covered_by(self, object_type: Option<Guid>) -> bool {
        match (self, object_type) {
            (_, None) => true,
            (Right::ControlAccess(g), Some(o)) => g == o,
            (
                Right::WriteProperty {
                    attribute,
                    property_set,
                },
                Some(o),
            ) => o == attribute || property_set == Some(o),
        }
    }
}

/// Where an evaluated ACE came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AceSource {
    /// In the object's own DACL.
    Object,
    /// Would be inherited from the container the object is created in.
    Container,
    /// From the class's defaultSecurityDescriptor (explicit ACEs of a new object).
    ClassDefault,
}

impl fmt::Display for AceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AceSource::Object => "the object's DACL",
            AceSource::Container => "inherited from the container",
            AceSource::ClassDefault => "the class default security descriptor",
        })
    }
}

/// An ACE as it applies to the object being checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EffectiveAce {
    pub ace: Ace,
    pub source: AceSource,
    /// Position in the DACL it was taken from (0-based).
    pub index: usize,
}

/// The deciding ACE.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Evidence {
    pub ace: EffectiveAce,
    /// The principal SID (account or group) that matched the trustee.
    pub matched: Sid,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.ace;
        let how = if e.ace.is_inherited() {
            "inherited"
        } else {
            "explicit"
        };
        write!(
            f,
            "({}) — ACE #{} of {}, {how}",
            ace_to_sddl(&e.ace),
            e.index,
            e.source
        )
    }
}

/// The answer to "is this right granted?".
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    Granted(Evidence),
    Denied(Evidence),
    /// No ACE names the right for this principal: access is denied by default.
    NotGranted,
    /// The descriptor has no DACL (or a NULL DACL): Windows grants everything.
    NoDacl,
}

impl Decision {
    pub fn is_granted(&self) -> bool {
        matches!(self, Decision::Granted(_) | Decision::NoDacl)
    }

    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Decision::Granted(e) | Decision::Denied(e) => Some(e),
            _ => None,
        }
    }
}

/// Evaluates `right` for `principal` against ACEs in the order given.
pub fn evaluate(principal: &Principal, aces: &[EffectiveAce], right: Right) -> Decision {
    let bit = right.bit();
    for e in aces {
        let ace = &e.ace;
        if ace.is_inherit_only() || !(ace.is_allow() || ace.is_deny()) {
            continue;
        }
        if !ace.mask.mapped().contains(bit) || !right.covered_by(ace.object_type) {
            continue;
        }
        if !principal.has_sid(&ace.trustee) {
            continue;
        }
        let evidence = Evidence {
            ace: e.clone(),
            matched: ace.trustee.clone(),
        };
        return if ace.is_allow() {
            Decision::Granted(evidence)
        } else {
            Decision::Denied(evidence)
        };
    }
    Decision::NotGranted
}

/// The effective ACEs of an existing object's DACL.
pub fn object_aces(dacl: &Acl) -> Vec<EffectiveAce> {
    dacl.aces
        .iter()
        .enumerate()
        .map(|(index, ace)| EffectiveAce {
            ace: ace.clone(),
            source: AceSource::Object,
            index,
        })
        .collect()
}

/// Decides `right` on an existing object from its security descriptor.
pub fn check_object(principal: &Principal, sd: &SecurityDescriptor, right: Right) -> Decision {
    match &sd.dacl {
        Some(dacl) => evaluate(principal, &object_aces(dacl), right),
        None => Decision::NoDacl,
    }
}

/// The copy of one parent ACE that a new child of class `child_class` receives, if any
/// (MS-DTYP 2.5.3.4.2 for a container child; every directory object is a container here).
pub fn inherit_ace(parent: &Ace, child_class: Guid) -> Option<Ace> {
    let f = parent.flags;
    if !f.has(AceFlags::CONTAINER_INHERIT) {
        if f.has(AceFlags::OBJECT_INHERIT) && !f.has(AceFlags::NO_PROPAGATE_INHERIT) {
            // OI only: passed on to non-container grandchildren, never effective here.
            let mut ace = parent.clone();
            ace.flags = AceFlags(
                (f.0 & (AceFlags::OBJECT_INHERIT
                    | AceFlags::SUCCESSFUL_ACCESS
                    | AceFlags::FAILED_ACCESS))
                    | AceFlags::INHERIT_ONLY
                    | AceFlags::INHERITED,
            );
            return Some(ace);
        }
        return None;
    }
    let class_matches = parent
        .inherited_object_type
        .is_none_or(|t| t == child_class);
    let mut flags = f.0 & !AceFlags::INHERIT_ONLY;
    flags |= AceFlags::INHERITED;
    if f.has(AceFlags::NO_PROPAGATE_INHERIT) {
        if !class_matches {
            // Would be inherit-only and may not propagate further: useless, dropped.
            return None;
        }
        flags &= !(AceFlags::CONTAINER_INHERIT
            | AceFlags::OBJECT_INHERIT
            | AceFlags::NO_PROPAGATE_INHERIT);
    } else if !class_matches {
        flags |= AceFlags::INHERIT_ONLY;
    }
    let mut ace = parent.clone();
    ace.flags = AceFlags(flags);
    Some(ace)
}

/// The DACL a child object gets: its own explicit ACEs first, then, unless `protected`, what it
/// inherits from `parent_dacl`. This is what AD materializes on every object, so it also
/// explains an existing object's inherited ACEs.
pub fn child_dacl(parent_dacl: &Acl, explicit: &[Ace], protected: bool, child_class: Guid) -> Acl {
    let mut aces: Vec<Ace> = explicit
        .iter()
        .filter(|a| !a.is_inherited())
        .cloned()
        .collect();
    if !protected {
        aces.extend(
            parent_dacl
                .aces
                .iter()
                .filter_map(|a| inherit_ace(a, child_class)),
        );
    }
    Acl::new(aces)
}

/// The effective ACEs of a user (or other `child_class`) object created now in the container
/// whose DACL is `container_dacl`: the class default ACEs (explicit) followed by the inherited
/// ones, each with where it came from.
pub fn future_child_aces(
    container_dacl: &Acl,
    class_default: Option<&Acl>,
    child_class: Guid,
) -> Vec<EffectiveAce> {
    let mut out = Vec::new();
    if let Some(default) = class_default {
        out.extend(
            default
                .aces
                .iter()
                .enumerate()
                .map(|(index, ace)| EffectiveAce {
                    ace: ace.clone(),
                    source: AceSource::ClassDefault,
                    index,
                }),
        );
    }
    for (index, parent) in container_dacl.aces.iter().enumerate() {
        if let Some(ace) = inherit_ace(parent, child_class) {
            out.push(EffectiveAce {
                ace,
                source: AceSource::Container,
                index,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
