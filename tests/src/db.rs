//! Temporary databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL database
//! created on the server named by `TEST_DATABASE_URL` and dropped afterwards, with its own app
//! role (LOGIN, no superuser, no BYPASSRLS, owns nothing) for the server to serve as, the way
//! production runs: `url` (the admin role) owns the schema and migrates, `app_url` serves.

use sqlx::Connection;

/// A storage backend under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL from `TEST_DATABASE_URL`.
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    /// URL to open it with as the owner (the admin role of `TEST_DATABASE_URL` on PostgreSQL).
    pub url: String,
    /// URL the server serves through: the app role on PostgreSQL, `url` on SQLite.
    pub app_url: String,
    /// The owner's URL for migrations when `app_url` is another role (PostgreSQL).
    pub migrate_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// Creates an empty database; `None` for PostgreSQL when `TEST_DATABASE_URL` is not set,
    /// unless `WORKTRAIL_REQUIRE_POSTGRES` is set, in which case that is a failure.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("worktrail.db").display());
                Some(Self {
                    app_url: url.clone(),
                    url,
                    migrate_url: None,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
                    assert!(
                        std::env::var_os("WORKTRAIL_REQUIRE_POSTGRES").is_none(),
                        "WORKTRAIL_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not"
                    );
                    eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL variant");
                    return None;
                };
                let name = format!("wt_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("connect to TEST_DATABASE_URL: {e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                // Roles are cluster-wide: one per test database, named after it, dropped with it.
                // A random password, so this works under password authentication too.
                let password = uuid::Uuid::now_v7().simple().to_string();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "CREATE ROLE {name} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS \
                     NOCREATEDB NOCREATEROLE"
                )))
                .execute(&mut conn)
                .await
                .expect("create the test app role");
                let url = with_database(&admin_url, &name);
                let app_url = with_user(&url, &name, &password);
                Some(Self {
                    migrate_url: Some(url.clone()),
                    url,
                    app_url,
                    _dir: None,
                    pg: Some((admin_url, name)),
                })
            }
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// `url` with its user and password replaced.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[after_scheme..];
    let host = match rest.find('@') {
        Some(at) if rest.find('/').is_none_or(|slash| at < slash) => &rest[at + 1..],
        _ => rest,
    };
    format!("{}{user}:{password}@{host}", &url[..after_scheme])
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg.take() else { return };
        // Drop runs outside any runtime guarantee: use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok()?;
                let sql = format!("DROP ROLE IF EXISTS {name}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::{with_database, with_user};

    #[test]
    fn the_user_and_password_are_replaced() {
        assert_eq!(with_user("postgres://u:pw@h:5432/x", "app", "s"), "postgres://app:s@h:5432/x");
        assert_eq!(
            with_user("postgres://h/x?sslmode=disable", "app", "s"),
            "postgres://app:s@h/x?sslmode=disable"
        );
    }

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
