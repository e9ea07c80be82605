//! What admins and employees see of their own company: opening someone's day is recorded and
//! shown to them, an employee's screenshot deletion takes its time with it, exports hold the data.

use worktrail_server::clock::Clock;
use worktrail_server::jobs::Job;
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::{BatchId, RecordId};
use worktrail_tests::{Backend, TestServer, tiny_jpeg};

const MIN: i64 = 60_000;

async fn opening_an_employees_day_is_recorded_and_shown_to_them(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let admin = s.signed_in(&l.admin).await;
    let employee = s.signed_in(&l.employee).await;
    let ada = s.store().user_by_email(s.company, &l.employee.0).await.unwrap().unwrap().id;
    let before: serde_json::Value =
        employee.get(s.url("/api/v1/me/access")).send().await.unwrap().json().await.unwrap();
    assert_eq!(before.as_array().unwrap().len(), 0);
    let day = admin.get(s.url(&format!("/admin/employees/{ada}/day"))).send().await.unwrap();
    assert_eq!(day.status(), 200);
    let after: serde_json::Value =
        employee.get(s.url("/api/v1/me/access")).send().await.unwrap().json().await.unwrap();
    let rows = after.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{after}");
    assert_eq!(rows[0]["viewer"], "Test Admin");
    assert!(rows[0]["what"].as_str().unwrap().starts_with("day "));
    let page = employee.get(s.url("/me/access")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Test Admin"));
}

async fn deleting_a_screenshot_removes_its_time_and_its_file(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let (_, token) = s.enroll(&l.employee.0).await;
    let now = s.clock.now_ms();
    let t0 = now - now % (60 * MIN) - 3 * 60 * MIN; // three hours ago, on the hour
    let shot = RecordId::new();
    let jpeg = tiny_jpeg(16, 16, 3);
    let span = |seq, from: i64, to: i64| Record {
        id: RecordId::new(),
        seq,
        body: RecordBody::AppSpan {
            start_ms: from,
            end_ms: to,
            app: "Code".into(),
            exe: None,
            title: None,
            task_id: None,
        },
    };
    // 30 minutes of work; the screenshot at +15 min stands for the 10 minutes around it.
    let records = vec![
        span(1, t0, t0 + 12 * MIN),
        span(2, t0 + 12 * MIN, t0 + 18 * MIN),
        span(3, t0 + 18 * MIN, t0 + 30 * MIN),
        Record {
            id: shot,
            seq: 4,
            body: RecordBody::Screenshot {
                taken_at_ms: t0 + 15 * MIN,
                monitor: 0,
                width: 16,
                height: 16,
                bytes: jpeg.len() as u64,
                blurred: false,
            },
        },
    ];
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: now,
        dropped: Default::default(),
        records,
    };
    s.post_batch(&s.company_key, &token, &batch).await.error_for_status().unwrap();
    s.put_screenshot(&s.company_key, &token, shot, jpeg.clone()).await.error_for_status().unwrap();
    let mut policy = s.store().company(s.company).await.unwrap().unwrap().policy;
    policy.screenshots.interval_secs = 600;
    s.store().set_policy(s.company, &policy).await.unwrap();
    let employee = s.signed_in(&l.employee).await;
    let img = employee.get(s.url(&format!("/me/screenshots/{shot}"))).send().await.unwrap();
    assert_eq!(img.headers()["content-type"], "image/jpeg");
    assert_eq!(img.bytes().await.unwrap().to_vec(), jpeg);
    let key = s.store().screenshots(s.company).await.unwrap()[0].object_key.clone().unwrap();
    let del = employee
        .post(s.url(&format!("/me/screenshots/{shot}/delete")))
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 303);
    assert!(s.store().screenshots(s.company).await.unwrap().is_empty());
    assert!(s.state.objects.get(&key).await.is_err(), "the file is gone");
    let spans = s.store().app_spans(s.company, t0, t0 + 30 * MIN).await.unwrap();
    let kept: i64 = spans.iter().map(|sp| sp.end_ms - sp.start_ms).sum();
    assert_eq!(kept, 20 * MIN, "the ten minutes around the screenshot are gone: {spans:?}");
    s.run_job(Job::Rollup).await;
    let day = jiff::Timestamp::from_millisecond(t0)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let rollup = s.store().usage_days(s.company, &day, &day).await.unwrap();
    assert_eq!(rollup[0].numbers.tracked_secs, 20 * 60, "the rollup follows");
    // When the policy forbids it, the button is refused.
    policy.employees_delete_screenshots = false;
    s.store().set_policy(s.company, &policy).await.unwrap();
    let refused = employee
        .post(s.url(&format!("/me/screenshots/{}/delete", RecordId::new())))
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

async fn an_employee_export_holds_their_records_and_nobody_elses(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let (_, mine) = s.enroll(&l.employee.0).await;
    let (_, theirs) = s.enroll("bob@test.example").await;
    let now = s.clock.now_ms();
    for (token, title) in [(&mine, "ada-title"), (&theirs, "bob-title")] {
        let rec = Record {
            id: RecordId::new(),
            seq: 1,
            body: RecordBody::AppSpan {
                start_ms: now - 10 * MIN,
                end_ms: now - MIN,
                app: "Code".into(),
                exe: None,
                title: Some(title.into()),
                task_id: None,
            },
        };
        let batch = BatchRequest {
            batch_id: BatchId::new(),
            sent_at_ms: now,
            dropped: Default::default(),
            records: vec![rec],
        };
        s.post_batch(&s.company_key, token, &batch).await.error_for_status().unwrap();
    }
    let employee = s.signed_in(&l.employee).await;
    let json = employee.get(s.url("/me/export.json")).send().await.unwrap().text().await.unwrap();
    assert!(json.contains("ada-title") && !json.contains("bob-title"), "{json}");
    let csv = employee.get(s.url("/me/export.csv")).send().await.unwrap().text().await.unwrap();
    assert!(
        csv.lines().count() == 2 && csv.contains("ada-title") && !csv.contains("bob-title"),
        "{csv}"
    );
    let admin = s.signed_in(&l.admin).await;
    let all = admin.get(s.url("/admin/export.csv")).send().await.unwrap().text().await.unwrap();
    assert!(all.contains("ada-title") && all.contains("bob-title"), "{all}");
}

