//! The `worktrail-server` binary as a user runs it: the demo on a fresh data directory prints
//! a working company key and the logins and serves; the operator commands print what they made.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_worktrail-server");

struct Demo {
    child: Child,
    lines: Vec<String>,
    base: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `demo` on port 0 in `dir` and reads its output up to the "serving on" line.
fn start_demo(dir: &std::path::Path) -> Demo {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("WORKTRAIL_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start worktrail-server demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line =
            rx.recv_timeout(left).unwrap_or_else(|_| panic!("demo did not start: {lines:?}"));
        let done = line.starts_with("serving on ");
        lines.push(line);
        if done {
            break;
        }
    }
    let base = lines.last().unwrap().trim_start_matches("serving on ").to_owned();
    Demo { child, lines, base }
}

fn value(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:?}"))
        .trim()
        .to_owned()
}

async fn enroll_status(base: &str, key: &str) -> u16 {
    let body = serde_json::json!({
        "device_id": uuid::Uuid::now_v7(), "email": "new@acme.test", "os_user": "new",
        "hostname": "h", "os": "Linux", "agent_version": "t"
    });
    reqwest::Client::new()
        .post(format!("{base}/api/v1/agent/enroll"))
        .header("x-company-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_demo_prints_a_working_key_and_logins_and_keeps_its_data_on_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("worktrail-data");
    let first = start_demo(&data);
    let key = value(&first.lines, "company key: ");
    assert!(key.starts_with("wtk_"), "{key}");
    let owner = value(&first.lines, "owner login: ");
    let admin = value(&first.lines, "admin login: ");
    let employee = value(&first.lines, "employee login: ");
    assert_eq!(employee.split(' ').count(), 2, "e-mail and password: {employee}");
    assert_eq!(owner.split(' ').count(), 2, "e-mail and password: {owner}");
    assert_eq!(admin.split(' ').count(), 2, "e-mail and password: {admin}");
    assert!(value(&first.lines, "demo data: ").contains("records"));
    assert!(data.join("worktrail.db").exists(), "embedded database in the data dir");
    let ready = reqwest::get(format!("{}/readyz", first.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(enroll_status(&first.base, &key).await, 200);
    // The printed logins sign in to their portals.
    for (login, home) in [(&owner, "/owner"), (&admin, "/admin"), (&employee, "/me")] {
        let (email, password) = login.split_once(' ').unwrap();
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/login", first.base))
            .header("sec-fetch-site", "same-origin")
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["location"], home, "{login}");
    }
    drop(first);

    let second = start_demo(&data);
    assert!(second.lines.iter().any(|l| l.contains("already present")), "{:?}", second.lines);
    let new_key = value(&second.lines, "company key: ");
    assert_ne!(new_key, key);
    assert_eq!(enroll_status(&second.base, &new_key).await, 200);
    assert_eq!(enroll_status(&second.base, &key).await, 200, "the first key still works");
}

fn run(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("WORKTRAIL_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn operator_commands_create_plans_companies_and_owners_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = run(d, &["migrate"], None);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));
    let (ok, _, err) =
        run(d, &["plan", "create", "--code", "team", "--name", "Team", "--max-seats", "20"], None);
    assert!(ok, "{err}");
    let (ok, out, _) = run(d, &["plan", "list"], None);
    assert!(ok && out.contains("team"), "{out}");
    let (ok, _, err) =
        run(d, &["plan", "create", "--code", "team", "--name", "Again", "--max-seats", "5"], None);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, err) = run(
        d,
        &[
            "company",
            "create",
            "--name",
            "Globex",
            "--plan",
            "team",
            "--admin-email",
            "boss@globex.test",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        value(&out.lines().map(str::to_owned).collect::<Vec<_>>(), "company key: ")
            .starts_with("wtk_")
    );
    assert!(out.contains("admin login: boss@globex.test "), "{out}");
    let (ok, _, err) = run(
        d,
        &[
            "company",
            "create",
            "--name",
            "Initech",
            "--plan",
            "team",
            "--time-zone",
            "Nowhere/Land",
        ],
        None,
    );
    assert!(!ok && err.contains("time zone"), "{err}");
    let (ok, out, err) = run(
        d,
        &["owner", "create", "--email", "op@worktrail.test"],
        Some("a-long-enough-secret\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("owner created: op@worktrail.test"));
    assert!(!out.contains("a-long-enough-secret"), "the password is never echoed");
    let (ok, _, err) =
        run(d, &["owner", "create", "--email", "op2@worktrail.test"], Some("short\n"));
    assert!(!ok && err.contains("12 characters"), "{err}");
}
