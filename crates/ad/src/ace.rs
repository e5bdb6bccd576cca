//! Access control entries (MS-DTYP 2.4.4): access masks, ACE flags, ACE types, and the binary
//! form of plain and object ACEs.

use std::fmt;

use crate::error::{ParseError, Reader};
use crate::guid::Guid;
use crate::sid::Sid;

/// An access mask (MS-DTYP 2.4.3) with the directory-service meanings of its low bits (MS-ADTS 5.1.3.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessMask(pub u32);

impl AccessMask {
    pub const CREATE_CHILD: u32 = 0x0000_0001; // CC
    pub const DELETE_CHILD: u32 = 0x0000_0002; // DC
    pub const LIST_CHILDREN: u32 = 0x0000_0004; // LC
    pub const SELF_WRITE: u32 = 0x0000_0008; // SW
    pub const READ_PROPERTY: u32 = 0x0000_0010; // RP
    pub const WRITE_PROPERTY: u32 = 0x0000_0020; // WP
    pub const DELETE_TREE: u32 = 0x0000_0040; // DT
    pub const LIST_OBJECT: u32 = 0x0000_0080; // LO
    pub const CONTROL_ACCESS: u32 = 0x0000_0100; // CR
    pub const DELETE: u32 = 0x0001_0000; // SD
    pub const READ_CONTROL: u32 = 0x0002_0000; // RC
    pub const WRITE_DAC: u32 = 0x0004_0000; // WD
    pub const WRITE_OWNER: u32 = 0x0008_0000; // WO
    pub const GENERIC_ALL: u32 = 0x1000_0000; // GA
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000; // GX
    pub const GENERIC_WRITE: u32 = 0x4000_0000; // GW
    pub const GENERIC_READ: u32 = 0x8000_0000; // GR

    /// The mask with generic bits mapped to directory-service rights (MS-ADTS 5.1.3.3.x generic
    /// mapping for AD objects). The directory maps them when ACEs are written, but descriptors
    /// written by other tools can still carry them, and GA must count as every right.
    pub fn mapped(self) -> AccessMask {
        let m = self.0;
        let mut out = m & 0x0fff_ffff;
        if m & Self::GENERIC_READ != 0 {
            out |=
                Self::READ_CONTROL | Self::LIST_CHILDREN | Self::READ_PROPERTY | Self::LIST_OBJECT;
        }
        if m & Self::GENERIC_WRITE != 0 {
            out |= Self::READ_CONTROL | Self::WRITE_PROPERTY | Self::SELF_WRITE;
        }
        if m & Self::GENERIC_EXECUTE != 0 {
            out |= Self::READ_CONTROL | Self::LIST_CHILDREN;
        }
        if m & Self::GENERIC_ALL != 0 {
            out |= 0x000f_01ff;
        }
        AccessMask(out)
    }

    pub fn contains(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
}

impl fmt::Debug for AccessMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessMask({:#010x})", self.0)
    }
}

/// ACE flags (MS-DTYP 2.4.4.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AceFlags(pub u8);

impl AceFlags {
    pub const OBJECT_INHERIT: u8 = 0x01; // OI
    pub const CONTAINER_INHERIT: u8 = 0x02; // CI
    pub const NO_PROPAGATE_INHERIT: u8 = 0x04; // NP
    pub const INHERIT_ONLY: u8 = 0x08; // IO
    pub const INHERITED: u8 = 0x10; // ID
    pub const SUCCESSFUL_ACCESS: u8 = 0x40; // SA
    pub const FAILED_ACCESS: u8 = 0x80; // FA

    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

impl fmt::Debug for AceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AceFlags({:#04x})", self.0)
    }
}

/// ACE type (MS-DTYP 2.4.4.1 AceType). Unknown types are kept so a descriptor round-trips.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AceType {
    AccessAllowed,
    AccessDenied,
    SystemAudit,
    SystemAlarm,
    AccessAllowedObject,
    AccessDeniedObject,
    SystemAuditObject,
    SystemAlarmObject,
    Other(u8),
}

impl AceType {
    pub fn from_u8(v: u8) -> AceType {
        match v {
            0x00 => AceType::AccessAllowed,
            0x01 => AceType::AccessDenied,
            0x02 => AceType::SystemAudit,
            0x03 => AceType::SystemAlarm,
            0x05 => AceType::AccessAllowedObject,
            0x06 => AceType::AccessDeniedObject,
            0x07 => AceType::SystemAuditObject,
            0x08 => AceType::SystemAlarmObject,
            other => AceType::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            AceType::AccessAllowed => 0x00,
            AceType::AccessDenied => 0x01,
            AceType::SystemAudit => 0x02,
            AceType::SystemAlarm => 0x03,
            AceType::AccessAllowedObject => 0x05,
            AceType::AccessDeniedObject => 0x06,
            AceType::SystemAuditObject => 0x07,
            AceType::SystemAlarmObject => 0x08,
            AceType::Other(v) => v,
        }
    }

