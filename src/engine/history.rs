//! What earlier races taught: per network, per destination address and
//! protocol, the smoothed RTT of its connections, whether it was used, and
//! a recent failure (RFC 8305 §4 and §5, RFC 9623 §9.2, HEv3 draft -04
//! §5.3 and §6). Pure data and decisions: the runtime feeds it what
//! attempts did and asks it how to sort and how long to wait.
//!
//! # Rules
//!
//! - **Key** ([`EntryKey`]): the network ([`NetworkKey`]: the path's
//!   interface and the source address's prefix, /64 for IPv6, /24 for
//!   IPv4), the destination address and port, and the protocol. A lookup
//!   for one network never sees another's entries (HEv3 §5.3: historical
//!   data MUST NOT be used across provisioning domains).
//! - **What is kept** ([`Entry`]): the smoothed RTT of the connections made
//!   (RFC 6298 §2: the first sample, then 7/8 old + 1/8 new), when it was
//!   last used, and the last failure (errno; an attempt overtaken by a later
//!   attempt that won counts as a timeout, ETIMEDOUT).
//! - **Sorting** ([`order`]): a destination that failed recently is known
//!   unreachable and sorts with RFC 6724 rule 1 (behind every usable one,
//!   so the other family leads when every address of a family failed);
//!   between rules 8 and 9 a lower RTT sorts first (a known RTT before an
//!   unknown one), then a destination used before sorts first; families
//!   still interleave (RFC 8305 §4).
//! - **Convergence** (HEv3 §5.3: clients MUST converge): a failure demotes
//!   its destination for [`HistoryConfig::failure_hold`] (30 s) or in the
//!   next [`HistoryConfig::failure_races`] − 1 (7) races on its network,
//!   whichever ends first: the 8th race after the failing one attempts it at
//!   its RFC 6724 turn again (a race counts on a network when it
//!   [`History::consult`]s it). A success clears the failure.
//! - **Connection Attempt Delay** ([`attempt_delay`]): [`RTT_FACTOR`] (3)
//!   times the largest smoothed RTT among the race's destinations that have
//!   one, the first retransmission time of RFC 6298 §2.2 after one sample
//!   (SRTT + 4 · SRTT/2), bounded to [`MIN_ATTEMPT_DELAY`] (100 ms) and
//!   [`MAX_ATTEMPT_DELAY`] (2 s) (RFC 8305 §5, HEv3 §6).
//! - **Bounds**: at most [`HistoryConfig::max_entries`] entries (the least
//!   recently updated goes first); an entry not updated for
//!   [`HistoryConfig::max_age`] (30 min) is dropped.

use super::{Candidate, Micros};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// RFC 8305 §5 Minimum Connection Attempt Delay, µs: the least a delay
/// computed from history may be.
///
/// cbindgen:ignore
pub const MIN_ATTEMPT_DELAY: Micros = 100_000;
/// RFC 8305 §5 Maximum Connection Attempt Delay, µs.
///
/// cbindgen:ignore
pub const MAX_ATTEMPT_DELAY: Micros = 2_000_000;
/// The Connection Attempt Delay from history is this many smoothed RTTs.
///
/// cbindgen:ignore
pub const RTT_FACTOR: u64 = 3;

/// A network, as history tells networks apart: the path's interface (a
/// hash of its name; 0 for the system's routing) and the prefix of the
/// source address the system picked (/64 for IPv6, /24 for IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetworkKey {
    /// [`interface_id`] of the path's interface name, 0 for none.
    pub interface: u32,
    /// The source address, masked to its prefix.
    pub prefix: IpAddr,
}

impl NetworkKey {
    /// The network of a path on `interface` whose source address is
    /// `source` (masked here).
    pub fn new(interface: u32, source: IpAddr) -> NetworkKey {
        let prefix = match source {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (!0u128 << 64))),
            },
        };
        NetworkKey { interface, prefix }
    }
}

