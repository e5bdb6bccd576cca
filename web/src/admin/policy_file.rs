//! Policy files as text: the edit form's draft, its TOML, and surgical edits of one
//! `[[policy]]` block inside a file so that the other policies of the file keep their text and
//! comments byte for byte (no TOML re-serialization of the whole file, no extra dependency).
//!
//! A block runs from its `[[policy]]` header to the next header (or the end of the file). When a
//! block is replaced, the comment lines that end it (commonly a commented example or the next
//! policy's heading comment) are kept; comments inside the replaced policy itself are not, since
//! the form does not carry them.

use latchkey_policy::{Action, Policy};

/// The form's fields, as typed (numbers stay text until validated).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Draft {
    pub name: String,
    pub description: String,
    pub priority: String,
    pub enabled: bool,
    /// One group per line: object id, then optionally its display name.
    pub applies_to: String,
    pub excludes: String,
    pub actions: Vec<String>,
    pub methods: Vec<String>,
    /// Where codes may go: `latchkey`, `entra`, `profile`.
    pub sources: Vec<String>,
    pub methods_required: String,
    /// A passkey alone completes verification (`passkey_satisfies = "all"`).
    pub passkey_alone: bool,
    pub allow_privileged: bool,
    /// Sign the user out everywhere after a reset (docs/security.md 8; on by default).
    pub revoke_sessions: bool,
    /// Dismiss an Identity Protection risk flag after a reset or at an unlock request.
    pub dismiss_risk: bool,
    pub enrollment_required: bool,
    pub reconfirm_after_days: String,
    pub min_length: String,
    /// Comma-separated.
    pub banned_words: String,
    pub forbid_user_names: bool,
    /// Security contacts told after each completed action, one address per line (commas too).
    pub security_contacts: String,
}

/// Every action and method the form offers, in the order policy files list them.
pub const ACTIONS: [&str; 4] = ["reset", "unlock", "temporary_access_pass", "enroll"];
pub const METHODS: [&str; 6] = ["email", "sms", "totp", "passkey", "questions", "attribute"];
pub const SOURCES: [&str; 3] = ["latchkey", "entra", "profile"];

