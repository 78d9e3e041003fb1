//! The C ABI: opaque handles, error codes, the panic boundary.
//!
//! A thin skin over [`crate::api`]: every function checks its pointers,
//! converts, calls the Rust API and maps the result to a `taps_error` code.
//! No panic crosses the boundary: each body runs inside [`catch_unwind`]
//! and a panic becomes `TAPS_ERROR_PANIC` (or NULL / a no-op where the
//! function returns no code).
//!
//! [`catch_unwind`]: std::panic::catch_unwind

// These functions are called from C with pointers the C contract makes
// valid or NULL; they check NULL and cannot be `unsafe fn` in C anyway.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::api::Error;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

// In the order of the header: each handle's types and functions in its
// own file.
pub mod event_loop;
pub mod history;
pub mod endpoint;
pub mod properties;
pub mod preconnection;
pub mod connection;
pub mod pool;
pub mod group;
pub mod protocol;
pub mod resolver;
pub mod stage;
pub mod log;
pub mod nat64;
pub mod https;
pub mod dns_report;

mod handle;

/// Status codes. Every fallible function returns `int`: `TAPS_OK` (0) or
/// one of these negative codes; `taps_strerror` describes each.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapsError {
    /// Success.
    TAPS_OK = 0,
    /// A required pointer argument was NULL.
    TAPS_ERROR_NULL_ARGUMENT = -1,
    /// An argument is malformed or out of range (see taps_last_error_message).
    TAPS_ERROR_INVALID_ARGUMENT = -2,
    /// A host name that is empty, longer than 253 characters, or not a
    /// valid name or IP literal (see taps_last_error_message).
    TAPS_ERROR_INVALID_HOSTNAME = -3,
    /// Port 0, a number past 65535, or a service name the system does not
    /// know (see taps_last_error_message).
    TAPS_ERROR_INVALID_PORT = -4,
    /// A taps_racing_options field out of its range (see taps_last_error_message).
    TAPS_ERROR_INVALID_OPTION = -5,
    /// The object is not in a state that allows this call.
    TAPS_ERROR_INVALID_STATE = -6,
    /// An index past the end.
    TAPS_ERROR_OUT_OF_RANGE = -7,
    /// Every DNS query failed or returned no address.
    TAPS_ERROR_RESOLUTION_FAILED = -8,
    /// Every connection attempt failed; each attempt's errno is readable.
    TAPS_ERROR_ALL_ATTEMPTS_FAILED = -9,
    /// The race's total_timeout_ms passed.
    TAPS_ERROR_TIMED_OUT = -10,
    /// The race was cancelled (connection closed or freed, loop freed).
    TAPS_ERROR_CANCELLED = -11,
    /// A system call failed (for a connection error, the errno is in the
    /// closed connection's taps_connection_get_os_error).
    TAPS_ERROR_IO = -12,
    /// Internal error: a panic was caught at the C boundary.
    TAPS_ERROR_PANIC = -13,
    /// The race was cancelled because taps_event_loop_stop_thread stopped its
    /// loop's thread (reported by establishment_error).
    TAPS_ERROR_LOOP_STOPPED = -14,
    /// The selection properties leave no path or no protocol to race
    /// (taps_preconnection_initiate_with_racing), or no path of the race
    /// can route to any address it has (HEv3 draft -04 §4.1; reported by
    /// establishment_error at once, the report lists each candidate left
    /// out as TAPS_ATTEMPT_OUTCOME_PRUNED with its errno).
    TAPS_ERROR_NO_CANDIDATES = -15,
    /// taps_connection_group_assign: the group has no live member (it is
    /// rebuilding).
    TAPS_ERROR_NO_MEMBER = -16,
    /// taps_connection_group_assign: every live member carries its capacity of
    /// streams.
    TAPS_ERROR_ALL_MEMBERS_FULL = -17,
}

thread_local! {
    static LAST_ERROR: RefCell<(c_int, CString)> = RefCell::new((0, CString::default()));
}

/// Remember `e` as this thread's last error and return its code.
pub(crate) fn fail(e: Error) -> c_int {
    let text = CString::new(e.to_string()).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = (e.code(), text));
    e.code()
}

/// `Ok(())` → 0, `Err(e)` → its code (remembered as the last error).
pub(crate) fn status(r: crate::api::Result<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Run an FFI body; a panic becomes `$on_panic` (after recording
/// `TAPS_ERROR_PANIC` as the last error).
macro_rules! guard {
    ($on_panic:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| {
            $crate::ffi::injected_panic_point();
            $body
        })) {
            Ok(v) => v,
            Err(_) => {
                $crate::ffi::fail($crate::api::Error::Panic);
                $on_panic
            }
        }
    };
}

