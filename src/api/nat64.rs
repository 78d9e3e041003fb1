//! NAT64 on the event loop (RFC 8305 §7.1, HEv3 -04 §8): the prefix
//! (PREF64) IPv4 literals are synthesized under when the host has no IPv4
//! route to them. The prefix types and rules are those of
//! [`crate::engine::nat64`] (RFC 6052); see docs/guide/ipv6-only.md.

pub use crate::engine::nat64::{Pref64, Pref64Error, SynthesisError};
pub use crate::runtime::pref64::Pref64Source;
use super::event_loop::EventLoop;
use crate::vocabulary::error::{Error, Result};

impl EventLoop {
    /// Synthesize IPv4 literals under the NAT64 prefix `prefix` (`None`,
    /// the default: the prefix the loop discovers, RFC 8781 Router
    /// Advertisements then RFC 7050, see docs/guide/ipv6-only.md; a prefix
    /// set here wins over a discovered one): in races started after the call, an
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

    /// The NAT64 prefix races use now: the one set with
    /// [`set_pref64`](Self::set_pref64), else the one discovered (that
    /// has not expired), if any.
    pub fn pref64(&self) -> Option<Pref64> {
        self.shared.pref64().map(|(p, _)| p)
    }

    /// Where [`pref64`](Self::pref64) came from (`None`: no prefix).
    pub fn pref64_source(&self) -> Option<Pref64Source> {
        self.shared.pref64().map(|(_, s)| s)
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

    /// A race on the api in a network namespace of its own (a thread that
    /// unshares it; skipped without CAP_SYS_ADMIN or `ip`): no IPv4 route
    /// but loopback, the synthesized address 2001:db8:64::a40:2 a local
    /// address with a listener. The IPv4 literal 10.64.0.2 races as that
    /// IPv6 address, connects, and the report names 10.64.0.2; without the
    /// prefix it is pruned (no route: ENETUNREACH).
    #[test]
    fn ipv4_literal_without_route_races_as_its_synthesized_address() {
        let ran = std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return false;
            }
            for args in ["link set lo up", "-6 addr add 2001:db8:64::a40:2/128 dev lo nodad"] {
                match std::process::Command::new("ip").args(args.split(' ')).status() {
                    Ok(s) if s.success() => {}
                    _ => return false,
                }
            }
            in_namespace();
            true
        })
        .join()
        .unwrap();
        if !ran {
            eprintln!("skipped: no CAP_SYS_ADMIN (unshare CLONE_NEWNET) or no ip(8)");
        }
    }

    fn in_namespace() {
        use crate::api::{AttemptOutcome, ConnectionHandler, Preconnection, RemoteEndpoint};
        let listener = std::net::TcpListener::bind("[2001:db8:64::a40:2]:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // The namespace's fresh lo may drop the first packets: wait until a
        // plain connect gets through.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let ms = std::time::Duration::from_millis(200);
        while std::net::TcpStream::connect_timeout(&listener.local_addr().unwrap(), ms).is_err() {
            assert!(std::time::Instant::now() < deadline, "the namespace's lo does not carry a connect");
        }
        struct Quiet;
        impl ConnectionHandler for Quiet {}
        let race = |prefix: Option<&str>| {
            let lp = EventLoop::new().unwrap();
            lp.set_pref64(prefix.map(|p| parse_pref64(p).unwrap()));
            let mut ep = RemoteEndpoint::new();
            ep.with_ipv4(std::net::Ipv4Addr::new(10, 64, 0, 2)).with_port(port).unwrap();
            let pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
            let conn = pre.initiate(Box::new(Quiet)).unwrap();
            lp.run().unwrap();
            (conn.remote_address(), conn.attempt(0).unwrap(), conn.attempt_count())
        };
        let (remote, first, n) = race(Some("2001:db8:64::/96"));
        let v6: std::net::SocketAddr = format!("[2001:db8:64::a40:2]:{port}").parse().unwrap();
        assert_eq!(remote, Some(v6), "{first:?}");
        assert_eq!((first.address, first.outcome, n), (v6, AttemptOutcome::Won, 1));
        assert_eq!(first.synthesized_from, Some(std::net::Ipv4Addr::new(10, 64, 0, 2)));
        let (remote, first, _) = race(None);
        assert_eq!(remote, None);
        // No route: left out before the race (HEv3 -04 §4.1), not attempted.
        assert_eq!((first.outcome, first.os_error), (AttemptOutcome::Pruned, libc::ENETUNREACH));
        assert_eq!(first.synthesized_from, None);
    }
}
