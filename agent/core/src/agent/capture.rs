//! The capture half of the agent: samples the desktop and writes closed records to the queue.
//! It captures only while the agent is enrolled, not blocked by the server and not paused; when
//! any of that changes it closes its open spans at once, so the gap shows.

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
        }
    }

    async fn push(&self, records: Vec<RecordBody>) -> Result<usize, QueueError> {
        if records.is_empty() {
            return Ok(0);
        }
        let n = records.len();
        let now = self.clock.now_ms();
        let items = records.into_iter().map(|r| (r, None)).collect();
        self.queue.call(move |db| db.push(items, now)).await?;
        Ok(n)
    }

    /// Takes one sample now; returns how many records it wrote.
    pub async fn sample_once(&mut self) -> Result<usize, QueueError> {
        let now = self.clock.now_ms();
        let (allowed, policy) = self.shared.capture_allowed();
        if !allowed {
            let records = self.sampler.stop(now);
            return self.push(records).await;
        }
        let records = self.sampler.sample_once(now, &policy);
        let mut written = self.push(records).await?;
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
        self.queue.call(move |db| db.push(items, taken_at_ms)).await?;
        Ok(n)
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
