//! Request paths as the console gate judges them: decoded, resolved and lower-cased, so that no
//! spelling of a console path (`%2e`, `\\`, `//`, `..`, upper case) slips past the gate.

/// The path as the gate judges it: percent-decoded, `\` read as `/`, empty and `.` segments
/// dropped, `..` resolved, lower-cased, no trailing slash (`/` for the root).
pub fn normalize(raw: &str) -> String {
    // Decode repeatedly so `%252e` cannot hide a dot behind a second encoding.
    let mut path = raw.to_string();
    for _ in 0..3 {
        let decoded = percent_decode(&path);
        if decoded == path {
            break;
        }
        path = decoded;
    }
    let path = path.replace('\\', "/").to_lowercase();
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// False only when `path` can never normalize into a console area.
pub(super) fn could_be_console(path: &str) -> bool {
    let b = path.as_bytes();
    let has = |word: &[u8]| b.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
    b.contains(&b'%') || has(b"admin") || has(b"helpdesk")
}
