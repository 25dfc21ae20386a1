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
}
