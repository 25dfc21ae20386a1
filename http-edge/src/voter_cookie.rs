//! The voter cookie, read: the opaque voter id a guest's browser carries in the HttpOnly
//! cookie `voter` (ingest mints it on a guest's first write, `ingest/src/voter.rs`). Both
//! roles read it: ingest to attribute a write, query to answer a guest's own view.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use cookie::Cookie;
use ledger::VoterId;

pub const VOTER_COOKIE: &str = "voter";

/// The voter id carried by the request's cookies, if one is present and well-formed.
pub fn voter_from_cookies(headers: &HeaderMap) -> Option<VoterId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == VOTER_COOKIE)
        .find_map(|c| c.value().parse().ok())
}

/// The voter id the request's cookies carry, as an extractor: it reads the headers where
/// they are, where taking a whole `HeaderMap` would copy every header of every request.
pub struct VoterCookie(pub Option<VoterId>);

impl<S: Send + Sync> FromRequestParts<S> for VoterCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(voter_from_cookies(&parts.headers)))
    }
}
