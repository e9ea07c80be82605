//! Re-executing the app tray-only after its window closed (Unix), so the web engine's processes
//! and heap go with the window (see the crate documentation for why).
//!
//! Order: stop the agent's service (capture writes its open spans, the queue is idle), end and
//! reap the web engine's processes, flush the log file, then `execve` this same binary with `--tray-only` and the original arguments. The
//! pid stays the same, so autostart, the single-instance lock and whoever watches the process
//! see one continuous app; its file descriptors close on exec (Rust opens them `CLOEXEC`), which
//! ends the WebKit processes' connections and with them the processes. If the exec fails, the
//! process exits instead of running on without an agent.

use std::sync::Mutex;
use tauri::{AppHandle, Manager};
use tracing_appender::non_blocking::WorkerGuard;
use worktrail_agent_core::agent::service::AgentHandle;

/// The log writer's guard, dropped (flushing the last lines) just before the exec.
pub struct LogGuard(Mutex<Option<WorkerGuard>>);

impl LogGuard {
    /// Keeps `guard` until [`tray_only`] flushes it.
    pub fn new(guard: WorkerGuard) -> Self {
        Self(Mutex::new(Some(guard)))
    }
}

/// Restarts the app tray-only once the agent has stopped. Only one restart runs at a time.
pub fn tray_only(app: &AppHandle) {
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !cfg!(unix) || STARTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let agent = app.state::<AgentHandle>().inner().clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tracing::info!("the window closed: restarting tray-only to free the web engine's memory");
        agent.shutdown().await;
        end_children();
        if let Some(guard) = app.try_state::<LogGuard>() {
            drop(guard.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        }
        let err = exec_tray_only();
        // Logging is flushed and closed; stderr is all that is left.
        eprintln!("worktrail-agent: cannot restart tray-only ({err}); exiting");
        app.exit(1);
    });
}

/// Ends and reaps this process's children — the web engine's processes, which outlive the
/// window — so none lingers, and none is left a zombie that the re-executed image would never
/// wait for. SIGTERM first; what is still running after two seconds gets SIGKILL.
#[cfg(unix)]
fn end_children() {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::Pid;
    let children = || -> Vec<Pid> {
        let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
        tasks
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<_>>())
            .map(Pid::from_raw)
            .collect()
    };
    // Reaped now, or already reaped by someone else (the web engine's own child watch).
    let reaped =
        |pid: Pid| !matches!(waitpid(pid, Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive));
    let mut left = children();
    tracing::info!(processes = left.len(), "ending the web engine's processes");
    for &pid in &left {
        let _ = kill(pid, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !left.is_empty() {
        left.retain(|&pid| !reaped(pid));
        if std::time::Instant::now() > deadline {
            for &pid in &left {
                // SIGKILL cannot be ignored, so the blocking wait returns.
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
            }
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(unix))]
fn end_children() {}

#[cfg(unix)]
fn exec_tray_only() -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|a| a == crate::TRAY_ONLY) {
        args.push(crate::TRAY_ONLY.into());
    }
    // /proc/self/exe still names this binary if it was replaced on disk meanwhile.
    let exe = std::path::Path::new("/proc/self/exe");
    let exe =
        if exe.exists() { exe.to_owned() } else { std::env::current_exe().unwrap_or_default() };
    std::process::Command::new(exe).args(args).exec()
}

#[cfg(not(unix))]
fn exec_tray_only() -> std::io::Error {
    std::io::Error::other("not supported on this platform")
}
