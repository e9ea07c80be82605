//! The one end-to-end test binary (it links once). Each module is an area; tests that must hold
//! on both storage backends are written once as `async fn(Backend)` and expanded for SQLite and
//! PostgreSQL by [`both_backends!`].

/// Expands `async fn name(Backend)` tests into `sqlite::name` and `postgres::name`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(worktrail_tests::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(worktrail_tests::Backend::Postgres).await
                }
            )*
        }
    };
}

mod agent_api;
mod agent_cli;
mod agent_crash;
mod agent_disk;
mod agent_faults;
mod agent_gate;
mod agent_screens;
mod agent_secrets;
mod agent_signin;
mod agent_sync;
mod agent_tasks;
mod agent_tray;
mod agent_tray_instance;
mod agent_x11;
mod hostile_input;
mod isolation;
mod jobs;
mod objects_s3;
mod portal_access;
mod portal_auth;
mod portal_browser;
mod portal_data;
mod store_conformance;
mod websites;
