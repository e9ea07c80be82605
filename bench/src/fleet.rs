//! `fleet`: many agents each syncing once a minute, time-compressed. `devices` real devices
//! are enrolled over HTTP (companies of 500 seats); a step of `agents` simulated agents is an
//! open-loop arrival rate of `agents / 60` syncs per second spread evenly over time, taken in
//! turn by the enrolled devices, so each device syncs every `60 × devices / agents` seconds
//! and stands for `agents / devices` agents. A sync is what the real agent sends each minute:
//! one batch with a minute of records (an activity minute and three app spans), zstd level 1,
//! plus the policy fetch every tenth sync (the agent refreshes it every 10 minutes). Latency
//! is measured from when the sync was due, so a server (or load generator) that falls behind
//! shows in the figures instead of slowing the arrivals. At most `IN_FLIGHT` syncs are in
//! flight over a pool of keep-alive connections; a sync due while all are busy waits.

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::{BatchId, RecordId};

use crate::Db;
use crate::server::{Prepared, company};
use crate::stats::{cpu_time, ms, peak_rss_mib, percentile};

const MIN: i64 = 60_000;
/// Seats of the business plan: devices per company.
const SEATS: usize = 500;
/// Syncs in flight at most (the load generator's connection pool); a sync due while all are
/// busy waits for one, and that wait counts in its latency.
const IN_FLIGHT: usize = 256;
/// The p99 the fleet must stay under.
const GOAL: Duration = Duration::from_millis(100);

/// One enrolled device.
struct Device {
    key: String,
    token: String,
}

/// The batch device `d` sends on its `round`-th sync: the minute `round` of its virtual clock.
fn minute_batch(d: usize, round: i64, base: i64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64((d as u64) << 32 | round as u64);
    let minute = base + round * MIN;
    let seq = round * 4;
    let mut records = vec![Record {
        id: RecordId::new(),
        seq: seq + 1,
        body: RecordBody::Activity { minute_ms: minute, active_secs: rng.random_range(20..=60) },
    }];
    let mut t = minute;
    for i in 0..3 {
        let end = if i == 2 { minute + MIN } else { t + rng.random_range(5_000..25_000) };
        let app = crate::ingest::APPS[rng.random_range(0..crate::ingest::APPS.len())];
        records.push(Record {
            id: RecordId::new(),
            seq: seq + 2 + i,
            body: RecordBody::AppSpan {
                start_ms: t,
                end_ms: end,
                app: app.into(),
                exe: Some(format!("/usr/bin/{}", app.to_lowercase().replace(' ', "-"))),
                title: Some(crate::ingest::title(&mut rng, app)),
                task_id: None,
            },
        });
        t = end;
    }
    let b = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: minute + MIN,
        dropped: Default::default(),
        records,
    };
    zstd::encode_all(serde_json::to_vec(&b).expect("json").as_slice(), 1).expect("zstd")
}

/// One sync: the batch, and the policy on every tenth round. Returns an error on any refusal.
async fn sync(
    client: &reqwest::Client,
    base: &str,
    device: &Device,
    body: Vec<u8>,
    policy: bool,
) -> Result<()> {
    crate::ingest::post_batch(client, base, &device.key, &device.token, body).await?;
    if policy {
        let resp = client
            .get(format!("{base}/api/v1/agent/policy"))
            .header("x-company-key", &device.key)
            .bearer_auth(&device.token)
            .send()
            .await?;
        let status = resp.status();
        resp.bytes().await?;
        if !status.is_success() {
            bail!("policy refused: {status}");
        }
    }
    Ok(())
}

/// The figures of one step.
struct Step {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    server_cpu: Duration,
    bench_cpu: Duration,
}

/// The load generator.
struct Fleet {
    client: reqwest::Client,
    base: Arc<str>,
    devices: Arc<Vec<Device>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    server_pid: u32,
    /// Syncs sent so far, over all steps: sync `i` is device `i % devices`' round `i / devices`.
    next: u64,
    /// Minute 0 of every device's virtual clock.
    virtual_base: i64,
}

