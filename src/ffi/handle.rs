//! The one way the C ABI turns pointers into references, owned handles and
//! strings (in the manner of rustls-ffi's `Castable` and
//! `try_ref_from_ptr!`).
//!
//! - A handle that owns a boxed Rust value ([`Boxed`]) is made by its
//!   `_new` function with [`into_handle`] or [`handle_or_null`] and freed,
//!   NULL-safe, by its `_free` function with [`free_handle`].
//! - [`try_ref!`] and [`try_mut!`] turn an argument pointer into a
//!   reference, or return from the function: with the function's error
//!   value for a NULL argument ([`OnError`]: `TAPS_ERROR_NULL_ARGUMENT` for
//!   an `int`, NULL with `taps_last_error()` set for a pointer), or with a
//!   given value (`try_ref!(p, else -1)`) where the C contract says NULL
//!   is answered quietly.
//! - [`opt_ref!`] reads an optional pointer (NULL: the defaults).
//! - [`try_str!`] reads a NUL-terminated UTF-8 argument.
//! - [`try_ok!`] unwraps an `api::Result`, or returns its error as above.
//! - [`bytes_out`] hands a byte string out as a pointer and a length.

use super::fail;
use crate::api::Error;
use std::ffi::{c_char, c_int, CStr};

/// A C handle type that owns a boxed Rust value.
pub(crate) trait Boxed: Sized {}

/// Box `value` as a new handle, owned by the caller until its `_free`.
pub(crate) fn into_handle<T: Boxed>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// A new handle, or NULL with the error remembered for `taps_last_error()`.
pub(crate) fn handle_or_null<T: Boxed>(made: crate::api::Result<T>) -> *mut T {
    match made {
        Ok(value) => into_handle(value),
        Err(e) => OnError::on_error(e),
    }
}

/// Free a handle made by [`into_handle`]. NULL is fine.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] and is not used after this.
pub(crate) unsafe fn free_handle<T: Boxed>(ptr: *mut T) {
    if !ptr.is_null() {
        drop(Box::from_raw(ptr));
    }
}

/// What a C function returns on an error: the error's code for a status
/// (`int`), NULL for a constructor; either way the error is remembered as
/// the thread's last error.
pub(crate) trait OnError {
    /// The return value for `e`.
    fn on_error(e: Error) -> Self;
}

impl OnError for c_int {
    fn on_error(e: Error) -> c_int {
        fail(e)
    }
}

impl<T> OnError for *mut T {
    fn on_error(e: Error) -> *mut T {
        fail(e);
        std::ptr::null_mut()
    }
}

/// A UTF-8 string argument: `Err(NullArgument)` for NULL, `Err(bad)` when
/// it is not UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, bad: Error) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::NullArgument);
    }
    CStr::from_ptr(ptr).to_str().map_err(|_| bad)
}

/// A byte string for C: its pointer, and its length in bytes into
/// `*out_len`. NULL (and 0) for none, an empty one or a NULL `out_len`
/// (then nothing is written). The pointer is valid as long as `bytes`.
///
/// `*out_len` is 0 from the start, so a getter whose handle is NULL
/// answers with `bytes_out(None, out_len)`.
pub(crate) fn bytes_out(bytes: Option<&[u8]>, out_len: *mut usize) -> *const u8 {
    // SAFETY: the C contract: NULL or valid for this call.
    let Some(out_len) = (unsafe { out_len.as_mut() }) else { return std::ptr::null() };
    match bytes {
        Some(b) if !b.is_empty() => {
            *out_len = b.len();
            b.as_ptr()
        }
        _ => {
            *out_len = 0;
            std::ptr::null()
        }
    }
}

/// `&*ptr`, or return the function's error value for a NULL argument (or
/// the value after `else`, quietly).
macro_rules! try_ref {
    ($ptr:expr) => {
        // SAFETY: the C contract: NULL or valid for this call.
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return $crate::ffi::handle::OnError::on_error($crate::api::Error::NullArgument),
        }
    };
    ($ptr:expr, else $quiet:expr) => {
        // SAFETY: the C contract: NULL or valid for this call.
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return $quiet,
        }
    };
}

/// An optional pointer argument (NULL: the defaults) as an `Option`.
macro_rules! opt_ref {
    ($ptr:expr) => {
        // SAFETY: the C contract: NULL or valid for this call.
        unsafe { $ptr.as_ref() }
    };
}

/// `&mut *ptr`, or return the function's error value for a NULL argument.
macro_rules! try_mut {
    ($ptr:expr) => {
        // SAFETY: the C contract: NULL or valid, and not shared, for this call.
        match unsafe { $ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::ffi::handle::OnError::on_error($crate::api::Error::NullArgument),
        }
    };
}

/// A UTF-8 string argument, or return the function's error value:
/// `NullArgument` for NULL, `$bad` when it is not UTF-8.
macro_rules! try_str {
    ($ptr:expr, $bad:expr) => {
        // SAFETY: the C contract: NULL or a NUL-terminated string.
        match unsafe { $crate::ffi::handle::c_str($ptr, $bad) } {
            Ok(s) => s,
            Err(e) => return $crate::ffi::handle::OnError::on_error(e),
        }
    };
}

/// The value of an `api::Result`, or return the function's error value.
macro_rules! try_ok {
    ($result:expr) => {
        match $result {
            Ok(v) => v,
            Err(e) => return $crate::ffi::handle::OnError::on_error(e),
        }
    };
}

pub(crate) use {opt_ref, try_mut, try_ok, try_ref, try_str};

#[cfg(test)]
mod tests {
    use super::bytes_out;

    #[test]
    fn bytes_out_gives_pointer_and_length_or_null_and_zero() {
        let bytes = [2u8, b'h', b'2'];
        let mut len = 99usize;
        assert_eq!(bytes_out(Some(&bytes), &mut len), bytes.as_ptr());
        assert_eq!(len, 3);
        len = 99;
        assert!(bytes_out(Some(&[]), &mut len).is_null());
        assert_eq!(len, 0);
        len = 99;
        assert!(bytes_out(None, &mut len).is_null());
        assert_eq!(len, 0);
        assert!(bytes_out(Some(&bytes), std::ptr::null_mut()).is_null());
    }
}
