//! Queue behaviour on a real SQLite file.

use super::*;
use worktrail_shared::api::{BatchRequest, RecordBody};
use worktrail_shared::limits::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS};

fn activity(minute: i64) -> (RecordBody, Option<Vec<u8>>) {
    (RecordBody::Activity { minute_ms: minute * 60_000, active_secs: 30 }, None)
}

fn span(i: i64) -> (RecordBody, Option<Vec<u8>>) {
    let body = RecordBody::AppSpan {
        start_ms: i * 1000,
        end_ms: i * 1000 + 500,
        app: "xterm".into(),
        exe: None,
        title: Some(format!("window {i}")),
        task_id: None,
    };
    (body, None)
}

fn shot(i: i64, len: usize) -> (RecordBody, Option<Vec<u8>>) {
    let body = RecordBody::Screenshot {
        taken_at_ms: i,
        monitor: 0,
        width: 10,
        height: 10,
        bytes: len as u64,
        blurred: false,
    };
    (body, Some(vec![0xAB; len]))
}

fn open(dir: &tempfile::TempDir, caps: Caps) -> QueueDb {
    QueueDb::open(&dir.path().join("queue.sqlite3"), caps).unwrap()
}

fn decode(p: &PendingBatch) -> BatchRequest {
    serde_json::from_slice(&p.body).unwrap()
}

#[test]
fn records_survive_a_reopen_and_leave_only_when_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    let pushed = q.push(vec![span(1), span(2), activity(1)], 1).unwrap();
    assert!(pushed.windows(2).all(|w| w[0].seq < w[1].seq));
    let first = q.pending_batch(10).unwrap().unwrap();
    drop(q);

    // After a crash the very same batch (id and bytes) is offered again.
    let mut q = open(&dir, Caps::default());
    let again = q.pending_batch(20).unwrap().unwrap();
    assert_eq!((again.batch_id, &again.body), (first.batch_id, &first.body));
    let ids: Vec<_> = decode(&again).records.iter().map(|r| r.id).collect();
    assert_eq!(ids, pushed.iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(q.status().unwrap().records, 3);

    q.ack_batch(again.batch_id, 30).unwrap();
    q.ack_batch(again.batch_id, 31).unwrap(); // a repeated commit is harmless
    let status = q.status().unwrap();
    assert_eq!((status.records, status.last_sync_ms), (0, Some(30)));
    assert!(q.pending_batch(40).unwrap().is_none());

    // Sequence numbers keep growing after the rows are gone.
    let later = q.push(vec![span(3)], 50).unwrap();
    assert!(later[0].seq > pushed[2].seq);
}

#[test]
fn batches_stay_within_the_shared_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    q.push((0..1200).map(activity).collect(), 1).unwrap();
    let b = q.pending_batch(2).unwrap().unwrap();
    assert_eq!(b.records, MAX_BATCH_RECORDS);
    decode(&b).validate().unwrap();
    q.ack_batch(b.batch_id, 3).unwrap();

    // Big records: the byte limit binds before the count.
    let big = |i: i64| {
        let body = RecordBody::AppSpan {
            start_ms: i,
            end_ms: i + 1,
            app: "a".repeat(2000),
            exe: Some("e".repeat(2000)),
            title: Some("t".repeat(2000)),
            task_id: None,
        };
        (body, None)
    };
    let mut q2 = open(&tempfile::tempdir().unwrap(), Caps::default());
    q2.push((0..300).map(big).collect(), 1).unwrap();
    let b = q2.pending_batch(2).unwrap().unwrap();
    assert!(b.body.len() <= MAX_BATCH_BYTES, "{} bytes", b.body.len());
    assert!(b.records < 300 && b.records > 10);
    decode(&b).validate().unwrap();
}

