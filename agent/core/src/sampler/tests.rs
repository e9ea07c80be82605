//! Sampler behaviour under fake probes, stepped second by second.

use super::*;
use crate::probe::fake::{FakeIdle, FakeWindow};
use worktrail_shared::policy::{Policy, PrivacyRule, RuleAction, RuleTarget, ScheduleWindow};

/// A whole minute (2027-01-15 08:00 UTC, a Friday).
const T0: i64 = 1_800_000_000_000;

struct Rig {
    window: FakeWindow,
    idle: FakeIdle,
    sampler: Sampler,
    policy: CompiledPolicy,
    now: i64,
    out: Vec<RecordBody>,
}

impl Rig {
    fn new(policy: Policy) -> Self {
        let (window, idle) = (FakeWindow::default(), FakeIdle::default());
        let sampler = Sampler::new(Box::new(window.clone()), Box::new(idle.clone()));
        Self {
            window,
            idle,
            sampler,
            policy: CompiledPolicy::new(policy, "UTC"),
            now: T0,
            out: vec![],
        }
    }

    /// Steps `secs` seconds; `input` says whether the user touches the keyboard each second.
    fn run(&mut self, secs: i64, input: bool) {
        for _ in 0..secs {
            self.now += 1000;
            if input {
                self.idle.set_idle_ms(0);
            } else {
                let idle = self.sampler.idle.idle().unwrap().idle_ms;
                self.idle.set_idle_ms(idle + 1000);
            }
            let records = self.sampler.sample_once(self.now, &self.policy);
            self.out.extend(records);
        }
    }

    fn stop(&mut self) {
        let records = self.sampler.stop(self.now);
        self.out.extend(records);
    }

    fn of_kind(&self, kind: &str) -> Vec<&RecordBody> {
        self.out.iter().filter(|r| r.kind() == kind).collect()
    }
}

fn short_idle_policy() -> Policy {
    Policy { idle_threshold_secs: 10, session_split_idle_secs: 60, ..Policy::default() }
}

fn app_span(r: &RecordBody) -> (i64, i64, String, Option<String>) {
    match r {
        RecordBody::AppSpan { start_ms, end_ms, app, title, .. } => {
            (*start_ms - T0, *end_ms - T0, app.clone(), title.clone())
        }
        other => panic!("not an app span: {other:?}"),
    }
}

#[test]
fn a_steady_window_is_one_span_and_a_switch_starts_another() {
    let mut rig = Rig::new(short_idle_policy());
    rig.window.focus("xterm", "build");
    rig.run(30, true);
    rig.window.focus("firefox", "docs");
    rig.run(15, true);
    rig.stop();
    let spans: Vec<_> = rig.of_kind("app_span").into_iter().map(app_span).collect();
    assert_eq!(
        spans,
        vec![
            (1_000, 31_000, "xterm".into(), Some("build".into())),
            (31_000, 45_000, "firefox".into(), Some("docs".into())),
        ]
    );
    let sessions = rig.of_kind("work_session");
    assert_eq!(
        sessions,
        vec![&RecordBody::WorkSession {
            start_ms: T0 + 1_000,
            end_ms: T0 + 45_000,
            end_reason: SessionEnd::Stop
        }]
    );
}

#[test]
fn idle_past_the_threshold_becomes_an_idle_span_from_the_last_input() {
    let mut rig = Rig::new(short_idle_policy());
    rig.window.focus("xterm", "build");
    rig.run(20, true); // input until T0+20s
    rig.run(25, false); // idle 25 s (threshold 10 s)
    rig.run(5, true);
    rig.stop();
    let spans: Vec<_> = rig.of_kind("app_span").into_iter().map(app_span).collect();
    // The span ends at the last input, not when idleness was noticed.
    assert_eq!(spans[0].0..spans[0].1, 1_000..20_000);
    // Input came back at T0+46s: the next span starts there.
    assert_eq!(spans[1].0, 46_000);
    assert_eq!(
        rig.of_kind("idle_span"),
        vec![&RecordBody::IdleSpan { start_ms: T0 + 20_000, end_ms: T0 + 46_000 }]
    );
    // A short idle does not split the session.
    assert_eq!(rig.of_kind("work_session").len(), 1);
}

#[test]
fn a_long_idle_splits_the_work_session_and_a_lock_ends_it() {
    let mut rig = Rig::new(short_idle_policy());
    rig.window.focus("xterm", "build");
    rig.run(10, true);
    rig.run(90, false); // past the 60 s split
    rig.run(10, true);
    rig.idle.set_locked(true);
    rig.run(1, true);
    let sessions = rig.of_kind("work_session");
    assert_eq!(
        sessions,
        vec![
            &RecordBody::WorkSession {
                start_ms: T0 + 1_000,
                end_ms: T0 + 10_000,
                end_reason: SessionEnd::Idle
            },
            &RecordBody::WorkSession {
                start_ms: T0 + 101_000,
                end_ms: T0 + 111_000,
                end_reason: SessionEnd::Lock
            },
        ]
    );
    // While locked nothing is attributed.
    let before = rig.out.len();
    rig.run(30, true);
    assert_eq!(rig.out.len(), before);
}

