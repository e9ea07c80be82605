//! Website spans by heartbeat merge, as for app spans: consecutive samples of the same site (after
//! the privacy rules) extend one open span in memory, written when the site changes, the browser
//! loses the focus, idle starts, capture stops, or the span reaches the policy's maximum length.

use super::join::SiteKey;
use worktrail_shared::api::RecordBody;

#[derive(Debug)]
struct Open {
    key: SiteKey,
    start_ms: i64,
}

/// The one open website span.
#[derive(Debug, Default)]
pub struct SiteSpans {
    open: Option<Open>,
}

impl SiteSpans {
    /// Feeds the sample at `now_ms` (`None`: no site). Returns the span it closed, if any.
    pub fn observe(
        &mut self,
        now_ms: i64,
        key: Option<SiteKey>,
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

    /// Closes the open span at `end_ms` (never before its start); empty spans are not written.
    pub fn close(&mut self, end_ms: i64) -> Option<RecordBody> {
        let Open { key, start_ms } = self.open.take()?;
        let end_ms = end_ms.max(start_ms);
        (end_ms > start_ms).then_some(RecordBody::WebsiteSpan {
            start_ms,
            end_ms,
            domain: key.domain,
            url: key.url,
            title: key.title,
            browser: Some(key.browser),
            source: key.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use worktrail_shared::api::SiteSource;

    fn key(domain: &str) -> Option<SiteKey> {
        Some(SiteKey {
            domain: domain.into(),
            url: None,
            title: Some("t".into()),
            browser: "Chromium".into(),
            source: SiteSource::Extension,
        })
    }

    fn bounds(r: Option<RecordBody>) -> (i64, i64, String) {
        match r {
            Some(RecordBody::WebsiteSpan { start_ms, end_ms, domain, .. }) => {
                (start_ms, end_ms, domain)
            }
            other => panic!("not a website span: {other:?}"),
        }
    }

    #[test]
    fn samples_of_one_site_merge_and_the_next_site_or_no_site_closes_the_span() {
        let mut s = SiteSpans::default();
        for t in 0..5 {
            assert!(s.observe(t * 1_000, key("a.example"), 3_600_000).is_none());
        }
        assert_eq!(
            bounds(s.observe(5_000, key("b.example"), 3_600_000)),
            (0, 5_000, "a.example".into())
        );
        assert_eq!(bounds(s.observe(8_000, None, 3_600_000)), (5_000, 8_000, "b.example".into()));
        assert!(s.observe(9_000, None, 3_600_000).is_none());
        assert!(s.close(9_500).is_none());
    }

    #[test]
    fn a_long_visit_is_cut_at_the_maximum_length_and_empty_spans_vanish() {
        let mut s = SiteSpans::default();
        let closed: Vec<_> = (0..=12)
            .filter_map(|t| s.observe(t * 1_000, key("a.example"), 5_000))
            .map(|r| bounds(Some(r)))
            .collect();
        assert_eq!(
            closed,
            vec![(0, 5_000, "a.example".into()), (5_000, 10_000, "a.example".into())]
        );
        s.observe(20_000, key("b.example"), 5_000);
        assert!(s.close(19_000).is_none());
    }
}
