//! The `Store` contract, exercised directly on both backends: uniqueness, tenant scoping,
//! subscriptions, and idempotent ingest under concurrency.

use std::sync::Arc;
use worktrail_server::clock::Clock;
use worktrail_server::domain::keys::{hash_secret, new_device_token};
use worktrail_server::domain::plan::Plan;
use worktrail_server::domain::subscription::SubscriptionStatus;
use worktrail_server::provision::{self, ProvisionError};
use worktrail_server::store::{BatchMeta, DeviceAuth, Enrollment, IngestOutcome, StoreError};
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::policy::Policy;
use worktrail_shared::{BatchId, CompanyId, DeviceId, RecordId};
use worktrail_tests::{Backend, TestServer};

async fn enrol_direct(s: &TestServer, company: CompanyId, email: &str) -> DeviceAuth {
    let token = new_device_token();
    let device = DeviceId::new();
    let employee = s
        .store()
        .enroll_device(
            company,
            &Enrollment {
                device_id: device,
                email: email.into(),
                display_name: email.into(),
                hostname: "h".into(),
                os: "Linux".into(),
                os_user: "u".into(),
                agent_version: "t".into(),
                token_hash: hash_secret(token.expose()),
                token_prefix: token.display_prefix().into(),
            },
            100,
            s.clock.now_ms(),
        )
        .await
        .unwrap();
    DeviceAuth { id: device, employee_id: employee, revoked_at_ms: None }
}

fn spans(n: i64) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            id: RecordId::new(),
            seq: i,
            body: RecordBody::AppSpan {
                start_ms: i * 1000,
                end_ms: i * 1000 + 500,
                app: format!("app-{}", i % 7),
                exe: None,
                title: Some(format!("title {i}")),
                task_id: None,
            },
        })
        .collect()
}

fn meta(s: &TestServer, batch: &BatchRequest) -> BatchMeta {
    let body = serde_json::to_vec(&batch.records).unwrap();
    BatchMeta {
        body_hash: hash_secret(&String::from_utf8(body).unwrap()),
        body_bytes: 1,
        now_ms: s.clock.now_ms(),
    }
}

async fn unique_names_and_codes_are_enforced(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let now = s.clock.now_ms();
    let mut plan = Plan::defaults().remove(0);
    plan.id = worktrail_shared::PlanId::new();
    assert!(matches!(s.store().create_plan(&plan, now).await, Err(StoreError::Conflict(_))));
    let plans = s.store().list_plans().await.unwrap();
    assert_eq!(
        plans.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
        ["trial", "starter", "business"]
    );
    let dup = provision::create_company(s.store(), "Test Co", "trial", "UTC", now).await;
    assert!(matches!(dup, Err(ProvisionError::Store(StoreError::Conflict(_)))), "{dup:?}");
    let bad_tz =
        provision::create_company(s.store(), "Elsewhere", "trial", "Mars/Olympus", now).await;
    assert!(matches!(bad_tz, Err(ProvisionError::Invalid(_))), "{bad_tz:?}");
    let no_plan = provision::create_company(s.store(), "Elsewhere", "gold", "UTC", now).await;
    assert!(matches!(no_plan, Err(ProvisionError::Invalid(_))), "{no_plan:?}");
    provision::create_owner(s.store(), "op@test.example", "a long enough password", now)
        .await
        .unwrap();
    let again =
        provision::create_owner(s.store(), "OP@test.example", "a long enough password", now).await;
    assert!(matches!(again, Err(ProvisionError::Store(StoreError::Conflict(_)))), "{again:?}");
}

async fn company_settings_round_trip(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let company = s.store().company(s.company).await.unwrap().unwrap();
    assert_eq!(company.name, "Test Co");
    assert_eq!(company.policy, Policy::default());
    let mut policy = Policy::default();
    policy.screenshots.blur = true;
    policy.idle_threshold_secs = 120;
    s.store().set_policy(s.company, &policy).await.unwrap();
    assert_eq!(s.store().company(s.company).await.unwrap().unwrap().policy, policy);
    let sub = s.store().subscription(s.company).await.unwrap().unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Trialing);
    let history = s.store().subscription_history(s.company).await.unwrap();
    assert_eq!(history.len(), 1);
}

