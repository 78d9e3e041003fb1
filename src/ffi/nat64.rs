//! NAT64 on the event loop (RFC 8305 §7.1, RFC 6052): the prefix IPv4
//! literals are synthesized under, and which attempts were synthesized.

use super::connection::{write_sockaddr, Connection};
use super::event_loop::EventLoop;
use super::handle::{try_mut, try_ok, try_ref, try_str};
use super::{fail, guard};
use crate::api::nat64::Pref64Source;
use crate::api::Error;
use std::ffi::{c_char, c_int};
use std::net::SocketAddr;

/// Synthesize IPv4 literals under the NAT64 prefix `prefix` (text such as
/// "2001:db8:64::/96"; NULL, the default: the prefix the loop discovers
/// from Router Advertisements (RFC 8781) or else DNS64 (RFC 7050), see
/// taps_event_loop_get_pref64_source; a prefix set here wins over a
/// discovered one). In races started
/// after the call, an IPv4 literal the kernel has no route to (a route
/// lookup over rtnetlink finds none: ENETUNREACH, EHOSTUNREACH) is raced as
/// its RFC 6052 IPv6 address under the prefix, as an IPv6 candidate;
/// taps_connection_get_attempt_synthesized_from names the IPv4 address.
/// Under the Well-Known Prefix 64:ff9b::/96 a non-global IPv4 literal
/// (private, loopback, link-local, shared, documentation, ...) is not
/// synthesized (RFC 6052 §3.1). Host names are not synthesized. Per loop:
/// on a shared loop it applies to every client. Any thread.
///
/// Returns 0, TAPS_ERROR_NULL_ARGUMENT (NULL loop), or
/// TAPS_ERROR_INVALID_ARGUMENT (the prefix is kept unchanged;
/// taps_last_error_message says why): not address/length, a length other
/// than RFC 6052's 32, 40, 48, 56, 64, 96, bits set past the length, bits
/// 64-71 of a /96 set, an IPv4-mapped, zero, multicast or link-local prefix.
#[no_mangle]
pub extern "C" fn taps_event_loop_set_pref64(event_loop: *mut EventLoop, prefix: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        if prefix.is_null() {
            lp.0.set_pref64(None);
            return 0;
        }
        let text = try_str!(prefix, Error::InvalidArgument("a NAT64 prefix is UTF-8"));
        let p = try_ok!(crate::api::nat64::parse_pref64(text));
        lp.0.set_pref64(Some(p));
        0
    })
}

/// The loop's NAT64 prefix (taps_event_loop_set_pref64, else the one
/// discovered that has not expired) as text
/// ("2001:db8:64::/96") into `buf` of `buf_len` bytes, NUL-terminated; 50
/// bytes always suffice. Returns the text's length (> 0), 0 when no
/// prefix is set (`buf` gets "" when buf_len > 0), TAPS_ERROR_NULL_ARGUMENT
/// (NULL loop, or NULL buf with buf_len > 0), or TAPS_ERROR_OUT_OF_RANGE
/// when the text and its NUL do not fit (`buf` unchanged). Any thread.
#[no_mangle]
pub extern "C" fn taps_event_loop_get_pref64(event_loop: *const EventLoop, buf: *mut c_char, buf_len: usize) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        if buf.is_null() && buf_len > 0 {
            return fail(Error::NullArgument);
        }
        let text = lp.0.pref64().map(|p| p.to_string()).unwrap_or_default();
        if buf_len == 0 && text.is_empty() {
            return 0;
        }
        if text.len() + 1 > buf_len {
            return fail(Error::OutOfRange);
        }
        // SAFETY: the C contract: buf is writable for buf_len bytes, and
        // text.len() + 1 <= buf_len.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
            *buf.add(text.len()) = 0;
        }
        text.len() as c_int
    })
}

/// Where the loop's NAT64 prefix (taps_event_loop_get_pref64) comes from:
/// TAPS_PREF64_SOURCE_NONE (0, no prefix), TAPS_PREF64_SOURCE_CALLER
/// (taps_event_loop_set_pref64), TAPS_PREF64_SOURCE_ROUTER_ADVERTISEMENT
/// (an RA's PREF64 option, RFC 8781), TAPS_PREF64_SOURCE_DNS (the DNS64
/// answer for ipv4only.arpa, RFC 7050); TAPS_ERROR_NULL_ARGUMENT for a
/// NULL loop. Discovery starts the first time a race has an IPv4 literal
/// the host has no IPv4 route to. Any thread.
#[no_mangle]
pub extern "C" fn taps_event_loop_get_pref64_source(event_loop: *const EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        let source = match lp.0.pref64_source() {
            None => taps_pref64_source::TAPS_PREF64_SOURCE_NONE,
            Some(Pref64Source::Caller) => taps_pref64_source::TAPS_PREF64_SOURCE_CALLER,
            Some(Pref64Source::RouterAdvertisement) => taps_pref64_source::TAPS_PREF64_SOURCE_ROUTER_ADVERTISEMENT,
            Some(Pref64Source::Dns) => taps_pref64_source::TAPS_PREF64_SOURCE_DNS,
        };
        source as c_int
    })
}

