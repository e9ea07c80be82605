//! What the browser extensions last said, per browser family: the tab the user is looking at, or
//! explicitly nothing (the browser lost the focus, a private window or a browser page has it).
//!
//! A report is only a claim about the browser; whether the browser is what the user works in is
//! decided at each sample by the active window (see [`super::join`]). A report older than
//! [`STALE_MS`] (three missed heartbeats) is forgotten, so a crashed or removed extension falls
//! back to the window title instead of pinning one site for ever.

use super::site::Family;
use std::collections::HashMap;
use std::sync::Mutex;

/// A report is believed for this long after it arrived; the extension repeats it every 30 s.
pub const STALE_MS: i64 = 95_000;

/// The active tab as the extension reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tab {
    /// The tab's URL (kept in memory only; the policy decides what of it is written).
    pub url: String,
    /// The tab's title.
    pub title: Option<String>,
}

#[derive(Clone, Debug)]
struct Report {
    tab: Option<Tab>,
    at_ms: i64,
}

/// The last report of each family's extension.
#[derive(Debug, Default)]
pub struct Tabs {
    reports: Mutex<HashMap<Family, Report>>,
    count: Mutex<u64>,
}

/// What [`Tabs::current`] knows about a family's browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TabView {
    /// No recent word from an extension: guess from the window title.
    Unknown,
    /// The extension says there is nothing to record (no focus, private window, browser page).
    Nothing,
    /// The extension says this tab is in front.
    Tab(Tab),
}

impl Tabs {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a report from `family`'s extension at `now_ms`.
    pub fn report(&self, family: Family, tab: Option<Tab>, now_ms: i64) {
        Self::lock(&self.reports).insert(family, Report { tab, at_ms: now_ms });
        *Self::lock(&self.count) += 1;
    }

    /// What `family`'s extension says at `now_ms`.
    pub fn current(&self, family: Family, now_ms: i64) -> TabView {
        match Self::lock(&self.reports).get(&family) {
            Some(r) if now_ms - r.at_ms <= STALE_MS => match &r.tab {
                Some(t) => TabView::Tab(t.clone()),
                None => TabView::Nothing,
            },
            _ => TabView::Unknown,
        }
    }

    /// How many reports arrived since the agent started (for status and tests).
    pub fn reports(&self) -> u64 {
        *Self::lock(&self.count)
    }

    /// When `family`'s extension last reported.
    pub fn last_report_ms(&self, family: Family) -> Option<i64> {
        Self::lock(&self.reports).get(&family).map(|r| r.at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_believed_until_it_is_stale_and_per_family() {
        let tabs = Tabs::default();
        assert_eq!(tabs.current(Family::Chromium, 0), TabView::Unknown);
        let tab = Tab { url: "https://a.example/".into(), title: None };
        tabs.report(Family::Chromium, Some(tab.clone()), 1_000);
        assert_eq!(tabs.current(Family::Chromium, 1_000 + STALE_MS), TabView::Tab(tab));
        assert_eq!(tabs.current(Family::Chromium, 1_001 + STALE_MS), TabView::Unknown);
        assert_eq!(tabs.current(Family::Firefox, 2_000), TabView::Unknown);
        tabs.report(Family::Chromium, None, 3_000);
        assert_eq!(tabs.current(Family::Chromium, 3_000), TabView::Nothing);
        assert_eq!(tabs.reports(), 2);
        assert_eq!(tabs.last_report_ms(Family::Chromium), Some(3_000));
    }
}
