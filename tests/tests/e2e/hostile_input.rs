//! Bad and hostile input to the agent API: bodies at and over each limit (honest, missing and
//! lying Content-Length), pathological JSON, invalid UTF-8, wrong types, fake and bomb images,
//! slow bodies and floods of malformed keys. Always a 4xx with a stable code — never a 5xx — and
//! the server keeps serving.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::limits::{
    MAX_BATCH_BYTES, MAX_SCREENSHOT_BYTES, MAX_SMALL_BODY_BYTES, MAX_TEXT_BYTES,
};
use worktrail_shared::secret::DeviceToken;
use worktrail_shared::{BatchId, COMPANY_KEY_HEADER, ErrorCode, RecordId};
use worktrail_tests::{Backend, Options, TestServer, expect_error, http, tiny_jpeg};

async fn post(s: &TestServer, token: &DeviceToken, body: Vec<u8>) -> reqwest::Response {
    http()
        .post(s.url("/api/v1/agent/batches"))
        .header(COMPANY_KEY_HEADER, s.company_key.expose())
        .bearer_auth(token.expose())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A valid batch padded with trailing spaces to exactly `len` bytes.
fn padded_batch(len: usize) -> Vec<u8> {
    let b = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 1,
        dropped: Default::default(),
        records: vec![],
    };
    let mut json = serde_json::to_vec(&b).unwrap();
    json.resize(len, b' ');
    json
}

/// Sends raw bytes on a fresh connection and returns the status line (or "" if the server
/// closed the connection without answering).
async fn raw(s: &TestServer, request: &[u8], then_close: bool) -> String {
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    if then_close {
        conn.shutdown().await.unwrap();
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
}

fn head(s: &TestServer, token: &DeviceToken, content_length: usize) -> String {
    format!(
        "POST /api/v1/agent/batches HTTP/1.1\r\nHost: {}\r\nX-Company-Key: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n",
        s.addr,
        s.company_key.expose(),
        token.expose()
    )
}

async fn bodies_at_the_limit_pass_and_one_byte_over_is_refused(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    assert_eq!(
        post(&s, &token, padded_batch(MAX_BATCH_BYTES)).await.status(),
        200,
        "exactly at the limit"
    );
    expect_error(
        post(&s, &token, padded_batch(MAX_BATCH_BYTES + 1)).await,
        ErrorCode::PayloadTooLarge,
    )
    .await;
    // Enrolment has its own, smaller limit.
    let mut enrol = serde_json::to_vec(&serde_json::json!({
        "device_id": worktrail_shared::DeviceId::new(), "os_user": "x", "hostname": "h", "os": "o", "agent_version": "v"
    }))
    .unwrap();
    enrol.resize(MAX_SMALL_BODY_BYTES + 1, b' ');
    let resp = http()
        .post(s.url("/api/v1/agent/enroll"))
        .header(COMPANY_KEY_HEADER, s.company_key.expose())
        .body(enrol)
        .send()
        .await
        .unwrap();
    expect_error(resp, ErrorCode::PayloadTooLarge).await;
    // A screenshot one byte over its limit. The server answers as soon as it sees the length,
    // so the client may still be writing: read the answer while writing, ignoring write errors.
    let head = format!(
        "PUT /api/v1/agent/screenshots/{} HTTP/1.1\r\nHost: {}\r\nX-Company-Key: {}\r\n\
         Authorization: Bearer {}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        RecordId::new(),
        s.addr,
        s.company_key.expose(),
        token.expose(),
        MAX_SCREENSHOT_BYTES + 1
    );
    let conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&vec![0xFFu8; MAX_SCREENSHOT_BYTES + 1]).await;
    });
    let mut buf = vec![0u8; 1024];
    let n =
        tokio::time::timeout(Duration::from_secs(20), rd.read(&mut buf)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    writer.abort();
}

