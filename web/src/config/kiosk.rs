//! `[kiosk]`: the self-service flows on a shared PC or the Windows sign-in screen's "Reset
//! password" kiosk account (docs/kiosk.md). Off unless `enabled = true`.

use serde::Deserialize;

/// Idle times outside these bounds are refused at load: below 10 s nobody finishes typing a code,
/// above an hour the next person at the screen finds the last one's flow.
const IDLE_BOUNDS: std::ops::RangeInclusive<u32> = 10..=3600;
/// How long the final page stays before the kiosk starts over by itself.
const DONE_BOUNDS: std::ops::RangeInclusive<u32> = 5..=300;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KioskSettings {
    /// Serve `/kiosk` (and kiosk pages for the browsers that entered through it).
    pub enabled: bool,
    /// A kiosk page left alone this long starts over: the flow ends and the first page shows.
    pub idle_seconds: u32,
    /// The final page (password changed, account unlocked) starts over after this long.
    pub done_seconds: u32,
    /// Who to ask for help, shown instead of `[branding] helpdesk` on kiosk pages (no URLs: a
    /// kiosk has nowhere to open them).
    pub helpdesk: Option<String>,
    /// What the final page says about signing in with the new password on this screen, instead
    /// of the built-in sentence (per language: the same text for all).
    pub signin_instructions: Option<String>,
}

impl Default for KioskSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            idle_seconds: 120,
            done_seconds: 30,
            helpdesk: None,
            signin_instructions: None,
        }
    }
}

impl KioskSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !IDLE_BOUNDS.contains(&self.idle_seconds) {
            anyhow::bail!(
                "key `kiosk.idle_seconds` = {} is outside {}..={}",
                self.idle_seconds,
                IDLE_BOUNDS.start(),
                IDLE_BOUNDS.end()
            );
        }
        if !DONE_BOUNDS.contains(&self.done_seconds) {
            anyhow::bail!(
                "key `kiosk.done_seconds` = {} is outside {}..={}",
                self.done_seconds,
                DONE_BOUNDS.start(),
                DONE_BOUNDS.end()
            );
        }
        for (key, text) in [
            ("kiosk.helpdesk", &self.helpdesk),
            ("kiosk.signin_instructions", &self.signin_instructions),
        ] {
            if let Some(text) = text
                && mentions_url(text)
            {
                anyhow::bail!(
                    "key `{key}` contains a web address; a kiosk cannot open one (give a phone number, room or name)"
                );
            }
        }
        Ok(())
    }
}

/// Whether `text` holds something a browser would open as a web address: a scheme (`https://`),
/// `www.`, or a word shaped like a host name (`help.contoso.com`, `aka.ms/help`). Email addresses,
/// phone numbers and room numbers ("4.12") are not.
pub fn mentions_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if lower.contains("://") || lower.contains("www.") {
        return true;
    }
    lower.split_whitespace().any(|word| {
        let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '/');
        if word.contains('@') {
            return false;
        }
        let host = word.split('/').next().unwrap_or_default();
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
    })
}

#[cfg(test)]
mod tests {
    use super::mentions_url;

    #[test]
    fn web_addresses_are_recognised_and_other_text_is_not() {
        for url in [
            "https://help.contoso.com",
            "see WWW.contoso.com",
            "Visit help.contoso.com.",
            "aka.ms/help",
            "(contoso.com/help)",
        ] {
            assert!(mentions_url(url), "{url}");
        }
        for text in [
            "Call 555-0100 or visit room 4.12",
            "helpdesk@contoso.com",
            "IT desk, e.g. ext. 4410",
            "Contoso Ltd.",
        ] {
            assert!(!mentions_url(text), "{text}");
        }
    }
}
