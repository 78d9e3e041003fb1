//! C ABI: taps_connection_group.

use super::preconnection::Preconnection;
use super::handle::{free_handle, handle_or_null, try_mut, try_ok, try_ref, Boxed};
use super::{c_enum, c_struct, fail, guard, read_growable, status};
use crate::api::{self, Error};
use std::ffi::{c_int, c_void};

/// A group of K connections from one taps_preconnection, with streams assigned
/// over them and failover. Free with taps_connection_group_free.
pub struct ConnectionGroup(pub(crate) api::ConnectionGroup);

impl Boxed for ConnectionGroup {}

/// How a group picks the member for the next stream.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignPolicy {
    /// The live members in join order, one stream each in turn.
    RoundRobin,
    /// The member with the fewest open streams (ties in round-robin order).
    LeastLoaded,
    /// Smooth weighted round robin over the members' weights.
    Weighted,
}

c_enum!(AssignPolicy <=> api::AssignPolicy, "not a taps_assign_policy", [RoundRobin, LeastLoaded, Weighted]);

/// What happened in a group.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
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

c_enum!(GroupEventKind <=> api::GroupEventKind, "not a taps_group_event_kind", [
    MemberJoined,
    MemberFailed,
    AllFailed,
    Recovered,
    RebuildFailed,
]);

/// One group event.
#[repr(C)]
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

impl From<&api::GroupEvent> for GroupEvent {
    fn from(e: &api::GroupEvent) -> GroupEvent {
        GroupEvent { kind: e.kind.into(), member: e.member, streams: e.streams, connect_time_us: e.connect_time_us }
    }
}

/// A group's options, from taps_group_options_default().
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupOptions {
    /// sizeof(taps_group_options) of the caller's header, in bytes:
    /// taps_group_options_default() sets it; 0 means this header's full
    /// struct. The library reads the fields that fit and takes the default
    /// for the rest (docs/ABI.md).
    pub struct_size: u32,
    /// Members to keep (K). Default 2, 1 to 64.
    pub size: u32,
    /// How streams are assigned: a taps_assign_policy. Default round robin.
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

c_struct!(GroupOptions "taps_group_options" <=> api::GroupOptions {
    size,
    policy,
    capacity,
    backoff_initial_ms,
    backoff_multiplier_percent,
    backoff_max_ms,
});

/// What a group knows about a member.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupMemberMetrics {
    /// Streams assigned since it joined.
    pub streams_assigned: u64,
    /// Streams open now (0 once it failed).
    pub streams_open: u32,
    /// Streams that ended failed (released as failed, or open when it
    /// failed).
    pub streams_failed: u64,
    /// Its connect time, µs.
    pub connect_time_us: u64,
    /// When it joined, µs on the loop's clock.
    pub joined_at_us: u64,
    /// Its weight for TAPS_ASSIGN_POLICY_WEIGHTED.
    pub weight: u32,
    /// 1 while it is a live member, 0 after it failed.
    pub live: c_int,
}

/// The group's event callback: called on the loop's thread; `event` is
/// valid during the call.
pub type GroupEventCallback = Option<extern "C" fn(event: *const GroupEvent, user_data: *mut c_void)>;

struct CEvents(extern "C" fn(*const GroupEvent, *mut c_void), *mut c_void);

// SAFETY: the C contract: the callback and user_data are used on the
// loop's thread.
unsafe impl Send for CEvents {}

impl CEvents {
    fn call(&self, e: &api::GroupEvent) {
        (self.0)(&GroupEvent::from(e), self.1)
    }
}

/// The defaults: size 2, policy TAPS_ASSIGN_POLICY_ROUND_ROBIN, capacity 256,
/// backoff_initial_ms 1000, backoff_multiplier_percent 200, backoff_max_ms
/// 60000; struct_size sizeof(taps_group_options).
#[no_mangle]
pub extern "C" fn taps_group_options_default() -> GroupOptions {
    api::GroupOptions::default().into()
}

/// A group racing `p`'s candidates (copied) into `opts->size` members,
/// diverse where the candidates allow (distinct addresses first).
/// `on_event` (may be NULL) hears every taps_group_event. NULL on error, with
/// taps_last_error(): TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT
/// (opts->struct_size, as for taps_preconnection_new),
/// TAPS_ERROR_INVALID_OPTION, TAPS_ERROR_INVALID_STATE.
#[no_mangle]
pub extern "C" fn taps_connection_group_new(
    p: *const Preconnection,
    opts: *const GroupOptions,
    on_event: GroupEventCallback,
    user_data: *mut c_void,
) -> *mut ConnectionGroup {
    guard!(std::ptr::null_mut(), {
        let pre = try_ref!(p);
        let opts = if opts.is_null() {
            api::GroupOptions::default()
        } else {
            // SAFETY: the C contract: opts points at a struct of its struct_size bytes.
            try_ok!(unsafe { read_growable(opts, taps_group_options_default()) }).into()
        };
        let events: Option<crate::api::group::GroupEventHandler> = on_event.map(|f| {
            let c = CEvents(f, user_data);
            Box::new(move |e: &api::GroupEvent| c.call(e)) as crate::api::group::GroupEventHandler
        });
        handle_or_null(api::ConnectionGroup::new(&pre.0, &opts, events).map(ConnectionGroup))
    })
}

