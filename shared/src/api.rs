//! Request and response bodies of the agent API (`/api/v1/agent/...`).
//!
//! Times are epoch milliseconds (UTC). Every record carries an id generated on the device and a
//! per-device sequence number assigned when it was created, so the server can store each record
//! exactly once however often a batch is retried.

use crate::limits::{MAX_BATCH_RECORDS, MAX_SPAN_MS, MAX_TEXT_BYTES};
use crate::policy::Policy;
use crate::{BatchId, CompanyId, DeviceId, RecordId, TaskId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// `POST /api/v1/agent/enroll` — exchanges the company key for a device token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The device's own id, generated once and kept across re-enrolments.
    pub device_id: DeviceId,
    /// The employee's e-mail; when absent, the server derives an identity from the OS user.
    #[serde(default)]
    pub email: Option<String>,
    /// The OS user name running the agent.
    pub os_user: String,
    /// The machine's host name.
    pub hostname: String,
    /// Operating system and version, for display.
    pub os: String,
    /// The agent's version.
    pub agent_version: String,
}

/// Answer to a successful enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The company the key belongs to.
    pub company_id: CompanyId,
    /// The company's display name, for the agent's window.
    pub company_name: String,
    /// The employee this device now records for.
    pub employee_id: UserId,
    /// The device id (echoed).
    pub device_id: DeviceId,
    /// The device token; parse it into [`crate::secret::DeviceToken`] at once and keep it only in
    /// the secret store.
    pub device_token: String,
    /// The policy to apply from now on.
    pub policy: Policy,
}

/// `GET /api/v1/agent/policy` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyResponse {
    /// The policy to apply.
    pub policy: Policy,
    /// The company's IANA time zone, for schedules.
    pub time_zone: String,
    /// Server time, for clock-skew estimates.
    pub server_time_ms: i64,
}

/// `POST /api/v1/agent/signin-link` answer: a link that signs the device's own employee in to
/// the portal ("Open my dashboard"). It works once, for [`crate::limits::SIGNIN_LINK_TTL_MS`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigninLinkResponse {
    /// The link's path on the server (`/signin/{company id}/{token}`): join it to the server URL
    /// and open it in the browser at once. It holds a secret: never log or store it.
    pub path: String,
    /// When the link stops working.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for SigninLinkResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigninLinkResponse")
            .field("path", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// `GET /api/v1/agent/tasks` answer: the tasks an employee may choose in the agent (none when
/// the company does not use tasks).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TasksResponse {
    /// Open (not archived) tasks, by project and name.
    pub tasks: Vec<AgentTask>,
}

/// One task as the agent offers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTask {
    /// Its id, recorded on app spans.
    pub id: TaskId,
    /// Its project's name.
    pub project: String,
    /// Its name.
    pub name: String,
}

/// `POST /api/v1/agent/batches` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The unit of idempotency: resend the same id with the same body after any failure.
    pub batch_id: BatchId,
    /// The device clock when the batch was built.
    pub sent_at_ms: i64,
    /// Records dropped from the local queue since the last report, by kind.
    #[serde(default)]
    pub dropped: DroppedCounts,
    /// The records, at most [`MAX_BATCH_RECORDS`].
    pub records: Vec<Record>,
}

/// Counts of records the agent had to drop (queue full), reported to the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DroppedCounts {
    /// Screenshots dropped (evicted first).
    pub screenshots: u64,
    /// Activity records dropped (evicted last).
    pub records: u64,
}

/// One captured record. On the wire its body's fields sit beside `id` and `seq`, tagged by
/// `kind`; it is read in one pass over the object (see [`RecordWire`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RecordWire")]
pub struct Record {
    /// Generated on the device when the record was created.
    pub id: RecordId,
    /// Per-device sequence number, increasing in creation order.
    pub seq: i64,
    /// What was captured.
    #[serde(flatten)]
    pub body: RecordBody,
}

