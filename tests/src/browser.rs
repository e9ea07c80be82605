//! A real headless Chromium for the portal's end-to-end tests, driven over WebDriver.
//!
//! Each [`Browser`] owns its own `chromedriver` (on a free port) and a fresh Chromium profile, so
//! tests can run in parallel processes under cargo-nextest without sharing cookies or ports.
//! Dropping it (also when a test panics) kills chromedriver and every Chromium process below it,
//! then removes the profile; [`Browser::close`] ends the WebDriver session politely first.
//!
//! Every wait polls a condition against a deadline ([`WAIT`]); nothing sleeps and hopes. A missing
//! `chromedriver` is a failure, not a skip: `scripts/test` installs Debian's `chromium` and
//! `chromium-driver`.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian `chromium-driver` binary.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The Debian `chromium` launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any wait for the page (an element, a navigation, a condition) may take.
pub const WAIT: Duration = Duration::from_secs(20);
/// How long starting chromedriver and opening the browser session may take. Chromium's first
/// start on a busy machine is the slow step; a session request that never answers must not hang
/// the suite.
const START: Duration = Duration::from_secs(60);
/// The window's size (`--window-size`).
pub const WIDTH: u32 = 1280;
/// See [`WIDTH`].
pub const HEIGHT: u32 = 900;
/// The tallest window [`Browser::screenshot`] grows to for a long page.
pub const MAX_SHOT_HEIGHT: u32 = 6000;
/// Polling period of every wait.
const POLL: Duration = Duration::from_millis(50);

/// Where [`Browser::screenshot`] writes: `<target dir>/portal-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("portal-screenshots")
}

