//! The Windows sign-in screen's way to the portal, as organisations deploy it
//! (installer/windows/README.md): lock-screen images that show the portal's address and a QR code to it
//! ([`lockscreen`]), the "Interactive logon" message ([`logon`]), and the Assigned Access
//! configuration of a "Reset password" kiosk account that runs Microsoft Edge on the portal's
//! kiosk page ([`assigned_access`]). `latchkey login-screen assets` writes them; nothing here
//! reads configuration or talks to anything.

pub mod assigned_access;
pub mod lockscreen;
pub mod logon;
mod text;

/// What can go wrong while making the assets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the built-in font cannot be read: {0}")]
    Font(String),
    #[error("the address does not fit in a QR code: {0}")]
    Qr(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
    #[error("{width}x{height} is not a lock-screen size (640x480 to 7680x4320)")]
    Size { width: u32, height: u32 },
    #[error("{0}")]
    Invalid(String),
}
