//! SDDL (MS-DTYP 2.5.1): rendering a descriptor the way Samba's `as_sddl()` does, and parsing
//! SDDL (hand-written test descriptors, the schema's `defaultSecurityDescriptor`).
//!
//! Rendering follows Samba 4.17's `sddl_encode` rule for rule (the gateway's reports quote it,
//! and the shared samples were rendered by Samba): flag names are matched exactly first, then bit
//! by bit in table order; a mask that does not decompose completely is printed as `0x%08x`; SIDs
//! get a two-letter alias only from the table below (domain-relative aliases such as `DA` are not
//! used because no domain SID is given), otherwise the full `S-...` string.

use crate::ace::{AccessMask, Ace, AceFlags, AceType};
use crate::acl::Acl;
use crate::error::TextError;
use crate::guid::Guid;
use crate::sd::{Control, SecurityDescriptor};
use crate::sid::Sid;

/// Aliases Samba 4.17 renders (checked against its `as_sddl()`); parsing accepts them too.
const SID_ALIASES: &[(&str, &str)] = &[
    ("WD", "S-1-1-0"),
    ("CO", "S-1-3-0"),
    ("CG", "S-1-3-1"),
    ("OW", "S-1-3-4"),
    ("NU", "S-1-5-2"),
    ("IU", "S-1-5-4"),
    ("SU", "S-1-5-6"),
    ("AN", "S-1-5-7"),
    ("ED", "S-1-5-9"),
    ("PS", "S-1-5-10"),
    ("AU", "S-1-5-11"),
    ("RC", "S-1-5-12"),
    ("SY", "S-1-5-18"),
    ("LS", "S-1-5-19"),
    ("NS", "S-1-5-20"),
    ("WR", "S-1-5-33"),
    ("BA", "S-1-5-32-544"),
    ("BU", "S-1-5-32-545"),
    ("BG", "S-1-5-32-546"),
    ("PU", "S-1-5-32-547"),
    ("AO", "S-1-5-32-548"),
    ("SO", "S-1-5-32-549"),
    ("PO", "S-1-5-32-550"),
    ("BO", "S-1-5-32-551"),
    ("RE", "S-1-5-32-552"),
    ("RU", "S-1-5-32-554"),
    ("RD", "S-1-5-32-555"),
    ("NO", "S-1-5-32-556"),
    ("MU", "S-1-5-32-558"),
    ("LU", "S-1-5-32-559"),
    ("IS", "S-1-5-32-568"),
    ("CY", "S-1-5-32-569"),
    ("ER", "S-1-5-32-573"),
    ("CD", "S-1-5-32-574"),
    ("RA", "S-1-5-32-575"),
    ("ES", "S-1-5-32-576"),
    ("MS", "S-1-5-32-577"),
    ("HA", "S-1-5-32-578"),
    ("AA", "S-1-5-32-579"),
    ("RM", "S-1-5-32-580"),
    ("UD", "S-1-5-84-0-0-0-0-0"),
    ("AC", "S-1-15-2-1"),
    ("LW", "S-1-16-4096"),
    ("ME", "S-1-16-8192"),
    ("MP", "S-1-16-8448"),
    ("HI", "S-1-16-12288"),
    ("SI", "S-1-16-16384"),
    ("AS", "S-1-18-1"),
    ("SS", "S-1-18-2"),
];

/// Parse-only aliases (MS-DTYP 2.5.1.1) that Samba does not render: RAS servers, and the
/// domain-relative ones, which need the domain SID (e.g. in `defaultSecurityDescriptor`).
const PARSE_ONLY_ALIASES: &[(&str, &str)] = &[("RS", "S-1-5-32-553")];
const DOMAIN_RID_ALIASES: &[(&str, u32)] = &[
    ("RO", 498),
    ("LA", 500),
    ("LG", 501),
    ("DA", 512),
    ("DU", 513),
    ("DG", 514),
    ("DC", 515),
    ("DD", 516),
    ("CA", 517),
    ("SA", 518),
    ("EA", 519),
    ("PA", 520),
    ("CN", 522),
    ("AP", 525),
    ("KA", 526),
    ("EK", 527),
];

