//! The SQL implementation of [`Store`], shared by both backends.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` parameters, `ON CONFLICT DO
//! NOTHING`, `RETURNING`, `CAST(... AS BIGINT)`), so one body written once is expanded for each
//! pool type by `sql_store!`; only connecting, migrations and start-up checks differ.
//! Transactions that write start with a write, so SQLite takes its write lock (waiting on the
//! busy timeout) before it reads, and never fails an upgrade from a stale read snapshot.

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;
use worktrail_shared::api::{BatchAck, BatchRequest, RecordBody, SessionEnd, SiteSource};
use worktrail_shared::policy::Policy;
use worktrail_shared::{
    CompanyId, CompanyKeyId, DeviceId, OwnerId, PlanId, RecordId, TaskId, UserId,
};

use super::*;
use crate::domain::plan::Plan;
use crate::domain::subscription::{DAY_MS, Subscription, SubscriptionStatus};

/// The embedded backend.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Agent batches are written by one thread with its own connection, in group commits.
    writer: std::sync::Arc<writer::Writer>,
}

/// The scale backend.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database with WAL, `synchronous=FULL` and foreign keys,
    /// and checks that every connection really got those settings.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = options.get_filename().to_owned();
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        let writer = std::sync::Arc::new(writer::Writer::start(&path)?);
        let store = Self { pool, writer };
        store.check_settings().await?;
        Ok(store)
    }

    async fn check_settings(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let journal: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await?;
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await?;
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await?;
        if !journal.eq_ignore_ascii_case("wal") || sync != 2 || fk != 1 {
            return Err(StoreError::Config(format!(
                "SQLite settings not applied: journal_mode={journal}, synchronous={sync}, \
                 foreign_keys={fk} (want wal, 2, 1)"
            )));
        }
        Ok(())
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Batches go to the writer thread.
    fn writer(&self) -> Option<&writer::Writer> {
        Some(&self.writer)
    }

    /// Stores one batch through the writer thread (group commit, compact app spans).
    async fn ingest(
        &self,
        company: CompanyId,
        device: &DeviceAuth,
        batch: BatchRequest,
        meta: &BatchMeta,
    ) -> Result<IngestOutcome, StoreError> {
        self.writer.ingest(company, device, batch, meta).await
    }

    /// Drops the titles, apps and device keys of the compact span layout that no span uses
    /// any more, after spans were deleted.
    async fn sweep_span_strings(&self, company: CompanyId) -> Result<(), StoreError> {
        self.writer.sweep(company).await.map(|_| ())
    }

    fn stop_writer(&self) {
        self.writer.stop();
    }

    /// A transaction for `company`'s rows. SQLite has no row-level security: the store's
    /// `WHERE company_id` clauses are its only fence.
    async fn tenant(
        &self,
        _company: CompanyId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction for the platform's reads across companies.
    async fn platform(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A connection for one read statement of `company`'s rows: SQLite needs no transaction
    /// for it (the hot path of every agent request reads this way: no BEGIN and COMMIT round
    /// trips to the connection's thread).
    async fn reader(
        &self,
        _company: CompanyId,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    async fn end_read(conn: sqlx::pool::PoolConnection<sqlx::Sqlite>) -> Result<(), StoreError> {
        drop(conn);
        Ok(())
    }

    async fn enter(
        _conn: &mut sqlx::SqliteConnection,
        _company: CompanyId,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    // The lookups that find a company (or a session) from a secret, before any tenant context.
    const KEY_COMPANY: &str = "SELECT company_id FROM company_keys WHERE key_hash = $1";
    const LOGIN_COMPANIES: &str =
        "SELECT DISTINCT company_id FROM users WHERE email = $1 ORDER BY company_id";
    const INVITATION_COMPANY: &str = "SELECT company_id FROM invitations WHERE token_hash = $1";
    const SESSION_FIND: &str = "SELECT owner_id, company_id, user_id, expires_at_ms \
                                FROM sessions WHERE token_hash = $1";
    const SESSION_CREATE: &str = "INSERT INTO sessions (token_hash, owner_id, company_id, \
                                  user_id, created_at_ms, expires_at_ms, last_seen_at_ms) \
                                  VALUES ($1, $2, $3, $4, $5, $6, $5)";
    const SESSION_DELETE: &str = "DELETE FROM sessions WHERE token_hash = $1";
    /// A chunk of a company's app spans that ended before a time (compact layout, see 0008).
    const DELETE_OLD_APP_SPANS: &str = "DELETE FROM app_spans WHERE (dev, start_ms, id) IN \
         (SELECT s.dev, s.start_ms, s.id FROM span_devices d JOIN app_spans s ON s.dev = d.n \
          WHERE d.company_id = $1 AND s.start_ms < $2 AND s.start_ms + s.dur_ms <= $2 LIMIT $3)";
    /// Every company with its plan, subscription and seats used.
    const OWNER_COMPANIES: &str = "SELECT c.id, c.name, s.plan_id, p.code, p.max_seats, \
         (SELECT COUNT(*) FROM users u WHERE u.company_id = c.id \
            AND u.role = 'EMPLOYEE' AND u.active = 1), \
         s.status, s.trial_ends_at_ms, s.period_end_at_ms, s.grace_days, \
         c.suspended_at_ms, c.created_at_ms, c.last_sync_at_ms, c.time_zone \
         FROM companies c JOIN subscriptions s ON s.company_id = c.id \
         JOIN plans p ON p.id = s.plan_id ORDER BY c.name";
}

impl PgStore {
    /// PostgreSQL runs concurrent writers itself: batches are written by the request's task.
    fn writer(&self) -> Option<&writer::Writer> {
        None
    }

    /// App spans keep their strings in their own rows here: nothing to sweep.
    async fn sweep_span_strings(&self, _company: CompanyId) -> Result<(), StoreError> {
        Ok(())
    }

    fn stop_writer(&self) {}

    /// A transaction that row-level security confines to `company`'s rows (migration 0007).
    /// The setting is transaction-local: the connection goes back to the pool without it.
    async fn tenant(
        &self,
        company: CompanyId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::enter(&mut tx, company).await?;
        Ok(tx)
    }

    /// A transaction in the platform scope: it may read subscriptions and rollups of every
    /// company (for the owner's pages and the jobs' schedules) and nothing else of a tenant's.
    /// A read of `company`'s rows: a tenant transaction (row-level security needs its setting).
    async fn reader(
        &self,
        company: CompanyId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.tenant(company).await
    }

    async fn end_read(tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Result<(), StoreError> {
        tx.commit().await?;
        Ok(())
    }

    async fn platform(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('app.scope', 'platform', true)").execute(&mut *tx).await?;
        Ok(tx)
    }

    async fn enter(conn: &mut sqlx::PgConnection, company: CompanyId) -> Result<(), StoreError> {
        crate::store::set_tenant(conn, company).await
    }

    // The same lookups through the SECURITY DEFINER functions of migration 0007.
    const KEY_COMPANY: &str = "SELECT company_id FROM worktrail_key_company($1)";
    const LOGIN_COMPANIES: &str =
        "SELECT company_id FROM worktrail_login_companies($1) ORDER BY company_id";
    const INVITATION_COMPANY: &str = "SELECT company_id FROM worktrail_invitation_company($1)";
    const SESSION_FIND: &str = "SELECT owner_id, company_id, user_id, expires_at_ms \
                                FROM worktrail_session_find($1)";
    const SESSION_CREATE: &str = "SELECT worktrail_session_create($1, $2, $3, $4, $5, $6)";
    const SESSION_DELETE: &str = "SELECT worktrail_session_delete($1)";
    /// A chunk of a company's app spans that ended before a time.
    const DELETE_OLD_APP_SPANS: &str = "DELETE FROM app_usage WHERE company_id = $1 AND id IN \
         (SELECT id FROM app_usage WHERE company_id = $1 AND start_ms < $2 AND end_ms <= $2 \
          LIMIT $3)";
    /// Seats come from a function: the platform scope cannot read `users`.
    const OWNER_COMPANIES: &str = "SELECT c.id, c.name, s.plan_id, p.code, p.max_seats, \
         COALESCE(u.seats, 0), \
         s.status, s.trial_ends_at_ms, s.period_end_at_ms, s.grace_days, \
         c.suspended_at_ms, c.created_at_ms, c.last_sync_at_ms, c.time_zone \
         FROM companies c JOIN subscriptions s ON s.company_id = c.id \
         JOIN plans p ON p.id = s.plan_id \
         LEFT JOIN worktrail_seats_used() u ON u.company_id = c.id ORDER BY c.name";

    /// Connects to PostgreSQL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, 16).await
    }

    /// Connects with at most `max_connections` connections.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = pg_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The pool (for tests that check the database's own fences with raw SQL).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the migrations as the role of `owner_url` (which then owns every table and
    /// function) and grants the role of `app_url` what the server needs: rows of the tables,
    /// read-only migration history, append-only audit log, the lookup functions. Nothing else:
    /// the app role owns nothing, so row-level security applies to it.
    pub async fn migrate_as_owner(owner_url: &str, app_url: &str) -> Result<(), StoreError> {
        let app = pg_options(app_url)?.get_username().to_owned();
        let owner = Self::connect_with(owner_url, 1).await?;
        sqlx::migrate!("./migrations/postgres").run(&owner.pool).await?;
        let me: String = sqlx::query_scalar("SELECT current_user").fetch_one(&owner.pool).await?;
        if me != app {
            let role = format!("\"{}\"", app.replace('"', "\"\""));
            // Replicas starting at once would otherwise grant concurrently and fail with
            // "tuple concurrently updated": one at a time, under a transaction-scoped lock.
            let mut tx = owner.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(7072616)").execute(&mut *tx).await?;
            for stmt in [
                format!("GRANT USAGE ON SCHEMA public TO {role}"),
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
                ),
                format!("REVOKE INSERT, UPDATE, DELETE ON TABLE _sqlx_migrations FROM {role}"),
                format!("REVOKE UPDATE, DELETE ON TABLE audit_log FROM {role}"),
                format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}"),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        owner.pool.close().await;
        Ok(())
    }

    /// Warns when this connection's role is not confined by row-level security: a superuser,
    /// a `BYPASSRLS` role or the tables' owner (the single-URL setup of a demo or a test).
    pub async fn warn_if_unfenced(&self) -> Result<(), StoreError> {
        let (superuser, bypass, owns): (bool, bool, bool) = sqlx::query_as(
            "SELECT r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_class c \
             WHERE c.relowner = r.oid AND c.relnamespace = 'public'::regnamespace) \
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        if superuser || bypass || owns {
            tracing::warn!(
                superuser,
                bypassrls = bypass,
                owns_tables = owns,
                "the server's database role is not confined by row-level security; \
                 serve as an app role and migrate with --migrate-url (docs/DEPLOY.md)"
            );
        }
        Ok(())
    }

    /// Migrates when this role may (it owns the migration history, or there is none yet, or it
    /// is a superuser); otherwise, as the app role, only checks that every migration is applied.
    async fn run_migrations(&self) -> Result<(), StoreError> {
        let migrator = sqlx::migrate!("./migrations/postgres");
        let may_migrate: Option<bool> = sqlx::query_scalar(
            "SELECT c.relowner = r.oid OR r.rolsuper FROM pg_class c, pg_roles r \
             WHERE c.oid = to_regclass('_sqlx_migrations') AND r.rolname = current_user",
        )
        .fetch_optional(&self.pool)
        .await?;
        if may_migrate.unwrap_or(true) {
            migrator.run(&self.pool).await?;
            return Ok(());
        }
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        if let Some(missing) = migrator.iter().find(|m| !applied.contains(&m.version)) {
            return Err(StoreError::Config(format!(
                "migration {} ({}) is not applied and this role does not own the schema: run \
                 `worktrail-server migrate` with --migrate-url (the owner role) first",
                missing.version, missing.description
            )));
        }
        Ok(())
    }
}

fn pg_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    // The error names the problem, never the URL (it may hold a password).
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))
}

/// The answer to a batch whose id was claimed before: the acknowledgement stored with it, or a
/// conflict when this body is not the one stored under that id.
fn answer_again(
    stored_hash: &[u8],
    stored_ack: Option<String>,
    meta: &BatchMeta,
) -> Result<IngestOutcome, StoreError> {
    if stored_hash != meta.body_hash {
        return Ok(IngestOutcome::Conflict);
    }
    let ack = stored_ack.ok_or_else(|| StoreError::Corrupt("batch without ack".into()))?;
    let ack = serde_json::from_str(&ack).map_err(|e| StoreError::Corrupt(format!("ack: {e}")))?;
    Ok(IngestOutcome::Acknowledged(ack))
}

/// The acknowledgement of a batch just stored with `accepted` new records, and its JSON for the
/// batch's row (a retry is answered from it).
fn new_ack(
    batch: &BatchRequest,
    accepted: u32,
    meta: &BatchMeta,
) -> Result<(BatchAck, String), StoreError> {
    let ack = BatchAck {
        batch_id: batch.batch_id,
        accepted,
        duplicates: batch.records.len() as u32 - accepted,
        max_seq: batch.max_seq(),
        server_time_ms: meta.now_ms,
    };
    let json = serde_json::to_string(&ack).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((ack, json))
}

/// The UTC days (since the epoch) whose rollups a batch changes: every day a record falls in,
/// and the day it was received (records and bytes ingested count on that day).
fn touched_days(batch: &BatchRequest, now_ms: i64) -> std::collections::BTreeSet<i64> {
    let mut days = std::collections::BTreeSet::from([now_ms.div_euclid(DAY_MS)]);
    for r in &batch.records {
        let (start, end) = match &r.body {
            RecordBody::AppSpan { start_ms, end_ms, .. }
            | RecordBody::WebsiteSpan { start_ms, end_ms, .. }
            | RecordBody::IdleSpan { start_ms, end_ms }
            | RecordBody::WorkSession { start_ms, end_ms, .. } => (*start_ms, *end_ms),
            RecordBody::Activity { minute_ms, .. } => (*minute_ms, *minute_ms + 60_000),
            RecordBody::Screenshot { taken_at_ms, .. } => (*taken_at_ms, *taken_at_ms + 1),
        };
        let last = (end - 1).max(start).div_euclid(DAY_MS);
        days.extend(start.div_euclid(DAY_MS)..=last);
    }
    days
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn status_of(s: &str) -> Result<SubscriptionStatus, StoreError> {
    SubscriptionStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("status {s:?}")))
}

