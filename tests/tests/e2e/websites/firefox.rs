//! The same extension code base in Firefox ESR (the packaged `.xpi`): two pages one after the
//! other, then a private window, with the real agent and server.

use super::*;
use worktrail_tests::extension::firefox::Firefox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_firefox_the_packaged_xpi_reports_two_pages_and_nothing_from_a_private_window() {
    let (server, desktop, a, ext, listener) = rig().await;
    let pages = PageServer::start();
    let packaged = tempfile::tempdir().unwrap();
    let (_, xpi) = extension::package(packaged.path());
    ext.pairings.open_window(now()).unwrap();
    let browser = Firefox::launch(&desktop, listener.addr.port(), &xpi);
    let seen = ext.tabs.clone();
    tokio::task::spawn_blocking(move || {
        wait_for("the Firefox extension's first report", LOAD, || {
            (seen.last_report_ms(Family::Firefox).is_some()).then_some(())
        })
    })
    .await
    .unwrap();
    let sampling = sample_in_background(a);

    browser.open(&pages.url("alpha", "/docs/1?session=abc"));
    pages.wait_served("alpha", "/docs/1?session=abc", LOAD);
    let t_alpha = wait_active(&desktop, "Page alpha").await;
    hold_until(t_alpha + 5_000).await;
    browser.open(&pages.url("beta", "/mail?folder=inbox"));
    pages.wait_served("beta", "/mail?folder=inbox", LOAD);
    let t_beta = wait_active(&desktop, "Page beta").await;
    hold_until(t_beta + 4_000).await;
    browser.open_private(&pages.url("private", "/secret"));
    pages.wait_served("private", "/secret", LOAD);
    let t_private = wait_active(&desktop, "Page private").await;
    hold_until(t_private + 3_000).await;
    sampling.finish().await;

    let rows = site_rows(&server).await;
    assert_about("alpha", total_ms(&rows, "alpha.localhost"), t_beta - t_alpha);
    assert_about("beta", total_ms(&rows, "beta.localhost"), t_private - t_beta);
    for (domain, url, _, browser_app, source, ..) in &rows {
        assert!(domain == "alpha.localhost" || domain == "beta.localhost", "{rows:?}");
        assert_eq!((url, source.as_str()), (&None, "extension"), "{rows:?}");
        assert_eq!(browser_app.as_deref(), Some("firefox-esr"));
    }
    let apps = server.store().app_spans(server.company, 0, i64::MAX).await.unwrap();
    let titles: Vec<_> = apps.iter().filter_map(|s| s.title.as_deref()).collect();
    assert!(!titles.iter().any(|t| t.contains("private")), "a private window's title: {titles:?}");
    drop(browser);
}
