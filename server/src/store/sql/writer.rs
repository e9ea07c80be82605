//! SQLite's ingest writer: one thread owns one connection and commits batches in groups.
//!
//! SQLite has one writer at a time and every commit under `synchronous=FULL` waits for an
//! fsync of the WAL. Batches that arrive while a commit is under way queue on a channel; the
//! thread then takes all of them (up to [`MAX_GROUP_RECORDS`]) into one transaction, commits
//! once, and only then answers every batch of the group: a batch is acknowledged only after it
//! is durable. One failing batch fails alone (see [`commit_group`]).
//!
//! The thread writes the tables directly with cached prepared statements, and keeps the small
//! integer keys of devices, (app, executable) pairs and window titles in memory (see the 0008
//! migration). The cache is dropped whenever a transaction is rolled back, and strings that no
//! span uses any more are swept by this same thread ([`Writer::sweep`]), so a cached key never
//! points at a deleted row.
//!
//! Checkpoints (copying the WAL into the database file, with its own fsync) are mostly taken by
//! a second thread with its own connection, woken by the writer's commits, so the writer seldom
//! stops for one; the writer takes one itself when the WAL passes 16 MB (by then only its last
//! few commits are left to copy), which keeps the WAL from growing without bound.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::{CompanyId, DeviceId};

use super::span_rows::{SpanRow, SpanRows};
use super::{answer_again, new_ack, session_end_str, site_source_str, touched_days};
use crate::store::{BatchMeta, DeviceAuth, IngestOutcome, StoreError};

/// Records per group commit at most: a group of this size takes a few tens of ms to write, so
/// the first batch of a long queue is not held back longer than that.
const MAX_GROUP_RECORDS: usize = 16_000;
/// Cached titles at most, over all companies; past it the cache starts again.
const MAX_CACHED_TITLES: usize = 200_000;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write for the group commit: a batch, or a device's "last seen" (every agent call that is
/// not a batch touches its device; those writes queue here too rather than contend with the
/// writer for SQLite's lock, whose busy handler sleeps up to 100 ms at a time).
struct BatchJob {
    company: CompanyId,
    work: Work,
    reply: Reply<Done>,
}

enum Work {
    Batch { device: DeviceAuth, batch: BatchRequest, meta: BatchMeta },
    Touch { device: DeviceId, now_ms: i64 },
}

enum Done {
    Batch(IngestOutcome),
    Touched,
}

impl BatchJob {
    fn records(&self) -> usize {
        match &self.work {
            Work::Batch { batch, .. } => batch.records.len(),
            Work::Touch { .. } => 1,
        }
    }
}

enum Job {
    Batch(Box<BatchJob>),
    Sweep { company: CompanyId, reply: Reply<u64> },
    Stop,
}

/// The checkpointer's pause after each checkpoint: it copies what the commits of the last
/// 25 ms added to the WAL (a few hundred pages under full load, a few ms of copying and one
/// fsync of the database file). Every 500 ms left ~16 MB for the writer's own checkpoint
/// below, which held its commit up for 10–19 ms: most of the ingest's p99 latency.
const CHECKPOINT_GAP: Duration = Duration::from_millis(25);
/// Without a commit of the writer's, the checkpointer still looks this often, for what the
/// connection pool wrote (jobs, portal edits); with nothing to copy a checkpoint is cheap.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);
/// The WAL size (pages) at which the writer checkpoints after its commit itself. Under a
/// steady stream of commits the checkpointer thread never sees the whole WAL copied at the
/// moment the writer starts its next transaction, which is when SQLite starts the WAL over;
/// without this the WAL grows until the disk is full. The writer's own checkpoint copies only
/// what the checkpointer has not (the last few commits), then the next transaction starts it
/// over.
const WAL_BACKSTOP_PAGES: i64 = 4096;
/// The WAL file is cut back to this size when it starts over.
const WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;
/// The writer's page cache (KiB): the pages it appends to and the string keys' indexes stay in
/// memory instead of being read back from the file.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// The handle of the writer thread.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

pub(super) fn write_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Write(e.to_string())
}

