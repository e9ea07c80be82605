//! PostgreSQL row-level security (migration 0007), checked with raw SQL against the database
//! itself rather than through the store's own `WHERE company_id` clauses: the schema's fences,
//! the app role's lack of privileges, and that no transaction (finished, failed or cancelled)
//! ever shows a row of another company. Skipped without `TEST_DATABASE_URL`.

use rand::Rng;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;
use worktrail_server::provision;
use worktrail_server::store::{self, PgStore, Principal, Store};
use worktrail_shared::{CompanyId, RecordId, UserId};
use worktrail_tests::{Backend, TestDb};

/// A migrated test database, its store opened as the app role, and the app role's name.
async fn setup() -> Option<(TestDb, Arc<dyn Store>, String)> {
    let db = TestDb::create(Backend::Postgres).await?;
    let store = store::open_with(&db.app_url, db.migrate_url.as_deref()).await.unwrap();
    provision::seed_default_plans(store.as_ref(), 0).await.unwrap();
    let mut conn = PgConnection::connect(&db.app_url).await.unwrap();
    let role: String =
        sqlx::query_scalar("SELECT current_user").fetch_one(&mut conn).await.unwrap();
    Some((db, store, role))
}

async fn tenant_tables(owner: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'company_id' \
         AND NOT a.attisdropped WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
         ORDER BY 1",
    )
    .fetch_all(owner)
    .await
    .unwrap()
}

/// Creates a company through the store (keys, subscription, history) plus a user, a session,
/// an audit entry and `spans` app spans; returns the company and its span ids.
async fn seed_company(
    store: &dyn Store,
    owner: &mut PgConnection,
    name: &str,
    spans: usize,
) -> (CompanyId, Vec<Uuid>) {
    let created = provision::create_company(store, name, "trial", "UTC", 0).await.unwrap();
    let company = created.id;
    let user = UserId::new();
    store
        .create_user(
            company,
            &store::NewUser {
                id: user,
                email: format!("ada@{name}.test"),
                display_name: "Ada".into(),
                role: store::Role::Admin,
                password_hash: None,
                now_ms: 0,
            },
        )
        .await
        .unwrap();
    let hash = Uuid::now_v7().as_bytes().to_vec();
    store.create_session(&hash, Principal::User(company, user), 0, i64::MAX).await.unwrap();
    let audit = store::AuditEntry {
        actor: "test".into(),
        action: "seed".into(),
        detail_json: "{}".into(),
        at_ms: 0,
    };
    store.append_audit(company, &audit).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..spans {
        let id = Uuid::now_v7();
        // Raw rows as the owner: fast, and independent of the store under test.
        sqlx::query(
            "INSERT INTO app_usage (company_id, id, device_id, employee_id, seq, start_ms, \
             end_ms, app) VALUES ($1, $2, $3, $4, $5, $6, $7, 'editor')",
        )
        .bind(company.0)
        .bind(id)
        .bind(Uuid::now_v7())
        .bind(user.0)
        .bind(i as i64)
        .bind(1_000 * i as i64)
        .bind(1_000 * i as i64 + 500)
        .execute(&mut *owner)
        .await
        .unwrap();
        ids.push(id);
    }
    (company, ids)
}

