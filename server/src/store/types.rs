//! Rows and arguments of the [`super::Store`] contract.

use worktrail_shared::policy::Policy;
use worktrail_shared::{CompanyId, CompanyKeyId, DeviceId, PlanId, RecordId, TaskId, UserId};

use crate::domain::subscription::Subscription;

/// A company as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Company {
    /// Id.
    pub id: CompanyId,
    /// Display name (unique).
    pub name: String,
    /// Current plan.
    pub plan_id: PlanId,
    /// IANA time zone, for days in rollups and schedules.
    pub time_zone: String,
    /// When the operator suspended it, if suspended.
    pub suspended_at_ms: Option<i64>,
    /// Collection policy.
    pub policy: Policy,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last successful agent call.
    pub last_sync_at_ms: Option<i64>,
}

/// A new key's stored form.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// Id.
    pub id: CompanyKeyId,
    /// SHA-256 of the key.
    pub hash: Vec<u8>,
    /// Display prefix (`wtk_` and a few characters).
    pub display_prefix: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<i64>,
}

/// Everything `create_company` stores.
#[derive(Clone, Debug)]
pub struct NewCompany {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
    /// Plan.
    pub plan_id: PlanId,
    /// IANA time zone.
    pub time_zone: String,
    /// Initial subscription.
    pub subscription: Subscription,
    /// First company key.
    pub key: NewKey,
    /// Initial policy.
    pub policy: Policy,
    /// Creation time.
    pub now_ms: i64,
}

/// What the gate needs about a company key, read in one query.
#[derive(Clone, Debug)]
pub struct KeyGate {
    /// The key's id.
    pub key_id: CompanyKeyId,
    /// Its company.
    pub company_id: CompanyId,
    /// When the key stops working (rotation grace), if ever.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// When the company was suspended, if it is.
    pub suspended_at_ms: Option<i64>,
    /// The company's subscription.
    pub subscription: Subscription,
    /// The plan's seat limit.
    pub max_seats: i64,
    /// Whether the plan allows screenshots.
    pub screenshots_allowed: bool,
}

/// A device as the gate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuth {
    /// Device id.
    pub id: DeviceId,
    /// The employee it records for.
    pub employee_id: UserId,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// Role of a company user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The company's administrator.
    Admin,
    /// An employee running the agent.
    Employee,
}

impl Role {
    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Employee => "EMPLOYEE",
        }
    }
    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ADMIN" => Some(Role::Admin),
            "EMPLOYEE" => Some(Role::Employee),
            _ => None,
        }
    }
}

/// A new company user.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Id.
    pub id: UserId,
    /// E-mail (stored lower-case).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Argon2id PHC string, when the user can sign in.
    pub password_hash: Option<String>,
    /// Creation time.
    pub now_ms: i64,
}

/// A company user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// E-mail.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Whether the user is active.
    pub active: bool,
}

/// An enrolment request, validated.
#[derive(Clone, Debug)]
pub struct Enrollment {
    /// The device.
    pub device_id: DeviceId,
    /// The employee's e-mail (lower-case).
    pub email: String,
    /// Display name for a new employee.
    pub display_name: String,
    /// Host name.
    pub hostname: String,
    /// OS description.
    pub os: String,
    /// OS user.
    pub os_user: String,
    /// Agent version.
    pub agent_version: String,
    /// SHA-256 of the new device token.
    pub token_hash: Vec<u8>,
    /// Display prefix of the new token.
    pub token_prefix: String,
}

/// A device as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    /// Id.
    pub id: DeviceId,
    /// Employee.
    pub employee_id: UserId,
    /// Host name.
    pub hostname: String,
    /// Token display prefix.
    pub token_prefix: String,
    /// Enrolment time.
    pub enrolled_at_ms: i64,
    /// Last successful call.
    pub last_seen_at_ms: Option<i64>,
    /// Device clock minus server clock at the last batch, in ms.
    pub clock_offset_ms: Option<i64>,
    /// Revocation time.
    pub revoked_at_ms: Option<i64>,
}

/// Facts about a batch besides its records.
#[derive(Clone, Debug)]
pub struct BatchMeta {
    /// SHA-256 of the batch's identity (records and drop counts, not the send time).
    pub body_hash: Vec<u8>,
    /// Body size as received.
    pub body_bytes: i64,
    /// Server time.
    pub now_ms: i64,
}

/// The result of [`super::Store::ingest_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored now, or stored before with the same body: the acknowledgement to send.
    Acknowledged(worktrail_shared::api::BatchAck),
    /// The batch id was used before with a different body.
    Conflict,
}

