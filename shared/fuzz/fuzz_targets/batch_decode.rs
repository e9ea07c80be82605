//! The server's batch decoder on arbitrary bytes: it never panics, and a batch it accepts
//! survives a round trip through its own encoding unchanged (so the stored body hash is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use worktrail_shared::api::BatchRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = BatchRequest::decode(data) {
        let again = serde_json::to_vec(&batch).expect("an accepted batch encodes");
        let decoded = BatchRequest::decode(&again).expect("an accepted batch decodes again");
        assert_eq!(decoded, batch);
    }
});