/// A stable 32-bit id of an interface or protocol name (FNV-1a), 0 for
/// none: the same in every process, so exported history keeps its keys.
pub fn interface_id(name: Option<&[u8]>) -> u32 {
    let Some(name) = name else { return 0 };
    let mut h: u32 = 0x811c_9dc5;
    for b in name {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// What history is kept under: network, destination, protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryKey {
    /// The network the destination was reached (or not) from.
    pub network: NetworkKey,
    /// The destination address and port.
    pub addr: SocketAddr,
    /// The protocol ([`interface_id`] of its name).
    pub protocol: u32,
}

/// What one attempt did, as history records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Connected; the RTT sample, µs (the handshake time, or the
    /// transport's own smoothed RTT when it has one).
    Connected {
        /// RTT sample, µs.
        rtt: Micros,
    },
    /// Failed with this errno (ETIMEDOUT for a timeout, or for an attempt
    /// overtaken by a later one that won).
    Failed(i32),
    /// Known to the race but not attempted (it won before): the race still
    /// counts on the destination's network, nothing else changes.
    NotAttempted,
}

/// The last failure of a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureMark {
    /// When, µs on the loop's clock.
    pub at: Micros,
    /// The network's race number when it failed.
    pub race: u64,
    /// Why.
    pub errno: i32,
}

/// What history keeps of one destination on one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Smoothed RTT, µs (RFC 6298 §2), if it ever connected.
    pub srtt: Option<u32>,
    /// When it last connected, µs on the loop's clock.
    pub last_success: Option<Micros>,
    /// The network's race number of its last connection.
    pub success_race: u64,
    /// Its last failure, cleared by a connection.
    pub failure: Option<FailureMark>,
    /// When the entry was last updated (for aging and eviction).
    pub updated: Micros,
}

/// The limits of a history store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Most entries kept (all networks together). Default 256.
    pub max_entries: usize,
    /// An entry not updated this long is dropped, µs. Default 30 min.
    pub max_age: Micros,
    /// A failure demotes its destination at most this long, µs. Default 30 s.
    pub failure_hold: Micros,
    /// ... and at most until this many races on its network have followed
    /// the failing one (the last of them attempts it again). Default 8.
    pub failure_races: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { max_entries: 256, max_age: 30 * 60 * 1_000_000, failure_hold: 30_000_000, failure_races: 8 }
    }
}

/// What a race learns of one destination (see [`History::hint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    /// Smoothed RTT, µs.
    pub srtt: Option<u32>,
    /// It connected before on this network.
    pub used: bool,
    /// It failed recently (within the convergence bounds): sorted as
    /// unreachable.
    pub failed: Option<i32>,
    /// Races on this network since it last connected or failed.
    pub races_ago: u64,
    /// Time since the entry's last update, µs.
    pub age: Micros,
}

/// The history of one loop: every network it raced on.
#[derive(Clone, Debug, Default)]
pub struct History {
    config: HistoryConfig,
    entries: HashMap<EntryKey, Entry>,
    /// Races recorded per network (the clock of `failure_races`).
    races: HashMap<NetworkKey, u64>,
    /// The driver's id of the last race counted per network.
    last_race: HashMap<NetworkKey, u64>,
}

impl History {
    /// An empty store with these limits.
    pub fn new(config: HistoryConfig) -> History {
        History { config, entries: HashMap::new(), races: HashMap::new(), last_race: HashMap::new() }
    }

