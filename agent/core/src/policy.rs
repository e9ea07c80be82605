//! The collection policy as the agent applies it: privacy rules and the weekly schedule, compiled
//! once when a policy arrives so that every sample is checked cheaply.
//!
//! Invariant: a sample is checked here *before* it becomes a span, so a dropped app or a redacted
//! title never reaches the queue, the disk or the server.

use jiff::tz::TimeZone;
use worktrail_shared::policy::{Policy, PrivacyRule, RuleAction, RuleTarget};

/// What replaces a redacted title.
pub const REDACTED: &str = "[redacted]";

/// The verdict of the privacy rules on one window sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the sample as it is.
    Keep,
    /// Keep the app, replace the title with [`REDACTED`].
    Redact,
    /// Do not record the sample at all.
    Drop,
}

/// A privacy-rule pattern: case-insensitive, `*` matches any run of characters, otherwise a
/// substring match anywhere in the text.
#[derive(Clone, Debug)]
struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    fn new(pattern: &str) -> Self {
        let parts = pattern
            .to_lowercase()
            .split('*')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        Self { parts }
    }

    fn matches(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        let mut rest = text.as_str();
        for part in &self.parts {
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

#[derive(Clone, Debug)]
struct Rule {
    target: RuleTarget,
    pattern: Pattern,
    action: RuleAction,
}

/// A policy ready to apply.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// The policy as served.
    pub policy: Policy,
    rules: Vec<Rule>,
    tz: TimeZone,
}

impl CompiledPolicy {
    /// Compiles `policy`; `time_zone` is the company's IANA zone for the schedule (UTC when
    /// unknown).
    pub fn new(policy: Policy, time_zone: &str) -> Self {
        let tz = TimeZone::get(time_zone).unwrap_or_else(|_| {
            tracing::warn!(time_zone, "unknown time zone in policy; using UTC for the schedule");
            TimeZone::UTC
        });
        let rules = policy
            .privacy_rules
            .iter()
            .map(|PrivacyRule { target, pattern, action }| Rule {
                target: *target,
                pattern: Pattern::new(pattern),
                action: *action,
            })
            .collect();
        Self { policy, rules, tz }
    }

    /// The verdict on an app window: `Drop` wins over `Redact` wins over `Keep`.
    pub fn judge_window(&self, app: &str, exe: Option<&str>, title: &str) -> Verdict {
        let mut verdict = Verdict::Keep;
        for rule in &self.rules {
            let hit = match rule.target {
                RuleTarget::App => {
                    rule.pattern.matches(app) || exe.is_some_and(|e| rule.pattern.matches(e))
                }
                RuleTarget::Title => rule.pattern.matches(title),
                RuleTarget::Domain => false,
            };
            if hit {
                match rule.action {
                    RuleAction::Drop => return Verdict::Drop,
                    RuleAction::Redact => verdict = Verdict::Redact,
                }
            }
        }
        verdict
    }

    /// The verdict of the domain rules on a website's domain: `Drop` wins over `Redact`.
    pub fn judge_domain(&self, domain: &str) -> Verdict {
        let mut verdict = Verdict::Keep;
        for rule in self.rules.iter().filter(|r| r.target == RuleTarget::Domain) {
            if rule.pattern.matches(domain) {
                match rule.action {
                    RuleAction::Drop => return Verdict::Drop,
                    RuleAction::Redact => verdict = Verdict::Redact,
                }
            }
        }
        verdict
    }

    /// True when `now_ms` falls inside the weekly schedule (always, when it is empty).
    pub fn in_schedule(&self, now_ms: i64) -> bool {
        if self.policy.schedule.is_empty() {
            return true;
        }
        let Ok(ts) = jiff::Timestamp::from_millisecond(now_ms) else {
            return false;
        };
        let local = ts.to_zoned(self.tz.clone());
        let weekday = local.weekday().to_monday_one_offset() as u8;
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        self.policy
            .schedule
            .iter()
            .any(|w| w.weekday == weekday && w.start_minute <= minute && minute < w.end_minute)
    }
}

impl Default for CompiledPolicy {
    fn default() -> Self {
        Self::new(Policy::default(), "UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use worktrail_shared::policy::ScheduleWindow;

    fn with_rules(rules: &[(RuleTarget, &str, RuleAction)]) -> CompiledPolicy {
        let policy = Policy {
            privacy_rules: rules
                .iter()
                .map(|(t, p, a)| PrivacyRule { target: *t, pattern: (*p).into(), action: *a })
                .collect(),
            ..Policy::default()
        };
        CompiledPolicy::new(policy, "UTC")
    }

    #[test]
    fn title_rules_match_case_insensitive_substrings_and_wildcards() {
        let p = with_rules(&[(RuleTarget::Title, "bank*statement", RuleAction::Redact)]);
        assert_eq!(p.judge_window("firefox", None, "My BANK - March Statement"), Verdict::Redact);
        assert_eq!(p.judge_window("firefox", None, "statement from bank"), Verdict::Keep);
        assert_eq!(p.judge_window("firefox", None, "news"), Verdict::Keep);
    }

    #[test]
    fn app_rules_match_the_name_or_the_executable() {
        let p = with_rules(&[(RuleTarget::App, "keepass", RuleAction::Drop)]);
        assert_eq!(p.judge_window("KeePassXC", None, "db"), Verdict::Drop);
        assert_eq!(p.judge_window("Vault", Some("/usr/bin/keepassxc"), "db"), Verdict::Drop);
        assert_eq!(p.judge_window("xterm", Some("/usr/bin/xterm"), "keepass"), Verdict::Keep);
    }

    #[test]
    fn drop_wins_over_redact_whatever_the_rule_order() {
        let p = with_rules(&[
            (RuleTarget::Title, "secret", RuleAction::Redact),
            (RuleTarget::App, "xterm", RuleAction::Drop),
        ]);
        assert_eq!(p.judge_window("xterm", None, "secret"), Verdict::Drop);
        assert_eq!(p.judge_window("code", None, "secret"), Verdict::Redact);
    }

    #[test]
    fn domain_rules_match_domains_only() {
        let p = with_rules(&[
            (RuleTarget::Domain, "bank.example", RuleAction::Drop),
            (RuleTarget::Domain, "*.health.*", RuleAction::Redact),
        ]);
        assert_eq!(p.judge_domain("online.BANK.example"), Verdict::Drop);
        assert_eq!(p.judge_domain("my.health.example"), Verdict::Redact);
        assert_eq!(p.judge_domain("docs.example"), Verdict::Keep);
        assert_eq!(p.judge_window("bank.example", None, "bank.example"), Verdict::Keep);
    }

    #[test]
    fn the_schedule_is_read_in_the_company_time_zone() {
        let policy = Policy {
            // Monday 09:00–17:00.
            schedule: vec![ScheduleWindow { weekday: 1, start_minute: 540, end_minute: 1020 }],
            ..Policy::default()
        };
        let p = CompiledPolicy::new(policy, "Europe/Berlin");
        // 2026-11-23 is a Monday; 08:30 UTC is 09:30 in Berlin (CET, UTC+1).
        let monday_0830_utc = jiff::Timestamp::from_second(1_795_422_600).unwrap();
        assert_eq!(monday_0830_utc.to_string(), "2026-11-23T08:30:00Z");
        assert!(p.in_schedule(monday_0830_utc.as_millisecond()));
        // 07:30 UTC is 08:30 in Berlin: before the window.
        assert!(!p.in_schedule(monday_0830_utc.as_millisecond() - 3_600_000));
        // Tuesday: no window.
        assert!(!p.in_schedule(monday_0830_utc.as_millisecond() + 86_400_000));
        assert!(CompiledPolicy::default().in_schedule(0));
    }
}