async fn one_company_never_sees_anothers_rows(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (b, _) = s.add_company("Other Co").await;
    let device_a = enrol_direct(&s, s.company, "ada@test.example").await;
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 0,
        dropped: Default::default(),
        records: spans(25),
    };
    let outcome = s
        .store()
        .ingest_batch(s.company, &device_a, batch.clone(), &meta(&s, &batch))
        .await
        .unwrap();
    assert!(matches!(outcome, IngestOutcome::Acknowledged(ref a) if a.accepted == 25));
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 25);
    assert_eq!(s.store().record_counts(b).await.unwrap().total(), 0);
    assert!(s.store().record_ids(b).await.unwrap().is_empty());
    assert!(s.store().app_spans(b, 0, i64::MAX).await.unwrap().is_empty());
    assert!(s.store().devices(b).await.unwrap().is_empty());
    assert!(s.store().user_by_email(b, "ada@test.example").await.unwrap().is_none());
    // The same batch id in company B is B's own batch, not a replay of A's.
    let device_b = enrol_direct(&s, b, "bob@test.example").await;
    let outcome =
        s.store().ingest_batch(b, &device_b, batch.clone(), &meta(&s, &batch)).await.unwrap();
    assert!(matches!(outcome, IngestOutcome::Acknowledged(ref a) if a.accepted == 25));
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 25);
    assert_eq!(s.store().record_counts(b).await.unwrap().app_spans, 25);
}

async fn concurrent_copies_of_one_batch_store_it_once(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let s = Arc::new(s);
    let device = enrol_direct(&s, s.company, "ada@test.example").await;
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 0,
        dropped: Default::default(),
        records: spans(200),
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, device, batch) = (s.clone(), device.clone(), batch.clone());
        tasks.push(tokio::spawn(async move {
            let m = meta(&s, &batch);
            s.store().ingest_batch(s.company, &device, batch.clone(), &m).await.unwrap()
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            IngestOutcome::Acknowledged(a) => acks.push(a),
            IngestOutcome::Conflict => panic!("identical copies are not a conflict"),
        }
    }
    assert!(acks.windows(2).all(|w| w[0] == w[1]), "every copy gets the same answer: {acks:?}");
    assert_eq!(acks[0].accepted, 200);
    let counts = s.store().record_counts(s.company).await.unwrap();
    assert_eq!((counts.app_spans, counts.batches), (200, 1));
}

async fn overlapping_batches_in_parallel_store_each_record_once(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let s = Arc::new(s);
    let device = enrol_direct(&s, s.company, "ada@test.example").await;
    let records = spans(300);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let slice = records[i * 40..i * 40 + 100].to_vec();
        let (s, device) = (s.clone(), device.clone());
        tasks.push(tokio::spawn(async move {
            let batch = BatchRequest {
                batch_id: BatchId::new(),
                sent_at_ms: 0,
                dropped: Default::default(),
                records: slice,
            };
            let m = meta(&s, &batch);
            s.store().ingest_batch(s.company, &device, batch.clone(), &m).await.unwrap()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        if let IngestOutcome::Acknowledged(a) = t.await.unwrap() {
            accepted += a.accepted;
        }
    }
    let stored = s.store().record_ids(s.company).await.unwrap();
    let unique: std::collections::HashSet<_> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "no record stored twice");
    assert_eq!(stored.len(), 300);
    assert_eq!(accepted, 300, "acks count each record once");
}

async fn migrations_can_run_again_on_an_existing_database(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let again = worktrail_server::store::open(&s.db.url).await.unwrap();
    again.migrate().await.unwrap();
    assert!(again.company(s.company).await.unwrap().is_some());
    again.close().await;
}

async fn a_failing_batch_does_not_fail_the_batches_written_with_it(backend: Backend) {
    // SQLite writes concurrent batches in one transaction (group commit), each in its own
    // savepoint; a batch that fails inside it must fail alone.
    let Some(s) = TestServer::start(backend).await else { return };
    let s = Arc::new(s);
    let device = enrol_direct(&s, s.company, "ada@test.example").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (s, device) = (s.clone(), device.clone());
        tasks.push(tokio::spawn(async move {
            let mut records = spans(50);
            for r in &mut records {
                r.seq += i * 1000;
                if let RecordBody::AppSpan { start_ms, end_ms, .. } = &mut r.body {
                    *start_ms += i * 1_000_000;
                    *end_ms += i * 1_000_000;
                }
            }
            let batch = BatchRequest {
                batch_id: BatchId::new(),
                sent_at_ms: 0,
                dropped: Default::default(),
                records,
            };
            let m = meta(&s, &batch);
            // Every 10th batch names a company that does not exist: its first write breaks a
            // foreign key.
            let company = if i % 10 == 5 { CompanyId::new() } else { s.company };
            (i, s.store().ingest_batch(company, &device, batch.clone(), &m).await)
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(IngestOutcome::Acknowledged(ack))) => {
                assert_ne!(i % 10, 5, "the batch of a missing company was stored");
                assert_eq!(ack.accepted, 50);
            }
            (i, Ok(IngestOutcome::Conflict)) => panic!("batch {i}: a conflict"),
            (i, Err(_)) => failed.push(i),
        }
    }
    assert_eq!(failed.len(), 4, "exactly the four bad batches fail: {failed:?}");
    assert!(failed.iter().all(|i| i % 10 == 5));
    let counts = s.store().record_counts(s.company).await.unwrap();
    assert_eq!((counts.app_spans, counts.batches), (36 * 50, 36));
    let spans = s.store().app_spans(s.company, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(spans.len(), 36 * 50);
    assert!(spans.iter().all(|r| r.device_id == device.id && r.employee_id == device.employee_id));
    assert!(spans.iter().all(|r| r.title.as_deref().is_some_and(|t| t.starts_with("title "))));
}

async fn a_batch_records_the_devices_clock_offset_and_other_calls_keep_it(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let device = enrol_direct(&s, s.company, "ada@test.example").await;
    let offset = |rows: Vec<worktrail_server::store::DeviceRow>| {
        let row = rows.into_iter().find(|d| d.id == device.id).unwrap();
        (row.last_seen_at_ms, row.clock_offset_ms)
    };
    let now = s.clock.now_ms();
    // The device's clock is 5 s behind the server's.
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: now - 5_000,
        dropped: Default::default(),
        records: spans(3),
    };
    s.store().ingest_batch(s.company, &device, batch.clone(), &meta(&s, &batch)).await.unwrap();
    assert_eq!(offset(s.store().devices(s.company).await.unwrap()), (Some(now), Some(-5_000)));
    // A call without a batch (a policy fetch, a screenshot) moves the last call, not the offset.
    s.clock.advance(60_000);
    s.store().touch_device(s.company, device.id, now + 60_000).await.unwrap();
    assert_eq!(
        offset(s.store().devices(s.company).await.unwrap()),
        (Some(now + 60_000), Some(-5_000))
    );
}

both_backends!(
    a_batch_records_the_devices_clock_offset_and_other_calls_keep_it,
    unique_names_and_codes_are_enforced,
    company_settings_round_trip,
    one_company_never_sees_anothers_rows,
    concurrent_copies_of_one_batch_store_it_once,
    overlapping_batches_in_parallel_store_each_record_once,
    migrations_can_run_again_on_an_existing_database,
    a_failing_batch_does_not_fail_the_batches_written_with_it,
);

#[tokio::test]
async fn sqlite_is_opened_in_wal_mode_with_full_sync_and_foreign_keys() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = worktrail_server::store::open(&url).await.unwrap();
    store.close().await;
    // journal_mode=WAL persists in the file; a plain connection sees it.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String =
        sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    // A file whose WAL cannot be enabled (read-only directory) is refused at start-up rather
    // than silently running in another mode is covered by SqliteStore::connect's check.
}

