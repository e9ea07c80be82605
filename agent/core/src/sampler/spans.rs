//! Heartbeat merge (as in ActivityWatch): consecutive identical window samples extend one open
//! span in memory; the span is written only when it closes — the window changes, idle starts,
//! capture stops, or it reaches the policy's maximum length.

use worktrail_shared::TaskId;
use worktrail_shared::api::RecordBody;

/// The window part of a sample, after the privacy rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowKey {
    /// Application name.
    pub app: String,
    /// Executable path.
    pub exe: Option<String>,
    /// Title (already redacted when a rule said so).
    pub title: Option<String>,
    /// The task chosen in the agent: choosing another one closes the span like a window change.
    pub task_id: Option<TaskId>,
}

#[derive(Debug)]
struct Open {
    key: WindowKey,
    start_ms: i64,
}

/// The one open app span.
#[derive(Debug, Default)]
pub struct SpanTracker {
    open: Option<Open>,
}

impl SpanTracker {
    /// Feeds the sample at `now_ms` (`None`: nothing to attribute). Returns the span this sample
    /// closed, if any.
    pub fn observe(
        &mut self,
        now_ms: i64,
        key: Option<WindowKey>,
        max_span_ms: i64,
    ) -> Option<RecordBody> {
        if let (Some(open), Some(k)) = (&self.open, &key)
            && open.key == *k
            && now_ms - open.start_ms < max_span_ms
        {
            return None;
        }
        let closed = self.close(now_ms);
        self.open = key.map(|key| Open { key, start_ms: now_ms });
        closed
    }

    /// Closes the open span at `end_ms` (never before its start). Zero-length spans are dropped.
    pub fn close(&mut self, end_ms: i64) -> Option<RecordBody> {
        let open = self.open.take()?;
        let end_ms = end_ms.max(open.start_ms);
        (end_ms > open.start_ms).then_some(RecordBody::AppSpan {
            start_ms: open.start_ms,
            end_ms,
            app: open.key.app,
            exe: open.key.exe,
            title: open.key.title,
            task_id: open.key.task_id,
        })
    }

    /// The window of the open span (what is being recorded right now).
    pub fn current(&self) -> Option<&WindowKey> {
        self.open.as_ref().map(|o| &o.key)
    }

    /// Whether a span is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, title: &str) -> Option<WindowKey> {
        Some(WindowKey { app: app.into(), exe: None, title: Some(title.into()), task_id: None })
    }

    fn span(r: &RecordBody) -> (i64, i64, &str) {
        match r {
            RecordBody::AppSpan { start_ms, end_ms, title, .. } => {
                (*start_ms, *end_ms, title.as_deref().unwrap())
            }
            other => panic!("not a span: {other:?}"),
        }
    }

    #[test]
    fn identical_samples_merge_and_a_change_closes_the_span() {
        let mut t = SpanTracker::default();
        for s in 0..10 {
            assert!(t.observe(s * 1000, key("xterm", "a"), 3_600_000).is_none());
        }
        let closed = t.observe(10_000, key("xterm", "b"), 3_600_000).unwrap();
        assert_eq!(span(&closed), (0, 10_000, "a"));
        let closed = t.close(12_000).unwrap();
        assert_eq!(span(&closed), (10_000, 12_000, "b"));
        assert!(!t.is_open());
    }

    #[test]
    fn a_span_is_cut_at_the_maximum_length() {
        let mut t = SpanTracker::default();
        let mut out = vec![];
        for s in 0..=25 {
            out.extend(t.observe(s * 1000, key("xterm", "a"), 10_000));
        }
        let spans: Vec<_> = out.iter().map(span).collect();
        assert_eq!(spans, vec![(0, 10_000, "a"), (10_000, 20_000, "a")]);
    }

    #[test]
    fn losing_the_focus_closes_the_span_and_empty_spans_are_not_written() {
        let mut t = SpanTracker::default();
        t.observe(0, key("xterm", "a"), 60_000);
        assert_eq!(span(&t.observe(5_000, None, 60_000).unwrap()), (0, 5_000, "a"));
        t.observe(6_000, key("xterm", "a"), 60_000);
        assert!(t.close(6_000).is_none());
        // Idle that started before the span's start cannot make it end before it began.
        t.observe(7_000, key("xterm", "a"), 60_000);
        assert!(t.close(1_000).is_none());
    }
}