fn policy_of(json: &str) -> Result<Policy, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))
}

fn session_end_str(e: SessionEnd) -> &'static str {
    match e {
        SessionEnd::Idle => "idle",
        SessionEnd::Lock => "lock",
        SessionEnd::Stop => "stop",
    }
}

fn site_source_str(s: SiteSource) -> &'static str {
    match s {
        SiteSource::Extension => "extension",
        SiteSource::Title => "title",
    }
}

type PlanTuple = (Uuid, String, String, i64, i64, bool, i64, i64);

fn plan_of(t: PlanTuple) -> Plan {
    Plan {
        id: PlanId(t.0),
        code: t.1,
        name: t.2,
        max_seats: t.3,
        retention_days: t.4,
        screenshots_allowed: t.5,
        price_cents: t.6,
        trial_days: t.7,
    }
}

type CompanyTuple = (Uuid, String, Uuid, String, Option<i64>, String, i64, Option<i64>);

fn company_of(t: CompanyTuple) -> Result<Company, StoreError> {
    Ok(Company {
        id: CompanyId(t.0),
        name: t.1,
        plan_id: PlanId(t.2),
        time_zone: t.3,
        suspended_at_ms: t.4,
        policy: policy_of(&t.5)?,
        created_at_ms: t.6,
        last_sync_at_ms: t.7,
    })
}

