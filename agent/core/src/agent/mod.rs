//! The agent: the capture half and the sync half over one queue, with the state they share
//! (policy, blocked reason, pause). Tests and the tray drive it by steps — [`Agent::sample_once`],
//! [`Agent::sync_once`] — and `worktrail-agentd run` by [`Agent::run`], which runs both halves
//! concurrently so a slow server never delays sampling.

mod capture;
mod enroll;
pub mod notice;
mod run;
pub mod service;
mod shared;
mod syncer;

pub use capture::Capture;
use enroll::Core;
use shared::SharedState;
pub use shared::{Blocked, Shared};
pub use syncer::{RECHECK_MS, SyncReport, Syncer};

use crate::clock::Clock;
use crate::config::{AgentConfig, Enrollment, QUEUE_FILE};
use crate::policy::CompiledPolicy;
use crate::probe::{IdleProbe, ProbeError, ScreenProbe, WindowProbe};
use crate::queue::{Caps, Queue, QueueError, QueueStatus};
use crate::sampler::Sampler;
use crate::secrets::{SecretError, Secrets};
use crate::sync::{Credentials, SyncClient, SyncError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use worktrail_shared::DeviceId;
use worktrail_shared::api::PolicyResponse;
use worktrail_shared::secret::CompanyKey;

/// Everything `status` reports.
#[derive(Clone, Debug, Serialize)]
pub struct AgentStatus {
    /// Whether the agent is enrolled.
    pub enrolled: bool,
    /// This installation's id.
    pub device_id: DeviceId,
    /// Enrolment facts.
    pub enrollment: Option<Enrollment>,
    /// Capturing now (enrolled, not blocked, not paused).
    pub capturing: bool,
    /// Paused by the employee.
    pub paused: bool,
    /// Why the server refuses the agent.
    pub blocked: Option<Blocked>,
    /// The queue.
    pub queue: QueueStatus,
    /// Where secrets are kept: keyring, file or memory.
    pub secret_store: &'static str,
    /// The last sync error, if the last sync failed.
    pub last_error: Option<String>,
    /// Why the queue cannot be written (disk full, read-only), while it cannot; capture waits.
    pub storage_error: Option<String>,
}

/// The agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Talking to the server failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A probe failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The data dir failed.
    #[error("data dir: {0}")]
    Io(#[from] std::io::Error),
    /// The server's answer is malformed.
    #[error("the server sent a malformed device token")]
    BadToken,
    /// The task chosen is not one of the company's open tasks.
    #[error("that task is not one of your company's open tasks")]
    UnknownTask,
}

/// Chooses `task` and keeps the choice across restarts.
pub(crate) async fn choose_task(
    shared: &Shared,
    queue: &Queue,
    task: Option<worktrail_shared::TaskId>,
) -> Result<(), AgentError> {
    if !shared.choose_task(task) {
        return Err(AgentError::UnknownTask);
    }
    let value = task.map(|t| t.to_string());
    queue.call(move |db| db.set_meta("task", value.as_deref())).await?;
    Ok(())
}

/// The probes an agent reads.
pub struct Probes {
    /// Active window.
    pub window: Box<dyn WindowProbe>,
    /// Idle time.
    pub idle: Box<dyn IdleProbe>,
    /// Screens (none: no screenshots).
    pub screen: Option<Box<dyn ScreenProbe>>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes").field("screen", &self.screen.is_some()).finish_non_exhaustive()
    }
}

impl Probes {
    /// The platform's probes (X11 through `$DISPLAY` on Linux).
    pub fn platform() -> Result<Self, ProbeError> {
        Ok(Self {
            window: crate::probe::window::platform_window_probe()?,
            idle: crate::probe::idle::platform_idle_probe()?,
            screen: platform_screen_probe(),
        })
    }
    /// Probes that see nothing, for commands that only sync.
    pub fn none() -> Self {
        Self {
            window: Box::new(crate::probe::fake::FakeWindow::default()),
            idle: Box::new(crate::probe::fake::FakeIdle::default()),
            screen: None,
        }
    }
}

/// Screenshots: through the X server on Linux, `xcap` on macOS and Windows.
fn platform_screen_probe() -> Option<Box<dyn crate::probe::ScreenProbe>> {
    #[cfg(target_os = "linux")]
    {
        Some(Box::new(crate::probe::x11_screen::X11ScreenProbe::new(None)))
    }
    #[cfg(any(target_os = "macos", target_os = "windows"))]
    {
        Some(Box::new(crate::probe::screen::XcapProbe))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        None
    }
}

/// The agent.
#[derive(Debug)]
pub struct Agent {
    dir: PathBuf,
    config: AgentConfig,
    secrets: Secrets,
    shared: Arc<Shared>,
    queue: Arc<Queue>,
    /// The capture half.
    pub capture: Capture,
    /// The sync half.
    pub syncer: Syncer,
}

