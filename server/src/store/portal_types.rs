//! Rows of the portal's part of the [`super::Store`] contract: sessions, invitations, the owner's
//! aggregate views and the admin's and employee's views of their own company.

use worktrail_shared::{CompanyId, OwnerId, PlanId, RecordId, TaskId, UserId};

use super::Role;
use crate::domain::subscription::Subscription;

/// Who a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A platform operator.
    Owner(OwnerId),
    /// A company user.
    User(CompanyId, UserId),
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// Whose.
    pub principal: Principal,
    /// Expiry.
    pub expires_at_ms: i64,
}

/// A sign-in candidate found by e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginCandidate {
    /// Who it is.
    pub principal: Principal,
    /// Role (owners are `None`).
    pub role: Option<Role>,
    /// Argon2id PHC string, if a password was set.
    pub password_hash: Option<String>,
    /// Whether the account is active.
    pub active: bool,
}

/// A pending invitation, found by its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Company.
    pub company: CompanyId,
    /// Invited user.
    pub user: UserId,
    /// Their e-mail.
    pub email: String,
    /// Expiry.
    pub expires_at_ms: i64,
    /// When it was used, if it was.
    pub used_at_ms: Option<i64>,
}

/// What redeeming a sign-in link ("Open my dashboard") found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigninRedemption {
    /// The link was good; it is used up now and signs in this user.
    SignedIn(UserId),
    /// The link was used already.
    Used,
    /// The link has expired unused.
    Expired,
    /// No such link in this company.
    Unknown,
}

/// One company as the owner sees it: metadata and counts, never a person.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerCompanyRow {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
    /// Plan id.
    pub plan_id: PlanId,
    /// Plan code.
    pub plan_code: String,
    /// Seat limit.
    pub max_seats: i64,
    /// Active employees (a count).
    pub seats_used: i64,
    /// Subscription.
    pub subscription: Subscription,
    /// Suspension time.
    pub suspended_at_ms: Option<i64>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last agent call.
    pub last_sync_at_ms: Option<i64>,
    /// IANA time zone.
    pub time_zone: String,
}

/// Rollup sums of one company over a range of days.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsageSummary {
    /// Days with a rollup row.
    pub days: i64,
    /// Sum of daily active employees (divide by days for the average).
    pub employee_days: i64,
    /// Tracked seconds.
    pub tracked_secs: i64,
    /// Idle seconds.
    pub idle_secs: i64,
    /// Work sessions.
    pub work_sessions: i64,
    /// Screenshots.
    pub screenshots: i64,
    /// Agent calls.
    pub sync_requests: i64,
    /// Rejected agent calls.
    pub rejected_requests: i64,
    /// Records ingested.
    pub records: i64,
    /// Bytes ingested.
    pub bytes_ingested: i64,
}

/// A company key as listed (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// Display prefix.
    pub display_prefix: String,
    /// Creation.
    pub created_at_ms: i64,
    /// Expiry (rotation grace).
    pub expires_at_ms: Option<i64>,
    /// Revocation.
    pub revoked_at_ms: Option<i64>,
}

/// A company user as the admin lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmployeeRow {
    /// User.
    pub id: UserId,
    /// E-mail.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Active.
    pub active: bool,
    /// Devices enrolled.
    pub devices: i64,
    /// Last agent call from any of their devices.
    pub last_seen_at_ms: Option<i64>,
}

/// Tracked time per employee or per app/site over a range.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Total {
    /// The employee id, app name or domain.
    pub key: String,
    /// Seconds.
    pub secs: i64,
}

/// Everything of one employee between two instants.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EmployeeDay {
    /// App spans: start, end, app, title.
    pub apps: Vec<(i64, i64, String, Option<String>)>,
    /// Website spans: start, end, domain, url.
    pub sites: Vec<(i64, i64, String, Option<String>)>,
    /// Idle spans: start, end.
    pub idle: Vec<(i64, i64)>,
    /// Activity: minute, active seconds.
    pub activity: Vec<(i64, i64)>,
    /// Screenshots: id, time, uploaded.
    pub screenshots: Vec<(RecordId, i64, bool)>,
}

/// One data-access record: who viewed whose data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccessRow {
    /// Viewer's name.
    pub viewer: String,
    /// What was viewed.
    pub what: String,
    /// When.
    pub at_ms: i64,
}

/// A task (within a project).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow {
    /// Task id (what the agent records on app spans).
    pub id: TaskId,
    /// Project name.
    pub project: String,
    /// Task name.
    pub name: String,
    /// Archived tasks are not offered to the agent.
    pub archived: bool,
    /// Time recorded against the task, all time.
    pub tracked_secs: i64,
}
