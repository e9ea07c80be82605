//! The `worktrail-server` command line: parses, calls the library, prints.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use worktrail_server::clock::{Clock, SystemClock};
use worktrail_server::domain::password::random_password;
use worktrail_server::domain::plan::Plan;
use worktrail_server::jobs::{self, Job, Schedule};
use worktrail_server::store::Role;
use worktrail_server::{AppState, Config, demo, open_state, provision};
use worktrail_shared::PlanId;

/// Batches are decoded on the request tasks and dropped on the SQLite writer thread: glibc's
/// allocator spent about a third of the request side's CPU on that traffic (measured with
/// `perf` under `worktrail-bench ingest`); mimalloc frees across threads without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "worktrail-server", version, about = "Worktrail multi-tenant server")]
struct Cli {
    /// Directory for the embedded database and screenshot files.
    #[arg(long, env = "WORKTRAIL_DATA_DIR", default_value = "./worktrail-data", global = true)]
    data_dir: PathBuf,
    /// Database URL (`sqlite://…` or `postgres://…`); defaults to SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// PostgreSQL URL of the role that owns the schema: migrations run through it and the
    /// `--database-url` role is granted row access only, so row-level security confines it.
    #[arg(long, env = "DATABASE_MIGRATE_URL", global = true, hide_env_values = true)]
    migrate_url: Option<String>,
    /// Store screenshots in this S3-compatible bucket instead of the data directory
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "WORKTRAIL_S3_BUCKET", global = true)]
    s3_bucket: Option<String>,
    /// Endpoint of an S3-compatible service (default: AWS).
    #[arg(long, env = "WORKTRAIL_S3_ENDPOINT", global = true, requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long, env = "AWS_REGION", global = true, default_value = "us-east-1")]
    s3_region: String,
    /// Allow a plain-HTTP S3 endpoint (private networks and tests only).
    #[arg(long, env = "WORKTRAIL_S3_ALLOW_HTTP", global = true)]
    s3_allow_http: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "WORKTRAIL_LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API and portals, and run the background jobs.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "WORKTRAIL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        jobs: JobFlags,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Seed demo data (plans, owner, a trial company with employees and a week of activity),
    /// print the logins and the company key, and serve.
    Demo {
        /// Address to listen on.
        #[arg(long, env = "WORKTRAIL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        jobs: JobFlags,
    },
    /// Run background jobs by hand.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Manage plans.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Manage companies.
    Company {
        #[command(subcommand)]
        command: CompanyCommand,
    },
    /// Manage platform operators.
    Owner {
        #[command(subcommand)]
        command: OwnerCommand,
    },
}

#[derive(clap::Args, Debug)]
struct JobFlags {
    /// Seconds between rollup and lifecycle runs (retention runs 60 times less often).
    #[arg(long, env = "WORKTRAIL_JOB_INTERVAL_SECS", default_value_t = 60)]
    job_interval_secs: u64,
    /// Do not run background jobs in this process (another replica runs them).
    #[arg(long, env = "WORKTRAIL_NO_JOBS")]
    no_jobs: bool,
}

impl JobFlags {
    fn schedule(&self) -> Result<Option<Schedule>> {
        if self.job_interval_secs == 0 {
            bail!("--job-interval-secs must be at least 1");
        }
        Ok((!self.no_jobs).then(|| Schedule::every(Duration::from_secs(self.job_interval_secs))))
    }
}

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// Run every job (or one) once and print what each did.
    RunOnce {
        /// Only this job: rollup, lifecycle or retention.
        #[arg(long)]
        job: Option<String>,
        /// Run as of this time (RFC 3339, e.g. 2026-12-01T00:00:00Z, or epoch milliseconds)
        /// instead of now.
        #[arg(long)]
        now: Option<String>,
    },
}

/// Parses `--now`.
fn parse_time(text: &str) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let ts: jiff::Timestamp = text.parse().with_context(|| {
        format!("{text:?} is neither RFC 3339 (2026-12-01T00:00:00Z) nor epoch ms")
    })?;
    Ok(ts.as_millisecond())
}

#[derive(Subcommand, Debug)]
enum PlanCommand {
    /// Create a plan.
    Create {
        /// Unique short code (letters, digits, dashes).
        #[arg(long)]
        code: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Most employees per company.
        #[arg(long)]
        max_seats: i64,
        /// Days raw activity is kept.
        #[arg(long, default_value_t = 90)]
        retention_days: i64,
        /// Price per seat and month, in cents.
        #[arg(long, default_value_t = 0)]
        price_cents: i64,
        /// Trial days for new companies.
        #[arg(long, default_value_t = 14)]
        trial_days: i64,
        /// Forbid screenshots on this plan.
        #[arg(long)]
        no_screenshots: bool,
    },
    /// List plans.
    List,
}

