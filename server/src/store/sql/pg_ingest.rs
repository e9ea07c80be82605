//! PostgreSQL's batch ingest: one transaction per batch (row-level security confines it to the
//! company), and one `INSERT … SELECT FROM UNNEST(…)` per record kind present, whatever the
//! batch's size.
//!
//! Each statement binds one array per column, so its text never changes: it is prepared once
//! per connection and its plan reused, where a multi-row `VALUES` list of 500 rows bound 5,500
//! values one by one and was parsed and planned again for every batch size. Concurrent batches
//! commit in their own transactions; PostgreSQL flushes their commits together (its own group
//! commit). `ON CONFLICT DO NOTHING` skips records stored before, by id.

use sqlx::{Postgres, Transaction};
use std::collections::HashSet;
use uuid::Uuid;
use worktrail_shared::CompanyId;
use worktrail_shared::api::{BatchRequest, Record, RecordBody};

use super::{PgStore, answer_again, new_ack, session_end_str, site_source_str, touched_days};
use crate::store::{BatchMeta, DeviceAuth, IngestOutcome, StoreError};

impl PgStore {
    /// Stores one batch idempotently (see [`crate::store::Store::ingest_batch`]).
    pub(super) async fn ingest(
        &self,
        company: CompanyId,
        device: &DeviceAuth,
        batch: BatchRequest,
        meta: &BatchMeta,
    ) -> Result<IngestOutcome, StoreError> {
        let mut tx = self.tenant(company).await?;
        // Claim the batch id first. Under concurrency the loser waits for the winner's commit,
        // then finds its row and answers from it.
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
            return answer_again(&hash, ack, meta);
        }
        let accepted = insert_records(&mut tx, company, device, &batch.records).await?;
        let (ack, ack_json) = new_ack(&batch, accepted, meta)?;
        sqlx::query(
            "UPDATE ingest_batches SET ack_json = $3 WHERE company_id = $1 AND batch_id = $2",
        )
        .bind(company.0)
        .bind(batch.batch_id.0)
        .bind(ack_json)
        .execute(&mut *tx)
        .await?;
        for day in touched_days(&batch, meta.now_ms) {
            mark_dirty!(&mut *tx, company, day)?;
        }
        touch!(&mut *tx, company, device.id, meta.now_ms, Some(batch.sent_at_ms - meta.now_ms))?;
        tx.commit().await?;
        Ok(IngestOutcome::Acknowledged(ack))
    }
}

/// The columns every record table has besides its kind's own: id and sequence number.
#[derive(Default)]
struct Common {
    ids: Vec<Uuid>,
    seqs: Vec<i64>,
}

impl Common {
    fn push(&mut self, r: &Record) {
        self.ids.push(r.id.0);
        self.seqs.push(r.seq);
    }
}

/// One kind's rows, column by column; the text is borrowed from the batch.
#[derive(Default)]
struct AppSpans<'r> {
    at: Common,
    start: Vec<i64>,
    end: Vec<i64>,
    app: Vec<&'r str>,
    exe: Vec<Option<&'r str>>,
    title: Vec<Option<&'r str>>,
    task: Vec<Option<Uuid>>,
}

#[derive(Default)]
struct WebsiteSpans<'r> {
    at: Common,
    start: Vec<i64>,
    end: Vec<i64>,
    domain: Vec<&'r str>,
    url: Vec<Option<&'r str>>,
    title: Vec<Option<&'r str>>,
    browser: Vec<Option<&'r str>>,
    source: Vec<&'static str>,
}

#[derive(Default)]
struct Spans {
    at: Common,
    start: Vec<i64>,
    end: Vec<i64>,
}

#[derive(Default)]
struct Sessions {
    at: Common,
    start: Vec<i64>,
    end: Vec<i64>,
    reason: Vec<&'static str>,
}

#[derive(Default)]
struct Activity {
    at: Common,
    minute: Vec<i64>,
    secs: Vec<i64>,
}

#[derive(Default)]
struct Screenshots {
    at: Common,
    taken: Vec<i64>,
    monitor: Vec<i64>,
    width: Vec<i64>,
    height: Vec<i64>,
    bytes: Vec<i64>,
    blurred: Vec<bool>,
}

