//! The portal in a real headless Chromium against a port-0 server with seeded data: each role
//! signs in through the login form; the owner suspends a company and its agents are refused; an
//! admin changes the screenshot interval and the agent receives it; the main pages are saved as
//! PNG under `target/portal-screenshots/`.
//!
//! SQLite only: the browser exercises the pages, and the other suites hold the two backends to
//! one contract.

use std::path::Path;
use std::sync::Arc;
use worktrail_server::clock::Clock;
use worktrail_server::jobs::Job;
use worktrail_shared::api::{
    BatchRequest, PolicyResponse, Record, RecordBody, SessionEnd, SiteSource,
};
use worktrail_shared::secret::DeviceToken;
use worktrail_shared::{BatchId, ErrorCode, RecordId};
use worktrail_tests::agent::{TestAgent, agent_clock, fake_probes};
use worktrail_tests::browser::{self, Browser};
use worktrail_tests::{Backend, TestServer, expect_error};

const SESSION_COOKIE: &str = "__Host-wt_session";
/// What the seeded employee worked in; the employee's and the admin's day pages must show it.
const APP: &str = "Inkscape";
const SITE: &str = "docs.rs";
const MIN: i64 = 60_000;

async fn server() -> TestServer {
    TestServer::start(Backend::Sqlite).await.expect("SQLite is always available")
}

/// Seeds 45 minutes of the employee's work today (server clock, UTC): a work session, one app
/// span, one website span and per-minute activity, then runs the rollup. Returns the device token.
async fn seed_a_tracked_stretch(s: &TestServer, email: &str) -> DeviceToken {
    // Keep the stretch inside today: the day pages show the server's today.
    let day_start = s.clock.now_ms() - s.clock.now_ms().rem_euclid(24 * 60 * MIN);
    if s.clock.now_ms() - day_start < 60 * MIN {
        s.clock.set(day_start + 60 * MIN);
    }
    let end = s.clock.now_ms() - 5 * MIN;
    let start = end - 45 * MIN;
    let mid = start + 30 * MIN;
    let (_, token) = s.enroll(email).await;
    let mut bodies = vec![
        RecordBody::WorkSession { start_ms: start, end_ms: end, end_reason: SessionEnd::Stop },
        RecordBody::AppSpan {
            start_ms: start,
            end_ms: mid,
            app: APP.into(),
            exe: Some("/usr/bin/inkscape".into()),
            title: Some("poster-draft.svg".into()),
            task_id: None,
        },
        RecordBody::WebsiteSpan {
            start_ms: mid,
            end_ms: end,
            domain: SITE.into(),
            url: None,
            title: Some("fantoccini - Rust".into()),
            browser: Some("Chromium".into()),
            source: SiteSource::Extension,
        },
    ];
    let mut minute = start - start.rem_euclid(MIN);
    while minute < end {
        bodies.push(RecordBody::Activity { minute_ms: minute, active_secs: 45 });
        minute += MIN;
    }
    let records = bodies
        .into_iter()
        .zip(1..)
        .map(|(body, seq)| Record { id: RecordId::new(), seq, body })
        .collect();
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: end,
        dropped: Default::default(),
        records,
    };
    let resp = s.post_batch(&s.company_key, &token, &batch).await;
    assert!(
        resp.status().is_success(),
        "seed batch: {} {}",
        resp.status(),
        resp.text().await.unwrap()
    );
    s.run_job(Job::Rollup).await;
    token
}

/// The real agent core, enrolled as `email` in the seeded company (fake probes: only its
/// conversation with the server matters here).
async fn real_agent(s: &TestServer, email: &str) -> TestAgent {
    let (probes, _, _) = fake_probes();
    TestAgent::enrolled(s, email, probes, Arc::new(agent_clock(s))).await
}

async fn policy_of(s: &TestServer, key: &str, token: &DeviceToken) -> PolicyResponse {
    let resp = s.get_policy(key, Some(token)).await;
    assert_eq!(resp.status(), 200, "the policy request of an active company");
    resp.json().await.expect("policy body")
}

