//! Background jobs with a controllable clock: rollups equal the raw rows (across a time-zone
//! boundary and a DST change), late data corrects past days, the lifecycle ends trials on time,
//! retention removes exactly what is past its limit.

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use worktrail_server::clock::Clock;
use worktrail_server::domain::subscription::{DAY_MS, Subscription, SubscriptionStatus};
use worktrail_server::jobs::Job;
use worktrail_server::jobs::retention::CANCELLED_GRACE_DAYS;
use worktrail_server::store::UsageNumbers;
use worktrail_shared::api::{BatchRequest, Record, RecordBody, SessionEnd};
use worktrail_shared::secret::{CompanyKey, DeviceToken};
use worktrail_shared::{BatchId, COMPANY_KEY_HEADER, CompanyId, ErrorCode, RecordId};
use worktrail_tests::{Backend, TestServer, expect_error, http, tiny_jpeg};

const H: i64 = 3_600_000;

fn ms(d: Date, hour: i8, tz: &TimeZone) -> i64 {
    d.at(hour, 0, 0, 0).to_zoned(tz.clone()).unwrap().timestamp().as_millisecond()
}

/// `[start, end)` of a local date, computed here independently of the server.
fn bounds(d: Date, tz: &TimeZone) -> (i64, i64) {
    let start = d.to_zoned(tz.clone()).unwrap().timestamp().as_millisecond();
    let end = d.tomorrow().unwrap().to_zoned(tz.clone()).unwrap().timestamp().as_millisecond();
    (start, end)
}

fn batch(records: Vec<Record>) -> BatchRequest {
    BatchRequest { batch_id: BatchId::new(), sent_at_ms: 0, dropped: Default::default(), records }
}

fn record(seq: i64, body: RecordBody) -> Record {
    Record { id: RecordId::new(), seq, body }
}

/// Random spans, idle, sessions, activity and screenshots between `from` and `to`, including
/// spans that cross local midnight.
fn activity(rng: &mut StdRng, from: i64, to: i64, seq0: i64) -> Vec<Record> {
    let mut out = Vec::new();
    let mut t = from;
    let mut seq = seq0;
    while t < to {
        seq += 1;
        let len = rng.random_range(60_000..3 * H);
        let end = (t + len).min(to);
        let body = match rng.random_range(0..10) {
            0 => RecordBody::IdleSpan { start_ms: t, end_ms: end },
            1 => RecordBody::WorkSession { start_ms: t, end_ms: end, end_reason: SessionEnd::Idle },
            2 => RecordBody::Screenshot {
                taken_at_ms: t,
                monitor: 0,
                width: 10,
                height: 10,
                bytes: 100,
                blurred: false,
            },
            3 => RecordBody::Activity {
                minute_ms: t - t.rem_euclid(60_000),
                active_secs: rng.random_range(0..=60),
            },
            _ => RecordBody::AppSpan {
                start_ms: t,
                end_ms: end,
                app: "Code".into(),
                exe: None,
                title: Some("work".into()),
                task_id: None,
            },
        };
        out.push(record(seq, body));
        t = end + rng.random_range(0..30 * 60_000);
    }
    out
}

fn clip(start: i64, end: i64, (lo, hi): (i64, i64)) -> i64 {
    (end.min(hi) - start.max(lo)).max(0)
}

/// The rollup numbers of one local day, computed straight from the records sent.
fn expected(records: &[Record], day: (i64, i64)) -> (i64, i64, i64, i64, i64) {
    let (mut tracked, mut idle, mut sessions, mut shots, mut active) = (0, 0, 0, 0, false);
    for r in records {
        match &r.body {
            RecordBody::AppSpan { start_ms, end_ms, .. } => {
                let c = clip(*start_ms, *end_ms, day);
                tracked += c;
                active |= *start_ms < day.1 && *end_ms > day.0;
            }
            RecordBody::IdleSpan { start_ms, end_ms } => idle += clip(*start_ms, *end_ms, day),
            RecordBody::WorkSession { start_ms, .. } => {
                sessions += i64::from(*start_ms >= day.0 && *start_ms < day.1)
            }
            RecordBody::Screenshot { taken_at_ms, .. } => {
                shots += i64::from(*taken_at_ms >= day.0 && *taken_at_ms < day.1)
            }
            RecordBody::Activity { minute_ms, active_secs } => {
                active |= *minute_ms >= day.0 && *minute_ms < day.1 && *active_secs > 0
            }
            RecordBody::WebsiteSpan { .. } => {}
        }
    }
    (tracked / 1000, idle / 1000, sessions, shots, i64::from(active))
}

