//! Plans and their limits.

use worktrail_shared::PlanId;

/// A subscription plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Id.
    pub id: PlanId,
    /// Short unique code, e.g. `starter`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Most employees a company on this plan may track.
    pub max_seats: i64,
    /// Days raw activity and screenshots are kept.
    pub retention_days: i64,
    /// Whether screenshots may be taken at all.
    pub screenshots_allowed: bool,
    /// Price per seat and month, in cents.
    pub price_cents: i64,
    /// Length of a new company's trial.
    pub trial_days: i64,
}

impl Plan {
    /// True when a company with `seats_used` employees may add one more.
    pub fn has_free_seat(&self, seats_used: i64) -> bool {
        seats_used < self.max_seats
    }

    /// Checks a plan's numbers before it is stored.
    pub fn validate(&self) -> Result<(), String> {
        if self.code.is_empty()
            || !self.code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("plan code must be letters, digits and dashes".into());
        }
        if self.name.trim().is_empty() {
            return Err("plan name must not be empty".into());
        }
        if self.max_seats < 1 {
            return Err("a plan needs at least one seat".into());
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err("retention must be between 1 and 3650 days".into());
        }
        if self.price_cents < 0 || self.trial_days < 0 {
            return Err("price and trial days cannot be negative".into());
        }
        Ok(())
    }

    /// The plans the demo and a fresh installation start with.
    pub fn defaults() -> Vec<Plan> {
        let plan = |code: &str, name: &str, seats, retention, shots, price, trial| Plan {
            id: PlanId::new(),
            code: code.into(),
            name: name.into(),
            max_seats: seats,
            retention_days: retention,
            screenshots_allowed: shots,
            price_cents: price,
            trial_days: trial,
        };
        vec![
            plan("trial", "Trial", 10, 30, true, 0, 14),
            plan("starter", "Starter", 25, 90, false, 500, 14),
            plan("business", "Business", 500, 365, true, 900, 14),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_seat_can_be_taken_but_not_one_more() {
        let plan = &Plan::defaults()[0];
        assert!(plan.has_free_seat(plan.max_seats - 1));
        assert!(!plan.has_free_seat(plan.max_seats));
    }

    #[test]
    fn default_plans_are_valid_and_bad_numbers_are_refused() {
        for p in Plan::defaults() {
            p.validate().unwrap();
        }
        let mut bad = Plan::defaults().remove(0);
        bad.max_seats = 0;
        assert!(bad.validate().is_err());
        bad.max_seats = 1;
        bad.code = "no spaces".into();
        assert!(bad.validate().is_err());
    }
}