/// A record as it arrives: every field any kind has, read in one pass. (A derived reader for
/// a flattened, internally tagged enum buffers the whole object twice before it reads it; this
/// is most of the server's decoding work per record.) Fields of other kinds are ignored, as
/// unknown fields are.
#[derive(Deserialize)]
struct RecordWire {
    id: RecordId,
    seq: i64,
    kind: RecordKind,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    app: Option<String>,
    exe: Option<String>,
    title: Option<String>,
    task_id: Option<TaskId>,
    domain: Option<String>,
    url: Option<String>,
    browser: Option<String>,
    source: Option<SiteSource>,
    end_reason: Option<SessionEnd>,
    minute_ms: Option<i64>,
    active_secs: Option<u8>,
    taken_at_ms: Option<i64>,
    monitor: Option<u8>,
    width: Option<u32>,
    height: Option<u32>,
    bytes: Option<u64>,
    blurred: Option<bool>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RecordKind {
    AppSpan,
    WebsiteSpan,
    IdleSpan,
    WorkSession,
    Activity,
    Screenshot,
}

impl TryFrom<RecordWire> for Record {
    type Error = String;

    fn try_from(w: RecordWire) -> Result<Self, String> {
        fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("missing field `{name}`"))
        }
        let body = match w.kind {
            RecordKind::AppSpan => RecordBody::AppSpan {
                start_ms: need(w.start_ms, "start_ms")?,
                end_ms: need(w.end_ms, "end_ms")?,
                app: need(w.app, "app")?,
                exe: w.exe,
                title: w.title,
                task_id: w.task_id,
            },
            RecordKind::WebsiteSpan => RecordBody::WebsiteSpan {
                start_ms: need(w.start_ms, "start_ms")?,
                end_ms: need(w.end_ms, "end_ms")?,
                domain: need(w.domain, "domain")?,
                url: w.url,
                title: w.title,
                browser: w.browser,
                source: need(w.source, "source")?,
            },
            RecordKind::IdleSpan => RecordBody::IdleSpan {
                start_ms: need(w.start_ms, "start_ms")?,
                end_ms: need(w.end_ms, "end_ms")?,
            },
            RecordKind::WorkSession => RecordBody::WorkSession {
                start_ms: need(w.start_ms, "start_ms")?,
                end_ms: need(w.end_ms, "end_ms")?,
                end_reason: need(w.end_reason, "end_reason")?,
            },
            RecordKind::Activity => RecordBody::Activity {
                minute_ms: need(w.minute_ms, "minute_ms")?,
                active_secs: need(w.active_secs, "active_secs")?,
            },
            RecordKind::Screenshot => RecordBody::Screenshot {
                taken_at_ms: need(w.taken_at_ms, "taken_at_ms")?,
                monitor: need(w.monitor, "monitor")?,
                width: need(w.width, "width")?,
                height: need(w.height, "height")?,
                bytes: need(w.bytes, "bytes")?,
                blurred: need(w.blurred, "blurred")?,
            },
        };
        Ok(Record { id: w.id, seq: w.seq, body })
    }
}

/// How sure the agent is of a website record's site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteSource {
    /// Reported by the browser extension.
    Extension,
    /// Guessed from the window title (lower confidence).
    Title,
}

/// Why a work session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// A long idle period.
    Idle,
    /// Screen lock or suspend.
    Lock,
    /// The agent stopped (quit, pause, shutdown, out of schedule).
    Stop,
}

