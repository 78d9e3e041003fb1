//! Protocols an attempt can use: built-in TCP and UDP, and user protocols
//! (the api's `Protocol` trait; C programs bring theirs through
//! the `ProtocolImplementation` vtable).
//!
//! A user protocol's attempt is ready when the protocol says so (after its
//! own handshake), from any thread: the completion is queued and handed to
//! the loop through its Waker.

use super::paths::Path;
use super::sys::{tcp, udp};
use super::LoopCore;
use super::callbacks::UserProtocol;
use crate::vocabulary::protocol::{PathInfo, ProtocolConnection};
use crate::engine::select::ProtocolTraits;
use std::ffi::CStr;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// How a protocol is carried out.
pub(crate) enum ProtocolKind {
    /// Built-in TCP: non-blocking connect, ready when connected.
    Tcp,
    /// Built-in UDP: a connected UDP socket, ready when connected.
    Udp,
    /// A user protocol.
    User(Arc<dyn UserProtocol>),
}

/// A protocol registered with a loop.
pub(crate) struct ProtocolEntry {
    /// Its name ("tcp", "udp", or the user's), reported in AttemptInfo.
    pub name: Arc<CStr>,
    /// What it offers, for the selection properties.
    pub traits: ProtocolTraits,
    /// How to run it.
    pub kind: ProtocolKind,
}

impl ProtocolEntry {
    pub(crate) fn builtins() -> Vec<Arc<ProtocolEntry>> {
        vec![
            Arc::new(ProtocolEntry { name: Arc::from(c"tcp"), traits: ProtocolTraits::TCP, kind: ProtocolKind::Tcp }),
            Arc::new(ProtocolEntry { name: Arc::from(c"udp"), traits: ProtocolTraits::UDP, kind: ProtocolKind::Udp }),
        ]
    }
}

/// What a user protocol's completion reports.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Completion {
    /// Ready, with the protocol's fd (if any) and its connection handle.
    Ready(Option<RawFd>, usize),
    /// Failed with an errno.
    Failed(i32),
}

/// The library's side of one user-protocol attempt. The C
/// `ProtocolAttempt *` points at it.
pub(crate) struct AttemptHandle {
    pub lp: Weak<LoopCore>,
    pub race: u64,
    pub attempt: usize,
    /// The protocol, to close a connection reported ready after the race
    /// let go of the attempt.
    pub protocol: Arc<ProtocolEntry>,
    /// Its ALPN list and ECH config ([`super::stage::attempt_security`]).
    pub security: super::stage::AttemptSecurity,
    done: AtomicBool,
}

impl AttemptHandle {
    /// Queue the completion for the loop; a second completion is ignored.
    pub(crate) fn complete(&self, result: Completion) {
        if self.done.swap(true, Ordering::AcqRel) {
            log::warn!("attempt {} of race {} completed twice; ignored", self.attempt, self.race);
            return;
        }
        match self.lp.upgrade() {
            Some(lp) => lp.push_completion(self.race, self.attempt, result, Arc::clone(&self.protocol)),
            None => close_orphan(&self.protocol, result),
        }
    }

    /// Mark as ended by the library. Returns whether the protocol had
    /// already completed it (its completion is queued for the loop).
    pub(crate) fn end(&self) -> bool {
        self.done.swap(true, Ordering::AcqRel)
    }
}

/// A running attempt.
pub(crate) enum AttemptIo {
    /// TCP connect in progress, registered with the poll.
    Tcp(mio::Token, mio::net::TcpStream),
    /// A connected UDP socket.
    Udp(std::net::UdpSocket),
    /// A user protocol's attempt; `ready` once it reported ready.
    User { entry: Arc<ProtocolEntry>, handle: Arc<AttemptHandle>, ready: Option<(Option<RawFd>, usize)> },
    /// A connected TCP attempt whose security stage runs (see
    /// [`super::stage`]).
    Stage(Box<super::stage::StagedTcp>),
}

/// An established connection's transport.
pub(crate) enum Transport {
    /// TCP, registered with the poll for error and hang-up events.
    Tcp(mio::Token, mio::net::TcpStream),
    /// A connected UDP socket.
    Udp(std::net::UdpSocket),
    /// A user protocol's connection.
    User { entry: Arc<ProtocolEntry>, fd: Option<RawFd>, data: usize },
}