#[cfg(test)]
thread_local! {
    /// Test hook (unit tests only): the next guarded call on this thread
    /// panics inside its boundary. See `panic_tests`.
    pub(crate) static INJECT_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test hook: in the crate's unit tests, panics when `INJECT_PANIC` is
/// set (and clears it); compiled to nothing in every other build, so the
/// library's C API surface has no way to trigger it.
#[inline(always)]
pub(crate) fn injected_panic_point() {
    #[cfg(test)]
    if INJECT_PANIC.with(|p| p.replace(false)) {
        panic!("panic injected inside an extern \"C\" function (unit-test hook)");
    }
}

#[cfg(test)]
mod panic_tests;

/// `TryFrom<c_int>` for a C enum that a C program passes as an `int`: each
/// listed variant's own value, `Error::InvalidArgument($what)` for any
/// other. With `<=> RustType`, also `From` both ways between the C enum
/// and the Rust enum it mirrors, variant for variant (same names).
macro_rules! c_enum {
    ($c:ident, $what:literal, [$($variant:ident),+ $(,)?]) => {
        impl TryFrom<::std::ffi::c_int> for $c {
            type Error = $crate::api::Error;
            fn try_from(value: ::std::ffi::c_int) -> Result<Self, Self::Error> {
                $(
                    if value == $c::$variant as ::std::ffi::c_int {
                        return Ok($c::$variant);
                    }
                )+
                Err($crate::api::Error::InvalidArgument($what))
            }
        }
    };
    ($c:ident <=> $rust:ty, $what:literal, [$($variant:ident),+ $(,)?]) => {
        $crate::ffi::c_enum!($c, $what, [$($variant),+]);
        impl From<$c> for $rust {
            fn from(value: $c) -> Self {
                type R = $rust;
                match value {
                    $($c::$variant => R::$variant),+
                }
            }
        }
        impl From<$rust> for $c {
            fn from(value: $rust) -> Self {
                type R = $rust;
                match value {
                    $(R::$variant => $c::$variant),+
                }
            }
        }
    };
}

/// `From` both ways between a C struct and the Rust struct it mirrors,
/// field for field (same names, same types); the C struct's leading
/// `struct_size` is the full `sizeof` one way and ignored the other. Also
/// [`Growable`] for the C struct, its name `$name` in messages.
macro_rules! c_struct {
    ($c:ident $name:literal <=> $rust:ty { $($field:ident),+ $(,)? }) => {
        impl From<$c> for $rust {
            fn from(value: $c) -> Self {
                type R = $rust;
                R { $($field: value.$field),+ }
            }
        }
        impl From<$rust> for $c {
            fn from(value: $rust) -> Self {
                $c { struct_size: ::std::mem::size_of::<$c>() as u32, $($field: value.$field),+ }
            }
        }
        $crate::ffi::growable!($c $name { $($field),+ });
    };
}

/// [`Growable`] for a C struct whose first field is `struct_size: u32`,
/// followed by `$field`s in order; `$name` is its C name.
macro_rules! growable {
    ($c:ident $name:literal { $($field:ident),+ $(,)? }) => {
        impl $crate::ffi::Growable for $c {
            const TOO_SMALL: &'static str = concat!(
                $name,
                ".struct_size is smaller than its smallest layout (struct_size and its first field) or ends inside a field"
            );
            const UNKNOWN_TAIL: &'static str = concat!(
                $name,
                ".struct_size is larger than this library's ", $name,
                " and a field past its end is not zero (built against a newer header?)"
            );
            fn fields() -> ::std::vec::Vec<(usize, usize)> {
                fn size<T, U>(_: fn(&T) -> &U) -> usize {
                    ::std::mem::size_of::<U>()
                }
                ::std::vec![$({
                    let at = ::std::mem::offset_of!($c, $field);
                    (at, at + size(|s: &$c| &s.$field))
                }),+]
            }
            fn set_struct_size(&mut self) {
                self.struct_size = ::std::mem::size_of::<$c>() as u32;
            }
        }
    };
}

pub(crate) use {c_enum, c_struct, growable, guard};

/// A C struct that can grow: its first field is `uint32_t struct_size`,
/// the bytes the caller's struct has; fields are only ever added at its
/// end. See docs/ABI.md.
pub(crate) trait Growable: Copy {
    /// The message of a `struct_size` below the first field's end, or
    /// inside a field.
    const TOO_SMALL: &'static str;
    /// The message of a larger struct whose unknown tail is not zero.
    const UNKNOWN_TAIL: &'static str;
    /// (offset, end) of each field after `struct_size`, in order.
    fn fields() -> Vec<(usize, usize)>;
    /// Set `struct_size` to this library's `sizeof`.
    fn set_struct_size(&mut self);
}

