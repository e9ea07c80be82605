//! Size limits shared by agent and server: the agent builds batches within them and the server
//! rejects anything beyond them with `payload_too_large` or `invalid_batch`.

/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes of a batch body, both as sent (compressed) and once decompressed.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Most bytes of one uploaded screenshot (one monitor, JPEG).
pub const MAX_SCREENSHOT_BYTES: usize = 4 * 1024 * 1024;
/// Most bytes of any other agent request body (enrolment).
pub const MAX_SMALL_BODY_BYTES: usize = 16 * 1024;
/// Longest text field (title, URL, app name) accepted in a record, in bytes.
pub const MAX_TEXT_BYTES: usize = 2048;
/// Longest span the server accepts, in milliseconds (a span longer than a day is a clock bug).
pub const MAX_SPAN_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a sign-in link for "Open my dashboard" works, in milliseconds (it also works once).
pub const SIGNIN_LINK_TTL_MS: i64 = 60 * 1000;
