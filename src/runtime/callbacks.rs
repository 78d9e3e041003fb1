//! The user's code as the runtime calls it: a connection's handler, user
//! protocols and a user resolver.
//!
//! The public traits (`api::ConnectionHandler`, `api::Protocol`,
//! `api::Resolver`) take api handles (`&Connection`, `ProtocolAttempt`,
//! `ResolverQuery`) that wrap runtime state. The runtime does not build
//! api types: it calls these narrower traits with its own handles, and
//! api implements them around the user's objects when it installs them.

use super::conn::{Callback, ConnCore};
use super::protocol::AttemptHandle;
use super::resolver::QueryHandle;
use crate::engine::Family;
use crate::vocabulary::protocol::{PathInfo, ProtocolConnection};
use std::net::SocketAddr;
use std::sync::Arc;

/// A connection's handler: see [`ConnCore::invoke`].
pub(crate) trait ConnCallbacks: Send {
    /// Call the user's callback `cb` for the connection `core`.
    fn call(&mut self, core: &Arc<ConnCore>, cb: Callback);
    /// Whether an established connection's socket is watched for errors
    /// and hang-ups (for `Callback::ConnectionError`).
    fn wants_connection_errors(&self) -> bool;
}

/// A user protocol (see [`super::protocol::ProtocolKind::User`]).
pub(crate) trait UserProtocol: Send + Sync {
    /// Start `attempt` to `remote` on `path`, or fail at once with an errno.
    fn start(&self, attempt: Arc<AttemptHandle>, remote: SocketAddr, path: &PathInfo) -> Result<(), i32>;
    /// The race no longer needs `attempt`.
    fn cancel(&self, attempt: Arc<AttemptHandle>);
    /// Close a connection the protocol reported ready.
    fn close(&self, connection: ProtocolConnection);
}

/// A user resolver replacing the system one.
pub(crate) trait UserResolver: Send + Sync {
    /// Resolve `host` for `family`, answering through `query`, or fail the
    /// query at once with an error code.
    fn resolve(&self, query: Arc<QueryHandle>, host: &str, family: Family) -> Result<(), i32>;
    /// The race ended before `query` was answered.
    fn cancel(&self, query: Arc<QueryHandle>);
    /// Resolve the HTTPS records of `name` (HEv3), answering through
    /// `query`, or fail at once with an error code.
    fn resolve_https(&self, query: Arc<super::https::ServiceQueryHandle>, name: &str) -> Result<(), i32>;
    /// The race ended before the HTTPS `query` was answered.
    fn cancel_https(&self, query: Arc<super::https::ServiceQueryHandle>);
}