const ACE_TYPES: &[(&str, u32)] = &[
    ("AU", 0x02),
    ("AL", 0x03),
    ("OA", 0x05),
    ("OD", 0x06),
    ("OU", 0x07),
    ("OL", 0x08),
    ("A", 0x00),
    ("D", 0x01),
];

const ACE_FLAGS: &[(&str, u32)] = &[
    ("OI", 0x01),
    ("CI", 0x02),
    ("NP", 0x04),
    ("IO", 0x08),
    ("ID", 0x10),
    ("SA", 0x40),
    ("FA", 0x80),
];

const ACCESS_MASK: &[(&str, u32)] = &[
    ("RP", AccessMask::READ_PROPERTY),
    ("WP", AccessMask::WRITE_PROPERTY),
    ("CR", AccessMask::CONTROL_ACCESS),
    ("CC", AccessMask::CREATE_CHILD),
    ("DC", AccessMask::DELETE_CHILD),
    ("LC", AccessMask::LIST_CHILDREN),
    ("LO", AccessMask::LIST_OBJECT),
    ("RC", AccessMask::READ_CONTROL),
    ("WO", AccessMask::WRITE_OWNER),
    ("WD", AccessMask::WRITE_DAC),
    ("SD", AccessMask::DELETE),
    ("DT", AccessMask::DELETE_TREE),
    ("SW", AccessMask::SELF_WRITE),
    ("GA", AccessMask::GENERIC_ALL),
    ("GR", AccessMask::GENERIC_READ),
    ("GW", AccessMask::GENERIC_WRITE),
    ("GX", AccessMask::GENERIC_EXECUTE),
];

/// Parse-only mask aliases (file rights).
const PARSE_ONLY_MASK: &[(&str, u32)] = &[
    ("FA", 0x001f_01ff),
    ("FR", 0x0012_0089),
    ("FW", 0x0012_0116),
    ("FX", 0x0012_00a0),
];

const ACL_FLAGS: &[(&str, u32)] = &[
    ("P", Control::DACL_PROTECTED as u32),
    ("AR", Control::DACL_AUTO_INHERIT_REQ as u32),
    ("AI", Control::DACL_AUTO_INHERITED as u32),
];

/// Samba's `sddl_flags_to_string`: exact match first, then bit by bit; `None` when `check_all`
/// and bits remain unnamed.
fn flags_to_string(map: &[(&str, u32)], flags: u32, check_all: bool) -> Option<String> {
    if let Some((name, _)) = map.iter().find(|(_, f)| *f == flags) {
        return Some((*name).to_string());
    }
    let mut rest = flags;
    let mut s = String::new();
    for (name, f) in map {
        if rest & f != 0 {
            s.push_str(name);
            rest &= !f;
        }
    }
    (!check_all || rest == 0).then_some(s)
}

/// SDDL alias or `S-...` string of a SID, as Samba renders it.
pub fn sid_to_sddl(sid: &Sid) -> String {
    let s = sid.to_string();
    SID_ALIASES
        .iter()
        .find(|(_, full)| *full == s)
        .map_or(s, |(alias, _)| (*alias).to_string())
}

fn acl_to_sddl(acl: &Acl, flags: u32) -> String {
    let mut out = flags_to_string(ACL_FLAGS, flags, false).unwrap_or_default();
    for ace in &acl.aces {
        out.push('(');
        out.push_str(&ace_to_sddl(ace));
        out.push(')');
    }
    out
}

/// One ACE in SDDL, without the parentheses.
pub fn ace_to_sddl(ace: &Ace) -> String {
    let raw_type = u32::from(ace.ace_type.to_u8());
    // Samba gives up on an unnamed type; a report must still show something.
    let ty =
        flags_to_string(ACE_TYPES, raw_type, true).unwrap_or_else(|| format!("0x{raw_type:02x}"));
    let flags = u32::from(ace.flags.0);
    let fl = flags_to_string(ACE_FLAGS, flags, true).unwrap_or_else(|| format!("0x{flags:02x}"));
    let mask = flags_to_string(ACCESS_MASK, ace.mask.0, true)
        .unwrap_or_else(|| format!("0x{:08x}", ace.mask.0));
    let guid = |g: Option<Guid>| g.map(|g| g.to_string()).unwrap_or_default();
    format!(
        "{ty};{fl};{mask};{};{};{}",
        guid(ace.object_type),
        guid(ace.inherited_object_type),
        sid_to_sddl(&ace.trustee)
    )
}

