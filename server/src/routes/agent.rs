//! The agent API (`/api/v1/agent`): enrolment, batches, screenshots, policy, tasks, sign-in links
//! ([`super::signin`]). Every handler's
//! company and device come from the gate's extractors.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use worktrail_shared::api::{
    AgentTask, BatchAck, BatchRequest, EnrollRequest, EnrollResponse, PolicyResponse,
    ScreenshotAck, TasksResponse,
};
use worktrail_shared::limits::{MAX_BATCH_BYTES, MAX_SCREENSHOT_BYTES, MAX_SMALL_BODY_BYTES};
use worktrail_shared::policy::Policy;
use worktrail_shared::{ErrorCode, RecordId};

use crate::auth::agent::{CompanyCtx, DeviceCtx};
use crate::body::{read_decoded, read_raw};
use crate::domain::keys::{hash_secret, new_device_token};
use crate::error::ApiError;
use crate::objects::screenshot_key;
use crate::state::AppState;
use crate::store::{AttachOutcome, BatchMeta, Enrollment, IngestOutcome, ScreenshotUpload};

/// The agent routes, relative to `/api/v1/agent`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enroll", post(enroll))
        .route("/batches", post(batches))
        .route("/screenshots/{id}", put(screenshot))
        .route("/policy", get(policy))
        .route("/signin-link", post(crate::routes::signin::mint))
        .route("/tasks", get(tasks))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn clean_field(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(bad(format!("{name} must be at most {max} bytes without control characters")));
    }
    Ok(value.to_owned())
}

/// The employee identity of an enrolment: the e-mail given, or `os_user@hostname`.
fn employee_email(req: &EnrollRequest) -> Result<String, ApiError> {
    let email = match req.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => e.to_lowercase(),
        None => format!("{}@{}", req.os_user.trim(), req.hostname.trim()).to_lowercase(),
    };
    let valid = email.len() <= 254
        && email.split('@').count() == 2
        && email.split('@').all(|part| !part.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(bad(format!("{email:?} is not a valid e-mail address")));
    }
    Ok(email)
}

fn effective_policy(mut policy: Policy, company: &CompanyCtx) -> Policy {
    if !company.screenshots_allowed {
        policy.screenshots.enabled = false;
    }
    policy
}

async fn enroll(
    State(state): State<AppState>,
    company: CompanyCtx,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiError> {
    state
        .limiter
        .check(company.company_id.0, None, state.now_ms())
        .map_err(ApiError::rate_limited)?;
    let raw = read_decoded(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let req: EnrollRequest =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("invalid enrolment: {e}")))?;
    let email = employee_email(&req)?;
    let os_user = clean_field("os_user", &req.os_user, 256)?;
    let token = new_device_token();
    let enrollment = Enrollment {
        device_id: req.device_id,
        display_name: if os_user.is_empty() { email.clone() } else { os_user.clone() },
        email,
        hostname: clean_field("hostname", &req.hostname, 256)?,
        os: clean_field("os", &req.os, 256)?,
        os_user,
        agent_version: clean_field("agent_version", &req.agent_version, 64)?,
        token_hash: hash_secret(token.expose()),
        token_prefix: token.display_prefix().to_owned(),
    };
    let now = state.now_ms();
    let employee =
        state.store.enroll_device(company.company_id, &enrollment, company.max_seats, now).await?;
    let row = state
        .store
        .company(company.company_id)
        .await?
        .ok_or_else(|| ApiError::internal("company vanished during enrolment"))?;
    tracing::info!(company.id = %company.company_id, device.id = %req.device_id, "device enrolled");
    Ok(Json(EnrollResponse {
        company_id: company.company_id,
        company_name: row.name,
        employee_id: employee,
        device_id: req.device_id,
        device_token: token.expose().to_owned(),
        policy: effective_policy(row.policy, &company),
    }))
}

/// The identity of a batch for idempotency: its records and drop counts, not its send time
/// (a retry may be re-stamped). The SHA-256 of their JSON, written straight into the hasher.
fn batch_hash(batch: &BatchRequest) -> Result<Vec<u8>, ApiError> {
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, &(&batch.records, &batch.dropped))
        .map_err(ApiError::internal)?;
    Ok(hasher.finalize().to_vec())
}