    /// Whether the binary form carries the object-type fields: the four object types and their
    /// callback variants (0x0b, 0x0c, 0x0f, 0x10).
    fn has_object_fields(v: u8) -> bool {
        matches!(v, 0x05..=0x08 | 0x0b | 0x0c | 0x0f | 0x10)
    }
}

/// Object-ACE flags (MS-DTYP 2.4.4.3 Flags).
const ACE_OBJECT_TYPE_PRESENT: u32 = 0x1;
const ACE_INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

/// One access control entry.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Ace {
    pub ace_type: AceType,
    pub flags: AceFlags,
    pub mask: AccessMask,
    /// Object ACEs: the right, property or property set (or child class) the ACE is about.
    pub object_type: Option<Guid>,
    /// Object ACEs: the class of objects that inherit the ACE.
    pub inherited_object_type: Option<Guid>,
    pub trustee: Sid,
    /// Bytes after the SID inside the ACE (callback application data, padding); kept for
    /// round-trips, never interpreted.
    pub trailing: Vec<u8>,
}

impl Ace {
    /// A plain allow/deny ACE, or an object ACE when either GUID is given.
    pub fn new(
        allow: bool,
        flags: u8,
        mask: u32,
        object_type: Option<Guid>,
        inherited_object_type: Option<Guid>,
        trustee: Sid,
    ) -> Ace {
        let object = object_type.is_some() || inherited_object_type.is_some();
        let ace_type = match (allow, object) {
            (true, false) => AceType::AccessAllowed,
            (false, false) => AceType::AccessDenied,
            (true, true) => AceType::AccessAllowedObject,
            (false, true) => AceType::AccessDeniedObject,
        };
        Ace {
            ace_type,
            flags: AceFlags(flags),
            mask: AccessMask(mask),
            object_type,
            inherited_object_type,
            trustee,
            trailing: Vec::new(),
        }
    }

    pub fn is_inherited(&self) -> bool {
        self.flags.has(AceFlags::INHERITED)
    }

    pub fn is_inherit_only(&self) -> bool {
        self.flags.has(AceFlags::INHERIT_ONLY)
    }

    pub fn is_allow(&self) -> bool {
        matches!(
            self.ace_type,
            AceType::AccessAllowed | AceType::AccessAllowedObject
        )
    }

    pub fn is_deny(&self) -> bool {
        matches!(
            self.ace_type,
            AceType::AccessDenied | AceType::AccessDeniedObject
        )
    }

    /// Decodes one ACE at the start of `bytes`; returns it and its AceSize.
    pub fn from_prefix(bytes: &[u8]) -> Result<(Ace, usize), ParseError> {
        let r = Reader::new(bytes, "ACE");
        let raw_type = r.u8(0)?;
        let flags = AceFlags(r.u8(1)?);
        let size = usize::from(r.u16(2)?);
        let body = Reader::new(r.slice(0, size)?, "ACE");
        let mask = AccessMask(body.u32(4)?);
        let mut at = 8;
        let (mut object_type, mut inherited_object_type) = (None, None);
        if AceType::has_object_fields(raw_type) {
            let oflags = body.u32(at)?;
            at += 4;
            if oflags & ACE_OBJECT_TYPE_PRESENT != 0 {
                object_type = Some(read_guid(&body, at)?);
                at += 16;
            }
            if oflags & ACE_INHERITED_OBJECT_TYPE_PRESENT != 0 {
                inherited_object_type = Some(read_guid(&body, at)?);
                at += 16;
            }
        }
        let rest = body.slice(at, size.saturating_sub(at))?;
        let (trustee, sid_len) = Sid::from_prefix(rest)?;
        let trailing = rest.get(sid_len..).unwrap_or_default().to_vec();
        Ok((
            Ace {
                ace_type: AceType::from_u8(raw_type),
                flags,
                mask,
                object_type,
                inherited_object_type,
                trustee,
                trailing,
            },
            size,
        ))
    }

    /// Binary form; fails only when the ACE would exceed the 16-bit AceSize.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ParseError> {
        let raw_type = self.ace_type.to_u8();
        let mut out = vec![raw_type, self.flags.0, 0, 0];
        out.extend_from_slice(&self.mask.0.to_le_bytes());
        if AceType::has_object_fields(raw_type) {
            let mut oflags = 0;
            if self.object_type.is_some() {
                oflags |= ACE_OBJECT_TYPE_PRESENT;
            }
            if self.inherited_object_type.is_some() {
                oflags |= ACE_INHERITED_OBJECT_TYPE_PRESENT;
            }
            out.extend_from_slice(&u32::to_le_bytes(oflags));
            for g in [self.object_type, self.inherited_object_type]
                .into_iter()
                .flatten()
            {
                out.extend_from_slice(&g.to_wire());
            }
        }
        self.trustee.write(&mut out);
        out.extend_from_slice(&self.trailing);
        let size = u16::try_from(out.len())
            .map_err(|_| ParseError::invalid("ACE", "longer than 65535 bytes"))?;
        out[2..4].copy_from_slice(&size.to_le_bytes());
        Ok(out)
    }
}

fn read_guid(r: &Reader<'_>, at: usize) -> Result<Guid, ParseError> {
    let mut b = [0u8; 16];
    b.copy_from_slice(r.slice(at, 16)?);
    Ok(Guid::from_wire(b))
}
