//! Latchkey's Active Directory side.
//!
//! - The security model as types, parsed from the binary forms AD returns and rendered as SDDL
//!   exactly as Samba does: [`Sid`], [`Guid`] (AD's mixed-endian byte order),
//!   [`SecurityDescriptor`] / [`Acl`] / [`Ace`] / [`AccessMask`].
//! - [`rights`]: effective rights of a principal (with its nested groups) on an object, or on a
//!   user object not yet created under a container, with the deciding ACE as evidence.
//!
//! - [`ldap`]: TLS-only LDAP access to a DC (bind, paged searches, SD-flags control,
//!   tokenGroups), every operation under a timeout.
//!
//! Every parser returns an error on bad input and never panics (property-tested).
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

mod ace;
mod acl;
mod error;
pub mod guid;
pub mod ldap;
pub mod rights;
mod sd;
mod sddl;
pub mod sid;

pub use ace::{AccessMask, Ace, AceFlags, AceType};
pub use acl::{ACL_REVISION_DS, Acl};
pub use error::{ParseError, TextError};
pub use guid::Guid;
pub use sd::{Control, SecurityDescriptor};
pub use sddl::{ace_to_sddl, sid_to_sddl};
pub use sid::Sid;