/// The kinds of record, tagged by `kind` on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    /// Time in one application window.
    AppSpan {
        /// Span start.
        start_ms: i64,
        /// Span end (exclusive).
        end_ms: i64,
        /// Application name.
        app: String,
        /// Executable path, when known.
        #[serde(default)]
        exe: Option<String>,
        /// Window title (possibly redacted by policy).
        #[serde(default)]
        title: Option<String>,
        /// The task the employee chose in the agent (when the company uses tasks). Left out of
        /// the JSON when none, so batches without tasks keep their exact bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<TaskId>,
    },
    /// Time on one website.
    WebsiteSpan {
        /// Span start.
        start_ms: i64,
        /// Span end (exclusive).
        end_ms: i64,
        /// The site's host name.
        domain: String,
        /// The full URL, only when the policy allows it.
        #[serde(default)]
        url: Option<String>,
        /// The page title, unless redacted.
        #[serde(default)]
        title: Option<String>,
        /// The browser's application name.
        #[serde(default)]
        browser: Option<String>,
        /// Where the site came from.
        source: SiteSource,
    },
    /// Time without input beyond the policy's idle threshold.
    IdleSpan {
        /// Span start.
        start_ms: i64,
        /// Span end (exclusive).
        end_ms: i64,
    },
    /// A continuous period of work.
    WorkSession {
        /// Session start.
        start_ms: i64,
        /// Session end.
        end_ms: i64,
        /// Why it ended.
        end_reason: SessionEnd,
    },
    /// Input activity in one minute.
    Activity {
        /// Start of the minute (a multiple of 60,000).
        minute_ms: i64,
        /// Seconds of that minute with input, 0–60.
        active_secs: u8,
    },
    /// Metadata of a screenshot whose bytes are uploaded separately under the record's id.
    Screenshot {
        /// When it was taken.
        taken_at_ms: i64,
        /// Monitor index.
        monitor: u8,
        /// Image width after downscaling.
        width: u32,
        /// Image height after downscaling.
        height: u32,
        /// JPEG size in bytes.
        bytes: u64,
        /// Whether it was blurred on the device.
        blurred: bool,
    },
}

impl RecordBody {
    /// The wire name of the record's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordBody::AppSpan { .. } => "app_span",
            RecordBody::WebsiteSpan { .. } => "website_span",
            RecordBody::IdleSpan { .. } => "idle_span",
            RecordBody::WorkSession { .. } => "work_session",
            RecordBody::Activity { .. } => "activity",
            RecordBody::Screenshot { .. } => "screenshot",
        }
    }
}

/// The server's answer to an accepted batch; the same batch sent again gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    /// The acknowledged batch.
    pub batch_id: BatchId,
    /// Records stored by this batch.
    pub accepted: u32,
    /// Records in the batch that were already stored (sent before in another batch).
    pub duplicates: u32,
    /// The highest sequence number in the batch, for the agent's bookkeeping.
    pub max_seq: i64,
    /// Server time when the batch was first stored.
    pub server_time_ms: i64,
}

/// Answer to `PUT /api/v1/agent/screenshots/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenshotAck {
    /// The screenshot (its record id).
    pub id: RecordId,
    /// Stored size in bytes.
    pub bytes: u64,
}

/// Why a batch is invalid (sent back as the message of `invalid_batch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRuleError(pub String);

fn check_text(what: &str, s: &str) -> Result<(), BatchRuleError> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(BatchRuleError(format!("{what} is longer than {MAX_TEXT_BYTES} bytes")));
    }
    // PostgreSQL text cannot hold U+0000; refused here, both backends answer alike.
    if s.contains('\0') {
        return Err(BatchRuleError(format!("{what} contains a NUL character")));
    }
    Ok(())
}

fn check_span(start_ms: i64, end_ms: i64) -> Result<(), BatchRuleError> {
    if start_ms < 0 || end_ms < start_ms {
        return Err(BatchRuleError(format!("span ends ({end_ms}) before it starts ({start_ms})")));
    }
    if end_ms - start_ms > MAX_SPAN_MS {
        return Err(BatchRuleError("span is longer than a day".into()));
    }
    Ok(())
}