#[tokio::test]
async fn every_tenant_table_is_forced_under_a_tenant_policy_and_the_app_role_bypasses_nothing() {
    let Some((db, _store, role)) = setup().await else { return };
    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    let tables = tenant_tables(&mut owner).await;
    for expected in ["app_usage", "users", "screenshots", "sessions", "company_usage_daily"] {
        assert!(tables.iter().any(|t| t == expected), "{expected} missing from {tables:?}");
    }
    for table in &tables {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert!(enabled && forced, "{table}: enabled={enabled} forced={forced}");
        type Policy = (String, Vec<String>, Option<String>, Option<String>);
        let policies: Vec<Policy> = sqlx::query_as(
            "SELECT policyname::text, roles::text[], qual, with_check FROM pg_policies \
             WHERE schemaname = 'public' AND tablename = $1",
        )
        .bind(table)
        .fetch_all(&mut owner)
        .await
        .unwrap();
        let tenant = policies.iter().find(|p| p.0 == "tenant");
        let Some((_, roles, Some(qual), Some(check))) = tenant else {
            panic!("{table} has no tenant policy with USING and WITH CHECK: {policies:?}");
        };
        assert_eq!(roles, &["public".to_owned()], "{table}: the tenant policy binds everyone");
        for clause in [qual, check] {
            assert!(
                clause.contains("company_id =")
                    && clause.contains("current_setting('app.company_id'::text, true)"),
                "{table}: {clause}"
            );
        }
        // No other policy may reach the app role: only the owner's own, or SELECT-only ones
        // keyed on the platform scope.
        for (name, roles, qual, _) in &policies {
            match name.as_str() {
                "tenant" => {}
                "owner_role" => {
                    assert!(!roles.contains(&role) && !roles.contains(&"public".into()))
                }
                "platform_read" => {
                    assert!(qual.as_deref().unwrap_or("").contains("'app.scope'"), "{qual:?}")
                }
                other => panic!("{table}: unexpected policy {other}"),
            }
        }
    }
    let (superuser, bypass, inherits): (bool, bool, i64) = sqlx::query_as(
        "SELECT r.rolsuper, r.rolbypassrls, \
         (SELECT COUNT(*) FROM pg_auth_members m WHERE m.member = r.oid) \
         FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind(&role)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(!superuser && !bypass && inherits == 0, "{superuser} {bypass} {inherits}");
    let owned: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM pg_class WHERE relowner = r.oid) \
         + (SELECT COUNT(*) FROM pg_proc WHERE proowner = r.oid) \
         + (SELECT COUNT(*) FROM pg_namespace WHERE nspowner = r.oid) \
         + (SELECT COUNT(*) FROM pg_type WHERE typowner = r.oid) \
         FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind(&role)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(owned, 0, "the app role owns objects");
    // The audit log is append-only for the app role, and the migration history read-only.
    let mut app = PgConnection::connect(&db.app_url).await.unwrap();
    let err = sqlx::query("DELETE FROM audit_log").execute(&mut app).await.unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let err = sqlx::query("DELETE FROM _sqlx_migrations").execute(&mut app).await.unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn without_a_tenant_context_the_app_role_sees_no_tenant_row() {
    let Some((db, store, _role)) = setup().await else { return };
    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    seed_company(store.as_ref(), &mut owner, "a", 3).await;
    seed_company(store.as_ref(), &mut owner, "b", 3).await;
    let mut app = PgConnection::connect(&db.app_url).await.unwrap();
    let mut seen_by_owner = 0;
    for table in tenant_tables(&mut owner).await {
        let count = format!("SELECT COUNT(*) FROM {table}");
        let all: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone()))
            .fetch_one(&mut owner)
            .await
            .unwrap();
        seen_by_owner += all;
        // Outside a transaction, inside one without context, and after a tenant transaction
        // ended on this very connection.
        let outside: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone()))
            .fetch_one(&mut app)
            .await
            .unwrap();
        let mut tx = app.begin().await.unwrap();
        let inside: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone()))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!((outside, inside), (0, 0), "{table} shows rows without a tenant");
    }
    // Seeded: keys, subscriptions, history, users, sessions, audit, spans of two companies.
    assert!(seen_by_owner >= 2 * (1 + 1 + 1 + 1 + 1 + 1 + 3), "seeding failed: {seen_by_owner}");
    let company: Uuid =
        sqlx::query_scalar("SELECT id FROM companies LIMIT 1").fetch_one(&mut app).await.unwrap();
    let mut tx = app.begin().await.unwrap();
    store::set_tenant(&mut tx, CompanyId(company)).await.unwrap();
    let during: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM app_usage").fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM app_usage").fetch_one(&mut app).await.unwrap();
    assert_eq!((during, after), (3, 0), "the context must end with its transaction");
    // The platform scope reads rollups and subscriptions, never people or spans.
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.scope', 'platform', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let subs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions").fetch_one(&mut *tx).await.unwrap();
    let people: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM app_usage) \
         + (SELECT COUNT(*) FROM sessions)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((subs, people), (2, 0));
    let err = sqlx::query("UPDATE subscriptions SET grace_days = 99").execute(&mut *tx).await;
    assert_eq!(err.unwrap().rows_affected(), 0, "the platform scope writes nothing");
}

