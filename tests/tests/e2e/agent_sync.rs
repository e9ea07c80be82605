//! The agent core's sync against the real server (issue 3): offline queueing, exactly-once
//! delivery, the 402 block, Retry-After, key rotation. Fake probes and a manual agent clock make
//! every step deterministic; the server is real.

use std::collections::HashSet;
use std::sync::Arc;
use worktrail_agent_core::agent::RECHECK_MS;
use worktrail_agent_core::probe::fake::{FakeIdle, FakeWindow};
use worktrail_agent_core::sync::SyncError;
use worktrail_agent_core::{Clock, ManualClock};
use worktrail_server::clock::Clock as _;
use worktrail_server::domain::subscription::DAY_MS;
use worktrail_server::provision;
use worktrail_server::ratelimit::{Rate, RateLimits};
use worktrail_shared::ErrorCode;
use worktrail_shared::RecordId;
use worktrail_tests::agent::{TestAgent, agent_clock, fake_probes};
use worktrail_tests::{Backend, Options, TestServer};

struct Rig {
    a: TestAgent,
    clock: ManualClock,
    window: FakeWindow,
    _idle: FakeIdle,
}

async fn rig(server: &TestServer) -> Rig {
    let (probes, window, idle) = fake_probes();
    let clock = agent_clock(server);
    let a = TestAgent::enrolled(server, "ada@test.example", probes, Arc::new(clock.clone())).await;
    Rig { a, clock, window, _idle: idle }
}

impl Rig {
    /// `secs` samples one second apart, switching windows every 3 s so spans close.
    async fn work(&mut self, secs: usize) {
        for i in 0..secs {
            self.window
                .focus("code", &format!("file {}", (self.clock.now_ms() / 3_000) + i as i64 / 3));
            self.clock.advance(1_000);
            self.a.agent.sample_once().await.unwrap();
        }
    }

    async fn queued(&self) -> Vec<RecordId> {
        self.a.agent.queue().call(|db| db.queued_ids()).await.unwrap()
    }
}

async fn server_ids(server: &TestServer) -> Vec<RecordId> {
    server.store().record_ids(server.company).await.unwrap()
}

