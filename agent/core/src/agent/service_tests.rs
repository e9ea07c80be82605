//! The service against a stub server on port 0, with fake probes and the real clock: the codes a
//! UI sees, enrolment starting capture, pause closing the open span, sync now, shutdown.

use super::*;
use crate::agent::Probes;
use crate::clock::SystemClock;
use crate::probe::fake::{FakeIdle, FakeWindow};
use crate::secrets::{MemoryStore, Secrets};
use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::time::Instant;
use worktrail_shared::api::{BatchAck, BatchRequest, EnrollResponse, PolicyResponse};
use worktrail_shared::policy::Policy;
use worktrail_shared::secret::DeviceToken;
use worktrail_shared::{CompanyId, UserId};

fn fill(b: &mut [u8]) {
    b.iter_mut().enumerate().for_each(|(i, x)| *x = (i * 3) as u8);
}

fn quiet_policy() -> Policy {
    // Syncs only when asked, so the test sees what the queue holds.
    let mut p = Policy { sync_interval_secs: 3600, ..Policy::default() };
    p.screenshots.enabled = false;
    p
}

async fn stub_server(good_key: String) -> String {
    let enroll = move |headers: HeaderMap| {
        let good = headers.get("x-company-key").and_then(|v| v.to_str().ok()) == Some(&good_key);
        async move {
            if !good {
                let body = r#"{"code":"invalid_company_key","message":"unknown company key"}"#;
                return (StatusCode::UNAUTHORIZED, body).into_response();
            }
            Json(EnrollResponse {
                company_id: CompanyId::new(),
                company_name: "Stub Co".into(),
                employee_id: UserId::new(),
                device_id: DeviceId::new(),
                device_token: DeviceToken::generate(fill).expose().to_owned(),
                policy: quiet_policy(),
            })
            .into_response()
        }
    };
    let policy = || async {
        Json(PolicyResponse { policy: quiet_policy(), time_zone: "UTC".into(), server_time_ms: 0 })
    };
    let batches = |body: axum::body::Bytes| async move {
        let json = zstd::decode_all(&body[..]).unwrap();
        let batch: BatchRequest = serde_json::from_slice(&json).unwrap();
        Json(BatchAck {
            batch_id: batch.batch_id,
            accepted: batch.records.len() as u32,
            duplicates: 0,
            max_seq: batch.records.iter().map(|r| r.seq).max().unwrap_or(0),
            server_time_ms: 0,
        })
    };
    let app = Router::new()
        .route("/api/v1/agent/enroll", post(enroll))
        .route("/api/v1/agent/policy", get(policy))
        .route("/api/v1/agent/batches", post(batches));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn start(dir: &std::path::Path, window: &FakeWindow) -> AgentHandle {
    let probes = Probes {
        window: Box::new(window.clone()),
        idle: Box::new(FakeIdle::default()),
        screen: None,
    };
    let secrets = Secrets(Arc::new(MemoryStore::default()));
    spawn(Agent::open(dir, secrets, probes, Arc::new(SystemClock)).unwrap()).unwrap()
}

async fn until<T>(what: &str, h: &AgentHandle, f: impl Fn(&Snapshot) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = h.snapshot().await.unwrap();
        if let Some(v) = f(&s) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_stable_codes_and_nothing_is_captured_before_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let window = FakeWindow::default();
    window.focus("editor", "notes.txt");
    let h = start(dir.path(), &window);
    let s = h.snapshot().await.unwrap();
    assert_eq!((s.state, s.status.enrolled, s.current_app), (TrayState::NotEnrolled, false, None));

    let key = CompanyKey::generate(fill);
    let e = h.enroll("ftp://example.com", key.expose(), None).await.unwrap_err();
    assert_eq!(e.code, codes::INVALID_SERVER_URL);
    let e = h.enroll("http://127.0.0.1:9", "not-a-key", None).await.unwrap_err();
    assert_eq!(e.code, "invalid_company_key");
    let e = h.sync_now().await.unwrap_err();
    assert_eq!(e.code, codes::NOT_ENROLLED);
    assert_eq!(h.snapshot().await.unwrap().status.queue.records, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_starts_tracking_pause_closes_the_span_and_sync_now_sends_it() {
    let good = CompanyKey::generate(fill);
    let base = stub_server(good.expose().to_owned()).await;
    let dir = tempfile::tempdir().unwrap();
    let window = FakeWindow::default();
    window.focus("editor", "notes.txt");
    let h = start(dir.path(), &window);

    let wrong = CompanyKey::generate(|b| b.fill(7));
    let e = h.enroll(&base, wrong.expose(), None).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("invalid_company_key", "unknown company key")
    );
    assert_eq!(h.snapshot().await.unwrap().state, TrayState::NotEnrolled);

    let enrolled = h.enroll(&format!("{base}/"), good.expose(), Some(" ".into())).await.unwrap();
    assert_eq!((enrolled.company_name.as_str(), enrolled.email), ("Stub Co", None));
    let app = until("the current app", &h, |s| s.current_app.clone()).await;
    assert_eq!(app, "editor");
    let s = h.snapshot().await.unwrap();
    assert_eq!(s.state, TrayState::Tracking);
    assert_eq!(s.status.enrollment.unwrap().server_url, base);

    // Pausing closes the open span at once: it waits in the queue (syncs are hourly here).
    assert_eq!(h.set_paused(true), Ok(true));
    let queued = until("the closed span in the queue", &h, |s| {
        (s.state == TrayState::Paused && s.status.queue.records > 0)
            .then_some(s.status.queue.records)
    })
    .await;
    assert_eq!(h.snapshot().await.unwrap().current_app, None);
    let report = h.sync_now().await.unwrap();
    assert!(report.accepted >= queued, "{report:?}");
    assert_eq!(h.snapshot().await.unwrap().status.queue.records, 0);

    assert_eq!(h.set_paused(false), Ok(false));
    until("tracking again", &h, |s| s.current_app.clone()).await;
    h.shutdown().await;
    // The span open at shutdown was written.
    assert!(h.snapshot().await.unwrap().status.queue.records > 0);
}

#[test]
fn the_icon_state_follows_enrolment_block_pause_and_sync_errors_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let agent = Agent::open(
        dir.path(),
        Secrets(Arc::new(MemoryStore::default())),
        Probes::none(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let mut s = rt.block_on(agent.status()).unwrap();
    assert_eq!(TrayState::of(&s), TrayState::NotEnrolled);
    s.enrolled = true;
    assert_eq!(TrayState::of(&s), TrayState::Tracking);
    s.last_error = Some("network: refused".into());
    assert_eq!(TrayState::of(&s), TrayState::Offline);
    s.paused = true;
    assert_eq!(TrayState::of(&s), TrayState::Paused);
    s.blocked = Some(crate::agent::Blocked {
        code: worktrail_shared::ErrorCode::TrialExpired,
        message: "trial over".into(),
        since_ms: 0,
    });
    assert_eq!(TrayState::of(&s), TrayState::Blocked);
}
