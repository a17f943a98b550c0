//! The per-client allowance of calls that cost Graph calls for an unauthenticated client
//! (`debug_token`, the code exchange, signup reports), by client address.

use crate::error::AppError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Calls per minute per client address.
pub struct ClientLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl ClientLimiter {
    /// `per_minute` calls per client address (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::keyed(Quota::per_minute(n)))
    }

    /// Counts one call of `client`; 429 with the wait when its allowance is spent.
    pub fn check(&self, client: IpAddr) -> Result<(), AppError> {
        self.0
            .check_key(&client)
            .map_err(|not_until| AppError::RateLimited {
                retry_after: not_until
                    .wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ))
                    .as_secs()
                    .max(1),
            })
    }

    /// Forgets clients that have their full allowance back.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}