/// The caller's `struct_size` as this library reads it: 0 means the full
/// struct of this library's header; a size below the first field's end or
/// inside a field is `Error::InvalidArgument`.
fn known_size<T: Growable>(struct_size: u32) -> Result<usize, Error> {
    let full = std::mem::size_of::<T>();
    let size = if struct_size == 0 { full } else { struct_size as usize };
    let fields = T::fields();
    let first_end = fields.first().map_or(full, |f| f.1);
    if size < first_end || fields.iter().any(|&(at, end)| at < size && size < end) {
        return Err(Error::InvalidArgument(T::TOO_SMALL));
    }
    Ok(size)
}

/// Copy the first `size` bytes of the caller's struct at `src` over
/// `default` (fields past `size` keep their defaults).
///
/// # Safety
/// `src` is readable for `size.min(size_of::<T>())` bytes.
unsafe fn overlay<T: Growable>(src: *const u8, size: usize, default: T) -> T {
    let mut out = default;
    let n = size.min(std::mem::size_of::<T>());
    // SAFETY: n fits in both; every byte pattern the C caller may write is
    // a valid value of these repr(C) fields (integers, bool 0/1, nullable
    // function pointers, raw pointers).
    std::ptr::copy_nonoverlapping(src, &mut out as *mut T as *mut u8, n);
    out.set_struct_size();
    out
}

/// Read a growable struct the caller passed by pointer: the fields that
/// fit in its `struct_size`, `default`'s for the rest. A larger struct (a
/// program built against a newer header) is accepted when every byte past
/// this library's struct is zero, as Linux's copy_struct_from_user does.
///
/// # Safety
/// `ptr` points at a readable struct of `struct_size` bytes (its first
/// four bytes at least).
pub(crate) unsafe fn read_growable<T: Growable>(ptr: *const T, default: T) -> Result<T, Error> {
    let size = known_size::<T>(std::ptr::read_unaligned(ptr as *const u32))?;
    let full = std::mem::size_of::<T>();
    if size > full {
        let tail = std::slice::from_raw_parts((ptr as *const u8).add(full), size - full);
        if tail.iter().any(|&b| b != 0) {
            return Err(Error::InvalidArgument(T::UNKNOWN_TAIL));
        }
    }
    Ok(overlay(ptr as *const u8, size, default))
}

/// Read a growable struct the caller passed by value: the fields that fit
/// in its `struct_size`, `default`'s for the rest. A by-value struct has
/// no tail this library could check, so a `struct_size` larger than this
/// library's struct is `Error::InvalidArgument(T::UNKNOWN_TAIL)`.
pub(crate) fn value_growable<T: Growable>(value: T, struct_size: u32, default: T) -> Result<T, Error> {
    let size = known_size::<T>(struct_size)?;
    if size > std::mem::size_of::<T>() {
        return Err(Error::InvalidArgument(T::UNKNOWN_TAIL));
    }
    // SAFETY: value is a whole T.
    Ok(unsafe { overlay(&value as *const T as *const u8, size, default) })
}

/// Write `value` into a growable struct the caller reads: only the fields
/// that fit in the caller's `struct_size` (0: this library's struct); the
/// caller's `struct_size` is kept.
///
/// # Safety
/// `out` points at a writable struct of its `struct_size` bytes.
pub(crate) unsafe fn write_growable<T: Growable>(out: *mut T, value: T) -> Result<(), Error> {
    let struct_size = std::ptr::read_unaligned(out as *const u32);
    let size = known_size::<T>(struct_size)?.min(std::mem::size_of::<T>());
    // struct_size is the first 4 bytes: keep the caller's.
    std::ptr::copy_nonoverlapping((&value as *const T as *const u8).add(4), (out as *mut u8).add(4), size - 4);
    Ok(())
}

/// A static, NUL-terminated description of a status code; "unknown error"
/// for a code that is not a `taps_error`. Never NULL. Any thread.
#[no_mangle]
pub extern "C" fn taps_strerror(code: c_int) -> *const c_char {
    // One static C string per code, built from the Rust descriptions.
    static TEXTS: once_cell::sync::Lazy<Vec<CString>> = once_cell::sync::Lazy::new(|| {
        (Error::LAST_CODE..=0)
            .chain(std::iter::once(1))
            .map(|c| CString::new(Error::describe_code(c)).unwrap_or_default())
            .collect()
    });
    guard!(c"unknown error".as_ptr(), {
        let last = Error::LAST_CODE;
        let index = if (last..=0).contains(&code) { (code - last) as usize } else { (1 - last) as usize };
        TEXTS[index].as_ptr()
    })
}