fn assert_exactly_once(server_ids: &[RecordId], expected: &[RecordId]) {
    let unique: HashSet<_> = server_ids.iter().collect();
    assert_eq!(unique.len(), server_ids.len(), "a record is stored twice");
    let expected: HashSet<_> = expected.iter().collect();
    assert_eq!(unique, expected, "records lost or invented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_queue_while_the_server_is_down_and_arrive_once_when_it_is_back() {
    let mut server = TestServer::start(Backend::Sqlite).await.unwrap();
    let mut r = rig(&server).await;
    r.work(20).await;
    let mut sent = r.queued().await;
    r.a.agent.sync_once().await.unwrap();
    assert_exactly_once(&server_ids(&server).await, &sent);

    server.stop().await;
    r.work(30).await;
    let err = r.a.agent.syncer.sync_once().await.unwrap_err();
    assert!(matches!(err, SyncError::Network(_)), "{err:?}");
    assert!(err.is_retryable());
    // The failure is scheduled with backoff, and nothing left the queue.
    assert!(r.a.agent.syncer.next_sync_ms() > r.clock.now_ms());
    r.work(30).await;
    let offline = r.queued().await;
    assert!(offline.len() >= 10, "{}", offline.len());
    assert!(r.a.agent.status().await.unwrap().last_error.is_some());

    server.restart().await;
    let report = r.a.agent.sync_once().await.unwrap();
    assert_eq!(report.accepted as usize, offline.len());
    sent.extend(offline);
    assert_exactly_once(&server_ids(&server).await, &sent);
    assert!(r.a.agent.status().await.unwrap().last_error.is_none());
    assert!(r.queued().await.is_empty());
    // Syncing again sends nothing and stores nothing twice.
    assert_eq!(r.a.agent.sync_once().await.unwrap().batches, 0);
    assert_exactly_once(&server_ids(&server).await, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_402_stops_capture_keeps_the_queue_and_reports_trial_expired() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let mut r = rig(&server).await;
    r.work(10).await;
    let sub = server.store().subscription(server.company).await.unwrap().unwrap();
    server.clock.set(sub.trial_ends_at_ms.unwrap());

    let err = r.a.agent.syncer.sync_once().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TrialExpired));
    let status = r.a.agent.status().await.unwrap();
    let blocked = status.blocked.expect("blocked");
    assert_eq!(blocked.code, ErrorCode::TrialExpired);
    assert!(!status.capturing);
    let queued = r.queued().await;
    assert!(!queued.is_empty(), "the queue is kept");

    // Capture has stopped: the open span and session were closed once, then nothing more.
    r.work(1).await;
    let after_stop = r.queued().await.len();
    r.work(30).await;
    assert_eq!(r.queued().await.len(), after_stop, "nothing captured while blocked");

    // Re-checked every 15 minutes, not before; once renewed, capture and sync resume.
    let mut renewed = sub.clone();
    renewed.trial_ends_at_ms = Some(sub.trial_ends_at_ms.unwrap() + 30 * DAY_MS);
    server
        .store()
        .set_subscription(server.company, &renewed, "test", server.clock.now_ms())
        .await
        .unwrap();
    r.a.agent.syncer.step().await;
    assert!(r.a.agent.status().await.unwrap().blocked.is_some(), "no recheck before 15 min");
    r.clock.advance(RECHECK_MS);
    r.a.agent.syncer.step().await;
    let status = r.a.agent.status().await.unwrap();
    assert!(status.blocked.is_none() && status.capturing, "{status:?}");
    r.work(6).await;
    r.a.agent.sync_once().await.unwrap();
    assert!(r.queued().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_after_holds_back_every_request_until_it_has_passed() {
    let limits = RateLimits {
        device: Rate { per_sec: 0.5, burst: 2.0 },
        company: Rate { per_sec: 1000.0, burst: 1000.0 },
    };
    let server = TestServer::start_with(
        Backend::Sqlite,
        Options { rate_limits: limits, ..Default::default() },
    )
    .await
    .unwrap();
    let mut r = rig(&server).await;
    // Spend the device's burst, one batch per sync.
    let mut rate_limited = None;
    for _ in 0..5 {
        r.work(3).await;
        match r.a.agent.syncer.sync_once().await {
            Ok(_) => {}
            Err(e) => {
                rate_limited = Some(e);
                break;
            }
        }
    }
    let err = rate_limited.expect("the server rate-limits the device");
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    assert_eq!(err.retry_after().map(|d| d.as_secs()), Some(2));
    let now = r.clock.now_ms();
    assert_eq!(r.a.agent.syncer.not_before_ms(), now + 2_000);
    assert!(r.a.agent.syncer.next_sync_ms() >= now + 2_000);

    // An on-demand sync inside the window does not reach the server at all.
    let before = server.store().record_counts(server.company).await.unwrap().total();
    r.clock.advance(1_999);
    server.clock.advance(1_999);
    let err = r.a.agent.syncer.sync_once().await.unwrap_err();
    assert!(matches!(err, SyncError::Deferred(_)), "{err:?}");
    assert_eq!(server.store().record_counts(server.company).await.unwrap().total(), before);

    // Once it has passed, the queue goes through.
    r.clock.advance(1);
    server.clock.advance(1);
    r.a.agent.syncer.sync_once().await.unwrap();
    assert!(r.queued().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_company_key_keeps_working_within_its_grace() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let mut r = rig(&server).await;
    r.work(6).await;
    r.a.agent.sync_once().await.unwrap();
    provision::rotate_company_key(server.store(), server.company, DAY_MS, server.clock.now_ms())
        .await
        .unwrap();

    // Within the grace the agent's old key still syncs.
    server.clock.advance(DAY_MS - 60_000);
    r.work(6).await;
    let queued = r.queued().await;
    let report = r.a.agent.sync_once().await.unwrap();
    assert_eq!(report.accepted as usize, queued.len());

    // After it, the old key is refused and the agent blocks with the reason.
    server.clock.advance(60_000);
    r.work(6).await;
    let err = r.a.agent.syncer.sync_once().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCompanyKey));
    let status = r.a.agent.status().await.unwrap();
    assert_eq!(status.blocked.map(|b| b.code), Some(ErrorCode::InvalidCompanyKey));
    assert!(!r.queued().await.is_empty(), "the queue is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_shows_as_a_gap_and_is_refused_when_the_policy_forbids_it() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let mut r = rig(&server).await;
    r.work(5).await;
    assert!(r.a.agent.set_paused(true).await.unwrap());
    let paused_at = r.queued().await.len();
    r.work(20).await;
    assert_eq!(r.queued().await.len(), paused_at, "nothing is captured while paused");
    assert!(!r.a.agent.status().await.unwrap().capturing);
    assert!(!r.a.agent.set_paused(false).await.unwrap());
    r.work(5).await;
    r.a.agent.capture.stop().await.unwrap();
    r.a.agent.sync_once().await.unwrap();
    // Two sessions: one ended by the pause, one after it, with a gap between.
    let counts = server.store().record_counts(server.company).await.unwrap();
    assert_eq!(counts.work_sessions, 2, "{counts:?}");

    let policy = worktrail_shared::policy::Policy { allow_pause: false, ..Default::default() };
    server.store().set_policy(server.company, &policy).await.unwrap();
    r.a.agent.syncer.refresh_policy().await.unwrap();
    assert!(!r.a.agent.set_paused(true).await.unwrap(), "pause refused by policy");
    assert!(r.a.agent.status().await.unwrap().capturing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_enrolling_with_another_company_never_sends_it_the_previous_companys_records() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let (other, other_key) = server.add_company("Other Co").await;
    let mut r = rig(&server).await;
    r.work(10).await;
    assert!(!r.queued().await.is_empty());
    r.a.agent.enroll(&server.base_url, other_key, Some("ada@other.example".into())).await.unwrap();
    assert!(r.queued().await.is_empty());
    r.work(6).await;
    r.a.agent.capture.stop().await.unwrap();
    r.a.agent.sync_once().await.unwrap();
    assert_eq!(server.store().record_counts(server.company).await.unwrap().total(), 0);
    assert!(server.store().record_counts(other).await.unwrap().total() > 0);
}
