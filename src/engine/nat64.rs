//! NAT64 prefixes (PREF64): the IPv4-embedded IPv6 address format of
//! RFC 6052, prefix discovery from the answer for `ipv4only.arpa`
//! (RFC 7050 §3) and the PREF64 option of Router Advertisements
//! (RFC 8781 §4).
//!
//! Pure: values in, values out. The runtime feeds in what it read (an
//! AAAA answer, an ND user option from rtnetlink, a prefix the caller
//! set) and uses the results for synthesis (an IPv4 address made an IPv6
//! destination under the prefix, RFC 8305 §7) and de-synthesis (an IPv6
//! address recognised as carrying an IPv4 address).
//!
//! Security rules kept here, whatever the caller passes:
//!
//! - only the prefix lengths RFC 6052 §2.2 defines (/32 /40 /48 /56 /64
//!   /96) are accepted, and bits 64 to 71 of a prefix (the "u" octet)
//!   must be zero ([`Pref64::new`]);
//! - the Well-Known Prefix 64:ff9b::/96 never carries a non-global IPv4
//!   address (RFC 6052 §3.1; [`synthesize`] refuses, naming the block from
//!   [`NON_GLOBAL_V4`]); a Network-Specific Prefix has no such limit;
//! - an RFC 7050 answer only yields prefixes whose address carries one of
//!   the two well-known IPv4-only addresses at an RFC 6052 position with a
//!   zero u-octet and suffix; anything else in the answer is ignored.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The prefix lengths RFC 6052 §2.2 defines, longest first (the order in
/// which RFC 7050 §3 discovery tries them).
pub const PREFIX_LENGTHS: [u8; 6] = [96, 64, 56, 48, 40, 32];

/// The Well-Known IPv4-only Address of RFC 7050 §2.2 (192.0.0.170).
pub const IPV4ONLY_PRIMARY: Ipv4Addr = Ipv4Addr::new(192, 0, 0, 170);
/// The second well-known IPv4-only address of RFC 7050 §2.2 (192.0.0.171).
pub const IPV4ONLY_SECONDARY: Ipv4Addr = Ipv4Addr::new(192, 0, 0, 171);

/// The IPv4 blocks RFC 6052 §3.1 forbids under the Well-Known Prefix:
/// the RFC 1918 private blocks, the special blocks of RFC 5735 §3 and
/// the shared address space of RFC 6598. `(network, length, name)`.
pub const NON_GLOBAL_V4: [(Ipv4Addr, u8, &str); 16] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this\" network (RFC 5735 §3)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private-use (RFC 1918)"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared address space (RFC 6598)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (RFC 5735 §3)"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (RFC 3927)"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private-use (RFC 1918)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments (RFC 5735 §3)"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation TEST-NET-1 (RFC 5737)"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast (RFC 5735 §3)"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private-use (RFC 1918)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking (RFC 2544)"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation TEST-NET-2 (RFC 5737)"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation TEST-NET-3 (RFC 5737)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (RFC 5771)"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (RFC 1112)"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "limited broadcast (RFC 919)"),
];

/// The block of [`NON_GLOBAL_V4`] holding `addr`, by name, or `None` for
/// a global address.
pub fn non_global_block(addr: Ipv4Addr) -> Option<&'static str> {
    let a = u32::from(addr);
    NON_GLOBAL_V4.iter().find_map(|&(net, len, name)| {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        (a & mask == u32::from(net)).then_some(name)
    })
}

/// Whether `addr` is scoped to this host or link, where a NAT64 cannot
/// take it (HEv3 -04 §8.1: 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16,
/// 255.255.255.255/32 "do not require NAT64 address synthesis"): such a
/// literal is never synthesized, under any prefix.
pub fn is_host_or_link_scoped(addr: Ipv4Addr) -> bool {
    let o = addr.octets();
    o[0] == 0 || o[0] == 127 || (o[0] == 169 && o[1] == 254) || addr == Ipv4Addr::BROADCAST
}