#[test]
fn when_full_screenshots_go_first_and_activity_last_and_drops_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let caps = Caps { max_records: 10, ..Caps::default() };
    let mut q = open(&dir, caps);
    q.push(vec![activity(1), activity(2)], 1).unwrap();
    q.push(vec![span(1), span(2), span(3)], 2).unwrap();
    q.push(vec![shot(1, 100), shot(2, 100)], 3).unwrap();
    q.push(vec![span(4), span(5), span(6)], 4).unwrap(); // 10 records: at the cap
    assert_eq!(q.status().unwrap().records, 10);

    q.push(vec![span(7), span(8), span(9)], 5).unwrap(); // 3 over
    let status = q.status().unwrap();
    assert_eq!(status.records, 10);
    // Both screenshots went first, then the oldest span.
    assert_eq!((status.dropped.screenshots, status.dropped.records), (2, 1));

    let b = q.pending_batch(6).unwrap().unwrap();
    let batch = decode(&b);
    let kinds: Vec<_> = batch.records.iter().map(|r| r.body.kind()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "activity").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "screenshot").count(), 0);
    let titles = format!("{:?}", batch.records);
    assert!(!titles.contains("\"window 1\"") && titles.contains("\"window 2\""));
    // The drops travel with the batch and are cleared once it is acknowledged.
    assert_eq!((batch.dropped.screenshots, batch.dropped.records), (2, 1));
    q.ack_batch(b.batch_id, 7).unwrap();
    assert_eq!(q.status().unwrap().dropped, Default::default());
}

#[test]
fn activity_is_evicted_only_when_nothing_else_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps { max_records: 3, ..Caps::default() });
    q.push(vec![activity(1), activity(2), span(1)], 1).unwrap();
    q.push(vec![activity(3)], 2).unwrap();
    let b = decode(&q.pending_batch(3).unwrap().unwrap());
    let kinds: Vec<_> = b.records.iter().map(|r| r.body.kind()).collect();
    assert_eq!(kinds, vec!["activity", "activity", "activity"]);
    q.push(vec![activity(4)], 4).unwrap();
    // The in-flight batch is never evicted, so the new minute itself is dropped.
    assert_eq!(q.status().unwrap().records, 3);
    assert_eq!(q.status().unwrap().dropped.records, 2);
}

#[test]
fn byte_and_age_caps_apply_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps { max_bytes: 5_000, max_age_ms: 1_000_000, ..Caps::default() });
    q.push(vec![shot(1, 3_000)], 1).unwrap();
    q.push(vec![shot(2, 3_000)], 2).unwrap();
    assert_eq!(q.status().unwrap().dropped.screenshots, 1);
    assert!(q.status().unwrap().bytes <= 5_000);
    q.push(vec![span(1)], 3).unwrap();
    // Much later, the old records are past the age cap.
    q.push(vec![span(2)], 2_000_000).unwrap();
    let left = q.status().unwrap();
    assert_eq!(left.records, 1);
}

#[test]
fn screenshot_bytes_wait_for_their_metadata_to_be_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    let pushed = q.push(vec![shot(1, 1234)], 1).unwrap();
    assert!(q.next_upload().unwrap().is_none());
    let b = q.pending_batch(2).unwrap().unwrap();
    assert!(q.next_upload().unwrap().is_none());
    q.ack_batch(b.batch_id, 3).unwrap();
    let (id, jpeg) = q.next_upload().unwrap().unwrap();
    assert_eq!((id, jpeg.len()), (pushed[0].id, 1234));
    assert_eq!(q.status().unwrap().screenshots_to_upload, 1);
    q.uploaded(id).unwrap();
    assert!(q.next_upload().unwrap().is_none());
    assert_eq!(q.status().unwrap().bytes, 0);
}

#[test]
fn an_abandoned_batch_releases_its_records_for_a_new_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    q.push(vec![span(1)], 1).unwrap();
    let b1 = q.pending_batch(2).unwrap().unwrap();
    q.abandon_batch(b1.batch_id).unwrap();
    let b2 = q.pending_batch(3).unwrap().unwrap();
    assert_ne!(b1.batch_id, b2.batch_id);
    assert_eq!(decode(&b1).records[0].id, decode(&b2).records[0].id);
}

