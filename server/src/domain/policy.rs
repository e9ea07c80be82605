//! Bounds on a collection policy, checked before an admin's change is stored.

use worktrail_shared::policy::Policy;

/// Why a policy is refused, in words for the admin.
pub fn validate(p: &Policy) -> Result<(), String> {
    let within = |what: &str, v: u32, lo: u32, hi: u32| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(format!("{what} must be between {lo} and {hi}"))
        }
    };
    within("the sample interval (s)", p.sample_interval_secs, 1, 60)?;
    within("the idle threshold (s)", p.idle_threshold_secs, 30, 7200)?;
    within("the session split (s)", p.session_split_idle_secs, 60, 86_400)?;
    within("the longest span (s)", p.max_span_secs, 60, 86_400)?;
    within("the sync interval (s)", p.sync_interval_secs, 10, 3600)?;
    within("the screenshot interval (s)", p.screenshots.interval_secs, 60, 86_400)?;
    within("the screenshot width (px)", p.screenshots.max_width, 320, 3840)?;
    within("the JPEG quality", u32::from(p.screenshots.jpeg_quality), 10, 95)?;
    if let Some(days) = p.retention_days {
        within("the retention (days)", days, 1, 3650)?;
    }
    if p.privacy_rules.len() > 200 {
        return Err("at most 200 privacy rules".into());
    }
    for rule in &p.privacy_rules {
        if rule.pattern.trim().is_empty() || rule.pattern.len() > 200 {
            return Err("a privacy rule's pattern needs 1–200 characters".into());
        }
    }
    for w in &p.schedule {
        if !(1..=7).contains(&w.weekday) || w.start_minute >= w.end_minute || w.end_minute > 1440 {
            return Err("a schedule window needs a weekday 1–7 and start < end ≤ 1440".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_out_of_range_values_are_named() {
        assert_eq!(validate(&Policy::default()), Ok(()));
        let mut p = Policy::default();
        p.screenshots.interval_secs = 5;
        assert!(validate(&p).unwrap_err().contains("screenshot interval"));
    }
}
