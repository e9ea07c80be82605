//! Company-key and device-token parsing on arbitrary text: never panics; whatever parses keeps
//! its prefix and parses again to the same secret, and its display prefix is a prefix of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use worktrail_shared::secret::{CompanyKey, DeviceToken};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = CompanyKey::parse(text) {
        assert!(key.expose().starts_with(CompanyKey::PREFIX));
        assert!(key.expose().starts_with(key.display_prefix()));
        assert!(CompanyKey::parse(key.expose()).is_ok_and(|again| again == key));
        assert!(DeviceToken::parse(text).is_err(), "a key is never also a token");
    }
    if let Ok(token) = DeviceToken::parse(text) {
        assert!(token.expose().starts_with(DeviceToken::PREFIX));
        assert!(DeviceToken::parse(token.expose()).is_ok_and(|again| again == token));
    }
});
