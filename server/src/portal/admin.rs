//! The views of a company's own data for its ADMIN and EMPLOYEEs: overview totals, one person's
//! day, exports. Every function takes the company from the caller's session.

use serde::Serialize;
use std::collections::BTreeMap;
use worktrail_shared::{CompanyId, ErrorCode, UserId};

use crate::error::ApiError;
use crate::jobs::rollup::{day_bounds, local_date, zone};
use crate::state::AppState;
use crate::store::{EmployeeDay, Total};

/// A local date and its bounds in the company's time zone.
#[derive(Clone, Debug, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Start (ms).
    pub from_ms: i64,
    /// End (ms).
    pub to_ms: i64,
    /// The time zone.
    pub time_zone: String,
}

/// The day `date` (or today) in the company's time zone.
pub async fn day(
    state: &AppState,
    company: CompanyId,
    date: Option<&str>,
) -> Result<Day, ApiError> {
    let c = state
        .store
        .company(company)
        .await?
        .ok_or_else(|| ApiError::internal("session company vanished"))?;
    let tz = zone(&c.time_zone);
    let date = match date.filter(|d| !d.is_empty()) {
        Some(d) => d
            .parse::<jiff::civil::Date>()
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "date must be YYYY-MM-DD"))?,
        None => local_date(state.now_ms(), &tz).ok_or_else(|| ApiError::internal("clock"))?,
    };
    let (from_ms, to_ms) = day_bounds(date, &tz);
    Ok(Day { date: date.to_string(), from_ms, to_ms, time_zone: c.time_zone })
}

/// One employee's total.
#[derive(Debug, Serialize)]
pub struct PersonTotal {
    /// User id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Seconds today.
    pub today_secs: i64,
    /// Seconds over the last 7 days.
    pub week_secs: i64,
}

/// The admin's overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    /// Today.
    pub day: Day,
    /// Who tracked today and this week.
    pub people: Vec<PersonTotal>,
    /// Top apps this week.
    pub top_apps: Vec<Total>,
    /// Top sites this week.
    pub top_sites: Vec<Total>,
    /// Hours today, all employees.
    pub today_secs: i64,
    /// Hours this week, all employees.
    pub week_secs: i64,
}

/// The admin's overview of today and the last 7 days.
pub async fn overview(state: &AppState, company: CompanyId) -> Result<Overview, ApiError> {
    let today = day(state, company, None).await?;
    let week_from = today.to_ms - 7 * crate::domain::subscription::DAY_MS;
    let store = &state.store;
    let names: BTreeMap<String, String> = store
        .employees(company)
        .await?
        .into_iter()
        .map(|e| (e.id.to_string(), e.display_name))
        .collect();
    let today_totals: BTreeMap<String, i64> = store
        .tracked_by_employee(company, today.from_ms, today.to_ms)
        .await?
        .into_iter()
        .map(|t| (t.key, t.secs))
        .collect();
    let week = store.tracked_by_employee(company, week_from, today.to_ms).await?;
    let people = week
        .iter()
        .map(|t| PersonTotal {
            id: t.key.clone(),
            name: names.get(&t.key).cloned().unwrap_or_else(|| t.key.clone()),
            today_secs: today_totals.get(&t.key).copied().unwrap_or(0),
            week_secs: t.secs,
        })
        .collect();
    Ok(Overview {
        today_secs: today_totals.values().sum(),
        week_secs: week.iter().map(|t| t.secs).sum(),
        top_apps: store.top_apps(company, None, week_from, today.to_ms, 10).await?,
        top_sites: store.top_sites(company, None, week_from, today.to_ms, 10).await?,
        people,
        day: today,
    })
}

/// One person's day with its summary figures.
#[derive(Debug, Serialize)]
pub struct PersonDay {
    /// Whose.
    pub user: String,
    /// Their name.
    pub name: String,
    /// The day.
    pub day: Day,
    /// The records.
    pub records: EmployeeDay,
    /// Tracked seconds (app spans within the day).
    pub tracked_secs: i64,
    /// Idle seconds.
    pub idle_secs: i64,
    /// Seconds with input / seconds of recorded minutes, in percent.
    pub activity_percent: f64,
    /// Top apps of the day.
    pub top_apps: Vec<Total>,
    /// Top sites of the day.
    pub top_sites: Vec<Total>,
}

/// `user`'s records on `date` (or today).
pub async fn person_day(
    state: &AppState,
    company: CompanyId,
    user: UserId,
    date: Option<&str>,
) -> Result<PersonDay, ApiError> {
    let person = state
        .store
        .user(company, user)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such employee"))?;
    let day = day(state, company, date).await?;
    let records = state.store.employee_day(company, user, day.from_ms, day.to_ms).await?;
    let clip = |s: i64, e: i64| (e.min(day.to_ms) - s.max(day.from_ms)).max(0);
    let tracked_secs = records.apps.iter().map(|a| clip(a.0, a.1)).sum::<i64>() / 1000;
    let idle_secs = records.idle.iter().map(|i| clip(i.0, i.1)).sum::<i64>() / 1000;
    let minutes = records.activity.len() as f64;
    let active: i64 = records.activity.iter().map(|a| a.1).sum();
    Ok(PersonDay {
        user: user.to_string(),
        name: person.display_name,
        top_apps: state.store.top_apps(company, Some(user), day.from_ms, day.to_ms, 5).await?,
        top_sites: state.store.top_sites(company, Some(user), day.from_ms, day.to_ms, 5).await?,
        activity_percent: if minutes > 0.0 {
            active as f64 * 100.0 / (minutes * 60.0)
        } else {
            0.0
        },
        tracked_secs,
        idle_secs,
        records,
        day,
    })
}

/// The SVG timeline of a person's day.
pub fn timeline(d: &PersonDay) -> String {
    let apps = d
        .records
        .apps
        .iter()
        .map(|a| (a.0, a.1, format!("{} — {}", a.2, a.3.clone().unwrap_or_default())))
        .collect();
    let sites = d.records.sites.iter().map(|s| (s.0, s.1, s.2.clone())).collect();
    let idle = d.records.idle.iter().map(|i| (i.0, i.1, "idle".to_owned())).collect();
    let activity = d
        .records
        .activity
        .iter()
        .filter(|a| a.1 > 0)
        .map(|a| (a.0, a.0 + 60_000, format!("{} s of input", a.1)))
        .collect();
    super::chart::timeline(
        d.day.from_ms,
        d.day.to_ms,
        &[
            ("Apps", "#2f6fed", apps),
            ("Sites", "#7a5af8", sites),
            ("Idle", "#98a2b3", idle),
            ("Activity", "#12b76a", activity),
        ],
    )
}

fn csv_field(s: &str) -> String {
    // Quote, double quotes inside, and neutralise spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// App spans of `users` between two instants as CSV.
pub async fn apps_csv(
    state: &AppState,
    company: CompanyId,
    users: &[(UserId, String)],
    from_ms: i64,
    to_ms: i64,
) -> Result<String, ApiError> {
    let mut out = String::from("employee,start_utc,end_utc,seconds,app,title\n");
    for (user, email) in users {
        let day = state.store.employee_day(company, *user, from_ms, to_ms).await?;
        for (s, e, app, title) in day.apps {
            out.push_str(&format!(
                "{},{},{},{},{},{}\n",
                csv_field(email),
                super::format_time(s),
                super::format_time(e),
                (e - s) / 1000,
                csv_field(&app),
                csv_field(title.as_deref().unwrap_or(""))
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
