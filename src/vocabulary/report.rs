//! The race report: one entry per attempt, as reported after the fact,
//! and, for a race that asked HTTPS records (HEv3), the services it used
//! and the DNS answers it got.

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
    /// Not attempted: no path of the race can route to the address (HEv3
    /// -04 §4.1); `os_error` says why (ENETUNREACH, EHOSTUNREACH, EACCES
    /// for a prohibit route, ENODEV for a missing interface, EAFNOSUPPORT
    /// for a local address of the other family). Listed after the
    /// attempts, with `started_us` = `ended_us` = when it was left out.
    Pruned,
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
    /// errno of a failed attempt, or why a pruned candidate was left out;
    /// else 0.
    pub os_error: i32,
    /// The ALPN ids the attempt's protocol or security stage was given
    /// (HEv3 draft §6.1): those usable with its HTTPS service (RFC 9460
    /// §7.1.2, filtered by the Preconnection's ALPN list, in its order),
    /// kept to the ids its protocol serves when the Preconnection gave it
    /// some (HEv3 draft §5.1, §6); empty for an address no HTTPS record
    /// gave.
    pub alpn: Vec<String>,
    /// SvcPriority of the attempt's HTTPS service; `None` for an address
    /// no HTTPS record gave.
    pub svc_priority: Option<u16>,
    /// The address came from an ipv4hint/ipv6hint (RFC 9460 §7.3), not
    /// from an A/AAAA answer.
    pub from_hint: bool,
    /// For an IPv6 address the race synthesized from an IPv4 literal
    /// under the loop's NAT64 prefix (RFC 6052, RFC 8305 §7.1): that IPv4
    /// address; else `None`.
    pub synthesized_from: Option<std::net::Ipv4Addr>,
    /// What the loop's history knew of the destination when the race
    /// sorted it (HEv3 draft -04 §5.3); `None` when it knew nothing.
    pub history: Option<HistoryNote>,
}

/// What the loop's history knew of an attempt's destination on this
/// network when the race sorted it (HEv3 draft -04 §5.3): shown as "12.0
/// ms RTT, used, 3 race(s) ago".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryNote {
    /// Smoothed RTT of earlier connections, µs.
    pub srtt_us: Option<u32>,
    /// It connected before on this network.
    pub used: bool,
    /// It failed recently, with this errno: sorted behind the others.
    pub failed: Option<i32>,
    /// Races on this network since it last connected or failed.
    pub races_ago: u64,
}

impl std::fmt::Display for HistoryNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.failed, self.srtt_us) {
            (Some(errno), _) => write!(f, "failed recently (errno {errno})")?,
            (None, Some(srtt)) => write!(f, "{:.1} ms RTT", f64::from(srtt) / 1000.0)?,
            (None, None) => write!(f, "no RTT")?,
        }
        if self.used {
            write!(f, ", used")?;
        }
        write!(f, ", {} race(s) ago", self.races_ago)
    }
}

/// A DNS record type in the race report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// HTTPS (RFC 9460, type 65).
    Https,
    /// AAAA.
    Aaaa,
    /// A.
    A,
}

/// One DNS answer a race got (HEv3 draft §4.2: each answer is handled as
/// it comes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswerReport {
    /// The record type asked.
    pub record: RecordType,
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// The name asked (an alias target or a TargetName for some).
    pub name: String,
    /// Arrival, µs since the race was initiated.
    pub at_us: u64,
    /// The number of records (addresses, or HTTPS records), or the
    /// resolver's error code.
    pub result: Result<usize, i32>,
}

/// One HTTPS ServiceMode record a race used (skipped records are not
/// listed: HEv3 draft §6.2, RFC 9460 §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceReport {
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// SvcPriority (≥ 1).
    pub priority: u16,
    /// The effective TargetName.
    pub target: String,
    /// The "port" SvcParam.
    pub port: Option<u16>,
    /// The usable ALPN ids.
    pub alpn: Vec<String>,
    /// Whether it carried an ECH config.
    pub ech: bool,
}

/// What a race that asked HTTPS records learnt from DNS. Empty for a race
/// that asked none (its A/AAAA answers are in the debug log only: a race
/// in flight keeps no list for them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsReport {
    /// The usable ServiceMode records, in the order HEv3 §5 sorts them.
    pub services: Vec<ServiceReport>,
    /// Every DNS answer, in arrival order, including those taken up to
    /// one second after the race was won (they start no attempt).
    pub answers: Vec<DnsAnswerReport>,
}
