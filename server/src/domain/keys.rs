//! Company keys and device tokens on the server side: generation from the OS's secure random
//! source and the hash that is the only thing stored. Secrets carry ≥ 128 random bits, so a
//! single SHA-256 is enough (a slow password hash buys nothing against a 178-bit search space).

use sha2::{Digest, Sha256};
use worktrail_shared::secret::{CompanyKey, DeviceToken};

/// A 32-byte SHA-256 of a secret's full text.
pub type SecretHash = Vec<u8>;

fn fill_secure(buf: &mut [u8]) {
    use rand::RngCore;
    // ThreadRng is a CSPRNG seeded (and periodically reseeded) from the OS.
    rand::rng().fill_bytes(buf);
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new random company key.
pub fn new_company_key() -> CompanyKey {
    CompanyKey::generate(fill_secure)
}

/// A new random device token.
pub fn new_device_token() -> DeviceToken {
    DeviceToken::generate(fill_secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_are_well_formed_distinct_and_hash_to_32_bytes() {
        let a = new_company_key();
        let b = new_company_key();
        assert_ne!(a, b);
        assert!(CompanyKey::parse(a.expose()).is_ok());
        assert!(DeviceToken::parse(new_device_token().expose()).is_ok());
        assert_eq!(hash_secret(a.expose()).len(), 32);
        assert_ne!(hash_secret(a.expose()), hash_secret(b.expose()));
    }
}
