//! The real extension in a real Chromium: two pages one after the other, and a private window.

use super::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_opened_one_after_the_other_become_domain_only_spans_with_their_durations() {
    let (server, mut desktop, a, ext, listener) = rig().await;
    let pages = PageServer::start();
    // The extension as shipped: packaged by the README's script, unpacked, loaded.
    let packaged = tempfile::tempdir().unwrap();
    let (chrome_zip, _) = extension::package(packaged.path());
    let unpacked = packaged.path().join("unpacked");
    extension::unpack(&chrome_zip, &unpacked);
    let browser = launch_from(&desktop, &ext, &listener, &unpacked).await;
    let sampling = sample_in_background(a);

    browser.open(&pages.url("alpha", "/reports/q3?token=s3cret#top"));
    pages.wait_served("alpha", "/reports/q3?token=s3cret", LOAD);
    let t_alpha = wait_active(&desktop, "Page alpha").await;
    hold_until(t_alpha + 6_000).await;
    browser.open(&pages.url("beta", "/inbox/42?q=private+words"));
    pages.wait_served("beta", "/inbox/42?q=private+words", LOAD);
    let t_beta = wait_active(&desktop, "Page beta").await;
    hold_until(t_beta + 4_000).await;
    // Another application takes the focus: the browser's time ends.
    desktop = tokio::task::spawn_blocking(move || {
        desktop.open_xterm("elsewhere");
        desktop
    })
    .await
    .unwrap();
    let t_away = now();
    hold_until(t_away + 1_500).await;
    sampling.finish().await;

    let rows = site_rows(&server).await;
    let (alpha, beta) = ("alpha.localhost".to_owned(), "beta.localhost".to_owned());
    assert_about("alpha", total_ms(&rows, &alpha), t_beta - t_alpha);
    assert_about("beta", total_ms(&rows, &beta), t_away - t_beta);
    for (domain, url, title, browser_app, source, ..) in &rows {
        assert!(domain == &alpha || domain == &beta, "only the two sites: {rows:?}");
        assert_eq!(url, &None, "the default policy keeps no URL: {rows:?}");
        assert!(!domain.contains(['/', '?', ':']), "a bare host name: {domain}");
        assert_eq!(source, "extension");
        assert_eq!(browser_app.as_deref(), Some("Chromium-browser"));
        // While a page loads, the browser titles it with its address; that title is not kept
        // (the policy keeps no URL), so such a moment has no title.
        let t = title.as_deref().unwrap_or("");
        assert!(t.is_empty() || t == "Page alpha" || t == "Page beta", "page title: {t:?}");
    }
    let text = format!("{rows:?}");
    for secret in ["s3cret", "reports", "inbox", "private", "#top"] {
        assert!(!text.contains(secret), "{secret:?} reached the server: {text}");
    }
    // The employee's own day in the portal lists both as top sites, by domain.
    let logins = server.seed_logins().await;
    let me = server.signed_in(&logins.employee).await;
    let date = jiff::Timestamp::from_millisecond(t_alpha).unwrap().strftime("%Y-%m-%d");
    let resp = me.get(server.url(&format!("/api/v1/me/day?date={date}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let day: serde_json::Value = resp.json().await.unwrap();
    let top: Vec<_> = day["top_sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap().to_owned(), t["secs"].as_i64().unwrap()))
        .collect();
    assert!(top.iter().any(|(k, s)| k == "alpha.localhost" && *s >= 4), "{top:?}");
    assert!(top.iter().any(|(k, s)| k == "beta.localhost" && *s >= 2), "{top:?}");
    drop(browser);
    drop(desktop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incognito_window_sends_nothing_and_its_time_goes_to_no_site() {
    let (server, desktop, a, ext, listener) = rig().await;
    let pages = PageServer::start();
    let browser = launch(&desktop, &ext, &listener).await;
    let sampling = sample_in_background(a);

    browser.open(&pages.url("alpha", "/"));
    pages.wait_served("alpha", "/", LOAD);
    let t_alpha = wait_active(&desktop, "Page alpha").await;
    hold_until(t_alpha + 3_000).await;
    browser.open_incognito(&pages.url("incognito", "/hidden?who=me"));
    pages.wait_served("incognito", "/hidden?who=me", LOAD);
    let t_private = wait_active(&desktop, "Page incognito").await;
    // While the private window is in front, the extension has nothing to say but "nothing".
    let tabs = ext.tabs.clone();
    for _ in 0..20 {
        let view = tabs.current(Family::Chromium, now());
        assert!(
            matches!(view, TabView::Nothing),
            "in front of a private window the agent knows of no tab, not {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t_end = now();
    sampling.finish().await;

    let rows = site_rows(&server).await;
    assert!(
        rows.iter().all(
            |r| !format!("{r:?}").contains("incognito") && !format!("{r:?}").contains("hidden")
        ),
        "nothing of the private window: {rows:?}"
    );
    // Nor is the private window's title (its page's title) kept in the app spans.
    let apps = server.store().app_spans(server.company, 0, i64::MAX).await.unwrap();
    let titles: Vec<_> = apps.iter().filter_map(|s| s.title.as_deref()).collect();
    assert!(
        titles.iter().any(|t| t.starts_with("Page alpha")),
        "the normal window's title is kept: {titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.contains("incognito")),
        "a private window's title: {titles:?}"
    );
    // Its time went to no site: alpha's span ended when the private window took the focus.
    assert_about("alpha", total_ms(&rows, "alpha.localhost"), t_private - t_alpha);
    assert!(t_end - t_private >= 4_000, "the private window was in front for a while");
    // Heartbeats during that time (if any) said "nothing" too.
    assert!(matches!(tabs.current(Family::Chromium, now()), TabView::Nothing));
    drop(browser);
}
