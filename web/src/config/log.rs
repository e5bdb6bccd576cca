//! `[log]`: how the portal writes its log (to stderr: journald, a container runtime or a
//! collector picks it up there).

use std::path::Path;

use serde::Deserialize;

/// `text` for people reading a terminal; `json` (one object per line, with the request's id) for
/// log collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

impl LogSettings {
    /// The `[log]` table of the configuration file at `path`, read before anything else
    /// (logging starts first). Anything unreadable gives the default here; loading the whole
    /// file reports it a moment later, in that format.
    pub fn peek(path: &Path) -> LogSettings {
        let Ok(text) = std::fs::read_to_string(path) else {
            return LogSettings::default();
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            return LogSettings::default();
        };
        table
            .get("log")
            .cloned()
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_table_is_read_on_its_own() {
        let dir = std::env::temp_dir().join(format!("latchkey-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("latchkey.toml");
        std::fs::write(&file, "[entra]\ntenant_id = 1\n[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(LogSettings::peek(&file).format, LogFormat::Json);
        std::fs::write(&file, "[log]\nformat = \"xml\"\n").unwrap();
        assert_eq!(LogSettings::peek(&file).format, LogFormat::Text);
        assert_eq!(
            LogSettings::peek(&dir.join("missing.toml")).format,
            LogFormat::Text
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
