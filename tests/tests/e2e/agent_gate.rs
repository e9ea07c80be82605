//! The agent gate (SPEC 4.3): every rejection code at its status, in the specified order.

use worktrail_server::clock::Clock;
use worktrail_server::domain::plan::Plan;
use worktrail_server::domain::subscription::{DAY_MS, Subscription, SubscriptionStatus};
use worktrail_server::provision;
use worktrail_server::ratelimit::{Rate, RateLimits};
use worktrail_shared::secret::{CompanyKey, DeviceToken};
use worktrail_shared::{COMPANY_KEY_HEADER, ErrorCode, PlanId};
use worktrail_tests::{Backend, Options, TestServer, expect_error, http};

async fn company_key_problems_answer_invalid_company_key(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    // Missing header.
    let resp = http().get(s.url("/api/v1/agent/policy")).bearer_auth(token.expose()).send().await;
    expect_error(resp.unwrap(), ErrorCode::InvalidCompanyKey).await;
    // Malformed: wrong checksum.
    let mut typo = s.company_key.expose().to_owned();
    typo.replace_range(10..11, if &typo[10..11] == "a" { "b" } else { "a" });
    let msg =
        expect_error(s.get_policy(&typo, Some(&token)).await, ErrorCode::InvalidCompanyKey).await;
    assert!(msg.contains("checksum"), "{msg}");
    // Well formed but unknown.
    let unknown = worktrail_server::domain::keys::new_company_key();
    let msg = expect_error(
        s.get_policy(unknown.expose(), Some(&token)).await,
        ErrorCode::InvalidCompanyKey,
    )
    .await;
    assert!(msg.contains("not known"), "{msg}");
    // The right key works.
    assert_eq!(s.get_policy(s.company_key.expose(), Some(&token)).await.status(), 200);
}

async fn a_rotated_key_works_until_its_grace_ends(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let now = s.clock.now_ms();
    let new_key = provision::rotate_company_key(s.store(), s.company, DAY_MS, now).await.unwrap();
    let old = s.company_key.expose();
    assert_eq!(s.get_policy(old, Some(&token)).await.status(), 200, "old key in its grace");
    assert_eq!(s.get_policy(new_key.expose(), Some(&token)).await.status(), 200);
    s.clock.advance(DAY_MS);
    let msg =
        expect_error(s.get_policy(old, Some(&token)).await, ErrorCode::InvalidCompanyKey).await;
    assert!(msg.contains("rotated"), "{msg}");
    assert_eq!(s.get_policy(new_key.expose(), Some(&token)).await.status(), 200);
}

async fn a_malformed_key_is_rejected_before_any_database_query(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    // With the database closed, anything that queried it would fail with 500.
    s.store().close().await;
    let resp = s.get_policy("wtk_definitely-not-a-key", None).await;
    expect_error(resp, ErrorCode::InvalidCompanyKey).await;
    let resp = s.get_policy(&s.company_key.expose()[..20], None).await;
    expect_error(resp, ErrorCode::InvalidCompanyKey).await;
    assert_eq!(s.server_faults().0, 0, "the refusals are 4xx");
    // Control: a well-formed key does reach the (closed) database.
    let resp = s.get_policy(s.company_key.expose(), None).await;
    expect_error(resp, ErrorCode::Internal).await;
    // …and the soak reports' 5xx count sees it.
    assert_eq!(s.server_faults().0, 1);
}