async fn send_all(
    s: &TestServer,
    key: &CompanyKey,
    token: &DeviceToken,
    records: &[Record],
) -> usize {
    let mut calls = 0;
    for chunk in records.chunks(200) {
        s.post_batch(key, token, &batch(chunk.to_vec())).await.error_for_status().unwrap();
        calls += 1;
    }
    calls
}

async fn usage(s: &TestServer, company: CompanyId, d: Date) -> UsageNumbers {
    let day = d.to_string();
    let rows = s.store().usage_days(company, &day, &day).await.unwrap();
    rows.into_iter().next().map(|r| r.numbers).unwrap_or_default()
}

async fn rollups_equal_the_raw_rows_across_midnight_and_a_dst_change(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let (company, key) = s.add_company_in("Berlin GmbH", "Europe/Berlin").await;
    let (_, token) = s.enroll_with(&key, "ada@berlin.example").await.unwrap();
    // 27–31 March 2026: clocks go forward on the 29th (a 23-hour day).
    let days: Vec<Date> = (27..=31).map(|d| date(2026, 3, d)).collect();
    let mut rng = StdRng::seed_from_u64(7);
    let records = activity(&mut rng, ms(days[0], 20, &tz), ms(days[4], 6, &tz), 0);
    let mut calls = 1 + send_all(&s, &key, &token, &records).await; // enrolment + batches
    // One rejected call counts against the company by its code.
    let bad = http()
        .post(s.url("/api/v1/agent/batches"))
        .header(COMPANY_KEY_HEADER, key.expose())
        .bearer_auth(token.expose())
        .body("{broken")
        .send()
        .await
        .unwrap();
    expect_error(bad, ErrorCode::InvalidBatch).await;
    calls += 1;
    assert!(s.run_job(Job::Rollup).await > 0);
    assert_eq!(bounds(days[2], &tz).1 - bounds(days[2], &tz).0, 23 * H, "DST day");
    for d in &days {
        let want = expected(&records, bounds(*d, &tz));
        let got = usage(&s, company, *d).await;
        assert_eq!(
            (
                got.tracked_secs,
                got.idle_secs,
                got.work_sessions,
                got.screenshots,
                got.active_employees
            ),
            want,
            "{d}"
        );
        assert_eq!(got.active_devices, want.4);
    }
    // Records, bytes and calls count on the day they arrived.
    let today =
        jiff::Timestamp::from_millisecond(s.clock.now_ms()).unwrap().to_zoned(tz.clone()).date();
    let arrival = usage(&s, company, today).await;
    assert_eq!(arrival.records, records.len() as i64);
    assert!(arrival.bytes_ingested > 0);
    assert_eq!(arrival.sync_requests, calls as i64);
    assert_eq!(arrival.rejected_requests, 1);
    assert_eq!(arrival.rejected_by_code, BTreeMap::from([("invalid_batch".to_owned(), 1)]));
    // The seeded UTC company saw none of it.
    assert!(s.store().usage_days(s.company, "2000-01-01", "2100-01-01").await.unwrap().is_empty());
}

