//! Records that can never be sent: a record the server refuses (`invalid_batch`, or a batch too
//! large for it) or one this build cannot decode must not hold back everything queued after it.
//!
//! The server refuses a whole batch over one bad record without saying which, so a refused
//! batch is bisected: it is abandoned and the next batches take at most half as many of the same
//! records (oldest first); each acknowledged batch doubles the size again, and once every record
//! of the refused range has left the queue the limit is gone. A refused batch of one record is
//! the culprit: it moves to `set_aside` (kept, not deleted, with the server's reason), is counted
//! there for `status`, and is reported to the server as a dropped record. A record this build
//! cannot read, or that breaks the shared record rules before sending, is set aside the same way.

use super::QueueError;
use super::db::QueueDb;
use super::evict::bump_dropped;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use worktrail_shared::limits::MAX_BATCH_RECORDS;
use worktrail_shared::{BatchId, RecordId};

/// What the queue did with a batch the server refused as invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The batch was dropped; the next ones carry at most this many of its records.
    Split(usize),
    /// The batch's only record was set aside.
    SetAside(RecordId),
    /// The batch carries no record (only drop counts), so there is nothing to isolate.
    Stuck,
}

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row("SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value.to_string()],
    )?;
    Ok(())
}

/// Moves the record `seq` out of the queue into `set_aside`; returns the bytes it held (body
/// and screenshot JPEG, which is deleted: its metadata will never be accepted).
pub(super) fn set_aside_one(
    tx: &Transaction<'_>,
    seq: i64,
    reason: &str,
    now_ms: i64,
) -> rusqlite::Result<u64> {
    let (id, bytes): (String, i64) =
        tx.query_row("SELECT id, bytes FROM records WHERE seq = ?1", [seq], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let blob: i64 = tx
        .query_row("SELECT LENGTH(jpeg) FROM blobs WHERE id = ?1", [&id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    tx.execute(
        "INSERT OR REPLACE INTO set_aside (seq, id, kind, body, reason, at_ms)
         SELECT seq, id, kind, body, ?2, ?3 FROM records WHERE seq = ?1",
        params![seq, reason, now_ms],
    )?;
    tx.execute("DELETE FROM blobs WHERE id = ?1", [&id])?;
    tx.execute("DELETE FROM records WHERE seq = ?1", [seq])?;
    bump_dropped(tx, "dropped_records", 1)?;
    tracing::error!(record.id = %id, reason, "a record can never be sent; set aside");
    Ok((bytes + blob) as u64)
}

/// After an acknowledgement: a bisection in progress widens again, and ends once the refused
/// range has left the queue.
pub(super) fn widen_after_ack(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let until = meta(tx, "split_until_seq")?;
    if until <= 0 {
        return Ok(());
    }
    let left: bool =
        tx.query_row("SELECT EXISTS (SELECT 1 FROM records WHERE seq <= ?1)", [until], |r| {
            r.get(0)
        })?;
    if left {
        let limit = meta(tx, "split_limit")?.max(1);
        set_meta(tx, "split_limit", (limit * 2).min(MAX_BATCH_RECORDS as i64))?;
    } else {
        tx.execute("DELETE FROM meta WHERE key IN ('split_limit', 'split_until_seq')", [])?;
    }
    Ok(())
}

impl QueueDb {
    /// Most records the next batch may carry: the protocol's limit, narrowed while a refused
    /// batch is bisected (and by the tests' fault switch).
    pub(super) fn batch_limit(&self) -> Result<usize, QueueError> {
        let mut limit = MAX_BATCH_RECORDS;
        if let Some(n) = crate::fault::batch_records() {
            limit = limit.min(n);
        }
        if meta(&self.conn, "split_until_seq")? > 0 {
            limit = limit.min(meta(&self.conn, "split_limit")?.max(1) as usize);
        }
        Ok(limit)
    }

    /// The server refused the in-flight batch `batch_id` as invalid (`reason` is its message):
    /// bisect it, or set its only record aside.
    pub fn refused_batch(
        &mut self,
        batch_id: BatchId,
        reason: &str,
        now_ms: i64,
    ) -> Result<Refusal, QueueError> {
        let id = batch_id.to_string();
        let (n, first, last): (i64, Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(seq), MAX(seq) FROM records WHERE batch_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (Some(first), Some(last)) = (first, last) else { return Ok(Refusal::Stuck) };
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE records SET batch_id = NULL WHERE batch_id = ?1", [&id])?;
        tx.execute("DELETE FROM batches WHERE batch_id = ?1", [&id])?;
        if n == 1 {
            let record: String =
                tx.query_row("SELECT id FROM records WHERE seq = ?1", [first], |r| r.get(0))?;
            let freed = set_aside_one(&tx, first, reason, now_ms)?;
            tx.commit()?;
            self.count -= 1;
            self.bytes = self.bytes.saturating_sub(freed);
            let record = record.parse().map_err(|_| QueueError::Corrupt("record id"))?;
            return Ok(Refusal::SetAside(record));
        }
        let limit = (n / 2).max(1);
        set_meta(&tx, "split_limit", limit)?;
        set_meta(&tx, "split_until_seq", last.max(meta(&tx, "split_until_seq")?))?;
        tx.commit()?;
        Ok(Refusal::Split(limit as usize))
    }

    /// How many records were set aside.
    pub(super) fn set_aside_count(&self) -> Result<u64, QueueError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM set_aside", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The records set aside, oldest first: id and the reason (for tests and diagnostics).
    pub fn set_aside_records(&self) -> Result<Vec<(RecordId, String)>, QueueError> {
        let mut stmt = self.conn.prepare("SELECT id, reason FROM set_aside ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, reason) = row?;
            Ok((id.parse().map_err(|_| QueueError::Corrupt("record id"))?, reason))
        })
        .collect()
    }
}
