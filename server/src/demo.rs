//! The demo: plans, an owner, a trial company with an admin and a few simulated employees with
//! a week of realistic activity, all through the same paths real data takes (enrolment and
//! batch ingest). Running it again on the same data directory keeps the data, issues a fresh
//! company key (earlier ones keep working) and resets the demo passwords, since neither can be
//! read back from their hashes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use worktrail_shared::api::{BatchRequest, Record, RecordBody, SessionEnd, SiteSource};
use worktrail_shared::secret::CompanyKey;
use worktrail_shared::{BatchId, CompanyId, DeviceId, RecordId};

use crate::domain::keys::{hash_secret, new_device_token};
use crate::domain::password::{hash_password, random_password};
use crate::domain::subscription::DAY_MS;
use crate::provision::{self, ProvisionError};
use crate::store::{BatchMeta, DeviceAuth, Enrollment, Role, Store};

/// The demo company's name.
pub const COMPANY: &str = "Acme Demo Ltd";
/// The demo owner's e-mail.
pub const OWNER_EMAIL: &str = "owner@worktrail.test";
/// The demo admin's e-mail.
pub const ADMIN_EMAIL: &str = "admin@acme.test";

const EMPLOYEES: [(&str, &str); 5] = [
    ("ada@acme.test", "Ada Lovelace"),
    ("grace@acme.test", "Grace Hopper"),
    ("linus@acme.test", "Linus Torvalds"),
    ("margaret@acme.test", "Margaret Hamilton"),
    ("ken@acme.test", "Ken Thompson"),
];

/// What the demo prints once.
#[derive(Debug)]
pub struct DemoLogins {
    /// A company key for the demo company.
    pub company_key: CompanyKey,
    /// Owner e-mail and password.
    pub owner: (String, String),
    /// Admin e-mail and password.
    pub admin: (String, String),
    /// One simulated employee's e-mail and password (for the employee's own pages).
    pub employee: (String, String),
    /// Whether this run created the company (false: it was there already).
    pub created: bool,
    /// Records ingested by this run.
    pub records: usize,
}

/// Seeds (or refreshes) the demo in `store`.
pub async fn seed(store: &dyn Store, now_ms: i64) -> Result<DemoLogins, ProvisionError> {
    provision::seed_default_plans(store, now_ms).await?;
    let owner_password = random_password();
    if !store.set_owner_password(OWNER_EMAIL, &hash_password(&owner_password)).await? {
        provision::create_owner(store, OWNER_EMAIL, &owner_password, now_ms).await?;
    }
    let admin_password = random_password();
    let (company, company_key, created) = match store.company_by_name(COMPANY).await? {
        Some(c) => {
            let key = provision::rotate_company_key(store, c.id, 365 * DAY_MS, now_ms).await?;
            (c.id, key, false)
        }
        None => {
            let c =
                provision::create_company(store, COMPANY, "trial", "Europe/London", now_ms).await?;
            (c.id, c.key, true)
        }
    };
    match store.user_by_email(company, ADMIN_EMAIL).await? {
        Some(admin) => {
            store.set_user_password(company, admin.id, &hash_password(&admin_password)).await?
        }
        None => {
            provision::create_user(
                store,
                company,
                ADMIN_EMAIL,
                "Acme Admin",
                Role::Admin,
                &admin_password,
                now_ms,
            )
            .await?;
        }
    }
    let records = if created { simulate_week(store, company, now_ms).await? } else { 0 };
    let employee_email = EMPLOYEES[0].0;
    let employee_password = random_password();
    let employee = store
        .user_by_email(company, employee_email)
        .await?
        .ok_or_else(|| ProvisionError::Invalid("the demo employee is missing".into()))?;
    store.set_user_password(company, employee.id, &hash_password(&employee_password)).await?;
    Ok(DemoLogins {
        employee: (employee_email.into(), employee_password),
        company_key,
        owner: (OWNER_EMAIL.into(), owner_password),
        admin: (ADMIN_EMAIL.into(), admin_password),
        created,
        records,
    })
}

const APPS: [(&str, &str, &[&str]); 7] = [
    (
        "Code",
        "/usr/bin/code",
        &["main.rs — billing-service", "README.md — website", "Cargo.toml — billing-service"],
    ),
    (
        "Firefox",
        "/usr/bin/firefox",
        &[
            "Pull request #412 · acme/billing — Mozilla Firefox",
            "Rust docs — Mozilla Firefox",
            "Inbox — Mozilla Firefox",
        ],
    ),
    (
        "Slack",
        "/usr/bin/slack",
        &["#engineering | Acme", "#general | Acme", "Direct message | Acme"],
    ),
    (
        "Terminal",
        "/usr/bin/gnome-terminal",
        &["cargo test — ~/src/billing", "ssh deploy@staging", "htop"],
    ),
    ("Zoom", "/usr/bin/zoom", &["Daily stand-up", "Sprint planning"]),
    ("LibreOffice Calc", "/usr/bin/localc", &["Q3 forecast.ods", "Timesheet.ods"]),
    ("Thunderbird", "/usr/bin/thunderbird", &["Inbox - ada@acme.test", "Write: Re: invoice 2291"]),
];

