//! The queue's operations on its one SQLite connection. Every change is one transaction, so a
//! kill -9 at any instant leaves either the state before or after it.
//!
//! Life of a record: `push` (id and sequence number assigned, durable before `push` returns) →
//! `pending_batch` (assigned to the one in-flight batch, whose body is stored) → `ack_batch` (the
//! records are deleted in the same transaction that records the acknowledgement). A record is
//! never removed before the server acknowledged it, except by eviction when the caps are reached,
//! and eviction is counted and reported, or by being set aside when it can never be sent (see
//! [`super::poison`]).

use super::schema;
use super::{Caps, QueueError, QueueStatus};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use worktrail_shared::api::{BatchRequest, DroppedCounts, Record, RecordBody};
use worktrail_shared::limits::MAX_BATCH_BYTES;
use worktrail_shared::{BatchId, RecordId};

/// A batch ready to send: its id and the exact JSON body to send (again) until acknowledged.
#[derive(Clone, Debug)]
pub struct PendingBatch {
    /// The batch id.
    pub batch_id: BatchId,
    /// The JSON body (uncompressed).
    pub body: Vec<u8>,
    /// Records in the batch.
    pub records: usize,
}

/// Eviction class: lower is dropped first when the queue is full.
fn class_of(body: &RecordBody) -> i64 {
    match body {
        RecordBody::Screenshot { .. } => 0,
        RecordBody::Activity { .. } => 2,
        _ => 1,
    }
}

/// The queue on one SQLite connection. Owned by one thread (see [`super::Queue`]).
#[derive(Debug)]
pub struct QueueDb {
    pub(super) conn: Connection,
    pub(super) caps: Caps,
    pub(super) count: u64,
    pub(super) bytes: u64,
}

