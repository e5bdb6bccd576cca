//! The "Interactive logon: Message title/text for users attempting to log on" policy (Security
//! Options), as text for Group Policy or Intune and as a `.reg` file for the two registry values
//! the policy sets (`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`,
//! `legalnoticecaption` and `legalnoticetext`).

/// The registry key the logon-message policy writes.
pub const POLICY_KEY: &str =
    r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System";

/// A logon message: a title and one paragraph of text.
#[derive(Debug, Clone)]
pub struct LogonMessage {
    pub title: String,
    pub text: String,
}

impl LogonMessage {
    /// The message as an administrator pastes it into the two policy settings.
    pub fn as_text(&self) -> String {
        format!(
            "Interactive logon: Message title for users attempting to log on\r\n{}\r\n\r\n\
             Interactive logon: Message text for users attempting to log on\r\n{}\r\n",
            self.title, self.text
        )
    }

    /// A Registry Editor file (version 5, UTF-16LE with its byte-order mark, as regedit
    /// writes them) setting both values.
    pub fn as_reg(&self) -> Vec<u8> {
        let text = format!(
            "Windows Registry Editor Version 5.00\r\n\r\n[{POLICY_KEY}]\r\n\
             \"legalnoticecaption\"=\"{}\"\r\n\"legalnoticetext\"=\"{}\"\r\n",
            reg_escape(&self.title),
            reg_escape(&self.text)
        );
        let mut out = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            out.extend_from_slice(&unit.to_le_bytes());
        }
        out
    }
}

/// A `.reg` string value: backslashes and quotes escaped, line breaks (which a REG_SZ value of
/// this policy cannot hold) as spaces.
fn reg_escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reg_file_is_utf16_with_escaped_values() {
        let m = LogonMessage {
            title: "Forgot your password?".into(),
            text: "Open \"https://reset.contoso.com\"\nor C:\\x".into(),
        };
        let reg = m.as_reg();
        assert_eq!(&reg[..2], &[0xFF, 0xFE]);
        let units: Vec<u16> = reg[2..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&units).unwrap();
        assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n"));
        assert!(
            text.contains(r#""legalnoticetext"="Open \"https://reset.contoso.com\" or C:\\x""#)
        );
    }
}