const SITES: [&str; 5] =
    ["github.com", "docs.rs", "mail.google.com", "jira.acme.test", "stackoverflow.com"];

/// Appends `body` as the next record of the device.
fn push(records: &mut Vec<Record>, seq: &mut i64, body: RecordBody) {
    *seq += 1;
    records.push(Record { id: RecordId::new(), seq: *seq, body });
}

/// One employee's workday from `day_start` (09:00 of that day): two work sessions around a
/// lunch break, app spans of 1–25 minutes, browser spans with sites, activity every minute.
fn workday(rng: &mut StdRng, day_start: i64, records: &mut Vec<Record>, seq: &mut i64) {
    const MIN: i64 = 60_000;
    let start = day_start + rng.random_range(0..40) * MIN;
    let lunch = day_start + (3 * 60 + 30 + rng.random_range(0..30)) * MIN;
    let lunch_end = lunch + rng.random_range(35..60) * MIN;
    let end = day_start + (8 * 60 + 30 + rng.random_range(0..60)) * MIN;
    for (from, to, reason) in [(start, lunch, SessionEnd::Idle), (lunch_end, end, SessionEnd::Stop)]
    {
        let mut t = from;
        while t < to {
            let (app, exe, titles) = APPS[rng.random_range(0..APPS.len())];
            let span_end =
                (t + rng.random_range(1..25) * MIN + rng.random_range(0..60_000)).min(to);
            let title = titles[rng.random_range(0..titles.len())];
            push(
                records,
                seq,
                RecordBody::AppSpan {
                    start_ms: t,
                    end_ms: span_end,
                    app: app.into(),
                    exe: Some(exe.into()),
                    title: Some(title.into()),
                    task_id: None,
                },
            );
            if app == "Firefox" {
                push(
                    records,
                    seq,
                    RecordBody::WebsiteSpan {
                        start_ms: t,
                        end_ms: span_end,
                        domain: SITES[rng.random_range(0..SITES.len())].into(),
                        url: None,
                        title: Some(title.trim_end_matches(" — Mozilla Firefox").into()),
                        browser: Some("Firefox".into()),
                        source: SiteSource::Extension,
                    },
                );
            }
            t = span_end;
        }
        let mut minute = from - from % MIN;
        while minute < to {
            let active_secs = if rng.random_bool(0.1) { 0 } else { rng.random_range(15..=60) };
            push(records, seq, RecordBody::Activity { minute_ms: minute, active_secs });
            minute += MIN;
        }
        push(
            records,
            seq,
            RecordBody::WorkSession { start_ms: from, end_ms: to, end_reason: reason },
        );
    }
    push(records, seq, RecordBody::IdleSpan { start_ms: lunch, end_ms: lunch_end });
}

/// Enrols one device per demo employee and ingests the last seven days (weekdays) of activity.
async fn simulate_week(
    store: &dyn Store,
    company: CompanyId,
    now_ms: i64,
) -> Result<usize, ProvisionError> {
    let mut rng = StdRng::seed_from_u64(2026);
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    let mut total = 0;
    for (i, (email, name)) in EMPLOYEES.iter().enumerate() {
        let token = new_device_token();
        let device_id = DeviceId::new();
        let employee = store
            .enroll_device(
                company,
                &Enrollment {
                    device_id,
                    email: (*email).into(),
                    display_name: (*name).into(),
                    hostname: format!("acme-laptop-{:02}", i + 1),
                    os: "Debian GNU/Linux 12".into(),
                    os_user: email.split('@').next().unwrap_or("user").into(),
                    agent_version: env!("CARGO_PKG_VERSION").into(),
                    token_hash: hash_secret(token.expose()),
                    token_prefix: token.display_prefix().into(),
                },
                i64::MAX,
                now_ms,
            )
            .await?;
        let device = DeviceAuth { id: device_id, employee_id: employee, revoked_at_ms: None };
        let (mut records, mut seq) = (Vec::new(), 0);
        for days_ago in 1..=7 {
            let day = today - days_ago * DAY_MS;
            // 1970-01-01 was a Thursday: day index 2 and 3 (mod 7) are Saturday and Sunday.
            if matches!((day / DAY_MS).rem_euclid(7), 2 | 3) {
                continue;
            }
            workday(&mut rng, day + 9 * 3_600_000, &mut records, &mut seq);
        }
        records.sort_by_key(|r| r.seq);
        total += records.len();
        for chunk in records.chunks(worktrail_shared::limits::MAX_BATCH_RECORDS) {
            let batch = BatchRequest {
                batch_id: BatchId::new(),
                sent_at_ms: now_ms,
                dropped: Default::default(),
                records: chunk.to_vec(),
            };
            let meta = BatchMeta {
                body_hash: hash_secret(&batch.batch_id.to_string()),
                body_bytes: 0,
                now_ms,
            };
            store.ingest_batch(company, &device, batch, &meta).await?;
        }
    }
    Ok(total)
}
