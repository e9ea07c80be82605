//! The sync half of the agent: moves the queue to the server and keeps the policy fresh.
//!
//! Order per batch: peek (the batch and its exact body are stored first) → send → commit the
//! acknowledgement locally (the records leave the queue in that transaction) → next. A crash at
//! any point resends the same batch id and bytes, and the server answers with the same ack.
//! A batch refused as invalid (422 `invalid_batch`, 413) is bisected until the one record at
//! fault is found and set aside (`queue::poison`); the batches after it are not held back.
//! Failures: network, 408, 429 and 5xx wait with capped, jittered backoff (never less than
//! `Retry-After`, which also holds back on-demand syncs); 401/402/403 block the agent — capture
//! stops, the queue is kept, the reason is kept for `status`, and the server is re-checked every
//! 15 minutes.

use super::{Blocked, Shared};
use crate::clock::Clock;
use crate::queue::{Queue, Refusal};
use crate::sync::backoff::Backoff;
use crate::sync::{Credentials, SyncClient, SyncError};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::Duration;
use worktrail_shared::ErrorCode;
use worktrail_shared::api::PolicyResponse;

/// How often a blocked agent asks the server whether it may resume.
pub const RECHECK_MS: i64 = 15 * 60 * 1000;
/// How often the policy is fetched while running.
pub const POLICY_REFRESH_MS: i64 = 10 * 60 * 1000;

/// What one sync pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Batches acknowledged.
    pub batches: usize,
    /// Records the server stored.
    pub accepted: u64,
    /// Records the server already had.
    pub duplicates: u64,
    /// Screenshots uploaded.
    pub screenshots: usize,
}

/// Sends the queue to the server.
#[derive(Debug)]
pub struct Syncer {
    pub(super) client: Option<SyncClient>,
    pub(super) creds: Option<Credentials>,
    pub(super) shared: Arc<Shared>,
    pub(super) queue: Arc<Queue>,
    pub(super) clock: Arc<dyn Clock>,
    rng: StdRng,
    pub(super) backoff: Backoff,
    next_sync_ms: i64,
    not_before_ms: i64,
    next_recheck_ms: i64,
    next_policy_ms: i64,
}

