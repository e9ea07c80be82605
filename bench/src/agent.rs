//! `agent`: the headless agent (`worktrail-agentd run`) — or with `--tray` the tray app
//! (`worktrail-agent --tray-only`, no window, on a private D-Bus session bus as on a desktop) —
//! tracking a scripted desktop session on its own X desktop (Xvfb + openbox, three xterms titled
//! like real apps, a window switch every 2–8 s through `xdotool`, typing after half of the
//! switches) against a bench-started server with the default policy (sample every 1 s, sync
//! every 60 s, a screenshot every 600 s). Either is enrolled beforehand with `worktrail-agentd
//! enroll`, so the tray app starts tracking at once and opens no window.
//!
//! The agent's figures come from `/proc`: CPU = utime + stime over the measured window; RSS
//! sampled every second (VmRSS) and its peak (VmHWM, since start); wake-ups = voluntary +
//! involuntary context switches summed over every thread seen (each thread's last reading,
//! so a thread's switches after its last sample before it exits are missed); disk =
//! `write_bytes` of `/proc/PID/io`. Upload = bytes the agent sent over TCP to the server,
//! counted by a relay in this process between the two (HTTP headers and bodies).

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Db;
use crate::server::{Prepared, company};
use crate::stats::cpu_time;

/// The goals (SPEC 5): average CPU of one core (headless agent and tray app), and the headless
/// agent's RSS (the tray app's memory goal is relative to a bare Tauri tray app:
/// `scripts/measure-tray-rss`).
const CPU_GOAL_PERCENT: f64 = 0.3;
const RSS_GOAL_MB: f64 = 30.0;
/// Seconds after `run` starts before measuring (start-up: policy fetch, first samples).
const SETTLE_SECS: u64 = 5;

/// The windows of the scripted session: xterms titled like the apps they stand for.
const WINDOWS: [&str; 3] = [
    "invoice-api.rs - acme - Visual Studio Code",
    "Inbox (3) - Thunderbird",
    "PR #4412 - acme/billing - Mozilla Firefox",
];

/// Child processes killed (SIGTERM, then SIGKILL) when dropped, newest first.
#[derive(Default)]
struct Children(Vec<Child>);

impl Children {
    fn push(&mut self, c: Child) {
        self.0.push(c);
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            stop(c);
        }
    }
}

/// SIGTERM, up to 5 s to exit, then SIGKILL.
fn stop(c: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Polls `f` every 100 ms until it returns `Some`, for up to `secs`.
fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A command on the display `display`, output discarded.
fn on(display: &str, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("DISPLAY", display).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Starts Xvfb (1280×800, a free display), openbox and the session's xterms; returns the
/// display and the xterms' window ids.
fn desktop(children: &mut Children, home: &Path) -> Result<(String, Vec<String>)> {
    let mut xvfb = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xvfb")?;
    let mut line = String::new();
    BufReader::new(xvfb.stdout.take().context("Xvfb stdout")?).read_line(&mut line)?;
    children.push(xvfb);
    let display = format!(":{}", line.trim());
    children.push(
        on(&display, "openbox")
            .arg("--sm-disable")
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .spawn()
            .context("starting openbox")?,
    );
    wait_for("openbox", 20, || {
        let out = on(&display, "xprop")
            .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
            .stdout(Stdio::piped())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).contains("window id").then_some(())
    })?;
    let mut ids = Vec::new();
    for (i, title) in WINDOWS.iter().enumerate() {
        let text = "yes 'The quick brown fox jumps over the lazy dog 0123456789' | head -n 60; \
                    exec cat >/dev/null";
        let geometry = format!("160x48+{}+{}", 40 * i, 30 * i);
        children.push(
            on(&display, "xterm")
                .args(["-T", title, "-geometry", &geometry, "-e", "sh", "-c", text])
                .spawn()
                .context("starting xterm")?,
        );
        let id = wait_for(&format!("xterm {title:?}"), 20, || {
            let out = on(&display, "xdotool")
                .args(["search", "--name", &format!("^{}$", regex_escape(title))])
                .stdout(Stdio::piped())
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned)
        })?;
        ids.push(id);
    }
    Ok((display, ids))
}

