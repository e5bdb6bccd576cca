//! The Microsoft identity platform (v2.0) endpoints: token, authorize (with a sign-in page),
//! OpenID Connect discovery and JWKS.

pub mod authorize;
pub mod error;
pub mod issue;
pub mod oidc;
pub mod scopes;
pub mod token;

use actix_web::web::{self, get, post};

/// PKCE (RFC 7636): `S256` = base64url(SHA-256(verifier)); `plain` = verifier.
pub fn pkce_matches(challenge: &str, method: &str, verifier: &str) -> bool {
    if method.eq_ignore_ascii_case("S256") {
        let d = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        crate::tokens::b64(d.as_ref()) == challenge
    } else {
        challenge == verifier
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{tenant}/oauth2/v2.0/token", post().to(token::token))
        .route("/{tenant}/oauth2/v2.0/authorize", get().to(authorize::show))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            post().to(authorize::submit),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get().to(oidc::configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get().to(oidc::keys));
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_rfc7636_example() {
        // RFC 7636 appendix B.
        assert!(super::pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!super::pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256",
            "x"
        ));
    }
}