/// The file is a PNG of the full-width window with something drawn on it (a blank page has one
/// colour).
fn assert_is_a_rendered_page(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    assert_eq!(img.width(), browser::WIDTH, "{} is not the full window", path.display());
    let colours: std::collections::HashSet<_> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 8, "{} looks blank ({} colours)", path.display(), colours.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_signs_in_through_the_form_and_lands_on_its_own_home_with_a_strict_cookie() {
    let s = server().await;
    let logins = s.seed_logins().await;
    seed_a_tracked_stretch(&s, &logins.employee.0).await;
    let b = Browser::start().await;

    for ((email, password), home, shot) in [
        (&logins.owner, "/owner", Some("owner-dashboard")),
        (&logins.admin, "/admin", Some("admin-overview")),
        (&logins.employee, "/me", None),
    ] {
        let landed = b.login(&s.base_url, email, password).await;
        assert_eq!(landed, home, "{email} should land on {home}; page:\n{}", b.body_text().await);
        assert!(!b.exists("#error").await, "{email} signed in but the page shows an error");
        let cookie = b.cookie(SESSION_COOKIE).await.unwrap_or_else(|| {
            panic!("Chromium kept no {SESSION_COOKIE} cookie after {email} signed in")
        });
        assert_eq!(cookie.http_only(), Some(true), "{SESSION_COOKIE} must be HttpOnly");
        assert_eq!(cookie.secure(), Some(true), "{SESSION_COOKIE} must be Secure");
        assert_eq!(
            cookie.same_site().map(|v| v.to_string()).as_deref(),
            Some("Strict"),
            "{SESSION_COOKIE} must be SameSite=Strict"
        );
        if home == "/owner" {
            let row = format!("table#companies tr[data-company-id=\"{}\"]", s.company);
            b.wait_for_text(&row, "Test Co").await;
        }
        if let Some(name) = shot {
            assert_is_a_rendered_page(&b.screenshot(name).await);
        }
        // The next role starts signed out.
        b.client().delete_all_cookies().await.expect("sign out by dropping cookies");
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_the_login_form_again_with_an_error_and_no_session() {
    let s = server().await;
    let logins = s.seed_logins().await;
    let b = Browser::start().await;

    let landed = b.login(&s.base_url, &logins.admin.0, "not the right password").await;
    assert_eq!(landed, "/login");
    assert!(!b.text("#error").await.trim().is_empty(), "#error says nothing");
    assert!(b.exists("form#login").await, "the form is offered again");
    assert!(b.cookie(SESSION_COOKIE).await.is_none(), "a failed sign-in left a session cookie");
    // And the protected page is still out of reach.
    b.goto(&s.url("/admin")).await;
    assert_ne!(
        b.path().await,
        "/admin",
        "reached /admin without signing in:\n{}",
        b.body_text().await
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_suspends_a_company_in_the_browser_and_its_agents_are_refused_with_company_suspended()
{
    let s = server().await;
    let logins = s.seed_logins().await;
    let token = seed_a_tracked_stretch(&s, &logins.employee.0).await;
    let mut agent = real_agent(&s, &logins.employee.0).await;
    agent.agent.syncer.refresh_policy().await.expect("the agent is accepted before");
    // A second company whose agents must keep working: the button suspends one company only.
    let (_, other_key) = s.add_company("Other Co").await;
    let (_, other_token) = s.enroll_with(&other_key, "bo@other.example").await.expect("enrol");
    policy_of(&s, s.company_key.expose(), &token).await;
    policy_of(&s, other_key.expose(), &other_token).await;

    let b = Browser::start().await;
    assert_eq!(b.login(&s.base_url, &logins.owner.0, &logins.owner.1).await, "/owner");
    let detail = format!("/owner/companies/{}", s.company);
    let link = b
        .wait_for(&format!(
            "table#companies tr[data-company-id=\"{}\"] a[href=\"{detail}\"]",
            s.company
        ))
        .await;
    b.click_and_wait_for_new_page(&link).await;
    b.wait_for_path(&detail).await;
    let before = b.text("#status").await;
    assert!(!before.contains("suspended"), "Test Co starts active, the page says {before:?}");
    assert_is_a_rendered_page(&b.screenshot("owner-company-detail").await);

    b.submit("form#suspend").await;
    b.wait_for_text("#status", "suspended").await;
    // The action is on the record.
    b.wait_for_text("#audit", "suspend").await;
    assert_is_a_rendered_page(&b.screenshot("owner-company-suspended").await);
    b.close().await;

    // The real agent is refused with the code, blocks itself and stops capturing.
    let err = agent.agent.syncer.refresh_policy().await.expect_err("a suspended company's agent");
    assert_eq!(err.code(), Some(ErrorCode::CompanySuspended), "{err:?}");
    let status = agent.agent.status().await.expect("agent status");
    assert_eq!(status.blocked.map(|b| b.code), Some(ErrorCode::CompanySuspended));
    assert!(!status.capturing, "a blocked agent does not capture");
    // Every device of the company, on the wire; the other company is untouched.
    expect_error(
        s.get_policy(s.company_key.expose(), Some(&token)).await,
        ErrorCode::CompanySuspended,
    )
    .await;
    policy_of(&s, other_key.expose(), &other_token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_the_screenshot_interval_in_the_browser_and_the_agent_receives_it() {
    let s = server().await;
    let logins = s.seed_logins().await;
    let token = seed_a_tracked_stretch(&s, &logins.employee.0).await;
    let before = policy_of(&s, s.company_key.expose(), &token).await.policy;
    let new_interval = before.screenshots.interval_secs + 300;
    let mut agent = real_agent(&s, &logins.employee.0).await;
    assert_eq!(
        agent.agent.capture_policy().policy,
        before,
        "the agent starts on the policy in force"
    );

    let b = Browser::start().await;
    assert_eq!(b.login(&s.base_url, &logins.admin.0, &logins.admin.1).await, "/admin");
    b.goto(&s.url("/admin/policy")).await;
    let field = "form#policy input[name=screenshot_interval_secs]";
    assert_eq!(
        b.value(field).await,
        before.screenshots.interval_secs.to_string(),
        "the form shows the interval in force"
    );
    b.fill(field, &new_interval.to_string()).await;
    b.submit("form#policy").await;
    b.wait_for_path("/admin/policy").await;
    b.wait_for("#saved").await;
    assert_eq!(
        b.value(field).await,
        new_interval.to_string(),
        "the saved form shows the new value"
    );
    assert_is_a_rendered_page(&b.screenshot("admin-policy-saved").await);
    b.close().await;

    let after = policy_of(&s, s.company_key.expose(), &token).await.policy;
    assert_eq!(after.screenshots.interval_secs, new_interval);
    let mut expected = before.clone();
    expected.screenshots.interval_secs = new_interval;
    assert_eq!(after, expected, "saving the form changed more than the interval");
    // The real agent picks it up at its next policy refresh and captures under it.
    agent.agent.syncer.refresh_policy().await.expect("the agent refreshes its policy");
    assert_eq!(agent.agent.capture_policy().policy, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_opens_the_employees_day_and_the_employee_sees_the_same_work_in_my_day() {
    let s = server().await;
    let logins = s.seed_logins().await;
    seed_a_tracked_stretch(&s, &logins.employee.0).await;
    let employee = s
        .store()
        .user_by_email(s.company, &logins.employee.0)
        .await
        .expect("look up the employee")
        .expect("the seeded employee exists");

    let b = Browser::start().await;
    assert_eq!(b.login(&s.base_url, &logins.admin.0, &logins.admin.1).await, "/admin");
    b.goto(&s.url("/admin/employees")).await;
    let day = format!("/admin/employees/{}/day", employee.id);
    let link = b.wait_for(&format!("a[href=\"{day}\"]")).await;
    b.click_and_wait_for_new_page(&link).await;
    b.wait_for_path(&day).await;
    b.wait_for_text("body", APP).await;
    b.wait_for_text("body", SITE).await;
    assert_is_a_rendered_page(&b.screenshot("admin-employee-day").await);
    b.client().delete_all_cookies().await.expect("sign the admin out");

    assert_eq!(b.login(&s.base_url, &logins.employee.0, &logins.employee.1).await, "/me");
    b.wait_for_text("body", APP).await;
    b.wait_for_text("body", SITE).await;
    assert_is_a_rendered_page(&b.screenshot("employee-my-day").await);
    b.close().await;
}
