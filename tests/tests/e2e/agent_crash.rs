//! SIGKILL of the real agent binary at each named point of the sync path (issue 7), against
//! the real server: after every kill the queue passes `PRAGMA integrity_check` and holds what
//! the point says it must; at the end nothing is lost and nothing is duplicated.
//!
//! The points (see `worktrail_agent_core::fault`) are compiled into the test build of the agent
//! only. Armed by `WORKTRAIL_FAULT_POINT=<name>:<n>`, the agent writes a marker line to stderr
//! at the `n`th hit and hangs there; the test reads the marker and kills it at that instant.
//! `sync-now` is killed at the sync points, `run` (capturing a real X desktop whose window title
//! changes every 300 ms) right after its first record is queued. Batches are capped at 10
//! records so one `sync-now` passes every point several times. 100 rounds by default;
//! `WORKTRAIL_SOAK_ROUNDS` sets more for the soak run.

use crate::agent_cli::{Running, agentd, enroll, fast_policy, ok, push, status};
use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use worktrail_agent_core::fault::{MARKER, POINTS};
use worktrail_agent_core::queue::{Caps, QueueDb};
use worktrail_shared::RecordId;
use worktrail_shared::api::BatchRequest;
use worktrail_tests::agent::{XDesktop, wait_for};
use worktrail_tests::{Backend, TestServer, soak};

/// Records per batch in these rounds (`WORKTRAIL_FAULT_BATCH_RECORDS`).
const BATCH: usize = 10;

/// Runs `cmd` until it writes the fault marker, then SIGKILLs it; returns the marker line, or
/// the end of its stderr when it exited (or hung) without reaching the point.
fn kill_at_marker(mut cmd: Command) -> Result<String, String> {
    let mut child = Running(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with(MARKER) {
                let _ = tx.send(Ok(line));
            } else {
                tail.push(line);
            }
        }
        let _ = tx.send(Err(tail.join("\n")));
    });
    let got = rx.recv_timeout(Duration::from_secs(30));
    child.0.kill().unwrap(); // SIGKILL, at once
    child.0.wait().unwrap();
    match got {
        Ok(Ok(marker)) => Ok(marker),
        Ok(Err(tail)) => Err(tail),
        Err(_) => Err("no marker within 30 s".into()),
    }
}

/// `key=value` from a marker line.
fn field<'a>(marker: &'a str, key: &str) -> &'a str {
    marker
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {marker:?}"))
}

fn open_queue(dir: &Path) -> QueueDb {
    QueueDb::open(&dir.join("queue.sqlite3"), Caps::default()).expect("the queue opens")
}

/// The records of the in-flight batch (read from its stored body).
fn in_flight_records(q: &mut QueueDb) -> Vec<RecordId> {
    let batch = q.pending_batch(0).unwrap().expect("a batch in flight");
    let body: BatchRequest = serde_json::from_slice(&batch.body).unwrap();
    body.records.iter().map(|r| r.id).collect()
}