/// Where a loop's NAT64 prefix comes from (taps_event_loop_get_pref64_source).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum taps_pref64_source {
    /// No prefix: none set, none discovered.
    TAPS_PREF64_SOURCE_NONE = 0,
    /// Set with taps_event_loop_set_pref64.
    TAPS_PREF64_SOURCE_CALLER = 1,
    /// A Router Advertisement's PREF64 option (RFC 8781).
    TAPS_PREF64_SOURCE_ROUTER_ADVERTISEMENT = 2,
    /// The DNS64 answer for ipv4only.arpa (RFC 7050).
    TAPS_PREF64_SOURCE_DNS = 3,
}

/// Whether attempt `index` (start order) went to an IPv6 address the race
/// synthesized from an IPv4 literal under the loop's NAT64 prefix: 1, with
/// that IPv4 address and the attempt's port as a sockaddr_in into `*out`
/// and its length into `*out_len`; 0 when it was not synthesized (`*out`
/// unchanged). Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_OUT_OF_RANGE
/// (index >= taps_connection_attempt_count).
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_synthesized_from(
    c: *const Connection,
    index: usize,
    out: *mut libc::sockaddr_storage,
    out_len: *mut libc::socklen_t,
) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        let out = try_mut!(out);
        let out_len = try_mut!(out_len);
        let report = try_ok!(c.api().attempt(index));
        match report.synthesized_from {
            Some(v4) => {
                *out_len = write_sockaddr(&SocketAddr::new(v4.into(), report.address.port()), out);
                1
            }
            None => 0,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn new_loop() -> *mut EventLoop {
        super::super::event_loop::taps_event_loop_new()
    }

    #[test]
    fn set_and_get_pref64_through_c() {
        let lp = new_loop();
        let mut buf = [0 as c_char; 64];
        assert_eq!(taps_event_loop_get_pref64(lp, buf.as_mut_ptr(), buf.len()), 0);
        assert_eq!(taps_event_loop_set_pref64(lp, c"2001:db8:64::/96".as_ptr()), 0);
        assert_eq!(taps_event_loop_get_pref64(lp, buf.as_mut_ptr(), buf.len()), 16);
        assert_eq!(taps_event_loop_get_pref64_source(lp), taps_pref64_source::TAPS_PREF64_SOURCE_CALLER as c_int);
        // SAFETY: the library wrote a NUL-terminated string.
        assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(), "2001:db8:64::/96");
        // Too small for text and NUL: out of range, buffer untouched.
        let mut small = [7 as c_char; 16];
        assert_eq!(taps_event_loop_get_pref64(lp, small.as_mut_ptr(), small.len()), Error::OutOfRange.code());
        assert!(small.iter().all(|&b| b == 7));
        // A bad prefix keeps the old one and says why.
        assert_eq!(taps_event_loop_set_pref64(lp, c"2001:db8::/80".as_ptr()), Error::InvalidArgument("").code());
        let msg = unsafe { CStr::from_ptr(super::super::taps_last_error_message()) }.to_str().unwrap().to_owned();
        assert!(msg.contains("32, 40, 48, 56, 64 or 96"), "{msg}");
        assert_eq!(taps_event_loop_get_pref64(lp, buf.as_mut_ptr(), buf.len()), 16);
        assert_eq!(taps_event_loop_set_pref64(lp, std::ptr::null()), 0);
        assert_eq!(taps_event_loop_get_pref64(lp, buf.as_mut_ptr(), buf.len()), 0);
        assert_eq!(buf[0], 0);
        assert_eq!(taps_event_loop_get_pref64(lp, std::ptr::null_mut(), 0), 0);
        assert_eq!(taps_event_loop_get_pref64_source(lp), taps_pref64_source::TAPS_PREF64_SOURCE_NONE as c_int);
        assert_eq!(taps_event_loop_get_pref64_source(std::ptr::null()), Error::NullArgument.code());
        assert_eq!(taps_event_loop_set_pref64(std::ptr::null_mut(), std::ptr::null()), Error::NullArgument.code());
        super::super::event_loop::taps_event_loop_free(lp);
    }
}
