//! The SQLite writer's app-span inserts, many rows per statement.
//!
//! Running a prepared statement costs something besides its rows: binding, opening and closing
//! its cursors, ending the statement. With one row per `INSERT` that was about a fifth of the
//! writer's time (`perf` under `worktrail-bench ingest`). A batch's spans are buffered and
//! inserted [`MAX_ROWS`] at a time, the rest in chunks of 32, 16, … 1 rows, so no more than
//! seven statement shapes are ever prepared. `ON CONFLICT DO NOTHING` applies row by row, so a
//! span stored before is skipped and the statement's change count is the number inserted.

use rusqlite::Connection;
use std::sync::LazyLock;

use super::writer::write_error;
use crate::store::StoreError;

/// Rows per statement at most (a power of two; 8 values each, far below SQLite's limit of
/// 32,766 bound values).
const MAX_ROWS: usize = 64;
const _: () = assert!(MAX_ROWS.is_power_of_two());

/// One `app_spans` row (see the 0008 migration).
pub(super) struct SpanRow {
    pub dev: i64,
    pub start_ms: i64,
    pub id: [u8; 16],
    pub seq: i64,
    pub dur_ms: i64,
    pub app: i64,
    pub title: Option<i64>,
    pub task: Option<[u8; 16]>,
}

/// The `INSERT` of 2^i rows, for i in 0..=log2(MAX_ROWS).
static INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
    (0..=MAX_ROWS.trailing_zeros())
        .map(|i| {
            let rows = vec![row; 1 << i].join(", ");
            format!(
                "INSERT INTO app_spans (dev, start_ms, id, seq, dur_ms, app, title, task_id) \
                 VALUES {rows} ON CONFLICT DO NOTHING"
            )
        })
        .collect()
});

/// A batch's app spans on their way into `app_spans`.
#[derive(Default)]
pub(super) struct SpanRows {
    rows: Vec<SpanRow>,
    inserted: usize,
}

impl SpanRows {
    /// Adds a row; every [`MAX_ROWS`] rows are inserted at once.
    pub fn push(&mut self, conn: &Connection, row: SpanRow) -> Result<(), StoreError> {
        self.rows.push(row);
        if self.rows.len() == MAX_ROWS {
            self.flush(conn)?;
        }
        Ok(())
    }

    /// Inserts the rows still buffered; the number of rows inserted over all (those stored
    /// before are not counted).
    pub fn finish(mut self, conn: &Connection) -> Result<usize, StoreError> {
        self.flush(conn)?;
        Ok(self.inserted)
    }

    fn flush(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let mut rest = self.rows.as_slice();
        while !rest.is_empty() {
            // The largest power of two that fits.
            let shape = rest.len().min(MAX_ROWS).ilog2() as usize;
            let (chunk, more) = rest.split_at(1 << shape);
            self.inserted += insert(conn, &INSERTS[shape], chunk).map_err(write_error)?;
            rest = more;
        }
        self.rows.clear();
        Ok(())
    }
}

fn insert(conn: &Connection, sql: &str, rows: &[SpanRow]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut at = 0;
    let mut bind = |value: &dyn rusqlite::ToSql| {
        at += 1;
        stmt.raw_bind_parameter(at, value)
    };
    for r in rows {
        bind(&r.dev)?;
        bind(&r.start_ms)?;
        bind(&r.id.as_slice())?;
        bind(&r.seq)?;
        bind(&r.dur_ms)?;
        bind(&r.app)?;
        bind(&r.title)?;
        bind(&r.task.as_ref().map(|t| t.as_slice()))?;
    }
    stmt.raw_execute()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: i64) -> SpanRow {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&i.to_be_bytes());
        SpanRow {
            dev: 1,
            start_ms: 1_000 * i,
            id,
            seq: i,
            dur_ms: 500,
            app: 1 + i % 3,
            title: (i % 2 == 0).then_some(i),
            task: (i % 5 == 0).then_some([7; 16]),
        }
    }

    /// A stored row: dev, start_ms, id, seq, dur_ms, app, title, task_id.
    type Stored = (i64, i64, Vec<u8>, i64, i64, i64, Option<i64>, Option<Vec<u8>>);

    /// `app_spans` as migration 0008 creates it (the store's own tests run the migration and
    /// write through this module; this is the module alone).
    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE app_spans (dev INTEGER NOT NULL, start_ms INTEGER NOT NULL, \
             id BLOB NOT NULL, seq INTEGER NOT NULL, dur_ms INTEGER NOT NULL, \
             app INTEGER NOT NULL, title INTEGER, task_id BLOB, \
             PRIMARY KEY (dev, start_ms, id)) WITHOUT ROWID",
        )
        .unwrap();
        conn
    }

    #[test]
    fn every_row_is_inserted_once_whatever_the_count() {
        for count in [0, 1, 2, 3, 63, 64, 65, 127, 500] {
            let conn = table();
            let mut rows = SpanRows::default();
            for i in 0..count {
                rows.push(&conn, row(i)).unwrap();
            }
            assert_eq!(rows.finish(&conn).unwrap(), count as usize, "{count} rows");
            let stored: Vec<Stored> = conn
                .prepare("SELECT * FROM app_spans ORDER BY seq")
                .unwrap()
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(stored.len(), count as usize);
            for (i, s) in stored.iter().enumerate() {
                let r = row(i as i64);
                let want = (
                    r.dev,
                    r.start_ms,
                    r.id.to_vec(),
                    r.seq,
                    r.dur_ms,
                    r.app,
                    r.title,
                    r.task.map(|t| t.to_vec()),
                );
                assert_eq!(*s, want, "row {i} of {count}");
            }
        }
    }

    #[test]
    fn rows_stored_before_are_skipped_and_not_counted() {
        let conn = table();
        let mut first = SpanRows::default();
        for i in (0..100).step_by(2) {
            first.push(&conn, row(i)).unwrap();
        }
        assert_eq!(first.finish(&conn).unwrap(), 50);
        let mut again = SpanRows::default();
        for i in 0..100 {
            again.push(&conn, row(i)).unwrap();
        }
        assert_eq!(again.finish(&conn).unwrap(), 50, "only the odd rows are new");
        let n: i64 = conn.query_row("SELECT count(*) FROM app_spans", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 100);
    }
}
