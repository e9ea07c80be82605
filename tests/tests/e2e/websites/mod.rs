//! Websites (issue 10): the real extension in a real Chromium under Xvfb + openbox, reporting to
//! the real agent core's loopback listener, joined to the real active window, synced to a port-0
//! server. Durations are checked against the moments the test's own page server served the pages.
//! This module holds the rig; the tests are in `browser` (the real extension in Chromium),
//! `firefox` (the packaged `.xpi` in Firefox ESR), `listener` (the loopback edge and the
//! active-window join) and `package` (the store archives).

mod browser;
mod firefox;
mod listener;
mod package;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use worktrail_agent_core::probe::WindowProbe;
use worktrail_agent_core::websites::site::Family;
use worktrail_agent_core::websites::tabs::TabView;
use worktrail_agent_core::websites::{self, Extensions, Listener};
use worktrail_agent_core::{Clock, SystemClock};
use worktrail_tests::agent::{TestAgent, XDesktop, wait_for};
use worktrail_tests::extension::{self, ExtensionBrowser, PageServer};
use worktrail_tests::{Backend, TestServer};

pub(super) const LOAD: Duration = Duration::from_secs(30);
pub(super) const EXT_ORIGIN: &str = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";

pub(super) fn now() -> i64 {
    SystemClock.now_ms()
}

/// Server, desktop, agent (real X probes, real time) and its listener on port 0.
pub(super) async fn rig() -> (TestServer, XDesktop, TestAgent, Arc<Extensions>, Listener) {
    let server = TestServer::start(Backend::Sqlite).await.expect("server");
    let desktop = tokio::task::spawn_blocking(XDesktop::start).await.expect("desktop");
    let a =
        TestAgent::enrolled(&server, "ada@test.example", desktop.probes(), Arc::new(SystemClock))
            .await;
    let ext = Extensions::of(&a.agent);
    let listener = websites::listen(ext.clone(), 0).await.expect("listen on loopback");
    (server, desktop, a, ext, listener)
}

/// Samples the agent every 200 ms on a thread of its own until [`Sampling::finish`] (a step
/// borrows the agent across awaits, so it runs on a current-thread runtime there).
pub(super) struct Sampling {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<TestAgent>,
}

pub(super) fn sample_in_background(mut a: TestAgent) -> Sampling {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            while !flag.load(Ordering::SeqCst) {
                a.agent.sample_once().await.expect("sample");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            a.agent.capture.stop().await.unwrap();
        });
        a
    });
    Sampling { stop, thread }
}

impl Sampling {
    /// Stops sampling (closing the open spans) and syncs everything.
    async fn finish(self) -> TestAgent {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread;
        let mut a = tokio::task::spawn_blocking(move || thread.join().expect("sampling thread"))
            .await
            .unwrap();
        a.agent.sync_once().await.unwrap();
        assert_eq!(a.agent.status().await.unwrap().queue.records, 0, "everything was synced");
        a
    }
}

/// A website row on the server: domain, url, title, browser, source, start, end.
pub(super) type SiteRow =
    (String, Option<String>, Option<String>, Option<String>, String, i64, i64);

pub(super) async fn site_rows(server: &TestServer) -> Vec<SiteRow> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&server.db.url).await.expect("open the db");
    sqlx::query_as(
        "SELECT domain, url, title, browser, source, start_ms, end_ms FROM website_usage \
         ORDER BY start_ms",
    )
    .fetch_all(&mut conn)
    .await
    .expect("website rows")
}

pub(super) fn total_ms(rows: &[SiteRow], domain: &str) -> i64 {
    rows.iter().filter(|r| r.0 == domain).map(|r| r.6 - r.5).sum()
}

pub(super) fn assert_about(what: &str, got: i64, want: i64) {
    assert!((got - want).abs() <= 2_000, "{what}: {got} ms recorded, {want} ms expected (± 2 s)");
}

/// Waits until the X desktop's active window is titled with `title` (a prefix) and returns when.
pub(super) async fn wait_active(desktop: &XDesktop, title: &str) -> i64 {
    let mut probe = desktop.window_probe();
    let title = title.to_owned();
    tokio::task::spawn_blocking(move || {
        wait_for(&format!("{title:?} to be the active window"), LOAD, || {
            probe.active_window().ok().flatten().filter(|w| w.title.starts_with(&title))
        });
        now()
    })
    .await
    .unwrap()
}

pub(super) async fn launch(
    desktop: &XDesktop,
    ext: &Extensions,
    listener: &Listener,
) -> ExtensionBrowser {
    launch_from(desktop, ext, listener, &extension::extension_source()).await
}

pub(super) async fn launch_from(
    desktop: &XDesktop,
    ext: &Extensions,
    listener: &Listener,
    source: &std::path::Path,
) -> ExtensionBrowser {
    ext.pairings.open_window(now()).unwrap();
    let browser = ExtensionBrowser::launch_from(desktop, listener.addr.port(), source);
    // The extension pairs and says hello before any page is opened.
    let seen = ext.tabs.clone();
    let log = || browser.log();
    tokio::task::spawn_blocking(move || {
        wait_for("the extension's first report", LOAD, || (seen.reports() > 0).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; chromium log:\n{}", log()));
    wait_active(desktop, "about:blank").await;
    browser
}

pub(super) async fn hold_until(ms: i64) {
    // The employee stays on the page: real time has to pass for a real duration.
    let wait = (ms - now()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

pub(super) async fn post(
    url: &str,
    origin: Option<&str>,
    host: Option<&str>,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut req = worktrail_tests::http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(h) = host {
        req = req.header("host", h);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("listener request");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}