/// The member for the next stream (or request, or round) into
/// `*out_member`; it counts as an open stream until
/// taps_connection_group_release_stream. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_NO_MEMBER (none live: the group is rebuilding),
/// TAPS_ERROR_ALL_MEMBERS_FULL.
#[no_mangle]
pub extern "C" fn taps_connection_group_assign(group: *mut ConnectionGroup, out_member: *mut u64) -> c_int {
    guard!(fail(Error::Panic), {
        let g = try_ref!(group);
        let out = try_mut!(out_member);
        match g.0.assign() {
            Ok(m) => {
                *out = m as u64;
                0
            }
            Err(e) => fail(e),
        }
    })
}

/// A stream on `member` ended; `failed` (0 or 1) counts it as failed.
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (no open
/// stream on that member).
#[no_mangle]
pub extern "C" fn taps_connection_group_release_stream(group: *mut ConnectionGroup, member: u64, failed: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let g = try_ref!(group);
        status(g.0.release_stream(member as usize, failed != 0))
    })
}

/// The caller saw `member` fail: it leaves the rotation at once (its open
/// streams count as failed), its connection closes, MEMBER_FAILED is
/// reported and a rebuild races a replacement. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (not live).
#[no_mangle]
pub extern "C" fn taps_connection_group_mark_failed(group: *mut ConnectionGroup, member: u64) -> c_int {
    guard!(fail(Error::Panic), {
        let g = try_ref!(group);
        status(g.0.mark_failed(member as usize))
    })
}

/// Set a member's weight for TAPS_ASSIGN_POLICY_WEIGHTED (0: never chosen; by
/// default the weight comes from the connect time, faster = heavier).
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (unknown
/// member).
#[no_mangle]
pub extern "C" fn taps_connection_group_set_weight(group: *mut ConnectionGroup, member: u64, weight: u32) -> c_int {
    guard!(fail(Error::Panic), {
        let g = try_ref!(group);
        status(g.0.set_weight(member as usize, weight))
    })
}

/// A member's metrics into `*out` (also after it failed). Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (unknown member).
#[no_mangle]
pub extern "C" fn taps_connection_group_member_metrics(group: *const ConnectionGroup, member: u64, out: *mut GroupMemberMetrics) -> c_int {
    guard!(fail(Error::Panic), {
        let g = try_ref!(group);
        let out = try_mut!(out);
        match g.0.metrics(member as usize) {
            Ok(m) => {
                *out = GroupMemberMetrics {
                    streams_assigned: m.streams_assigned,
                    streams_open: m.streams_open,
                    streams_failed: m.streams_failed,
                    connect_time_us: m.connect_time,
                    joined_at_us: m.joined_at,
                    weight: m.weight,
                    live: g.0.members().contains(&(member as usize)) as c_int,
                };
                0
            }
            Err(e) => fail(e),
        }
    })
}

/// A live member's socket (owned by the group: do not close it), or -1.
#[no_mangle]
pub extern "C" fn taps_connection_group_member_fd(group: *const ConnectionGroup, member: u64) -> c_int {
    guard!(-1, {
        match try_ref!(group, else -1).0.member(member as usize) {
            Ok((Some(fd), _)) => fd,
            _ => -1,
        }
    })
}

/// Live members now (0 for NULL); with `out` non-NULL, up to `cap` of
/// their ids into it, in join order.
#[no_mangle]
pub extern "C" fn taps_connection_group_members(group: *const ConnectionGroup, out: *mut u64, cap: usize) -> usize {
    guard!(0, {
        let g = try_ref!(group, else 0);
        let members = g.0.members();
        if !out.is_null() {
            for (i, m) in members.iter().take(cap).enumerate() {
                // SAFETY: out holds cap entries per the contract.
                unsafe { *out.add(i) = *m as u64 };
            }
        }
        members.len()
    })
}

/// Free a group: its rebuild race is cancelled, its members closed; no
/// event follows. NULL is fine.
#[no_mangle]
pub extern "C" fn taps_connection_group_free(group: *mut ConnectionGroup) {
    // SAFETY: NULL, or from taps_connection_group_new and freed once.
    guard!((), { unsafe { free_handle(group) } })
}
