//! `admin-day`: employees × days of raw activity; p50/p95 of one employee's day and of the
//! company overview. Also the bulk seeding both portal scenarios share.

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;
use uuid::Uuid;
use worktrail_server::domain::keys::hash_secret;
use worktrail_server::store::{Enrollment, Role};
use worktrail_shared::{CompanyId, DeviceId};

use crate::Db;
use crate::server::Prepared;
use crate::stats::{ms, percentile};

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

/// Inserts `days` workdays of raw activity for one employee/device, in one transaction.
async fn bulk_raw(
    prepared: &Prepared,
    company: CompanyId,
    employee: Uuid,
    device: DeviceId,
    days: i64,
    now: i64,
    rng: &mut StdRng,
) -> Result<u64> {
    let today = now - now.rem_euclid(DAY);
    let mut rows = 0u64;
    with_pool!(prepared, |pool| {
        let mut tx = pool.begin().await?;
        let mut seq = 0i64;
        for back in 1..=days {
            let day = today - back * DAY;
            if matches!((day / DAY).rem_euclid(7), 2 | 3) {
                continue;
            }
            let (from, to) = (day + 9 * 60 * MIN, day + 17 * 60 * MIN);
            let mut t = from;
            while t < to {
                let end = (t + rng.random_range(1..20) * MIN).min(to);
                seq += 1;
                sqlx::query(
                    "INSERT INTO app_usage (company_id, id, device_id, employee_id, seq, start_ms, end_ms, app, exe, title) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
                )
                .bind(company.0).bind(Uuid::now_v7()).bind(device.0).bind(employee).bind(seq)
                .bind(t).bind(end).bind(["Code", "Firefox", "Slack", "Terminal"][rng.random_range(0..4)])
                .bind(format!("document {}", rng.random_range(0..500)))
                .execute(&mut *tx)
                .await?;
                t = end;
                rows += 1;
            }
            let mut m = from;
            while m < to {
                seq += 1;
                sqlx::query(
                    "INSERT INTO activity_log (company_id, id, device_id, employee_id, seq, minute_ms, active_secs) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(company.0).bind(Uuid::now_v7()).bind(device.0).bind(employee).bind(seq)
                .bind(m).bind(rng.random_range(0..=60i64))
                .execute(&mut *tx)
                .await?;
                m += MIN;
                rows += 1;
            }
        }
        tx.commit().await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(rows)
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
    let mut rows = 0;
    for (employee, device) in &people {
        rows += bulk_raw(&prepared, company, employee.0, *device, days, now, &mut rng).await?;
    }
    let seeded = seeding.elapsed();
    let server = prepared.spawn()?;
    let client = signed_in(&server.base, "admin@bench.example", "bench admin password").await?;
    println!("scenario: admin-day");
    println!(
        "database: {db:?}; {employees} employees × {days} days ({rows} raw rows, seeded in {:.1} s)",
        seeded.as_secs_f64()
    );
    let today = now - now.rem_euclid(DAY);
    let mut day_samples = Vec::new();
    for _ in 0..50 {
        let (employee, _) = people[rng.random_range(0..people.len())];
        let back = rng.random_range(1..=days.min(30));
        let date = jiff::Timestamp::from_millisecond(today - back * DAY)?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let t = Instant::now();
        let resp = client
            .get(format!("{}/admin/employees/{employee}/day?date={date}", server.base))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "day: {}", resp.status());
        resp.bytes().await?;
        day_samples.push(t.elapsed());
    }
    println!(
        "employee day page: p50 {} p95 {} (50 requests)",
        ms(percentile(&mut day_samples, 50.0)),
        ms(percentile(&mut day_samples, 95.0))
    );
    let mut overview = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let resp = client.get(format!("{}/admin", server.base)).send().await?;
        anyhow::ensure!(resp.status().is_success(), "overview: {}", resp.status());
        resp.bytes().await?;
        overview.push(t.elapsed());
    }
    println!(
        "company overview page: p50 {} p95 {} (20 requests)",
        ms(percentile(&mut overview, 50.0)),
        ms(percentile(&mut overview, 95.0))
    );
    server.stop()?;
    println!();
    Ok(())
}
