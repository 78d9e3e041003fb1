//! RacingOptions: the RFC 8305 timing knobs, validated into the engine's
//! [`RaceConfig`]. The types are the vocabulary's; their conversions to the
//! engine's configuration are here.

use super::error::{Error, Result};
use crate::engine::race::RaceConfig;
use crate::engine::tree::RacingType;
use crate::engine::Micros;

pub use crate::vocabulary::options::{
    BranchRacing, RacingOptions, ATTEMPT_DELAY_RANGE_MS, MAX_FIRST_ADDRESS_FAMILY_COUNT, MAX_RACE_COUNT,
    MAX_RESOLUTION_DELAY_MS,
};

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

impl BranchRacing {
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
