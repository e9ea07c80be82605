//! The queue's schema, migrated by `PRAGMA user_version`. Migrations are only ever appended.
//!
//! `records.seq` is the per-device sequence number (AUTOINCREMENT: never reused, even after the
//! rows are deleted). `records.batch_id` is set while a record is part of the one in-flight batch,
//! whose exact body is kept in `batches` so a retry after a crash resends the very same bytes.
//! `blobs` holds screenshot JPEGs; `acked` turns 1 when their metadata record was accepted, and
//! the bytes may then be uploaded. `set_aside` keeps records that can never be sent (the server
//! refuses them, or this build cannot decode them), so they no longer hold back the queue but are
//! still there to look at.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    "CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        class INTEGER NOT NULL,
        body TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        batch_id TEXT
    );
    CREATE INDEX records_evict ON records (class, seq) WHERE batch_id IS NULL;
    CREATE INDEX records_batch ON records (batch_id) WHERE batch_id IS NOT NULL;
    CREATE TABLE blobs (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        jpeg BLOB NOT NULL,
        acked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX blobs_seq ON blobs (seq);
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        body BLOB NOT NULL,
        records INTEGER NOT NULL,
        dropped_screenshots INTEGER NOT NULL,
        dropped_records INTEGER NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: records the server refuses (or this build cannot read) are set aside, not deleted
    "CREATE TABLE set_aside (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        reason TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );",
];

/// Sets the durability pragmas and applies every migration the database has not seen.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
