//! Retention: raw activity and screenshots (rows and stored objects) older than the company's
//! retention are deleted in bounded chunks; rollups stay. A cancelled company keeps its data for
//! [`CANCELLED_GRACE_DAYS`], then its raw data, screenshots and people are deleted (its rollups,
//! subscription history and audit log stay, as they name no individual).
//! Objects are deleted before their rows, so a crash in between leaves a row whose object is
//! already gone — deleted again harmlessly next time — never an object nobody can find.

use super::JobError;
use crate::domain::subscription::DAY_MS;
use crate::state::AppState;

/// Days a cancelled company's data is kept before it is deleted.
pub const CANCELLED_GRACE_DAYS: i64 = 30;
/// Rows deleted per table per statement.
pub const CHUNK: i64 = 1000;
/// Chunks per company per run, so one run stays bounded; the rest waits for the next tick.
pub const MAX_CHUNKS: usize = 100;

/// Deletes what is past retention at `now_ms`; returns rows deleted.
pub async fn run(state: &AppState, now_ms: i64) -> Result<u64, JobError> {
    let mut deleted = 0;
    for target in state.store.retention_targets().await? {
        let purge =
            target.cancelled_at_ms.is_some_and(|at| now_ms >= at + CANCELLED_GRACE_DAYS * DAY_MS);
        let days = target
            .policy_retention_days
            .map_or(target.plan_retention_days, |p| p.min(target.plan_retention_days));
        let cutoff = if purge { i64::MAX } else { now_ms - days * DAY_MS };
        let mut finished = false;
        for _ in 0..MAX_CHUNKS {
            let rows = state.store.delete_raw_before(target.company, cutoff, CHUNK).await?;
            let shots = state.store.screenshots_before(target.company, cutoff, CHUNK).await?;
            for (_, key) in &shots {
                if let Some(key) = key {
                    state.objects.delete(key).await?;
                }
            }
            let ids: Vec<_> = shots.iter().map(|(id, _)| *id).collect();
            let shot_rows = state.store.delete_screenshot_rows(target.company, &ids).await?;
            deleted += rows + shot_rows;
            if rows == 0 && shots.is_empty() {
                finished = true;
                break;
            }
        }
        if purge && finished {
            deleted += state.store.purge_people(target.company, now_ms).await?;
        }
    }
    Ok(deleted)
}
