//! `admin-day`: employees × days of raw activity; p50/p95 of one employee's day and of the
//! company overview. Also the bulk seeding both portal scenarios share.

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;
use worktrail_server::domain::keys::hash_secret;
use worktrail_server::store::{BatchMeta, DeviceAuth, Enrollment, IngestOutcome, Role, Store};
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::{BatchId, CompanyId, DeviceId, RecordId, UserId};

use crate::Db;
use crate::server::Prepared;
use crate::stats::{cpu_time, ms, percentile};

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

/// A client signed in to the portal.
pub async fn signed_in(base: &str, email: &str, password: &str) -> Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("sec-fetch-site", reqwest::header::HeaderValue::from_static("same-origin"));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()?;
    let resp = client
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 303, "sign-in failed: {}", resp.status());
    Ok(client)
}

/// Runs `$body` with `$pool` bound to a SQLite or PostgreSQL pool for `$prepared`.
macro_rules! with_pool {
    ($prepared:expr, |$pool:ident| $body:expr) => {
        match $prepared.db {
            Db::Postgres => {
                let $pool = sqlx::PgPool::connect(&$prepared.url).await?;
                let r = $body;
                $pool.close().await;
                r
            }
            _ => {
                let $pool = sqlx::SqlitePool::connect(&$prepared.url).await?;
                let r = $body;
                $pool.close().await;
                r
            }
        }
    };
}

