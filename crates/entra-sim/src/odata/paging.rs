//! Server-driven paging. The `@odata.nextLink` repeats the client's query options and adds an
//! opaque `$skiptoken`; clients must follow it as-is (and re-send headers such as
//! `ConsistencyLevel`, which links cannot carry). The token encodes the offset plus a
//! fingerprint of the query, so a token pasted onto another query is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::ODataQuery;
use crate::graph::error::GraphError;

fn fingerprint(path: &str, q: &ODataQuery) -> String {
    let text = format!(
        "{path}|{:?}|{:?}|{:?}|{:?}|{:?}",
        q.filter, q.select, q.search, q.orderby, q.top
    );
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..6])
}

fn encode(offset: usize, fp: &str) -> String {
    // "m~" mirrors the shape of real directory skiptokens.
    format!("m~{}", URL_SAFE_NO_PAD.encode(format!("{offset};{fp}")))
}

fn decode(token: &str, fp: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(token.strip_prefix("m~")?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (offset, got) = text.split_once(';')?;
    (got == fp).then(|| offset.parse().ok()).flatten()
}

/// One page of `items` and the nextLink (absolute, under `graph_base`) if more remain.
pub fn page(
    items: Vec<Value>,
    q: &ODataQuery,
    graph_base: &str,
    path: &str,
) -> Result<(Vec<Value>, Option<String>), GraphError> {
    let fp = fingerprint(path, q);
    let offset = match &q.skiptoken {
        Some(t) => decode(t, &fp).ok_or_else(|| {
            GraphError::bad_request("Specified skip token is invalid or has expired.")
        })?,
        None => 0,
    };
    let size = q.page_size();
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let next = (offset + size < total).then(|| {
        let mut kept: Vec<&str> = q
            .raw
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or("");
                let key = url::form_urlencoded::parse(key.as_bytes())
                    .next()
                    .map(|(k, _)| k.into_owned())
                    .unwrap_or_default();
                !key.trim_start_matches('$')
                    .eq_ignore_ascii_case("skiptoken")
            })
            .collect();
        let token = format!("$skiptoken={}", encode(offset + size, &fp));
        kept.push(&token);
        format!("{graph_base}{path}?{}", kept.join("&"))
    });
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_refuses_foreign_tokens() {
        let items: Vec<Value> = (0..250).map(Value::from).collect();
        let q = ODataQuery {
            raw: "$top=100&$select=id".into(),
            top: Some(100),
            select: Some(vec!["id".into()]),
            ..Default::default()
        };
        let (p1, next) = page(items.clone(), &q, "http://x/v1.0", "/users").unwrap();
        assert_eq!(p1.len(), 100);
        let next = next.unwrap();
        assert!(next.starts_with("http://x/v1.0/users?$top=100&$select=id&$skiptoken=m~"));
        let token = next.split("$skiptoken=").nth(1).unwrap().to_owned();
        let q2 = ODataQuery {
            skiptoken: Some(token.clone()),
            ..q.clone()
        };
        let (p2, _) = page(items.clone(), &q2, "http://x/v1.0", "/users").unwrap();
        assert_eq!(p2[0], Value::from(100));
        let other = ODataQuery {
            filter: Some("mail eq 'x'".into()),
            ..q2
        };
        assert!(page(items, &other, "http://x/v1.0", "/users").is_err());
    }
}
