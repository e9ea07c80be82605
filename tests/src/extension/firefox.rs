//! The same extension in Debian's Firefox ESR, headed on an [`XDesktop`]: the packaged `.xpi`
//! (with its `agent.json` pointing at the test's agent) side-loaded into a fresh profile. ESR
//! honours `xpinstall.signatures.required = false`, so the unsigned package loads as it would
//! after AMO signing. URLs are handed to the running Firefox by a second `firefox-esr` call.

use crate::agent::XDesktop;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Firefox ESR.
pub const FIREFOX: &str = "/usr/bin/firefox-esr";
/// The extension's Gecko id (its `.xpi` file name in a profile).
pub const GECKO_ID: &str = "browser-extension@worktrail.app";

const PREFS: &str = r#"user_pref("xpinstall.signatures.required", false);
user_pref("extensions.autoDisableScopes", 0);
user_pref("extensions.enabledScopes", 15);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.startup.page", 0);
"#;

/// A headed Firefox ESR with the Worktrail extension.
#[derive(Debug)]
pub struct Firefox {
    display: String,
    browser: Child,
    dir: tempfile::TempDir,
}

fn profile(dir: &Path) -> PathBuf {
    dir.join("profile")
}

fn firefox(display: &str, dir: &Path) -> Command {
    let mut c = Command::new(FIREFOX);
    c.env("DISPLAY", display)
        .env("HOME", dir)
        .arg("--profile")
        .arg(profile(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

impl Firefox {
    fn command(&self) -> Command {
        firefox(&self.display, self.dir.path())
    }

    /// Starts Firefox on `desktop` with the packaged `xpi`, set to report to `agent_port`.
    pub fn launch(desktop: &XDesktop, agent_port: u16, xpi: &Path) -> Self {
        assert!(Path::new(FIREFOX).exists(), "{FIREFOX} missing: apt-get install firefox-esr");
        let dir = tempfile::tempdir().expect("temp dir");
        let unpacked = dir.path().join("extension");
        super::unpack(xpi, &unpacked);
        std::fs::write(unpacked.join("agent.json"), format!("{{ \"port\": {agent_port} }}\n"))
            .expect("write agent.json");
        let extensions = profile(dir.path()).join("extensions");
        std::fs::create_dir_all(&extensions).expect("profile dir");
        let status = Command::new("zip")
            .current_dir(&unpacked)
            .args(["-q", "-r", "-X", "-D"])
            .arg(extensions.join(format!("{GECKO_ID}.xpi")))
            .arg(".")
            .status()
            .expect("run zip");
        assert!(status.success(), "zip the patched xpi");
        std::fs::write(profile(dir.path()).join("user.js"), PREFS).expect("prefs");
        let browser = firefox(&desktop.display, dir.path())
            .arg("about:blank")
            .process_group(0)
            .spawn()
            .expect("start firefox");
        Self { display: desktop.display.clone(), browser, dir }
    }

    /// Opens `url` in the running Firefox.
    pub fn open(&self, url: &str) {
        let status = self.command().arg(url).status().expect("run firefox");
        assert!(status.success(), "firefox {url} failed");
    }

    /// Opens `url` in a new private window of the running Firefox.
    pub fn open_private(&self, url: &str) {
        let status = self.command().args(["--private-window", url]).status().expect("run firefox");
        assert!(status.success(), "firefox --private-window {url} failed");
    }
}

impl Drop for Firefox {
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