async fn late_data_corrects_its_past_day_and_recomputation_is_stable(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let tz = TimeZone::UTC;
    let (_, token) = s.enroll("ada@test.example").await;
    let now = s.clock.now_ms();
    let today = jiff::Timestamp::from_millisecond(now).unwrap().to_zoned(tz.clone()).date();
    let past = today.checked_sub(jiff::Span::new().days(7)).unwrap();
    let span = |seq, start: i64, end: i64| {
        record(
            seq,
            RecordBody::AppSpan {
                start_ms: start,
                end_ms: end,
                app: "a".into(),
                exe: None,
                title: None,
                task_id: None,
            },
        )
    };
    let p0 = bounds(past, &tz).0;
    s.post_batch(&s.company_key, &token, &batch(vec![span(1, p0 + 9 * H, p0 + 10 * H)]))
        .await
        .error_for_status()
        .unwrap();
    s.run_job(Job::Rollup).await;
    assert_eq!(usage(&s, s.company, past).await.tracked_secs, 3600);
    let before_today = usage(&s, s.company, today).await;
    // An agent back from a week offline delivers more of that day.
    s.clock.advance(60_000);
    s.post_batch(
        &s.company_key,
        &token,
        &batch(vec![span(2, p0 + 11 * H, p0 + 11 * H + 1_800_000)]),
    )
    .await
    .error_for_status()
    .unwrap();
    s.run_job(Job::Rollup).await;
    let corrected = usage(&s, s.company, past).await;
    assert_eq!(corrected.tracked_secs, 5400, "the late half hour lands on its own day");
    assert_eq!(usage(&s, s.company, today).await.records, before_today.records + 1);
    // Nothing new: a run writes nothing and the rows stay as they are.
    assert_eq!(s.run_job(Job::Rollup).await, 0);
    assert_eq!(usage(&s, s.company, past).await, corrected);
    // Recomputing the day from scratch gives the same row.
    let again = worktrail_server::jobs::rollup::recompute_day(
        &s.state,
        s.company,
        &tz,
        past,
        s.clock.now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(again, corrected);
}

async fn the_lifecycle_ends_a_trial_exactly_on_time_with_history_and_audit(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let end = s.store().subscription(s.company).await.unwrap().unwrap().trial_ends_at_ms.unwrap();
    s.clock.set(end - 1);
    assert_eq!(s.run_job(Job::Lifecycle).await, 0);
    assert_eq!(s.get_policy(s.company_key.expose(), Some(&token)).await.status(), 200);
    s.clock.set(end);
    // The gate sees the end at once, before the job has run.
    expect_error(s.get_policy(s.company_key.expose(), Some(&token)).await, ErrorCode::TrialExpired)
        .await;
    assert_eq!(s.run_job(Job::Lifecycle).await, 1);
    let sub = s.store().subscription(s.company).await.unwrap().unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Expired);
    expect_error(s.get_policy(s.company_key.expose(), Some(&token)).await, ErrorCode::TrialExpired)
        .await;
    let history = s.store().subscription_history(s.company).await.unwrap();
    assert_eq!(history.last().unwrap().1, SubscriptionStatus::Expired);
    assert_eq!(history.last().unwrap().0, end);
    let audit = s.store().audit_log(s.company).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].action.as_str()),
        ("system:lifecycle", "subscription.expired")
    );
    assert_eq!(s.run_job(Job::Lifecycle).await, 0, "recorded once");
}

async fn a_paid_period_falls_to_past_due_then_expires_after_the_grace(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let now = s.clock.now_ms();
    let sub = Subscription {
        status: SubscriptionStatus::Active,
        trial_ends_at_ms: None,
        period_end_at_ms: Some(now + DAY_MS),
        grace_days: 3,
    };
    s.store().set_subscription(s.company, &sub, "paid", now).await.unwrap();
    s.clock.set(now + DAY_MS);
    assert_eq!(s.run_job(Job::Lifecycle).await, 1);
    assert_eq!(
        s.store().subscription(s.company).await.unwrap().unwrap().status,
        SubscriptionStatus::PastDue
    );
    assert_eq!(
        s.get_policy(s.company_key.expose(), Some(&token)).await.status(),
        200,
        "past_due still works"
    );
    s.clock.set(now + 4 * DAY_MS);
    assert_eq!(s.run_job(Job::Lifecycle).await, 1);
    assert_eq!(
        s.store().subscription(s.company).await.unwrap().unwrap().status,
        SubscriptionStatus::Expired
    );
    expect_error(
        s.get_policy(s.company_key.expose(), Some(&token)).await,
        ErrorCode::SubscriptionExpired,
    )
    .await;
    let actions: Vec<String> =
        s.store().audit_log(s.company).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["subscription.past_due", "subscription.expired"]);
}

/// Sends spans and a screenshot (with its bytes) at each of `ages` days before now.
async fn seed_ages(
    s: &TestServer,
    key: &CompanyKey,
    token: &DeviceToken,
    ages: &[i64],
) -> Vec<(i64, RecordId, String)> {
    let now = s.clock.now_ms();
    let mut out = Vec::new();
    for (i, age) in ages.iter().enumerate() {
        let t = now - age * DAY_MS;
        let bytes = tiny_jpeg(16, 16, i as u8);
        let shot = record(
            10 * i as i64 + 1,
            RecordBody::Screenshot {
                taken_at_ms: t,
                monitor: 0,
                width: 16,
                height: 16,
                bytes: bytes.len() as u64,
                blurred: false,
            },
        );
        let span = record(
            10 * i as i64 + 2,
            RecordBody::AppSpan {
                start_ms: t,
                end_ms: t + 60_000,
                app: "a".into(),
                exe: None,
                title: None,
                task_id: None,
            },
        );
        let minute = record(
            10 * i as i64 + 3,
            RecordBody::Activity { minute_ms: t - t.rem_euclid(60_000), active_secs: 30 },
        );
        let shot_id = shot.id;
        s.post_batch(key, token, &batch(vec![shot, span, minute]))
            .await
            .error_for_status()
            .unwrap();
        let resp = s.put_screenshot(key, token, shot_id, bytes).await;
        assert_eq!(resp.status(), 200);
        let rows = s.store().screenshots(s.company).await.unwrap();
        let object = rows.iter().find(|r| r.id == shot_id).unwrap().object_key.clone().unwrap();
        out.push((*age, shot_id, object));
    }
    out
}