async fn lying_content_lengths_never_reach_a_5xx(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    // Claims more than the limit: refused before the body is read.
    let status = raw(&s, head(&s, &token, MAX_BATCH_BYTES * 10).as_bytes(), false).await;
    assert!(status.contains(" 413 "), "{status}");
    // Claims fewer bytes than it sends: the server reads what was claimed.
    let body = padded_batch(2000);
    let mut req = head(&s, &token, 10).into_bytes();
    req.extend_from_slice(&body);
    let status = raw(&s, &req, false).await;
    assert!(status.contains(" 422 "), "{status}");
    // Claims more than it sends, then hangs up.
    let mut req = head(&s, &token, 5000).into_bytes();
    req.extend_from_slice(&body[..100]);
    let status = raw(&s, &req, true).await;
    assert!(!status.contains(" 5"), "{status}");
    assert_eq!(http().get(s.url("/healthz")).send().await.unwrap().status(), 200);
}

async fn pathological_json_is_an_invalid_batch(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("nested 100,000 deep", deep.into_bytes()),
        ("deep inside a field", format!("{{\"batch_id\":{}}}", "[".repeat(60_000)).into_bytes()),
        ("invalid UTF-8", b"{\"batch_id\":\"\xff\xfe\",\"sent_at_ms\":1,\"records\":[]}".to_vec()),
        ("wrong types", br#"{"batch_id":7,"sent_at_ms":"now","records":{}}"#.to_vec()),
        ("huge array of nothing", format!("[{}0]", "0,".repeat(100_000)).into_bytes()),
        ("empty", Vec::new()),
        ("unknown record kind", br#"{"batch_id":"01900000-0000-7000-8000-000000000000","sent_at_ms":1,"records":[{"id":"01900000-0000-7000-8000-000000000001","seq":1,"kind":"keylog","keys":"secret"}]}"#.to_vec()),
    ];
    for (what, body) in cases {
        let resp = post(&s, &token, body).await;
        let code =
            if resp.status() == 413 { ErrorCode::PayloadTooLarge } else { ErrorCode::InvalidBatch };
        let msg = expect_error(resp, code).await;
        assert!(!msg.is_empty(), "{what}");
    }
    // A string over the per-field limit inside a body under the size limit.
    let long = Record {
        id: RecordId::new(),
        seq: 1,
        body: RecordBody::AppSpan {
            start_ms: 0,
            end_ms: 1,
            app: "x".repeat(MAX_TEXT_BYTES + 1),
            exe: None,
            title: None,
            task_id: None,
        },
    };
    let b = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 1,
        dropped: Default::default(),
        records: vec![long],
    };
    expect_error(post(&s, &token, serde_json::to_vec(&b).unwrap()).await, ErrorCode::InvalidBatch)
        .await;
    assert_eq!(s.store().record_counts(s.company).await.unwrap().total(), 0);
}

async fn fake_truncated_and_bomb_images_are_refused(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let id = RecordId::new();
    let meta = Record {
        id,
        seq: 1,
        body: RecordBody::Screenshot {
            taken_at_ms: 1,
            monitor: 0,
            width: 1,
            height: 1,
            bytes: 25,
            blurred: false,
        },
    };
    let b = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 1,
        dropped: Default::default(),
        records: vec![meta],
    };
    s.post_batch(&s.company_key, &token, &b).await.error_for_status().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let good = tiny_jpeg(16, 16, 1);
    let truncated = good[..good.len() - 4].to_vec();
    let bomb = tiny_jpeg(65_000, 65_000, 1);
    for (what, bytes) in
        [("png", png), ("truncated", truncated), ("60k × 60k bomb", bomb), ("empty", vec![])]
    {
        let resp = s.put_screenshot(&s.company_key, &token, id, bytes).await;
        let msg = expect_error(resp, ErrorCode::InvalidRequest).await;
        assert!(!msg.is_empty(), "{what}");
    }
    assert!(
        s.store().screenshots(s.company).await.unwrap()[0].object_key.is_none(),
        "nothing stored"
    );
}

