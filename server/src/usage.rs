//! Per-company counts of agent API calls by outcome, for the usage rollup ("sync requests and
//! rejected sync requests by code"). Counted in memory on the request path and flushed to the
//! database by the rollup job and at shutdown; a crash loses at most one interval of counts,
//! never activity data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use worktrail_shared::CompanyId;

/// Width of a count bucket. Every real time-zone offset is a multiple of 15 minutes, so local
/// days are whole buckets.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// Where the gate leaves the company it proved, for the counting middleware to read.
#[derive(Clone, Debug, Default)]
pub struct CompanySlot(pub Arc<OnceLock<CompanyId>>);

/// Pending counts.
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<HashMap<(CompanyId, i64, String), i64>>);

impl RequestCounts {
    /// Counts one call of `company` at `now_ms` with outcome `code` (`ok` or an error code).
    pub fn add(&self, company: CompanyId, now_ms: i64, code: &str) {
        let bucket = now_ms - now_ms.rem_euclid(BUCKET_MS);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((company, bucket, code.to_owned())).or_default() += 1;
    }

    /// Takes every pending count.
    pub fn drain(&self) -> Vec<(CompanyId, i64, String, i64)> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.drain().map(|((c, b, code), n)| (c, b, code, n)).collect()
    }

    /// Puts counts back after a failed flush.
    pub fn restore(&self, counts: Vec<(CompanyId, i64, String, i64)>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (c, b, code, n) in counts {
            *map.entry((c, b, code)).or_default() += n;
        }
    }
}

/// Writes the pending counts to the database (marking their days for the rollup); on failure
/// they are kept for the next attempt.
pub async fn flush(state: &crate::AppState) -> Result<(), crate::store::StoreError> {
    let counts = state.requests.drain();
    if counts.is_empty() {
        return Ok(());
    }
    if let Err(e) = state.store.add_request_counts(&counts).await {
        state.requests.restore(counts);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bucketed_by_quarter_hour_and_drained_once() {
        let counts = RequestCounts::default();
        let c = CompanyId::new();
        counts.add(c, BUCKET_MS + 5, "ok");
        counts.add(c, 2 * BUCKET_MS - 1, "ok");
        counts.add(c, 2 * BUCKET_MS, "trial_expired");
        let mut drained = counts.drain();
        drained.sort_by_key(|d| d.1);
        assert_eq!(
            drained,
            vec![(c, BUCKET_MS, "ok".into(), 2), (c, 2 * BUCKET_MS, "trial_expired".into(), 1)]
        );
        assert!(counts.drain().is_empty());
        counts.restore(drained);
        assert_eq!(counts.drain().len(), 2);
    }
}