impl Writer {
    /// Opens its own connection to the database at `path` (WAL, `synchronous=FULL`, foreign
    /// keys, a 10 s busy timeout like the pool's) and starts the thread.
    pub(super) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path)?;
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES}; \
             PRAGMA journal_size_limit = {WAL_KEEP_BYTES}; \
             PRAGMA cache_size = -{WRITER_CACHE_KIB};"
        ))
        .map_err(write_error)?;
        // About 25 statements: the batch bookkeeping, the key lookups, five record kinds and the
        // seven shapes of the multi-row app-span insert.
        conn.set_prepared_statement_cache_capacity(48);
        let checkpoints = open(path)?;
        let (jobs, queue) = mpsc::channel();
        // The writer's "committed" signals; the checkpointer ends when the writer does.
        let (committed, commits) = mpsc::sync_channel(1);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StoreError::Config(format!("cannot start the SQLite {name}: {e}")))
        };
        let writer = spawn("sqlite-writer", Box::new(move || run(conn, queue, committed)))?;
        let checkpointer =
            spawn("sqlite-checkpoint", Box::new(move || checkpoint(checkpoints, commits)))?;
        Ok(Self { jobs, threads: Mutex::new(vec![writer, checkpointer]) })
    }

    /// Stores one batch; answers once the group it was committed with is durable.
    pub(super) async fn ingest(
        &self,
        company: CompanyId,
        device: &DeviceAuth,
        batch: BatchRequest,
        meta: &BatchMeta,
    ) -> Result<IngestOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let work = Work::Batch { device: device.clone(), batch, meta: meta.clone() };
        self.send(Job::Batch(Box::new(BatchJob { company, work, reply })))?;
        match answer.await.map_err(|_| stopped())?? {
            Done::Batch(outcome) => Ok(outcome),
            Done::Touched => Err(StoreError::Corrupt("a batch answered as a touch".into())),
        }
    }

    /// Records that a device called now (its company's and its own last-sync times).
    pub(super) async fn touch(
        &self,
        company: CompanyId,
        device: DeviceId,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let work = Work::Touch { device, now_ms };
        self.send(Job::Batch(Box::new(BatchJob { company, work, reply })))?;
        answer.await.map_err(|_| stopped())?.map(|_| ())
    }

    /// Deletes the company's device keys, apps and titles that no span uses any more (after
    /// spans were deleted); the number of rows deleted.
    pub(super) async fn sweep(&self, company: CompanyId) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Sweep { company, reply })?;
        answer.await.map_err(|_| stopped())?
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.send(job).map_err(|_| stopped())
    }

    /// Finishes the queued jobs and ends the threads.
    pub(super) fn stop(&self) {
        let _ = self.jobs.send(Job::Stop);
        let threads = self.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        // Joining waits for the commit or checkpoint under way (milliseconds), never for a
        // request.
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// A connection with the store's settings: WAL, `synchronous=FULL`, foreign keys, and a 10 s
/// busy timeout like the pool's; checked, not assumed.
fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(write_error)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(write_error)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )
    .map_err(write_error)?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).map_err(write_error)?;
    let journal: String =
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(write_error)?;
    if sync != 2 || !journal.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!(
            "SQLite writer settings not applied: journal_mode={journal}, synchronous={sync}"
        )));
    }
    Ok(conn)
}

/// Copies the WAL into the database file without waiting for readers or the writer (PASSIVE):
/// after the writer's commits, at most once per [`CHECKPOINT_GAP`], and otherwise once per
/// [`CHECKPOINT_IDLE`]. Ends with the writer, after one last checkpoint.
fn checkpoint(conn: Connection, commits: mpsc::Receiver<()>) {
    let take = || {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the next one retries");
        }
    };
    while let Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) = commits.recv_timeout(CHECKPOINT_IDLE)
    {
        take();
        std::thread::sleep(CHECKPOINT_GAP);
    }
    take();
}

fn stopped() -> StoreError {
    StoreError::Write("the SQLite writer has stopped (the store is closed)".into())
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>, committed: mpsc::SyncSender<()>) {
    let mut keys = Keys::default();
    let mut next = queue.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Stop => break,
            Job::Sweep { company, reply } => {
                let result = sweep(&mut conn, company);
                keys.clear();
                let _ = reply.send(result);
                let _ = committed.try_send(());
                next = queue.recv().ok();
            }
            Job::Batch(first) => {
                let mut records = first.records();
                let mut group = vec![*first];
                // Everything already queued joins this group; anything else ends it.
                while records < MAX_GROUP_RECORDS {
                    match queue.try_recv() {
                        Ok(Job::Batch(more)) => {
                            records += more.records();
                            group.push(*more);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut conn, &mut keys, group);
                // A full channel holds a wake-up the checkpointer has not taken yet: it covers
                // this commit too.
                let _ = committed.try_send(());
                if next.is_none() {
                    next = queue.recv().ok();
                }
            }
        }
    }
}