/// Escapes the regex metacharacters `xdotool search` would read in a title.
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// The scripted user: a window switch every 2–8 s, typing after half of them, until `stop`.
fn script(display: String, windows: Vec<String>, stop: Arc<AtomicBool>, switches: Arc<AtomicU64>) {
    let mut rng = StdRng::seed_from_u64(11);
    let mut current = 0;
    while !stop.load(Ordering::Relaxed) {
        let pause = Duration::from_millis(rng.random_range(2_000..8_000));
        let until = Instant::now() + pause;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        current = (current + rng.random_range(1..windows.len())) % windows.len();
        let _ = on(&display, "xdotool").args(["windowactivate", &windows[current]]).status();
        switches.fetch_add(1, Ordering::Relaxed);
        if rng.random_bool(0.5) {
            let _ = on(&display, "xdotool").args(["type", "--delay", "60", "hello "]).status();
        }
    }
}

/// Starts a private D-Bus session bus with no services to activate (so no keyring daemon: the
/// agent keeps its secrets in its 0600 file, as `scripts/measure-tray-rss` runs it) and returns
/// its address.
fn session_bus(children: &mut Children, dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let socket = dir.join("socket");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n              \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig><type>session</type><listen>unix:path={}</listen>\n\
             <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
             <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy>\n</busconfig>\n",
            socket.display()
        ),
    )?;
    children.push(
        Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting dbus-daemon")?,
    );
    wait_for("the session bus", 10, || socket.exists().then_some(()))?;
    Ok(format!("unix:path={}", socket.display()))
}

/// The child processes of `pid` (the tray app has none while no window is open).
fn children_of(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .map(|c| c.split_whitespace().count())
        .sum()
}

/// A TCP relay from a local port to `to`, counting the bytes sent each way.
struct Relay {
    addr: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

async fn relay(to: String) -> Result<Relay> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("http://{}", listener.local_addr()?);
    let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (u, d) = (up.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((agent, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&to).await else { continue };
            let _ = (agent.set_nodelay(true), server.set_nodelay(true));
            let (ar, aw) = agent.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(ar, sw, u.clone()));
            tokio::spawn(pump(sr, aw, d.clone()));
        }
    });
    Ok(Relay { addr, up, down })
}

/// A `Key: value kB`-style field of `/proc/PID/status` (or any such file), as a number.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A text field of `/proc/PID/status`.
fn field_text(text: &str, key: &str) -> String {
    text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("").trim().to_owned()
}

/// `write_bytes` of `/proc/PID/io`.
fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| field(&t, "write_bytes:"))
        .unwrap_or(0)
}

/// Each thread's name and voluntary + involuntary context switches now, by thread id.
fn switches(pid: u32, seen: &mut HashMap<String, (String, u64)>) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return };
    for t in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(t.path().join("status")) else { continue };
        let n = field(&status, "voluntary_ctxt_switches:").unwrap_or(0)
            + field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
        let name = field_text(&status, "Name:");
        seen.insert(t.file_name().to_string_lossy().into_owned(), (name, n));
    }
}

/// Which agent runs: the headless one, or the tray app (`--tray`).
#[derive(Clone, Debug)]
pub enum App {
    /// `worktrail-agentd run`.
    Headless,
    /// `worktrail-agent --tray-only`, this binary.
    Tray(PathBuf),
}