/// Why a prefix is not a PREF64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pref64Error {
    /// Not an `address/length` text with an IPv6 address and a number.
    Syntax(String),
    /// A length RFC 6052 §2.2 does not define (only 32, 40, 48, 56, 64
    /// and 96 are).
    Length(u8),
    /// Bits past the prefix length are set (`2001:db8::1/32`).
    HostBits,
    /// Bits 64 to 71 of a /96 prefix are not zero (RFC 6052 §2.2).
    UOctet,
    /// A prefix no NAT64 can use: its first 64 bits are zero (::/96 and
    /// the IPv4-mapped ::ffff:0:0/96 of RFC 4291 §2.5.5, which a socket
    /// would send as IPv4), or it is multicast (ff00::/8) or link-local
    /// (fe80::/10).
    Special(&'static str),
}

impl fmt::Display for Pref64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pref64Error::Syntax(s) => write!(f, "not an IPv6 prefix (address/length): {s:?}"),
            Pref64Error::Length(n) => {
                write!(f, "prefix length /{n} is not one of RFC 6052's /32 /40 /48 /56 /64 /96")
            }
            Pref64Error::HostBits => write!(f, "bits past the prefix length are set"),
            Pref64Error::UOctet => write!(f, "bits 64 to 71 (the u octet) must be zero (RFC 6052 §2.2)"),
            Pref64Error::Special(what) => write!(f, "a {what} prefix cannot be a NAT64 prefix"),
        }
    }
}

impl std::error::Error for Pref64Error {}

/// A NAT64 prefix (PREF64, "Pref64::/n" in RFC 6052): an IPv6 prefix of
/// one of the lengths of RFC 6052 §2.2, its bits past the length zero and
/// bits 64 to 71 zero. Built only through [`Pref64::new`] or parsing, so a
/// value always satisfies those rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pref64 {
    prefix: Ipv6Addr,
    len: u8,
}

impl Pref64 {
    /// The Well-Known Prefix 64:ff9b::/96 (RFC 6052 §2.1).
    pub const WELL_KNOWN: Pref64 = Pref64 { prefix: Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), len: 96 };

    /// The prefix `prefix/len`; an error for a length RFC 6052 does not
    /// define, bits set past the length, a non-zero u octet, or a special
    /// prefix ([`Pref64Error::Special`]).
    pub fn new(prefix: Ipv6Addr, len: u8) -> Result<Pref64, Pref64Error> {
        if !PREFIX_LENGTHS.contains(&len) {
            return Err(Pref64Error::Length(len));
        }
        let bits = u128::from(prefix);
        if bits & !mask(len) != 0 {
            return Err(Pref64Error::HostBits);
        }
        if prefix.octets()[8] != 0 {
            return Err(Pref64Error::UOctet);
        }
        let seg = prefix.segments();
        if bits >> 64 == 0 {
            let what = if seg[5] == 0xffff { "IPv4-mapped" } else { "zero-/64 (IPv4-compatible)" };
            return Err(Pref64Error::Special(what));
        }
        if seg[0] >> 8 == 0xff {
            return Err(Pref64Error::Special("multicast"));
        }
        if seg[0] & 0xffc0 == 0xfe80 {
            return Err(Pref64Error::Special("link-local"));
        }
        Ok(Pref64 { prefix, len })
    }

    /// The prefix from the 96 high bits of an RA's PREF64 option (RFC
    /// 8781 §4) and the length its PLC gives: the bits past the length
    /// are ignored, as §4 asks.
    fn from_high_bits(high: [u8; 12], len: u8) -> Result<Pref64, Pref64Error> {
        let mut octets = [0u8; 16];
        octets[..12].copy_from_slice(&high);
        let bits = u128::from_be_bytes(octets) & mask(len);
        Pref64::new(Ipv6Addr::from(bits), len)
    }

    /// The prefix's address (bits past the length are zero).
    pub fn prefix(&self) -> Ipv6Addr {
        self.prefix
    }

    /// The prefix length in bits: 32, 40, 48, 56, 64 or 96.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is the Well-Known Prefix 64:ff9b::/96.
    pub fn is_well_known(&self) -> bool {
        *self == Pref64::WELL_KNOWN
    }

    /// Whether `addr`'s first [`len`](Self::len) bits are the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask(self.len) == u128::from(self.prefix)
    }

    /// The IPv4-embedded IPv6 address of `v4` under this prefix, by the
    /// format of RFC 6052 §2.2 (u octet and suffix zero), with no policy:
    /// see [`synthesize`] for the one to use for destinations.
    pub fn embed(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let mut o = self.prefix.octets();
        let v = v4.octets();
        let start = usize::from(self.len / 8);
        let mut at = start;
        for b in v {
            if at == 8 {
                at = 9; // skip the u octet
            }
            o[at] = b;
            at += 1;
        }
        Ipv6Addr::from(o)
    }

    /// The IPv4 address at this prefix's position in `addr` and whether
    /// the u octet and the suffix are zero; `None` when `addr` is not
    /// inside the prefix.
    fn carried(&self, addr: Ipv6Addr) -> Option<(Ipv4Addr, bool)> {
        if !self.contains(addr) {
            return None;
        }
        let o = addr.octets();
        let mut v = [0u8; 4];
        let mut at = usize::from(self.len / 8);
        for b in &mut v {
            if at == 8 {
                at = 9;
            }
            *b = o[at];
            at += 1;
        }
        let clean = o[8] == 0 && o[at..].iter().all(|&b| b == 0);
        Some((Ipv4Addr::from(v), clean))
    }
}

