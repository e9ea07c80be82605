//! The subscription state machine, evaluated against a clock.
//!
//! The stored status only changes when someone (the owner, the lifecycle job) acts, but the gate
//! must not wait for that: [`Subscription::effective_status`] derives the status at `now` from
//! the stored one and its dates, so a trial ends exactly at its end time even if no job has run.

use serde::{Deserialize, Serialize};
use worktrail_shared::ErrorCode;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A subscription's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// In a free trial until `trial_ends_at_ms`.
    Trialing,
    /// Paid until `period_end_at_ms`.
    Active,
    /// The paid period ended; agents keep working during the grace days.
    PastDue,
    /// Trial or paid period (and grace) over.
    Expired,
    /// Suspended by the operator (recorded in history; the gate reads the company's flag too).
    Suspended,
    /// Cancelled; data is kept for a grace period, then deleted.
    Cancelled,
}

impl SubscriptionStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Expired => "expired",
            SubscriptionStatus::Suspended => "suspended",
            SubscriptionStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "trialing" => SubscriptionStatus::Trialing,
            "active" => SubscriptionStatus::Active,
            "past_due" => SubscriptionStatus::PastDue,
            "expired" => SubscriptionStatus::Expired,
            "suspended" => SubscriptionStatus::Suspended,
            "cancelled" => SubscriptionStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A company's current subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Stored status.
    pub status: SubscriptionStatus,
    /// End of the trial, for trials.
    pub trial_ends_at_ms: Option<i64>,
    /// End of the current paid period, for paid subscriptions.
    pub period_end_at_ms: Option<i64>,
    /// Days after the paid period ends during which agents keep working (past_due).
    pub grace_days: i64,
}

impl Subscription {
    /// A new trial of `days` starting at `now_ms`.
    pub fn trial(now_ms: i64, days: i64) -> Self {
        Self {
            status: SubscriptionStatus::Trialing,
            trial_ends_at_ms: Some(now_ms + days * DAY_MS),
            period_end_at_ms: None,
            grace_days: 7,
        }
    }

    /// The status at `now_ms`, taking dates that passed since the last stored change into account.
    pub fn effective_status(&self, now_ms: i64) -> SubscriptionStatus {
        match self.status {
            SubscriptionStatus::Trialing => match self.trial_ends_at_ms {
                Some(end) if now_ms >= end => SubscriptionStatus::Expired,
                _ => SubscriptionStatus::Trialing,
            },
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => {
                match self.period_end_at_ms {
                    Some(end) if now_ms >= end + self.grace_days * DAY_MS => {
                        SubscriptionStatus::Expired
                    }
                    Some(end) if now_ms >= end => SubscriptionStatus::PastDue,
                    _ => self.status,
                }
            }
            other => other,
        }
    }

    /// True when the subscription never had a paid period (its expiry is a trial's).
    fn is_trial(&self) -> bool {
        self.period_end_at_ms.is_none() && self.trial_ends_at_ms.is_some()
    }

    /// Steps 2 and 3 of the agent gate (SPEC 4.3), in order: suspension first, then the
    /// subscription. `Ok` means agents may use the service at `now_ms`.
    pub fn gate(&self, company_suspended: bool, now_ms: i64) -> Result<(), ErrorCode> {
        if company_suspended || self.status == SubscriptionStatus::Suspended {
            return Err(ErrorCode::CompanySuspended);
        }
        match self.effective_status(now_ms) {
            SubscriptionStatus::Trialing
            | SubscriptionStatus::Active
            | SubscriptionStatus::PastDue => Ok(()),
            SubscriptionStatus::Expired if self.is_trial() => Err(ErrorCode::TrialExpired),
            SubscriptionStatus::Expired => Err(ErrorCode::SubscriptionExpired),
            SubscriptionStatus::Cancelled => Err(ErrorCode::SubscriptionCancelled),
            SubscriptionStatus::Suspended => Err(ErrorCode::CompanySuspended),
        }
    }

    /// The stored change the lifecycle job should record at `now_ms`, if the effective status
    /// has moved on from the stored one.
    pub fn due_transition(&self, now_ms: i64) -> Option<SubscriptionStatus> {
        let effective = self.effective_status(now_ms);
        (effective != self.status).then_some(effective)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn paid(end: i64) -> Subscription {
        Subscription {
            status: SubscriptionStatus::Active,
            trial_ends_at_ms: Some(T0),
            period_end_at_ms: Some(end),
            grace_days: 3,
        }
    }

    #[test]
    fn a_trial_ends_exactly_at_its_end_time() {
        let sub = Subscription::trial(T0, 14);
        let end = T0 + 14 * DAY_MS;
        assert_eq!(sub.gate(false, end - 1), Ok(()));
        assert_eq!(sub.gate(false, end), Err(ErrorCode::TrialExpired));
        assert_eq!(sub.due_transition(end - 1), None);
        assert_eq!(sub.due_transition(end), Some(SubscriptionStatus::Expired));
    }

    #[test]
    fn a_paid_period_falls_to_past_due_then_expires_after_the_grace() {
        let end = T0 + 30 * DAY_MS;
        let sub = paid(end);
        assert_eq!(sub.effective_status(end - 1), SubscriptionStatus::Active);
        assert_eq!(sub.effective_status(end), SubscriptionStatus::PastDue);
        assert_eq!(sub.gate(false, end + DAY_MS), Ok(()), "past_due still works in the grace");
        assert_eq!(sub.effective_status(end + 3 * DAY_MS), SubscriptionStatus::Expired);
        assert_eq!(sub.gate(false, end + 3 * DAY_MS), Err(ErrorCode::SubscriptionExpired));
    }

    #[test]
    fn suspension_is_checked_before_the_subscription() {
        let sub = Subscription::trial(T0, 1);
        let later = T0 + 2 * DAY_MS;
        assert_eq!(sub.gate(false, later), Err(ErrorCode::TrialExpired));
        assert_eq!(sub.gate(true, later), Err(ErrorCode::CompanySuspended));
        let suspended = Subscription { status: SubscriptionStatus::Suspended, ..sub };
        assert_eq!(suspended.gate(false, T0), Err(ErrorCode::CompanySuspended));
    }

    #[test]
    fn cancelled_and_stored_expired_are_rejected_with_their_codes() {
        let cancelled = Subscription { status: SubscriptionStatus::Cancelled, ..paid(T0 + DAY_MS) };
        assert_eq!(cancelled.gate(false, T0), Err(ErrorCode::SubscriptionCancelled));
        let expired_paid = Subscription { status: SubscriptionStatus::Expired, ..paid(T0) };
        assert_eq!(expired_paid.gate(false, T0), Err(ErrorCode::SubscriptionExpired));
        let expired_trial =
            Subscription { status: SubscriptionStatus::Expired, ..Subscription::trial(T0, 1) };
        assert_eq!(expired_trial.gate(false, T0), Err(ErrorCode::TrialExpired));
    }

    #[test]
    fn statuses_round_trip_through_their_database_spelling() {
        for s in [
            SubscriptionStatus::Trialing,
            SubscriptionStatus::Active,
            SubscriptionStatus::PastDue,
            SubscriptionStatus::Expired,
            SubscriptionStatus::Suspended,
            SubscriptionStatus::Cancelled,
        ] {
            assert_eq!(SubscriptionStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SubscriptionStatus::parse("bogus"), None);
    }
}
