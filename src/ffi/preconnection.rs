//! C ABI: taps_preconnection, its taps_racing_options, local endpoints and branch
//! racing types, and Initiate.

use super::connection::{start_connection, Connection, ConnectionCallbacks};
use super::endpoint::{LocalEndpoint, RemoteEndpoint};
use super::event_loop::EventLoop;
use super::handle::{free_handle, handle_or_null, opt_ref, try_mut, try_ok, try_ref, try_str, Boxed, OnError};
use super::properties::TransportProperties;
use super::{c_enum, c_struct, fail, guard, read_growable, status};
use crate::api;
use crate::api::{Error, RacingType};
use std::ffi::{c_char, c_int};

/// Remote endpoints, properties and racing options on one loop, ready to
/// initiate (RFC 9622 §6). Free with taps_preconnection_free.
///
/// Threads: a taps_preconnection may be shared by threads: several may call
/// taps_preconnection_initiate_with_racing on it at once, from any thread.
/// Functions that change it (adding endpoints) and taps_preconnection_free must
/// not run at the same time as any other call on it. Races it initiates
/// belong to its loop handle (for a shared loop, to that client).
pub struct Preconnection(pub(crate) api::Preconnection);

impl Boxed for Preconnection {}

/// How the branches of one level race (RFC 9623 §4.3), for
/// taps_preconnection_set_racing_type.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RacingTypeCode {
    /// All branches start at once.
    TAPS_RACING_TYPE_IMMEDIATE = 0,
    /// Each branch starts a delay after the previous one, or at once when
    /// the previous one failed (the default).
    TAPS_RACING_TYPE_DELAYED = 1,
    /// A branch starts only when every earlier branch failed.
    TAPS_RACING_TYPE_FAILOVER = 2,
}

c_enum!(RacingTypeCode, "not a taps_racing_type_code", [TAPS_RACING_TYPE_IMMEDIATE, TAPS_RACING_TYPE_DELAYED, TAPS_RACING_TYPE_FAILOVER]);

/// A level of the candidate tree (RFC 9623 §4.1), for
/// taps_preconnection_set_racing_type.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchKind {
    /// Paths: interfaces and local endpoints.
    Path,
    /// Protocols on a path.
    Protocol,
    /// Endpoints (resolved addresses) of a protocol on a path.
    Endpoint,
}

c_enum!(BranchKind <=> api::BranchKind, "not a taps_branch_kind", [Path, Protocol, Endpoint]);

/// Timing and counts of one race (RFC 8305 §3-§5). Start from the defaults
/// (taps_racing_options_default(), which sets struct_size) and change the
/// fields you need.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RacingOptions {
    /// sizeof(taps_racing_options) of the caller's header, in bytes:
    /// taps_racing_options_default() sets it; 0 means this header's full
    /// struct. The library reads the fields that fit and takes the default
    /// for the rest (docs/ABI.md).
    pub struct_size: u32,
    /// RFC 8305 §5 Connection Attempt Delay in ms: default 250, clamped to
    /// [10, 2000].
    pub connection_attempt_delay_ms: u32,
    /// RFC 8305 §3 Resolution Delay in ms: how long to wait for AAAA after
    /// A answered. Default 50, at most 2000.
    pub resolution_delay_ms: u32,
    /// RFC 8305 §4 First Address Family Count: default 1, 1 to 64.
    pub first_address_family_count: u32,
    /// Deadline of one attempt in ms, 0 for none (default). Attempts are
    /// NOT aborted at the attempt delay: an earlier attempt keeps running.
    pub attempt_timeout_ms: u32,
    /// Deadline of the whole race in ms, 0 for none (default).
    pub total_timeout_ms: u32,
    /// Attempts started at once at the head of the list, default 1, 1 to 64.
    pub race_count: u32,
}

c_struct!(RacingOptions "taps_racing_options" <=> api::RacingOptions {
    connection_attempt_delay_ms,
    resolution_delay_ms,
    first_address_family_count,
    attempt_timeout_ms,
    total_timeout_ms,
    race_count,
});

/// The defaults: connection_attempt_delay_ms 250 (RFC 8305 §5),
/// resolution_delay_ms 50 (§3), first_address_family_count 1 (§4),
/// attempt_timeout_ms 0 (none), total_timeout_ms 0 (none), race_count 1;
/// struct_size sizeof(taps_racing_options).
#[no_mangle]
pub extern "C" fn taps_racing_options_default() -> RacingOptions {
    api::RacingOptions::default().into()
}

