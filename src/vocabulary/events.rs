//! What pools and groups report as it happens, for observability, and
//! the callbacks that hear it.

/// What happened in a pool, for observability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolEventKind {
    /// A race started with `count` attempts.
    RaceStarted,
    /// An attempt became ready after `elapsed_us`.
    AttemptSucceeded,
    /// An attempt failed after `elapsed_us` with `os_error`.
    AttemptFailed,
    /// A race was won `elapsed_us` after it started.
    RaceWon,
    /// Every attempt of a race failed (`os_error`: the last errno).
    RaceFailed,
    /// A ready connection went into the buffer.
    ConnectionBuffered,
    /// A connection was closed: the buffer was full, it was idle too
    /// long, or it failed while buffered.
    ConnectionDisposed,
    /// The next race waits `elapsed_us` µs.
    Backoff,
}

/// One pool event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolEvent {
    /// What happened.
    pub kind: PoolEventKind,
    /// Attempts started (RaceStarted), else 0.
    pub count: u32,
    /// A duration in µs, per kind.
    pub elapsed_us: u64,
    /// An errno (AttemptFailed, RaceFailed), else 0.
    pub os_error: i32,
}

/// A pool's event callback, called on the loop's thread.
pub type PoolEventHandler = Box<dyn FnMut(&PoolEvent) + Send>;

/// What happened in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupEventKind {
    /// A member joined (`member`; `connect_time_us`: its connect time).
    MemberJoined,
    /// A member failed (`member`; `streams`: how many it carried, now
    /// failed); it left the rotation, a rebuild follows.
    MemberFailed,
    /// Every member has failed; the group keeps rebuilding. Reported once
    /// per outage.
    AllFailed,
    /// A member joined after AllFailed (`member`).
    Recovered,
    /// A rebuild race failed; the next waits `connect_time_us` µs.
    RebuildFailed,
}

/// One group event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupEvent {
    /// What happened.
    pub kind: GroupEventKind,
    /// The member concerned (0 when none).
    pub member: u64,
    /// Streams the failed member carried (MemberFailed), else 0.
    pub streams: u32,
    /// A duration in µs, per kind.
    pub connect_time_us: u64,
}

/// A group's event callback, called on the loop's thread.
pub type GroupEventHandler = Box<dyn FnMut(&GroupEvent) + Send>;
