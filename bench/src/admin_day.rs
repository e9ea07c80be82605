//! `admin-day`: employees × days of raw activity; p50/p95 of one employee's day and of the
//! company overview. Also the bulk seeding both portal scenarios share.

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;
use uuid::Uuid;
use worktrail_server::domain::keys::hash_secret;
use worktrail_server::store::{Enrollment, Role};
use worktrail_shared::{CompanyId, DeviceId, UserId};

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

/// One app span as an agent sends it.
struct AppRow {
    id: Uuid,
    person: usize,
    seq: i64,
    start: i64,
    end: i64,
    app: &'static str,
    exe: String,
    title: String,
}

/// One minute of the activity log as an agent sends it.
struct MinuteRow {
    id: Uuid,
    person: usize,
    seq: i64,
    minute: i64,
    active: i64,
}

/// A record id the way an agent makes one: UUIDv7 of the record's own time.
fn record_id(rng: &mut StdRng, at_ms: i64) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(at_ms as u64, &rng.random()).into_uuid()
}

/// App spans per multi-row `INSERT` (10 parameters each) and activity minutes per `INSERT`
/// (7 each): under SQLite's 32,766 and PostgreSQL's 65,535 parameter limits.
const APP_ROWS_PER_INSERT: usize = 1_000;
const MINUTE_ROWS_PER_INSERT: usize = 2_000;
/// Days of every employee's rows per transaction.
const DAYS_PER_TRANSACTION: i64 = 5;

/// Inserts `rows` with multi-row `INSERT`s on the transaction `$tx` of backend `$backend`.
macro_rules! insert_rows {
    ($backend:ty, $tx:expr, $company:expr, $people:expr, $apps:expr, $minutes:expr) => {{
        for chunk in $apps.chunks(APP_ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::<$backend>::new(
                "INSERT INTO app_usage (company_id, id, device_id, employee_id, seq, start_ms, \
                 end_ms, app, exe, title) ",
            );
            q.push_values(chunk, |mut b, r: &AppRow| {
                let (employee, device) = $people[r.person];
                b.push_bind($company.0)
                    .push_bind(r.id)
                    .push_bind(device.0)
                    .push_bind(employee.0)
                    .push_bind(r.seq)
                    .push_bind(r.start)
                    .push_bind(r.end)
                    .push_bind(r.app)
                    .push_bind(r.exe.as_str())
                    .push_bind(r.title.as_str());
            });
            q.build().execute(&mut *$tx).await?;
        }
        for chunk in $minutes.chunks(MINUTE_ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::<$backend>::new(
                "INSERT INTO activity_log (company_id, id, device_id, employee_id, seq, \
                 minute_ms, active_secs) ",
            );
            q.push_values(chunk, |mut b, r: &MinuteRow| {
                let (employee, device) = $people[r.person];
                b.push_bind($company.0)
                    .push_bind(r.id)
                    .push_bind(device.0)
                    .push_bind(employee.0)
                    .push_bind(r.seq)
                    .push_bind(r.minute)
                    .push_bind(r.active);
            });
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Generates one workday (09:00–17:00 UTC) of everyone's raw rows: contiguous app spans of
/// 1–20 minutes with varied apps, executables and titles, and one activity row per minute.
fn workday(
    rng: &mut StdRng,
    day: i64,
    people: usize,
    seqs: &mut [i64],
    apps: &mut Vec<AppRow>,
    minutes: &mut Vec<MinuteRow>,
) {
    let (from, to) = (day + 9 * 60 * MIN, day + 17 * 60 * MIN);
    for (person, seq) in seqs.iter_mut().enumerate().take(people) {
        let mut t = from;
        while t < to {
            let end = (t + rng.random_range(1..=20) * MIN).min(to);
            let app = crate::ingest::APPS[rng.random_range(0..crate::ingest::APPS.len())];
            *seq += 1;
            apps.push(AppRow {
                id: record_id(rng, end),
                person,
                seq: *seq,
                start: t,
                end,
                app,
                exe: format!("/usr/bin/{}", app.to_lowercase().replace(' ', "-")),
                title: crate::ingest::title(rng, app),
            });
            t = end;
        }
        let mut m = from;
        while m < to {
            *seq += 1;
            minutes.push(MinuteRow {
                id: record_id(rng, m + MIN),
                person,
                seq: *seq,
                minute: m,
                active: rng.random_range(0..=60),
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
/// day first as agents would have sent it, with multi-row `INSERT`s in transactions of
/// `DAYS_PER_TRANSACTION` days. Returns (app spans, activity minutes).
async fn bulk_raw(
    prepared: &Prepared,
    company: CompanyId,
    people: &[(UserId, DeviceId)],
    days: i64,
    now: i64,
    rng: &mut StdRng,
) -> Result<(u64, u64)> {
    let today = now - now.rem_euclid(DAY);
    let mut seqs = vec![0i64; people.len()];
    let (mut app_rows, mut minute_rows) = (0u64, 0u64);
    let mut back = days;
    while back >= 1 {
        let (mut apps, mut minutes) = (Vec::new(), Vec::new());
        let last = (back - DAYS_PER_TRANSACTION + 1).max(1);
        for b in (last..=back).rev() {
            let day = today - b * DAY;
            if !weekend(day) {
                workday(rng, day, people.len(), &mut seqs, &mut apps, &mut minutes);
            }
        }
        back = last - 1;
        app_rows += apps.len() as u64;
        minute_rows += minutes.len() as u64;
        match prepared.db {
            Db::Postgres => {
                let mut conn =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&prepared.url).await?;
                let mut tx = sqlx::Connection::begin(&mut conn).await?;
                insert_rows!(sqlx::Postgres, tx, company, people, apps, minutes);
                tx.commit().await?;
            }
            _ => {
                let mut conn =
                    <sqlx::SqliteConnection as sqlx::Connection>::connect(&prepared.url).await?;
                let mut tx = sqlx::Connection::begin(&mut conn).await?;
                insert_rows!(sqlx::Sqlite, tx, company, people, apps, minutes);
                tx.commit().await?;
            }
        }
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
    store.close().await;
    let seeding = Instant::now();
    let mut rng = StdRng::seed_from_u64(3);
    let (apps, minutes) = bulk_raw(&prepared, company, &people, days, now, &mut rng).await?;
    let seeded = seeding.elapsed();
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
        "raw rows: {apps} app spans (1–20 min each, 24 apps, generated titles) + {minutes} \
         activity minutes = {}",
        apps + minutes
    );
    println!(
        "seeding: {:.1} s ({:.0} rows/s; multi-row INSERTs straight into the database, \
         {DAYS_PER_TRANSACTION} days per transaction, not through the ingest API)",
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