async fn retention_removes_rows_and_files_older_than_the_limit_and_nothing_newer(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    // The trial plan keeps 30 days.
    let seeded = seed_ages(&s, &s.company_key, &token, &[45, 31, 29, 1]).await;
    s.run_job(Job::Rollup).await;
    let rollups_before = s.store().usage_days(s.company, "2000-01-01", "2100-01-01").await.unwrap();
    let deleted = s.run_job(Job::Retention).await;
    assert_eq!(deleted, 2 * 3, "two old days × (span, minute, screenshot)");
    let counts = s.store().record_counts(s.company).await.unwrap();
    assert_eq!((counts.app_spans, counts.activity, counts.screenshots), (2, 2, 2));
    for (age, id, object) in &seeded {
        let row = s.store().screenshots(s.company).await.unwrap().into_iter().any(|r| r.id == *id);
        let file = s.state.objects.get(object).await.is_ok();
        assert_eq!((row, file), (*age < 30, *age < 30), "screenshot {age} days old");
    }
    let spans = s.store().app_spans(s.company, 0, i64::MAX).await.unwrap();
    let now = s.clock.now_ms();
    assert!(spans.iter().all(|sp| sp.start_ms > now - 30 * DAY_MS));
    let rollups_after = s.store().usage_days(s.company, "2000-01-01", "2100-01-01").await.unwrap();
    assert_eq!(rollups_after, rollups_before, "rollups stay");
    assert_eq!(s.run_job(Job::Retention).await, 0);
    // A shorter policy retention applies.
    let mut policy = s.store().company(s.company).await.unwrap().unwrap().policy;
    policy.retention_days = Some(10);
    s.store().set_policy(s.company, &policy).await.unwrap();
    assert_eq!(s.run_job(Job::Retention).await, 3);
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 1);
}

async fn a_cancelled_company_keeps_its_data_for_the_grace_then_loses_it(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let seeded = seed_ages(&s, &s.company_key, &token, &[2, 1]).await;
    s.run_job(Job::Rollup).await;
    let now = s.clock.now_ms();
    let mut sub = s.store().subscription(s.company).await.unwrap().unwrap();
    sub.status = SubscriptionStatus::Cancelled;
    s.store().set_subscription(s.company, &sub, "cancelled by owner", now).await.unwrap();
    // Within the grace (and the plan's 30 days) nothing goes.
    s.clock.set(now + (CANCELLED_GRACE_DAYS - 3) * DAY_MS);
    s.run_job(Job::Retention).await;
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 2);
    s.clock.set(now + CANCELLED_GRACE_DAYS * DAY_MS);
    s.run_job(Job::Retention).await;
    let counts = s.store().record_counts(s.company).await.unwrap();
    assert_eq!(counts.total() + counts.batches, 0, "{counts:?}");
    assert!(s.store().devices(s.company).await.unwrap().is_empty());
    assert!(s.store().user_by_email(s.company, "ada@test.example").await.unwrap().is_none());
    for (_, _, object) in seeded {
        assert!(s.state.objects.get(&object).await.is_err());
    }
    assert!(
        !s.store().usage_days(s.company, "2000-01-01", "2100-01-01").await.unwrap().is_empty(),
        "rollups stay"
    );
    assert!(s.store().company(s.company).await.unwrap().is_some());
}

async fn job_metrics_are_exposed(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    s.run_job(Job::Rollup).await;
    s.run_job(Job::Lifecycle).await;
    let text = http().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("worktrail_job_runs_total{job=\"rollup\"} 1"), "{text}");
    assert!(text.contains("worktrail_job_runs_total{job=\"lifecycle\"} 1"), "{text}");
    assert!(text.contains("worktrail_job_rows_total{job=\"rollup\"}"), "{text}");
    let runs = s.store().job_runs("rollup").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].error, None);
}

both_backends!(
    rollups_equal_the_raw_rows_across_midnight_and_a_dst_change,
    late_data_corrects_its_past_day_and_recomputation_is_stable,
    the_lifecycle_ends_a_trial_exactly_on_time_with_history_and_audit,
    a_paid_period_falls_to_past_due_then_expires_after_the_grace,
    retention_removes_rows_and_files_older_than_the_limit_and_nothing_newer,
    a_cancelled_company_keeps_its_data_for_the_grace_then_loses_it,
    job_metrics_are_exposed,
);
