//! Background jobs: usage rollups, the subscription lifecycle and retention.
//!
//! Every job is idempotent (running it twice for the same moment changes nothing more), and
//! each is claimed per tick through the database (`claim_tick`), so with any number of server
//! replicas on one database each job runs exactly once per tick. `serve` runs them on a
//! schedule; `worktrail-server jobs run-once` runs them on demand at a chosen time.

pub mod lifecycle;
pub mod retention;
pub mod rollup;

use std::time::{Duration, Instant};

use crate::state::AppState;
use crate::store::{JobRun, StoreError};

/// A background job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    /// Usage rollups into `company_usage_daily`.
    Rollup,
    /// Trials and paid periods ending.
    Lifecycle,
    /// Deleting data past its retention.
    Retention,
}

impl Job {
    /// Every job, in the order a tick runs them.
    pub const ALL: [Job; 3] = [Job::Lifecycle, Job::Rollup, Job::Retention];

    /// The job's name (CLI, metrics, leases).
    pub fn name(self) -> &'static str {
        match self {
            Job::Rollup => "rollup",
            Job::Lifecycle => "lifecycle",
            Job::Retention => "retention",
        }
    }

    /// Parses a job name.
    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }
}

/// Why a job run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object store failed.
    #[error("object store: {0}")]
    Objects(#[from] std::io::Error),
}

/// How often each job ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Rollup and lifecycle interval.
    pub interval: Duration,
    /// Retention interval.
    pub retention_interval: Duration,
}

impl Schedule {
    /// Rollups and lifecycle every `interval`, retention 60 times less often.
    pub fn every(interval: Duration) -> Self {
        Self { interval, retention_interval: interval * 60 }
    }

    fn interval_ms(&self, job: Job) -> i64 {
        let d = if job == Job::Retention { self.retention_interval } else { self.interval };
        (d.as_millis() as i64).max(1)
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self::every(Duration::from_secs(60))
    }
}

/// Runs `job` once at `now_ms`; returns the rows it wrote or deleted.
pub async fn run_job(state: &AppState, job: Job, now_ms: i64) -> Result<u64, JobError> {
    match job {
        Job::Rollup => rollup::run(state, now_ms).await,
        Job::Lifecycle => lifecycle::run(state, now_ms).await,
        Job::Retention => retention::run(state, now_ms).await,
    }
}

/// Runs `job` for `tick`, recording the run in the database and the metrics.
pub async fn run_recorded(
    state: &AppState,
    job: Job,
    tick: i64,
    holder: &str,
    now_ms: i64,
) -> Result<u64, JobError> {
    let started = Instant::now();
    let started_at_ms = state.now_ms();
    let result = run_job(state, job, now_ms).await;
    let rows = *result.as_ref().unwrap_or(&0);
    state.metrics.job_run(job.name(), rows, started.elapsed().as_secs_f64(), result.is_err());
    let run = JobRun {
        job: job.name().to_owned(),
        tick,
        holder: holder.to_owned(),
        started_at_ms,
        finished_at_ms: state.now_ms(),
        rows: rows as i64,
        error: result.as_ref().err().map(ToString::to_string),
    };
    if let Err(e) = state.store.record_job_run(&run).await {
        tracing::warn!(job = job.name(), error = %e, "could not record the job run");
    }
    match &result {
        Ok(rows) => tracing::debug!(job = job.name(), tick, rows, "job ran"),
        Err(e) => tracing::error!(job = job.name(), tick, error = %e, "job failed"),
    }
    result
}

/// Runs the jobs on `schedule` until `shutdown` resolves. Each tick of each job is claimed in
/// the database first; a replica that loses the claim skips that tick.
pub async fn run_scheduler(
    state: AppState,
    schedule: Schedule,
    holder: String,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last = [i64::MIN; 3];
    loop {
        let now = state.now_ms();
        for (i, job) in Job::ALL.into_iter().enumerate() {
            let tick = now.div_euclid(schedule.interval_ms(job));
            if tick <= last[i] {
                continue;
            }
            last[i] = tick;
            match state.store.claim_tick(job.name(), tick, &holder, now).await {
                Ok(true) => {
                    let _ = run_recorded(&state, job, tick, &holder, now).await;
                }
                Ok(false) => tracing::debug!(job = job.name(), tick, "tick claimed elsewhere"),
                Err(e) => tracing::warn!(job = job.name(), error = %e, "could not claim a tick"),
            }
        }
        let now = state.now_ms();
        let next = Job::ALL
            .into_iter()
            .map(|j| {
                let ms = schedule.interval_ms(j);
                (now.div_euclid(ms) + 1) * ms
            })
            .min()
            .unwrap_or(now + 1000);
        let wait = Duration::from_millis((next - now).clamp(1, 3_600_000) as u64);
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
