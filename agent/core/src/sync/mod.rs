//! The HTTP client of the agent API (`reqwest`).
//!
//! Every request carries `X-Company-Key` and, after enrolment, `Authorization: Bearer <token>`,
//! both marked sensitive (never printed by reqwest's debug output). No redirect is ever followed:
//! a redirect would replay the secrets to another origin. Batch bodies are compressed with zstd.
//! Errors come back typed ([`SyncError`]) so callers branch on the stable [`ErrorCode`] and on
//! whether a retry may help — never on message text.

pub mod backoff;
#[cfg(test)]
mod tests;

use reqwest::header::{self, HeaderMap, HeaderValue};
use std::time::Duration;
use worktrail_shared::api::{
    BatchAck, EnrollRequest, EnrollResponse, PolicyResponse, ScreenshotAck, SigninLinkResponse,
    TasksResponse,
};
use worktrail_shared::limits::{MAX_BATCH_BYTES, MAX_SCREENSHOT_BYTES};
use worktrail_shared::secret::{CompanyKey, DeviceToken};
use worktrail_shared::{AGENT_API_PREFIX, COMPANY_KEY_HEADER, ErrorBody, ErrorCode, RecordId};

/// A request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached or the connection broke.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("server refused ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable code from the body (`unknown` when the body was not ours, e.g. a proxy page).
        code: ErrorCode,
        /// The server's message, safe to show.
        message: String,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The agent has no credentials (not enrolled).
    #[error("not enrolled")]
    NotEnrolled,
    /// A previous answer asked the agent to wait (`Retry-After`); no request was made.
    #[error("waiting {0:?} more before contacting the server (Retry-After)")]
    Deferred(Duration),
    /// The body could not be prepared.
    #[error("local: {0}")]
    Local(String),
    /// The local queue failed (disk full, read-only, ...); the server may hold the batch
    /// already, and sending it again later is safe.
    #[error("local queue: {0}")]
    Storage(String),
}

impl SyncError {
    /// Whether trying again later may succeed (network errors, 408, 429, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Network(_) | SyncError::Deferred(_) | SyncError::Storage(_) => true,
            SyncError::Server { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
    /// The code when the server refused, else `None`.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SyncError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
    /// Whether the agent must stop capturing until an admin acts (401/402/403).
    pub fn blocks_agent(&self) -> bool {
        matches!(self, SyncError::Server { status: 401..=403, .. })
    }
    /// The server's `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<reqwest::Error> for SyncError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest errors name the URL, never headers; the URL holds no secret.
        SyncError::Network(e.without_url().to_string())
    }
}

/// What proves the device to the server.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The company key.
    pub key: CompanyKey,
    /// The device token.
    pub token: DeviceToken,
}

fn sensitive(value: &str) -> Result<HeaderValue, SyncError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| SyncError::Local("bad header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn key_headers(key: &CompanyKey) -> Result<HeaderMap, SyncError> {
    let mut h = HeaderMap::new();
    h.insert(COMPANY_KEY_HEADER, sensitive(key.expose())?);
    Ok(h)
}

fn auth_headers(c: &Credentials) -> Result<HeaderMap, SyncError> {
    let mut h = key_headers(&c.key)?;
    h.insert(header::AUTHORIZATION, sensitive(&format!("Bearer {}", c.token.expose()))?);
    Ok(h)
}

/// A single-use sign-in link to the employee's portal pages ("Open my dashboard"). It is a
/// secret until used: its `Debug` hides it, and it is never logged or stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigninLink {
    url: String,
    /// When the link stops working (server time).
    pub expires_at_ms: i64,
}

