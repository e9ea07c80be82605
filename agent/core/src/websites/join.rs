//! The join: which site, if any, the user is looking at in this sample — and what of it the policy
//! lets the agent keep. Pure functions over the active window, the extensions' reports and the
//! policy; the sampler calls [`site_of`] once per active sample.
//!
//! Rules: a site counts only while a browser window is the active window, and only the report of
//! *that* browser family's extension is used (a tab reported while another application is in front
//! counts for nothing). A fresh report wins over the window title; the title is read only when no
//! extension has spoken recently, and never when a privacy rule hid the title. Domain rules drop or
//! redact the site, and then the browser window's title (which shows the page) is hidden as well;
//! so is the title of a browser window the extension cannot see (private windows, where the
//! browser never runs it).

use super::site::{self, SiteUrl};
use super::tabs::{TabView, Tabs};
use crate::policy::{CompiledPolicy, REDACTED, Verdict};
use crate::probe::WindowInfo;
use crate::sampler::clip;
use worktrail_shared::api::SiteSource;

/// A website sample after the privacy rules: what a website span is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteKey {
    /// Host name.
    pub domain: String,
    /// Full URL, only when the policy keeps it.
    pub url: Option<String>,
    /// Page title ([`REDACTED`] when a rule says so).
    pub title: Option<String>,
    /// The browser's application name.
    pub browser: String,
    /// Extension report or window title.
    pub source: SiteSource,
}

/// The outcome of the join for one sample.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteOutcome {
    /// The site to attribute this sample to.
    pub site: Option<SiteKey>,
    /// The window's title must not be kept either: a domain rule matched, or the window is a
    /// private one.
    pub hide_window_title: bool,
}

/// The site shown by `window` at `now_ms`; `window_verdict` is the privacy rules' verdict on the
/// window itself.
pub fn site_of(
    window: &WindowInfo,
    window_verdict: &Verdict,
    tabs: &Tabs,
    now_ms: i64,
    policy: &CompiledPolicy,
) -> SiteOutcome {
    if *window_verdict == Verdict::Drop {
        return SiteOutcome::default();
    }
    let Some(family) = site::family_of(&window.app, window.exe.as_deref()) else {
        return SiteOutcome::default();
    };
    let (url, title, source) = match tabs.current(family, now_ms) {
        // The browser is in front, yet its extension sees none of its windows focused: the
        // window is one it may not see — a private window. Its title (the page's) is not kept.
        TabView::Nothing => return SiteOutcome { site: None, hide_window_title: true },
        TabView::Tab(tab) => match site::parse_url(&tab.url) {
            Some(url) => (url, tab.title, SiteSource::Extension),
            None => return SiteOutcome::default(),
        },
        TabView::Unknown => {
            if *window_verdict != Verdict::Keep {
                return SiteOutcome::default();
            }
            match site::domain_in_title(&window.title) {
                // A guess from the title is a domain, never a URL.
                Some(domain) => (
                    SiteUrl { full: String::new(), domain },
                    Some(site::page_title(&window.title).to_owned()),
                    SiteSource::Title,
                ),
                None => return SiteOutcome::default(),
            }
        }
    };
    let domain_verdict = policy.judge_domain(&url.domain);
    let redact = domain_verdict == Verdict::Redact || *window_verdict == Verdict::Redact;
    // A page that is loading, or has no <title>, is titled with its address; unless the policy
    // keeps URLs, that title would carry the path and query the URL rule leaves out.
    let keep_url = policy.policy.websites.full_url && !redact && source == SiteSource::Extension;
    let title = title.filter(|t| keep_url || !shows_address(t, &url));
    let site = match domain_verdict {
        Verdict::Drop => None,
        _ => Some(SiteKey {
            url: keep_url.then(|| clip(url.full)),
            title: if redact {
                Some(REDACTED.to_owned())
            } else {
                title.map(clip).filter(|t| !t.is_empty())
            },
            domain: clip(url.domain),
            browser: clip(window.app.clone()),
            source,
        }),
    };
    SiteOutcome { site, hide_window_title: domain_verdict != Verdict::Keep }
}

