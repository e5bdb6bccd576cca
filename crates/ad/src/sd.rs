//! Self-relative security descriptors (MS-DTYP 2.4.6), as stored in `nTSecurityDescriptor`.

use crate::acl::Acl;
use crate::error::{ParseError, Reader};
use crate::sid::Sid;

/// SECURITY_DESCRIPTOR control flags (MS-DTYP 2.4.6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Control(pub u16);

impl Control {
    pub const OWNER_DEFAULTED: u16 = 0x0001;
    pub const GROUP_DEFAULTED: u16 = 0x0002;
    pub const DACL_PRESENT: u16 = 0x0004;
    pub const DACL_DEFAULTED: u16 = 0x0008;
    pub const SACL_PRESENT: u16 = 0x0010;
    pub const SACL_DEFAULTED: u16 = 0x0020;
    pub const DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
    pub const SACL_AUTO_INHERIT_REQ: u16 = 0x0200;
    pub const DACL_AUTO_INHERITED: u16 = 0x0400;
    pub const SACL_AUTO_INHERITED: u16 = 0x0800;
    /// SE_DACL_PROTECTED: the object does not inherit ACEs from its parent ("blocked
    /// inheritance" in the UI; what SDProp sets on protected accounts).
    pub const DACL_PROTECTED: u16 = 0x1000;
    pub const SACL_PROTECTED: u16 = 0x2000;
    pub const SELF_RELATIVE: u16 = 0x8000;

    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SecurityDescriptor {
    pub revision: u8,
    pub control: Control,
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    pub sacl: Option<Acl>,
    pub dacl: Option<Acl>,
}

impl SecurityDescriptor {
    /// Decodes a self-relative descriptor. Offsets of 0 mean "absent" (the SD-flags control
    /// leaves out what was not asked for).
    pub fn from_bytes(bytes: &[u8]) -> Result<SecurityDescriptor, ParseError> {
        let r = Reader::new(bytes, "security descriptor");
        let revision = r.u8(0)?;
        if revision != 1 {
            return Err(ParseError::invalid(
                "security descriptor",
                format!("revision {revision} (expected 1)"),
            ));
        }
        let control = Control(r.u16(2)?);
        let at = |field: usize| -> Result<Option<&[u8]>, ParseError> {
            let off = usize::try_from(r.u32(field)?).unwrap_or(usize::MAX);
            if off == 0 {
                return Ok(None);
            }
            if off < 20 {
                return Err(ParseError::invalid(
                    "security descriptor",
                    format!("offset {off} points into the header"),
                ));
            }
            bytes.get(off..).map(Some).ok_or(ParseError::Truncated {
                what: "security descriptor",
                offset: off,
                needed: 1,
                available: 0,
            })
        };
        let owner = at(4)?
            .map(|b| Sid::from_prefix(b).map(|(s, _)| s))
            .transpose()?;
        let group = at(8)?
            .map(|b| Sid::from_prefix(b).map(|(s, _)| s))
            .transpose()?;
        let sacl = at(12)?
            .map(|b| Acl::from_prefix(b).map(|(a, _)| a))
            .transpose()?;
        let dacl = at(16)?
            .map(|b| Acl::from_prefix(b).map(|(a, _)| a))
            .transpose()?;
        Ok(SecurityDescriptor {
            revision,
            control,
            owner,
            group,
            sacl,
            dacl,
        })
    }

    /// Self-relative binary form (header, owner, group, SACL, DACL).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ParseError> {
        let mut out = vec![self.revision, 0];
        out.extend_from_slice(&(self.control.0 | Control::SELF_RELATIVE).to_le_bytes());
        out.extend_from_slice(&[0u8; 16]);
        let mut offsets = [0u32; 4];
        let parts: [Option<Vec<u8>>; 4] = [
            self.owner.as_ref().map(Sid::to_bytes),
            self.group.as_ref().map(Sid::to_bytes),
            self.sacl.as_ref().map(Acl::to_bytes).transpose()?,
            self.dacl.as_ref().map(Acl::to_bytes).transpose()?,
        ];
        for (slot, part) in offsets.iter_mut().zip(parts) {
            if let Some(p) = part {
                *slot = u32::try_from(out.len())
                    .map_err(|_| ParseError::invalid("security descriptor", "too large"))?;
                out.extend_from_slice(&p);
            }
        }
        for (i, off) in offsets.iter().enumerate() {
            out[4 + 4 * i..8 + 4 * i].copy_from_slice(&off.to_le_bytes());
        }
        Ok(out)
    }

    pub fn dacl_protected(&self) -> bool {
        self.control.has(Control::DACL_PROTECTED)
    }
}
