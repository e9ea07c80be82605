//! The sampler turns one sample per second (the policy's interval) into records: app spans
//! (heartbeat-merged), website spans (the browser extensions' reports joined to the active
//! window, see [`crate::websites`]), idle spans past the policy threshold, work sessions split on
//! long idle, lock or stop, and per-minute activity.
//!
//! It is a pure step machine: [`Sampler::sample_once`] reads the probes once at the time it is
//! given and returns the records that closed. Privacy rules are applied here, before a sample
//! becomes a span, so nothing dropped or redacted ever reaches the queue. Open spans live only in
//! memory; [`Sampler::stop`] closes them (shutdown, pause, out of schedule, agent blocked).

pub mod activity;
pub mod screenshots;
pub mod spans;

use crate::policy::{CompiledPolicy, REDACTED, Verdict};
use crate::probe::{IdleProbe, IdleState, WindowProbe};
use crate::websites::{join, spans::SiteSpans, tabs::Tabs};
use activity::ActivityMinutes;
use spans::{SpanTracker, WindowKey};
use std::sync::Arc;
use worktrail_shared::TaskId;
use worktrail_shared::api::{RecordBody, SessionEnd};
use worktrail_shared::limits::{MAX_SPAN_MS, MAX_TEXT_BYTES};

/// A silence between samples longer than this (or three sample intervals) is a suspend.
pub const SUSPEND_GAP_MS: i64 = 60_000;

/// Cuts a text to the wire's limit at a character boundary and drops NUL characters (a window
/// may put them in its title; the wire refuses them), so no record is ever refused.
pub(crate) fn clip(mut s: String) -> String {
    if s.contains('\0') {
        s.retain(|c| c != '\0');
    }
    if s.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Turns samples into records.
pub struct Sampler {
    window: Box<dyn WindowProbe>,
    idle: Box<dyn IdleProbe>,
    spans: SpanTracker,
    /// Website spans, from the extensions' reports joined to the active window.
    sites: SiteSpans,
    tabs: Arc<Tabs>,
    activity: ActivityMinutes,
    /// Start of the current idle period (the last input), while idle.
    idle_since: Option<i64>,
    /// Start of the current work session.
    session_start: Option<i64>,
    /// Whether the last probe call failed (to log a failure streak once).
    probe_failing: bool,
    /// When the previous sample was taken.
    last_sample_ms: Option<i64>,
    /// Nothing is known before this moment (the machine slept until then).
    floor_ms: i64,
    /// The task the employee chose; app spans carry it.
    task: Option<TaskId>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("idle_since", &self.idle_since)
            .field("session_start", &self.session_start)
            .finish_non_exhaustive()
    }
}

impl Sampler {
    /// A sampler over the given probes.
    pub fn new(window: Box<dyn WindowProbe>, idle: Box<dyn IdleProbe>) -> Self {
        Self {
            window,
            idle,
            spans: SpanTracker::default(),
            sites: SiteSpans::default(),
            tabs: Arc::default(),
            activity: ActivityMinutes::default(),
            idle_since: None,
            session_start: None,
            probe_failing: false,
            last_sample_ms: None,
            floor_ms: i64::MIN,
            task: None,
        }
    }

    /// Sets the task the next samples' app spans are recorded for; a change closes the open span
    /// at the next sample.
    pub fn set_task(&mut self, task: Option<TaskId>) {
        self.task = task;
    }

    /// True while the user is working: a session is open and they are not idle.
    pub fn is_active(&self) -> bool {
        self.session_start.is_some() && self.idle_since.is_none()
    }

    /// The window being recorded right now (after the privacy rules), if any.
    pub fn current_window(&self) -> Option<&WindowKey> {
        self.spans.current()
    }

    /// Where browser extensions' tab reports go (the loopback listener writes, samples read).
    pub fn tabs(&self) -> Arc<Tabs> {
        self.tabs.clone()
    }

    /// Closes the open app and website spans at `end_ms`.
    fn close_spans(&mut self, end_ms: i64) -> Vec<RecordBody> {
        self.spans.close(end_ms).into_iter().chain(self.sites.close(end_ms)).collect()
    }

    fn note_probe<T>(&mut self, what: &str, r: Result<T, crate::probe::ProbeError>) -> Option<T> {
        match r {
            Ok(v) => {
                if self.probe_failing {
                    tracing::info!(probe = what, "probe works again");
                }
                self.probe_failing = false;
                Some(v)
            }
            Err(e) => {
                if !self.probe_failing {
                    tracing::warn!(probe = what, error = %e, "probe failed; sampling as idle");
                }
                self.probe_failing = true;
                None
            }
        }
    }

