//! The subscription lifecycle: trials end, paid periods fall to past_due and then expire.
//! The gate already judges the effective status at request time; this job makes the stored
//! status, the history and the audit log catch up. Each change is a compare-and-set on the
//! stored status, so a change is recorded once even if two runs race.

use super::JobError;
use crate::domain::subscription::Subscription;
use crate::state::AppState;
use crate::store::AuditEntry;

/// Records every subscription change due at `now_ms`; returns how many were recorded.
pub async fn run(state: &AppState, now_ms: i64) -> Result<u64, JobError> {
    let mut changed = 0;
    for (company, sub) in state.store.subscriptions_due(now_ms).await? {
        let Some(to_status) = sub.due_transition(now_ms) else { continue };
        let to = Subscription { status: to_status, ..sub.clone() };
        let audit = AuditEntry {
            actor: "system:lifecycle".into(),
            action: format!("subscription.{}", to_status.as_str()),
            detail_json: serde_json::json!({
                "from": sub.status.as_str(),
                "to": to_status.as_str(),
                "trial_ends_at_ms": sub.trial_ends_at_ms,
                "period_end_at_ms": sub.period_end_at_ms,
            })
            .to_string(),
            at_ms: now_ms,
        };
        if state.store.transition_subscription(company, sub.status, &to, &audit).await? {
            tracing::info!(company.id = %company, to = to_status.as_str(), "subscription changed");
            changed += 1;
        }
    }
    Ok(changed)
}