#[test]
fn activity_counts_the_seconds_with_input_per_minute() {
    let mut rig = Rig::new(short_idle_policy());
    rig.window.focus("xterm", "build");
    rig.run(20, true);
    rig.run(5, false);
    rig.run(35, true); // T0+60s: the first minute is complete
    rig.run(1, true);
    let activity = rig.of_kind("activity");
    assert_eq!(activity, vec![&RecordBody::Activity { minute_ms: T0, active_secs: 55 }]);
}

#[test]
fn privacy_rules_drop_and_redact_before_anything_is_recorded() {
    let policy = Policy {
        privacy_rules: vec![
            PrivacyRule {
                target: RuleTarget::App,
                pattern: "keepass".into(),
                action: RuleAction::Drop,
            },
            PrivacyRule {
                target: RuleTarget::Title,
                pattern: "*bank*".into(),
                action: RuleAction::Redact,
            },
        ],
        ..short_idle_policy()
    };
    let mut rig = Rig::new(policy);
    rig.window.focus("KeePassXC", "passwords.kdbx");
    rig.run(5, true);
    rig.window.focus("firefox", "My Bank - statement");
    rig.run(5, true);
    rig.stop();
    let spans: Vec<_> = rig.of_kind("app_span").into_iter().map(app_span).collect();
    assert_eq!(spans, vec![(6_000, 10_000, "firefox".into(), Some(REDACTED.into()))]);
    let all = format!("{:?}", rig.out);
    assert!(!all.contains("KeePass") && !all.contains("kdbx") && !all.contains("Bank"));
}

#[test]
fn nothing_is_captured_outside_the_schedule() {
    // T0 is a Friday (2027-01-15); allow only Mondays.
    let policy = Policy {
        schedule: vec![ScheduleWindow { weekday: 1, start_minute: 0, end_minute: 1440 }],
        ..short_idle_policy()
    };
    let mut rig = Rig::new(policy);
    rig.window.focus("xterm", "build");
    rig.run(30, true);
    rig.stop();
    assert!(rig.out.is_empty(), "{:?}", rig.out);
}

#[test]
fn overlong_titles_are_cut_to_the_wire_limit_on_a_character_boundary() {
    let mut rig = Rig::new(short_idle_policy());
    let title = "é".repeat(3000); // 6000 bytes
    rig.window.focus("xterm", &title);
    rig.run(3, true);
    rig.stop();
    let spans = rig.of_kind("app_span");
    let RecordBody::AppSpan { title: Some(t), .. } = spans[0] else { panic!("{spans:?}") };
    assert!(t.len() <= MAX_TEXT_BYTES && t.len() >= MAX_TEXT_BYTES - 1);
    assert!(t.chars().all(|c| c == 'é'));
}

#[test]
fn a_suspend_gap_ends_the_session_at_the_last_sample_and_attributes_nothing_to_it() {
    let mut rig = Rig::new(short_idle_policy());
    rig.window.focus("xterm", "build");
    rig.run(10, true);
    // The machine sleeps ten minutes; the user types right after waking up.
    rig.now += 600_000;
    rig.run(5, true);
    rig.stop();
    let sessions = rig.of_kind("work_session");
    assert_eq!(
        sessions[0],
        &RecordBody::WorkSession {
            start_ms: T0 + 1_000,
            end_ms: T0 + 10_000,
            end_reason: SessionEnd::Lock
        }
    );
    let spans: Vec<_> = rig.of_kind("app_span").into_iter().map(app_span).collect();
    assert_eq!(spans[0].0..spans[0].1, 1_000..10_000);
    assert!(spans[1].0 >= 611_000, "nothing attributed to the gap: {spans:?}");
    assert!(rig.of_kind("idle_span").is_empty());
}

#[test]
fn idle_after_a_suspend_starts_no_earlier_than_the_wake_up() {
    let mut rig = Rig::new(short_idle_policy());
    rig.window.focus("xterm", "build");
    rig.run(10, true);
    // Sleep for ten minutes with no input before or after: the X idle timer says 10+ min.
    rig.now += 600_000;
    rig.idle.set_idle_ms(600_000);
    rig.run(20, false);
    rig.run(2, true);
    let idle: Vec<_> = rig.of_kind("idle_span").into_iter().cloned().collect();
    let RecordBody::IdleSpan { start_ms, .. } = idle[0] else { panic!() };
    assert!(start_ms >= T0 + 611_000, "idle starts at the wake-up, not before the gap");
}

#[test]
fn texts_lose_nul_characters_and_are_cut_to_the_wire_limit_at_a_character_boundary() {
    assert_eq!(clip("a\0b\0".into()), "ab");
    let long = "é".repeat(MAX_TEXT_BYTES);
    let cut = clip(long);
    assert!(cut.len() <= MAX_TEXT_BYTES && cut.chars().all(|c| c == 'é'));
}