impl Agent {
    /// Opens the agent whose state lives in `dir`.
    pub fn open(
        dir: &Path,
        secrets: Secrets,
        probes: Probes,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AgentError> {
        let config = AgentConfig::load_or_create(dir)?;
        let queue = Arc::new(Queue::open(&dir.join(QUEUE_FILE), Caps::default())?);
        let shared = Arc::new(Shared(Mutex::new(SharedState {
            policy: Arc::new(CompiledPolicy::default()),
            blocked: None,
            paused: false,
            enrolled: config.enrollment.is_some(),
            last_error: None,
            storage_error: None,
            tasks: Vec::new(),
            task: None,
        })));
        let sampler = Sampler::new(probes.window, probes.idle);
        let capture =
            Capture::new(sampler, probes.screen, shared.clone(), queue.clone(), clock.clone());
        let syncer = Syncer::new(shared.clone(), queue.clone(), clock);
        let mut agent =
            Self { dir: dir.to_owned(), config, secrets, shared, queue, capture, syncer };
        agent.load_state()?;
        Ok(agent)
    }

    fn load_state(&mut self) -> Result<(), AgentError> {
        // Called once at start, before any task runs: a short blocking read is fine here.
        let policy = self.queue.call_blocking(|db| db.get_meta("policy"));
        let blocked = self.queue.call_blocking(|db| db.get_meta("blocked"));
        let last_error = self.queue.call_blocking(|db| db.get_meta("last_error"))?;
        self.shared.set_last_error(last_error);
        let tasks = self.queue.call_blocking(|db| db.get_meta("tasks"))?;
        let task = self.queue.call_blocking(|db| db.get_meta("task"))?;
        if let Some(tasks) = tasks.and_then(|j| serde_json::from_str(&j).ok()) {
            self.shared.set_tasks(tasks);
        }
        self.shared.choose_task(task.and_then(|t| t.parse().ok()));
        if let Some(p) = policy?.and_then(|j| serde_json::from_str::<PolicyResponse>(&j).ok()) {
            self.shared.set_policy(&p);
        }
        self.shared.set_blocked(blocked?.and_then(|j| serde_json::from_str(&j).ok()));
        if let Some(secs) = self.config.max_retry_secs {
            self.syncer.backoff =
                crate::sync::backoff::Backoff::with_cap(std::time::Duration::from_secs(secs));
        }
        if let Some(e) = &self.config.enrollment {
            self.syncer.client = Some(SyncClient::new(&e.server_url)?);
            if let (Some(key), Some(token)) =
                (self.secrets.company_key()?, self.secrets.device_token()?)
            {
                self.syncer.creds = Some(Credentials { key, token });
            }
        }
        Ok(())
    }

    /// This installation's id.
    pub fn device_id(&self) -> DeviceId {
        self.config.device_id
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Exchanges the company key for a device token and keeps both in the secret store.
    pub async fn enroll(
        &mut self,
        server_url: &str,
        key: CompanyKey,
        email: Option<String>,
    ) -> Result<Enrollment, AgentError> {
        self.split().0.enroll(server_url, key, email).await
    }

    /// The agent borrowed in two halves that can work at once: everything but capture, and
    /// capture (see [`service`]).
    fn split(&mut self) -> (Core<'_>, &mut Capture) {
        let core = Core {
            dir: &self.dir,
            config: &mut self.config,
            secrets: &self.secrets,
            shared: &self.shared,
            queue: &self.queue,
            syncer: &mut self.syncer,
        };
        (core, &mut self.capture)
    }

    /// One sample (see [`Capture::sample_once`]).
    pub async fn sample_once(&mut self) -> Result<usize, AgentError> {
        Ok(self.capture.sample_once().await?)
    }

    /// One sync pass (see [`Syncer::sync_once`]).
    pub async fn sync_once(&mut self) -> Result<SyncReport, AgentError> {
        Ok(self.syncer.sync_once().await?)
    }

    /// A single-use sign-in link for this device's employee (see [`Syncer::signin_link`]).
    pub async fn signin_link(&self) -> Result<crate::sync::SigninLink, AgentError> {
        Ok(self.syncer.signin_link().await?)
    }

    /// The company's open tasks (empty: it uses none) and the one chosen.
    pub fn tasks(
        &self,
    ) -> (Vec<worktrail_shared::api::AgentTask>, Option<worktrail_shared::TaskId>) {
        self.shared.tasks()
    }

    /// Chooses the task the app spans from now on are recorded for (`None`: no task); the open
    /// span closes at once. Refused when `task` is not one of the company's open tasks.
    pub async fn choose_task(
        &mut self,
        task: Option<worktrail_shared::TaskId>,
    ) -> Result<(), AgentError> {
        choose_task(&self.shared, &self.queue, task).await
    }

    /// Pauses or resumes capture (when the policy allows pausing). Returns whether it is paused.
    pub async fn set_paused(&mut self, paused: bool) -> Result<bool, AgentError> {
        if paused && !self.shared.policy().policy.allow_pause {
            return Ok(false);
        }
        self.shared.state().paused = paused;
        if paused {
            self.capture.stop().await?;
        }
        Ok(paused)
    }

    /// What `status` shows.
    pub async fn status(&self) -> Result<AgentStatus, AgentError> {
        let queue = self.queue.call(|db| db.status()).await?;
        let (capturing, _) = self.shared.capture_allowed();
        let s = self.shared.state();
        Ok(AgentStatus {
            enrolled: s.enrolled,
            device_id: self.config.device_id,
            enrollment: self.config.enrollment.clone(),
            capturing,
            paused: s.paused,
            blocked: s.blocked.clone(),
            queue,
            secret_store: self.secrets.0.kind(),
            last_error: s.last_error.clone(),
            storage_error: s.storage_error.clone(),
        })
    }

    /// The policy capture runs under now.
    pub fn capture_policy(&self) -> Arc<CompiledPolicy> {
        self.shared.policy()
    }

    /// The queue (for tests and diagnostics).
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}
