//! Token-bucket rate limits per device and per company (SPEC 4.3 step 5).
//!
//! Buckets live in this process's memory, so with several replicas each replica limits on its
//! own (the effective limit is the per-replica limit times the replicas behind the balancer).
//! Full buckets carry no information and are pruned, so memory follows the active devices.

use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// A bucket's shape: `burst` requests at once, refilled at `per_sec`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_sec: f64,
    /// Requests allowed at once.
    pub burst: f64,
}

/// The limits the gate applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// Per device.
    pub device: Rate,
    /// Per company (all its devices and enrolments together).
    pub company: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            device: Rate { per_sec: 2.0, burst: 120.0 },
            company: Rate { per_sec: 500.0, burst: 5000.0 },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// In-memory buckets keyed by device or company id.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(u8, Uuid), Bucket>>,
}

const PRUNE_ABOVE: usize = 100_000;

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limits: RateLimits) -> Self {
        Self { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token from the company's bucket and, when given, the device's. `Err(secs)` is
    /// how long to wait before retrying. A refused request takes no tokens.
    pub fn check(&self, company: Uuid, device: Option<Uuid>, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let limits = self.limits;
            buckets.retain(|(kind, _), b| {
                let rate = if *kind == 0 { limits.company } else { limits.device };
                refill(*b, rate, now_ms).tokens < rate.burst
            });
        }
        let mut wait = 0.0f64;
        let mut keys = vec![((0u8, company), self.limits.company)];
        if let Some(d) = device {
            keys.push(((1u8, d), self.limits.device));
        }
        let mut updated = Vec::with_capacity(2);
        for (key, rate) in keys {
            let bucket = buckets
                .get(&key)
                .map(|b| refill(*b, rate, now_ms))
                .unwrap_or(Bucket { tokens: rate.burst, at_ms: now_ms });
            if bucket.tokens < 1.0 {
                wait = wait.max((1.0 - bucket.tokens) / rate.per_sec);
            }
            updated.push((key, bucket));
        }
        if wait > 0.0 {
            return Err(wait.ceil().max(1.0) as u64);
        }
        for (key, mut bucket) in updated {
            bucket.tokens -= 1.0;
            buckets.insert(key, bucket);
        }
        Ok(())
    }
}

fn refill(b: Bucket, rate: Rate, now_ms: i64) -> Bucket {
    let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
    Bucket {
        tokens: (b.tokens + elapsed * rate.per_sec).min(rate.burst),
        at_ms: now_ms.max(b.at_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(device_burst: f64) -> RateLimiter {
        RateLimiter::new(RateLimits {
            device: Rate { per_sec: 0.5, burst: device_burst },
            company: Rate { per_sec: 100.0, burst: 100.0 },
        })
    }

    #[test]
    fn a_device_gets_its_burst_then_waits_for_the_refill() {
        let l = limiter(3.0);
        let (c, d) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            assert_eq!(l.check(c, Some(d), 0), Ok(()));
        }
        assert_eq!(l.check(c, Some(d), 0), Err(2), "one token at 0.5/s takes 2 s");
        assert_eq!(l.check(c, Some(d), 1_000), Err(1));
        assert_eq!(l.check(c, Some(d), 2_000), Ok(()));
        // Another device of the same company is not affected.
        assert_eq!(l.check(c, Some(Uuid::now_v7()), 2_000), Ok(()));
    }

    #[test]
    fn the_company_bucket_is_shared_by_its_devices() {
        let l = RateLimiter::new(RateLimits {
            device: Rate { per_sec: 10.0, burst: 10.0 },
            company: Rate { per_sec: 1.0, burst: 2.0 },
        });
        let c = Uuid::now_v7();
        assert!(l.check(c, Some(Uuid::now_v7()), 0).is_ok());
        assert!(l.check(c, None, 0).is_ok());
        assert_eq!(l.check(c, Some(Uuid::now_v7()), 0), Err(1));
    }
}
