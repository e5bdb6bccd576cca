//! The Graph operations, one module per concern. Each is a thin `impl GraphClient` block.

mod groups;
mod methods;
mod reset;
mod risk;
mod tap;
mod tenant;
mod users;

pub use users::odata_string;
