//! `owner-dashboard`: many companies × a year of daily rollups; p50/p95 of the owner's
//! dashboard (page and JSON) and report.

use anyhow::Result;
use std::time::Instant;

use crate::Db;
use crate::server::Prepared;
use crate::stats::{ms, percentile};

/// Runs the scenario on `db` and prints its figures.
pub async fn run(db: Db, companies: usize, days: i64) -> Result<()> {
    let prepared = Prepared::new(db).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let store = prepared.store().await?;
    let seeding = Instant::now();
    let mut ids = Vec::new();
    for i in 0..companies {
        let (id, _) =
            crate::server::company(store.as_ref(), &format!("Company {i:04}"), now).await?;
        ids.push(id);
    }
    worktrail_server::provision::create_owner(
        store.as_ref(),
        "owner@bench.example",
        "bench owner password",
        now,
    )
    .await?;
    store.close().await;
    crate::admin_day::bulk_rollups(&prepared, &ids, days, now).await?;
    let seeded = seeding.elapsed();
    let server = prepared.spawn()?;
    let client =
        crate::admin_day::signed_in(&server.base, "owner@bench.example", "bench owner password")
            .await?;
    println!("scenario: owner-dashboard");
    println!(
        "database: {:?}; {companies} companies × {days} days of rollups (seeded in {:.1} s)",
        db,
        seeded.as_secs_f64()
    );
    for path in ["/owner", "/api/v1/owner/dashboard", "/owner/reports"] {
        let rounds = if path == "/owner/reports" { 20 } else { 50 };
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let resp = client.get(format!("{}{path}", server.base)).send().await?;
            anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.bytes().await?;
            samples.push(t.elapsed());
        }
        println!(
            "{path}: p50 {} p95 {} ({rounds} requests)",
            ms(percentile(&mut samples, 50.0)),
            ms(percentile(&mut samples, 95.0))
        );
    }
    server.stop()?;
    println!();
    Ok(())
}
