//! Who a request comes from, as the host determined it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
#[cfg(test)]
use axum::http::HeaderValue;

/// The network address a request came from, as the host determined it: the connection's
/// peer (`serve`), the last address a trusted proxy appended to `X-Forwarded-For` (`serve
/// --trust-forwarded-for`), or API Gateway's `sourceIp` (Lambda). The host inserts it as a
/// request extension; rate limits and stream budgets key on it. A request whose host set
/// none (a test calling the router directly) comes from the unspecified address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key a client's allowances (rate limits, stream budgets) are counted under: an
    /// IPv4 address as is; an IPv6 address by its /64 prefix, since one host usually holds a
    /// whole /64 and keying by the full address would let one guest rotate through 2^64
    /// keys; an IPv4-mapped IPv6 address as its IPv4 address.
    pub fn key(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(_) => self.0,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            },
        }
    }

    /// Where a request on a connection from `peer` comes from. With `trust_forwarded_for`
    /// (only behind a proxy that appends the address it saw), the last well-formed address
    /// of the last `X-Forwarded-For` header: the earlier ones are whatever the client wrote.
    pub fn of(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> Self {
        if trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|last| last.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return Self(ip);
            }
        }
        Self(peer.ip())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| ClientAddr(c.0.ip())))
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_counts_by_its_ipv4_address_or_its_ipv6_64_prefix() {
        let key = |s: &str| ClientAddr(s.parse().expect("ip")).key();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(key("192.0.2.7").to_string(), "192.0.2.7");
    }

    #[test]
    fn the_forwarded_address_counts_only_when_trusted_and_only_the_last_one() {
        let peer: SocketAddr = "10.0.0.9:4000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 2.2.2.2"));
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        assert_eq!(ClientAddr::of(peer, &headers, false).0.to_string(), "10.0.0.9");
        assert_eq!(ClientAddr::of(peer, &headers, true).0.to_string(), "203.0.113.7");
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(ClientAddr::of(peer, &headers, true).0.to_string(), "10.0.0.9");
    }
}
