//! The allowance of work that callers without a known credential can cause: token
//! inspections (`debug_token`) that miss the cache, code exchanges and signup reports. Each
//! client address has its own allowance (an IPv6 client by its /64, the smallest network one
//! subscriber gets, so rotating addresses inside it does not buy more), and the Graph calls
//! among them have global allowances (token checks and exchanges apart), so no number of
//! addresses can spend the partner's Graph budget, nor block real signups with made-up
//! tokens.

use crate::error::AppError;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

/// What a caller spends its allowance on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// A record written without a Graph call (a signup report): the client's own allowance.
    Record,
    /// `debug_token` of a token not in the cache: the client's allowance and the global one
    /// for token checks.
    TokenCheck,
    /// A code exchange: the client's allowance and the global one for exchanges, apart from
    /// token checks so that a flood of made-up tokens cannot block real signups.
    Exchange,
}

/// Per-client and global allowances of Graph calls, per minute.
pub struct GraphAllowance {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    token_checks: DefaultDirectRateLimiter,
    exchanges: DefaultDirectRateLimiter,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn refused(not_until: &NotUntil<<DefaultClock as governor::clock::Clock>::Instant>) -> AppError {
    AppError::RateLimited {
        retry_after: not_until
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1),
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64 (an IPv4-mapped
/// IPv6 address counts as the IPv4 address).
pub fn client_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl GraphAllowance {
    /// `per_client` calls per client, and `global` token checks and `global` code exchanges in
    /// all, per minute (each at least one).
    pub fn per_minute(per_client: u32, global: u32) -> Self {
        Self {
            per_client: RateLimiter::keyed(per_minute(per_client)),
            token_checks: RateLimiter::direct(per_minute(global)),
            exchanges: RateLimiter::direct(per_minute(global)),
        }
    }

    /// Counts one `kind` of call caused by `client`: 429 with the wait when its own allowance
    /// or the global one of that kind is spent. A client over its own allowance does not touch
    /// the global one.
    pub fn spend(&self, client: IpAddr, kind: Spend) -> Result<(), AppError> {
        self.per_client
            .check_key(&client_key(client))
            .map_err(|n| refused(&n))?;
        let global = match kind {
            Spend::Record => return Ok(()),
            Spend::TokenCheck => &self.token_checks,
            Spend::Exchange => &self.exchanges,
        };
        global.check().map_err(|n| {
            metrics::counter!("waba_global_allowance_refusals_total").increment(1);
            refused(&n)
        })
    }

    /// Forgets clients that have their full allowance back.
    pub fn forget_idle(&self) {
        self.per_client.retain_recent();
        self.per_client.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_global_allowance_holds_whatever_the_addresses() {
        let allowance = GraphAllowance::per_minute(5, 3);
        let spent: Vec<bool> = (1..=6u8)
            .map(|i| {
                allowance
                    .spend(IpAddr::from([192, 0, 2, i]), Spend::TokenCheck)
                    .is_ok()
            })
            .collect();
        assert_eq!(spent, [true, true, true, false, false, false]);
        // Exchanges have their own global allowance, and records none.
        for i in 7..=9u8 {
            assert!(
                allowance
                    .spend(IpAddr::from([192, 0, 2, i]), Spend::Exchange)
                    .is_ok()
            );
        }
        assert!(
            allowance
                .spend(IpAddr::from([192, 0, 2, 10]), Spend::Exchange)
                .is_err()
        );
        assert!(
            allowance
                .spend(IpAddr::from([192, 0, 2, 11]), Spend::Record)
                .is_ok()
        );
    }

    #[test]
    fn a_client_over_its_own_allowance_leaves_the_global_one_alone() {
        let allowance = GraphAllowance::per_minute(2, 3);
        let greedy = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..10 {
            let _ = allowance.spend(greedy, Spend::TokenCheck);
        }
        assert!(
            allowance
                .spend(IpAddr::from([192, 0, 2, 2]), Spend::TokenCheck)
                .is_ok()
        );
        assert!(allowance.spend(greedy, Spend::TokenCheck).is_err());
    }
}