    /// Its limits.
    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of memory it holds (its tables' capacity), an estimate.
    pub fn memory_bytes(&self) -> usize {
        let e = std::mem::size_of::<(EntryKey, Entry)>() + 1;
        let r = std::mem::size_of::<(NetworkKey, u64)>() + 1;
        self.entries.capacity() * e + (self.races.capacity() + self.last_race.capacity()) * r
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.entries = HashMap::new();
        self.races = HashMap::new();
        self.last_race = HashMap::new();
    }

    /// Race `race` (the driver's id) looks at `network`: it counts as one
    /// race there (once per race), so that a destination it did not need
    /// to attempt still converges (see [`HistoryConfig::failure_races`]).
    pub fn consult(&mut self, network: NetworkKey, race: u64) {
        if self.last_race.insert(network, race) != Some(race) {
            *self.races.entry(network).or_insert(0) += 1;
        }
    }

    /// Races recorded on `network`.
    pub fn races_on(&self, network: &NetworkKey) -> u64 {
        self.races.get(network).copied().unwrap_or(0)
    }

    /// The entry of `key`, if kept and not expired at `now`.
    pub fn entry(&self, key: &EntryKey, now: Micros) -> Option<&Entry> {
        self.entries.get(key).filter(|e| now.saturating_sub(e.updated) < self.config.max_age)
    }

    /// What a race should know of `key` at `now`; `None` when history has
    /// nothing (or only expired data) for it.
    pub fn hint(&self, key: &EntryKey, now: Micros) -> Option<Hint> {
        let e = self.entry(key, now)?;
        let races = self.races_on(&key.network);
        let failed = e.failure.filter(|f| {
            // The race asking has consulted the network (see `consult`):
            // it is the (races - f.race)th after the one that failed.
            now.saturating_sub(f.at) < self.config.failure_hold
                && races.saturating_sub(f.race) < self.config.failure_races
        });
        let last = e.failure.map_or(e.success_race, |f| f.race.max(e.success_race));
        Some(Hint {
            srtt: e.srtt,
            used: e.last_success.is_some(),
            failed: failed.map(|f| f.errno),
            races_ago: races.saturating_sub(last),
            age: now.saturating_sub(e.updated),
        })
    }

    /// Record one race's attempts at `now`: each network they were made on
    /// counts one more race, then each observation updates its entry.
    pub fn record_race(&mut self, now: Micros, observations: &[(EntryKey, Observation)]) {
        let mut counted: Vec<NetworkKey> = Vec::new();
        for (key, _) in observations {
            if !counted.contains(&key.network) {
                counted.push(key.network);
                *self.races.entry(key.network).or_insert(0) += 1;
            }
        }
        self.record_all(now, observations);
    }

    /// Record the attempts of race `race` (the driver's id), which
    /// [`History::consult`]ed some networks already: those count it once.
    pub fn record_race_of(&mut self, now: Micros, race: u64, observations: &[(EntryKey, Observation)]) {
        for (key, _) in observations {
            self.consult(key.network, race);
        }
        self.record_all(now, observations);
    }

    fn record_all(&mut self, now: Micros, observations: &[(EntryKey, Observation)]) {
        for (key, observation) in observations {
            self.record(now, key, *observation);
        }
    }

    /// Update the entry of `key` with one observation (part of the race
    /// the network last counted).
    fn record(&mut self, now: Micros, key: &EntryKey, observation: Observation) {
        if observation == Observation::NotAttempted {
            return;
        }
        let race = self.races_on(&key.network);
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let e = self.entries.entry(*key).or_insert(Entry {
            srtt: None,
            last_success: None,
            success_race: 0,
            failure: None,
            updated: now,
        });
        e.updated = now;
        match observation {
            Observation::Connected { rtt } => {
                let sample = rtt.min(u64::from(u32::MAX)) as u32;
                e.srtt = Some(match e.srtt {
                    None => sample,
                    Some(s) => ((u64::from(s) * 7 + u64::from(sample)) / 8) as u32,
                });
                e.last_success = Some(now);
                e.success_race = race;
                e.failure = None;
            }
            Observation::Failed(errno) => e.failure = Some(FailureMark { at: now, race, errno }),
            Observation::NotAttempted => {}
        }
    }

    /// Drop expired entries; if still full, the least recently updated.
    fn make_room(&mut self, now: Micros) {
        if self.entries.len() < self.config.max_entries {
            return;
        }
        self.expire(now);
        while self.entries.len() >= self.config.max_entries.max(1) {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.updated).map(|(k, _)| *k) else { break };
            self.entries.remove(&oldest);
        }
    }

    /// Drop every entry not updated for `max_age` at `now`, and the race
    /// counts of networks that have no entry left.
    pub fn expire(&mut self, now: Micros) {
        let max_age = self.config.max_age;
        self.entries.retain(|_, e| now.saturating_sub(e.updated) < max_age);
        let entries = &self.entries;
        self.races.retain(|n, _| entries.keys().any(|k| k.network == *n));
        let races = &self.races;
        self.last_race.retain(|n, _| races.contains_key(n));
    }

