//! The screenshot check on arbitrary bytes: never panics, never reads out of bounds, and what it
//! accepts starts and ends like a JPEG and declares dimensions within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use worktrail_shared::jpeg::{MAX_SIDE, dimensions};

fuzz_target!(|data: &[u8]| {
    if let Ok((w, h)) = dimensions(data) {
        assert!(data.starts_with(&[0xFF, 0xD8, 0xFF]) && data.ends_with(&[0xFF, 0xD9]));
        assert!((1..=MAX_SIDE).contains(&w) && (1..=MAX_SIDE).contains(&h));
    }
});
