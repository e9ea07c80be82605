//! The server killed with SIGKILL while many agents are sending, on both backends: every batch
//! that was acknowledged is stored, and after the agents' retries every record is stored exactly
//! once. A response lost after the commit (a proxy drops it) is answered from the batch record on
//! retry, with no duplicates.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use worktrail_shared::api::{BatchAck, BatchRequest, EnrollResponse, Record, RecordBody};
use worktrail_shared::{BatchId, DeviceId, RecordId};
use worktrail_tests::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_worktrail-server");

fn cli(db: &str, data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", db)
        .env("WORKTRAIL_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `serve` on `listen` ("127.0.0.1:0" the first time, then the same address again).
fn serve(db: &str, data: &std::path::Path, listen: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--no-jobs", "--listen", listen])
        .env("DATABASE_URL", db)
        .env("WORKTRAIL_DATA_DIR", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (child, addr)
}

fn records(device: usize, batch: usize, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let seq = (batch * n + i) as i64;
            let t = 1_800_000_000_000 + seq * 1000 + device as i64;
            Record {
                id: RecordId::new(),
                seq,
                body: RecordBody::AppSpan {
                    start_ms: t,
                    end_ms: t + 900,
                    app: format!("app{device}"),
                    exe: None,
                    title: Some(format!("t{seq}")),
                    task_id: None,
                },
            }
        })
        .collect()
}

async fn the_server_killed_mid_ingest_loses_nothing_acknowledged_and_duplicates_nothing(
    backend: Backend,
) {
    let Some(db) = TestDb::create(backend).await else { return };
    let data = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let out =
        cli(&url, data.path(), &["company", "create", "--name", "Crash Co", "--plan", "business"]);
    let key = out.lines().find_map(|l| l.strip_prefix("company key: ")).unwrap().to_owned();
    let (child, addr) = serve(&url, data.path(), "127.0.0.1:0");
    let server = Arc::new(Mutex::new(child));
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let (agents, batches, per_batch) = (6, 12, 50);
    let mut tokens = Vec::new();
    for i in 0..agents {
        let body = serde_json::json!({ "device_id": DeviceId::new(), "email": format!("a{i}@crash.test"), "os_user": "a", "hostname": "h", "os": "Linux", "agent_version": "t" });
        let resp = client
            .post(format!("{base}/api/v1/agent/enroll"))
            .header("x-company-key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        tokens.push(resp.json::<EnrollResponse>().await.unwrap().device_token);
    }
    let acked: Arc<Mutex<HashSet<RecordId>>> = Default::default();
    let sent: Arc<Mutex<HashSet<RecordId>>> = Default::default();
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let server_5xx = Arc::new(AtomicUsize::new(0));
    // Kills to reach: 5 on CI, `WORKTRAIL_SOAK_ROUNDS` in the soak script.
    let min_kills = worktrail_tests::soak::rounds(5);
    // The killer: SIGKILL at random moments while agents send, then restart on the same port.
    let killer = {
        let (server, done, kills, url, data_dir, addr) = (
            server.clone(),
            done.clone(),
            kills.clone(),
            url.clone(),
            data.path().to_owned(),
            addr.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(Ordering::SeqCst) {
                n += 1;
                tokio::time::sleep(Duration::from_millis(150 + (n * 7919) % 400)).await;
                let mut child = server.lock().await;
                let _ = child.kill();
                let _ = child.wait();
                kills.fetch_add(1, Ordering::SeqCst);
                let (fresh, _) = tokio::task::block_in_place(|| serve(&url, &data_dir, &addr));
                *child = fresh;
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (client, base, key, acked, sent) =
            (client.clone(), base.clone(), key.clone(), acked.clone(), sent.clone());
        let (kills, server_5xx) = (kills.clone(), server_5xx.clone());
        tasks.spawn(async move {
            // At least `batches` each, and on until the server has been killed `min_kills` times.
            let mut b = 0;
            while b < batches || kills.load(Ordering::SeqCst) < min_kills {
                b += 1;
                let batch = BatchRequest {
                    batch_id: BatchId::new(),
                    sent_at_ms: 0,
                    dropped: Default::default(),
                    records: records(i, b, per_batch),
                };
                sent.lock().await.extend(batch.records.iter().map(|r| r.id));
                // Like the agent: resend the same batch until it is acknowledged.
                loop {
                    let resp = client
                        .post(format!("{base}/api/v1/agent/batches"))
                        .header("x-company-key", &key)
                        .bearer_auth(&token)
                        .json(&batch)
                        .send()
                        .await;
                    if let Ok(resp) = &resp
                        && resp.status().is_server_error()
                    {
                        server_5xx.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Ok(resp) = resp
                        && resp.status() == 200
                        && let Ok(ack) = resp.json::<BatchAck>().await
                    {
                        assert_eq!(ack.batch_id, batch.batch_id);
                        acked.lock().await.extend(batch.records.iter().map(|r| r.id));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    killer.await.unwrap();
    let _ = server.lock().await.kill();
    assert!(
        kills.load(Ordering::SeqCst) >= min_kills,
        "the server was killed while agents were sending"
    );
    let store = worktrail_server::store::open(&url).await.unwrap();
    let company = store.company_by_name("Crash Co").await.unwrap().unwrap().id;
    let stored = store.record_ids(company).await.unwrap();
    let unique: HashSet<RecordId> = stored.iter().copied().collect();
    assert_eq!(stored.len(), unique.len(), "duplicated records");
    let acked = acked.lock().await;
    let sent = sent.lock().await;
    worktrail_tests::soak::Report {
        test: match backend {
            Backend::Sqlite => "server SIGKILL during ingest (SQLite)",
            Backend::Postgres => "server SIGKILL during ingest (PostgreSQL)",
        },
        rounds: kills.load(Ordering::SeqCst),
        faults: kills.load(Ordering::SeqCst),
        generated: sent.len(),
        lost: acked.difference(&unique).count(),
        duplicated: stored.len() - unique.len(),
        server_5xx: server_5xx.load(Ordering::SeqCst) as u64,
        panics: None,
    }
    .print();
    assert!(acked.iter().all(|id| unique.contains(id)), "an acknowledged record is missing");
    assert_eq!(unique, *sent, "after retries every sent record is stored once");
    assert!(stored.len() >= agents * batches * per_batch);
    store.close().await;
}

/// A TCP proxy that forwards everything but swallows the server's answer to the `drop_nth`
/// request carrying a batch (closing the client's connection instead).
async fn dropping_proxy(upstream: String, drop_nth: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { break };
            let upstream = upstream.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let mut buf = vec![0u8; 1 << 20];
                // One request per connection (the client below sends `Connection: close`).
                let n = client.read(&mut buf).await.unwrap_or(0);
                let mut request = buf[..n].to_vec();
                let head_end = loop {
                    if let Some(p) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    let m = client.read(&mut buf).await.unwrap_or(0);
                    if m == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..m]);
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + len {
                    let m = client.read(&mut buf).await.unwrap_or(0);
                    if m == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..m]);
                }
                server.write_all(&request).await.unwrap();
                let mut response = Vec::new();
                let _ = server.read_to_end(&mut response).await;
                let is_batch = head.starts_with("post /api/v1/agent/batches");
                if is_batch && counter.fetch_add(1, Ordering::SeqCst) + 1 == drop_nth {
                    return; // the server committed; the client never hears of it
                }
                let _ = client.write_all(&response).await;
            });
        }
    });
    (addr, seen)
}

async fn a_response_lost_after_the_commit_is_answered_from_the_batch_record(backend: Backend) {
    let Some(s) = worktrail_tests::TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let (proxy, seen) = dropping_proxy(s.addr.to_string(), 1).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 0,
        dropped: Default::default(),
        records: records(0, 0, 40),
    };
    let send = || {
        client
            .post(format!("http://{proxy}/api/v1/agent/batches"))
            .header("x-company-key", s.company_key.expose())
            .header("connection", "close")
            .bearer_auth(token.expose())
            .json(&batch)
            .send()
    };
    assert!(send().await.is_err(), "the first answer is lost");
    assert_eq!(
        s.store().record_counts(s.company).await.unwrap().app_spans,
        40,
        "but it was committed"
    );
    let ack: BatchAck = send().await.unwrap().json().await.unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (40, 0), "the retry gets the first answer");
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 40);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(worktrail_tests::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(worktrail_tests::Backend::Postgres).await } )* }
    };
}

both!(
    the_server_killed_mid_ingest_loses_nothing_acknowledged_and_duplicates_nothing,
    a_response_lost_after_the_commit_is_answered_from_the_batch_record
);
