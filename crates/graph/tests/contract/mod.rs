pub mod support;

mod batch;
mod delegated;
mod errors;
mod faults;
mod groups;
mod logging;
mod methods;
mod paging;
mod passkeys;
mod reset;
mod risk_tap;
mod sessions;
mod tenant;
mod tokens;
mod users;
