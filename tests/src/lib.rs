//! The test harness: a real `worktrail-server` on an ephemeral port over a temporary database
//! (SQLite always; PostgreSQL when `TEST_DATABASE_URL` is set, one fresh database per test),
//! with a manual clock and a seeded company.

pub mod db;
pub mod moto;
pub mod soak;

use reqwest::StatusCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use worktrail_server::clock::{Clock, ManualClock, SystemClock};
use worktrail_server::objects::{ObjectStore, Objects};
use worktrail_server::ratelimit::{Rate, RateLimits};
use worktrail_server::store::Store;
use worktrail_server::{AppState, provision};
use worktrail_shared::api::{EnrollRequest, EnrollResponse};
use worktrail_shared::secret::{CompanyKey, DeviceToken};
use worktrail_shared::{COMPANY_KEY_HEADER, CompanyId, DeviceId, ErrorBody, ErrorCode};

pub use db::{Backend, TestDb};

/// How to start a [`TestServer`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Rate limits (default: too high to matter).
    pub rate_limits: RateLimits,
    /// Plan of the seeded company.
    pub plan: String,
    /// Plans to create besides the defaults.
    pub extra_plans: Vec<worktrail_server::domain::plan::Plan>,
    /// Longest time a request may take, body included.
    pub request_timeout: Duration,
    /// Where screenshots go (default: files in `objects_dir`).
    pub objects: Option<Arc<dyn ObjectStore>>,
}

impl Default for Options {
    fn default() -> Self {
        let lots = Rate { per_sec: 1_000_000.0, burst: 1_000_000.0 };
        Self {
            rate_limits: RateLimits { device: lots, company: lots },
            plan: "trial".into(),
            extra_plans: Vec::new(),
            request_timeout: Duration::from_secs(30),
            objects: None,
        }
    }
}

