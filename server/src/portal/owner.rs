//! The OWNER's view of the platform: companies, plans, subscriptions, key prefixes, audit trails
//! and rollups — never a tracking table. Owner handlers receive only an [`OwnerView`], whose
//! methods are the whole of what an owner can read or change.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use worktrail_shared::{CompanyId, ErrorCode};

use crate::auth::session::{OwnerSession, Rejection};
use crate::domain::subscription::{DAY_MS, Subscription, SubscriptionStatus};
use crate::error::ApiError;
use crate::provision;
use crate::state::AppState;
use crate::store::{AuditEntry, OwnerCompanyRow, Role, Store, UsageSummary};

/// What an owner handler can do, and nothing else.
#[derive(Clone)]
pub struct OwnerView {
    store: Arc<dyn Store>,
    now_ms: i64,
    actor: String,
}

impl std::fmt::Debug for OwnerView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerView({})", self.actor)
    }
}

impl FromRequestParts<AppState> for OwnerView {
    type Rejection = Rejection;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let session = OwnerSession::from_request_parts(parts, state).await?;
        Ok(OwnerView {
            store: state.store.clone(),
            now_ms: state.now_ms(),
            actor: format!("owner:{}", session.owner),
        })
    }
}

/// A company as listed on the owner's dashboard.
#[derive(Clone, Debug, Serialize)]
pub struct CompanyItem {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
    /// Effective status (`suspended` overrides the subscription's).
    pub status: &'static str,
    /// Plan code.
    pub plan: String,
    /// Active employees.
    pub seats_used: i64,
    /// Seat limit.
    pub max_seats: i64,
    /// Last agent call.
    pub last_sync_at_ms: Option<i64>,
    /// Trial end, for trials.
    pub trial_ends_at_ms: Option<i64>,
    /// Average daily active employees over 7 days.
    pub avg_active_7d: f64,
    /// Tracked seconds over 7 days.
    pub tracked_secs_7d: i64,
    /// Average daily active employees over 30 days.
    pub avg_active_30d: f64,
    /// Tracked seconds over 30 days.
    pub tracked_secs_30d: i64,
}

/// The owner's dashboard.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    /// Every company.
    pub companies: Vec<CompanyItem>,
    /// Trials ending within 7 days.
    pub trials_ending: Vec<CompanyItem>,
    /// Companies without an agent call for [`SILENT_DAYS`] days.
    pub silent: Vec<CompanyItem>,
    /// Plan codes, for the create form.
    pub plans: Vec<String>,
}

/// A company is "silent" after this many days without agent calls.
pub const SILENT_DAYS: i64 = 3;

/// One day of a company's rollup, for charts.
#[derive(Debug, Serialize)]
pub struct DayItem {
    /// Local date.
    pub day: String,
    /// Active employees.
    pub active_employees: i64,
    /// Tracked seconds.
    pub tracked_secs: i64,
    /// Agent calls.
    pub sync_requests: i64,
    /// Rejected calls.
    pub rejected_requests: i64,
}

/// The owner's page of one company.
#[derive(Debug, Serialize)]
pub struct CompanyDetail {
    /// The company.
    pub company: CompanyItem,
    /// Its time zone.
    pub time_zone: String,
    /// The last 30 days, oldest first (days without data are zeros).
    pub days: Vec<DayItem>,
    /// Subscription history: time, status, reason.
    pub history: Vec<(i64, &'static str, String)>,
    /// Keys: prefix, created, expires, revoked.
    pub keys: Vec<(String, i64, Option<i64>, Option<i64>)>,
    /// Audit trail: time, actor, action, detail.
    pub audit: Vec<(i64, String, String, String)>,
    /// Plan codes.
    pub plans: Vec<String>,
}

/// Platform-wide reports.
#[derive(Debug, Serialize)]
pub struct Reports {
    /// Per day over 90 days: day, active employees, tracked seconds, companies reporting.
    pub days: Vec<(String, i64, i64, i64)>,
    /// Companies per plan.
    pub plan_mix: BTreeMap<String, i64>,
    /// Companies that ever trialled.
    pub trials: i64,
    /// Of those, how many became paying (active).
    pub converted: i64,
}

/// A state change the owner can make to a company.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OwnerAction {
    /// Move to another plan.
    ChangePlan {
        /// Plan code.
        plan: String,
    },
    /// Extend (or restart) the trial.
    ExtendTrial {
        /// Days to add, 1–90.
        days: i64,
    },
    /// Start a 30-day paid period.
    Activate,
    /// Suspend: agents are refused with `company_suspended`.
    Suspend,
    /// Lift a suspension.
    Reactivate,
    /// Issue a new key; the old ones work for the grace.
    RotateKey {
        /// Days the old keys keep working, 0–30.
        grace_days: i64,
    },
    /// Cancel the subscription.
    Cancel,
}