async fn suspension_and_subscription_states_answer_their_codes(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let key = s.company_key.expose();
    let now = s.clock.now_ms();
    let s = &s;
    let set = |sub: Subscription| async move {
        s.store().set_subscription(s.company, &sub, "test", now).await.unwrap();
    };
    set(Subscription {
        status: SubscriptionStatus::Active,
        trial_ends_at_ms: None,
        period_end_at_ms: Some(now - 8 * DAY_MS),
        grace_days: 7,
    })
    .await;
    expect_error(s.get_policy(key, Some(&token)).await, ErrorCode::SubscriptionExpired).await;
    set(Subscription {
        status: SubscriptionStatus::Active,
        trial_ends_at_ms: None,
        period_end_at_ms: Some(now - DAY_MS),
        grace_days: 7,
    })
    .await;
    assert_eq!(s.get_policy(key, Some(&token)).await.status(), 200, "past_due works in grace");
    set(Subscription {
        status: SubscriptionStatus::Cancelled,
        trial_ends_at_ms: None,
        period_end_at_ms: Some(now + DAY_MS),
        grace_days: 7,
    })
    .await;
    expect_error(s.get_policy(key, Some(&token)).await, ErrorCode::SubscriptionCancelled).await;
    set(Subscription::trial(now, 14)).await;
    assert_eq!(s.get_policy(key, Some(&token)).await.status(), 200);
    s.store().set_company_suspended(s.company, true, now).await.unwrap();
    expect_error(s.get_policy(key, Some(&token)).await, ErrorCode::CompanySuspended).await;
    // Enrolment passes the same gate.
    let (status, body) = s.enroll_with(&s.company_key, "bob@test.example").await.unwrap_err();
    assert_eq!((status.as_u16(), body.code), (403, ErrorCode::CompanySuspended));
    s.store().set_company_suspended(s.company, false, now).await.unwrap();
    assert_eq!(s.get_policy(key, Some(&token)).await.status(), 200, "reactivated");
    let history = s.store().subscription_history(s.company).await.unwrap();
    assert_eq!(history.len(), 7, "creation, four changes, suspension, reactivation: {history:?}");
    assert_eq!(history[5].1, worktrail_server::domain::subscription::SubscriptionStatus::Suspended);
    assert_eq!(history[6].1, worktrail_server::domain::subscription::SubscriptionStatus::Trialing);
}

async fn a_trial_ends_exactly_at_its_end_and_suspension_is_checked_first(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let key = s.company_key.expose();
    let sub = s.store().subscription(s.company).await.unwrap().unwrap();
    let end = sub.trial_ends_at_ms.expect("the test company is on a trial");
    s.clock.set(end - 1);
    assert_eq!(s.get_policy(key, Some(&token)).await.status(), 200);
    s.clock.set(end);
    expect_error(s.get_policy(key, Some(&token)).await, ErrorCode::TrialExpired).await;
    // Both suspended and expired: step 2 comes before step 3.
    s.store().set_company_suspended(s.company, true, end).await.unwrap();
    expect_error(s.get_policy(key, Some(&token)).await, ErrorCode::CompanySuspended).await;
}

async fn device_token_problems_answer_device_codes(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (device, token) = s.enroll("ada@test.example").await;
    let key = s.company_key.expose();
    expect_error(s.get_policy(key, None).await, ErrorCode::DeviceUnknown).await;
    let stranger = worktrail_server::domain::keys::new_device_token();
    expect_error(s.get_policy(key, Some(&stranger)).await, ErrorCode::DeviceUnknown).await;
    let resp = http()
        .get(s.url("/api/v1/agent/policy"))
        .header(COMPANY_KEY_HEADER, key)
        .bearer_auth("wtd_tooshort")
        .send()
        .await
        .unwrap();
    expect_error(resp, ErrorCode::DeviceUnknown).await;
    s.store().revoke_device(s.company, device, s.clock.now_ms()).await.unwrap();
    expect_error(s.get_policy(key, Some(&token)).await, ErrorCode::DeviceRevoked).await;
}

async fn another_companys_key_with_this_device_token_is_rejected(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token_a) = s.enroll("ada@test.example").await;
    let (_, key_b) = s.add_company("Other Co").await;
    expect_error(s.get_policy(key_b.expose(), Some(&token_a)).await, ErrorCode::DeviceUnknown)
        .await;
}

async fn enrolment_beyond_the_plans_seats_answers_seat_limit_reached(backend: Backend) {
    let Some(s) = TestServer::start_with(
        backend,
        Options { plan: "duo".into(), extra_plans: vec![duo_plan()], ..Default::default() },
    )
    .await
    else {
        return;
    };
    s.enroll("one@test.example").await;
    s.enroll("two@test.example").await;
    // Another device of an existing employee takes no seat.
    s.enroll("two@test.example").await;
    let (status, body) = s.enroll_with(&s.company_key, "three@test.example").await.unwrap_err();
    assert_eq!((status.as_u16(), body.code), (402, ErrorCode::SeatLimitReached));
}

/// A two-seat plan for the seat test.
fn duo_plan() -> Plan {
    Plan {
        id: PlanId::new(),
        code: "duo".into(),
        name: "Duo".into(),
        max_seats: 2,
        retention_days: 30,
        screenshots_allowed: true,
        price_cents: 100,
        trial_days: 14,
    }
}

