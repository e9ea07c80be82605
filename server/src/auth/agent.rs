//! The agent gate, in SPEC 4.3's order:
//! 1. `X-Company-Key` well formed (checked before any query), known, not revoked or expired → 401;
//! 2. company not suspended → 403;
//! 3. subscription in good standing at `now` → 402;
//! 4. device token of this company, not revoked → 401 (not for enrolment);
//! 5. rate limits per company and device → 429.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use worktrail_shared::secret::{CompanyKey, DeviceToken};
use worktrail_shared::{COMPANY_KEY_HEADER, CompanyId, CompanyKeyId, ErrorCode};

use crate::domain::keys::hash_secret;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::DeviceAuth;

/// A request whose company key passed steps 1–3.
#[derive(Clone, Debug)]
pub struct CompanyCtx {
    /// The company the key proves.
    pub company_id: CompanyId,
    /// The key used.
    pub key_id: CompanyKeyId,
    /// The plan's seat limit.
    pub max_seats: i64,
    /// Whether the plan allows screenshots.
    pub screenshots_allowed: bool,
}

/// A request that passed the whole gate (steps 1–5) as an enrolled device.
#[derive(Clone, Debug)]
pub struct DeviceCtx {
    /// The company.
    pub company: CompanyCtx,
    /// The device.
    pub device: DeviceAuth,
}

fn reject(code: ErrorCode, message: &str) -> ApiError {
    tracing::info!(error.code = %code, "agent request rejected");
    ApiError::new(code, message)
}

impl FromRequestParts<AppState> for CompanyCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let invalid = |why: &str| reject(ErrorCode::InvalidCompanyKey, why);
        let header = parts
            .headers
            .get(COMPANY_KEY_HEADER)
            .ok_or_else(|| invalid("the X-Company-Key header is missing"))?;
        let text = header.to_str().map_err(|_| invalid("the company key is not text"))?;
        let key = CompanyKey::parse(text)
            .map_err(|e| invalid(&format!("the company key is malformed: {e}")))?;
        let gate = state
            .store
            .gate_by_key_hash(&hash_secret(key.expose()))
            .await?
            .ok_or_else(|| invalid("the company key is not known"))?;
        let now = state.now_ms();
        if gate.revoked_at_ms.is_none() && gate.expires_at_ms.is_none_or(|at| now < at) {
            // The key proves the company: later rejections (steps 2–5) count against it.
            if let Some(slot) = parts.extensions.get::<crate::usage::CompanySlot>() {
                let _ = slot.0.set(gate.company_id);
            }
        }
        if gate.revoked_at_ms.is_some() {
            return Err(invalid("the company key was revoked"));
        }
        if gate.expires_at_ms.is_some_and(|at| now >= at) {
            return Err(invalid("the company key was rotated and its grace period is over"));
        }
        gate.subscription
            .gate(gate.suspended_at_ms.is_some(), now)
            .map_err(|code| reject(code, gate_message(code)))?;
        tracing::Span::current().record("company.id", tracing::field::display(gate.company_id));
        Ok(CompanyCtx {
            company_id: gate.company_id,
            key_id: gate.key_id,
            max_seats: gate.max_seats,
            screenshots_allowed: gate.screenshots_allowed,
        })
    }
}

fn gate_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::CompanySuspended => "the company's account is suspended; contact your provider",
        ErrorCode::TrialExpired => "the company's trial has ended; the admin can choose a plan",
        ErrorCode::SubscriptionExpired => "the company's subscription has expired",
        ErrorCode::SubscriptionCancelled => "the company's subscription was cancelled",
        _ => "the company cannot use the service right now",
    }
}

impl FromRequestParts<AppState> for DeviceCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let company = CompanyCtx::from_request_parts(parts, state).await?;
        let unknown = |why: &str| reject(ErrorCode::DeviceUnknown, why);
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unknown("the Authorization: Bearer <device token> header is missing"))?;
        let token = DeviceToken::parse(bearer)
            .map_err(|e| unknown(&format!("the device token is malformed: {e}")))?;
        let device = state
            .store
            .device_by_token_hash(company.company_id, &hash_secret(token.expose()))
            .await?
            .ok_or_else(|| {
                unknown("this device is not enrolled in this company; enrol it again")
            })?;
        if device.revoked_at_ms.is_some() {
            return Err(reject(
                ErrorCode::DeviceRevoked,
                "this device was revoked by the company's admin",
            ));
        }
        state
            .limiter
            .check(company.company_id.0, Some(device.id.0), state.now_ms())
            .map_err(ApiError::rate_limited)?;
        Ok(DeviceCtx { company, device })
    }
}