impl QueueDb {
    /// Opens (creating and migrating) the queue at `path`.
    pub fn open(path: &Path, caps: Caps) -> Result<Self, QueueError> {
        let mut conn = Connection::open(path)?;
        schema::migrate(&mut conn)?;
        let (count, bytes): (i64, i64) = conn.query_row(
            "SELECT (SELECT COUNT(*) FROM records),
                    (SELECT COALESCE(SUM(bytes), 0) FROM records)
                  + (SELECT COALESCE(SUM(LENGTH(jpeg)), 0) FROM blobs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Self { conn, caps, count: count as u64, bytes: bytes as u64 })
    }

    /// Appends records (with the JPEG of each screenshot), assigning ids and sequence numbers;
    /// durable when this returns. Then enforces the caps.
    pub fn push(
        &mut self,
        items: Vec<(RecordBody, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> Result<Vec<Record>, QueueError> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(items.len());
        let mut added = 0u64;
        for (body, jpeg) in items {
            let id = RecordId::new();
            let json = serde_json::to_string(&body)?;
            tx.execute(
                "INSERT INTO records (id, kind, class, body, bytes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id.to_string(), body.kind(), class_of(&body), json, json.len() as i64, now_ms],
            )?;
            let seq = tx.last_insert_rowid();
            added += json.len() as u64;
            if let Some(jpeg) = jpeg {
                added += jpeg.len() as u64;
                tx.execute(
                    "INSERT INTO blobs (id, seq, jpeg) VALUES (?1, ?2, ?3)",
                    params![id.to_string(), seq, jpeg],
                )?;
            }
            out.push(Record { id, seq, body });
        }
        tx.commit()?;
        self.count += out.len() as u64;
        self.bytes += added;
        if let Some(first) = out.first() {
            crate::fault::point(
                "queued",
                &format_args!("first={} records={}", first.id, out.len()),
            );
        }
        // The records are stored: a failure to evict must not make the caller write them again.
        if let Err(e) = self.enforce_caps(now_ms) {
            tracing::warn!(error = %e, "could not enforce the queue's caps");
        }
        Ok(out)
    }

    fn meta_i64(&self, key: &str) -> Result<i64, QueueError> {
        Ok(self
            .conn
            .query_row("SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    /// A value kept across restarts (policy, status); `None` when never set.
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, QueueError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets (or with `None` removes) a kept value.
    pub fn set_meta(&mut self, key: &str, value: Option<&str>) -> Result<(), QueueError> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, v],
            )?,
            None => self.conn.execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// The in-flight batch, or a new one built from the oldest records (`None`: nothing to send).
    pub fn pending_batch(&mut self, now_ms: i64) -> Result<Option<PendingBatch>, QueueError> {
        let existing = self
            .conn
            .query_row("SELECT batch_id, body, records FROM batches LIMIT 1", [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()?;
        if let Some((id, body, records)) = existing {
            let batch_id = id.parse().map_err(|_| QueueError::Corrupt("batch id"))?;
            return Ok(Some(PendingBatch { batch_id, body, records: records as usize }));
        }
        let dropped = DroppedCounts {
            screenshots: self.meta_i64("dropped_screenshots")? as u64,
            records: self.meta_i64("dropped_records")? as u64,
        };
        let mut records = Vec::new();
        let mut unreadable = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT seq, id, body, bytes FROM records WHERE batch_id IS NULL ORDER BY seq LIMIT ?1",
            )?;
            let mut rows = stmt.query([self.batch_limit()? as i64])?;
            let mut budget = MAX_BATCH_BYTES as i64 - 1024;
            while let Some(row) = rows.next()? {
                let bytes: i64 = row.get(3)?;
                budget -= bytes + 96;
                if budget < 0 && !records.is_empty() {
                    break;
                }
                let seq: i64 = row.get(0)?;
                let id: String = row.get(1)?;
                let body: String = row.get(2)?;
                match (id.parse(), serde_json::from_str(&body)) {
                    (Ok(id), Ok(body)) => records.push(Record { id, seq, body }),
                    (Err(_), _) => {
                        unreadable.push((seq, "the record id does not parse".to_owned()))
                    }
                    (_, Err(e)) => {
                        unreadable.push((seq, format!("the record does not decode: {e}")))
                    }
                }
            }
        }
        let mut batch =
            BatchRequest { batch_id: BatchId::new(), sent_at_ms: now_ms, dropped, records };
        if !crate::fault::skip_precheck() && batch.validate().is_err() {
            unreadable.extend(self.invalid_records(&mut batch));
        }
        if !unreadable.is_empty() {
            self.set_aside(&unreadable, now_ms)?;
            batch.dropped.records += unreadable.len() as u64;
        }
        if batch.records.is_empty() && batch.dropped == DroppedCounts::default() {
            return Ok(None);
        }
        let mut body = serde_json::to_vec(&batch)?;
        while body.len() > MAX_BATCH_BYTES && batch.records.len() > 1 {
            batch.records.truncate(batch.records.len() / 2);
            body = serde_json::to_vec(&batch)?;
        }
        let tx = self.conn.transaction()?;
        let id = batch.batch_id.to_string();
        for r in &batch.records {
            tx.execute("UPDATE records SET batch_id = ?1 WHERE seq = ?2", params![id, r.seq])?;
        }
        tx.execute(
            "INSERT INTO batches (batch_id, body, records, dropped_screenshots, dropped_records)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                body,
                batch.records.len() as i64,
                batch.dropped.screenshots as i64,
                batch.dropped.records as i64
            ],
        )?;
        tx.commit()?;
        crate::fault::point("batch-built", &format_args!("batch={}", batch.batch_id));
        Ok(Some(PendingBatch { batch_id: batch.batch_id, body, records: batch.records.len() }))
    }

    /// Takes the records that break the shared record rules out of `batch` (the server would
    /// refuse the whole batch over any one of them); returns their sequence numbers and why.
    fn invalid_records(&self, batch: &mut BatchRequest) -> Vec<(i64, String)> {
        let check = |r: &Record| {
            let one = BatchRequest {
                batch_id: batch.batch_id,
                sent_at_ms: 0,
                dropped: DroppedCounts::default(),
                records: vec![r.clone()],
            };
            one.validate().err()
        };
        let mut bad = Vec::new();
        batch.records.retain(|r| match check(r) {
            None => true,
            Some(e) => {
                bad.push((r.seq, format!("breaks the record rules: {}", e.0)));
                false
            }
        });
        bad
    }

    /// Sets the records `(seq, reason)` aside in one transaction.
    fn set_aside(&mut self, records: &[(i64, String)], now_ms: i64) -> Result<(), QueueError> {
        let tx = self.conn.transaction()?;
        let mut freed = 0;
        for (seq, reason) in records {
            freed += super::poison::set_aside_one(&tx, *seq, reason, now_ms)?;
        }
        tx.commit()?;
        self.count -= records.len() as u64;
        self.bytes = self.bytes.saturating_sub(freed);
        Ok(())
    }

    /// Commits the server's acknowledgement of `batch_id`: its records leave the queue (their
    /// screenshots become ready to upload) and the reported drops are subtracted.
    pub fn ack_batch(&mut self, batch_id: BatchId, now_ms: i64) -> Result<(), QueueError> {
        let id = batch_id.to_string();
        let tx = self.conn.transaction()?;
        let Some((ds, dr)) = tx
            .query_row(
                "SELECT dropped_screenshots, dropped_records FROM batches WHERE batch_id = ?1",
                [&id],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
        else {
            return Ok(()); // already committed
        };
        let (n, bytes): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM records WHERE batch_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "UPDATE blobs SET acked = 1 WHERE id IN (SELECT id FROM records WHERE batch_id = ?1)",
            [&id],
        )?;
        tx.execute("DELETE FROM records WHERE batch_id = ?1", [&id])?;
        tx.execute("DELETE FROM batches WHERE batch_id = ?1", [&id])?;
        tx.execute(
            "UPDATE meta SET value = MAX(0, CAST(value AS INTEGER) - ?2) WHERE key = ?1",
            params!["dropped_screenshots", ds],
        )?;
        tx.execute(
            "UPDATE meta SET value = MAX(0, CAST(value AS INTEGER) - ?2) WHERE key = ?1",
            params!["dropped_records", dr],
        )?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('last_sync_ms', ?1)
             ON CONFLICT (key) DO UPDATE SET value = ?1",
            [now_ms.to_string()],
        )?;
        super::poison::widen_after_ack(&tx)?;
        crate::fault::point("ack-commit", &format_args!("batch={batch_id}"));
        tx.commit()?;
        self.count = self.count.saturating_sub(n as u64);
        self.bytes = self.bytes.saturating_sub(bytes as u64);
        Ok(())
    }

    /// Forgets the in-flight batch without deleting its records (the server refused its id);
    /// they go out again in a new batch, where the server skips any it already stored.
    pub fn abandon_batch(&mut self, batch_id: BatchId) -> Result<(), QueueError> {
        let id = batch_id.to_string();
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE records SET batch_id = NULL WHERE batch_id = ?1", [&id])?;
        tx.execute("DELETE FROM batches WHERE batch_id = ?1", [&id])?;
        tx.commit()?;
        Ok(())
    }

    /// The oldest screenshot whose metadata the server accepted and whose bytes are not uploaded.
    pub fn next_upload(&self) -> Result<Option<(RecordId, Vec<u8>)>, QueueError> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row("SELECT id, jpeg FROM blobs WHERE acked = 1 ORDER BY seq LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(id, jpeg)| Ok((id.parse().map_err(|_| QueueError::Corrupt("blob id"))?, jpeg)))
            .transpose()
    }

    /// The server stored the screenshot's bytes: drop them.
    pub fn uploaded(&mut self, id: RecordId) -> Result<(), QueueError> {
        let len: Option<i64> = self
            .conn
            .query_row("SELECT LENGTH(jpeg) FROM blobs WHERE id = ?1", [id.to_string()], |r| {
                r.get(0)
            })
            .optional()?;
        self.conn.execute("DELETE FROM blobs WHERE id = ?1", [id.to_string()])?;
        self.bytes = self.bytes.saturating_sub(len.unwrap_or(0) as u64);
        Ok(())
    }

    /// Sizes and counters for `status`.
    pub fn status(&self) -> Result<QueueStatus, QueueError> {
        let uploads: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM blobs WHERE acked = 1", [], |r| r.get(0))?;
        Ok(QueueStatus {
            records: self.count,
            bytes: self.bytes,
            screenshots_to_upload: uploads as u64,
            dropped: DroppedCounts {
                screenshots: self.meta_i64("dropped_screenshots")? as u64,
                records: self.meta_i64("dropped_records")? as u64,
            },
            last_sync_ms: Some(self.meta_i64("last_sync_ms")?).filter(|&t| t > 0),
            set_aside: self.set_aside_count()?,
        })
    }

    /// Forgets everything queued (the device now belongs to another company, and what it
    /// recorded for the previous one must not be sent to the new one). Returns how many records.
    pub fn clear(&mut self) -> Result<u64, QueueError> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "DELETE FROM records; DELETE FROM blobs; DELETE FROM batches; DELETE FROM set_aside;
             DELETE FROM meta WHERE key IN ('dropped_screenshots', 'dropped_records', 'blocked',
                                            'split_limit', 'split_until_seq');",
        )?;
        tx.commit()?;
        let n = self.count;
        (self.count, self.bytes) = (0, 0);
        Ok(n)
    }

    /// The id of the in-flight batch, if one is stored (for tests and diagnostics).
    pub fn in_flight(&self) -> Result<Option<BatchId>, QueueError> {
        let id: Option<String> = self
            .conn
            .query_row("SELECT batch_id FROM batches LIMIT 1", [], |r| r.get(0))
            .optional()?;
        id.map(|id| id.parse().map_err(|_| QueueError::Corrupt("batch id"))).transpose()
    }

    /// SQLite's own check of the file (`PRAGMA integrity_check`): `"ok"` when sound.
    pub fn integrity_check(&self) -> Result<String, QueueError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let lines = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(lines.collect::<Result<Vec<_>, _>>()?.join("\n"))
    }

    /// The ids of every record still queued, oldest first (for tests and diagnostics).
    pub fn queued_ids(&self) -> Result<Vec<RecordId>, QueueError> {
        let mut stmt = self.conn.prepare("SELECT id FROM records ORDER BY seq")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        ids.map(|id| id?.parse().map_err(|_| QueueError::Corrupt("record id"))).collect()
    }
}