/// The mask of the first `len` bits of an IPv6 address.
fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl fmt::Display for Pref64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.len)
    }
}

impl FromStr for Pref64 {
    type Err = Pref64Error;

    /// `"2001:db8:64::/96"`: an IPv6 address, `/`, a decimal length.
    fn from_str(s: &str) -> Result<Pref64, Pref64Error> {
        let syntax = || Pref64Error::Syntax(s.to_string());
        let (addr, len) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| syntax())?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let len: u16 = len.parse().map_err(|_| syntax())?;
        let len = u8::try_from(len).map_err(|_| syntax())?;
        Pref64::new(addr, len)
    }
}

/// Why an IPv4 address is not synthesized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SynthesisError {
    /// The prefix is the Well-Known Prefix and the address is not global
    /// (RFC 6052 §3.1): the address and the name of its block.
    NonGlobalUnderWellKnown(Ipv4Addr, &'static str),
}

impl fmt::Display for SynthesisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SynthesisError::NonGlobalUnderWellKnown(a, block) => write!(
                f,
                "{a} is {block}: the Well-Known Prefix 64:ff9b::/96 never carries a non-global IPv4 address (RFC 6052 §3.1)"
            ),
        }
    }
}

impl std::error::Error for SynthesisError {}

/// The IPv6 destination for `v4` under `prefix` (RFC 6052 §2.2, for
/// RFC 8305 §7 synthesis); an error when `prefix` is the Well-Known
/// Prefix and `v4` is in one of the [`NON_GLOBAL_V4`] blocks (RFC 6052
/// §3.1). A Network-Specific Prefix carries any IPv4 address.
pub fn synthesize(prefix: &Pref64, v4: Ipv4Addr) -> Result<Ipv6Addr, SynthesisError> {
    if prefix.is_well_known() {
        if let Some(block) = non_global_block(v4) {
            return Err(SynthesisError::NonGlobalUnderWellKnown(v4, block));
        }
    }
    Ok(prefix.embed(v4))
}

/// De-synthesis: the IPv4 address `addr` carries when it is inside
/// `prefix` (RFC 6052 §2.2), `None` otherwise. For prefixes shorter than
/// /96 the u octet must be zero (an address with it set is no
/// IPv4-embedded address); the suffix bits are not checked (RFC 6052 §2.2
/// reserves them). An address under the Well-Known Prefix that carries a
/// non-global IPv4 address is not one a NAT64 serves (§3.1): `None`.
pub fn extract(prefix: &Pref64, addr: Ipv6Addr) -> Option<Ipv4Addr> {
    let (v4, _) = prefix.carried(addr)?;
    if prefix.len < 96 && addr.octets()[8] != 0 {
        return None;
    }
    if prefix.is_well_known() && non_global_block(v4).is_some() {
        return None;
    }
    Some(v4)
}

/// The prefix of length `len` under which `addr` carries `wka` with a
/// zero u octet and suffix: `addr`'s first `len` bits, if they make a
/// valid [`Pref64`] and `wka` is there.
fn wka_at(addr: Ipv6Addr, wka: Ipv4Addr, len: u8) -> Option<Pref64> {
    let p = Pref64::new(Ipv6Addr::from(u128::from(addr) & mask(len)), len).ok()?;
    match p.carried(addr) {
        Some((v4, true)) if v4 == wka => Some(p),
        _ => None,
    }
}