impl Syncer {
    pub(super) fn new(shared: Arc<Shared>, queue: Arc<Queue>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client: None,
            creds: None,
            shared,
            queue,
            clock,
            rng: StdRng::from_os_rng(),
            backoff: Backoff::default(),
            next_sync_ms: 0,
            not_before_ms: 0,
            next_recheck_ms: 0,
            next_policy_ms: 0,
        }
    }

    /// Asks the server for a single-use sign-in link for this device's employee.
    pub async fn signin_link(&self) -> Result<crate::sync::SigninLink, SyncError> {
        let (client, creds) = self.parts()?;
        client.signin_link(&creds).await
    }

    fn parts(&self) -> Result<(SyncClient, Credentials), SyncError> {
        match (&self.client, &self.creds) {
            (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
            _ => Err(SyncError::NotEnrolled),
        }
    }

    /// When the next scheduled sync is due (epoch ms).
    pub fn next_sync_ms(&self) -> i64 {
        self.next_sync_ms
    }

    /// Before this moment no request is made (the server's `Retry-After`).
    pub fn not_before_ms(&self) -> i64 {
        self.not_before_ms
    }

    /// Sends every queued batch, then every pending screenshot. When blocked, first asks the
    /// server whether the block is lifted.
    pub async fn sync_once(&mut self) -> Result<SyncReport, SyncError> {
        let now = self.clock.now_ms();
        if now < self.not_before_ms {
            return Err(SyncError::Deferred(Duration::from_millis(
                (self.not_before_ms - now) as u64,
            )));
        }
        if self.shared.blocked().is_some() {
            self.recheck().await?;
        }
        let result = self.drain().await;
        self.settle(&result).await;
        result
    }

    async fn drain(&mut self) -> Result<SyncReport, SyncError> {
        let (client, creds) = self.parts()?;
        let mut report = SyncReport::default();
        loop {
            let now = self.clock.now_ms();
            let pending = self.queue.call(move |db| db.pending_batch(now)).await.map_err(local)?;
            let Some(batch) = pending else { break };
            match client.send_batch(&creds, &batch.body).await {
                Ok(ack) => {
                    if ack.batch_id != batch.batch_id {
                        return Err(SyncError::Protocol("ack for another batch".into()));
                    }
                    crate::fault::point(
                        "response-arrived",
                        &format_args!("batch={}", batch.batch_id),
                    );
                    let now = self.clock.now_ms();
                    let id = batch.batch_id;
                    self.queue.call(move |db| db.ack_batch(id, now)).await.map_err(local)?;
                    report.batches += 1;
                    report.accepted += u64::from(ack.accepted);
                    report.duplicates += u64::from(ack.duplicates);
                }
                Err(SyncError::Server { code: ErrorCode::BatchConflict, .. }) => {
                    tracing::warn!(batch.id = %batch.batch_id, "batch id refused; resending as a new batch");
                    let id = batch.batch_id;
                    self.queue.call(move |db| db.abandon_batch(id)).await.map_err(local)?;
                }
                Err(SyncError::Server {
                    code: code @ (ErrorCode::InvalidBatch | ErrorCode::PayloadTooLarge),
                    message,
                    status,
                    retry_after,
                }) => {
                    // Repeating cannot help, but only one record may be at fault: isolate it
                    // so the rest of the queue goes on (see `queue::poison`).
                    let (id, now) = (batch.batch_id, self.clock.now_ms());
                    let reason = format!("{code}: {message}");
                    let refusal = self
                        .queue
                        .call(move |db| db.refused_batch(id, &reason, now))
                        .await
                        .map_err(local)?;
                    tracing::warn!(batch.id = %id, records = batch.records, ?refusal, "the server refused a batch");
                    if refusal == Refusal::Stuck {
                        return Err(SyncError::Server { status, code, message, retry_after });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        loop {
            let next = self.queue.call(|db| db.next_upload()).await.map_err(local)?;
            let Some((id, jpeg)) = next else { break };
            match client.upload_screenshot(&creds, id, jpeg).await {
                Ok(_) => report.screenshots += 1,
                Err(e) if !e.is_retryable() && !e.blocks_agent() => {
                    // This one image is refused for good; it must not hold back the rest.
                    tracing::error!(error = %e, record.id = %id, "screenshot refused; discarding it");
                }
                Err(e) => return Err(e),
            }
            self.queue.call(move |db| db.uploaded(id)).await.map_err(local)?;
        }
        Ok(report)
    }

    /// Bookkeeping after a pass: schedule, backoff, block.
    async fn settle<T>(&mut self, result: &Result<T, SyncError>) {
        let now = self.clock.now_ms();
        match result {
            Ok(_) => {
                self.backoff.reset();
                let interval =
                    i64::from(self.shared.policy().policy.sync_interval_secs.max(1)) * 1000;
                self.next_sync_ms = now + interval;
                self.note_error(None).await;
            }
            Err(e) if e.blocks_agent() => self.block(e).await,
            Err(SyncError::Deferred(_)) | Err(SyncError::NotEnrolled) => {}
            Err(e) if !e.is_retryable() => {
                // A refusal that repeating cannot fix (400, 404, 413, 415, 422, a bad answer):
                // no automatic retry; `status` shows it and "sync now" or a restart tries again.
                tracing::error!(error = %e, "sync refused; not retrying until asked to");
                self.next_sync_ms = i64::MAX;
                self.note_error(Some(e.to_string())).await;
            }
            Err(e) => {
                let delay = self.backoff.next_delay(&mut self.rng, e.retry_after());
                self.next_sync_ms = now + delay.as_millis() as i64;
                if let Some(ra) = e.retry_after() {
                    self.not_before_ms = now + ra.as_millis() as i64;
                }
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "sync failed");
                self.note_error(Some(e.to_string())).await;
            }
        }
    }

    /// Keeps the last sync error for `status` (also across processes: `worktrail-agentd status`
    /// reads it while `run` works).
    async fn note_error(&mut self, e: Option<String>) {
        if self.shared.last_error() == e {
            return;
        }
        self.shared.set_last_error(e.clone());
        let _ = self.queue.call(move |db| db.set_meta("last_error", e.as_deref())).await;
    }

    async fn block(&mut self, e: &SyncError) {
        let now = self.clock.now_ms();
        let SyncError::Server { code, message, .. } = e else { return };
        let blocked = Blocked { code: *code, message: message.clone(), since_ms: now };
        tracing::warn!(code = %code, "the server refused this agent; capture stops until it is re-enabled");
        self.next_recheck_ms = now + RECHECK_MS;
        self.shared.set_blocked(Some(blocked.clone()));
        let json = serde_json::to_string(&blocked).unwrap_or_default();
        let _ = self.queue.call(move |db| db.set_meta("blocked", Some(&json))).await;
    }

    async fn unblock(&mut self) {
        if self.shared.blocked().is_some() {
            tracing::info!("the server accepts this agent again; capture resumes");
            self.shared.set_blocked(None);
            let _ = self.queue.call(|db| db.set_meta("blocked", None)).await;
        }
    }

    /// Applies a policy from the server and keeps it for the next start.
    pub(super) async fn apply_policy(&mut self, p: PolicyResponse) {
        let json = serde_json::to_string(&p).unwrap_or_default();
        self.shared.set_policy(&p);
        let _ = self.queue.call(move |db| db.set_meta("policy", Some(&json))).await;
    }

    /// Fetches the company's open tasks with the policy and keeps them across restarts. A failure
    /// keeps the tasks known so far (a server without tasks answers 404: the agent offers none).
    async fn refresh_tasks(&mut self, client: &SyncClient, creds: &Credentials) {
        let tasks = match client.tasks(creds).await {
            Ok(t) => t.tasks,
            Err(SyncError::Server { status: 404, .. }) => Vec::new(),
            Err(e) => {
                tracing::debug!(error = %e, "could not fetch the tasks");
                return;
            }
        };
        let json = serde_json::to_string(&tasks).unwrap_or_default();
        self.shared.set_tasks(tasks);
        let task = self.shared.task().map(|t| t.to_string());
        let _ = self
            .queue
            .call(move |db| {
                db.set_meta("tasks", Some(&json))?;
                db.set_meta("task", task.as_deref())
            })
            .await;
    }

    /// Fetches and applies the policy. Success also lifts a block; a 401/402/403 sets one.
    pub async fn refresh_policy(&mut self) -> Result<(), SyncError> {
        let (client, creds) = self.parts()?;
        let now = self.clock.now_ms();
        self.next_policy_ms = now + POLICY_REFRESH_MS;
        match client.policy(&creds).await {
            Ok(p) => {
                self.unblock().await;
                self.apply_policy(p).await;
                self.refresh_tasks(&client, &creds).await;
                Ok(())
            }
            Err(e) => {
                if e.blocks_agent() {
                    self.block(&e).await;
                }
                if let Some(ra) = e.retry_after() {
                    self.not_before_ms = self.not_before_ms.max(now + ra.as_millis() as i64);
                }
                Err(e)
            }
        }
    }

    async fn recheck(&mut self) -> Result<(), SyncError> {
        let r = self.refresh_policy().await;
        self.next_recheck_ms = self.clock.now_ms() + RECHECK_MS;
        r
    }

    /// One scheduled step of the run loop: re-check when blocked, else refresh the policy and
    /// sync when due. Errors are logged and scheduled, never fatal.
    pub async fn step(&mut self) {
        let now = self.clock.now_ms();
        if self.shared.blocked().is_some() {
            if now >= self.next_recheck_ms {
                let _ = self.recheck().await;
            }
            return;
        }
        if now >= self.next_policy_ms
            && now >= self.not_before_ms
            && let Err(e) = self.refresh_policy().await
        {
            tracing::debug!(error = %e, "policy refresh failed");
        }
        if now >= self.next_sync_ms && self.shared.blocked().is_none() {
            match self.sync_once().await {
                Ok(r) if r.batches > 0 || r.screenshots > 0 => tracing::info!(?r, "synced"),
                _ => {}
            }
        }
    }

    /// Asks for a sync at the next step (e.g. the user pressed "sync now").
    pub fn sync_soon(&mut self) {
        self.next_sync_ms = 0;
    }
}

fn local(e: crate::queue::QueueError) -> SyncError {
    SyncError::Storage(e.to_string())
}