async fn batches(
    State(state): State<AppState>,
    ctx: DeviceCtx,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BatchAck>, ApiError> {
    let raw = read_decoded(&headers, body, MAX_BATCH_BYTES).await?;
    let batch = BatchRequest::decode(&raw)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBatch, format!("invalid batch: {}", e.0)))?;
    let meta = BatchMeta {
        body_hash: batch_hash(&batch)?,
        body_bytes: raw.len() as i64,
        now_ms: state.now_ms(),
    };
    match state.store.ingest_batch(ctx.company.company_id, &ctx.device, batch, &meta).await? {
        IngestOutcome::Acknowledged(ack) => Ok(Json(ack)),
        IngestOutcome::Conflict => Err(ApiError::new(
            ErrorCode::BatchConflict,
            "this batch id was already used with a different body",
        )),
    }
}

async fn screenshot(
    State(state): State<AppState>,
    ctx: DeviceCtx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ScreenshotAck>, ApiError> {
    let id: RecordId = id.parse().map_err(|_| bad("the screenshot id is not a UUID"))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type.map(|c| c.split(';').next().unwrap_or("").trim()) != Some("image/jpeg") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send Content-Type: image/jpeg",
        ));
    }
    if headers.contains_key(header::CONTENT_ENCODING) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "screenshots are sent without Content-Encoding (JPEG is already compressed)",
        ));
    }
    let bytes = read_raw(&headers, body, MAX_SCREENSHOT_BYTES).await?;
    worktrail_shared::jpeg::dimensions(&bytes).map_err(bad)?;
    let sha = Sha256::digest(&bytes).to_vec();
    let (company, device) = (ctx.company.company_id, ctx.device.id);
    let ack = ScreenshotAck { id, bytes: bytes.len() as u64 };
    let conflict =
        || ApiError::new(ErrorCode::Conflict, "different bytes were uploaded for this id");
    match state.store.screenshot_state(company, device, id).await? {
        None => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "no batch announced this screenshot; send its metadata record first",
            ));
        }
        Some((_, Some(stored))) if stored == sha => {
            state.store.touch_device(company, device, state.now_ms()).await?;
            return Ok(Json(ack));
        }
        Some((_, Some(_))) => return Err(conflict()),
        Some((expected, None)) if expected != bytes.len() as i64 => {
            return Err(bad(format!(
                "the upload has {} bytes but its record announced {expected}",
                bytes.len()
            )));
        }
        Some(_) => {}
    }
    let key = screenshot_key(company, id, &sha);
    state.objects.put(&key, &bytes).await.map_err(ApiError::internal)?;
    let upload = ScreenshotUpload {
        object_key: key.clone(),
        bytes: bytes.len() as i64,
        sha256: sha,
        now_ms: state.now_ms(),
    };
    match state.store.attach_screenshot(company, device, id, &upload).await? {
        AttachOutcome::Stored => Ok(Json(ack)),
        AttachOutcome::Conflict => {
            // A concurrent upload of other bytes won; ours is an orphan under its own key.
            state.objects.delete(&key).await.map_err(ApiError::internal)?;
            Err(conflict())
        }
        AttachOutcome::UnknownScreenshot | AttachOutcome::SizeMismatch { .. } => {
            Err(ApiError::internal("screenshot row changed during upload"))
        }
    }
}

async fn policy(
    State(state): State<AppState>,
    ctx: DeviceCtx,
) -> Result<Json<PolicyResponse>, ApiError> {
    let company = state
        .store
        .company(ctx.company.company_id)
        .await?
        .ok_or_else(|| ApiError::internal("company vanished"))?;
    let now = state.now_ms();
    state.store.touch_device(ctx.company.company_id, ctx.device.id, now).await?;
    Ok(Json(PolicyResponse {
        policy: effective_policy(company.policy, &ctx.company),
        time_zone: company.time_zone,
        server_time_ms: now,
    }))
}

/// The company's open tasks, for the agent's task choice (empty: the company uses no tasks).
async fn tasks(
    State(state): State<AppState>,
    ctx: DeviceCtx,
) -> Result<Json<TasksResponse>, ApiError> {
    let company = ctx.company.company_id;
    let tasks = state
        .store
        .tasks(company)
        .await?
        .into_iter()
        .filter(|t| !t.archived)
        .map(|t| AgentTask { id: t.id, project: t.project, name: t.name })
        .collect();
    state.store.touch_device(company, ctx.device.id, state.now_ms()).await?;
    Ok(Json(TasksResponse { tasks }))
}