    /// Every live entry, with its key (in no particular order).
    pub fn entries(&self) -> impl Iterator<Item = (&EntryKey, &Entry)> {
        self.entries.iter()
    }

    /// Put an entry back (import): kept unless expired at `now`; the
    /// network's race count becomes at least `network_races`.
    pub fn insert(&mut self, now: Micros, key: EntryKey, entry: Entry, network_races: u64) {
        if now.saturating_sub(entry.updated) >= self.config.max_age {
            return;
        }
        if !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        let races = self.races.entry(key.network).or_insert(0);
        *races = (*races).max(network_races);
        self.entries.insert(key, entry);
    }
}

/// The Connection Attempt Delay that RTTs `srtts` (µs) call for: the
/// largest times [`RTT_FACTOR`], bounded to [[`MIN_ATTEMPT_DELAY`],
/// [`MAX_ATTEMPT_DELAY`]]; `None` without any RTT.
pub fn attempt_delay(srtts: impl Iterator<Item = u32>) -> Option<Micros> {
    let max = srtts.max()?;
    Some((u64::from(max) * RTT_FACTOR).clamp(MIN_ATTEMPT_DELAY, MAX_ATTEMPT_DELAY))
}

/// What a race keeps of history: the hints for its candidates, and
/// whether its Connection Attempt Delay may follow their RTTs (not when
/// the caller fixed it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaceHistory {
    /// The Connection Attempt Delay follows the RTTs of `hints`.
    pub adapt_delay: bool,
    /// Hints by destination address.
    pub hints: Vec<(SocketAddr, Hint)>,
}

impl RaceHistory {
    /// The hint for `addr`, if any.
    pub fn hint(&self, addr: &SocketAddr) -> Option<&Hint> {
        self.hints.iter().find(|(a, _)| a == addr).map(|(_, h)| h)
    }

    /// Add or replace the hint for `addr`.
    pub fn set(&mut self, addr: SocketAddr, hint: Hint) {
        match self.hints.iter_mut().find(|(a, _)| *a == addr) {
            Some(slot) => slot.1 = hint,
            None => self.hints.push((addr, hint)),
        }
    }

    /// The Connection Attempt Delay from these hints' RTTs, if it adapts
    /// and any has one.
    pub fn attempt_delay(&self) -> Option<Micros> {
        if !self.adapt_delay {
            return None;
        }
        attempt_delay(self.hints.iter().filter_map(|(_, h)| h.srtt))
    }
}

/// Sort `candidates` by RFC 6724 §6 with the history rules of HEv3 §5.3
/// (see the module documentation), then interleave the families (RFC
/// 8305 §4).
pub fn order(candidates: &[Candidate], first_address_family_count: usize, history: &RaceHistory) -> Vec<Candidate> {
    let mut v = candidates.to_vec();
    v.sort_by_cached_key(|c| {
        let h = history.hint(&c.addr);
        super::sort::key_with_history(
            c,
            h.is_some_and(|h| h.failed.is_some()),
            h.and_then(|h| h.srtt),
            h.is_some_and(|h| h.used),
        )
    });
    super::sort::interleave(&v, first_address_family_count)
}

/// The first line of the export format, with its version.
///
/// cbindgen:ignore
pub const EXPORT_HEADER: &str = "taps-racing-history 1";

/// Why an import was refused: the 1-based line number that could not be
/// read (1 for a wrong header or version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// The line that could not be read.
    pub line: usize,
}

/// `-` for none, else the number.
fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