#[tokio::test]
async fn a_tenant_transaction_cannot_read_or_write_another_companys_rows_with_raw_sql() {
    let Some((db, store, _role)) = setup().await else { return };
    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    let (a, a_spans) = seed_company(store.as_ref(), &mut owner, "a", 2).await;
    let (b, b_spans) = seed_company(store.as_ref(), &mut owner, "b", 2).await;
    let mut app = PgConnection::connect(&db.app_url).await.unwrap();
    let mut tx = app.begin().await.unwrap();
    store::set_tenant(&mut tx, a).await.unwrap();
    // Reads: naming B explicitly finds nothing; reading everything finds only A.
    let of_b: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM app_usage WHERE company_id = $1) \
         + (SELECT COUNT(*) FROM users WHERE company_id = $1) \
         + (SELECT COUNT(*) FROM company_keys WHERE company_id = $1) \
         + (SELECT COUNT(*) FROM sessions WHERE company_id = $1)",
    )
    .bind(b.0)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(of_b, 0);
    let visible: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM app_usage ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, a_spans);
    // Writes: updates and deletes of B's rows touch nothing; an insert of a B row fails.
    let updated = sqlx::query("UPDATE users SET display_name = 'pwned' WHERE company_id = $1")
        .bind(b.0)
        .execute(&mut *tx)
        .await
        .unwrap();
    let deleted = sqlx::query("DELETE FROM app_usage WHERE company_id = $1")
        .bind(b.0)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!((updated.rows_affected(), deleted.rows_affected()), (0, 0));
    // Moving an own row into B is refused too (WITH CHECK).
    let moved = sqlx::query("UPDATE app_usage SET company_id = $1 WHERE id = $2")
        .bind(b.0)
        .bind(a_spans[0])
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(moved.to_string().contains("row-level security"), "{moved}");
    tx.rollback().await.unwrap();
    let mut tx = app.begin().await.unwrap();
    store::set_tenant(&mut tx, a).await.unwrap();
    let inserted = sqlx::query(
        "INSERT INTO app_usage (company_id, id, device_id, employee_id, seq, start_ms, end_ms, \
         app) VALUES ($1, $2, $2, $2, 0, 0, 1, 'x')",
    )
    .bind(b.0)
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(inserted.to_string().contains("row-level security"), "{inserted}");
    tx.rollback().await.unwrap();
    // B is untouched, seen as the owner.
    let b_now: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM app_usage WHERE company_id = $1 ORDER BY id")
            .bind(b.0)
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert_eq!(b_now, b_spans);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT display_name FROM users WHERE company_id = $1")
            .bind(b.0)
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert_eq!(names, ["Ada"]);
}

