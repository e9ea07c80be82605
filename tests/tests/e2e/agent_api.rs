//! Batches and screenshots through the real HTTP API: idempotent ingest, conflicts, compression,
//! size limits, and screenshot uploads scoped to the company and device.

use std::io::Write;
use worktrail_server::clock::Clock;
use worktrail_shared::api::{BatchAck, BatchRequest, Record, RecordBody, ScreenshotAck};
use worktrail_shared::limits::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS};
use worktrail_shared::secret::DeviceToken;
use worktrail_shared::{BatchId, COMPANY_KEY_HEADER, ErrorCode, RecordId};
use worktrail_tests::{Backend, TestServer, expect_error, http, tiny_jpeg};

fn app_span(seq: i64, title: &str) -> Record {
    Record {
        id: RecordId::new(),
        seq,
        body: RecordBody::AppSpan {
            start_ms: 1_800_000_000_000 + seq * 1000,
            end_ms: 1_800_000_000_000 + seq * 1000 + 900,
            app: "xterm".into(),
            exe: Some("/usr/bin/xterm".into()),
            title: Some(title.into()),
            task_id: None,
        },
    }
}

fn batch(records: Vec<Record>) -> BatchRequest {
    BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: 1_800_000_000_000,
        dropped: Default::default(),
        records,
    }
}

async fn send_raw(
    s: &TestServer,
    token: &DeviceToken,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> reqwest::Response {
    let mut req = http()
        .post(s.url("/api/v1/agent/batches"))
        .header(COMPANY_KEY_HEADER, s.company_key.expose())
        .bearer_auth(token.expose())
        .header("content-type", "application/json");
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.body(body).send().await.unwrap()
}

async fn send(s: &TestServer, token: &DeviceToken, b: &BatchRequest) -> reqwest::Response {
    send_raw(s, token, serde_json::to_vec(b).unwrap(), None).await
}

async fn a_batch_sent_twice_is_stored_once_with_the_same_answer(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let b = batch((1..=20).map(|i| app_span(i, "build")).collect());
    let first: BatchAck = send(&s, &token, &b).await.json().await.unwrap();
    assert_eq!((first.accepted, first.duplicates, first.max_seq), (20, 0, 20));
    s.clock.advance(5_000);
    let mut again = b.clone();
    again.sent_at_ms += 5_000; // a retry may be re-stamped; it is still the same batch
    let second: BatchAck = send(&s, &token, &again).await.json().await.unwrap();
    assert_eq!(second, first, "the retry gets the stored answer");
    let counts = s.store().record_counts(s.company).await.unwrap();
    assert_eq!((counts.app_spans, counts.batches), (20, 1));
}

async fn records_already_stored_are_counted_as_duplicates_in_a_new_batch(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let records: Vec<Record> = (1..=10).map(|i| app_span(i, "x")).collect();
    send(&s, &token, &batch(records[..6].to_vec())).await.error_for_status().unwrap();
    let ack: BatchAck = send(&s, &token, &batch(records.clone())).await.json().await.unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (4, 6));
    let mut ids = s.store().record_ids(s.company).await.unwrap();
    ids.sort();
    let mut sent: Vec<RecordId> = records.iter().map(|r| r.id).collect();
    sent.sort();
    assert_eq!(ids, sent);
}

async fn a_changed_body_under_the_same_batch_id_is_a_conflict(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let b = batch(vec![app_span(1, "one")]);
    send(&s, &token, &b).await.error_for_status().unwrap();
    let mut changed = b.clone();
    changed.records.push(app_span(2, "two"));
    expect_error(send(&s, &token, &changed).await, ErrorCode::BatchConflict).await;
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 1);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn gzip_and_zstd_batches_are_accepted(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let b1 = batch(
        (1..=MAX_BATCH_RECORDS as i64).map(|i| app_span(i, "a fairly long window title")).collect(),
    );
    let json = serde_json::to_vec(&b1).unwrap();
    assert!(json.len() < MAX_BATCH_BYTES, "a full batch of spans fits the limit");
    let ack: BatchAck = send_raw(&s, &token, gzip(&json), Some("gzip")).await.json().await.unwrap();
    assert_eq!(ack.accepted, MAX_BATCH_RECORDS as u32);
    let b2 = batch((1..=50).map(|i| app_span(1000 + i, "zstd")).collect());
    let z = zstd::encode_all(serde_json::to_vec(&b2).unwrap().as_slice(), 3).unwrap();
    let ack: BatchAck = send_raw(&s, &token, z, Some("zstd")).await.json().await.unwrap();
    assert_eq!(ack.accepted, 50);
    assert_eq!(s.store().record_counts(s.company).await.unwrap().app_spans, 550);
}

async fn an_oversized_body_is_refused_with_payload_too_large(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let huge = vec![b' '; MAX_BATCH_BYTES + 1];
    // With an honest Content-Length.
    expect_error(send_raw(&s, &token, huge.clone(), None).await, ErrorCode::PayloadTooLarge).await;
    // Streamed without a Content-Length.
    let stream = futures_stream(huge);
    let resp = http()
        .post(s.url("/api/v1/agent/batches"))
        .header(COMPANY_KEY_HEADER, s.company_key.expose())
        .bearer_auth(token.expose())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    expect_error(resp, ErrorCode::PayloadTooLarge).await;
    // Small when compressed, too large once decompressed.
    let bomb = gzip(&vec![b' '; 20 * MAX_BATCH_BYTES]);
    expect_error(send_raw(&s, &token, bomb, Some("gzip")).await, ErrorCode::PayloadTooLarge).await;
    assert_eq!(s.store().record_counts(s.company).await.unwrap().batches, 0);
}