impl OwnerAction {
    fn name(&self) -> &'static str {
        match self {
            OwnerAction::ChangePlan { .. } => "company.plan_changed",
            OwnerAction::ExtendTrial { .. } => "company.trial_extended",
            OwnerAction::Activate => "company.activated",
            OwnerAction::Suspend => "company.suspended",
            OwnerAction::Reactivate => "company.reactivated",
            OwnerAction::RotateKey { .. } => "company.key_rotated",
            OwnerAction::Cancel => "company.cancelled",
        }
    }
}

/// A new company's one-time secrets.
#[derive(Debug, Serialize)]
pub struct CreatedCompany {
    /// Its id.
    pub company_id: CompanyId,
    /// The company key (shown once).
    pub company_key: String,
    /// The admin's invitation path (single use), when an admin was invited.
    pub invitation_path: Option<String>,
}

/// The form/JSON to create a company.
#[derive(Clone, Debug, Deserialize)]
pub struct NewCompanyForm {
    /// Name.
    pub name: String,
    /// Plan code.
    pub plan: String,
    /// IANA time zone.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// The first admin's e-mail (invited).
    #[serde(default)]
    pub admin_email: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn day_string(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}

impl OwnerView {
    fn status(&self, row: &OwnerCompanyRow) -> &'static str {
        if row.suspended_at_ms.is_some() {
            "suspended"
        } else {
            row.subscription.effective_status(self.now_ms).as_str()
        }
    }

    fn days_ago(&self, n: i64) -> String {
        day_string(self.now_ms - n * DAY_MS)
    }

    fn item(&self, r: &OwnerCompanyRow, week: UsageSummary, month: UsageSummary) -> CompanyItem {
        CompanyItem {
            id: r.id,
            name: r.name.clone(),
            status: self.status(r),
            plan: r.plan_code.clone(),
            seats_used: r.seats_used,
            max_seats: r.max_seats,
            last_sync_at_ms: r.last_sync_at_ms,
            trial_ends_at_ms: (r.subscription.status == SubscriptionStatus::Trialing)
                .then_some(r.subscription.trial_ends_at_ms)
                .flatten(),
            avg_active_7d: week.employee_days as f64 / 7.0,
            tracked_secs_7d: week.tracked_secs,
            avg_active_30d: month.employee_days as f64 / 30.0,
            tracked_secs_30d: month.tracked_secs,
        }
    }

    async fn items(&self) -> Result<Vec<CompanyItem>, ApiError> {
        let rows = self.store.owner_companies().await?;
        let today = self.days_ago(0);
        let week: BTreeMap<CompanyId, UsageSummary> =
            self.store.usage_summaries(&self.days_ago(6), &today).await?.into_iter().collect();
        let month: BTreeMap<CompanyId, UsageSummary> =
            self.store.usage_summaries(&self.days_ago(29), &today).await?.into_iter().collect();
        Ok(rows
            .iter()
            .map(|r| {
                let w = week.get(&r.id).copied().unwrap_or_default();
                let m = month.get(&r.id).copied().unwrap_or_default();
                self.item(r, w, m)
            })
            .collect())
    }

