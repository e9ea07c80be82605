//! The `worktrail-agentd` command line: parse, call the library, print. Output goes to stdout
//! (human text, or JSON with `--json`); logs go to stderr through `tracing`. Secrets are read from
//! flags or the environment and go straight into the secret store; they are never printed.

use crate::agent::{Agent, AgentStatus, Probes};
use crate::clock::{Clock, SystemClock};
use crate::config::{AgentConfig, default_data_dir};
use crate::secrets::{Secrets, open_store};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use worktrail_shared::secret::CompanyKey;

/// The headless Worktrail agent.
#[derive(Debug, Parser)]
#[command(name = "worktrail-agentd", version)]
pub struct Cli {
    /// Where the agent keeps its state.
    #[arg(long, env = "WORKTRAIL_AGENT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enrols this device with a company.
    Enroll {
        /// The server's base URL.
        #[arg(long)]
        server: String,
        /// The company key the admin was given.
        #[arg(long, env = "WORKTRAIL_COMPANY_KEY", hide_env_values = true)]
        company_key: String,
        /// The employee's e-mail (default: derived from the OS user by the server).
        #[arg(long)]
        email: Option<String>,
    },
    /// Captures and syncs until stopped (SIGTERM or Ctrl-C stop it cleanly).
    Run,
    /// Shows whether the agent is enrolled, the last sync, the queue and any block.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sends everything queued now.
    SyncNow,
    /// Lets a browser extension pair with the running agent for the next two minutes.
    PairBrowser,
    /// Shows what the agent would record right now; with `--screenshots DIR`, writes the
    /// processed (downscaled, blurred if the policy says so) screenshots there.
    Probe {
        /// Where to write the screenshots.
        #[arg(long)]
        screenshots: Option<PathBuf>,
    },
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// Runs the CLI; the exit code is 0 on success.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WORKTRAIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the runtime");
                return std::process::ExitCode::FAILURE;
            }
        };
    match rt.block_on(execute(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn open(dir: &std::path::Path, probes: Probes) -> anyhow::Result<Agent> {
    let config = AgentConfig::load_or_create(dir)
        .with_context(|| format!("cannot use the data dir {}", dir.display()))?;
    let secrets = Secrets(open_store(dir, &config.device_id.to_string()));
    Agent::open(dir, secrets, probes, Arc::new(SystemClock)).map_err(|e| {
        match check_data_dir(dir) {
            // e.g. a read-only file system: SQLite cannot even open the queue; say why.
            Some(why) => anyhow::anyhow!("{e}; {why}"),
            None => e.into(),
        }
    })
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.data_dir.unwrap_or_else(default_data_dir);
    match cli.command {
        Command::Enroll { server, company_key, email } => {
            let key = CompanyKey::parse(&company_key)
                .map_err(|e| anyhow::anyhow!("the company key is not valid: {e}"))?;
            let mut agent = open(&dir, Probes::none())?;
            let e = agent.enroll(&server, key, email).await?;
            out(&format!(
                "enrolled device {} with {} ({}) as employee {}",
                agent.device_id(),
                e.company_name,
                e.company_id,
                e.employee_id
            ));
        }
        Command::Run => {
            let probes = Probes::platform().context("cannot read the desktop")?;
            let mut agent = open(&dir, probes)?;
            if !agent.status().await?.enrolled {
                anyhow::bail!("not enrolled: run `worktrail-agentd enroll` first");
            }
            agent.run(shutdown_signal()).await?;
        }
        Command::Status { json } => {
            let agent = open(&dir, Probes::none())?;
            let mut status = agent.status().await?;
            // Another process (`run`) captures: whether it can write is seen from here by
            // writing into the same directory.
            if status.storage_error.is_none() && status.enrolled {
                status.storage_error = check_data_dir(&dir);
            }
            if status.storage_error.is_some() {
                status.capturing = false;
            }
            if json {
                out(&serde_json::to_string_pretty(&status)?);
            } else {
                out(&human(&status));
            }
        }
        Command::SyncNow => {
            let mut agent = open(&dir, Probes::none())?;
            if let Err(e) = agent.syncer.refresh_policy().await {
                tracing::warn!(error = %e, "could not fetch the policy");
            }
            let report = agent.sync_once().await?;
            out(&serde_json::to_string(&report)?);
        }
        Command::Probe { screenshots } => probe(&dir, screenshots).await?,
        Command::PairBrowser => {
            let config = AgentConfig::load_or_create(&dir)?;
            let pairings = crate::websites::pairing::Pairings::new(&dir);
            let until = pairings.open_window(SystemClock.now_ms())?;
            let until = jiff::Timestamp::from_millisecond(until).map(|t| t.to_string());
            out(&format!(
                "pairing open until {}: open the Worktrail extension's options in your browser \
                 (agent port {}) and choose \"Pair\"",
                until.unwrap_or_default(),
                config.extension_port
            ));
        }
    }
    Ok(())
}

/// Whether the data dir takes a write of a queue transaction's size (64 KiB, synced); `Some`
/// says why not (disk full, read-only file system).
fn check_data_dir(dir: &std::path::Path) -> Option<String> {
    let path = dir.join(".write-check");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    };
    let result = write();
    let _ = std::fs::remove_file(&path);
    result.err().map(|e| format!("the data dir cannot be written: {e}"))
}

async fn probe(dir: &std::path::Path, shots: Option<PathBuf>) -> anyhow::Result<()> {
    let mut probes = Probes::platform().context("cannot read the desktop")?;
    let agent = open(dir, Probes::none())?;
    let policy = agent.capture_policy();
    let window = probes.window.active_window()?;
    let idle = probes.idle.idle()?;
    let verdict = window.as_ref().map(|w| policy.judge_window(&w.app, w.exe.as_deref(), &w.title));
    let mut written = vec![];
    if let (Some(dir), Some(screen)) = (shots, probes.screen.as_mut()) {
        std::fs::create_dir_all(&dir)?;
        for (i, raw) in screen.capture_all()?.into_iter().enumerate() {
            let shot = crate::probe::screen::process(i as u8, raw, &policy.policy.screenshots)?;
            let path = dir.join(format!("monitor-{i}.jpg"));
            std::fs::write(&path, &shot.jpeg)?;
            written.push(serde_json::json!({
                "path": path, "width": shot.width, "height": shot.height,
                "bytes": shot.jpeg.len(), "blurred": shot.blurred,
            }));
        }
    }
    out(&serde_json::to_string_pretty(&serde_json::json!({
        "window": window.map(|w| serde_json::json!({"app": w.app, "exe": w.exe, "title": w.title, "pid": w.pid})),
        "privacy_verdict": verdict.map(|v| format!("{v:?}")),
        "idle_ms": idle.idle_ms,
        "locked": idle.locked,
        "screenshots": written,
    }))?);
    Ok(())
}

fn human(s: &AgentStatus) -> String {
    let when = |ms: Option<i64>| {
        ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok())
            .map_or_else(|| "never".to_owned(), |t| t.to_string())
    };
    let mut lines = vec![match &s.enrollment {
        Some(e) => format!(
            "enrolled: yes ({} at {}, employee {})",
            e.company_name, e.server_url, e.employee_id
        ),
        None => "enrolled: no".to_owned(),
    }];
    lines.push(format!("device: {}", s.device_id));
    lines.push(format!("capturing: {}", if s.capturing { "yes" } else { "no" }));
    if let Some(why) = &s.storage_error {
        lines.push(format!("capture paused: {why}"));
    }
    if let Some(b) = &s.blocked {
        lines.push(format!("blocked: {} ({}) since {}", b.code, b.message, when(Some(b.since_ms))));
    }
    lines.push(format!(
        "queue: {} records, {} bytes, {} screenshots to upload, dropped {} screenshots / {} records",
        s.queue.records, s.queue.bytes, s.queue.screenshots_to_upload, s.queue.dropped.screenshots, s.queue.dropped.records
    ));
    if s.queue.set_aside > 0 {
        lines.push(format!(
            "set aside: {} records the server refuses (kept in the queue file, not sent again)",
            s.queue.set_aside
        ));
    }
    lines.push(format!("last sync: {}", when(s.queue.last_sync_ms)));
    if let Some(e) = &s.last_error {
        lines.push(format!("last error: {e}"));
    }
    lines.push(format!("secrets: {}", s.secret_store));
    lines.join("\n")
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
