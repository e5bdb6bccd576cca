//! The Assigned Access configuration of a "Reset password" kiosk: one profile that runs Microsoft
//! Edge full screen on the portal's kiosk page, for one account. Microsoft's schema namespaces
//! (installer/windows/assigned-access/, validated there): the 2017 base, `rs5` (201810) for the
//! auto-logon account's display name, `v4` (2021, Windows 11) for a desktop app's path and
//! arguments in a single-app kiosk.

/// The profile's id: fixed, so that applying a newer file replaces the same profile.
pub const PROFILE_ID: &str = "{6F1D2C3B-4A5E-4F70-9B81-2C3D4E5F6A7B}";

/// Where Edge is on every supported Windows (an environment variable Assigned Access expands).
pub const EDGE_PATH: &str = r"%ProgramFiles(x86)%\Microsoft\Edge\Application\msedge.exe";

/// Who the kiosk is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KioskAccount {
    /// A dedicated kiosk device: Windows creates a local standard account, shown with this name,
    /// and signs it in by itself after every restart.
    AutoLogon { display_name: String },
    /// A shared PC: an existing account (local `name` or `.\name`, `DOMAIN\name`,
    /// `AzureAD\user@contoso.com`) that people choose on the sign-in screen.
    Account(String),
}

/// The Assigned Access XML for Edge in kiosk mode on `kiosk_url`, resetting itself after
/// `idle_minutes` (Edge's own `--kiosk-idle-timeout-minutes`, 1 to 1440) on top of the portal's
/// own idle reset.
pub fn edge_kiosk(kiosk_url: &str, idle_minutes: u32, account: &KioskAccount) -> String {
    let arguments = format!(
        "--kiosk {kiosk_url} --edge-kiosk-type=fullscreen --kiosk-idle-timeout-minutes={} --no-first-run",
        idle_minutes.clamp(1, 1440)
    );
    let who = match account {
        KioskAccount::AutoLogon { display_name } => format!(
            "<AutoLogonAccount rs5:DisplayName=\"{}\" />",
            escape(display_name)
        ),
        KioskAccount::Account(name) => format!("<Account>{}</Account>", escape(name)),
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
            &KioskAccount::Account("CONTOSO\\<kiosk>".into()),
        );
        assert!(xml.contains("/kiosk?a=1&amp;b=2 --edge-kiosk-type=fullscreen"));
        assert!(xml.contains("--kiosk-idle-timeout-minutes=1 "));
        assert!(xml.contains("<Account>CONTOSO\\&lt;kiosk&gt;</Account>"));
    }
}
