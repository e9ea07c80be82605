//! Eviction when the queue is full: records past the age cap first, then the oldest screenshots,
//! then spans, and activity last. Records in the in-flight batch are never evicted (the server
//! may already hold them). Every drop is counted in `meta` and reported with the next batch.

use super::QueueError;
use super::db::QueueDb;
use rusqlite::{OptionalExtension, params};

pub(super) fn bump_dropped(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    n: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + ?2",
        params![key, n as i64],
    )?;
    Ok(())
}

impl QueueDb {
    /// Drops records until the queue is within its caps: records older than the age cap, then the
    /// oldest screenshots, then spans, activity last. The in-flight batch is never touched.
    pub(super) fn enforce_caps(&mut self, now_ms: i64) -> Result<(), QueueError> {
        let too_old = now_ms - self.caps.max_age_ms;
        loop {
            let over = self.count > self.caps.max_records || self.bytes > self.caps.max_bytes;
            // The common case, checked through the primary key only: within the caps and the
            // oldest unsent record is young enough (sequence order is creation order).
            let oldest: Option<i64> = self
                .conn
                .query_row(
                    "SELECT created_ms FROM records WHERE batch_id IS NULL ORDER BY seq LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if !over && oldest.is_none_or(|t| t >= too_old) {
                return Ok(());
            }
            let victim: Option<(i64, String, i64, i64)> = self
                .conn
                .query_row(
                    "SELECT seq, id, class, bytes FROM records WHERE batch_id IS NULL
                     AND (?1 OR created_ms < ?2) ORDER BY (created_ms < ?2) DESC, class, seq LIMIT 1",
                    params![over, too_old],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let acked_blob: Option<(String, i64)> =
                if over && victim.as_ref().is_none_or(|v| v.2 > 0) {
                    // Screenshots whose metadata is already on the server but whose bytes are not.
                    self.conn
                    .query_row(
                        "SELECT id, LENGTH(jpeg) FROM blobs WHERE acked = 1 ORDER BY seq LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?
                } else {
                    None
                };
            let tx = self.conn.transaction()?;
            if let Some((id, len)) = acked_blob {
                tx.execute("DELETE FROM blobs WHERE id = ?1", [&id])?;
                bump_dropped(&tx, "dropped_screenshots", 1)?;
                tx.commit()?;
                self.bytes = self.bytes.saturating_sub(len as u64);
                continue;
            }
            let Some((seq, id, class, bytes)) = victim else {
                return Ok(());
            };
            let blob_len: i64 = tx
                .query_row("SELECT LENGTH(jpeg) FROM blobs WHERE id = ?1", [&id], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            tx.execute("DELETE FROM blobs WHERE id = ?1", [&id])?;
            tx.execute("DELETE FROM records WHERE seq = ?1", [seq])?;
            let key = if class == 0 { "dropped_screenshots" } else { "dropped_records" };
            bump_dropped(&tx, key, 1)?;
            tx.commit()?;
            self.count -= 1;
            self.bytes = self.bytes.saturating_sub((bytes + blob_len) as u64);
        }
    }
}
