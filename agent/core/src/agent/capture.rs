//! The capture half of the agent: samples the desktop and writes closed records to the queue.
//! It captures only while the agent is enrolled, not blocked by the server and not paused; when
//! any of that changes it closes its open spans at once, so the gap shows.
//!
//! When the queue cannot be written (the disk is full, the file or its file system read-only)
//! capture pauses the same way: the records that were closing are held in memory (a bounded
//! handful: nothing new is sampled meanwhile), the reason is kept for `status`, and every sample
//! tick tries again; the first write that succeeds stores the held records and capture resumes.

use super::Shared;
use crate::clock::Clock;
use crate::probe::screen::{self, ScreenProbe};
use crate::queue::{Queue, QueueError};
use crate::sampler::Sampler;
use crate::sampler::screenshots::ScreenshotSchedule;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use worktrail_shared::api::RecordBody;

/// Samples and screenshots into the queue.
pub struct Capture {
    pub(super) sampler: Sampler,
    pub(super) screen: Option<Box<dyn ScreenProbe>>,
    pub(super) schedule: ScreenshotSchedule,
    pub(super) shared: Arc<Shared>,
    pub(super) queue: Arc<Queue>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) rng: StdRng,
    /// Records that could not be written yet (the queue refused the write).
    held: Vec<RecordBody>,
}

/// Most records held in memory while the queue cannot be written.
const MAX_HELD: usize = 10_000;

/// Why a failed write means the storage is unusable (as opposed to a bug or a bad record).
fn storage_failure(e: &QueueError) -> Option<&'static str> {
    use rusqlite::ErrorCode as C;
    let QueueError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) = e else { return None };
    match f.code {
        C::DiskFull => Some("the disk is full"),
        C::ReadOnly => Some("the queue is read-only"),
        C::SystemIoFailure | C::CannotOpen | C::PermissionDenied => {
            Some("the queue cannot be written")
        }
        _ => None,
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("sampler", &self.sampler).finish_non_exhaustive()
    }
}

