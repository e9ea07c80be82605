//! Liveness and readiness probes.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use worktrail_shared::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// `/healthz` (the process answers), `/readyz` (the database answers too) and `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(ErrorCode::Unavailable, "the database does not answer")
    })?;
    Ok("ready")
}
