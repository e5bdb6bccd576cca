//! Access control lists (MS-DTYP 2.4.5).

use crate::ace::Ace;
use crate::error::{ParseError, Reader};

/// ACL_REVISION_DS: required as soon as an ACL holds object ACEs; what AD writes.
pub const ACL_REVISION_DS: u8 = 4;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Acl {
    pub revision: u8,
    pub aces: Vec<Ace>,
}

impl Acl {
    pub fn new(aces: Vec<Ace>) -> Acl {
        Acl {
            revision: ACL_REVISION_DS,
            aces,
        }
    }

    /// Decodes an ACL at the start of `bytes`; returns it and its AclSize.
    pub fn from_prefix(bytes: &[u8]) -> Result<(Acl, usize), ParseError> {
        let r = Reader::new(bytes, "ACL");
        let revision = r.u8(0)?;
        let size = usize::from(r.u16(2)?);
        let count = r.u16(4)?;
        if size < 8 {
            return Err(ParseError::invalid("ACL", format!("AclSize {size} < 8")));
        }
        let body = r.slice(0, size)?;
        let mut at = 8;
        // The count is untrusted: every ACE consumes at least its 8-byte minimum from the
        // bounded body, so the loop ends early on garbage instead of allocating for 65535 ACEs.
        let mut aces = Vec::new();
        for i in 0..count {
            let rest = body.get(at..).unwrap_or_default();
            let (ace, ace_size) = Ace::from_prefix(rest)
                .map_err(|e| ParseError::invalid("ACL", format!("ACE #{i} at offset {at}: {e}")))?;
            if ace_size < 8 {
                return Err(ParseError::invalid(
                    "ACL",
                    format!("ACE #{i}: AceSize {ace_size} < 8"),
                ));
            }
            aces.push(ace);
            at += ace_size;
        }
        Ok((Acl { revision, aces }, size))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, ParseError> {
        let mut out = vec![self.revision, 0, 0, 0, 0, 0, 0, 0];
        for ace in &self.aces {
            out.extend_from_slice(&ace.to_bytes()?);
        }
        let size = u16::try_from(out.len())
            .map_err(|_| ParseError::invalid("ACL", "longer than 65535 bytes"))?;
        let count = u16::try_from(self.aces.len())
            .map_err(|_| ParseError::invalid("ACL", "more than 65535 ACEs"))?;
        out[2..4].copy_from_slice(&size.to_le_bytes());
        out[4..6].copy_from_slice(&count.to_le_bytes());
        Ok(out)
    }

    /// Whether the ACL is in Windows' canonical order: explicit ACEs before inherited ones, and
    /// among the explicit ones every deny before every allow. Access checks walk the ACL in
    /// stored order, so a non-canonical ACL can let an allow win over a later deny; the checks
    /// say so rather than assume canonical order.
    pub fn is_canonical(&self) -> bool {
        let mut seen_inherited = false;
        let mut seen_explicit_allow = false;
        for ace in &self.aces {
            if ace.is_inherited() {
                seen_inherited = true;
            } else {
                if seen_inherited {
                    return false;
                }
                if ace.is_allow() {
                    seen_explicit_allow = true;
                } else if ace.is_deny() && seen_explicit_allow {
                    return false;
                }
            }
        }
        true
    }
}
