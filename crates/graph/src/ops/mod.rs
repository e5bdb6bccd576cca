//! The Graph operations, one module per concern. Each is a thin `impl GraphClient` block.

mod delta;
mod groups;
mod methods;
mod pages;
mod passkeys;
mod reset;
mod risk;
mod sessions;
mod settings;
mod tap;
mod tenant;
mod users;

pub use delta::{
    DeltaCollection, DeltaCursor, DeltaGroup, DeltaItem, DeltaLink, DeltaNext, DeltaPage,
    MemberChange, MemberKind, Removal,
};
pub use groups::UserWithMemberships;
pub use pages::{MAX_PAGE_SIZE, NextPage, Page, RegistrationDetails};
pub use settings::{PASSWORD_RULE_SETTINGS_TEMPLATE, PasswordRuleSettings};
pub use tenant::InternalDomainFederation;
pub use users::{accounts_in_domain, odata_string};