    async fn plan_codes(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.store.list_plans().await?.into_iter().map(|p| p.code).collect())
    }

    /// The dashboard.
    pub async fn dashboard(&self) -> Result<Dashboard, ApiError> {
        let companies = self.items().await?;
        let soon = self.now_ms + 7 * DAY_MS;
        let trials_ending = companies
            .iter()
            .filter(|c| c.status == "trialing" && c.trial_ends_at_ms.is_some_and(|t| t <= soon))
            .cloned()
            .collect();
        let quiet_since = self.now_ms - SILENT_DAYS * DAY_MS;
        let silent = companies
            .iter()
            .filter(|c| c.last_sync_at_ms.is_none_or(|t| t < quiet_since))
            .cloned()
            .collect();
        Ok(Dashboard { companies, trials_ending, silent, plans: self.plan_codes().await? })
    }

    /// One company's page.
    pub async fn company(&self, id: CompanyId) -> Result<CompanyDetail, ApiError> {
        let rows = self.store.owner_companies().await?;
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such company"))?;
        // One entry per day of the last 30 (UTC dates), zero where no rollup exists; the 7- and
        // 30-day figures are summed from the same rows.
        let rows = self.store.usage_days(id, &self.days_ago(29), &self.days_ago(-1)).await?;
        let (today, week_start) = (self.days_ago(0), self.days_ago(6));
        let sum = |from: &str| {
            let mut s = UsageSummary::default();
            for d in rows.iter().filter(|d| d.day.as_str() >= from && d.day <= today) {
                s.employee_days += d.numbers.active_employees;
                s.tracked_secs += d.numbers.tracked_secs;
            }
            s
        };
        let company = self.item(row, sum(&week_start), sum(&self.days_ago(29)));
        let days = (0..30)
            .rev()
            .map(|back| {
                let day = self.days_ago(back);
                let n = rows.iter().find(|r| r.day == day).map(|r| r.numbers.clone());
                let n = n.unwrap_or_default();
                DayItem {
                    day,
                    active_employees: n.active_employees,
                    tracked_secs: n.tracked_secs,
                    sync_requests: n.sync_requests,
                    rejected_requests: n.rejected_requests,
                }
            })
            .collect();
        let history = self
            .store
            .subscription_history(id)
            .await?
            .into_iter()
            .map(|(at, status, reason)| (at, status.as_str(), reason))
            .collect();
        let keys = self
            .store
            .company_keys(id)
            .await?
            .into_iter()
            .map(|k| (k.display_prefix, k.created_at_ms, k.expires_at_ms, k.revoked_at_ms))
            .collect();
        let audit = self
            .store
            .audit_log(id)
            .await?
            .into_iter()
            .rev()
            .map(|a| {
                // Entries by the company's own people may name them or their devices: the
                // owner sees that something was done and by which kind of actor, not to whom.
                if a.actor.starts_with("owner:") || a.actor.starts_with("system:") {
                    (a.at_ms, a.actor, a.action, a.detail_json)
                } else {
                    let kind = a.actor.split(':').next().unwrap_or("company").to_owned();
                    (a.at_ms, kind, a.action, String::new())
                }
            })
            .collect();
        Ok(CompanyDetail {
            company,
            time_zone: row.time_zone.clone(),
            days,
            history,
            keys,
            audit,
            plans: self.plan_codes().await?,
        })
    }

    /// Platform reports over the last 90 days.
    pub async fn reports(&self) -> Result<Reports, ApiError> {
        let days = self
            .store
            .platform_usage(&self.days_ago(89), &self.days_ago(0))
            .await?
            .into_iter()
            .map(|(day, s)| (day, s.employee_days, s.tracked_secs, s.days))
            .collect();
        let rows = self.store.owner_companies().await?;
        let mut plan_mix = BTreeMap::new();
        for r in &rows {
            *plan_mix.entry(r.plan_code.clone()).or_insert(0) += 1;
        }
        let mut seen: BTreeMap<CompanyId, (bool, bool)> = BTreeMap::new();
        for (company, status) in self.store.statuses_seen().await? {
            let e = seen.entry(company).or_default();
            e.0 |= status == SubscriptionStatus::Trialing;
            e.1 |= status == SubscriptionStatus::Active;
        }
        let trials = seen.values().filter(|(t, _)| *t).count() as i64;
        let converted = seen.values().filter(|(t, a)| *t && *a).count() as i64;
        Ok(Reports { days, plan_mix, trials, converted })
    }

    /// The report's daily series as CSV.
    pub async fn report_csv(&self) -> Result<String, ApiError> {
        let mut out = String::from("day,active_employee_days,tracked_hours,companies_reporting\n");
        for (day, active, tracked, companies) in self.reports().await?.days {
            out.push_str(&format!("{day},{active},{:.2},{companies}\n", tracked as f64 / 3600.0));
        }
        Ok(out)
    }

    async fn audit(
        &self,
        company: CompanyId,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let entry = AuditEntry {
            actor: self.actor.clone(),
            action: action.to_owned(),
            detail_json: detail.to_string(),
            at_ms: self.now_ms,
        };
        Ok(self.store.append_audit(company, &entry).await?)
    }

    /// Creates a company (and invites its admin); audited.
    pub async fn create_company(&self, form: &NewCompanyForm) -> Result<CreatedCompany, ApiError> {
        let store = self.store.as_ref();
        let created =
            provision::create_company(store, &form.name, &form.plan, &form.time_zone, self.now_ms)
                .await
                .map_err(provision_error)?;
        let mut invitation_path = None;
        if let Some(email) = form.admin_email.as_deref().filter(|e| !e.trim().is_empty()) {
            let token = provision::invite_user(
                store,
                created.id,
                email,
                "Admin",
                Role::Admin,
                &self.actor,
                self.now_ms,
            )
            .await
            .map_err(provision_error)?;
            invitation_path = Some(format!("/invite/{token}"));
        }
        self.audit(created.id, "company.created", serde_json::json!({
            "name": form.name.trim(), "plan": form.plan, "key_prefix": created.key.display_prefix(),
        }))
        .await?;
        Ok(CreatedCompany {
            company_id: created.id,
            company_key: created.key.expose().to_owned(),
            invitation_path,
        })
    }

    /// Applies an action; returns a new company key for `rotate_key`. Audited.
    pub async fn act(
        &self,
        company: CompanyId,
        action: &OwnerAction,
    ) -> Result<Option<String>, ApiError> {
        let store = self.store.as_ref();
        let sub = store
            .subscription(company)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such company"))?;
        let mut new_key = None;
        let detail = match action {
            OwnerAction::ChangePlan { plan } => {
                let p = store
                    .plan_by_code(plan)
                    .await?
                    .ok_or_else(|| bad(format!("no plan {plan:?}")))?;
                self.store.set_company_plan(company, p.id).await?;
                serde_json::json!({ "plan": plan })
            }
            OwnerAction::ExtendTrial { days } => {
                if !(1..=90).contains(days) {
                    return Err(bad("extend a trial by 1 to 90 days"));
                }
                let from = sub.trial_ends_at_ms.unwrap_or(self.now_ms).max(self.now_ms);
                let next = Subscription {
                    status: SubscriptionStatus::Trialing,
                    trial_ends_at_ms: Some(from + days * DAY_MS),
                    period_end_at_ms: None,
                    grace_days: sub.grace_days,
                };
                store
                    .set_subscription(
                        company,
                        &next,
                        &format!("trial extended by {days} days"),
                        self.now_ms,
                    )
                    .await?;
                serde_json::json!({ "days": days, "trial_ends_at_ms": next.trial_ends_at_ms })
            }
            OwnerAction::Activate => {
                let next = Subscription {
                    status: SubscriptionStatus::Active,
                    period_end_at_ms: Some(self.now_ms + 30 * DAY_MS),
                    ..sub.clone()
                };
                store.set_subscription(company, &next, "paid period started", self.now_ms).await?;
                serde_json::json!({ "period_end_at_ms": next.period_end_at_ms })
            }
            OwnerAction::Suspend => {
                store.set_company_suspended(company, true, self.now_ms).await?;
                serde_json::json!({})
            }
            OwnerAction::Reactivate => {
                store.set_company_suspended(company, false, self.now_ms).await?;
                serde_json::json!({})
            }
            OwnerAction::RotateKey { grace_days } => {
                if !(0..=30).contains(grace_days) {
                    return Err(bad("the old key's grace is 0 to 30 days"));
                }
                let key =
                    provision::rotate_company_key(store, company, grace_days * DAY_MS, self.now_ms)
                        .await
                        .map_err(provision_error)?;
                let detail = serde_json::json!({ "key_prefix": key.display_prefix(), "grace_days": grace_days });
                new_key = Some(key.expose().to_owned());
                detail
            }
            OwnerAction::Cancel => {
                let next = Subscription { status: SubscriptionStatus::Cancelled, ..sub.clone() };
                store
                    .set_subscription(company, &next, "cancelled by the operator", self.now_ms)
                    .await?;
                serde_json::json!({})
            }
        };
        self.audit(company, action.name(), detail).await?;
        Ok(new_key)
    }
}

/// Maps an operator-action failure to an answer.
pub fn provision_error(e: provision::ProvisionError) -> ApiError {
    match e {
        provision::ProvisionError::Invalid(m) => bad(m),
        provision::ProvisionError::Store(s) => s.into(),
    }
}