impl Fleet {
    /// Runs one step: `agents / 60` syncs per second for `seconds`, then waits for the stragglers.
    async fn step(&mut self, agents: usize, seconds: u64) -> Result<Step> {
        let (server_pid, virtual_base) = (self.server_pid, self.virtual_base);
        let interval = Duration::from_secs_f64(60.0 / agents as f64);
        let total = (seconds as f64 * agents as f64 / 60.0).round() as u64;
        let (server_before, bench_before) = (cpu_time(server_pid), cpu_time(std::process::id()));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut sent = 0u64;
        while sent < total {
            let now = Instant::now();
            // Everything due by now goes out; the timer is coarser than the gap between syncs.
            while sent < total && started + interval.mul_f64(sent as f64) <= now {
                let due = started + interval.mul_f64(sent as f64);
                let i = self.next;
                self.next += 1;
                sent += 1;
                let d = (i % self.devices.len() as u64) as usize;
                let round = (i / self.devices.len() as u64) as i64;
                let (client, base, devices) =
                    (self.client.clone(), self.base.clone(), self.devices.clone());
                let in_flight = self.in_flight.clone();
                tasks.spawn(async move {
                    let _slot = in_flight.acquire_owned().await.expect("never closed");
                    let body = minute_batch(d, round, virtual_base);
                    let r = sync(&client, &base, &devices[d], body, round % 10 == 9).await;
                    (due.elapsed(), r.err().map(|e| format!("{e:#}")))
                });
            }
            if sent < total {
                tokio::time::sleep_until((started + interval.mul_f64(sent as f64)).into()).await;
            }
        }
        let mut latencies = Vec::with_capacity(total as usize);
        let (mut errors, mut first_error) = (0, None);
        while let Some(done) = tasks.join_next().await {
            let (latency, error) = done?;
            match error {
                None => latencies.push(latency),
                Some(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        Ok(Step {
            latencies,
            errors,
            first_error,
            elapsed: started.elapsed(),
            server_cpu: cpu_time(server_pid) - server_before,
            bench_cpu: cpu_time(std::process::id()) - bench_before,
        })
    }
}

/// Runs the scenario on `db` and prints its figures.
pub async fn run(db: Db, devices: usize, steps: &[usize], seconds: u64) -> Result<()> {
    let prepared = Prepared::new(db).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let store = prepared.store().await?;
    let mut keys = Vec::new();
    for c in 0..devices.div_ceil(SEATS) {
        keys.push(company(store.as_ref(), &format!("Fleet Co {c}"), now).await?.1);
    }
    store.close().await;
    let server = prepared.spawn()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(30))
        .build()?;
    let enrolling = Instant::now();
    let mut enrolled = Vec::with_capacity(devices);
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..devices {
        let key = keys[i / SEATS].clone();
        let (client, base) = (client.clone(), server.base.clone());
        pending.spawn(async move {
            let token = crate::ingest::enroll(&client, &base, &key, i).await?;
            Ok::<_, anyhow::Error>((i, Device { key, token }))
        });
        // Eight enrolments in flight at a time.
        if pending.len() >= 8 {
            enrolled.push(pending.join_next().await.expect("a task")??);
        }
    }
    while let Some(done) = pending.join_next().await {
        enrolled.push(done??);
    }
    enrolled.sort_by_key(|(i, _)| *i);
    let devices_list: Arc<Vec<Device>> = Arc::new(enrolled.into_iter().map(|(_, d)| d).collect());
    let enrol_secs = enrolling.elapsed().as_secs_f64();
    println!("scenario: fleet");
    println!(
        "database: {}",
        match db {
            Db::Postgres => "postgresql (fresh database, default settings)",
            _ => "sqlite (WAL, synchronous=FULL)",
        }
    );
    println!(
        "devices: {devices} enrolled over HTTP in {enrol_secs:.1} s ({} companies of up to {SEATS})",
        keys.len()
    );
    println!(
        "a sync: one zstd batch of 4 records (an activity minute, 3 app spans) + the policy \
         every 10th sync; open-loop arrivals, evenly spaced; at most {IN_FLIGHT} in flight \
         (keep-alive pool); latency from when the sync was due"
    );
    println!("steps: {seconds} s each; goal: p99 < {} ms", GOAL.as_millis());
    let mut fleet = Fleet {
        client,
        base: server.base.clone().into(),
        devices: devices_list,
        in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        server_pid: server.pid,
        next: 0,
        virtual_base: now - now.rem_euclid(MIN) - 2 * 86_400_000,
    };
    let mut verdicts = Vec::new();
    for &agents in steps {
        let s = fleet.step(agents, seconds).await?;
        let mut lat = s.latencies;
        let n = lat.len() + s.errors;
        let (p50, p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));
        let max = lat.last().copied().unwrap_or_default();
        let secs = s.elapsed.as_secs_f64();
        let ok = s.errors == 0 && p99 < GOAL;
        println!(
            "{agents:>7} agents ({:.0} syncs/s target, each device every {:.1} s): {:.0} syncs/s done, \
             p50 {} p99 {} max {}, errors {}, server CPU {:.0} % of a core, load generator {:.0} %: {}",
            agents as f64 / 60.0,
            60.0 * devices as f64 / agents as f64,
            n as f64 / secs,
            ms(p50),
            ms(p99),
            ms(max),
            s.errors,
            100.0 * s.server_cpu.as_secs_f64() / secs,
            100.0 * s.bench_cpu.as_secs_f64() / secs,
            if ok { "p99 under 100 ms" } else { "BROKEN" },
        );
        if let Some(e) = s.first_error {
            println!("        first error: {e}");
        }
        verdicts.push((agents, ok));
        // Past the sizes the issue names, stop at the first broken step.
        if !ok && agents >= 100_000 {
            break;
        }
    }
    println!("server peak RSS: {:.1} MiB", peak_rss_mib(server.pid));
    server.stop()?;
    match verdicts.iter().find(|(_, ok)| !ok) {
        Some((agents, _)) => println!("breaks at: {agents} agents"),
        None => println!(
            "breaks at: not within the steps run (largest {} agents)",
            verdicts.last().map_or(0, |v| v.0)
        ),
    }
    println!();
    Ok(())
}