impl Transport {
    pub(crate) fn fd(&self) -> Option<RawFd> {
        match self {
            Transport::Tcp(_, s) => Some(s.as_raw_fd()),
            Transport::Udp(s) => Some(s.as_raw_fd()),
            Transport::User { fd, .. } => *fd,
        }
    }

    /// The user protocol's connection handle, if any.
    pub(crate) fn user_data(&self) -> Option<usize> {
        match self {
            Transport::User { data, .. } => Some(*data),
            _ => None,
        }
    }
}

/// How a start went.
pub(crate) enum Started {
    /// Wait for readiness or a completion.
    Pending(AttemptIo),
    /// Ready at once.
    Ready(AttemptIo),
}

/// Start an attempt with `entry` to `addr` on `path`. A user protocol gets
/// a handle that reports back to race `race`, attempt `attempt` on `lp`,
/// with the ALPN list and ECH config `security` gives.
pub(crate) fn start(
    entry: &Arc<ProtocolEntry>,
    path: &Path,
    addr: SocketAddr,
    lp: &Weak<LoopCore>,
    (race, attempt): (u64, usize),
    security: impl FnOnce() -> super::stage::AttemptSecurity,
) -> Result<Started, i32> {
    match &entry.kind {
        ProtocolKind::Tcp => {
            let (stream, connected) = tcp::connect(addr, path.interface.as_deref(), path.local)?;
            // The token is set by the caller when it registers the stream.
            let io = AttemptIo::Tcp(mio::Token(usize::MAX), stream);
            Ok(if connected { Started::Ready(io) } else { Started::Pending(io) })
        }
        ProtocolKind::Udp => {
            let socket = udp::connect(addr, path.interface.as_deref(), path.local)?;
            Ok(Started::Ready(AttemptIo::Udp(socket)))
        }
        ProtocolKind::User(protocol) => {
            let handle = Arc::new(AttemptHandle {
                lp: lp.clone(),
                race,
                attempt,
                protocol: Arc::clone(entry),
                security: security(),
                done: AtomicBool::new(false),
            });
            let info = PathInfo { interface: path.interface.clone(), local: path.local };
            protocol.start(Arc::clone(&handle), addr, &info)?;
            Ok(Started::Pending(AttemptIo::User { entry: Arc::clone(entry), handle, ready: None }))
        }
    }
}

/// Stop an attempt the race no longer needs: a running user attempt is
/// cancelled, one that reported ready is closed; sockets are closed.
pub(crate) fn discard(io: AttemptIo, registry: &mio::Registry) {
    match io {
        AttemptIo::Tcp(_, mut s) => {
            let _ = registry.deregister(&mut s);
        }
        AttemptIo::Udp(_) => {}
        AttemptIo::Stage(staged) => staged.discard(registry),
        AttemptIo::User { entry, handle, ready } => {
            let completed = handle.end();
            if let ProtocolKind::User(p) = &entry.kind {
                match ready {
                    Some((fd, data)) => p.close(ProtocolConnection { fd, data }),
                    // Completed but not yet seen by the loop: a ready one is
                    // closed when its completion comes out of the queue.
                    None if completed => {}
                    None => p.cancel(handle),
                }
            }
        }
    }
}

/// A completion that no attempt waits for any more: a ready connection is
/// closed, a failure needs nothing.
pub(crate) fn close_orphan(protocol: &ProtocolEntry, c: Completion) {
    if let (Completion::Ready(fd, data), ProtocolKind::User(p)) = (c, &protocol.kind) {
        p.close(ProtocolConnection { fd, data });
    }
}

/// Release an established connection's transport when its handle is freed:
/// sockets are just closed (the kernel sends the FIN and drops the fd from
/// the epoll set); a user protocol's connection goes to its `close`.
pub(crate) fn drop_transport(t: Transport) {
    match t {
        Transport::Tcp(..) | Transport::Udp(_) => drop(t),
        Transport::User { entry, fd, data } => {
            if let ProtocolKind::User(p) = &entry.kind {
                p.close(ProtocolConnection { fd, data });
            }
        }
    }
}

/// Close an established connection's transport (TCP: FIN, then close).
pub(crate) fn close_transport(t: Transport, registry: &mio::Registry) {
    match t {
        Transport::Tcp(_, mut s) => {
            let _ = registry.deregister(&mut s);
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        Transport::Udp(_) => {}
        Transport::User { entry, fd, data } => {
            if let ProtocolKind::User(p) = &entry.kind {
                p.close(ProtocolConnection { fd, data });
            }
        }
    }
}