/// A running server with a seeded company ("Test Co" on the trial plan).
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The bound address (kept across [`TestServer::restart`]).
    pub addr: SocketAddr,
    /// The state the server runs on (store, clock, objects).
    pub state: AppState,
    /// The server's clock; starts at the real time and moves only when told.
    pub clock: ManualClock,
    /// The seeded company.
    pub company: CompanyId,
    /// Its key.
    pub company_key: CompanyKey,
    /// The database (dropped with the server).
    pub db: TestDb,
    /// Directory of screenshot objects.
    pub objects_dir: tempfile::TempDir,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestServer {
    /// Starts a server on `backend` with default options; `None` when the backend is not
    /// available here (PostgreSQL without `TEST_DATABASE_URL`).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, Options::default()).await
    }

    /// Starts a server with `options`.
    pub async fn start_with(backend: Backend, options: Options) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let store = worktrail_server::store::open_with(&db.app_url, db.migrate_url.as_deref())
            .await
            .expect("open the test database");
        let now = SystemClock.now_ms();
        let clock = ManualClock::new(now);
        provision::seed_default_plans(store.as_ref(), now).await.expect("seed plans");
        for plan in &options.extra_plans {
            provision::create_plan(store.as_ref(), plan, now).await.expect("create plan");
        }
        let created =
            provision::create_company(store.as_ref(), "Test Co", &options.plan, "UTC", now)
                .await
                .expect("create the test company");
        let objects_dir = tempfile::tempdir().expect("temp dir");
        let state = AppState::new(
            store,
            match &options.objects {
                Some(objects) => objects.clone(),
                None => Arc::new(Objects::local(objects_dir.path()).expect("local objects")),
            },
            Arc::new(clock.clone()),
            options.rate_limits,
            options.request_timeout,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let mut server = Self {
            base_url: format!("http://{addr}"),
            addr,
            state,
            clock,
            company: created.id,
            company_key: created.key,
            db,
            objects_dir,
            running: None,
        };
        server.spawn(listener);
        Some(server)
    }

    fn spawn(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = oneshot::channel();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            let _ = worktrail_server::serve(state, listener, async {
                let _ = rx.await;
            })
            .await;
        });
        self.running = Some((tx, task));
    }

    /// 5xx answers this server gave agents so far, and request handlers that panicked in this
    /// process (for the soak reports).
    pub fn server_faults(&self) -> (u64, u64) {
        let errors = self
            .state
            .metrics
            .agent_answers()
            .into_iter()
            .filter(|(code, _)| {
                code != "ok"
                    && serde_json::from_value::<ErrorCode>(code.as_str().into())
                        .is_ok_and(|c| c.http_status() >= 500)
            })
            .map(|(_, n)| n)
            .sum();
        (errors, worktrail_server::metrics::handler_panics())
    }

    /// The store behind the server.
    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// Stops serving (connections are refused) but keeps the database.
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.running.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }

    /// Serves again on the same address after [`TestServer::stop`].
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "restart needs a stopped server");
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind");
        self.spawn(listener);
    }

    /// Creates another company on the same server ("`name`" on the trial plan).
    pub async fn add_company(&self, name: &str) -> (CompanyId, CompanyKey) {
        self.add_company_in(name, "UTC").await
    }

    /// Creates another company in time zone `tz`.
    pub async fn add_company_in(&self, name: &str, tz: &str) -> (CompanyId, CompanyKey) {
        let created =
            provision::create_company(self.store(), name, "trial", tz, self.clock.now_ms())
                .await
                .expect("create company");
        (created.id, created.key)
    }

    /// Runs one background job at the server clock's time; returns the rows it touched.
    pub async fn run_job(&self, job: worktrail_server::jobs::Job) -> u64 {
        worktrail_server::jobs::run_recorded(&self.state, job, -1, "test", self.clock.now_ms())
            .await
            .expect("job run")
    }

    /// `GET /api/v1/agent/policy` with `key` and, when given, the device token.
    pub async fn get_policy(&self, key: &str, token: Option<&DeviceToken>) -> reqwest::Response {
        let mut req = http().get(self.url("/api/v1/agent/policy")).header(COMPANY_KEY_HEADER, key);
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        req.send().await.expect("policy request")
    }

    /// Uploads screenshot bytes as a device of `key`'s company; returns the raw response.
    pub async fn put_screenshot(
        &self,
        key: &CompanyKey,
        token: &DeviceToken,
        id: worktrail_shared::RecordId,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        http()
            .put(self.url(&format!("/api/v1/agent/screenshots/{id}")))
            .header(COMPANY_KEY_HEADER, key.expose())
            .bearer_auth(token.expose())
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .await
            .expect("screenshot request")
    }

    /// Sends a batch as a device of `key`'s company; returns the raw response.
    pub async fn post_batch(
        &self,
        key: &CompanyKey,
        token: &DeviceToken,
        batch: &worktrail_shared::api::BatchRequest,
    ) -> reqwest::Response {
        http()
            .post(self.url("/api/v1/agent/batches"))
            .header(COMPANY_KEY_HEADER, key.expose())
            .bearer_auth(token.expose())
            .json(batch)
            .send()
            .await
            .expect("batch request")
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Enrols a new device for `email` with `key` through the HTTP API.
    pub async fn enroll_with(
        &self,
        key: &CompanyKey,
        email: &str,
    ) -> Result<(DeviceId, DeviceToken), (StatusCode, ErrorBody)> {
        let device_id = DeviceId::new();
        let req = EnrollRequest {
            device_id,
            email: Some(email.into()),
            os_user: "tester".into(),
            hostname: "test-host".into(),
            os: "Linux".into(),
            agent_version: "test".into(),
        };
        let resp = http()
            .post(self.url("/api/v1/agent/enroll"))
            .header(COMPANY_KEY_HEADER, key.expose())
            .json(&req)
            .send()
            .await
            .expect("enrol request");
        let status = resp.status();
        if !status.is_success() {
            return Err((status, resp.json().await.expect("error body")));
        }
        let body: EnrollResponse = resp.json().await.expect("enrol body");
        Ok((device_id, DeviceToken::parse(&body.device_token).expect("well-formed token")))
    }

    /// Enrols a new device of the seeded company.
    pub async fn enroll(&self, email: &str) -> (DeviceId, DeviceToken) {
        self.enroll_with(&self.company_key, email).await.expect("enrolment succeeds")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some((tx, task)) = self.running.take() {
            let _ = tx.send(());
            task.abort();
        }
    }
}

