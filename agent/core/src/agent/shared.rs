//! State both halves of the agent read and write: the policy in force, whether the server
//! blocks the agent (kept across restarts), pause, enrolment, and whether the queue can be
//! written. Held briefly behind a std mutex,
//! never across an await.

use crate::policy::CompiledPolicy;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use worktrail_shared::api::{AgentTask, PolicyResponse};
use worktrail_shared::{ErrorCode, TaskId};

/// Why the server refuses this agent (kept across restarts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// The stable code, e.g. `trial_expired`.
    pub code: ErrorCode,
    /// The server's message.
    pub message: String,
    /// Since when.
    pub since_ms: i64,
}

#[derive(Debug)]
pub(super) struct SharedState {
    pub(super) policy: Arc<CompiledPolicy>,
    pub(super) blocked: Option<Blocked>,
    pub(super) paused: bool,
    pub(super) enrolled: bool,
    pub(super) last_error: Option<String>,
    /// Why the queue cannot be written (disk full, read-only): capture waits meanwhile.
    pub(super) storage_error: Option<String>,
    /// The company's open tasks (empty: it uses none).
    pub(super) tasks: Vec<AgentTask>,
    /// The task the employee chose, always one of `tasks`.
    pub(super) task: Option<TaskId>,
}

/// State both halves read: the policy, whether the server blocks the agent, pause.
#[derive(Debug)]
pub struct Shared(pub(super) Mutex<SharedState>);

impl Shared {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// Whether capture may run now, and the policy to run it under.
    pub fn capture_allowed(&self) -> (bool, Arc<CompiledPolicy>) {
        let s = self.state();
        let allowed = s.enrolled && s.blocked.is_none() && !s.paused && s.storage_error.is_none();
        (allowed, s.policy.clone())
    }
    /// The current policy.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.state().policy.clone()
    }
    pub(super) fn set_policy(&self, p: &PolicyResponse) {
        self.state().policy = Arc::new(CompiledPolicy::new(p.policy.clone(), &p.time_zone));
    }
    /// The block, if any.
    pub fn blocked(&self) -> Option<Blocked> {
        self.state().blocked.clone()
    }
    pub(super) fn set_blocked(&self, b: Option<Blocked>) {
        self.state().blocked = b;
    }
    /// The last sync error, if the last sync failed.
    pub fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }
    pub(super) fn set_last_error(&self, e: Option<String>) {
        self.state().last_error = e;
    }
    /// Why the queue cannot be written, while it cannot.
    pub fn storage_error(&self) -> Option<String> {
        self.state().storage_error.clone()
    }
    pub(super) fn set_storage_error(&self, e: Option<String>) {
        self.state().storage_error = e;
    }
    /// The company's open tasks and the one chosen.
    pub fn tasks(&self) -> (Vec<AgentTask>, Option<TaskId>) {
        let s = self.state();
        (s.tasks.clone(), s.task)
    }
    /// The task chosen.
    pub fn task(&self) -> Option<TaskId> {
        self.state().task
    }
    /// Replaces the offered tasks; a chosen task that is no longer offered is unchosen.
    pub(super) fn set_tasks(&self, tasks: Vec<AgentTask>) {
        let mut s = self.state();
        if s.task.is_some_and(|t| !tasks.iter().any(|o| o.id == t)) {
            s.task = None;
        }
        s.tasks = tasks;
    }
    /// Chooses a task (`None`: no task); false when `task` is not one of the offered tasks.
    pub(super) fn choose_task(&self, task: Option<TaskId>) -> bool {
        let mut s = self.state();
        if task.is_some_and(|t| !s.tasks.iter().any(|o| o.id == t)) {
            return false;
        }
        s.task = task;
        true
    }
}
