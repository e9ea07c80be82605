//! The error body every Worktrail API returns, and its stable codes.
//!
//! Clients branch on [`ErrorCode`], never on the message text. Codes are only ever added, never
//! renamed; an unknown code from a newer server deserialises as [`ErrorCode::Unknown`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable, machine-readable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The company key is malformed, unknown, revoked or past its rotation grace (401).
    InvalidCompanyKey,
    /// The company is suspended by the operator (403).
    CompanySuspended,
    /// The company's trial has ended (402).
    TrialExpired,
    /// The paid period and its grace have ended (402).
    SubscriptionExpired,
    /// The subscription was cancelled (402).
    SubscriptionCancelled,
    /// The device token is missing, malformed or not a device of this company (401).
    DeviceUnknown,
    /// The device was revoked by an admin (401).
    DeviceRevoked,
    /// Enrolling one more employee would exceed the plan's seats (402).
    SeatLimitReached,
    /// Too many requests; retry after the `Retry-After` seconds (429).
    RateLimited,
    /// The body is larger than the limit for this endpoint (413).
    PayloadTooLarge,
    /// The batch is not valid JSON of the expected shape, or breaks a record rule (422).
    InvalidBatch,
    /// The batch id was already used with a different body (409).
    BatchConflict,
    /// The request is malformed (400).
    InvalidRequest,
    /// The body's media type or content encoding is not supported (415).
    UnsupportedMediaType,
    /// The addressed resource does not exist in this company (404).
    NotFound,
    /// The resource exists with different content (409).
    Conflict,
    /// The request took longer than the server allows (408).
    RequestTimeout,
    /// Something failed on the server; the cause is in its log, not in this body (500).
    Internal,
    /// The server is not ready to serve (503).
    Unavailable,
    /// No valid session: sign in first (401).
    Unauthenticated,
    /// Signed in, but this role may not do this, or a cross-site request was refused (403).
    Forbidden,
    /// A code this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server can send, in documentation order.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidCompanyKey,
        ErrorCode::CompanySuspended,
        ErrorCode::TrialExpired,
        ErrorCode::SubscriptionExpired,
        ErrorCode::SubscriptionCancelled,
        ErrorCode::DeviceUnknown,
        ErrorCode::DeviceRevoked,
        ErrorCode::SeatLimitReached,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidBatch,
        ErrorCode::BatchConflict,
        ErrorCode::InvalidRequest,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RequestTimeout,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
    ];

    /// The HTTP status this code is sent with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidCompanyKey | ErrorCode::DeviceUnknown | ErrorCode::DeviceRevoked => {
                401
            }
            ErrorCode::CompanySuspended | ErrorCode::Forbidden => 403,
            ErrorCode::TrialExpired
            | ErrorCode::SubscriptionExpired
            | ErrorCode::SubscriptionCancelled
            | ErrorCode::SeatLimitReached => 402,
            ErrorCode::RateLimited => 429,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::InvalidBatch => 422,
            ErrorCode::BatchConflict | ErrorCode::Conflict => 409,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::NotFound => 404,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Unauthenticated => 401,
        }
    }

    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCompanyKey => "invalid_company_key",
            ErrorCode::CompanySuspended => "company_suspended",
            ErrorCode::TrialExpired => "trial_expired",
            ErrorCode::SubscriptionExpired => "subscription_expired",
            ErrorCode::SubscriptionCancelled => "subscription_cancelled",
            ErrorCode::DeviceUnknown => "device_unknown",
            ErrorCode::DeviceRevoked => "device_revoked",
            ErrorCode::SeatLimitReached => "seat_limit_reached",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::BatchConflict => "batch_conflict",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// True when the agent must stop capturing and wait for an operator or admin to act
    /// (401, 402 and 403 answers), rather than retry.
    pub fn blocks_agent(self) -> bool {
        matches!(self.http_status(), 401..=403)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response: `{"code": "...", "message": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code to branch on.
    pub code: ErrorCode,
    /// A human-readable explanation, safe to show to the user; never contains secrets.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_spelling() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn an_unknown_code_deserialises_as_unknown() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"from_the_future","message":"x"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::Unknown);
    }

    #[test]
    fn gate_codes_have_the_statuses_of_the_spec() {
        assert_eq!(ErrorCode::InvalidCompanyKey.http_status(), 401);
        assert_eq!(ErrorCode::CompanySuspended.http_status(), 403);
        assert_eq!(ErrorCode::TrialExpired.http_status(), 402);
        assert_eq!(ErrorCode::SubscriptionExpired.http_status(), 402);
        assert_eq!(ErrorCode::SubscriptionCancelled.http_status(), 402);
        assert_eq!(ErrorCode::DeviceRevoked.http_status(), 401);
        assert_eq!(ErrorCode::DeviceUnknown.http_status(), 401);
        assert_eq!(ErrorCode::SeatLimitReached.http_status(), 402);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert!(ErrorCode::TrialExpired.blocks_agent());
        assert!(!ErrorCode::RateLimited.blocks_agent());
    }
}
