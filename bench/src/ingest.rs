//! `ingest`: N simulated agents (concurrent, each its own device) post 500-record batches of
//! realistic app spans, zstd-compressed like the real agent, over HTTP on loopback; the server
//! acknowledges each batch only after it is durable (SQLite WAL with `synchronous=FULL`, or a
//! PostgreSQL commit), with tenancy and deduplication on.

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use worktrail_shared::api::{BatchRequest, EnrollResponse, Record, RecordBody};
use worktrail_shared::{BatchId, DeviceId, RecordId};

use crate::Db;
use crate::server::{Prepared, company};
use crate::stats::{cpu_time, ms, peak_rss_mib, percentile};

pub const APPS: [&str; 24] = [
    "Code",
    "Firefox",
    "Chromium",
    "Slack",
    "Terminal",
    "Zoom",
    "LibreOffice Calc",
    "LibreOffice Writer",
    "Thunderbird",
    "Figma",
    "IntelliJ IDEA",
    "Postman",
    "DBeaver",
    "Files",
    "Evince",
    "GIMP",
    "Inkscape",
    "Spotify",
    "Teams",
    "Outlook",
    "Excel",
    "Word",
    "Notion",
    "Obsidian",
];
const WORDS: [&str; 20] = [
    "invoice",
    "report",
    "billing",
    "roadmap",
    "sprint",
    "review",
    "budget",
    "design",
    "api",
    "customer",
    "release",
    "notes",
    "plan",
    "deploy",
    "meeting",
    "draft",
    "q3",
    "contract",
    "onboarding",
    "metrics",
];

/// One realistic window title.
pub fn title(rng: &mut StdRng, app: &str) -> String {
    let w = |rng: &mut StdRng| WORDS[rng.random_range(0..WORDS.len())];
    match rng.random_range(0..4) {
        0 => format!("{}-{}-{}.rs — {app}", w(rng), w(rng), rng.random_range(1..99)),
        1 => format!("#{} | Acme — {app}", w(rng)),
        2 => format!("PR #{} · acme/{} — {app}", rng.random_range(100..9999), w(rng)),
        _ => format!("{} {} {}.ods — {app}", w(rng), w(rng), rng.random_range(2020..2027)),
    }
}

/// The windows an agent's person works in: each span goes back to one of the last
/// [`RECENT_WINDOWS`] windows (an app and its title), or, with probability `new_share`, to a
/// window not seen before (a new document, mail, page or channel). A share of 1.0 gives every
/// span a title of its own.
pub struct Windows {
    recent: std::collections::VecDeque<(&'static str, String)>,
    new_share: f64,
    /// Windows opened so far (distinct titles, give or take a collision).
    pub opened: u64,
}

/// How many recent windows a person goes back to.
pub const RECENT_WINDOWS: usize = 40;

impl Windows {
    pub fn new(new_share: f64) -> Self {
        Self { recent: Default::default(), new_share, opened: 0 }
    }

    /// The app and title of the next span.
    pub fn next(&mut self, rng: &mut StdRng) -> (&'static str, String) {
        if self.recent.is_empty() || rng.random_bool(self.new_share.clamp(0.0, 1.0)) {
            let app = APPS[rng.random_range(0..APPS.len())];
            let window = (app, title(rng, app));
            self.opened += 1;
            if self.recent.len() == RECENT_WINDOWS {
                self.recent.pop_front();
            }
            self.recent.push_back(window.clone());
            window
        } else {
            self.recent[rng.random_range(0..self.recent.len())].clone()
        }
    }
}

/// The next batch of a device: 500 consecutive app spans.
fn batch(rng: &mut StdRng, windows: &mut Windows, seq: &mut i64, t: &mut i64) -> Vec<u8> {
    let records = (0..worktrail_shared::limits::MAX_BATCH_RECORDS)
        .map(|_| {
            *seq += 1;
            let (app, title) = windows.next(rng);
            let len = rng.random_range(5_000..300_000);
            let r = Record {
                id: RecordId::new(),
                seq: *seq,
                body: RecordBody::AppSpan {
                    start_ms: *t,
                    end_ms: *t + len,
                    app: app.into(),
                    exe: Some(format!("/usr/bin/{}", app.to_lowercase().replace(' ', "-"))),
                    title: Some(title),
                    task_id: None,
                },
            };
            *t += len;
            r
        })
        .collect();
    let b = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: *t,
        dropped: Default::default(),
        records,
    };
    zstd::encode_all(serde_json::to_vec(&b).expect("json").as_slice(), 1).expect("zstd")
}

/// One simulated agent's batches: built ahead of the run (so building them takes no CPU from
/// the server while it is measured), then on the fly if the run outlasts them.
struct Agent {
    rng: StdRng,
    windows: Windows,
    seq: i64,
    t: i64,
    /// Batches built ahead, each with the windows it opened.
    ready: std::collections::VecDeque<(Vec<u8>, u64)>,
    built_during_run: u64,
    /// Windows opened by the batches sent.
    opened_sent: u64,
}

impl Agent {
    fn new(i: usize, now: i64, new_share: f64, ahead: usize) -> Self {
        let mut agent = Self {
            rng: StdRng::seed_from_u64(i as u64),
            windows: Windows::new(new_share),
            seq: 0,
            t: now - 30 * 86_400_000 + i as i64,
            ready: Default::default(),
            built_during_run: 0,
            opened_sent: 0,
        };
        for _ in 0..ahead {
            let b = agent.build();
            agent.ready.push_back(b);
        }
        agent
    }