impl SigninLink {
    /// The whole URL, to open in the browser.
    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for SigninLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigninLink")
            .field("url", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The agent API client.
#[derive(Clone, Debug)]
pub struct SyncClient {
    http: reqwest::Client,
    server: String,
    base: String,
}

impl SyncClient {
    /// A client of the server at `server_url` (for example `https://worktrail.example.com`).
    pub fn new(server_url: &str) -> Result<Self, SyncError> {
        let url = reqwest::Url::parse(server_url)
            .map_err(|e| SyncError::Local(format!("server URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SyncError::Local("server URL must be http or https".into()));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("worktrail-agent/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let server = server_url.trim_end_matches('/').to_owned();
        Ok(Self { http, base: format!("{server}{AGENT_API_PREFIX}"), server })
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, SyncError> {
        let status = resp.status();
        if status.is_success() {
            // A body cut short is the network's fault (retry); a whole body that does not
            // decode is the server's (do not).
            let bytes = resp.bytes().await?;
            return serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()));
        }
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.code, body.message),
            Err(_) => (ErrorCode::Unknown, format!("HTTP {status} without an error body")),
        };
        Err(SyncError::Server { status: status.as_u16(), code, message, retry_after })
    }

    /// `POST /enroll`.
    pub async fn enroll(
        &self,
        key: &CompanyKey,
        req: &EnrollRequest,
    ) -> Result<EnrollResponse, SyncError> {
        let resp = self
            .http
            .post(format!("{}/enroll", self.base))
            .headers(key_headers(key)?)
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// `POST /batches` with the batch's JSON `body`, zstd-compressed.
    pub async fn send_batch(&self, c: &Credentials, body: &[u8]) -> Result<BatchAck, SyncError> {
        let compressed =
            zstd::bulk::compress(body, 3).map_err(|e| SyncError::Local(format!("zstd: {e}")))?;
        if body.len() > MAX_BATCH_BYTES || compressed.len() > MAX_BATCH_BYTES {
            return Err(SyncError::Local("batch over the size limit".into()));
        }
        let req = self
            .http
            .post(format!("{}/batches", self.base))
            .headers(auth_headers(c)?)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "zstd");
        let resp = crate::fault::batch_body(req, compressed).send().await?;
        Self::answer(resp).await
    }

    /// `PUT /screenshots/{id}` with the JPEG bytes.
    pub async fn upload_screenshot(
        &self,
        c: &Credentials,
        id: RecordId,
        jpeg: Vec<u8>,
    ) -> Result<ScreenshotAck, SyncError> {
        if jpeg.len() > MAX_SCREENSHOT_BYTES {
            return Err(SyncError::Local("screenshot over the size limit".into()));
        }
        let resp = self
            .http
            .put(format!("{}/screenshots/{id}", self.base))
            .headers(auth_headers(c)?)
            .header(header::CONTENT_TYPE, "image/jpeg")
            .body(jpeg)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// `POST /signin-link`: a single-use link that signs this device's employee in to the
    /// portal, on this server. A path that is not the server's `/signin/…` is refused, so a
    /// compromised answer cannot make the agent open another site.
    pub async fn signin_link(&self, c: &Credentials) -> Result<SigninLink, SyncError> {
        let resp = self
            .http
            .post(format!("{}/signin-link", self.base))
            .headers(auth_headers(c)?)
            .send()
            .await?;
        let answer: SigninLinkResponse = Self::answer(resp).await?;
        let safe = answer.path.starts_with("/signin/")
            && answer.path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-');
        if !safe {
            return Err(SyncError::Protocol("the sign-in link is not a /signin/ path".into()));
        }
        Ok(SigninLink {
            url: format!("{}{}", self.server, answer.path),
            expires_at_ms: answer.expires_at_ms,
        })
    }

    /// `GET /tasks`: the company's open tasks.
    pub async fn tasks(&self, c: &Credentials) -> Result<TasksResponse, SyncError> {
        let resp =
            self.http.get(format!("{}/tasks", self.base)).headers(auth_headers(c)?).send().await?;
        Self::answer(resp).await
    }

    /// `GET /policy`.
    pub async fn policy(&self, c: &Credentials) -> Result<PolicyResponse, SyncError> {
        let resp =
            self.http.get(format!("{}/policy", self.base)).headers(auth_headers(c)?).send().await?;
        Self::answer(resp).await
    }
}
