//! Host and service parsing: `taps_remote_endpoint_with_hostname` and
//! `taps_remote_endpoint_with_service` (C API, the bytes up to the first NUL)
//! and the Rust API on the same text must agree, and what they accept must
//! follow the documented rules (an IP literal, IPv6 possibly in brackets,
//! or a name of at most 253 characters with labels of 1 to 63 letters,
//! digits, '-' or '_', whose last label is not a number; a decimal port 1
//! to 65535 or a known service name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use std::net::IpAddr;
use taps_racing::api::RemoteEndpoint;
use taps_racing::ffi::endpoint::*;

fn documented_host(text: &str) -> bool {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    // A last label inet_aton would read as a number (decimal, or 0x and hex
    // digits) is refused: "127.1" is not a name, and not an IPv4 literal.
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => last.bytes().all(|b| b.is_ascii_digit()),
    };
    !name.is_empty()
        && text.len() <= 253
        && !numeric
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fuzz_target!(|data: &[u8]| {
    // host, then service after the first 0xff byte (0xff is never UTF-8).
    let (host, service) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let ep = taps_remote_endpoint_new();
    assert!(!ep.is_null());
    for (bytes, is_host) in [(host, true), (service, false)] {
        // What C sees: the bytes up to the first NUL.
        let c_text = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
        let c = CString::new(c_text).unwrap();
        let rc = if is_host {
            taps_remote_endpoint_with_hostname(ep, c.as_ptr())
        } else {
            taps_remote_endpoint_with_service(ep, c.as_ptr())
        };
        assert!(rc == 0 || rc == -3 || rc == -4, "unexpected code {rc}");
        let Ok(text) = std::str::from_utf8(c_text) else {
            assert_ne!(rc, 0, "non-UTF-8 accepted");
            continue;
        };
        let mut r = RemoteEndpoint::new();
        let rust_ok = if is_host { r.with_hostname(text).is_ok() } else { r.with_service(text).is_ok() };
        assert_eq!(rust_ok, rc == 0, "C and Rust disagree on {text:?}");
        if is_host {
            assert_eq!(rust_ok, documented_host(text), "host {text:?}");
        } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let want = matches!(text.parse::<u16>(), Ok(p) if p != 0);
            assert_eq!(rust_ok, want, "service {text:?}");
            if rust_ok {
                assert_eq!(r.port(), text.parse::<u16>().ok());
            }
        } else if rust_ok {
            assert!(r.port().is_some_and(|p| p != 0));
        }
    }
    taps_remote_endpoint_free(ep);
});