/// Writes a group in one transaction. Batches fail rarely (a full disk, a broken constraint),
/// so the group is written without savepoints (which would copy every page they touch to a
/// statement journal); if one batch fails, the group is rolled back and each of its batches is
/// written again in a transaction of its own, so only the failing one fails.
fn commit_group(conn: &mut Connection, keys: &mut Keys, group: Vec<BatchJob>) {
    let outcome = write_group(conn, keys, &group);
    let outcomes = match outcome {
        Ok(outcomes) => outcomes,
        Err(GroupError::Batch(_)) if group.len() > 1 => {
            for job in group {
                commit_group(conn, keys, vec![job]);
            }
            return;
        }
        Err(GroupError::Batch(e) | GroupError::Transaction(e)) => {
            // Every batch of the group gets the same error.
            let why = match e {
                StoreError::Write(why) => why,
                other => other.to_string(),
            };
            for job in group {
                let _ = job.reply.send(Err(StoreError::Write(why.clone())));
            }
            return;
        }
    };
    for (job, outcome) in group.into_iter().zip(outcomes) {
        let _ = job.reply.send(Ok(outcome));
    }
}

enum GroupError {
    /// A batch failed: the others may succeed alone.
    Batch(StoreError),
    /// Beginning or committing the transaction failed: every batch of the group fails.
    Transaction(StoreError),
}

fn write_group(
    conn: &mut Connection,
    keys: &mut Keys,
    group: &[BatchJob],
) -> Result<Vec<Done>, GroupError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| GroupError::Transaction(write_error(e)))?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        match ingest_one(conn, keys, job) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                keys.clear();
                return Err(GroupError::Batch(e));
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        keys.clear();
        return Err(GroupError::Transaction(write_error(e)));
    }
    Ok(outcomes)
}

fn ingest_one(conn: &Connection, keys: &mut Keys, job: &BatchJob) -> Result<Done, StoreError> {
    let company = &job.company;
    let c = company.0.as_bytes().as_slice();
    let (device, batch, meta) = match &job.work {
        Work::Batch { device, batch, meta } => (device, batch, meta),
        Work::Touch { device, now_ms } => {
            touch(conn, c, device.0.as_bytes(), *now_ms, None)?;
            return Ok(Done::Touched);
        }
    };
    let batch_id = batch.batch_id.0;
    // Claim the batch id; a batch sent before is answered from its stored acknowledgement.
    let claimed = conn
        .prepare_cached(
            "INSERT INTO ingest_batches (company_id, batch_id, device_id, body_hash, \
             record_count, body_bytes, received_at_ms, device_sent_at_ms, \
             dropped_screenshots, dropped_records) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                c,
                batch_id.as_bytes().as_slice(),
                device.id.0.as_bytes().as_slice(),
                meta.body_hash,
                batch.records.len() as i64,
                meta.body_bytes,
                meta.now_ms,
                batch.sent_at_ms,
                i64::try_from(batch.dropped.screenshots).unwrap_or(i64::MAX),
                i64::try_from(batch.dropped.records).unwrap_or(i64::MAX),
            ])
        })
        .map_err(write_error)?;
    if claimed == 0 {
        let (hash, ack): (Vec<u8>, Option<String>) = conn
            .prepare_cached(
                "SELECT body_hash, ack_json FROM ingest_batches \
                 WHERE company_id = ?1 AND batch_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![c, batch_id.as_bytes().as_slice()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .map_err(write_error)?;
        return answer_again(&hash, ack, meta).map(Done::Batch);
    }
    let accepted = insert_records(conn, keys, *company, device, &batch.records)?;
    let (ack, ack_json) = new_ack(batch, accepted, meta)?;
    exec(
        conn,
        "UPDATE ingest_batches SET ack_json = ?3 WHERE company_id = ?1 AND batch_id = ?2",
        &[&c, &batch_id.as_bytes().as_slice(), &ack_json],
    )?;
    for day in touched_days(batch, meta.now_ms) {
        exec(
            conn,
            "INSERT INTO rollup_dirty (company_id, utc_day, version) VALUES (?1, ?2, 0) \
             ON CONFLICT (company_id, utc_day) DO UPDATE SET version = rollup_dirty.version + 1",
            &[&c, &day],
        )?;
    }
    let offset = batch.sent_at_ms - meta.now_ms;
    touch(conn, c, device.id.0.as_bytes(), meta.now_ms, Some(offset))?;
    Ok(Done::Batch(IngestOutcome::Acknowledged(ack)))
}

