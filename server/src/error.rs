//! `ApiError`: the one error type of the HTTP boundary. It becomes `{code, message}` with the
//! status of its stable code; for 5xx the body says nothing internal and the cause is logged once.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use worktrail_shared::{ErrorBody, ErrorCode};

use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with a stable code and a message safe to show to the user.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after_secs: None }
    }

    /// `429 rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: format!("too many requests; retry in {retry_after_secs} s"),
            retry_after_secs: Some(retry_after_secs),
        }
    }

    /// A server-side failure: logs `cause` once and answers a body without internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error; the cause is in the server log")
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::new(ErrorCode::NotFound, what),
            StoreError::Conflict(what) => ApiError::new(ErrorCode::Conflict, what),
            StoreError::SeatLimitReached => ApiError::new(
                ErrorCode::SeatLimitReached,
                "every seat of the company's plan is taken; ask the admin to free one or upgrade",
            ),
            StoreError::DeviceRevoked(why) => ApiError::new(ErrorCode::DeviceRevoked, why),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response =
            (status, Json(ErrorBody { code: self.code, message: self.message })).into_response();
        // For the usage counters: the outcome of the call, without parsing the body.
        response.extensions_mut().insert(self.code);
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
