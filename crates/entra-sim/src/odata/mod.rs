//! The OData query options Graph's directory endpoints understand: `$select`, `$filter` (a
//! parser for the subset directory objects support), `$top`, `$count`, `$search`, `$orderby`,
//! `$skiptoken` paging, and the advanced-query rules (`ConsistencyLevel: eventual` + `$count=true`).

pub mod filter;
pub mod paging;
pub mod query;

pub use query::ODataQuery;