/// A count, read with a plain connection.
async fn count(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retention_takes_the_titles_of_deleted_spans_with_them() {
    // App spans keep their titles in a per-company table (migration 0008); once retention has
    // deleted every span that used a title, the title is gone from the file as well.
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let (b, _) = s.add_company("Other Co").await;
    let device = enrol_direct(&s, s.company, "ada@test.example").await;
    let device_b = enrol_direct(&s, b, "bob@test.example").await;
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 0,
        dropped: Default::default(),
        records: spans(30),
    };
    s.store().ingest_batch(s.company, &device, batch.clone(), &meta(&s, &batch)).await.unwrap();
    // Company B has the same titles (and even the same record ids): its own rows.
    s.store().ingest_batch(b, &device_b, batch.clone(), &meta(&s, &batch)).await.unwrap();
    let company_a = format!("company_id = x'{}'", s.company.0.simple());
    let titles = format!(
        "SELECT COUNT(*) FROM span_titles t JOIN span_devices d ON d.n = t.dev WHERE d.{company_a}"
    );
    assert_eq!(count(&s.db.url, &titles).await, 30);
    // Spans that ended by 10.5 s go (11 of them); the other titles stay.
    let deleted = s.store().delete_raw_before(s.company, 10_500, 1000).await.unwrap();
    assert!(deleted >= 11, "deleted {deleted}");
    assert_eq!(count(&s.db.url, &titles).await, 19);
    let left = s.store().app_spans(s.company, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(left.len(), 19);
    assert!(left.iter().all(|r| r.title.as_deref() != Some("title 3")));
    // Everything goes: no title, app or device key of this company is left; B keeps its own.
    s.store().delete_raw_before(s.company, i64::MAX, 1000).await.unwrap();
    assert_eq!(count(&s.db.url, &titles).await, 0);
    for table in ["span_apps", "span_devices"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {company_a}");
        assert_eq!(count(&s.db.url, &sql).await, 0, "{table}");
    }
    assert_eq!(count(&s.db.url, "SELECT COUNT(*) FROM span_titles").await, 30);
    let b_spans = s.store().app_spans(b, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(b_spans.len(), 30);
    assert!(b_spans.iter().all(|r| r.title.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_moves_existing_app_spans_into_the_compact_layout() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    // A database as the release before 0008 left it, with app spans in the old table.
    let folder =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/migrations/sqlite");
    let migrator = sqlx::migrate::Migrator::new(folder).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    migrator.run_to(7, &mut conn).await.unwrap();
    let company = CompanyId::new();
    let (device, employee, task) = (DeviceId::new(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let (a, b) = (RecordId::new(), RecordId::new());
    sqlx::query(
        "INSERT INTO plans VALUES (x'01', 'p', 'P', 10, 30, 1, 0, 0, 0); \
         INSERT INTO companies (id, name, plan_id, time_zone, policy_json, created_at_ms) \
         VALUES ($1, 'Old Co', x'01', 'UTC', '{}', 0)",
    )
    .bind(company.0)
    .execute(&mut conn)
    .await
    .unwrap();
    for (id, seq, start, exe, title, task) in [
        (a, 7, 1_000, Some("/usr/bin/code"), Some("main.rs — Code"), None),
        (b, 8, 5_000, None, None, Some(task)),
    ] {
        sqlx::query(
            "INSERT INTO app_usage (company_id, id, device_id, employee_id, seq, start_ms, \
             end_ms, app, exe, title, task_id) VALUES ($1, $2, $3, $4, $5, $6, $7, 'Code', $8, \
             $9, $10)",
        )
        .bind(company.0)
        .bind(id.0)
        .bind(device.0)
        .bind(employee)
        .bind(seq)
        .bind(start)
        .bind(start + 2_500)
        .bind(exe)
        .bind(title)
        .bind(task)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    // Opening the store migrates; every column reads back as it was.
    let store = worktrail_server::store::open(&url).await.unwrap();
    let spans = store.app_spans(company, i64::MIN, i64::MAX).await.unwrap();
    store.close().await;
    let got: Vec<_> = spans
        .iter()
        .map(|r| {
            let t = (r.id, r.device_id, r.employee_id.0, r.seq, r.start_ms, r.end_ms);
            (t, r.app.as_str(), r.exe.as_deref(), r.title.as_deref(), r.task_id.map(|t| t.0))
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                (a, device, employee, 7, 1_000, 3_500),
                "Code",
                Some("/usr/bin/code"),
                Some("main.rs — Code"),
                None
            ),
            ((b, device, employee, 8, 5_000, 7_500), "Code", None, None, Some(task)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_stays_bounded_under_a_steady_stream_of_batches() {
    // Under a steady stream of group commits the checkpoint thread never finds the WAL fully
    // copied when the writer starts its next transaction (which is when SQLite starts the WAL
    // over); the writer's own checkpoint past 16 MB is what keeps it from growing until the
    // disk is full. Without it the WAL reaches over 30 MB here.
    let s = Arc::new(TestServer::start(Backend::Sqlite).await.unwrap());
    let wal = std::path::PathBuf::from(format!(
        "{}-wal",
        s.db.url.trim_start_matches("sqlite://").split('?').next().unwrap()
    ));
    let mut tasks = Vec::new();
    for agent in 0..8i64 {
        let (s, wal) = (s.clone(), wal.clone());
        let device = enrol_direct(&s, s.company, &format!("a{agent}@test.example")).await;
        tasks.push(tokio::spawn(async move {
            let mut largest = 0;
            for b in 0..60i64 {
                let mut records = spans(500);
                for r in &mut records {
                    r.seq += b * 500;
                    if let RecordBody::AppSpan { start_ms, end_ms, title, .. } = &mut r.body {
                        *start_ms += b * 1_000_000;
                        *end_ms += b * 1_000_000;
                        *title = Some(format!("{} of batch {b}", title.as_deref().unwrap_or("")));
                    }
                }
                let batch = BatchRequest {
                    batch_id: BatchId::new(),
                    sent_at_ms: 0,
                    dropped: Default::default(),
                    records,
                };
                let m = meta(&s, &batch);
                s.store().ingest_batch(s.company, &device, batch.clone(), &m).await.unwrap();
                largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            }
            largest
        }));
    }
    let mut largest = 0;
    for t in tasks {
        largest = largest.max(t.await.unwrap());
    }
    let counts = s.store().record_counts(s.company).await.unwrap();
    assert_eq!(counts.app_spans, 8 * 60 * 500);
    assert!(largest < 24 << 20, "the WAL reached {} MB", largest >> 20);
}
