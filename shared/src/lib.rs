//! The wire contract between the Worktrail agent and server.
//!
//! This crate holds only types and pure functions: ids, the agent API request and response bodies,
//! the stable error codes, header names, size limits and the company-key / device-token format.
//! It does no I/O, so both sides (and their tests) can depend on it without pulling in a runtime.

pub mod api;
pub mod error;
pub mod ids;
pub mod jpeg;
pub mod limits;
pub mod policy;
pub mod secret;

pub use error::{ErrorBody, ErrorCode};
pub use ids::*;

/// Header carrying the company key on every agent request.
pub const COMPANY_KEY_HEADER: &str = "x-company-key";
/// Header carrying the device token (`Bearer <token>`) on every agent request after enrolment.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// Path prefix of the agent API.
pub const AGENT_API_PREFIX: &str = "/api/v1/agent";
