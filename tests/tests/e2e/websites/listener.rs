//! The loopback listener as callers other than the browser see it, the join with the active
//! window, the listener in the running `worktrail-agentd`, and the window-title guess without
//! any extension (browser windows played by xterms with Chromium's window class).

use super::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaired_caller_a_web_page_or_a_rebound_host_is_refused_and_only_the_paired_extension_is_heard()
 {
    let server = TestServer::start(Backend::Sqlite).await.expect("server");
    let (probes, ..) = worktrail_tests::agent::fake_probes();
    let a = TestAgent::enrolled(&server, "ada@test.example", probes, Arc::new(SystemClock)).await;
    let ext = Extensions::of(&a.agent);
    let listener = websites::listen(ext.clone(), 0).await.unwrap();
    assert!(listener.addr.ip().is_loopback(), "the listener binds loopback only");
    let base = format!("http://{}", listener.addr);
    let (pair, tab) = (format!("{base}/v1/pair"), format!("{base}/v1/tab"));
    let report = r#"{"tab":{"url":"https://forged.example/x","title":"forged"}}"#;

    // Unpaired: no token, or a made-up one.
    let (s, body) = post(&tab, Some(EXT_ORIGIN), None, None, report).await;
    assert_eq!((s, body.contains("unpaired")), (401, true), "{body}");
    let (s, _) = post(&tab, Some(EXT_ORIGIN), None, Some(&"0".repeat(64)), report).await;
    assert_eq!(s, 401);
    // No pairing without the employee opening a window.
    let (s, body) = post(&pair, Some(EXT_ORIGIN), None, None, "{}").await;
    assert_eq!((s, body.contains("pairing_closed")), (403, true), "{body}");

    ext.pairings.open_window(now()).unwrap();
    // A web page (its Origin is set by the browser), a caller without Origin, and a DNS
    // rebinding page (Host names its own domain) cannot pair even now.
    for (origin, host, code) in [
        (Some("http://evil.localhost:8000"), None, "bad_origin"),
        (None, None, "bad_origin"),
        (Some(EXT_ORIGIN), Some("evil.example:80"), "bad_host"),
    ] {
        let (s, body) = post(&pair, origin, host, None, "{}").await;
        assert_eq!((s, body.contains(code)), (403, true), "{origin:?} {host:?}: {body}");
    }
    let (s, body) = post(&pair, Some(EXT_ORIGIN), None, None, "{}").await;
    assert_eq!(s, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // The token works only from the origin it was given to, and only with a loopback Host.
    let (s, _) = post(
        &tab,
        Some("chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba"),
        None,
        Some(&token),
        report,
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = post(&tab, Some(EXT_ORIGIN), Some("rebind.example:1"), Some(&token), report).await;
    assert_eq!(s, 403);
    assert_eq!(ext.tabs.reports(), 0, "no refused report reached the agent");
    let (s, body) = post(&tab, Some(EXT_ORIGIN), None, Some(&token), report).await;
    assert_eq!(s, 204, "{body}");
    assert_eq!(ext.tabs.reports(), 1);
    // Forgetting the pairing (another process, e.g. the tray) ends the token at once.
    worktrail_agent_core::websites::pairing::Pairings::new(a.agent.data_dir())
        .forget_all()
        .unwrap();
    let (s, _) = post(&tab, Some(EXT_ORIGIN), None, Some(&token), report).await;
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_reported_while_another_application_is_active_is_not_counted() {
    let (server, mut desktop, a, ext, listener) = rig().await;
    // A window that the probes see as Chromium (class and title as Chromium sets them), and in
    // front of it the application the employee works in.
    let browser_title = "Page gamma - Chromium";
    let fake = desktop
        .command("xterm")
        .args(["-class", "Chromium-browser", "-T", browser_title, "-e", "sleep", "3600"])
        .spawn()
        .expect("start the browser-like window");
    wait_active(&desktop, browser_title).await;
    desktop = tokio::task::spawn_blocking(move || {
        desktop.open_xterm("work");
        desktop
    })
    .await
    .unwrap();
    // Pair as the extension would, then report a tab while "work" is in front.
    ext.pairings.open_window(now()).unwrap();
    let base = format!("http://{}", listener.addr);
    let (_, body) = post(&format!("{base}/v1/pair"), Some(EXT_ORIGIN), None, None, "{}").await;
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let report = r#"{"tab":{"url":"https://gamma.example/doc?id=7","title":"Page gamma"}}"#;
    let (s, _) =
        post(&format!("{base}/v1/tab"), Some(EXT_ORIGIN), None, Some(&token), report).await;
    assert_eq!(s, 204);

    let sampling = sample_in_background(a);
    hold_until(now() + 3_000).await;
    // The browser comes to the front: now, and only now, the reported page counts.
    desktop.xdotool(&["search", "--name", "^Page gamma", "windowactivate", "--sync"]);
    let t_front = wait_active(&desktop, browser_title).await;
    hold_until(t_front + 3_000).await;
    desktop.xdotool(&["search", "--name", "^work$", "windowactivate", "--sync"]);
    let t_back = wait_active(&desktop, "work").await;
    hold_until(t_back + 2_000).await;
    sampling.finish().await;

    let rows = site_rows(&server).await;
    assert_eq!(rows.len(), 1, "one visit, while the browser was in front: {rows:?}");
    let (domain, _, _, _, source, start, end) = &rows[0];
    assert_eq!((domain.as_str(), source.as_str()), ("gamma.example", "extension"));
    assert!(*start >= t_front - 1_000, "not counted before the browser was in front: {rows:?}");
    assert_about("gamma", end - start, t_back - t_front);
    let mut fake = fake;
    let _ = fake.kill();
    let _ = fake.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_agentd_listens_on_its_configured_port_and_pairs_after_pair_browser() {
    use crate::agent_cli::{Running, agentd, enroll, fast_policy, ok, sigterm, wait_for_line};
    let server = TestServer::start(Backend::Sqlite).await.expect("server");
    server.store().set_policy(server.company, &fast_policy()).await.unwrap();
    let desktop = tokio::task::spawn_blocking(XDesktop::start).await.unwrap();
    let title = "Page delta - Chromium";
    let mut fake = desktop
        .command("xterm")
        .args(["-class", "Chromium-browser", "-T", title, "-e", "sleep", "3600"])
        .spawn()
        .expect("start the browser-like window");
    wait_active(&desktop, title).await;
    let dir = tempfile::tempdir().unwrap();
    ok(enroll(&server, dir.path(), "ada@test.example"));
    // The port comes from agent.json.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config_path = dir.path().join("agent.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(config["extension_port"], websites::DEFAULT_PORT, "the default is written");
    config["extension_port"] = port.into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let mut run = Running(
        agentd(dir.path())
            .arg("run")
            .env("DISPLAY", &desktop.display)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = run.0.stderr.take().unwrap();
    tokio::task::spawn_blocking(move || wait_for_line(stderr, "capture started")).await.unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let (s, body) = post(&format!("{base}/v1/pair"), Some(EXT_ORIGIN), None, None, "{}").await;
    assert_eq!((s, body.contains("pairing_closed")), (403, true), "{body}");
    // Another process opens the pairing window for the running agent.
    let said = ok(agentd(dir.path()).arg("pair-browser").output().unwrap());
    assert!(said.contains("pairing open until") && said.contains(&port.to_string()), "{said}");
    let (s, body) = post(&format!("{base}/v1/pair"), Some(EXT_ORIGIN), None, None, "{}").await;
    assert_eq!(s, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let report = r#"{"tab":{"url":"https://delta.example/a/b?c=d","title":"Page delta"}}"#;
    let (s, _) =
        post(&format!("{base}/v1/tab"), Some(EXT_ORIGIN), None, Some(&token), report).await;
    assert_eq!(s, 204);
    let t_report = now();
    hold_until(t_report + 3_000).await;
    sigterm(&run.0);
    assert!(run.0.wait().unwrap().success());
    ok(agentd(dir.path()).arg("sync-now").output().unwrap());

    let rows = site_rows(&server).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (domain, url, _, _, source, start, end) = &rows[0];
    assert_eq!((domain.as_str(), url, source.as_str()), ("delta.example", &None, "extension"));
    assert!(*start >= t_report - 1_000 && end - start >= 2_000, "{rows:?}");
    let _ = fake.kill();
    let _ = fake.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extension_a_browser_title_showing_a_host_gives_a_site_marked_as_a_guess() {
    let (server, desktop, a, _ext, _listener) = rig().await;
    // A browser window (as the probes see Chromium) whose title shows the address, and no
    // extension has ever reported.
    let title = "docs.example.org/guide/intro?lang=en - Chromium";
    let mut fake = desktop
        .command("xterm")
        .args(["-class", "Chromium-browser", "-T", title, "-e", "sleep", "3600"])
        .spawn()
        .expect("start the browser-like window");
    let t_front = wait_active(&desktop, title).await;
    let sampling = sample_in_background(a);
    hold_until(t_front + 3_000).await;
    sampling.finish().await;

    let rows = site_rows(&server).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (domain, url, _, browser, source, start, end) = &rows[0];
    assert_eq!((domain.as_str(), source.as_str()), ("docs.example.org", "title"));
    assert_eq!(url, &None, "a title never gives a URL");
    assert_eq!(browser.as_deref(), Some("Chromium-browser"));
    assert!(end - start >= 2_000, "{rows:?}");
    let _ = fake.kill();
    let _ = fake.wait();
}