/// RFC 7050 §3: the NAT64 prefixes an AAAA answer for `ipv4only.arpa`
/// reveals, in answer order, without duplicates; empty when there is no
/// answer or no address in it carries a well-known IPv4-only address.
///
/// Each address is searched for 192.0.0.170 and 192.0.0.171 at every
/// RFC 6052 length, /96 first. A position counts only with a zero u
/// octet and a zero suffix, and then at most one position matches (each
/// position starts at a different octet, where another would need 0x00,
/// 0xaa or 0xab, or a zero suffix): a prefix whose own bits spell a
/// well-known address is read at its true length. Addresses that carry
/// neither well-known address ("wrong answers": a non-DNS64 resolver's
/// real AAAA, a spoofed record) and those whose prefix [`Pref64::new`]
/// refuses are ignored.
pub fn discover_rfc7050(answers: &[Ipv6Addr]) -> Vec<Pref64> {
    let mut out: Vec<Pref64> = Vec::new();
    for &addr in answers {
        let hit = PREFIX_LENGTHS.iter().find_map(|&len| {
            wka_at(addr, IPV4ONLY_PRIMARY, len).or_else(|| wka_at(addr, IPV4ONLY_SECONDARY, len))
        });
        if let Some(p) = hit {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The type of the PREF64 option in Router Advertisements (RFC 8781 §4).
pub const ND_OPT_PREF64: u8 = 38;

/// A PREF64 option of a Router Advertisement (RFC 8781 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pref64Option {
    /// The NAT64 prefix.
    pub prefix: Pref64,
    /// How long the prefix may be used, in seconds: the scaled lifetime
    /// times 8 (0 to 65528). 0 means "stop using it now".
    pub lifetime_s: u32,
}

/// Why a PREF64 option was ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaOptionError {
    /// Fewer than 16 bytes.
    Truncated(usize),
    /// Not option type 38.
    Type(u8),
    /// A Length field other than 2 (units of 8 octets); RFC 8781 §4 asks
    /// the receiver to ignore the option.
    Length(u8),
    /// A Prefix Length Code other than 0 to 5 (RFC 8781 §4).
    Plc(u8),
    /// A /96 prefix whose bits 64 to 71 are not zero (RFC 6052 §2.2).
    Prefix(Pref64Error),
}

impl fmt::Display for RaOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaOptionError::Truncated(n) => write!(f, "PREF64 option of {n} bytes (needs 16)"),
            RaOptionError::Type(t) => write!(f, "ND option type {t} is not PREF64 (38)"),
            RaOptionError::Length(l) => write!(f, "PREF64 option length {l} (must be 2)"),
            RaOptionError::Plc(p) => write!(f, "PREF64 prefix length code {p} (valid: 0 to 5)"),
            RaOptionError::Prefix(e) => write!(f, "PREF64 prefix: {e}"),
        }
    }
}

impl std::error::Error for RaOptionError {}

/// The prefix length a PREF64 option's Prefix Length Code stands for
/// (RFC 8781 §4): 0 → 96, 1 → 64, 2 → 56, 3 → 48, 4 → 40, 5 → 32.
pub fn plc_to_len(plc: u8) -> Option<u8> {
    match plc {
        0 => Some(96),
        1 => Some(64),
        2 => Some(56),
        3 => Some(48),
        4 => Some(40),
        5 => Some(32),
        _ => None,
    }
}

/// Parse one ND option (type, length, body: the bytes Linux hands over in
/// RTM_NEWNDUSEROPT) as a PREF64 option (RFC 8781 §4). Bytes past the
/// option's 16 are not read.
pub fn parse_pref64_option(opt: &[u8]) -> Result<Pref64Option, RaOptionError> {
    if opt.len() < 2 {
        return Err(RaOptionError::Truncated(opt.len()));
    }
    if opt[0] != ND_OPT_PREF64 {
        return Err(RaOptionError::Type(opt[0]));
    }
    if opt[1] != 2 {
        return Err(RaOptionError::Length(opt[1]));
    }
    if opt.len() < 16 {
        return Err(RaOptionError::Truncated(opt.len()));
    }
    let word = u16::from_be_bytes([opt[2], opt[3]]);
    let plc = (word & 0x7) as u8;
    let len = plc_to_len(plc).ok_or(RaOptionError::Plc(plc))?;
    let mut high = [0u8; 12];
    high.copy_from_slice(&opt[4..16]);
    // Every PLC length but /96 keeps bits 64 to 71 out of the prefix; a
    // /96 prefix must have them zero.
    let prefix = Pref64::from_high_bits(high, len).map_err(RaOptionError::Prefix)?;
    Ok(Pref64Option { prefix, lifetime_s: u32::from(word >> 3) * 8 })
}