/// Sign-in credentials `(email, password)` of the seeded company's people.
#[derive(Clone, Debug)]
pub struct Logins {
    /// A platform operator.
    pub owner: (String, String),
    /// The seeded company's admin.
    pub admin: (String, String),
    /// An employee of the seeded company (enrol a device with this e-mail to give them data).
    pub employee: (String, String),
}

impl TestServer {
    /// Creates an owner, an admin and an employee of the seeded company with passwords.
    pub async fn seed_logins(&self) -> Logins {
        use worktrail_server::store::Role;
        let now = self.clock.now_ms();
        let password = "correct horse battery staple".to_owned();
        let owner = ("owner@test.example".to_owned(), password.clone());
        let admin = ("admin@test.example".to_owned(), password.clone());
        let employee = ("ada@test.example".to_owned(), password.clone());
        if self.store().login_candidates(&owner.0).await.expect("lookup").is_empty() {
            provision::create_owner(self.store(), &owner.0, &owner.1, now).await.expect("owner");
        }
        for (who, name, role) in
            [(&admin, "Test Admin", Role::Admin), (&employee, "Ada Lovelace", Role::Employee)]
        {
            match self.store().user_by_email(self.company, &who.0).await.expect("lookup") {
                Some(u) => self
                    .store()
                    .set_user_password(
                        self.company,
                        u.id,
                        &worktrail_server::domain::password::hash_password(&who.1),
                    )
                    .await
                    .expect("password"),
                None => {
                    provision::create_user(
                        self.store(),
                        self.company,
                        &who.0,
                        name,
                        role,
                        &who.1,
                        now,
                    )
                    .await
                    .expect("user");
                }
            }
        }
        Logins { owner, admin, employee }
    }

    /// A client signed in as `(email, password)`; it keeps the session cookie and sends
    /// same-origin headers like a browser would.
    pub async fn signed_in(&self, who: &(String, String)) -> reqwest::Client {
        let client = portal_client();
        let resp = client
            .post(self.url("/login"))
            .form(&[("email", who.0.as_str()), ("password", who.1.as_str())])
            .send()
            .await
            .expect("login request");
        assert_eq!(resp.status(), 303, "login of {} failed", who.0);
        client
    }
}

/// A cookie-keeping client that sends `Sec-Fetch-Site: same-origin`, as a browser does for the
/// portal's own forms. Secure cookies are sent over http to 127.0.0.1, as browsers do.
pub fn portal_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("sec-fetch-site", reqwest::header::HeaderValue::from_static("same-origin"));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("portal client")
}

/// The smallest well-formed baseline JPEG header the server accepts (SOI, a `w`×`h` frame,
/// SOS, one byte `tag` of scan data, EOI); different tags give different bytes.
pub fn tiny_jpeg(w: u16, h: u16, tag: u8) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    v.extend_from_slice(&[tag, 0x34, 0xFF, 0xD9]);
    v
}

/// A plain HTTP client for tests (no redirects, short timeouts).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Asserts `resp` is an error with `code` at the code's status; returns its message.
pub async fn expect_error(resp: reqwest::Response, code: ErrorCode) -> String {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(status.as_u16(), code.http_status(), "status for {code}: body {text}");
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an error body ({e}): {text}"));
    assert_eq!(body.code, code, "{}", body.message);
    body.message
}

// ---- agent fixtures (issue 3: agent core) -------------------------------------------------------
pub mod agent;

// ---- network faults between agent and server (issue 7: reliability) ---------------------------
pub mod faultproxy;

// ---- real browser for the portal (issue 6: web portal) ----------------------------------------
pub mod browser;

// ---- the browser extension in a real Chromium (issue 10: websites) ----------------------------
pub mod extension;

// ---- the tray app's window over WebDriver (issue 4: tray agent) --------------------------------
pub mod tray;
