//! LDAP access to a domain controller: TLS always (LDAPS, or StartTLS on `ldap://`), certificate
//! verified against a CA file or the system store (or, loudly, not at all for labs), simple
//! bind, a timeout on every operation, paged searches, security descriptors read with the
//! SD-flags control, and the connector's `tokenGroups`.

mod conn;
mod entry;
mod error;
mod tls;

pub use conn::{Directory, LdapSettings, RootDse, Scope, SdFlags};
pub use entry::Entry;
pub use error::{LdapError, explain_ad_error};
pub use tls::{CertificateInfo, TrustSource, client_config, describe_certificate};

/// RFC 4515 escaping of a value placed inside an LDAP filter.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(escape_filter_value("MSOL_*)(x=1"), "MSOL_\\2a\\29\\28x=1");
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
    }
}
