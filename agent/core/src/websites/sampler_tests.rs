//! The website join inside the sampler, under fake probes: site spans open and close with the
//! browser's focus, end at the last input when idle starts, and a hidden domain hides the
//! browser window's title in the app span as well.

use super::site::Family;
use super::tabs::Tab;
use crate::policy::{CompiledPolicy, REDACTED};
use crate::probe::fake::{FakeIdle, FakeWindow};
use crate::sampler::Sampler;
use worktrail_shared::api::{RecordBody, SiteSource};
use worktrail_shared::policy::{Policy, PrivacyRule, RuleAction, RuleTarget};

const T0: i64 = 1_800_000_000_000;

fn rig() -> (Sampler, FakeWindow, FakeIdle) {
    let (window, idle) = (FakeWindow::default(), FakeIdle::default());
    (Sampler::new(Box::new(window.clone()), Box::new(idle.clone())), window, idle)
}

fn sites(records: &[RecordBody]) -> Vec<(i64, i64, String, SiteSource)> {
    records
        .iter()
        .filter_map(|r| match r {
            RecordBody::WebsiteSpan { start_ms, end_ms, domain, source, .. } => {
                Some((start_ms - T0, end_ms - T0, domain.clone(), *source))
            }
            _ => None,
        })
        .collect()
}

fn report(s: &Sampler, url: &str, at: i64) {
    let tab = Tab { url: url.into(), title: Some("t".into()) };
    s.tabs().report(Family::Chromium, Some(tab), at);
}

#[test]
fn site_time_follows_the_browser_focus_and_ends_at_the_last_input_when_idle_starts() {
    let (mut s, window, idle) = rig();
    let p = CompiledPolicy::new(Policy { idle_threshold_secs: 10, ..Policy::default() }, "UTC");
    let mut out = vec![];
    report(&s, "https://a.example/x?y", T0);
    window.focus("xterm", "shell");
    for t in 1..=3 {
        out.extend(s.sample_once(T0 + t * 1000, &p));
    }
    window.focus("chromium", "t - Chromium");
    for t in 4..=8 {
        out.extend(s.sample_once(T0 + t * 1000, &p));
    }
    window.focus("xterm", "shell");
    out.extend(s.sample_once(T0 + 9_000, &p));
    window.focus("chromium", "t - Chromium");
    for t in 10..=25 {
        // Input stops after second 12.
        idle.set_idle_ms(if t <= 12 { 0 } else { ((t - 12) * 1000) as u64 });
        out.extend(s.sample_once(T0 + t * 1000, &p));
    }
    out.extend(s.stop(T0 + 26_000));
    let ext = SiteSource::Extension;
    assert_eq!(
        sites(&out),
        vec![(4_000, 9_000, "a.example".into(), ext), (10_000, 12_000, "a.example".into(), ext)]
    );
}

#[test]
fn a_dropped_domain_leaves_no_site_and_no_page_title_in_the_app_span() {
    let (mut s, window, _idle) = rig();
    let rule = PrivacyRule {
        target: RuleTarget::Domain,
        pattern: "bank.example".into(),
        action: RuleAction::Drop,
    };
    let p = CompiledPolicy::new(Policy { privacy_rules: vec![rule], ..Policy::default() }, "UTC");
    report(&s, "https://my.bank.example/accounts", T0);
    window.focus("chromium", "Balance 1234 - Chromium");
    let mut out = vec![];
    for t in 1..=3 {
        out.extend(s.sample_once(T0 + t * 1000, &p));
    }
    out.extend(s.stop(T0 + 4_000));
    assert!(sites(&out).is_empty(), "{out:?}");
    let titles: Vec<_> = out
        .iter()
        .filter_map(|r| match r {
            RecordBody::AppSpan { title, .. } => title.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(titles, vec![REDACTED.to_owned()]);
}

#[test]
fn without_the_extension_a_title_showing_a_host_makes_a_guessed_site() {
    let (mut s, window, _idle) = rig();
    let p = CompiledPolicy::default();
    window.focus("firefox", "docs.rs/axum/latest — Mozilla Firefox");
    let mut out = vec![];
    for t in 1..=3 {
        out.extend(s.sample_once(T0 + t * 1000, &p));
    }
    out.extend(s.stop(T0 + 4_000));
    assert_eq!(sites(&out), vec![(1_000, 4_000, "docs.rs".into(), SiteSource::Title)]);
}
