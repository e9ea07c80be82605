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

/// Paints the left and right halves of the screen in two colours (override-redirect windows the
/// window manager leaves alone) and makes each half a RandR monitor of its own.
fn two_monitors_in_two_colours(display: &str, left: u32, right: u32) {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
    use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, WindowClass};
    let (conn, n) = x11rb::connect(Some(display)).expect("connect to the X server");
    let screen = conn.setup().roots[n].clone();
    conn.randr_query_version(1, 5).unwrap().reply().unwrap();
    let half = screen.width_in_pixels / 2;
    for (i, colour) in [left, right].into_iter().enumerate() {
        let x = (half * i as u16) as i16;
        let window = conn.generate_id().unwrap();
        let aux = CreateWindowAux::new().background_pixel(colour).override_redirect(1);
        conn.create_window(
            screen.root_depth,
            window,
            screen.root,
            x,
            0,
            half,
            screen.height_in_pixels,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )
        .unwrap();
        conn.map_window(window).unwrap();
        let name = format!("WORKTRAIL-TEST-{i}");
        let name = conn.intern_atom(false, name.as_bytes()).unwrap().reply().unwrap().atom;
        let monitor = MonitorInfo {
            name,
            primary: i == 0,
            automatic: false,
            x,
            y: 0,
            width: half,
            height: screen.height_in_pixels,
            width_in_millimeters: 300,
            height_in_millimeters: 300,
            outputs: vec![],
        };
        conn.randr_set_monitor(screen.root, monitor).unwrap();
    }
    conn.get_input_focus().unwrap().reply().unwrap(); // everything above has been processed
    // The windows live as long as the connection: keep it open for the rest of the test.
    std::mem::forget(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_probe_captures_each_randr_monitor_with_its_true_colours() {
    use worktrail_agent_core::probe::ScreenProbe as _;
    use worktrail_agent_core::probe::x11_screen::X11ScreenProbe;
    use x11rb::protocol::randr::ConnectionExt as _;
    let (left, right) = ([0x20, 0x60, 0xa0], [0xc0, 0x30, 0x10]);
    let pixel = |[r, g, b]: [u8; 3]| u32::from_be_bytes([0, r, g, b]);
    let desktop = desktop().await;
    let display = desktop.display.clone();
    tokio::task::spawn_blocking(move || {
        two_monitors_in_two_colours(&display, pixel(left), pixel(right));
        // What RandR lists, in its order: the probe returns one image per entry, in this order.
        let (conn, n) = x11rb::connect(Some(&display)).unwrap();
        let root = x11rb::connection::Connection::setup(&conn).roots[n].root;
        conn.randr_query_version(1, 5).unwrap().reply().unwrap();
        let monitors = conn.randr_get_monitors(root, true).unwrap().reply().unwrap().monitors;
        let halves = monitors.iter().filter(|m| m.width == 640 && m.height == 800).count();
        assert_eq!(halves, 2, "the two test monitors: {monitors:?}");

        let images = X11ScreenProbe::new(Some(&display)).capture_all().expect("a capture");
        assert_eq!(images.len(), monitors.len());
        for (img, m) in images.iter().zip(&monitors) {
            assert_eq!((img.width(), img.height()), (u32::from(m.width), u32::from(m.height)));
            for (x, y) in [(0, 0), (m.width / 2, m.height / 2), (m.width - 1, m.height - 1)] {
                let on_screen = i32::from(m.x) + i32::from(x);
                let [r, g, b] = if on_screen < 640 { left } else { right };
                let got = img.get_pixel(u32::from(x), u32::from(y)).0;
                assert_eq!(got, [r, g, b, 255], "monitor at {},{} pixel {x},{y}", m.x, m.y);
            }
        }
    })
    .await
    .unwrap();
}