macro_rules! plan_columns {
    () => {
        "id, code, name, max_seats, retention_days, screenshots_allowed, price_cents, trial_days"
    };
}
macro_rules! company_columns {
    () => {
        "id, name, plan_id, time_zone, suspended_at_ms, policy_json, created_at_ms, last_sync_at_ms"
    };
}

macro_rules! sql_store {
    ($store:ty, $backend:expr, $db:ty) => {
        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                self.run_migrations().await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.stop_writer();
                self.pool.close().await;
            }

            async fn create_plan(&self, plan: &Plan, now_ms: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO plans (id, code, name, max_seats, retention_days, \
                     screenshots_allowed, price_cents, trial_days, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(plan.id.0)
                .bind(&plan.code)
                .bind(&plan.name)
                .bind(plan.max_seats)
                .bind(plan.retention_days)
                .bind(plan.screenshots_allowed)
                .bind(plan.price_cents)
                .bind(plan.trial_days)
                .bind(now_ms)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("plan code {:?}", plan.code))
                    } else {
                        e.into()
                    }
                })?;
                Ok(())
            }

            async fn list_plans(&self) -> Result<Vec<Plan>, StoreError> {
                let sql = concat!("SELECT ", plan_columns!(), " FROM plans ORDER BY price_cents, code");
                let rows: Vec<PlanTuple> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(plan_of).collect())
            }

            async fn plan_by_code(&self, code: &str) -> Result<Option<Plan>, StoreError> {
                let sql = concat!("SELECT ", plan_columns!(), " FROM plans WHERE code = $1");
                let row: Option<PlanTuple> =
                    sqlx::query_as(sql).bind(code).fetch_optional(&self.pool).await?;
                Ok(row.map(plan_of))
            }

            async fn create_owner(
                &self,
                id: OwnerId,
                email: &str,
                password_hash: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO owners (id, email, password_hash, created_at_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id.0)
                .bind(email.to_lowercase())
                .bind(password_hash)
                .bind(now_ms)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("owner {email:?}"))
                    } else {
                        e.into()
                    }
                })?;
                Ok(())
            }

            async fn set_owner_password(
                &self,
                email: &str,
                password_hash: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE owners SET password_hash = $1 WHERE email = $2")
                    .bind(password_hash)
                    .bind(email.to_lowercase())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_company(&self, new: &NewCompany) -> Result<(), StoreError> {
                let policy = serde_json::to_string(&new.policy)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let mut tx = self.tenant(new.id).await?;
                sqlx::query(
                    "INSERT INTO companies (id, name, plan_id, time_zone, policy_json, \
                     created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(new.id.0)
                .bind(&new.name)
                .bind(new.plan_id.0)
                .bind(&new.time_zone)
                .bind(&policy)
                .bind(new.now_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("company {:?}", new.name))
                    } else {
                        e.into()
                    }
                })?;
                let sub = &new.subscription;
                sqlx::query(
                    "INSERT INTO subscriptions (company_id, plan_id, status, trial_ends_at_ms, \
                     period_end_at_ms, grace_days, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(new.id.0)
                .bind(new.plan_id.0)
                .bind(sub.status.as_str())
                .bind(sub.trial_ends_at_ms)
                .bind(sub.period_end_at_ms)
                .bind(sub.grace_days)
                .bind(new.now_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO subscription_events (company_id, id, status, plan_id, \
                     trial_ends_at_ms, period_end_at_ms, reason, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(new.id.0)
                .bind(Uuid::now_v7())
                .bind(sub.status.as_str())
                .bind(new.plan_id.0)
                .bind(sub.trial_ends_at_ms)
                .bind(sub.period_end_at_ms)
                .bind("company created")
                .bind(new.now_ms)
                .execute(&mut *tx)
                .await?;
                insert_key!(&mut *tx, new.id, &new.key)?;
                tx.commit().await?;
                Ok(())
            }

            async fn company(&self, company: CompanyId) -> Result<Option<Company>, StoreError> {
                let sql = concat!("SELECT ", company_columns!(), " FROM companies WHERE id = $1");
                let row: Option<CompanyTuple> =
                    sqlx::query_as(sql).bind(company.0).fetch_optional(&self.pool).await?;
                row.map(company_of).transpose()
            }

            async fn company_by_name(&self, name: &str) -> Result<Option<Company>, StoreError> {
                let sql = concat!("SELECT ", company_columns!(), " FROM companies WHERE name = $1");
                let row: Option<CompanyTuple> =
                    sqlx::query_as(sql).bind(name).fetch_optional(&self.pool).await?;
                row.map(company_of).transpose()
            }

            async fn add_company_key(
                &self,
                company: CompanyId,
                key: &NewKey,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                insert_key!(&mut *tx, company, key)?;
                tx.commit().await?;
                Ok(())
            }

            async fn expire_company_keys(
                &self,
                company: CompanyId,
                keep: CompanyKeyId,
                at_ms: i64,
            ) -> Result<u64, StoreError> {
                let mut tx = self.tenant(company).await?;
                let done = sqlx::query(
                    "UPDATE company_keys SET expires_at_ms = $3 WHERE company_id = $1 \
                     AND id <> $2 AND revoked_at_ms IS NULL \
                     AND (expires_at_ms IS NULL OR expires_at_ms > $3)",
                )
                .bind(company.0)
                .bind(keep.0)
                .bind(at_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn set_company_suspended(
                &self,
                company: CompanyId,
                suspended: bool,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let suspended_at_ms = suspended.then_some(now_ms);
                let mut tx = self.tenant(company).await?;
                let done = sqlx::query("UPDATE companies SET suspended_at_ms = $2 WHERE id = $1")
                    .bind(company.0)
                    .bind(suspended_at_ms)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("company {company}")));
                }
                // The history shows the suspension, and on reactivation the status it returns to.
                let (status, reason) = if suspended {
                    ("suspended".to_owned(), "suspended by the operator")
                } else {
                    let (status,): (String,) =
                        sqlx::query_as("SELECT status FROM subscriptions WHERE company_id = $1")
                            .bind(company.0)
                            .fetch_one(&mut *tx)
                            .await?;
                    (status, "reactivated by the operator")
                };
                sqlx::query(
                    "INSERT INTO subscription_events (company_id, id, status, plan_id, \
                     trial_ends_at_ms, period_end_at_ms, reason, at_ms) \
                     SELECT company_id, $2, $3, plan_id, trial_ends_at_ms, period_end_at_ms, $4, $5 \
                     FROM subscriptions WHERE company_id = $1",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(status)
                .bind(reason)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn subscription(
                &self,
                company: CompanyId,
            ) -> Result<Option<Subscription>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let row: Option<(String, Option<i64>, Option<i64>, i64)> = sqlx::query_as(
                    "SELECT status, trial_ends_at_ms, period_end_at_ms, grace_days \
                     FROM subscriptions WHERE company_id = $1",
                )
                .bind(company.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.map(|(status, trial, period, grace)| {
                    Ok(Subscription {
                        status: status_of(&status)?,
                        trial_ends_at_ms: trial,
                        period_end_at_ms: period,
                        grace_days: grace,
                    })
                })
                .transpose()
            }

            async fn set_subscription(
                &self,
                company: CompanyId,
                sub: &Subscription,
                reason: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                let plan: Option<(Uuid,)> = sqlx::query_as(
                    "UPDATE subscriptions SET status = $2, trial_ends_at_ms = $3, \
                     period_end_at_ms = $4, grace_days = $5, updated_at_ms = $6 \
                     WHERE company_id = $1 RETURNING plan_id",
                )
                .bind(company.0)
                .bind(sub.status.as_str())
                .bind(sub.trial_ends_at_ms)
                .bind(sub.period_end_at_ms)
                .bind(sub.grace_days)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((plan_id,)) = plan else {
                    return Err(StoreError::NotFound(format!("subscription of {company}")));
                };
                sqlx::query(
                    "INSERT INTO subscription_events (company_id, id, status, plan_id, \
                     trial_ends_at_ms, period_end_at_ms, reason, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(sub.status.as_str())
                .bind(plan_id)
                .bind(sub.trial_ends_at_ms)
                .bind(sub.period_end_at_ms)
                .bind(reason)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn subscription_history(
                &self,
                company: CompanyId,
            ) -> Result<Vec<(i64, SubscriptionStatus, String)>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT at_ms, status, reason FROM subscription_events \
                     WHERE company_id = $1 ORDER BY at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter().map(|(at, s, r)| Ok((at, status_of(&s)?, r))).collect()
            }

            async fn set_policy(
                &self,
                company: CompanyId,
                policy: &Policy,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                let json =
                    serde_json::to_string(policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query("UPDATE companies SET policy_json = $2 WHERE id = $1")
                    .bind(company.0)
                    .bind(json)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn gate_by_key_hash(
                &self,
                key_hash: &[u8],
            ) -> Result<Option<KeyGate>, StoreError> {
                // The key's company first (the one lookup across companies), then the gate's
                // reads inside that company's context.
                let company: Option<Uuid> = sqlx::query_scalar(Self::KEY_COMPANY)
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(company) = company.map(CompanyId) else { return Ok(None) };
                let mut conn = self.reader(company).await?;
                type Row = (
                    Uuid,
                    Uuid,
                    Option<i64>,
                    Option<i64>,
                    Option<i64>,
                    String,
                    Option<i64>,
                    Option<i64>,
                    i64,
                    i64,
                    bool,
                );
                let row: Option<Row> = sqlx::query_as(
                    "SELECT k.id, k.company_id, k.expires_at_ms, k.revoked_at_ms, \
                     c.suspended_at_ms, s.status, s.trial_ends_at_ms, s.period_end_at_ms, \
                     s.grace_days, p.max_seats, p.screenshots_allowed \
                     FROM company_keys k \
                     JOIN companies c ON c.id = k.company_id \
                     JOIN subscriptions s ON s.company_id = k.company_id \
                     JOIN plans p ON p.id = s.plan_id \
                     WHERE k.key_hash = $1 AND k.company_id = $2",
                )
                .bind(key_hash)
                .bind(company.0)
                .fetch_optional(&mut *conn)
                .await?;
                Self::end_read(conn).await?;
                row.map(|r| {
                    Ok(KeyGate {
                        key_id: CompanyKeyId(r.0),
                        company_id: CompanyId(r.1),
                        expires_at_ms: r.2,
                        revoked_at_ms: r.3,
                        suspended_at_ms: r.4,
                        subscription: Subscription {
                            status: status_of(&r.5)?,
                            trial_ends_at_ms: r.6,
                            period_end_at_ms: r.7,
                            grace_days: r.8,
                        },
                        max_seats: r.9,
                        screenshots_allowed: r.10,
                    })
                })
                .transpose()
            }

            async fn device_by_token_hash(
                &self,
                company: CompanyId,
                token_hash: &[u8],
            ) -> Result<Option<DeviceAuth>, StoreError> {
                let mut conn = self.reader(company).await?;
                let row: Option<(Uuid, Uuid, Option<i64>)> = sqlx::query_as(
                    "SELECT id, employee_id, revoked_at_ms FROM devices \
                     WHERE company_id = $1 AND token_hash = $2",
                )
                .bind(company.0)
                .bind(token_hash)
                .fetch_optional(&mut *conn)
                .await?;
                Self::end_read(conn).await?;
                Ok(row.map(|(id, employee, revoked)| DeviceAuth {
                    id: DeviceId(id),
                    employee_id: UserId(employee),
                    revoked_at_ms: revoked,
                }))
            }

            async fn create_user(
                &self,
                company: CompanyId,
                user: &NewUser,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                insert_user!(&mut *tx, company, user)?;
                tx.commit().await?;
                Ok(())
            }

            async fn user_by_email(
                &self,
                company: CompanyId,
                email: &str,
            ) -> Result<Option<User>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let row: Option<(Uuid, String, String, String, bool)> = sqlx::query_as(
                    "SELECT id, email, display_name, role, active FROM users \
                     WHERE company_id = $1 AND email = $2",
                )
                .bind(company.0)
                .bind(email.to_lowercase())
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.map(|(id, email, name, role, active)| {
                    Ok(User {
                        id: UserId(id),
                        email,
                        display_name: name,
                        role: Role::parse(&role)
                            .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
                        active,
                    })
                })
                .transpose()
            }

            async fn set_user_password(
                &self,
                company: CompanyId,
                user: UserId,
                password_hash: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                sqlx::query("UPDATE users SET password_hash = $3 WHERE company_id = $1 AND id = $2")
                    .bind(company.0)
                    .bind(user.0)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn enroll_device(
                &self,
                company: CompanyId,
                e: &Enrollment,
                max_seats: i64,
                now_ms: i64,
            ) -> Result<UserId, StoreError> {
                let mut tx = self.tenant(company).await?;
                // A write first: SQLite takes its write lock before the reads below.
                sqlx::query("UPDATE companies SET last_sync_at_ms = $2 WHERE id = $1")
                    .bind(company.0)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                let existing: Option<(Uuid, bool)> = sqlx::query_as(
                    "SELECT id, active FROM users WHERE company_id = $1 AND email = $2",
                )
                .bind(company.0)
                .bind(&e.email)
                .fetch_optional(&mut *tx)
                .await?;
                let employee = match existing {
                    Some((_, false)) => {
                        return Err(StoreError::DeviceRevoked(
                            "this employee was deactivated by the company's admin".into(),
                        ));
                    }
                    Some((id, true)) => UserId(id),
                    None => {
                        let used: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM users WHERE company_id = $1 \
                             AND role = 'EMPLOYEE' AND active = $2",
                        )
                        .bind(company.0)
                        .bind(true)
                        .fetch_one(&mut *tx)
                        .await?;
                        if used >= max_seats {
                            return Err(StoreError::SeatLimitReached);
                        }
                        let user = NewUser {
                            id: UserId::new(),
                            email: e.email.clone(),
                            display_name: e.display_name.clone(),
                            role: Role::Employee,
                            password_hash: None,
                            now_ms,
                        };
                        insert_user!(&mut *tx, company, &user)?;
                        user.id
                    }
                };
                let device: Option<(Option<i64>,)> = sqlx::query_as(
                    "SELECT revoked_at_ms FROM devices WHERE company_id = $1 AND id = $2",
                )
                .bind(company.0)
                .bind(e.device_id.0)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((Some(_),)) = device {
                    return Err(StoreError::DeviceRevoked(
                        "this device was revoked by the company's admin".into(),
                    ));
                }
                // New device, or a re-enrolment of this one: the same row, a new token.
                sqlx::query(
                    "INSERT INTO devices (company_id, id, employee_id, hostname, os, os_user, \
                     agent_version, token_hash, token_prefix, enrolled_at_ms, last_seen_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (company_id, id) DO UPDATE SET employee_id = excluded.employee_id, \
                     hostname = excluded.hostname, os = excluded.os, os_user = excluded.os_user, \
                     agent_version = excluded.agent_version, token_hash = excluded.token_hash, \
                     token_prefix = excluded.token_prefix, last_seen_at_ms = excluded.last_seen_at_ms",
                )
                .bind(company.0)
                .bind(e.device_id.0)
                .bind(employee.0)
                .bind(&e.hostname)
                .bind(&e.os)
                .bind(&e.os_user)
                .bind(&e.agent_version)
                .bind(&e.token_hash)
                .bind(&e.token_prefix)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(employee)
            }

            async fn revoke_device(
                &self,
                company: CompanyId,
                device: DeviceId,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                let done = sqlx::query(
                    "UPDATE devices SET revoked_at_ms = $3 WHERE company_id = $1 AND id = $2",
                )
                .bind(company.0)
                .bind(device.0)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("device {device}")));
                }
                Ok(())
            }

            async fn devices(&self, company: CompanyId) -> Result<Vec<DeviceRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                type Row = (Uuid, Uuid, String, String, i64, Option<i64>, Option<i64>, Option<i64>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, employee_id, hostname, token_prefix, enrolled_at_ms, \
                     last_seen_at_ms, clock_offset_ms, revoked_at_ms FROM devices \
                     WHERE company_id = $1 ORDER BY enrolled_at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| DeviceRow {
                        id: DeviceId(r.0),
                        employee_id: UserId(r.1),
                        hostname: r.2,
                        token_prefix: r.3,
                        enrolled_at_ms: r.4,
                        last_seen_at_ms: r.5,
                        clock_offset_ms: r.6,
                        revoked_at_ms: r.7,
                    })
                    .collect())
            }

            async fn touch_device(
                &self,
                company: CompanyId,
                device: DeviceId,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                if let Some(writer) = self.writer() {
                    return writer.touch(company, device, now_ms).await;
                }
                let mut tx = self.tenant(company).await?;
                touch!(&mut *tx, company, device, now_ms)?;
                tx.commit().await?;
                Ok(())
            }

            async fn ingest_batch(
                &self,
                company: CompanyId,
                device: &DeviceAuth,
                batch: BatchRequest,
                meta: &BatchMeta,
            ) -> Result<IngestOutcome, StoreError> {
                // SQLite: the writer thread (group commit, compact app spans); PostgreSQL:
                // `pg_ingest`.
                self.ingest(company, device, batch, meta).await
            }

            async fn screenshot_state(
                &self,
                company: CompanyId,
                device: DeviceId,
                id: RecordId,
            ) -> Result<Option<(i64, Option<Vec<u8>>)>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let row = sqlx::query_as(
                    "SELECT bytes, sha256 FROM screenshots \
                     WHERE company_id = $1 AND id = $2 AND device_id = $3",
                )
                .bind(company.0)
                .bind(id.0)
                .bind(device.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn attach_screenshot(
                &self,
                company: CompanyId,
                device: DeviceId,
                id: RecordId,
                up: &ScreenshotUpload,
            ) -> Result<AttachOutcome, StoreError> {
                let mut tx = self.tenant(company).await?;
                let done = sqlx::query(
                    "UPDATE screenshots SET object_key = $4, sha256 = $5, uploaded_at_ms = $6 \
                     WHERE company_id = $1 AND id = $2 AND device_id = $3 \
                     AND object_key IS NULL AND bytes = $7",
                )
                .bind(company.0)
                .bind(id.0)
                .bind(device.0)
                .bind(&up.object_key)
                .bind(&up.sha256)
                .bind(up.now_ms)
                .bind(up.bytes)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    touch!(&mut *tx, company, device, up.now_ms)?;
                    tx.commit().await?;
                    return Ok(AttachOutcome::Stored);
                }
                let row: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
                    "SELECT bytes, sha256 FROM screenshots \
                     WHERE company_id = $1 AND id = $2 AND device_id = $3",
                )
                .bind(company.0)
                .bind(id.0)
                .bind(device.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                Ok(match row {
                    None => AttachOutcome::UnknownScreenshot,
                    Some((_, Some(sha))) if sha == up.sha256 => AttachOutcome::Stored,
                    Some((_, Some(_))) => AttachOutcome::Conflict,
                    Some((expected, None)) => AttachOutcome::SizeMismatch { expected },
                })
            }

            async fn record_counts(&self, company: CompanyId) -> Result<RecordCounts, StoreError> {
                let mut tx = self.tenant(company).await?;
                let (a, w, i, s, act, shots, b): (i64, i64, i64, i64, i64, i64, i64) =
                    sqlx::query_as(
                        "SELECT \
                         (SELECT COUNT(*) FROM app_usage WHERE company_id = $1), \
                         (SELECT COUNT(*) FROM website_usage WHERE company_id = $1), \
                         (SELECT COUNT(*) FROM idle_spans WHERE company_id = $1), \
                         (SELECT COUNT(*) FROM work_sessions WHERE company_id = $1), \
                         (SELECT COUNT(*) FROM activity_log WHERE company_id = $1), \
                         (SELECT COUNT(*) FROM screenshots WHERE company_id = $1), \
                         (SELECT COUNT(*) FROM ingest_batches WHERE company_id = $1)",
                    )
                    .bind(company.0)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RecordCounts {
                    app_spans: a,
                    website_spans: w,
                    idle_spans: i,
                    work_sessions: s,
                    activity: act,
                    screenshots: shots,
                    batches: b,
                })
            }

            async fn record_ids(&self, company: CompanyId) -> Result<Vec<RecordId>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(Uuid,)> = sqlx::query_as(
                    "SELECT id FROM app_usage WHERE company_id = $1 \
                     UNION ALL SELECT id FROM website_usage WHERE company_id = $1 \
                     UNION ALL SELECT id FROM idle_spans WHERE company_id = $1 \
                     UNION ALL SELECT id FROM work_sessions WHERE company_id = $1 \
                     UNION ALL SELECT id FROM activity_log WHERE company_id = $1 \
                     UNION ALL SELECT id FROM screenshots WHERE company_id = $1",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(|(id,)| RecordId(id)).collect())
            }

            async fn app_spans(
                &self,
                company: CompanyId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<AppSpanRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                type Row =
                    (Uuid, Uuid, Uuid, i64, i64, i64, String, Option<String>, Option<String>, Option<Uuid>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, device_id, employee_id, seq, start_ms, end_ms, app, exe, title, task_id \
                     FROM app_usage WHERE company_id = $1 AND start_ms < $3 AND end_ms > $2 \
                     ORDER BY start_ms, seq",
                )
                .bind(company.0)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| AppSpanRow {
                        id: RecordId(r.0),
                        device_id: DeviceId(r.1),
                        employee_id: UserId(r.2),
                        seq: r.3,
                        start_ms: r.4,
                        end_ms: r.5,
                        app: r.6,
                        exe: r.7,
                        title: r.8,
                        task_id: r.9.map(TaskId),
                    })
                    .collect())
            }

            async fn screenshots(
                &self,
                company: CompanyId,
            ) -> Result<Vec<ScreenshotRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(Uuid, Uuid, i64, i64, bool, Option<String>)> = sqlx::query_as(
                    "SELECT id, device_id, taken_at_ms, bytes, blurred, object_key \
                     FROM screenshots WHERE company_id = $1 ORDER BY taken_at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| ScreenshotRow {
                        id: RecordId(r.0),
                        device_id: DeviceId(r.1),
                        taken_at_ms: r.2,
                        bytes: r.3,
                        blurred: r.4,
                        object_key: r.5,
                    })
                    .collect())
            }

            async fn append_audit(
                &self,
                company: CompanyId,
                entry: &AuditEntry,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                insert_audit!(&mut *tx, company, entry)?;
                tx.commit().await?;
                Ok(())
            }

            async fn audit_log(&self, company: CompanyId) -> Result<Vec<AuditEntry>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT actor, action, detail_json, at_ms FROM audit_log \
                     WHERE company_id = $1 ORDER BY at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|(actor, action, detail_json, at_ms)| AuditEntry {
                        actor,
                        action,
                        detail_json,
                        at_ms,
                    })
                    .collect())
            }

            async fn add_request_counts(
                &self,
                counts: &[(CompanyId, i64, String, i64)],
            ) -> Result<(), StoreError> {
                // Rows in one order on every replica: two replicas flushing at once (at shutdown,
                // say) then wait for each other instead of deadlocking and losing a flush.
                let mut counts: Vec<_> = counts.iter().collect();
                counts.sort_by(|a, b| (a.0.0, a.1, &a.2).cmp(&(b.0.0, b.1, &b.2)));
                let mut tx = self.pool.begin().await?;
                for (company, bucket, code, count) in counts {
                    // One transaction, its tenant context switched before each company's rows.
                    Self::enter(&mut tx, *company).await?;
                    sqlx::query(
                        "INSERT INTO agent_request_counts (company_id, bucket_ms, code, count) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (company_id, bucket_ms, code) \
                         DO UPDATE SET count = agent_request_counts.count + excluded.count",
                    )
                    .bind(company.0)
                    .bind(*bucket)
                    .bind(code)
                    .bind(*count)
                    .execute(&mut *tx)
                    .await?;
                    mark_dirty!(&mut *tx, company, bucket.div_euclid(DAY_MS))?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn dirty_days(&self, limit: i64) -> Result<Vec<DirtyDay>, StoreError> {
                let mut tx = self.platform().await?;
                let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
                    "SELECT company_id, utc_day, version FROM rollup_dirty \
                     ORDER BY company_id, utc_day LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|(c, utc_day, version)| DirtyDay { company: CompanyId(c), utc_day, version })
                    .collect())
            }

            async fn clear_dirty(&self, mark: &DirtyDay) -> Result<(), StoreError> {
                let mut tx = self.tenant(mark.company).await?;
                sqlx::query(
                    "DELETE FROM rollup_dirty WHERE company_id = $1 AND utc_day = $2 AND version = $3",
                )
                .bind(mark.company.0)
                .bind(mark.utc_day)
                .bind(mark.version)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn compute_usage(
                &self,
                company: CompanyId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<UsageNumbers, StoreError> {
                let mut tx = self.tenant(company).await?;
                // $4 bounds span starts from below so the (company_id, start_ms) index applies:
                // no span is longer than MAX_SPAN_MS.
                let lowest_start = from_ms - worktrail_shared::limits::MAX_SPAN_MS;
                type Row = (i64, i64, i64, i64, i64, i64, i64, i64);
                let r: Row = sqlx::query_as(
                    "SELECT \
                     (SELECT COUNT(*) FROM ( \
                        SELECT employee_id FROM app_usage WHERE company_id = $1 \
                          AND start_ms >= $4 AND start_ms < $3 AND end_ms > $2 \
                        UNION SELECT employee_id FROM activity_log WHERE company_id = $1 \
                          AND minute_ms >= $2 AND minute_ms < $3 AND active_secs > 0) e), \
                     (SELECT COUNT(*) FROM ( \
                        SELECT device_id FROM app_usage WHERE company_id = $1 \
                          AND start_ms >= $4 AND start_ms < $3 AND end_ms > $2 \
                        UNION SELECT device_id FROM activity_log WHERE company_id = $1 \
                          AND minute_ms >= $2 AND minute_ms < $3 AND active_secs > 0) d), \
                     (SELECT CAST(COALESCE(SUM( \
                        CASE WHEN end_ms < $3 THEN end_ms ELSE $3 END \
                        - CASE WHEN start_ms > $2 THEN start_ms ELSE $2 END), 0) AS BIGINT) \
                        FROM app_usage WHERE company_id = $1 \
                        AND start_ms >= $4 AND start_ms < $3 AND end_ms > $2), \
                     (SELECT CAST(COALESCE(SUM( \
                        CASE WHEN end_ms < $3 THEN end_ms ELSE $3 END \
                        - CASE WHEN start_ms > $2 THEN start_ms ELSE $2 END), 0) AS BIGINT) \
                        FROM idle_spans WHERE company_id = $1 \
                        AND start_ms >= $4 AND start_ms < $3 AND end_ms > $2), \
                     (SELECT COUNT(*) FROM work_sessions WHERE company_id = $1 \
                        AND start_ms >= $2 AND start_ms < $3), \
                     (SELECT COUNT(*) FROM screenshots WHERE company_id = $1 \
                        AND taken_at_ms >= $2 AND taken_at_ms < $3), \
                     (SELECT CAST(COALESCE(SUM(record_count), 0) AS BIGINT) FROM ingest_batches \
                        WHERE company_id = $1 AND received_at_ms >= $2 AND received_at_ms < $3), \
                     (SELECT CAST(COALESCE(SUM(body_bytes), 0) AS BIGINT) FROM ingest_batches \
                        WHERE company_id = $1 AND received_at_ms >= $2 AND received_at_ms < $3)",
                )
                .bind(company.0)
                .bind(from_ms)
                .bind(to_ms)
                .bind(lowest_start)
                .fetch_one(&mut *tx)
                .await?;
                let codes: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT code, CAST(SUM(count) AS BIGINT) FROM agent_request_counts \
                     WHERE company_id = $1 AND bucket_ms >= $2 AND bucket_ms < $3 GROUP BY code",
                )
                .bind(company.0)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
                let sync_requests = codes.iter().map(|(_, n)| n).sum();
                let rejected_by_code: std::collections::BTreeMap<String, i64> =
                    codes.into_iter().filter(|(code, _)| code != "ok").collect();
                tx.commit().await?;
                Ok(UsageNumbers {
                    active_employees: r.0,
                    active_devices: r.1,
                    tracked_secs: r.2 / 1000,
                    idle_secs: r.3 / 1000,
                    work_sessions: r.4,
                    screenshots: r.5,
                    records: r.6,
                    bytes_ingested: r.7,
                    sync_requests,
                    rejected_requests: rejected_by_code.values().sum(),
                    rejected_by_code,
                })
            }

            async fn upsert_usage_day(
                &self,
                company: CompanyId,
                day: &str,
                n: &UsageNumbers,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                let rejected = serde_json::to_string(&n.rejected_by_code)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO company_usage_daily (company_id, day, active_employees, \
                     active_devices, tracked_secs, idle_secs, work_sessions, screenshots, records, \
                     bytes_ingested, sync_requests, rejected_requests, rejected_json, computed_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (company_id, day) DO UPDATE SET \
                     active_employees = excluded.active_employees, \
                     active_devices = excluded.active_devices, tracked_secs = excluded.tracked_secs, \
                     idle_secs = excluded.idle_secs, work_sessions = excluded.work_sessions, \
                     screenshots = excluded.screenshots, records = excluded.records, \
                     bytes_ingested = excluded.bytes_ingested, \
                     sync_requests = excluded.sync_requests, \
                     rejected_requests = excluded.rejected_requests, \
                     rejected_json = excluded.rejected_json, computed_at_ms = excluded.computed_at_ms",
                )
                .bind(company.0)
                .bind(day)
                .bind(n.active_employees)
                .bind(n.active_devices)
                .bind(n.tracked_secs)
                .bind(n.idle_secs)
                .bind(n.work_sessions)
                .bind(n.screenshots)
                .bind(n.records)
                .bind(n.bytes_ingested)
                .bind(n.sync_requests)
                .bind(n.rejected_requests)
                .bind(rejected)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn usage_days(
                &self,
                company: CompanyId,
                from_day: &str,
                to_day: &str,
            ) -> Result<Vec<UsageDay>, StoreError> {
                let mut tx = self.tenant(company).await?;
                type Row = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, String, i64);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT day, active_employees, active_devices, tracked_secs, idle_secs, \
                     work_sessions, screenshots, records, bytes_ingested, sync_requests, \
                     rejected_requests, rejected_json, computed_at_ms FROM company_usage_daily \
                     WHERE company_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
                )
                .bind(company.0)
                .bind(from_day)
                .bind(to_day)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(UsageDay {
                            day: r.0,
                            numbers: UsageNumbers {
                                active_employees: r.1,
                                active_devices: r.2,
                                tracked_secs: r.3,
                                idle_secs: r.4,
                                work_sessions: r.5,
                                screenshots: r.6,
                                records: r.7,
                                bytes_ingested: r.8,
                                sync_requests: r.9,
                                rejected_requests: r.10,
                                rejected_by_code: serde_json::from_str(&r.11)
                                    .map_err(|e| StoreError::Corrupt(format!("rejected_json: {e}")))?,
                            },
                            computed_at_ms: r.12,
                        })
                    })
                    .collect()
            }

            async fn subscriptions_due(
                &self,
                now_ms: i64,
            ) -> Result<Vec<(CompanyId, Subscription)>, StoreError> {
                let mut tx = self.platform().await?;
                let rows: Vec<(Uuid, String, Option<i64>, Option<i64>, i64)> = sqlx::query_as(
                    "SELECT company_id, status, trial_ends_at_ms, period_end_at_ms, grace_days \
                     FROM subscriptions WHERE \
                     (status = 'trialing' AND trial_ends_at_ms <= $1) \
                     OR (status IN ('active', 'past_due') AND period_end_at_ms <= $1) \
                     ORDER BY company_id",
                )
                .bind(now_ms)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|(c, status, trial, period, grace)| {
                        Ok((
                            CompanyId(c),
                            Subscription {
                                status: status_of(&status)?,
                                trial_ends_at_ms: trial,
                                period_end_at_ms: period,
                                grace_days: grace,
                            },
                        ))
                    })
                    .collect()
            }

            async fn transition_subscription(
                &self,
                company: CompanyId,
                from: SubscriptionStatus,
                to: &Subscription,
                audit: &AuditEntry,
            ) -> Result<bool, StoreError> {
                let mut tx = self.tenant(company).await?;
                let plan: Option<(Uuid,)> = sqlx::query_as(
                    "UPDATE subscriptions SET status = $3, trial_ends_at_ms = $4, \
                     period_end_at_ms = $5, grace_days = $6, updated_at_ms = $7 \
                     WHERE company_id = $1 AND status = $2 RETURNING plan_id",
                )
                .bind(company.0)
                .bind(from.as_str())
                .bind(to.status.as_str())
                .bind(to.trial_ends_at_ms)
                .bind(to.period_end_at_ms)
                .bind(to.grace_days)
                .bind(audit.at_ms)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((plan_id,)) = plan else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                sqlx::query(
                    "INSERT INTO subscription_events (company_id, id, status, plan_id, \
                     trial_ends_at_ms, period_end_at_ms, reason, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(to.status.as_str())
                .bind(plan_id)
                .bind(to.trial_ends_at_ms)
                .bind(to.period_end_at_ms)
                .bind(&audit.action)
                .bind(audit.at_ms)
                .execute(&mut *tx)
                .await?;
                insert_audit!(&mut *tx, company, audit)?;
                tx.commit().await?;
                Ok(true)
            }

            async fn retention_targets(&self) -> Result<Vec<RetentionTarget>, StoreError> {
                let mut tx = self.platform().await?;
                let rows: Vec<(Uuid, i64, String, String, i64)> = sqlx::query_as(
                    "SELECT c.id, p.retention_days, c.policy_json, s.status, s.updated_at_ms \
                     FROM companies c JOIN subscriptions s ON s.company_id = c.id \
                     JOIN plans p ON p.id = s.plan_id ORDER BY c.id",
                )
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|(c, plan_days, policy, status, updated)| {
                        let policy = policy_of(&policy)?;
                        Ok(RetentionTarget {
                            company: CompanyId(c),
                            plan_retention_days: plan_days,
                            policy_retention_days: policy.retention_days.map(i64::from),
                            cancelled_at_ms: (status_of(&status)? == SubscriptionStatus::Cancelled)
                                .then_some(updated),
                        })
                    })
                    .collect()
            }

            async fn delete_raw_before(
                &self,
                company: CompanyId,
                cutoff_ms: i64,
                chunk: i64,
            ) -> Result<u64, StoreError> {
                let mut tx = self.tenant(company).await?;
                let c = company.0;
                let mut deleted = 0;
                let mut app_spans = 0;
                for sql in [
                    Self::DELETE_OLD_APP_SPANS,
                    "DELETE FROM website_usage WHERE company_id = $1 AND id IN (SELECT id FROM \
                     website_usage WHERE company_id = $1 AND start_ms < $2 AND end_ms <= $2 LIMIT $3)",
                    "DELETE FROM idle_spans WHERE company_id = $1 AND id IN (SELECT id FROM \
                     idle_spans WHERE company_id = $1 AND start_ms < $2 AND end_ms <= $2 LIMIT $3)",
                    "DELETE FROM work_sessions WHERE company_id = $1 AND id IN (SELECT id FROM \
                     work_sessions WHERE company_id = $1 AND start_ms < $2 AND end_ms <= $2 LIMIT $3)",
                    "DELETE FROM activity_log WHERE company_id = $1 AND id IN (SELECT id FROM \
                     activity_log WHERE company_id = $1 AND minute_ms <= $2 - 60000 LIMIT $3)",
                    "DELETE FROM ingest_batches WHERE company_id = $1 AND batch_id IN (SELECT \
                     batch_id FROM ingest_batches WHERE company_id = $1 AND received_at_ms < $2 \
                     LIMIT $3)",
                ] {
                    let done = sqlx::query(sql)
                        .bind(c)
                        .bind(cutoff_ms)
                        .bind(chunk)
                        .execute(&mut *tx)
                        .await?;
                    if sql == Self::DELETE_OLD_APP_SPANS {
                        app_spans = done.rows_affected();
                    }
                    deleted += done.rows_affected();
                }
                tx.commit().await?;
                // Once the last chunk of spans is gone, so are the strings only they used.
                if app_spans > 0 && app_spans < chunk.max(0) as u64 {
                    self.sweep_span_strings(company).await?;
                }
                Ok(deleted)
            }

            async fn screenshots_before(
                &self,
                company: CompanyId,
                cutoff_ms: i64,
                limit: i64,
            ) -> Result<Vec<(RecordId, Option<String>)>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
                    "SELECT id, object_key FROM screenshots WHERE company_id = $1 \
                     AND taken_at_ms < $2 ORDER BY taken_at_ms LIMIT $3",
                )
                .bind(company.0)
                .bind(cutoff_ms)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(|(id, key)| (RecordId(id), key)).collect())
            }

            async fn delete_screenshot_rows(
                &self,
                company: CompanyId,
                ids: &[RecordId],
            ) -> Result<u64, StoreError> {
                let mut tx = self.tenant(company).await?;
                let mut deleted = 0;
                for id in ids {
                    let done = sqlx::query("DELETE FROM screenshots WHERE company_id = $1 AND id = $2")
                        .bind(company.0)
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    deleted += done.rows_affected();
                }
                tx.commit().await?;
                Ok(deleted)
            }

            async fn purge_people(&self, company: CompanyId, now_ms: i64) -> Result<u64, StoreError> {
                let mut tx = self.tenant(company).await?;
                let mut deleted = 0;
                for sql in [
                    "DELETE FROM devices WHERE company_id = $1",
                    "DELETE FROM data_access_log WHERE company_id = $1",
                    "DELETE FROM signin_links WHERE company_id = $1",
                    "DELETE FROM users WHERE company_id = $1",
                ] {
                    deleted += sqlx::query(sql).bind(company.0).execute(&mut *tx).await?.rows_affected();
                }
                sqlx::query(
                    "UPDATE company_keys SET revoked_at_ms = $2 \
                     WHERE company_id = $1 AND revoked_at_ms IS NULL",
                )
                .bind(company.0)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(deleted)
            }

            async fn claim_tick(
                &self,
                job: &str,
                tick: i64,
                holder: &str,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                sqlx::query(
                    "INSERT INTO job_leases (job, last_tick, holder, claimed_at_ms) \
                     VALUES ($1, -1, '', 0) ON CONFLICT DO NOTHING",
                )
                .bind(job)
                .execute(&self.pool)
                .await?;
                // One statement: PostgreSQL re-checks `last_tick < $2` after waiting for a
                // concurrent claimer's row lock, SQLite runs writers one at a time.
                let done = sqlx::query(
                    "UPDATE job_leases SET last_tick = $2, holder = $3, claimed_at_ms = $4 \
                     WHERE job = $1 AND last_tick < $2",
                )
                .bind(job)
                .bind(tick)
                .bind(holder)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_job_run(&self, run: &JobRun) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO job_runs (id, job, tick, holder, started_at_ms, finished_at_ms, \
                     rows_affected, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(Uuid::now_v7())
                .bind(&run.job)
                .bind(run.tick)
                .bind(&run.holder)
                .bind(run.started_at_ms)
                .bind(run.finished_at_ms)
                .bind(run.rows)
                .bind(&run.error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn job_runs(&self, job: &str) -> Result<Vec<JobRun>, StoreError> {
                let rows: Vec<(String, i64, String, i64, i64, i64, Option<String>)> =
                    sqlx::query_as(
                        "SELECT job, tick, holder, started_at_ms, finished_at_ms, rows_affected, \
                         error FROM job_runs WHERE job = $1 ORDER BY tick, started_at_ms",
                    )
                    .bind(job)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| JobRun {
                        job: r.0,
                        tick: r.1,
                        holder: r.2,
                        started_at_ms: r.3,
                        finished_at_ms: r.4,
                        rows: r.5,
                        error: r.6,
                    })
                    .collect())
            }
        }
    };
}

