//! Storage: one [`Store`] contract, two backends (SQLite embedded by default, PostgreSQL for
//! scale), chosen by the database URL's scheme.
//!
//! Invariants every backend keeps:
//! - every method on tenant data takes the [`CompanyId`] first and touches only that company's
//!   rows; the only lookups not scoped by company are the ones that *establish* the company from
//!   a secret (`gate_by_key_hash`) — their unique indexes on the hash are the one exception to
//!   "`company_id` leads every index";
//! - a batch is stored in one transaction together with its acknowledgement, so a retry either
//!   finds the whole batch and its answer or nothing;
//! - times are epoch milliseconds, ids UUIDv7, on both backends.

pub mod portal_types;
mod sql;
pub use sql::PgStore;
pub mod types;

pub use portal_types::*;
pub use types::*;

use async_trait::async_trait;
use std::sync::Arc;
use worktrail_shared::api::BatchRequest;
use worktrail_shared::policy::Policy;
use worktrail_shared::{CompanyId, DeviceId, OwnerId, PlanId, RecordId, UserId};

use crate::domain::plan::Plan;
use crate::domain::subscription::{Subscription, SubscriptionStatus};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (plan code, e-mail, company name) is already taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The addressed row does not exist in this company.
    #[error("not found: {0}")]
    NotFound(String),
    /// Enrolling one more employee would exceed the plan's seats.
    #[error("the plan's seat limit is reached")]
    SeatLimitReached,
    /// The device (or its employee) was revoked or deactivated.
    #[error("{0}")]
    DeviceRevoked(String),
    /// The database URL or its settings are not usable.
    #[error("database configuration: {0}")]
    Config(String),
    /// A stored value could not be read back (a bug or a corrupted row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The SQLite writer thread could not store a batch.
    #[error("database write: {0}")]
    Write(String),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Which backend a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The storage contract. See the module documentation for the invariants.