/// A headless Chromium session with its own chromedriver and profile.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Child,
    // Declared after `driver`: removed only after Drop has killed the processes using it.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    ///
    /// Panics (with chromedriver's log) when the driver or the browser does not come up in time.
    pub async fn start() -> Self {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: install Debian's chromium and \
             chromium-driver (scripts/test does)"
        );
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");
        // The free port is found by binding port 0 and releasing it; another process may take it
        // before chromedriver binds, so a driver that exits at start is retried on a new port.
        let mut last_log = String::new();
        for attempt in 1..=3 {
            let log_path = profile.path().join(format!("chromedriver-{attempt}.log"));
            let port = free_port();
            let mut driver = spawn_driver(port, &log_path);
            match wait_until_ready(port, &mut driver).await {
                Ok(()) => {
                    let client = match open_session(port, profile.path()).await {
                        Ok(c) => c,
                        Err(e) => {
                            kill_tree(&mut driver);
                            panic!("{e}\nchromedriver log:\n{}", read_log(&log_path));
                        }
                    };
                    return Self { client, driver, _profile: profile };
                }
                Err(e) => {
                    kill_tree(&mut driver);
                    last_log = format!("{e}\n{}", read_log(&log_path));
                }
            }
        }
        panic!("chromedriver did not start in 3 attempts; last:\n{last_log}");
    }

    /// The underlying WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.wait_loaded().await;
    }

    /// The path of the current URL (`/owner`, `/login`, …).
    pub async fn path(&self) -> String {
        self.client.current_url().await.expect("current url").path().to_owned()
    }

    /// Waits for the current URL's path to be `path`; panics with the page's text otherwise.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected to be at {path} within {WAIT:?}, still at {now}; page text:\n{}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Signs in through the form at `<base_url>/login` and waits for the next page; returns its
    /// path (`/owner`, `/admin`, `/me`, or `/login` again when sign-in failed).
    pub async fn login(&self, base_url: &str, email: &str, password: &str) -> String {
        self.goto(&format!("{base_url}/login")).await;
        self.fill("form#login input[name=email]", email).await;
        self.fill("form#login input[name=password]", password).await;
        self.submit("form#login").await;
        self.path().await
    }

    /// Replaces the value of the input at `css` with `value`, as typed.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input.send_keys(value).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks the submit button of the form at `form_css` and waits until the browser has
    /// loaded the document the server answered with (after any redirects).
    pub async fn submit(&self, form_css: &str) {
        let button = self
            .wait_for(&format!("{form_css} button[type=submit], {form_css} input[type=submit]"))
            .await;
        self.click_and_wait_for_new_page(&button).await;
    }

    /// Clicks `element` and waits until a new document has replaced the current one.
    pub async fn click_and_wait_for_new_page(&self, element: &Element) {
        // A marker on the current window object disappears when a new document loads; this tells
        // "the answer has arrived" apart from "nothing happened yet" without guessing a delay.
        self.client
            .execute("window.__wtOldPage = true;", vec![])
            .await
            .expect("mark the current page");
        element.click().await.expect("click");
        // While the navigation is in flight a script may fail; that counts as "not yet".
        self.wait_for_script(
            "a new page after the click",
            "return window.__wtOldPage !== true && document.readyState === 'complete';",
        )
        .await;
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self.client.wait().at_most(WAIT).every(POLL).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} within {WAIT:?} at {} ({e}); page text:\n{}",
                self.path().await,
                self.body_text().await
            ),
        }
    }

    /// All elements matching `css` now (no waiting).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.expect("find elements")
    }

    /// Whether an element matching `css` is on the page now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The visible text of the element at `css` (waits for it).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("element text")
    }

    /// The value of attribute `name` of the element at `css` (waits for it).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait_for(css).await.attr(name).await.expect("element attribute")
    }

    /// The current value (property) of the form field at `css`.
    pub async fn value(&self, css: &str) -> String {
        self.wait_for(css).await.prop("value").await.expect("field value").unwrap_or_default()
    }

    /// The visible text of the whole page (empty when there is no body).
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits for the text of the element at `css` to contain `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
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

    /// Saves a PNG of the whole page as `<target>/portal-screenshots/<name>.png` and returns its
    /// path. The window is grown to the page's height for the shot (a full-window screenshot,
    /// [`WIDTH`] wide, at most [`MAX_SHOT_HEIGHT`] tall), then set back.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self
            .client
            .execute(
                "return [document.documentElement.scrollHeight, \
                         window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await
            .expect("measure the page");
        let (page, chrome) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
        let tall = u32::try_from(page + chrome).unwrap_or(u32::MAX).clamp(HEIGHT, MAX_SHOT_HEIGHT);
        self.client.set_window_size(WIDTH, tall).await.expect("grow the window");
        self.wait_two_frames().await;
        let png = self.client.screenshot().await.expect("take a screenshot");
        self.client.set_window_size(WIDTH, HEIGHT).await.expect("restore the window");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot of {name} is not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("screenshot of {}: {}", self.path().await, path.display());
        path
    }

    /// Waits two animation frames: the page has been laid out and painted, not just parsed.
    async fn wait_two_frames(&self) {
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await
            .expect("wait for two animation frames");
    }

    /// The browser's cookie `name` for the current page, if it has one.
    pub async fn cookie(&self, name: &str) -> Option<fantoccini::cookies::Cookie<'static>> {
        let all = self.client.get_all_cookies().await.expect("read cookies");
        all.into_iter().find(|c| c.name() == name)
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
        // Drop kills whatever is left and removes the profile.
    }

    async fn wait_loaded(&self) {
        self.wait_for_script("the page to load", "return document.readyState === 'complete';")
            .await;
    }

    /// Runs `script` until it returns `true`; panics naming `what` after [`WAIT`]. A script
    /// error (say, mid-navigation) counts as "not yet".
    async fn wait_for_script(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = self.client.execute(script, vec![]).await;
            if matches!(last, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; last answer {last:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_tree(&mut self.driver);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

fn spawn_driver(port: u16, log_path: &Path) -> Child {
    let log = File::create(log_path).expect("chromedriver log file");
    Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"))
}

/// Polls chromedriver's `/status` until it reports ready; fails early if it exits.
async fn wait_until_ready(port: u16, driver: &mut Child) -> Result<(), String> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("http client");
    let url = format!("http://127.0.0.1:{port}/status");
    let deadline = Instant::now() + START;
    loop {
        if let Some(status) = driver.try_wait().expect("chromedriver status") {
            return Err(format!("chromedriver exited at start ({status}) on port {port}"));
        }
        if let Ok(resp) = http.get(&url).send().await
            && let Ok(body) = resp.json::<Value>().await
            && body["value"]["ready"] == json!(true)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("chromedriver not ready on port {port} within {START:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn open_session(port: u16, profile: &Path) -> Result<Client, String> {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--window-size={WIDTH},{HEIGHT}"),
                format!("--user-data-dir={}", profile.join("chromium").display()),
            ],
        },
    });
    let Value::Object(caps) = caps else { unreachable!("a JSON object literal") };
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps);
    let url = format!("http://127.0.0.1:{port}");
    let connect = builder.connect(&url);
    match tokio::time::timeout(START, connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(format!("open a Chromium session: {e}")),
        Err(_) => Err(format!("no Chromium session within {START:?}")),
    }
}

/// Kills chromedriver and every process below it (Chromium and its helpers).
///
/// They stay in the test's process group, so nextest's own clean-up (Ctrl-C, timeouts) reaches
/// them too; here the tree is found through `/proc` because Chromium outlives a killed driver.
fn kill_tree(driver: &mut Child) {
    let mut pids = descendants(driver.id());
    pids.push(driver.id());
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
}

/// Every live process whose ancestry leads to `root` (Linux `/proc`).
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so parse after the last ')'.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()))
}