async fn too_many_requests_answer_rate_limited_with_retry_after(backend: Backend) {
    let limits = RateLimits {
        device: Rate { per_sec: 0.5, burst: 3.0 },
        company: Rate { per_sec: 1000.0, burst: 1000.0 },
    };
    let Some(s) =
        TestServer::start_with(backend, Options { rate_limits: limits, ..Default::default() })
            .await
    else {
        return;
    };
    let (_, token) = s.enroll("ada@test.example").await;
    let key = s.company_key.expose();
    for _ in 0..3 {
        assert_eq!(s.get_policy(key, Some(&token)).await.status(), 200);
    }
    let resp = s.get_policy(key, Some(&token)).await;
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 2, "one token at 0.5/s");
    expect_error(resp, ErrorCode::RateLimited).await;
    s.clock.advance(2_000);
    assert_eq!(s.get_policy(key, Some(&token)).await.status(), 200, "refilled after Retry-After");
}

async fn a_successful_call_updates_last_sync_and_last_seen(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (device, token) = s.enroll("ada@test.example").await;
    s.clock.advance(60_000);
    let now = s.clock.now_ms();
    assert_eq!(s.get_policy(s.company_key.expose(), Some(&token)).await.status(), 200);
    let company = s.store().company(s.company).await.unwrap().unwrap();
    assert_eq!(company.last_sync_at_ms, Some(now));
    let devices = s.store().devices(s.company).await.unwrap();
    let row = devices.iter().find(|d| d.id == device).unwrap();
    assert_eq!(row.last_seen_at_ms, Some(now));
    // The company's last sync is kept to the second (a busy company's row is not rewritten by
    // every call); the device's last call is exact.
    let last_sync = async || s.store().company(s.company).await.unwrap().unwrap().last_sync_at_ms;
    let last_seen = async || {
        let devices = s.store().devices(s.company).await.unwrap();
        devices.iter().find(|d| d.id == device).unwrap().last_seen_at_ms
    };
    s.clock.advance(400);
    assert_eq!(s.get_policy(s.company_key.expose(), Some(&token)).await.status(), 200);
    assert_eq!(last_sync().await, Some(now), "within a second of the last one stored");
    assert_eq!(last_seen().await, Some(now + 400));
    s.clock.advance(700);
    assert_eq!(s.get_policy(s.company_key.expose(), Some(&token)).await.status(), 200);
    assert_eq!(last_sync().await, Some(now + 1_100));
    assert_eq!(last_seen().await, Some(now + 1_100));
}

async fn re_enrolment_keeps_one_device_row_and_replaces_the_token(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let key: &CompanyKey = &s.company_key;
    let req = |device_id| worktrail_shared::api::EnrollRequest {
        device_id,
        email: Some("Ada@Test.Example ".into()),
        os_user: "ada".into(),
        hostname: "laptop".into(),
        os: "Linux".into(),
        agent_version: "1".into(),
    };
    let device_id = worktrail_shared::DeviceId::new();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let resp = http()
            .post(s.url("/api/v1/agent/enroll"))
            .header(COMPANY_KEY_HEADER, key.expose())
            .json(&req(device_id))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: worktrail_shared::api::EnrollResponse = resp.json().await.unwrap();
        assert_eq!(body.company_name, "Test Co");
        tokens.push(DeviceToken::parse(&body.device_token).unwrap());
    }
    assert_eq!(s.store().devices(s.company).await.unwrap().len(), 1);
    let user = s.store().user_by_email(s.company, "ada@test.example").await.unwrap();
    assert!(user.is_some(), "e-mail stored trimmed and lower-case");
    expect_error(s.get_policy(key.expose(), Some(&tokens[0])).await, ErrorCode::DeviceUnknown)
        .await;
    assert_eq!(s.get_policy(key.expose(), Some(&tokens[1])).await.status(), 200);
}

both_backends!(
    company_key_problems_answer_invalid_company_key,
    a_rotated_key_works_until_its_grace_ends,
    a_malformed_key_is_rejected_before_any_database_query,
    suspension_and_subscription_states_answer_their_codes,
    a_trial_ends_exactly_at_its_end_and_suspension_is_checked_first,
    device_token_problems_answer_device_codes,
    another_companys_key_with_this_device_token_is_rejected,
    enrolment_beyond_the_plans_seats_answers_seat_limit_reached,
    too_many_requests_answer_rate_limited_with_retry_after,
    a_successful_call_updates_last_sync_and_last_seen,
    re_enrolment_keeps_one_device_row_and_replaces_the_token,
);
