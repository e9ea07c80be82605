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
use worktrail_shared::{CompanyId, CompanyKeyId, DeviceId, OwnerId, PlanId, RecordId, UserId};

use super::*;
use crate::domain::plan::Plan;
use crate::domain::subscription::{Subscription, SubscriptionStatus};

/// The embedded backend.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        let store = Self { pool };
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

impl PgStore {
    /// Connects to PostgreSQL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres").run(&self.pool).await?;
        Ok(())
    }
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
    ($store:ty, $backend:expr) => {
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
                let mut tx = self.pool.begin().await?;
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
                insert_key!(&self.pool, company, key)
            }

            async fn expire_company_keys(
                &self,
                company: CompanyId,
                keep: CompanyKeyId,
                at_ms: i64,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE company_keys SET expires_at_ms = $3 WHERE company_id = $1 \
                     AND id <> $2 AND revoked_at_ms IS NULL \
                     AND (expires_at_ms IS NULL OR expires_at_ms > $3)",
                )
                .bind(company.0)
                .bind(keep.0)
                .bind(at_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn set_company_suspended(
                &self,
                company: CompanyId,
                suspended_at_ms: Option<i64>,
            ) -> Result<(), StoreError> {
                let done = sqlx::query("UPDATE companies SET suspended_at_ms = $2 WHERE id = $1")
                    .bind(company.0)
                    .bind(suspended_at_ms)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("company {company}")));
                }
                Ok(())
            }

            async fn subscription(
                &self,
                company: CompanyId,
            ) -> Result<Option<Subscription>, StoreError> {
                let row: Option<(String, Option<i64>, Option<i64>, i64)> = sqlx::query_as(
                    "SELECT status, trial_ends_at_ms, period_end_at_ms, grace_days \
                     FROM subscriptions WHERE company_id = $1",
                )
                .bind(company.0)
                .fetch_optional(&self.pool)
                .await?;
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
                let mut tx = self.pool.begin().await?;
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
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT at_ms, status, reason FROM subscription_events \
                     WHERE company_id = $1 ORDER BY at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|(at, s, r)| Ok((at, status_of(&s)?, r))).collect()
            }

            async fn set_policy(
                &self,
                company: CompanyId,
                policy: &Policy,
            ) -> Result<(), StoreError> {
                let json =
                    serde_json::to_string(policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query("UPDATE companies SET policy_json = $2 WHERE id = $1")
                    .bind(company.0)
                    .bind(json)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn gate_by_key_hash(
                &self,
                key_hash: &[u8],
            ) -> Result<Option<KeyGate>, StoreError> {
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
                     WHERE k.key_hash = $1",
                )
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
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
                let row: Option<(Uuid, Uuid, Option<i64>)> = sqlx::query_as(
                    "SELECT id, employee_id, revoked_at_ms FROM devices \
                     WHERE company_id = $1 AND token_hash = $2",
                )
                .bind(company.0)
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
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
                insert_user!(&self.pool, company, user)
            }

            async fn user_by_email(
                &self,
                company: CompanyId,
                email: &str,
            ) -> Result<Option<User>, StoreError> {
                let row: Option<(Uuid, String, String, String, bool)> = sqlx::query_as(
                    "SELECT id, email, display_name, role, active FROM users \
                     WHERE company_id = $1 AND email = $2",
                )
                .bind(company.0)
                .bind(email.to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
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
                sqlx::query("UPDATE users SET password_hash = $3 WHERE company_id = $1 AND id = $2")
                    .bind(company.0)
                    .bind(user.0)
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn enroll_device(
                &self,
                company: CompanyId,
                e: &Enrollment,
                max_seats: i64,
                now_ms: i64,
            ) -> Result<UserId, StoreError> {
                let mut tx = self.pool.begin().await?;
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
                match device {
                    Some((Some(_),)) => {
                        return Err(StoreError::DeviceRevoked(
                            "this device was revoked by the company's admin".into(),
                        ));
                    }
                    Some((None,)) => {
                        sqlx::query(
                            "UPDATE devices SET employee_id = $3, hostname = $4, os = $5, \
                             os_user = $6, agent_version = $7, token_hash = $8, \
                             token_prefix = $9, last_seen_at_ms = $10 \
                             WHERE company_id = $1 AND id = $2",
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
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO devices (company_id, id, employee_id, hostname, os, \
                             os_user, agent_version, token_hash, token_prefix, enrolled_at_ms, \
                             last_seen_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
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
                    }
                }
                tx.commit().await?;
                Ok(employee)
            }

            async fn revoke_device(
                &self,
                company: CompanyId,
                device: DeviceId,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE devices SET revoked_at_ms = $3 WHERE company_id = $1 AND id = $2",
                )
                .bind(company.0)
                .bind(device.0)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("device {device}")));
                }
                Ok(())
            }

            async fn devices(&self, company: CompanyId) -> Result<Vec<DeviceRow>, StoreError> {
                type Row = (Uuid, Uuid, String, String, i64, Option<i64>, Option<i64>, Option<i64>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, employee_id, hostname, token_prefix, enrolled_at_ms, \
                     last_seen_at_ms, clock_offset_ms, revoked_at_ms FROM devices \
                     WHERE company_id = $1 ORDER BY enrolled_at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&self.pool)
                .await?;
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
                let mut tx = self.pool.begin().await?;
                touch!(&mut *tx, company, device, now_ms)?;
                tx.commit().await?;
                Ok(())
            }

            async fn ingest_batch(
                &self,
                company: CompanyId,
                device: &DeviceAuth,
                batch: &BatchRequest,
                meta: &BatchMeta,
            ) -> Result<IngestOutcome, StoreError> {
                let mut tx = self.pool.begin().await?;
                // Claim the batch id first. Under concurrency the loser waits for the winner's
                // commit, then finds its row and answers from it.
                let claimed = sqlx::query(
                    "INSERT INTO ingest_batches (company_id, batch_id, device_id, body_hash, \
                     record_count, body_bytes, received_at_ms, device_sent_at_ms, \
                     dropped_screenshots, dropped_records) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                )
                .bind(company.0)
                .bind(batch.batch_id.0)
                .bind(device.id.0)
                .bind(&meta.body_hash)
                .bind(batch.records.len() as i64)
                .bind(meta.body_bytes)
                .bind(meta.now_ms)
                .bind(batch.sent_at_ms)
                .bind(i64::try_from(batch.dropped.screenshots).unwrap_or(i64::MAX))
                .bind(i64::try_from(batch.dropped.records).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() == 0 {
                    let (hash, ack): (Vec<u8>, Option<String>) = sqlx::query_as(
                        "SELECT body_hash, ack_json FROM ingest_batches \
                         WHERE company_id = $1 AND batch_id = $2",
                    )
                    .bind(company.0)
                    .bind(batch.batch_id.0)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    if hash != meta.body_hash {
                        return Ok(IngestOutcome::Conflict);
                    }
                    let ack = ack.ok_or_else(|| StoreError::Corrupt("batch without ack".into()))?;
                    let ack: BatchAck = serde_json::from_str(&ack)
                        .map_err(|e| StoreError::Corrupt(format!("ack: {e}")))?;
                    return Ok(IngestOutcome::Acknowledged(ack));
                }
                let mut accepted: u32 = 0;
                for record in &batch.records {
                    let done = insert_record!(&mut *tx, company, device, record)?;
                    accepted += u32::from(done.rows_affected() == 1);
                }
                let ack = BatchAck {
                    batch_id: batch.batch_id,
                    accepted,
                    duplicates: batch.records.len() as u32 - accepted,
                    max_seq: batch.max_seq(),
                    server_time_ms: meta.now_ms,
                };
                let ack_json =
                    serde_json::to_string(&ack).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "UPDATE ingest_batches SET ack_json = $3 WHERE company_id = $1 AND batch_id = $2",
                )
                .bind(company.0)
                .bind(batch.batch_id.0)
                .bind(ack_json)
                .execute(&mut *tx)
                .await?;
                touch!(&mut *tx, company, device.id, meta.now_ms)?;
                sqlx::query(
                    "UPDATE devices SET clock_offset_ms = $3 WHERE company_id = $1 AND id = $2",
                )
                .bind(company.0)
                .bind(device.id.0)
                .bind(batch.sent_at_ms - meta.now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(IngestOutcome::Acknowledged(ack))
            }

            async fn screenshot_state(
                &self,
                company: CompanyId,
                device: DeviceId,
                id: RecordId,
            ) -> Result<Option<(i64, Option<Vec<u8>>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT bytes, sha256 FROM screenshots \
                     WHERE company_id = $1 AND id = $2 AND device_id = $3",
                )
                .bind(company.0)
                .bind(id.0)
                .bind(device.0)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn attach_screenshot(
                &self,
                company: CompanyId,
                device: DeviceId,
                id: RecordId,
                up: &ScreenshotUpload,
            ) -> Result<AttachOutcome, StoreError> {
                let mut tx = self.pool.begin().await?;
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
                    .fetch_one(&self.pool)
                    .await?;
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
                let rows: Vec<(Uuid,)> = sqlx::query_as(
                    "SELECT id FROM app_usage WHERE company_id = $1 \
                     UNION ALL SELECT id FROM website_usage WHERE company_id = $1 \
                     UNION ALL SELECT id FROM idle_spans WHERE company_id = $1 \
                     UNION ALL SELECT id FROM work_sessions WHERE company_id = $1 \
                     UNION ALL SELECT id FROM activity_log WHERE company_id = $1 \
                     UNION ALL SELECT id FROM screenshots WHERE company_id = $1",
                )
                .bind(company.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| RecordId(id)).collect())
            }

            async fn app_spans(
                &self,
                company: CompanyId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<AppSpanRow>, StoreError> {
                type Row = (Uuid, Uuid, Uuid, i64, i64, i64, String, Option<String>, Option<String>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, device_id, employee_id, seq, start_ms, end_ms, app, exe, title \
                     FROM app_usage WHERE company_id = $1 AND start_ms < $3 AND end_ms > $2 \
                     ORDER BY start_ms, seq",
                )
                .bind(company.0)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool)
                .await?;
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
                    })
                    .collect())
            }

            async fn screenshots(
                &self,
                company: CompanyId,
            ) -> Result<Vec<ScreenshotRow>, StoreError> {
                let rows: Vec<(Uuid, Uuid, i64, i64, bool, Option<String>)> = sqlx::query_as(
                    "SELECT id, device_id, taken_at_ms, bytes, blurred, object_key \
                     FROM screenshots WHERE company_id = $1 ORDER BY taken_at_ms, id",
                )
                .bind(company.0)
                .fetch_all(&self.pool)
                .await?;
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

macro_rules! touch {
    ($tx:expr, $company:expr, $device:expr, $now:expr) => {{
        async {
            sqlx::query("UPDATE companies SET last_sync_at_ms = $2 WHERE id = $1")
                .bind($company.0)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            sqlx::query(
                "UPDATE devices SET last_seen_at_ms = $3 WHERE company_id = $1 AND id = $2",
            )
            .bind($company.0)
            .bind($device.0)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
            Ok::<(), StoreError>(())
        }
        .await
    }};
}

macro_rules! insert_record {
    ($tx:expr, $company:expr, $device:expr, $record:expr) => {{
        let r = $record;
        let (c, d, e) = ($company.0, $device.id.0, $device.employee_id.0);
        let q = match &r.body {
            RecordBody::AppSpan { start_ms, end_ms, app, exe, title } => sqlx::query(
                "INSERT INTO app_usage (company_id, id, device_id, employee_id, seq, start_ms, \
                 end_ms, app, exe, title) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(c)
            .bind(r.id.0)
            .bind(d)
            .bind(e)
            .bind(r.seq)
            .bind(*start_ms)
            .bind(*end_ms)
            .bind(app)
            .bind(exe)
            .bind(title),
            RecordBody::WebsiteSpan { start_ms, end_ms, domain, url, title, browser, source } => {
                sqlx::query(
                    "INSERT INTO website_usage (company_id, id, device_id, employee_id, seq, \
                     start_ms, end_ms, domain, url, title, browser, source) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(c)
                .bind(r.id.0)
                .bind(d)
                .bind(e)
                .bind(r.seq)
                .bind(*start_ms)
                .bind(*end_ms)
                .bind(domain)
                .bind(url)
                .bind(title)
                .bind(browser)
                .bind(site_source_str(*source))
            }
            RecordBody::IdleSpan { start_ms, end_ms } => sqlx::query(
                "INSERT INTO idle_spans (company_id, id, device_id, employee_id, seq, start_ms, \
                 end_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(c)
            .bind(r.id.0)
            .bind(d)
            .bind(e)
            .bind(r.seq)
            .bind(*start_ms)
            .bind(*end_ms),
            RecordBody::WorkSession { start_ms, end_ms, end_reason } => sqlx::query(
                "INSERT INTO work_sessions (company_id, id, device_id, employee_id, seq, \
                 start_ms, end_ms, end_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(c)
            .bind(r.id.0)
            .bind(d)
            .bind(e)
            .bind(r.seq)
            .bind(*start_ms)
            .bind(*end_ms)
            .bind(session_end_str(*end_reason)),
            RecordBody::Activity { minute_ms, active_secs } => sqlx::query(
                "INSERT INTO activity_log (company_id, id, device_id, employee_id, seq, \
                 minute_ms, active_secs) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(c)
            .bind(r.id.0)
            .bind(d)
            .bind(e)
            .bind(r.seq)
            .bind(*minute_ms)
            .bind(i64::from(*active_secs)),
            RecordBody::Screenshot { taken_at_ms, monitor, width, height, bytes, blurred } => {
                sqlx::query(
                    "INSERT INTO screenshots (company_id, id, device_id, employee_id, seq, \
                     taken_at_ms, monitor, width, height, bytes, blurred) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                )
                .bind(c)
                .bind(r.id.0)
                .bind(d)
                .bind(e)
                .bind(r.seq)
                .bind(*taken_at_ms)
                .bind(i64::from(*monitor))
                .bind(i64::from(*width))
                .bind(i64::from(*height))
                .bind(i64::try_from(*bytes).unwrap_or(i64::MAX))
                .bind(*blurred)
            }
        };
        q.execute(&mut *$tx).await
    }};
}

sql_store!(SqliteStore, Backend::Sqlite);
sql_store!(PgStore, Backend::Postgres);
