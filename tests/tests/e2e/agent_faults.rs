//! The real agent binary against the real server through faults (issue 7): a poison record the
//! server refuses, and a network that is slow, cuts connections mid-body and partitions.

use crate::agent_cli::{
    Running, agentd, desktop_with_xterm, enroll, fast_policy, ok, push, sigterm, status,
};
use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use worktrail_agent_core::queue::{Caps, QueueDb};
use worktrail_shared::RecordId;
use worktrail_shared::api::RecordBody;
use worktrail_tests::faultproxy::{Fault, FaultProxy};
use worktrail_tests::{Backend, TestServer, soak};

/// Queues `bodies` as they are, unchecked (the agent's own sampler never writes such records).
fn push_raw(dir: &Path, bodies: Vec<RecordBody>) -> Vec<RecordId> {
    let mut q = QueueDb::open(&dir.join("queue.sqlite3"), Caps::default()).unwrap();
    let items = bodies.into_iter().map(|b| (b, None)).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    q.push(items, now.as_millis() as i64).unwrap().into_iter().map(|r| r.id).collect()
}

fn set_aside(dir: &Path) -> Vec<(RecordId, String)> {
    let q = QueueDb::open(&dir.join("queue.sqlite3"), Caps::default()).unwrap();
    q.set_aside_records().unwrap()
}

async fn stored(server: &TestServer) -> (HashSet<RecordId>, usize) {
    let ids = server.store().record_ids(server.company).await.unwrap();
    let n = ids.len();
    (ids.into_iter().collect(), n)
}

/// A record only the server refuses: the agent's own check is switched off
/// (`WORKTRAIL_FAULT_SKIP_PRECHECK`, test builds only), standing in for a server whose record
/// rules are stricter than this agent's build. The refused batch is bisected down to the bad
/// records, which are set aside and counted in `status`; every good record before, between and
/// after them arrives once, and later syncs are not held back. Records the agent's own check
/// catches are set aside the same way, without a round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_set_aside_with_a_counter_and_later_batches_are_not_blocked() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    ok(enroll(&server, dir.path(), "pia@test.example"));
    let mut seq = 0;
    let mut good = push(dir.path(), 45, &mut seq);
    let mut poison = push_raw(dir.path(), vec![RecordBody::IdleSpan { start_ms: 10, end_ms: 5 }]);
    good.extend(push(dir.path(), 45, &mut seq));
    poison.extend(push_raw(
        dir.path(),
        vec![RecordBody::Activity { minute_ms: 61_000, active_secs: 5 }],
    ));
    good.extend(push(dir.path(), 20, &mut seq));

    let out = agentd(dir.path())
        .arg("sync-now")
        .env("WORKTRAIL_FAULT_SKIP_PRECHECK", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sync-now failed: {stderr}");
    assert!(stderr.contains("the server refused a batch"), "no refusal seen: {stderr}");
    let st = status(dir.path());
    assert_eq!(st["queue"]["records"], 0, "{st:#}");
    assert_eq!(st["queue"]["set_aside"], 2, "{st:#}");
    assert!(st["last_error"].is_null(), "{st:#}");
    let aside = set_aside(dir.path());
    assert_eq!(aside.iter().map(|a| a.0).collect::<Vec<_>>(), poison);
    assert!(aside.iter().all(|a| a.1.starts_with("invalid_batch:")), "{aside:?}");

    let (ids, n) = stored(&server).await;
    assert_eq!(n, ids.len(), "duplicates on the server");
    assert_eq!(ids, good.iter().copied().collect::<HashSet<_>>(), "exactly the good records");

    // Later records go through at once; a bad one the agent's own check catches is set aside
    // without holding them back either.
    good.extend(push(dir.path(), 30, &mut seq));
    let third = push_raw(dir.path(), vec![RecordBody::IdleSpan { start_ms: 0, end_ms: -1 }]);
    good.extend(push(dir.path(), 5, &mut seq));
    ok(agentd(dir.path()).arg("sync-now").output().unwrap());
    let st = status(dir.path());
    assert_eq!(
        (st["queue"]["records"].as_u64(), st["queue"]["set_aside"].as_u64()),
        (Some(0), Some(3))
    );
    let aside = set_aside(dir.path());
    assert_eq!(aside[2].0, third[0]);
    assert!(aside[2].1.contains("breaks the record rules"), "{aside:?}");
    let (ids, n) = stored(&server).await;
    assert_eq!((n, ids), (good.len(), good.iter().copied().collect()));
    let human = ok(agentd(dir.path()).arg("status").output().unwrap());
    assert!(human.contains("set aside: 3 records"), "{human}");
}