/// An xterm on `desktop` whose title changes every 300 ms, so a sampling agent closes a span at
/// every sample.
pub(crate) fn ticking_xterm(desktop: &XDesktop) -> Running {
    let script = "i=0; while :; do printf '\\033]0;tick %s\\007' $i; i=$((i+1)); sleep 0.3; done";
    let child = desktop
        .command("xterm")
        .args(["-T", "tick", "-geometry", "80x10+0+0", "-e", "sh", "-c", script])
        .spawn()
        .unwrap();
    let mut probe = desktop.window_probe();
    use worktrail_agent_core::probe::WindowProbe;
    wait_for("the ticking xterm to be active", Duration::from_secs(20), || {
        probe.active_window().ok().flatten().filter(|w| w.title.starts_with("tick"))
    });
    Running(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_named_points_of_the_sync_path_keeps_the_queue_sound_and_loses_and_duplicates_nothing()
 {
    let rounds = soak::rounds(100);
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    server.store().set_policy(server.company, &fast_policy()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    ok(enroll(&server, dir.path(), "nika@test.example"));
    let desktop = tokio::task::spawn_blocking(XDesktop::start).await.unwrap();
    let _xterm = ticking_xterm(&desktop);

    let started = Instant::now();
    let mut seq = 0;
    let mut generated: HashSet<RecordId> = HashSet::new();
    let mut kills = std::collections::BTreeMap::<&str, usize>::new();
    for round in 0..rounds {
        let point = POINTS[round % POINTS.len()];
        let mut cmd = agentd(dir.path());
        let nth = if point == "queued" {
            cmd.arg("run").env("DISPLAY", &desktop.display);
            1
        } else {
            // Enough records for three batches or more, so the 1st or 2nd hit always comes.
            if open_queue(dir.path()).status().unwrap().records < 3 * BATCH as u64 {
                generated.extend(push(dir.path(), 3 * BATCH, &mut seq));
            }
            cmd.arg("sync-now");
            1 + (round / POINTS.len()) % 2
        };
        cmd.env("WORKTRAIL_FAULT_POINT", format!("{point}:{nth}"))
            .env("WORKTRAIL_FAULT_BATCH_RECORDS", BATCH.to_string());
        let marker = tokio::task::spawn_blocking(move || kill_at_marker(cmd))
            .await
            .unwrap()
            .unwrap_or_else(|tail| panic!("round {round}: {point}:{nth} never hit:\n{tail}"));
        assert!(marker.contains(&format!(" {point} hit={nth} ")), "{marker}");
        *kills.entry(point).or_default() += 1;

        let mut q = open_queue(dir.path());
        assert_eq!(q.integrity_check().unwrap(), "ok", "round {round}, after {marker}");
        let queued: HashSet<_> = q.queued_ids().unwrap().into_iter().collect();
        match point {
            "queued" => {
                let first: RecordId = field(&marker, "first").parse().unwrap();
                assert!(queued.contains(&first), "round {round}: the queued record is gone");
            }
            "batch-built" => {
                let id = field(&marker, "batch").parse().ok();
                assert_eq!(q.in_flight().unwrap(), id, "round {round}: the built batch is gone");
            }
            "response-arrived" | "ack-commit" => {
                // The server committed the batch; the local acknowledgement did not happen (or
                // was rolled back whole): the batch is still in flight with all its records.
                let id = field(&marker, "batch").parse().ok();
                assert_eq!(q.in_flight().unwrap(), id, "round {round}: {marker}");
                let on_server: HashSet<_> =
                    server.store().record_ids(server.company).await.unwrap().into_iter().collect();
                for r in in_flight_records(&mut q) {
                    assert!(
                        queued.contains(&r),
                        "round {round}: {r} left the queue unacknowledged"
                    );
                    assert!(on_server.contains(&r), "round {round}: {r} acknowledged, not stored");
                }
            }
            _ => {}
        }
        generated.extend(queued);
    }
    let elapsed = started.elapsed();

    ok(agentd(dir.path()).arg("sync-now").output().unwrap());
    assert_eq!(status(dir.path())["queue"]["records"], 0);
    let stored = server.store().record_ids(server.company).await.unwrap();
    let unique: HashSet<_> = stored.iter().copied().collect();
    let duplicated = stored.len() - unique.len();
    let lost = generated.difference(&unique).count();
    let invented = unique.difference(&generated).count();
    eprintln!("named points: {rounds} rounds in {elapsed:?}, kills {kills:?}");
    let (server_5xx, panics) = server.server_faults();
    soak::Report {
        test: "agent SIGKILL at named points of sync",
        rounds,
        faults: kills.values().sum(),
        generated: generated.len(),
        lost,
        duplicated,
        server_5xx,
        panics: Some(panics),
    }
    .print();
    assert_eq!((lost, duplicated, invented), (0, 0, 0), "{} generated", generated.len());
    assert_eq!((server_5xx, panics), (0, 0));
    assert!(kills.len() == POINTS.len() || rounds < POINTS.len(), "{kills:?}");
}
