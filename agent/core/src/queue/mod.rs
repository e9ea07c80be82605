//! The durable local queue (SQLite through `rusqlite`): WAL, `synchronous=FULL`, migrations by
//! `user_version`, and exactly one owner of the connection — a plain thread off the async
//! runtime, reached through [`Queue::call`]. Blocking SQLite calls therefore never stall the
//! runtime, and no two writers ever race.

mod db;
mod evict;
mod poison;
mod schema;
#[cfg(test)]
mod tests;

pub use db::{PendingBatch, QueueDb};
pub use poison::Refusal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use worktrail_shared::api::DroppedCounts;

/// Size limits of the queue; past them the oldest records are dropped (screenshots first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Most records kept.
    pub max_records: u64,
    /// Most bytes kept (record bodies and screenshot JPEGs).
    pub max_bytes: u64,
    /// Records older than this are dropped.
    pub max_age_ms: i64,
}

impl Default for Caps {
    /// 30 days, 1 GB.
    fn default() -> Self {
        Self { max_records: 2_000_000, max_bytes: 1 << 30, max_age_ms: 30 * 24 * 3_600_000 }
    }
}

/// The queue failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQLite failed.
    #[error("queue database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record does not decode.
    #[error("queue record: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value is not what this build wrote.
    #[error("queue holds a corrupt {0}")]
    Corrupt(&'static str),
    /// The owner thread is gone.
    #[error("the queue is closed")]
    Closed,
}

/// What `status` shows about the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStatus {
    /// Records waiting to be sent.
    pub records: u64,
    /// Bytes held (records and screenshots).
    pub bytes: u64,
    /// Screenshots whose metadata was accepted and whose bytes wait for upload.
    pub screenshots_to_upload: u64,
    /// Drops not yet reported to the server.
    pub dropped: DroppedCounts,
    /// When the server last acknowledged a batch.
    pub last_sync_ms: Option<i64>,
    /// Records set aside because they can never be sent (the server refuses them, or this
    /// build cannot read them); kept in the queue file, out of the way of the rest.
    pub set_aside: u64,
}

type Job = Box<dyn FnOnce(&mut QueueDb) + Send>;

/// Handle to the queue's owner thread.
#[derive(Debug)]
pub struct Queue {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Queue {
    /// Opens the queue at `path` on a new owner thread.
    pub fn open(path: &Path, caps: Caps) -> Result<Self, QueueError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let owned = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("worktrail-queue".into())
            .spawn(move || {
                let mut db = match QueueDb::open(&owned, caps) {
                    Ok(db) => {
                        let _ = ready_tx.send(Ok(()));
                        db
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in rx {
                    job(&mut db);
                }
            })
            .map_err(|_| QueueError::Closed)?;
        ready_rx.recv().map_err(|_| QueueError::Closed)??;
        Ok(Self { tx: Some(tx), thread: Some(thread), path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the owner thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, QueueError>
    where
        R: Send + 'static,
        F: FnOnce(&mut QueueDb) -> Result<R, QueueError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.tx.as_ref().ok_or(QueueError::Closed)?.send(job).map_err(|_| QueueError::Closed)?;
        rx.await.map_err(|_| QueueError::Closed)?
    }

    /// Runs `f` on the owner thread and waits for it, blocking this thread (for synchronous
    /// callers such as start-up and the CLI; never from inside a task that must stay responsive).
    pub fn call_blocking<R, F>(&self, f: F) -> Result<R, QueueError>
    where
        R: Send + 'static,
        F: FnOnce(&mut QueueDb) -> Result<R, QueueError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.tx.as_ref().ok_or(QueueError::Closed)?.send(job).map_err(|_| QueueError::Closed)?;
        rx.recv().map_err(|_| QueueError::Closed)?
    }

    /// Finishes queued work and closes the connection.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shutdown();
    }
}