impl BatchRequest {
    /// Decodes a batch body as the server receives it (JSON, after any content decoding) and
    /// checks it against [`Self::validate`]. This is the server's one batch decoder; it never
    /// panics on any input (fuzzed in `shared/fuzz`).
    pub fn decode(body: &[u8]) -> Result<Self, BatchRuleError> {
        let batch: Self =
            serde_json::from_slice(body).map_err(|e| BatchRuleError(e.to_string()))?;
        batch.validate()?;
        Ok(batch)
    }

    /// Checks the rules every batch must keep; the server rejects a batch that breaks any with
    /// `invalid_batch`, and the agent never builds one.
    pub fn validate(&self) -> Result<(), BatchRuleError> {
        if self.records.len() > MAX_BATCH_RECORDS {
            return Err(BatchRuleError(format!(
                "{} records; at most {MAX_BATCH_RECORDS} per batch",
                self.records.len()
            )));
        }
        let mut ids = HashSet::with_capacity(self.records.len());
        for (i, r) in self.records.iter().enumerate() {
            let at = |e: BatchRuleError| BatchRuleError(format!("record {i}: {}", e.0));
            if !ids.insert(r.id) {
                return Err(at(BatchRuleError("id appears twice in the batch".into())));
            }
            if r.seq < 0 {
                return Err(at(BatchRuleError("negative sequence number".into())));
            }
            match &r.body {
                RecordBody::AppSpan { start_ms, end_ms, app, exe, title, .. } => {
                    check_span(*start_ms, *end_ms).map_err(at)?;
                    check_text("app", app).map_err(at)?;
                    check_text("exe", exe.as_deref().unwrap_or("")).map_err(at)?;
                    check_text("title", title.as_deref().unwrap_or("")).map_err(at)?;
                }
                RecordBody::WebsiteSpan {
                    start_ms, end_ms, domain, url, title, browser, ..
                } => {
                    check_span(*start_ms, *end_ms).map_err(at)?;
                    check_text("domain", domain).map_err(at)?;
                    check_text("url", url.as_deref().unwrap_or("")).map_err(at)?;
                    check_text("title", title.as_deref().unwrap_or("")).map_err(at)?;
                    check_text("browser", browser.as_deref().unwrap_or("")).map_err(at)?;
                }
                RecordBody::IdleSpan { start_ms, end_ms }
                | RecordBody::WorkSession { start_ms, end_ms, .. } => {
                    check_span(*start_ms, *end_ms).map_err(at)?;
                }
                RecordBody::Activity { minute_ms, active_secs } => {
                    if *minute_ms < 0 || minute_ms % 60_000 != 0 {
                        return Err(at(BatchRuleError("minute_ms is not a whole minute".into())));
                    }
                    if *active_secs > 60 {
                        return Err(at(BatchRuleError("active_secs is over 60".into())));
                    }
                }
                RecordBody::Screenshot { taken_at_ms, bytes, .. } => {
                    if *taken_at_ms < 0 {
                        return Err(at(BatchRuleError("negative taken_at_ms".into())));
                    }
                    if *bytes > crate::limits::MAX_SCREENSHOT_BYTES as u64 {
                        return Err(at(BatchRuleError("screenshot is over the size limit".into())));
                    }
                }
            }
        }
        Ok(())
    }

