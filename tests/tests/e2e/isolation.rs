//! Tenant isolation as a property: random worlds of companies, employees, devices and records of
//! every kind; every company-scoped store read returns only the caller's company's rows, and
//! another company's ids resolve to nothing. On both backends.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use worktrail_server::clock::Clock;
use worktrail_server::domain::keys::{hash_secret, new_device_token};
use worktrail_server::store::{BatchMeta, DeviceAuth, Enrollment, Store};
use worktrail_shared::api::{BatchRequest, Record, RecordBody, SessionEnd, SiteSource};
use worktrail_shared::{BatchId, CompanyId, DeviceId, RecordId, UserId};
use worktrail_tests::{Backend, TestServer};

#[derive(Default)]
struct Tenant {
    records: HashSet<RecordId>,
    employees: HashSet<UserId>,
    emails: Vec<String>,
    token_hashes: Vec<Vec<u8>>,
    apps: HashSet<String>,
    sites: HashSet<String>,
    shots: Vec<RecordId>,
}

fn random_records(rng: &mut StdRng, tag: &str, now: i64, seq: &mut i64) -> Vec<Record> {
    (0..rng.random_range(5..40))
        .map(|_| {
            *seq += 1;
            let t = now - rng.random_range(0..3 * 86_400_000);
            let end = t + rng.random_range(1_000..3_600_000);
            let body = match rng.random_range(0..6) {
                0 => RecordBody::AppSpan {
                    start_ms: t,
                    end_ms: end,
                    app: format!("{tag}-app-{}", rng.random_range(0..3)),
                    exe: None,
                    title: Some(format!("{tag} title")),
                    task_id: None,
                },
                1 => RecordBody::WebsiteSpan {
                    start_ms: t,
                    end_ms: end,
                    domain: format!("{tag}-{}.example", rng.random_range(0..3)),
                    url: None,
                    title: None,
                    browser: None,
                    source: SiteSource::Title,
                },
                2 => RecordBody::IdleSpan { start_ms: t, end_ms: end },
                3 => RecordBody::WorkSession {
                    start_ms: t,
                    end_ms: end,
                    end_reason: SessionEnd::Lock,
                },
                4 => RecordBody::Activity {
                    minute_ms: t - t.rem_euclid(60_000),
                    active_secs: rng.random_range(1..=60),
                },
                _ => RecordBody::Screenshot {
                    taken_at_ms: t,
                    monitor: 0,
                    width: 10,
                    height: 10,
                    bytes: 10,
                    blurred: false,
                },
            };
            Record { id: RecordId::new(), seq: *seq, body }
        })
        .collect()
}

async fn build_world(s: &TestServer, rng: &mut StdRng) -> HashMap<CompanyId, Tenant> {
    let now = s.clock.now_ms();
    let store = s.store();
    let mut world: HashMap<CompanyId, Tenant> = HashMap::new();
    let mut companies = vec![s.company];
    for i in 0..rng.random_range(2..5) {
        companies.push(s.add_company(&format!("World Co {i}")).await.0);
    }
    for (ci, company) in companies.iter().enumerate() {
        let tenant = world.entry(*company).or_default();
        for e in 0..rng.random_range(1..4) {
            let email = format!("e{e}@c{ci}.example");
            let token = new_device_token();
            let device = DeviceId::new();
            let employee = store
                .enroll_device(
                    *company,
                    &Enrollment {
                        device_id: device,
                        email: email.clone(),
                        display_name: email.clone(),
                        hostname: "h".into(),
                        os: "Linux".into(),
                        os_user: "u".into(),
                        agent_version: "t".into(),
                        token_hash: hash_secret(token.expose()),
                        token_prefix: token.display_prefix().into(),
                    },
                    100,
                    now,
                )
                .await
                .unwrap();
            tenant.employees.insert(employee);
            tenant.emails.push(email);
            tenant.token_hashes.push(hash_secret(token.expose()));
            let auth = DeviceAuth { id: device, employee_id: employee, revoked_at_ms: None };
            let mut seq = 0;
            for _ in 0..rng.random_range(1..4) {
                let records = random_records(rng, &format!("c{ci}"), now, &mut seq);
                for r in &records {
                    tenant.records.insert(r.id);
                    match &r.body {
                        RecordBody::AppSpan { app, .. } => {
                            tenant.apps.insert(app.clone());
                        }
                        RecordBody::WebsiteSpan { domain, .. } => {
                            tenant.sites.insert(domain.clone());
                        }
                        RecordBody::Screenshot { .. } => tenant.shots.push(r.id),
                        _ => {}
                    }
                }
                let batch = BatchRequest {
                    batch_id: BatchId::new(),
                    sent_at_ms: now,
                    dropped: Default::default(),
                    records,
                };
                let meta = BatchMeta {
                    body_hash: BatchId::new().0.as_bytes().to_vec(),
                    body_bytes: 1,
                    now_ms: now,
                };
                store.ingest_batch(*company, &auth, batch, &meta).await.unwrap();
            }
            store.log_access(*company, employee, employee, "test", now).await.unwrap();
        }
        store
            .create_task(*company, &format!("c{ci} project"), &format!("c{ci} task"), now)
            .await
            .unwrap();
    }
    world
}

