//! `worktrail-server`: the multi-tenant HTTP server. [`router`] builds the axum app over an
//! [`AppState`]; [`launch`] opens storage from a [`Config`] and serves until shut down. The
//! binary (`main.rs`) is only the CLI over these and [`provision`].

pub mod auth;
pub mod body;
pub mod clock;
pub mod demo;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod objects;
pub mod portal;
pub mod provision;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod store;
pub mod usage;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use clock::Clock;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use worktrail_shared::{AGENT_API_PREFIX, ErrorCode};

pub use error::ApiError;
pub use state::AppState;

/// Where and how the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the embedded database and local objects.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; defaults to SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL URL of the schema owner, for migrations (the server then serves as the
    /// `database_url` role, confined by row-level security).
    pub migrate_url: Option<String>,
    /// Screenshots in an S3-compatible bucket; files under `data_dir/objects` when `None`.
    pub s3: Option<objects::S3Config>,
    /// Longest time a request may take, body included.
    pub request_timeout: Duration,
    /// Rate limits of the agent API.
    pub rate_limits: ratelimit::RateLimits,
}

impl Config {
    /// Defaults: `127.0.0.1:8080`, `./worktrail-data`, embedded SQLite.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: data_dir.into(),
            database_url: None,
            migrate_url: None,
            s3: None,
            request_timeout: Duration::from_secs(30),
            rate_limits: ratelimit::RateLimits::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    /// The object storage could not be set up or does not answer.
    #[error("object storage: {0}")]
    Objects(std::io::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Opens the data directory and database (running migrations) and builds the state.
pub async fn open_state(config: &Config) -> Result<AppState, LaunchError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| LaunchError::DataDir { path: config.data_dir.clone(), source })?;
    let data_dir = config.data_dir.canonicalize().unwrap_or_else(|_| config.data_dir.clone());
    let url = config
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("worktrail.db").display()));
    let store = store::open_with(&url, config.migrate_url.as_deref()).await?;
    let objects = match &config.s3 {
        None => objects::Objects::local(data_dir.join("objects")),
        Some(s3) => objects::Objects::s3(s3),
    }
    .map_err(LaunchError::Objects)?;
    objects.check().await.map_err(LaunchError::Objects)?;
    let objects: Arc<dyn objects::ObjectStore> = Arc::new(objects);
    // A fresh installation starts with the default plans, so `company create` works at once.
    if store.list_plans().await?.is_empty() {
        provision::seed_default_plans(store.as_ref(), clock::SystemClock.now_ms()).await?;
    }
    Ok(AppState::new(
        store,
        objects,
        Arc::new(clock::SystemClock),
        config.rate_limits,
        config.request_timeout,
    ))
}

/// The portal's routes (pages, forms, JSON API), with cross-site state changes refused.
fn portal_router() -> Router<AppState> {
    let mut router = Router::new();
    for r in portal::routes() {
        router = router.route(r.path, r.handler);
    }
    router.layer(middleware::from_fn(auth::guard::refuse_cross_site))
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(portal_router())
        .nest(
            AGENT_API_PREFIX,
            routes::agent::router()
                .layer(middleware::from_fn_with_state(state.clone(), count_agent_calls)),
        )
        .merge(routes::health::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), limit_time))
        .layer(middleware::from_fn(auth::guard::security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
            tracing::info_span!(
                "http",
                http.method = %req.method(),
                http.route = route.as_deref().unwrap_or("unmatched"),
                company.id = tracing::field::Empty,
            )
        }))
        .layer(CatchPanicLayer::custom(|_| {
            metrics::handler_panicked();
            ApiError::internal("a request handler panicked").into_response()
        }))
        .with_state(state)
}

/// Counts each agent call's outcome: per company for the usage rollup (when the key proved a
/// company), and in the process metrics.
async fn count_agent_calls(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let slot = usage::CompanySlot::default();
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    let code = response.extensions().get::<ErrorCode>().map_or("ok", |c| c.as_str());
    state.metrics.agent_answer(code);
    if let Some(company) = slot.0.get() {
        state.requests.add(*company, state.now_ms(), code);
    }
    response
}

/// Bounds each request's whole life (including reading its body) by the configured timeout.
async fn limit_time(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(ErrorCode::RequestTimeout, "the request took too long").into_response()
        }
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, LaunchError> {
    TcpListener::bind(addr).await.map_err(|source| LaunchError::Bind { addr, source })
}

/// Serves the app on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
