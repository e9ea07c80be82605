//! A real S3-compatible server for tests: `moto` (from PyPI) in server mode on a loopback port,
//! one process per test. It is installed into a virtualenv under `~/.cache/worktrail/moto` on
//! first use (scripts/test does the same up front), so a fresh machine needs only Python.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the virtualenv lives (`WORKTRAIL_MOTO_VENV` overrides).
fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("WORKTRAIL_MOTO_VENV") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache/worktrail/moto")
}

/// The virtualenv's `python` with moto installed, installing it first if needed. The install
/// goes to a fresh directory renamed into place only once pip succeeded, so tests installing at
/// once never see half a virtualenv.
fn moto_python() -> PathBuf {
    let venv = venv();
    let python = venv.join("bin/python");
    if venv.join("bin/moto_server").exists() {
        return python;
    }
    let parent = venv.parent().expect("venv has a parent");
    std::fs::create_dir_all(parent).expect("create the cache directory");
    let staging = parent.join(format!(".moto-{}", uuid::Uuid::now_v7().simple()));
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
        assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&staging));
    run(Command::new(staging.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "moto[server]",
    ]));
    // Console scripts hold the staging path in their shebang: moto runs through the venv's
    // python as a module instead (see `start`), which survives the rename.
    if std::fs::rename(&staging, &venv).is_err() {
        // Another test won the race; use its install.
        let _ = std::fs::remove_dir_all(&staging);
    }
    python
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits until it answers.
    pub async fn start() -> Self {
        let python = tokio::task::spawn_blocking(moto_python).await.expect("install moto");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = http.get(format!("{}/moto-api/", moto.endpoint)).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// Creates a bucket (a plain path-style `PUT /bucket`).
    pub async fn create_bucket(&self, bucket: &str) {
        let resp = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(resp.status().is_success(), "create bucket: {}", resp.status());
    }
}
