//! RacingOptions: the RFC 8305 timing knobs, validated into the engine's
//! [`RaceConfig`].

use super::error::{Error, Result};
use crate::engine::race::RaceConfig;
use crate::engine::tree::RacingType;
use crate::engine::Micros;

/// Bounds of the Connection Attempt Delay, ms (RFC 8305 §5: at least 10 ms
/// recommended, at most 2 s).
pub const ATTEMPT_DELAY_RANGE_MS: (u32, u32) = (10, 2000);
/// Largest Resolution Delay accepted, ms.
pub const MAX_RESOLUTION_DELAY_MS: u32 = 2000;
/// Largest `race_count`.
pub const MAX_RACE_COUNT: u32 = 64;
/// Largest `first_address_family_count`.
pub const MAX_FIRST_ADDRESS_FAMILY_COUNT: u32 = 64;

/// Timing and counts of one race (RFC 8305 §3-§5). Start from the defaults
/// (C: racing_options_default(); Rust: RacingOptions::default()) and change
/// the fields you need.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RacingOptions {
    /// RFC 8305 §5 Connection Attempt Delay in ms: default 250, clamped to
    /// [10, 2000].
    pub connection_attempt_delay_ms: u32,
    /// RFC 8305 §3 Resolution Delay in ms: how long to wait for AAAA after
    /// A answered. Default 50, at most 2000.
    pub resolution_delay_ms: u32,
    /// RFC 8305 §4 First Address Family Count: default 1, 1 to 64.
    pub first_address_family_count: u32,
    /// Deadline of one attempt in ms, 0 for none (default). Attempts are
    /// NOT aborted at the attempt delay: an earlier attempt keeps running.
    pub attempt_timeout_ms: u32,
    /// Deadline of the whole race in ms, 0 for none (default).
    pub total_timeout_ms: u32,
    /// Attempts started at once at the head of the list, default 1, 1 to 64.
    pub race_count: u32,
}

impl Default for RacingOptions {
    fn default() -> Self {
        RacingOptions {
            connection_attempt_delay_ms: 250,
            resolution_delay_ms: 50,
            first_address_family_count: 1,
            attempt_timeout_ms: 0,
            total_timeout_ms: 0,
            race_count: 1,
        }
    }
}

impl RacingOptions {
    /// Check the options and convert them to the engine's µs.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the field out of range.
    pub fn to_config(&self) -> Result<RaceConfig> {
        let (lo, hi) = ATTEMPT_DELAY_RANGE_MS;
        if self.resolution_delay_ms > MAX_RESOLUTION_DELAY_MS {
            return Err(Error::InvalidOption("resolution_delay_ms must be at most 2000"));
        }
        if !(1..=MAX_FIRST_ADDRESS_FAMILY_COUNT).contains(&self.first_address_family_count) {
            return Err(Error::InvalidOption("first_address_family_count must be 1 to 64"));
        }
        if !(1..=MAX_RACE_COUNT).contains(&self.race_count) {
            return Err(Error::InvalidOption("race_count must be 1 to 64"));
        }
        let ms = |v: u32| v as u64 * 1000;
        let opt = |v: u32| if v == 0 { None } else { Some(ms(v)) };
        Ok(RaceConfig {
            connection_attempt_delay: ms(self.connection_attempt_delay_ms.clamp(lo, hi)),
            resolution_delay: ms(self.resolution_delay_ms),
            first_address_family_count: self.first_address_family_count as usize,
            attempt_timeout: opt(self.attempt_timeout_ms),
            total_timeout: opt(self.total_timeout_ms),
            race_count: self.race_count as usize,
            keep_losers: false,
        })
    }
}

/// How the branches of each level of the candidate tree race their
/// earlier siblings (RFC 9623 §4.3). The default is delayed racing at
/// every level, with the Connection Attempt Delay; branches that the
/// selection properties Avoid race as failover behind the others.
///
/// cbindgen:ignore
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchRacing {
    /// Between paths (interfaces, local endpoints).
    pub path: RacingType,
    /// Between protocols on one path.
    pub protocol: RacingType,
    /// Between endpoints (resolved addresses) of one protocol on one path:
    /// `Delayed(d)` staggers attempts by d (the Connection Attempt Delay),
    /// `Immediate` starts every address at once, `Failover` starts the next
    /// address only when the previous attempt failed.
    pub endpoint: RacingType,
}

impl BranchRacing {
    /// Delayed racing with `delay` µs at every level.
    pub fn delayed(delay: Micros) -> BranchRacing {
        let d = RacingType::Delayed(delay);
        BranchRacing { path: d, protocol: d, endpoint: d }
    }

    /// Apply the endpoint level to a race configuration.
    pub(crate) fn apply(&self, mut config: RaceConfig) -> RaceConfig {
        match self.endpoint {
            RacingType::Immediate => config.race_count = usize::MAX,
            RacingType::Delayed(d) => config.connection_attempt_delay = d,
            RacingType::Failover => config.connection_attempt_delay = Micros::MAX,
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rfc_8305() {
        let c = RacingOptions::default().to_config().unwrap();
        assert_eq!(c, RaceConfig::default());
    }

    #[test]
    fn attempt_delay_is_clamped_and_counts_checked() {
        let mut o = RacingOptions { connection_attempt_delay_ms: 1, ..Default::default() };
        assert_eq!(o.to_config().unwrap().connection_attempt_delay, 10_000);
        o.connection_attempt_delay_ms = 60_000;
        assert_eq!(o.to_config().unwrap().connection_attempt_delay, 2_000_000);
        o.race_count = 0;
        assert!(matches!(o.to_config(), Err(Error::InvalidOption(_))));
        o.race_count = 1;
        o.first_address_family_count = 0;
        assert!(matches!(o.to_config(), Err(Error::InvalidOption(_))));
        o.first_address_family_count = 1;
        o.resolution_delay_ms = 2001;
        assert!(matches!(o.to_config(), Err(Error::InvalidOption(_))));
    }
}
