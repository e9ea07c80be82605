//! What every handler shares: the store, the object store, the clock, the rate limiter.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::objects::ObjectStore;
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::store::Store;

/// Shared, cheaply clonable application state.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Screenshot bytes.
    pub objects: Arc<dyn ObjectStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Rate limits.
    pub limiter: RateLimiter,
    /// Longest time a request may take, body included.
    pub request_timeout: Duration,
    /// Process metrics.
    pub metrics: crate::metrics::Metrics,
    /// Agent calls per company awaiting the rollup.
    pub requests: crate::usage::RequestCounts,
    /// Failed sign-ins per account and address.
    pub throttle: crate::auth::throttle::LoginThrottle,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend())
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
        limits: RateLimits,
        request_timeout: Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            objects,
            clock,
            limiter: RateLimiter::new(limits),
            request_timeout,
            metrics: Default::default(),
            requests: Default::default(),
            throttle: Default::default(),
        }))
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
