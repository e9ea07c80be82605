//! Usage rollups: one `company_usage_daily` row per company and local day (in the company's time
//! zone), derived from the raw rows, so recomputing a day always gives the same numbers.
//!
//! Ingest marks the UTC days a batch touches (`rollup_dirty`) in its own transaction; each run
//! recomputes the local days overlapping the marked UTC days and clears the marks it saw. Today
//! is therefore current within one tick of new data, and late data (an agent back from a week
//! offline) corrects exactly the past days it belongs to.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, BTreeSet};
use worktrail_shared::CompanyId;

use super::JobError;
use crate::domain::subscription::DAY_MS;
use crate::state::AppState;
use crate::store::{DirtyDay, StoreError, UsageNumbers};

/// Marks handled per batch of a run.
const MARKS_PER_PASS: i64 = 500;
/// Passes per run, so one run stays bounded.
const MAX_PASSES: usize = 20;

/// The company's time zone, falling back to UTC for a name the database does not know.
pub fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|_| {
        tracing::warn!(time_zone = name, "unknown time zone; using UTC");
        TimeZone::UTC
    })
}

/// `[start, end)` of a local date in epoch ms (23 or 25 hours long on DST changes).
pub fn day_bounds(date: Date, tz: &TimeZone) -> (i64, i64) {
    let start = date.to_zoned(tz.clone()).map(|z| z.timestamp().as_millisecond());
    let end = date
        .tomorrow()
        .and_then(|d| d.to_zoned(tz.clone()))
        .map(|z| z.timestamp().as_millisecond());
    match (start, end) {
        (Ok(s), Ok(e)) => (s, e),
        _ => (0, 0),
    }
}

/// The local date at an instant.
pub fn local_date(ms: i64, tz: &TimeZone) -> Option<Date> {
    Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(tz.clone()).date())
}

/// The local dates that overlap UTC day `utc_day` (one or two).
pub fn local_dates_of_utc_day(utc_day: i64, tz: &TimeZone) -> BTreeSet<Date> {
    let start = utc_day * DAY_MS;
    [start, start + DAY_MS - 1].into_iter().filter_map(|ms| local_date(ms, tz)).collect()
}

/// Recomputes and stores one local day of one company.
pub async fn recompute_day(
    state: &AppState,
    company: CompanyId,
    tz: &TimeZone,
    date: Date,
    now_ms: i64,
) -> Result<UsageNumbers, StoreError> {
    let (from, to) = day_bounds(date, tz);
    let numbers = state.store.compute_usage(company, from, to).await?;
    state.store.upsert_usage_day(company, &date.to_string(), &numbers, now_ms).await?;
    Ok(numbers)
}

/// Flushes the request counts, then recomputes every marked day; returns rows written.
pub async fn run(state: &AppState, now_ms: i64) -> Result<u64, JobError> {
    crate::usage::flush(state).await?;
    let mut written = 0;
    for _ in 0..MAX_PASSES {
        let marks = state.store.dirty_days(MARKS_PER_PASS).await?;
        if marks.is_empty() {
            break;
        }
        let mut by_company: BTreeMap<CompanyId, Vec<DirtyDay>> = BTreeMap::new();
        for m in marks {
            by_company.entry(m.company).or_default().push(m);
        }
        for (company, marks) in by_company {
            let tz = match state.store.company(company).await? {
                Some(c) => zone(&c.time_zone),
                None => TimeZone::UTC,
            };
            let dates: BTreeSet<Date> =
                marks.iter().flat_map(|m| local_dates_of_utc_day(m.utc_day, &tz)).collect();
            for date in dates {
                recompute_day(state, company, &tz, date, now_ms).await?;
                written += 1;
            }
            for m in &marks {
                state.store.clear_dirty(m).await?;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_local_and_dst_days_are_23_or_25_hours() {
        let berlin = zone("Europe/Berlin");
        let (s, e) = day_bounds(jiff::civil::date(2026, 3, 29), &berlin);
        assert_eq!(e - s, 23 * 3_600_000, "spring forward");
        let (s, e) = day_bounds(jiff::civil::date(2026, 10, 25), &berlin);
        assert_eq!(e - s, 25 * 3_600_000, "fall back");
        let (s, _) = day_bounds(jiff::civil::date(2026, 1, 15), &berlin);
        assert_eq!(s, Timestamp::from_second(1_768_431_600).unwrap().as_millisecond(), "23:00Z");
    }

    #[test]
    fn a_utc_day_overlaps_two_local_days_away_from_utc() {
        let tokyo = zone("Asia/Tokyo");
        let utc_day = Timestamp::from_second(1_768_435_200).unwrap().as_millisecond() / DAY_MS;
        let dates = local_dates_of_utc_day(utc_day, &tokyo);
        assert_eq!(dates.len(), 2);
        assert_eq!(local_dates_of_utc_day(utc_day, &TimeZone::UTC).len(), 1);
        assert_eq!(zone("Not/AZone"), TimeZone::UTC);
    }
}
