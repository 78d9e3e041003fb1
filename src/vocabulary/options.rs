//! Racing options: the RFC 8305 timing knobs of one race
//! ([`RacingOptions`]) and how the branches of each level of the candidate
//! tree race their siblings ([`BranchRacing`], [`RacingType`]). Their
//! conversion to the engine's `RaceConfig` is in `api::options`.

use super::time::Micros;

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
/// (`RacingOptions::default()`) and change the fields you need.
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

/// How a branch starts relative to its earlier siblings (RFC 9623 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RacingType {
    /// At the same time as the previous sibling.
    Immediate,
    /// This long (µs) after the previous sibling started, or at once when
    /// it failed.
    Delayed(Micros),
    /// Only after every earlier sibling failed.
    Failover,
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
}
