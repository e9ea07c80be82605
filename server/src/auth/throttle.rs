//! Login throttling: failed sign-ins are counted per account and per client address over a
//! sliding window; past the limit, further attempts are refused (429) until old failures age
//! out. Counts live in this process (per replica), like the agent rate limits.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Failures allowed per account within [`WINDOW_MS`].
pub const PER_ACCOUNT: usize = 5;
/// Failures allowed per client address within [`WINDOW_MS`].
pub const PER_ADDRESS: usize = 20;
/// The sliding window.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// Failure history.
#[derive(Debug, Default)]
pub struct LoginThrottle(Mutex<HashMap<String, VecDeque<i64>>>);

impl LoginThrottle {
    fn keys(account: &str, address: &str) -> [(String, usize); 2] {
        [
            (format!("a:{}", account.trim().to_lowercase()), PER_ACCOUNT),
            (format!("i:{address}"), PER_ADDRESS),
        ]
    }

    /// `Err(seconds)` when this account or address must wait before trying again.
    pub fn check(&self, account: &str, address: &str, now_ms: i64) -> Result<(), u64> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0;
        for (key, limit) in Self::keys(account, address) {
            if let Some(q) = map.get_mut(&key) {
                while q.front().is_some_and(|t| *t <= now_ms - WINDOW_MS) {
                    q.pop_front();
                }
                if q.len() >= limit {
                    let oldest = q.front().copied().unwrap_or(now_ms);
                    wait = wait.max(((oldest + WINDOW_MS - now_ms + 999) / 1000).max(1) as u64);
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    /// Records a failed attempt.
    pub fn failed(&self, account: &str, address: &str, now_ms: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|t| *t > now_ms - WINDOW_MS));
        }
        for (key, _) in Self::keys(account, address) {
            map.entry(key).or_default().push_back(now_ms);
        }
    }

    /// Forgets an account's failures after a successful sign-in.
    pub fn succeeded(&self, account: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("a:{}", account.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_failures_until_they_age_out() {
        let t = LoginThrottle::default();
        for i in 0..PER_ACCOUNT as i64 {
            assert!(t.check("Ada@x", "1.2.3.4", i).is_ok());
            t.failed("Ada@x", "1.2.3.4", i);
        }
        assert_eq!(t.check("ada@x", "5.6.7.8", 10), Err(900), "same account, other address");
        assert!(t.check("bob@x", "1.2.3.4", 10).is_ok(), "other account, same address");
        assert!(t.check("ada@x", "1.2.3.4", WINDOW_MS + 10).is_ok(), "aged out");
        t.succeeded("ada@x");
        assert!(t.check("ada@x", "1.2.3.4", 10).is_ok());
    }

    #[test]
    fn an_address_is_locked_after_failures_across_accounts() {
        let t = LoginThrottle::default();
        for i in 0..PER_ADDRESS {
            t.failed(&format!("user{i}@x"), "9.9.9.9", 0);
        }
        assert!(t.check("fresh@x", "9.9.9.9", 1).is_err());
        assert!(t.check("fresh@x", "8.8.8.8", 1).is_ok());
    }
}