/// Whether a page title is the page's address (as browsers title a page that is loading or
/// has no title): the URL, with or without its scheme, or the host followed by a port, path,
/// query or fragment.
fn shows_address(title: &str, url: &SiteUrl) -> bool {
    let t = title.trim().to_ascii_lowercase();
    let full = url.full.to_ascii_lowercase();
    let bare = full.split_once("://").map_or(full.as_str(), |(_, rest)| rest);
    if t == full || t.starts_with(bare) || t.contains("://") {
        return true;
    }
    let rest = t.strip_prefix("www.").unwrap_or(&t);
    let domain = url.domain.strip_prefix("www.").unwrap_or(&url.domain);
    rest.strip_prefix(domain).is_some_and(|after| after.starts_with([':', '/', '?', '#']))
}

#[cfg(test)]
mod tests {
    use super::super::site::Family;
    use super::super::tabs::Tab;
    use super::*;
    use worktrail_shared::policy::{Policy, PrivacyRule, RuleAction, RuleTarget};

    fn window(app: &str, title: &str) -> WindowInfo {
        WindowInfo { app: app.into(), exe: None, title: title.into(), pid: None }
    }

    fn reported(url: &str, title: &str) -> Tabs {
        let tabs = Tabs::default();
        let tab = Tab { url: url.into(), title: Some(title.into()) };
        tabs.report(Family::Chromium, Some(tab), 0);
        tabs
    }

    fn policy(full_url: bool, rules: &[(RuleTarget, &str, RuleAction)]) -> CompiledPolicy {
        let mut p = Policy::default();
        p.websites.full_url = full_url;
        p.privacy_rules = rules
            .iter()
            .map(|(t, pat, a)| PrivacyRule { target: *t, pattern: (*pat).into(), action: *a })
            .collect();
        CompiledPolicy::new(p, "UTC")
    }

    const URL: &str = "https://docs.example.com/q3/plan?token=s3cret#top";

    #[test]
    fn by_default_only_the_domain_of_the_reported_tab_is_kept() {
        let tabs = reported(URL, "Plan");
        let w = window("Chromium", "Plan - Chromium");
        let out = site_of(&w, &Verdict::Keep, &tabs, 1_000, &policy(false, &[]));
        let site = out.site.unwrap();
        assert_eq!(site.domain, "docs.example.com");
        assert_eq!((site.url, site.title.as_deref()), (None, Some("Plan")));
        assert_eq!((site.browser.as_str(), site.source), ("Chromium", SiteSource::Extension));
        assert!(!out.hide_window_title);
    }

    #[test]
    fn a_title_that_is_the_pages_address_is_not_kept_when_urls_are_not() {
        let p = policy(false, &[]);
        let w = window("Chromium", "Chromium");
        for title in [
            "docs.example.com/q3/plan?token=s3cret",
            "docs.example.com:8443/q3/plan",
            "https://docs.example.com/q3/plan?token=s3cret",
            "DOCS.example.com/q3",
        ] {
            let site = site_of(&w, &Verdict::Keep, &reported(URL, title), 0, &p).site.unwrap();
            assert_eq!((site.domain.as_str(), site.title), ("docs.example.com", None), "{title}");
        }
        // A real title that names the site stays; with URLs kept, so does the address title.
        let named = reported(URL, "docs.example.com — Q3 plan");
        let site = site_of(&w, &Verdict::Keep, &named, 0, &p).site.unwrap();
        assert_eq!(site.title.as_deref(), Some("docs.example.com — Q3 plan"));
        let address = reported(URL, "docs.example.com/q3/plan?token=s3cret");
        let site = site_of(&w, &Verdict::Keep, &address, 0, &policy(true, &[])).site.unwrap();
        assert_eq!(site.title.as_deref(), Some("docs.example.com/q3/plan?token=s3cret"));
    }

