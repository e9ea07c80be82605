//! The words the tray shows: the status line (menu and tooltip) and "how long ago".

use worktrail_agent_core::AgentStatus;
use worktrail_agent_core::agent::service::TrayState;

/// The status line for `s` in `state`.
pub fn status_line(s: &AgentStatus, state: TrayState) -> String {
    let company = s.enrollment.as_ref().map(|e| e.company_name.as_str()).unwrap_or_default();
    if let (Some(why), true) = (&s.storage_error, s.enrolled) {
        return format!("Not recording: {why}");
    }
    match state {
        TrayState::NotEnrolled => "Not set up yet: open Worktrail to connect".into(),
        TrayState::Tracking => format!("Tracking for {company}"),
        TrayState::Paused => "Paused: nothing is recorded".into(),
        TrayState::Offline => {
            "Tracking, offline: kept on this computer until the server answers".into()
        }
        TrayState::Blocked => match &s.blocked {
            Some(b) => format!("Stopped: {} ({})", b.message, b.code),
            None => "Stopped by the server".into(),
        },
    }
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// "12 s ago", "3 min ago", "2 h ago", "never".
pub fn ago(ms: Option<i64>, now_ms: i64) -> String {
    let Some(ms) = ms else { return "never".into() };
    let secs = ((now_ms - ms) / 1000).max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use worktrail_agent_core::agent::Blocked;
    use worktrail_agent_core::agent::service::TrayState as T;
    use worktrail_agent_core::queue::QueueStatus;
    use worktrail_shared::{DeviceId, ErrorCode};

    #[test]
    fn a_blocked_agent_says_why_with_the_servers_code() {
        let mut s = AgentStatus {
            enrolled: true,
            device_id: DeviceId::new(),
            enrollment: None,
            capturing: false,
            paused: false,
            blocked: None,
            queue: QueueStatus::default(),
            secret_store: "memory",
            last_error: None,
            storage_error: None,
        };
        assert_eq!(status_line(&s, T::Blocked), "Stopped by the server");
        s.blocked = Some(Blocked {
            code: ErrorCode::TrialExpired,
            message: "the trial has ended".into(),
            since_ms: 0,
        });
        assert_eq!(status_line(&s, T::Blocked), "Stopped: the trial has ended (trial_expired)");
        assert!(status_line(&s, T::Offline).contains("offline"));
        assert!(status_line(&s, T::NotEnrolled).contains("open Worktrail"));
    }

    #[test]
    fn last_sync_reads_in_seconds_minutes_hours_or_never() {
        let now = 10_000_000;
        assert_eq!(ago(None, now), "never");
        assert_eq!(ago(Some(now - 12_000), now), "12 s ago");
        assert_eq!(ago(Some(now - 180_000), now), "3 min ago");
        assert_eq!(ago(Some(now - 7_200_000), now), "2 h ago");
        assert_eq!(ago(Some(now + 5_000), now), "0 s ago");
    }
}
