//! NAT64 on the event loop (RFC 8305 §7.1, HEv3 -04 §8): the prefix
//! (PREF64) IPv4 literals are synthesized under when the host has no IPv4
//! route to them. The prefix types and rules are those of
//! [`crate::engine::nat64`] (RFC 6052); see docs/guide/ipv6-only.md.

pub use crate::engine::nat64::{Pref64, Pref64Error, SynthesisError};
use super::event_loop::EventLoop;
use crate::vocabulary::error::{Error, Result};

impl EventLoop {
    /// Synthesize IPv4 literals under the NAT64 prefix `prefix` (`None`:
    /// no synthesis, the default): in races started after the call, an
    /// IPv4 literal the kernel has no route to (a route lookup over
    /// rtnetlink: `ENETUNREACH` or `EHOSTUNREACH`) is raced as its RFC 6052
    /// IPv6 address under `prefix`, as an IPv6 candidate; its
    /// [`AttemptReport::synthesized_from`](super::AttemptReport::synthesized_from)
    /// names the IPv4 address. Under the Well-Known Prefix 64:ff9b::/96 a
    /// non-global IPv4 literal (private, loopback, ...) is not synthesized
    /// (RFC 6052 §3.1). Names and their A answers are not synthesized.
    /// Per loop: on a shared loop it applies to every client. Any thread.
    pub fn set_pref64(&self, prefix: Option<Pref64>) {
        self.shared.set_pref64(prefix);
    }

    /// The NAT64 prefix set with [`set_pref64`](Self::set_pref64), if any.
    pub fn pref64(&self) -> Option<Pref64> {
        self.shared.pref64()
    }
}

/// Parse `text` (`"2001:db8:64::/96"`) as a NAT64 prefix.
///
/// # Errors
/// [`Error::InvalidArgument`] saying why: not `address/length`, a length
/// other than RFC 6052's 32, 40, 48, 56, 64, 96, bits set past the length,
/// bits 64–71 of a /96 set, or a prefix no NAT64 can have (IPv4-mapped,
/// multicast, link-local).
pub fn parse_pref64(text: &str) -> Result<Pref64> {
    text.parse().map_err(|e| {
        Error::InvalidArgument(match e {
            Pref64Error::Syntax(_) => "a NAT64 prefix is an IPv6 prefix written address/length",
            Pref64Error::Length(_) => "a NAT64 prefix length is 32, 40, 48, 56, 64 or 96 (RFC 6052 §2.2)",
            Pref64Error::HostBits => "a NAT64 prefix has bits set past its length",
            Pref64Error::UOctet => "bits 64 to 71 of a /96 NAT64 prefix must be zero (RFC 6052 §2.2)",
            Pref64Error::Special(_) => "an IPv4-mapped, zero, multicast or link-local prefix is not a NAT64 prefix",
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_keeps_the_prefix_it_is_given() {
        let lp = EventLoop::new().unwrap();
        assert_eq!(lp.pref64(), None);
        let p = parse_pref64("2001:db8:64::/96").unwrap();
        lp.set_pref64(Some(p));
        assert_eq!(lp.pref64(), Some(p));
        lp.set_pref64(None);
        assert_eq!(lp.pref64(), None);
    }

    #[test]
    fn bad_prefixes_say_why() {
        for (text, why) in [
            ("2001:db8::/80", "32, 40, 48, 56, 64 or 96"),
            ("nonsense", "address/length"),
            ("2001:db8::1/32", "past its length"),
            ("2001:db8:0:0:100::/96", "bits 64 to 71"),
            ("::ffff:0:0/96", "IPv4-mapped"),
        ] {
            match parse_pref64(text) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(why), "{text}: {m}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