/// Runs one cached statement; the rows it changed.
fn exec(
    conn: &Connection,
    sql: &str,
    values: &[&dyn rusqlite::ToSql],
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute(values)).map_err(write_error)
}

/// The company's last sync and the device's last call (and, from a batch, its clock offset).
fn touch(
    conn: &Connection,
    company: &[u8],
    device: &[u8; 16],
    now_ms: i64,
    clock_offset_ms: Option<i64>,
) -> Result<(), StoreError> {
    let d = device.as_slice();
    // The same two writes as PostgreSQL's `touch!` (the company's last sync to the second).
    exec(
        conn,
        "UPDATE companies SET last_sync_at_ms = ?2 WHERE id = ?1 \
         AND (last_sync_at_ms IS NULL OR last_sync_at_ms < ?2 - 1000)",
        &[&company, &now_ms],
    )?;
    exec(
        conn,
        "UPDATE devices SET last_seen_at_ms = ?3, clock_offset_ms = COALESCE(?4, clock_offset_ms) \
         WHERE company_id = ?1 AND id = ?2",
        &[&company, &d, &now_ms, &clock_offset_ms],
    )?;
    Ok(())
}

/// Inserts a batch's records, skipping those stored before; the number inserted.
fn insert_records(
    conn: &Connection,
    keys: &mut Keys,
    company: CompanyId,
    device: &DeviceAuth,
    records: &[Record],
) -> Result<u32, StoreError> {
    let c = company.0;
    let (cb, d, e) =
        (c.as_bytes().as_slice(), device.id.0.as_bytes(), device.employee_id.0.as_bytes());
    // A span's task is kept only when it is a task of this company.
    let wants_tasks =
        records.iter().any(|r| matches!(r.body, RecordBody::AppSpan { task_id: Some(_), .. }));
    let tasks = if wants_tasks { company_tasks(conn, cb)? } else { HashSet::new() };
    let mut stmts = Statements { conn, held: Default::default() };
    let mut spans = SpanRows::default();
    // The device's span key, looked up at the batch's first app span.
    let mut dev_key: Option<i64> = None;
    let mut inserted = 0usize;
    for r in records {
        let id = r.id.0.as_bytes().as_slice();
        let n = match &r.body {
            RecordBody::AppSpan { start_ms, end_ms, app, exe, title, task_id } => {
                let dev = match dev_key {
                    Some(n) => n,
                    None => *dev_key.insert(keys.device(conn, c, device)?),
                };
                let app = keys.app(conn, c, app, exe.as_deref())?;
                let title = match title {
                    Some(t) => Some(keys.title(conn, dev, t)?),
                    None => None,
                };
                let task = task_id.map(|t| t.0).filter(|t| tasks.contains(t));
                let row = SpanRow {
                    dev,
                    start_ms: *start_ms,
                    id: *r.id.0.as_bytes(),
                    seq: r.seq,
                    dur_ms: end_ms - start_ms,
                    app,
                    title,
                    task: task.map(|t| *t.as_bytes()),
                };
                spans.push(conn, row)?;
                continue;
            }
            RecordBody::WebsiteSpan { start_ms, end_ms, domain, url, title, browser, source } => {
                stmts
                    .get(
                        0,
                        "INSERT INTO website_usage (company_id, id, device_id, employee_id, seq, \
                     start_ms, end_ms, domain, url, title, browser, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                     ON CONFLICT DO NOTHING",
                    )
                    .and_then(|s| {
                        s.execute(params![
                            cb,
                            id,
                            d.as_slice(),
                            e.as_slice(),
                            r.seq,
                            start_ms,
                            end_ms,
                            domain,
                            url,
                            title,
                            browser,
                            site_source_str(*source),
                        ])
                    })
            }
            RecordBody::IdleSpan { start_ms, end_ms } => stmts
                .get(
                    1,
                    "INSERT INTO idle_spans (company_id, id, device_id, employee_id, seq, \
                     start_ms, end_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                )
                .and_then(|s| {
                    s.execute(params![cb, id, d.as_slice(), e.as_slice(), r.seq, start_ms, end_ms])
                }),
            RecordBody::WorkSession { start_ms, end_ms, end_reason } => stmts
                .get(
                    2,
                    "INSERT INTO work_sessions (company_id, id, device_id, employee_id, seq, \
                     start_ms, end_ms, end_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|s| {
                    s.execute(params![
                        cb,
                        id,
                        d.as_slice(),
                        e.as_slice(),
                        r.seq,
                        start_ms,
                        end_ms,
                        session_end_str(*end_reason),
                    ])
                }),
            RecordBody::Activity { minute_ms, active_secs } => stmts
                .get(
                    3,
                    "INSERT INTO activity_log (company_id, id, device_id, employee_id, seq, \
                     minute_ms, active_secs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|s| {
                    s.execute(params![
                        cb,
                        id,
                        d.as_slice(),
                        e.as_slice(),
                        r.seq,
                        minute_ms,
                        i64::from(*active_secs),
                    ])
                }),
            RecordBody::Screenshot { taken_at_ms, monitor, width, height, bytes, blurred } => stmts
                .get(
                    4,
                    "INSERT INTO screenshots (company_id, id, device_id, employee_id, seq, \
                     taken_at_ms, monitor, width, height, bytes, blurred) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
                )
                .and_then(|s| {
                    s.execute(params![
                        cb,
                        id,
                        d.as_slice(),
                        e.as_slice(),
                        r.seq,
                        taken_at_ms,
                        i64::from(*monitor),
                        i64::from(*width),
                        i64::from(*height),
                        i64::try_from(*bytes).unwrap_or(i64::MAX),
                        blurred,
                    ])
                }),
        }
        .map_err(write_error)?;
        inserted += n;
    }
    inserted += spans.finish(conn)?;
    Ok(inserted as u32)
}

