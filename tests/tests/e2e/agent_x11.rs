//! The agent's real X11 probes under Xvfb + openbox, against the real server (issue 3).
//! Each test owns its X server on a free display; the agent is stepped with `sample_once()`.

use std::sync::Arc;
use std::time::Duration;
use worktrail_agent_core::Clock;
use worktrail_agent_core::probe::{IdleProbe, WindowProbe};
use worktrail_shared::api::{BatchRequest, RecordBody};
use worktrail_shared::policy::Policy;
use worktrail_tests::agent::{TestAgent, XDesktop, agent_clock};
use worktrail_tests::{Backend, TestServer};

async fn desktop() -> XDesktop {
    tokio::task::spawn_blocking(XDesktop::start).await.expect("start the X desktop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xterm_window_becomes_an_app_span_with_its_exact_title_on_the_server() {
    let server = TestServer::start(Backend::Sqlite).await.expect("server");
    let mut desktop = desktop().await;
    let title = format!("worktrail e2e {} — naïve ünïcode", uuid::Uuid::now_v7());
    let t = title.clone();
    let desktop = tokio::task::spawn_blocking(move || {
        desktop.open_xterm(&t);
        desktop
    })
    .await
    .unwrap();

    // The probe itself: xterm sets only WM_NAME, and still the exact title comes back.
    let seen = desktop.window_probe().active_window().unwrap().expect("an active window");
    assert_eq!((seen.app.as_str(), seen.title.as_str()), ("XTerm", title.as_str()));
    assert!(seen.pid.is_some(), "xterm sets _NET_WM_PID");

    let clock = agent_clock(&server);
    let mut a =
        TestAgent::enrolled(&server, "ada@test.example", desktop.probes(), Arc::new(clock.clone()))
            .await;
    let start = clock.now_ms();
    for _ in 0..6 {
        clock.advance(1_000);
        a.agent.sample_once().await.unwrap();
    }
    a.agent.capture.stop().await.unwrap();
    let report = a.agent.sync_once().await.unwrap();
    assert!(report.accepted >= 2, "{report:?}");

    let spans = server.store().app_spans(server.company, 0, i64::MAX).await.unwrap();
    let span = spans
        .iter()
        .find(|s| s.title.as_deref() == Some(title.as_str()))
        .unwrap_or_else(|| panic!("no span titled {title:?} on the server: {spans:?}"));
    assert_eq!(span.app, "XTerm");
    assert_eq!((span.start_ms - start, span.end_ms - start), (1_000, 6_000));
    assert_eq!(span.exe.as_deref(), Some("/usr/bin/xterm"));
    let devices = server.store().devices(server.company).await.unwrap();
    let device = devices.iter().find(|d| d.id == a.agent.device_id()).expect("the device row");
    assert_eq!(span.device_id, a.agent.device_id());
    assert_eq!(span.employee_id, device.employee_id);
    let status = a.agent.status().await.unwrap();
    assert_eq!(status.enrollment.unwrap().employee_id, span.employee_id);
    assert_eq!(status.queue.records, 0, "everything acknowledged left the queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xdotool_input_and_its_absence_make_activity_minutes_and_an_idle_span() {
    let server = TestServer::start(Backend::Sqlite).await.expect("server");
    let policy = Policy { idle_threshold_secs: 2, ..Policy::default() };
    server.store().set_policy(server.company, &policy).await.unwrap();
    let mut desktop = desktop().await;
    let desktop = tokio::task::spawn_blocking(move || {
        desktop.open_xterm("activity");
        desktop
    })
    .await
    .unwrap();
    // Real time here: the X server's idle timer is real.
    let mut a = TestAgent::enrolled(
        &server,
        "ada@test.example",
        desktop.probes(),
        Arc::new(worktrail_agent_core::SystemClock),
    )
    .await;
    let status = a.agent.status().await.unwrap();
    assert!(status.capturing);

    // Input: typing into the xterm through XTEST, in three different seconds (activity is
    // counted in whole seconds with input, so real time has to pass between them).
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(1_100)).await;
        }
        desktop.xdotool(&["type", "--delay", "0", "ab"]);
        assert!(desktop.idle_ms() < 1_000, "xdotool input resets the idle timer");
        a.agent.sample_once().await.unwrap();
    }
    // No input: wait (on the real idle timer) past the 2 s threshold, sampling all along.
    let mut idle_probe = desktop.window_probe();
    loop {
        a.agent.sample_once().await.unwrap();
        if idle_probe.idle().unwrap().idle_ms >= 3_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Input again ends the idle span.
    desktop.xdotool(&["mousemove", "100", "100", "mousemove", "200", "200"]);
    a.agent.sample_once().await.unwrap();
    a.agent.capture.stop().await.unwrap();

    // What the agent queued: seconds with input per minute, and one idle span of ≥ 3 s.
    let batch = a.agent.queue().call(|db| db.pending_batch(0)).await.unwrap().expect("a batch");
    let batch: BatchRequest = serde_json::from_slice(&batch.body).unwrap();
    let active: u32 = batch
        .records
        .iter()
        .filter_map(|r| match r.body {
            RecordBody::Activity { active_secs, .. } => Some(u32::from(active_secs)),
            _ => None,
        })
        .sum();
    assert!((2..=10).contains(&active), "seconds with input: {active}");
    let idle: Vec<_> = batch
        .records
        .iter()
        .filter_map(|r| match r.body {
            RecordBody::IdleSpan { start_ms, end_ms } => Some(end_ms - start_ms),
            _ => None,
        })
        .collect();
    assert!(idle.len() == 1 && idle[0] >= 3_000, "idle spans: {idle:?}");

    a.agent.sync_once().await.unwrap();
    let counts = server.store().record_counts(server.company).await.unwrap();
    assert_eq!(counts.idle_spans, 1, "{counts:?}");
    assert!(counts.activity >= 1, "{counts:?}");
    assert!(counts.app_spans >= 1, "{counts:?}");
    assert_eq!(a.agent.status().await.unwrap().queue.records, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_reconnect_when_the_x_server_comes_back() {
    use rand::Rng;
    // A display number far above what `-displayfd` hands to the parallel tests.
    let display = format!(":{}", rand::rng().random_range(600..900));
    let d = display.clone();
    let first = tokio::task::spawn_blocking(move || XDesktop::start_at(&d)).await.unwrap();
    let mut probe = first.window_probe();
    assert!(probe.idle().is_ok());
    drop(first); // the X server goes away (logout, crash)
    assert!(probe.idle().is_err(), "a lost X server is reported");
    assert!(probe.active_window().is_err());

    let d = display.clone();
    let second = tokio::task::spawn_blocking(move || {
        let mut desktop = XDesktop::start_at(&d);
        desktop.open_xterm("after the restart");
        desktop
    })
    .await
    .unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        worktrail_tests::agent::wait_for("the probe to reconnect", Duration::from_secs(20), || {
            probe.active_window().ok().flatten()
        })
    })
    .await
    .unwrap();
    assert_eq!(seen.title, "after the restart");
    second.xdotool(&["mousemove", "10", "10"]);
}
