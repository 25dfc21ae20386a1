//! Voter identity: an opaque random [`VoterId`] in an HttpOnly cookie, minted on a guest's
//! first write. A missing or malformed cookie is not an error: the guest simply gets a fresh
//! identity (and the cookie for it) in the response.

use axum::http::HeaderValue;
use cookie::{Cookie, SameSite};
use ledger::VoterId;

pub use http_edge::{voter_from_cookies, VoterCookie, VOTER_COOKIE};

/// The voter a write is attributed to, and the `Set-Cookie` value to send if it is new.
pub struct Voter {
    pub id: VoterId,
    pub set_cookie: Option<HeaderValue>,
}

/// The request's voter (from [`VoterCookie`]), minting a new one (with its cookie) when it
/// has none.
pub fn voter(cookie: Option<VoterId>, max_age_s: u64, secure: bool) -> Voter {
    match cookie {
        Some(id) => Voter { id, set_cookie: None },
        None => {
            let id = VoterId::mint();
            Voter { id, set_cookie: Some(voter_cookie(id, max_age_s, secure)) }
        }
    }
}

/// The `Set-Cookie` value for a voter: HttpOnly so scripts cannot read it, SameSite=Lax so
/// other sites cannot vote on a guest's behalf, valid for as long as events are kept.
pub fn voter_cookie(id: VoterId, max_age_s: u64, secure: bool) -> HeaderValue {
    let max_age = cookie::time::Duration::seconds(i64::try_from(max_age_s).unwrap_or(i64::MAX));
    let cookie = Cookie::build((VOTER_COOKIE, id.to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(max_age)
        .secure(secure)
        .build();
    // A ULID and fixed attribute names are always valid header text.
    HeaderValue::try_from(cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static("voter=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderMap};

    #[test]
    fn a_well_formed_cookie_is_kept_and_anything_else_replaced() {
        let id = VoterId::random();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("a=b; voter={id}; c=d")).unwrap());
        let kept = voter(voter_from_cookies(&headers), 60, false);
        assert_eq!(kept.id, id);
        assert!(kept.set_cookie.is_none());

        headers.insert(header::COOKIE, HeaderValue::from_static("voter=garbage"));
        let fresh = voter(voter_from_cookies(&headers), 60, true);
        assert_ne!(fresh.id, id);
        let cookie = fresh.set_cookie.unwrap();
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.starts_with(&format!("voter={}", fresh.id)), "{cookie}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60", "Secure"] {
            assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
        }
        assert!(!voter_cookie(id, 60, false).to_str().unwrap().contains("Secure"));
    }
}
