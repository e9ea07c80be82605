//! The tray app's window (issue 4), driven through WebDriver on a private X desktop against a
//! port-0 server: enrolment through the form turns the status to tracking and this device's
//! records reach the server, and "Open my dashboard" opens a sign-in link that works once; a
//! wrong company key shows the `invalid_company_key` message. The
//! window is saved as PNG under `target/agent-screenshots/`.

use std::time::Duration;
use worktrail_agent_core::config::AgentConfig;
use worktrail_shared::policy::{Policy, ScreenshotPolicy};
use worktrail_shared::secret::CompanyKey;
use worktrail_tests::agent::{XDesktop, wait_for};
use worktrail_tests::tray::TrayApp;
use worktrail_tests::{Backend, TestServer};

async fn desktop() -> XDesktop {
    tokio::task::spawn_blocking(XDesktop::start).await.expect("start the desktop")
}

/// Syncs every second, no screenshots: the test sees records on the server within seconds.
fn fast_policy() -> Policy {
    Policy {
        sync_interval_secs: 1,
        screenshots: ScreenshotPolicy { enabled: false, ..Default::default() },
        ..Policy::default()
    }
}

async fn fill_enrolment(app: &TrayApp, server_url: &str, key: &str, email: &str) {
    app.wait_for_attr("#state", "data-state", "not_enrolled").await;
    app.fill("#enroll input[name=server_url]", server_url).await;
    app.fill("#enroll input[name=company_key]", key).await;
    app.fill("#enroll input[name=email]", email).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_company_key_shows_the_invalid_company_key_message_and_enrols_nothing() {
    let server = TestServer::start(Backend::Sqlite).await.expect("SQLite is always available");
    let desktop = desktop().await;
    let app = TrayApp::start(&desktop).await;
    // Well-formed, so the server decides: it knows no such key.
    let wrong =
        CompanyKey::generate(|b| b.iter_mut().enumerate().for_each(|(i, x)| *x = !(i as u8)));
    assert_ne!(wrong, server.company_key);
    fill_enrolment(&app, &server.base_url, wrong.expose(), "ada@test.example").await;
    app.click("#enroll button[type=submit]").await;

    let error = app.wait_for_attr("#enroll-error", "data-code", "invalid_company_key").await;
    let text = error.text().await.expect("error text");
    assert!(text.contains("company key was not accepted"), "{text}");
    assert!(text.contains("(invalid_company_key)"), "{text}");
    // Still on the enrolment screen, and the server has no device.
    assert_eq!(app.text("#state").await, "Not set up");
    assert!(server.store().devices(server.company).await.expect("devices").is_empty());
    app.screenshot("agent-enrolment-wrong-key").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_through_the_window_turns_the_status_to_tracking_and_the_server_gets_this_devices_records()
 {
    let server = TestServer::start(Backend::Sqlite).await.expect("SQLite is always available");
    server.store().set_policy(server.company, &fast_policy()).await.expect("set the policy");
    // The company uses tasks, so the window offers them.
    let now = worktrail_server::clock::Clock::now_ms(&server.clock);
    server.store().create_task(server.company, "Website", "Landing page", now).await.unwrap();
    let tasks = server.store().tasks(server.company).await.expect("tasks");
    let landing = tasks[0].id;
    let mut desktop = desktop().await;
    let app = TrayApp::start(&desktop).await;
    fill_enrolment(&app, &server.base_url, server.company_key.expose(), "grace@test.example").await;
    app.screenshot("agent-enrolment").await;
    app.click("#enroll button[type=submit]").await;

    app.wait_for_attr("#state", "data-state", "tracking").await;
    app.wait_for_text("#company", "Test Co (grace@test.example)").await;
    // The privacy notice now follows the company's policy (screenshots are off here).
    app.wait_for_text("#notice", "Not taken.").await;
    // Choosing a task: the spans recorded from now on count for it.
    let option = format!("#task option[value=\"{landing}\"]");
    app.wait_for(&option).await;
    app.wait_for_text("#task-row", "Website · Landing page").await;
    let select = app.wait_for("#task").await;
    select.select_by_value(&landing.to_string()).await.expect("choose the task");
    // The window shows the agent's choice once the agent has taken it.
    app.wait_for_attr("#task-row", "data-task", &landing.to_string()).await;
    // Enrolled, the app registered itself to start at login, tray only.
    let autostart = app.home().join(".config/autostart");
    let entries: Vec<String> = std::fs::read_dir(&autostart)
        .unwrap_or_else(|e| panic!("no {}: {e}", autostart.display()))
        .flatten()
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .collect();
    assert!(
        entries.iter().any(|e| e.contains("worktrail-agent") && e.contains("--tray-only")),
        "{entries:?}"
    );
    let device = AgentConfig::load_or_create(app.data_dir.path()).expect("agent.json").device_id;
    let devices = server.store().devices(server.company).await.expect("devices");
    assert_eq!(devices.iter().map(|d| d.id).collect::<Vec<_>>(), vec![device]);

    // The app records the real desktop: switching from one xterm to another closes the first
    // one's span, and the app syncs it on its own.
    let first = format!("tray e2e first {}", uuid::Uuid::now_v7());
    let second = format!("tray e2e second {}", uuid::Uuid::now_v7());
    let (a, b) = (first.clone(), second.clone());
    let open = |title: String, mut d: XDesktop| {
        tokio::task::spawn_blocking(move || {
            d.open_xterm(&title);
            d
        })
    };
    desktop = open(a, desktop).await.expect("open the first xterm");
    app.wait_for_text("#current-app", "XTerm").await;
    desktop = open(b, desktop).await.expect("open the second xterm");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = server.store().app_spans(server.company, 0, i64::MAX).await.expect("spans");
        if spans.iter().any(|s| s.title.as_deref() == Some(first.as_str())) {
            break spans;
        }
        assert!(std::time::Instant::now() < deadline, "the first xterm's span never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let employee =
        server.store().user_by_email(server.company, "grace@test.example").await.unwrap().unwrap();
    assert!(spans.iter().all(|s| s.device_id == device && s.employee_id == employee.id));
    let first_spans: Vec<_> =
        spans.iter().filter(|s| s.title.as_deref() == Some(first.as_str())).collect();
    assert!(first_spans.iter().all(|s| s.task_id == Some(landing)), "{first_spans:?}");
    assert!(spans.iter().all(|s| s.title.as_deref() != Some(second.as_str())), "still open");
    app.wait_for_text("#last-sync", "just now").await;
    // The app logs to its rolling file in the data dir, and never the company key.
    let logs = app.data_dir.path().join("logs");
    let log = wait_for("the enrolment in the log file", Duration::from_secs(10), || {
        let text: String = std::fs::read_dir(&logs)
            .ok()?
            .flatten()
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .collect();
        text.contains("enrolled").then_some(text)
    });
    assert!(!log.contains(server.company_key.expose()), "the company key is in the log");
    app.screenshot("agent-status").await;

    // "Open my dashboard" hands the browser a single-use sign-in link that signs Grace in.
    app.click("#dashboard").await;
    let opened = wait_for("the dashboard link opened", Duration::from_secs(20), || {
        app.opened().into_iter().next()
    });
    let path = format!("{}/signin/{}/", server.base_url, server.company);
    assert!(opened.starts_with(&path), "{opened}");
    let signed_in = worktrail_tests::http().get(&opened).send().await.expect("open the link");
    assert_eq!(signed_in.status(), 303, "the link does not sign in");
    assert_eq!(signed_in.headers()["location"], "/me");
    let again = worktrail_tests::http().get(&opened).send().await.expect("open it again");
    assert_eq!(again.status(), 410, "the link works once");
    assert_eq!(app.text("#action-error").await, "", "the window shows an error");
    let log = std::fs::read_dir(&logs)
        .expect("logs")
        .flatten()
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .collect::<String>();
    assert!(!log.contains(&opened[path.len()..]), "the sign-in link is in the log");
    app.close().await;
    drop(desktop);
}