    fn build(&mut self) -> (Vec<u8>, u64) {
        let before = self.windows.opened;
        let b = batch(&mut self.rng, &mut self.windows, &mut self.seq, &mut self.t);
        (b, self.windows.opened - before)
    }

    fn next(&mut self) -> Vec<u8> {
        let (body, opened) = self.ready.pop_front().unwrap_or_else(|| {
            self.built_during_run += 1;
            self.build()
        });
        self.opened_sent += opened;
        body
    }
}

/// Batches built ahead of a run, over all agents: enough for 2,000 batches/s (1,000,000
/// records/s) for the whole run, capped at 60,000 batches (30 s at that rate; ~14 kB each).
/// Building them during the run took a sixth of the 2 cores from the server.
fn batches_ahead(agents: usize, seconds: u64) -> usize {
    let wanted = 2_000 * seconds as usize;
    wanted.min(60_000).div_ceil(agents.max(1))
}

pub async fn enroll(client: &reqwest::Client, base: &str, key: &str, i: usize) -> Result<String> {
    let body = serde_json::json!({
        "device_id": DeviceId::new(), "email": format!("agent{i}@bench.example"),
        "os_user": format!("agent{i}"), "hostname": format!("bench-{i}"), "os": "Linux", "agent_version": "bench",
    });
    let resp = client
        .post(format!("{base}/api/v1/agent/enroll"))
        .header("x-company-key", key)
        .json(&body)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("enrolment failed: {} {}", resp.status(), resp.text().await?);
    }
    Ok(resp.json::<EnrollResponse>().await?.device_token)
}

/// Runs the scenario on `db` and prints its figures.
/// Posts one zstd-compressed batch as an agent does; an error unless the server acknowledges it.
pub async fn post_batch(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<()> {
    let resp = client
        .post(format!("{base}/api/v1/agent/batches"))
        .header("x-company-key", key)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("content-encoding", "zstd")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("batch refused: {status} {text}");
    }
    Ok(())
}

pub async fn run(db: Db, agents: usize, seconds: u64, new_share: f64) -> Result<()> {
    let prepared = Prepared::new(db).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let store = prepared.store().await?;
    let (_, key) = company(store.as_ref(), "Bench Co", now).await?;
    store.close().await;
    // Build the batches first, one blocking task per agent.
    let ahead = batches_ahead(agents, seconds);
    let building = Instant::now();
    let mut built = Vec::new();
    for i in 0..agents {
        built.push(tokio::task::spawn_blocking(move || Agent::new(i, now, new_share, ahead)));
    }
    let mut simulated = Vec::new();
    for b in built {
        simulated.push(b.await.context("building batches")?);
    }
    let building = building.elapsed();
    let built_bytes: usize =
        simulated.iter().flat_map(|a| a.ready.iter()).map(|(body, _)| body.len()).sum();
    let server = prepared.spawn()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(agents * 2).build()?;
    let mut tokens = Vec::new();
    for i in 0..agents {
        tokens.push(enroll(&client, &server.base, &key, i).await?);
    }
    let cpu_before = cpu_time(server.pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (token, mut agent) in tokens.into_iter().zip(simulated) {
        let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let body = agent.next();
                let sent = Instant::now();
                post_batch(&client, &base, &key, &token, body).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>((latencies, agent))
        });
    }
    let mut latencies = Vec::new();
    let (mut opened, mut built_during_run) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (l, agent) = done.context("agent task")??;
        latencies.extend(l);
        opened += agent.opened_sent;
        built_during_run += agent.built_during_run;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time(server.pid) - cpu_before;
    let rss = peak_rss_mib(server.pid);
    server.stop()?;
    let batches = latencies.len();
    let records = batches * worktrail_shared::limits::MAX_BATCH_RECORDS;
    let bytes = prepared.bytes().await?;
    let wal = prepared.wal_bytes();
    println!("scenario: ingest");
    println!(
        "database: {}",
        match db {
            Db::Postgres => "postgresql (fresh database, default settings)",
            _ => "sqlite (WAL, synchronous=FULL, foreign keys on)",
        }
    );
    println!("agents: {agents}; batch: 500 app spans, zstd level 1; sending for {seconds} s");
    println!(
        "windows: a span goes to a new window (app + title) with probability {new_share}, \
         else back to one of the agent's last {RECENT_WINDOWS}; {opened} windows opened \
         ({:.1} per 100 spans sent)",
        opened as f64 * 100.0 / records.max(1) as f64
    );
    println!(
        "load generator: {} batches built ahead ({:.0} MB compressed) in {:.1} s, \
         {built_during_run} built during the run",
        ahead * agents,
        built_bytes as f64 / 1e6,
        building.as_secs_f64()
    );
    println!("records: {records}");
    println!("records/s: {:.0}", records as f64 / elapsed.as_secs_f64());
    println!("batches/s: {:.1}", batches as f64 / elapsed.as_secs_f64());
    println!("batch latency p50: {}", ms(percentile(&mut latencies, 50.0)));
    println!("batch latency p99: {}", ms(percentile(&mut latencies, 99.0)));
    println!("server CPU per record: {:.1} µs", cpu.as_secs_f64() * 1e6 / records.max(1) as f64);
    println!(
        "database bytes per record: {:.0} (all files after the server stopped; WAL {wal} bytes)",
        bytes as f64 / records.max(1) as f64
    );
    println!("server peak RSS: {rss:.1} MiB");
    println!();
    Ok(())
}
