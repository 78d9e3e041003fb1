//! The policy of a warm connection pool: when to race, how many attempts,
//! where a ready connection goes, how long to back off.
//!
//! Pure: the driver tells it what happened (a caller waits, a race ended,
//! a connection became ready or was lost) and asks it what to do. Races
//! are of two kinds: on demand (a caller waits: `race_count` attempts at
//! once) and refill (nobody waits, the buffer is below its size:
//! `refill_race_count` attempts, 1 by default: refill conservatively). When
//! every attempt of a race fails, the next race waits for the backoff,
//! which grows (× multiplier, up to the maximum, ± jitter) until a race
//! succeeds, then resets.

use super::Micros;

/// A pool's settings, validated by the API layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Ready connections to keep warm (the refill target).
    pub buffer_size: usize,
    /// Most connections the buffer holds (spares beyond it are closed).
    pub max_size: usize,
    /// Attempts raced at once when a caller waits.
    pub race_count: usize,
    /// Attempts raced at once to refill the buffer.
    pub refill_race_count: usize,
    /// First backoff after a failed race, µs.
    pub backoff_initial: Micros,
    /// Growth of the backoff per failed race, in percent (200 = ×2).
    pub backoff_multiplier_percent: u32,
    /// Largest backoff, µs.
    pub backoff_max: Micros,
    /// Random spread of each backoff, in percent of it (± this much).
    pub backoff_jitter_percent: u32,
    /// Buffered connections older than this are closed and replaced.
    pub max_idle: Option<Micros>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            buffer_size: 0,
            max_size: 8,
            race_count: 3,
            refill_race_count: 1,
            backoff_initial: 1_000_000,
            backoff_multiplier_percent: 200,
            backoff_max: 60_000_000,
            backoff_jitter_percent: 0,
            max_idle: None,
        }
    }
}

/// Why a race was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceKind {
    /// A caller waits.
    OnDemand,
    /// The buffer is below its size.
    Refill,
}

/// Where a ready connection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// To the caller that has waited longest.
    Waiter,
    /// Into the buffer.
    Buffer,
    /// Nowhere: close it (the buffer is full).
    Dispose,
}

/// The pool's counts and backoff.
#[derive(Debug)]
pub struct PoolPolicy {
    config: PoolConfig,
    waiting: usize,
    /// Creation time of each buffered connection, oldest first.
    buffered: Vec<Micros>,
    on_demand: usize,
    refill: usize,
    backoff: Micros,
    /// The wait actually applied (the backoff with its jitter).
    backoff_wait: Micros,
    backoff_until: Option<Micros>,
    rng: u64,
}

impl PoolPolicy {
    /// A pool with nothing buffered, nobody waiting. `seed` drives the
    /// jitter.
    pub fn new(config: PoolConfig, seed: u64) -> PoolPolicy {
        PoolPolicy {
            config,
            waiting: 0,
            buffered: Vec::new(),
            on_demand: 0,
            refill: 0,
            backoff: 0,
            backoff_wait: 0,
            backoff_until: None,
            rng: seed | 1,
        }
    }

    /// A caller asks for a connection. `true`: take the oldest buffered
    /// one now (the caller does not wait); `false`: it waits.
    pub fn acquire(&mut self) -> bool {
        if self.buffered.is_empty() {
            self.waiting += 1;
            false
        } else {
            self.buffered.remove(0);
            true
        }
    }

    /// A connection became ready (a race's winner or a spare) at `now`:
    /// where it goes. The counts follow the answer.
    pub fn place(&mut self, now: Micros) -> Placement {
        if self.waiting > 0 {
            self.waiting -= 1;
            Placement::Waiter
        } else if self.buffered.len() < self.config.max_size.max(self.config.buffer_size) {
            self.buffered.push(now);
            Placement::Buffer
        } else {
            Placement::Dispose
        }
    }

