//! The tray app as a process (issue 4), launched directly on a private X desktop with a private
//! D-Bus session bus: a second launch hands over to the first instance, which opens its window,
//! and exits; closing the window restarts the app tray-only (same pid) so no WebKit process
//! outlives the window and the tray shrinks back; enrolment registers autostart at login.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use worktrail_agent_core::config::AgentConfig;
use worktrail_tests::agent::{XDesktop, wait_for};
use worktrail_tests::tray::app_binary;

const WAIT: Duration = Duration::from_secs(60);
const BUS_NAME: &str = "com.worktrail.agent.SingleInstance";

/// A private session bus with no services to activate (so no keyring daemon starts).
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("bus dir");
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>"#,
                socket.display()
            ),
        )
        .expect("bus config");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let address = format!("unix:path={}", socket.display());
        wait_for("the session bus", WAIT, || socket.exists().then_some(()));
        Self { child, address, _dir: dir }
    }

    fn has_owner(&self, name: &str) -> bool {
        let out = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                &format!("string:{name}"),
            ])
            .output()
            .expect("run dbus-send");
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One launch of the app, in a process group of its own (killed with everything it started).
struct Launch(Child);

impl Drop for Launch {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env<'a> {
    desktop: &'a XDesktop,
    bus: &'a Bus,
    data: &'a Path,
    home: &'a Path,
}

impl Env<'_> {
    fn launch(&self, args: &[&str]) -> Launch {
        let child = Command::new(app_binary())
            .args(args)
            .env("DISPLAY", &self.desktop.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env("WORKTRAIL_AGENT_DATA_DIR", self.data)
            .env("HOME", self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("WORKTRAIL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("launch worktrail-agent");
        Launch(child)
    }

    fn log(&self) -> String {
        std::fs::read_dir(self.data.join("logs"))
            .map(|d| d.flatten().filter_map(|f| std::fs::read_to_string(f.path()).ok()).collect())
            .unwrap_or_default()
    }
}

/// The visible windows titled exactly "Worktrail".
fn windows(desktop: &XDesktop) -> Vec<String> {
    let out = desktop
        .command("xdotool")
        .args(["search", "--onlyvisible", "--name", "^Worktrail$"])
        .stdout(Stdio::piped())
        .output()
        .expect("run xdotool");
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

fn window_pid(desktop: &XDesktop, window: &str) -> Option<u32> {
    let out = desktop
        .command("xdotool")
        .args(["getwindowpid", window])
        .stdout(Stdio::piped())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<_>>())
        .collect()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

fn autostart_entry(home: &Path) -> PathBuf {
    home.join(".config/autostart")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_launch_opens_the_first_ones_window_and_closing_it_leaves_no_webkit_behind() {
    let desktop = tokio::task::spawn_blocking(XDesktop::start).await.expect("desktop");
    let bus = Bus::start();
    let data = tempfile::tempdir().expect("data dir");
    let home = tempfile::tempdir().expect("home");
    let mut config = AgentConfig::load_or_create(data.path()).expect("agent.json");
    config.extension_port = 0;
    config.save(data.path()).expect("save agent.json");
    let env = Env { desktop: &desktop, bus: &bus, data: data.path(), home: home.path() };

    // The first instance, tray only: no window, no WebKit process.
    let first = env.launch(&["--tray-only"]);
    let pid = first.0.id();
    wait_for("the first instance to own the single-instance name", WAIT, || {
        bus.has_owner(BUS_NAME).then_some(())
    });
    assert!(windows(&desktop).is_empty(), "a tray-only start opened a window");
    assert!(children(pid).is_empty(), "WebKit runs without a window: {:?}", children(pid));
    assert!(!autostart_entry(home.path()).exists(), "autostart before enrolment");
    let tray_kb = rss_kb(pid);

    // A second launch hands over and exits; the first instance opens its window.
    let mut second = env.launch(&[]);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = second.0.try_wait().expect("wait for the second launch") {
            break s;
        }
        assert!(Instant::now() < deadline, "the second launch did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "the second launch failed: {status}");
    let window = wait_for("the first instance's window", WAIT, || windows(&desktop).pop());
    assert_eq!(window_pid(&desktop, &window), Some(pid), "the window is not the first one's");
    assert_eq!(env.log().matches("worktrail-agent starting").count(), 1, "the second one started");
    wait_for("WebKit's processes for the window", WAIT, || {
        (!children(pid).is_empty()).then_some(())
    });
    let open_kb = rss_kb(pid) + children(pid).iter().map(|c| rss_kb(*c)).sum::<u64>();

    // Closing the window (openbox's Alt+F4 sends WM_DELETE_WINDOW) restarts the app tray-only:
    // the same pid, started afresh, with no WebKit process left.
    // A key pressed while the new window is still settling can be lost: press it again while
    // the window is there.
    let restarted = Instant::now() + WAIT;
    let mut pressed: Option<Instant> = None;
    while env.log().matches("worktrail-agent starting").count() < 2 {
        assert!(Instant::now() < restarted, "the app did not restart; its log:\n{}", env.log());
        if pressed.is_none_or(|p| p.elapsed() > Duration::from_secs(3))
            && windows(&desktop).contains(&window)
        {
            let close = ["windowactivate", "--sync", &window, "key", "--clearmodifiers", "alt+F4"];
            let _ = desktop.command("xdotool").args(close).status();
            pressed = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(env.log().contains("restarting tray-only"));
    assert!(alive(pid), "the app ended instead of restarting");
    let ended = Instant::now() + WAIT;
    while !children(pid).is_empty() {
        let states: Vec<String> = children(pid)
            .iter()
            .map(|c| std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default())
            .collect();
        assert!(Instant::now() < ended, "WebKit processes outlived the window: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(windows(&desktop).is_empty());
    wait_for("the restarted app to own the single-instance name", WAIT, || {
        bus.has_owner(BUS_NAME).then_some(())
    });
    let after_kb = rss_kb(pid);
    assert!(
        after_kb < open_kb / 2 && after_kb < tray_kb * 3 / 2,
        "RSS: tray {tray_kb} kB, with the window {open_kb} kB, after closing it {after_kb} kB"
    );
    drop(second);
    drop(first);
}
