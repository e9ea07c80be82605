//! The agent as a long-lived service behind a UI (the tray app). One task owns the [`Agent`] and
//! runs capture and sync side by side, as [`Agent::run`] does, so a slow server never delays
//! sampling; requests (enrol, sync now, sign-in link, quit) are handled by the sync half between its
//! steps, never by cancelling a step. Status is read straight from the shared state and the queue,
//! so the tray menu and the window never wait behind a sync.
//!
//! Errors reach the UI as [`UiError`]: a stable code (the server's [`ErrorCode`] spelling, or one
//! of the local codes below) and a message. The UI branches on the code only.

use super::{Agent, AgentError, AgentStatus, Shared};
use crate::config::Enrollment;
use crate::policy::CompiledPolicy;
use crate::queue::Queue;
use crate::sync::{SigninLink, SyncClient, SyncError};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use worktrail_shared::DeviceId;
use worktrail_shared::secret::CompanyKey;

/// Local error codes (the server's codes are [`worktrail_shared::ErrorCode`]'s).
pub mod codes {
    /// The server could not be reached.
    pub const NETWORK: &str = "network";
    /// The server URL is not an http(s) URL.
    pub const INVALID_SERVER_URL: &str = "invalid_server_url";
    /// The action needs an enrolled agent.
    pub const NOT_ENROLLED: &str = "not_enrolled";
    /// The server asked to wait (`Retry-After`); nothing was sent.
    pub const DEFERRED: &str = "deferred";
    /// The company's policy does not allow this.
    pub const NOT_ALLOWED: &str = "not_allowed";
    /// The task chosen is not one of the company's open tasks.
    pub const UNKNOWN_TASK: &str = "unknown_task";
    /// Something failed on this device (disk, keyring); the message says what.
    pub const LOCAL: &str = "local";
}

/// An error as a UI shows it: a stable code and a message safe to display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct UiError {
    /// `invalid_company_key`, `network`, …
    pub code: String,
    /// For people.
    pub message: String,
}

impl UiError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

impl From<AgentError> for UiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Sync(SyncError::Server { code, message, .. }) => {
                Self::new(code.as_str(), message)
            }
            AgentError::Sync(SyncError::Network(m)) => Self::new(codes::NETWORK, m),
            AgentError::Sync(SyncError::NotEnrolled) => {
                Self::new(codes::NOT_ENROLLED, "this device is not enrolled yet")
            }
            AgentError::Sync(e @ SyncError::Deferred(_)) => {
                Self::new(codes::DEFERRED, e.to_string())
            }
            e @ AgentError::UnknownTask => Self::new(codes::UNKNOWN_TASK, e.to_string()),
            e => Self::new(codes::LOCAL, e.to_string()),
        }
    }
}

/// What the tray icon shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayState {
    /// Not enrolled: nothing is captured.
    NotEnrolled,
    /// Capturing.
    Tracking,
    /// Paused by the employee.
    Paused,
    /// Capturing, but the last sync failed (the queue keeps everything).
    Offline,
    /// The server refuses this agent (the reason is in the status); nothing is captured.
    Blocked,
}

impl TrayState {
    /// The state a status shows.
    pub fn of(s: &AgentStatus) -> Self {
        if !s.enrolled {
            Self::NotEnrolled
        } else if s.blocked.is_some() {
            Self::Blocked
        } else if s.paused {
            Self::Paused
        } else if s.last_error.is_some() {
            Self::Offline
        } else {
            Self::Tracking
        }
    }
}

/// Everything a UI shows at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// The agent's status.
    #[serde(flatten)]
    pub status: AgentStatus,
    /// The icon's state.
    pub state: TrayState,
    /// The application being recorded right now (after the privacy rules).
    pub current_app: Option<String>,
    /// The policy in force.
    pub policy: worktrail_shared::policy::Policy,
    /// The company's open tasks (empty: it uses none).
    pub tasks: Vec<worktrail_shared::api::AgentTask>,
    /// The task chosen.
    pub task: Option<worktrail_shared::TaskId>,
}

