//! A panic inside every guarded `extern "C"` function becomes
//! `TAPS_ERROR_PANIC` (or NULL, -1, 0, a no-op: each function's documented
//! failure value) and never an abort.
//!
//! The library has no natural panic to trigger from C, so the test uses a
//! hook that exists only in this crate's unit tests: `INJECT_PANIC` makes
//! the next `guard!`ed call on the thread panic inside its boundary. Each
//! function is called through its real `extern "C"` symbol (an
//! `extern "C" fn` pointer, as C calls it); the hook is compiled out of
//! every other build (see `injected_panic_point` in `mod.rs`).

use super::connection::*;
use super::endpoint::*;
use super::event_loop::*;
use super::dns_report::*;
use super::group::*;
use super::https::*;
use super::nat64::*;
use super::history::*;
use super::pool::*;
use super::preconnection::*;
use super::properties::*;
use super::protocol::*;
use super::resolver::*;
use super::stage::*;
use super::{taps_last_error, taps_last_error_message, taps_strerror, taps_version, TapsError, INJECT_PANIC};
use std::ffi::{c_int, CStr};
use std::ptr::{null, null_mut};

const PANIC: c_int = TapsError::TAPS_ERROR_PANIC as c_int;

/// Arm the hook and clear the last error with a harmless failing call.
fn arm() {
    assert_eq!(taps_event_loop_run(null_mut()), TapsError::TAPS_ERROR_NULL_ARGUMENT as c_int);
    INJECT_PANIC.with(|p| p.set(true));
}

/// The hook fired (it clears itself) and the last error is PANIC.
fn fired(what: &str) {
    assert!(!INJECT_PANIC.with(|p| p.get()), "{what}: the call did not go through the guard");
    assert_eq!(taps_last_error(), PANIC, "{what}: last error");
}

macro_rules! code {
    ($call:expr) => {{
        arm();
        let rc = $call;
        fired(stringify!($call));
        assert_eq!(rc as i64, PANIC as i64, "{}", stringify!($call));
    }};
}

macro_rules! value {
    ($call:expr, $want:expr) => {{
        arm();
        let v = $call;
        fired(stringify!($call));
        assert_eq!(v, $want, "{}", stringify!($call));
    }};
}

macro_rules! null {
    ($call:expr) => {{
        arm();
        let p = $call;
        fired(stringify!($call));
        assert!(p.is_null(), "{}", stringify!($call));
    }};
}

macro_rules! no_op {
    ($call:expr) => {{
        arm();
        $call;
        fired(stringify!($call));
    }};
}

fn callbacks() -> ConnectionCallbacks {
    ConnectionCallbacks { struct_size: 0, ready: None, establishment_error: None, connection_error: None, closed: None, user_data: null_mut() }
}