/// Inserts `days` daily rollup rows for every company, in one transaction.
pub async fn bulk_rollups(
    prepared: &Prepared,
    companies: &[CompanyId],
    days: i64,
    now: i64,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(1);
    let today = jiff::Timestamp::from_millisecond(now)?.to_zoned(jiff::tz::TimeZone::UTC).date();
    with_pool!(prepared, |pool| {
        let mut tx = pool.begin().await?;
        for c in companies {
            for back in 0..days {
                let day = today.checked_sub(jiff::Span::new().days(back))?.to_string();
                let active: i64 = rng.random_range(0..40);
                sqlx::query(
                    "INSERT INTO company_usage_daily (company_id, day, active_employees, active_devices, \
                     tracked_secs, idle_secs, work_sessions, screenshots, records, bytes_ingested, \
                     sync_requests, rejected_requests, rejected_json, computed_at_ms) \
                     VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, 0, '{}', $11)",
                )
                .bind(c.0)
                .bind(day)
                .bind(active)
                .bind(active * rng.random_range(20_000..30_000))
                .bind(active * rng.random_range(1_000..4_000))
                .bind(active * 2)
                .bind(active * 40)
                .bind(active * 900)
                .bind(active * 90_000)
                .bind(active * 60)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok::<_, anyhow::Error>(())
    })
}

/// A record id the way an agent makes one: UUIDv7 of the record's own time.
fn record_id(rng: &mut StdRng, at_ms: i64) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(at_ms as u64, &rng.random()).into_uuid()
}

/// Records per batch, as the agent sends them.
const BATCH_RECORDS: usize = worktrail_shared::limits::MAX_BATCH_RECORDS;
/// Days of everyone's records generated at a time.
const DAYS_PER_ROUND: i64 = 5;
/// Batches being stored at once while seeding.
const SEEDING_IN_FLIGHT: usize = 8;

/// Generates one workday (09:00–17:00 UTC) of everyone's records, as their agents send them:
/// contiguous app spans of 1–20 minutes (24 apps and their executables; windows as in the
/// ingest scenario, a fifth of them new) and one activity record per minute.
fn workday(
    rng: &mut StdRng,
    day: i64,
    seqs: &mut [i64],
    windows: &mut [crate::ingest::Windows],
    records: &mut [Vec<Record>],
) {
    let (from, to) = (day + 9 * 60 * MIN, day + 17 * 60 * MIN);
    for (person, seq) in seqs.iter_mut().enumerate() {
        let mut t = from;
        while t < to {
            let end = (t + rng.random_range(1..=20) * MIN).min(to);
            let (app, title) = windows[person].next(rng);
            *seq += 1;
            records[person].push(Record {
                id: RecordId(record_id(rng, end)),
                seq: *seq,
                body: RecordBody::AppSpan {
                    start_ms: t,
                    end_ms: end,
                    app: app.into(),
                    exe: Some(format!("/usr/bin/{}", app.to_lowercase().replace(' ', "-"))),
                    title: Some(title),
                    task_id: None,
                },
            });
            t = end;
        }
        let mut m = from;
        while m < to {
            *seq += 1;
            records[person].push(Record {
                id: RecordId(record_id(rng, m + MIN)),
                seq: *seq,
                body: RecordBody::Activity { minute_ms: m, active_secs: rng.random_range(0..=60) },
            });
            m += MIN;
        }
    }
}

/// True for Saturdays and Sundays (day 0 of the Unix epoch was a Thursday).
fn weekend(day_ms: i64) -> bool {
    matches!((day_ms / DAY).rem_euclid(7), 2 | 3)
}

/// Seeds `days` of raw activity (before today) for every employee/device in `people`, oldest
/// day first, through the store's ingest path as the server stores agents' batches (500
/// records each, several at once), without HTTP. Returns (app spans, activity minutes).
async fn bulk_raw(
    store: &Arc<dyn Store>,
    company: CompanyId,
    people: &[(UserId, DeviceId)],
    days: i64,
    now: i64,
    rng: &mut StdRng,
) -> Result<(u64, u64)> {
    let today = now - now.rem_euclid(DAY);
    let mut seqs = vec![0i64; people.len()];
    let mut windows: Vec<_> = people.iter().map(|_| crate::ingest::Windows::new(0.2)).collect();
    let (mut app_rows, mut minute_rows) = (0u64, 0u64);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut back = days;
    while back >= 1 {
        let mut records: Vec<Vec<Record>> = people.iter().map(|_| Vec::new()).collect();
        let last = (back - DAYS_PER_ROUND + 1).max(1);
        for b in (last..=back).rev() {
            let day = today - b * DAY;
            if !weekend(day) {
                workday(rng, day, &mut seqs, &mut windows, &mut records);
            }
        }
        back = last - 1;
        for (person, records) in records.into_iter().enumerate() {
            let (employee_id, id) = people[person];
            let device = DeviceAuth { id, employee_id, revoked_at_ms: None };
            for chunk in records.chunks(BATCH_RECORDS) {
                for r in chunk {
                    match r.body {
                        RecordBody::AppSpan { .. } => app_rows += 1,
                        _ => minute_rows += 1,
                    }
                }
                let batch = BatchRequest {
                    batch_id: BatchId::new(),
                    sent_at_ms: now,
                    dropped: Default::default(),
                    records: chunk.to_vec(),
                };
                let meta = BatchMeta {
                    body_hash: batch.batch_id.0.as_bytes().to_vec(),
                    body_bytes: 0,
                    now_ms: now,
                };
                while in_flight.len() >= SEEDING_IN_FLIGHT {
                    in_flight.join_next().await.expect("a task")??;
                }
                let (store, device) = (store.clone(), device.clone());
                in_flight.spawn(async move {
                    let records = batch.records.len();
                    match store.ingest_batch(company, &device, batch, &meta).await? {
                        IngestOutcome::Acknowledged(ack) if ack.accepted as usize == records => {
                            Ok(())
                        }
                        other => anyhow::bail!("a seeding batch was not stored whole: {other:?}"),
                    }
                });
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        done??;
    }
    Ok((app_rows, minute_rows))
}

/// Runs the scenario on `db` and prints its figures.
pub async fn run(db: Db, employees: usize, days: i64) -> Result<()> {
    let prepared = Prepared::new(db).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let store = prepared.store().await?;
    let (company, _) = crate::server::company(store.as_ref(), "Day Co", now).await?;
    worktrail_server::provision::create_user(
        store.as_ref(),
        company,
        "admin@bench.example",
        "Admin",
        Role::Admin,
        "bench admin password",
        now,
    )
    .await?;
    let mut people = Vec::new();
    for i in 0..employees {
        let device = DeviceId::new();
        let employee = store
            .enroll_device(
                company,
                &Enrollment {
                    device_id: device,
                    email: format!("e{i}@bench.example"),
                    display_name: format!("Employee {i}"),
                    hostname: format!("host-{i}"),
                    os: "Linux".into(),
                    os_user: format!("e{i}"),
                    agent_version: "bench".into(),
                    token_hash: hash_secret(&format!("bench-token-{i}-{}", Uuid::now_v7())),
                    token_prefix: "wtd_bench".into(),
                },
                1_000_000,
                now,
            )
            .await?;
        people.push((employee, device));
    }
    let seeding = Instant::now();
    let mut rng = StdRng::seed_from_u64(3);
    let (apps, minutes) = bulk_raw(&store, company, &people, days, now, &mut rng).await?;
    let seeded = seeding.elapsed();
    store.close().await;
    let db_bytes = prepared.bytes().await?;
    let server = prepared.spawn()?;
    let client = signed_in(&server.base, "admin@bench.example", "bench admin password").await?;
    println!("scenario: admin-day");
    println!(
        "database: {}; {employees} employees × {days} days (workdays 09:00–17:00 UTC)",
        match db {
            Db::Postgres => "postgresql (fresh database, default settings)",
            _ => "sqlite (WAL, synchronous=FULL)",
        }
    );
    println!(
        "raw rows: {apps} app spans (1–20 min each, 24 apps, generated titles, a fifth of the \
         windows new) + {minutes} activity minutes = {}",
        apps + minutes
    );
    println!(
        "seeding: {:.1} s ({:.0} rows/s; through the store's ingest path in 500-record \
         batches, {SEEDING_IN_FLIGHT} at a time, without HTTP)",
        seeded.as_secs_f64(),
        (apps + minutes) as f64 / seeded.as_secs_f64()
    );
    println!("database size: {:.0} MiB", db_bytes as f64 / 1_048_576.0);
    let today = now - now.rem_euclid(DAY);
    let mut day_samples = Vec::new();
    let rounds = 100;
    let cpu_before = cpu_time(server.pid);
    while day_samples.len() < rounds {
        let (employee, _) = people[rng.random_range(0..people.len())];
        let day = today - rng.random_range(1..=days) * DAY;
        if weekend(day) {
            continue;
        }
        let date = jiff::Timestamp::from_millisecond(day)?.to_zoned(jiff::tz::TimeZone::UTC).date();
        let t = Instant::now();
        let resp = client
            .get(format!("{}/admin/employees/{employee}/day?date={date}", server.base))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "day: {}", resp.status());
        resp.bytes().await?;
        day_samples.push(t.elapsed());
    }
    let day_cpu = (cpu_time(server.pid) - cpu_before) / rounds as u32;
    println!(
        "employee day page (random employee, random workday of the {days}): p50 {} p95 {} \
         ({rounds} requests, one at a time; server CPU {} per request)",
        ms(percentile(&mut day_samples, 50.0)),
        ms(percentile(&mut day_samples, 95.0)),
        ms(day_cpu)
    );
    let mut overview = Vec::new();
    let cpu_before = cpu_time(server.pid);
    for _ in 0..20 {
        let t = Instant::now();
        let resp = client.get(format!("{}/admin", server.base)).send().await?;
        anyhow::ensure!(resp.status().is_success(), "overview: {}", resp.status());
        resp.bytes().await?;
        overview.push(t.elapsed());
    }
    let overview_cpu = (cpu_time(server.pid) - cpu_before) / 20;
    println!(
        "company overview page (today and the last 7 days, all employees): p50 {} p95 {} \
         (20 requests; server CPU {} per request)",
        ms(percentile(&mut overview, 50.0)),
        ms(percentile(&mut overview, 95.0)),
        ms(overview_cpu)
    );
    server.stop()?;
    println!();
    Ok(())
}
