//! [`OwnerStore`] in SQL: companies' metadata and rollup sums, for both backends.

use async_trait::async_trait;
use uuid::Uuid;
use worktrail_shared::{CompanyId, PlanId};

use super::{PgStore, SqliteStore, status_of};
use crate::domain::subscription::{Subscription, SubscriptionStatus};
use crate::store::{KeyRow, OwnerCompanyRow, OwnerStore, StoreError, UsageSummary};

type SummaryRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

fn summary(r: SummaryRow) -> UsageSummary {
    UsageSummary {
        days: r.0,
        employee_days: r.1,
        tracked_secs: r.2,
        idle_secs: r.3,
        work_sessions: r.4,
        screenshots: r.5,
        sync_requests: r.6,
        rejected_requests: r.7,
        records: r.8,
        bytes_ingested: r.9,
    }
}

macro_rules! sums {
    () => {
        "CAST(COUNT(*) AS BIGINT), CAST(SUM(active_employees) AS BIGINT), \
         CAST(SUM(tracked_secs) AS BIGINT), CAST(SUM(idle_secs) AS BIGINT), \
         CAST(SUM(work_sessions) AS BIGINT), CAST(SUM(screenshots) AS BIGINT), \
         CAST(SUM(sync_requests) AS BIGINT), CAST(SUM(rejected_requests) AS BIGINT), \
         CAST(SUM(records) AS BIGINT), CAST(SUM(bytes_ingested) AS BIGINT)"
    };
}

macro_rules! owner_store {
    ($store:ty) => {
        #[async_trait]
        impl OwnerStore for $store {
            async fn owner_companies(&self) -> Result<Vec<OwnerCompanyRow>, StoreError> {
                let mut tx = self.platform().await?;
                type Row = (
                    Uuid,
                    String,
                    Uuid,
                    String,
                    i64,
                    i64,
                    String,
                    Option<i64>,
                    Option<i64>,
                    i64,
                    Option<i64>,
                    i64,
                    Option<i64>,
                    String,
                );
                let rows: Vec<Row> =
                    sqlx::query_as(Self::OWNER_COMPANIES).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(OwnerCompanyRow {
                            id: CompanyId(r.0),
                            name: r.1,
                            plan_id: PlanId(r.2),
                            plan_code: r.3,
                            max_seats: r.4,
                            seats_used: r.5,
                            subscription: Subscription {
                                status: status_of(&r.6)?,
                                trial_ends_at_ms: r.7,
                                period_end_at_ms: r.8,
                                grace_days: r.9,
                            },
                            suspended_at_ms: r.10,
                            created_at_ms: r.11,
                            last_sync_at_ms: r.12,
                            time_zone: r.13,
                        })
                    })
                    .collect()
            }

            async fn usage_summaries(
                &self,
                from_day: &str,
                to_day: &str,
            ) -> Result<Vec<(CompanyId, UsageSummary)>, StoreError> {
                let mut tx = self.platform().await?;
                type Row = (Uuid, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
                let rows: Vec<Row> = sqlx::query_as(concat!(
                    "SELECT company_id, ",
                    sums!(),
                    " FROM company_usage_daily WHERE day >= $1 AND day <= $2 GROUP BY company_id"
                ))
                .bind(from_day)
                .bind(to_day)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        (
                            CompanyId(r.0),
                            summary((r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10)),
                        )
                    })
                    .collect())
            }

            async fn platform_usage(
                &self,
                from_day: &str,
                to_day: &str,
            ) -> Result<Vec<(String, UsageSummary)>, StoreError> {
                let mut tx = self.platform().await?;
                type Row = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
                let rows: Vec<Row> = sqlx::query_as(concat!(
                    "SELECT day, ",
                    sums!(),
                    " FROM company_usage_daily WHERE day >= $1 AND day <= $2 \
                     GROUP BY day ORDER BY day"
                ))
                .bind(from_day)
                .bind(to_day)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| (r.0, summary((r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10))))
                    .collect())
            }

            async fn company_keys(&self, company: CompanyId) -> Result<Vec<KeyRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT display_prefix, created_at_ms, expires_at_ms, revoked_at_ms \
                     FROM company_keys WHERE company_id = $1 ORDER BY created_at_ms DESC",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| KeyRow {
                        display_prefix: r.0,
                        created_at_ms: r.1,
                        expires_at_ms: r.2,
                        revoked_at_ms: r.3,
                    })
                    .collect())
            }

            async fn statuses_seen(
                &self,
            ) -> Result<Vec<(CompanyId, SubscriptionStatus)>, StoreError> {
                let mut tx = self.platform().await?;
                let rows: Vec<(Uuid, String)> =
                    sqlx::query_as("SELECT DISTINCT company_id, status FROM subscription_events")
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                rows.into_iter().map(|(c, s)| Ok((CompanyId(c), status_of(&s)?))).collect()
            }

            async fn set_company_plan(
                &self,
                company: CompanyId,
                plan: PlanId,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                let done = sqlx::query("UPDATE companies SET plan_id = $2 WHERE id = $1")
                    .bind(company.0)
                    .bind(plan.0)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("company {company}")));
                }
                sqlx::query("UPDATE subscriptions SET plan_id = $2 WHERE company_id = $1")
                    .bind(company.0)
                    .bind(plan.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

owner_store!(SqliteStore);
owner_store!(PgStore);