    /// Takes one sample at `now_ms` under `policy`; returns the records it closed.
    pub fn sample_once(&mut self, now_ms: i64, policy: &CompiledPolicy) -> Vec<RecordBody> {
        let mut out = Vec::new();
        let p = &policy.policy;
        // A long silence between samples means the machine slept (or the agent was frozen):
        // what was open ends at the last sample, as at a lock, and nothing is attributed to
        // the gap.
        let gap_limit = (i64::from(p.sample_interval_secs.max(1)) * 3_000).max(SUSPEND_GAP_MS);
        if let Some(last) = self.last_sample_ms.replace(now_ms)
            && now_ms - last > gap_limit
        {
            out.extend(self.stop_with(last, SessionEnd::Lock));
            self.floor_ms = now_ms;
        }
        if !policy.in_schedule(now_ms) {
            out.extend(self.stop(now_ms));
            return out;
        }
        let idle_result = self.idle.idle();
        let Some(IdleState { idle_ms, locked }) = self.note_probe("idle", idle_result) else {
            out.extend(self.stop(now_ms));
            return out;
        };
        let threshold = i64::from(p.idle_threshold_secs.max(1)) * 1000;
        let split = i64::from(p.session_split_idle_secs.max(1)) * 1000;
        let max_span = (i64::from(p.max_span_secs.max(1)) * 1000).min(MAX_SPAN_MS);
        let last_input = (now_ms - i64::try_from(idle_ms).unwrap_or(i64::MAX / 2).min(now_ms))
            .max(self.floor_ms.min(now_ms));

        // Idle transitions.
        match self.idle_since {
            None if now_ms - last_input >= threshold => {
                out.extend(self.close_spans(last_input));
                self.idle_since = Some(last_input);
            }
            Some(since) if now_ms - last_input < threshold => {
                if last_input > since {
                    out.push(RecordBody::IdleSpan { start_ms: since, end_ms: last_input });
                }
                self.idle_since = None;
                if last_input - since >= split {
                    out.extend(self.end_session(since, SessionEnd::Idle));
                }
            }
            _ => {}
        }
        if let Some(since) = self.idle_since {
            // A long idle ends the session now; an endless idle is cut into bounded spans.
            if now_ms - since >= split {
                out.extend(self.end_session(since, SessionEnd::Idle));
            }
            if now_ms - since >= max_span {
                out.push(RecordBody::IdleSpan { start_ms: since, end_ms: since + max_span });
                self.idle_since = Some(since + max_span);
            }
        }
        if locked {
            let end = self.idle_since.unwrap_or(now_ms);
            out.extend(self.close_spans(end));
            out.extend(self.end_session(end, SessionEnd::Lock));
            out.extend(self.activity.flush());
            return out;
        }
        if self.idle_since.is_some() {
            return out;
        }

        // Active: the window, through the privacy rules.
        let window_result = self.window.active_window();
        let window = self.note_probe("window", window_result).flatten();
        let mut site = join::SiteOutcome::default();
        let key = window.and_then(|w| {
            let verdict = policy.judge_window(&w.app, w.exe.as_deref(), &w.title);
            site = join::site_of(&w, &verdict, &self.tabs, now_ms, policy);
            // A hidden site hides the browser window's title too: it shows the page.
            if verdict == Verdict::Drop {
                return None;
            }
            let hide = verdict == Verdict::Redact || site.hide_window_title;
            let title = if hide { REDACTED.into() } else { clip(w.title) };
            Some(WindowKey {
                app: clip(w.app),
                exe: w.exe.map(clip),
                title: Some(title).filter(|t| !t.is_empty()),
                task_id: self.task,
            })
        });
        out.extend(self.spans.observe(now_ms, key, max_span));
        out.extend(self.sites.observe(now_ms, site.site, max_span));
        match self.session_start {
            None => self.session_start = Some(now_ms),
            Some(start) if now_ms - start >= MAX_SPAN_MS => {
                out.extend(self.end_session(now_ms, SessionEnd::Stop));
                self.session_start = Some(now_ms);
            }
            Some(_) => {}
        }
        out.extend(self.activity.record(now_ms, idle_ms));
        out
    }

    fn end_session(&mut self, end_ms: i64, reason: SessionEnd) -> Option<RecordBody> {
        let start_ms = self.session_start.take()?;
        let end_ms = end_ms.max(start_ms);
        (end_ms > start_ms).then_some(RecordBody::WorkSession {
            start_ms,
            end_ms,
            end_reason: reason,
        })
    }

    /// Closes everything at `now_ms`: capture stops (shutdown, pause, schedule, blocked). The
    /// session ends at the last input when idle.
    pub fn stop(&mut self, now_ms: i64) -> Vec<RecordBody> {
        self.stop_with(now_ms, SessionEnd::Stop)
    }

    fn stop_with(&mut self, now_ms: i64, reason: SessionEnd) -> Vec<RecordBody> {
        let mut out = Vec::new();
        out.extend(self.close_spans(now_ms));
        let end = match self.idle_since.take() {
            Some(since) => {
                if now_ms > since {
                    out.push(RecordBody::IdleSpan { start_ms: since, end_ms: now_ms });
                }
                since
            }
            None => now_ms,
        };
        out.extend(self.end_session(end, reason));
        out.extend(self.activity.flush());
        out
    }
}

#[cfg(test)]
mod tests;
