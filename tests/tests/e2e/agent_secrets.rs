//! Where `worktrail-agentd` keeps the company key and device token (issue 3): the OS keyring when
//! a Secret Service answers (a private `dbus-run-session` with an unlocked gnome-keyring), else
//! the documented 0600 file — and never in config files or logs.

use super::agent_cli::{AGENTD, agentd, enroll, ok, status};
use std::process::{Command, Output, Stdio};
use worktrail_tests::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_service_secrets_fall_back_to_a_0600_file_and_never_reach_config_or_logs()
{
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = enroll(&server, dir.path(), "max@test.example");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = ok(out);
    assert!(stderr.contains("no usable OS keyring"), "the fallback is logged: {stderr}");
    let key = server.company_key.expose();
    assert!(!stderr.contains(key) && !stdout.contains(key));

    let file = dir.path().join("secrets.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains(key));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path != file {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(key), "key in {}", path.display());
            assert!(
                !String::from_utf8_lossy(&bytes).contains("wtd_"),
                "token in {}",
                path.display()
            );
        }
    }
    assert_eq!(status(dir.path())["secret_store"], "file");
    ok(agentd(dir.path()).arg("sync-now").output().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_secret_service_secrets_live_in_the_keyring_and_nowhere_in_the_data_dir() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // A private session bus with an unlocked gnome-keyring, running enroll, status and sync-now.
    let script = format!(
        "set -e; printf 'worktrail-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
         \"$AGENTD\" enroll --server '{}' --email kay@test.example; \
         \"$AGENTD\" status --json; \"$AGENTD\" sync-now",
        server.base_url
    );
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let home = home.path().to_owned();
        let key = server.company_key.expose().to_owned();
        move || {
            agentd(&dir)
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env("HOME", &home)
                .env("XDG_DATA_HOME", home.join("data"))
                .env("XDG_RUNTIME_DIR", &home)
                .env("AGENTD", AGENTD)
                .env("WORKTRAIL_COMPANY_KEY", key)
                .output_via("dbus-run-session", &["--", "sh", "-c", &script])
        }
    })
    .await
    .unwrap();
    let stdout = ok(out);
    assert!(stdout.contains("\"secret_store\": \"keyring\""), "{stdout}");
    assert!(!dir.path().join("secrets.json").exists());
    let key = server.company_key.expose();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(key), "key in {}", path.display());
    }
}

/// Runs a wrapper program with this command's program and environment after its `args`.
trait OutputVia {
    fn output_via(&mut self, wrapper: &str, args: &[&str]) -> Output;
}

impl OutputVia for Command {
    fn output_via(&mut self, wrapper: &str, args: &[&str]) -> Output {
        let mut w = Command::new(wrapper);
        w.args(args);
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        w.stdin(Stdio::null()).output().expect("run the wrapper")
    }
}
