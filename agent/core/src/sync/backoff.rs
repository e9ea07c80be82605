//! Retry timing: capped exponential backoff with full jitter (2 s doubling to a 10 min ceiling,
//! or the ceiling set in the agent's config; the wait is uniform between zero and the ceiling),
//! never shorter than a server's `Retry-After`.

use rand::Rng;
use std::time::Duration;

/// First ceiling.
pub const BASE: Duration = Duration::from_secs(2);
/// Largest ceiling.
pub const CAP: Duration = Duration::from_secs(600);

/// The retry state of one kind of request.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { attempt: 0, cap: CAP }
    }
}

impl Backoff {
    /// Backoff whose largest ceiling is `cap` (at least one second) instead of [`CAP`].
    pub fn with_cap(cap: Duration) -> Self {
        Self { attempt: 0, cap: cap.max(Duration::from_secs(1)) }
    }

    /// The ceiling of the next wait.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u64 << self.attempt.min(20);
        Duration::from_millis((BASE.as_millis() as u64).saturating_mul(factor)).min(self.cap)
    }

    /// The wait before the next attempt after a failure, honouring `retry_after`.
    pub fn next_delay(&mut self, rng: &mut impl Rng, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling().as_millis() as u64;
        self.attempt = self.attempt.saturating_add(1);
        let jittered = Duration::from_millis(rng.random_range(0..=ceiling));
        jittered.max(retry_after.unwrap_or_default())
    }

    /// A success: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ceilings_double_from_two_seconds_and_stop_at_ten_minutes() {
        let mut b = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut ceilings = vec![];
        for _ in 0..15 {
            ceilings.push(b.ceiling().as_secs());
            b.next_delay(&mut rng, None);
        }
        assert_eq!(&ceilings[..6], &[2, 4, 8, 16, 32, 64]);
        assert_eq!(ceilings[9], 600);
        assert!(ceilings.iter().all(|&c| c <= 600));
        b.reset();
        assert_eq!(b.ceiling(), BASE);
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut b = Backoff { attempt: 12, cap: CAP };
            let d = b.next_delay(&mut rng, None);
            assert!(d <= CAP);
            seen.insert(d.as_secs() / 60);
        }
        // Full jitter spreads over the whole range, not just near the ceiling.
        assert!(seen.len() >= 8, "{seen:?}");
        let mut b = Backoff::default();
        for _ in 0..100 {
            assert!(b.next_delay(&mut rng, None) <= CAP);
        }
    }

    #[test]
    fn a_configured_ceiling_replaces_ten_minutes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut b = Backoff::with_cap(Duration::from_secs(3));
        let ceilings: Vec<_> = (0..6)
            .map(|_| {
                let c = b.ceiling().as_secs();
                assert!(b.next_delay(&mut rng, None) <= Duration::from_secs(3));
                c
            })
            .collect();
        assert_eq!(ceilings, [2, 3, 3, 3, 3, 3]);
        assert_eq!(Backoff::with_cap(Duration::ZERO).ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Backoff::default();
        let d = b.next_delay(&mut rng, Some(Duration::from_secs(7)));
        assert!(d >= Duration::from_secs(7) && d <= Duration::from_secs(7).max(BASE));
    }
}