macro_rules! insert_key {
    ($exec:expr, $company:expr, $key:expr) => {{
        let key: &NewKey = $key;
        sqlx::query(
            "INSERT INTO company_keys (company_id, id, key_hash, display_prefix, created_at_ms, \
             expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($company.0)
        .bind(key.id.0)
        .bind(&key.hash)
        .bind(&key.display_prefix)
        .bind(key.created_at_ms)
        .bind(key.expires_at_ms)
        .execute($exec)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }};
}

macro_rules! insert_user {
    ($exec:expr, $company:expr, $user:expr) => {{
        let user: &NewUser = $user;
        sqlx::query(
            "INSERT INTO users (company_id, id, email, display_name, role, password_hash, \
             active, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($company.0)
        .bind(user.id.0)
        .bind(user.email.to_lowercase())
        .bind(&user.display_name)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(true)
        .bind(user.now_ms)
        .execute($exec)
        .await
        .map(|_| ())
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("user {:?}", user.email))
            } else {
                e.into()
            }
        })
    }};
}

macro_rules! insert_audit {
    ($exec:expr, $company:expr, $entry:expr) => {{
        let entry: &AuditEntry = $entry;
        sqlx::query(
            "INSERT INTO audit_log (company_id, id, actor, action, detail_json, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($company.0)
        .bind(Uuid::now_v7())
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.detail_json)
        .bind(entry.at_ms)
        .execute($exec)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }};
}