impl History {
    /// The store as text, version 1: the header line [`EXPORT_HEADER`],
    /// then one line per entry, fields separated by a space:
    ///
    /// `d <interface> <prefix> <address:port> <protocol> <srtt_us> <success_age_ms> <success_races_ago> <failure_age_ms> <failure_races_ago> <errno> <updated_age_ms>`
    ///
    /// `<interface>` and `<protocol>` are [`interface_id`]s in hex, ages
    /// count back from `now` (clocks differ between processes), `-` stands
    /// for "none" (no RTT, no success, no failure). Lines starting with
    /// `#` are comments.
    pub fn export(&self, now: Micros) -> String {
        let mut out = String::from(EXPORT_HEADER);
        out.push('\n');
        out.push_str("# d interface prefix address protocol srtt_us success_age_ms success_races_ago failure_age_ms failure_races_ago errno updated_age_ms\n");
        let ms = |t: Micros| now.saturating_sub(t) / 1000;
        for (k, e) in &self.entries {
            let races = self.races_on(&k.network);
            let addr = k.addr;
            let f = e.failure;
            out.push_str(&format!(
                "d {:x} {} {addr} {:x} {} {} {} {} {} {} {}\n",
                k.network.interface,
                k.network.prefix,
                k.protocol,
                opt(e.srtt),
                opt(e.last_success.map(ms)),
                races.saturating_sub(e.success_race),
                opt(f.map(|f| ms(f.at))),
                opt(f.map(|f| races.saturating_sub(f.race))),
                f.map_or(0, |f| f.errno),
                ms(e.updated),
            ));
        }
        out
    }

    /// Add the entries of `text` (see [`History::export`]) at `now`:
    /// expired ones are skipped, an entry already kept is replaced. Returns
    /// how many entries were read (expired ones included).
    ///
    /// # Errors
    /// [`ImportError`] naming the first line that is not of the format;
    /// nothing is taken then.
    pub fn import(&mut self, text: &str, now: Micros) -> Result<usize, ImportError> {
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(EXPORT_HEADER) {
            return Err(ImportError { line: 1 });
        }
        let mut parsed = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            parsed.push(parse_line(line, now, &self.config).ok_or(ImportError { line: i + 2 })?);
        }
        let n = parsed.len();
        for (key, entry, races) in parsed.into_iter().flatten() {
            self.insert(now, key, entry, races);
        }
        Ok(n)
    }
}

/// One `d` line of the export format: the key, the entry, and the races
/// its network had counted (the most races ago it mentions).
/// `None` for a line not of the format, `Some(None)` for an expired entry.
/// Ages count back from `now`; a failure older than the failure hold is
/// dropped here (so that a young clock, which cannot count back that far,
/// does not make it recent).
fn parse_line(line: &str, now: Micros, config: &HistoryConfig) -> Option<Option<(EntryKey, Entry, u64)>> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 12 || f[0] != "d" {
        return None;
    }
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let num = |s: &str| -> Option<Option<u64>> { if s == "-" { Some(None) } else { s.parse().ok().map(Some) } };
    let back = |ms: u64| now.saturating_sub(ms.saturating_mul(1000));
    let network = NetworkKey::new(hex(f[1])?, f[2].parse().ok()?);
    let key = EntryKey { network, addr: f[3].parse().ok()?, protocol: hex(f[4])? };
    let srtt = num(f[5])?.map(|v| u32::try_from(v).ok()).map_or(Some(None), |v| v.map(Some))?;
    let success_age = num(f[6])?;
    let success_ago: u64 = f[7].parse().ok()?;
    let failure_age = num(f[8])?;
    let failure_ago = num(f[9])?;
    let errno: i32 = f[10].parse().ok()?;
    let updated_age: u64 = f[11].parse().ok()?;
    if updated_age.saturating_mul(1000) >= config.max_age {
        return Some(None); // expired: read, not kept
    }
    let updated = back(updated_age);
    // Race numbers count up from the network's races as imported: the
    // largest "races ago" seen on the line, plus one.
    let races = success_ago.max(failure_ago.unwrap_or(0)) + 1;
    let failure = match (failure_age, failure_ago) {
        (Some(age), Some(_)) if age.saturating_mul(1000) >= config.failure_hold => None,
        (Some(age), Some(ago)) => Some(FailureMark { at: back(age), race: races - ago, errno }),
        (None, None) => None,
        _ => return None,
    };
    let entry = Entry {
        srtt,
        last_success: success_age.map(back),
        success_race: races - success_ago,
        failure,
        updated,
    };
    Some(Some((key, entry, races)))
}