impl SecurityDescriptor {
    /// SDDL as Samba's `security.descriptor.as_sddl()` renders it (no domain SID).
    pub fn to_sddl(&self) -> String {
        let mut out = String::new();
        if let Some(o) = &self.owner {
            out.push_str("O:");
            out.push_str(&sid_to_sddl(o));
        }
        if let Some(g) = &self.group {
            out.push_str("G:");
            out.push_str(&sid_to_sddl(g));
        }
        let ty = u32::from(self.control.0);
        if let (true, Some(dacl)) = (self.control.has(Control::DACL_PRESENT), &self.dacl) {
            out.push_str("D:");
            out.push_str(&acl_to_sddl(dacl, ty));
        }
        if let (true, Some(sacl)) = (self.control.has(Control::SACL_PRESENT), &self.sacl) {
            // The SACL's P/AR/AI bits sit one place left of the DACL's.
            out.push_str("S:");
            out.push_str(&acl_to_sddl(sacl, ty >> 1));
        }
        out
    }

    /// Parses SDDL. `domain` resolves domain-relative aliases (`DA`, `DU`, ...); without it they
    /// are errors.
    pub fn from_sddl(sddl: &str, domain: Option<&Sid>) -> Result<SecurityDescriptor, TextError> {
        Parser {
            input: sddl,
            domain,
        }
        .descriptor()
    }
}

impl Ace {
    /// Parses one ACE, with or without the parentheses.
    pub fn from_sddl(text: &str, domain: Option<&Sid>) -> Result<Ace, TextError> {
        let t = text
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(text);
        Parser {
            input: text,
            domain,
        }
        .ace(t)
    }
}

