//! When to take screenshots: once per policy interval, at a random moment inside it, so
//! employees cannot predict it. The interval grid is aligned to the epoch. Samples are discrete,
//! so a moment is honoured at the first sample at or after it (even if that sample already falls
//! in the next interval); an interval missed entirely (the agent was stopped or asleep) is
//! skipped, not made up for.

use rand::Rng;

/// The screenshot timetable.
#[derive(Debug, Default)]
pub struct ScreenshotSchedule {
    interval_ms: i64,
    due_at: Option<i64>,
}

impl ScreenshotSchedule {
    fn pick(&mut self, from: i64, interval_ms: i64, rng: &mut impl Rng) {
        let start = from.div_euclid(interval_ms) * interval_ms;
        self.due_at = Some(rng.random_range(from.max(start)..start + interval_ms));
    }

    /// True at most once per interval of `interval_ms`: at the first call at or after that
    /// interval's random moment.
    pub fn due(&mut self, now_ms: i64, interval_ms: i64, rng: &mut impl Rng) -> bool {
        let interval_ms = interval_ms.max(1000);
        let Some(due_at) = self.due_at.filter(|_| self.interval_ms == interval_ms) else {
            self.interval_ms = interval_ms;
            self.pick(now_ms, interval_ms, rng);
            return self.due_at == Some(now_ms);
        };
        if now_ms < due_at {
            return false;
        }
        // Next: the interval after the one just served, or now's if that one is long gone.
        let next_start = ((due_at.div_euclid(interval_ms) + 1) * interval_ms)
            .max(now_ms.div_euclid(interval_ms) * interval_ms);
        let from = if next_start <= now_ms { now_ms + 1 } else { next_start };
        if from >= next_start + interval_ms {
            self.pick(next_start + interval_ms, interval_ms, rng);
        } else {
            self.due_at = Some(rng.random_range(from..next_start + interval_ms));
        }
        true
    }

    /// The moment chosen for the next screenshot.
    pub fn due_at(&self) -> Option<i64> {
        self.due_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn one_screenshot_per_interval_at_a_moment_that_varies() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut s = ScreenshotSchedule::default();
        let interval = 600_000;
        let mut taken = vec![];
        for now in (0..=interval * 20).step_by(1000) {
            if s.due(now, interval, &mut rng) {
                taken.push(now);
            }
        }
        assert!((20..=21).contains(&taken.len()), "{taken:?}");
        for (k, t) in taken.iter().take(20).enumerate() {
            let k = k as i64;
            assert!((k * interval..=(k + 1) * interval).contains(t), "shot {k} at {t}");
        }
        let offsets: std::collections::HashSet<_> = taken.iter().map(|t| t % interval).collect();
        assert!(offsets.len() > 15, "moments should be random: {offsets:?}");
    }

    #[test]
    fn sampling_as_slowly_as_the_interval_still_takes_one_per_interval() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut s = ScreenshotSchedule::default();
        let shots = (0..50).filter(|k| s.due(k * 1000 + 437, 1000, &mut rng)).count();
        assert!(shots >= 48, "{shots}");
    }

    #[test]
    fn starting_mid_interval_picks_a_moment_in_the_rest_of_it() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let mut s = ScreenshotSchedule::default();
            s.due(590_000, 600_000, &mut rng);
            assert!((590_000..600_000).contains(&s.due_at().unwrap()));
        }
    }

    #[test]
    fn a_long_gap_skips_the_missed_intervals() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut s = ScreenshotSchedule::default();
        s.due(0, 10_000, &mut rng);
        assert!(s.due(1_000_000, 10_000, &mut rng), "the pending moment is honoured late");
        // The next moment is in the interval after now, not in the ones slept through.
        let next = s.due_at().unwrap();
        assert!((1_000_001..1_010_000).contains(&next), "{next}");
        assert!(!s.due(1_000_000, 10_000, &mut rng));
    }
}
