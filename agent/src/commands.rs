//! The commands the window calls. Each parses, calls the core's service and maps: errors come
//! back as the core's `UiError` — a stable code (`invalid_company_key`, `network`, …) and a
//! message — and the window branches on the code only.

use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_opener::OpenerExt as _;
use worktrail_agent_core::agent::SyncReport;
use worktrail_agent_core::agent::notice::{self, Collected};
use worktrail_agent_core::agent::service::{AgentHandle, Snapshot, UiError, codes};
use worktrail_shared::TaskId;

type Result<T> = std::result::Result<T, UiError>;

/// What the window shows: status, icon state, current app, policy.
#[tauri::command]
pub async fn status(agent: State<'_, AgentHandle>) -> Result<Snapshot> {
    agent.snapshot().await
}

/// What the company's policy collects and how often.
#[tauri::command]
pub fn notice(agent: State<'_, AgentHandle>) -> Vec<Collected> {
    notice::collected(&agent.policy().policy)
}

/// Enrols this device; capture starts at once and the agent starts at login from now on.
#[tauri::command]
pub async fn enroll(
    app: AppHandle,
    agent: State<'_, AgentHandle>,
    server_url: String,
    company_key: String,
    email: Option<String>,
) -> Result<Snapshot> {
    let enrolled = agent.enroll(&server_url, &company_key, email).await?;
    tracing::info!(company.id = %enrolled.company_id, "enrolled");
    ensure_autostart(&app);
    crate::tray::refresh_now(&app);
    agent.snapshot().await
}

/// Pauses or resumes capture (pausing only when the policy allows it).
#[tauri::command]
pub async fn set_paused(
    app: AppHandle,
    agent: State<'_, AgentHandle>,
    paused: bool,
) -> Result<Snapshot> {
    agent.set_paused(paused)?;
    crate::tray::refresh_now(&app);
    agent.snapshot().await
}

/// Chooses the task the time from now on counts for (`None`: no particular task).
#[tauri::command]
pub async fn choose_task(
    agent: State<'_, AgentHandle>,
    task_id: Option<String>,
) -> Result<Snapshot> {
    let task = match task_id.as_deref().map(str::parse::<TaskId>) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Err(UiError::new(codes::UNKNOWN_TASK, "not a task id")),
    };
    agent.choose_task(task).await?;
    agent.snapshot().await
}

/// Sends everything queued now.
#[tauri::command]
pub async fn sync_now(app: AppHandle, agent: State<'_, AgentHandle>) -> Result<SyncReport> {
    let r = agent.sync_now().await;
    crate::tray::refresh_now(&app);
    r
}

/// Opens the employee's own pages of the portal in the browser.
#[tauri::command]
pub async fn open_dashboard(app: AppHandle, agent: State<'_, AgentHandle>) -> Result<()> {
    open_dashboard_of(&app, &agent).await
}

/// Asks the server for a single-use, one-minute sign-in link for this device's employee and
/// opens it in the browser: the employee lands on their own pages without a password. The link
/// is a secret: it goes to the browser only, never to a log or an error message.
pub async fn open_dashboard_of(app: &AppHandle, agent: &AgentHandle) -> Result<()> {
    let link = agent.signin_link().await?;
    app.opener().open_url(link.expose(), None::<&str>).map_err(|e| {
        // The opener's error may quote the URL; say only what kind of failure it was.
        let kind = match e {
            tauri_plugin_opener::Error::Io(e) => e.kind().to_string(),
            _ => "no browser".to_owned(),
        };
        UiError::new(codes::LOCAL, format!("cannot open the browser ({kind})"))
    })
}

/// Registers the agent to start at login (once; failures are logged, never fatal).
pub fn ensure_autostart(app: &AppHandle) {
    let launcher = app.autolaunch();
    if launcher.is_enabled().unwrap_or(false) {
        return;
    }
    match launcher.enable() {
        Ok(()) => tracing::info!("the agent now starts at login"),
        Err(e) => tracing::warn!(error = %e, "cannot register the agent to start at login"),
    }
}