#[derive(Subcommand, Debug)]
enum CompanyCommand {
    /// Create a company; prints its company key once.
    Create {
        /// Company name (unique).
        #[arg(long)]
        name: String,
        /// Plan code.
        #[arg(long, default_value = "trial")]
        plan: String,
        /// IANA time zone for days and schedules.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// Also create an admin with this e-mail (a password is generated and printed once).
        #[arg(long)]
        admin_email: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum OwnerCommand {
    /// Create an operator. The password is read from standard input when it is not a terminal,
    /// otherwise generated and printed once.
    Create {
        /// E-mail to sign in with.
        #[arg(long)]
        email: String,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json { builder.json().init() } else { builder.init() }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let mut config = Config::new(&cli.data_dir);
    config.database_url = cli.database_url.clone();
    config.migrate_url = cli.migrate_url.clone();
    config.s3 = cli.s3_bucket.clone().map(|bucket| worktrail_server::objects::S3Config {
        bucket,
        endpoint: cli.s3_endpoint.clone(),
        region: cli.s3_region.clone(),
        allow_http: cli.s3_allow_http,
    });
    let now = SystemClock.now_ms();
    match cli.command {
        Command::Serve { listen, jobs } => {
            config.listen = listen;
            let state = open_state(&config).await?;
            serve(&config, state, jobs.schedule()?).await
        }
        Command::Jobs { command: JobsCommand::RunOnce { job, now: at } } => {
            let jobs = match job.as_deref() {
                None => Job::ALL.to_vec(),
                Some(name) => vec![Job::parse(name).with_context(|| {
                    format!("no job {name:?}; jobs are rollup, lifecycle and retention")
                })?],
            };
            let at = at.as_deref().map(parse_time).transpose()?.unwrap_or(now);
            let state = open_state(&config).await?;
            for job in jobs {
                let rows = jobs::run_recorded(&state, job, -1, "cli", at)
                    .await
                    .with_context(|| format!("job {}", job.name()))?;
                println!("{}: {rows} rows", job.name());
            }
            Ok(())
        }
        Command::Migrate => {
            open_state(&config).await.context("migrating")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Demo { listen, jobs } => {
            config.listen = listen;
            let schedule = jobs.schedule()?;
            let state = open_state(&config).await?;
            let logins = demo::seed(state.store.as_ref(), now).await.context("seeding the demo")?;
            if logins.created {
                println!(
                    "demo data: {} records for {} over the last week",
                    logins.records,
                    demo::COMPANY
                );
            } else {
                println!(
                    "demo data already present in {}; issued a new key",
                    cli.data_dir.display()
                );
            }
            println!("company key: {}", logins.company_key.expose());
            println!("owner login: {} {}", logins.owner.0, logins.owner.1);
            println!("admin login: {} {}", logins.admin.0, logins.admin.1);
            println!("employee login: {} {}", logins.employee.0, logins.employee.1);
            worktrail_server::jobs::rollup::run(&state, now)
                .await
                .context("rolling up the demo")?;
            serve(&config, state, schedule).await
        }
        Command::Plan { command: PlanCommand::List } => {
            let state = open_state(&config).await?;
            println!(
                "{:<12} {:<16} {:>6} {:>9} {:>11} {:>6} screenshots",
                "code", "name", "seats", "retention", "price/seat", "trial"
            );
            for p in state.store.list_plans().await? {
                println!(
                    "{:<12} {:<16} {:>6} {:>8}d {:>11} {:>5}d {}",
                    p.code,
                    p.name,
                    p.max_seats,
                    p.retention_days,
                    p.price_cents,
                    p.trial_days,
                    if p.screenshots_allowed { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        Command::Plan {
            command:
                PlanCommand::Create {
                    code,
                    name,
                    max_seats,
                    retention_days,
                    price_cents,
                    trial_days,
                    no_screenshots,
                },
        } => {
            let state = open_state(&config).await?;
            let plan = Plan {
                id: PlanId::new(),
                code,
                name,
                max_seats,
                retention_days,
                screenshots_allowed: !no_screenshots,
                price_cents,
                trial_days,
            };
            provision::create_plan(state.store.as_ref(), &plan, now).await?;
            println!("plan created: {}", plan.code);
            Ok(())
        }
        Command::Company {
            command: CompanyCommand::Create { name, plan, time_zone, admin_email },
        } => {
            let state = open_state(&config).await?;
            let store = state.store.as_ref();
            let created = provision::create_company(store, &name, &plan, &time_zone, now).await?;
            println!("company created: {} ({})", name.trim(), created.id);
            println!("company key: {}", created.key.expose());
            if let Some(email) = admin_email {
                let password = random_password();
                provision::create_user(
                    store,
                    created.id,
                    &email,
                    "Admin",
                    Role::Admin,
                    &password,
                    now,
                )
                .await?;
                println!("admin login: {} {}", email.trim().to_lowercase(), password);
            }
            Ok(())
        }
        Command::Owner { command: OwnerCommand::Create { email } } => {
            let state = open_state(&config).await?;
            let stdin = std::io::stdin();
            let (password, generated) = if stdin.is_terminal() {
                (random_password(), true)
            } else {
                let mut line = String::new();
                stdin.lock().read_line(&mut line).context("reading the password from stdin")?;
                let line = line.trim_end_matches(['\r', '\n']).to_owned();
                if line.is_empty() {
                    bail!("no password on standard input");
                }
                (line, false)
            };
            provision::create_owner(state.store.as_ref(), &email, &password, now).await?;
            if generated {
                println!("owner login: {} {}", email.trim().to_lowercase(), password);
            } else {
                println!("owner created: {}", email.trim().to_lowercase());
            }
            Ok(())
        }
    }
}

async fn serve(config: &Config, state: AppState, schedule: Option<Schedule>) -> Result<()> {
    let listener = worktrail_server::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = ?state.store.backend(), "serving");
    println!("serving on http://{addr}");
    let (stop_jobs, stopped) = tokio::sync::watch::channel(false);
    let jobs = schedule.map(|schedule| {
        let holder = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        );
        let mut stopped = stopped.clone();
        tokio::spawn(jobs::run_scheduler(state.clone(), schedule, holder, async move {
            let _ = stopped.changed().await;
        }))
    });
    worktrail_server::serve(state.clone(), listener, worktrail_server::shutdown_signal()).await?;
    let _ = stop_jobs.send(true);
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    if let Err(e) = worktrail_server::usage::flush(&state).await {
        tracing::warn!(error = %e, "could not save the last request counts");
    }
    state.store.close().await;
    Ok(())
}