fn futures_stream(
    data: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

async fn malformed_batches_are_refused_with_invalid_batch(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    expect_error(send_raw(&s, &token, b"{not json".to_vec(), None).await, ErrorCode::InvalidBatch)
        .await;
    let wrong_type = br#"{"batch_id":"x","sent_at_ms":"soon","records":[]}"#.to_vec();
    expect_error(send_raw(&s, &token, wrong_type, None).await, ErrorCode::InvalidBatch).await;
    let mut backwards = batch(vec![app_span(1, "x")]);
    if let RecordBody::AppSpan { start_ms, end_ms, .. } = &mut backwards.records[0].body {
        std::mem::swap(start_ms, end_ms);
    }
    let msg = expect_error(send(&s, &token, &backwards).await, ErrorCode::InvalidBatch).await;
    assert!(msg.contains("record 0"), "{msg}");
    // A NUL in any text: PostgreSQL could not store it (it answered 500, a poison record that
    // blocked an agent's queue behind it for good); both backends refuse it alike.
    let nul = batch(vec![app_span(1, "a title\0with a NUL")]);
    let msg = expect_error(send(&s, &token, &nul).await, ErrorCode::InvalidBatch).await;
    assert!(msg.contains("NUL"), "{msg}");
    let too_many = batch((0..=MAX_BATCH_RECORDS as i64).map(|i| app_span(i, "")).collect());
    let body = gzip(&serde_json::to_vec(&too_many).unwrap());
    expect_error(send_raw(&s, &token, body, Some("gzip")).await, ErrorCode::InvalidBatch).await;
    expect_error(
        send_raw(&s, &token, b"x".to_vec(), Some("br")).await,
        ErrorCode::UnsupportedMediaType,
    )
    .await;
}

async fn screenshots_upload_after_their_metadata_idempotently(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let jpeg = tiny_jpeg(1280, 720, 0);
    let id = RecordId::new();
    // Bytes before metadata: refused, nothing stored.
    expect_error(
        s.put_screenshot(&s.company_key, &token, id, jpeg.clone()).await,
        ErrorCode::NotFound,
    )
    .await;
    let meta = Record {
        id,
        seq: 1,
        body: RecordBody::Screenshot {
            taken_at_ms: s.clock.now_ms(),
            monitor: 0,
            width: 1280,
            height: 720,
            bytes: jpeg.len() as u64,
            blurred: true,
        },
    };
    send(&s, &token, &batch(vec![meta])).await.error_for_status().unwrap();
    expect_error(
        s.put_screenshot(&s.company_key, &token, id, b"GIF89a not a jpeg".to_vec()).await,
        ErrorCode::InvalidRequest,
    )
    .await;
    expect_error(
        s.put_screenshot(&s.company_key, &token, id, jpeg[..jpeg.len() - 2].to_vec()).await,
        ErrorCode::InvalidRequest,
    )
    .await;
    let ack: ScreenshotAck =
        s.put_screenshot(&s.company_key, &token, id, jpeg.clone()).await.json().await.unwrap();
    assert_eq!(ack.bytes, jpeg.len() as u64);
    let again = s.put_screenshot(&s.company_key, &token, id, jpeg.clone()).await;
    assert_eq!(again.status(), 200, "the same bytes again are fine");
    let rows = s.store().screenshots(s.company).await.unwrap();
    let key = rows[0].object_key.clone().expect("object recorded");
    assert!(key.starts_with(&format!("{}/", s.company)), "keyed by company: {key}");
    assert_eq!(s.state.objects.get(&key).await.unwrap(), jpeg);
    let other = tiny_jpeg(640, 480, 0);
    expect_error(s.put_screenshot(&s.company_key, &token, id, other).await, ErrorCode::Conflict)
        .await;
    assert_eq!(s.state.objects.get(&key).await.unwrap(), jpeg, "stored bytes unchanged");
    // Another device of the company cannot attach bytes to this screenshot.
    let (_, other_token) = s.enroll("bob@test.example").await;
    expect_error(
        s.put_screenshot(&s.company_key, &other_token, id, jpeg).await,
        ErrorCode::NotFound,
    )
    .await;
}

async fn wrong_content_type_for_a_screenshot_is_refused(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let resp = http()
        .put(s.url(&format!("/api/v1/agent/screenshots/{}", RecordId::new())))
        .header(COMPANY_KEY_HEADER, s.company_key.expose())
        .bearer_auth(token.expose())
        .header("content-type", "image/png")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    expect_error(resp, ErrorCode::UnsupportedMediaType).await;
}

both_backends!(
    a_batch_sent_twice_is_stored_once_with_the_same_answer,
    records_already_stored_are_counted_as_duplicates_in_a_new_batch,
    a_changed_body_under_the_same_batch_id_is_a_conflict,
    gzip_and_zstd_batches_are_accepted,
    an_oversized_body_is_refused_with_payload_too_large,
    malformed_batches_are_refused_with_invalid_batch,
    screenshots_upload_after_their_metadata_idempotently,
    wrong_content_type_for_a_screenshot_is_refused,
);
