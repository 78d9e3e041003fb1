//! What a user protocol is handed: the path an attempt runs on, and the
//! established connection it gets back to close.

use std::net::SocketAddr;
use std::os::fd::RawFd;

/// The path an attempt runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathInfo {
    /// Interface to use, if the path names one.
    pub interface: Option<String>,
    /// Local address and port to bind to, if a local endpoint gave one.
    pub local: Option<SocketAddr>,
}

/// An established user-protocol connection, given back to
/// [`Protocol::close`](crate::api::Protocol::close).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolConnection {
    /// The fd the protocol reported, if any.
    pub fd: Option<RawFd>,
    /// The protocol's own handle (an opaque pointer-sized value).
    pub data: usize,
}