/// An uploaded screenshot's stored object.
#[derive(Clone, Debug)]
pub struct ScreenshotUpload {
    /// Object key (`<company>/screenshots/...`).
    pub object_key: String,
    /// Size.
    pub bytes: i64,
    /// SHA-256 of the bytes.
    pub sha256: Vec<u8>,
    /// Server time.
    pub now_ms: i64,
}

/// The result of [`super::Store::attach_screenshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachOutcome {
    /// Recorded now, or before with the same bytes.
    Stored,
    /// No metadata for this id from this device: send the batch first.
    UnknownScreenshot,
    /// The size differs from the metadata's.
    SizeMismatch {
        /// Size announced in the batch.
        expected: i64,
    },
    /// Different bytes were uploaded before under this id.
    Conflict,
}

/// Counts of stored records by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// App spans.
    pub app_spans: i64,
    /// Website spans.
    pub website_spans: i64,
    /// Idle spans.
    pub idle_spans: i64,
    /// Work sessions.
    pub work_sessions: i64,
    /// Activity minutes.
    pub activity: i64,
    /// Screenshots.
    pub screenshots: i64,
    /// Accepted batches.
    pub batches: i64,
}

impl RecordCounts {
    /// All records of every kind.
    pub fn total(&self) -> i64 {
        self.app_spans
            + self.website_spans
            + self.idle_spans
            + self.work_sessions
            + self.activity
            + self.screenshots
    }
}

/// An app span as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpanRow {
    /// Record id.
    pub id: RecordId,
    /// Device.
    pub device_id: DeviceId,
    /// Employee.
    pub employee_id: UserId,
    /// Sequence number.
    pub seq: i64,
    /// Start.
    pub start_ms: i64,
    /// End.
    pub end_ms: i64,
    /// Application.
    pub app: String,
    /// Executable.
    pub exe: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// The task chosen in the agent while the span was recorded.
    pub task_id: Option<TaskId>,
}

/// A screenshot's metadata as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenshotRow {
    /// Record id.
    pub id: RecordId,
    /// Device.
    pub device_id: DeviceId,
    /// Capture time.
    pub taken_at_ms: i64,
    /// Announced size.
    pub bytes: i64,
    /// Blurred on the device.
    pub blurred: bool,
    /// Object key once uploaded.
    pub object_key: Option<String>,
}

/// One company-day of usage, derived from raw rows (see `jobs::rollup`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageNumbers {
    /// Employees with tracked time or input that day.
    pub active_employees: i64,
    /// Devices with tracked time or input that day.
    pub active_devices: i64,
    /// Seconds of app spans within the day.
    pub tracked_secs: i64,
    /// Seconds of idle spans within the day.
    pub idle_secs: i64,
    /// Work sessions started that day.
    pub work_sessions: i64,
    /// Screenshots taken that day.
    pub screenshots: i64,
    /// Records in batches received that day.
    pub records: i64,
    /// Bytes of batches received that day.
    pub bytes_ingested: i64,
    /// Agent API calls that day (accepted and rejected).
    pub sync_requests: i64,
    /// Rejected agent API calls that day.
    pub rejected_requests: i64,
    /// Rejected calls by error code.
    pub rejected_by_code: std::collections::BTreeMap<String, i64>,
}

/// A stored rollup row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDay {
    /// Local date, `YYYY-MM-DD`, in the company's time zone.
    pub day: String,
    /// The numbers.
    pub numbers: UsageNumbers,
    /// When it was computed.
    pub computed_at_ms: i64,
}

/// A pending rollup mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtyDay {
    /// Company.
    pub company: CompanyId,
    /// Days since the epoch (UTC) whose data changed.
    pub utc_day: i64,
    /// Mark version; clearing succeeds only if unchanged.
    pub version: i64,
}

/// What retention needs to know about a company.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionTarget {
    /// Company.
    pub company: CompanyId,
    /// The plan's retention.
    pub plan_retention_days: i64,
    /// The company policy's retention, if shorter.
    pub policy_retention_days: Option<i64>,
    /// When the subscription was cancelled, if it is.
    pub cancelled_at_ms: Option<i64>,
}

/// One run of a background job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    /// Job name.
    pub job: String,
    /// The tick it ran for.
    pub tick: i64,
    /// Which process ran it.
    pub holder: String,
    /// Start.
    pub started_at_ms: i64,
    /// End.
    pub finished_at_ms: i64,
    /// Rows written or deleted.
    pub rows: i64,
    /// Error, if it failed.
    pub error: Option<String>,
}

/// An audit-log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who acted (`system:lifecycle`, `owner:<email>`, …).
    pub actor: String,
    /// What was done (`subscription.expired`, …).
    pub action: String,
    /// JSON details.
    pub detail_json: String,
    /// When.
    pub at_ms: i64,
}
