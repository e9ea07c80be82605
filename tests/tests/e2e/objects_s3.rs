//! Screenshots in an S3-compatible bucket (moto in server mode on loopback): uploaded through
//! the agent API, stored under the company's prefix in the bucket, served by the admin portal,
//! and removed from the bucket by retention — the same code path as local files.

use std::sync::Arc;
use worktrail_server::clock::Clock;
use worktrail_server::domain::subscription::DAY_MS;
use worktrail_server::jobs::Job;
use worktrail_server::objects::{ObjectStore, Objects, S3Config};
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::{BatchId, RecordId};
use worktrail_tests::moto::Moto;
use worktrail_tests::{Backend, Options, TestServer, tiny_jpeg};

const BUCKET: &str = "worktrail-screenshots";

fn s3(moto: &Moto, bucket: &str) -> Objects {
    let config = S3Config {
        bucket: bucket.into(),
        endpoint: Some(moto.endpoint.clone()),
        region: "us-east-1".into(),
        allow_http: true,
    };
    Objects::s3_with_credentials(&config, "testing", "testing").expect("S3 objects")
}

async fn screenshots_live_in_the_bucket_are_served_by_the_portal_and_expire_with_retention(
    backend: Backend,
) {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    let objects = s3(&moto, BUCKET);
    objects.check().await.expect("the bucket answers");
    let options = Options { objects: Some(Arc::new(objects)), ..Options::default() };
    let Some(s) = TestServer::start_with(backend, options).await else { return };
    let logins = s.seed_logins().await;
    let (_, token) = s.enroll(&logins.employee.0).await;
    let now = s.clock.now_ms();
    // One screenshot past the trial plan's 30 days of retention, one recent.
    let mut shots = Vec::new();
    for (seq, age_days) in [(1, 45), (2, 1)] {
        let bytes = tiny_jpeg(16, 16, seq as u8);
        let record = Record {
            id: RecordId::new(),
            seq,
            body: RecordBody::Screenshot {
                taken_at_ms: now - age_days * DAY_MS,
                monitor: 0,
                width: 16,
                height: 16,
                bytes: bytes.len() as u64,
                blurred: false,
            },
        };
        let id = record.id;
        let batch = BatchRequest {
            batch_id: BatchId::new(),
            sent_at_ms: now,
            dropped: Default::default(),
            records: vec![record],
        };
        s.post_batch(&s.company_key, &token, &batch).await.error_for_status().unwrap();
        let resp = s.put_screenshot(&s.company_key, &token, id, bytes.clone()).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        shots.push((id, bytes));
    }
    // The bucket read by a client of its own, sharing nothing with the server's.
    let bucket = s3(&moto, BUCKET);
    let rows = s.store().screenshots(s.company).await.unwrap();
    let admin = s.signed_in(&logins.admin).await;
    for (id, bytes) in &shots {
        let key = rows.iter().find(|r| r.id == *id).unwrap().object_key.clone().unwrap();
        assert!(key.starts_with(&format!("{}/", s.company)), "keys start with the company: {key}");
        // In the bucket itself, read without Worktrail, and not on the local disk.
        assert_eq!(&bucket.get(&key).await.unwrap(), bytes);
        assert!(!s.objects_dir.path().join(&key).exists());
        let served = admin.get(s.url(&format!("/admin/screenshots/{id}"))).send().await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    assert_eq!(s.run_job(Job::Retention).await, 1, "the old screenshot's row");
    let (old, recent) = (&shots[0], &shots[1]);
    let keys: Vec<_> = rows.iter().map(|r| (r.id, r.object_key.clone().unwrap())).collect();
    let key_of = |id: RecordId| keys.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    let deleted = bucket.get(&key_of(old.0)).await.unwrap_err();
    assert_eq!(deleted.kind(), std::io::ErrorKind::NotFound, "retention deleted the object");
    assert!(s.state.objects.get(&key_of(old.0)).await.is_err());
    let gone = admin.get(s.url(&format!("/admin/screenshots/{}", old.0))).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(bucket.get(&key_of(recent.0)).await.unwrap(), recent.1);
}

#[tokio::test]
async fn an_unreachable_or_missing_bucket_is_a_clear_error_not_a_hang() {
    let moto = Moto::start().await;
    let started = std::time::Instant::now();
    let missing = s3(&moto, "no-such-bucket").check().await.unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound, "{missing}");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    drop(moto);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = S3Config {
        bucket: BUCKET.into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        allow_http: true,
    };
    let objects = Objects::s3_with_credentials(&config, "testing", "testing").unwrap();
    assert!(objects.put("c/screenshots/x.jpg", b"x").await.is_err());
    // The retries are bounded (seconds, not object_store's default minutes).
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
}

both_backends!(screenshots_live_in_the_bucket_are_served_by_the_portal_and_expire_with_retention);
