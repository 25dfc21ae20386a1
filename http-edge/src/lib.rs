//! The HTTP edge the two HTTP roles share, so that ingest and query refuse, log, count and
//! time out requests the same way: the layer stack their routes run in ([`with_edge`]),
//! refusals as JSON ([`error_response`], [`PathParams`], [`refusals_from_store_and_ids!`]),
//! who a request comes from ([`ClientAddr`], and on AWS whether it came through the CDN:
//! [`OriginVerify`]), and which voter it carries ([`VoterCookie`]).

mod client_addr;
mod layers;
mod origin;
mod refusal;
mod settings_wire;
mod voter_cookie;

pub use client_addr::ClientAddr;
pub use layers::{observe, request_span, with_edge, NoStore, REQUEST_TIMEOUT_MS};
pub use origin::{OriginVerify, ORIGIN_VERIFY_ENV, ORIGIN_VERIFY_HEADER, ORIGIN_VERIFY_MIN_LEN};
pub use refusal::{error_response, json_error_body, panic_response, PathParams};
pub use settings_wire::settings_json;
pub use voter_cookie::{voter_from_cookies, VoterCookie, VOTER_COOKIE};
