//! Agent-side fixtures (issue 3): a real X desktop (Xvfb + openbox) per test, and an in-process
//! agent core enrolled against a [`crate::TestServer`].
//!
//! Every desktop picks its own free display (`Xvfb -displayfd`), so tests run in parallel; the
//! processes are killed when the fixture drops. Waits poll a condition with a deadline — they
//! never sleep a fixed time and hope.

use crate::TestServer;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worktrail_agent_core::agent::{Agent, Probes};
use worktrail_agent_core::probe::fake::{FakeIdle, FakeWindow};
use worktrail_agent_core::probe::x11::X11Desktop;
use worktrail_agent_core::probe::{IdleProbe, WindowProbe};
use worktrail_agent_core::secrets::{MemoryStore, Secrets};
use worktrail_agent_core::{Clock, ManualClock};

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A private X desktop: Xvfb on a free display with openbox managing it.
#[derive(Debug)]
pub struct XDesktop {
    /// `:N`.
    pub display: String,
    processes: Vec<Child>,
    home: Option<tempfile::TempDir>,
}

impl XDesktop {
    /// Starts Xvfb (1280×800) on a free display and openbox, and waits until both serve.
    pub fn start() -> Self {
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install xvfb)");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().expect("Xvfb stdout"))
            .read_line(&mut line)
            .expect("Xvfb reports its display");
        let display = format!(":{}", line.trim());
        assert!(display.len() > 1, "Xvfb did not report a display");
        Self::serve(display, xvfb)
    }

    /// Starts Xvfb on the given display (`:N`; pick N far above the numbers `-displayfd`
    /// hands out, so parallel tests cannot take it) and openbox.
    pub fn start_at(display: &str) -> Self {
        let xvfb = Command::new("Xvfb")
            .args([display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install xvfb)");
        Self::serve(display.to_owned(), xvfb)
    }

    fn serve(display: String, xvfb: Child) -> Self {
        let mut desktop = Self { display, processes: vec![xvfb], home: None };
        wait_for("the X server", Duration::from_secs(20), || {
            X11Desktop::connect(Some(&desktop.display)).ok()
        });
        desktop.start_openbox();
        desktop
    }

    /// Starts openbox with its own config/cache dirs (instances starting at the same moment
    /// must not share them) and waits until it manages the screen; an openbox that exits while
    /// starting is started again, up to three times.
    fn start_openbox(&mut self) {
        let home = tempfile::tempdir().expect("temp dir");
        for attempt in 1..=3 {
            let log = tempfile::NamedTempFile::new().expect("temp file");
            let wm = self
                .command("openbox")
                .arg("--sm-disable")
                .env("HOME", home.path())
                .env("XDG_CONFIG_HOME", home.path().join("config"))
                .env("XDG_CACHE_HOME", home.path().join("cache"))
                .env("XDG_DATA_HOME", home.path().join("data"))
                .stderr(log.reopen().expect("reopen log"))
                .spawn()
                .expect("start openbox");
            self.processes.push(wm);
            let managed = wait_for("openbox to manage the screen", Duration::from_secs(20), || {
                if let Some(status) = self.processes.last_mut()?.try_wait().ok().flatten() {
                    let log = std::fs::read_to_string(log.path()).unwrap_or_default();
                    return Some(Err(format!("openbox exited ({status}): {log}")));
                }
                let out = self
                    .command("xprop")
                    .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
                    .stdout(Stdio::piped())
                    .output()
                    .ok()?;
                String::from_utf8_lossy(&out.stdout).contains("window id").then_some(Ok(()))
            });
            match managed {
                Ok(()) => {
                    self.home = Some(home);
                    return;
                }
                Err(e) if attempt < 3 => {
                    self.processes.pop();
                    eprintln!("attempt {attempt}: {e}; starting openbox again");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// A command with `DISPLAY` set to this desktop and quiet output.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    /// Opens an xterm titled `title` showing a screenful of text, and waits until it is the
    /// active window.
    pub fn open_xterm(&mut self, title: &str) {
        let text = "yes 'The quick brown fox jumps over the lazy dog 0123456789 ~!@#' | head -n 80; exec sleep 3600";
        let child = self
            .command("xterm")
            .args(["-T", title, "-geometry", "200x60+0+0", "-e", "sh", "-c", text])
            .spawn()
            .expect("start xterm");
        self.processes.push(child);
        let mut probe = self.window_probe();
        wait_for(&format!("xterm {title:?} to be active"), Duration::from_secs(20), || {
            probe.active_window().ok().flatten().filter(|w| w.title == title)
        });
    }

    /// Runs `xdotool` with `args` on this desktop (real input through XTEST).
    pub fn xdotool(&self, args: &[&str]) {
        let status = self.command("xdotool").args(args).status().expect("run xdotool");
        assert!(status.success(), "xdotool {args:?} failed");
    }

    /// A window probe on this desktop.
    pub fn window_probe(&self) -> X11Desktop {
        X11Desktop::connect(Some(&self.display)).expect("connect to the X server")
    }

    /// Real probes on this desktop (window and idle; no screenshots — those are tested through
    /// the agent binary and the screen probe itself).
    pub fn probes(&self) -> Probes {
        Probes {
            window: Box::new(self.window_probe()),
            idle: Box::new(self.window_probe()),
            screen: None,
        }
    }

    /// Current idle time of this desktop.
    pub fn idle_ms(&self) -> u64 {
        self.window_probe().idle().expect("idle time").idle_ms
    }
}

impl Drop for XDesktop {
    fn drop(&mut self) {
        // SIGTERM first, so Xvfb removes its lock file and socket; SIGKILL what lingers.
        for p in self.processes.iter_mut().rev() {
            let _ = Command::new("kill").args(["-TERM", &p.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while p.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// An agent core running in the test process, with its own data dir and in-memory secrets.
#[derive(Debug)]
pub struct TestAgent {
    /// The agent.
    pub agent: Agent,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
    /// Its data dir.
    pub dir: tempfile::TempDir,
}

/// Fake probes and the handles that steer them.
pub fn fake_probes() -> (Probes, FakeWindow, FakeIdle) {
    let (window, idle) = (FakeWindow::default(), FakeIdle::default());
    let probes =
        Probes { window: Box::new(window.clone()), idle: Box::new(idle.clone()), screen: None };
    (probes, window, idle)
}

impl TestAgent {
    /// Opens an agent over `probes` with `clock`, enrolled with `server`'s company as `email`.
    pub async fn enrolled(
        server: &TestServer,
        email: &str,
        probes: Probes,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut agent = Self::open_in(dir.path(), probes, clock.clone());
        agent
            .enroll(&server.base_url, server.company_key.clone(), Some(email.into()))
            .await
            .expect("the agent enrols");
        Self { agent, clock, dir }
    }

    fn open_in(dir: &Path, probes: Probes, clock: Arc<dyn Clock>) -> Agent {
        let secrets = Secrets(Arc::new(MemoryStore::default()));
        Agent::open(dir, secrets, probes, clock).expect("open the agent")
    }
}

/// A manual agent clock starting at the server's time.
pub fn agent_clock(server: &TestServer) -> ManualClock {
    use worktrail_server::clock::Clock as _;
    ManualClock::at(server.clock.now_ms())
}
