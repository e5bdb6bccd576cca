//! Reading the OData system query options of a request.

use actix_web::HttpRequest;

use crate::graph::error::GraphError;

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 999;

#[derive(Debug, Clone, Default)]
pub struct ODataQuery {
    /// `$select` names as given (order kept).
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
    pub search: Option<String>,
    pub orderby: Option<String>,
    pub top: Option<usize>,
    pub count: bool,
    pub skiptoken: Option<String>,
    /// `ConsistencyLevel: eventual`, as a header or (as one doc example does) a query parameter.
    pub eventual: bool,
    /// Whether `ConsistencyLevel=eventual` came in the query string (then nextLinks carry it).
    pub eventual_in_query: bool,
    /// The raw query string, for building nextLinks.
    pub raw: String,
}

impl ODataQuery {
    pub fn from_request(req: &HttpRequest) -> Result<ODataQuery, GraphError> {
        let raw = req.query_string().to_owned();
        let mut q = ODataQuery {
            raw: raw.clone(),
            ..Default::default()
        };
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            // Graph accepts the options with or without the `$` prefix.
            let key = k.trim_start_matches('$').to_ascii_lowercase();
            match key.as_str() {
                "select" => {
                    q.select = Some(
                        v.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
                "filter" => q.filter = Some(v.into_owned()),
                "search" => q.search = Some(v.into_owned()),
                "orderby" => q.orderby = Some(v.into_owned()),
                "count" => match v.to_ascii_lowercase().as_str() {
                    "true" => q.count = true,
                    "false" => q.count = false,
                    _ => {
                        return Err(GraphError::bad_request(format!(
                            "Invalid value '{v}' for $count query option found. Valid values are 'true' and 'false'."
                        )));
                    }
                },
                "top" => {
                    let n: usize = v.parse().map_err(|_| {
                        GraphError::bad_request(format!(
                            "Invalid page size specified: '{v}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive."
                        ))
                    })?;
                    if n == 0 || n > MAX_PAGE_SIZE {
                        return Err(GraphError::bad_request(format!(
                            "Invalid page size specified: '{n}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive."
                        )));
                    }
                    q.top = Some(n);
                }
                "skiptoken" => q.skiptoken = Some(v.into_owned()),
                "consistencylevel" if v.eq_ignore_ascii_case("eventual") => {
                    q.eventual = true;
                    q.eventual_in_query = true;
                }
                _ => {}
            }
        }
        if req
            .headers()
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
        {
            q.eventual = true;
        }
        Ok(q)
    }

    /// Advanced query = `ConsistencyLevel: eventual` **and** `$count=true`.
    pub fn is_advanced(&self) -> bool {
        self.eventual && self.count
    }

    pub fn page_size(&self) -> usize {
        self.top.unwrap_or(DEFAULT_PAGE_SIZE)
    }

    /// `@odata.count` is only returned for advanced queries (without the header `$count=true` is
    /// silently ignored).
    pub fn wants_count(&self) -> bool {
        self.is_advanced()
    }

    /// `$search` needs the header (or parameter) but not `$count`.
    pub fn check_search_allowed(&self) -> Result<(), GraphError> {
        if self.search.is_some() && !self.eventual {
            return Err(GraphError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        Ok(())
    }
}
