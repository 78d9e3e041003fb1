//! Where a connection is in its life.

/// Where a Connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started.
    Idle,
    /// Racing.
    Establishing,
    /// Ready: the race was won.
    Established,
    /// Closed (by the user or by a connection error).
    Closed,
    /// The race failed.
    Failed,
}
