//! ConnectionGroup: K connections built by racing, streams spread over
//! them (round robin, least loaded, weighted), failover when one fails, a
//! rebuild with backoff until K are back.

use super::error::{Error, Result};
use super::preconnection::Preconnection;
use crate::runtime::group::{GroupConfig, GroupCore, Groups};
use crate::runtime::LoopCore;
use crate::engine::group::{AssignPolicy, MemberId, MemberMetrics};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

pub use crate::vocabulary::events::{GroupEvent, GroupEventHandler, GroupEventKind};

/// A group's options (C: `GroupOptions`, from `group_options_default`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupOptions {
    /// Members to keep (K). Default 2, 1 to 64.
    pub size: u32,
    /// How streams are assigned: an [`AssignPolicy`] as `u32`
    /// (`AssignPolicy::Weighted as u32`). Default round robin.
    pub policy: u32,
    /// Streams a member carries at most. Default 256, 1 to 1,000,000.
    pub capacity: u32,
    /// First backoff after a rebuild race whose attempts all failed, ms.
    /// Default 1000.
    pub backoff_initial_ms: u32,
    /// Growth of the backoff per failed rebuild, percent. Default 200,
    /// 100 to 1000.
    pub backoff_multiplier_percent: u32,
    /// Largest backoff, ms. Default 60000.
    pub backoff_max_ms: u32,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            size: 2,
            policy: 0,
            capacity: crate::engine::group::DEFAULT_CAPACITY,
            backoff_initial_ms: 1000,
            backoff_multiplier_percent: 200,
            backoff_max_ms: 60_000,
        }
    }
}

impl GroupOptions {
    pub(crate) fn to_config(self) -> Result<GroupConfig> {
        if !(1..=64).contains(&self.size) {
            return Err(Error::InvalidOption("size must be 1 to 64"));
        }
        let Some(policy) = AssignPolicy::ALL.into_iter().find(|p| *p as u32 == self.policy) else {
            return Err(Error::InvalidOption("policy must be an AssignPolicy"));
        };
        if !(1..=1_000_000).contains(&self.capacity) {
            return Err(Error::InvalidOption("capacity must be 1 to 1000000"));
        }
        if !(100..=1000).contains(&self.backoff_multiplier_percent) || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(Error::InvalidOption("backoff_multiplier_percent 100 to 1000, backoff_max_ms at least backoff_initial_ms"));
        }
        Ok(GroupConfig {
            size: self.size as usize,
            policy,
            capacity: self.capacity,
            backoff_initial: self.backoff_initial_ms as u64 * 1000,
            backoff_multiplier_percent: self.backoff_multiplier_percent,
            backoff_max: self.backoff_max_ms as u64 * 1000,
        })
    }
}

/// A group of K connections from one Preconnection. Dropping it cancels
/// its rebuild race and closes its members; no event follows.
///
/// # Examples
///
/// Two members, streams assigned in turn:
///
/// ```
/// use taps_racing::api::*;
/// use std::time::Duration;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let lp = EventLoop::new()?;
/// let mut ep = RemoteEndpoint::new();
/// ep.with_hostname("127.0.0.1")?.with_port(listener.local_addr()?.port())?;
/// let pre = Preconnection::new(&lp, &[ep], None, None)?;
/// let group = ConnectionGroup::new(&pre, &GroupOptions::default(), None)?;
/// while group.members().len() < 2 {
///     lp.run_once(Some(Duration::from_secs(5)))?;
/// }
/// let a = group.assign()?;
/// let b = group.assign()?;
/// assert_ne!(a, b); // round robin
/// group.release_stream(a, false)?;
/// group.release_stream(b, false)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// cbindgen:ignore
pub struct ConnectionGroup {
    lp: Arc<LoopCore>,
    core: Arc<GroupCore>,
}

impl ConnectionGroup {
    /// A group racing `pre`'s candidates (copied) into `options.size`
    /// members; `events` hears every [`GroupEvent`] on the loop's thread.
    ///
    /// # Errors
    /// [`Error::InvalidOption`]; [`Error::InvalidState`] if the loop was
    /// freed.
    pub fn new(pre: &Preconnection, options: &GroupOptions, events: Option<GroupEventHandler>) -> Result<ConnectionGroup> {
        let config = options.to_config()?;
        let core = Groups::create(pre.loop_shared(), pre.owned_spec(), config, events, pre.client())?;
        Ok(ConnectionGroup { lp: Arc::clone(pre.loop_shared()), core })
    }

    /// The member for the next stream (or request): counted as an open
    /// stream until [`ConnectionGroup::release_stream`].
    ///
    /// # Errors
    /// [`Error::NoMember`] (none live: rebuilding), [`Error::AllMembersFull`].
    pub fn assign(&self) -> Result<MemberId> {
        Groups::assign(&self.lp, self.core.id)
    }

    /// A stream on `member` ended; `failed` counts it as failed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `member` has no open stream.
    pub fn release_stream(&self, member: MemberId, failed: bool) -> Result<()> {
        Groups::release_stream(&self.lp, self.core.id, member, failed)
    }

    /// The caller saw `member` fail: it leaves the rotation at once, its
    /// connection closes, a rebuild starts.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it is not a live member.
    pub fn mark_failed(&self, member: MemberId) -> Result<()> {
        Groups::mark_failed(&self.lp, self.core.id, member)
    }

    /// Set a member's weight for the weighted policy (0: never chosen).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown member.
    pub fn set_weight(&self, member: MemberId, weight: u32) -> Result<()> {
        Groups::set_weight(&self.lp, self.core.id, member, weight)
    }

    /// A member's metrics (also after it failed).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown member.
    pub fn metrics(&self, member: MemberId) -> Result<MemberMetrics> {
        Groups::metrics(&self.lp, self.core.id, member)
    }

    /// A live member's socket (owned by the group) and remote address.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it is not a live member.
    pub fn member(&self, member: MemberId) -> Result<(Option<RawFd>, Option<SocketAddr>)> {
        Groups::member(&self.lp, self.core.id, member)
    }

    /// Live members, in join order.
    pub fn members(&self) -> Vec<MemberId> {
        Groups::members(&self.lp, self.core.id)
    }
}

impl Drop for ConnectionGroup {
    fn drop(&mut self) {
        Groups::free(&self.lp, self.core.id);
    }
}

impl std::fmt::Debug for ConnectionGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGroup").field("id", &self.core.id).finish()
    }
}