/// A taps_preconnection on `event_loop` racing to `remotes` (an array of
/// `n_remotes` endpoints, each copied; each needs a host and a port).
/// `props` and `opts` may be NULL for the defaults; both are copied.
///
/// Returns NULL on error, with taps_last_error():
/// TAPS_ERROR_NULL_ARGUMENT (event_loop, remotes or an element is NULL),
/// TAPS_ERROR_INVALID_ARGUMENT (n_remotes is 0, an endpoint lacks a host
/// or a port; opts->struct_size below the smallest layout, inside a field,
/// or larger than this library's struct with a field past it set),
/// TAPS_ERROR_INVALID_OPTION (an option out of range; the message names
/// it). The loop must outlive the taps_preconnection.
#[no_mangle]
pub extern "C" fn taps_preconnection_new(
    event_loop: *mut EventLoop,
    remotes: *const *const RemoteEndpoint,
    n_remotes: usize,
    props: *const TransportProperties,
    opts: *const RacingOptions,
) -> *mut Preconnection {
    guard!(std::ptr::null_mut(), {
        let lp = try_ref!(event_loop);
        if remotes.is_null() && n_remotes > 0 {
            return OnError::on_error(Error::NullArgument);
        }
        let mut list = Vec::with_capacity(n_remotes);
        for i in 0..n_remotes {
            // SAFETY: remotes holds n_remotes pointers, per the contract.
            let remote = unsafe { *remotes.add(i) };
            list.push(try_ref!(remote).0.clone());
        }
        let props = opt_ref!(props).map(|p| &p.0);
        let opts = if opts.is_null() {
            None
        } else {
            // SAFETY: the C contract: opts points at a struct of its
            // struct_size bytes (no reference: it may be smaller than ours).
            let o = try_ok!(unsafe { read_growable(opts, taps_racing_options_default()) });
            Some(api::RacingOptions::from(o))
        };
        let made = api::Preconnection::new(&lp.0, &list, props, opts.as_ref());
        handle_or_null(made.map(Preconnection))
    })
}

/// Free a taps_preconnection. NULL is fine. Connections initiated from it are
/// not affected.
#[no_mangle]
pub extern "C" fn taps_preconnection_free(p: *mut Preconnection) {
    // SAFETY: NULL, or from taps_preconnection_new and freed once.
    guard!((), { unsafe { free_handle(p) } })
}

/// Start racing (RFC 8305; RFC 9623 §4) and return at once: `*out_connection`
/// is set, in the establishing state, before any callback can run. Exactly
/// one of `ready` / `establishment_error` follows, on the thread that runs
/// the loop, unless the connection is freed or closed first. Losing
/// attempts' sockets are closed before `ready` is called. Callbacks may be
/// NULL (not called); `user_data` is passed back untouched.
///
/// The caller owns `*out_connection` and frees it with taps_connection_free
/// (also inside a callback). Errors (then `*out_connection` is NULL):
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE (the loop was freed),
/// TAPS_ERROR_INVALID_ARGUMENT (callbacks.struct_size below the smallest
/// layout, inside a field, or larger than this library's struct).
#[no_mangle]
pub extern "C" fn taps_preconnection_initiate_with_racing(
    p: *mut Preconnection,
    callbacks: ConnectionCallbacks,
    out_connection: *mut *mut Connection,
) -> c_int {
    guard!(fail(Error::Panic), {
        let out = try_mut!(out_connection);
        *out = std::ptr::null_mut();
        let pre = try_ref!(p);
        start_connection(pre.0.new_connection(), callbacks, out, |c, h| pre.0.initiate_connection(c, h))
    })
}

/// Add a local endpoint (copied) to a taps_preconnection: each is one path
/// branch of the race (RFC 9623 §4.1). Call before initiating. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (over 64).
#[no_mangle]
pub extern "C" fn taps_preconnection_add_local_endpoint(p: *mut Preconnection, local: *const LocalEndpoint) -> c_int {
    guard!(fail(Error::Panic), {
        let p = try_mut!(p);
        let local = try_ref!(local);
        status(p.0.add_local_endpoint(&local.0))
    })
}