/// A PREF64 option for `prefix` with `lifetime_s` seconds (rounded up to
/// the next multiple of 8, at most 65528): the 16 bytes of RFC 8781 §4,
/// as a router sends them.
pub fn encode_pref64_option(prefix: &Pref64, lifetime_s: u32) -> [u8; 16] {
    let plc: u16 = match prefix.len() {
        96 => 0,
        64 => 1,
        56 => 2,
        48 => 3,
        40 => 4,
        _ => 5,
    };
    let scaled = lifetime_s.div_ceil(8).min(8191) as u16;
    let word = (scaled << 3) | plc;
    let mut o = [0u8; 16];
    o[0] = ND_OPT_PREF64;
    o[1] = 2;
    o[2..4].copy_from_slice(&word.to_be_bytes());
    o[4..16].copy_from_slice(&prefix.prefix().octets()[..12]);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pref64 {
        s.parse().unwrap()
    }

    fn a6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const EXAMPLE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 33);

    /// The examples of RFC 6052 §2.4 (192.0.2.33 under each
    /// Network-Specific Prefix length, and under the Well-Known Prefix).
    const RFC6052_EXAMPLES: [(&str, &str); 7] = [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
    ];

    #[test]
    fn rfc6052_examples_embed_at_every_length() {
        for (prefix, expected) in RFC6052_EXAMPLES {
            assert_eq!(p(prefix).embed(EXAMPLE_V4), a6(expected), "{prefix}");
        }
    }

    #[test]
    fn rfc6052_examples_extract_at_every_length() {
        for (prefix, addr) in RFC6052_EXAMPLES.iter().take(6) {
            assert_eq!(extract(&p(prefix), a6(addr)), Some(EXAMPLE_V4), "{prefix}");
        }
        // An address outside the prefix carries nothing.
        assert_eq!(extract(&p("2001:db8:122::/48"), a6("2001:db8:123:c000:2:2100::")), None);
        // A set u octet: not an IPv4-embedded address.
        assert_eq!(extract(&p("2001:db8:122:344::/64"), a6("2001:db8:122:344:ffc0:2:2100:0")), None);
        // The suffix is reserved, not checked.
        assert_eq!(extract(&p("2001:db8::/32"), a6("2001:db8:c000:221::1")), Some(EXAMPLE_V4));
    }

    #[test]
    fn synthesis_round_trips_every_length_and_address_byte() {
        for len in PREFIX_LENGTHS {
            let prefix = Pref64::new(Ipv6Addr::from(0x2001_0db8_aabb_ccdd_0000_0000_0000_0000u128 & mask(len)), len)
                .unwrap();
            for v4 in [Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(255, 254, 253, 252), Ipv4Addr::new(1, 0, 0, 1)] {
                let v6 = synthesize(&prefix, v4).unwrap();
                assert!(prefix.contains(v6));
                assert_eq!(v6.octets()[8], 0, "u octet at /{len}");
                assert_eq!(extract(&prefix, v6), Some(v4), "/{len}");
            }
        }
    }

    #[test]
    fn lengths_rfc6052_does_not_define_are_refused() {
        for len in [0u8, 8, 16, 24, 33, 63, 72, 80, 88, 95, 97, 104, 112, 120, 128] {
            assert_eq!(Pref64::new(Ipv6Addr::UNSPECIFIED, len), Err(Pref64Error::Length(len)), "/{len}");
        }
        assert_eq!("2001:db8::/80".parse::<Pref64>(), Err(Pref64Error::Length(80)));
        assert_eq!("2001:db8::/300".parse::<Pref64>(), Err(Pref64Error::Syntax("2001:db8::/300".into())));
        assert!(matches!("2001:db8::".parse::<Pref64>(), Err(Pref64Error::Syntax(_))));
        assert!(matches!("10.0.0.0/32".parse::<Pref64>(), Err(Pref64Error::Syntax(_))));
        assert!(matches!("2001:db8::/+32".parse::<Pref64>(), Err(Pref64Error::Syntax(_))));
        assert_eq!("2001:db8::1/32".parse::<Pref64>(), Err(Pref64Error::HostBits));
        // Bits 64 to 71 of a /96 prefix must be zero (RFC 6052 §2.2).
        assert_eq!("2001:db8:0:0:100::/96".parse::<Pref64>(), Err(Pref64Error::UOctet));
        assert_eq!("::ffff:0:0/96".parse::<Pref64>(), Err(Pref64Error::Special("IPv4-mapped")));
        assert!(matches!("::/96".parse::<Pref64>(), Err(Pref64Error::Special(_))));
        assert_eq!("ff0e::/32".parse::<Pref64>(), Err(Pref64Error::Special("multicast")));
        assert_eq!("fe80::/64".parse::<Pref64>(), Err(Pref64Error::Special("link-local")));
        assert_eq!(p(" 2001:db8:64::/96 ").to_string(), "2001:db8:64::/96");
        assert!(p("64:ff9b::/96").is_well_known());
        assert!(!p("64:ff9b:1::/48").is_well_known());
        assert!(Pref64Error::Length(80).to_string().contains("/80"));
    }

    #[test]
    fn well_known_prefix_refuses_non_global_ipv4() {
        let wkp = Pref64::WELL_KNOWN;
        for v4 in [
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(172, 31, 255, 1),
            Ipv4Addr::new(192, 168, 1, 1),
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(169, 254, 3, 4),
            Ipv4Addr::new(100, 64, 0, 1),
            Ipv4Addr::new(100, 127, 255, 254),
            Ipv4Addr::new(0, 1, 2, 3),
            Ipv4Addr::new(192, 0, 0, 170),
            EXAMPLE_V4,
            Ipv4Addr::new(198, 19, 0, 1),
            Ipv4Addr::new(203, 0, 113, 1),
            Ipv4Addr::new(224, 0, 0, 251),
            Ipv4Addr::new(255, 255, 255, 255),
        ] {
            let err = synthesize(&wkp, v4).unwrap_err();
            assert!(matches!(err, SynthesisError::NonGlobalUnderWellKnown(a, _) if a == v4), "{v4}");
            assert!(err.to_string().contains("RFC 6052 §3.1"));
            // And an address under the WKP carrying it is not de-synthesized.
            assert_eq!(extract(&wkp, wkp.embed(v4)), None, "{v4}");
        }
        for v4 in [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(100, 128, 0, 1), Ipv4Addr::new(172, 32, 0, 1)] {
            assert_eq!(synthesize(&wkp, v4), Ok(wkp.embed(v4)), "{v4}");
            assert_eq!(extract(&wkp, wkp.embed(v4)), Some(v4));
        }
        assert_eq!(synthesize(&wkp, Ipv4Addr::new(8, 8, 8, 8)).unwrap(), a6("64:ff9b::808:808"));
    }

    #[test]
    fn network_specific_prefix_carries_private_ipv4() {
        let nsp = p("2001:db8:64::/96");
        assert_eq!(synthesize(&nsp, Ipv4Addr::new(10, 0, 0, 1)).unwrap(), a6("2001:db8:64::a00:1"));
        assert_eq!(synthesize(&nsp, Ipv4Addr::new(127, 0, 0, 1)).unwrap(), a6("2001:db8:64::7f00:1"));
        let nsp48 = p("64:ff9b:1::/48");
        assert_eq!(synthesize(&nsp48, Ipv4Addr::new(192, 168, 1, 1)).unwrap(), a6("64:ff9b:1:c0a8:1:100::"));
        assert_eq!(extract(&nsp48, a6("64:ff9b:1:c0a8:1:100::")), Some(Ipv4Addr::new(192, 168, 1, 1)));
    }

    #[test]
    fn host_and_link_scoped_addresses_are_the_hev3_list() {
        for a in ["0.1.2.3", "127.0.0.1", "127.255.255.254", "169.254.1.1", "255.255.255.255"] {
            assert!(is_host_or_link_scoped(a.parse().unwrap()), "{a}");
        }
        for a in ["10.0.0.1", "169.253.0.1", "128.0.0.1", "255.255.255.254", "1.0.0.0"] {
            assert!(!is_host_or_link_scoped(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn non_global_blocks_have_their_bounds() {
        assert_eq!(non_global_block(Ipv4Addr::new(100, 63, 255, 255)), None);
        assert_eq!(non_global_block(Ipv4Addr::new(100, 64, 0, 0)), Some("shared address space (RFC 6598)"));
        assert_eq!(non_global_block(Ipv4Addr::new(172, 15, 255, 255)), None);
        assert_eq!(non_global_block(Ipv4Addr::new(198, 17, 255, 255)), None);
        assert_eq!(non_global_block(Ipv4Addr::new(1, 1, 1, 1)), None);
    }

    #[test]
    fn rfc7050_finds_the_prefix_at_every_length() {
        for len in PREFIX_LENGTHS {
            let prefix = Pref64::new(Ipv6Addr::from(0x2001_0db8_0064_0000u128 << 64 & mask(len)), len).unwrap();
            let answer = [prefix.embed(IPV4ONLY_PRIMARY), prefix.embed(IPV4ONLY_SECONDARY)];
            assert_eq!(discover_rfc7050(&answer), vec![prefix], "/{len}");
            // Either address alone is enough.
            assert_eq!(discover_rfc7050(&answer[1..]), vec![prefix], "/{len}");
        }
        assert_eq!(discover_rfc7050(&[a6("64:ff9b::192.0.0.170")]), vec![Pref64::WELL_KNOWN]);
    }

    #[test]
    fn rfc7050_multiple_prefixes_in_answer_order() {
        let a = p("2001:db8:64::/96");
        let b = p("2001:db8:122::/48");
        let answer = [
            a.embed(IPV4ONLY_PRIMARY),
            b.embed(IPV4ONLY_PRIMARY),
            a.embed(IPV4ONLY_SECONDARY),
            b.embed(IPV4ONLY_SECONDARY),
        ];
        assert_eq!(discover_rfc7050(&answer), vec![a, b]);
    }

    #[test]
    fn rfc7050_ignores_wrong_answers_and_none_is_empty() {
        assert_eq!(discover_rfc7050(&[]), Vec::<Pref64>::new());
        let wrong = [
            a6("2001:db8::1"),                       // a real AAAA (no DNS64)
            a6("2001:db8:64::c000:ac"),              // 192.0.0.172
            a6("2001:db8:64::c000:a9"),              // 192.0.0.169
            a6("2001:db8:122:344:ffc0:0:aa00:0"),    // u octet set at /64
            a6("2001:db8:c000:aa::1"),               // suffix set at /32
            a6("::ffff:192.0.0.170"),                // IPv4-mapped: no NAT64 prefix
            a6("::192.0.0.170"),                     // IPv4-compatible
            a6("ff0e::c000:aa"),                     // multicast
        ];
        assert_eq!(discover_rfc7050(&wrong), Vec::<Pref64>::new());
        let good = p("2001:db8:64::/96");
        let mut mixed = wrong.to_vec();
        mixed.push(good.embed(IPV4ONLY_PRIMARY));
        assert_eq!(discover_rfc7050(&mixed), vec![good]);
    }

    #[test]
    fn rfc7050_prefix_spelling_a_well_known_address_is_not_ambiguous() {
        // The /64 prefix's bits 32..63 read as 192.0.0.170 at the /32
        // position, but there the u octet and suffix are not zero: the
        // only reading is the /64 one.
        let p64 = p("2001:db8:c000:aa::/64");
        let answer = [p64.embed(IPV4ONLY_PRIMARY), p64.embed(IPV4ONLY_SECONDARY)];
        assert_eq!(answer[0], a6("2001:db8:c000:aa:c0:0:aa00:0"));
        assert_eq!(discover_rfc7050(&answer), vec![p64]);
        // Same for a /96 whose bits 32..63 spell it.
        let p96 = p("2001:db8:c000:aa::/96");
        assert_eq!(discover_rfc7050(&[p96.embed(IPV4ONLY_SECONDARY)]), vec![p96]);
    }

    #[test]
    fn rfc7050_no_address_carries_a_well_known_address_twice() {
        // Exhaustive over the two addresses and the positions: a zero u
        // octet and suffix leave one reading per address.
        for len in PREFIX_LENGTHS {
            let prefix = Pref64::new(Ipv6Addr::from(0x2001_0db8_c000_00aa_00c0_0000_aa00_00abu128 & mask(len) & !(0xffu128 << 56)), len).unwrap();
            for wka in [IPV4ONLY_PRIMARY, IPV4ONLY_SECONDARY] {
                let addr = prefix.embed(wka);
                let hits: Vec<(u8, Ipv4Addr)> = PREFIX_LENGTHS
                    .iter()
                    .flat_map(|&l| [IPV4ONLY_PRIMARY, IPV4ONLY_SECONDARY].map(|w| (l, w)))
                    .filter(|&(l, w)| wka_at(addr, w, l).is_some())
                    .collect();
                assert_eq!(hits, vec![(len, wka)], "/{len} {wka}");
            }
        }
    }

    #[test]
    fn rfc8781_option_parses_every_plc() {
        // 64:ff9b::/96, lifetime 600 s: scaled 75, PLC 0.
        let opt = [38, 2, 0x02, 0x58, 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_pref64_option(&opt), Ok(Pref64Option { prefix: Pref64::WELL_KNOWN, lifetime_s: 600 }));
        for (plc, len) in [(0u8, 96u8), (1, 64), (2, 56), (3, 48), (4, 40), (5, 32)] {
            assert_eq!(plc_to_len(plc), Some(len));
            let prefix = Pref64::new(Ipv6Addr::from(0x2001_0db8_0102_0304_0005_0607u128 << 32 & mask(len)), len).unwrap();
            let bytes = encode_pref64_option(&prefix, 1800);
            assert_eq!(bytes[3] & 7, plc);
            assert_eq!(parse_pref64_option(&bytes), Ok(Pref64Option { prefix, lifetime_s: 1800 }), "/{len}");
        }
    }

    #[test]
    fn rfc8781_option_ignores_bits_past_the_length_and_scales_lifetime() {
        // PLC 5 (/32) with bits set past 32: they are ignored (§4).
        let mut opt = encode_pref64_option(&p("2001:db8::/32"), 8);
        opt[4..16].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(parse_pref64_option(&opt).unwrap().prefix, p("2001:db8::/32"));
        // The lifetime is 13 bits of 8-second units: at most 65528 s.
        let max = encode_pref64_option(&Pref64::WELL_KNOWN, 1_000_000);
        assert_eq!(parse_pref64_option(&max).unwrap().lifetime_s, 65528);
        assert_eq!(parse_pref64_option(&encode_pref64_option(&Pref64::WELL_KNOWN, 9)).unwrap().lifetime_s, 16);
        assert_eq!(parse_pref64_option(&encode_pref64_option(&Pref64::WELL_KNOWN, 0)).unwrap().lifetime_s, 0);
    }

    #[test]
    fn rfc8781_invalid_options_are_rejected() {
        let good = encode_pref64_option(&p("2001:db8:64::/96"), 600);
        for plc in [6u8, 7] {
            let mut bad = good;
            bad[3] = (bad[3] & !7) | plc;
            assert_eq!(parse_pref64_option(&bad), Err(RaOptionError::Plc(plc)));
            assert_eq!(plc_to_len(plc), None);
        }
        let mut bad = good;
        bad[1] = 3;
        assert_eq!(parse_pref64_option(&bad), Err(RaOptionError::Length(3)));
        bad = good;
        bad[0] = 25; // RDNSS
        assert_eq!(parse_pref64_option(&bad), Err(RaOptionError::Type(25)));
        assert_eq!(parse_pref64_option(&good[..15]), Err(RaOptionError::Truncated(15)));
        assert_eq!(parse_pref64_option(&good[..1]), Err(RaOptionError::Truncated(1)));
        // A /96 prefix with bits 64..71 set.
        bad = good;
        bad[12] = 1;
        assert_eq!(parse_pref64_option(&bad), Err(RaOptionError::Prefix(Pref64Error::UOctet)));
        assert!(RaOptionError::Plc(6).to_string().contains("0 to 5"));
    }
}
