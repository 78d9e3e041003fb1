//! The engine's tests, grouped by behaviour.
//!
//! Every test drives a state machine in virtual time: it hands events and
//! the time (µs, [`MS`](support::MS) = 1 ms) to a race, tree or policy and
//! checks the exact actions and deadlines that come out; nothing sleeps.
//!
//! - [`resolution`]: RFC 8305 §3, the Resolution Delay, answers arriving
//!   during the race, literal addresses.
//! - [`sorting`]: RFC 6724 §6 destination address selection and RFC 8305
//!   §4 interleaving, First Address Family Count.
//! - [`attempts`]: RFC 8305 §5, the Connection Attempt Delay, a failure
//!   starting the next attempt at once, attempt timeouts, `race_count`.
//! - [`failure`]: every attempt failed, resolution failed, total timeout,
//!   which error the race reports.
//! - [`race_end`]: first ready wins, the others are cancelled, reports
//!   after the end, the user's cancel, spares.
//! - [`invariants`]: randomized scenarios checked against the scheduler's
//!   invariants.
//! - [`candidate_tree`]: RFC 9623 §4.1 / §4.3, immediate, delayed and
//!   failover branches of paths and protocols.
//! - [`alpn_branches`]: protocol branches by ALPN (HEv3 draft §5.1, §6).
//! - [`hev3`]: HTTPS records (HEv3 draft §4.2–§7): aliases, hints,
//!   ports, ALPN, SvcPriority, ECH required.
//! - [`nat64`]: HEv3 -04 §8, addresses inside the NAT64 prefix (DNS64
//!   answers, synthesized A answers) sorted and interleaved as IPv4.
//! - [`selection`]: selection properties pruning and ordering branches.
//! - [`history`]: what earlier races taught (HEv3 §5.3, §6), and the
//!   10 ms rule of RFC 8305 §5.
//! - [`pool`] and [`group`]: the warm pool's and the connection group's
//!   policies.
//!
//! Helpers they share (addresses, queries, the default race, `drain`) are
//! in [`support`].

mod support;

mod alpn_branches;
mod attempts;
mod candidate_tree;
mod failure;
mod group;
mod hev3;
mod history;
mod invariants;
mod nat64;
mod pool;
mod race_end;
mod resolution;
mod selection;
mod sorting;
