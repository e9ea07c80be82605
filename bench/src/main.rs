//! `worktrail-bench`: benchmarks that print their figures and exact configuration.
//!
//! Each scenario starts a real `worktrail-server` as a child process (this same binary, run
//! with the hidden `serve` subcommand, so there is nothing else to build) on a fresh database,
//! drives it over HTTP on loopback, and reads the server's CPU time and peak RSS from `/proc`.
#![allow(clippy::print_stdout)]

mod admin_day;
mod agent;
mod fleet;
mod ingest;
mod owner;
mod server;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

/// The server under test is this binary (`serve`), so it allocates as `worktrail-server` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Concurrent agents, one run per number given (default 8 quick; 8,32 full).
        #[arg(long, value_delimiter = ',')]
        agents: Option<Vec<usize>>,
        /// Seconds of sending per run (default 10 quick, 30 full).
        #[arg(long)]
        seconds: Option<u64>,
        /// Probability that a span is in a window (app + title) the agent has not sent before;
        /// otherwise it goes back to one of its last 40 windows. 1.0: every title new.
        #[arg(long, default_value_t = 0.2)]
        new_windows: f64,
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
    /// Many agents each syncing once a minute (time-compressed), in steps of load.
    Fleet {
        /// 1,000 devices and steps of 10,000 and 100,000 agents, 8 s each.
        #[arg(long)]
        quick: bool,
        /// Database(s).
        #[arg(long, value_enum, default_value = "sqlite")]
        db: Db,
        /// Devices enrolled (default 1,000 quick, 10,000 full).
        #[arg(long)]
        devices: Option<usize>,
        /// Steps of simulated agents, comma-separated (default 10000,100000 quick;
        /// 10000,20000,30000,40000,50000,70000,100000,200000 full; past 100,000 only while
        /// p99 holds).
        #[arg(long, value_delimiter = ',')]
        steps: Option<Vec<usize>>,
        /// Seconds per step (default 8 quick, 30 full).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// The headless agent (or, with --tray, the tray app) tracking a scripted desktop session
    /// under Xvfb.
    Agent {
        /// 45 seconds instead of 10 minutes.
        #[arg(long)]
        quick: bool,
        /// Seconds of measured tracking (overrides the mode's default).
        #[arg(long)]
        seconds: Option<u64>,
        /// The `worktrail-agentd` binary (default: next to this one).
        #[arg(long)]
        agentd: Option<std::path::PathBuf>,
        /// Run the tray app (`worktrail-agent --tray-only`) instead of the headless agent.
        #[arg(long)]
        tray: bool,
        /// The tray app's binary (default: `worktrail-agent` next to this one); implies --tray.
        #[arg(long)]
        tray_app: Option<std::path::PathBuf>,
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
            Command::Ingest { quick, db, agents, seconds, new_windows } => {
                let agents = agents.unwrap_or(if quick { vec![8] } else { vec![8, 32] });
                let seconds = seconds.unwrap_or(if quick { 10 } else { 30 });
                for db in db.each() {
                    for &n in &agents {
                        ingest::run(db, n, seconds, new_windows).await?;
                    }
                }
                Ok(())
            }
            Command::OwnerDashboard { quick, db } => {
                for db in db.each() {
                    owner::run(db, if quick { 100 } else { 1000 }, 365).await?;
                }
                Ok(())
            }
            Command::Fleet { quick, db, devices, steps, seconds } => {
                let devices = devices.unwrap_or(if quick { 1_000 } else { 10_000 });
                let steps = steps.unwrap_or_else(|| {
                    if quick {
                        vec![10_000, 100_000]
                    } else {
                        vec![10_000, 20_000, 30_000, 40_000, 50_000, 70_000, 100_000, 200_000]
                    }
                });
                let seconds = seconds.unwrap_or(if quick { 8 } else { 30 });
                for db in db.each() {
                    fleet::run(db, devices, &steps, seconds).await?;
                }
                Ok(())
            }
            Command::Agent { quick, seconds, agentd, tray, tray_app } => {
                let seconds = seconds.unwrap_or(if quick { 45 } else { 600 });
                let app = match (tray, tray_app) {
                    (_, Some(path)) => agent::App::Tray(path),
                    (true, None) => {
                        agent::App::Tray(std::env::current_exe()?.with_file_name("worktrail-agent"))
                    }
                    (false, None) => agent::App::Headless,
                };
                agent::run(seconds, agentd, app).await
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
