//! When to take screenshots: once at a random moment inside each policy interval, so employees
//! cannot predict it. The interval grid is aligned to the epoch; an agent that starts in the middle
//! of an interval picks its moment in what remains of it.

use rand::Rng;

/// The screenshot timetable.
#[derive(Debug, Default)]
pub struct ScreenshotSchedule {
    interval_start: Option<i64>,
    due_at: i64,
    taken: bool,
}

impl ScreenshotSchedule {
    /// True exactly once per interval of `interval_ms`, at or after that interval's random moment.
    pub fn due(&mut self, now_ms: i64, interval_ms: i64, rng: &mut impl Rng) -> bool {
        let interval_ms = interval_ms.max(1000);
        let start = now_ms.div_euclid(interval_ms) * interval_ms;
        if self.interval_start != Some(start) {
            let from = now_ms.max(start);
            self.interval_start = Some(start);
            self.due_at = rng.random_range(from..start + interval_ms);
            self.taken = false;
        }
        if !self.taken && now_ms >= self.due_at {
            self.taken = true;
            return true;
        }
        false
    }

    /// The moment chosen for the current interval.
    pub fn due_at(&self) -> i64 {
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
        for now in (0..interval * 20).step_by(1000) {
            if s.due(now, interval, &mut rng) {
                taken.push(now);
            }
        }
        assert_eq!(taken.len(), 20);
        for (k, t) in taken.iter().enumerate() {
            assert!((k as i64 * interval..(k as i64 + 1) * interval).contains(t));
        }
        let offsets: std::collections::HashSet<_> = taken.iter().map(|t| t % interval).collect();
        assert!(offsets.len() > 15, "moments should be random: {offsets:?}");
    }

    #[test]
    fn starting_mid_interval_picks_a_moment_in_the_rest_of_it() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let mut s = ScreenshotSchedule::default();
            s.due(590_000, 600_000, &mut rng);
            assert!((590_000..600_000).contains(&s.due_at()));
        }
    }
}