/// Inserts a batch's records, skipping those stored before; the number inserted.
async fn insert_records(
    tx: &mut Transaction<'static, Postgres>,
    company: CompanyId,
    device: &DeviceAuth,
    records: &[Record],
) -> Result<u32, StoreError> {
    let (c, d, e) = (company.0, device.id.0, device.employee_id.0);
    // A span's task is kept only when it is a task of this company.
    let wants_tasks =
        records.iter().any(|r| matches!(r.body, RecordBody::AppSpan { task_id: Some(_), .. }));
    let tasks: HashSet<Uuid> = if wants_tasks {
        let rows: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM tasks WHERE company_id = $1")
            .bind(c)
            .fetch_all(&mut **tx)
            .await?;
        rows.into_iter().map(|(id,)| id).collect()
    } else {
        HashSet::new()
    };
    let (mut apps, mut sites, mut idle, mut sessions, mut activity, mut shots) = (
        AppSpans::default(),
        WebsiteSpans::default(),
        Spans::default(),
        Sessions::default(),
        Activity::default(),
        Screenshots::default(),
    );
    for r in records {
        match &r.body {
            RecordBody::AppSpan { start_ms, end_ms, app, exe, title, task_id } => {
                apps.at.push(r);
                apps.start.push(*start_ms);
                apps.end.push(*end_ms);
                apps.app.push(app);
                apps.exe.push(exe.as_deref());
                apps.title.push(title.as_deref());
                apps.task.push(task_id.map(|t| t.0).filter(|t| tasks.contains(t)));
            }
            RecordBody::WebsiteSpan { start_ms, end_ms, domain, url, title, browser, source } => {
                sites.at.push(r);
                sites.start.push(*start_ms);
                sites.end.push(*end_ms);
                sites.domain.push(domain);
                sites.url.push(url.as_deref());
                sites.title.push(title.as_deref());
                sites.browser.push(browser.as_deref());
                sites.source.push(site_source_str(*source));
            }
            RecordBody::IdleSpan { start_ms, end_ms } => {
                idle.at.push(r);
                idle.start.push(*start_ms);
                idle.end.push(*end_ms);
            }
            RecordBody::WorkSession { start_ms, end_ms, end_reason } => {
                sessions.at.push(r);
                sessions.start.push(*start_ms);
                sessions.end.push(*end_ms);
                sessions.reason.push(session_end_str(*end_reason));
            }
            RecordBody::Activity { minute_ms, active_secs } => {
                activity.at.push(r);
                activity.minute.push(*minute_ms);
                activity.secs.push(i64::from(*active_secs));
            }
            RecordBody::Screenshot { taken_at_ms, monitor, width, height, bytes, blurred } => {
                shots.at.push(r);
                shots.taken.push(*taken_at_ms);
                shots.monitor.push(i64::from(*monitor));
                shots.width.push(i64::from(*width));
                shots.height.push(i64::from(*height));
                shots.bytes.push(i64::try_from(*bytes).unwrap_or(i64::MAX));
                shots.blurred.push(*blurred);
            }
        }
    }
    // $1–$3 are the company, device and employee of every row; then one array per column.
    macro_rules! insert {
        ($rows:expr, $sql:literal $(, $column:expr)*) => {
            if $rows.ids.is_empty() {
                0
            } else {
                sqlx::query($sql)
                    .bind(c)
                    .bind(d)
                    .bind(e)
                    .bind(&$rows.ids)
                    .bind(&$rows.seqs)
                    $(.bind($column))*
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
            }
        };
    }
    let mut inserted = 0;
    inserted += insert!(
        apps.at,
        "INSERT INTO app_usage (company_id, device_id, employee_id, id, seq, start_ms, end_ms, \
         app, exe, title, task_id) \
         SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::int8[], $6::int8[], $7::int8[], \
         $8::text[], $9::text[], $10::text[], $11::uuid[]) ON CONFLICT DO NOTHING",
        &apps.start,
        &apps.end,
        &apps.app,
        &apps.exe,
        &apps.title,
        &apps.task
    );
    inserted += insert!(
        sites.at,
        "INSERT INTO website_usage (company_id, device_id, employee_id, id, seq, start_ms, \
         end_ms, domain, url, title, browser, source) \
         SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::int8[], $6::int8[], $7::int8[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) ON CONFLICT DO NOTHING",
        &sites.start,
        &sites.end,
        &sites.domain,
        &sites.url,
        &sites.title,
        &sites.browser,
        &sites.source
    );
    inserted += insert!(
        idle.at,
        "INSERT INTO idle_spans (company_id, device_id, employee_id, id, seq, start_ms, end_ms) \
         SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::int8[], $6::int8[], $7::int8[]) \
         ON CONFLICT DO NOTHING",
        &idle.start,
        &idle.end
    );
    inserted += insert!(
        sessions.at,
        "INSERT INTO work_sessions (company_id, device_id, employee_id, id, seq, start_ms, \
         end_ms, end_reason) \
         SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::int8[], $6::int8[], $7::int8[], \
         $8::text[]) ON CONFLICT DO NOTHING",
        &sessions.start,
        &sessions.end,
        &sessions.reason
    );
    inserted += insert!(
        activity.at,
        "INSERT INTO activity_log (company_id, device_id, employee_id, id, seq, minute_ms, \
         active_secs) \
         SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::int8[], $6::int8[], $7::int8[]) \
         ON CONFLICT DO NOTHING",
        &activity.minute,
        &activity.secs
    );
    inserted += insert!(
        shots.at,
        "INSERT INTO screenshots (company_id, device_id, employee_id, id, seq, taken_at_ms, \
         monitor, width, height, bytes, blurred) \
         SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::int8[], $6::int8[], $7::int8[], \
         $8::int8[], $9::int8[], $10::int8[], $11::bool[]) ON CONFLICT DO NOTHING",
        &shots.taken,
        &shots.monitor,
        &shots.width,
        &shots.height,
        &shots.bytes,
        &shots.blurred
    );
    Ok(inserted as u32)
}
