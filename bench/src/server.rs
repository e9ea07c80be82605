//! The server under test: prepared on a fresh database, run as a child process (this binary's
//! hidden `serve` subcommand), measured through `/proc`, stopped with SIGTERM.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use worktrail_server::ratelimit::{Rate, RateLimits};
use worktrail_server::store::Store;

use crate::Db;

/// A fresh database for one run.
pub struct Prepared {
    /// The data directory (SQLite file, screenshot objects).
    pub dir: tempfile::TempDir,
    /// The database URL.
    pub url: String,
    /// Which backend.
    pub db: Db,
}

impl Prepared {
    /// Creates an empty database (a temp SQLite file, or a new PostgreSQL database).
    pub async fn new(db: Db) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = match db {
            Db::Sqlite | Db::Both => {
                format!("sqlite://{}", dir.path().join("worktrail.db").display())
            }
            Db::Postgres => {
                use sqlx::Connection;
                let admin = std::env::var("BENCH_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                let name = format!("wt_bench_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .with_context(|| format!("connecting to {admin} (set BENCH_DATABASE_URL)"))?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        };
        Ok(Self { dir, url, db })
    }

    /// Opens the store (running migrations, with the default plans) for seeding.
    pub async fn store(&self) -> Result<Arc<dyn Store>> {
        let store = worktrail_server::store::open(&self.url).await?;
        worktrail_server::provision::seed_default_plans(store.as_ref(), 0).await?;
        Ok(store)
    }

    /// Bytes the database occupies.
    pub async fn bytes(&self) -> Result<u64> {
        match self.db {
            Db::Postgres => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let (n,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await?;
                Ok(n as u64)
            }
            _ => {
                let base = self.dir.path().join("worktrail.db");
                let mut total = 0;
                for suffix in ["", "-wal"] {
                    let path = PathBuf::from(format!("{}{suffix}", base.display()));
                    total += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                }
                Ok(total)
            }
        }
    }

    /// The size of SQLite's WAL file (0 when there is none, or on PostgreSQL).
    pub fn wal_bytes(&self) -> u64 {
        let wal = self.dir.path().join("worktrail.db-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// Starts the server on this database.
    pub fn spawn(&self) -> Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", "--data-dir"])
            .arg(self.dir.path())
            .args(["--database-url", &self.url])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(base) = line.trim().strip_prefix("serving on ") else {
            bail!("the server did not start: {line:?}");
        };
        Ok(Server { pid: child.id(), base: base.to_owned(), child })
    }
}

/// A running server.
pub struct Server {
    /// Its process id.
    pub pid: u32,
    /// `http://127.0.0.1:port`.
    pub base: String,
    child: Child,
}

impl Server {
    /// SIGTERM, then wait (the store closes, SQLite checkpoints its WAL).
    pub fn stop(mut self) -> Result<()> {
        Command::new("kill").args(["-TERM", &self.pid.to_string()]).status()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hidden `serve` subcommand: the real server, rate limits out of the way (the benchmark
/// measures throughput, not the limiter), no background jobs.
pub async fn serve(data_dir: PathBuf, database_url: Option<String>) -> Result<()> {
    let mut config = worktrail_server::Config::new(data_dir);
    config.database_url = database_url;
    config.listen = ([127, 0, 0, 1], 0).into();
    let lots = Rate { per_sec: 1e9, burst: 1e9 };
    config.rate_limits = RateLimits { device: lots, company: lots };
    let state = worktrail_server::open_state(&config).await?;
    let listener = worktrail_server::bind(config.listen).await?;
    println!("serving on http://{}", listener.local_addr()?);
    worktrail_server::serve(state.clone(), listener, worktrail_server::shutdown_signal()).await?;
    state.store.close().await;
    Ok(())
}

/// Makes a company on the business plan (500 seats); returns its id and key.
pub async fn company(
    store: &dyn Store,
    name: &str,
    now_ms: i64,
) -> Result<(worktrail_shared::CompanyId, String)> {
    let c =
        worktrail_server::provision::create_company(store, name, "business", "UTC", now_ms).await?;
    Ok((c.id, c.key.expose().to_owned()))
}