async fn the_policy_form_saves_rules_and_schedule_that_agents_receive(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let (_, token) = s.enroll(&l.employee.0).await;
    let admin = s.signed_in(&l.admin).await;
    let form = [
        ("screenshots_enabled", "on"),
        ("screenshot_interval_secs", "1200"),
        ("blur", "on"),
        ("idle_threshold_secs", "240"),
        ("retention_days", "20"),
        ("privacy_rules", "drop app KeePassXC\nredact title *bank*"),
        ("schedule", "1 09:00-17:30\n5 08:00-12:00"),
    ];
    let saved = admin.post(s.url("/admin/policy")).form(&form).send().await.unwrap();
    assert_eq!(saved.headers()["location"], "/admin/policy?saved=1");
    let page =
        admin.get(s.url("/admin/policy?saved=1")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"saved\"") && page.contains("5 08:00-12:00"), "{page}");
    let p = s.get_policy(s.company_key.expose(), Some(&token)).await;
    let p: worktrail_shared::api::PolicyResponse = p.json().await.unwrap();
    let p = p.policy;
    assert!(p.screenshots.enabled && p.screenshots.blur && !p.allow_pause);
    assert_eq!(
        (p.screenshots.interval_secs, p.idle_threshold_secs, p.retention_days),
        (1200, 240, Some(20))
    );
    assert_eq!(p.privacy_rules.len(), 2);
    assert_eq!(p.privacy_rules[1].pattern, "*bank*");
    assert_eq!(
        (p.schedule[0].weekday, p.schedule[0].start_minute, p.schedule[0].end_minute),
        (1, 540, 1050)
    );
    let bad = admin
        .post(s.url("/admin/policy"))
        .form(&[
            ("screenshot_interval_secs", "600"),
            ("idle_threshold_secs", "300"),
            ("schedule", "Monday 9-5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("weekday HH:MM-HH:MM"));
}

async fn the_owner_report_counts_plan_mix_and_trial_conversion(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let (other, _) = s.add_company("Converted Co").await;
    let owner = s.signed_in(&l.owner).await;
    let act = owner
        .post(s.url(&format!("/api/v1/owner/companies/{other}/actions")))
        .json(&serde_json::json!({ "action": "activate" }))
        .send()
        .await
        .unwrap();
    assert_eq!(act.status(), 200);
    let plan = owner
        .post(s.url(&format!("/api/v1/owner/companies/{other}/actions")))
        .json(&serde_json::json!({ "action": "change_plan", "plan": "business" }))
        .send()
        .await
        .unwrap();
    assert_eq!(plan.status(), 200);
    let r: serde_json::Value =
        owner.get(s.url("/api/v1/owner/reports")).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["trials"].as_i64(), r["converted"].as_i64()), (Some(2), Some(1)), "{r}");
    assert_eq!(r["plan_mix"], serde_json::json!({ "business": 1, "trial": 1 }));
    let csv = owner.get(s.url("/owner/reports.csv")).send().await.unwrap().text().await.unwrap();
    assert!(csv.starts_with("day,active_employee_days,tracked_hours,companies_reporting"));
    // The company page's 7- and 30-day figures agree with the dashboard's.
    let (_, token) = s.enroll(&l.employee.0).await;
    let now = s.clock.now_ms();
    let rec = Record {
        id: RecordId::new(),
        seq: 1,
        body: RecordBody::AppSpan {
            start_ms: now - 30 * MIN,
            end_ms: now - 10 * MIN,
            app: "Code".into(),
            exe: None,
            title: None,
            task_id: None,
        },
    };
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: now,
        dropped: Default::default(),
        records: vec![rec],
    };
    s.post_batch(&s.company_key, &token, &batch).await.error_for_status().unwrap();
    s.run_job(Job::Rollup).await;
    let dash: serde_json::Value =
        owner.get(s.url("/api/v1/owner/dashboard")).send().await.unwrap().json().await.unwrap();
    let listed = dash["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == s.company.to_string())
        .unwrap()
        .clone();
    let page: serde_json::Value = owner
        .get(s.url(&format!("/api/v1/owner/companies/{}", s.company)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in [
        "tracked_secs_7d",
        "tracked_secs_30d",
        "avg_active_7d",
        "avg_active_30d",
        "seats_used",
        "status",
    ] {
        assert_eq!(page["company"][field], listed[field], "{field}");
    }
    assert_eq!(listed["tracked_secs_7d"], 1200);
    assert_eq!(page["days"].as_array().unwrap().len(), 30);
}

both_backends!(
    the_owner_report_counts_plan_mix_and_trial_conversion,
    the_policy_form_saves_rules_and_schedule_that_agents_receive,
    opening_an_employees_day_is_recorded_and_shown_to_them,
    deleting_a_screenshot_removes_its_time_and_its_file,
    an_employee_export_holds_their_records_and_nobody_elses,
);