impl Capture {
    pub(super) fn new(
        sampler: Sampler,
        screen: Option<Box<dyn ScreenProbe>>,
        shared: Arc<Shared>,
        queue: Arc<Queue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            sampler,
            screen,
            schedule: ScreenshotSchedule::default(),
            shared,
            queue,
            clock,
            rng: StdRng::from_os_rng(),
            held: Vec::new(),
        }
    }

    /// Writes `records` (after any held ones). When the storage refuses, they are held and
    /// capture pauses; returns how many records were written.
    async fn push(&mut self, records: Vec<RecordBody>) -> Result<usize, QueueError> {
        self.held.extend(records);
        if self.held.is_empty() {
            return Ok(0);
        }
        if self.held.len() > MAX_HELD {
            let over = self.held.len() - MAX_HELD;
            tracing::error!(
                records = over,
                "too many records waiting for the disk; dropping the oldest"
            );
            self.held.drain(..over);
        }
        let now = self.clock.now_ms();
        let items = self.held.iter().cloned().map(|r| (r, None)).collect();
        match self.queue.call(move |db| db.push(items, now)).await {
            Ok(_) => {
                self.storage_recovered();
                Ok(std::mem::take(&mut self.held).len())
            }
            Err(e) => match storage_failure(&e) {
                Some(why) => {
                    self.storage_failed(why, &e);
                    Ok(0)
                }
                None => {
                    self.held.clear();
                    Err(e)
                }
            },
        }
    }

    fn storage_failed(&self, why: &str, e: &QueueError) {
        if self.shared.storage_error().is_none() {
            tracing::error!(error = %e, held = self.held.len(), "{why}; capture pauses until the queue can be written");
            self.shared.set_storage_error(Some(format!("{why} ({e})")));
        }
    }

    fn storage_recovered(&self) {
        if self.shared.storage_error().is_some() {
            tracing::info!("the queue can be written again; capture resumes");
            self.shared.set_storage_error(None);
        }
    }

    /// While the queue cannot be written: tries again (the held records, or a tiny write when
    /// none are held); returns whether it can be written now.
    async fn storage_retry(&mut self) -> Result<bool, QueueError> {
        if !self.held.is_empty() {
            self.push(Vec::new()).await?;
        } else {
            let now = self.clock.now_ms().to_string();
            match self.queue.call(move |db| db.set_meta("capture_checked_ms", Some(&now))).await {
                Ok(()) => self.storage_recovered(),
                Err(e) => match storage_failure(&e) {
                    Some(why) => self.storage_failed(why, &e),
                    None => return Err(e),
                },
            }
        }
        Ok(self.shared.storage_error().is_none())
    }

    /// Takes one sample now; returns how many records it wrote.
    pub async fn sample_once(&mut self) -> Result<usize, QueueError> {
        let now = self.clock.now_ms();
        if self.shared.storage_error().is_some() && !self.storage_retry().await? {
            let records = self.sampler.stop(now);
            self.push(records).await?;
            return Ok(0);
        }
        let (allowed, policy) = self.shared.capture_allowed();
        if !allowed {
            let records = self.sampler.stop(now);
            return self.push(records).await;
        }
        self.sampler.set_task(self.shared.task());
        let records = self.sampler.sample_once(now, &policy);
        let mut written = self.push(records).await?;
        if self.shared.storage_error().is_some() {
            // This very write failed: close what is open, so the gap shows.
            let records = self.sampler.stop(now);
            self.push(records).await?;
            return Ok(0);
        }
        let shots = &policy.policy.screenshots;
        if shots.enabled && self.sampler.is_active() && self.screen.is_some() {
            let interval = i64::from(shots.interval_secs.max(1)) * 1000;
            if self.schedule.due(now, interval, &mut self.rng) {
                written += self.screenshot_now().await?;
            }
        }
        Ok(written)
    }

    /// Captures every monitor now (policy permitting) and queues the screenshots.
    pub async fn screenshot_now(&mut self) -> Result<usize, QueueError> {
        let (allowed, policy) = self.shared.capture_allowed();
        let Some(mut probe) = self.screen.take().filter(|_| allowed) else {
            return Ok(0);
        };
        let shot_policy = policy.policy.screenshots.clone();
        let taken_at_ms = self.clock.now_ms();
        let (probe, shots) = tokio::task::spawn_blocking(move || {
            let shots = probe.capture_all().map(|raws| {
                raws.into_iter()
                    .enumerate()
                    .filter_map(|(i, raw)| {
                        screen::process(i.min(255) as u8, raw, &shot_policy)
                            .inspect_err(|e| tracing::warn!(error = %e, "screenshot dropped"))
                            .ok()
                    })
                    .collect::<Vec<_>>()
            });
            (probe, shots)
        })
        .await
        .map_err(|_| QueueError::Closed)?;
        self.screen = Some(probe);
        let shots = match shots {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "screen capture failed");
                return Ok(0);
            }
        };
        let n = shots.len();
        let items: Vec<_> = shots
            .into_iter()
            .map(|s| {
                let body = RecordBody::Screenshot {
                    taken_at_ms,
                    monitor: s.monitor,
                    width: s.width,
                    height: s.height,
                    bytes: s.jpeg.len() as u64,
                    blurred: s.blurred,
                };
                (body, Some(s.jpeg))
            })
            .collect();
        match self.queue.call(move |db| db.push(items, taken_at_ms)).await {
            Ok(_) => Ok(n),
            Err(e) => match storage_failure(&e) {
                // Screenshots are not held in memory: this one is lost, and capture pauses.
                Some(why) => {
                    self.storage_failed(why, &e);
                    Ok(0)
                }
                None => Err(e),
            },
        }
    }

    /// Where browser extensions' tab reports go (see [`crate::websites`]).
    pub fn tabs(&self) -> Arc<crate::websites::tabs::Tabs> {
        self.sampler.tabs()
    }

    /// The clock samples are taken by.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Stops capture: closes open spans and the session and writes them.
    pub async fn stop(&mut self) -> Result<usize, QueueError> {
        let records = self.sampler.stop(self.clock.now_ms());
        self.push(records).await
    }
}