async fn check(store: &dyn Store, company: CompanyId, me: &Tenant, others: &[&Tenant]) {
    let (lo, hi) = (0, i64::MAX / 2);
    let ids: HashSet<RecordId> = store.record_ids(company).await.unwrap().into_iter().collect();
    assert_eq!(ids, me.records);
    assert!(
        store.app_spans(company, lo, hi).await.unwrap().iter().all(|r| me.records.contains(&r.id))
    );
    assert!(store.screenshots(company).await.unwrap().iter().all(|r| me.records.contains(&r.id)));
    assert!(
        store.devices(company).await.unwrap().iter().all(|d| me.employees.contains(&d.employee_id))
    );
    let employees = store.employees(company).await.unwrap();
    assert!(
        employees.iter().all(|e| me.employees.contains(&e.id))
            && employees.len() == me.employees.len()
    );
    let totals = store.tracked_by_employee(company, lo, hi).await.unwrap();
    assert!(totals.iter().all(|t| me.employees.iter().any(|e| e.to_string() == t.key)));
    assert!(
        store
            .top_apps(company, None, lo, hi, 100)
            .await
            .unwrap()
            .iter()
            .all(|t| me.apps.contains(&t.key))
    );
    assert!(
        store
            .top_sites(company, None, lo, hi, 100)
            .await
            .unwrap()
            .iter()
            .all(|t| me.sites.contains(&t.key))
    );
    let tag = me.emails[0].split('@').nth(1).unwrap().split('.').next().unwrap().to_owned();
    assert!(store.tasks(company).await.unwrap().iter().all(|t| t.project.starts_with(&tag)));
    for other in others {
        for user in &other.employees {
            assert!(store.user(company, *user).await.unwrap().is_none());
            assert_eq!(
                store.employee_day(company, *user, lo, hi).await.unwrap(),
                Default::default()
            );
            assert!(store.access_log(company, *user).await.unwrap().is_empty());
            assert!(
                store.set_user_active(company, *user, false).await.is_err(),
                "no write across tenants"
            );
        }
        for email in &other.emails {
            assert!(store.user_by_email(company, email).await.unwrap().is_none());
        }
        for hash in &other.token_hashes {
            assert!(store.device_by_token_hash(company, hash).await.unwrap().is_none());
        }
        for shot in &other.shots {
            assert!(store.screenshot_object(company, *shot).await.unwrap().is_none());
            for e in &me.employees {
                assert_eq!(
                    store.delete_own_screenshot(company, *e, *shot, 60_000).await.unwrap(),
                    None
                );
            }
        }
    }
}

async fn every_company_scoped_read_returns_only_the_callers_rows(backend: Backend) {
    for seed in [11, 12, 13] {
        let Some(s) = TestServer::start(backend).await else { return };
        let mut rng = StdRng::seed_from_u64(seed);
        let world = build_world(&s, &mut rng).await;
        for (company, me) in &world {
            let others: Vec<&Tenant> =
                world.iter().filter(|(c, _)| *c != company).map(|(_, t)| t).collect();
            check(s.store(), *company, me, &others).await;
        }
        // Nothing was changed by the cross-tenant attempts.
        for (company, me) in &world {
            assert_eq!(
                s.store().record_ids(*company).await.unwrap().len(),
                me.records.len(),
                "seed {seed}"
            );
            assert!(s.store().employees(*company).await.unwrap().iter().all(|e| e.active));
        }
    }
}

both_backends!(every_company_scoped_read_returns_only_the_callers_rows);