fn groups_text(groups: &[latchkey_policy::GroupRef]) -> String {
    groups
        .iter()
        .map(|g| match &g.name {
            Some(n) => format!("{} {n}", g.id),
            None => g.id.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Draft {
    /// A new policy's defaults (the shipped default's values; matches nobody until groups are
    /// added).
    pub fn new_policy() -> Self {
        Self {
            enabled: true,
            actions: vec!["reset".into(), "unlock".into(), "enroll".into()],
            methods: vec!["email".into(), "totp".into(), "sms".into()],
            sources: vec!["latchkey".into()],
            methods_required: "2".into(),
            reconfirm_after_days: "180".into(),
            min_length: latchkey_policy::model::DEFAULT_MIN_PASSWORD_LENGTH.to_string(),
            forbid_user_names: true,
            revoke_sessions: true,
            dismiss_risk: true,
            ..Self::default()
        }
    }

    pub fn from_policy(p: &Policy) -> Self {
        Self {
            name: p.name.clone(),
            description: p.description.clone(),
            priority: p.priority.to_string(),
            enabled: p.enabled,
            applies_to: groups_text(&p.applies_to),
            excludes: groups_text(&p.excludes),
            actions: p
                .actions
                .iter()
                .map(crate::policy_cli::action_name)
                .collect(),
            methods: p.methods.iter().map(|m| m.as_str().to_string()).collect(),
            sources: p.sources.iter().map(|s| s.as_str().to_string()).collect(),
            methods_required: p.methods_required.to_string(),
            passkey_alone: p.passkey_satisfies == latchkey_policy::PasskeySatisfies::All,
            allow_privileged: p.allow_privileged,
            revoke_sessions: p.revoke_sessions,
            dismiss_risk: p.dismiss_risk,
            enrollment_required: p.enrollment.required,
            reconfirm_after_days: p.enrollment.reconfirm_after_days.to_string(),
            min_length: p.password.min_length.to_string(),
            banned_words: p.password.banned_words.join(", "),
            forbid_user_names: p.password.forbid_user_names,
            security_contacts: p
                .notifications
                .security_contacts
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// From the posted form (`actions` and `methods` repeat; checkboxes are present when on).
    pub fn from_form(pairs: &[(String, String)]) -> Self {
        let one = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let on = |k: &str| pairs.iter().any(|(n, _)| n == k);
        let many = |k: &str| -> Vec<String> {
            // In the order submitted (the form lists a policy's methods in its order, which is
            // the order the portal offers them); unknown values are kept so validation names them.
            let mut v: Vec<String> = Vec::new();
            for (_, x) in pairs.iter().filter(|(n, _)| n == k) {
                let x = x.trim().to_string();
                if !v.contains(&x) {
                    v.push(x);
                }
            }
            v
        };
        Self {
            name: one("name"),
            description: one("description"),
            priority: one("priority"),
            enabled: on("enabled"),
            applies_to: one("applies_to"),
            excludes: one("excludes"),
            actions: many("actions"),
            methods: many("methods"),
            sources: many("sources"),
            methods_required: one("methods_required"),
            passkey_alone: on("passkey_alone"),
            allow_privileged: on("allow_privileged"),
            revoke_sessions: on("revoke_sessions"),
            dismiss_risk: on("dismiss_risk"),
            enrollment_required: on("enrollment_required"),
            reconfirm_after_days: one("reconfirm_after_days"),
            min_length: one("min_length"),
            banned_words: one("banned_words"),
            forbid_user_names: on("forbid_user_names"),
            security_contacts: one("security_contacts"),
        }
    }

    /// The `[[policy]]` block, or the form fields that are not even well-formed (numbers); the
    /// policy crate validates everything else.
    pub fn to_toml(&self) -> Result<String, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut number = |field: &str, text: &str| -> String {
            let t = text.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 9 {
                errors.push((field.to_string(), "enter a whole number".to_string()));
                "0".to_string()
            } else {
                t.trim_start_matches('0').to_string().max_if_empty()
            }
        };
        let priority = number("priority", &self.priority);
        let required = number("methods_required", &self.methods_required);
        let reconfirm = number("reconfirm_after_days", &self.reconfirm_after_days);
        let min_length = number("min_length", &self.min_length);
        if !errors.is_empty() {
            return Err(errors);
        }
        let list = |v: &[String]| v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ");
        let words: Vec<String> = self
            .banned_words
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect();
        let mut out = String::new();
        out.push_str("[[policy]]\n");
        out.push_str(&format!("name = {}\n", quote(self.name.trim())));
        out.push_str(&format!(
            "description = {}\n",
            quote(self.description.trim())
        ));
        out.push_str(&format!("priority = {priority}\n"));
        out.push_str(&format!("enabled = {}\n", self.enabled));
        out.push_str(&format!(
            "applies_to = [{}]\n",
            groups_toml(&self.applies_to)
        ));
        out.push_str(&format!("excludes = [{}]\n", groups_toml(&self.excludes)));
        out.push_str(&format!("actions = [{}]\n", list(&self.actions)));
        out.push_str(&format!("methods = [{}]\n", list(&self.methods)));
        out.push_str(&format!("sources = [{}]\n", list(&self.sources)));
        out.push_str(&format!("methods_required = {required}\n"));
        if self.passkey_alone {
            out.push_str("passkey_satisfies = \"all\"\n");
        }
        out.push_str(&format!("allow_privileged = {}\n", self.allow_privileged));
        out.push_str(&format!("revoke_sessions = {}\n", self.revoke_sessions));
        out.push_str(&format!("dismiss_risk = {}\n", self.dismiss_risk));
        out.push_str("\n[policy.enrollment]\n");
        out.push_str(&format!("required = {}\n", self.enrollment_required));
        out.push_str(&format!("reconfirm_after_days = {reconfirm}\n"));
        out.push_str("\n[policy.password]\n");
        out.push_str(&format!("min_length = {min_length}\n"));
        out.push_str(&format!("banned_words = [{}]\n", list(&words)));
        out.push_str(&format!("forbid_user_names = {}\n", self.forbid_user_names));
        // Written as typed: the policy crate says which entry is not an address.
        let contacts: Vec<String> = self
            .security_contacts
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if !contacts.is_empty() {
            out.push_str("\n[policy.notifications]\n");
            out.push_str(&format!("security_contacts = [{}]\n", list(&contacts)));
        }
        Ok(out)
    }
}

trait MaxIfEmpty {
    fn max_if_empty(self) -> String;
}

impl MaxIfEmpty for String {
    /// "000" trimmed of leading zeros is "": that is 0.
    fn max_if_empty(self) -> String {
        if self.is_empty() { "0".into() } else { self }
    }
}

/// `[{ id = "...", name = "..." }, ...]` from one group per line ("<id> <name...>"). The id is
/// written as typed: the policy crate says when it is not an object id.
fn groups_toml(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (id, name) = match l.split_once(char::is_whitespace) {
                Some((id, name)) => (id, Some(name.trim())),
                None => (l, None),
            };
            match name.filter(|n| !n.is_empty()) {
                Some(n) => format!("{{ id = {}, name = {} }}", quote(id), quote(n)),
                None => format!("{{ id = {} }}", quote(id)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_header(line: &str) -> bool {
    let l = line.trim();
    let l = l.split('#').next().unwrap_or("").trim();
    l == "[[policy]]"
}

/// Byte ranges of the `[[policy]]` blocks, with the 1-based line of each header.
fn blocks(text: &str) -> Vec<(usize, std::ops::Range<usize>)> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_header(line) {
            starts.push((i + 1, offset));
        }
        offset += line.len();
    }
    let mut out = Vec::new();
    for (k, (line, start)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(text.len(), |(_, s)| *s);
        out.push((*line, *start..end));
    }
    out
}

/// The block that contains `line` (a policy's definition line, as the loader reports it).
fn block_at(text: &str, line: usize) -> Option<std::ops::Range<usize>> {
    blocks(text)
        .into_iter()
        .rev()
        .find(|(header, _)| *header <= line)
        .map(|(_, r)| r)
}

/// Where the block's own content ends: before the comment and blank lines that close it.
fn content_end(text: &str, range: &std::ops::Range<usize>) -> usize {
    let block = &text[range.clone()];
    let mut end = 0;
    let mut offset = 0;
    for line in block.split_inclusive('\n') {
        offset += line.len();
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            end = offset;
        }
    }
    range.start + end
}

/// `text` with the policy defined at `line` replaced by `block` (the closing comments kept).
/// `None` when no block contains that line.
pub fn replace_block(text: &str, line: usize, block: &str) -> Option<String> {
    let range = block_at(text, line)?;
    let end = content_end(text, &range);
    let mut out = String::with_capacity(text.len() + block.len());
    out.push_str(&text[..range.start]);
    out.push_str(block);
    let tail = &text[end..range.end];
    if !tail.trim().is_empty() {
        out.push('\n');
        out.push_str(tail.trim_start_matches('\n'));
    } else if range.end < text.len() {
        out.push('\n');
    }
    out.push_str(&text[range.end..]);
    Some(out)
}

/// `text` without the policy defined at `line` (its own comments go, the comments that close it
/// stay, as in [`replace_block`]). `None` when no block contains that line.
pub fn remove_block(text: &str, line: usize) -> Option<String> {
    let range = block_at(text, line)?;
    let end = content_end(text, &range);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..range.start]);
    out.push_str(text[end..range.end].trim_start_matches('\n'));
    out.push_str(&text[range.end..]);
    Some(out)
}

/// Whether `text` still defines a policy (a file without one is removed, not left empty).
pub fn has_policies(text: &str) -> bool {
    !blocks(text).is_empty()
}

/// `text` with a new block appended.
pub fn append_block(text: &str, block: &str) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.trim().is_empty() {
        out.push('\n');
    }
    out.push_str(block);
    out
}

/// `text` with only the `enabled` key of the policy at `line` changed (inserted after the
/// header when absent): the rest of the block, comments included, stays as it is.
pub fn set_enabled(text: &str, line: usize, enabled: bool) -> Option<String> {
    let range = block_at(text, line)?;
    let block = &text[range.clone()];
    let mut out_block = String::with_capacity(block.len() + 20);
    let mut done = false;
    let mut in_sub_table = false;
    for (i, l) in block.split_inclusive('\n').enumerate() {
        let t = l.trim_start();
        if i > 0 && t.starts_with('[') {
            in_sub_table = true;
        }
        let key = t.split('=').next().unwrap_or("").trim();
        if !done && !in_sub_table && i > 0 && key == "enabled" && t.contains('=') {
            let indent = &l[..l.len() - t.len()];
            let comment = t
                .split_once('#')
                .map(|(_, c)| format!("  #{c}"))
                .unwrap_or_default();
            let comment = comment.trim_end_matches('\n');
            out_block.push_str(&format!("{indent}enabled = {enabled}{comment}\n"));
            done = true;
            continue;
        }
        out_block.push_str(l);
        if i == 0 && !l.ends_with('\n') {
            out_block.push('\n');
        }
    }
    if !done {
        let (header, rest) = out_block.split_once('\n').unwrap_or((&out_block, ""));
        out_block = format!("{header}\nenabled = {enabled}\n{rest}");
    }
    let mut out = String::with_capacity(text.len() + 20);
    out.push_str(&text[..range.start]);
    out.push_str(&out_block);
    out.push_str(&text[range.end..]);
    Some(out)
}

/// A line-by-line diff of two texts (for the audit trail and the preview): `-`/`+` lines with
/// two lines of context, `@@ line` markers. Longest common subsequence; policy files are small.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    if n * m > 4_000_000 {
        return format!("(files too large to compare: {n} and {m} lines)");
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, old line no, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as unified diffs show them.
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.0 != ' ')
        .map(|(k, _)| k)
        .collect();
    let mut out = String::new();
    let mut last: Option<usize> = None;
    for (k, op) in ops.iter().enumerate() {
        let near = changed.iter().any(|&c| c.abs_diff(k) <= 2);
        if !near {
            continue;
        }
        if last.is_none_or(|l| k > l + 1) {
            out.push_str(&format!("@@ line {}\n", op.1));
        }
        out.push(op.0);
        out.push_str(op.2);
        out.push('\n');
        last = Some(k);
    }
    out
}

