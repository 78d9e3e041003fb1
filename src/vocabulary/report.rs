//! The race report: one entry per attempt, as reported after the fact.

use std::ffi::CStr;
use std::net::SocketAddr;
use std::sync::Arc;

/// How an attempt ended, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still connecting.
    Running,
    /// The winner.
    Won,
    /// Failed; `os_error` says why (ETIMEDOUT for an attempt timeout).
    Failed,
    /// Stopped because the race ended (another attempt won, the race
    /// failed, timed out, or was cancelled).
    Cancelled,
    /// Ready after another attempt won, and kept as a spare connection
    /// (connection pools, race_count above 1).
    Spare,
}

/// One attempt of a race, as reported after the fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptReport {
    /// The remote address and port attempted.
    pub address: SocketAddr,
    /// The protocol's name: "tcp", "udp" or a user protocol's.
    pub protocol: Arc<CStr>,
    /// The interface of the path, `None` for the default path.
    pub interface: Option<Arc<CStr>>,
    /// Start, µs since the race was initiated.
    pub started_us: u64,
    /// End, µs since the race was initiated; `None` while running. With a
    /// security stage, when the stage reported (its handshake's end).
    pub ended_us: Option<u64>,
    /// With a security stage (HEv3 §6.1): when the attempt's TCP
    /// connection came up, µs since the race was initiated; the stage ran
    /// from then to `ended_us`. `None` without a stage, or before.
    pub connected_us: Option<u64>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// errno of a failed attempt, else 0.
    pub os_error: i32,
}