struct Parser<'a> {
    input: &'a str,
    domain: Option<&'a Sid>,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> TextError {
        TextError::new("SDDL", self.input, reason)
    }

    fn descriptor(&self) -> Result<SecurityDescriptor, TextError> {
        let mut sd = SecurityDescriptor {
            revision: 1,
            control: Control(Control::SELF_RELATIVE),
            owner: None,
            group: None,
            sacl: None,
            dacl: None,
        };
        let mut rest = self.input.trim();
        while !rest.is_empty() {
            let (tag, after) = rest
                .split_at_checked(2)
                .ok_or_else(|| self.err("expected O:, G:, D: or S:"))?;
            // A component runs until the next "X:" tag outside parentheses.
            let end = component_end(after);
            let (body, next) = after.split_at(end);
            rest = next;
            match tag {
                "O:" => sd.owner = Some(self.sid(body)?),
                "G:" => sd.group = Some(self.sid(body)?),
                "D:" | "S:" => {
                    let (flags, acl) = self.acl(body)?;
                    if tag == "D:" {
                        sd.control.0 |= Control::DACL_PRESENT | flags;
                        sd.dacl = Some(acl);
                    } else {
                        sd.control.0 |= Control::SACL_PRESENT | (flags << 1);
                        sd.sacl = Some(acl);
                    }
                }
                _ => return Err(self.err(format!("unknown component {tag:?}"))),
            }
        }
        Ok(sd)
    }

    fn acl(&self, body: &str) -> Result<(u16, Acl), TextError> {
        let flags_end = body.find('(').unwrap_or(body.len());
        let (flag_text, mut aces_text) = body.split_at(flags_end);
        let mut flags = 0u16;
        let mut ft = flag_text;
        while !ft.is_empty() {
            let (name, bit) = ACL_FLAGS
                .iter()
                .find(|(n, _)| ft.starts_with(n))
                .ok_or_else(|| self.err(format!("unknown ACL flag in {flag_text:?}")))?;
            flags |= u16::try_from(*bit).unwrap_or(0);
            ft = &ft[name.len()..];
        }
        let mut aces = Vec::new();
        while !aces_text.is_empty() {
            let inner = aces_text
                .strip_prefix('(')
                .ok_or_else(|| self.err("expected ( before an ACE"))?;
            let close = inner.find(')').ok_or_else(|| self.err("unclosed ACE"))?;
            aces.push(self.ace(&inner[..close])?);
            aces_text = &inner[close + 1..];
        }
        Ok((flags, Acl::new(aces)))
    }

    fn ace(&self, text: &str) -> Result<Ace, TextError> {
        let fields: Vec<&str> = text.split(';').collect();
        let [ty, fl, mask, obj, iobj, sid] = fields[..] else {
            return Err(self.err(format!("ACE {text:?} needs 6 fields")));
        };
        let raw_type = ACE_TYPES
            .iter()
            .find(|(n, _)| *n == ty)
            .map(|(_, v)| *v)
            .ok_or_else(|| self.err(format!("unknown ACE type {ty:?}")))?;
        let flags = self.names(fl, ACE_FLAGS, &[])?;
        let mask = if let Some(hex) = mask.strip_prefix("0x").or_else(|| mask.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).map_err(|_| self.err(format!("bad mask {mask:?}")))?
        } else {
            self.names(mask, ACCESS_MASK, PARSE_ONLY_MASK)?
        };
        let guid = |g: &str| -> Result<Option<Guid>, TextError> {
            if g.is_empty() {
                Ok(None)
            } else {
                g.parse()
                    .map(Some)
                    .map_err(|e: TextError| self.err(e.reason))
            }
        };
        let ace_type = AceType::from_u8(u8::try_from(raw_type).unwrap_or(0));
        let (object_type, inherited_object_type) = (guid(obj)?, guid(iobj)?);
        let object_ace = matches!(
            ace_type,
            AceType::AccessAllowedObject
                | AceType::AccessDeniedObject
                | AceType::SystemAuditObject
                | AceType::SystemAlarmObject
        );
        if !object_ace && (object_type.is_some() || inherited_object_type.is_some()) {
            return Err(self.err(format!("ACE type {ty} cannot carry object GUIDs")));
        }
        Ok(Ace {
            ace_type,
            flags: AceFlags(u8::try_from(flags).unwrap_or(0)),
            mask: AccessMask(mask),
            object_type,
            inherited_object_type,
            trustee: self.sid(sid)?,
            trailing: Vec::new(),
        })
    }

    /// A run of two-letter names (`CIIO`, `RPWP`).
    fn names(
        &self,
        text: &str,
        map: &[(&str, u32)],
        extra: &[(&str, u32)],
    ) -> Result<u32, TextError> {
        let mut v = 0;
        let mut t = text;
        while !t.is_empty() {
            let (name, bit) = map
                .iter()
                .chain(extra)
                .find(|(n, _)| t.starts_with(n))
                .ok_or_else(|| self.err(format!("unknown name in {text:?}")))?;
            v |= bit;
            t = &t[name.len()..];
        }
        Ok(v)
    }

    fn sid(&self, text: &str) -> Result<Sid, TextError> {
        if text.len() > 2 {
            return text.parse().map_err(|e: TextError| self.err(e.reason));
        }
        if let Some((_, full)) = SID_ALIASES
            .iter()
            .chain(PARSE_ONLY_ALIASES)
            .find(|(a, _)| *a == text)
        {
            return full.parse().map_err(|e: TextError| self.err(e.reason));
        }
        if let Some((_, rid)) = DOMAIN_RID_ALIASES.iter().find(|(a, _)| *a == text) {
            let domain = self
                .domain
                .ok_or_else(|| self.err(format!("{text} needs the domain SID")))?;
            return domain
                .with_rid(*rid)
                .ok_or_else(|| self.err("domain SID too long"));
        }
        Err(self.err(format!("unknown SID alias {text:?}")))
    }
}

/// Index of the next top-level `X:` component tag in `s` (or its length).
fn component_end(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'O' | b'G' | b'D' | b'S' if depth == 0 && bytes.get(i + 1) == Some(&b':') => return i,
            _ => {}
        }
    }
    s.len()
}