#[async_trait]
pub trait Store: OwnerStore + PortalStore + Send + Sync + 'static {
    /// The backend this store runs on.
    fn backend(&self) -> Backend;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the connection pool; every later call fails. Used at shutdown (and by tests that
    /// prove a request was refused without touching the database).
    async fn close(&self);

    // ---- platform: plans and owners -------------------------------------------------------
    /// Stores a new plan; `Conflict` when its code is taken.
    async fn create_plan(&self, plan: &Plan, now_ms: i64) -> Result<(), StoreError>;
    /// Every plan, by price.
    async fn list_plans(&self) -> Result<Vec<Plan>, StoreError>;
    /// The plan with this code.
    async fn plan_by_code(&self, code: &str) -> Result<Option<Plan>, StoreError>;
    /// Stores a platform operator; `Conflict` when the e-mail is taken.
    async fn create_owner(
        &self,
        id: OwnerId,
        email: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Replaces an operator's password hash; false when no such operator.
    async fn set_owner_password(
        &self,
        email: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError>;

    // ---- companies, subscriptions, keys ---------------------------------------------------
    /// Creates a company with its subscription, first key and policy in one transaction.
    async fn create_company(&self, new: &NewCompany) -> Result<(), StoreError>;
    /// A company by id.
    async fn company(&self, company: CompanyId) -> Result<Option<Company>, StoreError>;
    /// A company by its exact name (names are unique).
    async fn company_by_name(&self, name: &str) -> Result<Option<Company>, StoreError>;
    /// Adds a key (rotation); the old keys stay valid until their `expires_at_ms`.
    async fn add_company_key(&self, company: CompanyId, key: &NewKey) -> Result<(), StoreError>;
    /// Sets every key of the company that has no expiry, or a later one, to expire at `at_ms`
    /// (the rotation grace), except `keep`.
    async fn expire_company_keys(
        &self,
        company: CompanyId,
        keep: worktrail_shared::CompanyKeyId,
        at_ms: i64,
    ) -> Result<u64, StoreError>;
    /// Suspends or reactivates a company at `now_ms`, with a row in its subscription history.
    async fn set_company_suspended(
        &self,
        company: CompanyId,
        suspended: bool,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The company's current subscription.
    async fn subscription(&self, company: CompanyId) -> Result<Option<Subscription>, StoreError>;
    /// Replaces the current subscription and appends the change to its history.
    async fn set_subscription(
        &self,
        company: CompanyId,
        sub: &Subscription,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The subscription history, oldest first.
    async fn subscription_history(
        &self,
        company: CompanyId,
    ) -> Result<Vec<(i64, SubscriptionStatus, String)>, StoreError>;
    /// Replaces the company's collection policy.
    async fn set_policy(&self, company: CompanyId, policy: &Policy) -> Result<(), StoreError>;

    // ---- the agent gate -------------------------------------------------------------------
    /// Everything the gate needs to judge a company key, in one query; `None` for an unknown key.
    async fn gate_by_key_hash(&self, key_hash: &[u8]) -> Result<Option<KeyGate>, StoreError>;
    /// The device holding this token in this company.
    async fn device_by_token_hash(
        &self,
        company: CompanyId,
        token_hash: &[u8],
    ) -> Result<Option<DeviceAuth>, StoreError>;

    // ---- users and devices ----------------------------------------------------------------
    /// Creates a company user; `Conflict` when the e-mail is taken in this company.
    async fn create_user(&self, company: CompanyId, user: &NewUser) -> Result<(), StoreError>;
    /// A user of this company by e-mail (case-insensitive).
    async fn user_by_email(
        &self,
        company: CompanyId,
        email: &str,
    ) -> Result<Option<User>, StoreError>;
    /// Replaces a user's password hash.
    async fn set_user_password(
        &self,
        company: CompanyId,
        user: UserId,
        password_hash: &str,
    ) -> Result<(), StoreError>;
    /// Finds or creates the employee (within `max_seats`) and creates or updates the device with
    /// a new token, in one transaction.
    async fn enroll_device(
        &self,
        company: CompanyId,
        enrollment: &Enrollment,
        max_seats: i64,
        now_ms: i64,
    ) -> Result<UserId, StoreError>;
    /// Marks a device revoked (its token stops working at once).
    async fn revoke_device(
        &self,
        company: CompanyId,
        device: DeviceId,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The company's devices.
    async fn devices(&self, company: CompanyId) -> Result<Vec<DeviceRow>, StoreError>;
    /// Records a successful agent call: the company's `last_sync_at` (to the second: a call
    /// within a second of the last one stored leaves it) and the device's `last_seen_at`.
    async fn touch_device(
        &self,
        company: CompanyId,
        device: DeviceId,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    // ---- ingest ---------------------------------------------------------------------------
    /// Stores a validated batch idempotently (see [`IngestOutcome`]), updating `last_sync_at` and
    /// `last_seen_at` in the same transaction. Takes the batch (SQLite's writer thread keeps it
    /// until its group is committed; a copy would cost as much as decoding it).
    async fn ingest_batch(
        &self,
        company: CompanyId,
        device: &DeviceAuth,
        batch: BatchRequest,
        meta: &BatchMeta,
    ) -> Result<IngestOutcome, StoreError>;
    /// What is known of screenshot `id` of this device: `None` when no batch announced it,
    /// else its announced size and, once uploaded, the SHA-256 of its bytes.
    async fn screenshot_state(
        &self,
        company: CompanyId,
        device: DeviceId,
        id: RecordId,
    ) -> Result<Option<(i64, Option<Vec<u8>>)>, StoreError>;
    /// Records an uploaded screenshot's object; idempotent by content hash.
    async fn attach_screenshot(
        &self,
        company: CompanyId,
        device: DeviceId,
        id: RecordId,
        upload: &ScreenshotUpload,
    ) -> Result<AttachOutcome, StoreError>;

    // ---- reads ----------------------------------------------------------------------------
    /// How many rows of each record kind the company holds.
    async fn record_counts(&self, company: CompanyId) -> Result<RecordCounts, StoreError>;
    /// Every record id the company holds, of every kind (for loss/duplication checks).
    async fn record_ids(&self, company: CompanyId) -> Result<Vec<RecordId>, StoreError>;
    /// App spans overlapping `[from_ms, to_ms)`, by start.
    async fn app_spans(
        &self,
        company: CompanyId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AppSpanRow>, StoreError>;
    /// Screenshots' metadata, by time.
    async fn screenshots(&self, company: CompanyId) -> Result<Vec<ScreenshotRow>, StoreError>;

    // ---- audit ----------------------------------------------------------------------------
    /// Appends to the company's audit log (append-only).
    async fn append_audit(&self, company: CompanyId, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The company's audit log, oldest first.
    async fn audit_log(&self, company: CompanyId) -> Result<Vec<AuditEntry>, StoreError>;

    // ---- jobs: rollups --------------------------------------------------------------------
    /// Adds agent-call counts `(company, 15-minute bucket start, outcome code, count)` and marks
    /// their days for the rollup.
    async fn add_request_counts(
        &self,
        counts: &[(CompanyId, i64, String, i64)],
    ) -> Result<(), StoreError>;
    /// Up to `limit` pending rollup marks.
    async fn dirty_days(&self, limit: i64) -> Result<Vec<DirtyDay>, StoreError>;
    /// Clears a mark if no newer mark replaced it.
    async fn clear_dirty(&self, mark: &DirtyDay) -> Result<(), StoreError>;
    /// Computes a company's usage over `[from_ms, to_ms)` from the raw rows.
    async fn compute_usage(
        &self,
        company: CompanyId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<UsageNumbers, StoreError>;
    /// Replaces the rollup row of one local day.
    async fn upsert_usage_day(
        &self,
        company: CompanyId,
        day: &str,
        numbers: &UsageNumbers,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Rollup rows with `from_day <= day <= to_day`, by day.
    async fn usage_days(
        &self,
        company: CompanyId,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<UsageDay>, StoreError>;

    // ---- jobs: lifecycle ------------------------------------------------------------------
    /// Subscriptions whose trial or paid period has ended by `now_ms` (candidates for a change).
    async fn subscriptions_due(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(CompanyId, Subscription)>, StoreError>;
    /// Moves the subscription to `to` only if its stored status is still `from`, recording the
    /// history row and `audit` in the same transaction; false when someone else moved it first.
    async fn transition_subscription(
        &self,
        company: CompanyId,
        from: SubscriptionStatus,
        to: &Subscription,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    // ---- jobs: retention ------------------------------------------------------------------
    /// Every company with its retention settings.
    async fn retention_targets(&self) -> Result<Vec<RetentionTarget>, StoreError>;
    /// Deletes up to `chunk` rows per raw table (spans, sessions, activity, batches) that ended
    /// before `cutoff_ms`; returns the rows deleted.
    async fn delete_raw_before(
        &self,
        company: CompanyId,
        cutoff_ms: i64,
        chunk: i64,
    ) -> Result<u64, StoreError>;
    /// Up to `limit` screenshots taken before `cutoff_ms`: ids and object keys.
    async fn screenshots_before(
        &self,
        company: CompanyId,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<(RecordId, Option<String>)>, StoreError>;
    /// Deletes screenshot rows (after their objects were deleted).
    async fn delete_screenshot_rows(
        &self,
        company: CompanyId,
        ids: &[RecordId],
    ) -> Result<u64, StoreError>;
    /// Deletes a cancelled company's people (devices, users, data-access log) and revokes its
    /// keys; its rollups, subscription history and audit log stay.
    async fn purge_people(&self, company: CompanyId, now_ms: i64) -> Result<u64, StoreError>;

    // ---- jobs: coordination ---------------------------------------------------------------
    /// Claims `tick` of `job` for `holder`; true for exactly one caller per job and tick.
    async fn claim_tick(
        &self,
        job: &str,
        tick: i64,
        holder: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Records a finished run.
    async fn record_job_run(&self, run: &JobRun) -> Result<(), StoreError>;
    /// Every recorded run of `job`, by tick.
    async fn job_runs(&self, job: &str) -> Result<Vec<JobRun>, StoreError>;
}

/// Opens the store for `url` (`sqlite://path` or `postgres://…`), checks its settings and runs
/// migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, None).await
}

/// Opens the store for `url`. With `migrate_url` (PostgreSQL only), migrations run through that
/// URL, whose role owns the tables, and `url`'s role is granted row access to them and nothing
/// more: row-level security then confines the server to one company per transaction. Without
/// it, `url`'s role migrates when it owns the schema, and otherwise only checks that every
/// migration was applied.
pub async fn open_with(url: &str, migrate_url: Option<&str>) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        if migrate_url.is_some() {
            return Err(StoreError::Config(
                "a migration URL applies to PostgreSQL only (SQLite has no roles)".to_owned(),
            ));
        }
        Arc::new(sql::SqliteStore::connect(url).await?)
    } else if is_postgres(url) {
        if let Some(owner_url) = migrate_url {
            if !is_postgres(owner_url) {
                return Err(StoreError::Config(
                    "the migration URL must start with postgres://".to_owned(),
                ));
            }
            sql::PgStore::migrate_as_owner(owner_url, url).await?;
        }
        let store = sql::PgStore::connect(url).await?;
        store.warn_if_unfenced().await?;
        Arc::new(store)
    } else {
        return Err(StoreError::Config(
            "DATABASE_URL must start with sqlite: or postgres://".to_owned(),
        ));
    };
    store.migrate().await?;
    Ok(store)
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Sets the tenant of the current PostgreSQL transaction: row-level security (migration 0007)
/// then shows and accepts only `company`'s rows until the transaction ends. Transaction-local,
/// so a connection returned to the pool carries no tenant.
pub async fn set_tenant(
    conn: &mut sqlx::PgConnection,
    company: CompanyId,
) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('app.company_id', $1, true)")
        .bind(company.0.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// What the OWNER's pages may read and change: companies, plans, subscriptions, key prefixes and
/// rollups. It has no method that returns a person, a title, an app, a URL or a screenshot, so an
/// owner handler holding only this trait cannot reach tracking data.
#[async_trait]
pub trait OwnerStore: Send + Sync + 'static {
    // ---- portal: the owner's view (metadata and rollups only) -----------------------------
    /// Every company with its plan, subscription and seat count.
    async fn owner_companies(&self) -> Result<Vec<OwnerCompanyRow>, StoreError>;
    /// Rollup sums per company over `from_day..=to_day`.
    async fn usage_summaries(
        &self,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<(CompanyId, UsageSummary)>, StoreError>;
    /// Rollup sums of all companies per day over `from_day..=to_day`.
    async fn platform_usage(
        &self,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<(String, UsageSummary)>, StoreError>;
    /// The company's keys (prefixes and dates only).
    async fn company_keys(&self, company: CompanyId) -> Result<Vec<KeyRow>, StoreError>;
    /// Every status each company's subscription has had (for trial conversion).
    async fn statuses_seen(&self) -> Result<Vec<(CompanyId, SubscriptionStatus)>, StoreError>;
    /// Moves the company (and its subscription) to another plan.
    async fn set_company_plan(&self, company: CompanyId, plan: PlanId) -> Result<(), StoreError>;
}

/// Sign-in and a company's own view of its data (ADMIN and EMPLOYEE pages). Every method on
/// tenant data takes the company first.
#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    // ---- portal: sign-in ------------------------------------------------------------------
    /// Owners and company users with this e-mail (sign-in finds the company from the account).
    async fn login_candidates(&self, email: &str) -> Result<Vec<LoginCandidate>, StoreError>;
    /// Stores a session under the hash of its cookie value.
    async fn create_session(
        &self,
        token_hash: &[u8],
        principal: Principal,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;
    /// The session with this hash, if it exists (expiry is the caller's to judge).
    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError>;
    /// Ends a session.
    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError>;
    /// Stores an invitation for an existing user without a password.
    async fn create_invitation(
        &self,
        company: CompanyId,
        user: UserId,
        token_hash: &[u8],
        created_by: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;
    /// The invitation with this token hash.
    async fn invitation(&self, token_hash: &[u8]) -> Result<Option<Invitation>, StoreError>;
    /// Sets the invited user's password and uses the invitation up, if it is unused and not
    /// expired at `now_ms`; false otherwise.
    async fn accept_invitation(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Stores a single-use sign-in link minted by `device` for its employee `user`.
    async fn create_signin_link(
        &self,
        company: CompanyId,
        user: UserId,
        device: DeviceId,
        token_hash: &[u8],
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;
    /// Uses up the company's sign-in link with this token hash if it is unused and not expired at
    /// `now_ms` (atomically: of two concurrent redemptions one wins); else says why not.
    async fn redeem_signin_link(
        &self,
        company: CompanyId,
        token_hash: &[u8],
        now_ms: i64,
    ) -> Result<SigninRedemption, StoreError>;

    // ---- portal: a company's own view -----------------------------------------------------
    /// The company's users with their device counts.
    async fn employees(&self, company: CompanyId) -> Result<Vec<EmployeeRow>, StoreError>;
    /// One user of the company.
    async fn user(&self, company: CompanyId, user: UserId) -> Result<Option<User>, StoreError>;
    /// Activates or deactivates a user (deactivation also ends their sessions).
    async fn set_user_active(
        &self,
        company: CompanyId,
        user: UserId,
        active: bool,
    ) -> Result<(), StoreError>;
    /// Tracked seconds per employee (key = user id) within `[from_ms, to_ms)`.
    async fn tracked_by_employee(
        &self,
        company: CompanyId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Total>, StoreError>;
    /// The apps with the most time within `[from_ms, to_ms)`, optionally of one employee.
    async fn top_apps(
        &self,
        company: CompanyId,
        employee: Option<UserId>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<Total>, StoreError>;
    /// The sites with the most time within `[from_ms, to_ms)`, optionally of one employee.
    async fn top_sites(
        &self,
        company: CompanyId,
        employee: Option<UserId>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<Total>, StoreError>;
    /// One employee's records within `[from_ms, to_ms)`.
    async fn employee_day(
        &self,
        company: CompanyId,
        employee: UserId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<EmployeeDay, StoreError>;
    /// The employee and object key of a screenshot of this company.
    async fn screenshot_object(
        &self,
        company: CompanyId,
        id: RecordId,
    ) -> Result<Option<(UserId, Option<String>)>, StoreError>;
    /// Deletes one of `employee`'s screenshots and the app time within `window_ms` around it;
    /// returns its object key, or `None` when no such screenshot is theirs.
    async fn delete_own_screenshot(
        &self,
        company: CompanyId,
        employee: UserId,
        id: RecordId,
        window_ms: i64,
    ) -> Result<Option<Option<String>>, StoreError>;
    /// Records that `viewer` opened `subject`'s data.
    async fn log_access(
        &self,
        company: CompanyId,
        viewer: UserId,
        subject: UserId,
        what: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Who viewed `subject`'s data, newest first.
    async fn access_log(
        &self,
        company: CompanyId,
        subject: UserId,
    ) -> Result<Vec<AccessRow>, StoreError>;
    /// The company's tasks.
    async fn tasks(&self, company: CompanyId) -> Result<Vec<TaskRow>, StoreError>;
    /// Adds a task (creating its project when new).
    async fn create_task(
        &self,
        company: CompanyId,
        project: &str,
        task: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}
