//! Bearer secrets (polling tokens, API keys): drawn from a CSPRNG, kept only as SHA-256 digests, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new secret: `prefix` then 256 random bits, base64url.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A short random id such as `app_9f2c4e1a0b3d5f67`: unique, not secret.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// `N` bytes from the CSPRNG, for choices a person makes (number matching's numbers).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A PIN of `digits` decimal digits, uniform (leading zeros kept), for a person to read and type.
pub fn pin(digits: u32) -> String {
    use rand::Rng;
    let n = rand::rng().random_range(0..10u64.pow(digits));
    format!("{n:0width$}", width = digits as usize)
}

/// The lower-case hex SHA-256 of a secret. Secrets here carry 256 bits of entropy, so a fast hash
/// is enough: there is nothing for a password-hashing function to slow down.
pub fn digest(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

/// Whether two digests are the same, in time independent of where they differ.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether `secret` hashes to `expected_digest`, in time independent of where they differ.
pub fn matches(secret: &str, expected_digest: &str) -> bool {
    digest(secret)
        .as_bytes()
        .ct_eq(expected_digest.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_verifiable() {
        let a = generate("pt_");
        let b = generate("pt_");
        assert_ne!(a, b);
        assert!(a.starts_with("pt_") && a.len() == 3 + 43, "{a}");
        let d = digest(&a);
        assert_eq!(d.len(), 64);
        assert!(matches(&a, &d));
        assert!(!matches(&b, &d));
        assert!(!matches(&a, ""));
    }

    #[test]
    fn pins_are_digits_of_the_asked_length() {
        for _ in 0..200 {
            let pin = pin(6);
            assert_eq!(pin.len(), 6);
            assert!(pin.chars().all(|c| c.is_ascii_digit()), "{pin}");
        }
    }

    #[test]
    fn ids_are_hex() {
        let id = random_id("app_");
        assert_eq!(id.len(), 4 + 16);
        assert!(
            id[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