/// How the branches of one level of the candidate tree race each other
/// (RFC 9623 §4.3). `kind`: a taps_branch_kind; `racing_type`: a taps_racing_type_code;
/// `delay_ms`: for TAPS_RACING_TYPE_DELAYED, the delay between branches (0: the
/// Connection Attempt Delay; else clamped to [10, 2000]). Defaults: delayed
/// at every level with the Connection Attempt Delay. At the endpoint
/// level, TAPS_RACING_TYPE_IMMEDIATE starts every address at once and
/// TAPS_RACING_TYPE_FAILOVER the next address only when an attempt failed.
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (a value
/// out of its enum; nothing changes).
#[no_mangle]
pub extern "C" fn taps_preconnection_set_racing_type(p: *mut Preconnection, kind: c_int, racing_type: c_int, delay_ms: u32) -> c_int {
    guard!(fail(Error::Panic), {
        let p = try_mut!(p);
        let kind = try_ok!(BranchKind::try_from(kind)).into();
        let racing = match try_ok!(RacingTypeCode::try_from(racing_type)) {
            RacingTypeCode::TAPS_RACING_TYPE_IMMEDIATE => RacingType::Immediate,
            RacingTypeCode::TAPS_RACING_TYPE_DELAYED => RacingType::Delayed(delay_ms as u64 * 1000),
            RacingTypeCode::TAPS_RACING_TYPE_FAILOVER => RacingType::Failover,
        };
        p.0.set_racing_type(kind, racing);
        0
    })
}

/// The ALPN ids (RFC 7301) TLS offers on `p`'s attempts, most preferred
/// first: `ids` is an array of `count` NUL-terminated strings (copied;
/// `count` 0 clears the list; `ids` may then be NULL). The stage of each
/// attempt gets them (taps_stage_attempt_get_alpn). Call before
/// initiating. Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT
/// (an id empty, over 255 bytes or not UTF-8; over 64 ids; nothing changes).
#[no_mangle]
pub extern "C" fn taps_preconnection_set_alpn(p: *mut Preconnection, ids: *const *const c_char, count: usize) -> c_int {
    guard!(fail(Error::Panic), {
        let p = try_mut!(p);
        if ids.is_null() && count > 0 {
            return fail(Error::NullArgument);
        }
        if count > 64 {
            return fail(Error::InvalidArgument("at most 64 ALPN ids"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: ids holds count pointers, per the contract.
            let id = unsafe { *ids.add(i) };
            if id.is_null() {
                return fail(Error::NullArgument);
            }
            list.push(try_str!(id, Error::InvalidArgument("an ALPN id is UTF-8")));
        }
        status(p.0.set_alpn(&list))
    })
}

/// Say which ALPN ids (RFC 7301) the protocol named `protocol_name` serves
/// (draft-ietf-happy-happyeyeballs-v3-04 §5.1, §6), e.g. a QUIC user
/// protocol "h3", built-in "tcp" "h2" and "http/1.1". `protocol_name` is a
/// protocol registered on `p`'s loop ("tcp", "udp", or one given to
/// taps_event_loop_add_protocol); `ids` is an array of `count`
/// NUL-terminated strings (copied; `count` 0 clears the protocol's ids;
/// `ids` may then be NULL). Each PROTOCOL branch of the races initiated
/// later races only the addresses of HTTPS services (RFC 9460) whose
/// usable ALPN ids share one with its protocol's, and the fallback
/// (addresses with no record; every address of a race that asks no HTTPS
/// record) only when its ids have "http/1.1"; a protocol with no ids races
/// every candidate. Its attempts' ALPN lists keep only its ids
/// (taps_protocol_attempt_get_alpn, taps_stage_attempt_get_alpn). When
/// every protocol of a path has ids (and race_count is 1), the protocols
/// do not race as branches (the PROTOCOL racing type is not used): their
/// (address, protocol) candidates are one list in HEv3 order (§5: service
/// groups by SvcPriority, each address with the protocols serving it in
/// protocol order), one attempt at a time with the Connection Attempt
/// Delay between starts (§6): e.g. QUIC at 0 ms, TCP to the same address
/// at 250 ms. Call before initiating; not at the same time as another call on `p`.
/// Errors (nothing changes): TAPS_ERROR_NULL_ARGUMENT (p, protocol_name, a
/// NULL id, or ids NULL with count > 0), TAPS_ERROR_INVALID_ARGUMENT (no
/// protocol of that name on the loop; a name or id not UTF-8; an id empty
/// or over 255 bytes; over 64 ids).
#[no_mangle]
pub extern "C" fn taps_preconnection_set_protocol_alpn(
    p: *mut Preconnection,
    protocol_name: *const c_char,
    ids: *const *const c_char,
    count: usize,
) -> c_int {
    guard!(fail(Error::Panic), {
        let p = try_mut!(p);
        if protocol_name.is_null() || (ids.is_null() && count > 0) {
            return fail(Error::NullArgument);
        }
        let name = try_str!(protocol_name, Error::InvalidArgument("a protocol name is UTF-8"));
        if count > 64 {
            return fail(Error::InvalidArgument("at most 64 ALPN ids"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: ids holds count pointers, per the contract.
            let id = unsafe { *ids.add(i) };
            if id.is_null() {
                return fail(Error::NullArgument);
            }
            list.push(try_str!(id, Error::InvalidArgument("an ALPN id is UTF-8")));
        }
        status(p.0.set_protocol_alpn(name, &list))
    })
}
