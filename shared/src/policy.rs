//! The collection policy a company sets and every agent applies before anything is written.

use serde::{Deserialize, Serialize};

/// What the agent collects and how often. Served by `GET /api/v1/agent/policy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Seconds between samples of the active window and idle time.
    pub sample_interval_secs: u32,
    /// Seconds without input after which time counts as idle.
    pub idle_threshold_secs: u32,
    /// Seconds of idle after which the work session is split.
    pub session_split_idle_secs: u32,
    /// Longest app or website span before it is closed and a new one started.
    pub max_span_secs: u32,
    /// Seconds between syncs.
    pub sync_interval_secs: u32,
    /// Screenshot settings.
    pub screenshots: ScreenshotPolicy,
    /// Website settings.
    pub websites: WebsitePolicy,
    /// Rules that drop or redact records before they touch disk.
    pub privacy_rules: Vec<PrivacyRule>,
    /// Weekly schedule; no capture outside it. Empty means always.
    pub schedule: Vec<ScheduleWindow>,
    /// May the employee pause tracking?
    pub allow_pause: bool,
    /// May the employee quit the agent?
    pub allow_quit: bool,
    /// May employees delete their own screenshots (the time they stood for goes with them)?
    pub employees_delete_screenshots: bool,
    /// Days raw activity and screenshots are kept, when the company keeps them for less than its
    /// plan allows (the shorter of the two applies).
    pub retention_days: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            sample_interval_secs: 1,
            idle_threshold_secs: 300,
            session_split_idle_secs: 1800,
            max_span_secs: 3600,
            sync_interval_secs: 60,
            screenshots: ScreenshotPolicy::default(),
            websites: WebsitePolicy::default(),
            privacy_rules: Vec::new(),
            schedule: Vec::new(),
            allow_pause: true,
            allow_quit: true,
            employees_delete_screenshots: true,
            retention_days: None,
        }
    }
}

/// Screenshot settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScreenshotPolicy {
    /// Whether screenshots are taken at all.
    pub enabled: bool,
    /// One screenshot (of every monitor) at a random moment in each interval of this many seconds.
    pub interval_secs: u32,
    /// Blur on the device before anything is stored.
    pub blur: bool,
    /// Downscale to at most this width in pixels.
    pub max_width: u32,
    /// JPEG quality, 1–100.
    pub jpeg_quality: u8,
}

impl Default for ScreenshotPolicy {
    fn default() -> Self {
        Self { enabled: true, interval_secs: 600, blur: false, max_width: 1280, jpeg_quality: 60 }
    }
}

/// Website settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebsitePolicy {
    /// Keep the full URL (path and query); by default only the domain is kept.
    pub full_url: bool,
}

/// What a privacy rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleTarget {
    /// The application name or executable.
    App,
    /// The window title.
    Title,
    /// A website's domain.
    Domain,
}

/// What a privacy rule does to a matching record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// The record is not kept at all (the time is not attributed).
    Drop,
    /// The title (and URL) is replaced by a placeholder; the app or domain is kept.
    Redact,
}

/// One privacy rule: a case-insensitive substring `pattern` on `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyRule {
    /// What is matched.
    pub target: RuleTarget,
    /// Case-insensitive substring; `*` matches any run of characters.
    pub pattern: String,
    /// What happens on a match.
    pub action: RuleAction,
}

/// One weekly window when capture is on, in the company's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleWindow {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// Minutes after midnight when capture starts.
    pub start_minute: u16,
    /// Minutes after midnight when capture stops (exclusive).
    pub end_minute: u16,
}