/// The insert statements of one batch, each looked up in the connection's cache once per batch
/// rather than once per record (the lookup hashes the statement's text).
struct Statements<'c> {
    conn: &'c Connection,
    held: [Option<rusqlite::CachedStatement<'c>>; 5],
}

impl<'c> Statements<'c> {
    fn get(&mut self, i: usize, sql: &str) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        let held = &mut self.held[i];
        if held.is_none() {
            *held = Some(self.conn.prepare_cached(sql)?);
        }
        Ok(held.as_mut().expect("prepared just above"))
    }
}

/// A company's task ids.
fn company_tasks(conn: &Connection, company: &[u8]) -> Result<HashSet<Uuid>, StoreError> {
    let mut s =
        conn.prepare_cached("SELECT id FROM tasks WHERE company_id = ?1").map_err(write_error)?;
    let ids = s
        .query_map([company], |r| r.get::<_, Vec<u8>>(0))
        .map_err(write_error)?
        .filter_map(|id| id.ok().and_then(|b| Uuid::from_slice(&b).ok()))
        .collect();
    Ok(ids)
}

/// The key caches' map: every span's app and title is looked up in one, and std's SipHash was
/// the writer's largest cost outside SQLite. Any tenant's agents choose the titles, but
/// foldhash's seed is random per process, so colliding titles cannot be prepared in advance,
/// and the cache is bounded ([`MAX_CACHED_TITLES`]).
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A company's (app, executable) keys by app name.
type AppKeys = FastMap<String, Vec<(Option<String>, i64)>>;

/// The integer keys of the compact app-span layout, as stored (committed, or written by the
/// transaction under way: [`Keys::clear`] runs on every rollback).
#[derive(Default)]
struct Keys {
    devices: FastMap<(Uuid, Uuid, Uuid), i64>,
    apps: FastMap<Uuid, AppKeys>,
    /// Per device key: its titles.
    titles: FastMap<i64, FastMap<String, i64>>,
    title_count: usize,
}