/// Which action a lower-case name is (the policy files' vocabulary).
pub fn action(name: &str) -> Option<Action> {
    match name {
        "reset" => Some(Action::Reset),
        "unlock" => Some(Action::Unlock),
        "temporary_access_pass" => Some(Action::TemporaryAccessPass),
        "enroll" => Some(Action::Enroll),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# head comment\n\n[[policy]]\nname = \"A\"\n# about A\npriority = 1\nactions = [\"reset\"]\nmethods = [\"email\"]\nmethods_required = 1\n\n# B is for the second group\n[[policy]]\nname = \"B\"  # keep\npriority = 2\nenabled = true # on\nactions = [\"reset\"]\nmethods = [\"email\"]\nmethods_required = 1\n\n[policy.password]\nmin_length = 15\n\n# trailing example\n# [[policy]]\n";

    #[test]
    fn replacing_one_block_keeps_the_others_and_closing_comments() {
        let out = replace_block(FILE, 3, "[[policy]]\nname = \"A2\"\n").unwrap();
        assert!(out.starts_with("# head comment\n\n[[policy]]\nname = \"A2\"\n"));
        assert!(
            !out.contains("# about A"),
            "the replaced block's own comments go"
        );
        assert!(out.contains("# B is for the second group\n[[policy]]\nname = \"B\"  # keep\n"));
        assert!(out.ends_with("# trailing example\n# [[policy]]\n"), "{out}");
        let out = replace_block(FILE, 14, "[[policy]]\nname = \"B2\"\n").unwrap();
        assert!(out.contains("# about A") && out.contains("name = \"B2\""));
        assert!(out.ends_with("# trailing example\n# [[policy]]\n"), "{out}");
        assert!(!out.contains("min_length"));
    }

    #[test]
    fn removing_a_block_keeps_the_others() {
        let out = remove_block(FILE, 14).unwrap();
        assert!(out.contains("name = \"A\"") && !out.contains("name = \"B\""));
        assert!(!out.contains("min_length"), "its sub-table goes too");
        assert!(out.ends_with("# trailing example\n# [[policy]]\n"), "{out}");
        assert!(has_policies(&out));
        let out = remove_block(&out, 3).unwrap();
        assert!(!has_policies(&out), "{out}");
        assert!(remove_block("# nothing\n", 1).is_none());
    }

    #[test]
    fn enabling_touches_one_line() {
        let out = set_enabled(FILE, 12, false).unwrap();
        assert_eq!(
            out,
            FILE.replace("enabled = true # on", "enabled = false  # on")
        );
        let out = set_enabled(FILE, 3, false).unwrap();
        assert!(out.contains("[[policy]]\nenabled = false\nname = \"A\"\n"));
        assert_eq!(out.len(), FILE.len() + "enabled = false\n".len());
    }

    #[test]
    fn drafts_round_trip_through_the_policy_crate() {
        let mut d = Draft::new_policy();
        d.name = "Quote \" and \\ back".into();
        d.priority = "7".into();
        d.applies_to = "c0000000-0000-4000-8000-00000000000a Pilot \"Wave\" 1\n".into();
        let toml = d.to_toml().unwrap();
        let set = latchkey_policy::parse_sources(&[("x.toml".into(), toml)]).unwrap();
        let p = &set.policies()[0];
        assert_eq!(p.name, "Quote \" and \\ back");
        assert_eq!(p.applies_to[0].name.as_deref(), Some("Pilot \"Wave\" 1"));
        assert_eq!(Draft::from_policy(p).priority, "7");
        assert!(
            p.revoke_sessions,
            "a new policy signs users out after a reset"
        );
        // Every setting survives an edit: a draft made from the policy writes the same policy.
        let mut off = Draft::from_policy(p);
        off.revoke_sessions = false;
        off.allow_privileged = true;
        let again =
            latchkey_policy::parse_sources(&[("x.toml".into(), off.to_toml().unwrap())]).unwrap();
        assert!(!again.policies()[0].revoke_sessions);
        assert!(again.policies()[0].allow_privileged);
        assert!(
            again.policies()[0]
                .notifications
                .security_contacts
                .is_empty()
        );
        // Security contacts: one per line (or comma-separated) in the form, a list in the file.
        let mut told = Draft::from_policy(&again.policies()[0]);
        told.security_contacts = "SecOps@contoso.com\n it@contoso.com, \n".into();
        let told_set =
            latchkey_policy::parse_sources(&[("x.toml".into(), told.to_toml().unwrap())]).unwrap();
        let contacts: Vec<&str> = told_set.policies()[0]
            .notifications
            .security_contacts
            .iter()
            .map(|e| e.as_str())
            .collect();
        assert_eq!(contacts, ["secops@contoso.com", "it@contoso.com"]);
        let back = Draft::from_policy(&told_set.policies()[0]);
        assert_eq!(back.security_contacts, "secops@contoso.com\nit@contoso.com");
        assert_eq!(
            back.to_toml().unwrap(),
            told.to_toml().unwrap().replace("SecOps", "secops")
        );
        let form = [(
            "security_contacts".to_string(),
            "a@contoso.com\r\nb@contoso.com".to_string(),
        )];
        assert_eq!(
            Draft::from_form(&form).security_contacts,
            "a@contoso.com\r\nb@contoso.com"
        );
        let mut wrong = told.clone();
        wrong.security_contacts = "secops@contoso.com\nnot-an-address".into();
        let errs = latchkey_policy::parse_sources(&[("x.toml".into(), wrong.to_toml().unwrap())])
            .unwrap_err();
        assert_eq!(
            errs[0].field.as_deref(),
            Some("policy[0].notifications.security_contacts[1]")
        );
        let form = [("name".to_string(), "n".to_string())];
        assert!(
            !Draft::from_form(&form).revoke_sessions,
            "an unticked box is off"
        );
        let mut bad = d.clone();
        bad.priority = "-1".into();
        bad.min_length = "x".into();
        let e = bad.to_toml().unwrap_err();
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn diff_shows_changed_lines_with_context() {
        let d = diff("a\nb\nc\nd\n", "a\nB\nc\nd\n");
        assert!(d.contains("-b\n+B\n"), "{d}");
        assert!(d.contains(" a\n"));
    }
}