async fn a_slow_body_is_cut_off_without_holding_up_others(backend: Backend) {
    let options = Options { request_timeout: Duration::from_secs(2), ..Default::default() };
    let Some(s) = TestServer::start_with(backend, options).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(head(&s, &token, 1000).as_bytes()).await.unwrap();
    let started = Instant::now();
    let dribble = async {
        for _ in 0..20 {
            if conn.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut buf = vec![0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
    };
    let others = async {
        // Meanwhile, other requests are answered at once.
        for _ in 0..10 {
            let t = Instant::now();
            assert_eq!(http().get(s.url("/healthz")).send().await.unwrap().status(), 200);
            assert!(t.elapsed() < Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (status, ()) = tokio::join!(dribble, others);
    assert!(status.contains(" 408 "), "{status}");
    assert!(started.elapsed() < Duration::from_secs(6), "cut off near the 2 s limit");
}

async fn a_flood_of_malformed_keys_never_touches_the_database(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    s.store().close().await;
    let client = http();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let client = client.clone();
        let url = s.url("/api/v1/agent/policy");
        tasks.spawn(async move {
            for i in 0..1250 {
                let key = format!("wtk_{worker}{i}{}", "x".repeat(30));
                let resp = client.get(&url).header(COMPANY_KEY_HEADER, key).send().await.unwrap();
                assert_eq!(resp.status(), 401);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

both_backends!(
    bodies_at_the_limit_pass_and_one_byte_over_is_refused,
    lying_content_lengths_never_reach_a_5xx,
    pathological_json_is_an_invalid_batch,
    fake_truncated_and_bomb_images_are_refused,
    a_slow_body_is_cut_off_without_holding_up_others,
    a_flood_of_malformed_keys_never_touches_the_database,
);

/// Everything the process logs, for scanning.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Keys, tokens and passwords pass through enrolment, sync, rotation, invitations and sign-in
/// (right and wrong); none of them appears in the logs (at trace level), an error body, or the
/// database file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_error_bodies_or_the_database() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("this test owns its process");
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let logins = s.seed_logins().await;
    let (_, token) = s.enroll("ada@test.example").await;
    let mut secrets =
        vec![s.company_key.expose().to_owned(), token.expose().to_owned(), logins.owner.1.clone()];
    let mut bodies = String::new();
    // Wrong keys and tokens close to the real ones.
    let mut typo = s.company_key.expose().to_owned();
    typo.pop();
    typo.push('Z');
    for key in [typo.as_str(), s.company_key.expose()] {
        let resp = http()
            .get(s.url("/api/v1/agent/policy"))
            .header(COMPANY_KEY_HEADER, key)
            .bearer_auth(format!("{}x", token.expose()))
            .send()
            .await
            .unwrap();
        bodies.push_str(&resp.text().await.unwrap());
    }
    secrets.push(typo);
    let b = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 1,
        dropped: Default::default(),
        records: vec![],
    };
    s.post_batch(&s.company_key, &token, &b).await.error_for_status().unwrap();
    // Sign-in, right and wrong.
    let owner = s.signed_in(&logins.owner).await;
    let wrong = worktrail_tests::portal_client()
        .post(s.url("/login"))
        .form(&[("email", logins.admin.0.as_str()), ("password", "hunter2-wrong-password")])
        .send()
        .await
        .unwrap();
    bodies.push_str(&wrong.text().await.unwrap());
    secrets.push("hunter2-wrong-password".into());
    // A rotated key, and an invitation accepted with a new password.
    let rotated: serde_json::Value = owner
        .post(s.url(&format!("/api/v1/owner/companies/{}/actions", s.company)))
        .json(&serde_json::json!({ "action": "rotate_key", "grace_days": 1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(rotated["company_key"].as_str().unwrap().to_owned());
    let created: serde_json::Value = owner
        .post(s.url("/api/v1/owner/companies"))
        .json(&serde_json::json!({ "name": "Secretive Co", "plan": "trial", "admin_email": "boss@secretive.example" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(created["company_key"].as_str().unwrap().to_owned());
    let invitation = created["invitation_path"].as_str().unwrap().to_owned();
    secrets.push(invitation.trim_start_matches("/invite/").to_owned());
    let accepted = worktrail_tests::portal_client()
        .post(s.url(&invitation))
        .form(&[("password", "the-boss-secret-passphrase")])
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 303);
    secrets.push("the-boss-secret-passphrase".into());
    // Let writers finish, then look everywhere.
    s.store().close().await;
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("device enrolled"), "logging was captured");
    let mut database = Vec::new();
    let db_path = s.db.url.trim_start_matches("sqlite://").to_owned();
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(format!("{db_path}{suffix}")) {
            database.extend(bytes);
        }
    }
    assert!(!database.is_empty());
    let database = String::from_utf8_lossy(&database);
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        assert!(!bodies.contains(secret.as_str()), "a secret is in an error body");
        assert!(!database.contains(secret.as_str()), "a secret is in the database file");
    }
}
