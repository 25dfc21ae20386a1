//! Host secrets: stored only as a SHA-256 hash, compared in constant time, never logged.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub type SecretHash = [u8; 32];

pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `secret` is the one `hash` was made from, in time independent of where they differ.
pub fn secret_matches(secret: &str, hash: &SecretHash) -> bool {
    hash_secret(secret).ct_eq(hash).into()
}

/// Who a secret in a host route makes its bearer: the event's host, or one of its co-hosts
/// (who may moderate but not change settings nor mint or revoke co-host links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Host,
    Cohost,
}

/// The capability `secret` carries for an event whose host secret hashes to `host` and
/// whose own records say `state` (co-host links), if any. Every comparison is constant-time.
pub fn capability(secret: &str, host: &SecretHash, state: &crate::fold::EventState) -> Option<Capability> {
    if secret_matches(secret, host) {
        Some(Capability::Host)
    } else if state.cohost_matches(secret) {
        Some(Capability::Cohost)
    } else {
        None
    }
}

/// A fresh host secret: 128 random bits, as 32 lowercase hex digits (URL-safe).
pub fn new_secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_secret_matches() {
        let s = new_secret();
        let h = hash_secret(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches("wrong", &h));
        assert_ne!(new_secret(), s);
    }

    #[test]
    fn a_cohost_link_is_valid_from_minted_until_revoked() {
        use crate::fold::EventState;
        use crate::ids::{EventId, RecordId};
        use crate::record::RecordBody;
        let (host, cohost) = (new_secret(), new_secret());
        let mut state = EventState::new(EventId::from_u128(1));
        assert_eq!(capability(&host, &hash_secret(&host), &state), Some(Capability::Host));
        assert_eq!(capability(&cohost, &hash_secret(&host), &state), None);
        state.apply(RecordId::from_u128(2), &RecordBody::CohostMinted { secret_hash: hash_secret(&cohost) });
        assert_eq!(capability(&cohost, &hash_secret(&host), &state), Some(Capability::Cohost));
        assert_eq!(capability("guess", &hash_secret(&host), &state), None);
        state.apply(RecordId::from_u128(3), &RecordBody::CohostRevoked { secret_hash: hash_secret(&cohost) });
        assert_eq!(capability(&cohost, &hash_secret(&host), &state), None);
        state.apply(RecordId::from_u128(4), &RecordBody::CohostMinted { secret_hash: hash_secret(&cohost) });
        assert_eq!(capability(&cohost, &hash_secret(&host), &state), None, "a revocation is final");
    }
}