/// A table with one row per `extern "C"` function: long because the
/// header is.
#[test]
fn a_panic_in_any_extern_fn_is_a_code_not_an_abort() {
    let v4 = libc::in_addr { s_addr: 0 };
    let v6 = libc::in6_addr { s6_addr: [0; 16] };
    let mut out_conn: *mut Connection = null_mut();

    // Status and errors.
    arm();
    let text = unsafe { CStr::from_ptr(taps_strerror(0)) };
    fired("taps_strerror");
    assert_eq!(text.to_str().unwrap(), "unknown error");
    code!(taps_last_error());
    arm();
    let msg = unsafe { CStr::from_ptr(taps_last_error_message()) };
    fired("taps_last_error_message");
    assert_eq!(msg.to_str().unwrap(), "");
    code!(super::log::taps_set_log_callback(0, None, null_mut()));
    arm();
    let version = unsafe { CStr::from_ptr(taps_version()) };
    fired("taps_version");
    assert_eq!(version.to_str().unwrap(), "");

    // Endpoints and properties.
    null!(taps_remote_endpoint_new());
    code!(taps_remote_endpoint_with_hostname(null_mut(), c"localhost".as_ptr()));
    code!(taps_remote_endpoint_with_port(null_mut(), 80));
    code!(taps_remote_endpoint_with_service(null_mut(), c"80".as_ptr()));
    code!(taps_remote_endpoint_with_ipv4(null_mut(), v4));
    code!(taps_remote_endpoint_with_ipv6(null_mut(), v6));
    no_op!(taps_remote_endpoint_free(null_mut()));
    null!(taps_transport_properties_new());
    no_op!(taps_transport_properties_free(null_mut()));
    code!(taps_transport_properties_set(null_mut(), 0, 0));
    code!(taps_transport_properties_set_interface(null_mut(), c"lo".as_ptr(), 0));
    code!(taps_transport_properties_set_interface_type(null_mut(), 0, 0));
    null!(taps_local_endpoint_new());
    code!(taps_local_endpoint_with_interface(null_mut(), c"lo".as_ptr()));
    code!(taps_local_endpoint_with_ipv4(null_mut(), v4));
    code!(taps_local_endpoint_with_ipv6(null_mut(), v6));
    code!(taps_local_endpoint_with_port(null_mut(), 0));
    no_op!(taps_local_endpoint_free(null_mut()));

    // Loops.
    null!(taps_event_loop_new());
    null!(taps_event_loop_new_with_options(null()));
    null!(taps_event_loop_shared(c"k".as_ptr()));
    code!(taps_event_loop_run(null_mut()));
    code!(taps_event_loop_run_once(null_mut(), 0));
    code!(taps_event_loop_process(null_mut()));
    code!(taps_event_loop_get_fd(null()));
    code!(taps_event_loop_get_timeout_ms(null()));
    code!(taps_event_loop_start_thread(null_mut()));
    code!(taps_event_loop_stop_thread(null_mut()));
    code!(taps_event_loop_add_protocol(null_mut(), null()));
    code!(taps_event_loop_set_resolver(null_mut(), null()));
    code!(taps_event_loop_set_resolution_cache(null_mut(), 0));
    code!(taps_event_loop_set_pref64(null_mut(), null()));
    code!(taps_event_loop_get_pref64(null(), null_mut(), 0));
    code!(taps_event_loop_get_pref64_source(null()));
    code!(taps_event_loop_set_history(null_mut(), true));
    code!(taps_event_loop_clear_history(null_mut()));
    code!(taps_event_loop_history_size(null_mut(), null_mut(), null_mut()));
    code!(taps_event_loop_export_history(null_mut(), null_mut(), 0));
    code!(taps_event_loop_import_history(null_mut(), null()));
    code!(taps_event_loop_advance_clock(null_mut(), 1));
    value!(taps_event_loop_now_us(null()), 0);
    no_op!(taps_event_loop_release(null_mut()));
    no_op!(taps_event_loop_free(null_mut()));

    // Preconnections and connections.
    null!(taps_preconnection_new(null_mut(), null(), 0, null(), null()));
    no_op!(taps_preconnection_free(null_mut()));
    code!(taps_preconnection_initiate_with_racing(null_mut(), callbacks(), &mut out_conn));
    code!(taps_preconnection_add_local_endpoint(null_mut(), null()));
    code!(taps_preconnection_set_racing_type(null_mut(), 0, 0, 0));
    value!(taps_connection_get_fd(null()), -1);
    code!(taps_connection_get_remote_address(null(), null_mut(), null_mut()));
    code!(taps_connection_get_error(null()));
    value!(taps_connection_get_os_error(null()), 0);
    value!(taps_connection_get_id(null()), 0);
    null!(taps_connection_get_protocol(null()));
    null!(taps_connection_get_protocol_connection(null()));
    value!(taps_connection_attempt_count(null()), 0);
    code!(taps_connection_get_attempt(null(), 0, null_mut()));
    code!(taps_connection_get_attempt_synthesized_from(null(), 0, null_mut(), null_mut()));
    code!(taps_connection_get_attempt_history(null(), 0, null_mut(), 0));
    value!(taps_connection_get_attempt_alpn_count(null(), 0), 0);
    null!(taps_connection_get_attempt_alpn(null(), 0, 0));
    code!(taps_connection_get_attempt_service_priority(null(), 0, null_mut()));
    code!(taps_connection_get_attempt_from_hint(null(), 0));
    value!(taps_connection_get_https_record_count(null()), 0);
    code!(taps_connection_get_https_record(null(), 0, null_mut()));
    null!(taps_connection_get_https_record_alpn(null(), 0, 0));
    value!(taps_connection_get_dns_answer_count(null()), 0);
    code!(taps_connection_get_dns_answer(null(), 0, null_mut()));
    code!(taps_preconnection_set_https_policy(null_mut(), 0));
    code!(taps_preconnection_set_ech_required(null_mut(), true));
    no_op!(taps_connection_close(null_mut()));
    no_op!(taps_connection_free(null_mut()));

    // User protocols and resolvers.
    code!(taps_protocol_attempt_ready(null_mut(), -1, null_mut()));
    code!(taps_protocol_attempt_failed(null_mut(), 1));
    value!(taps_protocol_attempt_index(null()), -1);
    value!(taps_protocol_attempt_get_alpn_count(null()), 0);
    null!(taps_protocol_attempt_get_alpn(null(), 0));
    null!(taps_protocol_attempt_get_alpn_wire(null(), null_mut()));
    null!(taps_protocol_attempt_get_ech_config(null(), null_mut()));
    code!(taps_preconnection_set_protocol_alpn(null_mut(), null(), null(), 0));
    // Security stages and ALPN.
    code!(taps_preconnection_set_security_stage(null_mut(), null(), null_mut()));
    code!(taps_preconnection_set_alpn(null_mut(), null(), 0));
    null!(taps_connection_get_alpn(null()));
    code!(taps_connection_get_attempt_connected_us(null(), 0, null_mut()));
    value!(taps_stage_attempt_get_fd(null()), -1);
    code!(taps_stage_attempt_get_remote(null(), null_mut(), null_mut()));
    null!(taps_stage_attempt_get_host_name(null()));
    value!(taps_stage_attempt_get_alpn_count(null()), 0);
    null!(taps_stage_attempt_get_alpn(null(), 0));
    null!(taps_stage_attempt_get_alpn_wire(null(), null_mut()));
    null!(taps_stage_attempt_get_ech_config(null(), null_mut()));
    code!(taps_stage_attempt_want_read(null_mut()));
    code!(taps_stage_attempt_want_write(null_mut()));
    code!(taps_stage_attempt_ready(null_mut(), null()));
    code!(taps_stage_attempt_failed(null_mut(), 1));
    value!(taps_stage_attempt_index(null()), -1);
    code!(taps_resolver_query_answer(null_mut(), null(), 0));
    code!(taps_resolver_query_fail(null_mut(), 1));
    code!(taps_event_loop_set_https_resolver(null_mut(), null()));
    code!(taps_service_query_answer(null_mut(), null(), 0, 0));
    code!(taps_service_query_fail(null_mut(), 1));

    // Pools and groups.
    null!(taps_connection_pool_new(null(), null(), None, null_mut()));
    code!(taps_connection_pool_acquire(null_mut(), callbacks(), &mut out_conn));
    value!(taps_connection_pool_buffered(null()), 0);
    no_op!(taps_connection_pool_free(null_mut()));
    null!(taps_connection_group_new(null(), null(), None, null_mut()));
    code!(taps_connection_group_assign(null_mut(), null_mut()));
    code!(taps_connection_group_release_stream(null_mut(), 0, 0));
    code!(taps_connection_group_mark_failed(null_mut(), 0));
    code!(taps_connection_group_set_weight(null_mut(), 0, 0));
    code!(taps_connection_group_member_metrics(null(), 0, null_mut()));
    value!(taps_connection_group_member_fd(null(), 0), -1);
    value!(taps_connection_group_members(null(), null_mut(), 0), 0);
    no_op!(taps_connection_group_free(null_mut()));
}

/// On a real loop: the call that panicked leaves nothing broken behind;
/// the next calls work.
#[test]
fn the_loop_works_after_a_panic() {
    let lp = taps_event_loop_new();
    assert!(!lp.is_null());
    code!(taps_event_loop_run(lp));
    assert_eq!(taps_event_loop_run(lp), 0);
    assert!(taps_event_loop_get_fd(lp) >= 0);
    no_op!(taps_event_loop_free(lp));
    // The panicking free did not free it: free it now.
    taps_event_loop_free(lp);
    let fresh = taps_event_loop_new();
    assert!(!fresh.is_null());
    taps_event_loop_free(fresh);
}