impl Keys {
    fn clear(&mut self) {
        *self = Self::default();
    }

    fn device(&mut self, conn: &Connection, c: Uuid, d: &DeviceAuth) -> Result<i64, StoreError> {
        let key = (c, d.id.0, d.employee_id.0);
        if let Some(n) = self.devices.get(&key) {
            return Ok(*n);
        }
        let values = params![
            c.as_bytes().as_slice(),
            d.id.0.as_bytes().as_slice(),
            d.employee_id.0.as_bytes().as_slice()
        ];
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT n FROM span_devices \
                 WHERE company_id = ?1 AND device_id = ?2 AND employee_id = ?3",
            )
            .and_then(|mut s| s.query_row(values, |r| r.get(0)).optional())
            .map_err(write_error)?;
        let n = match found {
            Some(n) => n,
            None => {
                conn.prepare_cached(
                    "INSERT INTO span_devices (company_id, device_id, employee_id) \
                     VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(values))
                .map_err(write_error)?;
                conn.last_insert_rowid()
            }
        };
        self.devices.insert(key, n);
        Ok(n)
    }

    fn app(
        &mut self,
        conn: &Connection,
        c: Uuid,
        app: &str,
        exe: Option<&str>,
    ) -> Result<i64, StoreError> {
        if let Some(n) = self
            .apps
            .get(&c)
            .and_then(|m| m.get(app))
            .and_then(|v| v.iter().find(|(x, _)| x.as_deref() == exe))
        {
            return Ok(n.1);
        }
        let cb = c.as_bytes().as_slice();
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT n FROM span_apps WHERE company_id = ?1 AND app = ?2 AND exe IS ?3",
            )
            .and_then(|mut s| s.query_row(params![cb, app, exe], |r| r.get(0)).optional())
            .map_err(write_error)?;
        let n = match found {
            Some(n) => n,
            None => {
                conn.prepare_cached(
                    "INSERT INTO span_apps (company_id, app, exe) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![cb, app, exe]))
                .map_err(write_error)?;
                conn.last_insert_rowid()
            }
        };
        self.apps
            .entry(c)
            .or_default()
            .entry(app.to_owned())
            .or_default()
            .push((exe.map(str::to_owned), n));
        Ok(n)
    }

    /// The key of a device's title. The titles table has no index on the text: a title not in
    /// this cache is stored again (after a restart, or once the cache is full), which costs
    /// its bytes once more but never mixes two titles up.
    fn title(&mut self, conn: &Connection, dev: i64, title: &str) -> Result<i64, StoreError> {
        if let Some(n) = self.titles.get(&dev).and_then(|m| m.get(title)) {
            return Ok(*n);
        }
        if self.title_count >= MAX_CACHED_TITLES {
            self.titles.clear();
            self.title_count = 0;
        }
        conn.prepare_cached("INSERT INTO span_titles (dev, title) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![dev, title]))
            .map_err(write_error)?;
        let n = conn.last_insert_rowid();
        self.titles.entry(dev).or_default().insert(title.to_owned(), n);
        self.title_count += 1;
        Ok(n)
    }
}

/// Deletes the company's titles, apps and device keys that no span refers to any more.
fn sweep(conn: &mut Connection, company: CompanyId) -> Result<u64, StoreError> {
    let c = company.0.as_bytes().as_slice();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(write_error)?;
    let mut deleted = 0;
    for sql in [
        "DELETE FROM span_titles WHERE dev IN (SELECT n FROM span_devices WHERE company_id = ?1) \
         AND n NOT IN (SELECT s.title FROM span_devices d JOIN app_spans s ON s.dev = d.n \
         WHERE d.company_id = ?1 AND s.title IS NOT NULL)",
        "DELETE FROM span_apps WHERE company_id = ?1 AND n NOT IN (SELECT s.app \
         FROM span_devices d JOIN app_spans s ON s.dev = d.n WHERE d.company_id = ?1)",
        "DELETE FROM span_devices WHERE company_id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM app_spans s WHERE s.dev = span_devices.n) \
         AND NOT EXISTS (SELECT 1 FROM span_titles t WHERE t.dev = span_devices.n)",
    ] {
        deleted += tx.execute(sql, [c]).map_err(write_error)? as u64;
    }
    tx.commit().map_err(write_error)?;
    Ok(deleted)
}