    /// The highest sequence number in the batch (-1 when empty).
    pub fn max_seq(&self) -> i64 {
        self.records.iter().map(|r| r.seq).max().unwrap_or(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_seed_decodes_with_every_record_kind() {
        let batch =
            BatchRequest::decode(include_bytes!("../fuzz/seeds/batch_decode/every_kind.json"))
                .expect("the seed is a valid batch");
        let kinds: HashSet<_> = batch.records.iter().map(|r| r.body.kind()).collect();
        assert_eq!(kinds.len(), 6, "{kinds:?}");
        assert!(BatchRequest::decode(b"{\"batch_id\": 1}").is_err());
    }

    fn app(seq: i64, start: i64, end: i64) -> Record {
        Record {
            id: RecordId::new(),
            seq,
            body: RecordBody::AppSpan {
                start_ms: start,
                end_ms: end,
                app: "xterm".into(),
                exe: None,
                title: Some("build".into()),
                task_id: None,
            },
        }
    }

    fn batch(records: Vec<Record>) -> BatchRequest {
        BatchRequest {
            batch_id: BatchId::new(),
            sent_at_ms: 1,
            dropped: Default::default(),
            records,
        }
    }

    #[test]
    fn records_are_tagged_by_kind_on_the_wire() {
        let json = serde_json::to_value(app(3, 10, 20)).unwrap();
        assert_eq!(json["kind"], "app_span");
        assert_eq!(json["seq"], 3);
        assert_eq!(json["title"], "build");
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back.seq, 3);
    }

    #[test]
    fn every_kind_reads_back_as_written_and_a_missing_field_is_named() {
        let bodies = [
            app(1, 0, 5).body,
            RecordBody::WebsiteSpan {
                start_ms: 1,
                end_ms: 2,
                domain: "example.com".into(),
                url: Some("https://example.com/a".into()),
                title: None,
                browser: Some("Firefox".into()),
                source: SiteSource::Extension,
            },
            RecordBody::IdleSpan { start_ms: 3, end_ms: 4 },
            RecordBody::WorkSession { start_ms: 5, end_ms: 6, end_reason: SessionEnd::Lock },
            RecordBody::Activity { minute_ms: 60_000, active_secs: 42 },
            RecordBody::Screenshot {
                taken_at_ms: 7,
                monitor: 1,
                width: 800,
                height: 600,
                bytes: 12_345,
                blurred: true,
            },
        ];
        for (seq, body) in bodies.into_iter().enumerate() {
            let r = Record { id: RecordId::new(), seq: seq as i64, body };
            let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
        let id = RecordId::new();
        let read = |json: String| serde_json::from_str::<Record>(&json);
        let e =
            read(format!(r#"{{"id":"{id}","seq":1,"kind":"app_span","start_ms":1}}"#)).unwrap_err();
        assert!(e.to_string().contains("missing field `end_ms`"), "{e}");
        let e =
            read(format!(r#"{{"id":"{id}","seq":1,"kind":"lunch","start_ms":1}}"#)).unwrap_err();
        assert!(e.to_string().contains("unknown variant `lunch`"), "{e}");
        let e = read(format!(
            r#"{{"id":"{id}","seq":1,"kind":"activity","minute_ms":0,"active_secs":300}}"#
        ))
        .unwrap_err();
        assert!(e.to_string().contains("active_secs") || e.to_string().contains("u8"), "{e}");
        // Fields the kind does not have, and fields nobody knows, are ignored.
        let r = read(format!(
            r#"{{"id":"{id}","seq":1,"kind":"idle_span","start_ms":1,"end_ms":2,"app":"x","later":[1]}}"#
        ))
        .unwrap();
        assert_eq!(r.body, RecordBody::IdleSpan { start_ms: 1, end_ms: 2 });
    }

    #[test]
    fn a_well_formed_batch_passes() {
        assert!(batch(vec![app(1, 0, 5), app(2, 5, 9)]).validate().is_ok());
    }

    #[test]
    fn backwards_spans_duplicate_ids_and_oversized_batches_fail() {
        assert!(batch(vec![app(1, 10, 5)]).validate().is_err());
        let r = app(1, 0, 5);
        assert!(batch(vec![r.clone(), r]).validate().is_err());
        let many = (0..=MAX_BATCH_RECORDS as i64).map(|i| app(i, 0, 1)).collect();
        assert!(batch(many).validate().is_err());
        let long = Record {
            id: RecordId::new(),
            seq: 1,
            body: RecordBody::Activity { minute_ms: 61_000, active_secs: 3 },
        };
        assert!(batch(vec![long]).validate().is_err());
    }
}
