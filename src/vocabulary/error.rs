//! The library's one error type, with the stable numeric codes of the C
//! header's `TapsError`.

use std::fmt;

/// Why a call or a race failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A required pointer argument was NULL (C API only).
    NullArgument,
    /// An argument is malformed or out of range; the text says which.
    InvalidArgument(&'static str),
    /// A host name that is empty, too long, has characters a host name
    /// cannot have, or looks numeric without being a dotted-quad IPv4
    /// address; the text says which.
    InvalidHostname(&'static str),
    /// Port 0, a number past 65535, text with spaces or signs, or a
    /// service name the system does not know; the text says which.
    InvalidPort(&'static str),
    /// A RacingOptions field out of its documented range; the text says which.
    InvalidOption(&'static str),
    /// The object is not in a state that allows this call.
    InvalidState,
    /// An index past the end.
    OutOfRange,
    /// Every DNS query failed or had no address (the getaddrinfo code, or 0).
    ResolutionFailed(i32),
    /// Every attempt failed (the errno of the last one).
    AllAttemptsFailed(i32),
    /// The race's total timeout passed.
    TimedOut,
    /// The race was cancelled (connection closed or freed, loop freed).
    Cancelled,
    /// A system call failed with this errno.
    Io(i32),
    /// A panic was caught at the C boundary.
    Panic,
    /// The race was cancelled because its loop's thread was stopped
    /// (`EventLoop::stop_thread`).
    LoopStopped,
    /// The selection properties left no path or no protocol to race, or
    /// no path of the race can route to any of its addresses (HEv3 -04
    /// §4.1: the report lists what was left out, and why).
    NoCandidates,
    /// A connection group has no live member.
    NoMember,
    /// Every member of a connection group carries its capacity of streams.
    AllMembersFull,
}

impl Error {
    /// The most negative code: codes run from -1 down to this one.
    pub const LAST_CODE: i32 = -17;

    /// The C code (`TapsError`), always negative.
    pub fn code(&self) -> i32 {
        match self {
            Error::NullArgument => -1,
            Error::InvalidArgument(_) => -2,
            Error::InvalidHostname(_) => -3,
            Error::InvalidPort(_) => -4,
            Error::InvalidOption(_) => -5,
            Error::InvalidState => -6,
            Error::OutOfRange => -7,
            Error::ResolutionFailed(_) => -8,
            Error::AllAttemptsFailed(_) => -9,
            Error::TimedOut => -10,
            Error::Cancelled => -11,
            Error::Io(_) => -12,
            Error::Panic => -13,
            Error::LoopStopped => -14,
            Error::NoCandidates => -15,
            Error::NoMember => -16,
            Error::AllMembersFull => -17,
        }
    }

    /// The static description of a C code; "unknown error" for others.
    pub fn describe_code(code: i32) -> &'static str {
        match code {
            0 => "success",
            -1 => "a required pointer argument was NULL",
            -2 => "invalid argument",
            -3 => "invalid host name",
            -4 => "invalid port or service",
            -5 => "racing option out of range",
            -6 => "operation not allowed in the object's current state",
            -7 => "index out of range",
            -8 => "name resolution failed: no address for the host",
            -9 => "every connection attempt failed",
            -10 => "the race timed out",
            -11 => "the race was cancelled",
            -12 => "a system call failed",
            -13 => "internal error: a panic was caught at the C boundary",
            -14 => "the race was cancelled: its event loop's thread was stopped",
            -15 => "no candidate: the selection properties leave no path or protocol to race, or no path has a route to any address",
            -16 => "the connection group has no live member",
            -17 => "every member of the connection group carries its capacity of streams",
            _ => "unknown error",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Error::describe_code(self.code()))?;
        match self {
            Error::InvalidArgument(what)
            | Error::InvalidOption(what)
            | Error::InvalidHostname(what)
            | Error::InvalidPort(what) => write!(f, ": {what}"),
            Error::AllAttemptsFailed(e) | Error::Io(e) if *e != 0 => {
                write!(f, " ({})", std::io::Error::from_raw_os_error(*e))
            }
            Error::ResolutionFailed(e) if *e != 0 => {
                // SAFETY: gai_strerror returns a static string for any code.
                let s = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(*e)) };
                write!(f, " ({})", s.to_string_lossy())
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_text() {
        let mut seen = std::collections::HashSet::new();
        for code in Error::LAST_CODE..=0 {
            let text = Error::describe_code(code);
            assert_ne!(text, "unknown error");
            assert!(seen.insert(text));
        }
        assert_eq!(Error::describe_code(Error::LAST_CODE - 1), "unknown error");
        assert_eq!(Error::describe_code(7), "unknown error");
    }

    #[test]
    fn display_carries_the_detail() {
        let s = Error::AllAttemptsFailed(libc::ECONNREFUSED).to_string();
        assert!(s.contains("refused"), "{s}");
    }
}
