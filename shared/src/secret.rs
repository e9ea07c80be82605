//! The format of company keys and device tokens, and the types that carry them.
//!
//! A secret is `<prefix><30 base62 characters><6 base62 characters of CRC-32>`, for example
//! `wtk_4fQ...`. The random part carries 30 × log2(62) ≈ 178 bits. The checksum lets both sides
//! reject a mistyped or truncated secret before any database query; the prefix makes a leaked
//! secret recognisable to secret scanners.
//!
//! Secret types have no `Serialize` and no `Display`, and their `Debug` shows only the prefix:
//! the text leaves the type only through [`CompanyKey::expose`] / [`DeviceToken::expose`].

use std::fmt;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of randomness in a secret.
pub const RANDOM_CHARS: usize = 30;
/// Characters of checksum at the end of a secret.
pub const CHECKSUM_CHARS: usize = 6;
/// Characters of a secret kept, after its prefix, as its display prefix.
pub const DISPLAY_CHARS: usize = 8;

/// Why a string is not a well-formed secret of the expected kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretFormatError {
    /// It does not start with the kind's prefix.
    WrongPrefix,
    /// It has the wrong number of characters.
    WrongLength,
    /// It contains a character outside base62.
    BadCharacter,
    /// The checksum does not match: a typo or a truncated copy.
    BadChecksum,
}

impl fmt::Display for SecretFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretFormatError::WrongPrefix => "it does not start with the expected prefix",
            SecretFormatError::WrongLength => "it has the wrong length",
            SecretFormatError::BadCharacter => {
                "it contains a character that is not a letter or digit"
            }
            SecretFormatError::BadChecksum => {
                "its checksum does not match (mistyped or truncated?)"
            }
        })
    }
}

impl std::error::Error for SecretFormatError {}

fn checksum(prefix: &str, random: &str) -> String {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(prefix.as_bytes());
    hasher.update(random.as_bytes());
    let mut n = u64::from(hasher.finalize());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Builds a secret with `prefix` from a source of random bytes (`fill` must fill its buffer with
/// cryptographically secure random bytes). Rejection sampling keeps every character uniform.
fn generate(prefix: &str, mut fill: impl FnMut(&mut [u8])) -> String {
    let mut random = String::with_capacity(RANDOM_CHARS);
    let mut buf = [0u8; 64];
    while random.len() < RANDOM_CHARS {
        fill(&mut buf);
        for &b in &buf {
            // 248 = 4 × 62: bytes at or above it would bias the first characters.
            if b < 248 && random.len() < RANDOM_CHARS {
                random.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    let check = checksum(prefix, &random);
    format!("{prefix}{random}{check}")
}

fn validate(prefix: &str, s: &str) -> Result<(), SecretFormatError> {
    let body = s.strip_prefix(prefix).ok_or(SecretFormatError::WrongPrefix)?;
    if body.len() != RANDOM_CHARS + CHECKSUM_CHARS {
        return Err(SecretFormatError::WrongLength);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SecretFormatError::BadCharacter);
    }
    let (random, check) = body.split_at(RANDOM_CHARS);
    if checksum(prefix, random) != check {
        return Err(SecretFormatError::BadChecksum);
    }
    Ok(())
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The recognisable prefix of this kind of secret.
            pub const PREFIX: &'static str = $prefix;

            /// Parses and checks a secret (prefix, length, alphabet, checksum). Surrounding
            /// whitespace, as pasted from an e-mail, is ignored.
            pub fn parse(s: &str) -> Result<Self, SecretFormatError> {
                let s = s.trim();
                validate(Self::PREFIX, s)?;
                Ok(Self(s.to_owned()))
            }

            /// A new random secret; `fill` must provide cryptographically secure random bytes.
            pub fn generate(fill: impl FnMut(&mut [u8])) -> Self {
                Self(generate(Self::PREFIX, fill))
            }

            /// The full secret text, for the one place that must send or hash it.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The non-secret display prefix (the kind prefix and the first few characters),
            /// used to tell keys apart in lists.
            pub fn display_prefix(&self) -> &str {
                &self.0[..Self::PREFIX.len() + DISPLAY_CHARS]
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({}…)"), self.display_prefix())
            }
        }
    };
}

secret_type!(
    /// The key that proves an agent belongs to a company; entered by the admin at install.
    CompanyKey,
    "wtk_"
);
secret_type!(
    /// The per-device token the server issues at enrolment.
    DeviceToken,
    "wtd_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_seeds_are_a_valid_key_and_token() {
        let key = include_str!("../fuzz/seeds/secret_parse/company_key");
        let token = include_str!("../fuzz/seeds/secret_parse/device_token");
        assert!(CompanyKey::parse(key).is_ok());
        assert!(DeviceToken::parse(token).is_ok());
    }

    fn counter_rng() -> impl FnMut(&mut [u8]) {
        let mut n: u8 = 7;
        move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_mul(29).wrapping_add(17);
                *b = n;
            }
        }
    }

    #[test]
    fn a_generated_key_parses_back() {
        let key = CompanyKey::generate(counter_rng());
        assert_eq!(key.expose().len(), 4 + RANDOM_CHARS + CHECKSUM_CHARS);
        assert_eq!(CompanyKey::parse(key.expose()).unwrap(), key);
        assert_eq!(CompanyKey::parse(&format!("  {}\n", key.expose())).unwrap(), key);
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = CompanyKey::generate(counter_rng());
        let mut chars: Vec<char> = key.expose().chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(CompanyKey::parse(&typo), Err(SecretFormatError::BadChecksum));
    }

    #[test]
    fn malformed_keys_are_told_apart() {
        let key = CompanyKey::generate(counter_rng());
        assert_eq!(CompanyKey::parse("nope"), Err(SecretFormatError::WrongPrefix));
        assert_eq!(CompanyKey::parse("wtk_abc"), Err(SecretFormatError::WrongLength));
        let bad = format!("wtk_{}", "-".repeat(RANDOM_CHARS + CHECKSUM_CHARS));
        assert_eq!(CompanyKey::parse(&bad), Err(SecretFormatError::BadCharacter));
        // A device token is not a company key, even though its body is well formed.
        let token = DeviceToken::generate(counter_rng());
        assert_eq!(CompanyKey::parse(token.expose()), Err(SecretFormatError::WrongPrefix));
        assert!(DeviceToken::parse(key.expose()).is_err());
    }

    #[test]
    fn debug_shows_only_the_display_prefix() {
        let key = CompanyKey::generate(counter_rng());
        let shown = format!("{key:?}");
        assert!(shown.contains(key.display_prefix()));
        assert!(!shown.contains(&key.expose()[key.display_prefix().len()..]));
    }

    #[test]
    fn characters_are_spread_over_the_alphabet() {
        let mut seen = std::collections::HashSet::new();
        let mut rng = counter_rng();
        for _ in 0..50 {
            seen.extend(DeviceToken::generate(&mut rng).expose()[4..34].chars());
        }
        assert!(seen.len() > 50, "only {} distinct characters", seen.len());
    }
}