/// Runs the scenario for `seconds` of measured tracking and prints its figures. `agentd` enrols
/// (and, headless, runs) the agent.
pub async fn run(seconds: u64, agentd: Option<PathBuf>, app: App) -> Result<()> {
    let agentd = match agentd {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("worktrail-agentd"),
    };
    anyhow::ensure!(
        agentd.exists(),
        "{} not found: cargo build --release -p worktrail-agent-core (or pass --agentd)",
        agentd.display()
    );
    if let App::Tray(tray) = &app {
        anyhow::ensure!(
            tray.exists(),
            "{} not found: cargo build --release -p worktrail-agent (or pass --tray-app)",
            tray.display()
        );
    }
    let prepared = Prepared::new(Db::Sqlite).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let store = prepared.store().await?;
    let (_, key) = company(store.as_ref(), "Agent Co", now).await?;
    store.close().await;
    let server = prepared.spawn()?;
    let relay = relay(server.base.trim_start_matches("http://").to_owned()).await?;

    let work = tempfile::tempdir()?;
    let home = work.path().join("home");
    std::fs::create_dir_all(&home)?;
    let mut children = Children::default();
    let (display, windows) = desktop(&mut children, &home)?;
    // The headless agent runs without a session bus (the keyring fails over to its file); the
    // tray app gets one, as on a desktop.
    let bus = match app {
        App::Headless => "unix:path=/nonexistent/worktrail-bench-bus".to_owned(),
        App::Tray(_) => session_bus(&mut children, &work.path().join("bus"))?,
    };
    let agent_env = |c: &mut Command| {
        c.env("DISPLAY", &display)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("WORKTRAIL_AGENT_DATA_DIR", work.path().join("agent"))
            .env("WORKTRAIL_LOG", "warn");
    };
    let mut enroll = Command::new(&agentd);
    agent_env(&mut enroll);
    let out = enroll
        .args(["enroll", "--server", &relay.addr])
        .env("WORKTRAIL_COMPANY_KEY", &key)
        .output()?;
    anyhow::ensure!(out.status.success(), "enrolment: {}", String::from_utf8_lossy(&out.stderr));

    let stop_script = Arc::new(AtomicBool::new(false));
    let switch_count = Arc::new(AtomicU64::new(0));
    let user = {
        let (d, w, s, n) =
            (display.clone(), windows.clone(), stop_script.clone(), switch_count.clone());
        std::thread::spawn(move || script(d, w, s, n))
    };
    let mut run = match &app {
        App::Headless => {
            let mut c = Command::new(&agentd);
            c.arg("run");
            c
        }
        App::Tray(tray) => {
            let mut c = Command::new(tray);
            c.arg("--tray-only");
            c
        }
    };
    agent_env(&mut run);
    let log = work.path().join("agent.log");
    let mut agent = run.stdout(Stdio::null()).stderr(std::fs::File::create(&log)?).spawn()?;
    let pid = agent.id();
    tokio::time::sleep(Duration::from_secs(SETTLE_SECS)).await;
    if let Some(status) = agent.try_wait()? {
        bail!("the agent exited ({status}): {}", std::fs::read_to_string(&log)?);
    }

    let mut threads = HashMap::new();
    switches(pid, &mut threads);
    let before = threads.clone();
    let (cpu_before, disk_before) = (cpu_time(pid), write_bytes(pid));
    let (up_before, down_before) =
        (relay.up.load(Ordering::Relaxed), relay.down.load(Ordering::Relaxed));
    let started = Instant::now();
    let mut rss = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("the agent exited during the run")?;
        rss.push(field(&status, "VmRSS:").unwrap_or(0));
        switches(pid, &mut threads);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_time(pid) - cpu_before).as_secs_f64();
    let disk = write_bytes(pid) - disk_before;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_kb = field(&status, "VmHWM:").unwrap_or(0);
    // Switches in the window, by thread name (threads of one name summed).
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for (tid, (name, n)) in &threads {
        *by_name.entry(name.clone()).or_default() += n - before.get(tid).map_or(0, |b| b.1);
    }
    let wakeups: u64 = by_name.values().sum();
    let mut by_name: Vec<_> = by_name.into_iter().filter(|(_, n)| *n > 0).collect();
    by_name.sort_by_key(|b| std::cmp::Reverse(b.1));
    let (up, down) = (
        relay.up.load(Ordering::Relaxed) - up_before,
        relay.down.load(Ordering::Relaxed) - down_before,
    );
    let child_processes = children_of(pid);
    // The first GTK program on an X server probes OpenGL (Mesa, libLLVM for the software
    // rasteriser) before caching the result on the root window; on this fresh Xvfb that is the
    // tray app (see scripts/measure-tray-rss).
    let gl = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .is_ok_and(|m| m.contains("libLLVM") || m.contains("_dri.so"));
    stop_script.store(true, Ordering::Relaxed);
    let _ = user.join();
    stop(&mut agent);
    drop(children);
    server.stop()?;

    let counts = {
        let pool = sqlx::SqlitePool::connect(&prepared.url).await?;
        let mut counts = Vec::new();
        for table in ["app_usage", "activity_log", "idle_spans", "screenshots"] {
            let (n,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await?;
            counts.push(format!("{table} {n}"));
        }
        pool.close().await;
        counts.join(", ")
    };
    let avg_kb = rss.iter().sum::<u64>() as f64 / rss.len().max(1) as f64;
    let cpu_percent = 100.0 * cpu / elapsed;
    let peak_mb = peak_kb as f64 * 1024.0 / 1e6;
    let binary = match &app {
        App::Headless => {
            println!("scenario: agent (headless worktrail-agentd run)");
            agentd.display().to_string()
        }
        App::Tray(tray) => {
            println!(
                "scenario: agent (tray app worktrail-agent --tray-only, no window, private \
                 D-Bus session bus; enrolled with worktrail-agentd)"
            );
            tray.display().to_string()
        }
    };
    println!(
        "session: Xvfb 1280×800 + openbox, {} xterms, {} window switches (every 2–8 s, typing \
         after half); default policy (sample 1 s, sync 60 s, screenshot every 600 s)",
        WINDOWS.len(),
        switch_count.load(Ordering::Relaxed)
    );
    println!(
        "measured: {elapsed:.0} s after {SETTLE_SECS} s of start-up; binary {binary}; child \
         processes at the end: {child_processes}"
    );
    println!(
        "CPU: {cpu_percent:.3} % of one core on average ({cpu:.2} s utime+stime): {}",
        verdict(cpu_percent <= CPU_GOAL_PERCENT, &format!("goal ≤ {CPU_GOAL_PERCENT} %"))
    );
    let rss_verdict = match app {
        App::Headless => verdict(peak_mb <= RSS_GOAL_MB, &format!("goal ≤ {RSS_GOAL_MB} MB")),
        App::Tray(_) => {
            "goal: ≤ a bare Tauri tray app + 15 MB, see scripts/measure-tray-rss".into()
        }
    };
    println!(
        "RSS: average {:.1} MB, peak {peak_mb:.1} MB (VmHWM since start; MB = 10^6 bytes): \
         {rss_verdict}",
        avg_kb * 1024.0 / 1e6,
    );
    if let App::Tray(_) = app {
        println!(
            "GL libraries mapped: {} (the tray app is the first GTK program on this fresh X \
             server, so GTK probes OpenGL; in a desktop session an earlier GTK program usually has)",
            if gl { "yes" } else { "no" }
        );
    }
    println!(
        "wake-ups: {:.2} per second (context switches, all threads, from /proc)",
        wakeups as f64 / elapsed
    );
    let threads_text: Vec<String> =
        by_name.iter().map(|(name, n)| format!("{name} {:.2}/s", *n as f64 / elapsed)).collect();
    println!("wake-ups by thread: {}", threads_text.join(", "));
    println!(
        "disk written: {disk} bytes ({:.0} bytes/s, /proc/PID/io write_bytes)",
        disk as f64 / elapsed
    );
    println!(
        "uploaded: {up} bytes ({:.0} bytes/s; TCP bytes agent → server counted by a relay); \
         downloaded {down} bytes",
        up as f64 / elapsed
    );
    println!("server received over the whole run: {counts}");
    println!();
    Ok(())
}

fn verdict(ok: bool, goal: &str) -> String {
    format!("{goal}: {}", if ok { "met" } else { "MISSED" })
}
