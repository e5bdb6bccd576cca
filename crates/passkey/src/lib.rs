//! Provisioning a FIDO2 security key (a device-bound passkey) into Microsoft Entra ID for a
//! user: what `latchkey passkey provision <user>` does.
//!
//! - [`provision`]: the whole flow (policy pre-check, creation options, the key, self-check,
//!   POST); [`registration`] has its steps one by one.
//! - [`Authenticator`]: the seam to a device. [`HidAuthenticator`] talks CTAP2 over USB HID
//!   (ctap-hid-fido2, ring crypto; Linux needs hidraw access, Windows an elevated prompt);
//!   feature `soft` adds [`soft::SoftDevice`], a software key for tests.
//! - [`Pin`]: a PIN that is never printed and is wiped on drop.
//! - [`aaguid`]: model names for common keys and passkey providers.
//!
//! Time comes from the caller's [`latchkey_graph::Clock`]; nothing here reads the system clock.

mod authenticator;
mod check;
mod error;
#[cfg(feature = "hid")]
mod hid;
mod pin;
mod provision;

pub mod aaguid;
pub mod registration;
#[cfg(feature = "soft")]
pub mod soft;

pub use authenticator::{
    Authenticator, AuthenticatorInfo, CredProtect, MadeCredential, MakeCredential,
};
pub use error::PasskeyError;
#[cfg(feature = "hid")]
pub use hid::{HidAuthenticator, HidOptions};
pub use pin::Pin;
pub use provision::{Device, provision, resolve_user};
pub use registration::{
    MAX_DISPLAY_NAME_CHARS, PolicyCheck, Provisioned, Registration, check_policy, display_name,
};