/// What one random transaction saw.
#[derive(Default)]
struct Tally {
    finished: AtomicU64,
    cancelled: AtomicU64,
    foreign: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_of_two_never_shows_a_foreign_row_under_thousands_of_interleaved_and_cancelled_transactions()
 {
    const COMPANIES: usize = 50;
    const SPANS: usize = 4;
    const WORKERS: usize = 8;
    const ROUNDS: usize = 400;
    let Some((db, store, _role)) = setup().await else { return };
    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    let mut owned: HashMap<Uuid, BTreeSet<Uuid>> = HashMap::new();
    let mut companies = Vec::new();
    for i in 0..COMPANIES {
        let (c, spans) = seed_company(store.as_ref(), &mut owner, &format!("c{i}"), SPANS).await;
        owned.insert(c.0, spans.into_iter().collect());
        companies.push(c);
    }
    let owned = Arc::new(owned);
    let companies = Arc::new(companies);
    // The server's store on a pool of two connections, and its raw pool for hand-written SQL.
    let pg = Arc::new(PgStore::connect_with(&db.app_url, 2).await.unwrap());
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (pg, owned, companies, tally) =
            (pg.clone(), owned.clone(), companies.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let (kind, company, cancel_after) = {
                    let mut rng = rand::rng();
                    let company = companies[rng.random_range(0..companies.len())];
                    // A third of the transactions are cancelled at a random point.
                    let cancel = rng.random_bool(0.33).then(|| rng.random_range(0..1500u64));
                    (rng.random_range(0..4u8), company, cancel)
                };
                let work = one_transaction(&pg, kind, company, &owned);
                let seen = match cancel_after {
                    Some(us) => match tokio::time::timeout(Duration::from_micros(us), work).await {
                        Ok(seen) => seen,
                        Err(_) => {
                            tally.cancelled.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                    None => work.await,
                };
                tally.foreign.fetch_add(seen, Ordering::Relaxed);
                tally.finished.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let (finished, cancelled, foreign) = (
        tally.finished.load(Ordering::Relaxed),
        tally.cancelled.load(Ordering::Relaxed),
        tally.foreign.load(Ordering::Relaxed),
    );
    eprintln!("{finished} finished, {cancelled} cancelled, {foreign} foreign rows");
    assert_eq!(foreign, 0);
    assert_eq!(finished + cancelled, (WORKERS * ROUNDS) as u64);
    assert!(cancelled >= 100 && finished >= 1000, "{finished} finished, {cancelled} cancelled");
}

/// Runs one transaction of `kind` for `company` and returns how many rows it saw that it
/// should not have (another company's, or any row without a context); panics if it saw fewer
/// of its own than it holds (a fence that hides everything would pass otherwise).
async fn one_transaction(
    pg: &PgStore,
    kind: u8,
    company: CompanyId,
    owned: &HashMap<Uuid, BTreeSet<Uuid>>,
) -> u64 {
    let mine = &owned[&company.0];
    let pool: &PgPool = pg.pool();
    let ids: Vec<Uuid> = match kind {
        // The store's own tenant transaction.
        0 => pg.record_ids(company).await.unwrap().into_iter().map(|RecordId(id)| id).collect(),
        // Hand-written SQL in a tenant transaction, no WHERE clause at all.
        1 => {
            let mut tx = pool.begin().await.unwrap();
            store::set_tenant(&mut tx, company).await.unwrap();
            let ids =
                sqlx::query_scalar("SELECT id FROM app_usage").fetch_all(&mut *tx).await.unwrap();
            if rand::random() {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
            ids
        }
        // A transaction that fails after setting the context: it must not leak either.
        2 => {
            let mut tx = pool.begin().await.unwrap();
            store::set_tenant(&mut tx, company).await.unwrap();
            let _ = sqlx::query("SELECT 1 / 0").execute(&mut *tx).await.unwrap_err();
            drop(tx);
            return 0;
        }
        // No context: pooled connections reused from every kind above must show nothing.
        _ => {
            let rows: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM app_usage").fetch_all(pool).await.unwrap();
            return rows.len() as u64;
        }
    };
    let got: BTreeSet<Uuid> = ids.iter().copied().collect();
    assert!(mine.is_subset(&got), "{company} saw {} of its {} rows", got.len(), mine.len());
    ids.iter().filter(|id| !mine.contains(id)).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_at_once_migrate_and_grant_without_tripping_over_each_other() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let (app, owner) = (db.app_url.clone(), db.migrate_url.clone());
            tokio::spawn(async move { store::open_with(&app, owner.as_deref()).await.map(|_| ()) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn the_app_role_refuses_to_serve_a_schema_with_a_missing_migration() {
    let Some((db, store, _role)) = setup().await else { return };
    store.close().await;
    // As the app role on a fully migrated schema: it only checks, and opens.
    store::open(&db.app_url).await.unwrap().close().await;
    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 7")
        .execute(&mut owner)
        .await
        .unwrap();
    let Err(err) = store::open(&db.app_url).await else {
        panic!("a missing migration must be refused");
    };
    assert!(err.to_string().contains("migration 7 (rls) is not applied"), "{err}");
}
