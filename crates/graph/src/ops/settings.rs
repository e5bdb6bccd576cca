//! The tenant's "Password Rule Settings" directory setting (`GET /groupSettings`): its custom
//! banned password list and its smart lockout. A tenant has no settings object until an admin
//! configures one; then Entra's defaults apply ([`PasswordRuleSettings::default`]).

use serde::Deserialize;

use crate::client::GraphClient;
use crate::error::GraphError;

/// The template of the "Password Rule Settings" object.
pub const PASSWORD_RULE_SETTINGS_TEMPLATE: &str = "5cf42378-d67d-4f36-ba46-e8b86229381d";

/// What the tenant configured, or Entra's documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRuleSettings {
    /// Whether the custom banned password list is enforced (`EnableBannedPasswordCheck`).
    pub banned_check_enabled: bool,
    /// `BannedPasswordList`, split at tabs, empty entries dropped.
    pub banned_passwords: Vec<String>,
    /// Failed sign-ins before the first lockout (`LockoutThreshold`, default 10).
    pub lockout_threshold: u32,
    /// The first lockout's length (`LockoutDurationInSeconds`, default 60).
    pub lockout_duration_seconds: u32,
}

impl Default for PasswordRuleSettings {
    fn default() -> Self {
        Self {
            banned_check_enabled: false,
            banned_passwords: Vec::new(),
            lockout_threshold: 10,
            lockout_duration_seconds: 60,
        }
    }
}

#[derive(Deserialize)]
struct Collection {
    #[serde(default)]
    value: Vec<GroupSetting>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupSetting {
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    values: Vec<SettingValue>,
}

#[derive(Deserialize)]
struct SettingValue {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

impl PasswordRuleSettings {
    fn from_values(values: &[SettingValue]) -> Self {
        let mut s = Self::default();
        for v in values {
            let value = v.value.as_deref().unwrap_or("").trim();
            match v.name.as_str() {
                "EnableBannedPasswordCheck" => {
                    s.banned_check_enabled = value.eq_ignore_ascii_case("true")
                }
                "BannedPasswordList" => {
                    s.banned_passwords = value
                        .split('\t')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                // A value that does not parse keeps the default: Entra would not have saved it.
                "LockoutThreshold" => {
                    s.lockout_threshold = value.parse().unwrap_or(s.lockout_threshold)
                }
                "LockoutDurationInSeconds" => {
                    s.lockout_duration_seconds = value.parse().unwrap_or(s.lockout_duration_seconds)
                }
                _ => {}
            }
        }
        s
    }
}

impl GraphClient {
    /// The tenant's password rule settings; Entra's defaults when the tenant has no such object.
    /// Needs `GroupSettings.Read.All` (or `Directory.Read.All`).
    pub async fn password_rule_settings(&self) -> Result<PasswordRuleSettings, GraphError> {
        let url = self.url(&["groupSettings"]);
        let c: Collection = self.get_json(url).await?;
        Ok(c.value
            .iter()
            .find(|s| {
                s.template_id
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(PASSWORD_RULE_SETTINGS_TEMPLATE))
            })
            .map(|s| PasswordRuleSettings::from_values(&s.values))
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_entra_writes_them() {
        let values = vec![
            SettingValue {
                name: "EnableBannedPasswordCheck".into(),
                value: Some("True".into()),
            },
            SettingValue {
                name: "BannedPasswordList".into(),
                value: Some("contoso\tfabrikam\t\tpwd1".into()),
            },
            SettingValue {
                name: "LockoutThreshold".into(),
                value: Some("5".into()),
            },
            SettingValue {
                name: "LockoutDurationInSeconds".into(),
                value: Some("nonsense".into()),
            },
        ];
        let s = PasswordRuleSettings::from_values(&values);
        assert!(s.banned_check_enabled);
        assert_eq!(s.banned_passwords, ["contoso", "fabrikam", "pwd1"]);
        assert_eq!(s.lockout_threshold, 5);
        assert_eq!(s.lockout_duration_seconds, 60);
    }
}
