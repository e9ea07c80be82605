//! Every portal route, as every role and as another company's admin: each answers only the
//! roles it is for, the owner never receives anything about an individual (checked against
//! planted canary strings), and no company sees another's data.

use reqwest::Method;
use worktrail_server::clock::Clock;
use worktrail_server::jobs::Job;
use worktrail_server::portal::{Access, routes};
use worktrail_server::provision;
use worktrail_server::store::Role;
use worktrail_shared::api::{BatchRequest, Record, RecordBody, SiteSource};
use worktrail_shared::{BatchId, RecordId};
use worktrail_tests::{Backend, TestServer, tiny_jpeg};

const CANARIES: [&str; 6] = [
    "Zqx Canary Person",
    "zqx.canary@test.example",
    "ZqxCanaryApp",
    "ZqxCanaryTitle",
    "zqx-canary.example",
    "ZqxCanaryQuery",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    Owner,
    Admin,
    Employee,
    OtherAdmin,
}

struct Planted {
    employee: String,
    device: String,
    screenshot: String,
}

/// Gives the seeded company an employee whose name, e-mail, apps, titles, sites and screenshot
/// are canaries, and rolls the day up so the owner's pages have numbers.
async fn plant(s: &TestServer) -> Planted {
    let now = s.clock.now_ms();
    provision::create_user(
        s.store(),
        s.company,
        CANARIES[1],
        CANARIES[0],
        Role::Employee,
        "a long enough password",
        now,
    )
    .await
    .unwrap();
    let (device, token) = s.enroll(CANARIES[1]).await;
    let shot = RecordId::new();
    let jpeg = tiny_jpeg(16, 16, 7);
    let records = vec![
        Record {
            id: RecordId::new(),
            seq: 1,
            body: RecordBody::AppSpan {
                start_ms: now - 3_600_000,
                end_ms: now - 60_000,
                app: CANARIES[2].into(),
                exe: Some(format!("/opt/{}", CANARIES[2])),
                title: Some(CANARIES[3].into()),
                task_id: None,
            },
        },
        Record {
            id: RecordId::new(),
            seq: 2,
            body: RecordBody::WebsiteSpan {
                start_ms: now - 3_000_000,
                end_ms: now - 120_000,
                domain: CANARIES[4].into(),
                url: Some(format!("https://{}/p?q={}", CANARIES[4], CANARIES[5])),
                title: Some(CANARIES[3].into()),
                browser: Some("Chromium".into()),
                source: SiteSource::Extension,
            },
        },
        Record {
            id: RecordId::new(),
            seq: 3,
            body: RecordBody::Activity { minute_ms: now - now % 60_000 - 120_000, active_secs: 42 },
        },
        Record {
            id: shot,
            seq: 4,
            body: RecordBody::Screenshot {
                taken_at_ms: now - 600_000,
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
    s.put_screenshot(&s.company_key, &token, shot, jpeg).await.error_for_status().unwrap();
    s.run_job(Job::Rollup).await;
    let employee = s.store().user_by_email(s.company, CANARIES[1]).await.unwrap().unwrap().id;
    Planted {
        employee: employee.to_string(),
        device: device.to_string(),
        screenshot: shot.to_string(),
    }
}

fn admitted(access: Access, who: Who) -> bool {
    matches!(
        (access, who),
        (Access::Public, _)
            | (Access::Owner, Who::Owner)
            | (Access::Admin, Who::Admin | Who::OtherAdmin)
            | (Access::Employee, Who::Employee)
    )
}

async fn every_route_admits_exactly_its_roles_and_the_owner_sees_no_individual(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let logins = s.seed_logins().await;
    let planted = plant(&s).await;
    // Another company with its own admin.
    let (other, _) = s.add_company("Other Co").await;
    let other_admin = ("boss@other.example".to_owned(), "another long password".to_owned());
    provision::create_user(
        s.store(),
        other,
        &other_admin.0,
        "Other Boss",
        Role::Admin,
        &other_admin.1,
        s.clock.now_ms(),
    )
    .await
    .unwrap();
    let clients = [
        (Who::Anonymous, worktrail_tests::portal_client()),
        (Who::Owner, s.signed_in(&logins.owner).await),
        (Who::Admin, s.signed_in(&logins.admin).await),
        (Who::Employee, s.signed_in(&logins.employee).await),
        (Who::OtherAdmin, s.signed_in(&other_admin).await),
    ];
    let mut table = routes();
    // Reads first, then state changes; sign-in and sign-out are tested on their own.
    table.retain(|r| !matches!(r.path, "/login" | "/logout"));
    table.sort_by_key(|r| r.method != "GET");
    let mut checked = 0;
    for r in &table {
        let path = r
            .path
            .replace("{company}", &s.company.to_string())
            .replace("{user}", &planted.employee)
            .replace("{device}", &planted.device)
            .replace("{id}", &planted.screenshot)
            .replace("{action}", "reactivate")
            .replace("{token}", &"0".repeat(64));
        for (who, client) in &clients {
            let method = Method::from_bytes(r.method.as_bytes()).unwrap();
            let mut req = client.request(method, s.url(&path));
            // A body every form or JSON handler of the portal can parse, so requests that are
            // admitted reach the handler (unknown fields are ignored).
            if r.method != "GET" {
                req = if path.starts_with("/api/") {
                    req.json(&serde_json::json!({
                        "action": "reactivate", "name": "Walked Co", "plan": "trial",
                    }))
                } else {
                    req.form(&[
                        ("active", "false"),
                        ("grace_days", "1"),
                        ("days", "1"),
                        ("plan", "trial"),
                        ("name", "Walked Co"),
                        ("time_zone", "UTC"),
                        ("email", "walk@test.example"),
                        ("role", "EMPLOYEE"),
                        ("project", "P"),
                        ("task", "T"),
                        ("screenshot_interval_secs", "600"),
                        ("idle_threshold_secs", "300"),
                        ("password", "a long enough password"),
                    ])
                };
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let to_login = resp.headers().get("location").is_some_and(|l| l == "/login");
            let body = resp.text().await.unwrap();
            let what = format!(
                "{} {} as {who:?}: {status} {}",
                r.method,
                path,
                &body[..body.len().min(200)]
            );
            if admitted(r.access, *who) {
                let sent_to_login = to_login && r.access != Access::Public;
                assert!(!matches!(status, 401 | 403) && !sent_to_login, "refused: {what}");
            } else if *who == Who::Anonymous {
                let api = path.starts_with("/api/");
                assert!(
                    if api { status == 401 } else { status == 303 && to_login },
                    "let in: {what}"
                );
            } else {
                assert_eq!(status, 403, "let in: {what}");
            }
            if matches!(who, Who::Owner | Who::OtherAdmin) {
                // The other admin typed the employee's id into the URL; the owner never sees it.
                let id = if *who == Who::Owner { Some(planted.employee.as_str()) } else { None };
                for canary in CANARIES.iter().copied().chain(id) {
                    assert!(!body.contains(canary), "{canary} leaked to {who:?}: {what}");
                }
            }
            if *who == Who::OtherAdmin && r.access == Access::Admin && r.path.contains('{') {
                assert_eq!(status, 404, "another company's id must not resolve: {what}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 5 * 40, "walked {checked} route × role pairs");
    // The admin of the planted employee's company does see them: the canaries are real data.
    let admin = &clients[2].1;
    let day = admin
        .get(s.url(&format!("/api/v1/admin/employees/{}/day", planted.employee)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(day.contains(CANARIES[2]) && day.contains(CANARIES[3]), "{day}");
}

both_backends!(every_route_admits_exactly_its_roles_and_the_owner_sees_no_individual);
