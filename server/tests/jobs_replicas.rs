//! Two `serve` processes on one PostgreSQL database: each job runs once per tick between them,
//! the rollups they write are not doubled, and agents spread across both replicas leave exactly
//! what they leave on one replica. The replicas serve as the app role under row-level security,
//! migrated once by `worktrail-server migrate --migrate-url` as the owner.

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
    cli_env(&[("DATABASE_URL", db)], args)
}

fn cli_env(env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("DATABASE_MIGRATE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn serve(db: &str) -> Server {
    serve_with(db, &["--job-interval-secs", "1"])
}

fn serve_with(db: &str, flags: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env("DATABASE_URL", db)
        .env_remove("DATABASE_MIGRATE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
                        task_id: None,
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

/// One agent's deterministic work: batches of app spans and activity minutes from `base_ms`.
fn agent_batches(agent: usize, base_ms: i64) -> Vec<BatchRequest> {
    (0..8i64)
        .map(|b| BatchRequest {
            batch_id: BatchId::new(),
            sent_at_ms: base_ms,
            dropped: Default::default(),
            records: (0..25i64)
                .map(|j| {
                    let n = b * 25 + j;
                    let t = base_ms + n * 20_000 + agent as i64 * 1_000;
                    let body = if j % 5 == 4 {
                        RecordBody::Activity {
                            minute_ms: t - t.rem_euclid(60_000),
                            active_secs: 40,
                        }
                    } else {
                        RecordBody::AppSpan {
                            start_ms: t,
                            end_ms: t + 7_000 + 1_000 * (n % 7),
                            app: format!("app{}", (agent + n as usize) % 4),
                            exe: None,
                            title: Some(format!("window {n}")),
                            task_id: None,
                        }
                    };
                    Record { id: RecordId::new(), seq: n, body }
                })
                .collect(),
        })
        .collect()
}

/// What a run left in the database, per company name: counts, stored ids, rollups.
#[derive(Debug, PartialEq)]
struct Outcome {
    counts: Vec<(String, worktrail_server::store::RecordCounts)>,
    rollups: Vec<(String, Vec<(String, worktrail_server::store::UsageNumbers)>)>,
}

/// Two companies of three agents each send their batches through `replicas` (agent `i`'s batch
/// `b` goes to replica `(i + b) % n`; every third batch is retried at once through the next
/// replica, as after a lost answer), then the replicas stop and the rollup runs.
async fn run_agents(db: &TestDb, replicas: usize, base_ms: i64) -> Outcome {
    let owner = [("DATABASE_URL", db.app_url.as_str()), ("DATABASE_MIGRATE_URL", db.url.as_str())];
    cli_env(&owner, &["migrate"]);
    let app = [("DATABASE_URL", db.app_url.as_str())];
    let names = ["North Co", "South Co"];
    let keys: Vec<String> = names
        .iter()
        .map(|name| {
            let out = cli_env(&app, &["company", "create", "--name", name]);
            out.lines().find_map(|l| l.strip_prefix("company key: ")).unwrap().to_owned()
        })
        .collect();
    let servers: Vec<Server> =
        (0..replicas).map(|_| serve_with(&db.app_url, &["--no-jobs"])).collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let mut agents = Vec::new();
    for agent in 0..6usize {
        let key = keys[agent % 2].clone();
        let bases = bases.clone();
        agents.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let enrol = serde_json::json!({
                "device_id": DeviceId::new(), "email": format!("agent{agent}@replica.test"),
                "os_user": "u", "hostname": format!("h{agent}"), "os": "Linux",
                "agent_version": "t"
            });
            let resp = http
                .post(format!("{}/api/v1/agent/enroll", bases[agent % bases.len()]))
                .header("x-company-key", &key)
                .json(&enrol)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let token = resp.json::<EnrollResponse>().await.unwrap().device_token;
            let mut sent = Vec::new();
            for (b, batch) in agent_batches(agent, base_ms).into_iter().enumerate() {
                let post = |base: String| {
                    http.post(format!("{base}/api/v1/agent/batches"))
                        .header("x-company-key", &key)
                        .bearer_auth(&token)
                        .json(&batch)
                        .send()
                };
                let first = bases[(agent + b) % bases.len()].clone();
                let acks = if b % 3 == 0 {
                    let retry = bases[(agent + b + 1) % bases.len()].clone();
                    let (x, y) = tokio::join!(post(first), post(retry));
                    vec![x.unwrap(), y.unwrap()]
                } else {
                    vec![post(first).await.unwrap()]
                };
                let mut answers = Vec::new();
                for ack in acks {
                    assert_eq!(ack.status(), 200);
                    let v: serde_json::Value = ack.json().await.unwrap();
                    answers.push((
                        v["accepted"].clone(),
                        v["duplicates"].clone(),
                        v["max_seq"].clone(),
                    ));
                }
                answers.dedup();
                assert_eq!(answers.len(), 1, "a retried batch gets the same answer: {answers:?}");
                sent.extend(batch.records.iter().map(|r| r.id));
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for a in agents {
        sent.extend(a.await.unwrap());
    }
    for server in &servers {
        terminate(server);
    }
    for mut server in servers {
        let _ = server.child.wait();
    }
    cli_env(&app, &["jobs", "run-once", "--job", "rollup"]);
    let store = store::open(&db.app_url).await.unwrap();
    let mut stored = Vec::new();
    let mut outcome = Outcome { counts: Vec::new(), rollups: Vec::new() };
    for name in names {
        let company = store.company_by_name(name).await.unwrap().unwrap().id;
        stored.extend(store.record_ids(company).await.unwrap());
        outcome.counts.push((name.to_owned(), store.record_counts(company).await.unwrap()));
        let days = store.usage_days(company, "2000-01-01", "2100-01-01").await.unwrap();
        let days = days.into_iter().map(|d| (d.day, d.numbers)).collect();
        outcome.rollups.push((name.to_owned(), days));
    }
    store.close().await;
    let total = stored.len();
    stored.sort();
    stored.dedup();
    sent.sort();
    assert_eq!(stored.len(), total, "no record is stored twice");
    assert_eq!(stored, sent, "every record sent is stored, and nothing else");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_spread_over_two_replicas_leave_what_they_leave_on_one() {
    let Some(one) = TestDb::create(Backend::Postgres).await else { return };
    let Some(two) = TestDb::create(Backend::Postgres).await else { return };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    // The same absolute times for both runs: two hours ago, on a minute.
    let base_ms = (now.as_millis() as i64 - 2 * 3_600_000) / 60_000 * 60_000;
    let single = run_agents(&one, 1, base_ms).await;
    let spread = run_agents(&two, 2, base_ms).await;
    for (name, counts) in &single.counts {
        // 6 agents over 2 companies, 8 batches of 20 spans and 5 minutes each.
        assert_eq!(
            (counts.app_spans, counts.activity, counts.batches),
            (3 * 160, 3 * 40, 3 * 8),
            "{name}"
        );
    }
    for (name, days) in &single.rollups {
        let employees: i64 = days.iter().map(|(_, n)| n.active_employees).max().unwrap_or(0);
        let requests: i64 = days.iter().map(|(_, n)| n.sync_requests).sum();
        // Enrolments and batches, the retries included, each counted once.
        assert_eq!((employees, requests), (3, 3 * (1 + 8 + 3)), "{name}: {days:?}");
    }
    assert_eq!(spread, single, "two replicas and one leave the same data and rollups");
}