enum Request {
    Enroll(String, CompanyKey, Option<String>, oneshot::Sender<Result<Enrollment, UiError>>),
    SyncNow(oneshot::Sender<Result<super::SyncReport, UiError>>),
    SigninLink(oneshot::Sender<Result<SigninLink, UiError>>),
    Shutdown(oneshot::Sender<()>),
}

/// A cheap, cloneable handle on the running service.
#[derive(Clone, Debug)]
pub struct AgentHandle {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    queue: Arc<Queue>,
    device_id: DeviceId,
    secret_store: &'static str,
    enrollment: Arc<Mutex<Option<Enrollment>>>,
    current_app: Arc<Mutex<Option<String>>>,
    nudge: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AgentHandle {
    /// The status, the icon state, the current app and the policy.
    pub async fn snapshot(&self) -> Result<Snapshot, UiError> {
        let queue = self.queue.call(|db| db.status()).await.map_err(AgentError::from)?;
        let (capturing, policy) = self.shared.capture_allowed();
        let status = {
            let s = self.shared.state();
            AgentStatus {
                enrolled: s.enrolled,
                device_id: self.device_id,
                enrollment: lock(&self.enrollment).clone(),
                capturing,
                paused: s.paused,
                blocked: s.blocked.clone(),
                queue,
                secret_store: self.secret_store,
                last_error: s.last_error.clone(),
                storage_error: s.storage_error.clone(),
            }
        };
        let current_app = lock(&self.current_app).clone().filter(|_| capturing);
        let (tasks, task) = self.shared.tasks();
        Ok(Snapshot {
            state: TrayState::of(&status),
            status,
            current_app,
            policy: policy.policy.clone(),
            tasks,
            task,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.shared.policy()
    }

    /// Enrols with the company of `company_key` at `server_url`; capture starts at once.
    pub async fn enroll(
        &self,
        server_url: &str,
        company_key: &str,
        email: Option<String>,
    ) -> Result<Enrollment, UiError> {
        let server_url = server_url.trim();
        SyncClient::new(server_url)
            .map_err(|e| UiError::new(codes::INVALID_SERVER_URL, e.to_string()))?;
        let key = CompanyKey::parse(company_key.trim()).map_err(|e| {
            UiError::new(
                worktrail_shared::ErrorCode::InvalidCompanyKey.as_str(),
                format!("the company key is not well-formed: {e}"),
            )
        })?;
        let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
        self.ask(|tx| Request::Enroll(server_url.to_owned(), key, email, tx)).await?
    }

    /// Fetches the policy and sends everything queued now.
    pub async fn sync_now(&self) -> Result<super::SyncReport, UiError> {
        self.ask(Request::SyncNow).await?
    }

    /// A single-use sign-in link for this device's employee ("Open my dashboard"), to open in the
    /// browser at once: it works once, for a minute.
    pub async fn signin_link(&self) -> Result<SigninLink, UiError> {
        self.ask(Request::SigninLink).await?
    }

    /// Chooses the task the time from now on is recorded for (`None`: no task); the open span
    /// closes at once. Only one of the company's open tasks may be chosen.
    pub async fn choose_task(&self, task: Option<worktrail_shared::TaskId>) -> Result<(), UiError> {
        super::choose_task(&self.shared, &self.queue, task).await?;
        self.nudge.notify_one();
        Ok(())
    }

    /// Pauses or resumes capture; pausing needs the policy's permission. Open spans close at
    /// once, so the pause shows as a gap. Returns whether capture is paused now.
    pub fn set_paused(&self, paused: bool) -> Result<bool, UiError> {
        if paused && !self.shared.policy().policy.allow_pause {
            return Err(UiError::new(codes::NOT_ALLOWED, "your company does not allow pausing"));
        }
        self.shared.state().paused = paused;
        self.nudge.notify_one();
        Ok(paused)
    }

    /// Whether the policy lets the employee quit.
    pub fn may_quit(&self) -> bool {
        self.shared.policy().policy.allow_quit
    }

    /// Stops capture (open spans and the session are written) and ends the service.
    pub async fn shutdown(&self) {
        let _ = self.ask(Request::Shutdown).await;
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, UiError> {
        let gone = || UiError::new(codes::LOCAL, "the agent has stopped");
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }
}

/// Starts the service on a thread of its own with a single-threaded runtime: the agent's work
/// never competes with the UI's event loop, and the capture half (whose probes are not `Sync`)
/// needs no `Send` future. Fails only when the thread or runtime cannot be created.
pub fn spawn(agent: Agent) -> std::io::Result<AgentHandle> {
    let (tx, rx) = mpsc::channel(16);
    let handle = AgentHandle {
        tx,
        shared: agent.shared.clone(),
        queue: agent.queue.clone(),
        device_id: agent.config.device_id,
        secret_store: agent.secrets.0.kind(),
        enrollment: Arc::new(Mutex::new(agent.config.enrollment.clone())),
        current_app: Arc::default(),
        nudge: Arc::default(),
    };
    let (enrollment, current_app, nudge) =
        (handle.enrollment.clone(), handle.current_app.clone(), handle.nudge.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("worktrail-agent".into())
        .spawn(move || rt.block_on(serve(agent, rx, enrollment, current_app, nudge)))?;
    Ok(handle)
}

async fn serve(
    mut agent: Agent,
    mut rx: mpsc::Receiver<Request>,
    enrollment: Arc<Mutex<Option<Enrollment>>>,
    current_app: Arc<Mutex<Option<String>>>,
    nudge: Arc<Notify>,
) {
    // The browser extension reports tabs to the tray app as it does to `worktrail-agentd run`.
    let _listener = agent.listen_for_browsers().await;
    {
        let (mut core, capture) = agent.split();
        let capture_loop = async {
            loop {
                if let Err(e) = capture.sample_once().await {
                    tracing::error!(error = %e, "sampling failed");
                }
                *lock(&current_app) = capture.sampler.current_window().map(|w| w.app.clone());
                let secs = capture.shared.policy().policy.sample_interval_secs.max(1);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(u64::from(secs))) => {}
                    () = nudge.notified() => {}
                }
            }
        };
        let control_loop = async {
            loop {
                // Only the waits race; a step or a request, once begun, runs to its end.
                let request = tokio::select! {
                    r = rx.recv() => r,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {
                        if core.config.enrollment.is_some() {
                            core.syncer.step().await;
                        }
                        continue;
                    }
                };
                match request {
                    None => return None,
                    Some(Request::Shutdown(reply)) => return Some(reply),
                    Some(Request::Enroll(url, key, email, reply)) => {
                        let r = core.enroll(&url, key, email).await.map_err(UiError::from);
                        if r.is_ok() {
                            *lock(&enrollment) = core.config.enrollment.clone();
                            core.syncer.sync_soon();
                            nudge.notify_one();
                        }
                        let _ = reply.send(r);
                    }
                    Some(Request::SyncNow(reply)) => {
                        if let Err(e) = core.syncer.refresh_policy().await {
                            tracing::warn!(error = %e, "could not fetch the policy");
                        }
                        let r = core
                            .syncer
                            .sync_once()
                            .await
                            .map_err(|e| UiError::from(AgentError::from(e)));
                        let _ = reply.send(r);
                    }
                    Some(Request::SigninLink(reply)) => {
                        let r = core
                            .syncer
                            .signin_link()
                            .await
                            .map_err(|e| UiError::from(AgentError::from(e)));
                        let _ = reply.send(r);
                    }
                }
            }
        };
        let reply = tokio::select! {
            r = control_loop => r,
            () = capture_loop => None,
        };
        match capture.stop().await {
            Ok(n) => tracing::info!(records = n, "capture stopped; open spans written"),
            Err(e) => tracing::error!(error = %e, "could not write the open spans"),
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