    #[test]
    fn the_full_url_is_kept_only_when_the_policy_allows_it() {
        let tabs = reported(URL, "Plan");
        let w = window("Chromium", "Plan - Chromium");
        let site = site_of(&w, &Verdict::Keep, &tabs, 0, &policy(true, &[])).site.unwrap();
        assert_eq!(site.url.as_deref(), Some("https://docs.example.com/q3/plan?token=s3cret"));
    }

    #[test]
    fn a_tab_reported_while_another_application_is_active_counts_for_nothing() {
        let tabs = reported(URL, "Plan");
        let p = policy(false, &[]);
        assert_eq!(
            site_of(&window("XTerm", "Plan"), &Verdict::Keep, &tabs, 0, &p),
            SiteOutcome::default()
        );
        // Nor does a Chromium report when Firefox is in front (it has no fresh report: title).
        assert_eq!(
            site_of(&window("firefox", "Plan — Mozilla Firefox"), &Verdict::Keep, &tabs, 0, &p)
                .site,
            None
        );
    }

    #[test]
    fn the_extension_saying_nothing_wins_over_a_title_that_shows_a_domain() {
        let tabs = Tabs::default();
        tabs.report(Family::Chromium, None, 0);
        let w = window("Chromium", "secret.example.org/x - Chromium");
        let out = site_of(&w, &Verdict::Keep, &tabs, 0, &policy(false, &[]));
        assert_eq!((out.site, out.hide_window_title), (None, true), "a private window");
        // Browser pages reported by the extension are not websites either.
        let tabs = reported("chrome://settings", "Settings");
        assert_eq!(site_of(&w, &Verdict::Keep, &tabs, 0, &policy(false, &[])).site, None);
    }

    #[test]
    fn without_a_fresh_report_the_title_gives_a_domain_marked_as_a_guess() {
        let tabs = reported(URL, "Plan");
        let w = window("Chromium", "github.com/rust-lang/rust - Chromium");
        let p = policy(true, &[]);
        let later = super::super::tabs::STALE_MS + 1;
        let site = site_of(&w, &Verdict::Keep, &tabs, later, &p).site.unwrap();
        assert_eq!((site.domain.as_str(), site.source), ("github.com", SiteSource::Title));
        assert_eq!(site.url, None, "a title never gives a URL");
        // A title hidden by a rule is not read.
        assert_eq!(site_of(&w, &Verdict::Redact, &tabs, later, &p).site, None);
        assert_eq!(
            site_of(&window("Chromium", "Plan - Chromium"), &Verdict::Keep, &tabs, later, &p).site,
            None
        );
    }

    #[test]
    fn domain_rules_drop_or_redact_the_site_and_hide_the_window_title() {
        let tabs = reported(URL, "Plan");
        let w = window("Chromium", "Plan - Chromium");
        let drop = policy(true, &[(RuleTarget::Domain, "*.example.com", RuleAction::Drop)]);
        let out = site_of(&w, &Verdict::Keep, &tabs, 0, &drop);
        assert_eq!((out.site, out.hide_window_title), (None, true));
        let redact = policy(true, &[(RuleTarget::Domain, "example", RuleAction::Redact)]);
        let out = site_of(&w, &Verdict::Keep, &tabs, 0, &redact);
        let site = out.site.unwrap();
        assert_eq!(
            (site.domain.as_str(), site.url, site.title.as_deref()),
            ("docs.example.com", None, Some(REDACTED))
        );
        assert!(out.hide_window_title);
        // A title rule that redacts the window redacts the page title and the URL too.
        let site = site_of(&w, &Verdict::Redact, &tabs, 0, &policy(true, &[])).site.unwrap();
        assert_eq!((site.url, site.title.as_deref()), (None, Some(REDACTED)));
        // A dropped window has no site.
        assert_eq!(site_of(&w, &Verdict::Drop, &tabs, 0, &policy(true, &[])).site, None);
    }
}
