//! [`PortalStore`] in SQL: sign-in, invitations and a company's own views, for both backends.

use async_trait::async_trait;
use uuid::Uuid;
use worktrail_shared::{CompanyId, DeviceId, OwnerId, RecordId, TaskId, UserId};

use super::{PgStore, SqliteStore};
use crate::domain::subscription::DAY_MS;
use crate::store::{
    AccessRow, EmployeeDay, EmployeeRow, Invitation, LoginCandidate, PortalStore, Principal, Role,
    SessionRow, SigninRedemption, StoreError, TaskRow, Total, User,
};

fn role_of(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
}

fn totals(rows: Vec<(String, i64)>) -> Vec<Total> {
    rows.into_iter().map(|(key, ms)| Total { key, secs: ms / 1000 }).collect()
}

/// Seconds of a span clipped to `[$2, $3)`.
macro_rules! clipped {
    () => {
        "CAST(SUM(CASE WHEN end_ms < $3 THEN end_ms ELSE $3 END \
         - CASE WHEN start_ms > $2 THEN start_ms ELSE $2 END) AS BIGINT)"
    };
}

/// The `limit` values of `$key` in `$table` with the most time within `[from, to)`, optionally of
/// one employee.
macro_rules! top_by {
    ($self:ident, $key:literal, $table:literal, $company:expr, $employee:expr, $from:expr, $to:expr, $limit:expr) => {{
        let mut tx = $self.tenant($company).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(concat!(
            "SELECT ",
            $key,
            ", ",
            clipped!(),
            " FROM ",
            $table,
            " WHERE company_id = $1 AND start_ms >= $4 AND start_ms < $3 AND end_ms > $2 \
             AND ($5 IS NULL OR employee_id = $5) GROUP BY ",
            $key,
            " ORDER BY 2 DESC, ",
            $key,
            " LIMIT $6"
        ))
        .bind($company.0)
        .bind($from)
        .bind($to)
        .bind($from - DAY_MS)
        .bind($employee.map(|e| e.0))
        .bind($limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(totals(rows))
    }};
}

macro_rules! portal_store {
    ($store:ty) => {
        impl $store {
            /// The company an invitation token belongs to (found before any tenant context).
            async fn invitation_company(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<CompanyId>, StoreError> {
                let company: Option<Uuid> = sqlx::query_scalar(Self::INVITATION_COMPANY)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(company.map(CompanyId))
            }
        }

        #[async_trait]
        impl PortalStore for $store {
            async fn login_candidates(&self, email: &str) -> Result<Vec<LoginCandidate>, StoreError> {
                let email = email.trim().to_lowercase();
                let owners: Vec<(Uuid, String)> =
                    sqlx::query_as("SELECT id, password_hash FROM owners WHERE email = $1")
                        .bind(&email)
                        .fetch_all(&self.pool)
                        .await?;
                // Which companies have this e-mail (the one lookup across companies), then each
                // company's user inside that company's context.
                let companies: Vec<Uuid> = sqlx::query_scalar(Self::LOGIN_COMPANIES)
                    .bind(&email)
                    .fetch_all(&self.pool)
                    .await?;
                let mut users: Vec<(Uuid, Uuid, String, Option<String>, bool)> = Vec::new();
                for company in companies {
                    let mut tx = self.tenant(CompanyId(company)).await?;
                    let found: Vec<(Uuid, Uuid, String, Option<String>, bool)> = sqlx::query_as(
                        "SELECT company_id, id, role, password_hash, active FROM users \
                         WHERE company_id = $1 AND email = $2",
                    )
                    .bind(company)
                    .bind(&email)
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    users.extend(found);
                }
                let mut out: Vec<LoginCandidate> = owners
                    .into_iter()
                    .map(|(id, hash)| LoginCandidate {
                        principal: Principal::Owner(OwnerId(id)),
                        role: None,
                        password_hash: Some(hash),
                        active: true,
                    })
                    .collect();
                for (c, u, role, hash, active) in users {
                    out.push(LoginCandidate {
                        principal: Principal::User(CompanyId(c), UserId(u)),
                        role: Some(role_of(&role)?),
                        password_hash: hash,
                        active,
                    });
                }
                Ok(out)
            }

            async fn create_session(
                &self,
                token_hash: &[u8],
                principal: Principal,
                now_ms: i64,
                expires_at_ms: i64,
            ) -> Result<(), StoreError> {
                let (owner, company, user) = match principal {
                    Principal::Owner(o) => (Some(o.0), None, None),
                    Principal::User(c, u) => (None, Some(c.0), Some(u.0)),
                };
                sqlx::query(Self::SESSION_CREATE)
                .bind(token_hash)
                .bind(owner)
                .bind(company)
                .bind(user)
                .bind(now_ms)
                .bind(expires_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
                let row: Option<(Option<Uuid>, Option<Uuid>, Option<Uuid>, i64)> = sqlx::query_as(Self::SESSION_FIND)
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(owner, company, user, expires)| {
                    let principal = match (owner, company, user) {
                        (Some(o), None, None) => Principal::Owner(OwnerId(o)),
                        (None, Some(c), Some(u)) => Principal::User(CompanyId(c), UserId(u)),
                        _ => return None,
                    };
                    Some(SessionRow { principal, expires_at_ms: expires })
                }))
            }

            async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
                sqlx::query(Self::SESSION_DELETE)
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_invitation(
                &self,
                company: CompanyId,
                user: UserId,
                token_hash: &[u8],
                created_by: &str,
                now_ms: i64,
                expires_at_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                sqlx::query(
                    "INSERT INTO invitations (company_id, id, token_hash, user_id, created_by, \
                     created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(token_hash)
                .bind(user.0)
                .bind(created_by)
                .bind(now_ms)
                .bind(expires_at_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn invitation(&self, token_hash: &[u8]) -> Result<Option<Invitation>, StoreError> {
                let Some(company) = self.invitation_company(token_hash).await? else {
                    return Ok(None);
                };
                let mut tx = self.tenant(company).await?;
                let row: Option<(Uuid, Uuid, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT i.company_id, i.user_id, u.email, i.expires_at_ms, i.used_at_ms \
                     FROM invitations i JOIN users u \
                     ON u.company_id = i.company_id AND u.id = i.user_id \
                     WHERE i.company_id = $2 AND i.token_hash = $1",
                )
                .bind(token_hash)
                .bind(company.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row.map(|r| Invitation {
                    company: CompanyId(r.0),
                    user: UserId(r.1),
                    email: r.2,
                    expires_at_ms: r.3,
                    used_at_ms: r.4,
                }))
            }

            async fn accept_invitation(
                &self,
                token_hash: &[u8],
                password_hash: &str,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let Some(company) = self.invitation_company(token_hash).await? else {
                    return Ok(false);
                };
                let mut tx = self.tenant(company).await?;
                let used: Option<(Uuid, Uuid)> = sqlx::query_as(
                    "UPDATE invitations SET used_at_ms = $2 WHERE token_hash = $1 \
                     AND company_id = $3 AND used_at_ms IS NULL AND expires_at_ms > $2 \
                     RETURNING company_id, user_id",
                )
                .bind(token_hash)
                .bind(now_ms)
                .bind(company.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((company, user)) = used else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE users SET password_hash = $3 WHERE company_id = $1 AND id = $2",
                )
                .bind(company)
                .bind(user)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_signin_link(
                &self,
                company: CompanyId,
                user: UserId,
                device: DeviceId,
                token_hash: &[u8],
                now_ms: i64,
                expires_at_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                sqlx::query(
                    "INSERT INTO signin_links (company_id, id, token_hash, user_id, device_id, \
                     created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(token_hash)
                .bind(user.0)
                .bind(device.0)
                .bind(now_ms)
                .bind(expires_at_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn redeem_signin_link(
                &self,
                company: CompanyId,
                token_hash: &[u8],
                now_ms: i64,
            ) -> Result<SigninRedemption, StoreError> {
                let mut tx = self.tenant(company).await?;
                let used: Option<(Uuid,)> = sqlx::query_as(
                    "UPDATE signin_links SET used_at_ms = $3 \
                     WHERE company_id = $1 AND token_hash = $2 \
                     AND used_at_ms IS NULL AND expires_at_ms > $3 RETURNING user_id",
                )
                .bind(company.0)
                .bind(token_hash)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((user,)) = used {
                    tx.commit().await?;
                    return Ok(SigninRedemption::SignedIn(UserId(user)));
                }
                let found: Option<(Option<i64>,)> = sqlx::query_as(
                    "SELECT used_at_ms FROM signin_links WHERE company_id = $1 AND token_hash = $2",
                )
                .bind(company.0)
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(match found {
                    None => SigninRedemption::Unknown,
                    Some((Some(_),)) => SigninRedemption::Used,
                    Some((None,)) => SigninRedemption::Expired,
                })
            }

            async fn employees(&self, company: CompanyId) -> Result<Vec<EmployeeRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                type Row = (Uuid, String, String, String, bool, i64, Option<i64>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT u.id, u.email, u.display_name, u.role, u.active, \
                     (SELECT COUNT(*) FROM devices d WHERE d.company_id = u.company_id \
                        AND d.employee_id = u.id), \
                     (SELECT MAX(d.last_seen_at_ms) FROM devices d \
                        WHERE d.company_id = u.company_id AND d.employee_id = u.id) \
                     FROM users u WHERE u.company_id = $1 ORDER BY u.display_name, u.email",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(EmployeeRow {
                            id: UserId(r.0),
                            email: r.1,
                            display_name: r.2,
                            role: role_of(&r.3)?,
                            active: r.4,
                            devices: r.5,
                            last_seen_at_ms: r.6,
                        })
                    })
                    .collect()
            }

            async fn user(&self, company: CompanyId, user: UserId) -> Result<Option<User>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let row: Option<(String, String, String, bool)> = sqlx::query_as(
                    "SELECT email, display_name, role, active FROM users \
                     WHERE company_id = $1 AND id = $2",
                )
                .bind(company.0)
                .bind(user.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.map(|(email, display_name, role, active)| {
                    Ok(User { id: user, email, display_name, role: role_of(&role)?, active })
                })
                .transpose()
            }

            async fn set_user_active(
                &self,
                company: CompanyId,
                user: UserId,
                active: bool,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                let done = sqlx::query("UPDATE users SET active = $3 WHERE company_id = $1 AND id = $2")
                    .bind(company.0)
                    .bind(user.0)
                    .bind(active)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("user {user}")));
                }
                if !active {
                    sqlx::query("DELETE FROM sessions WHERE company_id = $1 AND user_id = $2")
                        .bind(company.0)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn tracked_by_employee(
                &self,
                company: CompanyId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<Total>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(Uuid, i64)> = sqlx::query_as(concat!(
                    "SELECT employee_id, ",
                    clipped!(),
                    " FROM app_usage WHERE company_id = $1 AND start_ms >= $4 AND start_ms < $3 \
                     AND end_ms > $2 GROUP BY employee_id ORDER BY 2 DESC"
                ))
                .bind(company.0)
                .bind(from_ms)
                .bind(to_ms)
                .bind(from_ms - DAY_MS)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(totals(rows.into_iter().map(|(id, ms)| (id.to_string(), ms)).collect()))
            }

            async fn top_apps(
                &self,
                company: CompanyId,
                employee: Option<UserId>,
                from_ms: i64,
                to_ms: i64,
                limit: i64,
            ) -> Result<Vec<Total>, StoreError> {
                top_by!(self, "app", "app_usage", company, employee, from_ms, to_ms, limit)
            }

            async fn top_sites(
                &self,
                company: CompanyId,
                employee: Option<UserId>,
                from_ms: i64,
                to_ms: i64,
                limit: i64,
            ) -> Result<Vec<Total>, StoreError> {
                top_by!(self, "domain", "website_usage", company, employee, from_ms, to_ms, limit)
            }

            async fn employee_day(
                &self,
                company: CompanyId,
                employee: UserId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<EmployeeDay, StoreError> {
                let mut tx = self.tenant(company).await?;
                let (c, e, lo) = (company.0, employee.0, from_ms - DAY_MS);
                let apps = sqlx::query_as(
                    "SELECT start_ms, end_ms, app, title FROM app_usage WHERE company_id = $1 \
                     AND employee_id = $2 AND start_ms >= $5 AND start_ms < $4 AND end_ms > $3 \
                     ORDER BY start_ms",
                )
                .bind(c).bind(e).bind(from_ms).bind(to_ms).bind(lo)
                .fetch_all(&mut *tx)
                .await?;
                let sites = sqlx::query_as(
                    "SELECT start_ms, end_ms, domain, url FROM website_usage WHERE company_id = $1 \
                     AND employee_id = $2 AND start_ms >= $5 AND start_ms < $4 AND end_ms > $3 \
                     ORDER BY start_ms",
                )
                .bind(c).bind(e).bind(from_ms).bind(to_ms).bind(lo)
                .fetch_all(&mut *tx)
                .await?;
                let idle = sqlx::query_as(
                    "SELECT start_ms, end_ms FROM idle_spans WHERE company_id = $1 \
                     AND employee_id = $2 AND start_ms >= $5 AND start_ms < $4 AND end_ms > $3 \
                     ORDER BY start_ms",
                )
                .bind(c).bind(e).bind(from_ms).bind(to_ms).bind(lo)
                .fetch_all(&mut *tx)
                .await?;
                let activity = sqlx::query_as(
                    "SELECT minute_ms, active_secs FROM activity_log WHERE company_id = $1 \
                     AND employee_id = $2 AND minute_ms >= $3 AND minute_ms < $4 ORDER BY minute_ms",
                )
                .bind(c).bind(e).bind(from_ms).bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
                let shots: Vec<(Uuid, i64, Option<String>)> = sqlx::query_as(
                    "SELECT id, taken_at_ms, object_key FROM screenshots WHERE company_id = $1 \
                     AND employee_id = $2 AND taken_at_ms >= $3 AND taken_at_ms < $4 \
                     ORDER BY taken_at_ms",
                )
                .bind(c).bind(e).bind(from_ms).bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(EmployeeDay {
                    apps,
                    sites,
                    idle,
                    activity,
                    screenshots: shots
                        .into_iter()
                        .map(|(id, at, key)| (RecordId(id), at, key.is_some()))
                        .collect(),
                })
            }

            async fn screenshot_object(
                &self,
                company: CompanyId,
                id: RecordId,
            ) -> Result<Option<(UserId, Option<String>)>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let row: Option<(Uuid, Option<String>)> = sqlx::query_as(
                    "SELECT employee_id, object_key FROM screenshots \
                     WHERE company_id = $1 AND id = $2",
                )
                .bind(company.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row.map(|(e, key)| (UserId(e), key)))
            }

            async fn delete_own_screenshot(
                &self,
                company: CompanyId,
                employee: UserId,
                id: RecordId,
                window_ms: i64,
            ) -> Result<Option<Option<String>>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let row: Option<(i64, Option<String>)> = sqlx::query_as(
                    "DELETE FROM screenshots WHERE company_id = $1 AND id = $2 \
                     AND employee_id = $3 RETURNING taken_at_ms, object_key",
                )
                .bind(company.0)
                .bind(id.0)
                .bind(employee.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((at, key)) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                // The time the screenshot stood for goes with it: spans inside the window are
                // removed, spans reaching into it are cut at its edges.
                let (lo, hi) = (at - window_ms / 2, at + window_ms / 2);
                let (c, e) = (company.0, employee.0);
                for sql in [
                    "DELETE FROM app_usage WHERE company_id = $1 AND employee_id = $2 \
                     AND start_ms >= $3 AND end_ms <= $4",
                    "UPDATE app_usage SET end_ms = $3 WHERE company_id = $1 AND employee_id = $2 \
                     AND start_ms < $3 AND end_ms > $3",
                    "UPDATE app_usage SET start_ms = $4 WHERE company_id = $1 \
                     AND employee_id = $2 AND start_ms >= $3 AND start_ms < $4 AND end_ms > $4",
                ] {
                    sqlx::query(sql).bind(c).bind(e).bind(lo).bind(hi).execute(&mut *tx).await?;
                }
                for day in [lo.div_euclid(DAY_MS), hi.div_euclid(DAY_MS)] {
                    mark_dirty!(&mut *tx, company, day)?;
                }
                tx.commit().await?;
                // Titles of the removed spans go too.
                self.sweep_span_strings(company).await?;
                Ok(Some(key))
            }

            async fn log_access(
                &self,
                company: CompanyId,
                viewer: UserId,
                subject: UserId,
                what: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                sqlx::query(
                    "INSERT INTO data_access_log (company_id, id, viewer_id, subject_id, what, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(viewer.0)
                .bind(subject.0)
                .bind(what)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn access_log(
                &self,
                company: CompanyId,
                subject: UserId,
            ) -> Result<Vec<AccessRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(Option<String>, String, i64)> = sqlx::query_as(
                    "SELECT u.display_name, a.what, a.at_ms FROM data_access_log a \
                     LEFT JOIN users u ON u.company_id = a.company_id AND u.id = a.viewer_id \
                     WHERE a.company_id = $1 AND a.subject_id = $2 ORDER BY a.at_ms DESC",
                )
                .bind(company.0)
                .bind(subject.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|(viewer, what, at_ms)| AccessRow {
                        viewer: viewer.unwrap_or_else(|| "(removed user)".into()),
                        what,
                        at_ms,
                    })
                    .collect())
            }

            async fn tasks(&self, company: CompanyId) -> Result<Vec<TaskRow>, StoreError> {
                let mut tx = self.tenant(company).await?;
                let rows: Vec<(Uuid, String, String, bool, i64)> = sqlx::query_as(
                    "SELECT t.id, p.name, t.name, t.archived OR p.archived, \
                     (SELECT CAST(COALESCE(SUM(a.end_ms - a.start_ms), 0) AS BIGINT) \
                        FROM app_usage a WHERE a.company_id = t.company_id AND a.task_id = t.id) \
                     FROM tasks t JOIN projects p \
                     ON p.company_id = t.company_id AND p.id = t.project_id \
                     WHERE t.company_id = $1 ORDER BY p.name, t.name",
                )
                .bind(company.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, project, name, archived, ms)| TaskRow {
                        id: TaskId(id),
                        project,
                        name,
                        archived,
                        tracked_secs: ms / 1000,
                    })
                    .collect())
            }

            async fn create_task(
                &self,
                company: CompanyId,
                project: &str,
                task: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.tenant(company).await?;
                sqlx::query(
                    "INSERT INTO projects (company_id, id, name, created_at_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (company_id, name) DO NOTHING",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(project)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let (project_id,): (Uuid,) =
                    sqlx::query_as("SELECT id FROM projects WHERE company_id = $1 AND name = $2")
                        .bind(company.0)
                        .bind(project)
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query(
                    "INSERT INTO tasks (company_id, id, project_id, name, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(company.0)
                .bind(Uuid::now_v7())
                .bind(project_id)
                .bind(task)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

portal_store!(SqliteStore);
portal_store!(PgStore);
