//! The tray app (`worktrail-agent`, issue 4) under WebDriver: `tauri-driver` in front of Debian's
//! `WebKitWebDriver` launches the real app binary on a private X desktop ([`XDesktop`]), and
//! `fantoccini` fills, clicks and reads its window.
//!
//! The app gets its own data dir and `HOME` (autostart writes there), and an unreachable D-Bus,
//! so its secrets go to the documented 0600 file and no keyring or other instance is shared. Its
//! `PATH` starts with an `xdg-open` that only writes down what it was asked to open
//! ([`TrayApp::opened`]), so "Open my dashboard" is checked without a browser.
//! tauri-driver runs in a process group of its own; dropping the fixture (also on a panic) kills
//! that group: driver, WebKitWebDriver, the app and its WebKit processes. Every wait polls a
//! condition against a deadline; nothing sleeps and hopes.

use crate::agent::XDesktop;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use worktrail_agent_core::config::AgentConfig;

/// How long any wait for the window may take.
pub const WAIT: Duration = Duration::from_secs(30);
/// Starting the driver and the app (a webview's first start is slow on a busy machine). Without
/// a usable `DISPLAY` the session request hangs, so it is bounded.
const START: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(50);

/// The app binary: `$WORKTRAIL_AGENT_APP` (scripts/test builds it first), else built here with
/// cargo — a no-op when fresh — so a test never drives a stale app.
pub fn app_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WORKTRAIL_AGENT_APP") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "worktrail-agent", "--bin", "worktrail-agent"])
        .current_dir(&root)
        .status()
        .expect("run cargo build for the tray app");
    assert!(status.success(), "building worktrail-agent failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("debug/worktrail-agent")
}

/// Where [`TrayApp::screenshot`] writes: `<target dir>/agent-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("agent-screenshots")
}

/// `tauri-driver` from `PATH` or cargo's bin dir.
fn tauri_driver() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let in_cargo = home.map(|h| h.join("bin/tauri-driver")).filter(|p| p.exists());
    in_cargo.unwrap_or_else(|| PathBuf::from("tauri-driver"))
}

/// The tray app running on a desktop, its window driven over WebDriver.
#[derive(Debug)]
pub struct TrayApp {
    client: Client,
    _driver: Group,
    /// The app's data dir (`WORKTRAIL_AGENT_DATA_DIR`).
    pub data_dir: tempfile::TempDir,
    _home: tempfile::TempDir,
}

impl TrayApp {
    /// Launches the app on `desktop` with a fresh data dir; its window opens (first run).
    pub async fn start(desktop: &XDesktop) -> Self {
        let app = app_binary();
        assert!(app.exists(), "{} is missing", app.display());
        let data_dir = tempfile::tempdir().expect("data dir");
        // No browser extension listener: the fixed default port belongs to no test.
        let mut config = AgentConfig::load_or_create(data_dir.path()).expect("agent.json");
        config.extension_port = 0;
        config.save(data_dir.path()).expect("save agent.json");
        let home = tempfile::tempdir().expect("home");
        let path = fake_xdg_open(home.path());
        let (port, native) = (free_port(), free_port());
        let log = home.path().join("driver.log");
        let log_file = std::fs::File::create(&log).expect("driver log");
        let driver = Command::new(tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .env("DISPLAY", &desktop.display)
            .env("WORKTRAIL_AGENT_DATA_DIR", data_dir.path())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/worktrail-test-bus")
            .env("WORKTRAIL_LOG", "info")
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start tauri-driver ({e}): scripts/test installs it with cargo install")
            });
        let driver = Group(driver);
        let client = open_session(port, native, &app).await.unwrap_or_else(|e| {
            panic!("{e}\ndriver log:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        Self { client, _driver: driver, data_dir, _home: home }
    }

    /// What the app asked the desktop to open (URLs), oldest first.
    pub fn opened(&self) -> Vec<String> {
        let file = self._home.path().join(OPENED);
        std::fs::read_to_string(file).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The app's `HOME` (its `XDG_CONFIG_HOME` is `<home>/config`).
    pub fn home(&self) -> &Path {
        self._home.path()
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self.client.wait().at_most(WAIT).every(POLL).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} within {WAIT:?} ({e}); window text:\n{}",
                self.text("body").await
            ),
        }
    }

    /// The visible text of the first element matching `css` (empty when there is none).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Replaces the value of the input at `css` with `value`, as typed.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input.send_keys(value).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks the element at `css`.
    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until the element at `css` is shown and its attribute `name` is `value`.
    pub async fn wait_for_attr(&self, css: &str, name: &str, value: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await
                && e.attr(name).await.ok().flatten().as_deref() == Some(value)
                && e.is_displayed().await.unwrap_or(false)
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "{css} did not get {name}={value:?} within {WAIT:?}; window text:\n{}",
                self.text("body").await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the text of the element at `css` contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} did not come to contain {needle:?} within {WAIT:?}; it reads {text:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a PNG of the whole window as `<target>/agent-screenshots/<name>.png` (after two
    /// animation frames, so what is shown has been painted) and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await
            .expect("wait for two animation frames");
        let png = self.client.screenshot().await.expect("take a screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot {name} is not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Ends the WebDriver session (the app is closed), then stops the driver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
    }
}

/// tauri-driver's process group: driver, WebKitWebDriver, the app and its WebKit processes,
/// all killed on drop.
#[derive(Debug)]
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The file the fake `xdg-open` appends to, in the app's `HOME`.
const OPENED: &str = "opened-urls";

/// Writes `<home>/bin/xdg-open`, which appends its argument to `<home>/opened-urls`, and returns a
/// `PATH` that finds it first.
fn fake_xdg_open(home: &Path) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let script = bin.join("xdg-open");
    let opened = home.join(OPENED);
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", opened.display()),
    )
    .expect("write xdg-open");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("PATH")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

async fn open_session(port: u16, native: u16, app: &Path) -> Result<Client, String> {
    // tauri-driver and the WebKitWebDriver it starts listen a moment after they start, and
    // tauri-driver does not wait for the latter before forwarding a session request.
    let deadline = Instant::now() + START;
    for p in [port, native] {
        while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("no WebDriver listening on {p} within {START:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let caps = json!({ "tauri:options": { "application": app } });
    let serde_json::Value::Object(caps) = caps else { unreachable!("a JSON object literal") };
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps);
    match tokio::time::timeout(START, builder.connect(&format!("http://127.0.0.1:{port}"))).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(format!("open a session with the tray app: {e}")),
        Err(_) => Err(format!("no session with the tray app within {START:?}")),
    }
}
