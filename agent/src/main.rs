//! The Worktrail tray app: a thin Tauri v2 shell over `worktrail-agent-core`.
//!
//! The core does all the work on a thread of its own ([`service`]); this crate only shows it:
//! a tray icon whose state and menu follow the agent ([`tray`]), a window created on demand and
//! destroyed when closed — a webview costs hundreds of MB, the tray alone stays small
//! ([`window`]) — and the commands the window calls ([`commands`]), which parse, call the core
//! and return its typed errors with their stable codes. Logs go to a daily rolling file in the
//! data dir ([`logging`]).
//!
//! Start-up: one instance per user (a second launch opens the first one's window), autostart at
//! login once enrolled, the window opens by itself only when the agent still needs enrolling
//! (unless `--tray-only`).
//!
//! Closing the window: destroying the webview does not give its memory back — WebKit's network
//! process lives on and the tray process keeps the web engine's heap (~160 MB against ~130 MB
//! before). So on Unix, when the last window closes, the agent stops cleanly (open spans are
//! written) and the process re-executes itself tray-only ([`restart`]): same pid, the WebKit
//! processes end with it, and the tray is back to its small size.

#![cfg_attr(all(not(debug_assertions), windows), windows_subsystem = "windows")]

mod commands;
mod logging;
mod restart;
mod text;
mod tray;
mod window;

use std::sync::Arc;
use tauri::Manager as _;
use worktrail_agent_core::SystemClock;
use worktrail_agent_core::agent::service::{self, AgentHandle};
use worktrail_agent_core::agent::{Agent, Probes};
use worktrail_agent_core::config::{AgentConfig, default_data_dir};
use worktrail_agent_core::secrets::{Secrets, open_store};

/// The argument that keeps the window closed at start.
const TRAY_ONLY: &str = "--tray-only";

fn open_agent(dir: &std::path::Path) -> anyhow::Result<AgentHandle> {
    let config = AgentConfig::load_or_create(dir)?;
    let secrets = Secrets(open_store(dir, &config.device_id.to_string()));
    let probes = match Probes::platform() {
        Ok(p) => p,
        Err(e) => {
            // Without a desktop to read the agent can still enrol and sync what it queued.
            tracing::error!(error = %e, "cannot read the desktop; nothing will be captured");
            Probes::none()
        }
    };
    let agent = Agent::open(dir, secrets, probes, Arc::new(SystemClock))?;
    Ok(service::spawn(agent)?)
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::var_os("WORKTRAIL_AGENT_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(default_data_dir);
    let log = logging::init(&dir)?;
    let tray_only = std::env::args().any(|a| a == TRAY_ONLY);

    let app = tauri::Builder::default()
        // First: a second launch hands over to this instance and exits.
        // First: a second launch hands over to this instance and exits (before it opens the
        // agent, below in `setup`, so only one process ever captures and owns the queue).
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if app.try_state::<AgentHandle>().is_some() {
                window::open(app);
            }
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![TRAY_ONLY]),
        ))
        .plugin(tauri_plugin_opener::init())
        .manage(restart::LogGuard::new(log))
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::notice,
            commands::enroll,
            commands::set_paused,
            commands::sync_now,
            commands::open_dashboard,
            commands::choose_task,
        ])
        .setup(move |app| {
            let handle =
                open_agent(&dir).map_err(|e| -> Box<dyn std::error::Error> { e.into() })?;
            tracing::info!(data_dir = %dir.display(), "worktrail-agent starting");
            app.manage(handle.clone());
            tray::build(app.handle(), handle.clone())?;
            let enrolled = tauri::async_runtime::block_on(handle.snapshot())
                .map(|s| s.status.enrolled)
                .unwrap_or(false);
            if enrolled {
                commands::ensure_autostart(app.handle());
            } else if !tray_only {
                window::open(app.handle());
            }
            Ok(())
        })
        .build(tauri::generate_context!())?;
    app.run(|app, event| match event {
        // Closing the window (the last one) must not end the agent; only Quit does. The web
        // engine's memory goes with a restart, tray only.
        tauri::RunEvent::ExitRequested { api, code: None, .. } => {
            api.prevent_exit();
            restart::tray_only(app);
        }
        tauri::RunEvent::Exit => tracing::info!("worktrail-agent stopped"),
        _ => {}
    });
    Ok(())
}
