//! A caller-verification *case*: a short-lived store flow (purpose [`CASE_PURPOSE`], subject =
//! the user, [`CASE_LIFETIME`]) whose data names the member and their console session; its token
//! is in a `SameSite=Strict`, HttpOnly cookie. A case found under another member, session or user
//! counts as none. The caller's verification itself is `caller.rs`; the user page reads the case
//! from here.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_selfservice::codes;
use latchkey_store::{EnrollmentState, Flow, FlowPurpose, FlowToken, Verification};
use latchkey_types::{MethodKind, ObjectId};
use serde::{Deserialize, Serialize};

use crate::console::ConsoleUser;
use crate::portal::Portal;

/// Purpose of a caller-verification case.
pub const CASE_PURPOSE: FlowPurpose = FlowPurpose::HelpdeskCase;
/// How long a case lives (code sent → verified → acted): a few minutes, never extended.
pub const CASE_LIFETIME: Duration = Duration::from_secs(10 * 60);
pub(super) const CASE_COOKIE: &str = "latchkey-helpdesk-case";
/// The verification recorded on a case.
pub(super) const VERIFIED: Verification = Verification::Caller;

/// What a case keeps (the user is the flow's subject).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaseData {
    /// The member's object id.
    pub member: String,
    /// The member's console session (its correlation id).
    pub session: String,
    /// The channel the code went to (`email`, `sms`).
    pub channel: String,
    /// Where, masked, for the page.
    pub sent_to: String,
}

/// A live case of this member, session and user.
pub struct Case {
    pub token: FlowToken,
    pub flow: Flow,
    pub data: CaseData,
}

impl Case {
    /// The caller read back the right code.
    pub fn verified(&self) -> bool {
        self.flow.verified.contains(&VERIFIED)
    }
}

pub(super) fn cookie(portal: &Portal, value: String) -> Cookie<'static> {
    (portal.services.cookies).cookie(CASE_COOKIE, value, SameSite::Strict)
}

/// The case of this request for `user`, if it belongs to this member and session.
pub async fn load(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    user: &ObjectId,
) -> Option<Case> {
    let token = req
        .cookie(&portal.services.cookies.name(CASE_COOKIE))
        .and_then(|c| FlowToken::parse(c.value()))?;
    let flow = portal
        .services
        .store
        .flow(&token, portal.services.clock.now())
        .await
        .ok()
        .flatten()?;
    let data: CaseData = serde_json::from_value(flow.data.clone()).ok()?;
    let mine = flow.purpose == CASE_PURPOSE
        && flow.subject == *user
        && data.member == m.oid.to_string()
        && data.session == m.correlation_id;
    mine.then_some(Case { token, flow, data })
}

/// A verified case for `user`, or `None`.
pub async fn verified(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    user: &ObjectId,
) -> Option<Case> {
    load(portal, req, m, user).await.filter(Case::verified)
}

/// Masks an address for the page: `a***@outlook.example`, `+1 42******09`.
pub fn mask(destination: &str) -> String {
    if let Some((local, domain)) = destination.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = destination.chars().collect();
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 5 || i + 2 >= n || !c.is_ascii_digit() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// The channels a code can go to: the user's active email and text-message enrollments.
pub async fn channels(portal: &Portal, user: &ObjectId) -> Vec<(MethodKind, String)> {
    let mut out = Vec::new();
    for kind in [MethodKind::Email, MethodKind::Sms] {
        let e = portal
            .services
            .store
            .enrollment(user, kind.as_str(), EnrollmentState::Active)
            .await
            .ok()
            .flatten();
        if let Some(d) = e.and_then(|e| codes::enrolled_destination(kind, &e.data)) {
            let text = match &d {
                latchkey_verify::Destination::Email(a) => a.to_string(),
                latchkey_verify::Destination::Phone(p) => p.to_string(),
            };
            out.push((kind, mask(&text)));
        }
    }
    out
}

/// The generic "try again later" page of a helpdesk action.
pub fn unavailable(portal: &Portal, req: &HttpRequest, m: &ConsoleUser) -> HttpResponse {
    portal.error_page(
        req,
        m.lang,
        StatusCode::SERVICE_UNAVAILABLE,
        "error_generic",
    )
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn addresses_are_masked_for_the_page() {
        assert_eq!(mask("adele.vance@outlook.example"), "a***@outlook.example");
        assert_eq!(mask("+1 4255550109"), "+1 42******09");
        assert_eq!(mask("+45 20123456"), "+45 2*****56");
    }
}
