//! Two `serve` processes on one PostgreSQL database: each job runs once per tick between them,
//! and the rollups they write are not doubled.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use worktrail_server::store;
use worktrail_shared::api::{BatchRequest, EnrollResponse, Record, RecordBody};
use worktrail_shared::{BatchId, DeviceId, RecordId};
use worktrail_tests::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_worktrail-server");

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(db: &str, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).env("DATABASE_URL", db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn serve(db: &str) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--job-interval-secs", "1"])
        .env("DATABASE_URL", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("a line").unwrap();
    let base = line.strip_prefix("serving on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    Server { child, base }
}

fn terminate(server: &Server) {
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
    assert!(status.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgres_run_each_job_once_per_tick() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let out = cli(&db.url, &["company", "create", "--name", "Replica Co"]);
    let key = out.lines().find_map(|l| l.strip_prefix("company key: ")).unwrap().to_owned();
    let mut a = serve(&db.url);
    let mut b = serve(&db.url);
    let http = reqwest::Client::new();
    let enrol = serde_json::json!({
        "device_id": DeviceId::new(), "email": "ada@replica.test", "os_user": "ada",
        "hostname": "h", "os": "Linux", "agent_version": "t"
    });
    let resp = http
        .post(format!("{}/api/v1/agent/enroll", a.base))
        .header("x-company-key", &key)
        .json(&enrol)
        .send()
        .await
        .unwrap();
    let token = resp.json::<EnrollResponse>().await.unwrap().device_token;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let start = now.as_millis() as i64 - 3_600_000;
    let mut sent_secs = 0;
    for i in 0..10i64 {
        let records = (0..20)
            .map(|j| {
                let t = start + (i * 20 + j) * 10_000;
                sent_secs += 9;
                Record {
                    id: RecordId::new(),
                    seq: i * 20 + j,
                    body: RecordBody::AppSpan {
                        start_ms: t,
                        end_ms: t + 9_000,
                        app: "a".into(),
                        exe: None,
                        title: None,
                    },
                }
            })
            .collect();
        let batch = BatchRequest {
            batch_id: BatchId::new(),
            sent_at_ms: 0,
            dropped: Default::default(),
            records,
        };
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let resp = http
            .post(format!("{base}/api/v1/agent/batches"))
            .header("x-company-key", &key)
            .bearer_auth(&token)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // Let both schedulers compete for several ticks.
    let store = store::open(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = store.job_runs("rollup").await.unwrap();
        if runs.len() >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the schedulers did not run: {runs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    terminate(&a);
    terminate(&b);
    let _ = a.child.wait();
    let _ = b.child.wait();
    for job in ["rollup", "lifecycle", "retention"] {
        let runs = store.job_runs(job).await.unwrap();
        let mut ticks: Vec<i64> = runs.iter().map(|r| r.tick).collect();
        let total = ticks.len();
        ticks.dedup();
        assert_eq!(ticks.len(), total, "{job} ran twice for a tick: {runs:?}");
        assert!(total >= 1, "{job} never ran");
        assert!(runs.iter().all(|r| r.error.is_none()), "{runs:?}");
    }
    // After a final roll-up, the rows equal the raw data once, not twice.
    cli(&db.url, &["jobs", "run-once", "--job", "rollup"]);
    let company = store.company_by_name("Replica Co").await.unwrap().unwrap().id;
    let days = store.usage_days(company, "2000-01-01", "2100-01-01").await.unwrap();
    let tracked: i64 = days.iter().map(|d| d.numbers.tracked_secs).sum();
    assert_eq!(tracked, sent_secs);
    let records: i64 = days.iter().map(|d| d.numbers.records).sum();
    assert_eq!(records, 200);
    let calls: i64 = days.iter().map(|d| d.numbers.sync_requests).sum();
    assert_eq!(calls, 11, "enrolment and ten batches, counted once across both processes");
    store.close().await;
}