/// The code of the last failed call on this thread (thread-local, like
/// errno), for functions that return NULL on failure: `taps_event_loop_new`,
/// `taps_remote_endpoint_new`, `taps_preconnection_new`. 0 if none failed yet.
#[no_mangle]
pub extern "C" fn taps_last_error() -> c_int {
    guard!(TapsError::TAPS_ERROR_PANIC as c_int, { LAST_ERROR.with(|l| l.borrow().0) })
}

/// A description of the last failed call on this thread with its detail
/// (which option, which errno). Valid until the next failing call on this
/// thread; "" if none failed yet. Never NULL.
#[no_mangle]
pub extern "C" fn taps_last_error_message() -> *const c_char {
    guard!(c"".as_ptr(), { LAST_ERROR.with(|l| l.borrow().1.as_ptr()) })
}

/// The IP address of a C sockaddr, if it is AF_INET or AF_INET6 (its port
/// is ignored).
///
/// # Safety
/// `sa` is NULL or points at a sockaddr of the size its family implies.
pub(crate) unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<std::net::IpAddr> {
    if sa.is_null() {
        return None;
    }
    match (*sa).sa_family as i32 {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
        }
        _ => None,
    }
}

/// The library's version, "MAJOR.MINOR.PATCH" (Cargo.toml's): the same as
/// TAPS_RACING_VERSION_STRING in the header it was built with. A static,
/// NUL-terminated string; never NULL ("" only if a panic was caught). Any
/// thread.
#[no_mangle]
pub extern "C" fn taps_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version contains a NUL"),
    };
    guard!(c"".as_ptr(), { VERSION.as_ptr() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn codes_match_the_rust_errors() {
        assert_eq!(TapsError::TAPS_ERROR_PANIC as i32, Error::Panic.code());
        assert_eq!(TapsError::TAPS_ERROR_LOOP_STOPPED as i32, Error::LoopStopped.code());
        assert_eq!(TapsError::TAPS_ERROR_NO_CANDIDATES as i32, Error::NoCandidates.code());
        assert_eq!(TapsError::TAPS_ERROR_ALL_MEMBERS_FULL as i32, Error::AllMembersFull.code());
        assert_eq!(TapsError::TAPS_ERROR_ALL_MEMBERS_FULL as i32, Error::LAST_CODE);
        assert_eq!(TapsError::TAPS_ERROR_INVALID_OPTION as i32, Error::InvalidOption("x").code());
        let text = |c| unsafe { CStr::from_ptr(taps_strerror(c)) }.to_str().unwrap();
        assert_eq!(text(-9), "every connection attempt failed");
        assert_eq!(text(-14), "the race was cancelled: its event loop's thread was stopped");
        assert_eq!(text(0), "success");
        assert_eq!(text(-99), "unknown error");
        assert_eq!(text(5), "unknown error");
    }

    #[test]
    fn the_version_is_cargos() {
        let v = unsafe { CStr::from_ptr(taps_version()) }.to_str().unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_panic_becomes_a_code_not_an_abort() {
        let code = guard!(TapsError::TAPS_ERROR_PANIC as c_int, {
            if code_that_panics() {
                panic!("forced");
            }
            0
        });
        assert_eq!(code, TapsError::TAPS_ERROR_PANIC as c_int);
        assert_eq!(taps_last_error(), TapsError::TAPS_ERROR_PANIC as c_int);
    }

    fn code_that_panics() -> bool {
        true
    }

    #[test]
    fn c_enums_take_their_own_values_and_reject_others() {
        use super::connection::AttemptOutcome;
        use super::group::{AssignPolicy, GroupEventKind};
        use super::pool::PoolEventKind;
        use super::preconnection::{BranchKind, RacingTypeCode};
        use super::properties::{InterfaceType, Preference, SelectionProperty};
        assert_eq!(Preference::try_from(Preference::Avoid as c_int), Ok(Preference::Avoid));
        assert_eq!(crate::api::Preference::from(Preference::Prohibit), crate::api::Preference::Prohibit);
        assert_eq!(Preference::from(crate::api::Preference::NoPreference), Preference::NoPreference);
        assert!(matches!(Preference::try_from(5), Err(Error::InvalidArgument(_))));
        assert!(matches!(Preference::try_from(-1), Err(Error::InvalidArgument(_))));
        assert_eq!(InterfaceType::try_from(3), Ok(InterfaceType::Other));
        assert!(InterfaceType::try_from(4).is_err());
        assert_eq!(SelectionProperty::try_from(2), Ok(SelectionProperty::TAPS_SELECTION_PROPERTY_MULTISTREAMING));
        assert!(SelectionProperty::try_from(3).is_err());
        assert_eq!(BranchKind::try_from(2), Ok(BranchKind::Endpoint));
        assert!(BranchKind::try_from(3).is_err());
        assert_eq!(RacingTypeCode::try_from(1), Ok(RacingTypeCode::TAPS_RACING_TYPE_DELAYED));
        assert!(RacingTypeCode::try_from(3).is_err());
        assert_eq!(AssignPolicy::from(crate::api::AssignPolicy::Weighted) as c_int, 2);
        assert_eq!(AttemptOutcome::from(crate::api::AttemptOutcome::Spare) as c_int, 4);
        assert_eq!(AttemptOutcome::from(crate::api::AttemptOutcome::Pruned) as c_int, 5);
        assert_eq!(PoolEventKind::from(crate::api::PoolEventKind::Backoff) as c_int, 7);
        assert_eq!(GroupEventKind::from(crate::api::GroupEventKind::RebuildFailed) as c_int, 4);
    }

    #[test]
    fn growable_structs_read_what_fits_in_struct_size() {
        use super::preconnection::{taps_racing_options_default, RacingOptions};
        let d = taps_racing_options_default();
        assert_eq!(d.struct_size as usize, std::mem::size_of::<RacingOptions>());
        // A smaller struct followed by bytes that must not be read.
        let mut words = [0u32; 8];
        words[0] = 12; // struct_size, connection_attempt_delay_ms, resolution_delay_ms
        words[1] = 1000;
        words[2] = 7;
        words[3..].fill(99);
        let o = unsafe { read_growable(words.as_ptr() as *const RacingOptions, d) }.unwrap();
        assert_eq!((o.connection_attempt_delay_ms, o.resolution_delay_ms), (1000, 7));
        assert_eq!((o.first_address_family_count, o.race_count), (d.first_address_family_count, d.race_count));
        assert_eq!(o.struct_size, d.struct_size);
        for bad in [1, 4, 6, 13] {
            words[0] = bad;
            let e = unsafe { read_growable(words.as_ptr() as *const RacingOptions, d) }.unwrap_err();
            assert_eq!(e.code(), -2, "{bad}");
            assert!(e.to_string().contains("taps_racing_options.struct_size"), "{e}");
        }
        // Larger: the tail past our struct must be zero.
        let full = std::mem::size_of::<RacingOptions>() / 4;
        words = [0; 8];
        words[0] = 32;
        words[full - 1] = 2; // race_count
        assert_eq!(unsafe { read_growable(words.as_ptr() as *const RacingOptions, d) }.unwrap().race_count, 2);
        words[7] = 1;
        assert!(unsafe { read_growable(words.as_ptr() as *const RacingOptions, d) }.is_err());
        // Size 0 is the full struct.
        words[0] = 0;
        assert_eq!(unsafe { read_growable(words.as_ptr() as *const RacingOptions, d) }.unwrap().race_count, 2);
        // Callbacks by value: larger is refused, smaller hides the rest.
        let mut cb = super::connection::ConnectionCallbacks::none();
        cb.user_data = 8 as *mut std::ffi::c_void;
        let size = cb.struct_size;
        assert!(value_growable(cb, size + 8, super::connection::ConnectionCallbacks::none()).is_err());
        let small = value_growable(cb, 16, super::connection::ConnectionCallbacks::none()).unwrap();
        assert!(small.user_data.is_null());
        assert_eq!(value_growable(cb, 0, super::connection::ConnectionCallbacks::none()).unwrap().user_data, cb.user_data);
    }

    #[test]
    fn c_structs_mirror_the_rust_options_field_for_field() {
        let c = super::preconnection::taps_racing_options_default();
        assert_eq!(crate::api::RacingOptions::from(c), crate::api::RacingOptions::default());
        let mut p = super::pool::taps_pool_options_default();
        p.backoff_jitter_percent = 7;
        let back = crate::api::PoolOptions::from(p);
        assert_eq!(back.backoff_jitter_percent, 7);
        assert_eq!(super::pool::PoolOptions::from(back), p);
        let mut g = super::group::taps_group_options_default();
        g.policy = 2;
        assert_eq!(crate::api::GroupOptions::from(g).policy, 2);
    }
}
