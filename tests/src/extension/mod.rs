//! The browser-extension fixtures (issue 10): Debian's Chromium, headed on an [`XDesktop`], with
//! the unpacked extension from `ui/browser-extension` loaded (`--load-extension`), and a loopback
//! page server whose pages the browser opens.
//!
//! The extension is copied to a temp dir with only its `agent.json` (the agent's port) rewritten,
//! so tests run in parallel against agents on port 0. Pages are opened the way a desktop does it:
//! a second `chromium` call with the same profile hands the URL to the running browser. Dropping
//! the fixture kills the browser's whole process group. Waits poll against a deadline.

pub mod firefox;

use crate::agent::XDesktop;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Chromium binary itself (the `/usr/bin/chromium` wrapper would add the system's flags).
pub const CHROMIUM_BIN: &str = "/usr/lib/chromium/chromium";

/// The extension's source folder.
pub fn extension_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/browser-extension")
}

/// A headed Chromium with the Worktrail extension, on one X desktop.
#[derive(Debug)]
pub struct ExtensionBrowser {
    display: String,
    browser: Child,
    /// The profile and the extension copy.
    dir: tempfile::TempDir,
}

fn chromium(display: &str, profile: &Path) -> Command {
    let mut c = Command::new(CHROMIUM_BIN);
    c.env("DISPLAY", display)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--no-sandbox", "--password-store=basic"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

impl ExtensionBrowser {
    fn chromium(&self) -> Command {
        chromium(&self.display, &self.dir.path().join("profile"))
    }

    /// Starts Chromium on `desktop` with the extension's source folder set to report to the
    /// agent on `agent_port`, showing `about:blank`.
    pub fn launch(desktop: &XDesktop, agent_port: u16) -> Self {
        Self::launch_from(desktop, agent_port, &extension_source())
    }

    /// As [`ExtensionBrowser::launch`], with the unpacked extension in `source` (e.g. a package
    /// made by `scripts/package-extension`, unzipped).
    pub fn launch_from(desktop: &XDesktop, agent_port: u16, source: &Path) -> Self {
        assert!(
            Path::new(CHROMIUM_BIN).exists(),
            "{CHROMIUM_BIN} missing: apt-get install chromium"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let ext = dir.path().join("extension");
        copy_dir(source, &ext);
        std::fs::write(ext.join("agent.json"), format!("{{ \"port\": {agent_port} }}\n"))
            .expect("write agent.json");
        let log = std::fs::File::create(dir.path().join("chromium.log")).expect("log");
        let browser = chromium(&desktop.display, &dir.path().join("profile"))
            .arg(format!("--load-extension={}", ext.display()))
            .arg(format!("--disable-extensions-except={}", ext.display()))
            .args([
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-position=0,0",
                "--window-size=1200,780",
                "about:blank",
            ])
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start chromium");
        Self { display: desktop.display.clone(), browser, dir }
    }

    /// Opens `url` in a new tab of the running browser (as a desktop's "open link" does).
    pub fn open(&self, url: &str) {
        let status = self.chromium().arg(url).status().expect("run chromium");
        assert!(status.success(), "chromium {url} failed");
    }

    /// Opens `url` in a new incognito window of the running browser.
    pub fn open_incognito(&self, url: &str) {
        let status = self.chromium().args(["--incognito", url]).status().expect("run chromium");
        assert!(status.success(), "chromium --incognito {url} failed");
    }

    /// Chromium's stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for ExtensionBrowser {
    fn drop(&mut self) {
        let group = format!("-{}", self.browser.id());
        for signal in ["-TERM", "-KILL"] {
            let _ =
                Command::new("kill").args([signal, "--", &group]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.browser.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.browser.wait();
    }
}

/// Runs `scripts/package-extension` into `out`; returns the Chrome zip and the Firefox xpi.
pub fn package(out: &Path) -> (PathBuf, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/package-extension");
    let output = Command::new("bash").arg(script).arg(out).output().expect("run the packager");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let made: Vec<PathBuf> =
        String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from).collect();
    let find = |end: &str| {
        made.iter()
            .find(|p| p.to_string_lossy().ends_with(end))
            .cloned()
            .unwrap_or_else(|| panic!("no *{end} among {made:?}"))
    };
    (find("-chrome.zip"), find("-firefox.xpi"))
}

/// The files in a zip archive (`unzip -Z1`), sorted.
pub fn archive_files(archive: &Path) -> Vec<String> {
    let out = Command::new("unzip").arg("-Z1").arg(archive).output().expect("run unzip");
    assert!(out.status.success(), "unzip -Z1 {}", archive.display());
    let mut files: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    files.sort();
    files
}

/// Unpacks `archive` into `dir`.
pub fn unpack(archive: &Path, dir: &Path) {
    let status = Command::new("unzip")
        .arg("-q")
        .arg(archive)
        .arg("-d")
        .arg(dir)
        .status()
        .expect("run unzip");
    assert!(status.success(), "unzip {}", archive.display());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read extension dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// A loopback HTTP server answering every `GET` with a small page titled `Page <first label of
/// the Host>`, and remembering which `host path` it served, in order.
#[derive(Clone, Debug)]
pub struct PageServer {
    /// Its port on 127.0.0.1 (pages are reached as `http://<name>.localhost:<port>/…`).
    pub port: u16,
    served: Arc<Mutex<Vec<String>>>,
}

impl PageServer {
    /// Starts serving on a free loopback port (a thread per connection).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("addr").port();
        let served = Arc::new(Mutex::new(Vec::new()));
        let log = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve_one(stream, &log));
            }
        });
        Self { port, served }
    }

    /// `http://<name>.localhost:<port><path>`.
    pub fn url(&self, name: &str, path: &str) -> String {
        format!("http://{name}.localhost:{}{path}", self.port)
    }

    /// Waits until the page `<name>.localhost…<path>` has been served.
    pub fn wait_served(&self, name: &str, path: &str, timeout: Duration) {
        let want = format!("{name}.localhost:{} {path}", self.port);
        crate::agent::wait_for(&format!("the browser to load {want}"), timeout, || {
            self.served.lock().expect("lock").contains(&want).then_some(())
        });
    }
}

fn serve_one(mut stream: std::net::TcpStream, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let host = head
        .lines()
        .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
        .unwrap_or("")
        .trim()
        .to_owned();
    log.lock().expect("lock").push(format!("{host} {path}"));
    let name = host.split('.').next().unwrap_or("page");
    let body = format!("<!doctype html><title>Page {name}</title><p>{name}</p>");
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}
