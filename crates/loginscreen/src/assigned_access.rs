//! The Assigned Access configuration of a "Reset password" kiosk: one profile that runs Microsoft
//! Edge full screen on the portal's kiosk page, for one account. Microsoft's schema namespaces
//! (installer/windows/assigned-access/, validated there): the 2017 base, `rs5` (201810) for the
//! auto-logon account's display name, `v4` (2021, Windows 11) for a desktop app's path and
//! arguments in a single-app kiosk.

use crate::Error;

/// The profile's id: fixed, so that applying a newer file replaces the same profile.
pub const PROFILE_ID: &str = "{6F1D2C3B-4A5E-4F70-9B81-2C3D4E5F6A7B}";

/// Where Edge is on every supported Windows (an environment variable Assigned Access expands).
pub const EDGE_PATH: &str = r"%ProgramFiles(x86)%\Microsoft\Edge\Application\msedge.exe";

/// Who the kiosk is for, checked when made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KioskAccount(Who);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    /// A dedicated kiosk device: Windows creates a local standard account, shown with this name,
    /// and signs it in by itself after every restart.
    AutoLogon(String),
    /// A shared PC: an existing account that people choose on the sign-in screen.
    Account(String),
}

/// What Windows refuses in a user name (and `@`, which only an Entra UPN has).
const NOT_IN_NAMES: &[char] = &[
    '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@',
];

impl KioskAccount {
    /// An existing account, as Assigned Access names it: `name` or `.\name` (local),
    /// `DOMAIN\name` (Active Directory), `AzureAD\user@contoso.com` (Entra ID).
    pub fn account(spelling: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "kiosk account {spelling:?}: {why} (name, .\\name, DOMAIN\\name or AzureAD\\user@domain)"
            ))
        };
        if spelling.chars().any(char::is_control) || spelling.trim() != spelling {
            return Err(bad("control characters or surrounding spaces"));
        }
        let (prefix, user) = match spelling.split_once('\\') {
            Some((p, u)) => (Some(p), u),
            None => (None, spelling),
        };
        if prefix.is_some_and(|p| p.eq_ignore_ascii_case("AzureAD")) {
            let upn_ok = user.len() <= 113
                && user.split('@').count() == 2
                && user.split('@').all(|part| !part.is_empty())
                && !user.contains(char::is_whitespace);
            return if upn_ok {
                Ok(Self(Who::Account(spelling.to_string())))
            } else {
                Err(bad(
                    "an Entra account is AzureAD\\ and its user principal name",
                ))
            };
        }
        let prefix_ok = prefix.is_none_or(|p| {
            p == "."
                || (1..=15).contains(&p.len())
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if !prefix_ok {
            return Err(bad("the part before \\ is not a computer or domain name"));
        }
        let user_ok = (1..=20).contains(&user.chars().count())
            && !user.ends_with('.')
            && !user.contains(NOT_IN_NAMES);
        if !user_ok {
            return Err(bad(
                "a user name has 1 to 20 characters, none of \"/\\[]:;|=,+*?<>@",
            ));
        }
        Ok(Self(Who::Account(spelling.to_string())))
    }

    /// A dedicated kiosk device's account, created by Windows, shown as `display_name`.
    pub fn auto_logon(display_name: &str) -> Result<Self, Error> {
        let ok = (1..=64).contains(&display_name.chars().count())
            && !display_name.chars().any(char::is_control);
        if ok {
            Ok(Self(Who::AutoLogon(display_name.to_string())))
        } else {
            Err(Error::Invalid(format!(
                "kiosk display name {display_name:?}: 1 to 64 characters, no control characters"
            )))
        }
    }

    /// The account's name as people see it.
    pub fn name(&self) -> &str {
        match &self.0 {
            Who::AutoLogon(name) | Who::Account(name) => name,
        }
    }
}

/// The Assigned Access XML for Edge in kiosk mode on `kiosk_url`, resetting itself after
/// `idle_minutes` (Edge's own `--kiosk-idle-timeout-minutes`, 1 to 1440) on top of the portal's
/// own idle reset.
pub fn edge_kiosk(kiosk_url: &str, idle_minutes: u32, account: &KioskAccount) -> String {
    let arguments = format!(
        "--kiosk {kiosk_url} --edge-kiosk-type=fullscreen --kiosk-idle-timeout-minutes={} --no-first-run",
        idle_minutes.clamp(1, 1440)
    );
    let who = match &account.0 {
        Who::AutoLogon(display_name) => format!(
            "<AutoLogonAccount rs5:DisplayName=\"{}\" />",
            escape(display_name)
        ),
        Who::Account(name) => format!("<Account>{}</Account>", escape(name)),
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<!-- Latchkey "Reset password" kiosk: Microsoft Edge in kiosk mode on the portal's kiosk page.
     Written by `latchkey login-screen assets`; deploy it as installer/windows/README.md says. -->
<AssignedAccessConfiguration xmlns="http://schemas.microsoft.com/AssignedAccess/2017/config" xmlns:rs5="http://schemas.microsoft.com/AssignedAccess/201810/config" xmlns:v4="http://schemas.microsoft.com/AssignedAccess/2021/config">
  <Profiles>
    <Profile Id="{PROFILE_ID}" Name="Latchkey reset password kiosk">
      <KioskModeApp v4:ClassicAppPath="{path}" v4:ClassicAppArguments="{arguments}" />
    </Profile>
  </Profiles>
  <Configs>
    <Config>
      {who}
      <DefaultProfile Id="{PROFILE_ID}" />
    </Config>
  </Configs>
</AssignedAccessConfiguration>
"#,
        path = escape(EDGE_PATH),
        arguments = escape(&arguments),
    )
}

/// XML attribute and text escaping.
fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_the_idle_time_bounded() {
        let xml = edge_kiosk(
            "https://reset.contoso.com/kiosk?a=1&b=2",
            0,
            &KioskAccount::auto_logon("Reset <password> & more").unwrap(),
        );
        assert!(xml.contains("/kiosk?a=1&amp;b=2 --edge-kiosk-type=fullscreen"));
        assert!(xml.contains("--kiosk-idle-timeout-minutes=1 "));
        assert!(xml.contains("rs5:DisplayName=\"Reset &lt;password&gt; &amp; more\""));
    }

    #[test]
    fn account_names_are_checked() {
        for good in [
            "ResetPassword",
            ".\\ResetPassword",
            "CONTOSO\\kiosk-reset",
            "AzureAD\\kiosk@contoso.com",
        ] {
            assert_eq!(KioskAccount::account(good).unwrap().name(), good);
        }
        for bad in [
            "",
            " kiosk",
            "kiosk\u{1}",
            "a-name-longer-than-twenty",
            "CONTOSO\\ki<osk",
            "AzureAD\\no-at-sign",
            "AzureAD\\a@b@c",
            "TOO-LONG-DOMAIN-NAME\\kiosk",
            "kiosk.",
        ] {
            assert!(KioskAccount::account(bad).is_err(), "{bad:?}");
        }
        assert!(KioskAccount::auto_logon("").is_err());
    }
}
