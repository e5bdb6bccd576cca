//! A search result entry with every value as bytes (AD mixes text and binary attributes, and
//! ldap3 puts an attribute in its binary map only when some value is not UTF-8).

use std::collections::HashMap;

use crate::error::ParseError;
use crate::sd::SecurityDescriptor;
use crate::sid::Sid;

#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub dn: String,
    /// Attribute name (lower-case) to values.
    attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    pub(crate) fn from_ldap3(e: ldap3::SearchEntry) -> Entry {
        let mut attrs: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (k, vs) in e.attrs {
            attrs
                .entry(k.to_ascii_lowercase())
                .or_default()
                .extend(vs.into_iter().map(String::into_bytes));
        }
        for (k, vs) in e.bin_attrs {
            attrs.entry(k.to_ascii_lowercase()).or_default().extend(vs);
        }
        Entry { dn: e.dn, attrs }
    }

    /// For tests and callers that build entries by hand.
    pub fn new(dn: &str, attrs: &[(&str, &[&[u8]])]) -> Entry {
        Entry {
            dn: dn.to_string(),
            attrs: attrs
                .iter()
                .map(|(k, vs)| {
                    (
                        k.to_ascii_lowercase(),
                        vs.iter().map(|v| v.to_vec()).collect(),
                    )
                })
                .collect(),
        }
    }

    pub fn values(&self, attr: &str) -> &[Vec<u8>] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn first(&self, attr: &str) -> Option<&[u8]> {
        self.values(attr).first().map(Vec::as_slice)
    }

    pub fn str(&self, attr: &str) -> Option<&str> {
        self.first(attr).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn strs(&self, attr: &str) -> Vec<&str> {
        self.values(attr)
            .iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect()
    }

    pub fn i64(&self, attr: &str) -> Option<i64> {
        self.str(attr).and_then(|s| s.trim().parse().ok())
    }

    pub fn sid(&self, attr: &str) -> Option<Result<Sid, ParseError>> {
        self.first(attr).map(Sid::from_bytes)
    }

    /// `nTSecurityDescriptor`, parsed; `None` when absent (not readable, or no SD-flags control).
    pub fn security_descriptor(&self) -> Option<Result<SecurityDescriptor, ParseError>> {
        self.first("nTSecurityDescriptor")
            .map(SecurityDescriptor::from_bytes)
    }

    /// Whether objectClass lists `class` (case-insensitive).
    pub fn has_class(&self, class: &str) -> bool {
        self.strs("objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case(class))
    }
}
