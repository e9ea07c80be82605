//! Logs to a daily rolling file under `<data dir>/logs` (a week is kept), and to stderr in debug
//! builds. The agent's logs never hold secrets (the core keeps them in typed wrappers).

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Days of logs kept.
const KEEP_FILES: usize = 7;
/// Lines the background writer may hold before it drops new ones. The library's default
/// (128,000) preallocates — and touches — 4 MB for its queue, more than the rest of the tray's
/// logging needs by far: the agent writes a few lines a minute.
const BUFFERED_LINES: usize = 1024;

/// Starts logging; keep the guard alive until exit so the last lines are flushed.
pub fn init(data_dir: &Path) -> anyhow::Result<WorkerGuard> {
    let dir = data_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("worktrail-agent")
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(&dir)?;
    let (file, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .finish(appender);
    let filter =
        EnvFilter::try_from_env("WORKTRAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = cfg!(debug_assertions)
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(file))
        .with(stderr)
        .try_init()?;
    Ok(guard)
}