/// Sets fields of the agent's `agent.json`.
fn configure(dir: &Path, set: &[(&str, serde_json::Value)]) {
    let path = dir.join("agent.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (k, v) in set {
        config[*k] = v.clone();
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// `worktrail-agentd run` talks to the server only through a [`FaultProxy`] that adds latency,
/// resets connections at random byte offsets (requests cut mid-body, responses lost after the
/// server committed), blackholes and refuses: six phases, ~13 s, on CI; a tenth of
/// `WORKTRAIL_SOAK_ROUNDS` phases (cycling through the same six, ~2 s each) in the soak run. The agent's retry ceiling
/// is set to 2 s in its config (time-compressed: the default is 10 minutes). It starts with
/// 1,000 queued records and keeps capturing a desktop whose window title changes every 300 ms,
/// so there is always something to send. Once the faults stop (and the title stops changing)
/// the queue drains completely: every queued record arrives, and nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_fault_proxy_the_running_agent_drains_its_queue_once_the_faults_stop() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    server.store().set_policy(server.company, &fast_policy()).await.unwrap();
    let proxy = FaultProxy::start(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    ok(agentd(dir.path())
        .args(["enroll", "--server", &proxy.url(), "--email", "fay@test.example"])
        .env("WORKTRAIL_COMPANY_KEY", server.company_key.expose())
        .output()
        .unwrap());
    configure(dir.path(), &[("max_retry_secs", 2.into()), ("extension_port", 0.into())]);
    let mut seq = 0;
    let generated = push(dir.path(), 1000, &mut seq);
    let desktop = desktop_with_xterm("fault proxy").await;
    let ticking = crate::agent_crash::ticking_xterm(&desktop);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut run = Running(
        agentd(dir.path())
            .arg("run")
            .env("DISPLAY", &desktop.display)
            .env("WORKTRAIL_FAULT_BATCH_RECORDS", "20")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );

    let cycle = [
        (Fault::Latency(Duration::from_millis(150)), 2),
        (Fault::Cut { max_bytes: 1500 }, 3),
        (Fault::Blackhole, 3),
        (Fault::Latency(Duration::from_millis(40)), 1),
        (Fault::Refuse, 2),
        (Fault::Cut { max_bytes: 600 }, 2),
    ];
    // A tenth of the round count: 6 phases on CI, 100 (~4 min) in a 1,000-round soak run.
    let phases = (soak::rounds(10 * cycle.len()) / 10).max(cycle.len());
    for (fault, secs) in cycle.iter().cycle().take(phases) {
        proxy.set(*fault);
        tokio::time::sleep(Duration::from_secs(*secs)).await;
    }
    let during = stored(&server).await.0;
    drop(ticking);
    proxy.set(Fault::None);
    let healed = Instant::now();
    let stats = proxy.stats();
    assert!(
        stats.delayed > 0 && stats.cuts > 0 && stats.blackholed > 0 && stats.refused > 0,
        "some faults never landed: {stats:?}"
    );
    let expected: HashSet<_> = generated.iter().copied().collect();
    if phases <= cycle.len() {
        assert!(!expected.is_subset(&during), "the queue drained during the faults: {stats:?}");
    }

    let deadline = healed + Duration::from_secs(60);
    loop {
        let on_server = stored(&server).await.0;
        if expected.is_subset(&on_server) && status(dir.path())["queue"]["records"] == 0 {
            break;
        }
        let log = std::fs::read_to_string(log.path()).unwrap_or_default();
        let tail: Vec<_> = log.lines().rev().take(30).collect();
        assert!(
            Instant::now() < deadline,
            "the queue did not drain within 60 s of the faults ending ({} of {} queued records \
             arrived; {stats:?}); the agent's log ends:\n{}",
            expected.intersection(&on_server).count(),
            expected.len(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = healed.elapsed();
    assert!(run.0.try_wait().unwrap().is_none(), "run survived the faults");
    sigterm(&run.0);
    assert!(run.0.wait().unwrap().success());
    ok(agentd(dir.path()).arg("sync-now").output().unwrap());
    assert_eq!(status(dir.path())["queue"]["records"], 0);

    let (ids, n) = stored(&server).await;
    let lost = expected.difference(&ids).count();
    eprintln!(
        "fault proxy: {stats:?}; {} of {} records arrived during the faults, the rest within \
         {drained:?} after",
        expected.intersection(&during).count(),
        expected.len(),
    );
    let (server_5xx, panics) = server.server_faults();
    soak::Report {
        test: "agent through a fault proxy",
        rounds: phases,
        faults: (stats.cuts + stats.refused + stats.blackholed + stats.delayed) as usize,
        generated: expected.len(),
        lost,
        duplicated: n - ids.len(),
        server_5xx,
        panics: Some(panics),
    }
    .print();
    assert_eq!((lost, n - ids.len()), (0, 0));
    assert_eq!((server_5xx, panics), (0, 0));
}
