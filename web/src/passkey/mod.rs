//! Passkeys in the portal's pages: the prompt in a reset or unlock flow ([`verify`]);
//! registering, listing and removing them at `/enroll` is `crate::enroll::passkey`. What is checked is
//! `latchkey_selfservice::passkey`; the browser side is one small script
//! (`templates/_webauthn.html`) that passes the options to `navigator.credentials` and posts the
//! answer back as an ordinary form, so every error page and redirect stays server-rendered.

pub mod verify;

use serde::Serialize;

/// The options a page hands the script, with what it should do (`get` or `create`).
#[derive(Serialize)]
struct ScriptOptions<T: Serialize> {
    mode: &'static str,
    #[serde(flatten)]
    options: T,
}

/// The options as the JSON the page's `data-options` attribute carries (Tera escapes it for the
/// attribute; the browser hands the script the JSON back).
pub(crate) fn options_json<T: Serialize>(mode: &'static str, options: T) -> String {
    serde_json::to_string(&ScriptOptions { mode, options }).unwrap_or_else(|_| "{}".into())
}