#[tokio::test]
async fn the_owner_thread_serves_async_callers() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(&dir.path().join("q.sqlite3"), Caps::default()).unwrap();
    let pushed = q.call(|db| db.push(vec![span(1)], 1)).await.unwrap();
    let ids = q.call(|db| db.queued_ids()).await.unwrap();
    assert_eq!(ids, vec![pushed[0].id]);
    let mode: String = {
        let conn = rusqlite::Connection::open(q.path()).unwrap();
        conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap()
    };
    assert_eq!(mode, "wal");
    q.close();
}

#[test]
fn an_invalid_record_is_set_aside_and_counted_instead_of_blocking_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    let backwards = RecordBody::IdleSpan { start_ms: 10, end_ms: 5 };
    let pushed = q.push(vec![span(1), (backwards, None), span(2)], 1).unwrap();
    let p = q.pending_batch(2).unwrap().unwrap();
    let b = decode(&p);
    b.validate().unwrap();
    assert_eq!(b.records.len(), 2);
    assert_eq!(b.dropped.records, 1);
    let status = q.status().unwrap();
    assert_eq!((status.records, status.set_aside), (2, 1));
    let aside = q.set_aside_records().unwrap();
    assert_eq!(aside[0].0, pushed[1].id);
    assert!(aside[0].1.contains("breaks the record rules"), "{aside:?}");
    // Acknowledged, the drop is reported once, never again; the record stays set aside.
    q.ack_batch(p.batch_id, 3).unwrap();
    assert_eq!(q.status().unwrap().dropped, Default::default());
    assert_eq!(q.status().unwrap().set_aside, 1);
}

#[test]
fn a_record_that_no_longer_decodes_is_set_aside_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    q.push(vec![span(1), span(2)], 1).unwrap();
    q.conn
        .execute("UPDATE records SET body = '{\"kind\":\"from_a_newer_build\"}' WHERE seq = 1", [])
        .unwrap();
    let b = decode(&q.pending_batch(2).unwrap().unwrap());
    assert_eq!(b.records.len(), 1);
    let aside = q.set_aside_records().unwrap();
    assert!(aside[0].1.contains("does not decode"), "{aside:?}");
}

#[test]
fn a_refused_batch_is_bisected_down_to_its_one_bad_record_and_the_rest_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps::default());
    let records = q.push((0..300).map(span).collect(), 1).unwrap();
    let poison = records[217].id;
    let later = q.push((300..310).map(span).collect(), 1).unwrap();
    let (mut acked, mut requests) = (Vec::new(), 0);
    while let Some(p) = q.pending_batch(5).unwrap() {
        requests += 1;
        assert!(requests < 40, "bisection does not converge");
        let b = decode(&p);
        if b.records.iter().any(|r| r.id == poison) {
            // What the server does: refuse the whole batch without naming the record.
            q.refused_batch(p.batch_id, "invalid_batch: record ?: bad", 6).unwrap();
        } else {
            acked.extend(b.records.iter().map(|r| r.id));
            q.ack_batch(p.batch_id, 7).unwrap();
        }
    }
    let expected: Vec<_> =
        records.iter().chain(&later).map(|r| r.id).filter(|&id| id != poison).collect();
    assert_eq!(acked, expected, "every other record once, in order");
    assert_eq!(q.set_aside_records().unwrap()[0].0, poison);
    assert_eq!(q.batch_limit().unwrap(), MAX_BATCH_RECORDS, "the bisection is over");
    let status = q.status().unwrap();
    assert_eq!((status.records, status.set_aside), (0, 1));
}

#[test]
fn a_refused_batch_with_no_record_is_stuck_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, Caps { max_records: 1, ..Caps::default() });
    q.push(vec![span(1), span(2)], 1).unwrap(); // one evicted: a drop to report
    q.conn.execute("DELETE FROM records", []).unwrap();
    q.count = 0;
    let only_drops = q.pending_batch(4).unwrap().unwrap();
    assert_eq!((only_drops.records, decode(&only_drops).dropped.records), (0, 1));
    assert_eq!(q.refused_batch(only_drops.batch_id, "x", 5).unwrap(), Refusal::Stuck);
    assert_eq!(q.in_flight().unwrap(), Some(only_drops.batch_id));
}