    /// A race of `kind` ended; `won` if it produced a connection. A failed
    /// race starts (or grows) the backoff and returns how many of the
    /// callers waiting (the oldest) should be told it failed: those no race
    /// left in flight can serve.
    pub fn race_ended(&mut self, now: Micros, kind: RaceKind, won: bool) -> usize {
        match kind {
            RaceKind::OnDemand => self.on_demand = self.on_demand.saturating_sub(1),
            RaceKind::Refill => self.refill = self.refill.saturating_sub(1),
        }
        if won {
            self.backoff = 0;
            self.backoff_wait = 0;
            self.backoff_until = None;
            return 0;
        }
        self.backoff = if self.backoff == 0 {
            self.config.backoff_initial
        } else {
            (self.backoff.saturating_mul(self.config.backoff_multiplier_percent as u64) / 100).min(self.config.backoff_max)
        };
        let wait = self.jittered(self.backoff);
        self.backoff_wait = wait;
        self.backoff_until = Some(now.saturating_add(wait));
        self.waiting.saturating_sub(self.on_demand + self.refill)
    }

    /// A waiting caller gave up.
    pub fn cancel_wait(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// `n` callers that waited were told their race failed.
    pub fn waiters_failed(&mut self, n: usize) {
        self.waiting = self.waiting.saturating_sub(n);
    }

    /// The wait now in force (µs, jitter applied; 0 when none), and until
    /// when.
    pub fn backoff(&self) -> (Micros, Option<Micros>) {
        (self.backoff_wait, self.backoff_until)
    }

    /// Races to start at `now`: (kind, attempts). None while backing off.
    pub fn races_to_start(&mut self, now: Micros) -> Vec<(RaceKind, usize)> {
        if self.backoff_until.is_some_and(|t| t > now) {
            return Vec::new();
        }
        self.backoff_until = None;
        let mut out = Vec::new();
        // One on-demand race per waiting caller (spares serve the others
        // sooner and fill the buffer).
        while self.waiting > self.on_demand {
            self.on_demand += 1;
            out.push((RaceKind::OnDemand, self.config.race_count.max(1)));
        }
        if self.waiting == 0 && self.buffered.len() + self.refill < self.config.buffer_size && self.on_demand == 0 {
            self.refill += 1;
            out.push((RaceKind::Refill, self.config.refill_race_count.max(1)));
        }
        out
    }

    /// A buffered connection was lost (failed, or taken away by the
    /// driver): index `i` in buffer order.
    pub fn lost(&mut self, i: usize) {
        if i < self.buffered.len() {
            self.buffered.remove(i);
        }
    }

    /// Buffered connections too old at `now`: their indices, oldest first;
    /// they are removed from the counts.
    pub fn expired(&mut self, now: Micros) -> Vec<usize> {
        let Some(max) = self.config.max_idle else { return Vec::new() };
        let n = self.buffered.iter().take_while(|&&t| t.saturating_add(max) <= now).count();
        self.buffered.drain(..n);
        (0..n).collect()
    }

    /// The next time the pool has something to do on its own: the end of
    /// a backoff that blocks a race, or the next idle expiry.
    pub fn next_deadline(&self) -> Option<Micros> {
        let wants_race = self.waiting > 0 || self.buffered.len() + self.refill < self.config.buffer_size;
        let backoff = self.backoff_until.filter(|_| wants_race);
        let idle = self.config.max_idle.and_then(|m| self.buffered.first().map(|t| t.saturating_add(m)));
        [backoff, idle].into_iter().flatten().min()
    }

    /// Callers waiting.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Connections buffered.
    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// Races in flight.
    pub fn races_in_flight(&self) -> usize {
        self.on_demand + self.refill
    }

    pub(super) fn jittered(&mut self, d: Micros) -> Micros {
        let j = self.config.backoff_jitter_percent.min(100) as u64;
        if j == 0 || d == 0 {
            return d;
        }
        // xorshift64*: deterministic for a seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % 2001; // 0..=2000
        let spread = d / 100 * j; // ± spread
        let offset = spread * r / 1000; // 0..=2*spread
        d - spread + offset
    }
}
