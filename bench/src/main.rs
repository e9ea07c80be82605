//! `worktrail-bench`: benchmarks that print their figures and exact configuration.
//!
//! Each scenario starts a real `worktrail-server` as a child process (this same binary, run
//! with the hidden `serve` subcommand, so there is nothing else to build) on a fresh database,
//! drives it over HTTP on loopback, and reads the server's CPU time and peak RSS from `/proc`.
#![allow(clippy::print_stdout)]

mod admin_day;
mod ingest;
mod owner;
mod server;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "worktrail-bench", about = "Worktrail benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which database backs the server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Db {
    /// Embedded SQLite (WAL, synchronous=FULL).
    Sqlite,
    /// PostgreSQL at `BENCH_DATABASE_URL` (default the local server), a fresh database per run.
    Postgres,
    /// Both, one after the other.
    Both,
}

impl Db {
    fn each(self) -> Vec<Db> {
        match self {
            Db::Both => vec![Db::Sqlite, Db::Postgres],
            one => vec![one],
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Concurrent agents posting 500-record batches over HTTP.
    Ingest {
        /// A short run (under a minute).
        #[arg(long)]
        quick: bool,
        /// Database(s).
        #[arg(long, value_enum, default_value = "both")]
        db: Db,
        /// Concurrent agents (default 8 quick, 32 full).
        #[arg(long)]
        agents: Option<usize>,
        /// Seconds of sending (default 10 quick, 60 full).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// The owner's dashboard and report over many companies × days of rollups.
    OwnerDashboard {
        /// 100 companies instead of 1,000.
        #[arg(long)]
        quick: bool,
        /// Database(s).
        #[arg(long, value_enum, default_value = "sqlite")]
        db: Db,
    },
    /// One employee's day and the company overview over months of raw data.
    AdminDay {
        /// 10 employees × 30 days instead of 100 × 365.
        #[arg(long)]
        quick: bool,
        /// Database(s).
        #[arg(long, value_enum, default_value = "sqlite")]
        db: Db,
    },
    /// (internal) run the server under test.
    #[command(hide = true)]
    Serve {
        /// Data directory.
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// Database URL.
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve { data_dir, database_url } => {
                server::serve(data_dir, database_url).await
            }
            Command::Ingest { quick, db, agents, seconds } => {
                let agents = agents.unwrap_or(if quick { 8 } else { 32 });
                let seconds = seconds.unwrap_or(if quick { 10 } else { 60 });
                for db in db.each() {
                    ingest::run(db, agents, seconds).await?;
                }
                Ok(())
            }
            Command::OwnerDashboard { quick, db } => {
                for db in db.each() {
                    owner::run(db, if quick { 100 } else { 1000 }, 365).await?;
                }
                Ok(())
            }
            Command::AdminDay { quick, db } => {
                let (employees, days) = if quick { (10, 30) } else { (100, 365) };
                for db in db.each() {
                    admin_day::run(db, employees, days).await?;
                }
                Ok(())
            }
        }
    })
}