macro_rules! mark_dirty {
    ($exec:expr, $company:expr, $utc_day:expr) => {{
        sqlx::query(
            "INSERT INTO rollup_dirty (company_id, utc_day, version) VALUES ($1, $2, 0) \
             ON CONFLICT (company_id, utc_day) DO UPDATE SET version = rollup_dirty.version + 1",
        )
        .bind($company.0)
        .bind($utc_day)
        .execute($exec)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }};
}

/// Records a device's call: the company's last sync (at most once a second: on PostgreSQL every
/// batch's update of the company row made the per-row foreign-key checks of concurrent batches
/// walk that row's versions) and the device's last call, with its clock offset when a batch
/// reported one (one write of the device's row either way).
macro_rules! touch {
    ($tx:expr, $company:expr, $device:expr, $now:expr) => {
        touch!($tx, $company, $device, $now, None::<i64>)
    };
    ($tx:expr, $company:expr, $device:expr, $now:expr, $clock_offset:expr) => {{
        async {
            sqlx::query(
                "UPDATE companies SET last_sync_at_ms = $2 WHERE id = $1 \
                 AND (last_sync_at_ms IS NULL OR last_sync_at_ms < $2 - 1000)",
            )
            .bind($company.0)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
            sqlx::query(
                "UPDATE devices SET last_seen_at_ms = $3, \
                 clock_offset_ms = COALESCE($4, clock_offset_ms) WHERE company_id = $1 AND id = $2",
            )
            .bind($company.0)
            .bind($device.0)
            .bind($now)
            .bind($clock_offset)
            .execute(&mut *$tx)
            .await?;
            Ok::<(), StoreError>(())
        }
        .await
    }};
}

sql_store!(SqliteStore, Backend::Sqlite, sqlx::Sqlite);
sql_store!(PgStore, Backend::Postgres, sqlx::Postgres);

mod owner;
mod pg_ingest;
mod portal;
mod span_rows;
mod writer;
